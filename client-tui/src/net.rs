//! The gRPC side of mtui: one tokio task that logs in (asking the app for a password when
//! needed), subscribes to WatchLinks and WatchMasq, polls chains/free ports/connections, runs
//! Dial/Hangup/ZeroCounters/GetConnection commands, and reconnects with exponential backoff
//! when the server goes away.
//!
//! It only translates between the wire and [`Event`]s/[`Command`]s; it holds no dashboard state
//! and never touches the terminal. Errors reach the app as plain phrases (no rpc names, no
//! transport debug text). Tokens and passwords are never logged.

use std::time::{Duration, Instant, SystemTime};

use masqdial_cli::conn::{Authed, Clients};
use masqdial_cli::store::{StoredToken, TokenStore};
use masqdial_proto::v1::{
    auth_client::AuthClient, dialer_client::DialerClient, link_event, masq_event,
    modems_client::ModemsClient, nat_client::NatClient, DialRequest, FreePortsRequest,
    GetConnectionRequest, HangupRequest, LinkEvent, ListChainsRequest, ListConnectionsRequest,
    ListModemsRequest, LoginRequest, MasqEvent, Role, WatchLinksRequest, WatchMasqRequest,
    WhoAmIRequest, ZeroCountersRequest,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::event::{Command, Event, Secret, ServerUpdate};

/// First reconnect delay; doubled after each failed attempt.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often chains, free ports and connections are re-read.
pub const POLL_PERIOD: Duration = Duration::from_secs(3);

/// What the network task needs.
#[derive(Clone)]
pub struct NetConfig {
    /// Server URL, `http://host:port` or `https://…`.
    pub server: String,
    /// The server's key in the token store (normalised URL, as mclient keys it).
    pub store_key: String,
    /// Bearer token from the store, if there is one worth trying (never logged).
    pub token: Option<String>,
    /// User name to offer in the login form ("" when unknown).
    pub user: String,
    /// CA certificate for https, if not the system roots.
    pub ca: Option<std::path::PathBuf>,
    /// WatchMasq delta period, milliseconds.
    pub masq_period_ms: u32,
    /// Where a fresh login's token is saved (shared with mclient); `None` keeps it in memory.
    pub store: Option<TokenStore>,
    /// Password from `MASQDIAL_PASSWORD`, tried once for `user` before the form is shown.
    pub password: Option<Secret>,
    /// `--insecure`: a password may go over plain http to a host that is not loopback.
    pub insecure: bool,
}

impl std::fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetConfig")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .field("password", &self.password)
            .field("ca", &self.ca)
            .finish()
    }
}

/// Exponential backoff between reconnect attempts (pure: no clock, no sleeping).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// Delay before the next attempt; doubles up to [`BACKOFF_MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }

    /// A session got through: start again from [`BACKOFF_MIN`].
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

type Svc = Authed;

/// HTTP/2 ping period: a server that vanished without closing the socket is noticed.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// Start the network task. It ends when `commands` closes or `events` has no receiver.
pub fn spawn(
    cfg: NetConfig,
    events: UnboundedSender<Event>,
    commands: UnboundedReceiver<Command>,
) -> JoinHandle<()> {
    tokio::spawn(run(cfg, events, commands))
}

enum End {
    /// The UI is gone: stop.
    Quit,
    /// The session broke; `connected` tells whether it had got through login.
    Lost { reason: String, connected: bool },
    /// The server does not accept the token (restarted, expired, revoked): log in again.
    LoggedOut { reason: String },
}

/// Why a login attempt did not give a token.
#[derive(Debug)]
enum LoginError {
    /// The server answered no (wrong password, unknown user, too many attempts).
    Rejected(String),
    /// The server could not be reached: retry later with the same credentials.
    Unreachable(String),
}

/// Plain sentence for a token the server does not know.
pub const TOKEN_UNKNOWN: &str =
    "The server did not accept the saved login (it may have restarted). Please log in again.";

