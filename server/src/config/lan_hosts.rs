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
    /// Optional link-layer address (`aa:bb:cc:dd:ee:ff`) the host must resolve to in the
    /// kernel's neighbour table for its packets to dial on demand; only for a single IPv4
    /// host. Without it, authorization is by source address only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// Semantic checks of `[[lan_hosts]]` against the user names.
pub(super) fn validate(list: &[LanHostConfig], users: &HashSet<&str>) -> Result<(), Violation> {
    for (i, h) in list.iter().enumerate() {
        if let Some(m) = &h.mac {
            if parse_mac(m).is_none() {
                return Err(Violation::new(
                    "lan_hosts",
                    Some(i),
                    "mac",
                    format!(
                        "`{m}` is not a MAC address (write six hex pairs: \"aa:bb:cc:dd:ee:ff\")"
                    ),
                ));
            }
            if !matches!(h.host, IpNet::V4(n) if n.prefix_len() == 32) {
                return Err(Violation::new(
                    "lan_hosts",
                    Some(i),
                    "mac",
                    "a MAC binding needs a single IPv4 host (an address or a /32), not a prefix",
                ));
            }
        }
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

/// `aa:bb:cc:dd:ee:ff` (any case) as six bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
