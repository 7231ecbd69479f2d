//! gRPC services: authenticate, authorize, translate to and from protobuf.
//!
//! Owns the shared server handle ([`ServerState`]), the single authorization table
//! ([`Rpc::access`]), the single error table ([`ApiError`] → [`tonic::Status`]) and
//! [`serve`]. One tonic service per protobuf service, each rpc body written once:
//! [`auth`] (Auth), [`dialer`] (Dialer), [`modems`] (Modems), [`nat`] (Nat); `convert`
//! is the one pb ⇄ domain translation. No business logic here: answers come from the
//! domain objects in [`ControlPlane`]. Protobuf types appear nowhere else in the server.

pub mod auth;
mod convert;
pub mod dialer;
mod limit;
pub mod modems;
pub mod nat;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::stream::BoxStream;
use masqdial_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Interceptor;
use tonic::transport::{Identity as TlsIdentity, Server, ServerTlsConfig};
use tonic::{Request, Status};

use crate::auth::{Auth, AuthError, Identity};
use crate::config::{Config, UserRole};
use crate::link::manager::{LinkError, LinkManager};
use crate::nat_control::{NatControl, NatError};
use crate::shutdown::Shutdown;
use nat_core::chains::ChainError;

pub use auth::AuthService;
pub use dialer::DialerService;
pub use modems::ModemsService;
pub use nat::NatService;

/// Most client connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;

/// How long in-flight calls get to finish after shutdown is signalled.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// An authenticated caller, as the services see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User name.
    pub user: String,
    /// Role.
    pub role: UserRole,
    /// Client address.
    pub peer: SocketAddr,
    /// Connections this caller may dial (all for admins).
    pub allowed: Vec<String>,
}

impl Caller {
    fn from_identity(id: Identity, peer: SocketAddr) -> Caller {
        Caller {
            user: id.user,
            role: id.role,
            peer,
            allowed: id.allowed,
        }
    }

    /// Whether the caller may dial / hang up `connection`.
    pub fn may_use(&self, connection: &str) -> bool {
        self.role == UserRole::Admin || self.allowed.iter().any(|c| c == connection)
    }
}

/// Error of an API operation; converted to a [`Status`] by one table (`From<ApiError>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No such connection, modem, chain or rule.
    #[error("{0}")]
    NotFound(String),
    /// Malformed request (bad rule spec, bad number).
    #[error("{0}")]
    InvalidArgument(String),
    /// Already exists (chain name).
    #[error("{0}")]
    AlreadyExists(String),
    /// Not possible in the current state (chain in use, link not up).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Out of modems or ports.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Temporarily unavailable (dataplane off, modem absent).
    #[error("{0}")]
    Unavailable(String),
    /// Authenticated but not allowed.
    #[error("{0}")]
    PermissionDenied(String),
    /// Not (or no longer) authenticated.
    #[error("{0}")]
    Unauthenticated(String),
    /// The rpc is not served (a server started without a control plane).
    #[error("{0}")]
    Unimplemented(String),
    /// Operation was cancelled (link hung up while dialling).
    #[error("{0}")]
    Cancelled(String),
    /// Bug or unexpected failure.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The standard "not implemented yet" answer for `rpc` (e.g. `"Dialer.Dial"`).
    pub fn unimplemented(rpc: &str) -> ApiError {
        ApiError::Unimplemented(format!("{rpc} is not implemented by this server yet"))
    }
}

impl From<ApiError> for Status {
    /// The one mapping from API errors to gRPC status codes.
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::InvalidArgument(m) => Status::invalid_argument(m),
            ApiError::AlreadyExists(m) => Status::already_exists(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Unavailable(m) => Status::unavailable(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::Unimplemented(m) => Status::unimplemented(m),
            ApiError::Cancelled(m) => Status::cancelled(m),
            ApiError::Internal(m) => Status::internal(m),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::BadCredentials
            | AuthError::MissingToken
            | AuthError::MalformedToken
            | AuthError::InvalidToken
            | AuthError::Expired => ApiError::Unauthenticated(e.to_string()),
            AuthError::PeerNotAllowed(_) => ApiError::PermissionDenied(e.to_string()),
            AuthError::Hash(_) => ApiError::Internal("authentication failed internally".into()),
        }
    }
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> ApiError {
        match e {
            LinkError::UnknownConnection(_) => ApiError::NotFound(e.to_string()),
            LinkError::Busy(_) | LinkError::Gone(_) => ApiError::Unavailable(e.to_string()),
            LinkError::NotHolder(_) | LinkError::NotActive(_) => {
                ApiError::FailedPrecondition(e.to_string())
            }
        }
    }
}

