//! The link manager: one actor task per configured connection drives its [`LinkFsm`] with
//! modem sessions (chat then PPP) and announces "up: address A, session S" / "down" to
//! the data plane ([`Uplink`]). It owns the modem table, the per-link views and the domain
//! events ([`super::events`]) the rpc layer reads; it must not parse or carry packets,
//! configure interfaces (the data plane), touch the serial port itself (modem) or know
//! protobuf (rpc).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::events::{
    CellView, DialEvent, DialStep, LinkChange, LinkEvent, LinkStatus, ModemState, ModemView,
    PppDetails, TrafficSample, TranscriptEntry,
};
use super::fsm::{
    DialOutcome, Failure, FailureKind, HangupOutcome, Holder, LinkAction, LinkFsm, LinkPolicy,
    LinkState, SessionReport,
};
use crate::config::{self, ConnectionConfig, ModemConfig, PppAuth};
use crate::dataplane::uplink::{LinkUp, Uplink, UplinkNote};
use crate::modem::session::{
    hangup_bound as session_hangup_bound, spawn_session, SessionCounters, SessionEnd, SessionEvent,
    SessionHandle, REPORT_SLACK,
};
use crate::modem::{self, ModemSettings};
use crate::shutdown::Shutdown;
use masqdial_at::{
    CellProgress, CellularDial, ChatConfig, ChatEvent, ChatFailure, LoginStep, RedialPolicy,
    TranscriptKind,
};
use masqdial_ppp::{AuthProtocol, DownReason, NegotiatedOptions, PppConfig, PppEvent};

/// How often a dial that waits for its connection's hang-up looks again.
const HANGUP_POLL: Duration = Duration::from_millis(50);
/// Traffic sample period for `WatchLinks` and the idle timer.
const SAMPLE: Duration = Duration::from_secs(1);
/// Transcript lines kept per connection.
const TRANSCRIPT_MAX: usize = 400;

/// Errors of manager operations, mapped to gRPC codes by the rpc layer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No connection with that name.
    #[error("no connection named {0:?}")]
    UnknownConnection(String),
    /// The link is hanging up; try again when it is idle.
    #[error("connection {0:?} is hanging up; try again in a moment")]
    Busy(String),
    /// The caller does not hold the link.
    #[error("you do not hold connection {0:?}")]
    NotHolder(String),
    /// The link is not up or dialling.
    #[error("connection {0:?} is not active")]
    NotActive(String),
    /// The link's task has stopped (server shutting down).
    #[error("connection {0:?} is shutting down")]
    Gone(String),
    /// Every modem this connection may use is held by other connections: the dial is
    /// refused up front and the connection's state is left as it was.
    #[error("cannot dial {connection:?}: {detail}")]
    NoModem {
        /// The connection asked for.
        connection: String,
        /// Which modem is in use by whom.
        detail: String,
    },
    /// The connection's budget does not allow a dial now (window, quota, connect time).
    #[error("{0}")]
    Budget(crate::budget::Refusal),
}

/// What a caller is, for holder bookkeeping.
#[derive(Debug, Clone)]
pub struct Who {
    /// User name.
    pub user: String,
    /// Client host (IP, no port).
    pub host: String,
}

/// State of a modem as the manager tracks it.
#[derive(Debug, Clone)]
struct ModemSlot {
    cfg: ModemConfig,
    /// Connection currently using it.
    user: Option<String>,
    /// Last open/serial error; the modem counts as absent while set and unprobed.
    last_error: Option<String>,
    absent: bool,
    modem_lines: Option<bool>,
    /// Set while a status poll holds the port; storing true asks it to stop early.
    polling: Option<Arc<AtomicBool>>,
    /// Cellular status from the last poll.
    cell: Option<CellView>,
    /// The SIM refused the configured PIN (status poll or dial): it is not sent again until
    /// mserver restarts, since every wrong PIN uses up one of the SIM's tries.
    pin_refused: bool,
    /// Absent: when the re-prober tries next, and how often it has failed.
    next_probe: Option<SystemTime>,
    failed_probes: u32,
    /// A re-prober task is running for this modem.
    reprobing: bool,
}

/// Read-mostly view of one link, refreshed by its actor.
#[derive(Debug, Clone, Default)]
struct LinkView {
    state: Option<LinkState>,
    modem: String,
    speed: u32,
    local: Option<Ipv4Addr>,
    peer: Option<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
    since: Option<SystemTime>,
    counters: SessionCounters,
    holders: Vec<Holder>,
    failure: Option<Failure>,
    idle_secs: u32,
    transcript: Vec<TranscriptEntry>,
    options: Option<NegotiatedOptions>,
    queues: Option<crate::linkq::LinkQueues>,
    budget: Option<crate::budget::BudgetView>,
}

enum Cmd {
    Dial {
        who: Who,
        reply: oneshot::Sender<DialOutcome>,
    },
    Hangup {
        who: Who,
        force: bool,
        reply: oneshot::Sender<HangupOutcome>,
    },
}

struct LinkHandle {
    cfg: ConnectionConfig,
    cmd: mpsc::Sender<Cmd>,
    view: Arc<Mutex<LinkView>>,
    progress: broadcast::Sender<DialEvent>,
    budget: Option<super::budget::Shared>,
}

struct Shared {
    modems: Mutex<Vec<ModemSlot>>,
    /// The data plane's side of link up/down (masquerade address, routes, packets).
    uplink: Uplink,
    events: broadcast::Sender<LinkEvent>,
    /// Where re-probers of absent modems are spawned.
    tasks: Shutdown,
    /// For `PppConfig::refused_networks`, worked out at each dial ([`super::refused`]).
    lan_interface: Option<String>,
    tun_name: String,
    refused_configured: Vec<ipnet::IpNet>,
}

/// Cheap handle on the link manager.
#[derive(Clone)]
pub struct LinkManager {
    links: Arc<HashMap<String, LinkHandle>>,
    order: Arc<Vec<String>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LinkManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkManager")
            .field("connections", &self.order)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here only copy plain data; a panic elsewhere cannot leave them
    // half-updated, so a poisoned lock is taken over.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn auth_name(a: Option<AuthProtocol>) -> String {
    match a {
        Some(AuthProtocol::Pap) => "PAP".into(),
        Some(AuthProtocol::Chap) => "CHAP-MD5".into(),
        None => String::new(),
    }
}

