//! The scripted peer of the hostile-peer matrix: its own RFC 1662 framing, packet and option
//! helpers (RFC 1661 §5, §6), the row description and the peer that answers by it.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_ppp::ipcp::Ipv4Network;
use masqdial_ppp::{PppConfig, Side};

use crate::Outcome;

// ---------------------------------------------------------------------------------------------
// Independent RFC 1662 framing.

/// FCS-16 computed bit by bit (RFC 1662 §C.1 polynomial 0x8408), not with our table.
pub(crate) fn fcs16(data: &[u8]) -> u16 {
    let mut fcs: u16 = 0xFFFF;
    for &b in data {
        fcs ^= u16::from(b);
        for _ in 0..8 {
            fcs = if fcs & 1 != 0 {
                (fcs >> 1) ^ 0x8408
            } else {
                fcs >> 1
            };
        }
    }
    fcs
}

/// Frames `ff 03 proto info` with FCS, escaping every control character, 0x7D and 0x7E.
pub(crate) fn frame(proto: u16, info: &[u8]) -> Vec<u8> {
    let mut body = vec![0xFF, 0x03];
    body.extend_from_slice(&proto.to_be_bytes());
    body.extend_from_slice(info);
    let fcs = !fcs16(&body);
    body.extend_from_slice(&fcs.to_le_bytes());
    let mut out = vec![0x7E];
    for b in body {
        if b < 0x20 || b == 0x7D || b == 0x7E {
            out.extend_from_slice(&[0x7D, b ^ 0x20]);
        } else {
            out.push(b);
        }
    }
    out.push(0x7E);
    out
}

/// Splits a byte stream into good frames: (protocol, information). Handles ACFC/PFC.
#[derive(Default)]
pub(crate) struct Deframer {
    pub(crate) cur: Vec<u8>,
    pub(crate) esc: bool,
}

