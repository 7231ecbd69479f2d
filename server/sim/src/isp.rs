//! Mock ISP: our PPP in the access-server role (user table, address pool, DNS) plus a small
//! simulated internet that answers ICMP echo and echoes UDP. Sans-IO like the PPP engine it wraps:
//! it must not open sockets or TUN devices itself — packets it does not answer are handed out via
//! [`MockIsp::poll_ip_out`], and packets for the client come in via [`MockIsp::inject_ipv4`].
//!
//! The simulated internet:
//! - ICMP Echo Request to **any** destination → Echo Reply from that destination.
//! - UDP to any destination → the same payload back with addresses and ports swapped, for every
//!   port when [`IspConfig::udp_echo_port`] is `None` (the default), else only for that port.
//! - Anything else (TCP, other UDP ports, other ICMP, fragments) → [`MockIsp::poll_ip_out`] when
//!   [`IspConfig::forward_unhandled`] is set, else dropped and counted.
//! - Packets whose source is not the address we assigned are dropped (anti-spoofing, as real ISPs
//!   do; it catches a gateway that forgets to masquerade) unless [`IspConfig::check_source`] is off.

use std::collections::{BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::modem::{Answerer, AnswererFactory};
use masqdial_ppp::{AuthProtocol, Phase, Ppp, PppConfig, PppEvent, PppStats, SendError};

/// A shared pool of addresses handed to dial-in clients, round-robin so a redial gets a different
/// address. Cheap to clone; clones share the pool (a `std::sync::Mutex`, held for a few lines only).
#[derive(Clone, Debug)]
pub struct AddressPool {
    inner: Arc<Mutex<PoolState>>,
}

#[derive(Debug)]
struct PoolState {
    first: u32,
    last: u32,
    next: u32,
    in_use: BTreeSet<u32>,
}

impl AddressPool {
    /// Pool of `first..=last` (swapped if given in reverse).
    #[must_use]
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Self {
        let (a, b) = (u32::from(first), u32::from(last));
        let (first, last) = (a.min(b), a.max(b));
        Self {
            inner: Arc::new(Mutex::new(PoolState {
                first,
                last,
                next: first,
                in_use: BTreeSet::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A panic while holding this lock cannot leave the state inconsistent (plain integers).
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the next free address at or after the "next" pointer; `None` if all are in use.
    #[must_use]
    pub fn allocate(&self) -> Option<Ipv4Addr> {
        let mut s = self.lock();
        let size = u64::from(s.last - s.first) + 1;
        let mut cand = s.next.clamp(s.first, s.last);
        for _ in 0..size.min(1 << 20) {
            if !s.in_use.contains(&cand) {
                s.in_use.insert(cand);
                s.next = if cand == s.last { s.first } else { cand + 1 };
                return Some(Ipv4Addr::from(cand));
            }
            cand = if cand == s.last { s.first } else { cand + 1 };
        }
        None
    }

    /// Returns an address to the pool.
    pub fn release(&self, addr: Ipv4Addr) {
        self.lock().in_use.remove(&u32::from(addr));
    }

    /// The next call (e.g. the next dial-in) tries `addr` first (the "next address" control).
    pub fn set_next(&self, addr: Ipv4Addr) {
        self.lock().next = u32::from(addr);
    }

    /// Addresses currently assigned.
    #[must_use]
    pub fn in_use(&self) -> Vec<Ipv4Addr> {
        self.lock()
            .in_use
            .iter()
            .map(|&a| Ipv4Addr::from(a))
            .collect()
    }
}

/// Mock ISP settings.
#[derive(Clone, Debug)]
pub struct IspConfig {
    /// (name, secret) pairs accepted by PAP/CHAP.
    pub users: Vec<(String, String)>,
    /// Authentication demanded of the caller (`None` = no authentication). PAP is asked first
    /// but, like most access servers, CHAP-MD5 is taken when the caller Naks PAP towards it,
    /// unless `insist_on_auth`.
    pub auth: Option<AuthProtocol>,
    /// Demand exactly `auth`: a caller's Nak of it is ignored and it is asked again (an access
    /// server configured PAP-only; `mock-modem --auth pap-only`).
    pub insist_on_auth: bool,
    /// The access server's own address (the client's peer address).
    pub local: Ipv4Addr,
    /// Where callers' addresses come from (shared between calls).
    pub pool: AddressPool,
    /// DNS servers handed out by IPCP (RFC 1877).
    pub dns: Vec<Ipv4Addr>,
    /// Echo UDP only to this port (`None`: every port).
    pub udp_echo_port: Option<u16>,
    /// Hand packets the simulated internet does not answer to [`MockIsp::poll_ip_out`].
    pub forward_unhandled: bool,
    /// Answer ICMP echo and echo UDP ourselves (`false`: every packet is unhandled, so with
    /// `forward_unhandled` the whole internet is the TUN bridge's).
    pub simulate_internet: bool,
    /// Drop packets whose source is not the caller's assigned address.
    pub check_source: bool,
    /// LCP echo interval of the access server (`None`: off).
    pub echo_interval: Option<Duration>,
    /// CHAP rechallenge interval.
    pub chap_rechallenge: Option<Duration>,
    /// MRU the access server asks for.
    pub mru: u16,
    /// ACCM the access server asks for.
    pub accm: u32,
    /// Frames the access server may queue towards the client.
    pub tx_queue_limit: usize,
    /// How the access server behaves in IPCP (imitations of access servers we did not write).
    pub mode: IspMode,
    /// Seed for magic numbers and challenges (tests); `None` draws one from the OS random source
    /// here (the PPP engine reads none itself).
    pub seed: Option<u64>,
}

impl IspConfig {
    /// An ISP at 10.64.0.1 with pool 10.64.0.2–10.64.0.254, DNS 10.64.0.53/10.64.0.54, UDP echo
    /// on every port, no forwarding, anti-spoofing on, no echo keepalive of its own.
    #[must_use]
    pub fn new(users: Vec<(String, String)>, auth: Option<AuthProtocol>) -> Self {
        Self {
            users,
            auth,
            insist_on_auth: false,
            local: Ipv4Addr::new(10, 64, 0, 1),
            pool: AddressPool::new(Ipv4Addr::new(10, 64, 0, 2), Ipv4Addr::new(10, 64, 0, 254)),
            dns: vec![Ipv4Addr::new(10, 64, 0, 53), Ipv4Addr::new(10, 64, 0, 54)],
            udp_echo_port: None,
            forward_unhandled: false,
            simulate_internet: true,
            check_source: true,
            echo_interval: None,
            chap_rechallenge: None,
            mru: 1500,
            accm: 0,
            tx_queue_limit: 256,
            mode: IspMode::Standard,
            seed: None,
        }
    }

    /// A factory for the mock modem: each call gets a fresh [`MockIsp`] sharing this pool.
    #[must_use]
    pub fn factory(self) -> AnswererFactory {
        Box::new(move |_number: &str| Box::new(MockIsp::new(self.clone())) as Box<dyn Answerer>)
    }
}

/// IPCP behaviours of access servers we did not write (issue 15), selectable in the mock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IspMode {
    /// Names its own address, assigns ours by Nak, gives DNS.
    #[default]
    Standard,
    /// Asks 0.0.0.0 for its own address (it expects to be told one, RFC 1332 §3.3).
    AsksZero,
    /// Sends no IP-Address option at all (the caller picks its address locally).
    NoAddress,
    /// Configure-Rejects the DNS options (RFC 1877): the caller comes up without DNS.
    RejectsDns,
}

/// Counters of the simulated internet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IspStats {
    /// ICMP Echo Replies sent.
    pub icmp_echo_replies: u64,
    /// UDP datagrams echoed.
    pub udp_echoes: u64,
    /// Packets handed to [`MockIsp::poll_ip_out`].
    pub forwarded: u64,
    /// Packets injected towards the client.
    pub injected: u64,
    /// Malformed IPv4 packets dropped.
    pub dropped_malformed: u64,
    /// Packets dropped for a source other than the assigned address.
    pub dropped_spoofed: u64,
    /// Packets neither answered nor forwarded.
    pub dropped_unhandled: u64,
    /// Replies dropped because the link's queue was full or the link was down.
    pub dropped_tx: u64,
}

/// One dial-in session at the mock ISP (implements the mock modem's [`Answerer`]).
pub struct MockIsp {
    ppp: Ppp,
    pool: AddressPool,
    assigned: Option<Ipv4Addr>,
    udp_echo_port: Option<u16>,
    forward_unhandled: bool,
    simulate_internet: bool,
    check_source: bool,
    opened: bool,
    closed: bool,
    ip_up: bool,
    replies: VecDeque<Vec<u8>>,
    ip_out: VecDeque<Vec<u8>>,
    events: Vec<PppEvent>,
    stats: IspStats,
}

impl std::fmt::Debug for MockIsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockIsp")
            .field("assigned", &self.assigned)
            .field("phase", &self.ppp.phase())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl MockIsp {
    /// A session that takes an address from the pool now and starts PPP at the first input
    /// (or at [`MockIsp::open`]). With the pool exhausted the session hangs up at once.
    #[must_use]
    pub fn new(cfg: IspConfig) -> Self {
        let assigned = cfg.pool.allocate();
        let peer = assigned.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mut p = PppConfig::access_server(
            cfg.users.clone(),
            cfg.auth,
            cfg.local,
            peer,
            cfg.dns.clone(),
        );
        if cfg.insist_on_auth {
            p.insist_auth = true;
        } else if cfg.auth == Some(AuthProtocol::Pap) {
            p.require_auth.push(AuthProtocol::Chap);
        }
        p.echo_interval = cfg.echo_interval;
        p.chap_rechallenge = cfg.chap_rechallenge;
        p.mru = cfg.mru;
        p.accm = cfg.accm;
        p.tx_queue_limit = cfg.tx_queue_limit;
        p.seed = cfg.seed.unwrap_or_else(random_seed);
        match cfg.mode {
            IspMode::Standard => {}
            // It expects to be told its address: asks 0.0.0.0 and takes our Nak.
            IspMode::AsksZero => p.local_address = Ipv4Addr::UNSPECIFIED,
            IspMode::NoAddress => p.request_address = false,
            // No DNS to give: Primary/Secondary-DNS (129/131) are Configure-Rejected.
            IspMode::RejectsDns => p.dns.clear(),
        }
        Self {
            ppp: Ppp::new(p),
            pool: cfg.pool,
            assigned,
            udp_echo_port: cfg.udp_echo_port,
            forward_unhandled: cfg.forward_unhandled,
            simulate_internet: cfg.simulate_internet,
            check_source: cfg.check_source,
            opened: false,
            closed: assigned.is_none(),
            ip_up: false,
            replies: VecDeque::new(),
            ip_out: VecDeque::new(),
            events: Vec::new(),
            stats: IspStats::default(),
        }
    }

    /// Starts LCP now (otherwise it starts at the first byte from the caller).
    pub fn open(&mut self, now: Instant) {
        if !self.opened && !self.closed {
            self.opened = true;
            self.ppp.open(now);
            self.drain(now);
        }
    }

    /// The address assigned to this caller.
    #[must_use]
    pub fn assigned_address(&self) -> Option<Ipv4Addr> {
        self.assigned
    }

    /// The access server's PPP engine (phase, options, counters).
    #[must_use]
    pub fn ppp(&self) -> &Ppp {
        &self.ppp
    }

    /// PPP counters of the access server.
    #[must_use]
    pub fn ppp_stats(&self) -> PppStats {
        self.ppp.stats()
    }

    /// Simulated-internet counters.
    #[must_use]
    pub fn stats(&self) -> IspStats {
        self.stats
    }

    /// PPP events of the access server so far (for test assertions).
    #[must_use]
    pub fn events(&self) -> &[PppEvent] {
        &self.events
    }

    /// True once IPCP is up.
    #[must_use]
    pub fn is_ip_up(&self) -> bool {
        self.ip_up
    }

    /// The ISP hangs up: Terminate-Request, then the line closes.
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.ppp.close(now, reason);
        self.drain(now);
    }

    /// Next IPv4 packet from the client that the simulated internet did not answer
    /// (only with [`IspConfig::forward_unhandled`]).
    pub fn poll_ip_out(&mut self) -> Option<Vec<u8>> {
        self.ip_out.pop_front()
    }

    /// Sends an IPv4 packet to the client (e.g. one read from a TUN device).
    pub fn inject_ipv4(&mut self, packet: &[u8]) -> Result<(), SendError> {
        self.ppp.send_ipv4(packet)?;
        self.stats.injected += 1;
        Ok(())
    }

    fn drain(&mut self, now: Instant) {
        while let Some(ev) = self.ppp.poll_event() {
            match ev {
                PppEvent::Ipv4(pkt) => self.route(&pkt),
                PppEvent::IpcpUp { .. } => {
                    self.ip_up = true;
                    self.events.push(ev);
                }
                PppEvent::Down { .. } => {
                    self.ip_up = false;
                    self.closed = true;
                    self.events.push(ev);
                }
                other => self.events.push(other),
            }
        }
        self.flush_replies();
        let _ = now;
    }

    fn flush_replies(&mut self) {
        while let Some(r) = self.replies.front() {
            match self.ppp.send_ipv4(r) {
                Ok(()) => {
                    self.replies.pop_front();
                }
                Err(SendError::QueueFull) if self.replies.len() < 1024 => break,
                Err(_) => {
                    self.replies.pop_front();
                    self.stats.dropped_tx += 1;
                }
            }
        }
    }

    /// The simulated internet: answer, forward or drop one packet from the client.
    fn route(&mut self, pkt: &[u8]) {
        let Some(ip) = Ipv4View::new(pkt) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if self.check_source && Some(ip.src()) != self.assigned {
            self.stats.dropped_spoofed += 1;
            return;
        }
        let reply = if ip.is_fragment() || !self.simulate_internet {
            None
        } else {
            match ip.protocol() {
                1 => icmp_echo_reply(&ip),
                17 => udp_echo(&ip, self.udp_echo_port),
                _ => None,
            }
        };
        match reply {
            Some((r, icmp)) => {
                if icmp {
                    self.stats.icmp_echo_replies += 1;
                } else {
                    self.stats.udp_echoes += 1;
                }
                self.replies.push_back(r);
            }
            None if self.forward_unhandled => {
                self.stats.forwarded += 1;
                self.ip_out.push_back(pkt.to_vec());
            }
            None => self.stats.dropped_unhandled += 1,
        }
    }
}

impl Drop for MockIsp {
    fn drop(&mut self) {
        if let Some(a) = self.assigned {
            self.pool.release(a);
        }
    }
}

impl Answerer for MockIsp {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.open(now);
        self.ppp.handle_input(now, bytes);
        self.drain(now);
    }

    fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.flush_replies();
        self.ppp.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.ppp.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if !self.opened {
            self.open(now);
        }
        self.ppp.handle_timeout(now);
        self.drain(now);
    }

    fn is_closed(&self) -> bool {
        self.closed && self.ppp.phase() == Phase::Dead && self.ppp.tx_queue_len() == 0
    }
}

/// Internet checksum (RFC 1071) over `data`, folded, not complemented.
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    !(acc as u16)
}

