//! From any failure to one plain sentence, a next step and an exit code: the one error table
//! of mclient (and of mtui, which can show [`Failure::message`] and [`Failure::hint`]).
//!
//! No rpc names, no tonic debug text: gRPC statuses are rewritten per code, transport errors
//! become "cannot reach the server". Pure: no I/O.

use std::error::Error as StdError;

use serde_json::{json, Value};
use tonic::Code;

/// What went wrong, by exit code (the table in `mclient --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 1: local error (file, terminal), or a failure inside the server.
    Local,
    /// 2: usage error (bad command line, unsafe combination of options).
    Usage,
    /// 3: not logged in, token expired or revoked, wrong password.
    NotLoggedIn,
    /// 4: not allowed.
    Denied,
    /// 5: no such connection, chain or rule.
    NotFound,
    /// 6: invalid argument the server refused.
    Invalid,
    /// 7: not possible now.
    NotNow,
    /// 8: server unreachable (or lost, or not answering in time).
    Unreachable,
    /// 9: not supported by this server.
    Unsupported,
    /// 10: out of modems or ports.
    Exhausted,
    /// 11: cancelled.
    Cancelled,
    /// 12: the dial ended in failure.
    DialFailed,
}

impl Kind {
    /// Every kind, in exit-code order.
    pub const ALL: [Kind; 12] = [
        Kind::Local,
        Kind::Usage,
        Kind::NotLoggedIn,
        Kind::Denied,
        Kind::NotFound,
        Kind::Invalid,
        Kind::NotNow,
        Kind::Unreachable,
        Kind::Unsupported,
        Kind::Exhausted,
        Kind::Cancelled,
        Kind::DialFailed,
    ];

    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Local => 1,
            Kind::Usage => 2,
            Kind::NotLoggedIn => 3,
            Kind::Denied => 4,
            Kind::NotFound => 5,
            Kind::Invalid => 6,
            Kind::NotNow => 7,
            Kind::Unreachable => 8,
            Kind::Unsupported => 9,
            Kind::Exhausted => 10,
            Kind::Cancelled => 11,
            Kind::DialFailed => 12,
        }
    }

    /// Stable machine name (the `kind` of a JSON error).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Usage => "usage",
            Kind::NotLoggedIn => "not_logged_in",
            Kind::Denied => "denied",
            Kind::NotFound => "not_found",
            Kind::Invalid => "invalid",
            Kind::NotNow => "not_now",
            Kind::Unreachable => "unreachable",
            Kind::Unsupported => "unsupported",
            Kind::Exhausted => "exhausted",
            Kind::Cancelled => "cancelled",
            Kind::DialFailed => "dial_failed",
        }
    }

    /// The kind of a gRPC status code (as the server means it; transport failures are
    /// recognised separately by [`classify`]).
    pub fn of_code(code: Code) -> Kind {
        match code {
            Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => Kind::Local,
            Code::Unauthenticated => Kind::NotLoggedIn,
            Code::PermissionDenied => Kind::Denied,
            Code::NotFound => Kind::NotFound,
            Code::InvalidArgument | Code::OutOfRange => Kind::Invalid,
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => Kind::NotNow,
            Code::Unavailable | Code::DeadlineExceeded => Kind::Unreachable,
            Code::Unimplemented => Kind::Unsupported,
            Code::ResourceExhausted => Kind::Exhausted,
            Code::Cancelled => Kind::Cancelled,
        }
    }
}

/// A failure ready to show: one sentence, a next step, an exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What went wrong.
    pub kind: Kind,
    /// One plain sentence (ends with a full stop).
    pub message: String,
    /// The next step, if there is a useful one.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with a message (made into a sentence) and an optional hint.
    pub fn new(kind: Kind, message: impl AsRef<str>, hint: Option<String>) -> Failure {
        Failure {
            kind,
            message: sentence(message.as_ref()),
            hint,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl AsRef<str>, hint: impl Into<String>) -> Failure {
        Failure::new(Kind::Usage, message, Some(hint.into()))
    }

    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// `mclient: <message>` and, if any, `hint: <next step>`, each on its own line.
    pub fn human(&self, program: &str) -> String {
        match &self.hint {
            Some(h) => format!("{program}: {}\nhint: {h}\n", self.message),
            None => format!("{program}: {}\n", self.message),
        }
    }

    /// `{"error": {"kind", "exit_code", "message", "hint"}}`.
    pub fn json(&self) -> Value {
        json!({"error": {"kind": self.kind.name(), "exit_code": self.exit_code(),
                         "message": self.message, "hint": self.hint}})
    }
}

