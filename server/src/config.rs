//! mserver configuration: TOML file, validated with file/line/key errors.
//!
//! Owns parsing and semantic validation of the configuration only; it must not open
//! devices, sockets or files other than the configuration file itself.
//!
//! Each section's schema and its own checks live in a submodule (`server`, `users`, `modems`,
//! `connections`, `lan_hosts`, `budgets`, `nat`, `link`); this file keeps [`Config`], loading,
//! the error type, error location and the order of the checks. A submodule may import value
//! types (`crate::budget`, `crate::activity`, `crate::linkq`), never the link, dataplane,
//! modem or rpc layers (`.ci/layers`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod budgets;
mod connections;
mod lan_hosts;
mod link;
mod modems;
mod nat;
mod running;
mod server;
mod users;
mod web;

pub use budgets::BudgetConfig;
pub use connections::{ConnectionConfig, PppAuth, MAX_REGISTRATION_WAIT_S};
pub use lan_hosts::{parse_mac, LanHostConfig};
pub use link::LinkConfig;
pub use modems::{CellularConfig, FlowControl, ModemConfig, Parity};
pub use nat::{NatConfig, RfcProfile};
pub use running::{reloaded, ReloadRefused, Running};
pub use server::ServerConfig;
pub use users::{UserConfig, UserRole};
pub use web::WebConfig;

/// Port IANA assigned to masqdialer (tcp/224); the default listen port.
pub const DEFAULT_PORT: u16 = 224;
/// Default bearer-token lifetime in seconds (12 hours).
pub const DEFAULT_TOKEN_TTL_S: u64 = 12 * 3600;
/// The `password_hash` placeholder of the shipped example configuration. It (like any value
/// starting with `<`) fails validation with a message saying how to make a hash.
pub const HASH_PLACEHOLDER: &str = "<run: mserver hash-password>";

/// Longest duration any setting may have (30 days, in seconds): far beyond any sensible
/// value, and far from overflowing an `Instant` or a centisecond counter.
pub const MAX_DURATION_S: u64 = 30 * 24 * 3600;

