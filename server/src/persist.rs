//! The state directory: the nat engine as configured plus what the admin last saved
//! (rules and masquerade timeouts), written atomically and restored at start. Owns the
//! file names and formats under `[server] state_dir`; it must not decide when to save
//! (the nat control object does) nor touch packets or links.

use std::path::{Path, PathBuf};

use nat_core::chains::Firewall;
use nat_core::masq::{MasqConfig, PortRange};
use nat_core::{Engine, EngineConfig};

use crate::config::Config;

/// File names in the state directory.
const RULES_FILE: &str = "rules.ipchains";
const TIMEOUTS_FILE: &str = "timeouts";

/// The ipmasq-like default policy shipped in `deploy/ipmasq.rules`: masquerade the LAN
/// (192.168.77.0/24 in the example), deny everything else through `forward`, refuse
/// inbound TCP connections and low-port UDP to the gateway's own services on the link
/// (connections to masquerade ports, e.g. active FTP data, still reach the helper's
/// entries), and private/loopback sources arriving on the link (anti-spoofing, logged).
pub const DEFAULT_RULESET: &str = include_str!("../../deploy/ipmasq.rules");

/// Errors loading the engine's starting state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The configured or saved ruleset did not load.
    #[error("ruleset {path}: {message}")]
    Ruleset {
        /// File.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The saved timeouts file is unreadable.
    #[error("{path}: {message}")]
    Timeouts {
        /// File.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// Build nat-core's configuration from `[nat]`.
pub fn engine_config(cfg: &Config) -> EngineConfig {
    let n = &cfg.nat;
    let mut masq = if n.rfc_profile.eq_ignore_ascii_case("rfc") {
        MasqConfig::rfc()
    } else {
        MasqConfig::linux22()
    };
    let range = PortRange {
        lo: n.port_low,
        hi: n.port_high,
    };
    masq.ports = [range; 3];
    let mut ec = EngineConfig {
        masq,
        ..EngineConfig::default()
    };
    if let Some(l) = &n.lan_interface {
        ec.lan_iface = l.clone();
    }
    ec
}

fn state_path(cfg: &Config, file: &str) -> PathBuf {
    cfg.server.state_dir.join(file)
}

/// Write `text` to `path` atomically (temporary file in the same directory, fsync, rename).
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The nat engine with the configured ruleset, then the saved rules and timeouts from the
/// state directory (saved state wins: it is what the admin last set).
pub fn build_engine(cfg: &Config) -> Result<Engine, StateError> {
    let mut engine = Engine::new(engine_config(cfg));
    engine.set_timeouts(
        cfg.nat.tcp_timeout,
        cfg.nat.tcpfin_timeout,
        cfg.nat.udp_timeout,
    );
    let saved = state_path(cfg, RULES_FILE);
    let source = if saved.exists() {
        Some(saved)
    } else {
        cfg.nat.ruleset.clone()
    };
    if let Some(path) = source {
        let text = std::fs::read_to_string(&path).map_err(|e| StateError::Ruleset {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let fw = Firewall::from_saved(&text).map_err(|e| StateError::Ruleset {
            path: path.clone(),
            message: e.to_string(),
        })?;
        engine.set_firewall(fw);
    }
    let tpath = state_path(cfg, TIMEOUTS_FILE);
    if tpath.exists() {
        let text = std::fs::read_to_string(&tpath).map_err(|e| StateError::Timeouts {
            path: tpath.clone(),
            message: e.to_string(),
        })?;
        let v: Vec<u32> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| StateError::Timeouts {
                path: tpath.clone(),
                message: format!("expected three numbers (tcp tcpfin udp): {e}"),
            })?;
        if let [tcp, fin, udp] = v[..] {
            engine.set_timeouts(tcp, fin, udp);
        } else {
            return Err(StateError::Timeouts {
                path: tpath,
                message: "expected three numbers (tcp tcpfin udp)".into(),
            });
        }
    }
    Ok(engine)
}

/// Save the ruleset (`ipchains-save` text) as the rules restored at the next start.
pub fn save_rules(cfg: &Config, text: &str) -> std::io::Result<()> {
    write_atomic(&state_path(cfg, RULES_FILE), text)
}

/// Save the masquerade timeouts (seconds) restored at the next start.
pub fn save_timeouts(cfg: &Config, tcp: u32, tcpfin: u32, udp: u32) -> std::io::Result<()> {
    write_atomic(
        &state_path(cfg, TIMEOUTS_FILE),
        &format!("{tcp} {tcpfin} {udp}\n"),
    )
}

/// Write `ruleset` as the saved rules unless the state directory already has some (the
/// demo's first run).
pub fn seed_rules(cfg: &Config, ruleset: &str) -> std::io::Result<()> {
    let path = state_path(cfg, RULES_FILE);
    if path.exists() {
        return Ok(());
    }
    write_atomic(&path, ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ruleset_loads_and_masquerades_the_example_lan() {
        let fw = Firewall::from_saved(DEFAULT_RULESET).expect("shipped ruleset parses");
        assert_eq!(
            fw.policy("forward").ok().flatten().map(|p| p.label()),
            Some("DENY")
        );
        let fwd = fw.rules("forward").expect("forward chain");
        assert!(fwd.iter().any(|r| r.to_spec().contains("MASQ")), "{fwd:?}");
        // The example config points at it and loads it (relative to the config file).
        let cfg = Config::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/mserver.example.toml"
        )))
        .expect("example config");
        let mut cfg = cfg;
        cfg.server.state_dir = std::env::temp_dir().join("masqdial-gateway-test-none");
        let engine = build_engine(&cfg).expect("engine from the example config");
        assert_eq!(engine.firewall().save(), fw.save());
    }
}