/// A checked view of an IPv4 packet; accessors cannot panic after [`Ipv4View::new`].
struct Ipv4View<'a> {
    pkt: &'a [u8],
    ihl: usize,
    total: usize,
}

impl<'a> Ipv4View<'a> {
    fn new(pkt: &'a [u8]) -> Option<Self> {
        let &vihl = pkt.first()?;
        let ihl = usize::from(vihl & 0x0F) * 4;
        if vihl >> 4 != 4 || ihl < 20 || pkt.len() < ihl {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
        if total < ihl || total > pkt.len() || fold(sum16(0, &pkt[..ihl])) != 0 {
            return None;
        }
        Some(Self { pkt, ihl, total })
    }
    fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.pkt[12], self.pkt[13], self.pkt[14], self.pkt[15])
    }
    fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.pkt[16], self.pkt[17], self.pkt[18], self.pkt[19])
    }
    fn protocol(&self) -> u8 {
        self.pkt[9]
    }
    fn is_fragment(&self) -> bool {
        u16::from_be_bytes([self.pkt[6], self.pkt[7]]) & 0x3FFF != 0
    }
    fn payload(&self) -> &'a [u8] {
        &self.pkt[self.ihl..self.total]
    }
}

/// A 20-byte header from `src` to `dst` around `payload`.
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()).min(usize::from(u16::MAX)) as u16;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x40, 0, 64, protocol, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = fold(sum16(0, &p));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&payload[..usize::from(total) - 20]);
    p
}

