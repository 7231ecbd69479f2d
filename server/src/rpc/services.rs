//! The four tonic service implementations: authenticate (Auth), authorize via
//! [`Rpc::authorize`], then delegate to the [`Backend`]. No business logic here.

use std::time::{Instant, SystemTime};

use futures::StreamExt;
use masqdial_proto::v1 as pb;
use masqdial_proto::v1::{auth_server, dialer_server, modems_server, nat_server};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{ApiError, Backend, Caller, Rpc, ServerState};
use crate::config::Role;

/// Longest user name looked at; longer names cannot exist (config limits names to 64).
const MAX_USER_LEN: usize = 128;

fn role_pb(role: Role) -> i32 {
    match role {
        Role::User => pb::Role::User as i32,
        Role::Admin => pb::Role::Admin as i32,
    }
}

/// The caller the `Authenticate` interceptor stored in the request.
fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("not authenticated"))
}

/// Authorize `rpc` for the caller of `req` and split off the message.
fn begin<T>(req: Request<T>, rpc: Rpc, connection: Option<&str>) -> Result<(Caller, T), Status> {
    let caller = caller(&req)?;
    rpc.authorize(&caller, connection)?;
    Ok((caller, req.into_inner()))
}

/// End a backend stream when the server shuts down.
fn until_shutdown<T: Send + 'static>(
    s: futures::stream::BoxStream<'static, Result<T, Status>>,
    token: CancellationToken,
) -> futures::stream::BoxStream<'static, Result<T, Status>> {
    s.take_until(token.cancelled_owned()).boxed()
}

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
                    role: role_pb(issued.role),
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
            role: role_pb(id.role),
            allowed_connections: id.allowed,
            peer: peer.to_string(),
            expires_at: Some(id.expires_at.into()),
        }))
    }
}

/// `Dialer` service.
#[derive(Debug, Clone)]
pub struct DialerService {
    state: ServerState,
}

impl DialerService {
    /// New service over the shared state.
    pub fn new(state: ServerState) -> Self {
        DialerService { state }
    }

    fn backend(&self) -> &dyn Backend {
        self.state.backend().as_ref()
    }

    fn known(&self, name: &str) -> Result<(), Status> {
        if self
            .state
            .config()
            .connections
            .iter()
            .any(|c| c.name == name)
        {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("no connection named `{name}`")).into())
        }
    }
}

#[tonic::async_trait]
impl dialer_server::Dialer for DialerService {
    async fn list_connections(
        &self,
        req: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let (c, m) = begin(req, Rpc::ListConnections, None)?;
        Ok(Response::new(self.backend().list_connections(&c, m).await?))
    }

    async fn get_connection(
        &self,
        req: Request<pb::GetConnectionRequest>,
    ) -> Result<Response<pb::ConnectionInfo>, Status> {
        let (c, m) = begin(req, Rpc::GetConnection, None)?;
        self.known(&m.name)?;
        Ok(Response::new(self.backend().get_connection(&c, m).await?))
    }

    type DialStream = super::DialStream;

    async fn dial(
        &self,
        req: Request<pb::DialRequest>,
    ) -> Result<Response<Self::DialStream>, Status> {
        let name = req.get_ref().name.clone();
        let (c, m) = begin(req, Rpc::Dial, Some(&name))?;
        self.known(&name)?;
        tracing::info!(user = %c.user, peer = %c.peer, connection = %name, "dial");
        let s = self.backend().dial(&c, m).await?;
        Ok(Response::new(until_shutdown(
            s,
            self.state.shutdown_token(),
        )))
    }

    async fn hangup(
        &self,
        req: Request<pb::HangupRequest>,
    ) -> Result<Response<pb::HangupResponse>, Status> {
        let name = req.get_ref().name.clone();
        let force = req.get_ref().force;
        let caller = caller(&req)?;
        Rpc::Hangup.authorize(&caller, Some(&name))?;
        if force {
            Rpc::HangupForce.authorize(&caller, Some(&name))?;
        }
        self.known(&name)?;
        tracing::info!(user = %caller.user, peer = %caller.peer, connection = %name, force, "hangup");
        let m = req.into_inner();
        Ok(Response::new(self.backend().hangup(&caller, m).await?))
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let (c, m) = begin(req, Rpc::Status, None)?;
        if !m.name.is_empty() {
            self.known(&m.name)?;
        }
        Ok(Response::new(self.backend().status(&c, m).await?))
    }

