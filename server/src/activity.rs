//! Activity filters (`activity_filter` of a connection): ipchains rules, matched by nat-core's
//! own chains, that decide which packets dial on demand and which reset the idle timer. A
//! value type below config (which validates the rules) and the data plane (which matches
//! packets); imports only nat-core.

use nat_core::chains::{CheckVerdict, Firewall, PacketInfo, Target};

/// An activity filter: ipchains rules (`ACCEPT`, `DENY` or `REJECT`) in a private
/// firewall's `output` chain, matched by nat-core.
#[derive(Debug, Clone)]
pub struct ActivityFilter {
    fw: Firewall,
}

impl ActivityFilter {
    /// Parse rules such as `-p udp -d 0/0 123 -j DENY`; `None` when there are none.
    pub fn parse(rules: &[String]) -> Result<Option<Self>, String> {
        if rules.is_empty() {
            return Ok(None);
        }
        let mut fw = Firewall::new();
        for (i, r) in rules.iter().enumerate() {
            let spec = nat_core::chains::parse_rule(r)
                .map_err(|e| format!("rule {} `{r}`: {e}", i + 1))?;
            for rule in spec.expand() {
                if !matches!(rule.target, Target::Accept | Target::Deny | Target::Reject) {
                    return Err(format!(
                        "rule {} `{r}`: the target must be ACCEPT (activity) or DENY/REJECT (ignored)",
                        i + 1
                    ));
                }
                fw.append("output", &rule)
                    .map_err(|e| format!("rule {} `{r}`: {e}", i + 1))?;
            }
        }
        Ok(Some(Self { fw }))
    }

    /// Whether `pkt` counts as activity (dials, resets the idle timer).
    pub fn counts(&self, pkt: &PacketInfo<'_>) -> bool {
        !matches!(
            self.fw.check_packet("output", pkt),
            Ok(CheckVerdict::Denied | CheckVerdict::Rejected | CheckVerdict::Loop)
        )
    }
}
