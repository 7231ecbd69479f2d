//! The accept side of the gRPC server: who may hold a connection, how many, for how long.
//!
//! - at most `max_connections` at once (further clients wait in the kernel's listen backlog,
//!   as mini-redis does);
//! - peers outside the allow-list are closed at once, before they take a slot or see a byte
//!   of HTTP/2 (counted, logged rate-limited);
//! - at most `max_per_ip` connections per client address (counted, logged rate-limited);
//! - a connection must start its first request within `handshake_timeout` (TCP + TLS +
//!   HTTP/2 preface + first HEADERS), and is closed after `idle_timeout` without a request
//!   while no server stream is open on it;
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
    /// A connection with no open server stream and no request for this long is closed.
    pub idle_timeout: Duration,
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
            Some(t) => Some(t + self.idle),
        }
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
                "peer no longer in the allow-list",
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
                // The semaphore is never closed, so acquiring only waits for a free slot.
                let permit = slots.clone().acquire_owned().await.ok()?;
                match listener.accept().await {
                    Ok((s, peer)) => {
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
    async fn an_open_stream_suspends_the_idle_deadline() {
        let limits = Limits::default();
        let c = ConnState::new(SocketAddr::from(([127, 0, 0, 1], 1)), &limits);
        assert_eq!(c.deadline(), Some(c.accepted + limits.handshake_timeout));
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
