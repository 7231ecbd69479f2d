//! Per-request checks and answers: the allow-list in force, security headers, cross-site
//! refusal, the session cookie and its CSRF token, plain error answers.

use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Peer, Web};
use crate::rpc::{ApiError, Caller};

/// Name of the session cookie (its value is the session's bearer token).
pub const SESSION_COOKIE: &str = "masqdial_session";

/// The Content-Security-Policy of every answer: nothing inline, nothing from elsewhere.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A refused or failed request: a status and a short plain-text reason.
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut r = (self.0, format!("{}\n", self.1)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        let status = match &e {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ApiError::AlreadyExists(_) | ApiError::FailedPrecondition(_) => StatusCode::CONFLICT,
            ApiError::ResourceExhausted(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Unimplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Cancelled(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refused(status, e.to_string())
    }
}

/// The connection a request came on (always set by the accept loop; a router driven
/// without it, as in unit tests, sees the loopback address).
pub fn peer_of(req_peer: Option<&Peer>) -> std::net::SocketAddr {
    req_peer.map_or_else(
        || std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        |p| p.addr,
    )
}

/// Whether a state-changing request comes from another site (browsers say so in
/// `Sec-Fetch-Site` and `Origin`; a request without either is not a browser's cross-site
/// one, and still needs the CSRF token).
pub fn cross_site(headers: &HeaderMap) -> bool {
    // Fetch metadata is set by the browser itself (a page cannot forge it): when present it
    // decides. Under `Referrer-Policy: no-referrer` browsers send `Origin: null` even on
    // same-origin form posts, so Origin is only looked at without it.
    if let Some(v) = headers.get("sec-fetch-site") {
        return !matches!(v.to_str(), Ok("same-origin") | Ok("none"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return true;
        };
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return true;
        };
        // The origin's host[:port] must be the one the request was sent to.
        let Some((_, rest)) = origin.split_once("://") else {
            return true;
        };
        if !rest.eq_ignore_ascii_case(host) {
            return true;
        }
    }
    false
}

/// Middleware on every request: the peer must still be allowed (a reload may have removed
/// it), cross-site state changes are refused, and every answer carries the security headers.
pub async fn guard(State(web): State<Web>, req: Request, next: Next) -> Response {
    let peer = peer_of(req.extensions().get::<Peer>());
    let mut resp = if !web.state.auth().peer_allowed(peer.ip()) {
        crate::counters::global().refused("allow_list");
        Refused(
            StatusCode::FORBIDDEN,
            format!(
                "client address {} is not in the server's allow-list",
                peer.ip()
            ),
        )
        .into_response()
    } else if req.method() != Method::GET
        && req.method() != Method::HEAD
        && cross_site(req.headers())
    {
        tracing::debug!(%peer, "cross-site request refused");
        Refused(StatusCode::FORBIDDEN, "cross-site request refused".into()).into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The session token in the request's cookie, if it has the token's shape (64 hex digits);
/// anything else is no session.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            let Some((k, val)) = part.trim().split_once('=') else {
                continue;
            };
            if k == SESSION_COOKIE
                && val.len() == 2 * crate::auth::TOKEN_BYTES
                && val.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Some(val.to_ascii_lowercase());
            }
        }
    }
    None
}

/// The caller of a request with a live session, with its token.
pub fn caller(
    web: &Web,
    headers: &HeaderMap,
    peer: Option<&Peer>,
) -> Result<(Caller, String), Refused> {
    let token = session_token(headers)
        .ok_or_else(|| Refused(StatusCode::UNAUTHORIZED, "log in first".into()))?;
    let id = web
        .state
        .auth()
        .authenticate(&token, SystemTime::now())
        .map_err(|e| Refused(StatusCode::UNAUTHORIZED, e.to_string()))?;
    Ok((
        Caller {
            user: id.user,
            role: id.role,
            peer: peer_of(peer),
            allowed: id.allowed,
            session: id.session,
            expires_at: id.expires_at,
        },
        token,
    ))
}

/// The CSRF token of a session: a keyed MAC of its token (per process, per session; never
/// stored).
pub fn csrf_token(key: &ring::hmac::Key, session_token: &str) -> String {
    hex::encode(ring::hmac::sign(key, session_token.as_bytes()).as_ref())
}

/// Check a form's CSRF token against the session's (constant time).
pub fn check_csrf(web: &Web, session_token: &str, given: Option<&str>) -> Result<(), Refused> {
    let refused = || Refused(StatusCode::FORBIDDEN, "missing or wrong CSRF token".into());
    let given = given.ok_or_else(refused)?;
    let tag = hex::decode(given).map_err(|_| refused())?;
    ring::hmac::verify(&web.csrf_key, session_token.as_bytes(), &tag).map_err(|_| refused())
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(token: &str, max_age_s: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    )
}

/// The `Set-Cookie` value that ends the session cookie.
pub fn cleared_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append(*k, v);
            }
        }
        h
    }

    #[test]
    fn cross_site_is_told_by_fetch_metadata_and_origin() {
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!cross_site(&headers(&[
            ("origin", "http://127.0.0.1:2280"),
            ("host", "127.0.0.1:2280")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:2280")
        ])));
        assert!(cross_site(&headers(&[("origin", "null"), ("host", "a")])));
        // A same-origin form post under no-referrer: Origin is null, fetch metadata says so.
        assert!(!cross_site(&headers(&[
            ("origin", "null"),
            ("host", "a"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "http://a"),
            ("host", "a"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(cross_site(&headers(&[("origin", "http://a")])));
    }

    #[test]
    fn only_a_well_formed_session_cookie_is_read() {
        let t = "ab".repeat(32);
        assert_eq!(
            session_token(&headers(&[(
                "cookie",
                &format!("x=1; {SESSION_COOKIE}={t}")
            )])),
            Some(t.clone())
        );
        assert_eq!(
            session_token(&headers(&[(
                "cookie",
                &format!("{SESSION_COOKIE}=zz{}", &t[2..])
            )])),
            None
        );
        assert_eq!(
            session_token(&headers(&[("cookie", &format!("{SESSION_COOKIE}={t}0"))])),
            None
        );
        assert_eq!(session_token(&headers(&[("cookie", ";;=;")])), None);
    }

    #[test]
    fn cookie_flags() {
        let c = session_cookie("aa", 60, true);
        for f in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(c.contains(f), "{c}");
        }
        assert!(!session_cookie("aa", 60, false).contains("Secure"));
    }
}
