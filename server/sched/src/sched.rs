//! The scheduler: two-level deficit round robin (hosts, then flows within a host) with
//! sparse-flow priority, per-flow CoDel, a total byte limit and an optional shaper. Owns all
//! queued packets and the host/flow tables; must not parse packets or read a clock.
//!
//! Both levels use the same list discipline as fq_codel (RFC 8290 §4.2): an entity (host or flow)
//! that becomes backlogged joins the *new* list with one quantum of credit; the new list is served
//! before the *old* list; an entity whose credit runs out gets another quantum and moves to the
//! tail of the old list; an entity found empty leaves its list, except that an empty entity from
//! the new list moves to the old list if that is non-empty (so it cannot re-enter the new list at
//! once and starve the old one). A host's turn ends when its credit does; within the turn its own
//! flows take turns the same way.
//!
//! Memory is bounded by the byte limit: each packet is charged at least one byte plus the
//! configured overhead, and host and flow entries exist only while they hold packets or sit in a
//! list.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::codel::{Codel, Entry, FlowQueue, Tally};
use crate::config::{Config, ConfigError, Discipline, Params};
use crate::stats::{Stats, Windows};
use crate::{Instant, Packet};

/// Lateness the shaper forgives: if a dequeue comes less than this after the scheduled send
/// time, the schedule is kept (so timer jitter does not lower the rate); later than this, the
/// schedule restarts from `now` (so an idle period gives no burst credit).
const SHAPER_SLACK: Duration = Duration::from_millis(5);

/// Where a packet belongs: the LAN host it is for/from and a flow identifier within that host.
/// The caller derives both from the LAN side's original addresses (before masquerading on the
/// way out, after de-masquerading on the way in), e.g. `flow` = a hash of the 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Class {
    /// The LAN host.
    pub host: Ipv4Addr,
    /// The flow within the host.
    pub flow: u64,
}

/// What [`Scheduler::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The packet was queued (false: refused, larger than the whole limit, or a full FIFO).
    pub accepted: bool,
    /// Packets dropped from the fattest flows to make room.
    pub evicted: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    None,
    New,
    Old,
}

#[derive(Debug)]
struct Flow<P> {
    key: u64,
    host: usize,
    fq: FlowQueue<P>,
    deficit: i64,
    list: List,
    codel: Codel,
}

#[derive(Debug)]
struct Host {
    addr: Ipv4Addr,
    flows: HashMap<u64, usize>,
    new: VecDeque<usize>,
    old: VecDeque<usize>,
    bytes: u64,
    deficit: i64,
    list: List,
}

/// A slab: stable indices, reused after removal.
#[derive(Debug)]
struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
    fn insert(&mut self, t: T) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.items[i] = Some(t);
                i
            }
            None => {
                self.items.push(Some(t));
                self.items.len() - 1
            }
        }
    }
    fn remove(&mut self, i: usize) -> Option<T> {
        let t = self.items.get_mut(i)?.take();
        if t.is_some() {
            self.free.push(i);
        }
        t
    }
    fn len(&self) -> usize {
        self.items.len() - self.free.len()
    }
}

impl<T> std::ops::Index<usize> for Slab<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        match self.items.get(i) {
            Some(Some(t)) => t,
            // Indices come only from the lists and maps this module keeps consistent.
            _ => unreachable!("slab index {i} is vacant"),
        }
    }
}

impl<T> std::ops::IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        match self.items.get_mut(i) {
            Some(Some(t)) => t,
            _ => unreachable!("slab index {i} is vacant"),
        }
    }
}

/// The link scheduler. See the crate documentation for what it does; call [`Scheduler::enqueue`]
/// for each packet bound for the link, and [`Scheduler::dequeue`] whenever the link can take
/// one more.
#[derive(Debug)]
pub struct Scheduler<P> {
    config: Config,
    params: Params,
    flows: Slab<Flow<P>>,
    hosts: Slab<Host>,
    host_index: HashMap<Ipv4Addr, usize>,
    new_hosts: VecDeque<usize>,
    old_hosts: VecDeque<usize>,
    backlog_bytes: u64,
    backlog_packets: u64,
    next_send: Instant,
    /// Shaped: the packet DRR serves next is a sparse flow's (see [`Scheduler::dequeue`]).
    head_sparse: bool,
    /// Time of the latest enqueue (overflow drops happen then).
    last_enqueue: Instant,
    enqueued_packets: u64,
    sent_packets: u64,
    sent_bytes: u64,
    dropped_overflow: u64,
    dropped_codel: u64,
    ecn_marked: u64,
    windows: Windows,
}