    async fn who(&self, req: Request<pb::WhoRequest>) -> Result<Response<pb::WhoResponse>, Status> {
        let (c, m) = begin(req, Rpc::Who, None)?;
        Ok(Response::new(self.backend().who(&c, m).await?))
    }

    type WatchLinksStream = super::LinkEventStream;

    async fn watch_links(
        &self,
        req: Request<pb::WatchLinksRequest>,
    ) -> Result<Response<Self::WatchLinksStream>, Status> {
        let (c, m) = begin(req, Rpc::WatchLinks, None)?;
        let s = self.backend().watch_links(&c, m).await?;
        Ok(Response::new(until_shutdown(
            s,
            self.state.shutdown_token(),
        )))
    }
}

/// `Modems` service.
#[derive(Debug, Clone)]
pub struct ModemsService {
    state: ServerState,
}

impl ModemsService {
    /// New service over the shared state.
    pub fn new(state: ServerState) -> Self {
        ModemsService { state }
    }
}

#[tonic::async_trait]
impl modems_server::Modems for ModemsService {
    async fn list_modems(
        &self,
        req: Request<pb::ListModemsRequest>,
    ) -> Result<Response<pb::ListModemsResponse>, Status> {
        let (c, m) = begin(req, Rpc::ListModems, None)?;
        Ok(Response::new(
            self.state.backend().list_modems(&c, m).await?,
        ))
    }
}

/// `Nat` service.
#[derive(Debug, Clone)]
pub struct NatService {
    state: ServerState,
}

impl NatService {
    /// New service over the shared state.
    pub fn new(state: ServerState) -> Self {
        NatService { state }
    }

    fn backend(&self) -> &dyn Backend {
        self.state.backend().as_ref()
    }
}

/// Log an admin change (who, from where, what) after authorization.
fn audit(c: &Caller, what: Rpc) {
    tracing::info!(user = %c.user, peer = %c.peer, rpc = ?what, "nat change");
}

#[tonic::async_trait]
impl nat_server::Nat for NatService {
    async fn list_masq(
        &self,
        req: Request<pb::ListMasqRequest>,
    ) -> Result<Response<pb::ListMasqResponse>, Status> {
        let (c, m) = begin(req, Rpc::ListMasq, None)?;
        Ok(Response::new(self.backend().list_masq(&c, m).await?))
    }

    type WatchMasqStream = super::MasqEventStream;

    async fn watch_masq(
        &self,
        req: Request<pb::WatchMasqRequest>,
    ) -> Result<Response<Self::WatchMasqStream>, Status> {
        let (c, m) = begin(req, Rpc::WatchMasq, None)?;
        let s = self.backend().watch_masq(&c, m).await?;
        Ok(Response::new(until_shutdown(
            s,
            self.state.shutdown_token(),
        )))
    }

    async fn free_ports(
        &self,
        req: Request<pb::FreePortsRequest>,
    ) -> Result<Response<pb::FreePortsResponse>, Status> {
        let (c, m) = begin(req, Rpc::FreePorts, None)?;
        Ok(Response::new(self.backend().free_ports(&c, m).await?))
    }

    async fn get_timeouts(
        &self,
        req: Request<pb::GetTimeoutsRequest>,
    ) -> Result<Response<pb::Timeouts>, Status> {
        let (c, m) = begin(req, Rpc::GetTimeouts, None)?;
        Ok(Response::new(self.backend().get_timeouts(&c, m).await?))
    }

    async fn set_timeouts(
        &self,
        req: Request<pb::Timeouts>,
    ) -> Result<Response<pb::Timeouts>, Status> {
        let (c, m) = begin(req, Rpc::SetTimeouts, None)?;
        audit(&c, Rpc::SetTimeouts);
        Ok(Response::new(self.backend().set_timeouts(&c, m).await?))
    }

