//! The accept side of the gRPC server: who may hold a connection, how many, for how long.
//!
//! - at most `max_connections` at once (further clients wait in the kernel's listen backlog,
//!   as mini-redis does);
//! - peers outside the allow-list are closed at once, before they take a slot or see a byte
//!   of HTTP/2 (counted, logged rate-limited);
//! - at most `max_per_ip` connections per client address (counted, logged rate-limited);
//! - a connection must start its first request within `handshake_timeout` (TCP + TLS +
//!   HTTP/2 preface + first HEADERS); an unauthenticated one is closed `unauth_idle_timeout`
//!   after its last request, and only a connection that has made an authenticated request
//!   (a valid token, or a successful login) earns `idle_timeout`; neither closes while a
//!   server stream is open on it;
//! - unauthenticated connections hold at most `max_connections - auth_reserve` slots: the
//!   rest is kept for connections that have authenticated. A new connection that finds
//!   that share full evicts the oldest idle unauthenticated connection (or is closed when
//!   none is idle), and when every slot is taken the oldest idle unauthenticated connection
//!   makes room; both counted and logged rate-limited (security N2);
//! - TCP keepalive on every accepted socket.
//!
//! Owns only the accept side and per-connection bookkeeping; it does not look at requests
//! (the rpc layer calls [`ConnState::touch`] and [`ConnState::stream_opened`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connection and stream limits of the gRPC server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most client connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Most connections from one client address.
    pub max_per_ip: usize,
    /// From accept to the first request (TCP, TLS, HTTP/2 preface and first HEADERS).
    pub handshake_timeout: Duration,
    /// An authenticated connection with no open server stream and no request for this long
    /// is closed.
    pub idle_timeout: Duration,
    /// The same for a connection that has not (yet) made an authenticated request.
    pub unauth_idle_timeout: Duration,
    /// Slots only connections that have authenticated may hold (of `max_connections`).
    pub auth_reserve: usize,
    /// Idle time before TCP keepalive probes (then 3 probes, 10 s apart).
    pub tcp_keepalive: Duration,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection.
    pub max_concurrent_streams: u32,
    /// Most server streams (Watch*, Dial) one user holds open at once, over all connections.
    pub streams_per_user: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_per_ip: 16,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            unauth_idle_timeout: Duration::from_secs(10),
            auth_reserve: 64,
            tcp_keepalive: Duration::from_secs(60),
            max_concurrent_streams: 128,
            streams_per_user: 32,
        }
    }
}

/// Connection counters (monotonic).
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Connections handed to the HTTP/2 server.
    pub accepted: AtomicU64,
    /// Closed at accept: peer outside the allow-list.
    pub refused_peer: AtomicU64,
    /// Closed at accept: the peer already held `max_per_ip` connections.
    pub refused_per_ip: AtomicU64,
    /// Closed for missing the handshake or idle deadline.
    pub timed_out: AtomicU64,
    /// Closed because the allow-list no longer admits the peer.
    pub closed_by_allow_list: AtomicU64,
    /// Server streams refused by the per-user cap.
    pub refused_streams: AtomicU64,
    /// Unauthenticated connections closed to make room (their share or all slots full).
    pub evicted_unauth: AtomicU64,
    /// New connections closed: the unauthenticated share was full and none was idle.
    pub refused_unauth: AtomicU64,
}

/// A snapshot of [`ConnCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// See [`ConnCounters::accepted`].
    pub accepted: u64,
    /// See [`ConnCounters::refused_peer`].
    pub refused_peer: u64,
    /// See [`ConnCounters::refused_per_ip`].
    pub refused_per_ip: u64,
    /// See [`ConnCounters::timed_out`].
    pub timed_out: u64,
    /// See [`ConnCounters::closed_by_allow_list`].
    pub closed_by_allow_list: u64,
    /// See [`ConnCounters::refused_streams`].
    pub refused_streams: u64,
    /// See [`ConnCounters::evicted_unauth`].
    pub evicted_unauth: u64,
    /// See [`ConnCounters::refused_unauth`].
    pub refused_unauth: u64,
    /// Connections open now.
    pub open: usize,
}

