//! Property: every packet the engine lets through (LAN -> link masqueraded, link -> LAN
//! demasqueraded, ICMP errors both ways) carries valid IP, TCP, UDP and ICMP checksums, checked
//! by the independent RFC 1071 code of `common`. Inputs are valid packets with random
//! addresses, ports, IP and TCP options, flags, payloads (FTP commands included, so the helper's
//! payload rewrite is covered) and UDP with or without a checksum.

mod common;

use common::*;
use nat_core::masq::MasqConfig;
use nat_core::{Action, Instant};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

#[derive(Clone, Debug)]
struct Flow {
    proto: u8,
    host: u8,
    sport: u16,
    remote: u32,
    dport: u16,
    ip_opts: Vec<u8>,
    tcp_opts: Vec<u8>,
    flags: u16,
    reply_flags: u16,
    seq: u32,
    ack: u32,
    payload: Vec<u8>,
    reply: Vec<u8>,
    zero_udp_csum: bool,
    error: (u8, u8, u32),
    quote: usize,
}

fn flow() -> impl Strategy<Value = Flow> {
    let payload = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| format!(
            "PORT {},{},{},{},{},{}\r\n",
            a[0],
            a[1],
            a[2],
            a[3],
            p >> 8,
            p & 0xFF
        )
        .into_bytes()),
        Just(b"PASV\r\n".to_vec()),
    ];
    let kinds = prop::sample::select(vec![
        (3u8, 3u8, 0u32),
        (3, 1, 0),
        (3, 4, 576),
        (3, 4, 1492),
        (4, 0, 0),
        (11, 0, 0),
        (11, 1, 0),
        (12, 0, 0x1400_0000),
    ]);
    (
        (
            prop::sample::select(vec![TCP, UDP, ICMP]),
            2u8..250,
            1u16..,
            // Outside addresses: 198.51.100.0/22 and 100.64.0.0/10 (never the masq address).
            prop_oneof![0xc633_6400u32..0xc633_6800, 0x6440_0000u32..0x6480_0000],
            prop_oneof![Just(21u16), 1u16..],
            proptest::collection::vec(prop_oneof![Just(1u8), any::<u8>()], 0..12),
            proptest::collection::vec(Just(1u8), 0..16),
        ),
        (
            0u16..0x200,
            0u16..0x200,
            any::<u32>(),
            any::<u32>(),
            payload,
            proptest::collection::vec(any::<u8>(), 0..100),
            any::<bool>(),
            kinds,
            0usize..2000,
        ),
    )
        .prop_map(
            |(
                (proto, host, sport, remote, dport, ip_opts, tcp_opts),
                (flags, reply_flags, seq, ack, payload, reply, zero_udp_csum, error, quote),
            )| Flow {
                proto,
                host,
                sport,
                remote,
                dport,
                ip_opts,
                tcp_opts,
                flags,
                reply_flags,
                seq,
                ack,
                payload,
                reply,
                zero_udp_csum,
                error,
                quote,
            },
        )
}

/// Rebuild `pkt` with IP options `opts` inserted after the fixed header (checksum refilled).
fn with_ip_options(pkt: Vec<u8>, opts: &[u8]) -> Vec<u8> {
    if opts.is_empty() {
        return pkt;
    }
    let (src, dst, proto) = (addr(&pkt, 12), addr(&pkt, 16), pkt[9]);
    let body = &pkt[ihl(&pkt)..];
    let mut b = ip_header(src, dst, proto, opts, body.len());
    let hl = ihl(&b);
    b[hl..].copy_from_slice(body);
    b
}

fn outbound(f: &Flow) -> Vec<u8> {
    let host = Ipv4Addr::new(192, 168, 1, f.host);
    let remote = Ipv4Addr::from(f.remote);
    let p = match f.proto {
        TCP => tcp(
            host,
            f.sport,
            remote,
            f.dport,
            f.seq,
            f.ack,
            f.flags,
            &f.tcp_opts,
            &f.payload,
        ),
        UDP => udp(host, f.sport, remote, f.dport, &f.payload, f.zero_udp_csum),
        _ => icmp_query(host, remote, 8, f.sport, 1, &f.payload),
    };
    with_ip_options(p, &f.ip_opts)
}

fn inbound(f: &Flow, mport: u16) -> Vec<u8> {
    let remote = Ipv4Addr::from(f.remote);
    let p = match f.proto {
        TCP => tcp(
            remote,
            f.dport,
            MASQ,
            mport,
            f.ack,
            f.seq,
            f.reply_flags,
            &[],
            &f.reply,
        ),
        UDP => udp(remote, f.dport, MASQ, mport, &f.reply, f.zero_udp_csum),
        _ => icmp_query(remote, MASQ, 0, mport, 1, &f.reply),
    };
    with_ip_options(p, &f.ip_opts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn engine_output_always_carries_valid_checksums(f in flow()) {
        let mut e = engine_with(MasqConfig::linux22());
        let mut out = outbound(&f);
        prop_assert_eq!(all_checksums_ok(&out), Ok(()), "test input");
        prop_assert_eq!(e.process_from_lan(t(1), &mut out), Action::ToLink);
        prop_assert_eq!(all_checksums_ok(&out), Ok(()), "masqueraded");
        prop_assert_eq!(addr(&out, 12), MASQ);
        let (_, _, mport, _) = endpoints(&out);

        let mut back = inbound(&f, mport);
        prop_assert_eq!(e.process_from_link(t(2), &mut back), Action::ToLan);
        prop_assert_eq!(all_checksums_ok(&back), Ok(()), "demasqueraded");
        prop_assert_eq!(addr(&back, 16), Ipv4Addr::new(192, 168, 1, f.host));

        // A router's error about the masqueraded packet, quoting a random length.
        let (ty, code, rest) = f.error;
        let qlen = (ihl(&out) + 8 + f.quote).min(out.len()).min(548);
        let router = Ipv4Addr::new(198, 51, 100, 1);
        let mut err = icmp_error(router, MASQ, ty, code, rest, &out[..qlen]);
        prop_assert_eq!(e.process_from_link(t(3), &mut err), Action::ToLan);
        prop_assert_eq!(all_checksums_ok(&err), Ok(()), "inbound error");

        // The inside host's error about the demasqueraded reply (TCP/UDP only).
        if f.proto != ICMP {
            let host = Ipv4Addr::new(192, 168, 1, f.host);
            let qlen = (ihl(&back) + 8 + f.quote).min(back.len()).min(548);
            let mut err = icmp_error(host, Ipv4Addr::from(f.remote), ty, code, rest, &back[..qlen]);
            prop_assert_eq!(e.process_from_lan(t(4), &mut err), Action::ToLink);
            prop_assert_eq!(all_checksums_ok(&err), Ok(()), "outbound error");
            prop_assert_eq!(addr(&err, 12), MASQ);
        }
    }
}
