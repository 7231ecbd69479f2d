//! The shared server handle ([`ServerState`]: config, auth, control plane, shutdown,
//! limits) and the registry of open server streams (per-user cap, ended when their session
//! or peer is no longer allowed, at token expiry and at shutdown). It reads the running
//! configuration; putting a reloaded one in force is the composition root's
//! (`daemon::reload`). Must not touch the authorization table or the error table.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures::stream::BoxStream;
use masqdial_proto::v1 as pb;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

use super::access::{bearer, caller, conn_of, peer_of, Caller, Rpc};
use super::limit::{ConnState, ConnStats, Gate, Limits, RateLimitedLog};
use super::ApiError;
use crate::auth::{Auth, AuthError};
use crate::config::{Config, Running};
use crate::link::manager::LinkManager;
use crate::nat_control::NatControl;
use crate::shutdown::Shutdown;

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

pub(super) struct Shared {
    config: Running,
    auth: Auth,
    control: Option<ControlPlane>,
    shutdown: Shutdown,
    pub(super) gate: Arc<Gate>,
    streams: Mutex<HashMap<u64, StreamEntry>>,
    next_stream: AtomicU64,
    pub(super) log_refused: RateLimitedLog,
    log_streams: RateLimitedLog,
    /// The password-check pool shared by every login face (gRPC, web).
    pub(super) verifiers: std::sync::OnceLock<Arc<super::verifiers::Verifiers>>,
    /// Accept gates of the other listeners (web page, metrics): a reload closes their
    /// connections from peers it no longer allows, as for the gRPC port.
    other_gates: Mutex<Vec<std::sync::Weak<Gate>>>,
}

/// Cheap `Clone` handle on everything the rpc layer shares.
#[derive(Clone)]
pub struct ServerState {
    pub(super) shared: Arc<Shared>,
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

    /// Build with the process's shutdown signal: when it fires, [`serve`](super::serve::serve) stops and open
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
                config: Running::new(config),
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
                verifiers: std::sync::OnceLock::new(),
                other_gates: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Register the accept gate of another listener (web page, metrics): reloads close its
    /// connections from peers no longer allowed.
    pub fn register_gate(&self, gate: &Arc<Gate>) {
        let mut g = self
            .shared
            .other_gates
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        g.retain(|w| w.strong_count() > 0);
        g.push(Arc::downgrade(gate));
    }

    fn other_gates(&self) -> Vec<Arc<Gate>> {
        self.shared
            .other_gates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect()
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
    pub(crate) fn open_stream(
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
            session: caller.session.clone(),
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
        self.shared.config.get()
    }

    /// The running configuration; the composition root applies reloads to it
    /// (`daemon::reload`).
    pub fn running(&self) -> &Running {
        &self.shared.config
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
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shared.shutdown.spawn(task);
    }

    /// After a reload was applied: end the streams and close the connections that the new
    /// users and allow-list no longer admit.
    pub fn recheck_after_reload(&self) {
        let ended = self.recheck_streams();
        let mut closed = self
            .shared
            .gate
            .close_where(|ip| self.auth().peer_allowed(ip));
        for g in self.other_gates() {
            closed += g.close_where(|ip| self.auth().peer_allowed(ip));
        }
        if ended + closed > 0 {
            tracing::info!(
                streams = ended,
                connections = closed,
                "reload ended streams and connections no longer allowed"
            );
        }
    }

    /// Authenticate a request's bearer token at the current time.
    pub fn caller_of<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        let peer = peer_of(req)?;
        let token = bearer(req)?;
        let id = self
            .auth()
            .authenticate(token, std::time::SystemTime::now())?;
        // An authenticated request: the connection earns the long idle limit (N2).
        if let Some(c) = conn_of(req) {
            c.conn.authenticated();
        }
        Ok(Caller::from_identity(id, peer))
    }
}

/// Authorize a streaming `rpc` for the caller of `req`, register the stream (per-user cap)
/// and split off the message.
pub(super) fn begin_stream<T>(
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
pub(super) fn begin<T>(
    req: Request<T>,
    rpc: Rpc,
    connection: Option<&str>,
) -> Result<(Caller, T), Status> {
    let caller = caller(&req)?;
    rpc.authorize(&caller, connection)?;
    Ok((caller, req.into_inner()))
}

/// An open server stream's registration; dropping it unregisters the stream.
pub(crate) struct StreamGuard {
    state: ServerState,
    id: u64,
    /// Public id of the caller's session.
    session: String,
    cancel: CancellationToken,
    conn: Option<Arc<ConnState>>,
    expires_at: SystemTime,
}

impl StreamGuard {
    /// Cancelled when the stream's session ends or its peer leaves the allow-list.
    pub(crate) fn ended(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// When the stream's token expires.
    pub(crate) fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
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
pub(super) fn stream_of<T: Send + 'static>(
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
    // Every session removal (logout, revocation, reload, expiry, the per-user cap evicting
    // the oldest) wakes the stream to recheck its own session (N8).
    let mut removals = guard.state.auth().session_removals();
    let (state, session) = (guard.state.clone(), guard.session.clone());
    let session_gone = async move {
        loop {
            if removals.changed().await.is_err() {
                // Auth dropped: only shutdown or expiry can end the stream now.
                std::future::pending::<()>().await;
            }
            if !state.auth().session_live(&session, SystemTime::now()) {
                return;
            }
        }
    };
    let stop = async move {
        let ended = || {
            Some(Status::unauthenticated(
                "session ended (logged out, revoked, or no longer allowed); log in again",
            ))
        };
        tokio::select! {
            () = shutdown.cancelled() => None,
            () = cancel.cancelled() => ended(),
            () = session_gone => ended(),
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
