//! `[web]`: the web page served by mserver itself (off unless `listen` is set).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ServerConfig, Violation};

/// `[web]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address of the web page (HTTP, or HTTPS with `[server] tls_cert`/`tls_key`; the
    /// `allow` list applies); unset = no web page.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// Semantic checks of `[web]` (it needs a port of its own).
pub(super) fn validate(w: &WebConfig, s: &ServerConfig) -> Result<(), Violation> {
    if let Some(l) = w.listen {
        if l == s.listen || Some(l) == s.metrics_listen {
            return Err(Violation::new(
                "web",
                None,
                "listen",
                "must differ from [server] listen and metrics_listen",
            ));
        }
    }
    Ok(())
}
