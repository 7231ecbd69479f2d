//! Client settings shared by mclient and mtui: the environment (`MASQDIAL_*`), the client
//! config file (`<config dir>/masqdial/client.toml`). Server URLs are parsed in [`crate::url`].
//!
//! Precedence for every setting: command-line option, then environment, then config file,
//! then the built-in default. The old `MCLIENT_PASSWORD` / `MCLIENT_TOKEN_FILE` variables are
//! still read, as deprecated aliases, with a warning (see [`env_var`]).
//!
//! Pure apart from reading/writing the config file and reading the environment through an
//! [`Env`] (so tests can pass their own).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::store::TokenStore;
pub use crate::url::{normalize_server, ServerUrl};

pub use crate::url::DEFAULT_PORT;
/// Default server when nothing else names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:224";
/// Default deadline of one unary rpc (and of opening a stream).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Environment variable names (one prefix for both clients).
pub mod vars {
    /// Server URL.
    pub const SERVER: &str = "MASQDIAL_SERVER";
    /// Login name.
    pub const USER: &str = "MASQDIAL_USER";
    /// Password for `login` (scripts; prefer the prompt).
    pub const PASSWORD: &str = "MASQDIAL_PASSWORD";
    /// Token store path.
    pub const TOKEN_FILE: &str = "MASQDIAL_TOKEN_FILE";
    /// PEM CA certificate for https servers.
    pub const CA: &str = "MASQDIAL_CA";
    /// Client config file path (instead of `<config dir>/masqdial/client.toml`).
    pub const CONFIG: &str = "MASQDIAL_CONFIG";
    /// RPC deadline in seconds.
    pub const TIMEOUT: &str = "MASQDIAL_TIMEOUT";
    /// Deprecated alias of [`PASSWORD`].
    pub const OLD_PASSWORD: &str = "MCLIENT_PASSWORD";
    /// Deprecated alias of [`TOKEN_FILE`].
    pub const OLD_TOKEN_FILE: &str = "MCLIENT_TOKEN_FILE";
}

/// Where environment variables come from (the process, or a map in tests).
pub trait Env {
    /// The variable's value, if set and valid UTF-8.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

/// A variable from `env`, falling back to its deprecated alias `old` (then `warn` is called
/// with a one-line deprecation message). Empty values count as unset.
pub fn env_var(
    env: &dyn Env,
    name: &str,
    old: Option<&str>,
    warn: &mut dyn FnMut(String),
) -> Option<String> {
    if let Some(v) = env.get(name).filter(|v| !v.is_empty()) {
        return Some(v);
    }
    let old = old?;
    let v = env.get(old).filter(|v| !v.is_empty())?;
    warn(format!("{old} is deprecated; use {name} instead"));
    Some(v)
}

/// The client config file (`client.toml`). Every key is optional.
///
/// ```toml
/// server = "http://gw.lan:224"   # default server (rewritten by each successful login)
/// user = "alice"                 # default login name
/// ca = "/etc/masqdial/ca.pem"    # CA for https servers
/// timeout_secs = 15              # rpc deadline
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Default server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Default login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// PEM CA certificate for https servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Token store path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// RPC deadline in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

impl ClientConfig {
    /// `$XDG_CONFIG_HOME/masqdial/client.toml` (via `dirs::config_dir`), or `MASQDIAL_CONFIG`.
    pub fn default_path(env: &dyn Env) -> Option<PathBuf> {
        if let Some(p) = env.get(vars::CONFIG).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        dirs::config_dir().map(|d| d.join("masqdial").join("client.toml"))
    }

    /// Read `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> anyhow::Result<ClientConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is not a valid client config", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClientConfig::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Write the config to `path` (creating its directory, mode 0700).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = toml::to_string(self).context("cannot encode the client config")?;
        crate::store::write_private_file(path, text.as_bytes())
    }

    /// Record `server` as the default server in the file at `path`, keeping other keys.
    pub fn remember_server(path: &Path, server: &str) -> anyhow::Result<()> {
        let mut c = ClientConfig::load(path)?;
        if c.server.as_deref() == Some(server) {
            return Ok(());
        }
        c.server = Some(server.to_string());
        c.save(path)
    }
}

/// Values given on a command line (None = not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--server`.
    pub server: Option<String>,
    /// `-u/--user`.
    pub user: Option<String>,
    /// `--ca`.
    pub ca: Option<PathBuf>,
    /// Token store path (mtui's `--token-store`).
    pub token_file: Option<PathBuf>,
    /// `--timeout` seconds.
    pub timeout_secs: Option<u64>,
}