impl From<ChainError> for ApiError {
    fn from(e: ChainError) -> ApiError {
        match e {
            ChainError::NoChain | ChainError::NoTarget => ApiError::NotFound(e.to_string()),
            ChainError::ChainExists => ApiError::AlreadyExists(e.to_string()),
            ChainError::ChainNotEmpty | ChainError::ChainBusy => {
                ApiError::FailedPrecondition(e.to_string())
            }
            _ => ApiError::InvalidArgument(e.to_string()),
        }
    }
}

impl From<NatError> for ApiError {
    fn from(e: NatError) -> ApiError {
        match e {
            NatError::Chain(c) => c.into(),
            NatError::Invalid(m) => ApiError::InvalidArgument(m),
            NatError::Persist { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Status {
        ApiError::from(e).into()
    }
}

/// Every rpc behind a token, for the authorization table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Rpc {
    ListConnections,
    GetConnection,
    Dial,
    Hangup,
    HangupForce,
    Status,
    Who,
    WatchLinks,
    ListModems,
    ListMasq,
    WatchMasq,
    FreePorts,
    GetTimeouts,
    SetTimeouts,
    ListChains,
    AppendRule,
    InsertRule,
    ReplaceRule,
    DeleteRule,
    FlushChain,
    ZeroCounters,
    NewChain,
    DeleteChain,
    SetPolicy,
    CheckPacket,
    ApplyRuleset,
    SaveRuleset,
    RenderView,
    GetCounters,
}

/// Who may call an rpc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any logged-in user.
    AnyUser,
    /// A user whose allow-list names the target connection; admins always.
    AllowedConnection,
    /// Admins only.
    Admin,
}

impl Rpc {
    /// The authorization table: the one place that says who may call what.
    pub fn access(self) -> Access {
        use Rpc::*;
        match self {
            ListConnections | GetConnection | Status | Who | WatchLinks | ListModems | ListMasq
            | WatchMasq | FreePorts | GetTimeouts | ListChains | CheckPacket | SaveRuleset
            | RenderView | GetCounters => Access::AnyUser,
            Dial | Hangup => Access::AllowedConnection,
            HangupForce | SetTimeouts | AppendRule | InsertRule | ReplaceRule | DeleteRule
            | FlushChain | ZeroCounters | NewChain | DeleteChain | SetPolicy | ApplyRuleset => {
                Access::Admin
            }
        }
    }

    /// Check `caller` against the table; `connection` is the target of Dial/Hangup.
    pub fn authorize(self, caller: &Caller, connection: Option<&str>) -> Result<(), ApiError> {
        let ok = match self.access() {
            Access::AnyUser => true,
            Access::Admin => caller.role == UserRole::Admin,
            Access::AllowedConnection => connection.is_some_and(|c| caller.may_use(c)),
        };
        if ok {
            return Ok(());
        }
        Err(ApiError::PermissionDenied(
            match (self.access(), connection) {
                (Access::AllowedConnection, Some(c)) => {
                    format!("user `{}` may not use connection `{c}`", caller.user)
                }
                _ => format!("{self:?} requires the admin role"),
            },
        ))
    }
}

/// Server stream of dial progress.
pub type DialStream = BoxStream<'static, Result<pb::DialEvent, Status>>;
/// Server stream of link changes and traffic samples.
pub type LinkEventStream = BoxStream<'static, Result<pb::LinkEvent, Status>>;
/// Server stream of masquerade table changes.
pub type MasqEventStream = BoxStream<'static, Result<pb::MasqEvent, Status>>;

/// The domain objects behind Dialer, Modems and Nat.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// The link manager (Dialer, Modems).
    pub links: LinkManager,
    /// NAT control (Nat).
    pub nat: NatControl,
}

struct Shared {
    config: RwLock<Arc<Config>>,
    auth: Auth,
    control: Option<ControlPlane>,
    shutdown: Shutdown,
}

/// Cheap `Clone` handle on everything the rpc layer shares.
#[derive(Clone)]
pub struct ServerState {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState").finish_non_exhaustive()
    }
}

impl ServerState {
    /// Build from a config and the control plane (users and allow-list go to a fresh
    /// [`Auth`]). Without a control plane only Auth is served: Dialer, Modems and Nat
    /// answer `UNIMPLEMENTED` (no fake data).
    pub fn new(config: Config, control: Option<ControlPlane>) -> Result<ServerState, AuthError> {
        let auth = Auth::new(&config)?;
        Ok(ServerState::with_auth(config, auth, control))
    }

