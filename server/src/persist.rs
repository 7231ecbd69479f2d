//! The state directory: the nat engine as configured plus what the admin last saved
//! (rules and masquerade timeouts), written atomically and restored at start. Owns the
//! file names and formats under `[server] state_dir`; it must not decide when to save
//! (the nat control object does) nor touch packets or links.

use std::path::{Path, PathBuf};

use nat_core::chains::Firewall;
use nat_core::masq::{MasqConfig, PortRange};
use nat_core::{Engine, EngineConfig};

use crate::config::Config;

/// File names in the state directory: the saved ruleset.
pub const RULES_FILE: &str = "rules.ipchains";
const TIMEOUTS_FILE: &str = "timeouts";
const PORTFW_FILE: &str = "portfw";

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
    let mut masq = match n.rfc_profile {
        crate::config::RfcProfile::Rfc => MasqConfig::rfc(),
        crate::config::RfcProfile::Linux22 => MasqConfig::linux22(),
    };
    let range = PortRange {
        lo: n.port_low,
        hi: n.port_high,
    };
    masq.ports = [range; 3];
    masq.max_per_host = n.max_entries_per_host;
    // A secret per engine, so LAN or WAN hosts cannot aim flows at one index slot. Without
    // OS randomness the profile's fixed seed stays (logged): the table still works.
    let mut seed = [0u8; 8];
    match getrandom::fill(&mut seed) {
        Ok(()) => masq.hash_seed = u64::from_le_bytes(seed),
        Err(e) => tracing::warn!(error = %e, "no OS randomness for the NAT hash seed"),
    }
    let mut ec = EngineConfig {
        masq,
        dynaddr: n.ip_dynaddr.min(2),
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

/// First line of every saved state file: the format and its version.
const HEADER_PREFIX: &str = "# masqdial-state v1 ";
/// Last line of every saved state file: the byte count and FNV-1a 64 of the body, so a torn
/// or edited file is recognised.
const END_PREFIX: &str = "# masqdial-state end ";

/// FNV-1a 64 (a checksum against tearing, not an authenticator).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Frame `body` (what = "rules" or "timeouts") with the header and end marker.
fn frame(what: &str, body: &str) -> String {
    let mut body = body.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    format!(
        "{HEADER_PREFIX}{what}\n{body}{END_PREFIX}bytes={} fnv1a={:016x}\n",
        body.len(),
        fnv1a(body.as_bytes())
    )
}

/// The body of a framed file, or why it is refused (empty, garbage, torn, wrong kind).
fn unframe<'a>(what: &str, text: &'a str) -> Result<&'a str, String> {
    if text.is_empty() {
        return Err("the file is empty".into());
    }
    let header = format!("{HEADER_PREFIX}{what}\n");
    let rest = text.strip_prefix(header.as_str()).ok_or_else(|| {
        format!(
            "not a masqdial state file of {what} (first line is not `{}`)",
            header.trim_end()
        )
    })?;
    let end = rest
        .rfind(END_PREFIX)
        .filter(|&i| i == 0 || rest.as_bytes()[i - 1] == b'\n')
        .ok_or("no end marker: the file is truncated (torn write?)")?;
    let (body, trailer) = rest.split_at(end);
    let expect = format!(
        "{END_PREFIX}bytes={} fnv1a={:016x}\n",
        body.len(),
        fnv1a(body.as_bytes())
    );
    if trailer != expect {
        return Err("the end marker does not match the contents (torn or edited file)".into());
    }
    Ok(body)
}

/// Serializes saves within the process (the temporary name is unique anyway).
static SAVE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Write `text` to `path` atomically: a fresh temporary file in the same directory
/// (O_CREAT|O_EXCL, O_NOFOLLOW, mode 0600), fsync, rename over `path`, fsync the directory.
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _serial = SAVE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let mut tries = 0;
    let (tmp, mut f) = loop {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(std::io::Error::other)?;
        let tmp = dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            hex::encode(nonce)
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(e),
        }
    };
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()
}

