//! One shutdown signal for the whole server, handed down to every task (the mini-redis
//! shape): a cancellation token every long-running task watches, and a tracker that lets
//! the composition root join them all within a bound. Owns nothing else.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long mserver waits for every task (link hang-ups included) after the rpc layer
/// has stopped: longer than one session's own hang-up bound with the default modem settings
/// (PPP close 3 s + escape/ATH/ATZ against a modem that no longer answers ≈ 14.1 s + DTR
/// 0.5 s = 17.6 s), so SIGTERM leaves no modem on line.
pub const STOP_BOUND: Duration = Duration::from_secs(20);

/// Cheap `Clone` handle: the stop signal and the set of tasks that must end with it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// A fresh signal with no tasks.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token tasks watch (`token().cancelled().await`).
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Spawn a task that is joined by [`Shutdown::stop`]; it must end soon after the
    /// token fires.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// Fire the signal (idempotent).
    pub fn signal(&self) {
        self.token.cancel();
    }

    /// Fire the signal and wait until every tracked task has ended, at most `bound`.
    /// Answers whether they all did.
    pub async fn stop(&self, bound: Duration) -> bool {
        self.token.cancel();
        self.tasks.close();
        tokio::time::timeout(bound, self.tasks.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SIGTERM to exit: the rpc grace, then the task join; together below the systemd
    /// unit's TimeoutStopSec, so systemd never has to SIGKILL a half-hung-up modem.
    #[test]
    fn stop_bounds_fit_in_the_units_timeout_stop_sec() {
        let unit = include_str!("../../deploy/mserver.service");
        let secs: u64 = unit
            .lines()
            .find_map(|l| l.strip_prefix("TimeoutStopSec="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        assert_eq!(secs, 25);
        assert!(crate::rpc::SHUTDOWN_GRACE + STOP_BOUND < Duration::from_secs(secs));
    }
}
