//! ICMP errors of every kind through the engine, both directions: destination unreachable
//! (port, host, fragmentation needed with the RFC 1191 next-hop MTU), source quench, time
//! exceeded (TTL and reassembly), parameter problem; quoting UDP, TCP and ICMP echo, with the
//! 8-byte minimum quote (RFC 792) and the whole datagram (RFC 1812); and errors that match no
//! entry. Outer and quoted addresses, ports and checksums are checked with the independent
//! RFC 1071 code of `common`.

mod common;

use common::*;
use nat_core::masq::MasqConfig;
use nat_core::{Action, DropReason, Engine, Instant};
use std::net::Ipv4Addr;

fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// (type, code, rest-of-header word, label).
const KINDS: [(u8, u8, u32, &str); 8] = [
    (3, 3, 0, "port unreachable"),
    (3, 1, 0, "host unreachable"),
    (3, 4, 576, "fragmentation needed, MTU 576"),
    (3, 4, 1492, "fragmentation needed, MTU 1492"),
    (4, 0, 0, "source quench"),
    (11, 0, 0, "time exceeded in transit"),
    (11, 1, 0, "reassembly time exceeded"),
    (12, 0, 0x1400_0000, "parameter problem, pointer 20"),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Quoted {
    Udp,
    Tcp,
    Echo,
}

/// The inside host's original packet for each quoted protocol.
fn original(q: Quoted) -> Vec<u8> {
    match q {
        Quoted::Udp => udp(LAN, 5000, REMOTE, 33434, b"traceroute probe", false),
        Quoted::Tcp => tcp(
            LAN,
            40000,
            REMOTE,
            443,
            0x0102_0304,
            0,
            0x002,
            &[2, 4, 5, 0xb4],
            b"",
        ),
        Quoted::Echo => icmp_query(LAN, REMOTE, 8, 0x4242, 7, b"abcdefghijklmnop"),
    }
}

/// Quote lengths: the RFC 792 minimum (IP header + 8) and the whole datagram.
fn quote_lens(p: &[u8]) -> [usize; 2] {
    [ihl(p) + 8, p.len()]
}

/// Send `orig` out through the engine; returns the engine and the masqueraded packet.
fn masqueraded(orig: &[u8]) -> (Engine, Vec<u8>) {
    let mut e = engine_with(MasqConfig::linux22());
    let mut p = orig.to_vec();
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    assert_eq!(all_checksums_ok(&p), Ok(()));
    (e, p)
}

/// Bytes equal except the transport checksum field of the quoted datagram, which is checked
/// for equivalence (the same ones-complement value: 0x0000 and 0xFFFF are both zero).
fn assert_quote_restored(got: &[u8], want: &[u8], proto: u8, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: quote length");
    let hl = ihl(want);
    let csum_at = match proto {
        UDP => hl + 6,
        TCP => hl + 16,
        _ => hl + 2,
    };
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if i == csum_at || i == csum_at + 1 {
            continue;
        }
        assert_eq!(g, w, "{what}: quoted byte {i}");
    }
    if got.len() >= csum_at + 2 {
        let (g, w) = (be16(got, csum_at), be16(want, csum_at));
        assert!(
            g == w || (g ^ w == 0xFFFF && (g == 0 || w == 0) && proto != UDP),
            "{what}: quoted checksum {g:#06x}, original {w:#06x}"
        );
    }
}

