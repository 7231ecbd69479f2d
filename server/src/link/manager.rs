//! The link manager: one actor task per configured connection drives its [`LinkFsm`] with
//! modem sessions (chat then PPP), hands the IPCP address to nat-core, configures the TUN
//! interface and routes, and attaches the session to the dataplane. It owns the modem
//! table and the per-link views the rpc layer reads; it must not parse packets (nat-core)
//! or touch the serial port itself (modem).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use masqdial_proto::v1 as pb;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::fsm::{
    DialOutcome, Failure, FailureKind, HangupOutcome, Holder, LinkAction, LinkFsm, LinkPolicy,
    LinkState, SessionEvent as FsmEvent,
};
use crate::config::{self, ConnectionConfig, ModemConfig, PppAuth};
use crate::dataplane::netcfg::{NetCfg, RouteSpec};
use crate::dataplane::{Dataplane, LinkPort, Nat, LINK_QUEUE};
use crate::modem::session::{
    spawn_session, SessionCounters, SessionEnd, SessionEvent, SessionHandle,
};
use crate::modem::{self, ModemSettings};
use masqdial_at::{ChatConfig, ChatEvent, ChatFailure, LoginStep, RedialPolicy, TranscriptKind};
use masqdial_ppp::{AuthProtocol, DownReason, NegotiatedOptions, PppConfig, PppEvent};

/// How long a hang-up may take before the session is abandoned.
const HANGUP_LIMIT: Duration = Duration::from_secs(10);
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
    transcript: Vec<pb::TranscriptLine>,
    options: Option<NegotiatedOptions>,
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
    progress: broadcast::Sender<pb::DialEvent>,
}

