//! Scheduler configuration and the parameters derived from the link rate. Owns the auto-scaling
//! rules (CAKE's `cake_set_rate`); must not hold any queue state.

use std::time::Duration;

/// CoDel's textbook target at high rates (RFC 8289 §4.4: 5 ms).
pub const BASE_TARGET: Duration = Duration::from_millis(5);
/// CoDel's textbook interval (RFC 8289 §4.3: 100 ms, a worst-case RTT estimate).
pub const BASE_INTERVAL: Duration = Duration::from_millis(100);
/// Smallest DRR quantum (bytes), CAKE's floor.
pub const MIN_QUANTUM: u32 = 300;
/// Smallest packet size (before overhead) the automatic CoDel target is sized from.
///
/// CAKE sizes the target from the device MTU, which is 1500 on the links it was tuned on. A
/// PPP peer that asks a small MRU (576, 296) would otherwise shrink the target to 1.5 small
/// packets (40 ms for 296 bytes at 115200 bit/s): a single TCP upload then keeps CoDel in
/// its dropping state, its drop rate climbing with every interval, and a peer without SACK
/// (slirp) repairs one hole per round trip until the sender's retransmission timer backs off
/// for tens of seconds. Measured against slirp at MRU 296, 200 KB each way at once: 22 to 117
/// AQM drops per run and one run in four stalled for over 60 s; sized from 1500 bytes, 5 to 7
/// drops and no stall. Limits and the "never drop the last packet" backlog still use the real
/// MTU.
pub const TARGET_PACKET_FLOOR: u32 = 1500;

/// How the scheduler orders packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discipline {
    /// Per-host, then per-flow DRR with sparse-flow priority and CoDel (the normal mode).
    #[default]
    Fair,
    /// One first-in first-out queue with a byte limit and no AQM: what the gateway did before
    /// this scheduler. Kept for comparison benchmarks only.
    Fifo,
}

/// What the caller configures. Fields left `None` are derived from `link_rate` (see
/// [`Params`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Rate the link drains at, in bytes per second on the wire (115200 baud with 8N1 framing:
    /// 11 520). Drives the automatic CoDel target/interval, the quantum and the default limit.
    pub link_rate: u64,
    /// Largest IP packet the link carries (the negotiated MTU), bytes.
    pub mtu: u32,
    /// Framing bytes charged per packet on top of its length (PPP flag, address/control,
    /// protocol, FCS: about 8 on an uncompressed async link). Counts in limits, deficits and the
    /// shaper.
    pub overhead: u32,
    /// Total byte limit (charged bytes). `None`: `link_rate` × [`Config::limit_time`], at least
    /// four MTUs.
    pub limit_bytes: Option<u64>,
    /// Link time the default byte limit holds.
    pub limit_time: Duration,
    /// DRR quantum per flow and per host (bytes). `None`: `link_rate / 4096` clamped to
    /// [300, 1514], CAKE's rule (300 at modem rates, so sparse packets interleave finely).
    pub quantum: Option<u32>,
    /// CoDel target. `None`: the larger of 5 ms and 1.5 × one packet's serialisation time,
    /// the packet being the MTU or [`TARGET_PACKET_FLOOR`] bytes, whichever is larger (plus
    /// the overhead).
    pub target: Option<Duration>,
    /// CoDel interval. `None`: the larger of 100 ms + target − 5 ms and 2 × target.
    pub interval: Option<Duration>,
    /// Mark ECN-capable packets CE instead of dropping them (RFC 3168).
    pub ecn: bool,
    /// Pace dequeues at this fraction of `link_rate` (the ingress shaper, CAKE's ingress mode;
    /// or an egress pacer when the driver cannot see the serial line's output queue). `None`:
    /// unshaped, `dequeue` returns a packet whenever one is queued.
    pub shaping: Option<f64>,
    /// Ingress mode (CAKE's `ingress`): packets the scheduler drops count against the shaper
    /// like sent ones, because they already crossed the bottleneck. While CoDel is dropping,
    /// less reaches the LAN, the senders' ACK clock slows and the upstream queue drains
    /// sooner. No effect unshaped.
    pub ingress: bool,
    /// Length of one statistics window: sojourn quantiles and host shares cover the current and
    /// the previous window.
    pub stats_window: Duration,
    /// Ordering discipline.
    pub discipline: Discipline,
}

impl Config {
    /// Defaults for a link draining `link_rate` bytes per second.
    pub fn for_link_rate(link_rate: u64) -> Config {
        Config {
            link_rate,
            mtu: 1500,
            overhead: 0,
            limit_bytes: None,
            limit_time: Duration::from_secs(5),
            quantum: None,
            target: None,
            interval: None,
            ecn: true,
            shaping: None,
            ingress: false,
            stats_window: Duration::from_secs(10),
            discipline: Discipline::Fair,
        }
    }

