//! Dial on demand, the data plane's half (sans-IO; the pump feeds it packets and `now`).
//!
//! While no link is attached, a LAN packet routed to a `demand = true` connection is held
//! and asks the link manager to dial, but only when its source host maps to a user allowed
//! that connection (`[[lan_hosts]]`); otherwise the sender gets ICMP host-unreachable and
//! the refusal is counted and logged (rate-limited). Held packets are bounded by time and
//! bytes and handed back when the link attaches, before nat-core, so they leave with the
//! new masquerade address. Activity filters (ipchains rule syntax, matched by nat-core's
//! own chains) decide which packets dial and which reset the idle timer: the
//! [`DemandCounters::activity`] counter the link manager samples.
//!
//! Owns the held packets and the authorization table; it makes no link decisions (the
//! manager dials on a [`DialRequest`]) and touches no device.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net};
use nat_core::chains::PacketInfo;
use tokio::sync::mpsc;

pub use crate::activity::ActivityFilter;
pub use crate::config::parse_mac;
use crate::config::{Config, UserRole};

/// The TUN device's placeholder local address while a demand link is down (pppd's demand
/// placeholder, `10.64.64.64`); replaced by the IPCP address when the link comes up.
pub const PLACEHOLDER_LOCAL: Ipv4Addr = Ipv4Addr::new(10, 64, 64, 64);
/// Placeholder peer address (pppd's `10.112.112.112`).
pub const PLACEHOLDER_PEER: Ipv4Addr = Ipv4Addr::new(10, 112, 112, 112);

/// Least time between two refusal log lines (the rest are counted and summarised).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// ICMP host-unreachable to one refused host: a burst of this many, then one per
/// [`REFUSAL_ICMP_EVERY`] (Linux's `icmp_ratelimit` token bucket: burst 6, 1 s).
const REFUSAL_ICMP_BURST: u32 = 6;
/// Time that earns a refused host one more ICMP error.
const REFUSAL_ICMP_EVERY: Duration = Duration::from_secs(1);
/// Hosts whose ICMP budget is remembered; the least recently refused one is forgotten first.
const REFUSAL_ICMP_HOSTS: usize = 256;

/// What the activity filter and the authorization look at, read from an IPv4 datagram;
/// `swap` exchanges source and destination (a reply seen from the LAN host's side).
pub fn packet_info(buf: &[u8], swap: bool) -> Option<PacketInfo<'static>> {
    if buf.len() < 20 || buf[0] >> 4 != 4 {
        return None;
    }
    let hl = usize::from(buf[0] & 0x0f) * 4;
    let tl = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if hl < 20 || tl < hl || tl > buf.len() {
        return None;
    }
    let frag_off = u16::from_be_bytes([buf[6], buf[7]]) & 0x1fff;
    let proto = buf[9];
    let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
    let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
    let t = &buf[hl..tl];
    let (mut sport, mut dport, mut syn) = (0, 0, false);
    if frag_off == 0 {
        match proto {
            6 | 17 if t.len() >= 4 => {
                sport = u16::from_be_bytes([t[0], t[1]]);
                dport = u16::from_be_bytes([t[2], t[3]]);
                // `-y`: SYN set, ACK and RST clear.
                syn = proto == 6 && t.len() >= 14 && t[13] & 0x16 == 0x02;
            }
            1 if t.len() >= 2 => {
                sport = u16::from(t[0]);
                dport = u16::from(t[1]);
            }
            _ => {}
        }
    }
    let (src, dst, sport, dport) = if swap && proto != 1 {
        (dst, src, dport, sport)
    } else if swap {
        (dst, src, sport, dport)
    } else {
        (src, dst, sport, dport)
    };
    Some(PacketInfo {
        proto,
        src,
        dst,
        sport,
        dport,
        iface: "",
        iface_aliases: &[],
        fragment: frag_off != 0,
        syn,
        tos: buf[1],
        len: u32::try_from(tl).unwrap_or(u32::MAX),
    })
}

/// One demand connection as the data plane sees it.
#[derive(Debug, Clone)]
pub struct DemandRoute {
    /// Connection name.
    pub connection: String,
    /// Destinations routed to it (IPv4 entries of its `routes`).
    pub nets: Vec<Ipv4Net>,
    /// Longest time a packet is held while dialling.
    pub hold: Duration,
    /// Most bytes held while dialling.
    pub hold_bytes: usize,
}

