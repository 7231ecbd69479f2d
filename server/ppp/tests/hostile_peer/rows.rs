//! The rows of the hostile-peer matrix: one scripted peer behaviour each, with its expectation.

use std::net::Ipv4Addr;

use masqdial_ppp::ipcp::{AddressProblem, Endpoint, IpcpFailure};
use masqdial_ppp::{AuthProtocol, DownReason, PapRefusal, Side};

use crate::peer::*;
use crate::*;

pub(crate) fn rows() -> Vec<Row> {
    let magic = || opt(5, &[0x5E, 0xED, 0xBE, 0xEF]);
    vec![
        Row {
            name: "plain RFC peer",
            ..Row::default()
        },
        Row {
            name: "ISP asks PAP and ignores our Nak proposing CHAP-MD5: refused, no PAP sent",
            lcp_opts: opts(&[opt(3, &[0xC0, 0x23]), magic()]),
            insist: &[3],
            tweak: |c| {
                if c.side == Side::Client {
                    c.user = "alice".into();
                    c.password = "wonderland".into();
                    c.accept_auth = vec![AuthProtocol::Chap, AuthProtocol::Pap];
                }
            },
            expect: |side, o| match side {
                // Our access server authenticates no one with PAP: it Rejects the option.
                Side::AccessServer => o.up_ok(),
                Side::Client => {
                    o.down_at(
                        S(0),
                        DownReason::PapRefused {
                            naks: 5,
                            peer: PapRefusal::Insisted,
                        },
                    )?;
                    let naks = o
                        .peer
                        .seen
                        .iter()
                        .filter(|(p, c, d)| {
                            *p == LCP && *c == CONF_NAK && *d == [3, 5, 0xC2, 0x23, 5]
                        })
                        .count();
                    if naks != 5 {
                        return Err(format!("{naks} Naks proposing CHAP-MD5"));
                    }
                    if o.peer.seen.iter().any(|(p, _, _)| *p == 0xC023) {
                        return Err("a PAP packet was sent".into());
                    }
                    Ok(())
                }
            },
            ..Row::default()
        },
        Row {
            name: "passive peer (never sends the first Configure-Request)",
            passive: true,
            ..Row::default()
        },
        Row {
            name: "peer's Configure-Request before ours",
            early: true,
            ..Row::default()
        },
        Row {
            name: "every Configure-Request sent twice with the same Identifier",
            dup: true,
            expect: |_, o| {
                o.up_ok()?;
                // RFC 1661 §5.1: a copy is answered, not taken for a restart.
                if o.ipcp_ups() != 1 {
                    return Err(format!("{} IpcpUp events", o.ipcp_ups()));
                }
                Ok(())
            },
            ..Row::default()
        },
        Row {
            name: "asks VJ compression (IPCP option 2): rejected, then comes up",
            ipcp_opts: Some(opts(&[opt(2, &[0x00, 0x2D, 0x0F, 0x01]), opt(3, &[0; 4])])),
            expect: |_, o| {
                o.up_ok()?;
                let rej = o
                    .peer
                    .seen
                    .iter()
                    .find(|(p, c, _)| *p == IPCP && *c == CONF_REJ);
                match rej {
                    Some((_, _, d)) if *d == opt(2, &[0x00, 0x2D, 0x0F, 0x01]) => Ok(()),
                    other => Err(format!("want Configure-Reject of VJ, got {other:?}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "CCP, IPv6CP and protocol 0x1235 once LCP is open: Protocol-Rejected",
            extra: vec![
                (
                    When::LcpOpen,
                    CCP,
                    pkt(CONF_REQ, 1, &opt(26, &[0x01, 0x2F])),
                ),
                (
                    When::LcpOpen,
                    IPV6CP,
                    pkt(CONF_REQ, 1, &opt(1, &[1, 2, 3, 4, 5, 6, 7, 8])),
                ),
                (When::LcpOpen, 0x1235, vec![1, 2, 3, 4]),
            ],
            expect: |_, o| {
                o.up_ok()?;
                let rejected: Vec<u16> = o
                    .peer
                    .seen
                    .iter()
                    .filter(|(p, c, _)| *p == LCP && *c == PROTO_REJ)
                    .map(|(_, _, d)| u16::from_be_bytes([d[0], d[1]]))
                    .collect();
                if rejected != [CCP, IPV6CP, 0x1235] {
                    return Err(format!("Protocol-Rejects for {rejected:04x?}"));
                }
                Ok(())
            },
            ..Row::default()
        },
        Row {
            name: "Code-Rejects LCP Echo-Request: keepalive stops, link stays up",
            echo: Echo::CodeReject,
            expect: |_, o| {
                o.up_ok()?;
                // One Echo-Request at 30 s, then none (the run lasts 300 s).
                match o.peer.count(LCP, ECHO_REQ) {
                    1 => Ok(()),
                    n => Err(format!("{n} Echo-Requests after the Code-Reject")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "Protocol-Rejects LCP itself in answer to Echo: link closes",
            echo: Echo::ProtocolRejectLcp,
            expect: |_, o| match o.down() {
                Some((t, DownReason::NegotiationFailed(_))) if t == S(30) => Ok(()),
                other => Err(format!("want LCP failure at 30 s, got {other:?}")),
            },
            ..Row::default()
        },
        Row {
            name: "short MRU 296",
            lcp_opts: opts(&[opt(1, &296u16.to_be_bytes()), magic()]),
            expect: |_, o| mru_check(o, 296),
            ..Row::default()
        },
        Row {
            name: "short MRU 576",
            lcp_opts: opts(&[opt(1, &576u16.to_be_bytes()), magic()]),
            expect: |_, o| mru_check(o, 576),
            ..Row::default()
        },
        Row {
            name: "MRU 64 requested: Nak'd up to 128 (RFC 1661 §6.1), then accepted",
            lcp_opts: opts(&[opt(1, &64u16.to_be_bytes()), magic()]),
            expect: |_, o| {
                let nak = o
                    .peer
                    .seen
                    .iter()
                    .find(|(p, c, _)| *p == LCP && *c == CONF_NAK);
                match nak {
                    Some((_, _, d)) if *d == opt(1, &128u16.to_be_bytes()) => mru_check(o, 128),
                    other => Err(format!("want Nak MRU 128, got {other:?}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "our MRU 1400 Nak'd to 64: we ask 128 instead",
            tweak: |c| c.mru = 1400,
            lcp_answer: |req| {
                let mru = parse_opts(req).into_iter().find(|(t, _)| *t == 1);
                match mru {
                    Some((_, v)) if v == 1400u16.to_be_bytes() => {
                        Some((CONF_NAK, opt(1, &64u16.to_be_bytes())))
                    }
                    _ => Some((CONF_ACK, vec![])),
                }
            },
            expect: |_, o| {
                o.up_ok()?;
                match o.ppp.options().local_mru {
                    128 => Ok(()),
                    m => Err(format!("local MRU {m}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "peer magic 0: Nak'd with a non-zero magic (RFC 1661 §6.4)",
            lcp_opts: opt(5, &[0, 0, 0, 0]),
            expect: |_, o| {
                o.up_ok()?;
                let m = o.ppp.options().peer_magic;
                if m == 0 {
                    return Err("peer magic stayed 0".into());
                }
                Ok(())
            },
            ..Row::default()
        },
        Row {
            name: "ACCM Nak 0x000A0000 merged with ours 0x00002400 (RFC 1662 §7.1)",
            tweak: |c| c.accm = 0x0000_2400,
            lcp_answer: |req| {
                let accm = parse_opts(req).into_iter().find(|(t, _)| *t == 2);
                match accm {
                    Some((_, v)) if v == 0x0000_2400u32.to_be_bytes() => {
                        Some((CONF_NAK, opt(2, &0x000A_0000u32.to_be_bytes())))
                    }
                    _ => Some((CONF_ACK, vec![])),
                }
            },
            expect: |_, o| {
                o.up_ok()?;
                match o.ppp.options().rx_accm {
                    0x000A_2400 => Ok(()),
                    a => Err(format!("rx ACCM {a:#010x}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "Magic-Number rejected: we go on without one",
            lcp_answer: |req| {
                let m = parse_opts(req).into_iter().find(|(t, _)| *t == 5);
                match m {
                    Some((_, v)) => Some((CONF_REJ, opt(5, &v))),
                    None => Some((CONF_ACK, vec![])),
                }
            },
            expect: |_, o| {
                o.up_ok()?;
                match o.ppp.options().local_magic {
                    0 => Ok(()),
                    m => Err(format!("local magic {m:#x}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "renegotiates LCP while Opened (new Configure-Request id)",
            extra: vec![(
                When::IpcpOpen,
                LCP,
                pkt(CONF_REQ, 0x77, &opt(5, &[1, 2, 3, 4])),
            )],
            expect: |_, o| {
                // The link went through a second negotiation and IPv4 came back up.
                if o.ipcp_ups() != 2 {
                    return Err(format!("{} IpcpUp events, want 2", o.ipcp_ups()));
                }
                if let Some(d) = o.down() {
                    return Err(format!("went down: {d:?}"));
                }
                Ok(())
            },
            ..Row::default()
        },
        Row {
            name: "Protocol-Rejects IPCP: down at once",
            extra: vec![(
                When::LcpOpen,
                LCP,
                pkt(PROTO_REJ, 0x35, &[0x80, 0x21, 1, 1, 0, 4]),
            )],
            expect: |_, o| o.down_at(S(0), DownReason::Ipcp(IpcpFailure::ProtocolRejected)),
            ..Row::default()
        },
        Row {
            name: "LCP codes 12/13 discarded, code 14 Code-Rejected",
            extra: vec![
                (
                    When::IpcpOpen,
                    LCP,
                    pkt(12, 1, &[0x5E, 0xED, 0xBE, 0xEF, b'h', b'i']),
                ),
                (
                    When::IpcpOpen,
                    LCP,
                    pkt(13, 2, &[0x5E, 0xED, 0xBE, 0xEF, 0, 0, 0, 60]),
                ),
                (When::IpcpOpen, LCP, pkt(14, 3, &[])),
            ],
            expect: |_, o| {
                o.up_ok()?;
                let cr: Vec<u8> = o
                    .peer
                    .seen
                    .iter()
                    .filter(|(p, c, _)| *p == LCP && *c == CODE_REJ)
                    .map(|(_, _, d)| d[0])
                    .collect();
                if cr != [14] {
                    return Err(format!("Code-Rejects of codes {cr:?}"));
                }
                Ok(())
            },
            ..Row::default()
        },
        // ---- IPCP addressing (RFC 1332 §3.3, RFC 1877) ----
        Row {
            name: "peer asks 0.0.0.0 for itself: Nak'd with 10.64.64.64 (client) / assigned",
            ipcp_opts: Some(opt(3, &[0; 4])),
            expect: |side, o| {
                o.up_ok()?;
                let want = match side {
                    Side::Client => Ipv4Addr::new(10, 64, 64, 64),
                    Side::AccessServer => OUR_ASSIGN,
                };
                match o.ipcp_up() {
                    Some((_, _, p, _)) if p == want => Ok(()),
                    u => Err(format!("want peer {want}, got {u:?}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "peer asks 0.0.0.0, peer_address 192.0.2.1 configured",
            ipcp_opts: Some(opt(3, &[0; 4])),
            tweak: |c| c.peer_address = Some(Ipv4Addr::new(192, 0, 2, 1)),
            expect: |_, o| {
                o.up_ok()?;
                match o.ipcp_up() {
                    Some((_, _, p, _)) if p == Ipv4Addr::new(192, 0, 2, 1) => Ok(()),
                    u => Err(format!("{u:?}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "peer sends no IP-Address option: given the default locally",
            ipcp_opts: Some(Vec::new()),
            expect: |side, o| {
                o.up_ok()?;
                let want = match side {
                    Side::Client => Ipv4Addr::new(10, 64, 64, 64),
                    Side::AccessServer => OUR_ASSIGN,
                };
                match o.ipcp_up() {
                    Some((_, _, p, _)) if p == want => Ok(()),
                    u => Err(format!("{u:?}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "peer names a LAN address for itself: refused after negotiation",
            ipcp_opts: Some(opt(3, &[192, 168, 1, 20])),
            tweak: |c| c.accept_remote = true,
            expect: |_, o| {
                o.down_at(
                    S(0),
                    DownReason::Ipcp(IpcpFailure::BadAddress {
                        endpoint: Endpoint::Peer,
                        addr: Ipv4Addr::new(192, 168, 1, 20),
                        problem: AddressProblem::InRefusedNetwork(LAN),
                    }),
                )
            },
            ..Row::default()
        },
        Row {
            name: "peer names loopback 127.0.0.1 for itself: refused",
            ipcp_opts: Some(opt(3, &[127, 0, 0, 1])),
            tweak: |c| c.accept_remote = true,
            expect: |_, o| {
                o.down_at(
                    S(0),
                    DownReason::Ipcp(IpcpFailure::BadAddress {
                        endpoint: Endpoint::Peer,
                        addr: Ipv4Addr::new(127, 0, 0, 1),
                        problem: AddressProblem::Loopback,
                    }),
                )
            },
            ..Row::default()
        },
        Row {
            name: "Naks our IP-Address with multicast 224.0.0.5",
            ipcp_answer: Some(|req| nak_address(req, Ipv4Addr::new(224, 0, 0, 5))),
            tweak: |c| c.accept_local = true,
            expect: |_, o| {
                o.down_at(
                    S(0),
                    DownReason::Ipcp(IpcpFailure::BadAddress {
                        endpoint: Endpoint::Local,
                        addr: Ipv4Addr::new(224, 0, 0, 5),
                        problem: AddressProblem::Multicast,
                    }),
                )
            },
            ..Row::default()
        },
        Row {
            name: "Naks our IP-Address with a LAN host's address",
            ipcp_answer: Some(|req| nak_address(req, Ipv4Addr::new(192, 168, 1, 7))),
            tweak: |c| c.accept_local = true,
            expect: |_, o| {
                o.down_at(
                    S(0),
                    DownReason::Ipcp(IpcpFailure::BadAddress {
                        endpoint: Endpoint::Local,
                        addr: Ipv4Addr::new(192, 168, 1, 7),
                        problem: AddressProblem::InRefusedNetwork(LAN),
                    }),
                )
            },
            ..Row::default()
        },
        Row {
            name: "Naks our IP-Address with 0.0.0.0",
            ipcp_answer: Some(|req| nak_address(req, Ipv4Addr::UNSPECIFIED)),
            expect: |side, o| match side {
                Side::Client => o.down_at(S(0), DownReason::Ipcp(IpcpFailure::NoAddressOffered)),
                Side::AccessServer => o.down_at(
                    S(0),
                    DownReason::Ipcp(IpcpFailure::LocalAddressRefused {
                        ours: OUR_SERVER,
                        suggested: Ipv4Addr::UNSPECIFIED,
                    }),
                ),
            },
            ..Row::default()
        },
        Row {
            name: "Naks our fixed IP-Address with another (accept_local off)",
            ipcp_answer: Some(|req| nak_address(req, Ipv4Addr::new(10, 9, 9, 9))),
            tweak: |c| c.local_address = Ipv4Addr::new(10, 1, 1, 1),
            expect: |_, o| {
                o.down_at(
                    S(0),
                    DownReason::Ipcp(IpcpFailure::LocalAddressRefused {
                        ours: Ipv4Addr::new(10, 1, 1, 1),
                        suggested: Ipv4Addr::new(10, 9, 9, 9),
                    }),
                )
            },
            ..Row::default()
        },
        Row {
            name: "Naks our fixed IP-Address with another, accept_local on: taken",
            ipcp_answer: Some(|req| nak_address(req, Ipv4Addr::new(10, 9, 9, 9))),
            tweak: |c| {
                c.local_address = Ipv4Addr::new(10, 1, 1, 1);
                c.accept_local = true;
            },
            expect: |_, o| {
                o.up_ok()?;
                match o.ipcp_up() {
                    Some((_, l, _, _)) if l == Ipv4Addr::new(10, 9, 9, 9) => Ok(()),
                    u => Err(format!("{u:?}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "Rejects IP-Address (3)",
            ipcp_answer: Some(|req| reject_types(req, &[3])),
            expect: |side, o| match side {
                Side::Client => o.down_at(S(0), DownReason::Ipcp(IpcpFailure::AddressRejected)),
                // RFC 1332 §3.3: with an address of our own we simply stop sending the option.
                Side::AccessServer => o.up_ok(),
            },
            ..Row::default()
        },
        Row {
            name: "Rejects the DNS options: up without DNS",
            ipcp_answer: Some(|req| reject_types(req, &[129, 131])),
            expect: |side, o| {
                o.up_ok()?;
                match (side, o.ipcp_up()) {
                    (Side::Client, Some((_, l, _, dns))) if l == PEER_GIVES && dns.is_empty() => {
                        Ok(())
                    }
                    (Side::AccessServer, Some(_)) => Ok(()),
                    (_, u) => Err(format!("{u:?}")),
                }
            },
            ..Row::default()
        },
        Row {
            name: "IPCP Terminate-Request mid-negotiation: down at once",
            ipcp_answer: Some(|_| None),
            extra: vec![(When::LcpOpen, IPCP, pkt(TERM_REQ, 9, b"no address"))],
            expect: |_, o| {
                o.down_at(
                    S(0),
                    DownReason::Ipcp(IpcpFailure::PeerTerminated("no address".into())),
                )
            },
            ..Row::default()
        },
        Row {
            name: "silent mid-IPCP: gives up after Max-Configure x restart (30 s)",
            ipcp_answer: Some(|_| None),
            passive: true,
            expect: |_, o| o.down_at(S(30), DownReason::Ipcp(IpcpFailure::NotConverged)),
            ..Row::default()
        },
    ]
}

pub(crate) fn mru_check(o: &Outcome, mru: u16) -> Result<(), String> {
    o.up_ok()?;
    if o.ppp.options().peer_mru != mru {
        return Err(format!("peer MRU {}", o.ppp.options().peer_mru));
    }
    Ok(())
}

/// Answers our IPCP request with a Nak of IP-Address to `a` (everything else acked).
pub(crate) fn nak_address(req: &[u8], a: Ipv4Addr) -> Option<(u8, Vec<u8>)> {
    let ours = parse_opts(req).into_iter().find(|(t, _)| *t == 3);
    match ours {
        Some((_, v)) if v != ip(a) => Some((CONF_NAK, opt(3, &ip(a)))),
        _ => isp_ipcp(req),
    }
}

/// Rejects the given option types if present, else answers like an ISP.
pub(crate) fn reject_types(req: &[u8], types: &[u8]) -> Option<(u8, Vec<u8>)> {
    let rej: Vec<u8> = parse_opts(req)
        .into_iter()
        .filter(|(t, _)| types.contains(t))
        .flat_map(|(t, v)| opt(t, &v))
        .collect();
    if rej.is_empty() {
        isp_ipcp(req)
    } else {
        Some((CONF_REJ, rej))
    }
}
