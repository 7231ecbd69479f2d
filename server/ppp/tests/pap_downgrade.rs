//! CHAP preferred, and a PAP downgrade refused unless configured (issue 10): the client with
//! both CHAP-MD5 and PAP allowed answers a peer asking PAP (0xC023) with a Configure-Nak
//! proposing CHAP-MD5 (pppd `refuse-pap`). A peer that switches comes up with CHAP-MD5; one that
//! insists is refused at Max-Failure (RFC 1661 §4.6) with [`DownReason::PapRefused`], and the
//! password never leaves; with `pap_fallback` it gets PAP and the negotiated options say so.
//! Every frame the client emits is decoded and checked.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_ppp::hdlc::{Decoder, Encoder};
use masqdial_ppp::options::{Ncp, Refusal};
use masqdial_ppp::{AuthProtocol, DownReason, PapRefusal, Ppp, PppConfig, PppEvent};

const ISP: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 2);
const SECRET: &str = "wonderland";

const LCP: u16 = 0xC021;
const PAP: u16 = 0xC023;
const CHAP: u16 = 0xC223;
const CONF_REQ: u8 = 1;
const CONF_ACK: u8 = 2;
const CONF_NAK: u8 = 3;
const CONF_REJ: u8 = 4;
const TERM_REQ: u8 = 5;

/// Auth-Protocol PAP as a peer asks it (RFC 1661 §6.2: type 3, length 4, 0xC023).
const OPT_PAP: [u8; 4] = [3, 4, 0xC0, 0x23];
/// Auth-Protocol CHAP with MD5 (RFC 1994 §3: type 3, length 5, 0xC223, algorithm 5).
const OPT_CHAP_MD5: [u8; 5] = [3, 5, 0xC2, 0x23, 5];

fn client(fallback: bool) -> PppConfig {
    let mut c = PppConfig::client("alice", SECRET);
    c.seed = 1;
    c.pap_fallback = fallback;
    c
}

/// Our access server demanding `require` in that order; `insist`: it asks PAP again after a
/// Nak instead of taking the suggestion.
fn isp(require: &[AuthProtocol], insist: bool) -> PppConfig {
    let mut s = PppConfig::access_server(
        vec![("alice".into(), SECRET.into())],
        None,
        ISP,
        PEER,
        vec![],
    );
    s.require_auth = require.to_vec();
    s.insist_auth = insist;
    s.seed = 2;
    s
}

/// Splits line bytes into (protocol, packet) pairs (address/control and PFC undone).
fn frames(line: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut d = Decoder::new(4000);
    let mut rest = line;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (used, ready) = d.decode(rest);
        rest = &rest[used..];
        if ready {
            let f = d.take_frame();
            let body = f.strip_prefix(&[0xFF, 0x03]).unwrap_or(&f);
            match body {
                [p, r @ ..] if p & 1 == 1 => out.push((u16::from(*p), r.to_vec())),
                [a, b, r @ ..] => out.push((u16::from_be_bytes([*a, *b]), r.to_vec())),
                _ => {}
            }
        }
        if used == 0 {
            break;
        }
    }
    out
}

struct Wire {
    c: Ppp,
    s: Ppp,
    start: Instant,
    now: Instant,
    /// Raw line bytes the client sent.
    c_line: Vec<u8>,
    ce: Vec<(Duration, PppEvent)>,
}

impl Wire {
    fn new(c: PppConfig, s: PppConfig) -> Self {
        let now = Instant::now();
        let mut w = Self {
            c: Ppp::new(c),
            s: Ppp::new(s),
            start: now,
            now,
            c_line: Vec::new(),
            ce: Vec::new(),
        };
        w.c.open(now);
        w.s.open(now);
        w
    }

    /// Moves bytes on a zero-delay line and fires timers until `limit` (simulated) or the client
    /// is Down.
    fn run(&mut self, limit: Duration) {
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(b) = self.c.poll_transmit() {
                moved = true;
                self.c_line.extend_from_slice(&b);
                self.s.handle_input(self.now, &b);
            }
            while let Some(b) = self.s.poll_transmit() {
                moved = true;
                self.c.handle_input(self.now, &b);
            }
            while let Some(e) = self.c.poll_event() {
                self.ce.push((self.now - self.start, e));
            }
            while self.s.poll_event().is_some() {}
            if self.down().is_some() || self.ip_up() {
                // Let the last packets (Terminate-Ack, Ack) cross, then stop.
                if !moved {
                    return;
                }
                continue;
            }
            if moved {
                continue;
            }
            let next = [self.c.poll_timeout(), self.s.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t - self.start <= limit => {
                    self.now = t.max(self.now);
                    self.c.handle_timeout(self.now);
                    self.s.handle_timeout(self.now);
                }
                _ => return,
            }
        }
        panic!("the wire never went quiet");
    }

    fn down(&self) -> Option<(Duration, DownReason)> {
        self.ce.iter().find_map(|(t, e)| match e {
            PppEvent::Down { reason } => Some((*t, reason.clone())),
            _ => None,
        })
    }

    fn ip_up(&self) -> bool {
        self.ce
            .iter()
            .any(|(_, e)| matches!(e, PppEvent::IpcpUp { .. }))
    }

    /// Every packet the client sent, decoded.
    fn sent(&self) -> Vec<(u16, Vec<u8>)> {
        frames(&self.c_line)
    }

    /// The client's LCP packets with `code`.
    fn lcp_sent(&self, code: u8) -> Vec<Vec<u8>> {
        self.sent()
            .into_iter()
            .filter(|(p, pkt)| *p == LCP && pkt.first() == Some(&code))
            .map(|(_, pkt)| pkt)
            .collect()
    }
}

