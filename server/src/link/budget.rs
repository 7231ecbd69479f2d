//! The link manager's side of a budget: the shared [`Budget`] behind a lock (dials are
//! checked by the manager's handle, usage is fed by the link's actor), the wall clock and
//! the local time zone, and the usage file in the state directory. The decisions stay in
//! the sans-IO [`Budget`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::budget::{local_offset, Budget, BudgetView, Clock, Notice, Refusal, Usage, Zone};
use crate::config::Config;

/// Save the usage at most this often while it changes (and whenever the link is not up).
const SAVE_EVERY: Duration = Duration::from_secs(60);

fn lock(b: &Mutex<Budget>) -> MutexGuard<'_, Budget> {
    // Budget methods do not panic midway on valid state; take a poisoned lock over.
    b.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wall clock as a budget [`Clock`] (the budget's fixed offset, else local time).
fn clock(b: &Budget) -> Clock {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    b.clock(unix, local_offset(unix))
}

/// A connection's budget as the manager holds it (cheap to clone; clones share it).
#[derive(Debug, Clone)]
pub struct Shared {
    budget: Arc<Mutex<Budget>>,
}

impl Shared {
    /// May a dial start now? The refusal is one plain sentence.
    pub fn check_dial(&self) -> Result<(), Refusal> {
        let mut b = lock(&self.budget);
        let now = clock(&b);
        b.check_dial(now)
    }

    /// The budget now.
    pub fn view(&self) -> BudgetView {
        let mut b = lock(&self.budget);
        let now = clock(&b);
        b.view(now)
    }
}

/// The actor's handle: feeds usage, saves it.
#[derive(Debug)]
pub struct Tracker {
    shared: Shared,
    connection: String,
    state_dir: PathBuf,
    last_feed: Option<Instant>,
    last_save: Option<Instant>,
}

impl Tracker {
    /// The budget of `connection` from `cfg` (`None`: it has none), with the usage saved
    /// in the state directory; a file that does not load is reported and usage starts
    /// from zero.
    pub fn load(cfg: &Config, connection: &str) -> Option<Self> {
        let bc = cfg.budgets.iter().find(|b| b.connection == connection)?;
        let policy = match bc.policy() {
            Ok(p) => p,
            Err(e) => {
                // The config was validated; this is a bug, not a reason to stop.
                tracing::error!(connection, error = %e, "budget ignored");
                return None;
            }
        };
        let dir = cfg.server.state_dir.clone();
        let usage = match crate::persist::load_usage(&dir, connection) {
            Ok(u) => u.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(
                    connection,
                    "budget usage not restored, counting from zero: {e}"
                );
                Usage::default()
            }
        };
        Some(Self {
            shared: Shared {
                budget: Arc::new(Mutex::new(
                    Budget::new(connection, policy, usage).with_zone(Zone::system()),
                )),
            },
            connection: connection.to_string(),
            state_dir: dir,
            last_feed: None,
            last_save: None,
        })
    }

    /// The handle dials are checked through.
    pub fn shared(&self) -> Shared {
        self.shared.clone()
    }

    /// Count the bytes of the last sample and, while `up`, the time since the last feed;
    /// answers the warning or hang-up due (only while up). Saves the usage when due.
    pub fn feed(
        &mut self,
        now: Instant,
        bytes_in: u64,
        bytes_out: u64,
        up: bool,
    ) -> Option<Notice> {
        let up_ms = match (up, self.last_feed) {
            (true, Some(t)) => {
                u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        self.last_feed = up.then_some(now);
        let (notice, dirty) = {
            let mut b = lock(&self.shared.budget);
            let clock = clock(&b);
            b.record(clock, bytes_in, bytes_out, up_ms);
            let n = if up { b.poll(clock) } else { None };
            let due = !up
                || self
                    .last_save
                    .is_none_or(|s| now.saturating_duration_since(s) >= SAVE_EVERY);
            (n, due && b.take_dirty())
        };
        if dirty {
            self.save(now);
        }
        notice
    }

    /// Write the usage now.
    pub fn save(&mut self, now: Instant) {
        let usage = lock(&self.shared.budget).usage().clone();
        self.last_save = Some(now);
        if let Err(e) = crate::persist::save_usage(&self.state_dir, &self.connection, &usage) {
            tracing::warn!(connection = %self.connection, error = %e, "cannot save budget usage");
        }
    }
}
