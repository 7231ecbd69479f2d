//! The one error table of the rpc layer: [`ApiError`] (and the domain errors it is made
//! from) → [`tonic::Status`], with the caps on what an error echoes back. Must not touch
//! requests, callers or streams.

use tonic::Status;

use crate::auth::AuthError;
use crate::config::ReloadRefused;
use crate::link::manager::LinkError;
use crate::nat_control::NatError;
use nat_core::chains::ChainError;

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

/// A reload the running server refuses (applied by the composition root, `daemon::reload`).
impl From<ReloadRefused> for ApiError {
    fn from(e: ReloadRefused) -> ApiError {
        match e {
            ReloadRefused::UnknownConnection { .. } => ApiError::FailedPrecondition(e.to_string()),
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
            // "bad rule": no matching rule, or a rule number out of range — a refusal by the
            // kernel (ipchains exits 1), not a malformed request.
            ChainError::NoChain | ChainError::NoTarget | ChainError::BadRule => {
                ApiError::NotFound(e.to_string())
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