    /// Defaults for an async serial line at `baud` with 10 bits per byte (8N1).
    pub fn for_baud(baud: u32) -> Config {
        Config::for_link_rate(u64::from(baud) / 10)
    }

    /// Check the configuration and derive the working parameters.
    pub fn params(&self) -> Result<Params, ConfigError> {
        if self.link_rate == 0 {
            return Err(ConfigError::ZeroRate);
        }
        if self.mtu < 68 {
            return Err(ConfigError::MtuTooSmall(self.mtu));
        }
        if let Some(f) = self.shaping {
            if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                return Err(ConfigError::Shaping(f));
            }
        }
        if self.stats_window.is_zero() {
            return Err(ConfigError::ZeroWindow);
        }
        let max_packet = u64::from(self.mtu) + u64::from(self.overhead);
        let ns_per_byte = 1e9 / self.link_rate as f64;
        // CAKE: byte_target_ns = MTU × time per byte; target = max(1.5 × that, 5 ms);
        // interval = max(rtt_est + target − 5 ms, 2 × target).
        // (The packet the target is sized from is at least TARGET_PACKET_FLOOR bytes.)
        let target_packet = u64::from(self.mtu.max(TARGET_PACKET_FLOOR)) + u64::from(self.overhead);
        let mtu_time = Duration::from_nanos((target_packet as f64 * ns_per_byte) as u64);
        let target = self
            .target
            .unwrap_or_else(|| (mtu_time * 3 / 2).max(BASE_TARGET));
        let interval = self.interval.unwrap_or_else(|| {
            (BASE_INTERVAL + target)
                .saturating_sub(BASE_TARGET)
                .max(target * 2)
        });
        if target.is_zero() || interval < target {
            return Err(ConfigError::Codel { target, interval });
        }
        let quantum = match self.quantum {
            Some(0) => return Err(ConfigError::ZeroQuantum),
            Some(q) => q,
            None => u32::try_from(self.link_rate >> 12)
                .unwrap_or(u32::MAX)
                .clamp(MIN_QUANTUM, 1514),
        };
        let limit_bytes = match self.limit_bytes {
            Some(l) if l < max_packet => {
                return Err(ConfigError::LimitTooSmall {
                    limit: l,
                    packet: max_packet,
                })
            }
            Some(l) => l,
            None => {
                let by_time = (self.link_rate as f64 * self.limit_time.as_secs_f64()) as u64;
                by_time.max(4 * max_packet)
            }
        };
        let shaper_rate = self
            .shaping
            .map(|f| ((self.link_rate as f64 * f) as u64).max(1));
        // One full-size packet's time at the shaper rate.
        let sparse_lead = shaper_rate.map_or(Duration::ZERO, |r| {
            Duration::from_nanos(
                u64::try_from(u128::from(max_packet) * 1_000_000_000 / u128::from(r))
                    .unwrap_or(u64::MAX),
            )
        });
        Ok(Params {
            quantum,
            target,
            interval,
            limit_bytes,
            max_packet,
            overhead: u64::from(self.overhead),
            ecn: self.ecn,
            shaper_rate,
            sparse_lead,
            ingress: self.ingress,
            stats_window: self.stats_window,
            discipline: self.discipline,
        })
    }
}

/// The working parameters, derived once from a [`Config`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// DRR quantum per flow and per host, bytes.
    pub quantum: u32,
    /// CoDel target sojourn.
    pub target: Duration,
    /// CoDel interval.
    pub interval: Duration,
    /// Total byte limit (charged bytes).
    pub limit_bytes: u64,
    /// MTU plus overhead: a flow at or below this backlog is never dropped by CoDel.
    pub max_packet: u64,
    /// Per-packet framing charge, bytes.
    pub overhead: u64,
    /// ECN marking on.
    pub ecn: bool,
    /// Shaper rate in charged bytes per second, if shaping.
    pub shaper_rate: Option<u64>,
    /// How far ahead of the shaper's schedule a sparse flow's packet may leave: one full-size
    /// packet's time at the shaper rate (zero unshaped).
    pub sparse_lead: Duration,
    /// Drops are charged to the shaper.
    pub ingress: bool,
    /// Statistics window.
    pub stats_window: Duration,
    /// Ordering discipline.
    pub discipline: Discipline,
}

