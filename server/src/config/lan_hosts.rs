//! `[[lan_hosts]]`: which user a LAN host's packets belong to (dial on demand).

use std::collections::HashSet;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::Violation;

/// `[[lan_hosts]]` entry: a LAN host (or prefix) and the user its traffic is credited to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanHostConfig {
    /// Address or prefix, e.g. `192.168.77.2` or `192.168.77.16/28`.
    #[serde(deserialize_with = "host_or_net")]
    pub host: IpNet,
    /// A `[[users]]` name.
    pub user: String,
}

/// Semantic checks of `[[lan_hosts]]` against the user names.
pub(super) fn validate(list: &[LanHostConfig], users: &HashSet<&str>) -> Result<(), Violation> {
    for (i, h) in list.iter().enumerate() {
        if !users.contains(h.user.as_str()) {
            return Err(Violation::new(
                "lan_hosts",
                Some(i),
                "user",
                format!("unknown user `{}` (not in [[users]])", h.user),
            ));
        }
    }
    Ok(())
}

/// An address (a host route, `/32`) or a prefix.
fn host_or_net<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an address or prefix")))
}
