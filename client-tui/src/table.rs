//! Masquerade table model: entries by id, snapshot/delta application, sorting by any column,
//! a text filter and a cached ordered view for cheap visible-window extraction.
//!
//! Owns no I/O and reads no clock: every time is passed in. It must not draw; `ui` reads rows
//! through [`MasqTable::window`]. The ordered view is kept incrementally for small deltas and
//! rebuilt only when the sort, the filter or a large batch changes it, so a 100,000-entry table
//! costs nothing per frame.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_proto::v1::{MasqEntry, Protocol};

/// Column the table is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Protocol (TCP, UDP, ICMP).
    Proto,
    /// LAN address then port.
    Lan,
    /// Masquerade port.
    Masq,
    /// Remote address then port.
    Remote,
    /// TCP state name.
    State,
    /// Bytes both ways.
    Bytes,
    /// Packets both ways.
    Packets,
    /// Time left before expiry (absolute deadline, so the order does not move with time).
    Expire,
}

impl SortKey {
    /// Every key, in column order.
    pub const ALL: [SortKey; 8] = [
        SortKey::Proto,
        SortKey::Lan,
        SortKey::Masq,
        SortKey::Remote,
        SortKey::State,
        SortKey::Bytes,
        SortKey::Packets,
        SortKey::Expire,
    ];

    /// The next column (wraps), used by the `s` key.
    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }

    /// Column title.
    pub fn title(self) -> &'static str {
        match self {
            SortKey::Proto => "Proto",
            SortKey::Lan => "LAN address",
            SortKey::Masq => "Masq",
            SortKey::Remote => "Remote address",
            SortKey::State => "State",
            SortKey::Bytes => "Bytes",
            SortKey::Packets => "Pkts",
            SortKey::Expire => "Expire",
        }
    }
}

/// One entry as kept by the table: the wire value plus what sorting and filtering need.
#[derive(Clone, Debug)]
pub struct Row {
    /// The entry as last received.
    pub entry: MasqEntry,
    /// When it was received (the countdown starts from here).
    pub received: Instant,
    deadline: Instant,
    lan: (u32, u32),
    remote: (u32, u32),
    text: String,
}

impl Row {
    fn new(entry: MasqEntry, received: Instant) -> Row {
        let deadline = received + Duration::from_millis(entry.expire_centis.saturating_mul(10));
        let lan = (ip_key(&entry.lan_address), entry.lan_port);
        let remote = (ip_key(&entry.remote_address), entry.remote_port);
        let mut text = String::with_capacity(80);
        // Writing into a String cannot fail.
        let _ = write!(
            text,
            "{} {}:{} {} {}:{} {} {}",
            proto_name(entry.protocol),
            entry.lan_address,
            entry.lan_port,
            entry.masq_port,
            entry.remote_address,
            entry.remote_port,
            entry.state,
            entry.helper
        );
        text.make_ascii_lowercase();
        Row {
            entry,
            received,
            deadline,
            lan,
            remote,
            text,
        }
    }

    /// Hundredths of a second left at `now` (0 once expired): `expire_centis` minus the time
    /// elapsed since the entry was received.
    pub fn remaining_centis(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.received).as_millis() / 10;
        self.entry
            .expire_centis
            .saturating_sub(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    fn bytes(&self) -> u64 {
        self.entry.bytes_in.saturating_add(self.entry.bytes_out)
    }

    fn packets(&self) -> u64 {
        self.entry.packets_in.saturating_add(self.entry.packets_out)
    }

    fn cmp_by(&self, other: &Row, key: SortKey) -> Ordering {
        match key {
            // By name like every text column (ICMP < TCP < UDP), not by wire number.
            SortKey::Proto => proto_name(self.entry.protocol).cmp(proto_name(other.entry.protocol)),
            SortKey::Lan => self.lan.cmp(&other.lan),
            SortKey::Masq => self.entry.masq_port.cmp(&other.entry.masq_port),
            SortKey::Remote => self.remote.cmp(&other.remote),
            SortKey::State => self.entry.state.cmp(&other.entry.state),
            SortKey::Bytes => self.bytes().cmp(&other.bytes()),
            SortKey::Packets => self.packets().cmp(&other.packets()),
            SortKey::Expire => self.deadline.cmp(&other.deadline),
        }
    }
}

/// Protocol name as ipchains prints it.
pub fn proto_name(p: i32) -> &'static str {
    match Protocol::try_from(p) {
        Ok(Protocol::Tcp) => "TCP",
        Ok(Protocol::Udp) => "UDP",
        Ok(Protocol::Icmp) => "ICMP",
        _ => "?",
    }
}

