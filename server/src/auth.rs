//! Users, roles, bearer tokens, LAN allow-list and login throttling.
//!
//! Owns the user table (argon2 PHC hashes), live sessions (stored only as keyed hashes of
//! their tokens) and the login throttle (refusing per (user, address), per address, and
//! per user only for clients that have not proven themselves). It never reads a clock (callers pass `now`),
//! never sleeps, and never logs a password or a token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use argon2::{Algorithm, Argon2, Params, Version};
use argon2::{PasswordHash, PasswordHasher, PasswordVerifier};
use ipnet::IpNet;

use crate::config::{Config, UserRole};
pub use crate::phc::check_phc;

mod store;
mod throttle;
use throttle::Throttle;
pub use throttle::{Attempt, ThrottlePolicy, Throttled};

/// Length of a bearer token in random bytes (256 bits); it travels as 64 hex digits.
pub const TOKEN_BYTES: usize = 32;
/// Most throttle records kept; the oldest are forgotten first.
const MAX_THROTTLE_ENTRIES: usize = 10_000;
/// Most live sessions (tokens) one user may hold; a login beyond it ends that user's oldest
/// session, so a script that logs in on every run cannot grow the table without bound.
pub const MAX_SESSIONS_PER_USER: usize = 32;

/// Error of an authentication step. Messages are safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password (deliberately indistinguishable).
    #[error("invalid user name or password")]
    BadCredentials,
    /// The request carried no `authorization: Bearer` header.
    #[error("missing bearer token; log in first (mclient login)")]
    MissingToken,
    /// The header is not `Bearer <64 hex digits>`.
    #[error("malformed bearer token")]
    MalformedToken,
    /// Not a live token (never issued, revoked, or its user was removed).
    #[error("unknown or revoked token; log in again (mclient login)")]
    InvalidToken,
    /// The token's lifetime is over.
    #[error("token expired; log in again (mclient login)")]
    Expired,
    /// The peer address is outside the LAN allow-list.
    #[error("client address {0} is not in the server's allow-list")]
    PeerNotAllowed(IpAddr),
    /// Hashing failed (bad parameters or randomness unavailable).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Who a valid token belongs to, resolved against the current user table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// Current role.
    pub role: UserRole,
    /// Connections the user may dial (every configured connection for admins).
    pub allowed: Vec<String>,
    /// When the token expires.
    pub expires_at: SystemTime,
    /// The session's id (16 hex digits; names the token without revealing it).
    pub session: String,
}

/// A freshly issued token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// 64 lowercase hex digits. Never log it.
    pub token: String,
    /// Expiry.
    pub expires_at: SystemTime,
    /// UserRole of the user.
    pub role: UserRole,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("role", &self.role)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct User {
    hash: String,
    role: UserRole,
    connections: Vec<String>,
}

#[derive(Debug, Clone)]
struct Session {
    /// Public id: the first 8 bytes of the keyed digest, in hex.
    id: String,
    user: String,
    issued_at: SystemTime,
    expires_at: SystemTime,
    /// Address the login came from.
    peer: Option<std::net::SocketAddr>,
}

/// A live session as an admin sees it (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Public id (16 hex digits).
    pub id: String,
    /// User name.
    pub user: String,
    /// The user's role now.
    pub role: UserRole,
    /// Address the login came from.
    pub peer: Option<std::net::SocketAddr>,
    /// Issue time.
    pub issued_at: SystemTime,
    /// Expiry.
    pub expires_at: SystemTime,
}

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// Every session of this user.
    User(String),
    /// The session with this public id.
    Id(String),
}

#[derive(Debug)]
struct Inner {
    users: HashMap<String, User>,
    all_connections: Vec<String>,
    allow: Vec<IpNet>,
    ttl: Duration,
    /// Keyed digest of the token → session; the token itself is never stored.
    sessions: HashMap<[u8; 32], Session>,
    throttle: Throttle,
    /// Hash verified when the user is unknown, so both failures cost the same.
    dummy_hash: String,
}