#[test]
fn inbound_errors_of_every_kind_reach_the_inside_host_restored() {
    let mut cases = 0;
    for q in [Quoted::Udp, Quoted::Tcp, Quoted::Echo] {
        let orig = original(q);
        for qlen in quote_lens(&orig) {
            for (ty, code, rest, label) in KINDS {
                let what = format!("{label} quoting {q:?} ({qlen} bytes)");
                let (mut e, out) = masqueraded(&orig);
                let (_, _, mport, _) = endpoints(&out);
                let mut err = icmp_error(ROUTER, MASQ, ty, code, rest, &out[..qlen]);
                assert_eq!(e.process_from_link(t(2), &mut err), Action::ToLan, "{what}");
                assert_eq!(all_checksums_ok(&err), Ok(()), "{what}");
                // Outer: router -> inside host; type, code and rest word (MTU) unchanged.
                assert_eq!((addr(&err, 12), addr(&err, 16)), (ROUTER, LAN), "{what}");
                let m = &err[20..];
                assert_eq!((m[0], m[1]), (ty, code), "{what}");
                assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), rest, "{what}");
                if (ty, code) == (3, 4) {
                    assert_eq!(be16(m, 6), rest as u16, "{what}: next-hop MTU");
                }
                // Quoted: what the inside host sent, address and port (or id) restored.
                let quoted = &m[8..];
                let (qs, qd, qsp, qdp) = endpoints(quoted);
                let (_, _, osp, odp) = endpoints(&orig);
                assert_eq!((qs, qd, qsp, qdp), (LAN, REMOTE, osp, odp), "{what}");
                assert_quote_restored(quoted, &orig[..qlen], orig[9], &what);
                assert_ne!(
                    mport, osp,
                    "{what}: the masquerade port differs from the inside one"
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 3 * 2 * KINDS.len());
}

#[test]
fn outbound_errors_from_the_inside_host_are_masqueraded() {
    let mut cases = 0;
    for q in [Quoted::Udp, Quoted::Tcp] {
        let orig = original(q);
        let (_, _, osp, odp) = endpoints(&orig);
        for (ty, code, rest, label) in KINDS {
            let (mut e, out) = masqueraded(&orig);
            let (_, _, mport, _) = endpoints(&out);
            // The remote answers; the engine demasquerades it to the inside host.
            let mut reply = match q {
                Quoted::Udp => udp(REMOTE, odp, MASQ, mport, b"late answer", false),
                _ => tcp(REMOTE, odp, MASQ, mport, 77, 0x0102_0305, 0x012, &[], b""),
            };
            let wire_reply = reply.clone();
            assert_eq!(e.process_from_link(t(2), &mut reply), Action::ToLan);
            for qlen in quote_lens(&reply) {
                let what = format!("{label} about a {q:?} reply ({qlen} bytes)");
                let mut err = icmp_error(LAN, REMOTE, ty, code, rest, &reply[..qlen]);
                assert_eq!(e.process_from_lan(t(3), &mut err), Action::ToLink, "{what}");
                assert_eq!(all_checksums_ok(&err), Ok(()), "{what}");
                assert_eq!((addr(&err, 12), addr(&err, 16)), (MASQ, REMOTE), "{what}");
                let m = &err[20..];
                assert_eq!((m[0], m[1]), (ty, code), "{what}");
                assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), rest, "{what}");
                // Quoted: the reply as it was on the wire (remote -> masq address:mport).
                let quoted = &m[8..];
                assert_eq!(endpoints(quoted), (REMOTE, MASQ, odp, mport), "{what}");
                assert_quote_restored(quoted, &wire_reply[..qlen], wire_reply[9], &what);
                cases += 1;
            }
        }
        let _ = osp;
    }
    assert_eq!(cases, 2 * KINDS.len() * 2);
}

#[test]
fn errors_matching_no_entry_are_dropped_or_left_alone() {
    for (ty, code, rest, label) in KINDS {
        // Quoting a packet from the masquerade address that has no entry: dropped (RFC 5508
        // REQ-4), whatever the quoted protocol.
        for stray in [
            udp(MASQ, 61999, REMOTE, 53, b"?", false),
            tcp(MASQ, 61999, REMOTE, 80, 1, 0, 0x002, &[], b""),
            icmp_query(MASQ, REMOTE, 8, 61999, 1, b"?"),
        ] {
            let mut e = engine_with(MasqConfig::linux22());
            // A live entry for another flow, so the table is not empty.
            let mut p = udp(LAN, 5000, REMOTE, 53, b"q", false);
            assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
            for qlen in [ihl(&stray) + 8, stray.len()] {
                let mut err = icmp_error(ROUTER, MASQ, ty, code, rest, &stray[..qlen]);
                let before = err.clone();
                assert_eq!(
                    e.process_from_link(t(2), &mut err),
                    Action::Drop(DropReason::IcmpNoMapping),
                    "{label} quoting protocol {}",
                    stray[9]
                );
                assert_eq!(err, before, "{label}: a dropped error is not rewritten");
            }
        }
        // Quoting a datagram that did not come from the masquerade address: not ours, so it
        // goes to the gateway's own stack untouched.
        let mut e = engine_with(MasqConfig::linux22());
        let other = udp(
            Ipv4Addr::new(203, 0, 113, 77),
            5000,
            REMOTE,
            53,
            b"x",
            false,
        );
        let mut err = icmp_error(ROUTER, MASQ, ty, code, rest, &other[..28]);
        let before = err.clone();
        assert_eq!(
            e.process_from_link(t(2), &mut err),
            Action::Local,
            "{label}"
        );
        assert_eq!(err, before);
        // From the inside host about something never demasqueraded: dropped.
        let stray = udp(REMOTE, 53, MASQ, 61999, b"?", false);
        let mut err = icmp_error(LAN, REMOTE, ty, code, rest, &stray[..28]);
        assert_eq!(
            e.process_from_lan(t(3), &mut err),
            Action::Drop(DropReason::IcmpNoMapping),
            "{label} from inside"
        );
    }
}

#[test]
fn inbound_error_with_bad_icmp_checksum_is_dropped() {
    let (mut e, out) = masqueraded(&original(Quoted::Udp));
    let mut err = icmp_error(ROUTER, MASQ, 3, 4, 1492, &out);
    let last = err.len() - 1;
    err[last] ^= 0x01;
    assert_eq!(
        e.process_from_link(t(2), &mut err),
        Action::Drop(DropReason::BadChecksum)
    );
}