/// What answered on the server's port, as [`crate::conn::identify`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// mserver (or a server that speaks its Auth service).
    Masqdial,
    /// Something that is not gRPC: an HTTP server (with its status), or a service that
    /// does not speak HTTP/2 at all.
    NotGrpc {
        /// The HTTP status it answered with, if it was HTTP.
        http_status: Option<u16>,
    },
    /// A gRPC server without masqdial's services.
    GrpcNotMasqdial,
    /// Nothing to judge by (no answer in time, connection refused).
    Unknown,
}

/// Judge the answer to [`crate::conn::identify`]'s question. mserver answers `WhoAmI`
/// without a token with its own status (unauthenticated); a gRPC server without that
/// service answers UNIMPLEMENTED with a real `grpc-status`; an HTTP server answers without
/// one (tonic then maps the HTTP status, and says so); anything else breaks the HTTP/2
/// exchange.
pub fn what_answered(r: &Result<(), tonic::Status>) -> Answered {
    let s = match r {
        Ok(()) => return Answered::Masqdial,
        Err(s) => s,
    };
    let m = s.message().to_lowercase();
    if let Some(at) = m.find("http status code") {
        let http_status = m[at + "http status code".len()..]
            .split(|c: char| !c.is_ascii_digit())
            .find(|t| !t.is_empty())
            .and_then(|t| t.parse().ok());
        return Answered::NotGrpc { http_status };
    }
    if m.contains("content-type") || m.contains("invalid compression flag") {
        return Answered::NotGrpc { http_status: None };
    }
    if s.code() == Code::DeadlineExceeded || (s.code() == Code::Cancelled && m.contains("timeout"))
    {
        return Answered::Unknown;
    }
    if is_transport_status(s) {
        // Bytes came back that are not HTTP/2 (a banner, an HTTP/1 answer): not gRPC. A
        // connection refused, closed or reset tells nothing (mserver itself closes the
        // connection of an address outside its allow-list).
        let mut text = m.clone();
        let mut cur = s.source();
        let mut depth = 0;
        while let Some(e) = cur {
            text.push(' ');
            text.push_str(&e.to_string().to_lowercase());
            depth += 1;
            if depth > 16 {
                break;
            }
            cur = e.source();
        }
        let garbled = [
            "protocol error",
            "http2 error",
            "frame",
            "invalid",
            "malformed",
        ]
        .iter()
        .any(|t| text.contains(t));
        return if garbled {
            Answered::NotGrpc { http_status: None }
        } else {
            Answered::Unknown
        };
    }
    if s.code() == Code::Unimplemented {
        return Answered::GrpcNotMasqdial;
    }
    Answered::Masqdial
}

/// Judge the first bytes a server sent after our HTTP/2 preface ([`crate::conn::sniff`]): an
/// HTTP/2 server starts with a SETTINGS frame (type 4 on stream 0); anything else is not gRPC.
pub fn sniffed(bytes: &[u8]) -> Answered {
    if bytes.len() >= 9 && bytes[3] == 4 && bytes[5..9] == [0, 0, 0, 0] {
        return Answered::Unknown;
    }
    let text = String::from_utf8_lossy(bytes);
    let http_status = text
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse().ok());
    Answered::NotGrpc { http_status }
}