/// A WARN at most once per period, saying how many events it stands for.
#[derive(Debug)]
pub struct RateLimitedLog {
    what: &'static str,
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    /// A log line for `what`, at most once per `every`.
    pub fn new(what: &'static str, every: Duration) -> Self {
        RateLimitedLog {
            what,
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Count one event; log it (with the number since the last line) if the period is over.
    pub fn hit(&self, detail: &dyn std::fmt::Display) {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 += 1;
        if s.0
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every)
        {
            tracing::warn!(
                "{}: {detail} ({} in the last {:?})",
                self.what,
                s.1,
                self.every
            );
            *s = (Some(now), 0);
        }
    }
}

/// Bookkeeping of one connection, shared between its socket and the requests on it.
#[derive(Debug)]
pub struct ConnState {
    peer: SocketAddr,
    accepted: Instant,
    handshake: Duration,
    idle: Duration,
    unauth_idle: Duration,
    authenticated: AtomicBool,
    last_request: Mutex<Option<Instant>>,
    streams: AtomicUsize,
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl ConnState {
    fn new(peer: SocketAddr, limits: &Limits) -> Self {
        ConnState {
            peer,
            accepted: Instant::now(),
            handshake: limits.handshake_timeout,
            idle: limits.idle_timeout,
            unauth_idle: limits.unauth_idle_timeout,
            authenticated: AtomicBool::new(false),
            last_request: Mutex::new(None),
            streams: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// The client address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// A request started on this connection.
    pub fn touch(&self) {
        *self.last_request.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// An authenticated request (a valid token, or a successful login) came on this
    /// connection: it earns the long idle limit and leaves the unauthenticated share.
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Release);
    }

    /// Whether an authenticated request came on this connection.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Acquire)
    }

    fn last_activity(&self) -> Instant {
        self.last_request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(self.accepted)
    }

    /// A server stream opened on this connection (it is not idle while one is open).
    pub fn stream_opened(&self) {
        self.streams.fetch_add(1, Ordering::AcqRel);
    }

    /// A server stream ended.
    pub fn stream_closed(&self) {
        self.streams.fetch_sub(1, Ordering::AcqRel);
        self.touch();
        if self.closed.load(Ordering::Acquire) {
            self.waker.wake();
        }
    }

    /// A request in progress that may wait long (a login queued for the password check):
    /// until the guard drops, the connection is busy as with an open stream, so it is
    /// neither closed for idleness nor evicted to make room (it would lose the answer).
    pub fn busy(self: &Arc<Self>) -> BusyGuard {
        self.stream_opened();
        BusyGuard(Arc::clone(self))
    }

    /// Close the connection once no server stream is open on it (streams are ended by the
    /// rpc layer first, so their final status reaches the client).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// When the connection is due to close, or `None` while a stream is open.
    fn deadline(&self) -> Option<Instant> {
        if self.streams.load(Ordering::Acquire) > 0 {
            return None;
        }
        match *self.last_request.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Some(self.accepted + self.handshake),
            Some(t) if self.is_authenticated() => Some(t + self.idle),
            Some(t) => Some(t + self.unauth_idle),
        }
    }
}

/// See [`ConnState::busy`]: the connection is busy until this drops.
#[derive(Debug)]
pub struct BusyGuard(Arc<ConnState>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

/// What the requests on a connection see of it (in the request extensions, in place of
/// tonic's `TcpConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Local and remote address.
    pub tcp: TcpConnectInfo,
    /// The connection's bookkeeping.
    pub conn: Arc<ConnState>,
}

/// Shared state of the accept loop: limits, counters, the open connections.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    counters: ConnCounters,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    open: Mutex<HashMap<u64, Weak<ConnState>>>,
    next_id: AtomicU64,
    log_peer: RateLimitedLog,
    log_per_ip: RateLimitedLog,
    log_timeout: RateLimitedLog,
    log_unauth: RateLimitedLog,
}

