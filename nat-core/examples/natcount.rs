//! `natcount`: a fixed natbench-like workload for instruction counting under valgrind's
//! cachegrind (steadier than timing on a shared machine). Usage:
//! `natcount <udp|tcp> <out|in> <flows> <packets>`; run it with packets = 0 and with packets = N
//! and divide the difference of the instruction counts by N: instructions per packet.
//! Uses only the engine's public entry points, so the same file builds at older commits.

use nat_core::masq::{Mapping, MasqConfig, PortRange};
use nat_core::wire::{ipv4, proto, tcp, udp};
use nat_core::{Action, Engine, EngineConfig, Instant};
use std::net::Ipv4Addr;

const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

fn pkt64(tcpp: bool, src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16, flags: u16) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: if tcpp { proto::TCP } else { proto::UDP },
        payload_len: 44,
        ttl: 64,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    if tcpp {
        let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
        t.set_src_port(sp);
        t.set_dst_port(dp);
        t.set_seq_number(1);
        t.set_ack_number(1);
        t.set_header_len_and_flags(20, flags);
        t.set_window_len(65535);
        t.fill_checksum(src, dst);
    } else {
        let mut u = udp::Packet::new_unchecked(&mut b[20..]);
        u.set_src_port(sp);
        u.set_dst_port(dp);
        u.set_len(44);
        u.fill_checksum(src, dst);
    }
    b
}

fn flow(i: u32) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let host = Ipv4Addr::from(0x0a00_0000 | (i / 1000 + 1));
    let sp = 10_000 + (i % 1000) as u16;
    let remote = Ipv4Addr::from(0xc633_6400 | (i.wrapping_mul(7919) % 4096));
    (host, sp, remote, 443 + (i % 3) as u16)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: natcount <udp|tcp> <out|in> <flows> <packets>");
        std::process::exit(2);
    }
    let tcpp = a[1] == "tcp";
    let outbound = a[2] == "out";
    let n: u32 = a[3].parse().unwrap_or(1000);
    let packets: usize = a[4].parse().unwrap_or(0);
    let mut masq = MasqConfig::linux22();
    if n > 10_000 {
        masq.ports = [PortRange {
            lo: 1024,
            hi: 65535,
        }; 3];
        masq.port_reuse = 64;
        masq.mapping = Mapping::AddressPortDependent;
        masq.max_entries = 1 << 22;
    }
    masq.change_log_capacity = 0;
    let mut e = Engine::new(EngineConfig {
        masq,
        ..EngineConfig::default()
    });
    let _ = e.firewall_mut().set_policy("forward", "MASQ");
    e.set_masq_address(Some(MASQ));
    e.masq_mut().reserve(n as usize);
    let now = Instant::from_secs(1);
    let mut set = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (h, sp, r, dp) = flow(i);
        let mut p = pkt64(tcpp, h, sp, r, dp, if tcpp { tcp::FLG_SYN } else { 0 });
        assert_eq!(e.process_from_lan(now, &mut p), Action::ToLink);
        let mport = u16::from_be_bytes([p[20], p[21]]);
        let flags = if tcpp { tcp::FLG_SYN | tcp::FLG_ACK } else { 0 };
        let mut back = pkt64(tcpp, r, dp, MASQ, mport, flags);
        assert_eq!(e.process_from_link(now, &mut back), Action::ToLan);
        set.push(if outbound {
            pkt64(tcpp, h, sp, r, dp, tcp::FLG_ACK)
        } else {
            pkt64(tcpp, r, dp, MASQ, mport, tcp::FLG_ACK)
        });
    }
    let now = Instant::from_secs(2);
    let mut buf = Vec::with_capacity(2048);
    let mut good = 0usize;
    for i in 0..packets {
        buf.clear();
        buf.extend_from_slice(&set[(i.wrapping_mul(7919)) % set.len()]);
        let a = if outbound {
            e.process_from_lan(now, &mut buf)
        } else {
            e.process_from_link(now, &mut buf)
        };
        good += usize::from(matches!(a, Action::ToLink | Action::ToLan));
        std::hint::black_box(&a);
    }
    assert_eq!(good, packets);
}