async fn run(
    cfg: NetConfig,
    events: UnboundedSender<Event>,
    mut commands: UnboundedReceiver<Command>,
) {
    let mut backoff = Backoff::default();
    let mut attempt = 1u32;
    let mut token = cfg.token.clone();
    let mut user = cfg.user.clone();
    let mut pending: Option<(String, Secret)> = match &cfg.password {
        Some(p) if token.is_none() && !user.is_empty() => Some((user.clone(), p.clone())),
        _ => None,
    };
    let mut why_login = format!("Log in to {}.", cfg.server);
    loop {
        if token.is_none() {
            if pending.is_none() {
                let ask = Event::LoginNeeded {
                    user: user.clone(),
                    reason: why_login.clone(),
                };
                if events.send(ask).is_err() {
                    return;
                }
                match wait_login(&mut commands, &events).await {
                    Some(c) => pending = Some(c),
                    None => return,
                }
            }
            let Some((u, p)) = pending.as_ref() else {
                continue;
            };
            if events.send(Event::Connecting { attempt }).is_err() {
                return;
            }
            match login(&cfg, u, p).await {
                Ok((tok, resp_role, expires_at)) => {
                    if let Some(store) = &cfg.store {
                        let saved = store.put(StoredToken {
                            server: cfg.store_key.clone(),
                            user: u.clone(),
                            token: tok.clone(),
                            expires_at,
                            role: resp_role,
                        });
                        if let Err(e) = saved {
                            let _ = events.send(Event::Server(ServerUpdate::Error(format!(
                                "logged in, but the login could not be saved for next time: {e}"
                            ))));
                        }
                    }
                    user = u.clone();
                    token = Some(tok);
                    pending = None;
                }
                Err(LoginError::Rejected(why)) => {
                    pending = None;
                    why_login = why;
                    continue;
                }
                Err(LoginError::Unreachable(reason)) => {
                    attempt = attempt.saturating_add(1);
                    if !wait_retry(&events, &mut commands, &mut backoff, reason, false).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let Some(tok) = token.clone() else { continue };
        if events.send(Event::Connecting { attempt }).is_err() {
            return;
        }
        match session(&cfg, &tok, &events, &mut commands).await {
            End::Quit => return,
            End::LoggedOut { reason } => {
                tracing::info!("the server refused the token; asking for a login");
                token = None;
                why_login = reason;
                backoff.reset();
                attempt = 1;
            }
            End::Lost { reason, connected } => {
                if connected {
                    backoff.reset();
                    attempt = 1;
                } else {
                    attempt = attempt.saturating_add(1);
                }
                if !wait_retry(&events, &mut commands, &mut backoff, reason, connected).await {
                    return;
                }
            }
        }
    }
}

/// Wait for the user's [`Command::Login`]; other commands are answered "not sent".
/// `None` when the UI is gone.
async fn wait_login(
    commands: &mut UnboundedReceiver<Command>,
    events: &UnboundedSender<Event>,
) -> Option<(String, Secret)> {
    loop {
        match commands.recv().await? {
            Command::Quit => return None,
            Command::Login { user, password } => return Some((user, password)),
            other => {
                let _ = events.send(Event::Server(ServerUpdate::Error(format!(
                    "not logged in: {} not sent",
                    describe(&other)
                ))));
            }
        }
    }
}

/// Tell the app and wait out the backoff delay, answering commands with an error so the user
/// knows nothing was sent. False when the UI is gone.
async fn wait_retry(
    events: &UnboundedSender<Event>,
    commands: &mut UnboundedReceiver<Command>,
    backoff: &mut Backoff,
    reason: String,
    was_connected: bool,
) -> bool {
    let delay = backoff.next_delay();
    tracing::info!(%reason, ?delay, "no server connection");
    if events
        .send(Event::Disconnected {
            reason,
            retry_in: delay,
            was_connected,
        })
        .is_err()
    {
        return false;
    }
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            cmd = commands.recv() => match cmd {
                None | Some(Command::Quit) => return false,
                Some(c) => {
                    let _ = events.send(Event::Server(ServerUpdate::Error(format!(
                        "not connected: {} not sent", describe(&c)
                    ))));
                }
            },
        }
    }
}

/// Log in; the token, role and expiry on success.
async fn login(
    cfg: &NetConfig,
    user: &str,
    password: &Secret,
) -> Result<(String, i32, Option<SystemTime>), LoginError> {
    // mclient's rule, from the same function: no password over plain http to another host.
    if let Some((why, hint)) = plain_password_refused(cfg) {
        return Err(LoginError::Rejected(format!("{why}: {hint}.")));
    }
    let channel = connect(cfg)
        .await
        .map_err(|e| LoginError::Unreachable(plain_connect_error(&e)))?;
    let mut c = Clients::new(channel, None)
        .map_err(|e| LoginError::Unreachable(format!("cannot set up the client: {e}")))?;
    let r = c
        .auth
        .login(LoginRequest {
            user: user.to_string(),
            password: password.expose().to_string(),
        })
        .await;
    match r {
        Ok(r) => {
            let r = r.into_inner();
            let expires_at = r
                .expires_at
                .as_ref()
                .and_then(masqdial_cli::format::system_time);
            Ok((r.token, r.role, expires_at))
        }
        Err(s) => match s.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                Err(LoginError::Unreachable(plain_status(&s)))
            }
            Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument => Err(
                LoginError::Rejected("Wrong user name or password; try again.".to_string()),
            ),
            _ => Err(LoginError::Rejected(format!(
                "The server refused the login: {}.",
                plain_status(&s)
            ))),
        },
    }
}