struct Shared {
    modems: Mutex<Vec<ModemSlot>>,
    nat: Nat,
    dataplane: Option<Dataplane>,
    netcfg: Option<NetCfg>,
    events: broadcast::Sender<pb::LinkEvent>,
    /// The connection whose link the dataplane carries now.
    active: Mutex<Option<String>>,
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

fn ts(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

/// The protobuf form of a link state.
pub fn pb_state_of(s: LinkState) -> pb::LinkState {
    pb_state(s)
}

fn pb_state(s: LinkState) -> pb::LinkState {
    match s {
        LinkState::Idle => pb::LinkState::Idle,
        LinkState::Dialing => pb::LinkState::Dialing,
        LinkState::Connected => pb::LinkState::Connected,
        LinkState::Authenticating => pb::LinkState::Authenticating,
        LinkState::Up => pb::LinkState::Up,
        LinkState::HangingUp => pb::LinkState::HangingUp,
        LinkState::Failed => pb::LinkState::Failed,
    }
}

fn pb_failure_kind(k: FailureKind) -> pb::FailureKind {
    use pb::FailureKind as P;
    match k {
        FailureKind::NoModem => P::NoModem,
        FailureKind::ModemError => P::ModemError,
        FailureKind::NoDialtone => P::NoDialtone,
        FailureKind::Busy => P::Busy,
        FailureKind::NoAnswer => P::NoAnswer,
        FailureKind::NoCarrier => P::NoCarrier,
        FailureKind::Timeout => P::Timeout,
        FailureKind::LcpFailed => P::LcpFailed,
        FailureKind::AuthFailed => P::AuthFailed,
        FailureKind::IpcpFailed => P::IpcpFailed,
        FailureKind::CarrierLost => P::CarrierLost,
        FailureKind::EchoTimeout => P::EchoTimeout,
        FailureKind::Cancelled => P::Cancelled,
        FailureKind::IdleTimeout => P::IdleTimeout,
        FailureKind::MaxConnectTime => P::MaxConnectTime,
    }
}

fn pb_failure(f: &Failure) -> pb::Failure {
    pb::Failure {
        kind: pb_failure_kind(f.kind) as i32,
        message: f.message.clone(),
    }
}

fn auth_name(a: Option<AuthProtocol>) -> String {
    match a {
        Some(AuthProtocol::Pap) => "PAP".into(),
        Some(AuthProtocol::Chap) => "CHAP-MD5".into(),
        None => String::new(),
    }
}

/// How a session's end maps onto a link failure (`None` = ended on request).
fn end_to_failure(end: &SessionEnd, carrier_lost: bool) -> Option<Failure> {
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
                DownReason::AuthFailed(_) => FailureKind::AuthFailed,
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
    plan.redial = RedialPolicy {
        attempts: c.redial_attempts.max(1),
        next_number_delay: Duration::from_secs(c.redial_delay_s.min(3)),
        round_delay: Duration::from_secs(c.redial_delay_s),
    };
    // Login script: alternating expect, send (chat(8) style pairs).
    plan.login = c
        .login_script
        .chunks(2)
        .map(|pair| LoginStep {
            expect: pair.first().cloned().unwrap_or_default(),
            send: pair.get(1).cloned().unwrap_or_default(),
            secret: pair
                .first()
                .is_some_and(|e| e.to_ascii_lowercase().contains("assword")),
            timeout: Duration::from_secs(30),
        })
        .collect();
    plan
}

/// PPP client settings of a connection.
pub fn ppp_config(c: &ConnectionConfig) -> PppConfig {
    let mut p = PppConfig::client(&c.username, &c.password);
    p.accept_auth = match c.auth {
        PppAuth::Pap => vec![AuthProtocol::Pap],
        PppAuth::Chap => vec![AuthProtocol::Chap],
        PppAuth::Any => vec![AuthProtocol::Chap, AuthProtocol::Pap],
    };
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
    /// Start one actor per connection. `dataplane`/`netcfg` are `None` when the dataplane
    /// is off (no CAP_NET_ADMIN): links still come up, but carry no LAN traffic.
    pub fn start(
        cfg: &config::Config,
        nat: Nat,
        dataplane: Option<Dataplane>,
        netcfg: Option<NetCfg>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
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
                    })
                    .collect(),
            ),
            nat,
            dataplane,
            netcfg,
            events,
            active: Mutex::new(None),
        });
        let mut links = HashMap::new();
        let mut order = Vec::new();
        for c in &cfg.connections {
            let (tx, rx) = mpsc::channel(32);
            let view = Arc::new(Mutex::new(LinkView {
                state: Some(LinkState::Idle),
                ..LinkView::default()
            }));
            let (progress, _) = broadcast::channel(256);
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
                routes: Vec::new(),
            };
            tokio::spawn(actor.run(rx, shutdown.clone()));
            order.push(c.name.clone());
            links.insert(
                c.name.clone(),
                LinkHandle {
                    cfg: c.clone(),
                    cmd: tx,
                    view,
                    progress,
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

    /// The shared nat engine.
    pub fn nat(&self) -> &Nat {
        &self.shared.nat
    }

    /// The dataplane, if on.
    pub fn dataplane(&self) -> Option<&Dataplane> {
        self.shared.dataplane.as_ref()
    }

    /// Subscribe to dial progress of one connection (subscribe before dialling).
    pub fn progress(&self, name: &str) -> Result<broadcast::Receiver<pb::DialEvent>, LinkError> {
        self.links
            .get(name)
            .map(|l| l.progress.subscribe())
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))
    }

    /// Subscribe to link events of all connections (state changes, samples, progress).
    pub fn events(&self) -> broadcast::Receiver<pb::LinkEvent> {
        self.shared.events.subscribe()
    }

    /// Dial `name` for `who`, or join it if it is up or coming up.
    pub async fn dial(&self, name: &str, who: Who) -> Result<DialOutcome, LinkError> {
        let l = self
            .links
            .get(name)
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))?;
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

    /// Current state of one link.
    pub fn state(&self, name: &str) -> Option<LinkState> {
        self.links.get(name).and_then(|l| lock(&l.view).state)
    }

    /// Status of one link as the API shows it.
    pub fn status(&self, name: &str) -> Result<pb::LinkStatus, LinkError> {
        let l = self
            .links
            .get(name)
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))?;
        Ok(view_status(name, &lock(&l.view)))
    }

    /// Status of every link in config order.
    pub fn statuses(&self) -> Vec<pb::LinkStatus> {
        self.order
            .iter()
            .filter_map(|n| self.status(n).ok())
            .collect()
    }

    /// Transcript and negotiated options of the current/last dial.
    pub fn details(
        &self,
        name: &str,
    ) -> Result<(Vec<pb::TranscriptLine>, Option<pb::PppOptions>), LinkError> {
        let l = self
            .links
            .get(name)
            .ok_or_else(|| LinkError::UnknownConnection(name.into()))?;
        let v = lock(&l.view);
        let opts = v.options.as_ref().map(|o| pb::PppOptions {
            local_mru: u32::from(o.local_mru),
            peer_mru: u32::from(o.peer_mru),
            local_accm: o.rx_accm,
            peer_accm: o.tx_accm,
            local_magic: o.local_magic,
            peer_magic: o.peer_magic,
            pfc: o.tx_pfc || o.rx_pfc,
            acfc: o.tx_acfc || o.rx_acfc,
            auth_protocol: auth_name(o.auth_by_peer),
            fcs32: o.tx_fcs32 || o.rx_fcs32,
            frames_in: v.counters.ppp.frames_in,
            frames_out: v.counters.ppp.frames_out,
            fcs_errors: v.counters.ppp.fcs_errors,
            discarded: v.counters.ppp.discarded,
        });
        Ok((v.transcript.clone(), opts))
    }

    /// Every modem with its state.
    pub fn modems(&self) -> Vec<pb::Modem> {
        lock(&self.shared.modems)
            .iter()
            .map(|m| pb::Modem {
                name: m.cfg.name.clone(),
                device: m.cfg.device.display().to_string(),
                baud: m.cfg.baud,
                state: if m.user.is_some() {
                    pb::ModemState::Busy
                } else if m.absent {
                    pb::ModemState::Absent
                } else if m.last_error.is_some() {
                    pb::ModemState::Error
                } else {
                    pb::ModemState::Idle
                } as i32,
                connection: m.user.clone().unwrap_or_default(),
                last_error: m.last_error.clone().unwrap_or_default(),
                modem_lines: m.modem_lines.unwrap_or(false),
                ..Default::default()
            })
            .collect()
    }
}

