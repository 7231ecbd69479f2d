//! The bounded pool of password checks, shared between client addresses in proportion
//! (security N3), not first come.
//!
//! argon2 costs ~19 MiB and a core each, so at most `permits` checks run at once, on
//! `permits` dedicated threads (not tokio's blocking pool: each new thread that frees a
//! 19 MiB argon2 block may keep it in its own malloc arena, so an unbounded set of threads
//! kept hundreds of MiB resident after a flood). At most `queue` more wait, for at most
//! [`VERIFY_QUEUE_WAIT`].
//!
//! Fairness: a freed slot goes first to a client that has proven itself (a valid session
//! of the user, or an address the user logged in from recently), then to the waiter whose
//! address has had the fewest checks in the current minute (first come among equals), so a
//! client that floods from many addresses cannot push a new address's login to the back of
//! its flood. When the queue is full, a newcomer whose address holds less than its share
//! (`queue` / addresses waiting) takes the place of the newest unproven waiter of the
//! address holding the most; otherwise it is refused, saying which limit refused it. A
//! proven waiter is never displaced.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::ApiError;

/// Longest wait for a password-check slot before answering RESOURCE_EXHAUSTED.
pub(super) const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Waiters per check slot.
const QUEUE_PER_PERMIT: usize = 32;

/// How long the per-address count of checks counts for fairness.
const FAIRNESS_WINDOW: Duration = Duration::from_secs(60);

/// Most addresses remembered for fairness (the count starts afresh beyond it).
const MAX_TRACKED: usize = 10_000;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
struct Waiter {
    addr: IpAddr,
    proven: bool,
    seq: u64,
    tx: oneshot::Sender<Permit>,
}

#[derive(Debug)]
struct Pool {
    free: usize,
    waiters: Vec<Waiter>,
    /// Checks granted per address in the current window.
    served: HashMap<IpAddr, u32>,
    window_start: Instant,
    seq: u64,
}

/// A password-check slot; given to the next waiter (or freed) on drop.
#[derive(Debug)]
pub(super) struct Permit {
    pool: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    pool: Mutex<Pool>,
    queue: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(p) = self.pool.take() {
            p.release();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(p: &mut Pool, addr: IpAddr, now: Instant) {
        if now.saturating_duration_since(p.window_start) >= FAIRNESS_WINDOW
            || p.served.len() >= MAX_TRACKED
        {
            p.served.clear();
            p.window_start = now;
        }
        *p.served.entry(addr).or_default() += 1;
    }

    /// A slot came free: hand it to the waiter whose address had the fewest checks.
    fn release(self: &Arc<Self>) {
        let now = Instant::now();
        let mut p = self.lock();
        loop {
            let next = p
                .waiters
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| {
                    (
                        !w.proven,
                        p.served.get(&w.addr).copied().unwrap_or(0),
                        w.seq,
                    )
                })
                .map(|(i, _)| i);
            let Some(i) = next else {
                p.free += 1;
                return;
            };
            let w = p.waiters.swap_remove(i);
            let permit = Permit {
                pool: Some(self.clone()),
            };
            match w.tx.send(permit) {
                Ok(()) => {
                    Self::count(&mut p, w.addr, now);
                    return;
                }
                Err(mut permit) => {
                    // The waiter gave up: disarm the permit (the slot is still in hand).
                    permit.pool = None;
                }
            }
        }
    }
}

/// The pool and its threads.
#[derive(Debug)]
pub(super) struct Verifiers {
    shared: Arc<Shared>,
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

impl Verifiers {
    /// `permits` checks at once (at least 1), `permits` × 32 waiting.
    pub(super) fn new(permits: usize) -> Verifiers {
        let permits = permits.max(1);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..permits {
            let rx = rx.clone();
            // Ends when the sender (this Verifiers) is dropped.
            let _ = std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
        }
        Verifiers {
            shared: Arc::new(Shared {
                pool: Mutex::new(Pool {
                    free: permits,
                    waiters: Vec::new(),
                    served: HashMap::new(),
                    window_start: Instant::now(),
                    seq: 0,
                }),
                queue: permits * QUEUE_PER_PERMIT,
            }),
            jobs: Mutex::new(tx),
        }
    }