/// Why a password must not be sent to `cfg.server` (see
/// [`masqdial_cli::url::ServerUrl::password_refused`]); an unparsable URL is refused too.
pub fn plain_password_refused(cfg: &NetConfig) -> Option<(String, &'static str)> {
    match masqdial_cli::url::ServerUrl::parse(&cfg.server) {
        Ok(u) => u.password_refused(cfg.insecure),
        Err(e) => Some((format!("{e}"), "check --server")),
    }
}

fn describe(c: &Command) -> String {
    match c {
        Command::Quit => "quit".into(),
        Command::Dial(n) => format!("dial of {n}"),
        Command::Hangup { name, .. } => format!("hang-up of {name}"),
        Command::ZeroCounters => "zeroing of the counters".into(),
        Command::Details(n) => format!("request for the details of {n}"),
        Command::Login { .. } => "login".into(),
    }
}

/// Drop `(os error N)` and similar tails from an OS error text.
fn strip_os_error(t: &str) -> String {
    let t = match t.find(" (os error") {
        Some(i) => &t[..i],
        None => t,
    };
    t.trim().to_lowercase()
}

/// A short plain phrase for a failed connect ("connection refused", "no answer").
pub fn plain_connect_error(e: &anyhow::Error) -> String {
    use std::io::ErrorKind;
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused".into(),
                ErrorKind::TimedOut => "no answer".into(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                    "connection dropped".into()
                }
                ErrorKind::NotFound => "unknown host name".into(),
                _ => strip_os_error(&io.to_string()),
            };
        }
    }
    let root = e.root_cause().to_string();
    if root.contains("timed out") || root.contains("elapsed") {
        "no answer".into()
    } else if root.contains("dns error") || root.contains("failed to lookup") {
        "unknown host name".into()
    } else {
        strip_os_error(&root)
    }
}

/// A short plain phrase for a failed rpc, without rpc names or transport debug text.
pub fn plain_status(s: &Status) -> String {
    let msg = s.message().trim();
    let or = |default: &str| {
        if msg.is_empty() {
            default.to_string()
        } else {
            msg.to_string()
        }
    };
    match s.code() {
        Code::Unavailable => {
            if msg.contains("refused") {
                "connection refused".into()
            } else if msg.contains("timed out") {
                "no answer".into()
            } else {
                "the connection broke".into()
            }
        }
        Code::Cancelled => "the server closed the connection".into(),
        Code::DeadlineExceeded => "no answer in time".into(),
        Code::Unauthenticated => "your login is no longer valid".into(),
        Code::PermissionDenied => format!("not allowed ({})", or("your role may not do this")),
        Code::Unimplemented => "the server does not offer this".into(),
        Code::Internal | Code::Unknown | Code::DataLoss => {
            format!("the server had a problem ({})", or("no detail"))
        }
        _ => or("refused"),
    }
}

fn lost(reason: String, connected: bool) -> End {
    End::Lost { reason, connected }
}

/// How a failed stream or poll ends the session.
fn ended(s: &Status, connected: bool) -> End {
    if s.code() == Code::Unauthenticated {
        End::LoggedOut {
            reason:
                "Your login ended (expired, revoked, or the server restarted). Please log in again."
                    .into(),
        }
    } else {
        lost(plain_status(s), connected)
    }
}

