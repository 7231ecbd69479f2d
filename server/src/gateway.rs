//! The gateway: the real [`Backend`] behind the Dialer, Modems and Nat rpcs. It joins the
//! link manager, nat-core (rules, masquerade table, views) and the state directory
//! (rules and timeouts persisted atomically, restored at start). Owns translation between
//! those and protobuf; authorization was already done by `rpc`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use masqdial_proto::v1 as pb;
use nat_core::chains::{self, ChainError, Firewall, ListOptions};
use nat_core::masq::{ChangeFeed, EntrySnapshot, MasqChange, MasqConfig, PortRange};
use nat_core::views::MasqListOptions;
use nat_core::{Engine, EngineConfig};
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::config::Config;
use crate::link::manager::{LinkError, LinkManager, Who};
use crate::link::{DialOutcome, HangupOutcome, LinkState};
use crate::rpc::{ApiError, Backend, Caller, DialStream, LinkEventStream, MasqEventStream};

/// File names in the state directory.
const RULES_FILE: &str = "rules.ipchains";
const TIMEOUTS_FILE: &str = "timeouts";
/// Masquerade entries per snapshot batch.
const BATCH: usize = 1000;
/// Largest table whose re-armed timers are re-sent to watchers each second.
const REFRESH_MAX: usize = 50_000;
/// How often the masquerade change feed is drained.
const MASQ_PERIOD: Duration = Duration::from_millis(250);