fn icmp_echo_reply(ip: &Ipv4View<'_>) -> Option<(Vec<u8>, bool)> {
    let icmp = ip.payload();
    if icmp.len() < 8 || icmp[0] != 8 || icmp[1] != 0 || fold(sum16(0, icmp)) != 0 {
        return None;
    }
    let mut r = icmp.to_vec();
    r[0] = 0;
    r[2..4].copy_from_slice(&[0, 0]);
    let c = fold(sum16(0, &r));
    r[2..4].copy_from_slice(&c.to_be_bytes());
    let id = u16::from_be_bytes([ip.pkt[4], ip.pkt[5]]);
    Some((ipv4(ip.dst(), ip.src(), 1, id, &r), true))
}

fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
    let mut acc = sum16(0, &src.octets());
    acc = sum16(acc, &dst.octets());
    acc += 17 + udp.len() as u32;
    let c = fold(sum16(acc, udp));
    // RFC 768: a computed checksum of zero is transmitted as all ones.
    if c == 0 {
        0xFFFF
    } else {
        c
    }
}

fn udp_echo(ip: &Ipv4View<'_>, port: Option<u16>) -> Option<(Vec<u8>, bool)> {
    let udp = ip.payload();
    if udp.len() < 8 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if len < 8 || len > udp.len() {
        return None;
    }
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    if port.is_some_and(|p| p != dport) {
        return None;
    }
    let mut r = udp[..len].to_vec();
    r[0..2].copy_from_slice(&dport.to_be_bytes());
    r[2..4].copy_from_slice(&sport.to_be_bytes());
    r[6..8].copy_from_slice(&[0, 0]);
    let c = udp_checksum(ip.dst(), ip.src(), &r);
    r[6..8].copy_from_slice(&c.to_be_bytes());
    let id = u16::from_be_bytes([ip.pkt[4], ip.pkt[5]]);
    Some((ipv4(ip.dst(), ip.src(), 17, id, &r), false))
}