/// The failure (exit 8) for a server port answered by something other than mserver; `None`
/// when it is mserver or nothing could be told.
pub fn not_mserver(answered: &Answered, server: &str) -> Option<Failure> {
    let hint = Some(
        "check the host and port in --server (or MASQDIAL_SERVER); mserver listens on port 224 \
         unless its [server] listen says otherwise"
            .to_string(),
    );
    let message = match answered {
        Answered::Masqdial | Answered::Unknown => return None,
        Answered::NotGrpc {
            http_status: Some(code),
        } => format!(
            "the server at {server} is not mserver: an HTTP server answered (status {code}), \
             not a gRPC server"
        ),
        Answered::NotGrpc { http_status: None } => format!(
            "the server at {server} is not mserver: what answered there is not a gRPC server"
        ),
        Answered::GrpcNotMasqdial => format!(
            "the server at {server} is not mserver: a gRPC server answered, but not masqdial \
             (it has no masqdial service)"
        ),
    };
    Some(Failure::new(Kind::Unreachable, message, hint))
}

/// A dial that ended with a `failed` event.
#[derive(Debug, thiserror::Error)]
#[error("dial failed: {0}")]
pub struct DialFailed(pub String);

/// What the failing command was, for wording the message.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Normalised server URL.
    pub server: String,
    /// User whose token was used (or who tried to log in).
    pub user: Option<String>,
    /// The command as typed, short (`dial`, `hangup --force`, `ipchains -A`).
    pub command: String,
    /// Connection named by the command, if any.
    pub connection: Option<String>,
    /// The rpc deadline in seconds (for "did not answer within").
    pub timeout_secs: u64,
}

impl Context {
    fn login_hint(&self) -> String {
        match &self.user {
            Some(u) => format!("run `mclient -u {u} login`"),
            None => "run `mclient login`".to_string(),
        }
    }
}

/// First letter upper-case, trailing full stop, whitespace collapsed.
pub fn sentence(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s = s.trim_end_matches('.');
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().collect();
    out.push_str(chars.as_str());
    if !(out.ends_with(['?', '!']) || out.ends_with("?)")) {
        out.push('.');
    }
    out
}

/// Remove rpc names (`Dialer.Dial`, `HangupForce`) from a server message.
fn scrub(msg: &str) -> String {
    const SERVICES: [&str; 4] = ["Auth.", "Dialer.", "Modems.", "Nat."];
    msg.split(' ')
        .filter(|w| !SERVICES.iter().any(|s| w.starts_with(s)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The io error behind a transport failure, as a short lower-case reason.
fn io_reason(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    let mut depth = 0;
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return Some(match io.kind() {
                K::ConnectionRefused => "connection refused".into(),
                K::TimedOut => "no answer in time".into(),
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                    "connection dropped".into()
                }
                K::HostUnreachable | K::NetworkUnreachable => "no route to the host".into(),
                _ => {
                    let t = io.to_string();
                    let t = t.split(" (os error").next().unwrap_or(&t).to_lowercase();
                    if t.contains("lookup") || t.contains("name or service") {
                        "host name not found".into()
                    } else {
                        t
                    }
                }
            });
        }
        if e.to_string().to_lowercase().contains("timed out") {
            return Some("no answer in time".into());
        }
        depth += 1;
        if depth > 16 {
            break;
        }
        cur = e.source();
    }
    None
}

/// Whether a status came from the transport (connection lost or never made), not from
/// the server's own answer.
fn is_transport_status(s: &tonic::Status) -> bool {
    if matches!(
        s.code(),
        Code::Ok | Code::Unauthenticated | Code::PermissionDenied | Code::NotFound
    ) {
        return false;
    }
    if s.source().is_some() {
        return true;
    }
    let m = s.message().to_lowercase();
    [
        "transport error",
        "error trying to connect",
        "connection error",
        "h2 protocol error",
        "connection closed",
        "broken pipe",
        "connection reset",
        "tcp connect error",
    ]
    .iter()
    .any(|t| m.contains(t))
}

fn unreachable(ctx: &Context, reason: Option<String>) -> Failure {
    // A certificate the client refused: nothing was sent; the fix is on the TLS side.
    let hint = if reason.as_deref().is_some_and(|r| r.contains("certificate")) {
        "nothing was sent; check --ca (the CA that signed the server's certificate), that the certificate names the host in --server, and that it has not expired"
    } else {
        "check that mserver is running there and that --server (or MASQDIAL_SERVER) names it"
    };
    let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
    Failure::new(
        Kind::Unreachable,
        format!("cannot reach the server at {}{reason}", ctx.server),
        Some(hint.into()),
    )
}