/// A configuration the scheduler refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `link_rate` is zero.
    #[error("link rate must be above zero")]
    ZeroRate,
    /// The MTU is below IPv4's minimum of 68 (RFC 791).
    #[error("MTU {0} is below IPv4's minimum of 68")]
    MtuTooSmall(u32),
    /// The shaping fraction is not in (0, 1].
    #[error("shaping fraction {0} must be above 0 and at most 1")]
    Shaping(f64),
    /// The byte limit cannot hold one full-size packet.
    #[error("byte limit {limit} is below one full-size packet ({packet} bytes)")]
    LimitTooSmall {
        /// Configured limit.
        limit: u64,
        /// MTU plus overhead.
        packet: u64,
    },
    /// The quantum is zero.
    #[error("quantum must be above zero")]
    ZeroQuantum,
    /// The CoDel target is zero or the interval is shorter than the target.
    #[error("CoDel target {target:?} must be above zero and at most the interval {interval:?}")]
    Codel {
        /// Target.
        target: Duration,
        /// Interval.
        interval: Duration,
    },
    /// The statistics window is zero.
    #[error("statistics window must be above zero")]
    ZeroWindow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modem_rate_scales_codel_like_cake() {
        // 115200 baud, 8N1: 11 520 B/s; 1500 bytes take 130.208 ms.
        let p = Config::for_baud(115_200).params().expect("valid");
        assert_eq!(p.target, Duration::from_nanos(195_312_499));
        assert_eq!(p.interval, Duration::from_nanos(390_624_998));
        assert_eq!(p.quantum, 300);
        assert_eq!(p.limit_bytes, 57_600);
        assert_eq!(p.max_packet, 1500);
        assert_eq!(p.shaper_rate, None);
    }

    #[test]
    fn small_mtu_does_not_shrink_the_codel_target() {
        // A PPP peer asking MRU 296 (or 576): the target and interval stay those of a
        // 1500-byte packet on the same line; the limit floor and max_packet follow the MTU.
        let mut full = Config::for_baud(115_200);
        full.overhead = 8;
        let want = full.params().expect("valid");
        for mtu in [68, 296, 576, 1500] {
            let mut c = full.clone();
            c.mtu = mtu;
            let p = c.params().expect("valid");
            assert_eq!(
                (p.target, p.interval),
                (want.target, want.interval),
                "mtu {mtu}"
            );
            assert_eq!(p.max_packet, u64::from(mtu) + 8);
        }
        // 1.5 × 1508 bytes at 11 520 B/s.
        assert_eq!(want.target, Duration::from_nanos(196_354_165));
        // Larger MTUs still scale it.
        let mut big = full;
        big.mtu = 3000;
        assert!(big.params().expect("valid").target > want.target);
    }

    #[test]
    fn fast_link_keeps_textbook_codel() {
        // 100 Mbit/s: 12.5 MB/s; one MTU takes 120 µs, so the 5 ms floor wins.
        let p = Config::for_link_rate(12_500_000).params().expect("valid");
        assert_eq!(p.target, BASE_TARGET);
        assert_eq!(p.interval, BASE_INTERVAL);
        assert_eq!(p.quantum, 1514);
    }

    #[test]
    fn shaper_rate_is_a_fraction_of_the_link() {
        let mut c = Config::for_baud(115_200);
        c.shaping = Some(0.9);
        assert_eq!(c.params().expect("valid").shaper_rate, Some(10_368));
    }

    #[test]
    fn refuses_bad_configs() {
        let base = Config::for_baud(115_200);
        let mut c = base.clone();
        c.link_rate = 0;
        assert_eq!(c.params(), Err(ConfigError::ZeroRate));
        let mut c = base.clone();
        c.shaping = Some(1.5);
        assert_eq!(c.params(), Err(ConfigError::Shaping(1.5)));
        let mut c = base.clone();
        c.shaping = Some(f64::NAN);
        assert!(matches!(c.params(), Err(ConfigError::Shaping(_))));
        let mut c = base.clone();
        c.limit_bytes = Some(1000);
        assert_eq!(
            c.params(),
            Err(ConfigError::LimitTooSmall {
                limit: 1000,
                packet: 1500
            })
        );
        let mut c = base.clone();
        c.quantum = Some(0);
        assert_eq!(c.params(), Err(ConfigError::ZeroQuantum));
        let mut c = base.clone();
        c.target = Some(Duration::from_millis(200));
        c.interval = Some(Duration::from_millis(100));
        assert!(matches!(c.params(), Err(ConfigError::Codel { .. })));
        let mut c = base;
        c.mtu = 20;
        assert_eq!(c.params(), Err(ConfigError::MtuTooSmall(20)));
    }
}
