//! `[nat]`: masquerading engine settings (port pool, timeouts, TUN, profile).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check_duration, Violation};

/// Behaviour profile of the NAT engine (`[nat] rfc_profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RfcProfile {
    /// Linux 2.2 ip_masq behaviour (ipchains MASQ).
    #[default]
    Linux22,
    /// RFC 4787/5382-style behaviour (nat-core's `MasqConfig::rfc`). It hairpins, so while
    /// a link is up the server routes LAN packets for the link's address into the TUN with
    /// a policy rule (see `dataplane::netcfg::NetCfg::hairpin_on`).
    Rfc,
}

/// `[nat]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    /// First masquerade port (default 61000).
    #[serde(default = "default_port_low")]
    pub port_low: u16,
    /// Last masquerade port, inclusive (default 65095).
    #[serde(default = "default_port_high")]
    pub port_high: u16,
    /// TCP (established) timeout, seconds (default 900).
    #[serde(default = "default_tcp_timeout")]
    pub tcp_timeout: u32,
    /// TCP after FIN timeout, seconds (default 120).
    #[serde(default = "default_tcpfin_timeout")]
    pub tcpfin_timeout: u32,
    /// UDP timeout, seconds (default 300).
    #[serde(default = "default_udp_timeout")]
    pub udp_timeout: u32,
    /// LAN interface whose hosts are masqueraded (informational for rules).
    #[serde(default)]
    pub lan_interface: Option<String>,
    /// TUN device name the dataplane creates (default `masq0`).
    #[serde(default = "default_tun_name")]
    pub tun_name: String,
    /// Behaviour profile of the engine (default `linux22`).
    #[serde(default)]
    pub rfc_profile: RfcProfile,
    /// ipchains-save file loaded at start (optional).
    #[serde(default)]
    pub ruleset: Option<PathBuf>,
    /// Linux 2.2's `ip_dynaddr`: 0 = masquerade entries die when the link's address changes
    /// (2.2's default), 1 = entries that never saw a reply move to the new address (for
    /// dial-on-demand), 2 = as 1 and log each move. Default 1.
    #[serde(default = "default_dynaddr")]
    pub ip_dynaddr: u8,
    /// Most masquerade entries one LAN host may hold at once (0 = no quota, as in 2.2).
    /// Default 4096: one host cannot take every port of the pool from the others. Over it,
    /// new flows of that host are dropped (counter `drop.host_quota`).
    #[serde(default = "default_max_entries_per_host")]
    pub max_entries_per_host: u32,
    /// Clamp the MSS of TCP SYNs crossing the link to what its MTU carries (FreeBSD ppp
    /// `mssfixup`; default true). Off, LAN hosts rely on path MTU discovery (RFC 1191).
    #[serde(default = "default_true")]
    pub mss_clamp: bool,
    /// Set the TUN device's MTU to the peer's negotiated MRU on every link-up (default
    /// true), so the kernel itself fragments or answers Frag-Needed for what it routes into
    /// the TUN. Off, the TUN stays at 1500 and mserver does both (nat-core `mtu`).
    #[serde(default = "default_true")]
    pub tun_mtu_follows_mru: bool,
    /// TCP ports of IRC servers whose connections the IRC DCC helper watches (2.2's
    /// `modprobe ip_masq_irc ports=…`): DCC SEND/CHAT offers LAN clients send there are
    /// rewritten to the link's address and a masquerade port the peer can connect to. At most
    /// 12 (2.2's `MAX_MASQ_APP_PORTS`); default `[6667]`; `[]` leaves the helper unloaded.
    /// Shown in `/proc/net/ip_masq/app`.
    #[serde(default = "default_irc_ports")]
    pub irc_ports: Vec<u16>,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            port_low: default_port_low(),
            port_high: default_port_high(),
            tcp_timeout: default_tcp_timeout(),
            tcpfin_timeout: default_tcpfin_timeout(),
            udp_timeout: default_udp_timeout(),
            lan_interface: None,
            tun_name: default_tun_name(),
            rfc_profile: RfcProfile::default(),
            ruleset: None,
            ip_dynaddr: default_dynaddr(),
            max_entries_per_host: default_max_entries_per_host(),
            mss_clamp: true,
            tun_mtu_follows_mru: true,
            irc_ports: default_irc_ports(),
        }
    }
}

/// Semantic checks of `[nat]`.
pub(super) fn validate(n: &NatConfig) -> Result<(), Violation> {
    check_duration("nat", None, "tcp_timeout", n.tcp_timeout.into())?;
    check_duration("nat", None, "tcpfin_timeout", n.tcpfin_timeout.into())?;
    check_duration("nat", None, "udp_timeout", n.udp_timeout.into())?;
    if n.port_low < 1024 || n.port_low > n.port_high {
        return Err(Violation::new(
            "nat",
            None,
            "port_low",
            format!(
                "port range {}..={} must satisfy 1024 <= port_low <= port_high",
                n.port_low, n.port_high
            ),
        ));
    }
    for (key, v) in [
        ("tcp_timeout", n.tcp_timeout),
        ("tcpfin_timeout", n.tcpfin_timeout),
        ("udp_timeout", n.udp_timeout),
    ] {
        if v == 0 {
            return Err(Violation::new(
                "nat",
                None,
                key,
                "must be at least 1 second",
            ));
        }
    }
    if n.irc_ports.len() > nat_core::helpers::MAX_PORTS_PER_HELPER {
        return Err(Violation::new(
            "nat",
            None,
            "irc_ports",
            format!(
                "at most {} ports (2.2's MAX_MASQ_APP_PORTS)",
                nat_core::helpers::MAX_PORTS_PER_HELPER
            ),
        ));
    }
    for (k, &p) in n.irc_ports.iter().enumerate() {
        let why = if p == 0 {
            Some("port 0 is not a port")
        } else if p == 21 {
            Some("port 21 has the FTP helper")
        } else if n.irc_ports[..k].contains(&p) {
            Some("a port is listed twice")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Violation::new("nat", None, "irc_ports", why));
        }
    }
    if n.tun_name.is_empty() || n.tun_name.len() > 15 {
        return Err(Violation::new(
            "nat",
            None,
            "tun_name",
            "must be 1 to 15 characters (IFNAMSIZ)",
        ));
    }
    Ok(())
}

fn default_irc_ports() -> Vec<u16> {
    vec![nat_core::helpers::irc::DEFAULT_PORT]
}

fn default_max_entries_per_host() -> u32 {
    4096
}

fn default_port_low() -> u16 {
    61000
}

fn default_port_high() -> u16 {
    65095
}

fn default_tcp_timeout() -> u32 {
    15 * 60
}

fn default_tcpfin_timeout() -> u32 {
    2 * 60
}

fn default_udp_timeout() -> u32 {
    5 * 60
}

fn default_tun_name() -> String {
    "masq0".into()
}

fn default_dynaddr() -> u8 {
    1
}

fn default_true() -> bool {
    true
}