/// Next message of an optional stream; `None` streams (not offered by the server) never yield.
async fn next<T>(s: &mut Option<Streaming<T>>) -> Result<Option<T>, Status> {
    match s {
        Some(s) => s.message().await,
        None => std::future::pending().await,
    }
}

/// The shared endpoint (timeouts, TLS) plus HTTP/2 keepalive pings.
async fn connect(cfg: &NetConfig) -> anyhow::Result<Channel> {
    let ep = masqdial_cli::conn::endpoint(&cfg.server, cfg.ca.as_deref())?
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_timeout(KEEPALIVE / 2)
        .keep_alive_while_idle(true);
    Ok(ep.connect().await?)
}

async fn session(
    cfg: &NetConfig,
    token: &str,
    events: &UnboundedSender<Event>,
    commands: &mut UnboundedReceiver<Command>,
) -> End {
    let send = |ev: Event| events.send(ev).is_ok();
    let channel = match connect(cfg).await {
        Ok(c) => c,
        Err(e) => return lost(plain_connect_error(&e), false),
    };
    let clients = match Clients::new(channel, Some(token)) {
        Ok(c) => c,
        // A token that cannot even be sent (not ASCII): the store is damaged; log in again.
        Err(_) => {
            return End::LoggedOut {
                reason: "The saved login is damaged. Please log in again.".into(),
            }
        }
    };
    let Clients {
        auth,
        dialer,
        nat,
        modems,
    } = clients;
    let mut modems: ModemsClient<Svc> = modems;
    let mut auth: AuthClient<Svc> = auth;
    let mut dialer: DialerClient<Svc> = dialer;
    let mut nat: NatClient<Svc> = nat;

    let who = match auth.who_am_i(WhoAmIRequest {}).await {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == Code::Unauthenticated => {
            return End::LoggedOut {
                reason: TOKEN_UNKNOWN.into(),
            }
        }
        Err(s) => return lost(plain_status(&s), false),
    };
    let role = Role::try_from(who.role).unwrap_or(Role::Unspecified);
    if !send(Event::Connected {
        user: who.user,
        role,
        allowed: who.allowed_connections,
    }) {
        return End::Quit;
    }

    // A stream the server does not implement is reported once and left out; any other
    // failure ends the session (the server is probably restarting).
    let mut links = match dialer
        .watch_links(WatchLinksRequest { sample_ms: 1000 })
        .await
    {
        Ok(r) => Some(r.into_inner()),
        Err(s) if s.code() == Code::Unimplemented => {
            send(Event::Server(ServerUpdate::Error(
                "the server does not send link updates; the links panel stays empty".into(),
            )));
            None
        }
        Err(s) => return ended(&s, true),
    };
    let mut masq = match nat
        .watch_masq(WatchMasqRequest {
            period_ms: cfg.masq_period_ms,
            ..Default::default()
        })
        .await
    {
        Ok(r) => {
            send(Event::Server(ServerUpdate::MasqReset));
            Some(r.into_inner())
        }
        Err(s) if s.code() == Code::Unimplemented => {
            send(Event::Server(ServerUpdate::Error(
                "the server does not send masquerade updates; that table stays empty".into(),
            )));
            None
        }
        Err(s) => return ended(&s, true),
    };

    let mut poll = tokio::time::interval(POLL_PERIOD);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Rpcs the server answered "unimplemented": not asked again this session.
    let mut skip = [false; 4];
    loop {
        tokio::select! {
            m = next(&mut links) => match m {
                Ok(Some(ev)) => {
                    if let Some(u) = link_update(ev) {
                        if !send(Event::Server(u)) { return End::Quit; }
                    }
                }
                Ok(None) => return lost("the server closed the connection".into(), true),
                Err(s) => return ended(&s, true),
            },
            m = next(&mut masq) => match m {
                Ok(Some(ev)) => {
                    if let Some(u) = masq_update(ev, Instant::now()) {
                        if !send(Event::Server(u)) { return End::Quit; }
                    }
                }
                Ok(None) => return lost("the server closed the connection".into(), true),
                Err(s) => return ended(&s, true),
            },
            _ = poll.tick() => {
                if let Err(end) = poll_once(&mut auth, &mut dialer, &mut nat, &mut modems, events, &mut skip).await {
                    return end;
                }
            }
            cmd = commands.recv() => match cmd {
                None | Some(Command::Quit) => return End::Quit,
                Some(c) => run_command(c, &dialer, &nat, events),
            },
        }
    }
}

