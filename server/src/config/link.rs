//! `[link]`: the queue in front of the active link.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::Violation;

/// `[link]` section: how traffic waits for the (slow) active link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Networks no PPP peer may hand out (either end of the link), on top of this host's own
    /// interface networks, which are always refused (not the `allow` list: an ISP may give
    /// 10.x). IPv6 entries are ignored.
    #[serde(default)]
    pub refused_networks: Vec<IpNet>,
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
    Ok(())
}
