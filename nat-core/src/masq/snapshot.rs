//! Views of the masquerade table: change feed, entry snapshots, free ports, timeouts and
//! sizing. Moved out of `masq/mod.rs` as it was (no change).

use super::*;

/// One change to the table since the last [`MasqTable::drain_changes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasqChange {
    /// A new entry.
    Added(EntryId),
    /// State, remote, sequence record or control count changed (expiry countdown is not a
    /// change: clients compute it).
    Updated(EntryId),
    /// The entry is gone.
    Removed(EntryId),
}

/// What [`MasqTable::drain_changes`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeFeed {
    /// The changes in order.
    Changes(Vec<MasqChange>),
    /// Too many changes accumulated: take a fresh snapshot.
    Resync,
}

/// Structured view of one entry for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySnapshot {
    /// Stable id.
    pub id: EntryId,
    /// IP protocol number.
    pub proto: u8,
    /// Inside address and port (ICMP: id).
    pub lan: (Ipv4Addr, u16),
    /// Masquerade address and port.
    pub masq: (Ipv4Addr, u16),
    /// Remote address and port (ICMP: type<<8|code).
    pub remote: (Ipv4Addr, u16),
    /// Remaining time in hundredths of a second.
    pub expire_cs: u64,
    /// State.
    pub state: State,
    /// Outbound sequence record.
    pub out_seq: SeqRecord,
    /// Helper bound to the entry, if any.
    pub helper: Option<&'static str>,
    /// Remote port not yet known.
    pub no_remote_port: bool,
    /// Inside port not yet known.
    pub no_lan_port: bool,
    /// No reply seen yet.
    pub no_reply: bool,
    /// Number of entries this one controls.
    pub n_control: u16,
    /// Packets translated through this entry (both directions).
    pub packets: u64,
    /// Bytes (IP total length) translated through this entry (both directions).
    pub bytes: u64,
    /// The controlling entry, if any.
    pub controlled_by: Option<EntryId>,
}

/// Free and total ports per protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FreePorts {
    /// TCP (free, total).
    pub tcp: (u32, u32),
    /// UDP (free, total).
    pub udp: (u32, u32),
    /// ICMP (free, total).
    pub icmp: (u32, u32),
}

impl MasqTable {
    /// Free and total port counts per protocol (total = ports × reuse, as 2.2's `free=` header).
    pub fn free_ports(&self) -> FreePorts {
        let f = |p: &Pool| (p.cap.saturating_sub(p.live), p.cap);
        FreePorts {
            tcp: f(&self.pools[0]),
            udp: f(&self.pools[1]),
            icmp: f(&self.pools[2]),
        }
    }

    /// Current timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.cfg.timeouts
    }

    /// `ipchains -M -S tcp tcpfin udp`: set ESTABLISHED, FIN_WAIT and UDP timeouts; a zero leaves
    /// that timeout unchanged (2.2 `ip_fw_masq_timeouts`).
    pub fn set_timeouts(&mut self, tcp: Duration, tcpfin: Duration, udp: Duration) {
        if tcp != Duration::ZERO {
            self.cfg.timeouts.tcp[State::Established as usize] = tcp;
        }
        if tcpfin != Duration::ZERO {
            self.cfg.timeouts.tcp[State::FinWait as usize] = tcpfin;
        }
        if udp != Duration::ZERO {
            self.cfg.timeouts.udp = udp;
        }
    }

    fn snap(
        &self,
        now: Instant,
        i: Idx,
        helper_name: &dyn Fn(u8) -> &'static str,
    ) -> EntrySnapshot {
        let e = &self.entries[i as usize];
        let x = self.ext(i);
        let maddr = self.addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
        EntrySnapshot {
            id: EntryId::new(i, e.gen),
            proto: e.proto,
            lan: (Ipv4Addr::from(e.saddr), e.sport),
            masq: (maddr, e.mport),
            remote: (Ipv4Addr::from(e.daddr), e.dport),
            expire_cs: e.expires.saturating_sub(now.as_millis()) / 10,
            state: State::from_u8(e.state),
            out_seq: x.map(|x| x.out_seq).unwrap_or_default(),
            helper: x.and_then(|x| x.helper).map(helper_name),
            no_remote_port: e.flags & F_NO_DPORT != 0,
            no_lan_port: e.flags & F_NO_SPORT != 0,
            no_reply: e.flags & F_NO_REPLY != 0,
            n_control: e.n_control,
            packets: e.packets,
            bytes: e.bytes,
            controlled_by: (e.control != NIL)
                .then(|| EntryId::new(e.control, self.entries[e.control as usize].gen)),
        }
    }

    /// Snapshot of one entry by id (None if it is gone).
    pub fn get(&self, now: Instant, id: EntryId) -> Option<EntrySnapshot> {
        let e = self.entries.get(id.idx() as usize)?;
        if e.flags & F_LIVE == 0 || e.gen != id.gen() {
            return None;
        }
        Some(self.snap(now, id.idx(), &crate::helpers::helper_name))
    }

    /// Snapshot of all live entries, in slab order (stable for the life of each entry).
    pub fn snapshot(&self, now: Instant) -> Vec<EntrySnapshot> {
        (0..self.entries.len() as u32)
            .filter(|&i| self.entries[i as usize].flags & F_LIVE != 0)
            .map(|i| self.snap(now, i, &crate::helpers::helper_name))
            .collect()
    }

    /// Up to `max` live entries from slab slot `from` on, and the slot to continue from
    /// (`None` at the end): lets a caller copy a large table in bounded pieces instead of
    /// all at once ([`snapshot`](Self::snapshot)).
    pub fn snapshot_from(
        &self,
        now: Instant,
        from: u32,
        max: usize,
    ) -> (Vec<EntrySnapshot>, Option<u32>) {
        let end = self.entries.len() as u32;
        let mut out = Vec::with_capacity(max.min(self.live as usize));
        let mut i = from;
        while i < end {
            if out.len() >= max {
                return (out, Some(i));
            }
            if self.entries[i as usize].flags & F_LIVE != 0 {
                out.push(self.snap(now, i, &crate::helpers::helper_name));
            }
            i += 1;
        }
        (out, None)
    }

    /// Bytes of heap this table holds (slab, indexes, pools, wheel), for sizing reports.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.out_ix.heap_bytes()
            + self.in_ix.heap_bytes()
            + self.free.capacity() * 4
            + self.wheel.heap_bytes()
    }
}