/// How a session's end of `connection` maps onto a link failure (`None` = ended on request).
fn end_to_failure(end: &SessionEnd, carrier_lost: bool, connection: &str) -> Option<Failure> {
    if let SessionEnd::PppDown(reason @ DownReason::PapRefused { .. }) = end {
        return Some(Failure {
            kind: FailureKind::AuthFailed,
            message: format!(
                "{reason}; set allow_pap_fallback = true on connection {connection} to allow it"
            ),
        });
    }
    let (kind, message) = match end {
        SessionEnd::HungUp => return None,
        SessionEnd::ChatFailed { kind, message } => (
            match kind {
                ChatFailure::NoDialtone => FailureKind::NoDialtone,
                ChatFailure::Busy => FailureKind::Busy,
                ChatFailure::NoAnswer => FailureKind::NoAnswer,
                ChatFailure::NoCarrier => FailureKind::NoCarrier,
                ChatFailure::Error => FailureKind::ModemError,
                ChatFailure::Timeout => FailureKind::Timeout,
            },
            message.clone(),
        ),
        SessionEnd::PppDown(reason) => (
            match reason {
                DownReason::LocalClose(_) => return None,
                DownReason::EchoTimeout => FailureKind::EchoTimeout,
                DownReason::AuthFailed(_) | DownReason::PapRefused { .. } => {
                    FailureKind::AuthFailed
                }
                DownReason::NegotiationFailed(r) if r.contains("IPCP") => FailureKind::IpcpFailed,
                DownReason::Ipcp(_) => FailureKind::IpcpFailed,
                DownReason::NegotiationFailed(_) | DownReason::LoopbackDetected => {
                    FailureKind::LcpFailed
                }
                DownReason::PeerTerminated(_) if !carrier_lost => FailureKind::LcpFailed,
                DownReason::PeerTerminated(_) | DownReason::LowerDown => FailureKind::CarrierLost,
            },
            reason.to_string(),
        ),
        SessionEnd::Serial(e) => (FailureKind::ModemError, e.to_string()),
    };
    Some(Failure { kind, message })
}

/// Modem settings from the config.
pub fn modem_settings(m: &ModemConfig) -> ModemSettings {
    let mut s = ModemSettings::new(m.device.clone());
    s.baud = m.baud;
    s.data_bits = match m.data_bits {
        5 => modem::DataBits::Five,
        6 => modem::DataBits::Six,
        7 => modem::DataBits::Seven,
        _ => modem::DataBits::Eight,
    };
    s.parity = match m.parity {
        config::Parity::None => modem::Parity::None,
        config::Parity::Odd => modem::Parity::Odd,
        config::Parity::Even => modem::Parity::Even,
    };
    s.stop_bits = if m.stop_bits == 2 {
        modem::StopBits::Two
    } else {
        modem::StopBits::One
    };
    s.flow = match m.flow_control {
        config::FlowControl::Hardware => modem::FlowControl::RtsCts,
        // XON/XOFF would need 0x11/0x13 escaped by ACCM; the driver runs without flow
        // control then, which PPP's default ACCM (all control characters escaped) tolerates.
        config::FlowControl::None | config::FlowControl::Software => modem::FlowControl::None,
    };
    s
}

/// The chat plan of a connection on a modem.
pub fn chat_config(m: &ModemConfig, c: &ConnectionConfig) -> ChatConfig {
    let mut plan = ChatConfig {
        init: m.init.clone(),
        apn: c.apn.clone(),
        dial_prefix: c.dial_prefix.clone(),
        numbers: c.numbers.clone(),
        ..ChatConfig::default()
    };
    if c.apn.is_some() || m.cellular.is_some() {
        plan.cellular = Some(CellularDial {
            sim_pin: m.cellular.as_ref().and_then(|x| x.sim_pin.clone()),
            registration_wait: Duration::from_secs(c.registration_wait_s),
            ..CellularDial::default()
        });
    }
    plan.redial = RedialPolicy {
        attempts: c.redial_attempts.max(1),
        next_number_delay: Duration::from_secs(c.redial_delay_s.min(3)),
        round_delay: Duration::from_secs(c.redial_delay_s),
    };
    plan.login = login_steps(c);
    plan
}

/// The login script as chat steps: alternating expect, send (chat(8) style pairs). A send
/// is secret (`********` in every transcript and log) when it starts with `\q` (chat(8)'s
/// "quiet" escape, removed before sending), equals the connection's password, or follows
/// an expect naming a password (`assword`, any case).
fn login_steps(c: &ConnectionConfig) -> Vec<LoginStep> {
    c.login_script
        .chunks(2)
        .map(|pair| {
            let expect = pair.first().cloned().unwrap_or_default();
            let raw = pair.get(1).cloned().unwrap_or_default();
            let (send, quiet) = match raw.strip_prefix("\\q") {
                Some(rest) => (rest.to_string(), true),
                None => (raw, false),
            };
            let secret = quiet
                || (!c.password.is_empty() && send == c.password)
                || expect.to_ascii_lowercase().contains("assword");
            LoginStep {
                expect,
                send,
                secret,
                timeout: Duration::from_secs(30),
            }
        })
        .collect()
}

/// PPP client settings of a connection.
pub fn ppp_config(c: &ConnectionConfig) -> PppConfig {
    let mut p = PppConfig::client(&c.username, &c.password);
    p.accept_auth = match c.auth {
        PppAuth::Pap => vec![AuthProtocol::Pap],
        PppAuth::Chap => vec![AuthProtocol::Chap],
        PppAuth::Any => vec![AuthProtocol::Chap, AuthProtocol::Pap],
    };
    // With `any`, PAP only if the ISP insists after our Nak proposing CHAP-MD5, and only if
    // allowed (pppd `refuse-pap` otherwise).
    p.pap_fallback = c.allow_pap_fallback;
    // IPCP addressing (RFC 1332): see masqdial_ppp::ipcp for the policy.
    if let Some(a) = c.local_address {
        p.local_address = a;
    }
    p.peer_address = c.peer_address;
    p.accept_local = c.accept_local;
    p.accept_remote = c.accept_remote;
    p
}

fn policy(c: &ConnectionConfig) -> LinkPolicy {
    let opt = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    LinkPolicy {
        idle_timeout: opt(c.idle_timeout_s),
        max_connect: opt(c.max_connect_s),
        redial_on_loss: c.redial_on_loss,
        redial_delay: Duration::from_secs(c.redial_delay_s.max(1)),
        max_loss_redials: c.redial_attempts.max(1),
    }
}

