//! `[link]`: the queue in front of the active link.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::Violation;

/// `[link]` section: how traffic waits for the (slow) active link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// `fair` (default): per-host then per-flow fair queuing with CoDel, paced to the serial
    /// line. `fifo`: the old single FIFO, for comparison only.
    #[serde(default)]
    pub scheduler: crate::linkq::SchedulerKind,
    /// Shape the download direction to this fraction of the link rate (e.g. 0.9), so the
    /// queue forms here rather than at the ISP. Off when absent.
    #[serde(default)]
    pub ingress_shaping: Option<f64>,
    /// Clamp the receive window LAN hosts advertise in TCP segments to the link (on by
    /// default): a download's sender keeps at most the link's bandwidth-delay product plus
    /// [`LinkConfig::download_window_packets`] packets in flight, so the ISP's queue stays short.
    #[serde(default = "default_true")]
    pub download_window: bool,
    /// Full-size packets allowed in flight beyond the bandwidth-delay product (split between
    /// active downloads; each gets at least 2). More: more goodput, more latency.
    #[serde(default = "default_window_packets")]
    pub download_window_packets: u16,
    /// Round-trip time beyond the link assumed for the bandwidth-delay product (ms).
    #[serde(default = "default_window_rtt_ms")]
    pub download_window_rtt_ms: u32,
    /// Networks no PPP peer may hand out (either end of the link), on top of this host's own
    /// interface networks, which are always refused (not the `allow` list: an ISP may give
    /// 10.x). IPv6 entries are ignored.
    #[serde(default)]
    pub refused_networks: Vec<IpNet>,
}

fn default_true() -> bool {
    true
}

fn default_window_packets() -> u16 {
    2
}

fn default_window_rtt_ms() -> u32 {
    100
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            scheduler: Default::default(),
            ingress_shaping: None,
            download_window: true,
            download_window_packets: default_window_packets(),
            download_window_rtt_ms: default_window_rtt_ms(),
            refused_networks: Vec::new(),
        }
    }
}

/// Semantic checks of `[link]`.
pub(super) fn validate(l: &LinkConfig) -> Result<(), Violation> {
    if let Some(f) = l.ingress_shaping {
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            return Err(Violation::new(
                "link",
                None,
                "ingress_shaping",
                format!("{f} must be above 0 and at most 1 (a fraction of the link rate)"),
            ));
        }
    }
    if l.download_window_packets == 0 || l.download_window_packets > 1000 {
        return Err(Violation::new(
            "link",
            None,
            "download_window_packets",
            format!(
                "{} must be 1 to 1000 (turn the clamp off with download_window = false)",
                l.download_window_packets
            ),
        ));
    }
    if l.download_window_rtt_ms > 10_000 {
        return Err(Violation::new(
            "link",
            None,
            "download_window_rtt_ms",
            format!("{} must be at most 10000", l.download_window_rtt_ms),
        ));
    }
    Ok(())
}
