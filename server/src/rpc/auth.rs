//! The `Auth` service: Login (no token needed; throttled), Logout, WhoAmI. Owns nothing
//! but the request handling; users, tokens and throttling live in [`crate::auth`].

use std::time::{Instant, SystemTime};

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_server;
use tonic::{Request, Response, Status};

use super::{convert, ServerState};

/// Longest user name looked at; longer names cannot exist (config limits names to 64).
const MAX_USER_LEN: usize = 128;

/// `Auth` service: Login (no token needed), Logout, WhoAmI.
#[derive(Debug, Clone)]
pub struct AuthService {
    state: ServerState,
}

impl AuthService {
    /// New service over the shared state.
    pub fn new(state: ServerState) -> Self {
        AuthService { state }
    }
}

#[tonic::async_trait]
impl auth_server::Auth for AuthService {
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let peer = super::peer_of(&req)?;
        let pb::LoginRequest { mut user, password } = req.into_inner();
        if user.len() > MAX_USER_LEN {
            // Cannot name a real user; truncating keeps throttle keys and logs small.
            let cut = (0..=MAX_USER_LEN)
                .rev()
                .find(|&i| user.is_char_boundary(i))
                .unwrap_or(0);
            user.truncate(cut);
        }
        let auth = self.state.auth();
        let delay = auth.begin_attempt(&user, peer.ip(), Instant::now());
        if !delay.is_zero() {
            // Applied before answering, whatever the outcome.
            tokio::time::sleep(delay).await;
        }
        let state = self.state.clone();
        let u = user.clone();
        let verdict = tokio::task::spawn_blocking(move || state.auth().verify(&u, &password))
            .await
            .map_err(|_| Status::internal("password check failed"))?;
        match verdict {
            Ok(()) => {
                auth.record_success(&user, peer.ip());
                let issued = auth.issue_token(&user, SystemTime::now())?;
                tracing::info!(user = ?user, %peer, role = %issued.role, "login");
                Ok(Response::new(pb::LoginResponse {
                    token: issued.token,
                    expires_at: Some(issued.expires_at.into()),
                    role: convert::role(issued.role),
                }))
            }
            Err(e) => {
                // Already counted by begin_attempt. An unknown name may be a password typed
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

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let caller = self.state.caller_of(&req)?;
        let token = super::bearer(&req)?;
        self.state.auth().logout(token)?;
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
}