/// The resolved client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Normalised server URL (see [`normalize_server`]); also the token store key.
    pub server: String,
    /// The URL to connect to (normalised, but keeps the host name for https so the
    /// certificate check sees it).
    pub connect_url: String,
    /// Explicit user (option, env or config), if any. `None`: the most recent login for the
    /// server (see [`crate::store::TokenStore::get`]), or [`login_name`] for `login`.
    pub user: Option<String>,
    /// CA certificate.
    pub ca: Option<PathBuf>,
    /// Token store path.
    pub token_file: PathBuf,
    /// Client config file path (None when there is no config directory).
    pub config_file: Option<PathBuf>,
    /// RPC deadline.
    pub timeout: Duration,
    /// Deprecation warnings met while resolving (print them once).
    pub warnings: Vec<String>,
    /// Whether the server came from the command line (`login` then records it as the
    /// default in the config file).
    pub server_from_option: bool,
}

impl Settings {
    /// Resolve from command-line overrides, the process environment and the config file.
    pub fn resolve(o: &Overrides) -> anyhow::Result<Settings> {
        Settings::resolve_with(o, &ProcessEnv)
    }

    /// Resolve with an explicit environment (tests).
    pub fn resolve_with(o: &Overrides, env: &dyn Env) -> anyhow::Result<Settings> {
        let mut warnings = Vec::new();
        let mut warn = |w: String| warnings.push(w);
        let config_file = ClientConfig::default_path(env);
        let file = match &config_file {
            Some(p) => ClientConfig::load(p)?,
            None => ClientConfig::default(),
        };
        let raw_server = o
            .server
            .clone()
            .or_else(|| env_var(env, vars::SERVER, None, &mut warn))
            .or(file.server.clone())
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        let url = ServerUrl::parse(&raw_server)?;
        let user = o
            .user
            .clone()
            .or_else(|| env_var(env, vars::USER, None, &mut warn))
            .or(file.user.clone())
            .filter(|u| !u.is_empty());
        let ca =
            o.ca.clone()
                .or_else(|| env_var(env, vars::CA, None, &mut warn).map(PathBuf::from))
                .or(file.ca.clone());
        let token_file = match o
            .token_file
            .clone()
            .or_else(|| {
                env_var(env, vars::TOKEN_FILE, Some(vars::OLD_TOKEN_FILE), &mut warn)
                    .map(PathBuf::from)
            })
            .or(file.token_file.clone())
        {
            Some(p) => p,
            None => TokenStore::default_path()?,
        };
        let timeout_secs = match o.timeout_secs {
            Some(t) => Some(t),
            None => match env_var(env, vars::TIMEOUT, None, &mut warn) {
                Some(t) => Some(t.parse::<u64>().map_err(|_| {
                    anyhow::anyhow!("{} must be a number of seconds (got {t:?})", vars::TIMEOUT)
                })?),
                None => file.timeout_secs,
            },
        };
        let timeout = match timeout_secs {
            Some(0) => anyhow::bail!("the rpc timeout must be at least 1 second"),
            Some(s) => Duration::from_secs(s),
            None => DEFAULT_TIMEOUT,
        };
        Ok(Settings {
            server: url.key,
            connect_url: url.connect,
            user,
            ca,
            token_file,
            config_file,
            timeout,
            warnings,
            server_from_option: o.server.is_some(),
        })
    }

    /// The token store these settings name.
    pub fn store(&self) -> TokenStore {
        TokenStore::at(self.token_file.clone())
    }

    /// The password from `MASQDIAL_PASSWORD` (or the deprecated `MCLIENT_PASSWORD`).
    pub fn env_password(env: &dyn Env, warn: &mut dyn FnMut(String)) -> Option<String> {
        env_var(env, vars::PASSWORD, Some(vars::OLD_PASSWORD), warn)
    }

    /// `host:port` of the server, for prompts (`alice@gw:224`).
    pub fn server_display(&self) -> String {
        self.server
            .split_once("://")
            .map_or(self.server.as_str(), |(_, r)| r)
            .to_string()
    }
}

