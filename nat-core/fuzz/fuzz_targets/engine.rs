//! Fuzz target: the engine's two packet entry points (translate both ways) never panic, and
//! every packet it lets through keeps a valid IP header checksum, with valid TCP/UDP/ICMP
//! checksums whenever the input had them (checked by an RFC 1071 sum written here). The
//! input is split into records `[op, len_hi, len_lo, bytes...]`: `op & 3` selects the operation
//! (LAN packet, link packet, timer, new masquerade address), `op & 4` asks the target to fix the
//! IPv4 header and TCP/UDP/ICMP checksums first (random bytes almost never carry valid checksums,
//! so without this the translation paths behind the checks are rarely reached), and `op >> 3`
//! advances the clock in seconds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::masq::{MasqConfig, PortRange};
use nat_core::wire::{icmp, ipv4, tcp, udp};
use nat_core::{Action, Engine, EngineConfig, Instant};
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

/// RFC 1071 from the definition (independent of `nat_core::wire::checksum`).
fn sum16(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|w| u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// IP header checksum valid; `Some(transport valid)` for an unfragmented TCP/UDP/ICMP datagram.
fn checksums(b: &[u8]) -> (bool, Option<bool>) {
    let Ok(ip) = ipv4::Packet::new_checked(b) else {
        return (false, None);
    };
    let hl = ip.header_len();
    let ip_ok = sum16(&[&b[..hl]]) == 0xFFFF;
    if ip.is_fragment() {
        return (ip_ok, None);
    }
    let t = ip.payload();
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&ip.src_addr().octets());
    pseudo[4..8].copy_from_slice(&ip.dst_addr().octets());
    pseudo[9] = ip.protocol();
    pseudo[10..].copy_from_slice(&(t.len() as u16).to_be_bytes());
    let ok = match ip.protocol() {
        17 if t.len() >= 8 && usize::from(u16::from_be_bytes([t[4], t[5]])) == t.len() => {
            t[6..8] == [0, 0] || sum16(&[&pseudo, t]) == 0xFFFF
        }
        6 if t.len() >= 20 => sum16(&[&pseudo, t]) == 0xFFFF,
        1 if t.len() >= 8 => sum16(&[t]) == 0xFFFF,
        _ => return (ip_ok, None),
    };
    (ip_ok, Some(ok))
}

/// What must hold after the engine handled `input` (now `output`) with `action`.
fn check(input: &[u8], action: &Action, output: &[u8]) {
    match action {
        Action::ToLink | Action::ToLan => {
            let (ip_ok, t_ok) = checksums(output);
            assert!(ip_ok, "forwarded with a bad IP header checksum");
            if let (true, Some(true)) = checksums(input) {
                assert_eq!(
                    t_ok,
                    Some(true),
                    "valid input forwarded with a bad checksum"
                );
            }
        }
        Action::Reply(r) => {
            let (ip_ok, t_ok) = checksums(r);
            assert!(
                ip_ok && t_ok == Some(true),
                "generated ICMP error has bad checksums"
            );
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
        let input = buf.clone();
        match op & 3 {
            0 => {
                let a = e.process_from_lan(t, &mut buf);
                check(&input, &a, &buf);
            }
            1 => {
                let a = e.process_from_link(t, &mut buf);
                check(&input, &a, &buf);
            }
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