fn view_status(name: &str, v: &LinkView) -> pb::LinkStatus {
    let up = v.state == Some(LinkState::Up);
    pb::LinkStatus {
        connection: name.to_string(),
        state: pb_state(v.state.unwrap_or(LinkState::Idle)) as i32,
        modem: v.modem.clone(),
        speed_bps: v.speed,
        local_address: v
            .local
            .filter(|_| up)
            .map(|a| a.to_string())
            .unwrap_or_default(),
        peer_address: v
            .peer
            .filter(|_| up)
            .map(|a| a.to_string())
            .unwrap_or_default(),
        dns: if up {
            v.dns.iter().map(ToString::to_string).collect()
        } else {
            Vec::new()
        },
        connected_since: v.since.filter(|_| up).map(ts),
        bytes_in: v.counters.bytes_in,
        bytes_out: v.counters.bytes_out,
        packets_in: v.counters.packets_in,
        packets_out: v.counters.packets_out,
        holders: v
            .holders
            .iter()
            .map(|h| pb::Holder {
                user: h.user.clone(),
                host: h.host.clone(),
                since: Some(ts(h.since)),
            })
            .collect(),
        last_failure: v.failure.as_ref().map(pb_failure),
        idle_seconds: v.idle_secs,
    }
}

/// One connection's task.
struct Actor {
    name: String,
    cfg: ConnectionConfig,
    shared: Arc<Shared>,
    view: Arc<Mutex<LinkView>>,
    progress: broadcast::Sender<pb::DialEvent>,
    fsm: LinkFsm,
    session: Option<SessionHandle>,
    modem: Option<usize>,
    carrier_lost: bool,
    last: SessionCounters,
    dial_started: SystemTime,
    transcript: Vec<pb::TranscriptLine>,
    routes: Vec<RouteSpec>,
}

async fn next_session_event(s: &mut Option<SessionHandle>) -> Option<SessionEvent> {
    match s {
        Some(h) => h.next_event().await,
        None => std::future::pending().await,
    }
}

impl Actor {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, mut shutdown: watch::Receiver<bool>) {
        let mut sample = tokio::time::interval(SAMPLE);
        sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (ended_tx, mut ended_rx) = mpsc::channel::<Vec<SessionEvent>>(4);
        loop {
            let deadline = self.fsm.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        self.shutdown().await;
                        return;
                    }
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
                        let out = self.fsm.hangup(&who.user, &who.host, force);
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

    fn emit(&self, event: pb::dial_event::Event) {
        let ev = pb::DialEvent {
            at: Some(ts(SystemTime::now())),
            event: Some(event),
        };
        let _ = self.progress.send(ev.clone());
        let _ = self.shared.events.send(pb::LinkEvent {
            at: Some(ts(SystemTime::now())),
            event: Some(pb::link_event::Event::Progress(pb::DialProgress {
                connection: self.name.clone(),
                event: Some(ev),
            })),
        });
    }