fn check_duration(
    section: &'static str,
    index: Option<usize>,
    key: &'static str,
    v: u64,
) -> Result<(), Violation> {
    if v > MAX_DURATION_S {
        return Err(Violation::new(
            section,
            index,
            key,
            format!("{v} s is too long (at most {MAX_DURATION_S} s = 30 days)"),
        ));
    }
    Ok(())
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: listener, TLS, allow-list, state directory.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[users]]`: who may log in.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// `[[modems]]`: serial devices.
    #[serde(default)]
    pub modems: Vec<ModemConfig>,
    /// `[[connections]]`: named dial-up profiles.
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
    /// `[nat]`: masquerading engine settings.
    #[serde(default)]
    pub nat: NatConfig,
    /// `[link]`: the queue in front of the active link.
    #[serde(default)]
    pub link: LinkConfig,
    /// `[[lan_hosts]]`: which user a LAN host's packets belong to (dial on demand).
    #[serde(default)]
    pub lan_hosts: Vec<LanHostConfig>,
    /// `[[budgets]]`: byte quota, connect-time budget and dialling windows per connection.
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
    /// `[web]`: the web page (off by default).
    #[serde(default)]
    pub web: WebConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted key path, e.g. `connections[1].modems` (empty when unknown).
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}")?,
            (Some(l), None) => write!(f, "line {l}")?,
            _ => f.write_str("(line unknown)")?,
        }
        if !self.key.is_empty() {
            write!(f, ", key `{}`", self.key)?;
        }
        Ok(())
    }
}

/// Error loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or wrong type.
    #[error("{path}: {at}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where.
        at: Location,
        /// What toml/serde said.
        message: String,
    },
    /// The file parsed but a value is wrong (unknown modem, duplicate name, bad hash...).
    #[error("{path}: {at}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The location of the problem, if it is a parse or validation error.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Parse { at, .. } | ConfigError::Invalid { at, .. } => Some(at),
        }
    }
}

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(path, &text)?;
        // A relative `[nat] ruleset` is relative to the config file's directory.
        if let (Some(r), Some(dir)) = (config.nat.ruleset.as_mut(), path.parent()) {
            if r.is_relative() {
                *r = dir.join(&*r);
            }
        }
        Ok(config)
    }

    /// Parse and validate configuration text; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column, key) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c), key_at_line(text, l))
                }
                None => (None, None, String::new()),
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                at: Location { line, column, key },
                message: e.message().trim().to_string(),
            }
        })?;
        config.validate().map_err(|v| {
            let line = locate(text, v.section, v.index, v.key);
            let key = match v.index {
                Some(i) if v.key.is_empty() => format!("{}[{i}]", v.section),
                Some(i) => format!("{}[{i}].{}", v.section, v.key),
                None if v.key.is_empty() => v.section.to_string(),
                None => format!("{}.{}", v.section, v.key),
            };
            ConfigError::Invalid {
                path: path.to_path_buf(),
                at: Location {
                    line,
                    column: None,
                    key,
                },
                message: v.message,
            }
        })?;
        Ok(config)
    }

    /// Semantic checks, section by section; returns the first problem found.
    fn validate(&self) -> Result<(), Violation> {
        server::validate(&self.server)?;
        web::validate(&self.web, &self.server)?;
        let modems = modems::validate(&self.modems)?;
        let conns = connections::validate(&self.connections, &modems)?;
        let users = users::validate(&self.users, &conns)?;
        lan_hosts::validate(&self.lan_hosts, &users)?;
        budgets::validate(&self.budgets, &conns)?;
        nat::validate(&self.nat)?;
        link::validate(&self.link)
    }

    /// Names of every configured connection, in file order.
    pub fn connection_names(&self) -> Vec<String> {
        self.connections.iter().map(|c| c.name.clone()).collect()
    }

    /// Whether TLS is configured.
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => None,
        }
    }
}

/// A semantic problem, located by section / array index / key.
struct Violation {
    section: &'static str,
    index: Option<usize>,
    key: &'static str,
    message: String,
}

impl Violation {
    fn new(
        section: &'static str,
        index: Option<usize>,
        key: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Violation {
            section,
            index,
            key,
            message: message.into(),
        }
    }
}

fn check_name(section: &'static str, i: usize, name: &str) -> Result<(), Violation> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Violation::new(
            section,
            Some(i),
            "name",
            format!("invalid name {name:?}: use 1-64 of A-Z a-z 0-9 - _ . @"),
        ))
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Header name of a line: `[server]` → `server`, `[[users]]` → `users`.
fn header(line: &str) -> Option<&str> {
    let l = line.trim();
    let l = l.split('#').next().unwrap_or("").trim();
    l.strip_prefix("[[")
        .and_then(|r| r.strip_suffix("]]"))
        .or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')))
        .map(str::trim)
}

/// Best-effort dotted key for a 1-based line: the enclosing table plus the key on that line.
fn key_at_line(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(this) = lines.get(line.saturating_sub(1)) else {
        return String::new();
    };
    let key = this
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut table = String::new();
    for l in lines.iter().take(line) {
        if let Some(h) = header(l) {
            if l.trim_start().starts_with("[[") {
                let n = counts.entry(h).or_insert(0);
                table = format!("{h}[{n}]");
                *n += 1;
            } else {
                table = h.to_string();
            }
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// Find the 1-based line of `key` inside `[section]` or the `index`-th `[[section]]`.
/// Falls back to the table header line, then `None`.
fn locate(text: &str, section: &str, index: Option<usize>, key: &str) -> Option<usize> {
    let mut seen = 0usize;
    let mut inside = false;
    let mut header_line = None;
    for (n, l) in text.lines().enumerate() {
        if let Some(h) = header(l) {
            if inside {
                break;
            }
            if h == section {
                match index {
                    Some(i) => {
                        if seen == i {
                            inside = true;
                            header_line = Some(n + 1);
                        }
                        seen += 1;
                    }
                    None => {
                        inside = true;
                        header_line = Some(n + 1);
                    }
                }
            }
            continue;
        }
        if inside && !key.is_empty() {
            if let Some((k, _)) = l.split_once('=') {
                if k.trim().trim_matches('"') == key && !l.trim_start().starts_with('#') {
                    return Some(n + 1);
                }
            }
        }
    }
    header_line
}

#[cfg(test)]
mod tests;
