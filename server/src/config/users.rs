//! `[[users]]`: who may log in, their role and the connections they may dial.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{check_name, Violation};

/// The command that prints a hash, named in validation messages.
const HASH_HINT: &str = "mserver hash-password";

/// Role of a user (what they may do through the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Dials/hangs up the connections listed for them; reads everything.
    User,
    /// Also changes rules and timeouts and forces hang-ups.
    Admin,
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserRole::User => "user",
            UserRole::Admin => "admin",
        })
    }
}

/// `[[users]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// argon2 PHC string (`mserver hash-password` prints one).
    pub password_hash: String,
    /// `admin` or `user`.
    pub role: UserRole,
    /// Connections this user may dial and hang up (admins may dial all).
    #[serde(default)]
    pub connections: Vec<String>,
}

/// Semantic checks of `[[users]]` against the connection names; returns the user names.
pub(super) fn validate<'a>(
    list: &'a [UserConfig],
    conns: &HashSet<&str>,
) -> Result<HashSet<&'a str>, Violation> {
    let mut users = HashSet::new();
    for (i, u) in list.iter().enumerate() {
        check_name("users", i, &u.name)?;
        if !users.insert(u.name.as_str()) {
            return Err(Violation::new(
                "users",
                Some(i),
                "name",
                format!("duplicate user name `{}`", u.name),
            ));
        }
        let h = u.password_hash.trim();
        if h.is_empty() || h.starts_with('<') {
            return Err(Violation::new(
                "users",
                Some(i),
                "password_hash",
                format!(
                    "{:?} is a placeholder, not a hash: put the output of `{HASH_HINT}` here \
                     (or write a fresh configuration with `mserver init`)",
                    u.password_hash
                ),
            ));
        }
        if let Err(e) = crate::phc::check_phc(&u.password_hash) {
            return Err(Violation::new(
                "users",
                Some(i),
                "password_hash",
                format!("{e} (make one with `{HASH_HINT}`)"),
            ));
        }
        if let Some(c) = u.connections.iter().find(|c| !conns.contains(c.as_str())) {
            return Err(Violation::new(
                "users",
                Some(i),
                "connections",
                format!("unknown connection `{c}` (not in [[connections]])"),
            ));
        }
    }
    Ok(users)
}
