//! One shutdown signal for the whole server, handed down to every task (the mini-redis
//! shape): a cancellation token every long-running task watches, and a tracker that lets
//! the composition root join them all within a bound. Owns nothing else.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