/// The kernel's neighbour table as the demand path asks it: the link-layer address a LAN
/// host's IPv4 address resolves to, if known. The default reads `/proc/net/arp`.
#[derive(Clone)]
pub struct Neighbours(std::sync::Arc<dyn Fn(Ipv4Addr) -> Option<[u8; 6]> + Send + Sync>);

impl Neighbours {
    /// A lookup of one's own (tests).
    pub fn from_fn(f: impl Fn(Ipv4Addr) -> Option<[u8; 6]> + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    fn lookup(&self, host: Ipv4Addr) -> Option<[u8; 6]> {
        (self.0)(host)
    }
}

impl Default for Neighbours {
    fn default() -> Self {
        Self::from_fn(|host| {
            std::fs::read_to_string("/proc/net/arp")
                .ok()
                .and_then(|t| arp_lookup(&t, host))
        })
    }
}

impl std::fmt::Debug for Neighbours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Neighbours")
    }
}

/// The hardware address of `host` in `/proc/net/arp` text (`IP address  HW type  Flags  HW
/// address  Mask  Device`): complete entries (flag `ATF_COM`, 0x2) of Ethernet-sized
/// addresses only.
pub fn arp_lookup(text: &str, host: Ipv4Addr) -> Option<[u8; 6]> {
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (ip, flags, hw) = (f.first()?, f.get(2)?, f.get(3)?);
        if ip.parse::<Ipv4Addr>().ok()? != host {
            return None;
        }
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        if flags & 0x2 == 0 {
            return None;
        }
        parse_mac(hw)
    })
}

/// Who may dial what on demand, and what counts as activity: built from the config.
#[derive(Debug, Clone, Default)]
pub struct DemandPolicy {
    routes: Vec<DemandRoute>,
    filters: HashMap<String, ActivityFilter>,
    hosts: Vec<(Ipv4Net, String)>,
    /// `[[lan_hosts]] mac`: hosts that must resolve to this link-layer address.
    macs: HashMap<Ipv4Addr, [u8; 6]>,
    neighbours: Neighbours,
    /// user -> connections allowed (admins: every connection).
    allowed: HashMap<String, Vec<String>>,
    /// Source of the ICMP errors we send.
    icmp_from: Option<Ipv4Addr>,
}

impl DemandPolicy {
    /// The policy of `cfg`; `None` when no connection dials on demand or filters activity.
    /// (Activity filters that do not parse were refused when the config was loaded.)
    pub fn from_config(cfg: &Config) -> Option<Self> {
        let mut p = DemandPolicy::default();
        let all: Vec<String> = cfg.connections.iter().map(|c| c.name.clone()).collect();
        for c in &cfg.connections {
            if let Ok(Some(f)) = ActivityFilter::parse(&c.activity_filter) {
                p.filters.insert(c.name.clone(), f);
            }
            if c.demand {
                p.routes.push(DemandRoute {
                    connection: c.name.clone(),
                    nets: c
                        .routes
                        .iter()
                        .filter_map(|r| match r {
                            IpNet::V4(n) => Some(*n),
                            IpNet::V6(_) => None,
                        })
                        .collect(),
                    hold: Duration::from_secs(c.demand_hold_s.max(1)),
                    hold_bytes: c.demand_hold_bytes,
                });
            }
        }
        if p.routes.is_empty() && p.filters.is_empty() {
            return None;
        }
        for u in &cfg.users {
            let conns = match u.role {
                UserRole::Admin => all.clone(),
                UserRole::User => u.connections.clone(),
            };
            p.allowed.insert(u.name.clone(), conns);
        }
        for h in &cfg.lan_hosts {
            if let IpNet::V4(n) = h.host {
                p.hosts.push((n, h.user.clone()));
                if let Some(mac) = h.mac.as_deref().and_then(parse_mac) {
                    p.macs.insert(n.addr(), mac);
                }
            }
        }
        Some(p)
    }

    /// Policy for tests and benchmarks: `routes`, host table, allowed connections.
    pub fn new(
        routes: Vec<DemandRoute>,
        hosts: Vec<(Ipv4Net, String)>,
        allowed: HashMap<String, Vec<String>>,
    ) -> Self {
        Self {
            routes,
            hosts,
            allowed,
            ..Self::default()
        }
    }

    /// Bind `host` to the link-layer address `mac` (`[[lan_hosts]] mac`): its packets dial
    /// only while the neighbour table resolves it to that address.
    pub fn bind_mac(&mut self, host: Ipv4Addr, mac: [u8; 6]) {
        self.macs.insert(host, mac);
    }

    /// Ask `n` instead of `/proc/net/arp` (tests).
    pub fn set_neighbours(&mut self, n: Neighbours) {
        self.neighbours = n;
    }