impl<P: Packet> Scheduler<P> {
    /// A scheduler for `config`.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let params = config.params()?;
        Ok(Self {
            windows: Windows::new(params.stats_window),
            config,
            params,
            flows: Slab::new(),
            hosts: Slab::new(),
            host_index: HashMap::new(),
            new_hosts: VecDeque::new(),
            old_hosts: VecDeque::new(),
            backlog_bytes: 0,
            backlog_packets: 0,
            next_send: Instant::ZERO,
            head_sparse: false,
            last_enqueue: Instant::ZERO,
            enqueued_packets: 0,
            sent_packets: 0,
            sent_bytes: 0,
            dropped_overflow: 0,
            dropped_codel: 0,
            ecn_marked: 0,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The parameters derived from it.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Change the configuration (e.g. the link rate once the modem reports its CONNECT speed).
    /// Queued packets stay; if the new limit is smaller, the fattest flows are trimmed.
    pub fn reconfigure(&mut self, config: Config) -> Result<(), ConfigError> {
        let params = config.params()?;
        self.config = config;
        self.params = params;
        while self.backlog_bytes > self.params.limit_bytes {
            if !self.drop_from_fattest() {
                break;
            }
        }
        self.refresh_head();
        Ok(())
    }

    /// Charged bytes queued.
    pub fn backlog_bytes(&self) -> u64 {
        self.backlog_bytes
    }

    /// Packets queued.
    pub fn backlog_packets(&self) -> u64 {
        self.backlog_packets
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.backlog_packets == 0
    }

    fn charge(&self, pkt: &P) -> u64 {
        (pkt.len() as u64).max(1) + self.params.overhead
    }

    /// Queue `pkt` in `class`, arriving at `now`. On overflow the head of the fattest flow of the
    /// fattest host is dropped until the packet fits (in [`Discipline::Fifo`], the arrival is
    /// refused instead, like the bounded channel it replaces).
    pub fn enqueue(&mut self, now: Instant, pkt: P, class: Class) -> Enqueued {
        self.last_enqueue = now;
        let charge = self.charge(&pkt);
        if charge > self.params.limit_bytes
            || (self.params.discipline == Discipline::Fifo
                && self.backlog_bytes + charge > self.params.limit_bytes)
        {
            self.dropped_overflow += 1;
            self.charge_drops(now, charge);
            return Enqueued {
                accepted: false,
                evicted: 0,
            };
        }
        let class = match self.params.discipline {
            Discipline::Fair => class,
            Discipline::Fifo => Class {
                host: Ipv4Addr::UNSPECIFIED,
                flow: 0,
            },
        };
        let h = match self.host_index.get(&class.host) {
            Some(&h) => h,
            None => {
                let h = self.hosts.insert(Host {
                    addr: class.host,
                    flows: HashMap::new(),
                    new: VecDeque::new(),
                    old: VecDeque::new(),
                    bytes: 0,
                    deficit: 0,
                    list: List::None,
                });
                self.host_index.insert(class.host, h);
                h
            }
        };
        let f = match self.hosts[h].flows.get(&class.flow) {
            Some(&f) => f,
            None => {
                let f = self.flows.insert(Flow {
                    key: class.flow,
                    host: h,
                    fq: FlowQueue::new(),
                    deficit: 0,
                    list: List::None,
                    codel: Codel::default(),
                });
                self.hosts[h].flows.insert(class.flow, f);
                f
            }
        };
        let quantum = i64::from(self.params.quantum);
        let flow = &mut self.flows[f];
        flow.fq.push(Entry {
            pkt,
            enqueued: now,
            charge,
        });
        if flow.list == List::None {
            flow.list = List::New;
            flow.deficit = quantum;
            self.hosts[h].new.push_back(f);
        }
        let host = &mut self.hosts[h];
        host.bytes += charge;
        if host.list == List::None {
            host.list = List::New;
            host.deficit = quantum;
            self.new_hosts.push_back(h);
        }
        self.backlog_bytes += charge;
        self.backlog_packets += 1;
        self.enqueued_packets += 1;
        let mut evicted = 0;
        while self.backlog_bytes > self.params.limit_bytes && self.drop_from_fattest() {
            evicted += 1;
        }
        self.refresh_head();
        Enqueued {
            accepted: true,
            evicted,
        }
    }

    /// Drop the head packet of the fattest flow of the fattest host. False if nothing is queued.
    fn drop_from_fattest(&mut self) -> bool {
        let Some((_, &h)) = self
            .host_index
            .iter()
            .max_by_key(|(a, &h)| (self.hosts[h].bytes, std::cmp::Reverse(**a)))
        else {
            return false;
        };
        let Some((_, &f)) = self.hosts[h]
            .flows
            .iter()
            .max_by_key(|(k, &f)| (self.flows[f].fq.bytes, std::cmp::Reverse(**k)))
        else {
            return false;
        };
        let Some(e) = self.flows[f].fq.pop() else {
            return false;
        };
        self.hosts[h].bytes -= e.charge;
        self.backlog_bytes -= e.charge;
        self.backlog_packets -= 1;
        self.dropped_overflow += 1;
        self.charge_drops(self.last_enqueue, e.charge);
        // An emptied flow (and host) leaves its list now rather than at its next turn: while
        // the link stalls, arrivals in ever new flows must not pile up empty entries.
        if self.flows[f].fq.q.is_empty() {
            let host = &mut self.hosts[h];
            match self.flows[f].list {
                List::New => host.new.retain(|&x| x != f),
                List::Old => host.old.retain(|&x| x != f),
                List::None => {}
            }
            let key = self.flows[f].key;
            host.flows.remove(&key);
            self.flows.remove(f);
            if self.hosts[h].flows.is_empty() {
                match self.hosts[h].list {
                    List::New => self.new_hosts.retain(|&x| x != h),
                    List::Old => self.old_hosts.retain(|&x| x != h),
                    List::None => {}
                }
                self.hosts[h].list = List::None;
                self.free_host_if_idle(h);
            }
        }
        true
    }

    /// When the shaper allows the next packet, if shaping and something is queued. `None`:
    /// nothing to wait for (unshaped: dequeue whenever the link can take a packet). When the
    /// next packet belongs to a sparse flow this is up to [`Params::sparse_lead`] before the
    /// bulk's send time (see [`Scheduler::dequeue`]).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.params.shaper_rate {
            Some(_) if !self.is_empty() => Some(if self.head_sparse {
                self.next_send - self.params.sparse_lead
            } else {
                self.next_send
            }),
            _ => None,
        }
    }