/// Builds an ICMP Echo Request (for tests and demos): `src` → `dst`, identifier, sequence, payload.
#[must_use]
pub fn icmp_echo_request(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&ident.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(payload);
    let c = fold(sum16(0, &icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 1, seq, &icmp)
}

/// Builds a UDP datagram (for tests and demos) with a correct checksum.
#[must_use]
pub fn udp_datagram(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let len = (8 + payload.len()).min(usize::from(u16::MAX) - 20) as u16;
    let mut udp = Vec::with_capacity(usize::from(len));
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload[..usize::from(len) - 8]);
    let c = udp_checksum(src, dst, &udp);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 17, 1, &udp)
}

/// 64 unpredictable bits from the OS random source (a `RandomState`'s SipHash, keyed from it
/// too, if getrandom fails) for the access server's PPP seed.
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_ok() {
        return u64::from_le_bytes(b);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6d61_7371_6469_616c);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_round_robin_next_and_release() {
        let p = AddressPool::new(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(p.allocate(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        p.release(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            p.allocate(),
            Some(Ipv4Addr::new(10, 0, 0, 3)),
            "a redial gets a different address"
        );
        p.set_next(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.allocate(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(p.allocate(), Some(Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(p.allocate(), None);
    }

    #[test]
    fn icmp_and_udp_replies_are_valid() {
        let a = Ipv4Addr::new(10, 64, 0, 2);
        let b = Ipv4Addr::new(192, 0, 2, 7);
        let req = icmp_echo_request(a, b, 0x1234, 1, b"ping");
        let ip = Ipv4View::new(&req).unwrap_or_else(|| panic!("valid request"));
        let (r, _) = icmp_echo_reply(&ip).unwrap_or_else(|| panic!("answered"));
        let v = Ipv4View::new(&r).unwrap_or_else(|| panic!("valid reply"));
        assert_eq!((v.src(), v.dst(), v.payload()[0]), (b, a, 0));
        assert_eq!(fold(sum16(0, v.payload())), 0);
        assert_eq!(
            &v.payload()[4..],
            &[0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g']
        );

        let d = udp_datagram(a, 5000, b, 7, b"hello");
        let ip = Ipv4View::new(&d).unwrap_or_else(|| panic!("valid datagram"));
        assert!(udp_echo(&ip, Some(9)).is_none());
        let (r, _) = udp_echo(&ip, Some(7)).unwrap_or_else(|| panic!("echoed"));
        let v = Ipv4View::new(&r).unwrap_or_else(|| panic!("valid reply"));
        assert_eq!(&v.payload()[..4], &[0, 7, 0x13, 0x88]);
        assert_eq!(&v.payload()[8..], b"hello");
        let mut acc = sum16(0, &b.octets());
        acc = sum16(acc, &a.octets());
        acc += 17 + v.payload().len() as u32;
        assert_eq!(fold(sum16(acc, v.payload())), 0, "UDP checksum verifies");
    }

    proptest::proptest! {
        #[test]
        fn every_routed_packet_is_counted_once_and_replies_are_valid(d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut isp = MockIsp::new(IspConfig { forward_unhandled: true, check_source: false, ..IspConfig::new(vec![], None) });
            let mut pkt = d.clone();
            if pkt.len() >= 20 {
                pkt[0] = 0x45;
                let len = (pkt.len() as u16).to_be_bytes();
                pkt[2..4].copy_from_slice(&len);
                pkt[10..12].copy_from_slice(&[0, 0]);
                let c = fold(sum16(0, &pkt[..20]));
                pkt[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let count = |s: &IspStats| s.dropped_malformed + s.dropped_spoofed + s.icmp_echo_replies
                + s.udp_echoes + s.forwarded + s.dropped_unhandled;
            let before = count(&isp.stats);
            isp.route(&d);
            isp.route(&pkt);
            // Every packet is answered, forwarded or counted as dropped, exactly once.
            proptest::prop_assert_eq!(count(&isp.stats), before + 2);
            // Replies are well-formed IPv4 with a header checksum that verifies.
            for r in &isp.replies {
                proptest::prop_assert!(r.len() >= 20 && r[0] >> 4 == 4);
                let hl = usize::from(r[0] & 0xF) * 4;
                proptest::prop_assert_eq!(fold(sum16(0, &r[..hl])), 0);
            }
        }
    }
}