/// Users, sessions and throttle. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Auth {
    // A std Mutex: every critical section is a short map operation with no await and no
    // hashing inside (argon2 runs outside the lock).
    inner: Mutex<Inner>,
    policy: ThrottlePolicy,
    /// Secret salt of the token digest (random per process).
    digest_key: [u8; 16],
    /// Bumped whenever a session is removed (logout, revocation, reload, expiry, the
    /// per-user cap): streams recheck their session on every change (security N8).
    removals: tokio::sync::watch::Sender<u64>,
    /// Where the session table is kept across restarts (`None`: in memory only). Its lock
    /// serializes the writes, each of the table as it is then.
    store: Option<Mutex<SessionFile>>,
}

/// The session file and whether its last write failed (told once, not on every login).
#[derive(Debug)]
struct SessionFile {
    dir: std::path::PathBuf,
    failing: bool,
}

impl Auth {
    /// Build from a configuration (users, allow-list, token lifetime).
    pub fn new(config: &Config) -> Result<Auth, AuthError> {
        Auth::with_policy(config, ThrottlePolicy::default())
    }

    /// Build with a custom throttle policy (tests use short delays).
    pub fn with_policy(config: &Config, policy: ThrottlePolicy) -> Result<Auth, AuthError> {
        Auth::build(config, policy, None)
    }

