//! Who may call what: the caller a bearer token resolves to ([`Caller`]), the single
//! authorization table ([`Rpc::access`]) and the two interceptors (LAN allow-list first,
//! then the token). Must not touch streams or the error table (it only returns
//! [`ApiError`]s).

use std::net::SocketAddr;
use std::time::SystemTime;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::limit::ConnInfo;
use super::{ApiError, ServerState};
use crate::auth::{AuthError, Identity};
use crate::config::UserRole;

/// An authenticated caller, as the services see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User name.
    pub user: String,
    /// Role.
    pub role: UserRole,
    /// Client address.
    pub peer: SocketAddr,
    /// Connections this caller may dial (all for admins).
    pub allowed: Vec<String>,
    /// Id of the session (token) the request came with.
    pub session: String,
    /// When that token expires.
    pub expires_at: SystemTime,
}

impl Caller {
    pub(super) fn from_identity(id: Identity, peer: SocketAddr) -> Caller {
        Caller {
            user: id.user,
            role: id.role,
            peer,
            allowed: id.allowed,
            session: id.session,
            expires_at: id.expires_at,
        }
    }

    /// Whether the caller may dial / hang up `connection`.
    pub fn may_use(&self, connection: &str) -> bool {
        self.role == UserRole::Admin || self.allowed.iter().any(|c| c == connection)
    }
}

/// Every rpc behind a token, for the authorization table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Rpc {
    ListConnections,
    GetConnection,
    Dial,
    Hangup,
    HangupForce,
    Status,
    Who,
    WatchLinks,
    ListModems,
    ListMasq,
    WatchMasq,
    FreePorts,
    GetTimeouts,
    SetTimeouts,
    ListChains,
    AppendRule,
    InsertRule,
    ReplaceRule,
    DeleteRule,
    FlushChain,
    ZeroCounters,
    NewChain,
    DeleteChain,
    SetPolicy,
    CheckPacket,
    ApplyRuleset,
    SaveRuleset,
    RenderView,
    GetCounters,
    PortFw,
    DeleteMasq,
    ListSessions,
    RevokeSession,
}

/// Who may call an rpc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any logged-in user.
    AnyUser,
    /// A user whose allow-list names the target connection; admins always.
    AllowedConnection,
    /// Admins only.
    Admin,
}

impl Rpc {
    /// The authorization table: the one place that says who may call what.
    pub fn access(self) -> Access {
        use Rpc::*;
        match self {
            ListConnections | GetConnection | Status | Who | WatchLinks | ListModems | ListMasq
            | WatchMasq | FreePorts | GetTimeouts | ListChains | CheckPacket | SaveRuleset
            | RenderView | GetCounters => Access::AnyUser,
            Dial | Hangup => Access::AllowedConnection,
            HangupForce | SetTimeouts | AppendRule | InsertRule | ReplaceRule | DeleteRule
            | FlushChain | ZeroCounters | NewChain | DeleteChain | SetPolicy | ApplyRuleset
            | PortFw | DeleteMasq | ListSessions | RevokeSession => Access::Admin,
        }
    }

    /// Check `caller` against the table; `connection` is the target of Dial/Hangup.
    pub fn authorize(self, caller: &Caller, connection: Option<&str>) -> Result<(), ApiError> {
        let ok = match self.access() {
            Access::AnyUser => true,
            Access::Admin => caller.role == UserRole::Admin,
            Access::AllowedConnection => connection.is_some_and(|c| caller.may_use(c)),
        };
        if ok {
            return Ok(());
        }
        Err(ApiError::PermissionDenied(
            match (self.access(), connection) {
                (Access::AllowedConnection, Some(c)) => {
                    format!("user `{}` may not use connection `{c}`", caller.user)
                }
                _ => format!("{self:?} requires the admin role"),
            },
        ))
    }
}

/// The connection a request came on (our accept loop's bookkeeping), if any.
pub(super) fn conn_of<T>(req: &Request<T>) -> Option<&ConnInfo> {
    let ext = req.extensions();
    ext.get::<ConnInfo>().or_else(|| {
        ext.get::<tonic::transport::server::TlsConnectInfo<ConnInfo>>()
            .map(|t| t.get_ref())
    })
}

/// The client address of a request (set by tonic for TCP and TLS connections).
pub fn peer_of<T>(req: &Request<T>) -> Result<SocketAddr, Status> {
    conn_of(req)
        .and_then(|c| c.tcp.remote_addr())
        .or_else(|| req.remote_addr())
        .ok_or_else(|| Status::permission_denied("client address unknown"))
}

pub(super) fn bearer<T>(req: &Request<T>) -> Result<&str, AuthError> {
    let v = req
        .metadata()
        .get("authorization")
        .ok_or(AuthError::MissingToken)?;
    let v = v.to_str().map_err(|_| AuthError::MalformedToken)?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .ok_or(AuthError::MalformedToken)?;
    Ok(t.trim())
}

/// The caller the `Authenticate` interceptor stored in the request.
pub(super) fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("not authenticated"))
}

/// Server-wide interceptor: refuse peers outside the LAN allow-list, before anything else
/// (Login, health and reflection included).
#[derive(Clone)]
pub struct AllowListCheck(pub(super) ServerState);

impl Interceptor for AllowListCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let peer = peer_of(&req)?;
        if let Some(c) = conn_of(&req) {
            c.conn.touch();
        }
        if self.0.auth().peer_allowed(peer.ip()) {
            Ok(req)
        } else {
            crate::counters::global().refused("allow_list");
            self.0.shared.log_refused.hit(&peer.ip());
            Err(AuthError::PeerNotAllowed(peer.ip()).into())
        }
    }
}

/// Per-service interceptor for Dialer/Modems/Nat: resolve the bearer token into a
/// [`Caller`] stored in the request extensions.
#[derive(Clone)]
pub struct Authenticate(pub(super) ServerState);

impl Interceptor for Authenticate {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.0.caller_of(&req)?;
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: UserRole, allowed: &[&str]) -> Caller {
        Caller {
            user: "u".into(),
            role,
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            session: "s".into(),
            expires_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn every_nat_mutation_and_forced_hangup_is_admin_only() {
        use Rpc::*;
        for rpc in [
            AppendRule,
            InsertRule,
            ReplaceRule,
            DeleteRule,
            FlushChain,
            ZeroCounters,
            NewChain,
            DeleteChain,
            SetPolicy,
            ApplyRuleset,
            SetTimeouts,
            HangupForce,
            PortFw,
            DeleteMasq,
            ListSessions,
            RevokeSession,
        ] {
            assert_eq!(rpc.access(), Access::Admin, "{rpc:?}");
            assert!(rpc
                .authorize(&caller(UserRole::User, &["isp1"]), Some("isp1"))
                .is_err());
            assert!(rpc
                .authorize(&caller(UserRole::Admin, &[]), Some("isp1"))
                .is_ok());
        }
    }

    #[test]
    fn dial_needs_the_connection_in_the_allow_list() {
        let user = caller(UserRole::User, &["isp1"]);
        assert!(Rpc::Dial.authorize(&user, Some("isp1")).is_ok());
        assert!(Rpc::Hangup.authorize(&user, Some("isp1")).is_ok());
        let e = Rpc::Dial.authorize(&user, Some("isp2"));
        assert!(matches!(e, Err(ApiError::PermissionDenied(_))));
        assert!(Rpc::Dial.authorize(&user, None).is_err());
        assert!(Rpc::Dial
            .authorize(&caller(UserRole::Admin, &[]), Some("isp2"))
            .is_ok());
    }
}
