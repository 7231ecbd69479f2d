//! Tests of users, tokens, sessions and the login throttle.

use super::*;
use crate::config::{ConnectionConfig, UserConfig};
use proptest::prelude::*;

fn config() -> Config {
    let mut c = Config::default();
    let h = hash_password_with("secret", fast_params()).unwrap_or_default();
    c.users.push(UserConfig {
        name: "alice".into(),
        password_hash: h.clone(),
        role: UserRole::User,
        connections: vec!["isp1".into()],
    });
    c.users.push(UserConfig {
        name: "root".into(),
        password_hash: h,
        role: UserRole::Admin,
        connections: vec![],
    });
    for n in ["isp1", "isp2"] {
        let toml = format!("name = \"{n}\"\nnumbers = [\"1\"]\n");
        if let Ok(cc) = toml::from_str::<ConnectionConfig>(&toml) {
            c.connections.push(cc);
        }
    }
    c
}

fn auth() -> Auth {
    Auth::new(&config()).unwrap_or_else(|e| panic!("{e}"))
}

const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[test]
fn hash_and_verify() {
    let h = hash_password_with("pw", fast_params()).unwrap_or_default();
    assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
    assert!(verify_password(&h, "pw"));
    assert!(!verify_password(&h, "pW"));
    assert!(!verify_password("$argon2id$nonsense", "pw"));
    assert!(!verify_password("", "pw"));
}

#[test]
fn a_user_holds_at_most_the_cap_of_sessions_and_the_oldest_goes_first() {
    let a = auth();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let tokens: Vec<String> = (0..MAX_SESSIONS_PER_USER as u64 + 2)
        .map(|i| {
            a.issue_token("alice", t0 + Duration::from_secs(i))
                .unwrap_or_else(|e| panic!("{e}"))
                .token
        })
        .collect();
    let root = a
        .issue_token("root", t0)
        .unwrap_or_else(|e| panic!("{e}"))
        .token;
    let now = t0 + Duration::from_secs(100);
    let live = a.sessions(now);
    assert_eq!(
        live.iter().filter(|s| s.user == "alice").count(),
        MAX_SESSIONS_PER_USER
    );
    // The two oldest were ended; the newest and another user's are untouched.
    assert_eq!(
        a.authenticate(&tokens[0], now).err(),
        Some(AuthError::InvalidToken)
    );
    assert_eq!(
        a.authenticate(&tokens[1], now).err(),
        Some(AuthError::InvalidToken)
    );
    assert!(a.authenticate(&tokens[2], now).is_ok());
    assert!(a
        .authenticate(&tokens[MAX_SESSIONS_PER_USER + 1], now)
        .is_ok());
    assert!(a.authenticate(&root, now).is_ok());
}

#[test]
fn wrong_user_and_wrong_password_same_error() {
    let a = auth();
    assert_eq!(a.verify("alice", "secret"), Ok(()));
    assert_eq!(a.verify("alice", "nope"), Err(AuthError::BadCredentials));
    assert_eq!(
        a.verify("mallory", "secret"),
        Err(AuthError::BadCredentials)
    );
}

#[test]
fn token_lifecycle_with_passed_in_time() {
    let a = auth();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let tok = a.issue_token("alice", t0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tok.token.len(), 64);
    assert_eq!(tok.expires_at, t0 + Duration::from_secs(12 * 3600));
    let id = a
        .authenticate(&tok.token, t0 + Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.user, "alice");
    assert_eq!(id.allowed, vec!["isp1".to_string()]);
    assert_eq!(
        a.authenticate(&tok.token, tok.expires_at),
        Err(AuthError::Expired)
    );
    // Expired sessions are removed on first sight.
    assert_eq!(a.authenticate(&tok.token, t0), Err(AuthError::InvalidToken));
}

#[test]
fn logout_revokes_and_admin_sees_all_connections() {
    let a = auth();
    let now = SystemTime::now();
    let tok = a.issue_token("root", now).unwrap_or_else(|e| panic!("{e}"));
    let id = a
        .authenticate(&tok.token, now)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.allowed, vec!["isp1".to_string(), "isp2".to_string()]);
    assert_eq!(a.logout(&tok.token), Ok(true));
    assert_eq!(a.logout(&tok.token), Ok(false));
    assert_eq!(
        a.authenticate(&tok.token, now),
        Err(AuthError::InvalidToken)
    );
}

#[test]
fn malformed_tokens() {
    let a = auth();
    assert_eq!(
        a.authenticate("", SystemTime::now()),
        Err(AuthError::MalformedToken)
    );
    assert_eq!(
        a.authenticate(&"z".repeat(64), SystemTime::now()),
        Err(AuthError::MalformedToken)
    );
    assert_eq!(
        a.authenticate(&"0".repeat(64), SystemTime::now()),
        Err(AuthError::InvalidToken)
    );
}

fn small_policy() -> ThrottlePolicy {
    ThrottlePolicy {
        window: Duration::from_secs(60),
        per_user: 3,
        per_pair: 3,
        known_for: Duration::from_secs(24 * 3600),
        per_addr: 5,
        max_records: 4,
    }
}