impl LinkManager {
    /// Start one actor per connection under `shutdown`; links that come up and go down are
    /// announced to `uplink` (the data plane's side).
    pub fn start(cfg: &config::Config, uplink: Uplink, shutdown: &Shutdown) -> Self {
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            modems: Mutex::new(
                cfg.modems
                    .iter()
                    .map(|m| ModemSlot {
                        cfg: m.clone(),
                        user: None,
                        last_error: None,
                        absent: false,
                        modem_lines: None,
                        polling: None,
                        cell: None,
                        pin_refused: false,
                        next_probe: None,
                        failed_probes: 0,
                        reprobing: false,
                    })
                    .collect(),
            ),
            uplink,
            events,
            tasks: shutdown.clone(),
            lan_interface: cfg.nat.lan_interface.clone(),
            tun_name: cfg.nat.tun_name.clone(),
            refused_configured: cfg.link.refused_networks.clone(),
        });
        // A device that is not there at start is absent from the outset: re-probe it
        // (a USB modem plugged in later becomes usable without a restart).
        for (i, m) in cfg.modems.iter().enumerate() {
            if std::fs::metadata(&m.device).is_err() {
                let e = modem::OpenError::NotFound(m.device.clone());
                tracing::warn!(modem = %m.name, error = %e, "modem absent; re-probing with backoff");
                mark_absent(&shared, i, e.to_string());
            }
        }
        for (i, m) in cfg.modems.iter().enumerate() {
            if let Some(c) = &m.cellular {
                shutdown.spawn(cell_poller(
                    Arc::clone(&shared),
                    i,
                    m.clone(),
                    c.clone(),
                    shutdown.token(),
                ));
            }
        }
        let mut links = HashMap::new();
        let mut order = Vec::new();
        for c in &cfg.connections {
            let (tx, rx) = mpsc::channel(32);
            let view = Arc::new(Mutex::new(LinkView {
                state: Some(LinkState::Idle),
                ..LinkView::default()
            }));
            let (progress, _) = broadcast::channel(256);
            let budget = super::budget::Tracker::load(cfg, &c.name);
            let budget_check = budget.as_ref().map(super::budget::Tracker::shared);
            let actor = Actor {
                name: c.name.clone(),
                cfg: c.clone(),
                shared: Arc::clone(&shared),
                view: Arc::clone(&view),
                progress: progress.clone(),
                fsm: LinkFsm::new(policy(c)),
                session: None,
                modem: None,
                carrier_lost: false,
                last: SessionCounters::default(),
                dial_started: SystemTime::now(),
                transcript: Vec::new(),
                activity_last: None,
                tasks: shutdown.clone(),
                budget,
            };
            shutdown.spawn(actor.run(rx, shutdown.token()));
            order.push(c.name.clone());
            links.insert(
                c.name.clone(),
                LinkHandle {
                    cfg: c.clone(),
                    cmd: tx,
                    view,
                    progress,
                    budget: budget_check,
                },
            );
        }
        Self {
            links: Arc::new(links),
            order: Arc::new(order),
            shared,
        }
    }

    /// Connection names in config order.
    pub fn names(&self) -> &[String] {
        &self.order
    }

    /// The connection's config.
    pub fn connection(&self, name: &str) -> Result<&ConnectionConfig, LinkError> {
        self.links
            .get(name)
            .map(|l| &l.cfg)
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))
    }

    /// Subscribe to dial progress of one connection (subscribe before dialling).
    pub fn progress(&self, name: &str) -> Result<broadcast::Receiver<DialEvent>, LinkError> {
        self.links
            .get(name)
            .map(|l| l.progress.subscribe())
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))
    }

    /// Subscribe to link events of all connections (state changes, samples, progress).
    pub fn events(&self) -> broadcast::Receiver<LinkEvent> {
        self.shared.events.subscribe()
    }

    /// Dial `name` for `who`, or join it if it is up or coming up. A connection that is
    /// hanging up is waited for (at most [`LinkManager::hangup_wait`]), then dialled.
    pub async fn dial(&self, name: &str, who: Who) -> Result<DialOutcome, LinkError> {
        let l = self
            .links
            .get(name)
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))?;
        let until = tokio::time::Instant::now() + self.hangup_wait(name);
        let mut told = false;
        loop {
            let hanging = lock(&l.view).state == Some(LinkState::HangingUp);
            if hanging {
                if tokio::time::Instant::now() >= until {
                    return Err(LinkError::Busy(name.into()));
                }
                if !told {
                    tracing::info!(connection = name, user = %who.user, "dial waits for the hang-up in progress");
                    told = true;
                }
                tokio::time::sleep(HANGUP_POLL).await;
                continue;
            }
            match self.dial_once(l, name, who.clone()).await {
                Err(LinkError::Busy(_)) if tokio::time::Instant::now() < until => {
                    // Hanging up between our look and the actor's: wait for it.
                    tokio::time::sleep(HANGUP_POLL).await;
                }
                other => return other,
            }
        }
    }

    /// The longest a dial waits for its connection's hang-up: the longest session hang-up
    /// bound over the modems it may use, plus the report slack (what the actor itself waits).
    #[must_use]
    pub fn hangup_wait(&self, name: &str) -> Duration {
        let allowed = self
            .links
            .get(name)
            .map(|l| l.cfg.modems.clone())
            .unwrap_or_default();
        let modems = lock(&self.shared.modems);
        modems
            .iter()
            .filter(|m| allowed.is_empty() || allowed.contains(&m.cfg.name))
            .map(|m| session_hangup_bound(&modem_settings(&m.cfg)))
            .max()
            .unwrap_or_default()
            + REPORT_SLACK
    }

    async fn dial_once(
        &self,
        l: &LinkHandle,
        name: &str,
        who: Who,
    ) -> Result<DialOutcome, LinkError> {
        // A link that is up or coming up may be joined; a new dial must fit the budget
        // and find a modem.
        let active = lock(&l.view).state.is_some_and(LinkState::is_active);
        if let (false, Some(b)) = (active, &l.budget) {
            if let Err(r) = b.check_dial() {
                tracing::warn!(
                    user = %who.user, peer = %who.host, connection = name, limit = r.limit.name(),
                    "dial refused by budget: {r}"
                );
                return Err(LinkError::Budget(r));
            }
        }
        if !active {
            if let Some(detail) = self.modems_in_use(name) {
                return Err(LinkError::NoModem {
                    connection: name.into(),
                    detail,
                });
            }
        }
        let (reply, rx) = oneshot::channel();
        l.cmd
            .send(Cmd::Dial { who, reply })
            .await
            .map_err(|_| LinkError::Gone(name.into()))?;
        let out = rx.await.map_err(|_| LinkError::Gone(name.into()))?;
        if out == DialOutcome::Busy {
            return Err(LinkError::Busy(name.into()));
        }
        Ok(out)
    }

    /// When every modem `name` may use is held by another connection, a sentence saying
    /// which modem is in use by which connection and its holders; `None` when a modem is
    /// free (or busy only with a status poll, which a dial stops).
    fn modems_in_use(&self, name: &str) -> Option<String> {
        let allowed = self.links.get(name)?.cfg.modems.clone();
        let used: Vec<(String, String)> = {
            let modems = lock(&self.shared.modems);
            let mine: Vec<&ModemSlot> = modems
                .iter()
                .filter(|m| allowed.is_empty() || allowed.contains(&m.cfg.name))
                .collect();
            // A modem this very connection holds (it is hanging up) is not in use by another:
            // its dial waits for the hang-up instead.
            if mine.is_empty()
                || mine
                    .iter()
                    .any(|m| m.user.is_none() || m.user.as_deref() == Some(name))
            {
                return None;
            }
            mine.iter()
                .filter_map(|m| Some((m.cfg.name.clone(), m.user.clone()?)))
                .collect()
        };
        let parts: Vec<String> = used
            .iter()
            .map(|(modem, conn)| {
                let holders = self
                    .status(conn)
                    .map(|s| {
                        s.holders
                            .iter()
                            .map(|h| format!("{}@{}", h.user, h.host))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                if holders.is_empty() {
                    format!("modem {modem} is in use by connection {conn}")
                } else {
                    format!(
                        "modem {modem} is in use by connection {conn} (held by {})",
                        holders.join(", ")
                    )
                }
            })
            .collect();
        Some(parts.join("; "))
    }

    /// Release `who`'s hold on `name` (or drop it for everyone with `force`).
    pub async fn hangup(
        &self,
        name: &str,
        who: Who,
        force: bool,
    ) -> Result<HangupOutcome, LinkError> {
        let l = self
            .links
            .get(name)
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))?;
        let (reply, rx) = oneshot::channel();
        l.cmd
            .send(Cmd::Hangup { who, force, reply })
            .await
            .map_err(|_| LinkError::Gone(name.into()))?;
        match rx.await.map_err(|_| LinkError::Gone(name.into()))? {
            HangupOutcome::NotHolder => Err(LinkError::NotHolder(name.into())),
            HangupOutcome::NotActive => Err(LinkError::NotActive(name.into())),
            o => Ok(o),
        }
    }

    /// Dial for LAN packets (dial on demand) until `stop`: each request dials its
    /// connection for the user the sending host maps to, credited to that user and host
    /// (holders, `who`, status) and written to the audit log.
    pub async fn serve_demand(
        self,
        mut requests: mpsc::Receiver<crate::dataplane::demand::DialRequest>,
        stop: CancellationToken,
    ) {
        loop {
            let r = tokio::select! {
                () = stop.cancelled() => break,
                r = requests.recv() => match r {
                    Some(r) => r,
                    None => break,
                },
            };
            let who = Who {
                user: r.user.clone(),
                host: r.host.to_string(),
            };
            match self.dial(&r.connection, who).await {
                Ok(out) => tracing::info!(
                    user = %r.user, peer = %r.host, connection = %r.connection,
                    trigger = "demand", outcome = ?out, "dial"
                ),
                Err(e) => tracing::warn!(
                    user = %r.user, peer = %r.host, connection = %r.connection,
                    error = %e, "dial on demand failed"
                ),
            }
        }
    }

    /// Apply a reloaded configuration's `[[lan_hosts]]` and users' connections to dial on
    /// demand (the connections themselves need a restart). False when the data plane
    /// could not take it now.
    pub fn reload_demand(&self, cfg: &config::Config) -> bool {
        crate::dataplane::demand::DemandPolicy::from_config(cfg)
            .is_none_or(|p| self.shared.uplink.set_demand_policy(p))
    }

    /// Current state of one link.
    pub fn state(&self, name: &str) -> Option<LinkState> {
        self.links.get(name).and_then(|l| lock(&l.view).state)
    }

    /// Status of one link as the API shows it.
    pub fn status(&self, name: &str) -> Result<LinkStatus, LinkError> {
        let l = self
            .links
            .get(name)
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))?;
        Ok(view_status(name, &lock(&l.view)))
    }

    /// Status of every link in config order.
    pub fn statuses(&self) -> Vec<LinkStatus> {
        self.order
            .iter()
            .filter_map(|n| self.status(n).ok())
            .collect()
    }

    /// Transcript and negotiated options of the current/last dial.
    pub fn details(
        &self,
        name: &str,
    ) -> Result<(Vec<TranscriptEntry>, Option<PppDetails>), LinkError> {
        let l = self
            .links
            .get(name)
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))?;
        let v = lock(&l.view);
        let ppp = v.options.clone().map(|options| PppDetails {
            options,
            stats: v.counters.ppp,
        });
        Ok((v.transcript.clone(), ppp))
    }

    /// Every modem with its state.
    pub fn modems(&self) -> Vec<ModemView> {
        lock(&self.shared.modems)
            .iter()
            .map(|m| ModemView {
                name: m.cfg.name.clone(),
                device: m.cfg.device.display().to_string(),
                baud: m.cfg.baud,
                state: if m.user.is_some() {
                    ModemState::Busy
                } else if m.absent {
                    ModemState::Absent
                } else if m.last_error.is_some() {
                    ModemState::Error
                } else {
                    ModemState::Idle
                },
                connection: m.user.clone(),
                last_error: m.last_error.clone(),
                modem_lines: m.modem_lines.unwrap_or(false),
                cellular: m.cell.clone(),
                next_probe: m.next_probe.filter(|_| m.absent),
                failed_probes: if m.absent { m.failed_probes } else { 0 },
            })
            .collect()
    }
}