    /// Whether `host`'s MAC binding, if it has one, holds now.
    fn mac_ok(&self, host: Ipv4Addr) -> bool {
        self.macs
            .get(&host)
            .is_none_or(|want| self.neighbours.lookup(host) == Some(*want))
    }

    /// Add (or replace) `connection`'s activity filter.
    pub fn set_filter(&mut self, connection: &str, filter: ActivityFilter) {
        self.filters.insert(connection.to_string(), filter);
    }

    /// Send ICMP errors from `addr` (default: the placeholder peer address).
    pub fn set_icmp_source(&mut self, addr: Ipv4Addr) {
        self.icmp_from = Some(addr);
    }

    /// The demand connections.
    pub fn routes(&self) -> &[DemandRoute] {
        &self.routes
    }

    /// The demand connection `dst` is routed to (longest prefix, then config order).
    fn route_for(&self, dst: Ipv4Addr) -> Option<&DemandRoute> {
        let mut best: Option<(&DemandRoute, u8)> = None;
        for r in &self.routes {
            for n in &r.nets {
                if n.contains(&dst) && best.is_none_or(|(_, l)| n.prefix_len() > l) {
                    best = Some((r, n.prefix_len()));
                }
            }
        }
        best.map(|(r, _)| r)
    }

    /// The user a LAN host's traffic is credited to (longest prefix).
    pub fn user_of(&self, host: Ipv4Addr) -> Option<&str> {
        let mut best: Option<(&str, u8)> = None;
        for (n, u) in &self.hosts {
            if n.contains(&host) && best.is_none_or(|(_, l)| n.prefix_len() > l) {
                best = Some((u.as_str(), n.prefix_len()));
            }
        }
        best.map(|(u, _)| u)
    }

    fn may_dial(&self, user: &str, connection: &str) -> bool {
        self.allowed
            .get(user)
            .is_some_and(|c| c.iter().any(|c| c == connection))
    }
}

/// Counters of the demand path (shown with the dataplane's counters).
#[derive(Debug, Default)]
pub struct DemandCounters {
    /// Dials requested by LAN packets.
    pub triggered: AtomicU64,
    /// Packets refused (host unknown or not allowed): ICMP host-unreachable sent, within
    /// each host's ICMP budget.
    pub refused: AtomicU64,
    /// Refused packets that got no ICMP error: over their host's budget (a burst of 6, then
    /// one per second), so a refused host cannot make the gateway flood the LAN.
    pub refused_icmp_suppressed: AtomicU64,
    /// Packets the activity filter ignores while the link is down (dropped, no dial).
    pub ignored: AtomicU64,
    /// Packets held while dialling.
    pub held: AtomicU64,
    /// Held packets sent once the link came up.
    pub released: AtomicU64,
    /// Held packets dropped: over the byte bound, or older than the hold time.
    pub hold_dropped: AtomicU64,
    /// Packets that count as activity (the idle timer's input).
    pub activity: AtomicU64,
}

impl DemandCounters {
    fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// (name, value) pairs.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("dataplane.demand_triggered", g(&self.triggered)),
            ("dataplane.demand_refused", g(&self.refused)),
            (
                "dataplane.demand_refused_icmp_suppressed",
                g(&self.refused_icmp_suppressed),
            ),
            ("dataplane.demand_ignored", g(&self.ignored)),
            ("dataplane.demand_held", g(&self.held)),
            ("dataplane.demand_released", g(&self.released)),
            ("dataplane.demand_hold_dropped", g(&self.hold_dropped)),
            ("dataplane.demand_activity", g(&self.activity)),
        ]
    }
}

/// A LAN packet asks for a dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRequest {
    /// Connection to dial.
    pub connection: String,
    /// The user the source host maps to (the dial is credited to them).
    pub user: String,
    /// The LAN host that sent the packet.
    pub host: Ipv4Addr,
    /// When the packet arrived.
    pub at: Instant,
}

/// What the pump does with a LAN packet after the demand path saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum LanVerdict {
    /// Carry on as usual (nat-core, then the link if any).
    Continue(Vec<u8>),
    /// Taken: held for the dial, or dropped (counted).
    Consumed,
    /// Send this ICMP error back to the LAN.
    Reply(Vec<u8>),
}

#[derive(Debug)]
struct Pending {
    connection: String,
    since: Instant,
    hold: Duration,
    hold_bytes: usize,
}