fn read_framed(path: &Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    unframe(what, &text).map(str::to_string).map_err(|m| {
        format!("{m}; refusing to start with it (move it away, or start once with `mserver --reset-state` to fall back to the configured [nat] ruleset)")
    })
}

/// The nat engine with the configured ruleset, then the saved rules and timeouts from the
/// state directory (saved state wins: it is what the admin last set). A saved file that is
/// empty, torn or not ours is refused with an error naming it, never replaced by an open
/// firewall.
pub fn build_engine(cfg: &Config) -> Result<Engine, StateError> {
    let mut engine = Engine::new(engine_config(cfg));
    // 2.2 `modprobe ip_masq_irc ports=…` ([nat] irc_ports, validated at load).
    for &port in &cfg.nat.irc_ports {
        if let Err(e) =
            engine
                .masq_mut()
                .helpers_mut()
                .register("irc", nat_core::wire::proto::TCP, port)
        {
            tracing::warn!(port, error = %e, "IRC helper not registered on this port");
        }
    }
    engine.set_timeouts(
        cfg.nat.tcp_timeout,
        cfg.nat.tcpfin_timeout,
        cfg.nat.udp_timeout,
    );
    let saved = state_path(cfg, RULES_FILE);
    let text = if saved.exists() {
        Some((
            read_framed(&saved, "rules").map_err(|message| StateError::Ruleset {
                path: saved.clone(),
                message,
            })?,
            saved,
        ))
    } else if let Some(path) = cfg.nat.ruleset.clone() {
        let t = std::fs::read_to_string(&path).map_err(|e| StateError::Ruleset {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Some((t, path))
    } else {
        // N7: not refused (tests and first runs rely on open chains), but never silent.
        tracing::warn!(
            "no [nat] ruleset and no saved rules: every chain is ACCEPT, nothing is filtered; \
             set [nat] ruleset (`mserver init` writes the default one)"
        );
        None
    };
    if let Some((text, path)) = text {
        if text.trim().is_empty() {
            return Err(StateError::Ruleset {
                path,
                message: "the ruleset is empty (it would leave every chain open)".into(),
            });
        }
        let fw = Firewall::from_saved(&text).map_err(|e| StateError::Ruleset {
            path: path.clone(),
            message: e.to_string(),
        })?;
        engine.set_firewall(fw);
    }
    if let Some(t) = load_portfw(cfg)? {
        engine.set_portfw(t);
    }
    let tpath = state_path(cfg, TIMEOUTS_FILE);
    if tpath.exists() {
        let text = read_framed(&tpath, "timeouts").map_err(|message| StateError::Timeouts {
            path: tpath.clone(),
            message,
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

/// `mserver --reset-state`: move the saved rules and timeouts aside (renamed with a
/// `.rejected` suffix, kept for inspection) so the next [`build_engine`] uses the
/// configured ruleset. Returns the files moved.
pub fn reset_state(cfg: &Config) -> std::io::Result<Vec<PathBuf>> {
    let mut moved = Vec::new();
    for file in [RULES_FILE, TIMEOUTS_FILE, PORTFW_FILE] {
        let path = state_path(cfg, file);
        if path.exists() {
            let aside = path.with_extension(format!(
                "rejected-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            ));
            std::fs::rename(&path, &aside)?;
            moved.push(aside);
        }
    }
    Ok(moved)
}

/// Save the ruleset (`ipchains-save` text) as the rules restored at the next start.
pub fn save_rules(cfg: &Config, text: &str) -> std::io::Result<()> {
    write_atomic(&state_path(cfg, RULES_FILE), &frame("rules", text))
}

/// Save the portfw list (`-a …` lines, ipmasqadm syntax) restored at the next start.
pub fn save_portfw(cfg: &Config, text: &str) -> std::io::Result<()> {
    write_atomic(&state_path(cfg, PORTFW_FILE), &frame("portfw", text))
}

/// The saved portfw list, if any.
fn load_portfw(cfg: &Config) -> Result<Option<nat_core::portfw::PortFwTable>, StateError> {
    use nat_core::portfw::{PortFwCmd, PortFwTable};
    let path = state_path(cfg, PORTFW_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bad = |message: String| StateError::Ruleset {
        path: path.clone(),
        message,
    };
    let text = read_framed(&path, "portfw").map_err(bad)?;
    let mut t = PortFwTable::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match PortFwTable::parse(line) {
            Ok(PortFwCmd::Add(e)) => t.restore(e),
            Ok(_) => return Err(bad(format!("not an -a line: {line}"))),
            Err(e) => return Err(bad(e.to_string())),
        }
    }
    Ok(Some(t))
}

/// Save the masquerade timeouts (seconds) restored at the next start.
pub fn save_timeouts(cfg: &Config, tcp: u32, tcpfin: u32, udp: u32) -> std::io::Result<()> {
    write_atomic(
        &state_path(cfg, TIMEOUTS_FILE),
        &frame("timeouts", &format!("{tcp} {tcpfin} {udp}\n")),
    )
}

/// The file holding a connection's budget usage (`usage.<connection>`; connection names
/// are validated to `A-Z a-z 0-9 - _ . @`).
pub fn usage_path(state_dir: &Path, connection: &str) -> PathBuf {
    state_dir.join(format!("usage.{connection}"))
}

/// The last good usage file kept beside the newest (`usage.<connection>.prev`).
pub fn usage_prev_path(state_dir: &Path, connection: &str) -> PathBuf {
    state_dir.join(format!("usage.{connection}.prev"))
}

/// Save a connection's budget usage (framed, atomic). The file it replaces, when it loads,
/// is kept first as the last good one ([`usage_prev_path`], replaced atomically through a
/// hard link, so the newest file never goes missing); a file that does not load never
/// replaces a good `.prev`.
pub fn save_usage(
    state_dir: &Path,
    connection: &str,
    usage: &crate::budget::Usage,
) -> std::io::Result<()> {
    let path = usage_path(state_dir, connection);
    if matches!(load_usage(state_dir, connection), Ok(Some(_))) {
        let prev = usage_prev_path(state_dir, connection);
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(std::io::Error::other)?;
        let link = state_dir.join(format!(".usage.{connection}.{}.prev", hex::encode(nonce)));
        std::fs::hard_link(&path, &link)?;
        if let Err(e) = std::fs::rename(&link, &prev) {
            let _ = std::fs::remove_file(&link);
            return Err(e);
        }
    }
    write_atomic(&path, &frame("usage", &usage.to_text()))
}

/// A connection's usage as [`load_usage_or_last_good`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedUsage {
    /// The usage (`None`: no usage file, a first run).
    pub usage: Option<crate::budget::Usage>,
    /// Why the newest file was refused, when the last good one was used instead.
    pub fell_back: Option<String>,
}

/// The newest usage file, or when it is unreadable, torn or not ours the last good one
/// ([`usage_prev_path`]). An error only when neither loads (it names both): the caller must
/// say loudly that it counts from zero. No newest file at all is a first run (or usage
/// deleted on purpose): `usage: None`, the `.prev` is not resurrected.
pub fn load_usage_or_last_good(state_dir: &Path, connection: &str) -> Result<LoadedUsage, String> {
    let newest = match load_usage(state_dir, connection) {
        Ok(usage) => {
            return Ok(LoadedUsage {
                usage,
                fell_back: None,
            })
        }
        Err(e) => e,
    };
    let prev = usage_prev_path(state_dir, connection);
    let read = std::fs::read(&prev)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|_| "not text (garbage?)".to_string()))
        .and_then(|t| unframe("usage", &t).and_then(crate::budget::Usage::parse));
    match read {
        Ok(u) => Ok(LoadedUsage {
            usage: Some(u),
            fell_back: Some(newest),
        }),
        Err(e) => Err(format!(
            "{newest}; and the last good copy {}: {e}",
            prev.display()
        )),
    }
}

/// A connection's saved budget usage: `Ok(None)` when there is none, an error naming the
/// file when it is unreadable, torn or not ours (the caller starts from zero and warns).
pub fn load_usage(
    state_dir: &Path,
    connection: &str,
) -> Result<Option<crate::budget::Usage>, String> {
    let path = usage_path(state_dir, connection);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not text (garbage?)", path.display()))?;
    unframe("usage", &text)
        .and_then(crate::budget::Usage::parse)
        .map(Some)
        .map_err(|m| format!("{}: {m}", path.display()))
}

/// The file holding the live sessions (keyed token digests, never a token).
pub const SESSIONS_FILE: &str = "sessions";

/// Save the session table's text (framed, atomic, mode 0600).
pub fn save_sessions(state_dir: &Path, body: &str) -> std::io::Result<()> {
    write_atomic(&state_dir.join(SESSIONS_FILE), &frame("sessions", body))
}

/// The saved session table's text: `Ok(None)` when there is none, an error naming the file
/// when it is unreadable, torn or not ours (the caller starts without sessions and warns).
pub fn load_sessions(state_dir: &Path) -> Result<Option<String>, String> {
    let path = state_dir.join(SESSIONS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not text (garbage?)", path.display()))?;
    unframe("sessions", &text)
        .map(|b| Some(b.to_string()))
        .map_err(|m| format!("{}: {m}", path.display()))
}

/// Write `ruleset` as the saved rules unless the state directory already has valid ones
/// (the demo's first run; a demo file from an older format is replaced).
pub fn seed_rules(cfg: &Config, ruleset: &str) -> std::io::Result<()> {
    let path = state_path(cfg, RULES_FILE);
    if path.exists() && read_framed(&path, "rules").is_ok() {
        return Ok(());
    }
    save_rules(cfg, ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_gets_its_own_hash_seed() {
        let c = Config::default();
        let (a, b) = (
            engine_config(&c).masq.hash_seed,
            engine_config(&c).masq.hash_seed,
        );
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }

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
        // (As `mserver init` writes it: the admin placeholder replaced by a hash.)
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/mserver.example.toml"
        ));
        let h = crate::auth::hash_password_with("pw", crate::auth::fast_params()).expect("hash");
        let mut cfg = Config::parse(path, &crate::setup::init_text(&h)).expect("example config");
        cfg.nat.ruleset = Some(path.with_file_name("ipmasq.rules"));
        cfg.server.state_dir = std::env::temp_dir().join("masqdial-gateway-test-none");
        let engine = build_engine(&cfg).expect("engine from the example config");
        assert_eq!(engine.firewall().save(), fw.save());
    }

    fn cfg_in(dir: &Path) -> Config {
        let mut cfg = Config::default();
        cfg.server.state_dir = dir.to_path_buf();
        cfg
    }

    #[test]
    fn saved_rules_round_trip_with_header_and_end_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = cfg_in(dir.path());
        save_rules(&cfg, DEFAULT_RULESET).expect("save");
        save_timeouts(&cfg, 7200, 120, 300).expect("save");
        let text = std::fs::read_to_string(dir.path().join(RULES_FILE)).expect("read");
        assert!(text.starts_with("# masqdial-state v1 rules\n"), "{text}");
        assert!(text
            .lines()
            .last()
            .is_some_and(|l| l.starts_with(END_PREFIX)));
        let engine = build_engine(&cfg).expect("engine");
        let fw = Firewall::from_saved(DEFAULT_RULESET).expect("parses");
        assert_eq!(engine.firewall().save(), fw.save());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn portfw_is_saved_framed_and_restored_and_a_torn_file_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = cfg_in(dir.path());
        let line = "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 10\n";
        save_portfw(&cfg, line).expect("save");
        let text = std::fs::read_to_string(dir.path().join(PORTFW_FILE)).expect("read");
        assert!(text.starts_with("# masqdial-state v1 portfw\n"), "{text}");
        let engine = build_engine(&cfg).expect("engine");
        assert_eq!(engine.portfw().save(), line);
        std::fs::write(dir.path().join(PORTFW_FILE), &text[..text.len() - 5]).expect("tear");
        let err = build_engine(&cfg).expect_err("torn portfw refused");
        assert!(err.to_string().contains(PORTFW_FILE), "{err}");
    }

    #[test]
    fn torn_empty_or_garbage_saved_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = cfg_in(dir.path());
        save_rules(&cfg, DEFAULT_RULESET).expect("save");
        let path = dir.path().join(RULES_FILE);
        let full = std::fs::read(&path).expect("read");
        let cases: [(&str, Vec<u8>); 4] = [
            ("empty", Vec::new()),
            ("torn", full[..full.len() / 2].to_vec()),
            ("garbage", b"\x00\x01garbage\n".to_vec()),
            ("legacy/no header", DEFAULT_RULESET.as_bytes().to_vec()),
        ];
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).expect("write");
            let err = build_engine(&cfg).err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("{what}: accepted"));
            assert!(
                err.starts_with(&format!("ruleset {}: ", path.display())),
                "{what}: {err}"
            );
        }
        // A one-byte change inside the body is caught by the checksum.
        let mut edited = full.clone();
        if let Some(b) = edited.iter_mut().find(|b| **b == b'D') {
            *b = b'A';
        }
        std::fs::write(&path, &edited).expect("write");
        assert!(build_engine(&cfg).is_err());
        // --reset-state moves it aside; then the configured ruleset (none here) is used.
        let moved = reset_state(&cfg).expect("reset");
        assert_eq!(moved.len(), 1);
        assert!(!path.exists());
        assert!(build_engine(&cfg).is_ok());
    }

    #[test]
    fn an_empty_configured_ruleset_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = cfg_in(dir.path());
        let rules = dir.path().join("empty.rules");
        std::fs::write(&rules, "").expect("write");
        cfg.nat.ruleset = Some(rules);
        assert!(build_engine(&cfg).is_err());
    }

    #[test]
    fn the_temporary_file_does_not_follow_a_planted_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = cfg_in(dir.path());
        // Whatever name is chosen is fresh (O_EXCL): a planted symlink under the old fixed
        // name is neither followed nor written through.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").expect("write");
        std::os::unix::fs::symlink(&victim, dir.path().join("rules.tmp")).expect("symlink");
        save_rules(&cfg, DEFAULT_RULESET).expect("save");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
    }

    #[test]
    fn budget_usage_survives_a_restart_and_torn_files_are_named() {
        use crate::budget::Usage;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load_usage(dir.path(), "isp1"), Ok(None));
        let u = Usage {
            bytes_since: Some(20_788),
            bytes_in: 1234,
            bytes_out: 99,
            time_since: Some(20_787),
            up_ms: 4_500,
        };
        save_usage(dir.path(), "isp1", &u).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load_usage(dir.path(), "isp1"), Ok(Some(u)));
        let path = usage_path(dir.path(), "isp1");
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        // Every truncation is refused with the file's name, never a panic or a wrong value.
        for n in 0..text.len() {
            std::fs::write(&path, &text[..n]).unwrap_or_else(|e| panic!("{e}"));
            let e = load_usage(dir.path(), "isp1").err();
            let e = e.unwrap_or_else(|| panic!("prefix {n} accepted"));
            assert!(e.starts_with(&path.display().to_string()), "{e}");
        }
        std::fs::write(&path, [0xff, 0xfe, 0, 1]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            load_usage(dir.path(), "isp1"),
            Err(format!("{}: not text (garbage?)", path.display()))
        );
        // A well-framed body that is not usage.
        std::fs::write(&path, frame("usage", "bytes_in lots\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            load_usage(dir.path(), "isp1"),
            Err(format!("{}: line 1: bad number", path.display()))
        );
    }

    /// Finding N11: the last good usage file is kept beside the newest; an unreadable newest
    /// falls back to it, and both unreadable is an error (never a silent zero).
    #[test]
    fn an_unreadable_usage_file_falls_back_to_the_last_good_one() {
        use crate::budget::Usage;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        let u = |n: u64| Usage {
            bytes_since: Some(20_788),
            bytes_in: n,
            bytes_out: 1,
            time_since: Some(20_787),
            up_ms: n * 10,
        };
        assert_eq!(
            load_usage_or_last_good(d, "isp1"),
            Ok(LoadedUsage {
                usage: None,
                fell_back: None
            })
        );
        save_usage(d, "isp1", &u(1)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!usage_prev_path(d, "isp1").exists(), "nothing to keep yet");
        save_usage(d, "isp1", &u(2)).unwrap_or_else(|e| panic!("{e}"));
        save_usage(d, "isp1", &u(3)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            load_usage_or_last_good(d, "isp1").map(|l| l.usage),
            Ok(Some(u(3)))
        );
        // The newest torn (as a crash mid-write on a filesystem without rename atomicity
        // would leave it): the last good one, and why.
        let path = usage_path(d, "isp1");
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, &text[..text.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
        let l = load_usage_or_last_good(d, "isp1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.usage, Some(u(2)));
        assert!(
            l.fell_back
                .as_deref()
                .is_some_and(|w| w.contains("truncated")),
            "{l:?}"
        );
        // Saving over a torn newest keeps the good .prev (a bad file never replaces it).
        save_usage(d, "isp1", &u(4)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load_usage(d, "isp1"), Ok(Some(u(4))));
        std::fs::write(&path, "garbage").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            load_usage_or_last_good(d, "isp1").map(|l| l.usage),
            Ok(Some(u(2)))
        );
        // An unreadable newest (a directory in its place: EISDIR, as root would not be
        // refused a mode-000 file).
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            load_usage_or_last_good(d, "isp1").map(|l| l.usage),
            Ok(Some(u(2)))
        );
        // Both bad: an error naming both.
        std::fs::write(usage_prev_path(d, "isp1"), "junk").unwrap_or_else(|e| panic!("{e}"));
        let e = load_usage_or_last_good(d, "isp1").err().unwrap_or_default();
        assert!(
            e.contains("usage.isp1") && e.contains("usage.isp1.prev"),
            "{e}"
        );
        // No newest at all: a first run (or usage deleted on purpose), the .prev stays unused.
        std::fs::remove_dir(&path).unwrap_or_else(|e| panic!("{e}"));
        save_usage(d, "isp1", &u(5)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            load_usage_or_last_good(d, "isp1").map(|l| l.usage),
            Ok(None)
        );
    }

    proptest::proptest! {
        #[test]
        fn usage_files_of_any_bytes_are_refused_by_name_or_read_back_the_same(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let dir = tempfile::tempdir().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            std::fs::write(usage_path(dir.path(), "c"), &bytes).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            // Garbage is refused with the file's name, or read as a usage that saves and
            // reads back the same (nothing invented, nothing lost).
            match load_usage(dir.path(), "c") {
                Err(m) => proptest::prop_assert!(m.contains(&usage_path(dir.path(), "c").display().to_string()), "{}", m),
                Ok(None) => proptest::prop_assert!(false, "a present file read as absent"),
                Ok(Some(u)) => {
                    save_usage(dir.path(), "c", &u).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                    proptest::prop_assert_eq!(load_usage(dir.path(), "c"), Ok(Some(u)));
                }
            }
        }
    }
}
