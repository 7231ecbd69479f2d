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
pub mod limit;
pub mod modems;
pub mod nat;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

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
use limit::{ConnInfo, ConnState, Gate, RateLimitedLog};
pub use limit::{ConnStats, Limits};
pub use modems::ModemsService;
pub use nat::NatService;

/// How long in-flight calls get to finish after shutdown is signalled (streams end at
/// once). With [`crate::shutdown::STOP_BOUND`] it stays below the unit's TimeoutStopSec.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

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
    /// Id of the session (token) the request came with.
    pub session: String,
    /// When that token expires.
    pub expires_at: SystemTime,
}

impl Caller {
    fn from_identity(id: Identity, peer: SocketAddr) -> Caller {
        Caller {
            user: id.user,
            role: id.role,
            peer,
            allowed: id.allowed,
            session: id.session,
            expires_at: id.expires_at,
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

/// Longest error message sent to a client; longer ones (which can only come from echoed
/// input) are cut, so a 3 MiB name never comes back in grpc-message.
pub const MAX_ERROR_LEN: usize = 512;

fn cap_message(m: String) -> String {
    if m.len() <= MAX_ERROR_LEN {
        return m;
    }
    format!("{}… ({} bytes cut)", truncated(&m, MAX_ERROR_LEN), m.len())
}

impl From<ApiError> for Status {
    /// The one mapping from API errors to gRPC status codes.
    fn from(e: ApiError) -> Status {
        let e = match e {
            ApiError::NotFound(m) => ApiError::NotFound(cap_message(m)),
            ApiError::InvalidArgument(m) => ApiError::InvalidArgument(cap_message(m)),
            ApiError::AlreadyExists(m) => ApiError::AlreadyExists(cap_message(m)),
            ApiError::FailedPrecondition(m) => ApiError::FailedPrecondition(cap_message(m)),
            ApiError::PermissionDenied(m) => ApiError::PermissionDenied(cap_message(m)),
            other => other,
        };
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
            LinkError::NoModem { .. } => ApiError::ResourceExhausted(e.to_string()),
            LinkError::Budget(r) => match r.limit {
                crate::budget::Limit::Window => ApiError::FailedPrecondition(r.message),
                _ => ApiError::ResourceExhausted(r.message),
            },
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
            NatError::TooMany(m) => ApiError::ResourceExhausted(m),
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
    PortFw,
    ListSessions,
    RevokeSession,
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
            | FlushChain | ZeroCounters | NewChain | DeleteChain | SetPolicy | ApplyRuleset
            | PortFw | ListSessions | RevokeSession => Access::Admin,
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

/// One open server stream, re-checked when sessions or the allow-list change.
struct StreamEntry {
    user: String,
    session: String,
    peer: IpAddr,
    cancel: CancellationToken,
}

struct Shared {
    config: RwLock<Arc<Config>>,
    auth: Auth,
    control: Option<ControlPlane>,
    shutdown: Shutdown,
    gate: Arc<Gate>,
    streams: Mutex<HashMap<u64, StreamEntry>>,
    next_stream: AtomicU64,
    log_refused: RateLimitedLog,
    log_streams: RateLimitedLog,
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
        Self::with_limits(config, auth, control, shutdown, Limits::default())
    }

    /// Build with explicit connection and stream [`Limits`].
    pub fn with_limits(
        config: Config,
        auth: Auth,
        control: Option<ControlPlane>,
        shutdown: Shutdown,
        limits: Limits,
    ) -> ServerState {
        let every = Duration::from_secs(10);
        ServerState {
            shared: Arc::new(Shared {
                config: RwLock::new(Arc::new(config)),
                auth,
                control,
                shutdown,
                gate: Arc::new(Gate::new(limits)),
                streams: Mutex::new(HashMap::new()),
                next_stream: AtomicU64::new(0),
                log_refused: RateLimitedLog::new(
                    "requests from outside the allow-list refused",
                    every,
                ),
                log_streams: RateLimitedLog::new("streams over the per-user cap refused", every),
            }),
        }
    }

    /// Connection counters and the number open now.
    pub fn conn_stats(&self) -> ConnStats {
        self.shared.gate.stats()
    }

    /// Server streams open now.
    pub fn open_streams(&self) -> usize {
        self.lock_streams().len()
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, HashMap<u64, StreamEntry>> {
        self.shared
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Register a server stream of `caller` on `conn`, or refuse it when the user holds
    /// [`Limits::streams_per_user`] already. The stream ends (UNAUTHENTICATED) when its
    /// session ends or its peer leaves the allow-list ([`ServerState::recheck_streams`]),
    /// at the token's expiry, and at shutdown.
    fn open_stream(
        &self,
        caller: &Caller,
        conn: Option<Arc<ConnState>>,
    ) -> Result<StreamGuard, ApiError> {
        let cap = self.shared.gate.limits().streams_per_user;
        let cancel = CancellationToken::new();
        let id = self.shared.next_stream.fetch_add(1, Ordering::Relaxed);
        {
            let mut streams = self.lock_streams();
            if streams.values().filter(|e| e.user == caller.user).count() >= cap {
                drop(streams);
                self.shared
                    .gate
                    .counters()
                    .refused_streams
                    .fetch_add(1, Ordering::Relaxed);
                self.shared.log_streams.hit(&caller.user);
                return Err(ApiError::ResourceExhausted(format!(
                    "too many open streams for this user (at most {cap})"
                )));
            }
            streams.insert(
                id,
                StreamEntry {
                    user: caller.user.clone(),
                    session: caller.session.clone(),
                    peer: caller.peer.ip(),
                    cancel: cancel.clone(),
                },
            );
        }
        if let Some(c) = &conn {
            c.stream_opened();
        }
        Ok(StreamGuard {
            state: self.clone(),
            id,
            cancel,
            conn,
            expires_at: caller.expires_at,
        })
    }

    /// End every stream whose session is no longer live or whose peer the allow-list no
    /// longer admits; answers how many were ended.
    pub fn recheck_streams(&self) -> usize {
        let now = SystemTime::now();
        let auth = self.auth();
        let mut n = 0;
        for e in self.lock_streams().values() {
            if !e.cancel.is_cancelled()
                && (!auth.session_live(&e.session, now) || !auth.peer_allowed(e.peer))
            {
                e.cancel.cancel();
                n += 1;
            }
        }
        n
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

    /// Apply a re-read config: users, allow-list, token lifetime and `[[lan_hosts]]` (with
    /// the users' connections, dial on demand's authorization) only. Sessions of users that
    /// still exist survive; the rest of the config (modems, connections, nat) needs a
    /// restart, so a user naming a connection unknown to the running server is refused.
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
        merged.lan_hosts = new.lan_hosts.clone();
        self.auth().reload(&merged)?;
        if let Some(c) = &self.shared.control {
            if !c.links.reload_demand(&merged) {
                tracing::warn!("dial on demand keeps its old [[lan_hosts]]: the data plane is busy; send SIGHUP again");
            }
        }
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(merged);
        let ended = self.recheck_streams();
        let closed = self
            .shared
            .gate
            .close_where(|ip| self.auth().peer_allowed(ip));
        if ended + closed > 0 {
            tracing::info!(
                streams = ended,
                connections = closed,
                "reload ended streams and connections no longer allowed"
            );
        }
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

/// The connection a request came on (our accept loop's bookkeeping), if any.
fn conn_of<T>(req: &Request<T>) -> Option<&ConnInfo> {
    let ext = req.extensions();
    ext.get::<ConnInfo>().or_else(|| {
        ext.get::<tonic::transport::server::TlsConnectInfo<ConnInfo>>()
            .map(|t| t.get_ref())
    })
}

/// The client address of a request (set by tonic for TCP and TLS connections).
pub fn peer_of<T>(req: &Request<T>) -> Result<SocketAddr, Status> {
    conn_of(req)
        .and_then(|c| c.tcp.remote_addr())
        .or_else(|| req.remote_addr())
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

/// Longest name (user, connection, chain, session id) looked up.
pub const MAX_NAME_LEN: usize = 64;

/// `name` if it is at most [`MAX_NAME_LEN`] bytes, else INVALID_ARGUMENT echoing only its
/// start (a 3 MiB name must not come back in full).
pub fn bounded_name(name: &str) -> Result<String, ApiError> {
    if name.len() <= MAX_NAME_LEN {
        return Ok(name.to_string());
    }
    Err(ApiError::InvalidArgument(format!(
        "name too long ({} bytes, at most {MAX_NAME_LEN}): `{}…`",
        name.len(),
        truncated(name, 32)
    )))
}

/// The first `max` bytes of `s` (on a char boundary).
pub fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let cut = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    &s[..cut]
}

/// Authorize a streaming `rpc` for the caller of `req`, register the stream (per-user cap)
/// and split off the message.
fn begin_stream<T>(
    state: &ServerState,
    req: Request<T>,
    rpc: Rpc,
    connection: Option<&str>,
) -> Result<(Caller, T, StreamGuard), Status> {
    let caller = caller(&req)?;
    rpc.authorize(&caller, connection)?;
    let conn = conn_of(&req).map(|c| c.conn.clone());
    let guard = state.open_stream(&caller, conn)?;
    Ok((caller, req.into_inner(), guard))
}

/// Authorize `rpc` for the caller of `req` and split off the message.
fn begin<T>(req: Request<T>, rpc: Rpc, connection: Option<&str>) -> Result<(Caller, T), Status> {
    let caller = caller(&req)?;
    rpc.authorize(&caller, connection)?;
    Ok((caller, req.into_inner()))
}

/// An open server stream's registration; dropping it unregisters the stream.
pub(crate) struct StreamGuard {
    state: ServerState,
    id: u64,
    cancel: CancellationToken,
    conn: Option<Arc<ConnState>>,
    expires_at: SystemTime,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.state.lock_streams().remove(&self.id);
        if let Some(c) = &self.conn {
            c.stream_closed();
        }
    }
}

/// A server stream fed through a channel: ends at shutdown (cleanly), and with
/// UNAUTHENTICATED when its session ends or its token expires.
struct GuardedStream<T> {
    rx: tokio_stream::wrappers::ReceiverStream<Result<T, Status>>,
    stop: Pin<Box<dyn Future<Output = Option<Status>> + Send>>,
    done: bool,
    _guard: StreamGuard,
}

impl<T> futures::Stream for GuardedStream<T> {
    type Item = Result<T, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(end) = self.stop.as_mut().poll(cx) {
            self.done = true;
            return Poll::Ready(end.map(Err));
        }
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

/// A server stream fed by a task through a channel, guarded by `guard`.
fn stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<Result<T, Status>>,
    token: &CancellationToken,
    guard: StreamGuard,
) -> BoxStream<'static, Result<T, Status>> {
    use futures::StreamExt;
    let shutdown = token.clone();
    let cancel = guard.cancel.clone();
    let left = guard
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        // Far enough for any token; keeps Instant arithmetic from overflowing.
        .min(Duration::from_secs(10 * 365 * 24 * 3600));
    let stop = async move {
        tokio::select! {
            () = shutdown.cancelled() => None,
            () = cancel.cancelled() => Some(Status::unauthenticated(
                "session ended (logged out, revoked, or no longer allowed); log in again",
            )),
            () = tokio::time::sleep(left) => Some(Status::unauthenticated(
                "token expired; log in again (mclient login)",
            )),
        }
    };
    GuardedStream {
        rx: tokio_stream::wrappers::ReceiverStream::new(rx),
        stop: Box::pin(stop),
        done: false,
        _guard: guard,
    }
    .boxed()
}

/// Server-wide interceptor: refuse peers outside the LAN allow-list, before anything else
/// (Login, health and reflection included).
#[derive(Clone)]
pub struct AllowListCheck(ServerState);

impl Interceptor for AllowListCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let peer = peer_of(&req)?;
        if let Some(c) = conn_of(&req) {
            c.conn.touch();
        }
        if self.0.auth().peer_allowed(peer.ip()) {
            Ok(req)
        } else {
            crate::counters::global().refused("allow_list");
            self.0.shared.log_refused.hit(&peer.ip());
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

    let limits = *state.shared.gate.limits();
    let mut builder = Server::builder()
        .concurrency_limit_per_connection(64)
        .max_concurrent_streams(limits.max_concurrent_streams)
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
    let st = state.clone();
    let incoming = limit::incoming(
        listener,
        state.shared.gate.clone(),
        Arc::new(move |ip| st.auth().peer_allowed(ip)),
    );
    let server =
        router.serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await });
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
            session: "s".into(),
            expires_at: SystemTime::UNIX_EPOCH,
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
            PortFw,
            ListSessions,
            RevokeSession,
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

    #[test]
    fn echoed_input_is_truncated_in_errors() {
        let huge = "é".repeat(3 << 19); // 3 MiB
        let s = Status::from(ApiError::NotFound(format!("no connection named `{huge}`")));
        assert!(
            s.message().len() <= MAX_ERROR_LEN + 64,
            "{}",
            s.message().len()
        );
        assert!(
            s.message().ends_with("bytes cut)"),
            "{}",
            &s.message()[..40]
        );
        let e = bounded_name(&huge);
        assert!(
            matches!(&e, Err(ApiError::InvalidArgument(m)) if m.len() < 200),
            "{e:?}"
        );
        assert_eq!(bounded_name("isp1"), Ok("isp1".to_string()));
        assert_eq!(truncated("aé", 2), "a");
    }
}