    /// The next packet to send at `now`, or `None` if nothing is queued or the shaper says wait
    /// (see [`Scheduler::poll_timeout`]).
    ///
    /// Shaped, a packet of a sparse flow (one on its host's new list: a ping, a DNS answer, an
    /// ssh keystroke) may leave up to [`Params::sparse_lead`] (one full-size packet's time at
    /// the shaper rate) ahead of the schedule. It is charged like any other, so the bulk
    /// behind it waits that much longer and the long-run rate stays the configured one. In
    /// ingress mode the packet has already crossed the bottleneck, so holding it back would
    /// only add delay.
    pub fn dequeue(&mut self, now: Instant) -> Option<P> {
        let out = self.dequeue_inner(now);
        self.refresh_head();
        out
    }

    fn dequeue_inner(&mut self, now: Instant) -> Option<P> {
        let fifo = self.params.discipline == Discipline::Fifo;
        loop {
            if self.is_empty() {
                return None;
            }
            let (h, f, sparse) = self.select()?;
            if self.params.shaper_rate.is_some()
                && now < self.next_send
                && !(sparse && now + self.params.sparse_lead >= self.next_send)
            {
                return None;
            }
            let mut tally = Tally::default();
            let params = self.params;
            let flow = &mut self.flows[f];
            let got = if fifo {
                flow.fq.pop()
            } else {
                flow.codel.dequeue(&mut flow.fq, now, &params, &mut tally)
            };
            let removed = tally.dropped_bytes + got.as_ref().map_or(0, |e| e.charge);
            self.hosts[h].bytes -= removed;
            self.backlog_bytes -= removed;
            self.backlog_packets -= tally.dropped_packets + u64::from(got.is_some());
            self.dropped_codel += tally.dropped_packets;
            self.ecn_marked += tally.marked;
            self.charge_drops(now, tally.dropped_bytes);
            if let Some(e) = got {
                self.flows[f].deficit -= e.charge as i64;
                let host = &mut self.hosts[h];
                host.deficit -= e.charge as i64;
                let addr = host.addr;
                self.account_sent(now, addr, &e);
                return Some(e.pkt);
            }
            // CoDel dropped the flow's last packets: the next `select` removes it.
        }
    }