    /// Run `f` on a password-check thread (holding `permit` until it is done).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        permit: Permit,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
            drop(permit);
        });
        let failed = || ApiError::Internal("password check failed".into());
        self.jobs
            .lock()
            .map_err(|_| failed())?
            .send(job)
            .map_err(|_| failed())?;
        rx.await.map_err(|_| failed())
    }

    /// Waiters now (for tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.shared.lock().waiters.len()
    }

    /// Waiters from `addr` now (for tests).
    #[cfg(test)]
    fn waiting_from(&self, addr: IpAddr) -> usize {
        self.shared
            .lock()
            .waiters
            .iter()
            .filter(|w| w.addr == addr)
            .count()
    }

    /// A check slot for a login from `addr` (`proven`: the client has proven itself): at
    /// once, after a fair wait, or refused.
    pub(super) async fn acquire(&self, addr: IpAddr, proven: bool) -> Result<Permit, ApiError> {
        let now = Instant::now();
        let rx = {
            let mut p = self.shared.lock();
            if p.free > 0 && p.waiters.is_empty() {
                p.free -= 1;
                Shared::count(&mut p, addr, now);
                return Ok(Permit {
                    pool: Some(self.shared.clone()),
                });
            }
            if p.waiters.len() >= self.shared.queue {
                self.make_room(&mut p, addr, proven)?;
            }
            let (tx, rx) = oneshot::channel();
            p.seq += 1;
            let seq = p.seq;
            p.waiters.push(Waiter {
                addr,
                proven,
                seq,
                tx,
            });
            rx
        };
        // Dropping `rx` (timeout or a cancelled request) leaves the waiter behind: release
        // skips it, and a permit sent meanwhile is dropped with it, freeing the slot.
        let waited = tokio::time::timeout(VERIFY_QUEUE_WAIT, rx).await;
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(ApiError::ResourceExhausted(
                "server busy checking passwords: the queue gave this login's place to another address; try again".into(),
            )),
            Err(_) => {
                self.shared.lock().waiters.retain(|w| !w.tx.is_closed());
                Err(ApiError::ResourceExhausted(format!(
                    "server busy checking passwords: no slot within {} s; try again",
                    VERIFY_QUEUE_WAIT.as_secs()
                )))
            }
        }
    }

    /// The queue is full: take the place of the newest waiter of the address holding the
    /// most places, if `addr` holds less than its share; else refuse.
    fn make_room(&self, p: &mut Pool, addr: IpAddr, proven: bool) -> Result<(), ApiError> {
        p.waiters.retain(|w| !w.tx.is_closed());
        if p.waiters.len() < self.shared.queue {
            return Ok(());
        }
        let mut held: HashMap<IpAddr, usize> = HashMap::new();
        for w in p.waiters.iter().filter(|w| !w.proven) {
            *held.entry(w.addr).or_default() += 1;
        }
        let mine = held.get(&addr).copied().unwrap_or(0);
        let addrs = held.len() + usize::from(mine == 0);
        let share = (self.shared.queue / addrs).max(1);
        // A proven newcomer may displace any unproven waiter.
        let mine = if proven { 0 } else { mine };
        let top = held
            .iter()
            .max_by_key(|(a, n)| (**n, p.served.get(*a).copied().unwrap_or(0)))
            .map(|(a, n)| (*a, *n));
        match top {
            Some((victim, n)) if (mine < share && n > mine + 1) || (mine == 0 && n >= 1) => {
                let newest = p
                    .waiters
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.addr == victim && !w.proven)
                    .max_by_key(|(_, w)| w.seq)
                    .map(|(i, _)| i);
                if let Some(i) = newest {
                    // Dropping its sender answers that waiter "busy".
                    p.waiters.swap_remove(i);
                    return Ok(());
                }
                Err(queue_full())
            }
            _ if mine >= share => Err(ApiError::ResourceExhausted(format!(
                "server busy checking passwords: this address already holds its share ({share}) of the queue; try again"
            ))),
            _ => Err(queue_full()),
        }
    }
}

fn queue_full() -> ApiError {
    ApiError::ResourceExhausted(
        "server busy checking passwords: the queue is full; try again".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    async fn settle(v: &Verifiers, n: usize) {
        for _ in 0..400 {
            if v.waiting() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(v.waiting(), n);
    }

    #[tokio::test]
    async fn password_checks_are_bounded_and_the_queue_is_short() {
        let v = Arc::new(Verifiers::new(1));
        let held = v
            .acquire(ip(1), false)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // 32 may wait (queue = 32 x permits), all from one address...
        let mut waiters = Vec::new();
        for _ in 0..32 {
            let v = v.clone();
            waiters.push(tokio::spawn(async move {
                v.acquire(ip(1), false).await.is_ok()
            }));
        }
        settle(&v, 32).await;
        // ...the next from that address is refused at once, saying why.
        match v.acquire(ip(1), false).await {
            Err(ApiError::ResourceExhausted(m)) => assert!(m.contains("share"), "{m}"),
            other => panic!("{other:?}"),
        }
        drop(held);
        // Each waiter is served in turn (holding its permit only briefly).
        for w in waiters {
            assert!(w.await.unwrap_or(false));
        }
        assert_eq!(v.waiting(), 0);
    }

    /// N3: a flood from one address fills the queue; a login from another address takes a
    /// flooder's place and is served next, not after the flood.
    #[tokio::test]
    async fn a_new_address_is_served_before_a_flood() {
        let v = Arc::new(Verifiers::new(1));
        let held = v
            .acquire(ip(9), false)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut flood = Vec::new();
        for i in 0..32 {
            let (v, order) = (v.clone(), order.clone());
            flood.push(tokio::spawn(async move {
                let p = v.acquire(ip(9), false).await;
                if let Ok(p) = p {
                    order.lock().unwrap_or_else(|p| p.into_inner()).push(i);
                    drop(p);
                    true
                } else {
                    false
                }
            }));
        }
        settle(&v, 32).await;
        let legit = {
            let (v, order) = (v.clone(), order.clone());
            tokio::spawn(async move {
                let p = v.acquire(ip(1), false).await;
                order.lock().unwrap_or_else(|p| p.into_inner()).push(1000);
                p.is_ok()
            })
        };
        for _ in 0..400 {
            if v.waiting_from(ip(1)) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(v.waiting_from(ip(1)), 1);
        drop(held);
        assert!(legit.await.unwrap_or(false), "the new address was refused");
        let mut refused = 0;
        for f in flood {
            if !f.await.unwrap_or(false) {
                refused += 1;
            }
        }
        assert_eq!(refused, 1, "one flooder gave its place");
        let order = order.lock().map(|o| o.clone()).unwrap_or_default();
        assert_eq!(order.first(), Some(&1000), "{order:?}");
    }
}