/// No frame the client sent is PAP, and the secret is in none of its bytes, framed or not.
fn assert_secret_never_sent(w: &Wire) {
    let sent = w.sent();
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|(p, _)| *p != PAP),
        "a PAP packet left the client: {sent:02x?}"
    );
    let needle = SECRET.as_bytes();
    assert!(!w.c_line.windows(needle.len()).any(|x| x == needle));
    assert!(sent
        .iter()
        .all(|(_, pkt)| !pkt.windows(needle.len()).any(|x| x == needle)));
}

fn lcp_packet(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
    let mut p = vec![code, id];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(data);
    p
}

fn lcp_frame(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(0xFFFF_FFFF, false).encode(
        &[0xFF, 0x03, 0xC0, 0x21],
        &lcp_packet(code, id, data),
        &mut out,
    );
    out
}

/// Feeds one scripted frame to the client and returns the packets it answers with.
fn feed(c: &mut Ppp, now: Instant, frame: &[u8]) -> Vec<(u16, Vec<u8>)> {
    c.handle_input(now, frame);
    let mut line = Vec::new();
    while let Some(b) = c.poll_transmit() {
        line.extend_from_slice(&b);
    }
    frames(&line)
}

#[test]
fn a_pap_request_gets_a_nak_proposing_chap_md5() {
    let now = Instant::now();
    let mut c = Ppp::new(client(false));
    c.open(now);
    while c.poll_transmit().is_some() {}
    let mut req = OPT_PAP.to_vec();
    req.extend_from_slice(&[5, 6, 0x11, 0x22, 0x33, 0x44]);
    let out = feed(&mut c, now, &lcp_frame(CONF_REQ, 0x21, &req));
    // Code 3 (Configure-Nak), the request's Identifier, length 9, Auth-Protocol CHAP-MD5.
    assert_eq!(
        out,
        vec![(LCP, vec![CONF_NAK, 0x21, 0, 9, 3, 5, 0xC2, 0x23, 5])]
    );
    let o = c.options();
    let nak = Refusal {
        option: 3,
        by_peer: false,
        reject: false,
        data: vec![0xC2, 0x23, 5],
    };
    assert_eq!(o.lcp_refused, vec![nak.clone()]);
    assert_eq!(
        nak.describe(Ncp::Lcp),
        "we Nak'd the peer's Auth-Protocol (3): CHAP-MD5"
    );
}

#[test]
fn an_isp_that_switches_to_chap_comes_up_with_chap() {
    // A typical access server: PAP first, CHAP-MD5 when the caller Naks PAP.
    let mut w = Wire::new(
        client(false),
        isp(&[AuthProtocol::Pap, AuthProtocol::Chap], false),
    );
    w.run(Duration::from_secs(60));
    assert!(w.ip_up(), "{:?}", w.ce);
    assert!(w.ce.iter().any(|(_, e)| *e
        == PppEvent::AuthOk {
            protocol: Some(AuthProtocol::Chap),
            peer_name: Some("masqdial-isp".into()),
        }));
    let o = w.c.options();
    assert_eq!(o.auth_by_peer, Some(AuthProtocol::Chap));
    assert!(!o.pap_fallback);
    // Exactly one Nak, proposing CHAP-MD5, and no Reject.
    let naks = w.lcp_sent(CONF_NAK);
    assert_eq!(naks.len(), 1, "{naks:02x?}");
    assert_eq!(naks[0][4..], OPT_CHAP_MD5);
    assert!(w.lcp_sent(CONF_REJ).is_empty());
    assert!(w.sent().iter().any(|(p, _)| *p == CHAP));
    assert_secret_never_sent(&w);
}

#[test]
fn an_isp_insisting_on_pap_is_refused_and_the_secret_never_leaves() {
    let mut w = Wire::new(client(false), isp(&[AuthProtocol::Pap], true));
    w.run(Duration::from_secs(60));
    assert!(!w.ip_up());
    // Max-Failure (5) Naks, then the option is Rejected and the client ends the link at once.
    assert_eq!(
        w.down(),
        Some((
            Duration::ZERO,
            DownReason::PapRefused {
                naks: 5,
                peer: PapRefusal::Insisted
            }
        ))
    );
    let naks = w.lcp_sent(CONF_NAK);
    assert_eq!(naks.len(), 5);
    assert!(naks.iter().all(|n| n[4..] == OPT_CHAP_MD5), "{naks:02x?}");
    let rejects = w.lcp_sent(CONF_REJ);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0][4..], OPT_PAP);
    assert_eq!(w.lcp_sent(TERM_REQ).len(), 1);
    assert!(!w
        .ce
        .iter()
        .any(|(_, e)| matches!(e, PppEvent::LcpUp { .. } | PppEvent::AuthOk { .. })));
    assert_secret_never_sent(&w);
    let shown = w.down().map(|(_, r)| r.to_string()).unwrap_or_default();
    assert_eq!(
        shown,
        "peer insists on PAP, which sends the password in clear: we proposed CHAP-MD5 5 times \
         and it kept asking PAP; PAP fallback is not allowed"
    );
}