/// N3: the review's attack (wrong passwords for `admin` from any allowed address locking
/// the real admin out) no longer works against a client that has proven itself.
#[test]
fn strangers_never_lock_out_a_proven_user() {
    let policy = ThrottlePolicy {
        per_user: 4,
        max_records: 1000,
        ..small_policy()
    };
    let a = Auth::with_policy(&config(), policy).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let home = ip("10.0.0.1");
    let ok = a
        .begin_attempt("root", home, t)
        .unwrap_or_else(|e| panic!("{e}"));
    a.login_succeeded(&ok, t);
    assert!(a.known_address("root", home, t));
    // One stranger: its (user, address) budget ends it, nobody else is affected.
    let fail = |at: IpAddr| {
        let x = a.begin_attempt("root", at, t)?;
        a.end_attempt(&x, false);
        Ok::<(), Throttled>(())
    };
    for _ in 0..3 {
        assert_eq!(fail(ip("10.9.0.1")), Ok(()));
    }
    assert_eq!(fail(ip("10.9.0.1")), Err(Throttled::Pair(60)));
    // Strangers from many addresses: the per-user slow-down refuses new addresses...
    assert_eq!(fail(ip("10.9.0.2")), Ok(()));
    assert_eq!(fail(ip("10.9.0.3")), Err(Throttled::User(60)));
    // ...but never the admin's own address, nor a client holding a valid session.
    let again = a
        .begin_attempt("root", home, t)
        .unwrap_or_else(|e| panic!("proven address refused: {e}"));
    a.login_succeeded(&again, t);
    assert!(a
        .begin_attempt_proven("root", ip("10.5.5.5"), true, t)
        .is_ok());
    assert_eq!(
        a.begin_attempt_proven("root", ip("10.5.5.6"), false, t),
        Err(Throttled::User(60))
    );
    // A proven address stays proven only for `known_for`.
    let later = t + Duration::from_secs(24 * 3600 + 1);
    assert!(!a.known_address("root", home, later));
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(PEER)
}

