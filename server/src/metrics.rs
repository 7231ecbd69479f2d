//! The opt-in plain-HTTP metrics endpoint, `[server] metrics_listen` (Prometheus text format),
//! and the RPC metrics layer. The counters and the encoder live in [`crate::counters`], the
//! sources in [`crate::scrape`]; this module must not touch packets, links or the engine.
//! Names are documented in `deploy/METRICS.md`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub use crate::counters::{global, Exposition, Kind, Metrics, Source, RPC_BUCKETS};

/// Longest request head read from a scraper.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a scraper has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once; more wait for a slot.
const MAX_CONCURRENT: usize = 8;

/// Why a scrape request got no metrics.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics,
    NotFound,
    BadMethod,
    Bad,
}

/// Parse the request head's first line.
fn parse_request(head: &[u8]) -> Request {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Bad;
    }
    if method != "GET" && method != "HEAD" {
        return Request::BadMethod;
    }
    let path = target.split('?').next().unwrap_or_default();
    if path == "/metrics" || path == "/" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

async fn respond(mut s: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > MAX_REQUEST {
                break;
            }
        }
        std::io::Result::Ok(())
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let head_only = head.starts_with(b"HEAD ");
    let (status, ctype, body) = match parse_request(&head) {
        Request::Metrics => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        Request::NotFound => ("404 Not Found", "text/plain", "only /metrics here\n".into()),
        Request::BadMethod => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
        Request::Bad => ("400 Bad Request", "text/plain", "bad request\n".into()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    tokio::time::timeout(REQUEST_TIMEOUT, s.write_all(&out))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let _ = s.shutdown().await;
    Ok(())
}

/// Serve `GET /metrics` on `listener` until `stop`: one request per connection, peers for
/// which `allowed` is false closed at once (and counted as refused `metrics_allow_list`).
pub async fn serve(
    listener: TcpListener,
    allowed: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    stop: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (sock, peer): (TcpStream, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("metrics accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = match peer.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if !allowed(ip) {
            global().refused("metrics_allow_list");
            drop(sock);
            continue;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        tokio::spawn(async move {
            if let Err(e) = respond(sock, global()).await {
                tracing::debug!(%peer, "metrics scrape: {e}");
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_escapes_and_declares_each_family_once() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "Things.");
        e.sample("x_total", &[("name", "a\"b\\c\nd")], 3.0);
        e.family("x_total", Kind::Counter, "Things.");
        e.sample("x_total", &[], 0.5);
        assert_eq!(
            e.finish(),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{name=\"a\\\"b\\\\c\\nd\"} 3\nx_total 0.5\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.rpc("Auth/Login", "OK", Duration::from_millis(3));
        m.rpc("Auth/Login", "OK", Duration::from_millis(300));
        m.rpc("Auth/Login", "OK", Duration::from_secs(9));
        let t = m.render();
        let line = |le: &str| {
            format!("masqdial_rpc_duration_seconds_bucket{{method=\"Auth/Login\",code=\"OK\",le=\"{le}\"}}")
        };
        assert!(t.contains(&format!("{} 0\n", line("0.001"))), "{t}");
        assert!(t.contains(&format!("{} 1\n", line("0.005"))), "{t}");
        assert!(t.contains(&format!("{} 1\n", line("0.25"))), "{t}");
        assert!(t.contains(&format!("{} 2\n", line("0.5"))), "{t}");
        assert!(t.contains(&format!("{} 2\n", line("5"))), "{t}");
        assert!(t.contains(&format!("{} 3\n", line("+Inf"))), "{t}");
        assert!(t.contains(
            "masqdial_rpc_duration_seconds_count{method=\"Auth/Login\",code=\"OK\"} 3\n"
        ));
    }

    #[test]
    fn requests_are_parsed_strictly() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(
            parse_request(b"GET /other HTTP/1.1\r\n\r\n"),
            Request::NotFound
        );
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Request::BadMethod
        );
        assert_eq!(parse_request(b"GET /metrics\r\n\r\n"), Request::Bad);
        assert_eq!(parse_request(b"\xff\xfe"), Request::Bad);
    }

    #[tokio::test]
    async fn endpoint_serves_allowed_peers_and_closes_on_others() {
        global().dial_attempt("endpoint-test");
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        let allow_all: Arc<dyn Fn(IpAddr) -> bool + Send + Sync> = Arc::new(|_| true);
        let task = tokio::spawn(serve(l, allow_all, stop.clone()));
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut got = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut got))
            .await
            .unwrap_or_else(|_| panic!("timeout"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(got.contains("masqdial_dial_attempts_total{connection=\"endpoint-test\"} 1\n"));
        stop.cancel();
        let _ = task.await;

        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        let deny_all: Arc<dyn Fn(IpAddr) -> bool + Send + Sync> = Arc::new(|_| false);
        let task = tokio::spawn(serve(l, deny_all, stop.clone()));
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        stop.cancel();
        let _ = task.await;
    }
}

/// The gRPC paths the server serves: every method of the `masqdial.v1` services (read from
/// the API's own descriptor set), health and reflection.
fn known_methods() -> &'static std::collections::HashSet<String> {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        use prost::Message as _;
        let mut known: std::collections::HashSet<String> = [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        if let Ok(set) =
            prost_types::FileDescriptorSet::decode(masqdial_proto::v1::FILE_DESCRIPTOR_SET)
        {
            for f in &set.file {
                let pkg = f.package();
                for svc in &f.service {
                    for m in &svc.method {
                        known.insert(format!("/{pkg}.{}/{}", svc.name(), m.name()));
                    }
                }
            }
        }
        known
    })
}

/// The `method` label of a gRPC path: `/masqdial.v1.Auth/Login` → `Auth/Login`. Only the
/// paths the server serves (a fixed table from the API's descriptor) get their own label;
/// everything else is `unknown` whatever its status (an unauthenticated call to a random
/// path is refused before routing, so its status cannot tell), so no client can grow the
/// label set.
pub fn rpc_method_label(path: &str, code: tonic::Code) -> String {
    if code == tonic::Code::Unimplemented || !known_methods().contains(path) {
        return "unknown".into();
    }
    let p = path.trim_start_matches('/');
    match p.split_once('/') {
        Some((svc, m)) => format!("{}/{m}", svc.rsplit('.').next().unwrap_or(svc)),
        None => p.to_string(),
    }
}

/// The `reason` of `masqdial_auth_failures_total` for a finished call, if it is one:
/// `bad_credentials` (Login refused: unknown user or wrong password, told apart nowhere),
/// `throttled` (Login refused by the throttle or the password-check bound) and `bad_token`
/// (any other call with a missing, unknown or expired token).
pub fn auth_failure_reason(method: &str, code: tonic::Code) -> Option<&'static str> {
    let login = method == "Auth/Login";
    match code {
        tonic::Code::Unauthenticated if login => Some("bad_credentials"),
        tonic::Code::ResourceExhausted if login => Some("throttled"),
        tonic::Code::Unauthenticated => Some("bad_token"),
        _ => None,
    }
}

/// Tower layer timing every gRPC call (to its response headers: the whole call for unary
/// rpcs, the start for streams) into `masqdial_rpc_duration_seconds`, and counting
/// authentication failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

/// The service made by [`RpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let start = std::time::Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            if let Ok(resp) = &r {
                // A failed call is "trailers-only": its status is in the headers. A call
                // whose status only comes in the trailers succeeded (or failed mid-stream).
                let code = resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from_i32);
                let method = rpc_method_label(&path, code);
                let m = global();
                m.rpc(&method, &format!("{code:?}"), start.elapsed());
                if let Some(reason) = auth_failure_reason(&method, code) {
                    m.auth_failure(reason);
                }
            }
            r
        })
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn method_labels_are_short_and_bounded() {
        assert_eq!(
            rpc_method_label("/masqdial.v1.Auth/Login", tonic::Code::Ok),
            "Auth/Login"
        );
        assert_eq!(
            rpc_method_label("/grpc.health.v1.Health/Check", tonic::Code::Ok),
            "Health/Check"
        );
        assert_eq!(
            rpc_method_label("/masqdial.v1.Auth/random123", tonic::Code::Unimplemented),
            "unknown"
        );
        // Refused before routing (no token): the status says nothing about the path.
        assert_eq!(
            rpc_method_label(
                "/masqdial.v1.Dialer/random123",
                tonic::Code::Unauthenticated
            ),
            "unknown"
        );
        let long = format!("/a.B/{}", "x".repeat(500));
        assert_eq!(rpc_method_label(&long, tonic::Code::Ok), "unknown");
        // Every method of the API is known, so the label set is the API's, and no more.
        for path in [
            "/masqdial.v1.Dialer/Dial",
            "/masqdial.v1.Nat/ListMasq",
            "/masqdial.v1.Modems/ListModems",
        ] {
            let l = rpc_method_label(path, tonic::Code::PermissionDenied);
            assert_ne!(l, "unknown", "{path}");
        }
        let mut labels = std::collections::HashSet::new();
        for i in 0..10_000 {
            let p = format!("/masqdial.v1.Dialer/M{i}");
            labels.insert(rpc_method_label(&p, tonic::Code::Unauthenticated));
        }
        assert_eq!(labels.len(), 1);
    }

    #[test]
    fn auth_failure_reasons() {
        use tonic::Code;
        assert_eq!(
            auth_failure_reason("Auth/Login", Code::Unauthenticated),
            Some("bad_credentials")
        );
        assert_eq!(
            auth_failure_reason("Auth/Login", Code::ResourceExhausted),
            Some("throttled")
        );
        assert_eq!(
            auth_failure_reason("Dialer/Dial", Code::Unauthenticated),
            Some("bad_token")
        );
        assert_eq!(auth_failure_reason("Auth/Login", Code::Ok), None);
        assert_eq!(
            auth_failure_reason("Dialer/Dial", Code::PermissionDenied),
            None
        );
    }
}
