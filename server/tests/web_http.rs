//! The web page's HTTP layer over the real domain objects: login, cookie flags, CSRF,
//! cross-site refusal, headers, bad input, session end, allow-list (router driven with
//! `oneshot`, and a real listener for the accept-time allow-list).

#[path = "common/inproc.rs"]
mod inproc;

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use inproc::{config, TestServer, TIMEOUT};
use masqdial_server::auth::RevokeTarget;
use masqdial_server::link::LinkState;
use masqdial_server::web::{self, Web};
use tower::ServiceExt;

async fn call(web: &Web, req: Request<Body>) -> Response<Body> {
    tokio::time::timeout(TIMEOUT, web::router(web.clone()).oneshot(req))
        .await
        .unwrap_or_else(|_| panic!("request timed out"))
        .unwrap_or_else(|e| match e {})
}

async fn text(r: Response<Body>) -> String {
    let b = axum::body::to_bytes(r.into_body(), 1 << 22)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&b).into_owned()
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"))
}

fn post(path: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
    let mut b = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header(header::HOST, "127.0.0.1:2280")
        .header(header::ORIGIN, "http://127.0.0.1:2280")
        .header("sec-fetch-site", "same-origin");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(form.to_string()))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Log in; answers the `Set-Cookie` header and the `name=value` cookie.
