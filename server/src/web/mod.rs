//! The web page served by mserver itself (`[web] listen`, on in `mserver --demo`) and the
//! Prometheus endpoint (`[server] metrics_listen`), both on axum/hyper, the HTTP stack tonic
//! already brings.
//!
//! # Layout
//! - this file: [`serve`] (the accept loop: the same allow-list and per-address cap as the
//!   gRPC port through an [`Gate`] of its own, TLS with the gRPC certificate) and [`router`].
//! - `http`: per-request checks and answers: peer re-checked against the allow-list in force,
//!   security headers, cross-site refusal, the session cookie and its CSRF token, plain errors.
//! - `routes`: the handlers (login/logout, state, dial, hang-up, details, chains, sessions).
//! - `events`: the server-sent event stream of one page, fed by the same broadcasts as the
//!   gRPC watch streams, resyncing a lagging page with a fresh snapshot.
//! - `views`: JSON and text views of the domain objects (no protobuf here).
//! - `assets/`: the page (HTML, CSS, a small JS), embedded in the binary.
//!
//! A browser reaches the same domain handles as `rpc` (link manager, NAT control, auth):
//! never through gRPC, never with a second authentication.

mod events;
mod http;
mod routes;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tonic::transport::server::Connected;

use crate::rpc::limit::{self, Gate, Limits};
use crate::rpc::{AuthService, ServerState};

pub use http::{csrf_token, SESSION_COOKIE};

/// Largest request body (login and action forms are tiny).
pub const MAX_BODY: usize = 8 * 1024;

/// Connection limits of the web and metrics listeners (a page keeps one connection for its
/// event stream and a few for requests).
pub fn web_limits() -> Limits {
    Limits {
        max_connections: 256,
        max_per_ip: 16,
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(120),
        tcp_keepalive: Duration::from_secs(60),
        max_concurrent_streams: 32,
        streams_per_user: 32,
    }
}

/// Error starting the web listener.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A TLS file could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The certificate or key is not usable.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// What every handler shares.
#[derive(Clone)]
pub struct Web {
    pub(crate) state: ServerState,
    pub(crate) login: AuthService,
    pub(crate) csrf_key: Arc<ring::hmac::Key>,
    pub(crate) tls: bool,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").field("tls", &self.tls).finish()
    }
}

impl Web {
    /// The web face over `state` (the same users, sessions, allow-list and password-check
    /// pool as the gRPC port). `tls` marks the session cookie `Secure`.
    pub fn new(state: ServerState, tls: bool) -> Result<Web, WebError> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| WebError::Tls("no randomness for the CSRF key".into()))?;
        Ok(Web {
            login: AuthService::new(state.clone()),
            state,
            csrf_key: Arc::new(key),
            tls,
        })
    }
}

/// The whole web page as one axum router (also what the tests drive with `oneshot`).
pub fn router(web: Web) -> axum::Router {
    routes::router(web)
}

/// Load the gRPC port's certificate and key for the web page.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, WebError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|source| WebError::TlsFile {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebError::Tls(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| WebError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| WebError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The connection a request came on, put in its extensions by [`serve_router`].
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client address.
    pub addr: SocketAddr,
    /// The connection's bookkeeping (idle deadline, open streams).
    pub conn: Arc<limit::ConnState>,
}

/// Serve the web page on `listener` until the server's shutdown: peers outside the
/// allow-list in force are closed at accept (and their open connections at a reload).
pub async fn serve(listener: TcpListener, web: Web, tls: Option<tokio_rustls::TlsAcceptor>) {
    let state = web.state.clone();
    serve_router(listener, state, router(web), tls, web_limits()).await;
}

/// Accept loop shared by the web page and the metrics endpoint: the allow-list (following
/// reloads) and the per-address cap at accept, then HTTP/1.1 or HTTP/2 on each connection.
pub async fn serve_router(
    listener: TcpListener,
    state: ServerState,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
) {
    let gate = Arc::new(Gate::new(limits));
    state.register_gate(&gate);
    let st = state.clone();
    let incoming = limit::incoming(
        listener,
        gate,
        Arc::new(move |ip| st.auth().peer_allowed(ip)),
    );
    futures::pin_mut!(incoming);
    let stop = state.shutdown_token();
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            n = incoming.next() => n,
        };
        let stream = match next {
            Some(Ok(s)) => s,
            Some(Err(_)) => continue,
            None => break,
        };
        let info = stream.connect_info();
        let Some(addr) = info.tcp.remote_addr() else {
            continue;
        };
        let peer = Peer {
            addr,
            conn: info.conn.clone(),
        };
        let router = router.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        state.spawn(async move {
            let svc = tower::service_fn(move |mut req: ::http::Request<hyper::body::Incoming>| {
                peer.conn.touch();
                req.extensions_mut().insert(peer.clone());
                let mut r = router.clone();
                async move { tower::Service::call(&mut r, req).await }
            });
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let builder = auto::Builder::new(TokioExecutor::new());
            let served = async {
                match tls {
                    Some(acceptor) => {
                        let s = match tokio::time::timeout(
                            Duration::from_secs(10),
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(s)) => s,
                            _ => return,
                        };
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            };
            tokio::select! {
                () = served => {}
                () = stop.cancelled() => {}
            }
        });
    }
}