fn view_status(name: &str, v: &LinkView) -> LinkStatus {
    let up = v.state == Some(LinkState::Up);
    LinkStatus {
        connection: name.to_string(),
        state: v.state.unwrap_or(LinkState::Idle),
        modem: v.modem.clone(),
        speed_bps: v.speed,
        local: v.local.filter(|_| up),
        peer: v.peer.filter(|_| up),
        dns: if up { v.dns.clone() } else { Vec::new() },
        connected_since: v.since.filter(|_| up),
        bytes_in: v.counters.bytes_in,
        bytes_out: v.counters.bytes_out,
        packets_in: v.counters.packets_in,
        packets_out: v.counters.packets_out,
        holders: v.holders.clone(),
        last_failure: v.failure.clone(),
        idle_seconds: v.idle_secs,
        queues: v.queues.clone().filter(|_| up).map(Box::new),
        budget: v.budget.clone().map(Box::new),
    }
}

/// Poll a cellular modem's status every `cell.poll_s` until `stop`: over its second AT
/// port if configured, else only while no session uses it (never in PPP data mode). A
/// dial that wants the modem mid-poll stops the poll ([`Actor::start_session`]).
async fn cell_poller(
    shared: Arc<Shared>,
    idx: usize,
    modem: ModemConfig,
    cell: config::CellularConfig,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(cell.poll_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let abort = Arc::new(AtomicBool::new(false));
        let mut settings = modem_settings(&modem);
        if let Some(p) = &cell.status_port {
            settings.device = p.clone();
        } else {
            let mut modems = lock(&shared.modems);
            let Some(slot) = modems.get_mut(idx) else {
                return;
            };
            if slot.user.is_some() || slot.polling.is_some() {
                continue;
            }
            slot.polling = Some(Arc::clone(&abort));
        }
        let refused = lock(&shared.modems)
            .get(idx)
            .is_some_and(|slot| slot.pin_refused);
        let pin = cell.sim_pin.clone().filter(|_| !refused);
        let flag = Arc::clone(&abort);
        let res =
            tokio::task::spawn_blocking(move || crate::modem::cell::query(&settings, pin, &flag))
                .await;
        let mut modems = lock(&shared.modems);
        let Some(slot) = modems.get_mut(idx) else {
            return;
        };
        if cell.status_port.is_none() {
            slot.polling = None;
        }
        if abort.load(Ordering::Relaxed) {
            continue; // cut short by a dial: keep the last full answer
        }
        let view = slot.cell.get_or_insert_with(|| CellView {
            status: Default::default(),
            at: None,
            error: None,
        });
        match res {
            Ok(Ok(status)) => {
                if status.pin == Some(false) {
                    tracing::warn!(
                        modem = %modem.name,
                        "the SIM refused the configured PIN; it is not sent again until \
                         mserver restarts (each wrong PIN uses up one of the SIM's tries)"
                    );
                    slot.pin_refused = true;
                }
                view.status = status;
                view.at = Some(SystemTime::now());
                view.error = None;
            }
            Ok(Err(e)) => {
                tracing::debug!(modem = %modem.name, error = %e, "cellular status poll failed");
                view.error = Some(e.to_string());
            }
            Err(e) => view.error = Some(format!("status poll task: {e}")),
        }
    }
}