#[test]
fn throttle_refuses_parallel_attempts_per_user_across_addresses() {
    let a = Auth::with_policy(&config(), small_policy()).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    // Three attempts in flight at once, each from another address: all counted.
    let held: Vec<Attempt> = (1..=3)
        .map(|i| {
            a.begin_attempt("alice", ip(&format!("10.0.0.{i}")), t)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    assert_eq!(
        a.begin_attempt("alice", ip("10.0.0.9"), t),
        Err(Throttled::User(60))
    );
    // Failures stay counted when they end.
    for h in &held {
        a.end_attempt(h, false);
    }
    assert_eq!(
        a.begin_attempt("alice", ip("10.0.0.9"), t + Duration::from_secs(59)),
        Err(Throttled::User(1))
    );
    // Another user is not affected; the next window starts afresh.
    assert!(a.begin_attempt("root", ip("10.0.0.9"), t).is_ok());
    assert!(a
        .begin_attempt("alice", ip("10.0.0.9"), t + Duration::from_secs(60))
        .is_ok());
}

#[test]
fn throttle_counts_per_address_across_users() {
    let policy = ThrottlePolicy {
        max_records: 100,
        ..small_policy()
    };
    let a = Auth::with_policy(&config(), policy).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    for i in 0..5 {
        let at = a
            .begin_attempt(&format!("u{i}"), PEER, t)
            .unwrap_or_else(|e| panic!("{e}"));
        a.end_attempt(&at, false);
    }
    assert_eq!(a.begin_attempt("u9", PEER, t), Err(Throttled::Address(60)));
    assert!(a.begin_attempt("u9", ip("10.0.0.1"), t).is_ok());
}

#[test]
fn full_tables_of_records_in_penalty_refuse_new_keys() {
    let a = Auth::with_policy(&config(), small_policy()).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    for i in 0..4 {
        let at = a
            .begin_attempt(&format!("u{i}"), PEER, t)
            .unwrap_or_else(|e| panic!("{e}"));
        a.end_attempt(&at, false);
    }
    assert_eq!(a.begin_attempt("u9", PEER, t), Err(Throttled::Full));
}

#[test]
fn success_refunds_and_flood_cannot_evict_a_target_in_penalty() {
    let a = Auth::with_policy(&config(), small_policy()).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let ok = a
        .begin_attempt("alice", PEER, t)
        .unwrap_or_else(|e| panic!("{e}"));
    a.end_attempt(&ok, true);
    assert_eq!(a.attempts_of_user("alice"), 0);
    for _ in 0..3 {
        let at = a
            .begin_attempt("alice", PEER, t)
            .unwrap_or_else(|e| panic!("{e}"));
        a.end_attempt(&at, false);
    }
    assert_eq!(a.attempts_of_user("alice"), 3);
    // A flood of fresh names from fresh addresses: three fit (clean records are evicted
    // LRU once their window is over); alice's record in penalty is never evicted.
    let later = t + Duration::from_secs(1);
    let mut refused = 0;
    for i in 0..50 {
        match a.begin_attempt(&format!("x{i}"), ip(&format!("10.1.0.{i}")), later) {
            Ok(at) => a.end_attempt(&at, false),
            Err(Throttled::Full) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 47);
    assert_eq!(a.attempts_of_user("alice"), 3);
    assert_eq!(
        a.begin_attempt("alice", ip("10.2.0.1"), later),
        Err(Throttled::User(59))
    );
    // Once the window is over the records are clean and may be evicted.
    let next = t + Duration::from_secs(120);
    assert!(a.begin_attempt("y", ip("10.3.0.1"), next).is_ok());
    assert!(a.throttle_records().0 <= 4);
}

#[test]
fn reload_keeps_sessions_of_remaining_users() {
    let base = config();
    let a = Auth::new(&base).unwrap_or_else(|e| panic!("{e}"));
    let now = SystemTime::now();
    let alice = a
        .issue_token("alice", now)
        .unwrap_or_else(|e| panic!("{e}"));
    let root = a.issue_token("root", now).unwrap_or_else(|e| panic!("{e}"));
    let mut c = base.clone();
    c.users.retain(|u| u.name == "root");
    c.server.allow = vec!["10.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    a.reload(&c).unwrap_or_else(|e| panic!("{e}"));
    assert!(a.authenticate(&root.token, now).is_ok());
    assert_eq!(
        a.authenticate(&alice.token, now),
        Err(AuthError::InvalidToken)
    );
    assert!(!a.peer_allowed(PEER));
    assert!(a.peer_allowed("10.1.2.3".parse().unwrap_or(PEER)));
    assert!(a.peer_allowed("::ffff:10.1.2.3".parse().unwrap_or(PEER)));
}

#[test]
fn reload_revokes_tokens_when_password_or_role_changes() {
    let c = config();
    let a = Auth::new(&c).unwrap_or_else(|e| panic!("{e}"));
    let now = SystemTime::now();
    let alice = a
        .issue_token("alice", now)
        .unwrap_or_else(|e| panic!("{e}"));
    let root = a.issue_token("root", now).unwrap_or_else(|e| panic!("{e}"));
    let before: Vec<_> = a.sessions(now).into_iter().map(|s| s.user).collect();
    assert_eq!(before, vec!["alice".to_string(), "root".to_string()]);
    // alice's password changes, root's role changes: both revoked.
    let mut changed = c.clone();
    changed.users[0].password_hash = hash_password_with("new", fast_params()).unwrap_or_default();
    changed.users[1].role = UserRole::User;
    // The same table again: both survive.
    a.reload(&c).unwrap_or_else(|e| panic!("{e}"));
    assert!(a.authenticate(&alice.token, now).is_ok());
    assert!(a.authenticate(&root.token, now).is_ok());
    a.reload(&changed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        a.authenticate(&alice.token, now),
        Err(AuthError::InvalidToken)
    );
    assert_eq!(
        a.authenticate(&root.token, now),
        Err(AuthError::InvalidToken)
    );
    assert!(a.sessions(now).is_empty());
}

#[test]
fn revoke_by_user_and_by_id() {
    let a = auth();
    let now = SystemTime::now();
    let a1 = a
        .issue_token("alice", now)
        .unwrap_or_else(|e| panic!("{e}"));
    let a2 = a
        .issue_token("alice", now)
        .unwrap_or_else(|e| panic!("{e}"));
    let r = a.issue_token("root", now).unwrap_or_else(|e| panic!("{e}"));
    let id = a
        .authenticate(&r.token, now)
        .unwrap_or_else(|e| panic!("{e}"))
        .session;
    assert_eq!(id.len(), 16);
    assert_eq!(a.revoke(&RevokeTarget::Id(id.clone())), 1);
    assert_eq!(a.revoke(&RevokeTarget::Id(id)), 0);
    assert_eq!(a.authenticate(&r.token, now), Err(AuthError::InvalidToken));
    assert_eq!(a.revoke(&RevokeTarget::User("alice".into())), 2);
    assert_eq!(a.authenticate(&a1.token, now), Err(AuthError::InvalidToken));
    assert_eq!(a.authenticate(&a2.token, now), Err(AuthError::InvalidToken));
}

proptest! {
    #[test]
    /// Random strings never verify, and only argon2 PHC strings pass the check.
    fn random_strings_never_verify(s in ".{0,200}") {
        if check_phc(&s).is_ok() {
            prop_assert!(s.starts_with("$argon2"), "{}", s);
        }
        prop_assert!(!verify_password(&s, "pw"));
    }

    #[test]
    /// Strings shaped like argon2 hashes, with made-up salts and digests, never verify.
    fn phc_like_strings_never_verify(m in 0u32..100, t in 0u32..5, p in 0u32..5, tail in "[A-Za-z0-9+/$=,]{0,60}") {
        let s = format!("$argon2id$v=19$m={m},t={t},p={p}${tail}");
        prop_assert!(!verify_password(&s, "pw"));
    }
}
