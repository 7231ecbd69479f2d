//! The `Auth` service: Login (no token needed; throttled), Logout, WhoAmI. Owns nothing
//! but the request handling; users, tokens and throttling live in [`crate::auth`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_server;
use tonic::{Request, Response, Status};

use super::Rpc;
use super::{convert, ApiError, ServerState};
use crate::auth::{Attempt, IssuedToken, RevokeTarget};
use std::net::SocketAddr;

/// Longest user name looked at; longer names cannot exist (config limits names to 64).
const MAX_USER_LEN: usize = 128;

/// Longest wait for a password-check slot before answering RESOURCE_EXHAUSTED.
const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The global bound on password checks: argon2 costs ~19 MiB and a core each, so at most
/// `permits` run at once and at most `queue` more wait; beyond that a login is refused.
///
/// The checks run on `permits` dedicated threads, not on tokio's blocking pool: each new
/// thread that frees a 19 MiB argon2 block may keep it in its own malloc arena, so an
/// unbounded set of threads kept hundreds of MiB resident after a flood.
#[derive(Debug)]
pub(super) struct Verifiers {
    slots: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Counts one waiter for as long as it lives (cancel-safe).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Verifiers {
    fn new(permits: usize) -> Verifiers {
        let permits = permits.max(1);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
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
            slots: Arc::new(tokio::sync::Semaphore::new(permits)),
            waiting: AtomicUsize::new(0),
            queue: permits * 2,
            jobs: std::sync::Mutex::new(tx),
        }
    }

    /// Run `f` on a password-check thread (holding `permit` until it is done).
    async fn run<T: Send + 'static>(
        &self,
        permit: tokio::sync::OwnedSemaphorePermit,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
            drop(permit);
        });
        self.jobs
            .lock()
            .map_err(|_| ApiError::Internal("password check failed".into()))?
            .send(job)
            .map_err(|_| ApiError::Internal("password check failed".into()))?;
        rx.await
            .map_err(|_| ApiError::Internal("password check failed".into()))
    }

    async fn acquire(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let busy =
            || ApiError::ResourceExhausted("server busy checking passwords; try again".into());
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(VERIFY_QUEUE_WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy()),
        }
    }
}

/// An admitted login attempt; if the request is dropped mid-way it ends as a failure.
struct AttemptGuard {
    state: ServerState,
    attempt: Option<Attempt>,
}

impl AttemptGuard {
    fn end(mut self, refund: bool) {
        if let Some(a) = self.attempt.take() {
            self.state.auth().end_attempt(&a, refund);
        }
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if let Some(a) = self.attempt.take() {
            self.state.auth().end_attempt(&a, false);
        }
    }
}

/// `Auth` service: Login (no token needed), Logout, WhoAmI.
#[derive(Debug, Clone)]
pub struct AuthService {
    state: ServerState,
    verifiers: Arc<Verifiers>,
}

impl AuthService {
    /// New service over the shared state; password checks are bounded by the core count, in
    /// one pool per [`ServerState`] (shared by the gRPC Login and the web page's login).
    pub fn new(state: ServerState) -> Self {
        let verifiers = state
            .shared
            .verifiers
            .get_or_init(|| {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                Arc::new(Verifiers::new(cores))
            })
            .clone();
        AuthService { state, verifiers }
    }

    /// New service with at most `permits` password checks at once (and twice that queued).
    pub fn with_verifiers(state: ServerState, permits: usize) -> Self {
        AuthService {
            state,
            verifiers: Arc::new(Verifiers::new(permits)),
        }
    }
}

impl AuthService {
    /// The one login check (gRPC Login and the web page's form): throttle, bounded argon2
    /// check, then a fresh server session for `user` from `peer`.
    pub async fn check_login(
        &self,
        mut user: String,
        password: String,
        peer: SocketAddr,
    ) -> Result<IssuedToken, ApiError> {
        if user.len() > MAX_USER_LEN {
            // Cannot name a real user; truncating keeps throttle keys and logs small.
            let cut = (0..=MAX_USER_LEN)
                .rev()
                .find(|&i| user.is_char_boundary(i))
                .unwrap_or(0);
            user.truncate(cut);
        }
        let auth = self.state.auth();
        // Refused, never slept on: parallel guesses cannot wait side by side.
        let attempt = auth
            .begin_attempt(&user, peer.ip(), Instant::now())
            .map_err(|e| {
                tracing::debug!(%peer, "login refused: {e}");
                ApiError::ResourceExhausted(e.to_string())
            })?;
        let guard = AttemptGuard {
            state: self.state.clone(),
            attempt: Some(attempt),
        };
        let permit = match self.verifiers.acquire().await {
            Ok(p) => p,
            Err(e) => {
                // Never checked: give the attempt back.
                guard.end(true);
                return Err(e);
            }
        };
        let state = self.state.clone();
        let u = user.clone();
        // The permit moves into the job: it is held while argon2 runs, even if this request
        // is cancelled meanwhile.
        let verdict = self
            .verifiers
            .run(permit, move || state.auth().verify(&u, &password))
            .await?;
        guard.end(verdict.is_ok());
        match verdict {
            Ok(()) => {
                let issued = auth.issue_token_to(&user, Some(peer), SystemTime::now())?;
                tracing::info!(user = ?user, %peer, role = %issued.role, "login");
                Ok(issued)
            }
            Err(e) => {
                // Counted by begin_attempt. An unknown name may be a password typed
                // into the wrong field, so it is not logged.
                let shown = if auth.knows(&user) {
                    user.as_str()
                } else {
                    "<unknown user>"
                };
                tracing::warn!(user = ?shown, %peer, "login failed");
                Err(e.into())
            }
        }
    }
}

