//! IPv4 reassembly (RFC 791 §3.2 "reassembly"; "always defragment" as Linux 2.2 requires for
//! masquerading): fragments in, whole datagrams out, bounded in per-datagram size, total memory,
//! number of datagrams in progress and time (30 s). Sans-IO: time is passed in. Must not apply
//! rules, masquerade, or send anything (expiry is reported, the caller decides about ICMP).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use thiserror::Error;

use crate::time::{Duration, Instant};
use crate::wire::ipv4::Packet;

/// Bounds of the reassembler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragLimits {
    /// Largest reassembled datagram, header included (RFC 791: total length is 16 bits).
    pub max_datagram: usize,
    /// Payload bytes held across all datagrams in progress.
    pub max_memory: usize,
    /// Datagrams in progress at once.
    pub max_datagrams: usize,
    /// Time from the first fragment until an incomplete datagram is dropped.
    pub timeout: Duration,
}

impl Default for FragLimits {
    /// 65535 bytes, 256 KiB (Linux `ipfrag_high_thresh`), 1024 datagrams, 30 s (`IP_FRAG_TIME`).
    fn default() -> Self {
        FragLimits {
            max_datagram: 65535,
            max_memory: 256 * 1024,
            max_datagrams: 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a fragment was dropped. Every drop is also counted in [`FragStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FragError {
    /// Not a well-formed IPv4 packet (version, lengths).
    #[error("malformed IPv4 packet")]
    Malformed,
    /// The header checksum is wrong (RFC 1122 3.2.1.2: silently discard).
    #[error("bad IPv4 header checksum")]
    BadChecksum,
    /// A fragment other than the last whose data is empty or not a multiple of 8 octets
    /// (RFC 791: "the data portion ... must be a multiple of 8 octets").
    #[error("fragment length not a multiple of 8")]
    BadLength,
    /// The datagram would exceed the per-datagram limit (the "ping of death"); the datagram is dropped.
    #[error("reassembled datagram too big")]
    TooBig,
    /// The fragment overlaps data already received; the whole datagram is dropped.
    #[error("overlapping fragment")]
    Overlap,
    /// An exact duplicate of a fragment already received (dropped, datagram kept).
    #[error("duplicate fragment")]
    Duplicate,
    /// Two different "last" fragments, or data beyond the end; the datagram is dropped.
    #[error("inconsistent fragment lengths")]
    Inconsistent,
    /// A TCP fragment at offset 8 (RFC 1858: could overwrite the TCP flags) - "Suspect TCP fragment".
    #[error("suspect TCP fragment")]
    SuspectTcp,
    /// The fragment alone is larger than the memory budget.
    #[error("no memory for fragment")]
    NoMemory,
}

/// Counters, readable at any time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragStats {
    /// Fragments handed in.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Fragments dropped as malformed (bad IPv4, checksum, length, inconsistent, suspect TCP).
    pub malformed: u64,
    /// Datagrams dropped because of overlapping fragments.
    pub overlaps: u64,
    /// Duplicate fragments dropped.
    pub duplicates: u64,
    /// Datagrams dropped for exceeding the size limit.
    pub too_big: u64,
    /// Incomplete datagrams dropped on timeout.
    pub timeouts: u64,
    /// Incomplete datagrams evicted to respect the memory or count limit.
    pub evicted: u64,
}

/// Result of handing a packet to the reassembler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reassembly {
    /// Not a fragment (MF clear, offset 0): use the packet as it is.
    NotFragment,
    /// Stored; the datagram is not complete yet.
    Incomplete,
    /// The complete datagram (header of the first fragment, MF/offset cleared, checksum fixed).
    Complete(Vec<u8>),
}

/// RFC 791: fragments belong together when source, destination, protocol and identification match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ident: u16,
}

#[derive(Debug)]
struct Pending {
    created: Instant,
    /// Header (with options) of the offset-0 fragment, once received.
    header: Option<Vec<u8>>,
    /// Payload bytes placed at their offsets.
    data: Vec<u8>,
    /// Received payload ranges `[start, end)`, sorted and disjoint.
    ranges: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment (MF clear) arrived.
    total: Option<usize>,
    /// Payload bytes received (the ranges' total length).
    received: usize,
    /// Bytes accounted against the memory budget.
    held: usize,
}

/// The IPv4 reassembler.
#[derive(Debug)]
pub struct Reassembler {
    limits: FragLimits,
    pending: HashMap<Key, Pending>,
    memory: usize,
    stats: FragStats,
}

impl Reassembler {
    /// A reassembler with these limits.
    pub fn new(limits: FragLimits) -> Self {
        Reassembler {
            limits,
            pending: HashMap::new(),
            memory: 0,
            stats: FragStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FragStats {
        self.stats
    }

    /// Datagrams in progress.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Payload bytes held.
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// When [`Reassembler::handle_timeout`] next has work, if anything is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.created + self.limits.timeout)
            .min()
    }

    /// Drop datagrams whose time is up; returns how many were dropped. (RFC 792 would have the caller
    /// send "fragment reassembly time exceeded" when the first fragment had arrived.)
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        let timeout = self.limits.timeout;
        let expired: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, p)| p.created + timeout <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in &expired {
            self.remove(k);
            self.stats.timeouts += 1;
        }
        expired.len()
    }

    fn remove(&mut self, k: &Key) {
        if let Some(p) = self.pending.remove(k) {
            self.memory -= p.held;
        }
    }

    fn evict_oldest(&mut self, except: Option<Key>) -> bool {
        let oldest = self
            .pending
            .iter()
            .filter(|(k, _)| Some(**k) != except)
            .min_by_key(|(_, p)| p.created)
            .map(|(k, _)| *k);
        match oldest {
            Some(k) => {
                self.remove(&k);
                self.stats.evicted += 1;
                true
            }
            None => false,
        }
    }

    fn drop_datagram(&mut self, k: &Key, e: FragError) -> FragError {
        self.remove(k);
        match e {
            FragError::Overlap => self.stats.overlaps += 1,
            FragError::TooBig => self.stats.too_big += 1,
            _ => self.stats.malformed += 1,
        }
        e
    }

    /// Hand in one received IPv4 packet. Fragments are stored until the datagram is complete;
    /// bad fragments are dropped with the reason (and counted).
    pub fn handle_fragment(&mut self, now: Instant, bytes: &[u8]) -> Result<Reassembly, FragError> {
        let Ok(ip) = Packet::new_checked(bytes) else {
            self.stats.malformed += 1;
            return Err(FragError::Malformed);
        };
        if !ip.is_fragment() {
            return Ok(Reassembly::NotFragment);
        }
        self.stats.fragments += 1;
        if !ip.verify_checksum() {
            self.stats.malformed += 1;
            return Err(FragError::BadChecksum);
        }
        let hlen = ip.header_len();
        let payload = ip.payload();
        let start = usize::from(ip.frag_offset());
        let end = start + payload.len();
        let mf = ip.more_frags();
        let key = Key {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            proto: ip.protocol(),
            ident: ip.ident(),
        };
        if ip.protocol() == 6 && start == 8 {
            // RFC 1858 / Linux 2.2 ip_fw.c: "Don't allow a fragment of TCP 8 bytes in."
            self.stats.malformed += 1;
            return Err(FragError::SuspectTcp);
        }
        if mf && (payload.is_empty() || payload.len() % 8 != 0) {
            self.stats.malformed += 1;
            return Err(FragError::BadLength);
        }
        // "Ping of death": even with a minimal header the datagram would be too long.
        if end + 20 > self.limits.max_datagram {
            if self.pending.contains_key(&key) {
                return Err(self.drop_datagram(&key, FragError::TooBig));
            }
            self.stats.too_big += 1;
            return Err(FragError::TooBig);
        }
        if end > self.limits.max_memory {
            self.stats.malformed += 1;
            return Err(FragError::NoMemory);
        }
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= self.limits.max_datagrams.max(1) {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            self.pending.insert(
                key,
                Pending {
                    created: now,
                    header: None,
                    data: Vec::new(),
                    ranges: Vec::new(),
                    received: 0,
                    total: None,
                    held: 0,
                },
            );
        }
        // Memory is the reassembly buffer (holes included); evict the oldest others to make room.
        let grow = end.saturating_sub(self.pending.get(&key).map_or(0, |p| p.data.len()));
        while self.memory + grow > self.limits.max_memory {
            if !self.evict_oldest(Some(key)) {
                break;
            }
        }
        if self.memory + grow > self.limits.max_memory {
            self.stats.malformed += 1;
            return Err(FragError::NoMemory);
        }
        let Some(p) = self.pending.get_mut(&key) else {
            return Err(FragError::NoMemory);
        };
        // Duplicates and overlaps: `ranges` is sorted and disjoint, so only the neighbours matter.
        let idx = p.ranges.partition_point(|&(s, _)| s < start);
        if p.ranges.get(idx) == Some(&(start, end)) {
            self.stats.duplicates += 1;
            return Err(FragError::Duplicate);
        }
        let overlaps_prev = idx > 0 && p.ranges[idx - 1].1 > start;
        let overlaps_next = p.ranges.get(idx).is_some_and(|&(s, _)| s < end);
        if overlaps_prev || overlaps_next {
            return Err(self.drop_datagram(&key, FragError::Overlap));
        }
        // Length consistency: one last fragment, nothing beyond it.
        if !mf {
            if p.total.is_some_and(|t| t != end) || p.ranges.last().is_some_and(|&(_, e)| e > end) {
                return Err(self.drop_datagram(&key, FragError::Inconsistent));
            }
            p.total = Some(end);
        } else if p.total.is_some_and(|t| end > t) {
            return Err(self.drop_datagram(&key, FragError::Inconsistent));
        }
        if start == 0 {
            p.header = Some(bytes[..hlen].to_vec());
        }
        if let Some(h) = &p.header {
            if h.len() + p.data.len().max(end) > self.limits.max_datagram {
                return Err(self.drop_datagram(&key, FragError::TooBig));
            }
        }
        if p.data.len() < end {
            self.memory += end - p.data.len();
            p.held += end - p.data.len();
            p.data.resize(end, 0);
        }
        p.data[start..end].copy_from_slice(payload);
        p.ranges.insert(idx, (start, end));
        p.received += end - start;
        // Complete?
        let (Some(total), Some(_)) = (p.total, p.header.as_ref()) else {
            return Ok(Reassembly::Incomplete);
        };
        if p.received != total {
            return Ok(Reassembly::Incomplete);
        }
        let Some(p) = self.pending.remove(&key) else {
            return Ok(Reassembly::Incomplete);
        };
        self.memory -= p.held;
        let header = p.header.unwrap_or_default();
        let mut out = Vec::with_capacity(header.len() + total);
        out.extend_from_slice(&header);
        out.extend_from_slice(&p.data[..total]);
        let tl = u16::try_from(out.len()).map_err(|_| FragError::TooBig)?;
        let mut pkt = Packet::new_unchecked(&mut out[..]);
        let df = pkt.dont_frag();
        pkt.set_total_len(tl);
        pkt.set_flags_and_offset(df, false, 0);
        pkt.fill_checksum();
        self.stats.reassembled += 1;
        Ok(Reassembly::Complete(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real IPv4 UDP datagram (header + payload) with a valid checksum.
    fn datagram(payload_len: usize, ident: u16) -> Vec<u8> {
        let mut d = vec![0u8; 20 + payload_len];
        {
            let mut p = Packet::new_unchecked(&mut d[..]);
            p.set_version_and_header_len(20);
            p.set_total_len((20 + payload_len) as u16);
            p.set_ident(ident);
            p.set_ttl(64);
            p.set_protocol(17);
            p.set_src_addr(Ipv4Addr::new(192, 168, 1, 2));
            p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 1));
            p.fill_checksum();
        }
        for (i, b) in d[20..].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        d
    }

    /// Fragment `d` into pieces of `chunk` payload bytes (multiple of 8), as a router would.
    fn fragment(d: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let payload = &d[20..];
        let mut out = Vec::new();
        let mut off = 0;
        while off < payload.len() {
            let end = (off + chunk).min(payload.len());
            let mut f = d[..20].to_vec();
            f.extend_from_slice(&payload[off..end]);
            let mut p = Packet::new_unchecked(&mut f[..]);
            p.set_total_len((20 + end - off) as u16);
            p.set_flags_and_offset(false, end < payload.len(), off as u16);
            p.fill_checksum();
            out.push(f);
            off = end;
        }
        out
    }

    fn at(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn reassembles_in_order_and_reversed() {
        let d = datagram(1000, 7);
        for rev in [false, true] {
            let mut r = Reassembler::new(FragLimits::default());
            let mut fs = fragment(&d, 256);
            if rev {
                fs.reverse();
            }
            let n = fs.len();
            for (i, f) in fs.iter().enumerate() {
                let res = r.handle_fragment(at(1), f).unwrap();
                if i + 1 < n {
                    assert_eq!(res, Reassembly::Incomplete);
                } else {
                    assert_eq!(res, Reassembly::Complete(d.clone()));
                }
            }
            assert_eq!(r.pending(), 0);
            assert_eq!(r.memory(), 0);
            assert_eq!(r.stats().reassembled, 1);
        }
    }

    #[test]
    fn non_fragment_passes() {
        let mut r = Reassembler::new(FragLimits::default());
        assert_eq!(
            r.handle_fragment(at(0), &datagram(10, 1)).unwrap(),
            Reassembly::NotFragment
        );
        assert_eq!(
            r.handle_fragment(at(0), &[0x45, 0]).unwrap_err(),
            FragError::Malformed
        );
    }

    #[test]
    fn overlap_drops_datagram_and_duplicate_is_ignored() {
        let d = datagram(64, 9);
        let fs = fragment(&d, 16);
        let mut r = Reassembler::new(FragLimits::default());
        r.handle_fragment(at(0), &fs[0]).unwrap();
        assert_eq!(
            r.handle_fragment(at(0), &fs[0]).unwrap_err(),
            FragError::Duplicate
        );
        // A fragment at offset 8 overlapping the first one.
        let mut evil = fs[1].clone();
        Packet::new_unchecked(&mut evil[..]).set_flags_and_offset(false, true, 8);
        Packet::new_unchecked(&mut evil[..]).fill_checksum();
        assert_eq!(
            r.handle_fragment(at(0), &evil).unwrap_err(),
            FragError::Overlap
        );
        assert_eq!(r.pending(), 0);
        let s = r.stats();
        assert_eq!((s.overlaps, s.duplicates), (1, 1));
    }

    #[test]
    fn malformed_fragments_are_counted() {
        let d = datagram(64, 9);
        let fs = fragment(&d, 16);
        let mut r = Reassembler::new(FragLimits::default());
        let mut bad = fs[0].clone();
        bad[10] ^= 0xFF;
        assert_eq!(
            r.handle_fragment(at(0), &bad).unwrap_err(),
            FragError::BadChecksum
        );
        // MF set but 12 bytes of data.
        let mut odd = d[..32].to_vec();
        {
            let mut p = Packet::new_unchecked(&mut odd[..]);
            p.set_total_len(32);
            p.set_flags_and_offset(false, true, 0);
            p.fill_checksum();
        }
        assert_eq!(
            r.handle_fragment(at(0), &odd).unwrap_err(),
            FragError::BadLength
        );
        // Two different last fragments.
        r.handle_fragment(at(0), &fs[3]).unwrap();
        let mut last2 = fs[3].clone();
        Packet::new_unchecked(&mut last2[..]).set_flags_and_offset(false, false, 64);
        Packet::new_unchecked(&mut last2[..]).fill_checksum();
        assert_eq!(
            r.handle_fragment(at(0), &last2).unwrap_err(),
            FragError::Inconsistent
        );
        assert_eq!(r.stats().malformed, 3);
    }

    #[test]
    fn ping_of_death_is_too_big() {
        let mut f = datagram(64, 3);
        {
            let mut p = Packet::new_unchecked(&mut f[..]);
            p.set_flags_and_offset(false, false, 65528);
            p.fill_checksum();
        }
        let mut r = Reassembler::new(FragLimits::default());
        assert_eq!(r.handle_fragment(at(0), &f).unwrap_err(), FragError::TooBig);
        assert_eq!(r.stats().too_big, 1);
    }

    #[test]
    fn suspect_tcp_fragment() {
        let mut f = datagram(16, 3);
        {
            let mut p = Packet::new_unchecked(&mut f[..]);
            p.set_protocol(6);
            p.set_flags_and_offset(false, true, 8);
            p.fill_checksum();
        }
        let mut r = Reassembler::new(FragLimits::default());
        assert_eq!(
            r.handle_fragment(at(0), &f).unwrap_err(),
            FragError::SuspectTcp
        );
    }

    #[test]
    fn timeout_after_30s() {
        let d = datagram(64, 5);
        let fs = fragment(&d, 32);
        let mut r = Reassembler::new(FragLimits::default());
        assert_eq!(r.poll_timeout(), None);
        r.handle_fragment(at(10), &fs[0]).unwrap();
        assert_eq!(r.poll_timeout(), Some(at(40)));
        assert_eq!(r.handle_timeout(Instant::from_millis(39_999)), 0);
        assert_eq!(r.handle_timeout(at(40)), 1);
        assert_eq!((r.pending(), r.memory(), r.stats().timeouts), (0, 0, 1));
        // The late second half starts a new datagram that never completes.
        assert_eq!(
            r.handle_fragment(at(41), &fs[1]).unwrap(),
            Reassembly::Incomplete
        );
    }

    #[test]
    fn memory_and_count_limits_evict_oldest() {
        let limits = FragLimits {
            max_memory: 2200,
            max_datagrams: 2,
            ..FragLimits::default()
        };
        let mut r = Reassembler::new(limits);
        for id in 0..3u16 {
            let d = datagram(1000, id);
            r.handle_fragment(at(u64::from(id)), &fragment(&d, 504)[0])
                .unwrap();
        }
        assert_eq!(r.pending(), 2);
        assert_eq!(r.stats().evicted, 1);
        // A last fragment far out needs a 2000-byte buffer: evicts another one.
        let d = datagram(2000, 99);
        let fs = fragment(&d, 1000);
        r.handle_fragment(at(5), &fs[1]).unwrap();
        assert!(r.memory() <= 2200);
        assert_eq!(r.stats().evicted, 3);
    }

    proptest! {
        #[test]
        fn shuffled_fragments_reassemble(len in 1usize..3000, chunk8 in 1usize..64, seed in any::<u64>()) {
            let d = datagram(len, 42);
            let mut fs = fragment(&d, chunk8 * 8);
            // Deterministic shuffle.
            let mut s = seed;
            for i in (1..fs.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                fs.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut r = Reassembler::new(FragLimits::default());
            let mut done = None;
            for f in &fs {
                if let Reassembly::Complete(v) = r.handle_fragment(at(0), f).unwrap() {
                    done = Some(v);
                }
            }
            if fs.len() == 1 {
                prop_assert_eq!(done, None);
            } else {
                prop_assert_eq!(done, Some(d));
            }
            prop_assert_eq!(r.memory(), 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20)) {
            let mut r = Reassembler::new(FragLimits { max_memory: 4096, max_datagrams: 4, ..FragLimits::default() });
            for (i, p) in packets.iter().enumerate() {
                let _ = r.handle_fragment(Instant::from_millis(i as u64 * 5000), p);
                let _ = r.handle_timeout(Instant::from_millis(i as u64 * 5000));
                prop_assert!(r.memory() <= 4096);
            }
        }

        #[test]
        /// One fragment (sent twice) never completes a datagram: an unfragmented packet is
        /// passed as it is, anything else waits for the rest or is refused.
        fn a_lone_fragment_never_completes(
            off in 0u16..8192, mf in any::<bool>(), len in 0usize..300, ident in 0u16..4, proto in prop::sample::select(vec![1u8, 6, 17])
        ) {
            let mut f = datagram(len, ident);
            {
                let mut p = Packet::new_unchecked(&mut f[..]);
                p.set_protocol(proto);
                p.set_flags_and_offset(false, mf, off << 3);
                p.fill_checksum();
            }
            let mut r = Reassembler::new(FragLimits::default());
            for _ in 0..2 {
                match r.handle_fragment(at(0), &f) {
                    Ok(Reassembly::NotFragment) => prop_assert!(off == 0 && !mf),
                    Ok(Reassembly::Complete(d)) => {
                        prop_assert!(false, "a lone fragment completed {} bytes", d.len());
                    }
                    Ok(Reassembly::Incomplete) | Err(_) => prop_assert!(off != 0 || mf),
                }
            }
        }
    }
}