/// One connection's task.
struct Actor {
    name: String,
    cfg: ConnectionConfig,
    shared: Arc<Shared>,
    view: Arc<Mutex<LinkView>>,
    progress: broadcast::Sender<DialEvent>,
    fsm: LinkFsm,
    session: Option<SessionHandle>,
    modem: Option<usize>,
    carrier_lost: bool,
    last: SessionCounters,
    dial_started: SystemTime,
    transcript: Vec<TranscriptEntry>,
    /// The data plane's activity count at the last sample (activity-filtered links).
    activity_last: Option<u64>,
    /// Where hang-up helpers are spawned, so shutdown joins them.
    tasks: Shutdown,
    /// The connection's budget (usage fed every sample).
    budget: Option<super::budget::Tracker>,
}

async fn next_session_event(s: &mut Option<SessionHandle>) -> Option<SessionEvent> {
    match s {
        Some(h) => h.next_event().await,
        None => std::future::pending().await,
    }
}

impl Actor {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, shutdown: CancellationToken) {
        let mut sample = tokio::time::interval(SAMPLE);
        sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (ended_tx, mut ended_rx) = mpsc::channel::<Vec<SessionEvent>>(4);
        loop {
            let deadline = self.fsm.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.shutdown().await;
                    return;
                }
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Dial { who, reply }) => {
                        let holder = Holder { user: who.user, host: who.host, since: SystemTime::now() };
                        let out = self.fsm.dial(Instant::now(), holder);
                        if out == DialOutcome::Started {
                            self.dial_started = SystemTime::now();
                            self.transcript.clear();
                        }
                        let _ = reply.send(out);
                    }
                    Some(Cmd::Hangup { who, force, reply }) => {
                        let others: Vec<String> = self
                            .fsm
                            .holders()
                            .iter()
                            .filter(|h| !(h.user == who.user && h.host == who.host))
                            .map(|h| format!("{}@{}", h.user, h.host))
                            .collect();
                        let out = self.fsm.hangup(&who.user, &who.host, force);
                        if force && out == HangupOutcome::Dropping && !others.is_empty() {
                            // Tell the holders who dropped their link.
                            self.note(
                                TranscriptKind::Info,
                                format!(
                                    "hung up by {}@{} (forced); released {}",
                                    who.user,
                                    who.host,
                                    others.join(", ")
                                ),
                            );
                        }
                        let _ = reply.send(out);
                    }
                    None => return,
                },
                ev = next_session_event(&mut self.session) => match ev {
                    Some(ev) => self.on_session(ev),
                    None => {
                        // Driver gone without an Ended event: treat as a serial failure.
                        self.on_session(SessionEvent::Ended(SessionEnd::Serial(
                            crate::modem::SerialError::Io("modem session stopped unexpectedly".into()),
                        )));
                    }
                },
                rest = ended_rx.recv() => {
                    for ev in rest.unwrap_or_default() {
                        self.on_session(ev);
                    }
                }
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => self.fsm.handle_timeout(Instant::now()),
                _ = sample.tick() => self.sample(),
            }
            self.act(&ended_tx).await;
            self.refresh_view();
        }
    }

    fn emit(&self, step: DialStep) {
        let ev = DialEvent {
            at: SystemTime::now(),
            step,
        };
        let _ = self.progress.send(ev.clone());
        let _ = self.shared.events.send(LinkEvent {
            at: ev.at,
            change: LinkChange::Progress {
                connection: self.name.clone(),
                event: ev,
            },
        });
    }

    /// A transcript line that also goes to dial watchers as free text.
    fn note(&mut self, kind: TranscriptKind, text: String) {
        self.record(kind, text.clone());
        self.emit(DialStep::Info(text));
    }

    /// A transcript line only (a structured event tells watchers the same).
    fn record(&mut self, kind: TranscriptKind, text: String) {
        if self.transcript.len() >= TRANSCRIPT_MAX {
            self.transcript.remove(0);
        }
        self.transcript.push(TranscriptEntry {
            at: SystemTime::now(),
            kind,
            text,
        });
    }

    fn on_session(&mut self, ev: SessionEvent) {
        let now = Instant::now();
        match ev {
            SessionEvent::Chat(c) => self.on_chat(now, c),
            SessionEvent::Ppp(p) => self.on_ppp(now, p),
            SessionEvent::CarrierLost => {
                self.carrier_lost = true;
                self.note(TranscriptKind::Error, "carrier lost".into());
                // Down now (routes, data plane, state), not after the hang-up.
                self.fsm.carrier_lost();
            }
            SessionEvent::HangingUp => self.note(TranscriptKind::Info, "hanging up".into()),
            SessionEvent::Ended(end) => {
                let failure = end_to_failure(&end, self.carrier_lost, &self.name);
                self.finish_session(&end);
                if let Some(f) = &failure {
                    self.note(TranscriptKind::Error, f.message.clone());
                }
                self.fsm.handle_session(now, SessionReport::Ended(failure));
                // Failed is announced with the state change (see `act`), after the view
                // is refreshed, so a watcher that reads Status next sees it.
                if self.fsm.state() == LinkState::Dialing {
                    // Redial on loss is pending.
                    self.emit(DialStep::Redial {
                        next_attempt: 1,
                        delay: Duration::from_secs(self.cfg.redial_delay_s.max(1)),
                    });
                }
            }
        }
    }

    fn on_chat(&mut self, now: Instant, c: ChatEvent) {
        match c {
            ChatEvent::ModemInit {
                command,
                step,
                count,
            } => {
                if step == 1 {
                    let (modem, device) = self.modem_names();
                    self.emit(DialStep::ModemInit { modem, device });
                }
                self.note(
                    TranscriptKind::Info,
                    format!("init {step}/{count}: {command}"),
                );
            }
            ChatEvent::Dialing {
                number,
                index,
                count,
                attempt,
                attempts,
            } => {
                crate::counters::global().dial_attempt(&self.name);
                self.record(
                    TranscriptKind::Info,
                    format!("dialling {number} (number {index} of {count}, attempt {attempt})"),
                );
                self.emit(DialStep::Dialing {
                    number,
                    index,
                    count,
                    attempt,
                    attempts,
                });
            }
            ChatEvent::Connected { speed, extras } => {
                let speed = speed.unwrap_or(0);
                self.record(
                    TranscriptKind::Recv,
                    format!(
                        "CONNECT {speed}{}",
                        extras
                            .as_deref()
                            .map(|e| format!("/{e}"))
                            .unwrap_or_default()
                    ),
                );
                self.fsm
                    .handle_session(now, SessionReport::Connected { speed });
                self.emit(DialStep::Connected {
                    speed_bps: speed,
                    extras: extras.unwrap_or_default(),
                });
            }
            ChatEvent::LoginStep { step, count } => {
                self.note(
                    TranscriptKind::Info,
                    format!("login script step {step}/{count} done"),
                );
            }
            ChatEvent::Redial {
                kind,
                number,
                next_number,
                next_attempt,
                after,
            } => {
                crate::counters::global()
                    .dial_failure(&self.name, super::labels::chat_failure_kind(kind));
                self.record(
                    TranscriptKind::Info,
                    format!(
                        "{kind} on {number}; next {next_number} in {}s",
                        after.as_secs()
                    ),
                );
                self.emit(DialStep::Redial {
                    next_attempt,
                    delay: after,
                });
            }
            ChatEvent::Cellular(p) => {
                if let CellProgress::PinRefused { cause } = &p {
                    tracing::warn!(
                        connection = %self.name, %cause,
                        "the SIM refused the configured PIN; it is not sent again until \
                         mserver restarts"
                    );
                    if let Some(i) = self.modem {
                        if let Some(slot) = lock(&self.shared.modems).get_mut(i) {
                            slot.pin_refused = true;
                        }
                    }
                }
                self.note(TranscriptKind::Info, p.to_string());
            }
            ChatEvent::Ready => self.note(TranscriptKind::Info, "line handed to PPP".into()),
            ChatEvent::Failed { kind, message } => {
                tracing::warn!(connection = %self.name, %kind, ?message, "dial failed");
                self.note(
                    TranscriptKind::Error,
                    format!("chat failed ({kind}): {message}"),
                );
            }
        }
    }

    fn on_ppp(&mut self, now: Instant, p: PppEvent) {
        match p {
            PppEvent::LcpUp { peer_mru, auth } => {
                let options = Box::new(self.negotiated());
                self.record(
                    TranscriptKind::Info,
                    format!("LCP up (peer MRU {peer_mru}, auth {})", auth_name(auth)),
                );
                if options.pap_fallback {
                    // The operator allowed it, but the secret now crosses the line in clear.
                    tracing::warn!(
                        connection = %self.name,
                        "the ISP refused CHAP-MD5 and insisted on PAP: using PAP \
                         (allow_pap_fallback = true), the password is sent in clear"
                    );
                    self.note(
                        TranscriptKind::Info,
                        "PAP fallback: the ISP refused CHAP-MD5 and insisted on PAP \
                         (allow_pap_fallback = true); the password is sent in clear"
                            .into(),
                    );
                }
                self.fsm.handle_session(now, SessionReport::LcpUp);
                self.emit(DialStep::LcpUp {
                    peer_mru,
                    auth,
                    options,
                });
            }
            PppEvent::AuthOk { protocol, .. } => {
                let name = auth_name(protocol);
                let shown = if name.is_empty() {
                    "none".to_string()
                } else {
                    name
                };
                self.record(TranscriptKind::Info, format!("authentication ok ({shown})"));
                self.fsm.handle_session(now, SessionReport::AuthOk);
                self.emit(DialStep::AuthOk(protocol));
            }
            PppEvent::AuthFailed { message } => {
                self.note(
                    TranscriptKind::Error,
                    format!("authentication failed: {message}"),
                );
            }
            PppEvent::IpcpUp { local, peer, dns } => {
                self.record(
                    TranscriptKind::Info,
                    format!("IPCP up: local {local}, peer {peer}, dns {dns:?}"),
                );
                let options = Box::new(self.negotiated());
                self.emit(DialStep::IpcpUp {
                    local,
                    peer,
                    dns: dns.clone(),
                    options,
                });
                self.fsm
                    .handle_session(now, SessionReport::IpcpUp { local, peer, dns });
            }
            PppEvent::Down { reason } => {
                self.note(TranscriptKind::Info, format!("PPP down: {reason}"))
            }
            PppEvent::Ipv4(_) => {}
        }
    }

    /// The session's negotiated options as of its last event (published before LCP/IPCP up
    /// events are sent).
    fn negotiated(&self) -> NegotiatedOptions {
        self.session
            .as_ref()
            .and_then(SessionHandle::options)
            .unwrap_or_default()
    }

    fn modem_names(&self) -> (String, String) {
        let modems = lock(&self.shared.modems);
        self.modem
            .and_then(|i| modems.get(i))
            .map(|m| (m.cfg.name.clone(), m.cfg.device.display().to_string()))
            .unwrap_or_default()
    }

    fn finish_session(&mut self, end: &SessionEnd) {
        self.session = None;
        self.carrier_lost = false;
        if let Some(i) = self.modem.take() {
            let mut modems = lock(&self.shared.modems);
            if let Some(m) = modems.get_mut(i) {
                m.user = None;
                if let SessionEnd::Serial(e) = end {
                    m.last_error = Some(e.to_string());
                }
            }
        }
    }

    /// Pick a free modem allowed for this connection and start a session on it. A modem
    /// busy with a status poll is asked to stop it, and waited for (bounded).
    /// On failure, also whether every allowed modem was simply busy (nothing was tried):
    /// that is a refusal, not a failure of the connection.
    async fn start_session(&mut self) -> Result<(), (Failure, bool)> {
        let mut tried = Vec::new();
        let poll_wait = Instant::now() + Duration::from_secs(3);
        loop {
            let allowed =
                |m: &ModemSlot| self.cfg.modems.is_empty() || self.cfg.modems.contains(&m.cfg.name);
            let pick = {
                let mut modems = lock(&self.shared.modems);
                let free = |m: &ModemSlot| {
                    m.user.is_none()
                        && m.polling.is_none()
                        && allowed(m)
                        && !tried.contains(&m.cfg.name)
                };
                // Present modems first; an absent one is still tried (it may be back
                // before its next probe).
                let i = modems
                    .iter()
                    .position(|m| free(m) && !m.absent)
                    .or_else(|| modems.iter().position(free));
                let mut waiting = false;
                if i.is_none() && Instant::now() < poll_wait {
                    for m in modems.iter().filter(|m| m.user.is_none() && allowed(m)) {
                        if let Some(a) = &m.polling {
                            a.store(true, Ordering::Relaxed);
                            waiting = true;
                        }
                    }
                }
                if let Some(i) = i {
                    modems[i].user = Some(self.name.clone());
                }
                (
                    i.map(|i| (i, modems[i].cfg.clone(), modems[i].pin_refused)),
                    waiting,
                )
            };
            let pick = match pick {
                (None, true) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                (p, _) => p,
            };
            let Some((i, m, pin_refused)) = pick else {
                let busy = tried.is_empty();
                let failure = Failure {
                    kind: FailureKind::NoModem,
                    message: if busy {
                        "every modem allowed for this connection is busy".into()
                    } else {
                        format!("no usable modem (tried {})", tried.join(", "))
                    },
                };
                return Err((failure, busy));
            };
            let mut ppp = ppp_config(&self.cfg);
            // This host's networks as they are now (a LAN address may have changed).
            ppp.refused_networks = super::refused::refused_networks(
                &super::refused::interface_nets(),
                self.shared.lan_interface.as_deref(),
                &self.shared.tun_name,
                &self.shared.refused_configured,
            );
            let mut plan = chat_config(&m, &self.cfg);
            if let Some(c) = plan.cellular.as_mut().filter(|_| pin_refused) {
                c.sim_pin = None;
            }
            match spawn_session(modem_settings(&m), plan, ppp) {
                Ok(h) => {
                    let mut modems = lock(&self.shared.modems);
                    if let Some(slot) = modems.get_mut(i) {
                        slot.absent = false;
                        slot.last_error = None;
                        slot.next_probe = None;
                        slot.failed_probes = 0;
                    }
                    drop(modems);
                    self.session = Some(h);
                    self.modem = Some(i);
                    self.last = SessionCounters::default();
                    self.carrier_lost = false;
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(connection = %self.name, modem = %m.name, error = %e, "modem unusable");
                    self.note(TranscriptKind::Error, format!("modem {}: {e}", m.name));
                    if let Some(slot) = lock(&self.shared.modems).get_mut(i) {
                        slot.user = None;
                    }
                    mark_absent(&self.shared, i, e.to_string());
                    tried.push(m.name.clone());
                }
            }
        }
    }

    async fn act(&mut self, ended_tx: &mpsc::Sender<Vec<SessionEvent>>) {
        while let Some(a) = self.fsm.poll_action() {
            match a {
                LinkAction::StartSession => {
                    if let Err((f, all_busy)) = self.start_session().await {
                        self.record(TranscriptKind::Error, f.message.clone());
                        if all_busy && self.fsm.refuse_dial() {
                            // Every modem taken between the check and the start: a refusal,
                            // told once, and the connection stays as it was (not failed).
                            // A modem that was tried and is gone is a real failure.
                            self.emit(DialStep::Failed(f));
                        } else {
                            self.fsm.handle_session(
                                Instant::now(),
                                SessionReport::Ended(Some(f.clone())),
                            );
                        }
                    }
                }
                LinkAction::StopSession => match self.session.take() {
                    Some(h) => {
                        let tx = ended_tx.clone();
                        // Longer than the session's own hang-up bound: its report always
                        // arrives (a made-up `Ended` if the thread wedged beyond it).
                        let limit = h.report_wait();
                        self.tasks.spawn(async move {
                            let rest = h.hangup(limit).await;
                            let _ = tx.send(rest).await;
                        });
                    }
                    None => {
                        // Nothing running (e.g. waiting to redial): settle now.
                        self.fsm
                            .handle_session(Instant::now(), SessionReport::Ended(None));
                    }
                },
                LinkAction::LinkUp {
                    local,
                    peer,
                    dns: _,
                } => self.link_up(local, peer).await,
                LinkAction::LinkDown => self.link_down().await,
                LinkAction::StateChanged(s) => {
                    tracing::info!(connection = %self.name, state = ?s, "link state");
                    self.refresh_view();
                    let status = view_status(&self.name, &lock(&self.view));
                    let _ = self.shared.events.send(LinkEvent {
                        at: SystemTime::now(),
                        change: LinkChange::State(status.clone()),
                    });
                    if s == LinkState::Up {
                        self.emit(DialStep::Up(status));
                    } else if s == LinkState::Failed {
                        if let Some(f) = self.fsm.last_failure().cloned() {
                            if let Some(k) = super::labels::dial_failure_kind(f.kind) {
                                crate::counters::global().dial_failure(&self.name, k);
                            }
                            self.emit(DialStep::Failed(f));
                        }
                    }
                }
                LinkAction::HoldersReleased(h) => {
                    tracing::info!(connection = %self.name, holders = h.len(), "holders released");
                }
            }
        }
    }

    /// Announce "up: address `local`, this session" to the data plane.
    async fn link_up(&mut self, local: Ipv4Addr, peer: Ipv4Addr) {
        let up = LinkUp {
            connection: self.name.clone(),
            local,
            peer,
            routes: self.cfg.routes.clone(),
            replace_default_route: self.cfg.replace_default_route,
        };
        let notes = self
            .shared
            .uplink
            .up(up, self.session.as_mut().map(|s| s.link_port()))
            .await;
        for n in notes {
            match n {
                UplinkNote::Info(t) => self.note(TranscriptKind::Info, t),
                UplinkNote::Error(t) => self.note(TranscriptKind::Error, t),
            }
        }
    }

    /// Announce "down" to the data plane (a no-op unless this link is the active one).
    async fn link_down(&mut self) {
        self.shared.uplink.down(&self.name).await;
    }

    fn sample(&mut self) {
        self.budget_sample();
        let Some(s) = &self.session else { return };
        let c = s.counters();
        let mut moved =
            c.packets_in != self.last.packets_in || c.packets_out != self.last.packets_out;
        // Activity filters (and dial on demand) decide what resets the idle timer: the
        // data plane counts only the packets that pass them, while this link is attached.
        let filtered = self.cfg.demand || !self.cfg.activity_filter.is_empty();
        if filtered && self.shared.uplink.active().as_deref() == Some(self.name.as_str()) {
            if let Some(a) = self.shared.uplink.activity() {
                moved = self.activity_last.is_some_and(|l| l != a);
                self.activity_last = Some(a);
            }
        } else {
            self.activity_last = None;
        }
        if moved {
            self.fsm.traffic(Instant::now());
        }
        if self.fsm.state() == LinkState::Up {
            let _ = self.shared.events.send(LinkEvent {
                at: SystemTime::now(),
                change: LinkChange::Sample(TrafficSample {
                    connection: self.name.clone(),
                    bytes_in: c.bytes_in.saturating_sub(self.last.bytes_in),
                    bytes_out: c.bytes_out.saturating_sub(self.last.bytes_out),
                    packets_in: c.packets_in.saturating_sub(self.last.packets_in),
                    packets_out: c.packets_out.saturating_sub(self.last.packets_out),
                    period: SAMPLE,
                }),
            });
        }
        self.last = c;
    }

    /// Feed the budget this sample's traffic and up time; warn holders or hang up when it
    /// says so (the hang-up is written to the audit log).
    fn budget_sample(&mut self) {
        let Some(b) = &mut self.budget else { return };
        let (bytes_in, bytes_out) = match &self.session {
            Some(s) => {
                let c = s.counters();
                (
                    c.bytes_in.saturating_sub(self.last.bytes_in),
                    c.bytes_out.saturating_sub(self.last.bytes_out),
                )
            }
            None => (0, 0),
        };
        let up = self.fsm.state() == LinkState::Up;
        let Some(notice) = b.feed(Instant::now(), bytes_in, bytes_out, up) else {
            return;
        };
        let holders: Vec<String> = self
            .fsm
            .holders()
            .iter()
            .map(|h| format!("{}@{}", h.user, h.host))
            .collect();
        if notice.hang_up {
            tracing::warn!(
                audit = true, connection = %self.name, limit = notice.limit.name(),
                holders = ?holders, "budget hang-up: {}", notice.message
            );
            self.note(TranscriptKind::Error, notice.message.clone());
            let _ = self.fsm.hangup("mserver", "budget", true);
        } else {
            tracing::info!(
                connection = %self.name, limit = notice.limit.name(), holders = ?holders,
                "budget warning: {}", notice.message
            );
            self.note(TranscriptKind::Info, notice.message.clone());
        }
        let _ = self.shared.events.send(LinkEvent {
            at: SystemTime::now(),
            change: LinkChange::Budget {
                connection: self.name.clone(),
                notice,
            },
        });
    }

    fn refresh_view(&mut self) {
        let now = Instant::now();
        let (modem, _) = self.modem_names();
        let mut v = lock(&self.view);
        v.state = Some(self.fsm.state());
        if !modem.is_empty() || self.fsm.state() == LinkState::Idle {
            v.modem = modem;
        }
        v.speed = self.fsm.speed();
        if let Some((l, p, d)) = self.fsm.addresses() {
            v.local = Some(*l);
            v.peer = Some(*p);
            v.dns = d.clone();
        }
        v.since = self
            .fsm
            .up_since()
            .map(|t| SystemTime::now() - now.saturating_duration_since(t));
        if let Some(s) = &self.session {
            v.counters = s.counters();
            if let Some(o) = s.options() {
                v.options = Some(o);
            }
            v.queues = Some(crate::linkq::LinkQueues {
                egress: s.queue(),
                ingress: self.shared.uplink.ingress_queue(),
                ingress_shaping: self.shared.uplink.ingress_shaping(),
            });
        } else {
            v.queues = None;
        }
        v.holders = self.fsm.holders().to_vec();
        v.failure = self.fsm.last_failure().cloned();
        v.budget = self.budget.as_ref().map(|b| b.shared().view());
        v.idle_secs = self
            .fsm
            .idle_for(now)
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
            .unwrap_or(0);
        let mut t = self.transcript.clone();
        if let Some(s) = &self.session {
            for line in s.transcript() {
                t.push(TranscriptEntry {
                    at: self.dial_started + line.at,
                    kind: line.kind,
                    text: line.text,
                });
            }
            t.sort_by_key(|l| l.at);
            v.transcript = t;
        } else if !self.transcript.is_empty() || self.fsm.state() == LinkState::Idle {
            // Keep the last session's chat lines merged above; only our own notes remain
            // once the session is gone.
            if v.transcript.len() < t.len() {
                v.transcript = t;
            }
        }
    }

    async fn shutdown(&mut self) {
        if let Some(b) = &mut self.budget {
            b.save(Instant::now());
        }
        if self.fsm.state() == LinkState::Up {
            self.link_down().await;
        }
        if let Some(h) = self.session.take() {
            let limit = h.report_wait();
            let _ = h.hangup(limit).await;
        }
    }
}