#[tonic::async_trait]
impl auth_server::Auth for AuthService {
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let peer = super::peer_of(&req)?;
        let pb::LoginRequest { user, password } = req.into_inner();
        let issued = self.check_login(user, password, peer).await?;
        Ok(Response::new(pb::LoginResponse {
            token: issued.token,
            expires_at: Some(issued.expires_at.into()),
            role: convert::role(issued.role),
        }))
    }

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let caller = self.state.caller_of(&req)?;
        let token = super::bearer(&req)?;
        self.state.auth().logout(token)?;
        self.state.recheck_streams();
        tracing::info!(user = %caller.user, peer = %caller.peer, "logout");
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let peer = super::peer_of(&req)?;
        let token = super::bearer(&req)?;
        let id = self.state.auth().authenticate(token, SystemTime::now())?;
        Ok(Response::new(pb::WhoAmIResponse {
            user: id.user,
            role: convert::role(id.role),
            allowed_connections: id.allowed,
            peer: peer.to_string(),
            expires_at: Some(id.expires_at.into()),
        }))
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let caller = self.state.caller_of(&req)?;
        Rpc::ListSessions.authorize(&caller, None)?;
        let sessions = self
            .state
            .auth()
            .sessions(SystemTime::now())
            .into_iter()
            .map(|s| pb::Session {
                id: s.id,
                user: s.user,
                role: convert::role(s.role),
                peer: s.peer.map(|p| p.to_string()).unwrap_or_default(),
                issued_at: Some(s.issued_at.into()),
                expires_at: Some(s.expires_at.into()),
            })
            .collect();
        Ok(Response::new(pb::ListSessionsResponse { sessions }))
    }

    async fn revoke_session(
        &self,
        req: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        let caller = self.state.caller_of(&req)?;
        Rpc::RevokeSession.authorize(&caller, None)?;
        let m = req.into_inner();
        let target = match (m.user.is_empty(), m.id.is_empty()) {
            (false, true) => RevokeTarget::User(super::bounded_name(&m.user)?),
            (true, false) => RevokeTarget::Id(super::bounded_name(&m.id)?),
            _ => {
                return Err(ApiError::InvalidArgument(
                    "give exactly one of a user name and a session id".into(),
                )
                .into())
            }
        };
        let n = self.state.auth().revoke(&target);
        if n == 0 {
            let what = match &target {
                RevokeTarget::User(u) => format!("user `{u}` has no live session"),
                RevokeTarget::Id(id) => format!("no live session `{id}`"),
            };
            return Err(ApiError::NotFound(what).into());
        }
        let ended = self.state.recheck_streams();
        tracing::info!(admin = %caller.user, peer = %caller.peer, ?target, revoked = n, streams = ended, "sessions revoked");
        Ok(Response::new(pb::RevokeSessionResponse {
            revoked: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_checks_are_bounded_and_the_queue_is_short() {
        let v = Arc::new(Verifiers::new(1));
        let held = v.acquire().await.unwrap_or_else(|e| panic!("{e}"));
        // Two may wait (queue = 2 x permits)...
        let w1 = tokio::spawn({
            let v = v.clone();
            async move { v.acquire().await.is_ok() }
        });
        let w2 = tokio::spawn({
            let v = v.clone();
            async move { v.acquire().await.is_ok() }
        });
        for _ in 0..200 {
            if v.waiting.load(Ordering::Acquire) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(v.waiting.load(Ordering::Acquire), 2);
        // ...the next one is refused at once.
        assert!(matches!(
            v.acquire().await,
            Err(ApiError::ResourceExhausted(_))
        ));
        drop(held);
        assert!(w1.await.unwrap_or(false));
        assert!(w2.await.unwrap_or(false));
        assert_eq!(v.waiting.load(Ordering::Acquire), 0);
    }
}
