//! Fuzz IPv4 reassembly with arbitrary packets and times: never a panic, memory stays bounded,
//! and a completed datagram is a whole, valid IPv4 datagram (not a fragment, lengths right,
//! header checksum valid).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::frag::{FragLimits, Reassembler, Reassembly};
use nat_core::wire::ipv4;
use nat_core::Instant;

fuzz_target!(|data: &[u8]| {
    let limits = FragLimits {
        max_memory: 8192,
        max_datagrams: 8,
        ..FragLimits::default()
    };
    let mut r = Reassembler::new(limits);
    let mut now = 0u64;
    // Records: [flags|len_hi, len_lo, time_step, bytes...]. The top bit of the first byte asks the
    // target to fix the header checksum (random bytes almost never carry a valid one, and the
    // reassembler drops a fragment with a bad checksum before looking at anything else).
    let mut rest = data;
    while rest.len() >= 3 {
        let fix = rest[0] & 0x80 != 0;
        let len = usize::from(u16::from_be_bytes([rest[0] & 0x7F, rest[1]])) % 600;
        now += u64::from(rest[2]) * 250;
        rest = &rest[3..];
        let take = len.min(rest.len());
        let (pkt, tail) = rest.split_at(take);
        rest = tail;
        let mut pkt = pkt.to_vec();
        if fix {
            if let Ok(mut ip) = ipv4::Packet::new_checked(&mut pkt[..]) {
                ip.fill_checksum();
            }
        }
        if let Ok(Reassembly::Complete(d)) = r.handle_fragment(Instant::from_millis(now), &pkt) {
            let ip = ipv4::Packet::new_checked(&d[..]).expect("reassembled datagram parses");
            assert!(
                !ip.is_fragment(),
                "reassembled datagram is still a fragment"
            );
            assert_eq!(usize::from(ip.total_len()), d.len());
            assert!(ip.verify_checksum(), "reassembled header checksum");
        }
        if r.poll_timeout().is_some_and(|t| t.as_millis() <= now) {
            r.handle_timeout(Instant::from_millis(now));
        }
        assert!(r.memory() <= 8192);
    }
});