    /// A transcript line that also goes to dial watchers as free text.
    fn note(&mut self, kind: &str, text: String) {
        self.record(kind, text.clone());
        self.emit(pb::dial_event::Event::Info(text));
    }

    /// A transcript line only (a structured event tells watchers the same).
    fn record(&mut self, kind: &str, text: String) {
        if self.transcript.len() >= TRANSCRIPT_MAX {
            self.transcript.remove(0);
        }
        self.transcript.push(pb::TranscriptLine {
            at: Some(ts(SystemTime::now())),
            kind: kind.into(),
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
                self.note("error", "carrier lost".into());
            }
            SessionEvent::HangingUp => self.note("info", "hanging up".into()),
            SessionEvent::Ended(end) => {
                let failure = end_to_failure(&end, self.carrier_lost);
                self.finish_session(&end);
                if let Some(f) = &failure {
                    self.note("error", f.message.clone());
                }
                self.fsm.handle_session(now, FsmEvent::Ended(failure));
                // Failed is announced with the state change (see `act`), after the view
                // is refreshed, so a watcher that reads Status next sees it.
                if self.fsm.state() == LinkState::Dialing {
                    // Redial on loss is pending.
                    self.emit(pb::dial_event::Event::Redial(pb::Redial {
                        next_attempt: 1,
                        delay: prost_types::Duration::try_from(Duration::from_secs(
                            self.cfg.redial_delay_s.max(1),
                        ))
                        .ok(),
                    }));
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
                    self.emit(pb::dial_event::Event::ModemInit(pb::ModemInit {
                        modem,
                        device,
                    }));
                }
                self.note("info", format!("init {step}/{count}: {command}"));
            }
            ChatEvent::Dialing {
                number,
                index,
                count,
                attempt,
                attempts,
            } => {
                self.record(
                    "info",
                    format!("dialling {number} (number {index} of {count}, attempt {attempt})"),
                );
                self.emit(pb::dial_event::Event::Dialing(pb::Dialing {
                    number,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    attempt,
                    attempts,
                }));
            }
            ChatEvent::Connected { speed, extras } => {
                let speed = speed.unwrap_or(0);
                self.record(
                    "recv",
                    format!(
                        "CONNECT {speed}{}",
                        extras
                            .as_deref()
                            .map(|e| format!("/{e}"))
                            .unwrap_or_default()
                    ),
                );
                self.fsm.handle_session(now, FsmEvent::Connected { speed });
                self.emit(pb::dial_event::Event::Connected(pb::Connected {
                    speed_bps: speed,
                    extras: extras.unwrap_or_default(),
                }));
            }
            ChatEvent::LoginStep { step, count } => {
                self.note("info", format!("login script step {step}/{count} done"));
            }
            ChatEvent::Redial {
                kind,
                number,
                next_number,
                next_attempt,
                after,
            } => {
                self.record(
                    "info",
                    format!(
                        "{kind} on {number}; next {next_number} in {}s",
                        after.as_secs()
                    ),
                );
                self.emit(pb::dial_event::Event::Redial(pb::Redial {
                    next_attempt,
                    delay: prost_types::Duration::try_from(after).ok(),
                }));
            }
            ChatEvent::Ready => self.note("info", "line handed to PPP".into()),
            ChatEvent::Failed { kind, message } => {
                self.note("error", format!("chat failed ({kind}): {message}"));
            }
        }
    }

