//! `[[connections]]`: named dial-up profiles (numbers, PPP auth, timers, dial on demand).

use std::collections::HashSet;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{check_duration, check_name, Violation};

/// PPP authentication the connection accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PppAuth {
    /// PAP only (the password crosses the line in clear).
    Pap,
    /// CHAP-MD5 only.
    Chap,
    /// CHAP-MD5 preferred: an ISP asking PAP is Nak'd towards CHAP-MD5 (pppd `refuse-pap`);
    /// PAP only if the ISP insists and `allow_pap_fallback` is set.
    #[default]
    Any,
}

/// `[[connections]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Profile name, e.g. `isp1`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Modems this connection may use, tried in order (empty = any).
    #[serde(default)]
    pub modems: Vec<String>,
    /// Numbers tried in order (`*99#` for cellular).
    pub numbers: Vec<String>,
    /// Dial command prefix (default `ATDT`).
    #[serde(default = "default_dial_prefix")]
    pub dial_prefix: String,
    /// Cellular APN, sent as `AT+CGDCONT=1,"IP","<apn>"` when set.
    #[serde(default)]
    pub apn: Option<String>,
    /// Cellular (an `apn`, or a modem with `[modems.cellular]`): longest wait, in seconds, for
    /// the modem to register (home or roaming) before dialling, polling `+CREG?`/`+CGREG?`/
    /// `+CEREG?`, `+CSQ` and `+COPS?` (default 60; 0 = dial without waiting; at most 600).
    #[serde(default = "default_registration_wait")]
    pub registration_wait_s: u64,
    /// PPP user name at the ISP.
    #[serde(default)]
    pub username: String,
    /// PPP secret at the ISP (clear text: CHAP needs it).
    #[serde(default)]
    pub password: String,
    /// PPP authentication protocol accepted (default any).
    #[serde(default)]
    pub auth: PppAuth,
    /// With `auth = "any"`: if the ISP still asks PAP after we proposed CHAP-MD5, use PAP
    /// (which sends the password in clear). Default false: the dial fails with a message
    /// naming this option. An error with `auth = "chap"`; no effect with `auth = "pap"`.
    #[serde(default)]
    pub allow_pap_fallback: bool,
    /// Dial attempts per request (default 3).
    #[serde(default = "default_redial_attempts")]
    pub redial_attempts: u32,
    /// Seconds between attempts (default 5).
    #[serde(default = "default_redial_delay")]
    pub redial_delay_s: u64,
    /// Hang up after this many seconds without traffic (0 = never).
    #[serde(default)]
    pub idle_timeout_s: u64,
    /// Hang up after this many seconds connected (0 = never).
    #[serde(default)]
    pub max_connect_s: u64,
    /// Redial when an up link is lost unexpectedly.
    #[serde(default)]
    pub redial_on_loss: bool,
    /// Destinations routed over this link (default everything).
    #[serde(default = "default_routes")]
    pub routes: Vec<IpNet>,
    /// Install `0.0.0.0/0` from `routes` even when the gateway already has a default route
    /// (default false: an existing default route is never replaced unless asked).
    #[serde(default)]
    pub replace_default_route: bool,
    /// Optional text login after CONNECT: alternating expect / send strings.
    #[serde(default)]
    pub login_script: Vec<String>,
    /// Our IPCP address (default: none, the ISP assigns one).
    #[serde(default)]
    pub local_address: Option<std::net::Ipv4Addr>,
    /// The ISP end's address if it asks to be told one or names none (default: whatever it
    /// names, else 10.64.64.64 like pppd).
    #[serde(default)]
    pub peer_address: Option<std::net::Ipv4Addr>,
    /// Take the address the ISP assigns even though `local_address` is set (pppd
    /// `ipcp-accept-local`).
    #[serde(default)]
    pub accept_local: bool,
    /// Let the ISP keep the address it names even though `peer_address` is set (pppd
    /// `ipcp-accept-remote`).
    #[serde(default)]
    pub accept_remote: bool,
    /// Dial on demand: a LAN packet routed to this connection while it is down dials it,
    /// if its source host maps to a user allowed this connection (needs `idle_timeout_s`).
    #[serde(default)]
    pub demand: bool,
    /// Activity filter, ipchains rule syntax (`-p udp -d 0/0 123 -j DENY`), first match
    /// wins: `DENY`/`REJECT` = the packet neither dials nor resets the idle timer, `ACCEPT`
    /// = it does; packets no rule matches count as activity. Written from the LAN host's
    /// side: replies from the link are matched with source and destination swapped.
    #[serde(default)]
    pub activity_filter: Vec<String>,
    /// Longest time a packet is held while a demand dial runs (seconds).
    #[serde(default = "default_demand_hold")]
    pub demand_hold_s: u64,
    /// Most bytes held while a demand dial runs (later packets are dropped).
    #[serde(default = "default_demand_hold_bytes")]
    pub demand_hold_bytes: usize,
}

