//! Sessions that survive a restart: the session table written to `state_dir/sessions`,
//! framed like the other state files ([`crate::persist`]) and written atomically, and read
//! back at start. Only the keyed digests of tokens are written (with the digest's secret
//! salt, without which they could not be matched again), never a token; each session with
//! its user, role, address, issue and expiry time, and a stamp of its user's password hash
//! and role, so that a password or role changed while mserver was down still revokes it.
//! Owns the file's text format; must not decide what a session may do (`Auth`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::UserRole;

/// One session as the file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stored {
    /// Keyed digest of the token.
    pub(super) digest: [u8; 32],
    pub(super) user: String,
    pub(super) role: UserRole,
    pub(super) issued_at: SystemTime,
    pub(super) expires_at: SystemTime,
    pub(super) peer: Option<SocketAddr>,
    /// Keyed digest of the user's password hash and role when the file was written.
    pub(super) stamp: [u8; 16],
}

/// The whole file: the digest key and the sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Table {
    pub(super) key: [u8; 16],
    pub(super) sessions: Vec<Stored>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn role_name(r: UserRole) -> &'static str {
    match r {
        UserRole::User => "user",
        UserRole::Admin => "admin",
    }
}

fn hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// The user names a session line can carry (config names: `A-Z a-z 0-9 - _ . @`).
fn plain_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

impl Table {
    /// The file's body: `key HEX`, then one `session DIGEST USER ROLE ISSUED EXPIRES PEER
    /// STAMP` line per session (times in Unix seconds, `-` for no address).
    pub(super) fn to_text(&self) -> String {
        let mut out = format!("key {}\n", hex::encode(self.key));
        for s in self.sessions.iter().filter(|s| plain_name(&s.user)) {
            out.push_str(&format!(
                "session {} {} {} {} {} {} {}\n",
                hex::encode(s.digest),
                s.user,
                role_name(s.role),
                unix(s.issued_at),
                unix(s.expires_at),
                s.peer.map_or_else(|| "-".to_string(), |p| p.to_string()),
                hex::encode(s.stamp),
            ));
        }
        out
    }

    /// Parse a body written by [`Table::to_text`]; any line out of shape refuses the file.
    pub(super) fn parse(text: &str) -> Result<Table, String> {
        let mut key = None;
        let mut sessions = Vec::new();
        let mut seen: HashMap<[u8; 32], ()> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let bad = |what: &str| format!("line {}: {what}", n + 1);
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                [] | [""] => {}
                ["key", k] if key.is_none() => {
                    key = Some(hex_array::<16>(k).ok_or_else(|| bad("bad key"))?);
                }
                ["session", digest, user, role, issued, expires, peer, stamp] => {
                    let digest = hex_array::<32>(digest).ok_or_else(|| bad("bad digest"))?;
                    if seen.insert(digest, ()).is_some() {
                        return Err(bad("the same session twice"));
                    }
                    if !plain_name(user) {
                        return Err(bad("bad user name"));
                    }
                    let role = match *role {
                        "user" => UserRole::User,
                        "admin" => UserRole::Admin,
                        _ => return Err(bad("bad role")),
                    };
                    let secs = |t: &str| {
                        t.parse::<u64>()
                            .ok()
                            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
                            .ok_or_else(|| bad("bad time"))
                    };
                    let peer = match *peer {
                        "-" => None,
                        p => Some(p.parse().map_err(|_| bad("bad address"))?),
                    };
                    sessions.push(Stored {
                        digest,
                        user: (*user).to_string(),
                        role,
                        issued_at: secs(issued)?,
                        expires_at: secs(expires)?,
                        peer,
                        stamp: hex_array::<16>(stamp).ok_or_else(|| bad("bad stamp"))?,
                    });
                }
                _ => return Err(bad("not a key or session line")),
            }
        }
        Ok(Table {
            key: key.ok_or("no key line")?,
            sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table() -> Table {
        Table {
            key: [7; 16],
            sessions: vec![
                Stored {
                    digest: [1; 32],
                    user: "alice".into(),
                    role: UserRole::User,
                    issued_at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                    expires_at: UNIX_EPOCH + Duration::from_secs(1_800_086_400),
                    peer: Some(
                        "192.168.1.10:40000"
                            .parse()
                            .unwrap_or_else(|e| panic!("{e}")),
                    ),
                    stamp: [2; 16],
                },
                Stored {
                    digest: [3; 32],
                    user: "root".into(),
                    role: UserRole::Admin,
                    issued_at: UNIX_EPOCH + Duration::from_secs(1_800_000_001),
                    expires_at: UNIX_EPOCH + Duration::from_secs(1_800_086_401),
                    peer: None,
                    stamp: [4; 16],
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_refuses_lines_out_of_shape() {
        let t = table();
        let text = t.to_text();
        assert_eq!(Table::parse(&text), Ok(t));
        assert!(text.starts_with(&format!("key {}\n", "07".repeat(16))));
        for bad in [
            "",
            "key 00\n",
            &text.replace("alice", "al ice"),
            &text.replace(" user ", " owner "),
            &format!("{text}session x\n"),
            &format!("{text}{}", text.lines().nth(1).unwrap_or_default()),
        ] {
            assert!(Table::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        /// Whatever the sessions, the text parses back to the same table; arbitrary text
        /// never panics the parser.
        #[test]
        fn any_table_round_trips(
            key in any::<[u8; 16]>(),
            rows in proptest::collection::vec(
                (any::<[u8; 32]>(), "[a-z][a-z0-9._@-]{0,20}", any::<bool>(),
                 0u64..4_000_000_000, 0u64..100_000, proptest::option::of(any::<(u32, u16)>()),
                 any::<[u8; 16]>()),
                0..8),
            junk in ".{0,200}",
        ) {
            let mut seen = std::collections::HashSet::new();
            let sessions: Vec<Stored> = rows
                .into_iter()
                .filter(|r| seen.insert(r.0))
                .map(|(digest, user, admin, issued, ttl, peer, stamp)| Stored {
                    digest,
                    user,
                    role: if admin { UserRole::Admin } else { UserRole::User },
                    issued_at: UNIX_EPOCH + Duration::from_secs(issued),
                    expires_at: UNIX_EPOCH + Duration::from_secs(issued + ttl),
                    peer: peer.map(|(a, p)| SocketAddr::from((std::net::Ipv4Addr::from(a), p))),
                    stamp,
                })
                .collect();
            let t = Table { key, sessions };
            prop_assert_eq!(Table::parse(&t.to_text()), Ok(t));
            let _ = Table::parse(&junk);
        }
    }
}
