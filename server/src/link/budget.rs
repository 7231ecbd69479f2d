//! The link manager's side of a budget: the shared [`Budget`] behind a lock (dials are
//! checked by the manager's handle, usage is fed by the link's actor), the wall clock and
//! the local time zone, and the usage file in the state directory. The decisions stay in
//! the sans-IO [`Budget`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::budget::{local_offset, Budget, BudgetView, Clock, Notice, Refusal, Usage, Zone};
use crate::config::Config;

/// Save the usage at most this often while it changes (and whenever the link is not up).
const SAVE_EVERY: Duration = Duration::from_secs(60);

fn lock(b: &Mutex<Budget>) -> MutexGuard<'_, Budget> {
    // Budget methods do not panic midway on valid state; take a poisoned lock over.
    b.lock().unwrap_or_else(|e| e.into_inner())
}

/// Monotonic milliseconds since the first budget reading of this process.
fn mono_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The wall clock as a budget [`Clock`] (the budget's fixed offset, else local time), read
/// with the monotonic clock so that the budget can tell a step (finding N11).
fn clock(b: &mut Budget) -> Clock {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Some(step) = b.observe(mono_ms(), unix) {
        tracing::warn!(
            by_s = step.by_s,
            "wall clock stepped against the monotonic clock: budget period changes wait until it has run steadily for {} min",
            crate::budget::SETTLE_MS / 60_000
        );
    }
    b.clock(unix, local_offset(unix))
}

/// Log what the budget noted (a period change held back, or believed).
fn log_note(b: &mut Budget) {
    if let Some(n) = b.take_note() {
        tracing::warn!("{n}");
    }
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
        let now = clock(&mut b);
        let r = b.check_dial(now);
        log_note(&mut b);
        r
    }

    /// The budget now.
    pub fn view(&self) -> BudgetView {
        let mut b = lock(&self.budget);
        let now = clock(&mut b);
        let v = b.view(now);
        log_note(&mut b);
        v
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
    /// in the state directory; when the newest file does not load, the last good one kept
    /// beside it (said at WARN); when neither does, usage starts from zero, said at ERROR
    /// naming both files (finding N11: never silently).
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
        let usage = match crate::persist::load_usage_or_last_good(&dir, connection) {
            Ok(l) => {
                if let Some(why) = &l.fell_back {
                    tracing::warn!(
                        connection,
                        "budget usage: the newest file is refused ({why}); using the last good copy {}",
                        crate::persist::usage_prev_path(&dir, connection).display()
                    );
                }
                l.usage.unwrap_or_default()
            }
            Err(e) => {
                tracing::error!(
                    connection,
                    "budget usage NOT restored, counting from zero (a spent quota is available again): {e}"
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
            let clock = clock(&mut b);
            b.record(clock, bytes_in, bytes_out, up_ms);
            let n = if up { b.poll(clock) } else { None };
            log_note(&mut b);
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