    /// Build with the sessions kept in `config`'s `state_dir` (file `sessions`): those of
    /// the last run that have not expired, whose user still exists with the same password
    /// and role, are live again; every change is written back. A file that cannot be read
    /// is set aside with a warning (everyone logs in again), never a reason not to start.
    pub fn persistent(config: &Config) -> Result<Auth, AuthError> {
        let dir = config.server.state_dir.clone();
        let saved = match crate::persist::load_sessions(&dir) {
            Ok(Some(text)) => match store::Table::parse(&text) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "the saved sessions are unreadable: everyone logs in again");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the saved sessions are unreadable: everyone logs in again");
                None
            }
        };
        let mut auth = Auth::build(
            config,
            ThrottlePolicy::default(),
            saved.as_ref().map(|t| t.key),
        )?;
        if let Some(t) = saved {
            auth.restore(t, SystemTime::now())?;
        }
        auth.store = Some(Mutex::new(SessionFile {
            dir,
            failing: false,
        }));
        auth.save();
        Ok(auth)
    }

    fn build(
        config: &Config,
        policy: ThrottlePolicy,
        key: Option<[u8; 16]>,
    ) -> Result<Auth, AuthError> {
        let digest_key = match key {
            Some(k) => k,
            None => {
                let mut k = [0u8; 16];
                getrandom::fill(&mut k).map_err(|e| AuthError::Hash(e.to_string()))?;
                k
            }
        };
        let inner = Inner {
            users: HashMap::new(),
            all_connections: Vec::new(),
            allow: Vec::new(),
            ttl: Duration::ZERO,
            sessions: HashMap::new(),
            throttle: Throttle::default(),
            dummy_hash: String::new(),
        };
        let auth = Auth {
            inner: Mutex::new(inner),
            policy,
            digest_key,
            removals: tokio::sync::watch::Sender::new(0),
            store: None,
        };
        auth.reload(config)?;
        Ok(auth)
    }

    /// Keyed digest of a user's password hash and role: a saved session whose stamp no
    /// longer matches belongs to a user whose password or role changed.
    fn user_stamp(&self, hash: &str, role: UserRole) -> Result<[u8; 16], AuthError> {
        let params = Params::new(8, 1, 1, Some(16)).map_err(|e| AuthError::Hash(e.to_string()))?;
        let mut input = hash.as_bytes().to_vec();
        input.push(0);
        input.extend_from_slice(store_role(role).as_bytes());
        let mut out = [0u8; 16];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(&input, &self.digest_key, &mut out)
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        Ok(out)
    }

    /// Take back the saved sessions still valid at `now` (see [`Auth::persistent`]).
    fn restore(&self, table: store::Table, now: SystemTime) -> Result<(), AuthError> {
        let users: Vec<(String, String, UserRole)> = self
            .lock()
            .users
            .iter()
            .map(|(n, u)| (n.clone(), u.hash.clone(), u.role))
            .collect();
        let mut stamps = HashMap::new();
        for (name, hash, role) in users {
            stamps.insert(name, (self.user_stamp(&hash, role)?, role));
        }
        let (mut kept, mut dropped) = (0usize, 0usize);
        let mut inner = self.lock();
        for s in table.sessions {
            let valid = now < s.expires_at
                && stamps
                    .get(&s.user)
                    .is_some_and(|(stamp, role)| *stamp == s.stamp && *role == s.role);
            if !valid {
                dropped += 1;
                continue;
            }
            kept += 1;
            inner.sessions.insert(
                s.digest,
                Session {
                    id: hex::encode(&s.digest[..8]),
                    user: s.user,
                    issued_at: s.issued_at,
                    expires_at: s.expires_at,
                    peer: s.peer,
                },
            );
        }
        tracing::info!(
            kept,
            dropped,
            "sessions of the last run restored (expired ones and those of changed or removed users dropped)"
        );
        Ok(())
    }

    /// Write the session table as it is now (when it is kept across restarts).
    fn save(&self) {
        let Some(store) = &self.store else { return };
        let mut file = store.lock().unwrap_or_else(|p| p.into_inner());
        let now = SystemTime::now();
        type Rows = Vec<([u8; 32], Session)>;
        type Users = HashMap<String, (String, UserRole)>;
        let (rows, users): (Rows, Users) = {
            let inner = self.lock();
            (
                inner
                    .sessions
                    .iter()
                    .filter(|(_, s)| now < s.expires_at)
                    .map(|(k, s)| (*k, s.clone()))
                    .collect(),
                inner
                    .users
                    .iter()
                    .map(|(n, u)| (n.clone(), (u.hash.clone(), u.role)))
                    .collect(),
            )
        };
        let mut stamps: HashMap<&str, [u8; 16]> = HashMap::new();
        let mut sessions = Vec::new();
        for (digest, s) in &rows {
            let Some((hash, role)) = users.get(&s.user) else {
                continue;
            };
            let stamp = match stamps.get(s.user.as_str()) {
                Some(st) => *st,
                None => match self.user_stamp(hash, *role) {
                    Ok(st) => {
                        stamps.insert(&s.user, st);
                        st
                    }
                    Err(_) => continue,
                },
            };
            sessions.push(store::Stored {
                digest: *digest,
                user: s.user.clone(),
                role: *role,
                issued_at: s.issued_at,
                expires_at: s.expires_at,
                peer: s.peer,
                stamp,
            });
        }
        sessions.sort_by_key(|s| s.issued_at);
        let table = store::Table {
            key: self.digest_key,
            sessions,
        };
        match crate::persist::save_sessions(&file.dir, &table.to_text()) {
            Ok(()) => {
                if std::mem::take(&mut file.failing) {
                    tracing::info!(dir = %file.dir.display(), "sessions are saved again");
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut file.failing, true) {
                    tracing::warn!(
                        dir = %file.dir.display(), error = %e,
                        "cannot save the sessions: a restart will log everyone out"
                    );
                }
            }
        }
    }

    /// Changes whenever a session is removed, however (logout, revocation, reload, expiry,
    /// the per-user cap): a holder of a session rechecks it with [`Auth::session_live`].
    pub fn session_removals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.removals.subscribe()
    }

    /// Tell the watchers of [`Auth::session_removals`] when `before` > `after`.
    fn removed(&self, before: usize, after: usize) {
        if after < before {
            self.removals.send_modify(|g| *g = g.wrapping_add(1));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update of plain maps;
        // the data is still structurally valid, so keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace users, allow-list and token lifetime. Sessions of users that still exist with
    /// the same password hash and role are kept (their connections follow the new table);
    /// the sessions of removed users and of users whose password or role changed are revoked.
    pub fn reload(&self, config: &Config) -> Result<(), AuthError> {
        let users: HashMap<String, User> = config
            .users
            .iter()
            .map(|u| {
                let user = User {
                    hash: u.password_hash.clone(),
                    role: u.role,
                    connections: u.connections.clone(),
                };
                (u.name.clone(), user)
            })
            .collect();
        // The dummy hash uses the parameters of a real user so a miss costs the same time.
        let params = config
            .users
            .first()
            .and_then(|u| {
                PasswordHash::new(&u.password_hash)
                    .ok()
                    .and_then(|h| Params::try_from(&h).ok())
            })
            .unwrap_or_default();
        let mut filler = [0u8; 16];
        getrandom::fill(&mut filler).map_err(|e| AuthError::Hash(e.to_string()))?;
        let dummy_hash = hash_password_with(&hex::encode(filler), params)?;
        let mut inner = self.lock();
        // A session survives only if its user still exists with the same password hash and
        // role: a password or role change (or removal) revokes every token of that user.
        let old = std::mem::take(&mut inner.users);
        let before = inner.sessions.len();
        inner.sessions.retain(|_, s| {
            match (old.get(&s.user), users.get(&s.user)) {
                (Some(o), Some(n)) => o.hash == n.hash && o.role == n.role,
                // First load (no old table) or a user added since: nothing to compare.
                (None, Some(_)) => old.is_empty(),
                _ => false,
            }
        });
        self.removed(before, inner.sessions.len());
        inner.users = users;
        let Inner {
            users, throttle, ..
        } = &mut *inner;
        throttle.retain_users(|u| users.contains_key(u));
        inner.all_connections = config.connection_names();
        inner.allow = config.server.allow.clone();
        inner.ttl = Duration::from_secs(config.server.token_ttl_s);
        inner.dummy_hash = dummy_hash;
        drop(inner);
        // The users' stamps changed with their hashes or roles: written again either way.
        self.save();
        Ok(())
    }

    /// Whether `user` is a configured user (for logging: unknown names may be mistyped
    /// passwords and are never logged).
    pub fn knows(&self, user: &str) -> bool {
        self.lock().users.contains_key(user)
    }

    /// Whether a client address is inside the LAN allow-list (IPv4-mapped IPv6 is unmapped).
    pub fn peer_allowed(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        self.lock().allow.iter().any(|n| n.contains(&ip))
    }

    /// Check a password. Blocking (argon2): run it off the async executor.
    /// An unknown user is checked against a dummy hash so it costs the same.
    pub fn verify(&self, user: &str, password: &str) -> Result<(), AuthError> {
        let (hash, known) = {
            let inner = self.lock();
            match inner.users.get(user) {
                Some(u) => (u.hash.clone(), true),
                None => (inner.dummy_hash.clone(), false),
            }
        };
        let ok = verify_password(&hash, password);
        if ok && known {
            Ok(())
        } else {
            Err(AuthError::BadCredentials)
        }
    }

    /// Start a login attempt of `user` from `peer`, or refuse it (no sleeping). The attempt
    /// counts against its budgets until it ends; end it with [`Auth::end_attempt`] or
    /// [`Auth::login_succeeded`]. See [`ThrottlePolicy`] for the order of the budgets.
    pub fn begin_attempt(
        &self,
        user: &str,
        peer: IpAddr,
        now: Instant,
    ) -> Result<Attempt, Throttled> {
        self.begin_attempt_proven(user, peer, false, now)
    }

    /// [`Auth::begin_attempt`] for a client that may have proven itself: `has_session` says
    /// it presented a valid session of `user` (an address from which `user` logged in
    /// successfully recently is proven too). A proven client is never refused by the
    /// per-user slow-down.
    pub fn begin_attempt_proven(
        &self,
        user: &str,
        peer: IpAddr,
        has_session: bool,
        now: Instant,
    ) -> Result<Attempt, Throttled> {
        let p = self.policy;
        self.lock()
            .throttle
            .begin(&p, user, unmap(peer), has_session, now)
    }

    /// End an attempt. A failed (or abandoned) one stays counted; one never checked
    /// (`refund`) gives its attempt back. A successful login ends with
    /// [`Auth::login_succeeded`] (`end_attempt(a, true)` still refunds, without remembering
    /// the address).
    pub fn end_attempt(&self, attempt: &Attempt, refund: bool) {
        self.lock().throttle.end(attempt, refund);
    }

    /// End a successful attempt: it is given back, and its address is proven for the user
    /// for [`ThrottlePolicy::known_for`] (the per-user slow-down no longer applies there).
    pub fn login_succeeded(&self, attempt: &Attempt, now: Instant) {
        self.lock().throttle.succeeded(attempt, now);
    }

    /// Whether `user` logged in successfully from `peer` recently (see
    /// [`ThrottlePolicy::known_for`]).
    pub fn known_address(&self, user: &str, peer: IpAddr, now: Instant) -> bool {
        let p = self.policy;
        self.lock().throttle.known(user, unmap(peer), now, &p)
    }

    /// Attempts counted against `user` in its current window (for tests and metrics).
    pub fn attempts_of_user(&self, user: &str) -> u32 {
        self.lock().throttle.users.get(user).map_or(0, |b| b.count)
    }

    /// Number of throttle records (users, addresses).
    pub fn throttle_records(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.throttle.users.len(), inner.throttle.addrs.len())
    }

    /// Issue a fresh token for a (verified) user, valid from `now` for the configured lifetime.
    pub fn issue_token(&self, user: &str, now: SystemTime) -> Result<IssuedToken, AuthError> {
        self.issue_token_to(user, None, now)
    }

    /// [`Auth::issue_token`], recording the address the login came from.
    pub fn issue_token_to(
        &self,
        user: &str,
        peer: Option<std::net::SocketAddr>,
        now: SystemTime,
    ) -> Result<IssuedToken, AuthError> {
        let mut raw = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut raw).map_err(|e| AuthError::Hash(e.to_string()))?;
        let token = hex::encode(raw);
        let digest = self.digest(&raw)?;
        let mut inner = self.lock();
        let role = inner
            .users
            .get(user)
            .map(|u| u.role)
            .ok_or(AuthError::BadCredentials)?;
        let expires_at = now.checked_add(inner.ttl).unwrap_or(now);
        let before = inner.sessions.len();
        inner.sessions.retain(|_, s| s.expires_at > now);
        let mut mine: Vec<([u8; 32], SystemTime)> = inner
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(k, s)| (*k, s.issued_at))
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_USER {
            mine.sort_by_key(|(_, at)| *at);
            let excess = mine.len() + 1 - MAX_SESSIONS_PER_USER;
            for (k, _) in mine.iter().take(excess) {
                if let Some(old) = inner.sessions.remove(k) {
                    tracing::info!(user, session = %old.id, "oldest session ended: at most {MAX_SESSIONS_PER_USER} per user");
                }
            }
        }
        self.removed(before, inner.sessions.len());
        inner.sessions.insert(
            digest,
            Session {
                id: hex::encode(&digest[..8]),
                user: user.to_string(),
                issued_at: now,
                expires_at,
                peer,
            },
        );
        drop(inner);
        self.save();
        Ok(IssuedToken {
            token,
            expires_at,
            role,
        })
    }

    /// Resolve a bearer token at time `now`.
    pub fn authenticate(&self, token: &str, now: SystemTime) -> Result<Identity, AuthError> {
        let raw = parse_token(token)?;
        let digest = self.digest(&raw)?;
        let mut inner = self.lock();
        let session = inner
            .sessions
            .get(&digest)
            .cloned()
            .ok_or(AuthError::InvalidToken)?;
        if now >= session.expires_at {
            inner.sessions.remove(&digest);
            self.removed(1, 0);
            drop(inner);
            self.save();
            return Err(AuthError::Expired);
        }
        let user = inner
            .users
            .get(&session.user)
            .ok_or(AuthError::InvalidToken)?;
        let allowed = match user.role {
            UserRole::Admin => inner.all_connections.clone(),
            UserRole::User => user.connections.clone(),
        };
        Ok(Identity {
            user: session.user.clone(),
            role: user.role,
            allowed,
            expires_at: session.expires_at,
            session: session.id.clone(),
        })
    }

    /// Whether the session with public id `id` is live at `now` (its user still exists).
    pub fn session_live(&self, id: &str, now: SystemTime) -> bool {
        let inner = self.lock();
        inner
            .sessions
            .values()
            .any(|s| s.id == id && now < s.expires_at && inner.users.contains_key(&s.user))
    }

    /// Revoke a token; returns whether it was live.
    pub fn logout(&self, token: &str) -> Result<bool, AuthError> {
        let raw = parse_token(token)?;
        let digest = self.digest(&raw)?;
        let live = self.lock().sessions.remove(&digest).is_some();
        self.removed(usize::from(live), 0);
        if live {
            self.save();
        }
        Ok(live)
    }

    /// Live sessions at `now`, sorted by user then issue time.
    pub fn sessions(&self, now: SystemTime) -> Vec<SessionInfo> {
        let inner = self.lock();
        let mut v: Vec<SessionInfo> = inner
            .sessions
            .values()
            .filter(|s| now < s.expires_at)
            .filter_map(|s| {
                inner.users.get(&s.user).map(|u| SessionInfo {
                    id: s.id.clone(),
                    user: s.user.clone(),
                    role: u.role,
                    peer: s.peer,
                    issued_at: s.issued_at,
                    expires_at: s.expires_at,
                })
            })
            .collect();
        v.sort_by(|a, b| (&a.user, a.issued_at).cmp(&(&b.user, b.issued_at)));
        v
    }

    /// Revoke sessions; answers how many were live.
    pub fn revoke(&self, target: &RevokeTarget) -> usize {
        let mut inner = self.lock();
        let before = inner.sessions.len();
        inner.sessions.retain(|_, s| match target {
            RevokeTarget::User(u) => &s.user != u,
            RevokeTarget::Id(id) => &s.id != id,
        });
        self.removed(before, inner.sessions.len());
        let n = before - inner.sessions.len();
        drop(inner);
        if n > 0 {
            self.save();
        }
        n
    }

    /// Number of live (not yet pruned) sessions.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Keyed digest of a token: argon2id with tiny cost over the token and a per-process
    /// secret salt. The token has 256 random bits, so a cheap hash is enough; the point is
    /// that the session table never holds a usable token.
    fn digest(&self, raw: &[u8; TOKEN_BYTES]) -> Result<[u8; 32], AuthError> {
        let params = Params::new(8, 1, 1, Some(32)).map_err(|e| AuthError::Hash(e.to_string()))?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(raw, &self.digest_key, &mut out)
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        Ok(out)
    }
}

fn store_role(r: UserRole) -> &'static str {
    match r {
        UserRole::User => "user",
        UserRole::Admin => "admin",
    }
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_token(token: &str) -> Result<[u8; TOKEN_BYTES], AuthError> {
    let mut raw = [0u8; TOKEN_BYTES];
    if token.len() != TOKEN_BYTES * 2 {
        return Err(AuthError::MalformedToken);
    }
    hex::decode_to_slice(token, &mut raw).map_err(|_| AuthError::MalformedToken)?;
    Ok(raw)
}

/// Parameters for tests and the demo: argon2id with m=8 KiB, t=1, p=1 (fast, weak).
pub fn fast_params() -> Params {
    Params::new(8, 1, 1, None).unwrap_or_default()
}

/// Hash a password with argon2id and the crate's default (OWASP) parameters.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    hash_password_with(password, Params::default())
}

/// Hash a password with argon2id and explicit parameters; returns the PHC string.
pub fn hash_password_with(password: &str, params: Params) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Verify a password against a PHC string; any malformed string simply fails.
pub fn verify_password(phc: &str, password: &str) -> bool {
    if check_phc(phc).is_err() {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