/// Turn any error into a [`Failure`] worded for `ctx`.
pub fn classify(err: &anyhow::Error, ctx: &Context) -> Failure {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.clone();
        }
        if let Some(s) = cause.downcast_ref::<tonic::Status>() {
            return from_status(s, ctx);
        }
        if let Some(d) = cause.downcast_ref::<DialFailed>() {
            let name = ctx.connection.as_deref().unwrap_or("the connection");
            return Failure::new(
                Kind::DialFailed,
                format!("dialling {name} failed: {}", d.0.trim_end_matches('.')),
                Some(format!(
                    "`mclient cinfo {name}` shows the transcript of the attempt"
                )),
            );
        }
        if let Some(t) = cause.downcast_ref::<tonic::transport::Error>() {
            return unreachable(ctx, io_reason(t));
        }
        if let Some(c) = cause.downcast_ref::<clap::Error>() {
            return Failure::new(Kind::Usage, c.to_string().trim(), None);
        }
    }
    // Our own errors: anyhow context chains, already plain text.
    Failure::new(Kind::Local, format!("{err:#}"), None)
}

/// A CANCELLED status whose transport error says the server closed the connection (as
/// mserver does at accept for addresses outside its allow-list).
fn closed_by_server(s: &tonic::Status) -> bool {
    if s.code() != Code::Cancelled {
        return false;
    }
    let mut e: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    while let Some(x) = e {
        if x.to_string().contains("connection closed") {
            return true;
        }
        e = x.source();
    }
    false
}