    /// Build with a prepared [`Auth`] (e.g. a custom throttle policy).
    pub fn with_auth(config: Config, auth: Auth, control: Option<ControlPlane>) -> ServerState {
        Self::with_shutdown(config, auth, control, Shutdown::new())
    }

    /// Build with the process's shutdown signal: when it fires, [`serve`] stops and open
    /// streams end; the tasks feeding streams are joined with the rest.
    pub fn with_shutdown(
        config: Config,
        auth: Auth,
        control: Option<ControlPlane>,
        shutdown: Shutdown,
    ) -> ServerState {
        ServerState {
            shared: Arc::new(Shared {
                config: RwLock::new(Arc::new(config)),
                auth,
                control,
                shutdown,
            }),
        }
    }

    /// The configuration in force (users/allow-list reflect the last reload).
    pub fn config(&self) -> Arc<Config> {
        // Poisoning cannot leave an Arc half-written; keep serving.
        self.shared
            .config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Users, sessions, throttle.
    pub fn auth(&self) -> &Auth {
        &self.shared.auth
    }

    /// The domain objects answering Dialer/Modems/Nat; `UNIMPLEMENTED` without them.
    pub fn control(&self) -> Result<&ControlPlane, ApiError> {
        self.shared.control.as_ref().ok_or_else(|| {
            ApiError::Unimplemented("this server runs without a link manager and NAT engine".into())
        })
    }

    /// Cancelled when the server shuts down; streams end when it fires.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.token()
    }

    /// Spawn a task feeding a stream, joined at shutdown.
    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shared.shutdown.spawn(task);
    }

    /// Apply a re-read config: users, allow-list and token lifetime only. Sessions of
    /// users that still exist survive; the rest of the config (modems, connections, nat)
    /// needs a restart, so a user naming a connection unknown to the running server is
    /// refused.
    pub fn reload(&self, new: &Config) -> Result<(), ApiError> {
        let current = self.config();
        let known = current.connection_names();
        for u in &new.users {
            if let Some(c) = u.connections.iter().find(|c| !known.contains(c)) {
                return Err(ApiError::FailedPrecondition(format!(
                    "user `{}` names connection `{c}` unknown to the running server; restart to add connections",
                    u.name
                )));
            }
        }
        let mut merged = (*current).clone();
        merged.users = new.users.clone();
        merged.server.allow = new.server.allow.clone();
        merged.server.token_ttl_s = new.server.token_ttl_s;
        self.auth().reload(&merged)?;
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(merged);
        Ok(())
    }

    /// Authenticate a request's bearer token at the current time.
    pub fn caller_of<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        let peer = peer_of(req)?;
        let token = bearer(req)?;
        let id = self
            .auth()
            .authenticate(token, std::time::SystemTime::now())?;
        Ok(Caller::from_identity(id, peer))
    }
}

/// The client address of a request (set by tonic for TCP and TLS connections).
pub fn peer_of<T>(req: &Request<T>) -> Result<SocketAddr, Status> {
    req.remote_addr()
        .ok_or_else(|| Status::permission_denied("client address unknown"))
}

fn bearer<T>(req: &Request<T>) -> Result<&str, AuthError> {
    let v = req
        .metadata()
        .get("authorization")
        .ok_or(AuthError::MissingToken)?;
    let v = v.to_str().map_err(|_| AuthError::MalformedToken)?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .ok_or(AuthError::MalformedToken)?;
    Ok(t.trim())
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

/// A server stream fed by a task through a channel, ending when the server shuts down.
fn stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<Result<T, Status>>,
    token: &CancellationToken,
) -> BoxStream<'static, Result<T, Status>> {
    use futures::StreamExt;
    tokio_stream::wrappers::ReceiverStream::new(rx)
        .take_until(token.clone().cancelled_owned())
        .boxed()
}

/// Server-wide interceptor: refuse peers outside the LAN allow-list, before anything else
/// (Login, health and reflection included).
#[derive(Clone)]
pub struct AllowListCheck(ServerState);

impl Interceptor for AllowListCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let peer = peer_of(&req)?;
        if self.0.auth().peer_allowed(peer.ip()) {
            Ok(req)
        } else {
            crate::metrics::global().refused("allow_list");
            tracing::warn!(%peer, "request from outside the allow-list refused");
            Err(AuthError::PeerNotAllowed(peer.ip()).into())
        }
    }
}

/// Per-service interceptor for Dialer/Modems/Nat: resolve the bearer token into a
/// [`Caller`] stored in the request extensions.
#[derive(Clone)]
pub struct Authenticate(ServerState);

impl Interceptor for Authenticate {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.0.caller_of(&req)?;
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

/// Error starting or running the gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// TLS certificate or key could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// tonic refused the configuration or the transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(String),
}

