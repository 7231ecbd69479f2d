//! Server URLs: parsing `http[s]://host[:port]` (or a bare `host[:port]`) and the normalised
//! form used as the token store's key. A leaf: imports nothing from the rest of the crate.
//!
//! Owns: URL syntax and normalisation. Must not: read settings, the environment or files.

use anyhow::Context;

/// Default port of mserver (IANA masqdialer).
pub const DEFAULT_PORT: u16 = 224;

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// Normalised key: scheme, lower-case host (`localhost` → `127.0.0.1`), explicit port,
    /// no path or trailing `/`.
    pub key: String,
    /// What to connect to: like `key`, but https keeps its host name.
    pub connect: String,
    /// Host (without brackets for IPv6).
    pub host: String,
    /// Whether the scheme is https.
    pub https: bool,
}

impl ServerUrl {
    /// Parse `http://host[:port][/]`, `https://…`, or a bare `host[:port]` (http).
    pub fn parse(raw: &str) -> anyhow::Result<ServerUrl> {
        let s = raw.trim();
        let (scheme, rest) = match s.split_once("://") {
            Some((sch, rest)) => (sch.to_ascii_lowercase(), rest),
            None => ("http".to_string(), s),
        };
        let https = match scheme.as_str() {
            "http" => false,
            "https" => true,
            _ => anyhow::bail!("server URL must start with http:// or https:// (got {raw:?})"),
        };
        let authority = rest.trim_end_matches('/');
        anyhow::ensure!(
            !authority.contains('/') && !authority.contains('@') && !authority.is_empty(),
            "server URL must be http[s]://host[:port] (got {raw:?})"
        );
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .with_context(|| format!("bad IPv6 address in {raw:?}"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .with_context(|| format!("bad port in {raw:?}"))?,
                ),
            };
            (h.to_ascii_lowercase(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (authority.to_ascii_lowercase(), None),
            }
        };
        anyhow::ensure!(!host.is_empty(), "no host in server URL {raw:?}");
        let port: u16 = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .with_context(|| format!("bad port in server URL {raw:?}"))?,
        };
        let canonical = match host.as_str() {
            "localhost" | "localhost." => "127.0.0.1".to_string(),
            "::1" | "0:0:0:0:0:0:0:1" => "::1".to_string(),
            h => h.to_string(),
        };
        let fmt_host = |h: &str| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_string()
            }
        };
        let scheme = if https { "https" } else { "http" };
        let key = format!("{scheme}://{}:{port}", fmt_host(&canonical));
        let connect = if https {
            format!("{scheme}://{}:{port}", fmt_host(&host))
        } else {
            key.clone()
        };
        Ok(ServerUrl {
            key,
            connect,
            host: canonical,
            https,
        })
    }

    /// The one rule mclient and mtui share before sending a password: plain http only to a
    /// loopback host, unless the user passed `--insecure`. `Some((why, what to do))` refuses.
    pub fn password_refused(&self, insecure: bool) -> Option<(String, &'static str)> {
        (!self.https && !self.is_loopback() && !insecure).then(|| {
            (
                format!(
                    "refusing to send a password over plain http to {}",
                    self.key
                ),
                "use an https:// server with --ca, or pass --insecure if this network is trusted",
            )
        })
    }

    /// Whether the host is a loopback address (`127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => false,
        }
    }
}

/// Normalise a server URL for use as a token-store key; input that does not parse is only
/// trimmed (so a store lookup never fails on it).
pub fn normalize_server(raw: &str) -> String {
    match ServerUrl::parse(raw) {
        Ok(u) => u.key,
        Err(_) => raw.trim().trim_end_matches('/').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise() {
        let k = |s: &str| {
            ServerUrl::parse(s)
                .map(|u| u.key)
                .unwrap_or_else(|e| e.to_string())
        };
        assert_eq!(k("http://localhost:224"), "http://127.0.0.1:224");
        assert_eq!(k("http://127.0.0.1"), "http://127.0.0.1:224");
        assert_eq!(k("http://127.0.0.1:224/"), "http://127.0.0.1:224");
        assert_eq!(k("HTTP://LocalHost/"), "http://127.0.0.1:224");
        assert_eq!(k("gw.lan"), "http://gw.lan:224");
        assert_eq!(k("gw.lan:2240"), "http://gw.lan:2240");
        assert_eq!(k("http://[::1]:9"), "http://[::1]:9");
        assert_eq!(k("http://[::1]"), "http://[::1]:224");
        assert_eq!(k("https://LOCALHOST:1"), "https://127.0.0.1:1");
        assert!(ServerUrl::parse("ftp://x").is_err());
        assert!(ServerUrl::parse("http://x:0").is_err());
        assert!(ServerUrl::parse("http://x:99999").is_err());
        assert!(ServerUrl::parse("http://x/path").is_err());
        assert!(ServerUrl::parse("http://").is_err());
        // https keeps the name for the certificate check.
        let u = ServerUrl::parse("https://localhost:1/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.connect, "https://localhost:1");
        assert!(u.is_loopback());
        assert!(!ServerUrl::parse("http://10.0.0.1")
            .map(|u| u.is_loopback())
            .unwrap_or(true));
        assert_eq!(
            normalize_server("http://localhost/"),
            "http://127.0.0.1:224"
        );
    }
}