impl Deframer {
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                0x7E => {
                    let f = std::mem::take(&mut self.cur);
                    self.esc = false;
                    if f.len() >= 4 && fcs16(&f) == 0xF0B8 {
                        let f = &f[..f.len() - 2];
                        let f = f.strip_prefix(&[0xFF, 0x03]).unwrap_or(f);
                        let (p, rest) = if f[0] & 1 == 1 {
                            (u16::from(f[0]), &f[1..])
                        } else {
                            (u16::from_be_bytes([f[0], f[1]]), &f[2..])
                        };
                        out.push((p, rest.to_vec()));
                    }
                }
                0x7D => self.esc = true,
                _ if self.esc => {
                    self.esc = false;
                    self.cur.push(b ^ 0x20);
                }
                _ => self.cur.push(b),
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Packets and options (RFC 1661 §5, §6).

pub(crate) const LCP: u16 = 0xC021;
pub(crate) const IPCP: u16 = 0x8021;
pub(crate) const IPV4: u16 = 0x0021;
pub(crate) const CCP: u16 = 0x80FD;
pub(crate) const IPV6CP: u16 = 0x8057;
pub(crate) const CONF_REQ: u8 = 1;
pub(crate) const CONF_ACK: u8 = 2;
pub(crate) const CONF_NAK: u8 = 3;
pub(crate) const CONF_REJ: u8 = 4;
pub(crate) const TERM_REQ: u8 = 5;
pub(crate) const TERM_ACK: u8 = 6;
pub(crate) const CODE_REJ: u8 = 7;
pub(crate) const PROTO_REJ: u8 = 8;
pub(crate) const ECHO_REQ: u8 = 9;
pub(crate) const ECHO_REP: u8 = 10;

pub(crate) fn pkt(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![code, id];
    v.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

pub(crate) fn opt(ty: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, (data.len() + 2) as u8];
    v.extend_from_slice(data);
    v
}

pub(crate) fn opts(list: &[Vec<u8>]) -> Vec<u8> {
    list.concat()
}

pub(crate) fn parse_opts(mut d: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut v = Vec::new();
    while d.len() >= 2 && usize::from(d[1]) >= 2 && usize::from(d[1]) <= d.len() {
        v.push((d[0], d[2..usize::from(d[1])].to_vec()));
        d = &d[usize::from(d[1])..];
    }
    v
}

pub(crate) fn ip(a: Ipv4Addr) -> [u8; 4] {
    a.octets()
}

/// RFC 1661 §5.3/5.4: a Nak replaces values (or prompts new options), a Reject removes options.
pub(crate) fn adopt(req: &[u8], code: u8, reply: &[u8]) -> Vec<u8> {
    let mut cur = parse_opts(req);
    for (ty, val) in parse_opts(reply) {
        if code == CONF_REJ {
            cur.retain(|(t, _)| *t != ty);
        } else if let Some(o) = cur.iter_mut().find(|(t, _)| *t == ty) {
            o.1 = val;
        } else {
            cur.push((ty, val));
        }
    }
    cur.iter().flat_map(|(t, v)| opt(*t, v)).collect()
}

// ---------------------------------------------------------------------------------------------
// The scripted peer.

/// How the peer answers one of our Configure-Requests: `None` = silence.
pub(crate) type Answer = fn(&[u8]) -> Option<(u8, Vec<u8>)>;

pub(crate) fn ack_all(_: &[u8]) -> Option<(u8, Vec<u8>)> {
    Some((CONF_ACK, Vec::new()))
}

/// RFC 1332 §3.3 as an access server does it: 0.0.0.0 gets a Nak with an address, DNS 0.0.0.0
/// a Nak with servers (RFC 1877 §1.1); everything else is acked.
pub(crate) fn isp_ipcp(req: &[u8]) -> Option<(u8, Vec<u8>)> {
    let mut nak = Vec::new();
    for (ty, v) in parse_opts(req) {
        match (ty, v.as_slice()) {
            (3, [0, 0, 0, 0]) => nak.extend(opt(3, &ip(PEER_GIVES))),
            (129, [0, 0, 0, 0]) => nak.extend(opt(129, &ip(DNS1))),
            (131, [0, 0, 0, 0]) => nak.extend(opt(131, &ip(DNS2))),
            _ => {}
        }
    }
    Some(if nak.is_empty() {
        (CONF_ACK, Vec::new())
    } else {
        (CONF_NAK, nak)
    })
}

/// Address the scripted peer assigns us.
pub(crate) const PEER_GIVES: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// Address the scripted peer uses itself when it names one.
pub(crate) const PEER_OWN: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub(crate) const DNS1: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
pub(crate) const DNS2: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 4);
/// Our access-server role's own and assigned addresses.
pub(crate) const OUR_SERVER: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);
pub(crate) const OUR_ASSIGN: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 2);
/// A LAN network of the server (refused for any negotiated address).
pub(crate) const LAN: Ipv4Network = Ipv4Network::new(Ipv4Addr::new(192, 168, 1, 0), 24);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Echo {
    Reply,
    CodeReject,
    ProtocolRejectLcp,
}

/// When the peer sends an extra packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum When {
    /// As soon as the peer's LCP is open.
    LcpOpen,
    /// As soon as the peer's IPCP is open.
    IpcpOpen,
}

#[derive(Clone)]
pub(crate) struct Row {
    pub(crate) name: &'static str,
    /// Never sends the first Configure-Request of a layer; answers only.
    pub(crate) passive: bool,
    /// Its LCP request reaches us before ours reaches it.
    pub(crate) early: bool,
    /// Sends every Configure-Request twice with the same Identifier.
    pub(crate) dup: bool,
    /// LCP option types whose Nak it ignores: it asks the same value again (insists).
    pub(crate) insist: &'static [u8],
    pub(crate) lcp_opts: Vec<u8>,
    /// Its IPCP request; `None` = the role's default (client asks 0.0.0.0 + nothing else; access
    /// server names its own address).
    pub(crate) ipcp_opts: Option<Vec<u8>>,
    pub(crate) lcp_answer: Answer,
    /// `None` = the role's default (an ISP Naks with addresses; a client acks).
    pub(crate) ipcp_answer: Option<Answer>,
    pub(crate) echo: Echo,
    pub(crate) extra: Vec<(When, u16, Vec<u8>)>,
    /// Adjusts our configuration.
    pub(crate) tweak: fn(&mut PppConfig),
    /// Checks the outcome for our role; Err explains.
    pub(crate) expect: fn(Side, &Outcome) -> Result<(), String>,
}