    /// Shaped: note whether the packet DRR serves next is a sparse flow's (for
    /// [`Scheduler::poll_timeout`]). The rotations this does are the ones the next dequeue
    /// would do anyway.
    fn refresh_head(&mut self) {
        self.head_sparse = self.params.shaper_rate.is_some()
            && !self.is_empty()
            && self.select().is_some_and(|(_, _, sparse)| sparse);
    }

    /// Run both DRR levels up to the next packet without taking it: hosts and flows whose
    /// credit is spent get a quantum and go to the tail of the old list; entries found empty
    /// leave their lists (an emptied entry from a new list moves to the old list if that is
    /// non-empty). Returns the host and flow to serve, both at the head of their lists with
    /// credit left, and whether the flow came from its host's new list (a sparse flow).
    fn select(&mut self) -> Option<(usize, usize, bool)> {
        let quantum = i64::from(self.params.quantum);
        loop {
            let (from_new, h) = match (self.new_hosts.front(), self.old_hosts.front()) {
                (Some(&h), _) => (true, h),
                (None, Some(&h)) => (false, h),
                (None, None) => return None,
            };
            if self.hosts[h].deficit <= 0 {
                self.hosts[h].deficit += quantum;
                self.pop_host(from_new);
                self.hosts[h].list = List::Old;
                self.old_hosts.push_back(h);
                continue;
            }
            match self.select_flow(h) {
                Some((f, sparse)) => return Some((h, f, sparse)),
                None => {
                    self.pop_host(from_new);
                    if from_new && !self.old_hosts.is_empty() {
                        self.hosts[h].list = List::Old;
                        self.old_hosts.push_back(h);
                    } else {
                        self.hosts[h].list = List::None;
                        self.free_host_if_idle(h);
                    }
                }
            }
        }
    }

    fn pop_host(&mut self, from_new: bool) {
        if from_new {
            self.new_hosts.pop_front();
        } else {
            self.old_hosts.pop_front();
        }
    }

    fn account_sent(&mut self, now: Instant, host: Ipv4Addr, e: &Entry<P>) {
        self.sent_packets += 1;
        self.sent_bytes += e.charge;
        self.windows.record(
            now,
            host,
            e.charge,
            now.saturating_duration_since(e.enqueued),
        );
        self.advance_shaper(now, e.charge);
    }

    /// Move the shaper's schedule on by `bytes` sent (or, in ingress mode, dropped) at `now`.
    fn advance_shaper(&mut self, now: Instant, bytes: u64) {
        if let Some(rate) = self.params.shaper_rate {
            let start = if now <= self.next_send + SHAPER_SLACK {
                self.next_send.max(now - SHAPER_SLACK)
            } else {
                now
            };
            let tx = Duration::from_nanos(
                u64::try_from(u128::from(bytes) * 1_000_000_000 / u128::from(rate))
                    .unwrap_or(u64::MAX),
            );
            self.next_send = start + tx;
        }
    }

    /// Ingress mode: dropped bytes already used the bottleneck, so they use the shaper too.
    fn charge_drops(&mut self, now: Instant, bytes: u64) {
        if self.params.ingress && bytes > 0 {
            self.advance_shaper(now, bytes);
        }
    }

    /// The inner DRR of `select`: the flow of host `h` to serve next and whether it is on the
    /// new list, or `None` if the host has nothing left (its flows are then out of their lists
    /// and freed).
    fn select_flow(&mut self, h: usize) -> Option<(usize, bool)> {
        let quantum = i64::from(self.params.quantum);
        loop {
            let host = &mut self.hosts[h];
            let (from_new, f) = match (host.new.front(), host.old.front()) {
                (Some(&f), _) => (true, f),
                (None, Some(&f)) => (false, f),
                (None, None) => return None,
            };
            if self.flows[f].deficit <= 0 {
                self.flows[f].deficit += quantum;
                let host = &mut self.hosts[h];
                if from_new {
                    host.new.pop_front();
                } else {
                    host.old.pop_front();
                }
                host.old.push_back(f);
                self.flows[f].list = List::Old;
                continue;
            }
            if !self.flows[f].fq.q.is_empty() {
                return Some((f, from_new));
            }
            // "If the queue is empty, exit the dropping state" (RFC 8289), and the flow leaves
            // its list.
            self.flows[f].codel.on_empty();
            let host = &mut self.hosts[h];
            if from_new {
                host.new.pop_front();
            } else {
                host.old.pop_front();
            }
            if from_new && !host.old.is_empty() {
                host.old.push_back(f);
                self.flows[f].list = List::Old;
            } else {
                self.flows[f].list = List::None;
                let key = self.flows[f].key;
                host.flows.remove(&key);
                self.flows.remove(f);
            }
        }
    }

