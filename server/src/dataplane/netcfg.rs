//! Interface addresses and routes for the TUN device, set with iproute2 (`ip`), each
//! command bounded in time. Owns no packets; called by the link manager when a link goes
//! up or down.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::process::Command;

/// How long one `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors configuring the interface.
#[derive(Debug, thiserror::Error)]
pub enum NetCfgError {
    /// `ip` could not be run.
    #[error("running `ip {args}`: {source}")]
    Spawn {
        /// The arguments.
        args: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `ip` failed.
    #[error("`ip {args}` failed: {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
    /// `ip` did not finish in time.
    #[error("`ip {args}` timed out")]
    Timeout {
        /// The arguments.
        args: String,
    },
}

/// A route to install when the link is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSpec {
    /// The default route (0.0.0.0/0).
    Default,
    /// A destination prefix.
    Net(Ipv4Net),
}

impl std::str::FromStr for RouteSpec {
    type Err = ipnet::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "default" || s == "0.0.0.0/0" {
            Ok(Self::Default)
        } else {
            Ok(Self::Net(s.parse()?))
        }
    }
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Net(n) => write!(f, "{n}"),
        }
    }
}

async fn ip(args: &[&str]) -> Result<String, NetCfgError> {
    let joined = args.join(" ");
    let child = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| NetCfgError::Spawn {
            args: joined.clone(),
            source,
        })?;
    let out = tokio::time::timeout(IP_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| NetCfgError::Timeout {
            args: joined.clone(),
        })?
        .map_err(|source| NetCfgError::Spawn {
            args: joined.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetCfgError::Failed {
            args: joined,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The TUN interface's configuration handle: its name and the network namespace it lives
/// in (`None` = the server's own; the demo moves the device into a namespace of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetCfg {
    /// Interface name, e.g. `masq0`.
    pub dev: String,
    /// Namespace name for `ip -n`, if not the current one.
    pub netns: Option<String>,
}

impl NetCfg {
    /// Configuration of `dev` in the current namespace.
    pub fn new(dev: &str) -> Self {
        Self {
            dev: dev.to_string(),
            netns: None,
        }
    }

    async fn ip(&self, args: &[&str]) -> Result<String, NetCfgError> {
        match &self.netns {
            Some(ns) => {
                let mut v = vec!["-n", ns.as_str()];
                v.extend_from_slice(args);
                ip(&v).await
            }
            None => ip(args).await,
        }
    }

    /// True when the namespace has an IPv4 default route on a device other than ours.
    pub async fn other_default_route_exists(&self) -> Result<bool, NetCfgError> {
        let out = self.ip(&["-4", "route", "show", "default"]).await?;
        let ours = format!(" dev {}", self.dev);
        Ok(out.lines().any(|l| {
            l.starts_with("default") && !(l.contains(&format!("{ours} ")) || l.ends_with(&ours))
        }))
    }

    /// Give the device the point-to-point address `local` peer `peer` and bring it up.
    pub async fn link_up(&self, local: Ipv4Addr, peer: Ipv4Addr) -> Result<(), NetCfgError> {
        let dev = self.dev.as_str();
        self.ip(&["addr", "flush", "dev", dev]).await?;
        let l = local.to_string();
        let p = format!("{peer}/32");
        self.ip(&["addr", "add", &l, "peer", &p, "dev", dev])
            .await?;
        self.ip(&["link", "set", "dev", dev, "up"]).await?;
        Ok(())
    }

    /// Remove the device's addresses and take it down (its routes go with it).
    pub async fn link_down(&self) -> Result<(), NetCfgError> {
        let dev = self.dev.as_str();
        self.ip(&["addr", "flush", "dev", dev]).await?;
        self.ip(&["link", "set", "dev", dev, "down"]).await?;
        Ok(())
    }

    /// Install `route` via the device (replacing an identical one).
    pub async fn add_route(&self, route: RouteSpec) -> Result<(), NetCfgError> {
        let dst = route.to_string();
        self.ip(&["route", "replace", &dst, "dev", &self.dev])
            .await?;
        Ok(())
    }

    /// Remove `route` via the device; a route already gone is not an error.
    pub async fn del_route(&self, route: RouteSpec) -> Result<(), NetCfgError> {
        let dst = route.to_string();
        match self.ip(&["route", "del", &dst, "dev", &self.dev]).await {
            Ok(_) => Ok(()),
            Err(NetCfgError::Failed { stderr, .. })
                if stderr.contains("No such process") || stderr.contains("Cannot find device") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_spec_parses() {
        assert_eq!(
            "default".parse::<RouteSpec>().ok(),
            Some(RouteSpec::Default)
        );
        assert_eq!(
            "0.0.0.0/0".parse::<RouteSpec>().ok(),
            Some(RouteSpec::Default)
        );
        let r: RouteSpec = "203.0.113.0/24".parse().expect("valid prefix");
        assert_eq!(r.to_string(), "203.0.113.0/24");
        assert!("203.0.113.0/33".parse::<RouteSpec>().is_err());
        assert!("nonsense".parse::<RouteSpec>().is_err());
    }
}