fn ip_key(s: &str) -> u32 {
    s.parse::<Ipv4Addr>().map(u32::from).unwrap_or(u32::MAX)
}

/// Batches up to this size move entries one binary search at a time; larger ones are merged.
const SMALL_BATCH: usize = 64;

/// The masquerade table with its ordered, filtered view.
#[derive(Debug)]
pub struct MasqTable {
    rows: HashMap<u64, Row>,
    sort: SortKey,
    descending: bool,
    filter: String,
    view: Vec<u64>,
    dirty: bool,
}

impl Default for MasqTable {
    fn default() -> Self {
        MasqTable::new()
    }
}

impl MasqTable {
    /// An empty table sorted by expiry, soonest first.
    pub fn new() -> MasqTable {
        MasqTable {
            rows: HashMap::new(),
            sort: SortKey::Expire,
            descending: false,
            filter: String::new(),
            view: Vec::new(),
            dirty: false,
        }
    }

    /// Number of entries in the table (filtered or not).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of entries passing the filter. Call [`MasqTable::refresh`] first.
    pub fn visible_len(&self) -> usize {
        self.view.len()
    }

    /// Current sort column and direction.
    pub fn sort(&self) -> (SortKey, bool) {
        (self.sort, self.descending)
    }

    /// Current filter text.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Drop everything (a new snapshot is coming, or the server went away).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.view.clear();
        self.dirty = false;
    }

    /// Change the sort column/direction; the view is rebuilt on the next refresh.
    pub fn set_sort(&mut self, key: SortKey, descending: bool) {
        if (key, descending) != (self.sort, self.descending) {
            self.sort = key;
            self.descending = descending;
            self.dirty = true;
        }
    }

    /// Change the filter (case-insensitive substring of the row text); rebuilt on refresh.
    pub fn set_filter(&mut self, filter: &str) {
        let f = filter.to_ascii_lowercase();
        if f != self.filter {
            self.filter = f;
            self.dirty = true;
        }
    }

    fn passes(&self, row: &Row) -> bool {
        self.filter.is_empty() || row.text.contains(&self.filter)
    }

    fn order(&self, a: &Row, b: &Row) -> Ordering {
        let o = a.cmp_by(b, self.sort);
        let o = if self.descending { o.reverse() } else { o };
        // Ties are broken by id so the order is total and binary search finds exact slots.
        o.then(a.entry.id.cmp(&b.entry.id))
    }

    fn position(&self, row: &Row) -> Result<usize, usize> {
        self.view.binary_search_by(|id| match self.rows.get(id) {
            Some(r) => self.order(r, row),
            None => Ordering::Less,
        })
    }

    /// Take the row with this id out of the view (it must still be in `rows`).
    fn view_remove_id(&mut self, id: u64) {
        let pos = match self.rows.get(&id) {
            Some(old) => self.position(old),
            None => return,
        };
        if let Ok(i) = pos {
            self.view.remove(i);
        }
    }

    /// Put the row with this id into the view if it passes the filter.
    fn view_insert_id(&mut self, id: u64) {
        let pos = match self.rows.get(&id) {
            Some(row) if self.passes(row) => self.position(row),
            _ => return,
        };
        if let Err(i) = pos {
            self.view.insert(i, id);
        }
    }

    /// Insert or replace entries (by id), all received at `received`.
    ///
    /// Small batches move each entry with a binary search; large ones drop the changed ids
    /// from the view in one pass, sort only the new rows and merge: O(n + k log k), never a
    /// full re-sort.
    pub fn upsert(&mut self, entries: Vec<MasqEntry>, received: Instant) {
        if self.dirty {
            // A rebuild is pending anyway.
            for e in entries {
                self.rows.insert(e.id, Row::new(e, received));
            }
        } else if entries.len() <= SMALL_BATCH {
            for e in entries {
                let id = e.id;
                // The old row leaves the view from its old position before it changes.
                self.view_remove_id(id);
                self.rows.insert(id, Row::new(e, received));
                self.view_insert_id(id);
            }
        } else {
            let changed: HashSet<u64> = entries.iter().map(|e| e.id).collect();
            self.view.retain(|id| !changed.contains(id));
            for e in entries {
                self.rows.insert(e.id, Row::new(e, received));
            }
            let mut fresh: Vec<&Row> = changed
                .iter()
                .filter_map(|id| self.rows.get(id))
                .filter(|r| self.passes(r))
                .collect();
            fresh.sort_unstable_by(|a, b| self.order(a, b));
            let mut merged = Vec::with_capacity(self.view.len() + fresh.len());
            let mut old = self.view.iter().copied().peekable();
            for row in fresh {
                while let Some(&id) = old.peek() {
                    match self.rows.get(&id) {
                        Some(o) if self.order(o, row) == Ordering::Less => {
                            merged.push(id);
                            old.next();
                        }
                        _ => break,
                    }
                }
                merged.push(row.entry.id);
            }
            merged.extend(old);
            self.view = merged;
        }
    }

    /// Remove entries by id (unknown ids are ignored).
    pub fn remove(&mut self, ids: &[u64]) {
        if self.dirty {
            for id in ids {
                self.rows.remove(id);
            }
        } else if ids.len() <= SMALL_BATCH {
            for id in ids {
                self.view_remove_id(*id);
                self.rows.remove(id);
            }
        } else {
            let gone: HashSet<u64> = ids.iter().copied().collect();
            self.view.retain(|id| !gone.contains(id));
            for id in ids {
                self.rows.remove(id);
            }
        }
    }

    /// Rebuild the ordered view if the sort, filter or a large batch invalidated it.
    pub fn refresh(&mut self) {
        if !self.dirty {
            return;
        }
        let mut rows: Vec<&Row> = self.rows.values().filter(|r| self.passes(r)).collect();
        rows.sort_unstable_by(|a, b| self.order(a, b));
        self.view = rows.into_iter().map(|r| r.entry.id).collect();
        self.dirty = false;
    }

    /// Rows `offset..offset+height` of the ordered, filtered view.
    pub fn window(&self, offset: usize, height: usize) -> impl Iterator<Item = &Row> + '_ {
        self.view
            .iter()
            .skip(offset)
            .take(height)
            .filter_map(|id| self.rows.get(id))
    }

    /// Id at a view position.
    pub fn id_at(&self, index: usize) -> Option<u64> {
        self.view.get(index).copied()
    }

    /// Entry by id.
    pub fn get(&self, id: u64) -> Option<&Row> {
        self.rows.get(&id)
    }

    /// Every entry, in no particular order (filter and sort ignored).
    pub fn rows(&self) -> impl Iterator<Item = &Row> + '_ {
        self.rows.values()
    }
}