    fn on_ppp(&mut self, now: Instant, p: PppEvent) {
        match p {
            PppEvent::LcpUp { peer_mru, auth } => {
                self.record(
                    "info",
                    format!("LCP up (peer MRU {peer_mru}, auth {})", auth_name(auth)),
                );
                self.fsm.handle_session(now, FsmEvent::LcpUp);
                self.emit(pb::dial_event::Event::LcpUp(pb::LcpUp {
                    peer_mru: u32::from(peer_mru),
                    auth_protocol: auth_name(auth),
                }));
            }
            PppEvent::AuthOk { protocol, .. } => {
                let name = auth_name(protocol);
                let shown = if name.is_empty() {
                    "none".to_string()
                } else {
                    name
                };
                self.record("info", format!("authentication ok ({shown})"));
                self.fsm.handle_session(now, FsmEvent::AuthOk);
                self.emit(pb::dial_event::Event::AuthOk(pb::AuthOk {
                    protocol: shown,
                }));
            }
            PppEvent::AuthFailed { message } => {
                self.note("error", format!("authentication failed: {message}"));
            }
            PppEvent::IpcpUp { local, peer, dns } => {
                self.record(
                    "info",
                    format!("IPCP up: local {local}, peer {peer}, dns {dns:?}"),
                );
                self.emit(pb::dial_event::Event::IpcpUp(pb::IpcpUp {
                    local_address: local.to_string(),
                    peer_address: peer.to_string(),
                    dns: dns.iter().map(ToString::to_string).collect(),
                }));
                self.fsm
                    .handle_session(now, FsmEvent::IpcpUp { local, peer, dns });
            }
            PppEvent::Down { reason } => self.note("info", format!("PPP down: {reason}")),
            PppEvent::Ipv4(_) => {}
        }
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

    /// Pick a free modem allowed for this connection and start a session on it.
    fn start_session(&mut self) -> Result<(), Failure> {
        let mut tried = Vec::new();
        loop {
            let pick = {
                let mut modems = lock(&self.shared.modems);
                let i = modems.iter().position(|m| {
                    m.user.is_none()
                        && (self.cfg.modems.is_empty() || self.cfg.modems.contains(&m.cfg.name))
                        && !tried.contains(&m.cfg.name)
                });
                if let Some(i) = i {
                    modems[i].user = Some(self.name.clone());
                }
                i.map(|i| (i, modems[i].cfg.clone()))
            };
            let Some((i, m)) = pick else {
                let busy = tried.is_empty();
                return Err(Failure {
                    kind: FailureKind::NoModem,
                    message: if busy {
                        "every modem allowed for this connection is busy".into()
                    } else {
                        format!("no usable modem (tried {})", tried.join(", "))
                    },
                });
            };
            match spawn_session(
                modem_settings(&m),
                chat_config(&m, &self.cfg),
                ppp_config(&self.cfg),
            ) {
                Ok(h) => {
                    let mut modems = lock(&self.shared.modems);
                    if let Some(slot) = modems.get_mut(i) {
                        slot.absent = false;
                        slot.last_error = None;
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
                    self.note("error", format!("modem {}: {e}", m.name));
                    let mut modems = lock(&self.shared.modems);
                    if let Some(slot) = modems.get_mut(i) {
                        slot.user = None;
                        slot.absent = true;
                        slot.last_error = Some(e.to_string());
                    }
                    tried.push(m.name.clone());
                }
            }
        }
    }

    async fn act(&mut self, ended_tx: &mpsc::Sender<Vec<SessionEvent>>) {
        while let Some(a) = self.fsm.poll_action() {
            match a {
                LinkAction::StartSession => {
                    if let Err(f) = self.start_session() {
                        self.note("error", f.message.clone());
                        self.fsm
                            .handle_session(Instant::now(), FsmEvent::Ended(Some(f.clone())));
                    }
                }
                LinkAction::StopSession => match self.session.take() {
                    Some(h) => {
                        let tx = ended_tx.clone();
                        tokio::spawn(async move {
                            let rest = h.hangup(HANGUP_LIMIT).await;
                            let _ = tx.send(rest).await;
                        });
                    }
                    None => {
                        // Nothing running (e.g. waiting to redial): settle now.
                        self.fsm
                            .handle_session(Instant::now(), FsmEvent::Ended(None));
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
                    let _ = self.shared.events.send(pb::LinkEvent {
                        at: Some(ts(SystemTime::now())),
                        event: Some(pb::link_event::Event::State(status.clone())),
                    });
                    if s == LinkState::Up {
                        self.emit(pb::dial_event::Event::Up(pb::LinkUp { link: Some(status) }));
                    } else if s == LinkState::Failed {
                        if let Some(f) = self.fsm.last_failure().cloned() {
                            self.emit(pb::dial_event::Event::Failed(pb_failure(&f)));
                        }
                    }
                }
                LinkAction::HoldersReleased(h) => {
                    tracing::info!(connection = %self.name, holders = h.len(), "holders released");
                }
            }
        }
    }

    async fn link_up(&mut self, local: Ipv4Addr, peer: Ipv4Addr) {
        let (rekeyed, dropped) = self.shared.nat.lock().set_masq_address(Some(local));
        tracing::info!(connection = %self.name, %local, %peer, rekeyed, dropped, "link up: masquerading as {local}");
        *lock(&self.shared.active) = Some(self.name.clone());
        if let Some(nc) = self.shared.netcfg.clone() {
            if let Err(e) = nc.link_up(local, peer).await {
                tracing::warn!(error = %e, "configuring {}", nc.dev);
                self.note("error", format!("interface: {e}"));
            }
            self.routes.clear();
            for r in &self.cfg.routes.clone() {
                let spec = if r.prefix_len() == 0 {
                    RouteSpec::Default
                } else {
                    match r {
                        ipnet::IpNet::V4(n) => RouteSpec::Net(*n),
                        ipnet::IpNet::V6(_) => continue,
                    }
                };
                if spec == RouteSpec::Default
                    && !self.cfg.replace_default_route
                    && nc.other_default_route_exists().await.unwrap_or(true)
                {
                    self.note(
                        "info",
                        "a default route exists already; not replacing it (set replace_default_route = true to do so)".into(),
                    );
                    continue;
                }
                match nc.add_route(spec).await {
                    Ok(()) => self.routes.push(spec),
                    Err(e) => self.note("error", format!("route {spec}: {e}")),
                }
            }
        }
        if let (Some(dp), Some(s)) = (&self.shared.dataplane, self.session.as_mut()) {
            let sender = s.packet_sender();
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(LINK_QUEUE);
            // Bridge the dataplane's queue to the session's (sync) sender.
            tokio::spawn(async move {
                while let Some(p) = rx.recv().await {
                    if let Err(crate::modem::session::SendPacketError::Closed) = sender.try_send(p)
                    {
                        break;
                    }
                }
            });
            let (_dummy_tx, dummy_rx) = mpsc::channel(1);
            let inbound = std::mem::replace(&mut s.inbound, dummy_rx);
            dp.attach(LinkPort { tx, rx: inbound }).await;
        }
    }

    async fn link_down(&mut self) {
        let mine = lock(&self.shared.active).as_deref() == Some(self.name.as_str());
        if !mine {
            return;
        }
        *lock(&self.shared.active) = None;
        if let Some(dp) = &self.shared.dataplane {
            dp.detach().await;
        }
        if let Some(nc) = self.shared.netcfg.clone() {
            for r in std::mem::take(&mut self.routes) {
                if let Err(e) = nc.del_route(r).await {
                    tracing::warn!(error = %e, "removing route {r}");
                }
            }
            if let Err(e) = nc.link_down().await {
                tracing::warn!(error = %e, "taking {} down", nc.dev);
            }
        }
        tracing::info!(connection = %self.name, "link down");
    }

    fn sample(&mut self) {
        let Some(s) = &self.session else { return };
        let c = s.counters();
        let moved = c.packets_in != self.last.packets_in || c.packets_out != self.last.packets_out;
        if moved {
            self.fsm.traffic(Instant::now());
        }
        if self.fsm.state() == LinkState::Up {
            let _ = self.shared.events.send(pb::LinkEvent {
                at: Some(ts(SystemTime::now())),
                event: Some(pb::link_event::Event::Sample(pb::TrafficSample {
                    connection: self.name.clone(),
                    bytes_in: c.bytes_in.saturating_sub(self.last.bytes_in),
                    bytes_out: c.bytes_out.saturating_sub(self.last.bytes_out),
                    packets_in: c.packets_in.saturating_sub(self.last.packets_in),
                    packets_out: c.packets_out.saturating_sub(self.last.packets_out),
                    period_ms: u32::try_from(SAMPLE.as_millis()).unwrap_or(1000),
                })),
            });
        }
        self.last = c;
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
        }
        v.holders = self.fsm.holders().to_vec();
        v.failure = self.fsm.last_failure().cloned();
        v.idle_secs = self
            .fsm
            .idle_for(now)
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
            .unwrap_or(0);
        let mut t = self.transcript.clone();
        if let Some(s) = &self.session {
            for line in s.transcript() {
                t.push(pb::TranscriptLine {
                    at: Some(ts(self.dial_started + line.at)),
                    kind: match line.kind {
                        TranscriptKind::Send => "send",
                        TranscriptKind::Recv => "recv",
                        TranscriptKind::Info => "info",
                        TranscriptKind::Error => "error",
                    }
                    .into(),
                    text: line.text,
                });
            }
            t.sort_by_key(|l| l.at.map(|a| (a.seconds, a.nanos)));
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
        if self.fsm.state() == LinkState::Up {
            self.link_down().await;
        }
        if let Some(h) = self.session.take() {
            let _ = h.hangup(HANGUP_LIMIT).await;
        }
    }
}
