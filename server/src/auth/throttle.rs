//! The login throttle's types: the policy, the refusal, an admitted attempt and the
//! per-key budget with its eviction rule. [`super::Auth`] owns the tables.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::MAX_THROTTLE_ENTRIES;

/// Login throttle policy. Attempts are *refused* (never slept on) once a budget is spent.
///
/// Every attempt counts from the moment it starts (so attempts in flight count), against
/// its (user, address) pair first (`per_pair`), its address across all user names
/// (`per_addr`), and, only for a client that has not proven itself, its user name across
/// all addresses (`per_user`: a slow-down of strangers). A client has proven itself when it
/// holds a valid session of that user, or logs in from an address from which that user
/// logged in successfully within `known_for`: a stranger's wrong passwords can then never
/// lock the real user out (security N3). Budgets count per fixed `window`; a successful
/// login gives its own attempt back. With fixed windows, any sliding `window` sees at most
/// twice the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Length of a counting window.
    pub window: Duration,
    /// Attempts per window for one user name from clients that have not proven themselves.
    pub per_user: u32,
    /// Attempts per window for one user name from one address.
    pub per_pair: u32,
    /// How long an address stays proven for a user after a successful login from it.
    pub known_for: Duration,
    /// Attempts per window from one address, whatever the user name.
    pub per_addr: u32,
    /// Most records per table (users, addresses). Records still counting are never
    /// evicted: when a table is full of them, new keys are refused instead.
    pub max_records: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            window: Duration::from_secs(60),
            per_user: 30,
            per_pair: 5,
            known_for: Duration::from_secs(30 * 24 * 3600),
            per_addr: 20,
            max_records: MAX_THROTTLE_ENTRIES,
        }
    }
}

/// Why a login attempt was refused before any password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Throttled {
    /// The user name's budget (for clients that have not proven themselves) is spent.
    #[error("too many login attempts for this user from new addresses; try again in {0} s (a client that logged in from here before is not slowed down)")]
    User(u64),
    /// The budget of this user name from this address is spent.
    #[error("too many login attempts for this user from this address; try again in {0} s")]
    Pair(u64),
    /// The address's budget is spent.
    #[error("too many login attempts from this address; try again in {0} s")]
    Address(u64),
    /// The throttle tables are full of records still counting.
    #[error("too many login attempts in progress; try again later")]
    Full,
}

/// One admitted attempt; hand it back to [`super::Auth::end_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub(super) user: String,
    pub(super) addr: IpAddr,
    /// The client had proven itself: the per-user budget was not charged.
    pub(super) proven: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    /// Attempts counted in the current window (including those in flight).
    pub(super) count: u32,
    /// Attempts started and not yet ended.
    pub(super) in_flight: u32,
    window_start: Instant,
    /// Last use, for LRU among clean records.
    pub(super) last: Instant,
}

impl Budget {
    pub(super) fn fresh(now: Instant) -> Budget {
        Budget {
            count: 0,
            in_flight: 0,
            window_start: now,
            last: now,
        }
    }

    /// Start a new window if the current one is over.
    pub(super) fn roll(&mut self, now: Instant, window: Duration) {
        if now.saturating_duration_since(self.window_start) >= window {
            self.count = self.in_flight;
            self.window_start = now;
        }
    }

    /// A clean record carries no penalty: nothing counted in a live window, nothing in flight.
    pub(super) fn clean(&self, now: Instant, window: Duration) -> bool {
        self.in_flight == 0
            && (self.count == 0 || now.saturating_duration_since(self.window_start) >= window)
    }

    pub(super) fn retry_after(&self, now: Instant, window: Duration) -> u64 {
        let left = window.saturating_sub(now.saturating_duration_since(self.window_start));
        left.as_secs().max(1)
    }
}

/// Make room for `key` in `map`: evict the least recently used *clean* record. Records in
/// penalty are never evicted, so a flood of new names or addresses cannot reset a target.
pub(super) fn make_room<K: Clone + Eq + std::hash::Hash>(
    map: &mut HashMap<K, Budget>,
    key: &K,
    max: usize,
    now: Instant,
    window: Duration,
) -> bool {
    if map.contains_key(key) || map.len() < max {
        return true;
    }
    let victim = map
        .iter()
        .filter(|(_, b)| b.clean(now, window))
        .min_by_key(|(_, b)| b.last)
        .map(|(k, _)| k.clone());
    match victim {
        Some(k) => {
            map.remove(&k);
            true
        }
        None => false,
    }
}