/// `mm:ss.hh` from hundredths of a second, as `ipchains -M -L` prints expiry (shared with mclient).
pub use masqdial_cli::format::expire_mmss;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        id: u64,
        proto: Protocol,
        lan: &str,
        lport: u32,
        mport: u32,
        expire: u64,
    ) -> MasqEntry {
        MasqEntry {
            id,
            protocol: proto as i32,
            lan_address: lan.into(),
            lan_port: lport,
            masq_address: "10.0.0.5".into(),
            masq_port: mport,
            remote_address: "198.51.100.7".into(),
            remote_port: 80,
            expire_centis: expire,
            state: if proto == Protocol::Tcp {
                "ESTABLISHED".into()
            } else {
                "UDP".into()
            },
            ..Default::default()
        }
    }

    fn ids(t: &MasqTable) -> Vec<u64> {
        t.window(0, usize::MAX).map(|r| r.entry.id).collect()
    }

    fn sample(now: Instant) -> MasqTable {
        let mut t = MasqTable::new();
        t.upsert(
            vec![
                entry(1, Protocol::Tcp, "192.168.1.10", 1025, 61000, 90000),
                entry(2, Protocol::Udp, "192.168.1.2", 53, 61001, 30000),
                entry(3, Protocol::Tcp, "192.168.1.9", 2000, 61002, 50000),
            ],
            now,
        );
        t.refresh();
        t
    }

    #[test]
    fn default_order_is_soonest_expiry_first() {
        let t = sample(Instant::now());
        assert_eq!(ids(&t), vec![2, 3, 1]);
    }

    #[test]
    fn sort_by_each_column_and_reverse() {
        let mut t = sample(Instant::now());
        t.set_sort(SortKey::Lan, false);
        t.refresh();
        // 192.168.1.2 < .9 < .10 numerically (not as text).
        assert_eq!(ids(&t), vec![2, 3, 1]);
        t.set_sort(SortKey::Masq, true);
        t.refresh();
        assert_eq!(ids(&t), vec![3, 2, 1]);
        t.set_sort(SortKey::Proto, false);
        t.refresh();
        assert_eq!(ids(&t), vec![1, 3, 2]);
        for k in SortKey::ALL {
            t.set_sort(k, false);
            t.refresh();
            assert_eq!(t.visible_len(), 3);
        }
    }

    #[test]
    fn filter_is_case_insensitive_substring() {
        let mut t = sample(Instant::now());
        t.set_filter("udp");
        t.refresh();
        assert_eq!(ids(&t), vec![2]);
        t.set_filter("192.168.1.1");
        t.refresh();
        assert_eq!(ids(&t), vec![1]);
        t.set_filter("ESTAB");
        t.refresh();
        assert_eq!(ids(&t), vec![3, 1]);
        t.set_filter("");
        t.refresh();
        assert_eq!(t.visible_len(), 3);
    }

    #[test]
    fn deltas_upsert_and_remove_keep_order_incrementally() {
        let now = Instant::now();
        let mut t = sample(now);
        // Update 1 to expire first, add 4, remove 3.
        t.upsert(
            vec![
                entry(1, Protocol::Tcp, "192.168.1.10", 1025, 61000, 100),
                entry(4, Protocol::Udp, "192.168.1.4", 123, 61003, 40000),
            ],
            now,
        );
        t.remove(&[3, 99]);
        t.refresh();
        assert_eq!(ids(&t), vec![1, 2, 4]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(1).map(|r| r.entry.expire_centis), Some(100));
    }

    #[test]
    fn incremental_view_matches_full_rebuild_on_large_table() {
        let now = Instant::now();
        let mut t = MasqTable::new();
        t.set_sort(SortKey::Masq, true);
        let all: Vec<_> = (0..2000u64)
            .map(|i| {
                entry(
                    i,
                    Protocol::Tcp,
                    "192.168.1.3",
                    i as u32,
                    61000 + (i as u32 * 7919) % 4000,
                    i * 13 % 777,
                )
            })
            .collect();
        t.upsert(all, now);
        t.refresh();
        t.set_filter("tcp");
        t.refresh();
        // Small deltas go the incremental path.
        for round in 0..50u64 {
            let up: Vec<_> = (0..5u64)
                .map(|j| {
                    let id = (round * 37 + j * 101) % 2500;
                    entry(
                        id,
                        Protocol::Tcp,
                        "192.168.1.3",
                        1,
                        61000 + (id as u32 * 31) % 4000,
                        round,
                    )
                })
                .collect();
            t.upsert(up, now);
            t.remove(&[(round * 53) % 2000]);
        }
        t.refresh();
        let incremental = ids(&t);
        t.dirty = true;
        t.refresh();
        assert_eq!(incremental, ids(&t));
        // Large batches go the merge path (including a duplicate id and one filtered out).
        let mut big: Vec<_> = (0..700u64)
            .map(|j| {
                let id = (j * 7) % 2600;
                entry(
                    id,
                    Protocol::Tcp,
                    "192.168.1.4",
                    2,
                    61000 + (j as u32 * 13) % 4000,
                    j,
                )
            })
            .collect();
        big.push(entry(5, Protocol::Udp, "192.168.1.4", 2, 61000, 1));
        t.upsert(big, now);
        let gone: Vec<u64> = (0..300u64).map(|j| j * 5).collect();
        t.remove(&gone);
        t.refresh();
        let merged = ids(&t);
        t.dirty = true;
        t.refresh();
        assert_eq!(merged, ids(&t));
        assert!(!merged.contains(&5), "UDP entry fails the tcp filter");
    }

    #[test]
    fn countdown_from_receive_time() {
        let t0 = Instant::now();
        let t = sample(t0);
        let row = t
            .get(2)
            .map(|r| r.remaining_centis(t0 + Duration::from_millis(1500)));
        assert_eq!(row, Some(30000 - 150));
        let gone = t
            .get(2)
            .map(|r| r.remaining_centis(t0 + Duration::from_secs(1000)));
        assert_eq!(gone, Some(0));
    }

    #[test]
    fn expire_format_is_mm_ss_hh() {
        assert_eq!(expire_mmss(0), "00:00.00");
        assert_eq!(expire_mmss(90000), "15:00.00");
        assert_eq!(expire_mmss(12345), "02:03.45");
        assert_eq!(expire_mmss(6_000_000), "1000:00.00");
    }

    #[test]
    fn window_skips_and_takes() {
        let t = sample(Instant::now());
        let w: Vec<u64> = t.window(1, 1).map(|r| r.entry.id).collect();
        assert_eq!(w, vec![3]);
        assert_eq!(t.window(5, 10).count(), 0);
        assert_eq!(t.id_at(0), Some(2));
    }

    mod proptests {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Upsert(Vec<(u64, u32, u64, u8)>),
            Remove(Vec<u64>),
            Sort(usize, bool),
            Filter(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => proptest::collection::vec((0u64..300, 0u32..50, 0u64..5000, 0u8..3), 0..150).prop_map(Op::Upsert),
                2 => proptest::collection::vec(0u64..300, 0..100).prop_map(Op::Remove),
                1 => (0usize..8, any::<bool>()).prop_map(|(k, d)| Op::Sort(k, d)),
                1 => (0u8..4).prop_map(Op::Filter),
            ]
        }

        /// The reference: every row that passes the filter, fully sorted.
        fn expected(t: &MasqTable) -> Vec<u64> {
            let mut rows: Vec<&Row> = t.rows.values().filter(|r| t.passes(r)).collect();
            rows.sort_by(|a, b| t.order(a, b));
            rows.iter().map(|r| r.entry.id).collect()
        }

        proptest! {
            /// Any sequence of deltas, sorts and filters leaves the cached view equal to a
            /// from-scratch sort of the filtered rows (small and large batch paths alike).
            #[test]
            fn cached_view_equals_full_rebuild(ops in proptest::collection::vec(op(), 1..40)) {
                let t0 = Instant::now();
                let mut t = MasqTable::new();
                for (step, op) in ops.into_iter().enumerate() {
                    let at = t0 + Duration::from_millis(step as u64 * 37);
                    match op {
                        Op::Upsert(v) => {
                            let entries = v
                                .into_iter()
                                .map(|(id, port, exp, p)| {
                                    let proto = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp][p as usize];
                                    let lan = format!("192.168.1.{}", port % 7);
                                    entry(id, proto, &lan, port, 61000 + port, exp)
                                })
                                .collect();
                            t.upsert(entries, at);
                        }
                        Op::Remove(ids) => t.remove(&ids),
                        Op::Sort(k, d) => t.set_sort(SortKey::ALL[k], d),
                        Op::Filter(f) => t.set_filter(["", "tcp", "192.168.1.3", "udp 1"][f as usize]),
                    }
                    t.refresh();
                    prop_assert_eq!(ids(&t), expected(&t));
                }
            }
        }
    }
}
