//! Fuzz a whole PPP link: an opened client or access server fed raw line bytes and correctly
//! framed packets of every protocol (so the parsers behind the FCS are reached), plus timer ticks.
//! Properties: never a panic; the phases come in order (no authentication before LCP is up, no
//! IPCP before authentication succeeded, no datagram delivered or accepted for sending before
//! IPCP is up); an access server asking PAP authenticates the peer only if the input carried
//! the password; it gives the peer only the address it assigns; every frame it sends is a
//! well-formed HDLC frame with a good FCS.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use masqdial_ppp::hdlc::{Decoder, Encoder};
use masqdial_ppp::{AuthProtocol, Ppp, PppConfig, PppEvent};

const PASSWORD: &str = "pw-secret-9";
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Phases seen so far, checked as events arrive.
#[derive(Default)]
struct Seen {
    lcp: bool,
    auth: bool,
    ipcp: bool,
}

const PROTOCOLS: [u16; 8] = [
    0xC021, 0xC023, 0xC223, 0x8021, 0x0021, 0x8057, 0x80FD, 0x0003,
];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The byte stream with HDLC control escapes removed (RFC 1662 §4.2: any octet may be escaped).
fn unescape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut esc = false;
    for &b in line {
        if esc {
            out.push(b ^ 0x20);
            esc = false;
        } else if b == 0x7D {
            esc = true;
        } else {
            out.push(b);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let server = sel & 1 != 0;
    let pap_server = server && sel & 2 == 0;
    let mut cfg = if server {
        PppConfig::access_server(
            vec![("u".into(), PASSWORD.into())],
            Some(if sel & 2 != 0 {
                AuthProtocol::Chap
            } else {
                AuthProtocol::Pap
            }),
            Ipv4Addr::new(10, 0, 0, 1),
            PEER,
            vec![Ipv4Addr::new(10, 0, 0, 53)],
        )
    } else {
        PppConfig::client("u", PASSWORD)
    };
    let fcs32 = cfg.fcs32;
    cfg.seed = u64::from(sel);
    let mut p = Ppp::new(cfg);
    let enc = Encoder::new(0xFFFF_FFFF, sel & 4 != 0);
    let mut now = Instant::now();
    p.open(now);
    let mut seen = Seen::default();
    let mut rx = Decoder::new(1 << 16);
    rx.set_accm(0);
    rx.set_fcs32(fcs32);
    // What reached the line so far: raw records form one byte stream (a frame may span them);
    // framed records carry their packet literally.
    let mut raw_stream = Vec::new();
    let mut framed_password = false;
    // Records separated by 0xAA: the first byte picks raw bytes or a framed protocol.
    for rec in rest.split(|&b| b == 0xAA) {
        let Some((&kind, body)) = rec.split_first() else {
            continue;
        };
        if kind & 0x80 != 0 {
            raw_stream.extend_from_slice(body);
            p.handle_input(now, body);
        } else {
            framed_password |= contains(body, PASSWORD.as_bytes());
            let proto = PROTOCOLS[usize::from(kind & 7)];
            let mut line = Vec::new();
            enc.encode(
                &[0xFF, 0x03, (proto >> 8) as u8, proto as u8],
                body,
                &mut line,
            );
            p.handle_input(now, &line);
        }
        while let Some(tx) = p.poll_transmit() {
            let mut c = tx.as_slice();
            while !c.is_empty() {
                let (n, _) = rx.decode(c);
                c = &c[n..];
            }
        }
        while let Some(ev) = p.poll_event() {
            match ev {
                PppEvent::LcpUp { .. } => {
                    // A new LCP negotiation: authentication and IPCP start again.
                    seen = Seen {
                        lcp: true,
                        ..Seen::default()
                    };
                }
                PppEvent::AuthOk { protocol, .. } => {
                    assert!(seen.lcp, "authenticated before LCP was up");
                    if pap_server {
                        assert_eq!(protocol, Some(AuthProtocol::Pap));
                        assert!(
                            framed_password
                                || contains(&raw_stream, PASSWORD.as_bytes())
                                || contains(&unescape(&raw_stream), PASSWORD.as_bytes()),
                            "PAP peer authenticated without the password"
                        );
                    }
                    seen.auth = true;
                }
                PppEvent::IpcpUp { peer, .. } => {
                    assert!(seen.auth, "IPCP up before authentication");
                    if server {
                        assert_eq!(peer, PEER, "the peer got an address we did not assign");
                    }
                    seen.ipcp = true;
                }
                PppEvent::Ipv4(_) => assert!(seen.ipcp, "a datagram before IPCP was up"),
                PppEvent::Down { .. } => {
                    seen = Seen::default();
                }
                PppEvent::AuthFailed { .. } => {}
            }
        }
        if p.send_ipv4(body).is_ok() {
            assert!(seen.ipcp, "a datagram accepted for sending before IPCP was up");
        }
        if kind & 0x40 != 0 {
            now += Duration::from_secs(1);
            p.handle_timeout(now);
        }
    }
    let _ = p.stats();
    let _ = p.options();
    // Everything we sent was framed correctly (with the FCS we negotiated: FCS-16 here).
    let st = rx.stats();
    assert_eq!(st.fcs_errors + st.runts + st.aborts + st.too_long, 0, "bad frame sent: {st:?}");
});
