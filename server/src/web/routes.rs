//! The handlers. Each authenticates by the session cookie, authorizes by the same table as
//! the gRPC services ([`Rpc`]), checks the CSRF token on every POST, then calls the domain
//! handles (link manager, NAT control, auth). No decisions of their own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::json;

use super::http::{self, caller, check_csrf, Refused};
use super::{events, views, Peer, Web, MAX_BODY};
use crate::auth::RevokeTarget;
use crate::config::UserRole;
use crate::link::manager::Who;
use crate::link::{DialOutcome, HangupOutcome};
use crate::rpc::{ApiError, Caller, ControlPlane, Rpc};

const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_HTML: &str = include_str!("assets/app.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The connection a request came on, if the accept loop recorded it.
pub struct MaybePeer(pub Option<Peer>);

impl<S: Send + Sync> FromRequestParts<S> for MaybePeer {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(MaybePeer(parts.extensions.get::<Peer>().cloned()))
    }
}

type Fields = Form<HashMap<String, String>>;

pub(super) fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/api/state", get(state))
        .route("/api/connections/{name}", get(details))
        .route("/api/chains", get(chains))
        .route("/api/sessions", get(sessions))
        .route("/sessions/{id}/revoke", post(revoke))
        .route("/connections/{name}/dial", post(dial))
        .route("/connections/{name}/hangup", post(hangup))
        .route("/events", get(events_stream))
        .fallback(|| async { Refused(StatusCode::NOT_FOUND, "no such page".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            http::guard,
        ))
        .with_state(web)
}

async fn asset(body: &'static str, ctype: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn login_page(status: StatusCode, message: &str) -> Response {
    let body = LOGIN_HTML.replace("{{message}}", &escape_html(message));
    (status, Html(body)).into_response()
}