/// Word a gRPC status for `ctx`.
pub fn from_status(s: &tonic::Status, ctx: &Context) -> Failure {
    // The client-side deadline (tonic reports it as CANCELLED "Timeout expired").
    let timed_out = s.code() == Code::DeadlineExceeded
        || (s.code() == Code::Cancelled && s.message().to_lowercase().contains("timeout expired"));
    if closed_by_server(s) {
        return Failure::new(
            Kind::Unreachable,
            format!("the server at {} closed the connection", ctx.server),
            Some("is this address in the server's allow-list ([server] allow)?".into()),
        );
    }
    if timed_out {
        return Failure::new(
            Kind::Unreachable,
            format!(
                "the server at {} did not answer within {} s",
                ctx.server, ctx.timeout_secs
            ),
            Some("check the server and the network, or raise --timeout".into()),
        );
    }
    if is_transport_status(s) {
        let reason = io_reason(s).or_else(|| {
            s.source().and_then(io_reason).or_else(|| {
                let m = s.message().to_lowercase();
                (m.contains("closed") || m.contains("reset")).then(|| "connection dropped".into())
            })
        });
        return unreachable(ctx, reason);
    }
    let msg = scrub(s.message());
    let user = ctx.user.as_deref().unwrap_or("you");
    let kind = Kind::of_code(s.code());
    match s.code() {
        Code::Unauthenticated if ctx.command == "login" => Failure::new(
            kind,
            format!("the server refused the login of {user}: wrong user name or password"),
            Some("check the name (-u USER) and the password, then try again".into()),
        ),
        Code::Unauthenticated => Failure::new(
            kind,
            format!(
                "the server no longer accepts the token of {user} at {} (expired or revoked)",
                ctx.server
            ),
            Some(ctx.login_hint()),
        ),
        Code::PermissionDenied if msg.contains("requires the admin role") => Failure::new(
            kind,
            format!("only an admin may run `{}`; you are {user}", ctx.command),
            Some("log in as an admin (`mclient -u ADMIN login`) and add `-u ADMIN`".into()),
        ),
        Code::PermissionDenied if msg.contains("may not use connection") => Failure::new(
            kind,
            &msg,
            Some(
                "`mclient whoami` lists the connections you may use; an admin can add more".into(),
            ),
        ),
        Code::PermissionDenied => Failure::new(
            kind,
            format!("the server refused: {msg}"),
            Some("ask the server's admin (its `allow` list or your user entry)".into()),
        ),
        Code::NotFound => Failure::new(kind, &msg, Some(not_found_hint(ctx))),
        Code::InvalidArgument | Code::OutOfRange => Failure::new(
            kind,
            &msg,
            Some(format!(
                "`mclient help {}` shows the arguments",
                ctx.command.split(' ').next().unwrap_or("")
            )),
        ),
        // The server's budget refusals name the limit and when it reopens.
        Code::FailedPrecondition | Code::ResourceExhausted
            if msg.contains("dialling windows")
                || msg.contains("byte quota")
                || msg.contains("connect time") =>
        {
            Failure::new(
                kind,
                &msg,
                Some("`mclient cinfo NAME` shows the connection's budget and windows".into()),
            )
        }
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => Failure::new(
            kind,
            &msg,
            Some("`mclient status` shows the links; try again once that has changed".into()),
        ),
        Code::ResourceExhausted
            if ctx.command.starts_with("ipchains") || ctx.command.starts_with("restore") =>
        {
            Failure::new(
                kind,
                &msg,
                Some("`mclient ipchains -L -n` lists the rules and chains".into()),
            )
        }
        Code::ResourceExhausted => Failure::new(
            kind,
            &msg,
            Some("wait until a modem or port is free (`mclient modems`, `mclient ports`)".into()),
        ),
        Code::Unavailable => Failure::new(
            kind,
            format!("the server cannot do that right now: {msg}"),
            Some("try again later; the server's log tells why".into()),
        ),
        Code::DeadlineExceeded => Failure::new(
            kind,
            format!(
                "the server at {} did not answer within {} s",
                ctx.server, ctx.timeout_secs
            ),
            Some("check the server and the network, or raise --timeout".into()),
        ),
        Code::Unimplemented => Failure::new(
            kind,
            format!("this server does not support `{}`", ctx.command),
            Some("upgrade mserver, or use a matching mclient".into()),
        ),
        Code::Cancelled => Failure::new(kind, format!("cancelled: {msg}"), None),
        Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => Failure::new(
            kind,
            format!("the server failed: {msg}"),
            Some("the server's log (journalctl -u mserver) has the details".into()),
        ),
    }
}

fn not_found_hint(ctx: &Context) -> String {
    if ctx.command.starts_with("ipchains") || ctx.command.starts_with("restore") {
        "`mclient ipchains -L` lists the chains and rules".into()
    } else if ctx.command.starts_with("modems") {
        "`mclient modems` lists the modems".into()
    } else {
        "`mclient list` shows the connection names".into()
    }
}