#[derive(Debug, Default)]
pub(super) struct Throttle {
    pub(super) users: HashMap<String, Budget>,
    pub(super) addrs: HashMap<IpAddr, Budget>,
    pairs: HashMap<(String, IpAddr), Budget>,
    /// Per user: the addresses it logged in from successfully, and when (last).
    known: HashMap<String, Vec<(IpAddr, Instant)>>,
}

/// The budget of `key` in `map` as of `now` (a fresh one if none).
fn current<K: Eq + std::hash::Hash>(
    map: &HashMap<K, Budget>,
    key: &K,
    now: Instant,
    window: Duration,
) -> Budget {
    let mut b = map.get(key).copied().unwrap_or(Budget::fresh(now));
    b.roll(now, window);
    b
}

/// Most remembered login addresses per user (the least recent is forgotten first).
const KNOWN_PER_USER: usize = 32;

impl Throttle {
    /// Whether `user` logged in successfully from `addr` within `known_for` of `now`.
    pub(super) fn known(&self, user: &str, addr: IpAddr, now: Instant, p: &ThrottlePolicy) -> bool {
        self.known.get(user).is_some_and(|v| {
            v.iter()
                .any(|(a, at)| *a == addr && now.saturating_duration_since(*at) < p.known_for)
        })
    }

    /// Admit or refuse an attempt (see [`ThrottlePolicy`]); `proven`: the client holds a
    /// valid session of `user`.
    pub(super) fn begin(
        &mut self,
        p: &ThrottlePolicy,
        user: &str,
        addr: IpAddr,
        proven: bool,
        now: Instant,
    ) -> Result<Attempt, Throttled> {
        let proven = proven || self.known(user, addr, now, p);
        let user_key = user.to_string();
        let pair_key = (user_key.clone(), addr);
        let mut pb = current(&self.pairs, &pair_key, now, p.window);
        let mut ab = current(&self.addrs, &addr, now, p.window);
        let mut ub = current(&self.users, &user_key, now, p.window);
        if pb.count >= p.per_pair {
            return Err(Throttled::Pair(pb.retry_after(now, p.window)));
        }
        if ab.count >= p.per_addr {
            return Err(Throttled::Address(ab.retry_after(now, p.window)));
        }
        if !proven && ub.count >= p.per_user {
            return Err(Throttled::User(ub.retry_after(now, p.window)));
        }
        if !make_room(&mut self.pairs, &pair_key, p.max_records, now, p.window)
            || !make_room(&mut self.addrs, &addr, p.max_records, now, p.window)
            || (!proven && !make_room(&mut self.users, &user_key, p.max_records, now, p.window))
        {
            return Err(Throttled::Full);
        }
        let mut budgets = vec![&mut pb, &mut ab];
        if !proven {
            budgets.push(&mut ub);
        }
        for b in budgets {
            b.count = b.count.saturating_add(1);
            b.in_flight = b.in_flight.saturating_add(1);
            b.last = now;
        }
        self.pairs.insert(pair_key, pb);
        self.addrs.insert(addr, ab);
        if !proven {
            self.users.insert(user_key, ub);
        }
        Ok(Attempt {
            user: user.to_string(),
            addr,
            proven,
        })
    }

    /// End an attempt; `refund` gives it back.
    pub(super) fn end(&mut self, a: &Attempt, refund: bool) {
        let users = if a.proven {
            None
        } else {
            self.users.get_mut(&a.user)
        };
        let pair = self.pairs.get_mut(&(a.user.clone(), a.addr));
        let addrs = self.addrs.get_mut(&a.addr);
        for b in [users, pair, addrs].into_iter().flatten() {
            b.in_flight = b.in_flight.saturating_sub(1);
            if refund {
                b.count = b.count.saturating_sub(1);
            }
        }
    }

    /// A successful login: the attempt is given back and its address becomes proven for
    /// the user.
    pub(super) fn succeeded(&mut self, a: &Attempt, now: Instant) {
        self.end(a, true);
        let v = self.known.entry(a.user.clone()).or_default();
        v.retain(|(addr, _)| *addr != a.addr);
        v.push((a.addr, now));
        if v.len() > KNOWN_PER_USER {
            v.remove(0);
        }
    }

    /// Forget the known addresses of users no longer configured.
    pub(super) fn retain_users(&mut self, keep: impl Fn(&str) -> bool) {
        self.known.retain(|u, _| keep(u));
    }
}
