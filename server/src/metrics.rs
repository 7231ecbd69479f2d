//! The opt-in plain-HTTP metrics endpoint, `[server] metrics_listen` (Prometheus text format),
//! and the RPC metrics layer. The counters and the encoder live in [`crate::counters`], the
//! sources in [`crate::scrape`]; this module must not touch packets, links or the engine.
//! Names are documented in `deploy/METRICS.md`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

pub use crate::counters::{global, Exposition, Kind, Metrics, Source, RPC_BUCKETS};
use crate::rpc::{Limits, ServerState};

/// Connection limits of the metrics listener: a scraper needs one connection; a few
/// per address leave room for a second scraper behind the same NAT (finding N9).
pub fn limits() -> Limits {
    Limits {
        max_connections: 32,
        max_per_ip: 4,
        handshake_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        ..crate::web::web_limits()
    }
}

async fn scrape() -> Response {
    let mut r = global().render().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::counters::CONTENT_TYPE),
    );
    // One scrape per connection, as before the move: simple scrapers read to the end.
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// `GET /metrics` (and `/`); anything else 404, other methods 405.
pub fn router() -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .route("/", axum::routing::get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics here\n") })
}

/// Serve `GET /metrics` on `listener` until the server's shutdown, on the same HTTP stack and
/// accept loop as the web page: peers outside the allow-list in force (reloads included) are
/// closed at accept and counted, and each address has a small connection cap.
pub async fn serve(listener: TcpListener, state: ServerState) {
    crate::web::serve_router(listener, state, router(), None, limits()).await;
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
        e.sample("x_total", &[("name", "e")], 0.5);
        e.family("g", Kind::Gauge, "A gauge.");
        e.sample("g", &[("k", "v")], 7.0);
        e.sample("undeclared", &[], 1.0);
        assert_eq!(
            e.finish(),
            "# HELP x Things.\n# TYPE x counter\nx_total{name=\"a\\\"b\\\\c\\nd\"} 3\nx_total{name=\"e\"} 0.5\n\
             # HELP g A gauge.\n# TYPE g gauge\ng{k=\"v\"} 7\n# EOF\n"
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
            format!("masqdial_rpc_duration_seconds_bucket{{le=\"{le}\",method=\"Auth/Login\",code=\"OK\"}}")
        };
        assert!(t.contains(&format!("{} 0\n", line("0.001"))), "{t}");
        assert!(t.contains(&format!("{} 1\n", line("0.005"))), "{t}");
        assert!(t.contains(&format!("{} 1\n", line("0.25"))), "{t}");
        assert!(t.contains(&format!("{} 2\n", line("0.5"))), "{t}");
        assert!(t.contains(&format!("{} 2\n", line("5.0"))), "{t}");
        assert!(t.contains(&format!("{} 3\n", line("+Inf"))), "{t}");
        assert!(t.contains(
            "masqdial_rpc_duration_seconds_count{method=\"Auth/Login\",code=\"OK\"} 3\n"
        ));
    }

    #[tokio::test]
    async fn endpoint_serves_metrics_and_plain_errors() {
        use tower::ServiceExt;
        global().dial_attempt("endpoint-test");
        let get = |path: &str| {
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let r = router()
            .oneshot(get("/metrics"))
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(r.status(), StatusCode::OK);
        let ctype = r.headers().get(header::CONTENT_TYPE).cloned();
        assert_eq!(
            ctype.as_ref().and_then(|v| v.to_str().ok()),
            Some(crate::counters::CONTENT_TYPE)
        );
        let body = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("masqdial_dial_attempts_total{connection=\"endpoint-test\"} 1\n"),
            "{text}"
        );
        let r = router()
            .oneshot(get("/other"))
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let post = axum::http::Request::post("/metrics")
            .body(axum::body::Body::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        let r = router().oneshot(post).await.unwrap_or_else(|e| match e {});
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
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