/// The demand state machine.
#[derive(Debug)]
pub struct Demand {
    policy: DemandPolicy,
    held: VecDeque<(Instant, Vec<u8>)>,
    held_bytes: usize,
    pending: Option<Pending>,
    /// The attached link's connection, when one is attached.
    active: Option<String>,
    counters: std::sync::Arc<DemandCounters>,
    last_log: Option<Instant>,
    unlogged: u64,
    /// Per refused host: ICMP errors it may still get, and when that was last topped up.
    icmp_budget: HashMap<Ipv4Addr, (u32, Instant)>,
}

impl Demand {
    /// A demand path with `policy`, counting into `counters`.
    pub fn new(policy: DemandPolicy, counters: std::sync::Arc<DemandCounters>) -> Self {
        Self {
            policy,
            held: VecDeque::new(),
            held_bytes: 0,
            pending: None,
            active: None,
            counters,
            last_log: None,
            unlogged: 0,
            icmp_budget: HashMap::new(),
        }
    }

    /// Takes one ICMP error from `host`'s budget; false when it has none left.
    fn icmp_allowed(&mut self, now: Instant, host: Ipv4Addr) -> bool {
        if !self.icmp_budget.contains_key(&host) && self.icmp_budget.len() >= REFUSAL_ICMP_HOSTS {
            if let Some(oldest) = self
                .icmp_budget
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(h, _)| *h)
            {
                self.icmp_budget.remove(&oldest);
            }
        }
        let (tokens, since) = self
            .icmp_budget
            .entry(host)
            .or_insert((REFUSAL_ICMP_BURST, now));
        let earned = now.saturating_duration_since(*since).as_millis()
            / REFUSAL_ICMP_EVERY.as_millis().max(1);
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            *tokens = tokens.saturating_add(earned).min(REFUSAL_ICMP_BURST);
            *since = now;
        }
        if *tokens == 0 {
            return false;
        }
        *tokens -= 1;
        true
    }

    /// Replace the policy (configuration reload: `[[lan_hosts]]`, users' connections);
    /// held packets and a running dial are kept.
    pub fn set_policy(&mut self, policy: DemandPolicy) {
        self.policy = policy;
    }

    /// The policy in force.
    pub fn policy(&self) -> &DemandPolicy {
        &self.policy
    }

    /// The connection whose link is attached from now on (`None`: detached).
    pub fn set_active(&mut self, connection: Option<String>) {
        self.active = connection;
    }

    /// Packets held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// A packet from the LAN. `attached`: a link carries traffic now. The second value
    /// is a dial to ask the link manager for.
    pub fn from_lan(
        &mut self,
        now: Instant,
        pkt: Vec<u8>,
        attached: bool,
    ) -> (LanVerdict, Option<DialRequest>) {
        let Some(info) = packet_info(&pkt, false) else {
            return (LanVerdict::Continue(pkt), None);
        };
        if attached {
            let counts = self
                .active
                .as_ref()
                .and_then(|a| self.policy.filters.get(a))
                .is_none_or(|f| f.counts(&info));
            if counts {
                DemandCounters::inc(&self.counters.activity);
            }
            return (LanVerdict::Continue(pkt), None);
        }
        let Some(route) = self.policy.route_for(info.dst) else {
            return (LanVerdict::Continue(pkt), None);
        };
        let connection = route.connection.clone();
        let (hold, hold_bytes) = (route.hold, route.hold_bytes);
        if let Some(p) = &self.pending {
            // A dial is running: hold whatever goes that way, bounded.
            if p.connection == connection {
                self.hold(now, pkt);
                return (LanVerdict::Consumed, None);
            }
        }
        let counts = self
            .policy
            .filters
            .get(&connection)
            .is_none_or(|f| f.counts(&info));
        if !counts {
            DemandCounters::inc(&self.counters.ignored);
            return (LanVerdict::Consumed, None);
        }
        let user = self
            .policy
            .user_of(info.src)
            .filter(|u| self.policy.may_dial(u, &connection))
            .map(str::to_string);
        let Some(user) = user else {
            let why = "host not allowed this connection";
            return (self.refuse(now, &pkt, &info, &connection, why), None);
        };
        if !self.policy.mac_ok(info.src) {
            let why = "the host's [[lan_hosts]] mac does not match the neighbour table";
            return (self.refuse(now, &pkt, &info, &connection, why), None);
        }
        DemandCounters::inc(&self.counters.triggered);
        tracing::info!(host = %info.src, %user, %connection, dst = %info.dst, "dial on demand");
        self.pending = Some(Pending {
            connection: connection.clone(),
            since: now,
            hold,
            hold_bytes,
        });
        self.hold(now, pkt);
        (
            LanVerdict::Consumed,
            Some(DialRequest {
                connection,
                user,
                host: info.src,
                at: now,
            }),
        )
    }

    fn refuse(
        &mut self,
        now: Instant,
        pkt: &[u8],
        info: &PacketInfo<'_>,
        connection: &str,
        why: &str,
    ) -> LanVerdict {
        DemandCounters::inc(&self.counters.refused);
        if self
            .last_log
            .is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_LOG_EVERY)
        {
            let user = self.policy.user_of(info.src).unwrap_or("(no user)");
            tracing::warn!(
                host = %info.src, user, connection, dst = %info.dst,
                suppressed = self.unlogged,
                "demand dial refused: {why}"
            );
            self.last_log = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        // No ICMP error about an ICMP error (RFC 1812 4.3.2.7).
        let icmp_error = info.proto == 1 && matches!(info.sport, 3 | 4 | 5 | 11 | 12);
        if icmp_error || info.fragment {
            return LanVerdict::Consumed;
        }
        if !self.icmp_allowed(now, info.src) {
            DemandCounters::inc(&self.counters.refused_icmp_suppressed);
            return LanVerdict::Consumed;
        }
        // From the placeholder peer: the "far end" of the link that is not there. (Our own
        // addresses would be martians to the kernel reading them back from TUN.)
        let from = self.policy.icmp_from.unwrap_or(PLACEHOLDER_PEER);
        LanVerdict::Reply(nat_core::engine::build_icmp_error(
            from,
            pkt,
            nat_core::wire::icmp::types::DST_UNREACHABLE,
            1,
        ))
    }

    fn hold(&mut self, now: Instant, pkt: Vec<u8>) {
        let Some(p) = &self.pending else { return };
        if self.held_bytes + pkt.len() > p.hold_bytes {
            DemandCounters::inc(&self.counters.hold_dropped);
            return;
        }
        DemandCounters::inc(&self.counters.held);
        self.held_bytes += pkt.len();
        self.held.push_back((now, pkt));
    }

    /// A packet from the link, after de-masquerading, towards the LAN.
    pub fn from_link(&mut self, pkt: &[u8]) {
        let Some(info) = packet_info(pkt, true) else {
            return;
        };
        let counts = self
            .active
            .as_ref()
            .and_then(|a| self.policy.filters.get(a))
            .is_none_or(|f| f.counts(&info));
        if counts {
            DemandCounters::inc(&self.counters.activity);
        }
    }

    /// A link attached: the held packets still within their hold time, oldest first.
    pub fn release(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.handle_timeout(now);
        self.pending = None;
        self.held_bytes = 0;
        let out: Vec<Vec<u8>> = self.held.drain(..).map(|(_, p)| p).collect();
        self.counters
            .released
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        out
    }

    /// When [`Demand::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let p = self.pending.as_ref()?;
        let first = self.held.front().map(|(t, _)| *t + p.hold);
        Some(first.map_or(p.since + p.hold, |f| f.min(p.since + p.hold)))
    }

    /// Drop held packets older than the hold time; a dial that did not bring the link up
    /// within it no longer holds (the next packet asks again).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(p) = &self.pending else { return };
        let hold = p.hold;
        while let Some((t, pkt)) = self.held.front() {
            if now.saturating_duration_since(*t) < hold {
                break;
            }
            self.held_bytes = self.held_bytes.saturating_sub(pkt.len());
            self.held.pop_front();
            DemandCounters::inc(&self.counters.hold_dropped);
        }
        if now.saturating_duration_since(p.since) >= hold {
            self.pending = None;
        }
    }
}

/// The pump's demand path: the state machine plus where dial requests go.
#[derive(Debug)]
pub struct DemandPort {
    state: Demand,
    dials: mpsc::Sender<DialRequest>,
}

impl DemandPort {
    /// `state`, asking for dials on `dials`.
    pub fn new(state: Demand, dials: mpsc::Sender<DialRequest>) -> Self {
        Self { state, dials }
    }

    /// See [`Demand::from_lan`]; dial requests are sent without waiting (a full queue
    /// means one is already on its way).
    pub fn on_lan(&mut self, now: Instant, pkt: Vec<u8>, attached: bool) -> LanVerdict {
        let (v, dial) = self.state.from_lan(now, pkt, attached);
        if let Some(d) = dial {
            if self.dials.try_send(d).is_err() {
                tracing::debug!("demand dial request queue full");
            }
        }
        v
    }

    /// The state machine.
    pub fn state(&mut self) -> &mut Demand {
        &mut self.state
    }
}

#[cfg(test)]
mod tests;
