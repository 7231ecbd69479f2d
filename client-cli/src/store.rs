//! Token store shared by mclient and mtui: one TOML file, mode 0600, in a 0700 directory,
//! holding one token per (server, user).
//!
//! Server URLs are normalised ([`server_key`]: `localhost` = `127.0.0.1`, default port 224,
//! no trailing `/`), so every spelling of one server finds the same tokens. The file keeps the
//! entries in login order: the last one put for a server is that server's default
//! ([`TokenStore::get`]).
//!
//! Owns reading and atomically rewriting that file; it must not print or log a token.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A token saved by `mclient login`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// Server URL it belongs to (normalised, no trailing `/`).
    pub server: String,
    /// User name.
    pub user: String,
    /// The bearer token (64 hex digits). Never print it.
    pub token: String,
    /// Expiry reported by the server.
    pub expires_at: Option<SystemTime>,
    /// `masqdial.v1.Role` as an integer.
    pub role: i32,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("role", &self.role)
            .finish()
    }
}

impl StoredToken {
    /// Whether the token is past its expiry at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    tokens: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    server: String,
    user: String,
    token: String,
    /// Unix seconds.
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    role: i32,
}

/// The token file.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

/// Normalise a server URL for use as a key (see [`crate::url::normalize_server`]).
pub fn server_key(server: &str) -> String {
    crate::url::normalize_server(server)
}

impl Entry {
    fn token(self) -> StoredToken {
        StoredToken {
            server: self.server,
            user: self.user,
            token: self.token,
            expires_at: self.expires_at.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            role: self.role,
        }
    }

    fn is(&self, key: &str, user: Option<&str>) -> bool {
        server_key(&self.server) == key && user.is_none_or(|u| self.user == u)
    }
}

impl TokenStore {
    /// `$XDG_CONFIG_HOME/masqdial/tokens.toml` (via `dirs::config_dir`).
    pub fn open_default() -> anyhow::Result<Self> {
        Ok(TokenStore::at(TokenStore::default_path()?))
    }

    /// The default store path, `<config dir>/masqdial/tokens.toml`.
    pub fn default_path() -> anyhow::Result<PathBuf> {
        let dir = dirs::config_dir().context("no configuration directory for this user")?;
        Ok(dir.join("masqdial").join("tokens.toml"))
    }

    /// A store at an explicit path (tests).
    pub fn at(path: PathBuf) -> Self {
        TokenStore { path }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> anyhow::Result<File> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{}: not a token store", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    fn write(&self, file: &File) -> anyhow::Result<()> {
        let text = toml::to_string(file).context("cannot encode token store")?;
        write_private_file(&self.path, text.as_bytes())
    }

    /// The most recently saved token for `server` (any user), if any.
    pub fn get(&self, server: &str) -> anyhow::Result<Option<StoredToken>> {
        self.get_user(server, None)
    }

    /// The token saved for `user` at `server` (`None`: the most recent login of any user).
    pub fn get_user(
        &self,
        server: &str,
        user: Option<&str>,
    ) -> anyhow::Result<Option<StoredToken>> {
        let key = server_key(server);
        Ok(self
            .read()?
            .tokens
            .into_iter()
            .rev()
            .find(|e| e.is(&key, user))
            .map(Entry::token))
    }

    /// Every token saved for `server`, oldest login first.
    pub fn tokens_for(&self, server: &str) -> anyhow::Result<Vec<StoredToken>> {
        let key = server_key(server);
        Ok(self
            .read()?
            .tokens
            .into_iter()
            .filter(|e| e.is(&key, None))
            .map(Entry::token)
            .collect())
    }

    /// Save (replace) the token for its (server, user); it becomes the server's most recent.
    pub fn put(&self, tok: StoredToken) -> anyhow::Result<()> {
        let mut file = self.read()?;
        let key = server_key(&tok.server);
        file.tokens.retain(|e| !e.is(&key, Some(&tok.user)));
        file.tokens.push(Entry {
            server: key,
            user: tok.user,
            token: tok.token,
            expires_at: tok
                .expires_at
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            role: tok.role,
        });
        self.write(&file)
    }

    /// Forget every token of `server`.
    pub fn remove(&self, server: &str) -> anyhow::Result<()> {
        self.remove_user(server, None)
    }

    /// Forget the token of `user` at `server` (`None`: every user's).
    pub fn remove_user(&self, server: &str, user: Option<&str>) -> anyhow::Result<()> {
        let mut file = self.read()?;
        let key = server_key(server);
        let before = file.tokens.len();
        file.tokens.retain(|e| !e.is(&key, user));
        if file.tokens.len() != before {
            self.write(&file)?;
        }
        Ok(())
    }
}