/// Errors building the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configured or saved ruleset did not load.
    #[error("ruleset {path}: {message}")]
    Ruleset {
        /// File.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The saved timeouts file is unreadable.
    #[error("{path}: {message}")]
    State {
        /// File.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// Build nat-core's configuration from `[nat]`.
pub fn engine_config(cfg: &Config) -> EngineConfig {
    let n = &cfg.nat;
    let mut masq = match n.rfc_profile {
        crate::config::RfcProfile::Rfc => MasqConfig::rfc(),
        crate::config::RfcProfile::Linux22 => MasqConfig::linux22(),
    };
    let range = PortRange {
        lo: n.port_low,
        hi: n.port_high,
    };
    masq.ports = [range; 3];
    let mut ec = EngineConfig {
        masq,
        ..EngineConfig::default()
    };
    if let Some(l) = &n.lan_interface {
        ec.lan_iface = l.clone();
    }
    ec
}

fn state_path(cfg: &Config, file: &str) -> PathBuf {
    cfg.server.state_dir.join(file)
}

/// Write `text` to `path` atomically (temporary file in the same directory, fsync, rename).
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The nat engine with the configured ruleset, then the saved rules and timeouts from the
/// state directory (saved state wins: it is what the admin last set).
pub fn build_engine(cfg: &Config) -> Result<Engine, GatewayError> {
    let mut engine = Engine::new(engine_config(cfg));
    engine.set_timeouts(
        cfg.nat.tcp_timeout,
        cfg.nat.tcpfin_timeout,
        cfg.nat.udp_timeout,
    );
    let saved = state_path(cfg, RULES_FILE);
    let source = if saved.exists() {
        Some(saved)
    } else {
        cfg.nat.ruleset.clone()
    };
    if let Some(path) = source {
        let text = std::fs::read_to_string(&path).map_err(|e| GatewayError::Ruleset {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let fw = Firewall::from_saved(&text).map_err(|e| GatewayError::Ruleset {
            path: path.clone(),
            message: e.to_string(),
        })?;
        engine.set_firewall(fw);
    }
    let tpath = state_path(cfg, TIMEOUTS_FILE);
    if tpath.exists() {
        let text = std::fs::read_to_string(&tpath).map_err(|e| GatewayError::State {
            path: tpath.clone(),
            message: e.to_string(),
        })?;
        let v: Vec<u32> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| GatewayError::State {
                path: tpath.clone(),
                message: format!("expected three numbers (tcp tcpfin udp): {e}"),
            })?;
        if let [tcp, fin, udp] = v[..] {
            engine.set_timeouts(tcp, fin, udp);
        } else {
            return Err(GatewayError::State {
                path: tpath,
                message: "expected three numbers (tcp tcpfin udp)".into(),
            });
        }
    }
    Ok(engine)
}

/// The real backend.
#[derive(Clone)]
pub struct Gateway {
    cfg: Arc<Config>,
    links: LinkManager,
    masq_feed: broadcast::Sender<Arc<pb::MasqDelta>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

fn link_err(e: LinkError) -> ApiError {
    match e {
        LinkError::UnknownConnection(_) => ApiError::NotFound(e.to_string()),
        LinkError::Busy(_) => ApiError::Unavailable(e.to_string()),
        LinkError::NotHolder(_) | LinkError::NotActive(_) => {
            ApiError::FailedPrecondition(e.to_string())
        }
        LinkError::Gone(_) => ApiError::Unavailable(e.to_string()),
    }
}

fn chain_err(e: ChainError) -> ApiError {
    match e {
        ChainError::NoChain | ChainError::NoTarget => ApiError::NotFound(e.to_string()),
        ChainError::ChainExists => ApiError::AlreadyExists(e.to_string()),
        ChainError::ChainNotEmpty | ChainError::ChainBusy => {
            ApiError::FailedPrecondition(e.to_string())
        }
        _ => ApiError::InvalidArgument(e.to_string()),
    }
}

fn proto_of(p: u8) -> pb::Protocol {
    match p {
        6 => pb::Protocol::Tcp,
        17 => pb::Protocol::Udp,
        1 => pb::Protocol::Icmp,
        _ => pb::Protocol::Unspecified,
    }
}

fn entry(e: &EntrySnapshot) -> pb::MasqEntry {
    pb::MasqEntry {
        id: e.id.0,
        protocol: proto_of(e.proto) as i32,
        lan_address: e.lan.0.to_string(),
        lan_port: u32::from(e.lan.1),
        masq_address: e.masq.0.to_string(),
        masq_port: u32::from(e.masq.1),
        remote_address: e.remote.0.to_string(),
        remote_port: u32::from(e.remote.1),
        expire_centis: e.expire_cs,
        state: e.state.name().to_string(),
        init_seq: e.out_seq.init_seq,
        delta: e.out_seq.delta,
        prev_delta: e.out_seq.previous_delta,
        helper: e.helper.unwrap_or_default().to_string(),
        no_remote_port: e.no_remote_port,
        controls: u32::from(e.n_control),
        packets: e.packets,
        bytes: e.bytes,
        ..Default::default()
    }
}

fn free_ports(engine: &Engine) -> pb::FreePortsResponse {
    let f = engine.free_ports();
    let (lo, hi) = engine
        .config()
        .masq
        .ports
        .first()
        .map(|r| (r.lo, r.hi))
        .unwrap_or((0, 0));
    pb::FreePortsResponse {
        tcp: f.tcp.0,
        udp: f.udp.0,
        icmp: f.icmp.0,
        tcp_total: f.tcp.1,
        udp_total: f.udp.1,
        icmp_total: f.icmp.1,
        port_low: u32::from(lo),
        port_high: u32::from(hi),
    }
}

fn chains_of(fw: &Firewall, chain: Option<&str>) -> Result<Vec<pb::Chain>, ApiError> {
    let snaps = fw.snapshot(chain).map_err(chain_err)?;
    Ok(snaps
        .into_iter()
        .map(|c| pb::Chain {
            name: c.name,
            policy: c.policy,
            builtin: c.builtin,
            references: c.references,
            policy_packets: c.policy_packets,
            policy_bytes: c.policy_bytes,
            rules: c
                .rules
                .into_iter()
                .map(|r| pb::Rule {
                    number: r.number,
                    spec: r.spec,
                    target: r.target,
                    protocol: r.protocol,
                    source: r.source,
                    destination: r.destination,
                    source_ports: r.source_ports,
                    destination_ports: r.destination_ports,
                    interface: r.interface,
                    options: r.options,
                    redirect_port: r.redirect_port,
                    packets: r.packets,
                    bytes: r.bytes,
                    log: r.log,
                    tos_and: r.tos_and,
                    tos_xor: r.tos_xor,
                    mark: r.mark,
                })
                .collect(),
        })
        .collect())
}

fn opt_name(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn parse_spec(spec: &str) -> Result<Vec<chains::Rule>, ApiError> {
    chains::syntax::parse_rule(spec)
        .map(|r| r.expand())
        .map_err(|e| ApiError::InvalidArgument(e.to_string()))
}

impl Gateway {
    /// A gateway over a running link manager; starts the masquerade change feed.
    pub fn new(cfg: Arc<Config>, links: LinkManager, shutdown: watch::Receiver<bool>) -> Self {
        let (masq_feed, _) = broadcast::channel(256);
        let g = Self {
            cfg,
            links,
            masq_feed,
        };
        tokio::spawn(g.clone().masq_feed_task(shutdown));
        g
    }

    /// The link manager.
    pub fn links(&self) -> &LinkManager {
        &self.links
    }

    fn persist_rules(&self) -> Result<(), ApiError> {
        let text = self.links.nat().lock().firewall().save();
        write_atomic(&state_path(&self.cfg, RULES_FILE), &text)
            .map_err(|e| ApiError::Internal(format!("saving rules to the state directory: {e}")))
    }

    fn persist_timeouts(&self, t: &pb::Timeouts) -> Result<(), ApiError> {
        write_atomic(
            &state_path(&self.cfg, TIMEOUTS_FILE),
            &format!("{} {} {}\n", t.tcp, t.tcpfin, t.udp),
        )
        .map_err(|e| ApiError::Internal(format!("saving timeouts to the state directory: {e}")))
    }

    /// Apply a rule change under the engine lock, then persist; answers the changed chain.
    fn change(
        &self,
        chain: &str,
        f: impl FnOnce(&mut Firewall) -> Result<(), ChainError>,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        let chains = {
            let nat = self.links.nat();
            let mut engine = nat.lock();
            f(engine.firewall_mut()).map_err(chain_err)?;
            chains_of(
                engine.firewall(),
                opt_name(chain).filter(|c| engine.firewall().has_chain(c)),
            )?
        };
        self.persist_rules()?;
        Ok(pb::RuleChangeResponse { chains })
    }

    fn timeouts(&self) -> pb::Timeouts {
        let t = self.links.nat().lock().timeouts();
        let secs = |d: nat_core::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        pb::Timeouts {
            tcp: secs(t.tcp[nat_core::masq::tcp::State::Established as usize]),
            tcpfin: secs(t.tcp[nat_core::masq::tcp::State::FinWait as usize]),
            udp: secs(t.udp),
            icmp: secs(t.icmp),
        }
    }

    fn connection_pb(&self, caller: &Caller, name: &str) -> Result<pb::Connection, ApiError> {
        let c = self.links.connection(name).map_err(link_err)?;
        let state = self.links.state(name).unwrap_or(LinkState::Idle);
        Ok(pb::Connection {
            name: c.name.clone(),
            description: c.description.clone(),
            numbers: c.numbers.clone(),
            modems: c.modems.clone(),
            allowed: caller.may_use(name),
            state: self
                .links
                .status(name)
                .map(|s| s.state)
                .unwrap_or(pb::LinkState::Idle as i32),
        })
        .map(|mut conn| {
            if state == LinkState::Idle {
                conn.state = pb::LinkState::Idle as i32;
            }
            conn
        })
    }

    /// Drain nat-core's change feed and broadcast deltas; a resync diffs against the ids
    /// last announced so watchers never keep stale entries. nat-core does not report a
    /// timer re-armed by traffic as a change (clients count down themselves), so once a
    /// second the deadlines are compared and entries whose timer moved are re-sent — for
    /// tables up to [`REFRESH_MAX`] entries (above that, only real changes are streamed).
    async fn masq_feed_task(self, mut shutdown: watch::Receiver<bool>) {
        // id -> deadline (nat-core ms) last announced.
        let mut known: HashMap<u64, u64> = HashMap::new();
        let mut tick = tokio::time::interval(MASQ_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = shutdown.changed() => if *shutdown.borrow() { return },
                _ = tick.tick() => {}
            }
            ticks += 1;
            let refresh = ticks.is_multiple_of(4);
            let delta = {
                let nat = self.links.nat();
                let now = nat.now();
                let now_ms = now.as_millis();
                let deadline = |e: &EntrySnapshot| now_ms + e.expire_cs * 10;
                let mut engine = nat.lock();
                let mut upserted = Vec::new();
                let mut removed = Vec::new();
                match engine.drain_changes() {
                    ChangeFeed::Changes(ch) => {
                        for c in ch {
                            match c {
                                MasqChange::Added(id) | MasqChange::Updated(id) => {
                                    if let Some(e) = engine.masq_entry(now, id) {
                                        known.insert(id.0, deadline(&e));
                                        upserted.push(entry(&e));
                                    }
                                }
                                MasqChange::Removed(id) => {
                                    if known.remove(&id.0).is_some() {
                                        removed.push(id.0);
                                    }
                                }
                            }
                        }
                    }
                    ChangeFeed::Resync => {
                        let snap = engine.masq_snapshot(now);
                        let live: HashMap<u64, u64> =
                            snap.iter().map(|e| (e.id.0, deadline(e))).collect();
                        removed = known
                            .keys()
                            .filter(|k| !live.contains_key(k))
                            .copied()
                            .collect();
                        upserted = snap.iter().map(entry).collect();
                        known = live;
                    }
                }
                // Upserts of entries removed later in the same batch are dropped.
                upserted.retain(|e| known.contains_key(&e.id));
                if refresh && engine.masq().len() <= REFRESH_MAX {
                    for e in engine.masq_snapshot(now) {
                        let d = deadline(&e);
                        if let Some(old) = known.get_mut(&e.id.0) {
                            if old.abs_diff(d) > 1000 && !upserted.iter().any(|u| u.id == e.id.0) {
                                *old = d;
                                upserted.push(entry(&e));
                            }
                        }
                    }
                }
                if upserted.is_empty() && removed.is_empty() {
                    continue;
                }
                pb::MasqDelta {
                    upserted,
                    removed,
                    free: Some(free_ports(&engine)),
                }
            };
            let _ = self.masq_feed.send(Arc::new(delta));
        }
    }
}

fn who(caller: &Caller) -> Who {
    Who {
        user: caller.user.clone(),
        host: caller.peer.ip().to_string(),
    }
}

#[tonic::async_trait]
impl Backend for Gateway {
    async fn list_connections(
        &self,
        caller: &Caller,
        _req: pb::ListConnectionsRequest,
    ) -> Result<pb::ListConnectionsResponse, ApiError> {
        let connections = self
            .links
            .names()
            .iter()
            .map(|n| self.connection_pb(caller, n))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListConnectionsResponse { connections })
    }

    async fn get_connection(
        &self,
        caller: &Caller,
        req: pb::GetConnectionRequest,
    ) -> Result<pb::ConnectionInfo, ApiError> {
        let c = self.links.connection(&req.name).map_err(link_err)?.clone();
        let (transcript, ppp) = self.links.details(&req.name).map_err(link_err)?;
        let admin = caller.role == crate::config::Role::Admin;
        Ok(pb::ConnectionInfo {
            connection: Some(self.connection_pb(caller, &req.name)?),
            link: self.links.status(&req.name).ok(),
            dial_prefix: c.dial_prefix.clone(),
            redial_attempts: c.redial_attempts,
            redial_delay: prost_types::Duration::try_from(Duration::from_secs(c.redial_delay_s))
                .ok(),
            idle_timeout: prost_types::Duration::try_from(Duration::from_secs(c.idle_timeout_s))
                .ok(),
            max_connect_time: prost_types::Duration::try_from(Duration::from_secs(c.max_connect_s))
                .ok(),
            redial_on_loss: c.redial_on_loss,
            ppp,
            transcript,
            allowed_users: if admin {
                self.cfg
                    .users
                    .iter()
                    .filter(|u| {
                        u.role == crate::config::Role::Admin || u.connections.contains(&c.name)
                    })
                    .map(|u| u.name.clone())
                    .collect()
            } else {
                Vec::new()
            },
            auth: format!("{:?}", c.auth).to_ascii_lowercase(),
            apn: c.apn.clone().unwrap_or_default(),
            ppp_username: c.username.clone(),
            routes: c.routes.iter().map(ToString::to_string).collect(),
            has_login_script: !c.login_script.is_empty(),
        })
    }

    async fn dial(&self, caller: &Caller, req: pb::DialRequest) -> Result<DialStream, ApiError> {
        let name = req.name.clone();
        let mut progress = self.links.progress(&name).map_err(link_err)?;
        let outcome = self
            .links
            .dial(&name, who(caller))
            .await
            .map_err(link_err)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::DialEvent, Status>>(64);
        let now = || Some(prost_types::Timestamp::from(std::time::SystemTime::now()));
        match outcome {
            DialOutcome::Started => {}
            DialOutcome::Joined(state) | DialOutcome::AlreadyHolding(state) => {
                let status = self.links.status(&name).ok();
                let _ = tx
                    .send(Ok(pb::DialEvent {
                        at: now(),
                        event: Some(pb::dial_event::Event::Joined(pb::Joined {
                            state: crate::link::manager::pb_state_of(state) as i32,
                            holders: status
                                .as_ref()
                                .map(|s| s.holders.iter().map(|h| h.user.clone()).collect())
                                .unwrap_or_default(),
                        })),
                    }))
                    .await;
                if state == LinkState::Up {
                    let _ = tx
                        .send(Ok(pb::DialEvent {
                            at: now(),
                            event: Some(pb::dial_event::Event::Up(pb::LinkUp { link: status })),
                        }))
                        .await;
                    return Ok(ReceiverStream::new(rx).boxed());
                }
            }
            DialOutcome::Busy => {
                return Err(ApiError::Unavailable(format!("{name} is hanging up")))
            }
        }
        tokio::spawn(async move {
            loop {
                // End as soon as the client goes away, not at the next event.
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    r = progress.recv() => r,
                };
                match next {
                    Ok(ev) => {
                        let last = matches!(
                            ev.event,
                            Some(pb::dial_event::Event::Up(_))
                                | Some(pb::dial_event::Event::Failed(_))
                        );
                        if tx.send(Ok(ev)).await.is_err() || last {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(ReceiverStream::new(rx).boxed())
    }

    async fn hangup(
        &self,
        caller: &Caller,
        req: pb::HangupRequest,
    ) -> Result<pb::HangupResponse, ApiError> {
        match self
            .links
            .hangup(&req.name, who(caller), req.force)
            .await
            .map_err(link_err)?
        {
            HangupOutcome::Dropping => Ok(pb::HangupResponse {
                dropped: true,
                remaining_holders: Vec::new(),
            }),
            HangupOutcome::Released { remaining } => Ok(pb::HangupResponse {
                dropped: false,
                remaining_holders: remaining,
            }),
            HangupOutcome::NotHolder | HangupOutcome::NotActive => Err(
                ApiError::FailedPrecondition(format!("{} is not held by you", req.name)),
            ),
        }
    }

    async fn status(
        &self,
        _caller: &Caller,
        req: pb::StatusRequest,
    ) -> Result<pb::StatusResponse, ApiError> {
        let links = if req.name.is_empty() {
            self.links.statuses()
        } else {
            vec![self.links.status(&req.name).map_err(link_err)?]
        };
        Ok(pb::StatusResponse { links })
    }

    async fn who(
        &self,
        _caller: &Caller,
        _req: pb::WhoRequest,
    ) -> Result<pb::WhoResponse, ApiError> {
        let entries = self
            .links
            .statuses()
            .into_iter()
            .flat_map(|s| {
                let conn = s.connection.clone();
                s.holders.into_iter().map(move |h| pb::WhoEntry {
                    connection: conn.clone(),
                    holder: Some(h),
                })
            })
            .collect();
        Ok(pb::WhoResponse { entries })
    }

    async fn watch_links(
        &self,
        _caller: &Caller,
        _req: pb::WatchLinksRequest,
    ) -> Result<LinkEventStream, ApiError> {
        let mut events = self.links.events();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::LinkEvent, Status>>(256);
        let initial: Vec<_> = self.links.statuses();
        tokio::spawn(async move {
            for s in initial {
                let ev = pb::LinkEvent {
                    at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
                    event: Some(pb::link_event::Event::State(s)),
                };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            loop {
                // End as soon as the client goes away, not at the next event.
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    r = events.recv() => r,
                };
                match next {
                    Ok(ev) => {
                        if tx.send(Ok(ev)).await.is_err() {
                            return; // client went away
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(ReceiverStream::new(rx).boxed())
    }

    async fn list_modems(
        &self,
        _caller: &Caller,
        _req: pb::ListModemsRequest,
    ) -> Result<pb::ListModemsResponse, ApiError> {
        let mut modems = self.links.modems();
        for m in &mut modems {
            if let Some(mc) = self.cfg.modems.iter().find(|c| c.name == m.name) {
                m.init = mc.init.clone();
                m.usable_by = self
                    .cfg
                    .connections
                    .iter()
                    .filter(|c| c.modems.is_empty() || c.modems.contains(&m.name))
                    .map(|c| c.name.clone())
                    .collect();
            }
        }
        Ok(pb::ListModemsResponse { modems })
    }

    async fn list_masq(
        &self,
        _caller: &Caller,
        req: pb::ListMasqRequest,
    ) -> Result<pb::ListMasqResponse, ApiError> {
        let size = match req.page_size {
            0 => 1000,
            n => n.min(10_000),
        } as usize;
        let start: u64 = if req.page_token.is_empty() {
            0
        } else {
            req.page_token
                .parse()
                .map_err(|_| ApiError::InvalidArgument("bad page_token".into()))?
        };
        let nat = self.links.nat();
        let now = nat.now();
        let mut snap = nat.lock().masq_snapshot(now);
        let total = snap.len() as u64;
        snap.sort_by_key(|e| e.id.0);
        let want = pb::Protocol::try_from(req.protocol).unwrap_or(pb::Protocol::Unspecified);
        let mut entries: Vec<pb::MasqEntry> = snap
            .iter()
            .filter(|e| e.id.0 >= start)
            .filter(|e| want == pb::Protocol::Unspecified || proto_of(e.proto) == want)
            .take(size + 1)
            .map(entry)
            .collect();
        let next_page_token = if entries.len() > size {
            entries.pop().map(|e| e.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListMasqResponse {
            entries,
            next_page_token,
            total,
        })
    }

    async fn watch_masq(
        &self,
        _caller: &Caller,
        _req: pb::WatchMasqRequest,
    ) -> Result<MasqEventStream, ApiError> {
        // Subscribe first, then snapshot: a delta that overlaps the snapshot is harmless
        // (upserts replace by id, removals of unknown ids are ignored by clients).
        let mut feed = self.masq_feed.subscribe();
        let (snap, free) = {
            let nat = self.links.nat();
            let now = nat.now();
            let e = nat.lock();
            (e.masq_snapshot(now), free_ports(&e))
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::MasqEvent, Status>>(64);
        tokio::spawn(async move {
            let total = snap.len() as u64;
            for chunk in snap.chunks(BATCH) {
                let ev = pb::MasqEvent {
                    event: Some(pb::masq_event::Event::Snapshot(pb::MasqBatch {
                        entries: chunk.iter().map(entry).collect(),
                    })),
                };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            let done = pb::MasqEvent {
                event: Some(pb::masq_event::Event::SnapshotDone(pb::SnapshotDone {
                    total,
                    free: Some(free),
                })),
            };
            if tx.send(Ok(done)).await.is_err() {
                return;
            }
            loop {
                // End as soon as the client goes away, not at the next event.
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    r = feed.recv() => r,
                };
                match next {
                    Ok(d) => {
                        let ev = pb::MasqEvent {
                            event: Some(pb::masq_event::Event::Delta((*d).clone())),
                        };
                        if tx.send(Ok(ev)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(ReceiverStream::new(rx).boxed())
    }

    async fn free_ports(
        &self,
        _caller: &Caller,
        _req: pb::FreePortsRequest,
    ) -> Result<pb::FreePortsResponse, ApiError> {
        Ok(free_ports(&self.links.nat().lock()))
    }

    async fn get_timeouts(
        &self,
        _caller: &Caller,
        _req: pb::GetTimeoutsRequest,
    ) -> Result<pb::Timeouts, ApiError> {
        Ok(self.timeouts())
    }

    async fn set_timeouts(
        &self,
        _caller: &Caller,
        req: pb::Timeouts,
    ) -> Result<pb::Timeouts, ApiError> {
        self.links
            .nat()
            .lock()
            .set_timeouts(req.tcp, req.tcpfin, req.udp);
        let t = self.timeouts();
        self.persist_timeouts(&t)?;
        Ok(t)
    }

    async fn list_chains(
        &self,
        _caller: &Caller,
        req: pb::ListChainsRequest,
    ) -> Result<pb::ListChainsResponse, ApiError> {
        let nat = self.links.nat();
        let e = nat.lock();
        Ok(pb::ListChainsResponse {
            chains: chains_of(e.firewall(), opt_name(&req.chain))?,
        })
    }

    async fn append_rule(
        &self,
        _caller: &Caller,
        req: pb::AppendRuleRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        let rules = parse_spec(&req.spec)?;
        self.change(&req.chain, |fw| {
            for r in &rules {
                fw.append(&req.chain, r)?;
            }
            Ok(())
        })
    }

    async fn insert_rule(
        &self,
        _caller: &Caller,
        req: pb::InsertRuleRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        let rules = parse_spec(&req.spec)?;
        let num = req.number.max(1) as usize;
        self.change(&req.chain, |fw| {
            for (i, r) in rules.iter().enumerate() {
                fw.insert(&req.chain, num + i, r)?;
            }
            Ok(())
        })
    }

    async fn replace_rule(
        &self,
        _caller: &Caller,
        req: pb::ReplaceRuleRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        let rules = parse_spec(&req.spec)?;
        let [rule] = &rules[..] else {
            return Err(ApiError::InvalidArgument(
                "-R takes a single rule (no -b)".into(),
            ));
        };
        self.change(&req.chain, |fw| {
            fw.replace(&req.chain, req.number as usize, rule)
        })
    }

    async fn delete_rule(
        &self,
        _caller: &Caller,
        req: pb::DeleteRuleRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        match req.which {
            Some(pb::delete_rule_request::Which::Number(n)) => {
                self.change(&req.chain, |fw| fw.delete_num(&req.chain, n as usize))
            }
            Some(pb::delete_rule_request::Which::Spec(spec)) => {
                let rules = parse_spec(&spec)?;
                self.change(&req.chain, |fw| {
                    for r in &rules {
                        fw.delete_rule(&req.chain, r)?;
                    }
                    Ok(())
                })
            }
            None => Err(ApiError::InvalidArgument(
                "-D needs a rule number or a rule spec".into(),
            )),
        }
    }

    async fn flush_chain(
        &self,
        _caller: &Caller,
        req: pb::FlushChainRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        self.change(&req.chain, |fw| fw.flush(opt_name(&req.chain)))
    }

    async fn zero_counters(
        &self,
        _caller: &Caller,
        req: pb::ZeroCountersRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        self.change(&req.chain, |fw| fw.zero(opt_name(&req.chain)))
    }

    async fn new_chain(
        &self,
        _caller: &Caller,
        req: pb::NewChainRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        self.change(&req.chain, |fw| fw.new_chain(&req.chain))
    }

    async fn delete_chain(
        &self,
        _caller: &Caller,
        req: pb::DeleteChainRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        self.change("", |fw| fw.delete_chain(opt_name(&req.chain)))
    }

    async fn set_policy(
        &self,
        _caller: &Caller,
        req: pb::SetPolicyRequest,
    ) -> Result<pb::RuleChangeResponse, ApiError> {
        self.change(&req.chain, |fw| fw.set_policy(&req.chain, &req.target))
    }

    async fn check_packet(
        &self,
        _caller: &Caller,
        req: pb::CheckPacketRequest,
    ) -> Result<pb::CheckPacketResponse, ApiError> {
        let nat = self.links.nat();
        let e = nat.lock();
        let verdicts = e
            .firewall()
            .check(&req.chain, &req.spec)
            .map_err(|err| ApiError::InvalidArgument(err.to_string()))?;
        Ok(pb::CheckPacketResponse {
            verdict: verdicts
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        })
    }

    async fn apply_ruleset(
        &self,
        _caller: &Caller,
        req: pb::ApplyRulesetRequest,
    ) -> Result<pb::ApplyRulesetResponse, ApiError> {
        let fw = Firewall::from_saved(&req.ruleset)
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        let chains = fw.chain_names().len() as u32;
        let rules = fw.rule_count() as u32;
        self.links.nat().lock().set_firewall(fw);
        self.persist_rules()?;
        Ok(pb::ApplyRulesetResponse { chains, rules })
    }

    async fn save_ruleset(
        &self,
        _caller: &Caller,
        _req: pb::SaveRulesetRequest,
    ) -> Result<pb::SaveRulesetResponse, ApiError> {
        Ok(pb::SaveRulesetResponse {
            ruleset: self.links.nat().lock().firewall().save(),
        })
    }

    async fn render_view(
        &self,
        _caller: &Caller,
        req: pb::RenderViewRequest,
    ) -> Result<pb::RenderViewResponse, ApiError> {
        let nat = self.links.nat();
        let now = nat.now();
        let e = nat.lock();
        let view = pb::View::try_from(req.view).unwrap_or(pb::View::Unspecified);
        let text = match view {
            pb::View::Chains => e
                .firewall()
                .list(
                    opt_name(&req.chain),
                    ListOptions {
                        numeric: req.numeric,
                        verbose: req.verbose,
                        exact: req.exact,
                        line_numbers: req.line_numbers,
                    },
                )
                .map_err(chain_err)?,
            pb::View::Masq => e.render_masq_list(
                now,
                MasqListOptions {
                    numeric: req.numeric,
                    verbose: req.verbose,
                },
            ),
            pb::View::ProcMasquerade => e.render_proc_ip_masquerade(now),
            pb::View::ProcFwchains => e.firewall().proc_fwchains(),
            pb::View::ProcFwnames => e.firewall().proc_fwnames(),
            pb::View::ProcMasqApp => e.render_proc_ip_masq_app(),
            pb::View::Unspecified => {
                return Err(ApiError::InvalidArgument("view not given".into()))
            }
        };
        Ok(pb::RenderViewResponse { text })
    }

    async fn get_counters(
        &self,
        _caller: &Caller,
        _req: pb::GetCountersRequest,
    ) -> Result<pb::GetCountersResponse, ApiError> {
        let mut counters: HashMap<String, u64> =
            self.links.nat().lock().counters().into_iter().collect();
        if let Some(dp) = self.links.dataplane() {
            for (k, v) in dp.counters().snapshot() {
                counters.insert(k.to_string(), v);
            }
        }
        Ok(pb::GetCountersResponse { counters })
    }
}

/// The masquerade address nat-core uses now (for logs and tests).
pub fn masq_address(g: &Gateway) -> Option<Ipv4Addr> {
    g.links.nat().lock().masq_address()
}

/// The ipmasq-like default policy shipped in `deploy/ipmasq.rules`: masquerade the LAN
/// (192.168.77.0/24 in the example), deny everything else through `forward`, refuse
/// inbound TCP connections and low-port UDP to the gateway's own services on the link
/// (connections to masquerade ports, e.g. active FTP data, still reach the helper's
/// entries), and private/loopback sources arriving on the link (anti-spoofing, logged).
pub const DEFAULT_RULESET: &str = include_str!("../../deploy/ipmasq.rules");

/// Write `ruleset` as the saved rules unless the state directory already has some (the
/// demo's first run).
pub fn seed_rules(cfg: &Config, ruleset: &str) -> std::io::Result<()> {
    let path = state_path(cfg, RULES_FILE);
    if path.exists() {
        return Ok(());
    }
    write_atomic(&path, ruleset)
}

/// A running gateway: the backend plus what must live as long as it.
pub struct Running {
    /// The backend to serve.
    pub gateway: Gateway,
    /// Turn true to stop the link actors, the dataplane and the feeds.
    pub stop: watch::Sender<bool>,
    /// Whether the dataplane (TUN) is on.
    pub dataplane_on: bool,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("dataplane_on", &self.dataplane_on)
            .finish_non_exhaustive()
    }
}

/// How the LAN side is wired.
#[derive(Debug)]
pub enum LanSide {
    /// Create the configured TUN device in this namespace; without CAP_NET_ADMIN the
    /// dataplane is off and the server says so.
    Tun,
    /// An already opened TUN device configured through this handle (the demo's namespaces).
    Prepared(crate::dataplane::tun::Tun, crate::dataplane::netcfg::NetCfg),
    /// No dataplane.
    Off,
}

/// Build the engine, the dataplane and the link manager, and start them.
pub fn start(cfg: Arc<Config>, lan: LanSide) -> Result<Running, GatewayError> {
    use crate::dataplane::{netcfg::NetCfg, tun::Tun, Dataplane, LanPort, Nat};
    let engine = build_engine(&cfg)?;
    let nat = Nat::new(engine);
    let (stop, stop_rx) = watch::channel(false);
    let (dataplane, netcfg) = match lan {
        LanSide::Off => (None, None),
        LanSide::Prepared(tun, nc) => (
            Some(Dataplane::spawn(
                nat.clone(),
                LanPort::Tun(tun),
                stop_rx.clone(),
            )),
            Some(nc),
        ),
        LanSide::Tun => match Tun::open(&cfg.nat.tun_name, 1500) {
            Ok(tun) => {
                let nc = NetCfg::new(tun.name());
                (
                    Some(Dataplane::spawn(
                        nat.clone(),
                        LanPort::Tun(tun),
                        stop_rx.clone(),
                    )),
                    Some(nc),
                )
            }
            Err(e) => {
                tracing::warn!("{e}");
                (None, None)
            }
        },
    };
    let dataplane_on = dataplane.is_some();
    if dataplane_on {
        tracing::info!(tun = %cfg.nat.tun_name, "dataplane on");
    } else {
        tracing::warn!("dataplane OFF: links come up but carry no LAN traffic");
    }
    let links = LinkManager::start(&cfg, nat, dataplane, netcfg, stop_rx.clone());
    let gateway = Gateway::new(cfg, links, stop_rx);
    Ok(Running {
        gateway,
        stop,
        dataplane_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ruleset_loads_and_masquerades_the_example_lan() {
        let fw = Firewall::from_saved(DEFAULT_RULESET).expect("shipped ruleset parses");
        assert_eq!(
            fw.policy("forward").ok().flatten().map(|p| p.label()),
            Some("DENY")
        );
        let fwd = fw.rules("forward").expect("forward chain");
        assert!(fwd.iter().any(|r| r.to_spec().contains("MASQ")), "{fwd:?}");
        // The example config points at it and loads it (relative to the config file).
        // (As `mserver init` writes it: the admin placeholder replaced by a hash.)
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/mserver.example.toml"
        ));
        let h = crate::auth::hash_password_with("pw", crate::auth::fast_params()).expect("hash");
        let mut cfg = Config::parse(path, &crate::setup::init_text(&h)).expect("example config");
        cfg.nat.ruleset = Some(path.with_file_name("ipmasq.rules"));
        cfg.server.state_dir = std::env::temp_dir().join("masqdial-gateway-test-none");
        let engine = build_engine(&cfg).expect("engine from the example config");
        assert_eq!(engine.firewall().save(), fw.save());
    }
}
