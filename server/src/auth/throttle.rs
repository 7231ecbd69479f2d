//! The login throttle's types: the policy, the refusal, an admitted attempt and the
//! per-key budget with its eviction rule. [`super::Auth`] owns the tables.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::MAX_THROTTLE_ENTRIES;

/// Login throttle policy. Attempts are *refused* (never slept on) once a budget is spent.
///
/// Every attempt counts from the moment it starts (so attempts in flight count), against
/// two budgets at once: its user name across all addresses, and its address across all user
/// names. A budget is `per_user` / `per_addr` attempts per fixed `window`; a successful login
/// gives its own attempt back. With fixed windows, any sliding `window` sees at most twice
/// the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Length of a counting window.
    pub window: Duration,
    /// Attempts per window for one user name, whatever the address.
    pub per_user: u32,
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
            per_user: 5,
            per_addr: 20,
            max_records: MAX_THROTTLE_ENTRIES,
        }
    }
}

/// Why a login attempt was refused before any password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Throttled {
    /// The user name's budget is spent.
    #[error("too many login attempts for this user; try again in {0} s")]
    User(u64),
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
}