/// Serve Auth, Dialer, Modems, Nat, health and reflection on `listener` until `shutdown`
/// completes; then streams are ended (via [`ServerState::shutdown_token`]) and in-flight
/// calls get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    use masqdial_proto::v1::auth_server::AuthServer;
    use masqdial_proto::v1::dialer_server::DialerServer;
    use masqdial_proto::v1::modems_server::ModemsServer;
    use masqdial_proto::v1::nat_server::NatServer;

    let config = state.config();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuthServer<AuthService>>().await;
    health.set_serving::<DialerServer<DialerService>>().await;
    health.set_serving::<ModemsServer<ModemsService>>().await;
    health.set_serving::<NatServer<NatService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(masqdial_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let mut builder = Server::builder()
        .concurrency_limit_per_connection(64)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if let Some((cert, key)) = config.tls() {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|source| ServeError::TlsFile {
                path: p.to_path_buf(),
                source,
            })
        };
        let identity = TlsIdentity::from_pem(read(cert)?, read(key)?);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    let authn = Authenticate(state.clone());
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(masqdial_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let router = builder
        .layer(crate::metrics::RpcMetricsLayer)
        .layer(tonic::service::InterceptorLayer::new(AllowListCheck(
            state.clone(),
        )))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(AuthServer::new(AuthService::new(state.clone())))
        .add_service(DialerServer::with_interceptor(
            DialerService::new(state.clone()),
            authn.clone(),
        ))
        .add_service(ModemsServer::with_interceptor(
            ModemsService::new(state.clone()),
            authn.clone(),
        ))
        .add_service(NatServer::with_interceptor(
            NatService::new(state.clone()),
            authn,
        ));

    let token = state.shutdown_token();
    let stop = token.clone();
    let server = router
        .serve_with_incoming_shutdown(limit::incoming(listener, MAX_CONNECTIONS), async move {
            stop.cancelled().await
        });
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => return res.map_err(ServeError::from),
        () = shutdown => {}
        () = token.cancelled() => {}
    }
    tracing::info!("shutting down: ending streams, refusing new calls");
    health.set_not_serving::<AuthServer<AuthService>>().await;
    token.cancel();
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(res) => res.map_err(ServeError::from),
        Err(_) => {
            tracing::warn!("in-flight calls did not finish within {SHUTDOWN_GRACE:?}; closing");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: UserRole, allowed: &[&str]) -> Caller {
        Caller {
            user: "u".into(),
            role,
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_nat_mutation_and_forced_hangup_is_admin_only() {
        use Rpc::*;
        for rpc in [
            AppendRule,
            InsertRule,
            ReplaceRule,
            DeleteRule,
            FlushChain,
            ZeroCounters,
            NewChain,
            DeleteChain,
            SetPolicy,
            ApplyRuleset,
            SetTimeouts,
            HangupForce,
        ] {
            assert_eq!(rpc.access(), Access::Admin, "{rpc:?}");
            assert!(rpc
                .authorize(&caller(UserRole::User, &["isp1"]), Some("isp1"))
                .is_err());
            assert!(rpc
                .authorize(&caller(UserRole::Admin, &[]), Some("isp1"))
                .is_ok());
        }
    }

    #[test]
    fn dial_needs_the_connection_in_the_allow_list() {
        let user = caller(UserRole::User, &["isp1"]);
        assert!(Rpc::Dial.authorize(&user, Some("isp1")).is_ok());
        assert!(Rpc::Hangup.authorize(&user, Some("isp1")).is_ok());
        let e = Rpc::Dial.authorize(&user, Some("isp2"));
        assert!(matches!(e, Err(ApiError::PermissionDenied(_))));
        assert!(Rpc::Dial.authorize(&user, None).is_err());
        assert!(Rpc::Dial
            .authorize(&caller(UserRole::Admin, &[]), Some("isp2"))
            .is_ok());
    }

    #[test]
    fn error_table() {
        let code = |e: ApiError| Status::from(e).code();
        assert_eq!(
            code(ApiError::unimplemented("X.Y")),
            tonic::Code::Unimplemented
        );
        assert_eq!(
            code(AuthError::BadCredentials.into()),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            code(AuthError::Expired.into()),
            tonic::Code::Unauthenticated
        );
        let peer = std::net::IpAddr::from([8, 8, 8, 8]);
        assert_eq!(
            code(AuthError::PeerNotAllowed(peer).into()),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            code(AuthError::Hash("x".into()).into()),
            tonic::Code::Internal
        );
        assert_eq!(code(ApiError::NotFound("n".into())), tonic::Code::NotFound);
    }
}