    async fn list_chains(
        &self,
        req: Request<pb::ListChainsRequest>,
    ) -> Result<Response<pb::ListChainsResponse>, Status> {
        let (c, m) = begin(req, Rpc::ListChains, None)?;
        Ok(Response::new(self.backend().list_chains(&c, m).await?))
    }

    async fn append_rule(
        &self,
        req: Request<pb::AppendRuleRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::AppendRule, None)?;
        audit(&c, Rpc::AppendRule);
        Ok(Response::new(self.backend().append_rule(&c, m).await?))
    }

    async fn insert_rule(
        &self,
        req: Request<pb::InsertRuleRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::InsertRule, None)?;
        audit(&c, Rpc::InsertRule);
        Ok(Response::new(self.backend().insert_rule(&c, m).await?))
    }

    async fn replace_rule(
        &self,
        req: Request<pb::ReplaceRuleRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::ReplaceRule, None)?;
        audit(&c, Rpc::ReplaceRule);
        Ok(Response::new(self.backend().replace_rule(&c, m).await?))
    }

    async fn delete_rule(
        &self,
        req: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::DeleteRule, None)?;
        audit(&c, Rpc::DeleteRule);
        Ok(Response::new(self.backend().delete_rule(&c, m).await?))
    }

    async fn flush_chain(
        &self,
        req: Request<pb::FlushChainRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::FlushChain, None)?;
        audit(&c, Rpc::FlushChain);
        Ok(Response::new(self.backend().flush_chain(&c, m).await?))
    }

    async fn zero_counters(
        &self,
        req: Request<pb::ZeroCountersRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::ZeroCounters, None)?;
        audit(&c, Rpc::ZeroCounters);
        Ok(Response::new(self.backend().zero_counters(&c, m).await?))
    }

    async fn new_chain(
        &self,
        req: Request<pb::NewChainRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::NewChain, None)?;
        audit(&c, Rpc::NewChain);
        Ok(Response::new(self.backend().new_chain(&c, m).await?))
    }

    async fn delete_chain(
        &self,
        req: Request<pb::DeleteChainRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::DeleteChain, None)?;
        audit(&c, Rpc::DeleteChain);
        Ok(Response::new(self.backend().delete_chain(&c, m).await?))
    }

    async fn set_policy(
        &self,
        req: Request<pb::SetPolicyRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, Rpc::SetPolicy, None)?;
        audit(&c, Rpc::SetPolicy);
        Ok(Response::new(self.backend().set_policy(&c, m).await?))
    }

    async fn check_packet(
        &self,
        req: Request<pb::CheckPacketRequest>,
    ) -> Result<Response<pb::CheckPacketResponse>, Status> {
        let (c, m) = begin(req, Rpc::CheckPacket, None)?;
        Ok(Response::new(self.backend().check_packet(&c, m).await?))
    }

    async fn apply_ruleset(
        &self,
        req: Request<pb::ApplyRulesetRequest>,
    ) -> Result<Response<pb::ApplyRulesetResponse>, Status> {
        let (c, m) = begin(req, Rpc::ApplyRuleset, None)?;
        audit(&c, Rpc::ApplyRuleset);
        Ok(Response::new(self.backend().apply_ruleset(&c, m).await?))
    }

    async fn save_ruleset(
        &self,
        req: Request<pb::SaveRulesetRequest>,
    ) -> Result<Response<pb::SaveRulesetResponse>, Status> {
        let (c, m) = begin(req, Rpc::SaveRuleset, None)?;
        Ok(Response::new(self.backend().save_ruleset(&c, m).await?))
    }

    async fn render_view(
        &self,
        req: Request<pb::RenderViewRequest>,
    ) -> Result<Response<pb::RenderViewResponse>, Status> {
        let (c, m) = begin(req, Rpc::RenderView, None)?;
        Ok(Response::new(self.backend().render_view(&c, m).await?))
    }

    async fn get_counters(
        &self,
        req: Request<pb::GetCountersRequest>,
    ) -> Result<Response<pb::GetCountersResponse>, Status> {
        let (c, m) = begin(req, Rpc::GetCounters, None)?;
        Ok(Response::new(self.backend().get_counters(&c, m).await?))
    }
}
