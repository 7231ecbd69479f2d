//! The masquerade table: entries keyed both ways, port pools, per-state timeouts, lazy timing-wheel
//! expiry, dynamic masquerade address and the change feed. Owns all masquerading state; must not
//! parse packets (see [`translate`]; [`MasqTable::warm`] reads headers through the wire views)
//! nor evaluate firewall rules.
//!
//! Layout: entries live in a `Vec<Entry>` slab addressed by `u32`; two open-addressing indexes
//! (outbound by (proto, saddr, sport, daddr, dport), inbound by (proto, mport, daddr, dport))
//! store 8-byte slots (hash bits + slab index), so a live mapping costs one 64-byte (cache-line) entry, 2 × 16
//! bytes of index at worst load, and a wheel record.

mod config;
pub mod hash;
mod index;
mod snapshot;
pub mod tcp;
pub mod translate;
mod wheel;

pub use config::{Filtering, Mapping, MasqConfig, MasqError, PortRange, Timeouts};
pub use snapshot::{ChangeFeed, EntrySnapshot, FreePorts, MasqChange};
pub use tcp::State;

use crate::time::{Duration, Instant};
use crate::wire::{self, ipv4};
use index::Index;
use std::net::Ipv4Addr;
use wheel::Wheel;

/// Sentinel for "no index".
pub(crate) const NIL: u32 = u32::MAX;

/// Entry flag: no packet came back yet (2.2 `NO_REPLY`; re-keyed by dynaddr).
pub(crate) const F_NO_REPLY: u16 = 0x0001;
/// Entry flag: remote port unknown (2.2 `NO_DPORT`, FTP PORT data entries).
pub(crate) const F_NO_DPORT: u16 = 0x0002;
/// Entry flag: inside port unknown (2.2 `NO_SPORT`, FTP PASV pre-entries).
pub(crate) const F_NO_SPORT: u16 = 0x0004;
/// Entry flag: destination-loose (2.2 `DLOOSE` for UDP; endpoint-independent mapping).
pub(crate) const F_LOOSE: u16 = 0x0008;
/// Entry flag: slot in use.
pub(crate) const F_LIVE: u16 = 0x0010;
/// Entry flag: a PASV command was seen on this FTP control entry.
pub(crate) const F_PASV: u16 = 0x0020;
/// Entry flag: remote address unknown (2.2 `NO_DADDR`, IRC DCC offers): made loose, and bound
/// to the first remote that connects (then no longer loose).
pub(crate) const F_NO_DADDR: u16 = 0x0040;

/// Protocol slot index: TCP 0, UDP 1, ICMP 2.
#[inline]
pub(crate) fn pidx(proto: u8) -> usize {
    match proto {
        crate::wire::proto::TCP => 0,
        crate::wire::proto::UDP => 1,
        _ => 2,
    }
}

/// A masquerade entry: exactly one 64-byte cache line.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub(crate) struct Entry {
    pub expires: u64,
    /// Packets translated (both directions).
    pub packets: u64,
    /// Bytes translated (IP total length, both directions).
    pub bytes: u64,
    pub saddr: u32,
    pub daddr: u32,
    pub sched: u32,
    pub gen: u32,
    pub control: u32,
    pub ext: u32,
    pub sport: u16,
    pub dport: u16,
    pub mport: u16,
    pub n_control: u16,
    pub proto: u8,
    pub state: u8,
    pub flags: u16,
}

impl Entry {
    const EMPTY: Entry = Entry {
        expires: 0,
        packets: 0,
        bytes: 0,
        saddr: 0,
        daddr: 0,
        sched: 0,
        gen: 0,
        control: NIL,
        ext: NIL,
        sport: 0,
        dport: 0,
        mport: 0,
        n_control: 0,
        proto: 0,
        state: 0,
        flags: 0,
    };
    #[inline]
    fn out_hash(&self, seed: u64) -> u64 {
        let (d, dp) = self.remote_key();
        let sp = if self.flags & F_NO_SPORT != 0 {
            0
        } else {
            self.sport
        };
        hash::out_key(seed, self.proto, self.saddr, sp, d, dp)
    }
    #[inline]
    fn in_hash(&self, seed: u64) -> u64 {
        let (d, dp) = self.remote_key();
        hash::in_key(seed, self.proto, self.mport, d, dp)
    }
    #[inline]
    fn remote_key(&self) -> (u32, u16) {
        if self.flags & F_LOOSE != 0 {
            (0, 0)
        } else if self.flags & F_NO_DPORT != 0 {
            (self.daddr, 0)
        } else {
            (self.daddr, self.dport)
        }
    }
}