/// Semantic checks of `[[connections]]` against the modem names; returns the connection
/// names.
pub(super) fn validate<'a>(
    list: &'a [ConnectionConfig],
    modems: &HashSet<&str>,
) -> Result<HashSet<&'a str>, Violation> {
    let mut conns = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        check_name("connections", i, &c.name)?;
        if !conns.insert(c.name.as_str()) {
            return Err(Violation::new(
                "connections",
                Some(i),
                "name",
                format!("duplicate connection name `{}`", c.name),
            ));
        }
        if let Some(m) = c.modems.iter().find(|m| !modems.contains(m.as_str())) {
            return Err(Violation::new(
                "connections",
                Some(i),
                "modems",
                format!("unknown modem `{m}` (not in [[modems]])"),
            ));
        }
        if c.numbers.is_empty() || c.numbers.iter().any(|n| n.trim().is_empty()) {
            return Err(Violation::new(
                "connections",
                Some(i),
                "numbers",
                "needs at least one non-empty number",
            ));
        }
        if c.allow_pap_fallback && c.auth == PppAuth::Chap {
            return Err(Violation::new(
                "connections",
                Some(i),
                "allow_pap_fallback",
                "contradicts auth = \"chap\" (CHAP-MD5 only); use auth = \"any\" to allow \
                 PAP when the ISP insists",
            ));
        }
        check_duration("connections", Some(i), "redial_delay_s", c.redial_delay_s)?;
        if c.registration_wait_s > MAX_REGISTRATION_WAIT_S {
            return Err(Violation::new(
                "connections",
                Some(i),
                "registration_wait_s",
                format!(
                    "{} s is too long (at most {MAX_REGISTRATION_WAIT_S} s; 0 = do not wait)",
                    c.registration_wait_s
                ),
            ));
        }
        check_duration("connections", Some(i), "idle_timeout_s", c.idle_timeout_s)?;
        check_duration("connections", Some(i), "max_connect_s", c.max_connect_s)?;
        check_duration("connections", Some(i), "demand_hold_s", c.demand_hold_s)?;
        if c.login_script.len() % 2 != 0 {
            return Err(Violation::new(
                "connections",
                Some(i),
                "login_script",
                "must alternate expect and send strings (even length)",
            ));
        }
        if c.demand && c.idle_timeout_s == 0 {
            return Err(Violation::new(
                "connections",
                Some(i),
                "idle_timeout_s",
                "demand = true needs an idle timeout (the link would never hang up)",
            ));
        }
        if c.demand && c.demand_hold_s == 0 {
            return Err(Violation::new(
                "connections",
                Some(i),
                "demand_hold_s",
                "must be at least 1 second",
            ));
        }
        if let Err(e) = crate::activity::ActivityFilter::parse(&c.activity_filter) {
            return Err(Violation::new("connections", Some(i), "activity_filter", e));
        }
    }
    Ok(conns)
}

fn default_dial_prefix() -> String {
    "ATDT".into()
}

fn default_redial_attempts() -> u32 {
    3
}

fn default_redial_delay() -> u64 {
    5
}

fn default_registration_wait() -> u64 {
    60
}

/// Longest registration wait a connection may configure.
pub const MAX_REGISTRATION_WAIT_S: u64 = 600;

fn default_routes() -> Vec<IpNet> {
    default_route_all()
}

fn default_route_all() -> Vec<IpNet> {
    "0.0.0.0/0".parse().map(|n| vec![n]).unwrap_or_default()
}

fn default_demand_hold() -> u64 {
    30
}

fn default_demand_hold_bytes() -> usize {
    64 * 1024
}
