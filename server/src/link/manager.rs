//! The link manager: one actor task per configured connection drives its [`LinkFsm`] with
//! modem sessions (chat then PPP) and announces "up: address A, session S" / "down" to
//! the data plane ([`Uplink`]). This file is the handle ([`LinkManager`]: dial, hang up,
//! status, the views and the domain events ([`super::events`]) the rpc layer reads);
//! beside it `actor` (the per-connection task), `slots` (the modem table: pick, absent,
//! re-probe, cell poller), `settings` (config → driver settings) and `transcript`. It must
//! not parse or carry packets, configure interfaces (the data plane), touch the serial
//! port itself (modem) or know protobuf (rpc).

mod actor;
mod settings;
mod slots;
mod transcript;

use actor::Actor;
use settings::policy;
pub use settings::{chat_config, modem_settings, ppp_config};
use slots::{cell_poller, mark_absent, ModemSlot};

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::events::{
    DialEvent, LinkEvent, LinkStatus, ModemState, ModemView, PppDetails, TranscriptEntry,
};
use super::fsm::{DialOutcome, Failure, HangupOutcome, Holder, LinkFsm, LinkState};
use crate::config::{self, ConnectionConfig};
use crate::dataplane::uplink::Uplink;
use crate::modem::session::{hangup_bound as session_hangup_bound, SessionCounters, REPORT_SLACK};
use crate::modem::{self};
use crate::shutdown::Shutdown;
use masqdial_ppp::NegotiatedOptions;

/// How often a dial that waits for its connection's hang-up looks again.
const HANGUP_POLL: Duration = Duration::from_millis(50);

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
                transcript: Vec::new(),
                activity_last: None,
                tasks: shutdown.clone(),
                budget,
                up_at: None,
                up_for: None,
                stopped_counters: None,
                dials: 0,
                transcript_dirty: false,
                published_holders: Vec::new(),
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