/// One round of the polled rpcs.
async fn poll_once(
    auth: &mut AuthClient<Svc>,
    dialer: &mut DialerClient<Svc>,
    nat: &mut NatClient<Svc>,
    modems: &mut ModemsClient<Svc>,
    events: &UnboundedSender<Event>,
    skip: &mut [bool; 4],
) -> Result<(), End> {
    fn check<T>(
        r: Result<tonic::Response<T>, Status>,
        what: &str,
        skip: &mut bool,
        events: &UnboundedSender<Event>,
    ) -> Result<Option<T>, End> {
        match r {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if matches!(s.code(), Code::Unavailable | Code::Unauthenticated) => {
                Err(ended(&s, true))
            }
            Err(s) => {
                // Reported once; asking again every few seconds would only fill the log.
                *skip = true;
                let _ = events.send(Event::Server(ServerUpdate::Error(format!(
                    "could not {what}: {}",
                    plain_status(&s)
                ))));
                Ok(None)
            }
        }
    }
    // Liveness: with every stream unimplemented nothing else would notice the server going
    // away (or the token being revoked).
    if let Err(s) = auth.who_am_i(WhoAmIRequest {}).await {
        return Err(ended(&s, true));
    }
    let mut out = Vec::new();
    if !skip[0] {
        let r = dialer.list_connections(ListConnectionsRequest {}).await;
        if let Some(r) = check(r, "list the connections", &mut skip[0], events)? {
            out.push(ServerUpdate::Connections(r.connections));
        }
    }
    if !skip[1] {
        let r = nat
            .list_chains(ListChainsRequest {
                chain: String::new(),
            })
            .await;
        if let Some(r) = check(r, "read the chains", &mut skip[1], events)? {
            out.push(ServerUpdate::Chains(r.chains));
        }
    }
    if !skip[2] {
        let r = nat.free_ports(FreePortsRequest {}).await;
        if let Some(r) = check(r, "read the free ports", &mut skip[2], events)? {
            out.push(ServerUpdate::FreePorts(r));
        }
    }
    if !skip[3] {
        let r = modems.list_modems(ListModemsRequest {}).await;
        if let Some(r) = check(r, "list the modems", &mut skip[3], events)? {
            out.push(ServerUpdate::Modems(r.modems));
        }
    }
    for u in out {
        if events.send(Event::Server(u)).is_err() {
            return Err(End::Quit);
        }
    }
    Ok(())
}