/// TCP sequence adjustment record (`struct ip_masq_seq`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqRecord {
    /// Original sequence number of the last resizing packet.
    pub init_seq: u32,
    /// Current offset.
    pub delta: i32,
    /// Offset before the last resize.
    pub previous_delta: i32,
}

/// Rarely-needed per-entry data (helpers, sequence deltas, filtering permits).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ext {
    pub out_seq: SeqRecord,
    pub in_seq: SeqRecord,
    pub out_seq_on: bool,
    pub in_seq_on: bool,
    pub helper: Option<u8>,
    /// Remote (addr, port) pairs allowed in (RFC 4787 address[/port]-dependent filtering).
    pub permits: Vec<(u32, u16)>,
    /// IRC connections: a DCC offer split across segments being joined.
    pub irc: Option<Box<crate::helpers::irc::Joiner>>,
}

/// Stable identifier of an entry: slab index and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(pub u64);

impl EntryId {
    fn new(idx: u32, gen: u32) -> EntryId {
        EntryId((u64::from(gen) << 32) | u64::from(idx))
    }
    fn idx(self) -> u32 {
        self.0 as u32
    }
    fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

struct Pool {
    range: PortRange,
    /// Entries using each port.
    used: Vec<u32>,
    /// Ports held by a loose entry (exclusive).
    loose: Vec<bool>,
    live: u32,
    cap: u32,
    unused: u32,
}

impl Pool {
    fn new(range: PortRange, reuse: u32) -> Pool {
        let n = range.len() as usize;
        Pool {
            range,
            used: vec![0; n],
            loose: vec![false; n],
            live: 0,
            cap: range.len().saturating_mul(reuse.max(1)),
            unused: range.len(),
        }
    }
    fn slot(&self, port: u16) -> Option<usize> {
        if self.range.contains(port) {
            Some(usize::from(port - self.range.lo))
        } else {
            None
        }
    }
}

/// The masquerade table.
pub struct MasqTable {
    cfg: MasqConfig,
    addr: Option<Ipv4Addr>,
    entries: Vec<Entry>,
    exts: Vec<Option<Ext>>,
    free_exts: Vec<u32>,
    free: Vec<u32>,
    out_ix: Index,
    in_ix: Index,
    pools: [Pool; 3],
    rr: u32,
    n_loose: u32,
    n_no_sport: u32,
    n_no_dport: u32,
    live: u32,
    /// Entries ever created (for the `masq.entries.created` counter).
    created: u64,
    /// Live entries per LAN source address, kept only while a quota is set.
    per_host: std::collections::HashMap<u32, u32>,
    wheel: Wheel,
    changes: Vec<MasqChange>,
    changes_overflow: bool,
    generation: u64,
    helper_attach: Vec<u32>,
    pub(crate) helpers: crate::helpers::HelperRegistry,
}

impl std::fmt::Debug for MasqTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasqTable")
            .field("addr", &self.addr)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

/// Result of a lookup or creation: slab index.
pub(crate) type Idx = u32;

impl MasqTable {
    /// A new, empty table without a masquerade address.
    pub fn new(cfg: MasqConfig) -> MasqTable {
        let pools = [
            Pool::new(cfg.ports[0], cfg.port_reuse),
            Pool::new(cfg.ports[1], cfg.port_reuse),
            Pool::new(cfg.ports[2], cfg.port_reuse),
        ];
        MasqTable {
            cfg,
            addr: None,
            entries: Vec::new(),
            exts: Vec::new(),
            free_exts: Vec::new(),
            free: Vec::new(),
            out_ix: Index::new(),
            in_ix: Index::new(),
            pools,
            rr: 0,
            n_loose: 0,
            n_no_sport: 0,
            n_no_dport: 0,
            live: 0,
            created: 0,
            per_host: std::collections::HashMap::new(),
            wheel: Wheel::new(),
            changes: Vec::new(),
            changes_overflow: false,
            generation: 0,
            helper_attach: Vec::new(),
            helpers: crate::helpers::HelperRegistry::with_defaults(),
        }
    }

