//! `[server]`: listener, TLS, allow-list, token lifetime, metrics endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{check_duration, Violation, DEFAULT_PORT, DEFAULT_TOKEN_TTL_S};

/// `[server]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the gRPC server listens on (default `0.0.0.0:224`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain for TLS; TLS is on when both cert and key are set.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Directory for persistent state (rulesets, dial transcripts).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Client networks allowed to talk to the server at all (CIDR list).
    #[serde(default = "default_allow")]
    pub allow: Vec<IpNet>,
    /// Lifetime of a login token, seconds (default 43200 = 12 h).
    #[serde(default = "default_token_ttl")]
    pub token_ttl_s: u64,
    /// Address of the Prometheus text endpoint (plain HTTP, `allow` applies); unset = none.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The user mserver becomes when started as root (keeping CAP_NET_ADMIN and CAP_NET_RAW
    /// only); unset: `masqdial` when that user exists. Ignored when not started as root
    /// (the systemd unit starts it as `masqdial` already).
    #[serde(default)]
    pub user: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            state_dir: default_state_dir(),
            allow: default_allow(),
            token_ttl_s: default_token_ttl(),
            metrics_listen: None,
            user: None,
        }
    }
}

/// Semantic checks of `[server]`.
pub(super) fn validate(s: &ServerConfig) -> Result<(), Violation> {
    if s.tls_cert.is_some() != s.tls_key.is_some() {
        let key = if s.tls_cert.is_some() {
            "tls_cert"
        } else {
            "tls_key"
        };
        return Err(Violation::new(
            "server",
            None,
            key,
            "tls_cert and tls_key must be set together",
        ));
    }
    if s.allow.is_empty() {
        return Err(Violation::new(
            "server",
            None,
            "allow",
            "allow is empty: no client could connect",
        ));
    }
    if s.metrics_listen.is_some_and(|m| m == s.listen) {
        return Err(Violation::new(
            "server",
            None,
            "metrics_listen",
            "must differ from listen (the metrics endpoint is plain HTTP)",
        ));
    }
    if s.token_ttl_s == 0 {
        return Err(Violation::new(
            "server",
            None,
            "token_ttl_s",
            "must be at least 1 second",
        ));
    }
    check_duration("server", None, "token_ttl_s", s.token_ttl_s)?;
    if let Some(u) = &s.user {
        let ok = !u.is_empty()
            && u.len() <= 32
            && u.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !u.starts_with('-');
        if !ok {
            return Err(Violation::new(
                "server",
                None,
                "user",
                "must be a user name (letters, digits, `_`, `-`, `.`)",
            ));
        }
        if u == "root" {
            return Err(Violation::new(
                "server",
                None,
                "user",
                "root is what mserver drops; name an unprivileged user",
            ));
        }
    }
    Ok(())
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/masqdial")
}

fn default_allow() -> Vec<IpNet> {
    // Loopback and the RFC 1918 private networks: a LAN gateway's natural clients.
    [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

fn default_token_ttl() -> u64 {
    DEFAULT_TOKEN_TTL_S
}