/// Marks modem `idx` absent with `error` and starts its re-prober unless one runs.
fn mark_absent(shared: &Arc<Shared>, idx: usize, error: String) {
    let mut modems = lock(&shared.modems);
    let Some(slot) = modems.get_mut(idx) else {
        return;
    };
    slot.absent = true;
    slot.last_error = Some(error);
    if slot.reprobing {
        return;
    }
    slot.reprobing = true;
    let cfg = slot.cfg.clone();
    drop(modems);
    shared
        .tasks
        .spawn(reprobe(Arc::clone(shared), idx, cfg, shared.tasks.token()));
}

/// How long one re-probe may wait for `OK` (a dial that wants the modem waits for it).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Re-probes an absent modem ([`modem::probe`]: open, `AT`, `OK`) with [`modem::Backoff`]
/// (1 s doubling to 60 s) until it answers, a dial finds it present, or `stop`. The next
/// probe time and the failure count are shown by `ListModems`. A probe never runs while a
/// connection uses the modem; a dial that wants it mid-probe waits for the probe (bounded).
async fn reprobe(shared: Arc<Shared>, idx: usize, modem: ModemConfig, stop: CancellationToken) {
    let mut backoff = modem::Backoff::default();
    let settings = modem_settings(&modem);
    loop {
        let wait = backoff.next().unwrap_or(Duration::from_secs(60));
        {
            let mut modems = lock(&shared.modems);
            let Some(slot) = modems.get_mut(idx) else {
                return;
            };
            if !slot.absent {
                slot.reprobing = false;
                slot.next_probe = None;
                return;
            }
            slot.next_probe = Some(SystemTime::now() + wait);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        {
            let mut modems = lock(&shared.modems);
            let Some(slot) = modems.get_mut(idx) else {
                return;
            };
            if !slot.absent {
                slot.reprobing = false;
                slot.next_probe = None;
                return;
            }
            if slot.user.is_some() || slot.polling.is_some() {
                continue;
            }
            slot.polling = Some(Arc::new(AtomicBool::new(false)));
        }
        let s = settings.clone();
        let res = tokio::task::spawn_blocking(move || modem::probe(&s, PROBE_TIMEOUT)).await;
        let mut modems = lock(&shared.modems);
        let Some(slot) = modems.get_mut(idx) else {
            return;
        };
        slot.polling = None;
        match res {
            Ok(Ok(info)) => {
                tracing::info!(modem = %modem.name, device = %modem.device.display(), "absent modem answered a probe; usable again");
                slot.absent = false;
                slot.last_error = None;
                slot.modem_lines = Some(info.has_status_lines);
                slot.next_probe = None;
                slot.failed_probes = 0;
                slot.reprobing = false;
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(modem = %modem.name, error = %e, "re-probe failed");
                slot.failed_probes = slot.failed_probes.saturating_add(1);
                if slot.absent {
                    slot.last_error = Some(e.to_string());
                }
            }
            Err(e) => {
                slot.failed_probes = slot.failed_probes.saturating_add(1);
                slot.last_error = Some(format!("probe task: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod login_tests {
    use super::*;

    #[test]
    fn login_sends_are_secret_when_marked_equal_to_the_password_or_after_a_password_prompt() {
        let mut c: ConnectionConfig =
            toml::from_str("name = \"isp\"\nnumbers = [\"1\"]\npassword = \"hunter2\"")
                .unwrap_or_else(|e| panic!("{e}"));
        c.login_script = [
            "ogin:",
            "alice", // plain
            "Passcode:",
            "\\q4711", // marked quiet: secret, marker removed
            "PIN?",
            "hunter2", // the connection's password under another prompt
            "PASSWORD:",
            "x", // a password prompt
        ]
        .map(String::from)
        .to_vec();
        let steps = login_steps(&c);
        let got: Vec<(&str, bool)> = steps.iter().map(|s| (s.send.as_str(), s.secret)).collect();
        assert_eq!(
            got,
            vec![
                ("alice", false),
                ("4711", true),
                ("hunter2", true),
                ("x", true)
            ]
        );
    }
}