impl Default for Row {
    fn default() -> Self {
        Self {
            name: "",
            passive: false,
            early: false,
            dup: false,
            insist: &[],
            lcp_opts: opts(&[opt(5, &[0x5E, 0xED, 0xBE, 0xEF])]),
            ipcp_opts: None,
            lcp_answer: ack_all,
            ipcp_answer: None,
            echo: Echo::Reply,
            extra: Vec::new(),
            tweak: |_| {},
            expect: |_, o| o.up_ok(),
        }
    }
}

pub(crate) struct Peer {
    pub(crate) row: Row,
    pub(crate) side: Side,
    pub(crate) deframer: Deframer,
    /// Per layer (0 = LCP, 1 = IPCP): its current request, id, acked by us, ours acked by it.
    pub(crate) req: [Vec<u8>; 2],
    pub(crate) id: [u8; 2],
    pub(crate) acked_by_us: [bool; 2],
    pub(crate) acked_ours: [bool; 2],
    pub(crate) sent_first: [bool; 2],
    pub(crate) retry_at: [Option<Instant>; 2],
    pub(crate) retries: [u32; 2],
    pub(crate) extra_done: [bool; 2],
    pub(crate) out: VecDeque<Vec<u8>>,
    /// Every packet we sent it: (protocol, code).
    pub(crate) seen: Vec<(u16, u8, Vec<u8>)>,
}

impl Peer {
    pub(crate) fn new(row: Row, side: Side) -> Self {
        // The peer plays the other role: against our client it is the ISP, and vice versa.
        let ipcp = row.ipcp_opts.clone().unwrap_or_else(|| match side {
            Side::Client => opt(3, &ip(PEER_OWN)),
            Side::AccessServer => opt(3, &[0, 0, 0, 0]),
        });
        Self {
            req: [row.lcp_opts.clone(), ipcp],
            row,
            side,
            deframer: Deframer::default(),
            id: [0x40, 0x80],
            acked_by_us: [false; 2],
            acked_ours: [false; 2],
            sent_first: [false; 2],
            retry_at: [None; 2],
            retries: [0; 2],
            extra_done: [false; 2],
            out: VecDeque::new(),
            seen: Vec::new(),
        }
    }

    pub(crate) fn proto(layer: usize) -> u16 {
        if layer == 0 {
            LCP
        } else {
            IPCP
        }
    }

    pub(crate) fn open(&self, layer: usize) -> bool {
        self.acked_by_us[layer] && self.acked_ours[layer]
    }

    pub(crate) fn send(&mut self, proto: u16, p: Vec<u8>) {
        self.out.push_back(frame(proto, &p));
    }

    pub(crate) fn send_req(&mut self, layer: usize, now: Instant) {
        self.sent_first[layer] = true;
        let p = pkt(CONF_REQ, self.id[layer], &self.req[layer].clone());
        let copies = if self.row.dup { 2 } else { 1 };
        for _ in 0..copies {
            self.send(Self::proto(layer), p.clone());
        }
        // RFC 1661 §4.6: restart timer 3 s, Max-Configure 10.
        self.retries[layer] += 1;
        self.retry_at[layer] = (self.retries[layer] < 10).then(|| now + Duration::from_secs(3));
    }

    pub(crate) fn start(&mut self, now: Instant) {
        if !self.row.passive {
            self.send_req(0, now);
        }
    }

    pub(crate) fn timers(&mut self, now: Instant) {
        for layer in 0..2 {
            if self.retry_at[layer].is_some_and(|t| t <= now) && !self.acked_ours[layer] {
                self.send_req(layer, now);
            }
        }
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        (0..2)
            .filter(|&l| !self.acked_ours[l])
            .filter_map(|l| self.retry_at[l])
            .min()
    }