/// The login name when none was given: `$USER`, then `$LOGNAME`.
pub fn login_name(env: &dyn Env) -> Option<String> {
    env.get("USER")
        .filter(|u| !u.is_empty())
        .or_else(|| env.get("LOGNAME").filter(|u| !u.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn precedence_option_env_file_default() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cfg = dir.path().join("client.toml");
        let cfg_s = cfg.display().to_string();
        let tok = dir.path().join("t.toml").display().to_string();
        std::fs::write(
            &cfg,
            "server = \"http://file:1\"\nuser = \"fileuser\"\ntimeout_secs = 3\n",
        )?;
        let base = [
            (vars::CONFIG, cfg_s.as_str()),
            (vars::TOKEN_FILE, tok.as_str()),
        ];
        // File only.
        let s = Settings::resolve_with(&Overrides::default(), &env(&base))?;
        assert_eq!(s.server, "http://file:1");
        assert_eq!(s.user.as_deref(), Some("fileuser"));
        assert_eq!(s.timeout, Duration::from_secs(3));
        // Env beats file.
        let mut e = env(&base);
        e.insert(vars::SERVER.into(), "http://env:2".into());
        e.insert(vars::USER.into(), "envuser".into());
        let s = Settings::resolve_with(&Overrides::default(), &e)?;
        assert_eq!(
            (s.server.as_str(), s.user.as_deref()),
            ("http://env:2", Some("envuser"))
        );
        // Options beat env.
        let o = Overrides {
            server: Some("localhost".into()),
            user: Some("optuser".into()),
            timeout_secs: Some(7),
            ..Overrides::default()
        };
        let s = Settings::resolve_with(&o, &e)?;
        assert_eq!(s.server, "http://127.0.0.1:224");
        assert_eq!(s.user.as_deref(), Some("optuser"));
        assert_eq!(s.timeout, Duration::from_secs(7));
        assert!(s.warnings.is_empty());
        // Nothing anywhere: the default.
        let s = Settings::resolve_with(
            &Overrides::default(),
            &env(&[
                (vars::CONFIG, "/nonexistent/x.toml"),
                (vars::TOKEN_FILE, tok.as_str()),
            ]),
        )?;
        assert_eq!(s.server, DEFAULT_SERVER);
        assert_eq!(s.user, None);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        Ok(())
    }

    #[test]
    fn deprecated_aliases_warn() -> anyhow::Result<()> {
        let e = env(&[
            (vars::CONFIG, "/nonexistent/x.toml"),
            (vars::OLD_TOKEN_FILE, "/tmp/old.toml"),
            (vars::OLD_PASSWORD, "pw"),
        ]);
        let s = Settings::resolve_with(&Overrides::default(), &e)?;
        assert_eq!(s.token_file, PathBuf::from("/tmp/old.toml"));
        assert_eq!(
            s.warnings,
            vec!["MCLIENT_TOKEN_FILE is deprecated; use MASQDIAL_TOKEN_FILE instead".to_string()]
        );
        let mut w = Vec::new();
        assert_eq!(
            Settings::env_password(&e, &mut |m| w.push(m)).as_deref(),
            Some("pw")
        );
        assert_eq!(w.len(), 1);
        // The new name wins without a warning.
        let e = env(&[(vars::PASSWORD, "new"), (vars::OLD_PASSWORD, "old")]);
        let mut w = Vec::new();
        assert_eq!(
            Settings::env_password(&e, &mut |m| w.push(m)).as_deref(),
            Some("new")
        );
        assert!(w.is_empty());
        Ok(())
    }

    #[test]
    fn remember_server_keeps_other_keys() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("sub").join("client.toml");
        ClientConfig {
            user: Some("bob".into()),
            ..ClientConfig::default()
        }
        .save(&p)?;
        ClientConfig::remember_server(&p, "http://gw:224")?;
        let c = ClientConfig::load(&p)?;
        assert_eq!(c.server.as_deref(), Some("http://gw:224"));
        assert_eq!(c.user.as_deref(), Some("bob"));
        assert!(ClientConfig::load(&dir.path().join("none.toml"))?
            .server
            .is_none());
        std::fs::write(&p, "bogus_key = 1\n")?;
        assert!(ClientConfig::load(&p).is_err());
        Ok(())
    }

    #[test]
    fn login_name_order() {
        assert_eq!(
            login_name(&env(&[("USER", "u"), ("LOGNAME", "l")])).as_deref(),
            Some("u")
        );
        assert_eq!(login_name(&env(&[("LOGNAME", "l")])).as_deref(), Some("l"));
        assert_eq!(login_name(&env(&[])), None);
    }
}