    fn free_host_if_idle(&mut self, h: usize) {
        let host = &self.hosts[h];
        if host.list == List::None && host.flows.is_empty() {
            let addr = host.addr;
            self.host_index.remove(&addr);
            self.hosts.remove(h);
        }
    }

    /// Drop everything queued (the link went down). Counters are kept; the dropped packets are
    /// not counted as drops.
    pub fn clear(&mut self) {
        self.flows = Slab::new();
        self.hosts = Slab::new();
        self.host_index.clear();
        self.new_hosts.clear();
        self.old_hosts.clear();
        self.backlog_bytes = 0;
        self.backlog_packets = 0;
        self.head_sparse = false;
    }

    /// A snapshot of counters, backlog, sojourn quantiles and host shares.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            backlog_bytes: self.backlog_bytes,
            backlog_packets: self.backlog_packets,
            limit_bytes: self.params.limit_bytes,
            active_hosts: self
                .host_index
                .values()
                .filter(|&&h| self.hosts[h].bytes > 0)
                .count(),
            active_flows: self
                .flows
                .items
                .iter()
                .flatten()
                .filter(|f| !f.fq.q.is_empty())
                .count(),
            enqueued_packets: self.enqueued_packets,
            sent_packets: self.sent_packets,
            sent_bytes: self.sent_bytes,
            dropped_overflow: self.dropped_overflow,
            dropped_codel: self.dropped_codel,
            ecn_marked: self.ecn_marked,
            ..Stats::default()
        };
        self.windows.fill(&mut s);
        s
    }

    /// Host and flow entries held (backlogged or still listed); for tests.
    #[doc(hidden)]
    pub fn table_sizes(&self) -> (usize, usize) {
        (self.hosts.len(), self.flows.len())
    }

    /// Check the internal invariants (byte and packet sums, list membership); for tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mapped: usize = self
            .host_index
            .values()
            .map(|&h| self.hosts[h].flows.len())
            .sum();
        if mapped != self.flows.len() || self.host_index.len() != self.hosts.len() {
            return Err(format!(
                "tables: {} flows mapped, {} held; {} hosts indexed, {} held",
                mapped,
                self.flows.len(),
                self.host_index.len(),
                self.hosts.len()
            ));
        }
        let mut total_b = 0;
        let mut total_p = 0;
        for (addr, &h) in &self.host_index {
            let host = &self.hosts[h];
            if host.addr != *addr {
                return Err(format!("host {h} indexed as {addr} is {}", host.addr));
            }
            let mut hb = 0;
            for (&k, &f) in &host.flows {
                let flow = &self.flows[f];
                if flow.key != k || flow.host != h {
                    return Err(format!("flow {f} misfiled"));
                }
                let fb: u64 = flow.fq.q.iter().map(|e| e.charge).sum();
                if fb != flow.fq.bytes {
                    return Err(format!("flow {f} bytes {} != {fb}", flow.fq.bytes));
                }
                let listed = match flow.list {
                    List::New => host.new.iter().filter(|&&x| x == f).count(),
                    List::Old => host.old.iter().filter(|&&x| x == f).count(),
                    List::None => 0,
                };
                let expect = usize::from(flow.list != List::None);
                if listed != expect {
                    return Err(format!("flow {f} listed {listed} times as {:?}", flow.list));
                }
                if !flow.fq.q.is_empty() && flow.list == List::None {
                    return Err(format!("backlogged flow {f} in no list"));
                }
                hb += fb;
                total_p += flow.fq.q.len() as u64;
            }
            if hb != host.bytes {
                return Err(format!("host {addr} bytes {} != {hb}", host.bytes));
            }
            if host.bytes > 0 && host.list == List::None {
                return Err(format!("backlogged host {addr} in no list"));
            }
            total_b += hb;
        }
        if total_b != self.backlog_bytes || total_p != self.backlog_packets {
            return Err(format!(
                "backlog {}/{} != {total_b}/{total_p}",
                self.backlog_bytes, self.backlog_packets
            ));
        }
        if self.backlog_bytes > self.params.limit_bytes {
            return Err(format!(
                "backlog {} over limit {}",
                self.backlog_bytes, self.params.limit_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
