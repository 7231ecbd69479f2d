//! Fuzz target: the IRC DCC helper (`nat_core::helpers::irc`). Input: 4 bytes of masquerade
//! address, 2 bytes of first masquerade port, then a client payload. Asserts:
//! - `rewrite` then `scan` finds the same offers in the same order: the mapped ones with the
//!   masquerade address and the port given to them, the others unchanged, and every byte
//!   outside the rewritten `<address> <port>` ranges kept;
//! - nothing mappable (in particular, no `\x01` at all): the payload is left byte-identical;
//! - through a whole engine (helper on TCP 6667), the segment that leaves is valid (IP and TCP
//!   checksums verify), carries the payload up to an unterminated offer at its end (held for
//!   the next segment), and every mappable offer in it names the masquerade address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::helpers::irc::{mappable, pending_start, rewrite, scan};
use nat_core::wire::{ipv4, proto, tcp};
use nat_core::{Action, Engine, EngineConfig, Instant};
use std::net::Ipv4Addr;

const LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

fn text(maddr: Ipv4Addr, base: u16, data: &[u8]) {
    let before = scan(data);
    let mut given = Vec::new();
    let out = rewrite(data, LAN, maddr, |o| {
        let p = base.wrapping_add(given.len() as u16).max(1);
        given.push((o.range.clone(), p));
        Some(p)
    });
    let Some(out) = out else {
        assert!(given.is_empty(), "a port was taken but nothing rewritten");
        assert!(before.iter().all(|o| !mappable(o, LAN, maddr)));
        return;
    };
    assert!(data.contains(&1), "rewrote text without a CTCP");
    let after = scan(&out);
    assert_eq!(after.len(), before.len(), "offers found after the rewrite");
    let mut g = given.iter();
    let (mut shift, mut last) = (0isize, 0usize);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.range.start as isize, b.range.start as isize + shift);
        assert_eq!(
            &out[(last as isize + shift) as usize..a.range.start],
            &data[last..b.range.start]
        );
        if mappable(b, LAN, maddr) {
            let (r, p) = g.next().expect("one port per mapped offer");
            assert_eq!(r, &b.range);
            assert_eq!((a.addr, a.port), (maddr, *p));
        } else {
            assert_eq!((a.addr, a.port), (b.addr, b.port));
        }
        shift += a.range.len() as isize - b.range.len() as isize;
        last = b.range.end;
    }
    assert_eq!(&out[(last as isize + shift) as usize..], &data[last..]);
}

fn tcp_segment(data: &[u8], seq: u32, flags: u16) -> Vec<u8> {
    let mut b = vec![0u8; 40 + data.len()];
    ipv4::Repr {
        src_addr: LAN,
        dst_addr: SERVER,
        protocol: proto::TCP,
        payload_len: 20 + data.len(),
        ttl: 64,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
    t.set_src_port(40000);
    t.set_dst_port(6667);
    t.set_seq_number(seq);
    t.set_ack_number(1);
    t.set_header_len_and_flags(20, flags);
    t.set_window_len(8192);
    t.payload_mut().copy_from_slice(data);
    t.fill_checksum(LAN, SERVER);
    b
}

fn engine(data: &[u8]) {
    if data.len() > 1400 {
        return;
    }
    let mut e = Engine::new(EngineConfig::default());
    if e.firewall_mut().set_policy("forward", "MASQ").is_err()
        || e.masq_mut()
            .helpers_mut()
            .register("irc", proto::TCP, 6667)
            .is_err()
    {
        panic!("engine setup");
    }
    e.set_masq_address(Some(MASQ));
    let now = Instant::from_secs(1);
    let mut syn = tcp_segment(b"", 100, tcp::FLG_SYN);
    assert_eq!(e.process_from_lan(now, &mut syn), Action::ToLink);
    let mut p = tcp_segment(data, 101, tcp::FLG_ACK | tcp::FLG_PSH);
    assert_eq!(e.process_from_lan(now, &mut p), Action::ToLink);
    let ip = ipv4::Packet::new_checked(&p[..]).expect("valid IPv4 out");
    assert!(ip.verify_checksum());
    let t = tcp::Packet::new_checked(ip.payload()).expect("valid TCP out");
    assert!(t.verify_checksum(MASQ, SERVER));
    let sent = t.payload();
    // An unterminated offer at the end is held back for the next segment.
    let data = &data[..pending_start(data).unwrap_or(data.len())];
    let before = scan(data);
    let after = scan(sent);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        if mappable(b, LAN, MASQ) {
            assert_eq!(a.addr, MASQ, "a mappable offer left unmasqueraded");
        } else {
            assert_eq!((a.addr, a.port), (b.addr, b.port));
        }
    }
    if before.iter().all(|o| !mappable(o, LAN, MASQ)) {
        assert_eq!(sent, data, "payload without mappable offer changed");
    }
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 6 {
        return;
    }
    let maddr = Ipv4Addr::new(input[0], input[1], input[2], input[3]);
    let base = u16::from_be_bytes([input[4], input[5]]);
    let data = &input[6..];
    text(maddr, base, data);
    engine(data);
});