/// Run a command in its own task so a long Dial stream does not block the session loop.
fn run_command(
    c: Command,
    dialer: &DialerClient<Svc>,
    nat: &NatClient<Svc>,
    events: &UnboundedSender<Event>,
) {
    let events = events.clone();
    let mut dialer = dialer.clone();
    let mut nat = nat.clone();
    tokio::spawn(async move {
        let err = |t: String| {
            let _ = events.send(Event::Server(ServerUpdate::Error(t)));
        };
        match c {
            Command::Quit | Command::Login { .. } => {}
            Command::Details(name) => {
                match dialer
                    .get_connection(GetConnectionRequest { name: name.clone() })
                    .await
                {
                    Ok(r) => {
                        let _ = events.send(Event::Server(ServerUpdate::Details(Box::new(
                            r.into_inner(),
                        ))));
                    }
                    Err(s) => err(format!(
                        "{name}: could not read the details: {}",
                        plain_status(&s)
                    )),
                }
            }
            Command::Dial(name) => match dialer.dial(DialRequest { name: name.clone() }).await {
                Ok(r) => {
                    let mut s = r.into_inner();
                    loop {
                        match s.message().await {
                            Ok(Some(ev)) => {
                                let u = ServerUpdate::Progress {
                                    connection: name.clone(),
                                    event: ev,
                                };
                                if events.send(Event::Server(u)).is_err() {
                                    return;
                                }
                            }
                            Ok(None) => return,
                            Err(s) => {
                                return err(format!(
                                    "{name}: the dial failed: {}",
                                    plain_status(&s)
                                ))
                            }
                        }
                    }
                }
                Err(s) => err(format!("{name}: could not dial: {}", plain_status(&s))),
            },
            Command::Hangup { name, force } => {
                match dialer
                    .hangup(HangupRequest {
                        name: name.clone(),
                        force,
                    })
                    .await
                {
                    Ok(r) => {
                        let r = r.into_inner();
                        let _ = events.send(Event::Server(ServerUpdate::HangupDone {
                            connection: name,
                            dropped: r.dropped,
                            remaining: r.remaining_holders,
                        }));
                    }
                    Err(s) => err(format!("{name}: could not hang up: {}", plain_status(&s))),
                }
            }
            Command::ZeroCounters => match nat
                .zero_counters(ZeroCountersRequest {
                    chain: String::new(),
                })
                .await
            {
                Ok(_) => {
                    let _ = events.send(Event::Server(ServerUpdate::Info(
                        "chain counters zeroed".into(),
                    )));
                    if let Ok(r) = nat
                        .list_chains(ListChainsRequest {
                            chain: String::new(),
                        })
                        .await
                    {
                        let _ =
                            events.send(Event::Server(ServerUpdate::Chains(r.into_inner().chains)));
                    }
                }
                Err(s) => err(format!("could not zero the counters: {}", plain_status(&s))),
            },
        }
    });
}

/// WatchLinks message → update.
pub fn link_update(ev: LinkEvent) -> Option<ServerUpdate> {
    match ev.event? {
        link_event::Event::State(s) => Some(ServerUpdate::Link(s)),
        link_event::Event::Sample(s) => Some(ServerUpdate::Sample(s)),
        link_event::Event::Progress(p) => Some(ServerUpdate::Progress {
            connection: p.connection,
            event: p.event?,
        }),
        link_event::Event::Budget(b) => Some(ServerUpdate::Budget(b)),
        link_event::Event::PacketLog(l) => Some(ServerUpdate::PacketLog(l.line)),
    }
}

