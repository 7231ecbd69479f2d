//! Scheduler statistics: counters, a small sojourn-time histogram and per-host byte shares over
//! two rolling windows. Owns the accounting types; must not influence scheduling.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::Instant;

/// Upper bounds of the sojourn buckets, in milliseconds (the last bucket is open). Steps of at
/// most 25% above 10 ms, so a reported quantile is an upper bound within 25%.
const BOUNDS_MS: [u64; 40] = [
    1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400,
    500, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000, 10000, 15000, 20000,
];

/// Hosts tracked per window; traffic of further hosts counts under "other".
pub const MAX_TRACKED_HOSTS: usize = 256;

/// A histogram of sojourn times with fixed log-spaced buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; BOUNDS_MS.len() + 1],
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: [0; BOUNDS_MS.len() + 1],
        }
    }
}

impl Histogram {
    /// Count one sample.
    pub fn record(&mut self, d: Duration) {
        let ms_ceil = d.as_nanos().div_ceil(1_000_000);
        let i = BOUNDS_MS.partition_point(|&b| u128::from(b) < ms_ceil);
        self.counts[i] += 1;
    }

    /// Samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Add another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1); `None` without samples.
    /// Samples beyond the last bound report [`Duration::MAX`].
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        // The smallest bucket whose cumulative count reaches ceil(q × total), at least 1.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(
                    BOUNDS_MS
                        .get(i)
                        .map_or(Duration::MAX, |&ms| Duration::from_millis(ms)),
                );
            }
        }
        Some(Duration::MAX)
    }
}

/// Bytes one LAN host had sent through the scheduler in the recent windows.
#[derive(Debug, Clone, PartialEq)]
pub struct HostShare {
    /// The host (the LAN side's original address).
    pub host: Ipv4Addr,
    /// Charged bytes dequeued for it.
    pub bytes: u64,
    /// Its fraction of all bytes dequeued in those windows (0..=1).
    pub share: f64,
}

/// A snapshot of the scheduler's state and counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    /// Charged bytes queued now.
    pub backlog_bytes: u64,
    /// Packets queued now.
    pub backlog_packets: u64,
    /// The byte limit in force.
    pub limit_bytes: u64,
    /// Hosts with packets queued now.
    pub active_hosts: usize,
    /// Flows with packets queued now.
    pub active_flows: usize,
    /// Packets accepted since creation.
    pub enqueued_packets: u64,
    /// Packets dequeued (sent) since creation.
    pub sent_packets: u64,
    /// Charged bytes dequeued since creation.
    pub sent_bytes: u64,
    /// Packets dropped to keep within the byte limit (arrivals refused included).
    pub dropped_overflow: u64,
    /// Packets dropped by CoDel.
    pub dropped_codel: u64,
    /// Packets CE-marked by CoDel instead of dropped.
    pub ecn_marked: u64,
    /// Median sojourn of the packets sent in the recent windows (bucket upper bound).
    pub sojourn_p50: Option<Duration>,
    /// 95th percentile sojourn, likewise.
    pub sojourn_p95: Option<Duration>,
    /// Per-host shares in the recent windows, largest first.
    pub hosts: Vec<HostShare>,
    /// Bytes of hosts beyond [`MAX_TRACKED_HOSTS`] in the recent windows.
    pub other_hosts_bytes: u64,
}

/// One statistics window.
#[derive(Debug, Clone, Default)]
struct Window {
    sojourn: Histogram,
    host_bytes: HashMap<Ipv4Addr, u64>,
    other_bytes: u64,
}

/// The current and previous windows.
#[derive(Debug, Clone)]
pub(crate) struct Windows {
    len: Duration,
    start: Instant,
    cur: Window,
    prev: Window,
}

impl Windows {
    pub(crate) fn new(len: Duration) -> Self {
        Self {
            len,
            start: Instant::ZERO,
            cur: Window::default(),
            prev: Window::default(),
        }
    }

