//! Fuzz target: the receive-window clamp's parser and rewrite (`nat_core::rwnd`). Records
//! `[op, len, bytes...]`: `op & 1` = inbound (observed only, 0) or outbound (clamped, 1), `op >> 2`
//! advances the clock in 100 ms steps; with `op & 2` the target fixes the TCP checksum first.
//! Asserts: inbound datagrams are never changed; an outbound one changes at most in its window
//! and TCP checksum fields, its window never grows, and a valid TCP checksum stays valid (an
//! RFC 1071 sum written here).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::rwnd::{WindowClamp, WindowConfig};
use nat_core::Instant;
use std::net::Ipv4Addr;

/// The TCP segment's offset and end when `b` holds a whole IPv4/TCP first fragment.
fn tcp_range(b: &[u8]) -> Option<(usize, usize)> {
    if b.len() < 20 || b[0] >> 4 != 4 || b[9] != 6 {
        return None;
    }
    let ihl = usize::from(b[0] & 15) * 4;
    let end = usize::from(u16::from_be_bytes([b[2], b[3]])).min(b.len());
    (ihl >= 20 && end >= ihl + 20).then_some((ihl, end))
}

fn tcp_sum(b: &[u8], ihl: usize, end: usize) -> u16 {
    let seg = &b[ihl..end];
    let mut s: u64 = 0;
    for w in b[12..20].chunks(2) {
        s += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    s += 6 + seg.len() as u64;
    for c in seg.chunks(2) {
        s += (u64::from(c[0]) << 8) | c.get(1).map_or(0, |&x| u64::from(x));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fuzz_target!(|data: &[u8]| {
    let mut c = WindowClamp::new(WindowConfig::for_rate(11_520));
    let mut now = 0u64;
    let mut rest = data;
    while rest.len() >= 2 {
        let (op, len) = (rest[0], usize::from(rest[1]));
        rest = &rest[2..];
        let take = len.min(rest.len());
        let mut pkt = rest[..take].to_vec();
        rest = &rest[take..];
        now += u64::from(op >> 2) * 100;
        let t = Instant::from_millis(now);
        if op & 2 != 0 {
            if let Some((ihl, end)) = tcp_range(&pkt) {
                pkt[ihl + 16] = 0;
                pkt[ihl + 17] = 0;
                let s = !tcp_sum(&pkt, ihl, end);
                pkt[ihl + 16..ihl + 18].copy_from_slice(&s.to_be_bytes());
            }
        }
        let before = pkt.clone();
        if op & 1 == 0 {
            c.observe_inbound(t, &pkt);
            assert_eq!(pkt, before);
            continue;
        }
        let r = c.clamp_outbound(t, Ipv4Addr::new(192, 168, 1, 10), &mut pkt);
        assert_eq!(pkt.len(), before.len());
        let Some((ihl, end)) = tcp_range(&before) else {
            assert_eq!(pkt, before, "not TCP: untouched");
            continue;
        };
        for (i, (a, b)) in before.iter().zip(pkt.iter()).enumerate() {
            if !(ihl + 14..ihl + 18).contains(&i) {
                assert_eq!(a, b, "byte {i} changed");
            }
        }
        let old = u16::from_be_bytes([before[ihl + 14], before[ihl + 15]]);
        let new = u16::from_be_bytes([pkt[ihl + 14], pkt[ihl + 15]]);
        assert!(new <= old, "window grew: {old} -> {new}");
        match r {
            Some(cl) => assert!(cl.old == old && cl.new == new && new < old),
            None => assert_eq!(pkt, before),
        }
        if tcp_sum(&before, ihl, end) == 0xffff {
            assert_eq!(tcp_sum(&pkt, ihl, end), 0xffff, "checksum broken");
        }
    }
});