/// Write `bytes` to `path` atomically with mode 0600, creating the directory (0700).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    create_private_dir(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    // The temporary file is created new (O_EXCL, O_NOFOLLOW): a file or symlink planted
    // there is removed (the link itself, never its target) and the creation tried once more.
    let mut r = write_private(&tmp, bytes);
    if matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists) {
        std::fs::remove_file(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
        r = write_private(&tmp, bytes);
    }
    r.with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Ok(m) = std::fs::symlink_metadata(dir) {
        // Our own `masqdial` directory (the default layout) made with a loose mode by an
        // older version or by hand: tightened to 0700. Any other directory (a token file
        // named in /tmp, say) is left alone: the file itself is 0600 either way.
        let ours = m.is_dir()
            && m.uid() == nix::unistd::geteuid().as_raw()
            && m.mode() & 0o1000 == 0
            && dir.file_name().is_some_and(|n| n == "masqdial");
        if ours && m.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot tighten {}", dir.display()))?;
        }
    }
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .mode(0o600)
        .open(path)?;
    // Whatever the umask did: 0600.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(server: &str, t: &str) -> StoredToken {
        StoredToken {
            server: server.into(),
            user: "alice".into(),
            token: t.into(),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000)),
            role: 1,
        }
    }

    #[test]
    fn put_get_remove_roundtrip() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = TokenStore::at(dir.path().join("sub").join("tokens.toml"));
        assert_eq!(store.get("http://a:224")?, None);
        store.put(tok("http://a:224/", "aa"))?;
        store.put(tok("http://b:224", "bb"))?;
        store.put(tok("http://a:224", "cc"))?;
        assert_eq!(
            store.get("http://a:224")?.map(|t| t.token),
            Some("cc".into())
        );
        assert_eq!(
            store.get("http://b:224/")?.map(|t| t.token),
            Some("bb".into())
        );
        assert_eq!(
            store.get("http://b:224")?.and_then(|t| t.expires_at),
            tok("", "").expires_at
        );
        store.remove("http://a:224")?;
        assert_eq!(store.get("http://a:224")?, None);
        Ok(())
    }

    #[test]
    fn one_token_per_server_and_user() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = TokenStore::at(dir.path().join("tokens.toml"));
        let t = |user: &str, server: &str, token: &str| StoredToken {
            user: user.into(),
            ..tok(server, token)
        };
        store.put(t("demo", "http://localhost:224/", "d1"))?;
        store.put(t("admin", "http://127.0.0.1", "a1"))?;
        // Both kept, under one normalised server.
        let got = |u: Option<&str>| {
            store
                .get_user("http://127.0.0.1:224", u)
                .ok()
                .flatten()
                .map(|t| t.token)
        };
        assert_eq!(got(Some("demo")).as_deref(), Some("d1"));
        assert_eq!(got(Some("admin")).as_deref(), Some("a1"));
        assert_eq!(got(Some("nobody")), None);
        // The most recent login is the default.
        assert_eq!(got(None).as_deref(), Some("a1"));
        store.put(t("demo", "localhost", "d2"))?;
        assert_eq!(got(None).as_deref(), Some("d2"));
        assert_eq!(got(Some("admin")).as_deref(), Some("a1"));
        assert_eq!(store.tokens_for("localhost:224")?.len(), 2);
        store.remove_user("localhost", Some("demo"))?;
        assert_eq!(got(Some("demo")), None);
        assert_eq!(got(None).as_deref(), Some("a1"));
        store.remove("http://127.0.0.1:224")?;
        assert_eq!(got(None), None);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn file_is_0600_and_dir_0700() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("masqdial").join("tokens.toml");
        let store = TokenStore::at(path.clone());
        store.put(tok("http://a:224", "aa"))?;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        let d = path.parent().map(std::fs::metadata).transpose()?;
        assert_eq!(d.map(|m| m.permissions().mode() & 0o777), Some(0o700));
        // A pre-existing loose file is tightened on the next write.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        store.put(tok("http://a:224", "bb"))?;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        Ok(())
    }

    /// N18: an existing `masqdial` directory with a loose mode is tightened; a symlink
    /// planted at `tokens.toml.tmp` is not followed (its target stays untouched).
    #[cfg(unix)]
    #[test]
    fn loose_dir_is_tightened_and_a_planted_tmp_link_is_not_followed() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let d = dir.path().join("masqdial");
        std::fs::create_dir(&d)?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious")?;
        std::os::unix::fs::symlink(&victim, d.join("tokens.toml.tmp"))?;
        let store = TokenStore::at(d.join("tokens.toml"));
        store.put(tok("http://a:224", "aa"))?;
        assert_eq!(std::fs::metadata(&d)?.permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::read_to_string(&victim)?, "precious");
        assert!(std::fs::read_to_string(d.join("tokens.toml"))?.contains("aa"));
        // A directory that is not ours by name is left as it is.
        let other = dir.path().join("elsewhere");
        std::fs::create_dir(&other)?;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755))?;
        TokenStore::at(other.join("t.toml")).put(tok("http://a:224", "bb"))?;
        assert_eq!(
            std::fs::metadata(&other)?.permissions().mode() & 0o777,
            0o755
        );
        Ok(())
    }

    #[test]
    fn debug_redacts_token() {
        let s = format!("{:?}", tok("x", "secret-token"));
        assert!(!s.contains("secret-token"));
    }
}