#[test]
fn an_isp_that_hangs_up_after_our_nak_is_named() {
    // PAP only, and it gives up (Terminate-Request) when Nak'd towards CHAP-MD5.
    let mut w = Wire::new(client(false), isp(&[AuthProtocol::Pap], false));
    w.run(Duration::from_secs(60));
    assert_eq!(
        w.down().map(|(_, r)| r),
        Some(DownReason::PapRefused {
            naks: 1,
            peer: PapRefusal::Terminated
        })
    );
    assert_secret_never_sent(&w);
}

#[test]
fn a_pppd_require_pap_peer_dropping_auth_then_terminating_is_named() {
    // pppd with `require-pap` answers a Nak to CHAP by asking no authentication, opens LCP,
    // then terminates with "peer refused to authenticate" (auth.c). Scripted here.
    let now = Instant::now();
    let mut c = Ppp::new(client(false));
    c.open(now);
    let mut ours = Vec::new();
    while let Some(b) = c.poll_transmit() {
        ours.extend_from_slice(&b);
    }
    let our_req = frames(&ours)
        .into_iter()
        .find(|(p, pkt)| *p == LCP && pkt.first() == Some(&CONF_REQ))
        .map(|(_, pkt)| pkt)
        .unwrap_or_default();
    assert!(our_req.len() >= 4);
    let magic = [5, 6, 0x11, 0x22, 0x33, 0x44];
    let mut req = OPT_PAP.to_vec();
    req.extend_from_slice(&magic);
    let out = feed(&mut c, now, &lcp_frame(CONF_REQ, 1, &req));
    assert!(out.iter().any(|(_, p)| p[0] == CONF_NAK));
    // Our request acked, its request without Auth-Protocol acked: LCP opens unauthenticated.
    let _ = feed(&mut c, now, &lcp_frame(CONF_ACK, our_req[1], &our_req[4..]));
    let out = feed(&mut c, now, &lcp_frame(CONF_REQ, 2, &magic));
    assert!(out.iter().any(|(p, pkt)| *p == LCP && pkt[0] == CONF_ACK));
    let out = feed(
        &mut c,
        now,
        &lcp_frame(TERM_REQ, 3, b"peer refused to authenticate"),
    );
    assert!(out.iter().any(|(p, pkt)| *p == LCP && pkt[0] == 6));
    // Stopping: the link is Down once the restart timer runs out (RFC 1661 §4.2, TO-).
    let mut down = None;
    for _ in 0..10 {
        while let Some(e) = c.poll_event() {
            if let PppEvent::Down { reason } = e {
                down = Some(reason);
            }
        }
        match c.poll_timeout() {
            Some(t) if down.is_none() => c.handle_timeout(t),
            _ => break,
        }
    }
    assert_eq!(
        down,
        Some(DownReason::PapRefused {
            naks: 1,
            peer: PapRefusal::Terminated
        })
    );
}

#[test]
fn with_fallback_allowed_pap_is_used_and_the_options_say_so() {
    let mut w = Wire::new(client(true), isp(&[AuthProtocol::Pap], true));
    w.run(Duration::from_secs(60));
    assert!(w.ip_up(), "{:?}", w.ce);
    // CHAP-MD5 was proposed once; the peer asked PAP again and got it.
    let naks = w.lcp_sent(CONF_NAK);
    assert_eq!(naks.len(), 1);
    assert_eq!(naks[0][4..], OPT_CHAP_MD5);
    assert!(w.ce.iter().any(|(_, e)| *e
        == PppEvent::LcpUp {
            peer_mru: 1500,
            auth: Some(AuthProtocol::Pap)
        }));
    let o = w.c.options();
    assert_eq!(o.auth_by_peer, Some(AuthProtocol::Pap));
    assert!(o.pap_fallback);
    assert!(o.lcp_refused.contains(&Refusal {
        option: 3,
        by_peer: false,
        reject: false,
        data: vec![0xC2, 0x23, 5],
    }));
    assert!(w.sent().iter().any(|(p, _)| *p == PAP));
}

#[test]
fn explicit_pap_takes_pap_at_once() {
    let mut c = client(false);
    c.accept_auth = vec![AuthProtocol::Pap];
    let mut w = Wire::new(c, isp(&[AuthProtocol::Pap], true));
    w.run(Duration::from_secs(60));
    assert!(w.ip_up(), "{:?}", w.ce);
    assert!(w.lcp_sent(CONF_NAK).is_empty());
    let o = w.c.options();
    assert_eq!(o.auth_by_peer, Some(AuthProtocol::Pap));
    assert!(!o.pap_fallback);
}