async fn login(web: &Web, user: &str, pw: &str) -> (String, String) {
    let r = call(
        web,
        post("/login", None, &format!("user={user}&password={pw}")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", text(r).await);
    let set = r
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let pair = set.split(';').next().unwrap_or_default().to_string();
    (set, pair)
}

async fn csrf(web: &Web, cookie: &str) -> String {
    let r = call(web, get("/api/state", Some(cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value =
        serde_json::from_str(&text(r).await).unwrap_or_else(|e| panic!("{e}"));
    v["csrf"].as_str().unwrap_or_default().to_string()
}

async fn server() -> (TestServer, Web) {
    let s = TestServer::start_with(config(&["127.0.0.0/8"]), true).await;
    let w = Web::new(s.state.clone(), false).unwrap_or_else(|e| panic!("{e}"));
    (s, w)
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_a_wrong_password_is_refused() {
    let (s, w) = server().await;
    let r = call(&w, post("/login", None, "user=alice&password=nope")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert!(text(r).await.contains("invalid user name or password"));

    let (set, pair) = login(&w, "alice", "alice-pw").await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    // A server session, listed like a gRPC login's.
    let sessions = s.state.auth().sessions(SystemTime::now());
    assert!(sessions.iter().any(|x| x.user == "alice"));
    let r = call(&w, get("/", Some(&pair))).await;
    assert!(text(r).await.contains("data-action=\"logout\""));
    // Under TLS the cookie is Secure.
    let tls = Web::new(s.state.clone(), true).unwrap_or_else(|e| panic!("{e}"));
    let (set, _) = login(&tls, "alice", "alice-pw").await;
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (_s, w) = server().await;
    for r in [
        call(&w, get("/", None)).await,
        call(&w, get("/app.js", None)).await,
        call(&w, get("/nope", None)).await,
        call(&w, post("/login", None, "user=x&password=y")).await,
    ] {
        let h = r.headers();
        let csp = h
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(
            h.get(header::X_CONTENT_TYPE_OPTIONS)
                .and_then(|v| v.to_str().ok()),
            Some("nosniff")
        );
        assert_eq!(
            h.get(header::REFERRER_POLICY).and_then(|v| v.to_str().ok()),
            Some("no-referrer")
        );
    }
}

#[tokio::test]
async fn csrf_cross_site_and_replayed_tokens_are_refused_and_change_nothing() {
    let (s, w) = server().await;
    let (_, cookie) = login(&w, "alice", "alice-pw").await;
    let token = csrf(&w, &cookie).await;
    let links = &s.state.control().unwrap_or_else(|e| panic!("{e}")).links;
    let idle = |links: &masqdial_server::link::manager::LinkManager| {
        let st = links.status("isp1").unwrap_or_else(|e| panic!("{e}"));
        (st.state == LinkState::Idle || st.state == LinkState::Failed) && st.holders.is_empty()
    };
    assert!(idle(links));
    // The cookie alone (no token), a wrong token, another session's token.
    for form in ["", "csrf=", "csrf=00", &format!("csrf={}", "ab".repeat(32))] {
        let r = call(&w, post("/connections/isp1/dial", Some(&cookie), form)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{form}");
    }
    // Cross-site, even with the right token.
    let mut req = post(
        "/connections/isp1/dial",
        Some(&cookie),
        &format!("csrf={token}"),
    );
    // A browser without fetch metadata: the Origin decides.
    req.headers_mut().remove("sec-fetch-site");
    req.headers_mut().insert(
        header::ORIGIN,
        header::HeaderValue::from_static("http://evil.example"),
    );
    assert_eq!(call(&w, req).await.status(), StatusCode::FORBIDDEN);
    let mut req = post(
        "/connections/isp1/dial",
        Some(&cookie),
        &format!("csrf={token}"),
    );
    req.headers_mut().insert(
        "sec-fetch-site",
        header::HeaderValue::from_static("cross-site"),
    );
    assert_eq!(call(&w, req).await.status(), StatusCode::FORBIDDEN);
    assert!(idle(links), "a refused request changed the link");

    // Log out, then replay the cookie and the token: refused, nothing changes.
    let r = call(&w, post("/logout", Some(&cookie), &format!("csrf={token}"))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cleared = r
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let r = call(
        &w,
        post(
            "/connections/isp1/dial",
            Some(&cookie),
            &format!("csrf={token}"),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(idle(links));
}

#[tokio::test]
async fn bad_input_gets_a_plain_status() {
    let (_s, w) = server().await;
    let (_, cookie) = login(&w, "alice", "alice-pw").await;
    let token = csrf(&w, &cookie).await;
    // Unknown route.
    assert_eq!(
        call(&w, get("/etc/passwd", Some(&cookie))).await.status(),
        StatusCode::NOT_FOUND
    );
    // Malformed cookies are no session.
    for c in [
        "masqdial_session=zz",
        "masqdial_session=",
        "masqdial_session",
        "=;=;;",
        &format!("masqdial_session={}", "g".repeat(64)),
    ] {
        assert_eq!(
            call(&w, get("/api/state", Some(c))).await.status(),
            StatusCode::UNAUTHORIZED,
            "{c}"
        );
    }
    // Oversized form.
    let big = format!("csrf={token}&x={}", "a".repeat(64 * 1024));
    let r = call(&w, post("/connections/isp1/dial", Some(&cookie), &big)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = call(
        &w,
        post(
            "/login",
            None,
            &format!("user=a&password={}", "p".repeat(64 * 1024)),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown connection, overlong name, a connection alice may not use.
    let f = format!("csrf={token}");
    let r = call(&w, post("/connections/nope/dial", Some(&cookie), &f)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let long = format!("/connections/{}/dial", "n".repeat(5000));
    let r = call(&w, post(&long, Some(&cookie), &f)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = call(&w, post("/connections/isp2/dial", Some(&cookie), &f)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Admin pages refuse a user.
    assert_eq!(
        call(&w, get("/api/chains", Some(&cookie))).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&w, get("/api/sessions", Some(&cookie))).await.status(),
        StatusCode::FORBIDDEN
    );
    // Not a form.
    let mut r = post("/connections/isp1/dial", Some(&cookie), "{}");
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    assert_eq!(
        call(&w, r).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn a_revoked_session_ends_the_page_and_its_event_stream() {
    let (s, w) = server().await;
    let (_, cookie) = login(&w, "alice", "alice-pw").await;
    let r = call(&w, get("/events", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.into_body().into_data_stream();
    use futures::StreamExt;
    let first = tokio::time::timeout(TIMEOUT, body.next()).await;
    let first = String::from_utf8_lossy(
        &first
            .ok()
            .flatten()
            .and_then(Result::ok)
            .unwrap_or_default(),
    )
    .into_owned();
    assert!(first.contains("event: links"), "{first}");
    // As `mclient revoke --user alice` does.
    assert!(s.state.auth().revoke(&RevokeTarget::User("alice".into())) > 0);
    s.state.recheck_streams();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !seen.contains("event: bye") && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), body.next()).await {
            Ok(Some(Ok(b))) => seen.push_str(&String::from_utf8_lossy(&b)),
            _ => break,
        }
    }
    assert!(seen.contains("event: bye"), "{seen}");
    assert_eq!(
        call(&w, get("/api/state", Some(&cookie))).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn addresses_outside_the_allow_list_are_refused() {
    // Driven without a connection, a request comes from 127.0.0.1: outside 10/8.
    let s = TestServer::start_with(config(&["10.0.0.0/8"]), true).await;
    let w = Web::new(s.state.clone(), false).unwrap_or_else(|e| panic!("{e}"));
    let r = call(&w, get("/", None)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A real listener closes such a peer at accept: no HTTP answer at all.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(web::serve(l, w, None));
    let mut c = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, c.read_to_end(&mut got)).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn a_real_listener_serves_the_login_page_within_the_weight_budget() {
    let (_s, w) = server().await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(web::serve(l, w.clone(), None));
    let mut total = 0;
    for path in ["/", "/app.css", "/app.js"] {
        let mut c = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        c.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let mut got = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, c.read_to_end(&mut got)).await;
        let t = String::from_utf8_lossy(&got);
        assert!(t.starts_with("HTTP/1.1 200 OK"), "{path}: {t}");
        total += got.len();
    }
    // The logged-in page (instead of the login form) is part of the first view too.
    let (_, cookie) = login(&w, "alice", "alice-pw").await;
    total += text(call(&w, get("/", Some(&cookie))).await).await.len();
    assert!(total < 150 * 1024, "first view {total} bytes");
}

#[tokio::test]
async fn under_tls_the_page_is_https_with_the_grpc_certificate_and_a_secure_cookie() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let (s, _) = server().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = masqdial_server::setup::gen_cert(dir.path(), &["127.0.0.1".to_string()], 30)
        .unwrap_or_else(|e| panic!("{e}"));
    let acceptor = web::tls_acceptor(&out.cert, &out.key).unwrap_or_else(|e| panic!("{e}"));
    let w = Web::new(s.state.clone(), true).unwrap_or_else(|e| panic!("{e}"));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(web::serve(l, w, Some(acceptor)));

    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&out.ca_cert).unwrap_or_else(|e| panic!("{e}"));
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots
            .add(c.unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name = ServerName::try_from("127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
    let mut tls = tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .unwrap_or_else(|_| panic!("handshake timed out"))
        .unwrap_or_else(|e| panic!("{e}"));
    let body = "user=alice&password=alice-pw";
    let req = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(req.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut got = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut got)).await;
    let t = String::from_utf8_lossy(&got);
    assert!(t.starts_with("HTTP/1.1 303"), "{t}");
    let cookie = t
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

/// A connection to `addr` from the loopback source address `from`.
async fn connect_from(from: &str, addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    let src: std::net::SocketAddr = format!("{from}:0")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    sock.bind(src).unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(TIMEOUT, sock.connect(addr))
        .await
        .unwrap_or_else(|_| panic!("connect timed out"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Whether the server has closed `c` (EOF or reset) without sending anything; a connection
/// still open reads nothing within a short wait.
async fn closed_by_server(c: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut b = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(300), c.read(&mut b)).await {
        Err(_) => false,
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!("idle connection got {n} bytes"),
    }
}

/// One scrape on a new connection from `from`: the whole answer.
async fn scrape_from(from: &str, addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = connect_from(from, addr).await;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut got = Vec::new();
    tokio::time::timeout(TIMEOUT, c.read_to_end(&mut got))
        .await
        .unwrap_or_else(|_| panic!("scrape from {from} not answered"))
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&got).into_owned()
}

/// Issue 26 / finding N9: slow and idle clients on the metrics endpoint. One host's idle
/// connections take at most its per-address share (the rest are closed at once) and do not
/// hold up another host's scrape, which is answered while they are still open, i.e. without
/// waiting for any of them to be cut. A slow-loris request that never finishes its header is
/// cut at the handshake limit, and its slot serves a scrape again afterwards.
#[tokio::test]
async fn slow_and_idle_metrics_clients_do_not_hold_up_a_scrape() {
    let s = TestServer::start_with(config(&["127.0.0.0/8"]), true).await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(masqdial_server::metrics::serve(l, s.state.clone()));
    let limits = masqdial_server::metrics::limits();

    // One host opens twice its per-address cap and sends nothing.
    let mut idle = Vec::new();
    for _ in 0..2 * limits.max_per_ip {
        idle.push(connect_from("127.0.0.2", addr).await);
    }
    // Another host half-sends a request, a byte at a time (slow loris).
    use tokio::io::AsyncWriteExt;
    let mut loris = connect_from("127.0.0.3", addr).await;
    loris
        .write_all(b"GET /metrics HTTP/1.1\r\nHo")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let t = scrape_from("127.0.0.4", addr).await;
    assert!(t.starts_with("HTTP/1.1 200 OK"), "{t}");
    assert!(t.contains("# EOF"), "{t}");

    // The scrape did not wait for a slot: the first host's connections within its cap are
    // still open; those over it were closed without an answer.
    let mut open = 0;
    let mut closed = 0;
    for c in &mut idle {
        if closed_by_server(c).await {
            closed += 1;
        } else {
            open += 1;
        }
    }
    assert_eq!(
        (open, closed),
        (limits.max_per_ip, limits.max_per_ip),
        "idle connections within the per-address cap stay, the rest are refused"
    );
    assert!(!closed_by_server(&mut loris).await, "loris cut too early");

    // The slow loris is cut by the handshake limit (bounded wait: the limit plus margin).
    let cut = tokio::time::timeout(limits.handshake_timeout + TIMEOUT, async {
        loop {
            if closed_by_server(&mut loris).await {
                break;
            }
            let _ = loris.write_all(b"s").await;
        }
    })
    .await;
    assert!(cut.is_ok(), "a request never finished was not cut");
    // ...and the same host scrapes normally afterwards.
    let t = scrape_from("127.0.0.3", addr).await;
    assert!(t.starts_with("HTTP/1.1 200 OK"), "{t}");
    s.stop().await;
}