    pub(crate) fn input(&mut self, now: Instant, bytes: &[u8]) {
        for (proto, info) in self.deframer.feed(bytes) {
            if info.len() < 4 {
                continue;
            }
            let (code, id) = (info[0], info[1]);
            let len = usize::from(u16::from_be_bytes([info[2], info[3]])).min(info.len());
            let data = info[4..len.max(4)].to_vec();
            self.seen.push((proto, code, data.clone()));
            let layer = match proto {
                LCP => 0,
                IPCP => 1,
                _ => continue,
            };
            if layer == 1 && !self.open(0) {
                continue;
            }
            match code {
                CONF_REQ => {
                    if layer == 0 && self.open(0) {
                        // RFC 1661 state table: RCR in Opened = tld, scr: start over, IPCP too.
                        self.acked_by_us = [false; 2];
                        self.acked_ours = [false; 2];
                        self.sent_first = [false; 2];
                        self.retries = [0; 2];
                        self.id = [self.id[0].wrapping_add(1), self.id[1].wrapping_add(1)];
                    }
                    let answer = if layer == 0 {
                        self.row.lcp_answer
                    } else {
                        self.row.ipcp_answer.unwrap_or(match self.side {
                            Side::Client => isp_ipcp,
                            Side::AccessServer => ack_all,
                        })
                    };
                    let Some((rc, rdata)) = answer(&data) else {
                        continue;
                    };
                    let rdata = if rc == CONF_ACK { data.clone() } else { rdata };
                    if rc == CONF_ACK {
                        self.acked_by_us[layer] = true;
                    }
                    self.send(proto, pkt(rc, id, &rdata));
                    if !self.sent_first[layer] {
                        self.send_req(layer, now);
                    }
                }
                CONF_ACK if id == self.id[layer] && data == self.req[layer] => {
                    self.acked_ours[layer] = true;
                    self.retry_at[layer] = None;
                }
                CONF_NAK | CONF_REJ if id == self.id[layer] => {
                    let data: Vec<u8> = if code == CONF_NAK && layer == 0 {
                        parse_opts(&data)
                            .into_iter()
                            .filter(|(t, _)| !self.row.insist.contains(t))
                            .flat_map(|(t, v)| opt(t, &v))
                            .collect()
                    } else {
                        data
                    };
                    self.req[layer] = adopt(&self.req[layer], code, &data);
                    self.id[layer] = self.id[layer].wrapping_add(1);
                    self.send_req(layer, now);
                }
                TERM_REQ => self.send(proto, pkt(TERM_ACK, id, &[])),
                ECHO_REQ if layer == 0 => match self.row.echo {
                    Echo::Reply => {
                        let magic = parse_opts(&self.req[0])
                            .into_iter()
                            .find(|(t, _)| *t == 5)
                            .map(|(_, v)| v)
                            .unwrap_or_else(|| vec![0; 4]);
                        let mut d = magic;
                        d.extend_from_slice(data.get(4..).unwrap_or(&[]));
                        self.send(LCP, pkt(ECHO_REP, id, &d));
                    }
                    Echo::CodeReject => self.send(LCP, pkt(CODE_REJ, 0x33, &info[..len])),
                    Echo::ProtocolRejectLcp => {
                        let mut d = LCP.to_be_bytes().to_vec();
                        d.extend_from_slice(&info[..len]);
                        self.send(LCP, pkt(PROTO_REJ, 0x34, &d));
                    }
                },
                _ => {}
            }
        }
        // Once LCP is open, a passive or active peer alike starts IPCP (if it has not yet).
        if self.open(0) && !self.sent_first[1] && !self.row.passive {
            self.send_req(1, now);
        }
        for (i, when) in [When::LcpOpen, When::IpcpOpen].into_iter().enumerate() {
            if !self.extra_done[i] && self.open(i) {
                self.extra_done[i] = true;
                let frames: Vec<_> = self
                    .row
                    .extra
                    .iter()
                    .filter(|(w, _, _)| *w == when)
                    .map(|(_, p, d)| frame(*p, d))
                    .collect();
                self.out.extend(frames);
            }
        }
    }

    pub(crate) fn count(&self, proto: u16, code: u8) -> usize {
        self.seen
            .iter()
            .filter(|(p, c, _)| *p == proto && *c == code)
            .count()
    }
}