impl Gate {
    /// A gate with `limits` and no connections.
    pub fn new(limits: Limits) -> Self {
        let every = Duration::from_secs(10);
        Gate {
            limits,
            counters: ConnCounters::default(),
            per_ip: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            log_peer: RateLimitedLog::new("connections from outside the allow-list closed", every),
            log_per_ip: RateLimitedLog::new("connections over the per-address cap closed", every),
            log_timeout: RateLimitedLog::new(
                "connections closed for missing the handshake or idle deadline",
                every,
            ),
            log_unauth: RateLimitedLog::new(
                "unauthenticated connections closed: their share of the slots is full",
                every,
            ),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The counters.
    pub fn counters(&self) -> &ConnCounters {
        &self.counters
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ConnStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConnStats {
            accepted: l(&c.accepted),
            refused_peer: l(&c.refused_peer),
            refused_per_ip: l(&c.refused_per_ip),
            timed_out: l(&c.timed_out),
            closed_by_allow_list: l(&c.closed_by_allow_list),
            refused_streams: l(&c.refused_streams),
            evicted_unauth: l(&c.evicted_unauth),
            refused_unauth: l(&c.refused_unauth),
            open: self.lock_open().len(),
        }
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<ConnState>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Close every open connection whose peer `keep` refuses (after an allow-list change).
    pub fn close_where(&self, keep: impl Fn(IpAddr) -> bool) -> usize {
        let mut n = 0;
        for c in self.lock_open().values().filter_map(Weak::upgrade) {
            if !keep(c.peer.ip()) && !c.closed.load(Ordering::Acquire) {
                c.close();
                n += 1;
            }
        }
        self.counters
            .closed_by_allow_list
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// The open unauthenticated connections: (how many, the oldest idle one by last
    /// activity).
    fn unauth(&self) -> (usize, Option<Arc<ConnState>>) {
        let mut n = 0;
        let mut oldest: Option<Arc<ConnState>> = None;
        for c in self.lock_open().values().filter_map(Weak::upgrade) {
            if c.is_authenticated() || c.closed.load(Ordering::Acquire) {
                continue;
            }
            n += 1;
            if c.streams.load(Ordering::Acquire) == 0
                && oldest
                    .as_ref()
                    .is_none_or(|o| c.last_activity() < o.last_activity())
            {
                oldest = Some(c);
            }
        }
        (n, oldest)
    }

    /// Close the oldest idle unauthenticated connection; `false` when there is none.
    fn evict_oldest_unauth(&self, why: &str) -> bool {
        let Some(c) = self.unauth().1 else {
            return false;
        };
        c.close();
        self.counters.evicted_unauth.fetch_add(1, Ordering::Relaxed);
        crate::counters::global().refused("unauth_evicted");
        self.log_unauth
            .hit(&format_args!("evicted {} ({why})", c.peer.ip()));
        true
    }

    /// Whether a new connection may join the unauthenticated share, evicting the oldest
    /// idle unauthenticated connection if the share is full.
    fn room_for_unauth(&self, peer: IpAddr) -> bool {
        let share = self
            .limits
            .max_connections
            .saturating_sub(self.limits.auth_reserve)
            .max(1);
        if self.unauth().0 < share || self.evict_oldest_unauth("share full") {
            return true;
        }
        self.counters.refused_unauth.fetch_add(1, Ordering::Relaxed);
        crate::counters::global().refused("unauth_share");
        self.log_unauth
            .hit(&format_args!("refused {peer} (none idle to evict)"));
        false
    }

    /// Take a per-address slot for `ip`, or `None` when it holds `max_per_ip` already.
    fn take_ip(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= self.limits.max_per_ip {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            gate: self.clone(),
            ip,
        })
    }

    /// Admit an accepted socket, or close it (by dropping it) and count why.
    fn admit(
        self: &Arc<Self>,
        s: TcpStream,
        peer: SocketAddr,
        allowed: &(dyn Fn(IpAddr) -> bool + Send + Sync),
        permit: OwnedSemaphorePermit,
    ) -> Option<LimitedStream> {
        if !allowed(peer.ip()) {
            self.counters.refused_peer.fetch_add(1, Ordering::Relaxed);
            crate::counters::global().refused("allow_list");
            self.log_peer.hit(&peer.ip());
            return None;
        }
        let Some(ip_slot) = self.take_ip(peer.ip()) else {
            self.counters.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            crate::counters::global().refused("per_address_cap");
            self.log_per_ip.hit(&peer.ip());
            return None;
        };
        if !self.room_for_unauth(peer.ip()) {
            return None;
        }
        let _ = s.set_nodelay(true);
        let ka = socket2::TcpKeepalive::new()
            .with_time(self.limits.tcp_keepalive)
            .with_interval(Duration::from_secs(10))
            .with_retries(3);
        if let Err(e) = socket2::SockRef::from(&s).set_tcp_keepalive(&ka) {
            tracing::debug!(%peer, "cannot set TCP keepalive: {e}");
        }
        let conn = Arc::new(ConnState::new(peer, &self.limits));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock_open().insert(id, Arc::downgrade(&conn));
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let first = conn.accepted + conn.handshake;
        Some(LimitedStream {
            inner: s,
            conn,
            timer: Box::pin(tokio::time::sleep_until(first)),
            gate: self.clone(),
            id,
            _ip: ip_slot,
            _permit: permit,
        })
    }
}

/// A per-address slot, given back on drop.
#[derive(Debug)]
struct IpSlot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.gate.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// An accepted connection holding its slots until it is dropped; reads fail once its
/// handshake or idle deadline passes or it is closed.
pub struct LimitedStream {
    inner: TcpStream,
    conn: Arc<ConnState>,
    timer: Pin<Box<Sleep>>,
    gate: Arc<Gate>,
    id: u64,
    _ip: IpSlot,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for LimitedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitedStream")
            .field("peer", &self.conn.peer)
            .finish_non_exhaustive()
    }
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        self.gate.lock_open().remove(&self.id);
    }
}

impl LimitedStream {
    /// `Err` once the connection must close.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.conn.waker.register(cx.waker());
        if self.conn.closed.load(Ordering::Acquire)
            && self.conn.streams.load(Ordering::Acquire) == 0
        {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed by the server (allow-list change or eviction)",
            ));
        }
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            match self.conn.deadline() {
                Some(d) if d <= now => {
                    self.gate.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                    crate::counters::global().refused("connection_deadline");
                    self.gate.log_timeout.hit(&self.conn.peer.ip());
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "handshake or idle deadline passed",
                    ));
                }
                Some(d) => self.timer.as_mut().reset(d),
                None => self.timer.as_mut().reset(now + self.conn.idle),
            }
        }
        Ok(())
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected for LimitedStream {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        ConnInfo {
            tcp: self.inner.connect_info(),
            conn: self.conn.clone(),
        }
    }
}

