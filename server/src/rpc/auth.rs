//! The `Auth` service: Login (no token needed; throttled), Logout, WhoAmI. Owns nothing
//! but the request handling; users, tokens and throttling live in [`crate::auth`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_server;
use tonic::{Request, Response, Status};

use super::limit::ConnState;
use super::limit::RateLimitedLog;
use super::verifiers::Verifiers;
use super::Rpc;
use super::{convert, ApiError, ServerState};
use crate::auth::{Attempt, IssuedToken, RevokeTarget};
use std::net::SocketAddr;

/// Longest user name looked at; longer names cannot exist (config limits names to 64).
const MAX_USER_LEN: usize = 128;

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

    /// A successful login: given back, and its address proven for the user.
    fn succeeded(mut self) {
        if let Some(a) = self.attempt.take() {
            self.state.auth().login_succeeded(&a, Instant::now());
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
    /// Logins refused before a password check (throttle or busy pool), rate-limited.
    log_refused: Arc<RateLimitedLog>,
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
        AuthService {
            state,
            verifiers,
            log_refused: Arc::new(RateLimitedLog::new(
                "logins refused before a password check",
                Duration::from_secs(10),
            )),
        }
    }

    /// New service with at most `permits` password checks at once (and 32 times that
    /// queued, shared between addresses in proportion).
    pub fn with_verifiers(state: ServerState, permits: usize) -> Self {
        AuthService {
            state,
            verifiers: Arc::new(Verifiers::new(permits)),
            log_refused: Arc::new(RateLimitedLog::new(
                "logins refused before a password check",
                Duration::from_secs(10),
            )),
        }
    }
}

impl AuthService {
    /// The one login check (gRPC Login and the web page's form): throttle, bounded argon2
    /// check, then a fresh server session for `user` from `peer`. `session_user`: the user
    /// of a valid session the client presented (it has proven itself: N3); `conn`: the
    /// gRPC connection, which earns the long idle limit on success (N2).
    pub(crate) async fn check_login_with(
        &self,
        mut user: String,
        password: String,
        peer: SocketAddr,
        session_user: Option<String>,
        conn: Option<Arc<ConnState>>,
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
        // Names that are not users may be passwords typed into the wrong field: not logged.
        let shown = if auth.knows(&user) {
            user.as_str()
        } else {
            "<unknown user>"
        };
        // Refused, never slept on: parallel guesses cannot wait side by side. The answer
        // and the log say which limit refused.
        let has_session = session_user.as_deref() == Some(user.as_str());
        let attempt = auth
            .begin_attempt_proven(&user, peer.ip(), has_session, Instant::now())
            .map_err(|e| {
                self.log_refused
                    .hit(&format_args!("{e} (user {shown:?}, from {peer})"));
                ApiError::ResourceExhausted(e.to_string())
            })?;
        let guard = AttemptGuard {
            state: self.state.clone(),
            attempt: Some(attempt),
        };
        let proven = has_session || auth.known_address(&user, peer.ip(), Instant::now());
        let permit = match self.verifiers.acquire(peer.ip(), proven).await {
            Ok(p) => p,
            Err(e) => {
                // Never checked: give the attempt back.
                guard.end(true);
                self.log_refused
                    .hit(&format_args!("{e} (user {shown:?}, from {peer})"));
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
        if verdict.is_ok() {
            guard.succeeded();
        } else {
            guard.end(false);
        }
        match verdict {
            Ok(()) => {
                let issued = auth.issue_token_to(&user, Some(peer), SystemTime::now())?;
                // The connection has proven itself: the long idle limit, out of the
                // unauthenticated share (N2).
                if let Some(c) = conn {
                    c.authenticated();
                }
                tracing::info!(user = ?user, %peer, role = %issued.role, "login");
                Ok(issued)
            }
            Err(e) => {
                // Counted by begin_attempt.
                tracing::warn!(user = ?shown, %peer, "login failed");
                Err(e.into())
            }
        }
    }

    /// `check_login_with` for a client that presented no session
    /// and has no gRPC connection (the web page's form).
    pub async fn check_login(
        &self,
        user: String,
        password: String,
        peer: SocketAddr,
    ) -> Result<IssuedToken, ApiError> {
        self.check_login_with(user, password, peer, None, None)
            .await
    }
}

#[tonic::async_trait]
impl auth_server::Auth for AuthService {
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let peer = super::peer_of(&req)?;
        let conn = super::access::conn_of(&req).map(|c| c.conn.clone());
        // Waiting in the verifier queue is not idleness: a flood of other connections must
        // not evict this one before its answer goes out (seen under `login-load flood`).
        let _busy = conn.as_ref().map(|c| c.busy());
        // A client presenting a valid session proves itself (N3): whose, checked inside.
        let session_user = super::bearer(&req)
            .ok()
            .and_then(|t| self.state.auth().authenticate(t, SystemTime::now()).ok())
            .map(|id| id.user);
        let pb::LoginRequest { user, password } = req.into_inner();
        let issued = self
            .check_login_with(user, password, peer, session_user, conn)
            .await?;
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
