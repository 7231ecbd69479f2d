//! The running configuration: one shared [`Config`] that a reload swaps whole, and the pure
//! rule of what a reload may change ([`reloaded`]). The composition root owns it (builds it,
//! applies reloads: `daemon::reload`); every other layer only reads it. Must not apply a
//! reload to anything (auth, links, streams).

use std::sync::{Arc, RwLock};

use super::Config;

/// The configuration in force, shared (cheap to clone; clones see the same one).
#[derive(Debug, Clone)]
pub struct Running(Arc<RwLock<Arc<Config>>>);

impl Running {
    /// Start with `config`.
    pub fn new(config: Config) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(config))))
    }

    /// The configuration in force now.
    pub fn get(&self) -> Arc<Config> {
        // Poisoning cannot leave an Arc half-written; keep serving.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Put `config` in force (the composition root, after a reload was applied).
    pub fn replace(&self, config: Config) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }
}

/// A reload the running server cannot take without a restart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadRefused {
    /// A user names a connection the running server does not have.
    #[error("user `{user}` names connection `{connection}` unknown to the running server; restart to add connections")]
    UnknownConnection {
        /// The user.
        user: String,
        /// The connection it names.
        connection: String,
    },
}

/// `current` with what a reload may change taken from `new`: users, allow-list, token
/// lifetime and `[[lan_hosts]]`. The rest (modems, connections, nat) needs a restart, so a
/// user naming a connection unknown to `current` is refused.
pub fn reloaded(current: &Config, new: &Config) -> Result<Config, ReloadRefused> {
    let known = current.connection_names();
    for u in &new.users {
        if let Some(c) = u.connections.iter().find(|c| !known.contains(c)) {
            return Err(ReloadRefused::UnknownConnection {
                user: u.name.clone(),
                connection: c.clone(),
            });
        }
    }
    let mut merged = current.clone();
    merged.users = new.users.clone();
    merged.server.allow = new.server.allow.clone();
    merged.server.token_ttl_s = new.server.token_ttl_s;
    merged.lan_hosts = new.lan_hosts.clone();
    Ok(merged)
}