/// WatchMasq message → update, stamped with the time it was received.
pub fn masq_update(ev: MasqEvent, at: Instant) -> Option<ServerUpdate> {
    match ev.event? {
        masq_event::Event::Snapshot(b) => Some(ServerUpdate::MasqBatch {
            entries: b.entries,
            at,
        }),
        masq_event::Event::SnapshotDone(d) => Some(ServerUpdate::MasqDone {
            total: d.total,
            free: d.free,
        }),
        masq_event::Event::Delta(delta) => Some(ServerUpdate::MasqDelta { delta, at }),
        // The server resyncs a watcher that fell behind: a new snapshot follows.
        masq_event::Event::Resync(_) => Some(ServerUpdate::MasqReset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use masqdial_proto::v1::{MasqBatch, MasqDelta, TrafficSample};

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let d: Vec<u64> = (0..7).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(d, vec![500, 1000, 2000, 4000, 8000, 10000, 10000]);
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_MIN);
    }

    #[test]
    fn stream_messages_map_to_updates() {
        let at = Instant::now();
        let u = masq_update(
            MasqEvent {
                event: Some(masq_event::Event::Snapshot(MasqBatch { entries: vec![] })),
            },
            at,
        );
        assert!(matches!(u, Some(ServerUpdate::MasqBatch { .. })));
        let u = masq_update(
            MasqEvent {
                event: Some(masq_event::Event::Delta(MasqDelta::default())),
            },
            at,
        );
        assert!(matches!(u, Some(ServerUpdate::MasqDelta { .. })));
        assert!(masq_update(MasqEvent { event: None }, at).is_none());
        let u = masq_update(
            MasqEvent {
                event: Some(masq_event::Event::Resync(Default::default())),
            },
            at,
        );
        assert!(matches!(u, Some(ServerUpdate::MasqReset)));
        let u = link_update(LinkEvent {
            at: None,
            event: Some(link_event::Event::Sample(TrafficSample::default())),
        });
        assert!(matches!(u, Some(ServerUpdate::Sample(_))));
        let u = link_update(LinkEvent {
            at: None,
            event: Some(link_event::Event::PacketLog(
                masqdial_proto::v1::PacketLog {
                    line: "Packet log: input DENY ppp0 PROTO=1".into(),
                },
            )),
        });
        assert!(
            matches!(&u, Some(ServerUpdate::PacketLog(l)) if l == "Packet log: input DENY ppp0 PROTO=1"),
            "{u:?}"
        );
        assert!(link_update(LinkEvent {
            at: None,
            event: None
        })
        .is_none());
    }

    #[test]
    fn config_debug_hides_token() {
        let c = NetConfig {
            server: "http://x".into(),
            store_key: "http://x".into(),
            token: Some("secret-token".into()),
            user: "alice".into(),
            ca: None,
            masq_period_ms: 500,
            store: None,
            password: Some(Secret::new("pw-from-env")),
            insecure: false,
        };
        assert!(!format!("{c:?}").contains("secret-token"));
        assert!(!format!("{c:?}").contains("pw-from-env"));
        let cmd = Command::Login {
            user: "alice".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{cmd:?}").contains("hunter2"));
        assert!(!describe(&cmd).contains("hunter2"));
    }

    #[test]
    fn errors_are_plain_phrases_without_rpc_names() {
        let cases = [
            (
                Status::unavailable("tcp connect error: Connection refused"),
                "connection refused",
            ),
            (
                Status::unavailable("error trying to connect: h2 protocol error"),
                "the connection broke",
            ),
            (
                Status::cancelled("h2 stream reset"),
                "the server closed the connection",
            ),
            (
                Status::unimplemented("WatchMasq"),
                "the server does not offer this",
            ),
            (
                Status::unauthenticated("bad token"),
                "your login is no longer valid",
            ),
            (
                Status::permission_denied(""),
                "not allowed (your role may not do this)",
            ),
            (Status::failed_precondition("isp2 is busy"), "isp2 is busy"),
        ];
        for (st, want) in cases {
            assert_eq!(plain_status(&st), want);
        }
        let refused = anyhow::Error::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ))
        .context("cannot connect");
        assert_eq!(plain_connect_error(&refused), "connection refused");
        let other = anyhow::anyhow!("Network is unreachable (os error 101)");
        assert_eq!(plain_connect_error(&other), "network is unreachable");
    }

    /// What the network task says when the server is gone for real: a closed port on
    /// loopback gives "connection refused", not transport debug text.
    #[tokio::test]
    async fn connect_to_a_closed_port_is_connection_refused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = l.local_addr().expect("addr");
        drop(l);
        let cfg = NetConfig {
            server: format!("http://{addr}"),
            store_key: format!("http://{addr}"),
            token: None,
            user: String::new(),
            ca: None,
            masq_period_ms: 500,
            store: None,
            password: Some(Secret::new("pw-from-env")),
            insecure: false,
        };
        let e = connect(&cfg).await.expect_err("nothing listens");
        assert_eq!(plain_connect_error(&e), "connection refused");
    }

    /// N5: mtui follows mclient's rule (the same function): no password over plain http to
    /// a host that is not loopback unless --insecure; the login fails before connecting.
    #[tokio::test]
    async fn a_password_never_goes_over_plain_http_to_another_host() {
        let cfg = |server: &str, insecure: bool| NetConfig {
            server: server.into(),
            store_key: server.into(),
            token: None,
            user: "alice".into(),
            ca: None,
            masq_period_ms: 500,
            store: None,
            password: None,
            insecure,
        };
        // A LAN address nobody answers on: refused at once, never "unreachable".
        let lan = cfg("http://192.0.2.1:224", false);
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            login(&lan, "alice", &Secret::new("pw")),
        )
        .await;
        match r {
            Ok(Err(LoginError::Rejected(m))) => {
                assert!(m.contains("plain http") && m.contains("--insecure"), "{m}")
            }
            other => panic!("expected a refusal before connecting, got {other:?}"),
        }
        assert!(plain_password_refused(&cfg("http://127.0.0.1:224", false)).is_none());
        assert!(plain_password_refused(&cfg("https://gw.lan:224", false)).is_none());
        assert!(plain_password_refused(&cfg("http://gw.lan:224", true)).is_none());
        assert!(plain_password_refused(&cfg("http://gw.lan:224", false)).is_some());
    }
}