pub use masqdial_proto::names::{did_you_mean, edit_distance};

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(cmd: &str) -> Context {
        Context {
            server: "http://127.0.0.1:224".into(),
            user: Some("demo".into()),
            command: cmd.into(),
            connection: None,
            timeout_secs: 15,
        }
    }

    #[test]
    fn budget_refusals_keep_the_servers_sentence_and_point_at_cinfo() {
        let c = ctx("dial isp1");
        for (code, msg, exit) in [
            (
                Code::FailedPrecondition,
                "Connection isp1 may not be dialled now: outside its dialling windows (Mo-Fr 18:00-08:00); the next window opens 2026-11-30 18:00 (UTC+01:00)",
                7,
            ),
            (
                Code::ResourceExhausted,
                "Connection isp1 has used its daily connect time (1h00m00s of 1h00m00s); it renews 2026-12-01 00:00 (UTC+01:00)",
                10,
            ),
        ] {
            let f = classify(&st(code, msg), &c);
            assert_eq!(f.exit_code(), exit);
            assert_eq!(f.message, format!("{msg}."));
            assert_eq!(
                f.hint.as_deref(),
                Some("`mclient cinfo NAME` shows the connection's budget and windows")
            );
        }
    }

    fn st(code: Code, msg: &str) -> anyhow::Error {
        anyhow::Error::new(tonic::Status::new(code, msg))
    }

    #[test]
    fn exit_codes_by_kind() {
        let codes: Vec<u8> = Kind::ALL.iter().map(|k| k.exit_code()).collect();
        assert_eq!(codes, (1..=12).collect::<Vec<u8>>());
        let c = ctx("list");
        let code = |e: anyhow::Error| classify(&e, &c).exit_code();
        assert_eq!(code(st(Code::Unauthenticated, "x")), 3);
        assert_eq!(code(st(Code::PermissionDenied, "x")), 4);
        assert_eq!(code(st(Code::NotFound, "x")), 5);
        assert_eq!(code(st(Code::InvalidArgument, "x")), 6);
        assert_eq!(code(st(Code::AlreadyExists, "x")), 7);
        assert_eq!(code(st(Code::Unavailable, "x")), 8);
        assert_eq!(code(st(Code::Unimplemented, "x")), 9);
        assert_eq!(code(st(Code::ResourceExhausted, "x")), 10);
        let quota = "isp1 has used its monthly byte quota (3424 of 3000 bytes this month); it renews 2026-12-01 00:00 (UTC+00:00)";
        assert_eq!(code(st(Code::ResourceExhausted, quota)), 10);
        assert_eq!(code(st(Code::Cancelled, "x")), 11);
        assert_eq!(code(anyhow::Error::new(DialFailed("BUSY".into()))), 12);
        assert_eq!(code(anyhow::anyhow!("cannot read f")), 1);
        assert_eq!(code(st(Code::Unavailable, "x").context("while dialing")), 8);
    }

    #[test]
    fn no_rpc_names_or_debug_text() {
        let f = classify(
            &st(
                Code::PermissionDenied,
                "HangupForce requires the admin role",
            ),
            &ctx("hangup --force"),
        );
        assert_eq!(
            f.message,
            "Only an admin may run `hangup --force`; you are demo."
        );
        assert!(!f.message.contains("HangupForce"));
        let f = classify(
            &st(
                Code::Unimplemented,
                "Dialer.ListConnections is not implemented by this server yet",
            ),
            &ctx("list"),
        );
        assert_eq!(f.message, "This server does not support `list`.");
        assert!(f.hint.is_some());
        let f = classify(
            &st(Code::NotFound, "no connection named `x`"),
            &ctx("cinfo"),
        );
        assert_eq!(f.message, "No connection named `x`.");
        assert_eq!(
            f.hint.as_deref(),
            Some("`mclient list` shows the connection names")
        );
        let f = classify(&st(Code::Unauthenticated, "bad password"), &ctx("login"));
        assert_eq!(
            f.message,
            "The server refused the login of demo: wrong user name or password."
        );
        // A transport failure reported as a status is "cannot reach".
        let f = classify(&st(Code::Unknown, "transport error"), &ctx("watch"));
        assert_eq!(f.kind, Kind::Unreachable);
        assert_eq!(
            f.message,
            "Cannot reach the server at http://127.0.0.1:224."
        );
        let j = f.json();
        assert_eq!(j["error"]["kind"], "unreachable");
        assert_eq!(j["error"]["exit_code"], 8);
    }

    #[test]
    fn sentences() {
        assert_eq!(sentence("no such chain"), "No such chain.");
        assert_eq!(sentence("already.  "), "Already.");
        assert_eq!(sentence("x (did you mean `y`?)"), "X (did you mean `y`?)");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn suggestions() {
        let c: Vec<String> = ["isp1", "isp2", "work", "dial", "hangup", "login", "logout"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(did_you_mean("isp3", &c), Some("isp1"));
        assert_eq!(did_you_mean("wrok", &c), Some("work"));
        assert_eq!(did_you_mean("hangpu", &c), Some("hangup"));
        assert_eq!(did_you_mean("lgoin", &c), Some("login"));
        assert_eq!(did_you_mean("frobnicate", &c), None);
        assert_eq!(did_you_mean("han", &c), Some("hangup"));
        assert_eq!(did_you_mean("zz", &c), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
    }
}