    fn rotate(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.start);
        if age >= self.len * 2 {
            // Idle for more than a whole window: both are stale.
            self.prev = Window::default();
            self.cur = Window::default();
            self.start = now;
        } else if age >= self.len {
            self.prev = std::mem::take(&mut self.cur);
            self.start = self.start + self.len;
        }
    }

    /// Account one sent packet.
    pub(crate) fn record(&mut self, now: Instant, host: Ipv4Addr, bytes: u64, sojourn: Duration) {
        self.rotate(now);
        self.cur.sojourn.record(sojourn);
        let n = self.cur.host_bytes.len();
        match self.cur.host_bytes.get_mut(&host) {
            Some(b) => *b += bytes,
            None if n < MAX_TRACKED_HOSTS => {
                self.cur.host_bytes.insert(host, bytes);
            }
            None => self.cur.other_bytes += bytes,
        }
    }

    /// Fill the windowed fields of `s`.
    pub(crate) fn fill(&self, s: &mut Stats) {
        let mut h = self.prev.sojourn.clone();
        h.merge(&self.cur.sojourn);
        s.sojourn_p50 = h.quantile(0.5);
        s.sojourn_p95 = h.quantile(0.95);
        let mut bytes: HashMap<Ipv4Addr, u64> = self.prev.host_bytes.clone();
        for (k, v) in &self.cur.host_bytes {
            *bytes.entry(*k).or_default() += v;
        }
        let other = self.prev.other_bytes + self.cur.other_bytes;
        let total: u64 = bytes.values().sum::<u64>() + other;
        let mut hosts: Vec<HostShare> = bytes
            .into_iter()
            .map(|(host, b)| HostShare {
                host,
                bytes: b,
                share: if total == 0 {
                    0.0
                } else {
                    b as f64 / total as f64
                },
            })
            .collect();
        hosts.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.host.cmp(&b.host)));
        s.hosts = hosts;
        s.other_hosts_bytes = other;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_bucket_upper_bounds() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        // Rank 50 is the sample 50 ms, in bucket (40, 50].
        assert_eq!(h.quantile(0.5), Some(Duration::from_millis(50)));
        // Rank 95 is 95 ms, in (80, 100].
        assert_eq!(h.quantile(0.95), Some(Duration::from_millis(100)));
        assert_eq!(h.quantile(0.0), Some(Duration::from_millis(1)));
        h.record(Duration::from_secs(60));
        assert_eq!(h.quantile(1.0), Some(Duration::MAX));
    }

    #[test]
    fn bucket_edges() {
        let mut h = Histogram::default();
        h.record(Duration::ZERO);
        h.record(Duration::from_millis(1));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(1)));
        h.record(Duration::from_micros(1001));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(2)));
    }

    #[test]
    fn windows_rotate_and_expire() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let mut w = Windows::new(Duration::from_secs(10));
        w.record(
            Instant::from_millis(1_000),
            a,
            300,
            Duration::from_millis(5),
        );
        w.record(
            Instant::from_millis(12_000),
            b,
            100,
            Duration::from_millis(50),
        );
        let mut s = Stats::default();
        w.fill(&mut s);
        assert_eq!(
            s.hosts,
            vec![
                HostShare {
                    host: a,
                    bytes: 300,
                    share: 0.75
                },
                HostShare {
                    host: b,
                    bytes: 100,
                    share: 0.25
                }
            ]
        );
        assert_eq!(s.sojourn_p50, Some(Duration::from_millis(5)));
        // 21 s: window [10, 20) becomes previous; a's window [0, 10) is gone.
        w.record(
            Instant::from_millis(21_000),
            b,
            100,
            Duration::from_millis(50),
        );
        w.fill(&mut s);
        assert_eq!(s.hosts.len(), 1);
        assert_eq!(s.hosts[0].bytes, 200);
        // 60 s: idle for more than two windows; only the new sample remains.
        w.record(Instant::from_millis(60_000), a, 7, Duration::from_millis(1));
        w.fill(&mut s);
        assert_eq!(s.hosts.len(), 1);
        assert_eq!(s.hosts[0].host, a);
        assert_eq!(s.hosts[0].bytes, 7);
    }
}