/// Accept connections from `listener` through `gate`: never more than `max_connections`
/// open at once; peers `allowed` refuses and peers over their cap are closed at once.
pub fn incoming(
    listener: TcpListener,
    gate: Arc<Gate>,
    allowed: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
) -> impl Stream<Item = io::Result<LimitedStream>> + Send {
    let slots = Arc::new(Semaphore::new(gate.limits.max_connections.max(1)));
    futures::stream::unfold(
        (listener, slots, gate, allowed),
        |(listener, slots, gate, allowed)| async move {
            loop {
                match listener.accept().await {
                    Ok((s, peer)) => {
                        // Every slot taken: the oldest idle unauthenticated connection
                        // makes room; with none, this client waits (and the next ones in
                        // the listen backlog) for a free slot. The semaphore is never
                        // closed, so acquiring only waits.
                        let permit = match slots.clone().try_acquire_owned() {
                            Ok(p) => p,
                            Err(_) => {
                                gate.evict_oldest_unauth("all slots taken");
                                slots.clone().acquire_owned().await.ok()?
                            }
                        };
                        if let Some(c) = gate.admit(s, peer, allowed.as_ref(), permit) {
                            return Some((Ok(c), (listener, slots, gate, allowed)));
                        }
                        // Refused: the socket and the slot were dropped; accept the next.
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        return Some((Err(e), (listener, slots, gate, allowed)));
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::io::AsyncReadExt;

    fn gate(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate::new(limits))
    }

    fn all() -> Arc<dyn Fn(IpAddr) -> bool + Send + Sync> {
        Arc::new(|_| true)
    }

    #[tokio::test]
    async fn second_connection_waits_for_a_free_slot() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let limits = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        let mut conns = Box::pin(incoming(listener, gate(limits), all()));
        let _c1 = TcpStream::connect(addr).await?;
        let _c2 = TcpStream::connect(addr).await?; // completes in the kernel backlog
        let s1 = conns.next().await.transpose()?;
        assert!(s1.is_some());
        // An authenticated connection is never evicted to make room.
        if let Some(s) = &s1 {
            s.conn.authenticated();
        }
        // With the only slot taken, the second is not handed out.
        let blocked = tokio::time::timeout(Duration::from_millis(200), conns.next()).await;
        assert!(
            blocked.is_err(),
            "second connection accepted beyond the limit"
        );
        drop(s1);
        let s2 = tokio::time::timeout(Duration::from_secs(10), conns.next()).await;
        assert!(matches!(s2, Ok(Some(Ok(_)))));
        Ok(())
    }

    /// Read until EOF or error; `true` if the server closed the socket within 10 s.
    async fn closed_by_server(s: &mut TcpStream) -> bool {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn per_address_cap_closes_the_extra_connection_at_once() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let g = gate(Limits {
            max_per_ip: 2,
            ..Limits::default()
        });
        let conns = Box::pin(incoming(listener, g.clone(), all()));
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let acceptor = tokio::spawn(async move {
            let mut conns = conns;
            while let Some(c) = conns.next().await {
                if tx.send(c).await.is_err() {
                    return;
                }
            }
        });
        let _a = TcpStream::connect(addr).await?;
        let _b = TcpStream::connect(addr).await?;
        let mut c = TcpStream::connect(addr).await?;
        assert!(closed_by_server(&mut c).await);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(rx.recv().await.transpose()?);
        }
        let s = g.stats();
        assert_eq!((s.accepted, s.refused_per_ip, s.open), (2, 1, 2));
        // A slot given back admits the next one.
        held.clear();
        let _d = TcpStream::connect(addr).await?;
        let d = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(d, Ok(Some(Ok(_)))));
        acceptor.abort();
        Ok(())
    }

    #[tokio::test]
    async fn handshake_deadline_closes_a_silent_connection() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let g = gate(Limits {
            handshake_timeout: Duration::from_millis(200),
            ..Limits::default()
        });
        let mut conns = Box::pin(incoming(listener, g.clone(), all()));
        let _client = TcpStream::connect(addr).await?;
        let mut server_side = match conns.next().await {
            Some(c) => c?,
            None => return Err(io::Error::other("no connection")),
        };
        let mut b = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_secs(10), server_side.read(&mut b)).await;
        match r {
            Ok(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            other => panic!("expected a timeout error, got {other:?}"),
        }
        assert_eq!(g.stats().timed_out, 1);
        Ok(())
    }

    #[tokio::test]
    async fn only_an_authenticated_connection_earns_the_long_idle_limit() {
        let limits = Limits::default();
        let c = ConnState::new(SocketAddr::from(([127, 0, 0, 1], 1)), &limits);
        c.touch();
        let now = Instant::now();
        let d = c.deadline().unwrap_or(now);
        assert!(
            d <= now + limits.unauth_idle_timeout,
            "unauthenticated: short limit"
        );
        c.authenticated();
        let d = c.deadline().unwrap_or(now);
        assert!(d >= now + limits.idle_timeout - Duration::from_secs(1));
    }

    async fn next<S: Stream<Item = io::Result<LimitedStream>>>(
        conns: &mut Pin<Box<S>>,
    ) -> io::Result<LimitedStream> {
        match tokio::time::timeout(Duration::from_secs(10), conns.next()).await {
            Ok(Some(c)) => c,
            _ => Err(io::Error::other("no connection")),
        }
    }

    /// N2: unauthenticated connections fill only their share; the next one evicts the
    /// oldest idle unauthenticated one, and the reserve stays free for authenticated ones.
    #[tokio::test]
    async fn a_full_unauthenticated_share_evicts_its_oldest_idle_connection() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let g = gate(Limits {
            max_connections: 4,
            auth_reserve: 2,
            ..Limits::default()
        });
        let mut conns = Box::pin(incoming(listener, g.clone(), all()));
        let _c1 = TcpStream::connect(addr).await?;
        let mut s1 = next(&mut conns).await?;
        s1.conn.touch();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let _c2 = TcpStream::connect(addr).await?;
        let s2 = next(&mut conns).await?;
        s2.conn.touch();
        // The share (4 - 2) is full: the third evicts the oldest (s1).
        let _c3 = TcpStream::connect(addr).await?;
        let s3 = next(&mut conns).await?;
        let mut b = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_secs(10), s1.read(&mut b)).await;
        assert!(matches!(r, Ok(Err(_))), "{r:?}");
        assert_eq!(g.stats().evicted_unauth, 1);
        // s2 authenticates and leaves the share: the fourth needs no eviction.
        s2.conn.authenticated();
        drop(s1);
        let _c4 = TcpStream::connect(addr).await?;
        let _s4 = next(&mut conns).await?;
        assert_eq!(g.stats().evicted_unauth, 1);
        assert!(!s3.conn.closed.load(Ordering::Acquire));
        Ok(())
    }

    /// Seen under `login-load flood`: a login waiting in the verifier queue was evicted as
    /// idle and its client lost the answer. A busy connection is never the one evicted; the
    /// next idle one is, and once the login is answered the connection is idle again.
    #[tokio::test]
    async fn a_login_waiting_for_its_check_is_not_evicted() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let g = gate(Limits {
            max_connections: 4,
            auth_reserve: 2,
            ..Limits::default()
        });
        let mut conns = Box::pin(incoming(listener, g.clone(), all()));
        let _c1 = TcpStream::connect(addr).await?;
        let s1 = next(&mut conns).await?;
        s1.conn.touch();
        let busy = s1.conn.busy();
        assert_eq!(s1.conn.deadline(), None, "no idle deadline while busy");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let _c2 = TcpStream::connect(addr).await?;
        let s2 = next(&mut conns).await?;
        s2.conn.touch();
        // The share is full: the third evicts s2 (idle), not the older but busy s1.
        let _c3 = TcpStream::connect(addr).await?;
        let _s3 = next(&mut conns).await?;
        assert_eq!(g.stats().evicted_unauth, 1);
        assert!(!s1.conn.closed.load(Ordering::Acquire), "busy s1 evicted");
        assert!(s2.conn.closed.load(Ordering::Acquire), "idle s2 kept");
        drop(busy);
        assert!(s1.conn.deadline().is_some(), "idle again once answered");
        Ok(())
    }

    #[tokio::test]
    async fn an_open_stream_suspends_the_idle_deadline() {
        let limits = Limits::default();
        let c = ConnState::new(SocketAddr::from(([127, 0, 0, 1], 1)), &limits);
        assert_eq!(c.deadline(), Some(c.accepted + limits.handshake_timeout));
        c.authenticated();
        let before = Instant::now();
        c.touch();
        let d = c.deadline().unwrap_or(before);
        assert!(d >= before + limits.idle_timeout && d <= Instant::now() + limits.idle_timeout);
        c.stream_opened();
        assert_eq!(c.deadline(), None);
        c.stream_closed();
        assert!(c.deadline().is_some());
    }
}