async fn index(State(web): State<Web>, headers: HeaderMap, peer: MaybePeer) -> Response {
    match caller(&web, &headers, peer.0.as_ref()) {
        Ok(_) => Html(APP_HTML).into_response(),
        Err(_) => login_page(StatusCode::OK, ""),
    }
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

async fn login(State(web): State<Web>, peer: MaybePeer, Form(f): Fields) -> Response {
    let user = f.get("user").cloned().unwrap_or_default();
    let password = f.get("password").cloned().unwrap_or_default();
    let addr = http::peer_of(peer.0.as_ref());
    match web.login.check_login(user, password, addr).await {
        Ok(issued) => {
            let max_age = issued
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
                .as_secs();
            let cookie = http::session_cookie(&issued.token, max_age, web.tls);
            let mut r = see_other("/");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            let Refused(status, msg) = Refused::from(e);
            crate::counters::global().auth_failure(match status {
                StatusCode::UNAUTHORIZED => "bad_credentials",
                _ => "throttled",
            });
            login_page(status, &msg)
        }
    }
}

/// Authenticate and check the CSRF token of a POST.
fn post_caller(
    web: &Web,
    headers: &HeaderMap,
    peer: &MaybePeer,
    f: &HashMap<String, String>,
) -> Result<(Caller, String), Refused> {
    let (c, token) = caller(web, headers, peer.0.as_ref())?;
    check_csrf(web, &token, f.get("csrf").map(String::as_str))?;
    Ok((c, token))
}

async fn logout(
    State(web): State<Web>,
    headers: HeaderMap,
    peer: MaybePeer,
    Form(f): Fields,
) -> Result<Response, Refused> {
    let (c, token) = post_caller(&web, &headers, &peer, &f)?;
    web.state
        .auth()
        .logout(&token)
        .map_err(|e| Refused(StatusCode::UNAUTHORIZED, e.to_string()))?;
    web.state.recheck_streams();
    tracing::info!(user = %c.user, peer = %c.peer, "web logout");
    let mut r = see_other("/");
    if let Ok(v) = HeaderValue::from_str(&http::cleared_cookie(web.tls)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

fn control(web: &Web) -> Result<&ControlPlane, Refused> {
    web.state.control().map_err(Refused::from)
}

fn known(web: &Web, name: &str) -> Result<(), Refused> {
    crate::rpc::bounded_name(name)?;
    if web
        .state
        .config()
        .connections
        .iter()
        .any(|c| c.name == name)
    {
        Ok(())
    } else {
        Err(Refused(
            StatusCode::NOT_FOUND,
            format!("no connection named `{}`", crate::rpc::truncated(name, 64)),
        ))
    }
}

async fn state(
    State(web): State<Web>,
    headers: HeaderMap,
    peer: MaybePeer,
) -> Result<Json<serde_json::Value>, Refused> {
    let (c, token) = caller(&web, &headers, peer.0.as_ref())?;
    Rpc::ListConnections.authorize(&c, None)?;
    let ctl = control(&web)?;
    let mut v = views::snapshot(&ctl.links, &c);
    if let Some(o) = v.as_object_mut() {
        o.insert("user".into(), json!(c.user));
        o.insert(
            "role".into(),
            json!(if c.role == UserRole::Admin {
                "admin"
            } else {
                "user"
            }),
        );
        o.insert(
            "csrf".into(),
            json!(http::csrf_token(&web.csrf_key, &token)),
        );
        o.insert("session".into(), json!(c.session));
    }
    Ok(Json(v))
}

async fn details(
    State(web): State<Web>,
    Path(name): Path<String>,
    headers: HeaderMap,
    peer: MaybePeer,
) -> Result<Json<serde_json::Value>, Refused> {
    let (c, _) = caller(&web, &headers, peer.0.as_ref())?;
    known(&web, &name)?;
    Rpc::GetConnection.authorize(&c, Some(&name))?;
    let links = &control(&web)?.links;
    let cfg = links.connection(&name).map_err(ApiError::from)?.clone();
    let (transcript, ppp) = links.details(&name).map_err(ApiError::from)?;
    Ok(Json(json!({
        "connection": views::connection(links, &c, &name),
        "numbers": cfg.numbers,
        "modems": cfg.modems,
        "ppp": ppp.as_ref().map(|p| views::ppp_lines(&p.options)),
        "ppp_stats": ppp.as_ref().map(|p| format!("{:?}", p.stats)),
        "transcript": transcript.iter().map(|t| format!("{} {:?} {}", views::unix(t.at), t.kind, t.text)).collect::<Vec<_>>(),
    })))
}

async fn chains(
    State(web): State<Web>,
    headers: HeaderMap,
    peer: MaybePeer,
) -> Result<Response, Refused> {
    let (c, _) = caller(&web, &headers, peer.0.as_ref())?;
    // The chains page is the admin's (ListChains needs only a login over gRPC).
    Rpc::ListSessions.authorize(&c, None)?;
    let view = crate::nat_control::View::Chains {
        chain: None,
        options: nat_core::chains::ListOptions {
            numeric: true,
            verbose: true,
            exact: false,
            line_numbers: false,
        },
    };
    let text = control(&web)?
        .nat
        .render(&view)
        .map_err(|e| Refused::from(ApiError::from(e)))?;
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

async fn sessions(
    State(web): State<Web>,
    headers: HeaderMap,
    peer: MaybePeer,
) -> Result<Json<serde_json::Value>, Refused> {
    let (c, _) = caller(&web, &headers, peer.0.as_ref())?;
    Rpc::ListSessions.authorize(&c, None)?;
    let list: Vec<_> = web
        .state
        .auth()
        .sessions(SystemTime::now())
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id, "user": s.user, "role": s.role.to_string(),
                "peer": s.peer.map(|p| p.ip().to_string()),
                "issued": views::unix(s.issued_at), "expires": views::unix(s.expires_at),
                "mine": s.id == c.session,
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": list })))
}

async fn revoke(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: HeaderMap,
    peer: MaybePeer,
    Form(f): Fields,
) -> Result<Response, Refused> {
    let (c, _) = post_caller(&web, &headers, &peer, &f)?;
    Rpc::RevokeSession.authorize(&c, None)?;
    let id = crate::rpc::bounded_name(&id)?;
    let n = web.state.auth().revoke(&RevokeTarget::Id(id.clone()));
    if n == 0 {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            format!("no live session `{id}`"),
        ));
    }
    let ended = web.state.recheck_streams();
    tracing::info!(admin = %c.user, peer = %c.peer, session = %id, streams = ended, "web: session revoked");
    Ok(if wants_json(&headers) {
        Json(json!({ "revoked": n })).into_response()
    } else {
        see_other("/")
    })
}

async fn dial(
    State(web): State<Web>,
    Path(name): Path<String>,
    headers: HeaderMap,
    peer: MaybePeer,
    Form(f): Fields,
) -> Result<Response, Refused> {
    let (c, _) = post_caller(&web, &headers, &peer, &f)?;
    known(&web, &name)?;
    Rpc::Dial.authorize(&c, Some(&name))?;
    tracing::info!(user = %c.user, peer = %c.peer, connection = %name, "web dial");
    let who = Who {
        user: c.user.clone(),
        host: c.peer.ip().to_string(),
    };
    let outcome = control(&web)?
        .links
        .dial(&name, who)
        .await
        .map_err(ApiError::from)?;
    let said = match outcome {
        DialOutcome::Started => "started".to_string(),
        DialOutcome::Joined(s) => format!("joined ({})", views::state_name(s)),
        DialOutcome::AlreadyHolding(s) => format!("already holding ({})", views::state_name(s)),
        DialOutcome::Busy => {
            return Err(Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{name} is hanging up"),
            ))
        }
    };
    Ok(if wants_json(&headers) {
        (StatusCode::ACCEPTED, Json(json!({ "outcome": said }))).into_response()
    } else {
        see_other("/")
    })
}

async fn hangup(
    State(web): State<Web>,
    Path(name): Path<String>,
    headers: HeaderMap,
    peer: MaybePeer,
    Form(f): Fields,
) -> Result<Response, Refused> {
    let (c, _) = post_caller(&web, &headers, &peer, &f)?;
    known(&web, &name)?;
    let force = f.get("force").is_some_and(|v| v == "1" || v == "true");
    Rpc::Hangup.authorize(&c, Some(&name))?;
    if force {
        Rpc::HangupForce.authorize(&c, Some(&name))?;
    }
    tracing::info!(user = %c.user, peer = %c.peer, connection = %name, force, "web hangup");
    let who = Who {
        user: c.user.clone(),
        host: c.peer.ip().to_string(),
    };
    let out = control(&web)?
        .links
        .hangup(&name, who, force)
        .await
        .map_err(ApiError::from)?;
    let body = match out {
        HangupOutcome::Dropping => json!({ "dropped": true, "remaining": [] }),
        HangupOutcome::Released { remaining } => {
            json!({ "dropped": false, "remaining": remaining })
        }
        HangupOutcome::NotHolder | HangupOutcome::NotActive => {
            return Err(Refused(
                StatusCode::CONFLICT,
                format!("{name} is not held by you"),
            ))
        }
    };
    Ok(if wants_json(&headers) {
        Json(body).into_response()
    } else {
        see_other("/")
    })
}

async fn events_stream(
    State(web): State<Web>,
    headers: HeaderMap,
    peer: MaybePeer,
) -> Result<Response, Refused> {
    let (c, _) = caller(&web, &headers, peer.0.as_ref())?;
    Rpc::WatchLinks.authorize(&c, None)?;
    let ctl = control(&web)?.clone();
    let guard = web
        .state
        .open_stream(&c, peer.0.as_ref().map(|p| p.conn.clone()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(64);
    let stop = web.state.shutdown_token();
    web.state.spawn(events::run(ctl, c, guard, stop, tx));
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
