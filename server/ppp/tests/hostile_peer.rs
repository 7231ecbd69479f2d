//! Hostile-peer matrix: our engine, in both roles, against a scripted peer written from the RFCs
//! (1661 LCP, 1332 IPCP, 1877 DNS, 1570 codes 12/13), not from our mock ISP. The peer has its own
//! HDLC framing (RFC 1662: flag, 0x7D escape of every byte < 0x20, bitwise FCS-16), answers with
//! plain rules and per-row hooks, and the clock is simulated: every outcome and every time is
//! exact. The dial → IPCP times of the matrix are printed as a table (`--nocapture`).

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_ppp::ipcp::{AddressProblem, Endpoint, IpcpFailure, Ipv4Network};
use masqdial_ppp::{
    AuthProtocol, DownReason, PapRefusal, Ppp, PppConfig, PppEvent, SendError, Side,
};

// ---------------------------------------------------------------------------------------------
// Independent RFC 1662 framing.

/// FCS-16 computed bit by bit (RFC 1662 §C.1 polynomial 0x8408), not with our table.
fn fcs16(data: &[u8]) -> u16 {
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
fn frame(proto: u16, info: &[u8]) -> Vec<u8> {
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
struct Deframer {
    cur: Vec<u8>,
    esc: bool,
}

impl Deframer {
    fn feed(&mut self, bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
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

const LCP: u16 = 0xC021;
const IPCP: u16 = 0x8021;
const IPV4: u16 = 0x0021;
const CCP: u16 = 0x80FD;
const IPV6CP: u16 = 0x8057;
const CONF_REQ: u8 = 1;
const CONF_ACK: u8 = 2;
const CONF_NAK: u8 = 3;
const CONF_REJ: u8 = 4;
const TERM_REQ: u8 = 5;
const TERM_ACK: u8 = 6;
const CODE_REJ: u8 = 7;
const PROTO_REJ: u8 = 8;
const ECHO_REQ: u8 = 9;
const ECHO_REP: u8 = 10;

fn pkt(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![code, id];
    v.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn opt(ty: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, (data.len() + 2) as u8];
    v.extend_from_slice(data);
    v
}

fn opts(list: &[Vec<u8>]) -> Vec<u8> {
    list.concat()
}

fn parse_opts(mut d: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut v = Vec::new();
    while d.len() >= 2 && usize::from(d[1]) >= 2 && usize::from(d[1]) <= d.len() {
        v.push((d[0], d[2..usize::from(d[1])].to_vec()));
        d = &d[usize::from(d[1])..];
    }
    v
}

fn ip(a: Ipv4Addr) -> [u8; 4] {
    a.octets()
}

/// RFC 1661 §5.3/5.4: a Nak replaces values (or prompts new options), a Reject removes options.
fn adopt(req: &[u8], code: u8, reply: &[u8]) -> Vec<u8> {
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
type Answer = fn(&[u8]) -> Option<(u8, Vec<u8>)>;

fn ack_all(_: &[u8]) -> Option<(u8, Vec<u8>)> {
    Some((CONF_ACK, Vec::new()))
}

/// RFC 1332 §3.3 as an access server does it: 0.0.0.0 gets a Nak with an address, DNS 0.0.0.0
/// a Nak with servers (RFC 1877 §1.1); everything else is acked.
fn isp_ipcp(req: &[u8]) -> Option<(u8, Vec<u8>)> {
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
const PEER_GIVES: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// Address the scripted peer uses itself when it names one.
const PEER_OWN: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const DNS1: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
const DNS2: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 4);
/// Our access-server role's own and assigned addresses.
const OUR_SERVER: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);
const OUR_ASSIGN: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 2);
/// A LAN network of the server (refused for any negotiated address).
const LAN: Ipv4Network = Ipv4Network::new(Ipv4Addr::new(192, 168, 1, 0), 24);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Echo {
    Reply,
    CodeReject,
    ProtocolRejectLcp,
}

/// When the peer sends an extra packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum When {
    /// As soon as the peer's LCP is open.
    LcpOpen,
    /// As soon as the peer's IPCP is open.
    IpcpOpen,
}

#[derive(Clone)]
struct Row {
    name: &'static str,
    /// Never sends the first Configure-Request of a layer; answers only.
    passive: bool,
    /// Its LCP request reaches us before ours reaches it.
    early: bool,
    /// Sends every Configure-Request twice with the same Identifier.
    dup: bool,
    /// LCP option types whose Nak it ignores: it asks the same value again (insists).
    insist: &'static [u8],
    lcp_opts: Vec<u8>,
    /// Its IPCP request; `None` = the role's default (client asks 0.0.0.0 + nothing else; access
    /// server names its own address).
    ipcp_opts: Option<Vec<u8>>,
    lcp_answer: Answer,
    /// `None` = the role's default (an ISP Naks with addresses; a client acks).
    ipcp_answer: Option<Answer>,
    echo: Echo,
    extra: Vec<(When, u16, Vec<u8>)>,
    /// Adjusts our configuration.
    tweak: fn(&mut PppConfig),
    /// Checks the outcome for our role; Err explains.
    expect: fn(Side, &Outcome) -> Result<(), String>,
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

struct Peer {
    row: Row,
    side: Side,
    deframer: Deframer,
    /// Per layer (0 = LCP, 1 = IPCP): its current request, id, acked by us, ours acked by it.
    req: [Vec<u8>; 2],
    id: [u8; 2],
    acked_by_us: [bool; 2],
    acked_ours: [bool; 2],
    sent_first: [bool; 2],
    retry_at: [Option<Instant>; 2],
    retries: [u32; 2],
    extra_done: [bool; 2],
    out: VecDeque<Vec<u8>>,
    /// Every packet we sent it: (protocol, code).
    seen: Vec<(u16, u8, Vec<u8>)>,
}

impl Peer {
    fn new(row: Row, side: Side) -> Self {
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

    fn proto(layer: usize) -> u16 {
        if layer == 0 {
            LCP
        } else {
            IPCP
        }
    }

    fn open(&self, layer: usize) -> bool {
        self.acked_by_us[layer] && self.acked_ours[layer]
    }

    fn send(&mut self, proto: u16, p: Vec<u8>) {
        self.out.push_back(frame(proto, &p));
    }

    fn send_req(&mut self, layer: usize, now: Instant) {
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

    fn start(&mut self, now: Instant) {
        if !self.row.passive {
            self.send_req(0, now);
        }
    }

    fn timers(&mut self, now: Instant) {
        for layer in 0..2 {
            if self.retry_at[layer].is_some_and(|t| t <= now) && !self.acked_ours[layer] {
                self.send_req(layer, now);
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        (0..2)
            .filter(|&l| !self.acked_ours[l])
            .filter_map(|l| self.retry_at[l])
            .min()
    }

    fn input(&mut self, now: Instant, bytes: &[u8]) {
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

    fn count(&self, proto: u16, code: u8) -> usize {
        self.seen
            .iter()
            .filter(|(p, c, _)| *p == proto && *c == code)
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Running a row.

struct Outcome {
    /// (simulated time since open, event).
    events: Vec<(Duration, PppEvent)>,
    ppp: Ppp,
    peer: Peer,
}

impl Outcome {
    fn ipcp_up(&self) -> Option<(Duration, Ipv4Addr, Ipv4Addr, Vec<Ipv4Addr>)> {
        self.events.iter().find_map(|(t, e)| match e {
            PppEvent::IpcpUp { local, peer, dns } => Some((*t, *local, *peer, dns.clone())),
            _ => None,
        })
    }

    fn ipcp_ups(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, PppEvent::IpcpUp { .. }))
            .count()
    }

    fn down(&self) -> Option<(Duration, DownReason)> {
        self.events.iter().find_map(|(t, e)| match e {
            PppEvent::Down { reason } => Some((*t, reason.clone())),
            _ => None,
        })
    }

    /// IPCP opened once, the link is still up, and nothing went down.
    fn up_ok(&self) -> Result<(), String> {
        if self.ipcp_up().is_none() {
            return Err(format!("IPCP never came up; down = {:?}", self.down()));
        }
        if let Some(d) = self.down() {
            return Err(format!("went down: {d:?}"));
        }
        if !self.ppp.is_ip_up() {
            return Err("IP not up at the end".into());
        }
        Ok(())
    }

    /// Went down for `want` at exactly `at`, and IPCP never reported up.
    fn down_at(&self, at: Duration, want: DownReason) -> Result<(), String> {
        if let Some(u) = self.ipcp_up() {
            return Err(format!("IPCP reported up: {u:?}"));
        }
        match self.down() {
            Some((t, r)) if t == at && r == want => Ok(()),
            other => Err(format!("want Down({want:?}) at {at:?}, got {other:?}")),
        }
    }
}

fn our_config(side: Side) -> PppConfig {
    let mut c = match side {
        Side::Client => PppConfig::client("", ""),
        Side::AccessServer => {
            PppConfig::access_server(vec![], None, OUR_SERVER, OUR_ASSIGN, vec![DNS1, DNS2])
        }
    };
    c.seed = Some(7);
    c.refused_networks = vec![LAN];
    c
}

/// The line between the engines: zero-delay (exact event times), or a 115200-baud async line
/// (10 bits a byte) behind modems that add `latency` each way (V.34/V.90 with V.42 buffering:
/// some 50-100 ms).
#[derive(Clone, Copy)]
struct Line {
    baud: u32,
    latency: Duration,
}

const INSTANT: Line = Line {
    baud: 0,
    latency: Duration::ZERO,
};
const MODEM: Line = Line {
    baud: 115_200,
    latency: Duration::from_millis(60),
};

/// Runs `row` against our engine in `side` for `limit` of simulated time.
fn run(row: &Row, side: Side, limit: Duration) -> Outcome {
    run_on(row, side, limit, INSTANT)
}

fn run_on(row: &Row, side: Side, limit: Duration, line: Line) -> Outcome {
    let mut cfg = our_config(side);
    (row.tweak)(&mut cfg);
    let mut ppp = Ppp::new(cfg);
    let mut peer = Peer::new(row.clone(), side);
    let start = Instant::now();
    let mut now = start;
    let mut events = Vec::new();
    if row.early {
        peer.start(now);
        ppp.open(now);
        while let Some(b) = peer.out.pop_front() {
            ppp.handle_input(now, &b);
        }
    } else {
        ppp.open(now);
        peer.start(now);
    }
    let end = start + limit;
    // In flight: (arrival, to_peer, bytes); each direction's line is busy until `free`.
    let mut flight: Vec<(Instant, bool, Vec<u8>)> = Vec::new();
    let mut free = [start; 2];
    let mut put = |now: Instant, to_peer: bool, b: Vec<u8>, flight: &mut Vec<_>| {
        let d = usize::from(to_peer);
        let tx = if line.baud == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(b.len() as u64 * 10 * 1_000_000 / u64::from(line.baud))
        };
        free[d] = free[d].max(now) + tx;
        flight.push((free[d] + line.latency, to_peer, b));
    };
    for _ in 0..200_000 {
        let mut moved = false;
        while let Some(b) = ppp.poll_transmit() {
            moved = true;
            put(now, true, b, &mut flight);
        }
        while let Some(b) = peer.out.pop_front() {
            moved = true;
            put(now, false, b, &mut flight);
        }
        // Deliver everything due, in arrival order.
        flight.sort_by_key(|(t, ..)| *t);
        while flight.first().is_some_and(|(t, ..)| *t <= now) {
            moved = true;
            let (_, to_peer, b) = flight.remove(0);
            if to_peer {
                peer.input(now, &b);
            } else {
                ppp.handle_input(now, &b);
            }
        }
        while let Some(e) = ppp.poll_event() {
            events.push((now - start, e));
        }
        if moved {
            continue;
        }
        let next = [
            ppp.poll_timeout(),
            peer.next_timer(),
            flight.first().map(|(t, ..)| *t),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) if t <= end => {
                now = now.max(t);
                ppp.handle_timeout(now);
                peer.timers(now);
            }
            _ => break,
        }
    }
    Outcome { events, ppp, peer }
}

const BOTH: [Side; 2] = [Side::Client, Side::AccessServer];
const S: fn(u64) -> Duration = Duration::from_secs;

fn rows() -> Vec<Row> {
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

fn mru_check(o: &Outcome, mru: u16) -> Result<(), String> {
    o.up_ok()?;
    if o.ppp.options().peer_mru != mru {
        return Err(format!("peer MRU {}", o.ppp.options().peer_mru));
    }
    Ok(())
}

/// Answers our IPCP request with a Nak of IP-Address to `a` (everything else acked).
fn nak_address(req: &[u8], a: Ipv4Addr) -> Option<(u8, Vec<u8>)> {
    let ours = parse_opts(req).into_iter().find(|(t, _)| *t == 3);
    match ours {
        Some((_, v)) if v != ip(a) => Some((CONF_NAK, opt(3, &ip(a)))),
        _ => isp_ipcp(req),
    }
}

/// Rejects the given option types if present, else answers like an ISP.
fn reject_types(req: &[u8], types: &[u8]) -> Option<(u8, Vec<u8>)> {
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

#[test]
fn hostile_peer_matrix_both_roles() {
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for row in rows() {
        for side in BOTH {
            let o = run(&row, side, S(300));
            if let Err(e) = (row.expect)(side, &o) {
                failures.push(format!("{:?} / {}: {e}", side, row.name));
            }
            let t = o
                .ipcp_up()
                .map(|(t, ..)| format!("{} ms", t.as_millis()))
                .unwrap_or_else(|| {
                    o.down()
                        .map(|(t, r)| format!("down at {} ms: {r}", t.as_millis()))
                        .unwrap_or_else(|| "neither".into())
                });
            // The same peer behind real modems: same outcome, and the time a user waits.
            let m = run_on(&row, side, S(300), MODEM);
            let same = match (o.ipcp_up(), m.ipcp_up(), o.down(), m.down()) {
                (Some(_), Some(_), None, None) => true,
                (None, None, Some((_, a)), Some((_, b))) => a == b,
                (Some(_), Some(_), Some((_, a)), Some((_, b))) => a == b,
                _ => false,
            };
            if !same {
                failures.push(format!(
                    "{:?} / {}: outcome differs on a 115200 line: {:?} / {:?}",
                    side,
                    row.name,
                    m.ipcp_up(),
                    m.down()
                ));
            }
            let tm = m
                .ipcp_up()
                .map(|(t, ..)| format!("{} ms", t.as_millis()))
                .unwrap_or_else(|| {
                    m.down()
                        .map(|(t, _)| format!("down at {} ms", t.as_millis()))
                        .unwrap_or_else(|| "neither".into())
                });
            table.push(format!("| {:?} | {} | {} | {} |", side, row.name, t, tm));
        }
    }
    println!(
        "| our role | peer | dial -> IPCP, zero-delay line | 115200 baud + 60 ms modem latency each way |\n|---|---|---|---|"
    );
    for l in &table {
        println!("{l}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn short_mru_limits_what_we_send() {
    let row = Row {
        lcp_opts: opts(&[opt(1, &296u16.to_be_bytes()), opt(5, &[1, 2, 3, 4])]),
        ..Row::default()
    };
    let mut o = run(&row, Side::Client, S(1));
    o.up_ok().expect("link up");
    let mut big = vec![0x45u8; 297];
    big[0] = 0x45;
    assert_eq!(
        o.ppp.send_ipv4(&big),
        Err(SendError::TooLarge { len: 297, mru: 296 })
    );
    assert_eq!(o.ppp.send_ipv4(&big[..296]), Ok(()));
}

#[test]
fn ip_flows_both_ways_with_scripted_peer() {
    let mut o = run(&Row::default(), Side::Client, S(1));
    o.up_ok().expect("link up");
    let dgram = [
        0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 2, 15, 8, 8, 8, 8,
    ];
    o.ppp.send_ipv4(&dgram).expect("IPCP open");
    let b = o.ppp.poll_transmit().expect("a frame");
    let got = o.peer.deframer.feed(&b);
    assert_eq!(got, vec![(IPV4, dgram.to_vec())]);
    let now = Instant::now();
    o.ppp.handle_input(now, &frame(IPV4, &dgram));
    assert_eq!(o.ppp.poll_event(), Some(PppEvent::Ipv4(dgram.to_vec())));
}

/// What was Nak'd and Rejected, both directions, is kept in the negotiated options (for
/// `cinfo` and dial progress), named and valued in each option's notation.
#[test]
fn refused_options_are_recorded_both_directions() {
    use masqdial_ppp::options::Ncp;
    let row = Row {
        // LCP: MRU 64 (we Nak to 128). IPCP: VJ (we Reject), 0.0.0.0 (we Nak with the
        // default), and the peer Rejects both DNS options of ours.
        lcp_opts: opts(&[opt(1, &64u16.to_be_bytes()), opt(5, &[1, 2, 3, 4])]),
        ipcp_opts: Some(opts(&[opt(2, &[0x00, 0x2D, 0x0F, 0x01]), opt(3, &[0; 4])])),
        ipcp_answer: Some(|req| reject_types(req, &[129, 131])),
        ..Row::default()
    };
    let o = run(&row, Side::Client, S(1));
    o.up_ok().expect("link up");
    let opts = o.ppp.options();
    let lcp: Vec<String> = opts
        .lcp_refused
        .iter()
        .map(|r| r.describe(Ncp::Lcp))
        .collect();
    assert_eq!(lcp, ["we Nak'd the peer's MRU (1): 128"]);
    let ipcp: Vec<String> = opts
        .ipcp_refused
        .iter()
        .map(|r| r.describe(Ncp::Ipcp))
        .collect();
    assert_eq!(
        ipcp,
        [
            "we Rejected the peer's IP-Compression-Protocol (2): 002d0f01",
            "peer Rejected our Primary-DNS (129): 0.0.0.0",
            "peer Rejected our Secondary-DNS (131): 0.0.0.0",
            "we Nak'd the peer's IP-Address (3): 10.64.64.64",
            // The ISP's Nak is how our address is assigned (RFC 1332 §3.3).
            "peer Nak'd our IP-Address (3): 10.0.2.15",
        ],
        "{:?}",
        opts.ipcp_refused
    );
    assert_eq!(opts.peer_ip, Some(Ipv4Addr::new(10, 64, 64, 64)));
    assert!(opts.dns.is_empty());
}
