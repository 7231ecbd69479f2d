//! Fuzz target: the engine's two packet entry points (translate both ways) never panic. The
//! input is split into records `[op, len_hi, len_lo, bytes...]`: `op & 3` selects the operation
//! (LAN packet, link packet, timer, new masquerade address), `op & 4` asks the target to fix the
//! IPv4 header and TCP/UDP/ICMP checksums first (random bytes almost never carry valid checksums,
//! so without this the translation paths behind the checks are rarely reached), and `op >> 3`
//! advances the clock in seconds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::masq::{MasqConfig, PortRange};
use nat_core::wire::{icmp, ipv4, tcp, udp};
use nat_core::{Engine, EngineConfig, Instant};
use std::net::Ipv4Addr;

/// Recompute the checksums of `buf` if it holds an IPv4 header (and, for a first fragment or an
/// unfragmented datagram, a TCP/UDP/ICMP header).
fn fix_checksums(buf: &mut [u8]) {
    let Ok(mut ip) = ipv4::Packet::new_checked(&mut *buf) else {
        return;
    };
    ip.fill_checksum();
    if ip.frag_offset() != 0 {
        return;
    }
    let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    let pl = ip.payload_mut();
    match proto {
        6 => {
            if let Ok(mut t) = tcp::Packet::new_checked(pl) {
                t.fill_checksum(src, dst);
            }
        }
        17 => {
            if let Ok(mut u) = udp::Packet::new_checked(pl) {
                u.fill_checksum(src, dst);
            }
        }
        1 => {
            if let Ok(mut m) = icmp::Packet::new_checked(pl) {
                m.fill_checksum();
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // A small port pool so that exhaustion and port reuse are reachable.
    let small = PortRange {
        lo: 61000,
        hi: 61003,
    };
    let mut e = Engine::new(EngineConfig {
        local_addrs: vec![Ipv4Addr::new(192, 168, 1, 1)],
        masq: MasqConfig {
            ports: [small; 3],
            port_reuse: 2,
            ..MasqConfig::default()
        },
        ..EngineConfig::default()
    });
    let _ = e.firewall_mut().set_policy("forward", "MASQ");
    e.set_masq_address(Some(Ipv4Addr::new(203, 0, 113, 5)));
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let mut buf = rest[3..3 + len].to_vec();
        rest = &rest[3 + len..];
        if op & 4 != 0 {
            fix_checksums(&mut buf);
        }
        now += u64::from(op >> 3) * 1000;
        let t = Instant::from_millis(now);
        match op & 3 {
            0 => drop(e.process_from_lan(t, &mut buf)),
            1 => drop(e.process_from_link(t, &mut buf)),
            2 => {
                let _ = e.handle_timeout(t);
            }
            _ => {
                e.set_masq_address(Some(Ipv4Addr::new(203, 0, 113, op)));
            }
        }
    }
    let _ = e.render_proc_ip_masquerade(Instant::from_millis(now));
});
