//! The gRPC side of mtui: one tokio task that connects with the bearer token, subscribes to
//! WatchLinks and WatchMasq, polls chains/free ports/connections, runs Dial/Hangup/ZeroCounters
//! commands, and reconnects with exponential backoff when the server goes away.
//!
//! It only translates between the wire and [`Event`]s/[`Command`]s; it holds no dashboard state
//! and never touches the terminal. Tokens are never logged.

use std::time::{Duration, Instant};

use masqdial_cli::conn::{Authed, Clients};
use masqdial_proto::v1::{
    auth_client::AuthClient, dialer_client::DialerClient, link_event, masq_event,
    nat_client::NatClient, DialRequest, FreePortsRequest, HangupRequest, LinkEvent,
    ListChainsRequest, ListConnectionsRequest, MasqEvent, Role, WatchLinksRequest,
    WatchMasqRequest, WhoAmIRequest, ZeroCountersRequest,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::event::{Command, Event, ServerUpdate};

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
    /// Bearer token (never logged).
    pub token: String,
    /// CA certificate for https, if not the system roots.
    pub ca: Option<std::path::PathBuf>,
    /// WatchMasq delta period, milliseconds.
    pub masq_period_ms: u32,
}

impl std::fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetConfig")
            .field("server", &self.server)
            .field("token", &"<redacted>")
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
}

async fn run(
    cfg: NetConfig,
    events: UnboundedSender<Event>,
    mut commands: UnboundedReceiver<Command>,
) {
    let mut backoff = Backoff::default();
    let mut attempt = 1u32;
    loop {
        if events.send(Event::Connecting { attempt }).is_err() {
            return;
        }
        match session(&cfg, &events, &mut commands).await {
            End::Quit => return,
            End::Lost { reason, connected } => {
                if connected {
                    backoff.reset();
                    attempt = 1;
                } else {
                    attempt = attempt.saturating_add(1);
                }
                let delay = backoff.next_delay();
                tracing::info!(%reason, ?delay, "server connection lost");
                if events
                    .send(Event::Disconnected {
                        reason,
                        retry_in: delay,
                    })
                    .is_err()
                {
                    return;
                }
                // Wait, answering commands with an error so the user knows nothing was sent.
                let deadline = tokio::time::Instant::now() + delay;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => break,
                        cmd = commands.recv() => match cmd {
                            None => return,
                            Some(c) => {
                                let _ = events.send(Event::Server(ServerUpdate::Error(format!(
                                    "not connected: {} not sent", describe(&c)
                                ))));
                            }
                        },
                    }
                }
            }
        }
    }
}

fn describe(c: &Command) -> String {
    match c {
        Command::Quit => "quit".into(),
        Command::Dial(n) => format!("dial {n}"),
        Command::Hangup { name, .. } => format!("hang-up of {name}"),
        Command::ZeroCounters => "zero counters".into(),
    }
}

/// `code: message` for the log.
fn status_text(s: &Status) -> String {
    let code = match s.code() {
        Code::Unavailable => "unavailable",
        Code::Unauthenticated => {
            "not logged in (token rejected or expired; restart mtui to log in)"
        }
        Code::PermissionDenied => "permission denied",
        Code::NotFound => "not found",
        Code::FailedPrecondition => "refused",
        Code::Unimplemented => "not implemented by the server",
        Code::DeadlineExceeded => "timed out",
        _ => "error",
    };
    if s.message().is_empty() {
        code.to_string()
    } else {
        format!("{code}: {}", s.message())
    }
}