    /// Pre-size the slab and indexes for `n` entries (avoids growth pauses).
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
        self.free.reserve(n);
        self.out_ix.reserve(n);
        self.in_ix.reserve(n);
    }

    /// The configuration.
    pub fn config(&self) -> &MasqConfig {
        &self.cfg
    }

    /// Current masquerade address.
    pub fn masq_addr(&self) -> Option<Ipv4Addr> {
        self.addr
    }

    /// Number of entries created since the table was made (live or gone).
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.live as usize
    }

    /// True if no entries.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Monotonic counter bumped on every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Set (or clear) the masquerade address. Entries that never saw a reply are re-keyed to the
    /// new address (2.2 `ip_dynaddr`); the others are dropped (their peers knew the old address).
    /// Returns (re-keyed, dropped).
    pub fn set_masq_addr(&mut self, addr: Option<Ipv4Addr>) -> (usize, usize) {
        if self.addr == addr {
            return (0, 0);
        }
        let old = self.addr;
        self.addr = addr;
        if old.is_none() {
            return (0, 0);
        }
        let mut rekeyed = 0;
        let mut dropped = 0;
        for i in 0..self.entries.len() as u32 {
            let e = self.entries[i as usize];
            if e.flags & F_LIVE == 0 {
                continue;
            }
            if addr.is_some() && e.flags & F_NO_REPLY != 0 {
                // The inbound index does not include the masquerade address, so nothing to
                // re-hash: the entry simply answers on the new address from now on.
                rekeyed += 1;
                self.note(MasqChange::Updated(EntryId::new(i, e.gen)));
            } else {
                self.remove(i);
                dropped += 1;
            }
        }
        (rekeyed, dropped)
    }

    fn note(&mut self, c: MasqChange) {
        self.generation = self.generation.wrapping_add(1);
        if self.cfg.change_log_capacity == 0 || self.changes_overflow {
            return;
        }
        if self.changes.len() >= self.cfg.change_log_capacity {
            self.changes.clear();
            self.changes_overflow = true;
            return;
        }
        self.changes.push(c);
    }

    /// Changes since the last call (see [`ChangeFeed`]). Cheap: a bounded log of ids.
    pub fn drain_changes(&mut self) -> ChangeFeed {
        if std::mem::take(&mut self.changes_overflow) {
            self.changes.clear();
            return ChangeFeed::Resync;
        }
        ChangeFeed::Changes(std::mem::take(&mut self.changes))
    }

    #[inline]
    fn find_out(&self, proto: u8, s: u32, sp: u16, d: u32, dp: u16) -> Option<Idx> {
        let h = hash::out_key(self.cfg.hash_seed, proto, s, sp, d, dp);
        let es = &self.entries;
        self.out_ix.find(h, |i| {
            let e = &es[i as usize];
            let (ed, edp) = e.remote_key();
            let esp = if e.flags & F_NO_SPORT != 0 {
                0
            } else {
                e.sport
            };
            e.proto == proto && e.saddr == s && esp == sp && ed == d && edp == dp
        })
    }

    #[inline]
    fn find_in(&self, proto: u8, mp: u16, d: u32, dp: u16) -> Option<Idx> {
        let h = hash::in_key(self.cfg.hash_seed, proto, mp, d, dp);
        let es = &self.entries;
        self.in_ix.find(h, |i| {
            let e = &es[i as usize];
            let (ed, edp) = e.remote_key();
            e.proto == proto && e.mport == mp && ed == d && edp == dp
        })
    }

    /// Is the entry dead by time? Frees it (unless it controls others) and reports.
    #[inline]
    fn check_alive(&mut self, now: Instant, i: Idx) -> bool {
        let e = &self.entries[i as usize];
        if e.expires > now.as_millis() || e.n_control > 0 {
            return true;
        }
        self.remove(i);
        false
    }

    /// Warm the cache lines the lookup for this outbound (`outbound = true`) or inbound packet
    /// will touch: its index slot, then the entry that slot names. Touches only; no state
    /// changes. Warming a batch of packets back to back, then processing them, lets their
    /// memory accesses overlap (the returned value only keeps the loads from being optimised
    /// away). Malformed input is ignored.
    pub fn warm(&self, buf: &[u8], outbound: bool) -> u64 {
        if buf.len() < ipv4::HEADER_LEN {
            return 0;
        }
        let ip = ipv4::Packet::new_unchecked(buf);
        let (p, hl) = (ip.protocol(), ip.header_len());
        let Some((sp, dp)) = buf.get(hl..).and_then(|t| wire::ports(p, t)) else {
            return 0;
        };
        let (s, d) = (u32::from(ip.src_addr()), u32::from(ip.dst_addr()));
        let v = if outbound {
            self.out_ix
                .touch(hash::out_key(self.cfg.hash_seed, p, s, sp, d, dp))
        } else {
            self.in_ix
                .touch(hash::in_key(self.cfg.hash_seed, p, dp, s, sp))
        };
        let i = v as u32 as usize;
        // One entry is one cache line.
        v ^ self.entries.get(i).map_or(0, |e| e.expires)
    }

    /// Outbound lookup (inside → outside), 2.2 order: full key, destination-loose, then
    /// `NO_SPORT` entries (whose inside port is then filled in).
    pub(crate) fn lookup_out(
        &mut self,
        now: Instant,
        proto: u8,
        s: Ipv4Addr,
        sp: u16,
        d: Ipv4Addr,
        dp: u16,
    ) -> Option<Idx> {
        let (s, d) = (u32::from(s), u32::from(d));
        if let Some(i) = self.find_out(proto, s, sp, d, dp) {
            return self.check_alive(now, i).then_some(i);
        }
        if self.n_loose > 0 {
            if let Some(i) = self.find_out(proto, s, sp, 0, 0) {
                if self.check_alive(now, i) {
                    return Some(i);
                }
            }
        }
        if self.n_no_sport > 0 {
            if let Some(i) = self.find_out(proto, s, 0, d, dp) {
                if self.check_alive(now, i) {
                    self.unhash(i);
                    let e = &mut self.entries[i as usize];
                    e.sport = sp;
                    e.flags &= !F_NO_SPORT;
                    self.n_no_sport -= 1;
                    self.rehash(i);
                    let g = self.entries[i as usize].gen;
                    self.note(MasqChange::Updated(EntryId::new(i, g)));
                    return Some(i);
                }
            }
        }
        None
    }

    /// Inbound lookup (outside → masquerade address): full key, `NO_DPORT` entries (remote port
    /// filled from this first reply), destination-loose entries (filtered per config).
    pub(crate) fn lookup_in(
        &mut self,
        now: Instant,
        proto: u8,
        mp: u16,
        d: Ipv4Addr,
        dp: u16,
    ) -> Option<Idx> {
        let d = u32::from(d);
        if let Some(i) = self.find_in(proto, mp, d, dp) {
            return self.check_alive(now, i).then_some(i);
        }
        if self.n_no_dport > 0 {
            if let Some(i) = self.find_in(proto, mp, d, 0) {
                if self.check_alive(now, i) {
                    self.unhash(i);
                    let e = &mut self.entries[i as usize];
                    e.dport = dp;
                    e.flags &= !F_NO_DPORT;
                    self.n_no_dport -= 1;
                    self.rehash(i);
                    let g = self.entries[i as usize].gen;
                    self.note(MasqChange::Updated(EntryId::new(i, g)));
                    return Some(i);
                }
            }
        }
        if self.n_loose > 0 {
            if let Some(i) = self.find_in(proto, mp, 0, 0) {
                if !self.check_alive(now, i) {
                    return None;
                }
                if self.entries[i as usize].flags & F_NO_DADDR != 0 {
                    self.bind_remote(i, d, dp);
                    return Some(i);
                }
                if self.cfg.mapping == Mapping::EndpointIndependent
                    && self.cfg.filtering != Filtering::EndpointIndependent
                {
                    // RFC 4787 REQ-8: address(-and-port)-dependent filtering — only remotes the
                    // inside endpoint has sent to may reach it.
                    let port_too = self.cfg.filtering == Filtering::AddressPortDependent;
                    let ok = self.ext(i).is_some_and(|x| {
                        x.permits
                            .iter()
                            .any(|&(a, p)| a == d && (!port_too || p == dp))
                    });
                    if !ok {
                        return None;
                    }
                }
                // 2.2 DLOOSE: a reply from anywhere updates the remote shown for the entry.
                let e = &mut self.entries[i as usize];
                e.daddr = d;
                e.dport = dp;
                return Some(i);
            }
        }
        None
    }

    /// 2.2 `NO_DADDR`/`NO_DPORT` filled in by the first inbound packet: the entry stops being
    /// loose and answers that remote only.
    fn bind_remote(&mut self, i: Idx, d: u32, dp: u16) {
        self.unhash(i);
        let e = &mut self.entries[i as usize];
        let had_no_dport = e.flags & F_NO_DPORT != 0;
        e.daddr = d;
        e.dport = dp;
        e.flags &= !(F_NO_DADDR | F_NO_DPORT | F_LOOSE);
        let (p, mport, gen) = (e.proto, e.mport, e.gen);
        self.n_loose -= 1;
        if had_no_dport {
            self.n_no_dport -= 1;
        }
        let pool = &mut self.pools[pidx(p)];
        if let Some(slot) = pool.slot(mport) {
            pool.loose[slot] = false;
        }
        self.rehash(i);
        self.note(MasqChange::Updated(EntryId::new(i, gen)));
    }

    /// Record an outbound destination for filtering permits (EIM with dependent filtering).
    pub(crate) fn permit(&mut self, i: Idx, d: Ipv4Addr, dp: u16) {
        if self.cfg.mapping != Mapping::EndpointIndependent
            || self.cfg.filtering == Filtering::EndpointIndependent
        {
            return;
        }
        let d = u32::from(d);
        let x = self.ext_mut(i);
        if !x.permits.iter().any(|&(a, p)| a == d && p == dp) {
            if x.permits.len() >= 64 {
                x.permits.remove(0);
            }
            x.permits.push((d, dp));
        }
    }

    fn unhash(&mut self, i: Idx) {
        let e = self.entries[i as usize];
        let seed = self.cfg.hash_seed;
        self.out_ix.remove(e.out_hash(seed), i);
        self.in_ix.remove(e.in_hash(seed), i);
    }

    fn rehash(&mut self, i: Idx) {
        let e = &self.entries[i as usize];
        let seed = self.cfg.hash_seed;
        let (ho, hi) = (e.out_hash(seed), e.in_hash(seed));
        self.out_ix.insert(ho, i);
        self.in_ix.insert(hi, i);
    }

    fn port_ok(&self, proto: u8, port: u16, d: u32, dp: u16, loose: bool) -> bool {
        let pool = &self.pools[pidx(proto)];
        let Some(slot) = pool.slot(port) else {
            return false;
        };
        if pool.loose[slot] {
            return false;
        }
        if loose || self.cfg.port_reuse <= 1 {
            return pool.used[slot] == 0;
        }
        if pool.used[slot] >= self.cfg.port_reuse {
            return false;
        }
        // 2.2: the 5-tuple (proto, maddr, mport, daddr, dport) must be unused.
        self.find_in(proto, port, d, dp).is_none()
    }

    /// Create an entry. `mport` fixes the masquerade port (2.2 `MPORT`); otherwise ports are
    /// taken round-robin from the protocol's pool.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create(
        &mut self,
        now: Instant,
        proto: u8,
        s: Ipv4Addr,
        sp: u16,
        d: Ipv4Addr,
        dp: u16,
        extra_flags: u16,
        mport: Option<u16>,
    ) -> Result<Idx, MasqError> {
        if self.addr.is_none() {
            return Err(MasqError::NoAddress);
        }
        if self.live >= self.cfg.max_entries {
            return Err(MasqError::TableFull);
        }
        if self.cfg.max_per_host > 0
            && self.per_host.get(&u32::from(s)).copied().unwrap_or(0) >= self.cfg.max_per_host
        {
            return Err(MasqError::HostQuota);
        }
        let pi = pidx(proto);
        let mut flags = F_LIVE | F_NO_REPLY | extra_flags;
        if proto != crate::wire::proto::ICMP && extra_flags & (F_NO_DPORT | F_NO_SPORT) == 0 {
            let loose = match self.cfg.mapping {
                Mapping::Linux22 => proto == crate::wire::proto::UDP,
                Mapping::EndpointIndependent => true,
                Mapping::AddressPortDependent => false,
            };
            if loose {
                flags |= F_LOOSE;
            }
        }
        let loose = flags & F_LOOSE != 0;
        if self.pools[pi].live >= self.pools[pi].cap {
            return Err(MasqError::PortsExhausted);
        }
        let (du, dpk) = (u32::from(d), if flags & F_NO_DPORT != 0 { 0 } else { dp });
        let port = match mport {
            Some(p) => {
                if !self.port_ok(proto, p, du, dpk, loose) {
                    return Err(MasqError::AlreadyUsed);
                }
                p
            }
            None => {
                let range = self.pools[pi].range;
                let n = range.len();
                if loose && self.pools[pi].unused == 0 {
                    return Err(MasqError::PortsExhausted);
                }
                let mut found = None;
                for _ in 0..n {
                    let cand = range.lo.wrapping_add((self.rr % n) as u16);
                    self.rr = self.rr.wrapping_add(1);
                    if self.port_ok(proto, cand, du, dpk, loose) {
                        found = Some(cand);
                        break;
                    }
                }
                found.ok_or(MasqError::PortsExhausted)?
            }
        };
        let timeout = self.cfg.timeouts.for_state(initial_state(proto, flags));
        let expires = now + timeout;
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry::EMPTY);
                (self.entries.len() - 1) as u32
            }
        };
        let gen = self.entries[idx as usize].gen;
        self.entries[idx as usize] = Entry {
            expires: expires.as_millis(),
            packets: 0,
            bytes: 0,
            saddr: u32::from(s),
            daddr: du,
            sched: 0,
            gen,
            control: NIL,
            ext: NIL,
            sport: if flags & F_NO_SPORT != 0 { 0 } else { sp },
            dport: dpk,
            mport: port,
            n_control: 0,
            proto,
            state: initial_state(proto, flags) as u8,
            flags,
        };
        let pool = &mut self.pools[pi];
        if let Some(slot) = pool.slot(port) {
            if pool.used[slot] == 0 {
                pool.unused -= 1;
            }
            pool.used[slot] += 1;
            pool.loose[slot] = loose;
        }
        pool.live += 1;
        if loose {
            self.n_loose += 1;
        }
        if flags & F_NO_SPORT != 0 {
            self.n_no_sport += 1;
        }
        if flags & F_NO_DPORT != 0 {
            self.n_no_dport += 1;
        }
        self.live += 1;
        self.created = self.created.wrapping_add(1);
        if self.cfg.max_per_host > 0 {
            *self.per_host.entry(u32::from(s)).or_insert(0) += 1;
        }
        self.rehash(idx);
        self.entries[idx as usize].sched = self.wheel.schedule(idx, expires, now);
        self.note(MasqChange::Added(EntryId::new(idx, gen)));
        Ok(idx)
    }

    /// Remove an entry now (frees its port, releases its controller).
    pub(crate) fn remove(&mut self, i: Idx) {
        let e = self.entries[i as usize];
        if e.flags & F_LIVE == 0 {
            return;
        }
        self.unhash(i);
        let pi = pidx(e.proto);
        let pool = &mut self.pools[pi];
        if let Some(slot) = pool.slot(e.mport) {
            pool.used[slot] = pool.used[slot].saturating_sub(1);
            if pool.used[slot] == 0 {
                pool.unused += 1;
                pool.loose[slot] = false;
            }
        }
        pool.live = pool.live.saturating_sub(1);
        if self.cfg.max_per_host > 0 {
            if let std::collections::hash_map::Entry::Occupied(mut o) = self.per_host.entry(e.saddr)
            {
                *o.get_mut() -= 1;
                if *o.get() == 0 {
                    o.remove();
                }
            }
        }
        if e.flags & F_LOOSE != 0 {
            self.n_loose -= 1;
        }
        if e.flags & F_NO_SPORT != 0 {
            self.n_no_sport -= 1;
        }
        if e.flags & F_NO_DPORT != 0 {
            self.n_no_dport -= 1;
        }
        if e.control != NIL {
            let c = &mut self.entries[e.control as usize];
            c.n_control = c.n_control.saturating_sub(1);
            let (ci, cg) = (e.control, c.gen);
            self.note(MasqChange::Updated(EntryId::new(ci, cg)));
        }
        if e.n_control > 0 {
            // Orphan the dependants (only reachable through set_masq_addr / explicit flush).
            for j in 0..self.entries.len() {
                if self.entries[j].control == i && self.entries[j].flags & F_LIVE != 0 {
                    self.entries[j].control = NIL;
                }
            }
        }
        if e.ext != NIL {
            if let Some(h) = self.exts[e.ext as usize].as_ref().and_then(|x| x.helper) {
                if let Some(n) = self.helper_attach.get_mut(usize::from(h)) {
                    *n = n.saturating_sub(1);
                }
            }
            self.exts[e.ext as usize] = None;
            self.free_exts.push(e.ext);
        }
        let ent = &mut self.entries[i as usize];
        ent.flags = 0;
        ent.proto = 0;
        ent.control = NIL;
        ent.ext = NIL;
        ent.gen = ent.gen.wrapping_add(1);
        self.free.push(i);
        self.live -= 1;
        self.note(MasqChange::Removed(EntryId::new(i, e.gen)));
    }

    /// Remove every entry.
    pub fn flush(&mut self) {
        for i in 0..self.entries.len() as u32 {
            if self.entries[i as usize].flags & F_LIVE != 0 {
                self.entries[i as usize].n_control = 0;
                self.remove(i);
            }
        }
    }

    /// Re-arm the timer for the entry's current state (each packet does this).
    #[inline]
    pub(crate) fn touch(&mut self, now: Instant, i: Idx) {
        let e = &self.entries[i as usize];
        let t = self.cfg.timeouts.for_state(State::from_u8(e.state));
        self.set_expiry(now, i, now + t);
    }

    #[inline]
    fn set_expiry(&mut self, now: Instant, i: Idx, at: Instant) {
        let e = &mut self.entries[i as usize];
        e.expires = at.as_millis();
        if self.wheel.is_earlier(at, e.sched) {
            e.sched = self.wheel.schedule(i, at, now);
        }
    }

    /// Note an inbound packet for the entry (clears NO_REPLY).
    #[inline]
    pub(crate) fn saw_reply(&mut self, i: Idx) {
        let e = &mut self.entries[i as usize];
        if e.flags & F_NO_REPLY != 0 {
            e.flags &= !F_NO_REPLY;
            let g = e.gen;
            self.note(MasqChange::Updated(EntryId::new(i, g)));
        }
    }

    /// Count a translated packet of `len` bytes.
    #[inline]
    pub(crate) fn account(&mut self, i: Idx, len: usize) {
        let e = &mut self.entries[i as usize];
        // Statistics: wrap rather than check for overflow on every packet.
        e.packets = e.packets.wrapping_add(1);
        e.bytes = e.bytes.wrapping_add(len as u64);
    }

    /// Apply the TCP state machine for a segment and re-arm the timer.
    #[inline]
    pub(crate) fn tcp_update(&mut self, now: Instant, i: Idx, outbound: bool, flags: u16) {
        let e = &mut self.entries[i as usize];
        let old = State::from_u8(e.state);
        let new = tcp::next(old, outbound, flags);
        if new != old {
            e.state = new as u8;
            let g = e.gen;
            self.note(MasqChange::Updated(EntryId::new(i, g)));
        }
        self.touch(now, i);
    }

    pub(crate) fn ext(&self, i: Idx) -> Option<&Ext> {
        let x = self.entries[i as usize].ext;
        if x == NIL {
            None
        } else {
            self.exts.get(x as usize).and_then(|o| o.as_ref())
        }
    }

    pub(crate) fn ext_mut(&mut self, i: Idx) -> &mut Ext {
        let x = self.entries[i as usize].ext;
        let xi = if x == NIL {
            let xi = match self.free_exts.pop() {
                Some(xi) => {
                    self.exts[xi as usize] = Some(Ext::default());
                    xi
                }
                None => {
                    self.exts.push(Some(Ext::default()));
                    (self.exts.len() - 1) as u32
                }
            };
            self.entries[i as usize].ext = xi;
            xi
        } else {
            x
        };
        self.exts[xi as usize].get_or_insert_with(Ext::default)
    }

    /// Bind helper number `h` to an entry.
    pub(crate) fn bind_helper(&mut self, i: Idx, h: u8) {
        self.ext_mut(i).helper = Some(h);
        if self.helper_attach.len() <= usize::from(h) {
            self.helper_attach.resize(usize::from(h) + 1, 0);
        }
        self.helper_attach[usize::from(h)] += 1;
    }

    /// The application-helper registry (`ftp` on TCP 21 by default).
    pub fn helpers(&self) -> &crate::helpers::HelperRegistry {
        &self.helpers
    }

    /// The helper registry, to register or remove helper ports (new entries only).
    pub fn helpers_mut(&mut self) -> &mut crate::helpers::HelperRegistry {
        &mut self.helpers
    }

    /// Number of entries bound to helper `h`.
    pub fn helper_attached(&self, h: u8) -> u32 {
        self.helper_attach.get(usize::from(h)).copied().unwrap_or(0)
    }

    /// Make `child` controlled by `ctl` (2.2 `ip_masq_control_add`).
    pub(crate) fn set_control(&mut self, child: Idx, ctl: Idx) {
        if self.entries[child as usize].control != NIL {
            return;
        }
        self.entries[child as usize].control = ctl;
        let c = &mut self.entries[ctl as usize];
        c.n_control = c.n_control.saturating_add(1);
        let g = c.gen;
        self.note(MasqChange::Updated(EntryId::new(ctl, g)));
    }

    pub(crate) fn set_flag(&mut self, i: Idx, f: u16, on: bool) {
        let e = &mut self.entries[i as usize];
        if on {
            e.flags |= f;
        } else {
            e.flags &= !f;
        }
    }

    pub(crate) fn note_updated(&mut self, i: Idx) {
        let g = self.entries[i as usize].gen;
        self.note(MasqChange::Updated(EntryId::new(i, g)));
    }

    /// When [`MasqTable::handle_timeout`] wants to be called next (may be in the past: then
    /// call it now; it does a bounded amount of work per call).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.live == 0 && self.wheel.is_idle() {
            return None;
        }
        Some(self.wheel.next_due())
    }

    /// Expire due entries. Work is bounded (at most 512 wheel records per call) so a
    /// mass expiry never stalls the packet path; call again while `poll_timeout() <= now`.
    /// Returns the number of entries freed.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        let mut freed = 0;
        let mut budget = wheel::BUDGET;
        while budget > 0 {
            let Some((i, tick)) = self.wheel.next_record(now, &mut budget) else {
                break;
            };
            let e = self.entries[i as usize];
            if e.flags & F_LIVE == 0 || e.sched != tick {
                continue; // stale record
            }
            if e.expires > now.as_millis() {
                let at = Instant::from_millis(e.expires);
                self.entries[i as usize].sched = self.wheel.schedule(i, at, now);
            } else if e.n_control > 0 {
                // 2.2: an entry that still controls others is retried after TIME_WAIT.
                let at = now + self.cfg.timeouts.tcp[State::TimeWait as usize];
                self.entries[i as usize].expires = at.as_millis();
                self.entries[i as usize].sched = self.wheel.schedule(i, at, now);
            } else {
                self.remove(i);
                freed += 1;
            }
        }
        freed
    }
}

fn initial_state(proto: u8, flags: u16) -> State {
    match proto {
        crate::wire::proto::TCP if flags & (F_NO_DPORT | F_NO_SPORT) != 0 => State::Listen,
        crate::wire::proto::TCP => State::None,
        crate::wire::proto::UDP => State::Udp,
        _ => State::Icmp,
    }
}

#[cfg(test)]
mod tests;