fn lost(reason: String, connected: bool) -> End {
    End::Lost { reason, connected }
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
    events: &UnboundedSender<Event>,
    commands: &mut UnboundedReceiver<Command>,
) -> End {
    let send = |ev: Event| events.send(ev).is_ok();
    let channel = match connect(cfg).await {
        Ok(c) => c,
        // The root cause ("Connection refused (os error 111)") says it all; the chain repeats.
        Err(e) => return lost(format!("connect: {}", e.root_cause()), false),
    };
    let clients = match Clients::new(channel, Some(&cfg.token)) {
        Ok(c) => c,
        Err(e) => return lost(format!("token: {e:#}"), false),
    };
    let Clients {
        auth, dialer, nat, ..
    } = clients;
    let mut auth: AuthClient<Svc> = auth;
    let mut dialer: DialerClient<Svc> = dialer;
    let mut nat: NatClient<Svc> = nat;

    let who = match auth.who_am_i(WhoAmIRequest {}).await {
        Ok(r) => r.into_inner(),
        Err(s) => return lost(status_text(&s), false),
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
            send(Event::Server(ServerUpdate::Error(format!(
                "WatchLinks: {}",
                status_text(&s)
            ))));
            None
        }
        Err(s) => return lost(format!("WatchLinks: {}", status_text(&s)), true),
    };
    let mut masq = match nat
        .watch_masq(WatchMasqRequest {
            period_ms: cfg.masq_period_ms,
        })
        .await
    {
        Ok(r) => {
            send(Event::Server(ServerUpdate::MasqReset));
            Some(r.into_inner())
        }
        Err(s) if s.code() == Code::Unimplemented => {
            send(Event::Server(ServerUpdate::Error(format!(
                "WatchMasq: {}",
                status_text(&s)
            ))));
            None
        }
        Err(s) => return lost(format!("WatchMasq: {}", status_text(&s)), true),
    };

    let mut poll = tokio::time::interval(POLL_PERIOD);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Rpcs the server answered "unimplemented": not asked again this session.
    let mut skip = [false; 3];
    loop {
        tokio::select! {
            m = next(&mut links) => match m {
                Ok(Some(ev)) => {
                    if let Some(u) = link_update(ev) {
                        if !send(Event::Server(u)) { return End::Quit; }
                    }
                }
                Ok(None) => return lost("WatchLinks ended".into(), true),
                Err(s) => return lost(format!("WatchLinks: {}", status_text(&s)), true),
            },
            m = next(&mut masq) => match m {
                Ok(Some(ev)) => {
                    if let Some(u) = masq_update(ev, Instant::now()) {
                        if !send(Event::Server(u)) { return End::Quit; }
                    }
                }
                Ok(None) => return lost("WatchMasq ended".into(), true),
                Err(s) => return lost(format!("WatchMasq: {}", status_text(&s)), true),
            },
            _ = poll.tick() => {
                if let Err(end) = poll_once(&mut auth, &mut dialer, &mut nat, events, &mut skip).await {
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
    events: &UnboundedSender<Event>,
    skip: &mut [bool; 3],
) -> Result<(), End> {
    fn check<T>(
        r: Result<tonic::Response<T>, Status>,
        what: &str,
        skip: &mut bool,
        events: &UnboundedSender<Event>,
    ) -> Result<Option<T>, End> {
        match r {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == Code::Unavailable => {
                Err(lost(format!("{what}: {}", status_text(&s)), true))
            }
            Err(s) => {
                // Reported once; asking again every few seconds would only fill the log.
                *skip = true;
                let _ = events.send(Event::Server(ServerUpdate::Error(format!(
                    "{what}: {}",
                    status_text(&s)
                ))));
                Ok(None)
            }
        }
    }
    // Liveness: with every stream unimplemented nothing else would notice the server going
    // away (or the token being revoked).
    if let Err(s) = auth.who_am_i(WhoAmIRequest {}).await {
        return Err(lost(format!("WhoAmI: {}", status_text(&s)), true));
    }
    let mut out = Vec::new();
    if !skip[0] {
        let r = dialer.list_connections(ListConnectionsRequest {}).await;
        if let Some(r) = check(r, "ListConnections", &mut skip[0], events)? {
            out.push(ServerUpdate::Connections(r.connections));
        }
    }
    if !skip[1] {
        let r = nat
            .list_chains(ListChainsRequest {
                chain: String::new(),
            })
            .await;
        if let Some(r) = check(r, "ListChains", &mut skip[1], events)? {
            out.push(ServerUpdate::Chains(r.chains));
        }
    }
    if !skip[2] {
        let r = nat.free_ports(FreePortsRequest {}).await;
        if let Some(r) = check(r, "FreePorts", &mut skip[2], events)? {
            out.push(ServerUpdate::FreePorts(r));
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
            Command::Quit => {}
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
                            Err(s) => return err(format!("{name}: dial: {}", status_text(&s))),
                        }
                    }
                }
                Err(s) => err(format!("{name}: dial: {}", status_text(&s))),
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
                    Err(s) => err(format!("{name}: hang-up: {}", status_text(&s))),
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
                Err(s) => err(format!("zero counters: {}", status_text(&s))),
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
        let u = link_update(LinkEvent {
            at: None,
            event: Some(link_event::Event::Sample(TrafficSample::default())),
        });
        assert!(matches!(u, Some(ServerUpdate::Sample(_))));
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
            token: "secret-token".into(),
            ca: None,
            masq_period_ms: 500,
        };
        assert!(!format!("{c:?}").contains("secret-token"));
    }
}
