//! The per-connection actor: one task per connection drives its `LinkFsm` with modem
//! sessions, tells the data plane up/down ([`Uplink`]) and publishes domain events and the link
//! view. Must not parse packets, open a port (modem) or know protobuf (rpc).

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::ConnectionConfig;
use crate::dataplane::uplink::{LinkUp, UplinkNote};
use crate::link::events::{
    DialEvent, DialStep, LinkChange, LinkEvent, TrafficSample, TranscriptEntry,
};
use crate::link::fsm::{
    DialOutcome, Failure, FailureKind, HangupOutcome, Holder, LinkAction, LinkFsm, LinkState,
    SessionReport,
};
use crate::modem::session::{SessionCounters, SessionEnd, SessionEvent, SessionHandle};
use crate::shutdown::Shutdown;
use masqdial_at::{CellProgress, ChatEvent, ChatFailure, TranscriptKind};
use masqdial_ppp::{DownReason, NegotiatedOptions, PppEvent};

use super::{lock, view_status, Cmd, LinkView, Shared};

/// Traffic sample period for `WatchLinks` and the idle timer.
const SAMPLE: Duration = Duration::from_secs(1);

/// A failure's cause as pppd and chat name it in the journal (`BUSY`, `NO CARRIER`, …); the
/// message after it carries the detail (the modem's `+CME ERROR` cause, the peer's refusal).
fn cause_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::NoModem => "NO MODEM",
        FailureKind::ModemError => "MODEM ERROR",
        FailureKind::NoDialtone => "NO DIALTONE",
        FailureKind::Busy => "BUSY",
        FailureKind::NoAnswer => "NO ANSWER",
        FailureKind::NoCarrier => "NO CARRIER",
        FailureKind::Timeout => "TIMEOUT",
        FailureKind::LcpFailed => "LCP FAILED",
        FailureKind::AuthFailed => "AUTH REFUSED",
        FailureKind::IpcpFailed => "IPCP FAILED",
        FailureKind::CarrierLost => "CARRIER LOST",
        FailureKind::EchoTimeout => "ECHO TIMEOUT",
        FailureKind::Cancelled => "CANCELLED",
        FailureKind::IdleTimeout => "IDLE TIMEOUT",
        FailureKind::MaxConnectTime => "MAX CONNECT TIME",
    }
}

/// `1:02:03` (hours unbounded).
fn clock_text(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// What the modem answered to a dial that is redialled, as it says it.
fn attempt_failure(kind: ChatFailure) -> &'static str {
    match kind {
        ChatFailure::Busy => "BUSY",
        ChatFailure::NoAnswer => "NO ANSWER",
        ChatFailure::NoCarrier => "NO CARRIER",
        ChatFailure::NoDialtone => "NO DIALTONE",
        ChatFailure::Timeout => "no answer in time",
        ChatFailure::Error => "ERROR",
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

/// One connection's task.
pub(super) struct Actor {
    pub(super) name: String,
    pub(super) cfg: ConnectionConfig,
    pub(super) shared: Arc<Shared>,
    pub(super) view: Arc<Mutex<LinkView>>,
    pub(super) progress: broadcast::Sender<DialEvent>,
    pub(super) fsm: LinkFsm,
    pub(super) session: Option<SessionHandle>,
    pub(super) modem: Option<usize>,
    pub(super) carrier_lost: bool,
    pub(super) last: SessionCounters,
    pub(super) transcript: Vec<TranscriptEntry>,
    /// The data plane's activity count at the last sample (activity-filtered links).
    pub(super) activity_last: Option<u64>,
    /// Where hang-up helpers are spawned, so shutdown joins them.
    pub(super) tasks: Shutdown,
    /// The connection's budget (usage fed every sample).
    pub(super) budget: Option<crate::link::budget::Tracker>,
    /// When the current session's link came up, and how long it stayed up once it went
    /// down (for the session's summary at its end, after the hang-up).
    pub(super) up_at: Option<Instant>,
    pub(super) up_for: Option<Duration>,
    /// The session's counters when it was asked to stop (it is no longer ours when it ends).
    pub(super) stopped_counters: Option<SessionCounters>,
    /// Dials sent for the current request (across numbers, rounds and redials after loss).
    pub(super) dials: u32,
    /// The transcript changed since the view last copied it.
    pub(super) transcript_dirty: bool,
    /// The holders as last published in a `LinkChange::State` event: a join or a release
    /// that leaves the state as it was is published too, so every view follows it.
    pub(super) published_holders: Vec<Holder>,
}

async fn next_session_event(s: &mut Option<SessionHandle>) -> Option<SessionEvent> {
    match s {
        Some(h) => h.next_event().await,
        None => std::future::pending().await,
    }
}

impl Actor {
    pub(super) async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, shutdown: CancellationToken) {
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
                            self.transcript.clear();
                            self.transcript_dirty = true;
                            self.dials = 0;
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
            self.publish_holders();
        }
    }

    /// Publish the link's status when its holders changed without a state change (a user
    /// joined an up link, or released it while others still hold it): watchers (mtui, the
    /// web page, `mclient watch`) would otherwise keep the holders of the last state change.
    pub(super) fn publish_holders(&mut self) {
        if self.fsm.holders() == self.published_holders.as_slice() {
            return;
        }
        self.publish_state();
    }

    /// Send the link's current status to every watcher (and remember its holders).
    pub(super) fn publish_state(&mut self) -> crate::link::events::LinkStatus {
        let status = view_status(&self.name, &lock(&self.view));
        self.published_holders = status.holders.clone();
        let _ = self.shared.events.send(LinkEvent {
            at: SystemTime::now(),
            change: LinkChange::State(status.clone()),
        });
        status
    }

    pub(super) fn emit(&self, step: DialStep) {
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

    pub(super) fn on_session(&mut self, ev: SessionEvent) {
        let now = Instant::now();
        match ev {
            SessionEvent::Line(l) => self.record_at(l.at, l.kind, l.text),
            SessionEvent::Chat(c) => self.on_chat(now, c),
            SessionEvent::Ppp(p) => self.on_ppp(now, p),
            SessionEvent::CarrierLost => {
                self.carrier_lost = true;
                // The session wrote its transcript line (timed where it happened).
                self.tell("carrier lost".into());
                // Down now (routes, data plane, state), not after the hang-up.
                self.fsm.carrier_lost();
            }
            SessionEvent::HangingUp => self.tell("hanging up".into()),
            SessionEvent::Ended(end) => {
                let failure = end_to_failure(&end, self.carrier_lost, &self.name);
                let counters = self
                    .session
                    .as_ref()
                    .map(SessionHandle::counters)
                    .or(self.stopped_counters.take())
                    .unwrap_or(self.last);
                self.finish_session(&end);
                if let Some(f) = &failure {
                    // Once: a chat failure or a PPP end is in the transcript already.
                    if !self.transcript.iter().any(|l| l.text.contains(&f.message)) {
                        self.record(TranscriptKind::Error, f.message.clone());
                    }
                }
                self.fsm
                    .handle_session(now, SessionReport::Ended(failure.clone()));
                if let Some(up) = self.up_at.take() {
                    let up_for = self
                        .up_for
                        .take()
                        .unwrap_or_else(|| now.saturating_duration_since(up));
                    self.log_summary(up_for, &counters, failure.as_ref());
                }
                // Failed is announced with the state change (see `act`), after the view
                // is refreshed, so a watcher that reads Status next sees it.
                if self.fsm.state() == LinkState::Dialing {
                    // Redial on loss is pending: the attempts count on.
                    self.emit(DialStep::Redial {
                        next_attempt: self.dials + 1,
                        delay: Duration::from_secs(self.cfg.redial_delay_s.max(1)),
                    });
                }
            }
        }
    }

    pub(super) fn on_chat(&mut self, now: Instant, c: ChatEvent) {
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
                // The transcript has the command itself (the chat's `send` line).
                self.tell(format!("init {step}/{count}: {command}"));
            }
            ChatEvent::Dialing {
                number,
                index,
                count,
                attempt,
                attempts,
            } => {
                crate::counters::global().dial_attempt(&self.name);
                // The chat counts rounds through the numbers; watchers are told the how-manyth
                // dial of this request it is (across numbers, rounds and redials after a loss),
                // out of the plan's numbers × rounds. The transcript has the chat's own note.
                let _ = attempt;
                self.dials += 1;
                let count_u32 = u32::try_from(count).unwrap_or(u32::MAX);
                self.emit(DialStep::Dialing {
                    number,
                    index,
                    count,
                    attempt: self.dials,
                    attempts: attempts.saturating_mul(count_u32),
                });
            }
            ChatEvent::Connected { speed, extras } => {
                // The transcript has the modem's CONNECT line itself.
                let speed = speed.unwrap_or(0);
                self.fsm
                    .handle_session(now, SessionReport::Connected { speed });
                self.emit(DialStep::Connected {
                    speed_bps: speed,
                    extras: extras.unwrap_or_default(),
                });
            }
            ChatEvent::LoginStep { step, count } => {
                self.tell(format!("login script step {step}/{count} done"));
            }
            ChatEvent::Redial {
                kind,
                number,
                next_number,
                next_attempt,
                after,
            } => {
                crate::counters::global()
                    .dial_failure(&self.name, crate::link::labels::chat_failure_kind(kind));
                // The transcript has the modem's answer and the chat's note; watchers and
                // the journal are told what the modem answered, then the redial.
                let _ = next_attempt;
                let why = attempt_failure(kind);
                tracing::info!(
                    connection = %self.name, number = %number, cause = why,
                    next = %next_number, after_s = after.as_secs(), "dial attempt failed: {why}"
                );
                self.tell(format!("{why} from {number}"));
                self.emit(DialStep::Redial {
                    next_attempt: self.dials + 1,
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
                // The chat writes the progress to the transcript itself.
                self.tell(p.to_string());
            }
            ChatEvent::Ready => self.tell("line handed to PPP".into()),
            ChatEvent::Failed { .. } => {
                // The transcript has the chat's failure line; watchers get the `Failed` step
                // and the journal the dial's outcome (`act`), once each.
            }
        }
    }

    pub(super) fn on_ppp(&mut self, now: Instant, p: PppEvent) {
        match p {
            PppEvent::LcpUp { peer_mru, auth } => {
                // The session wrote the PPP milestones' transcript lines.
                let options = Box::new(self.negotiated());
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
                self.fsm.handle_session(now, SessionReport::AuthOk);
                self.emit(DialStep::AuthOk(protocol));
            }
            // Watchers get the failure with the `Failed` step.
            PppEvent::AuthFailed { .. } => {}
            PppEvent::IpcpUp { local, peer, dns } => {
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
            PppEvent::Down { .. } | PppEvent::Ipv4(_) => {}
        }
    }

    /// The session's negotiated options as of its last event (published before LCP/IPCP up
    /// events are sent).
    pub(super) fn negotiated(&self) -> NegotiatedOptions {
        self.session
            .as_ref()
            .and_then(SessionHandle::options)
            .unwrap_or_default()
    }

    pub(super) async fn act(&mut self, ended_tx: &mpsc::Sender<Vec<SessionEvent>>) {
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
                        self.stopped_counters = Some(h.counters());
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
                    if let (Some(up), None, false) = (self.up_at, self.up_for, s == LinkState::Up) {
                        // The connect time ends when the link goes down, not after the hang-up.
                        self.up_for = Some(up.elapsed());
                    }
                    self.refresh_view();
                    let status = self.publish_state();
                    if s == LinkState::Up {
                        self.up_at = Some(Instant::now());
                        self.up_for = None;
                        tracing::info!(
                            connection = %self.name, modem = %status.modem, speed = status.speed_bps,
                            local = ?status.local, peer = ?status.peer,
                            "dial succeeded: CONNECT {}, local {}, peer {}",
                            status.speed_bps,
                            status.local.map(|a| a.to_string()).unwrap_or_default(),
                            status.peer.map(|a| a.to_string()).unwrap_or_default(),
                        );
                        self.emit(DialStep::Up(status));
                    } else if s == LinkState::Failed {
                        if let Some(f) = self.fsm.last_failure().cloned() {
                            if crate::link::labels::dial_failure_kind(f.kind).is_some() {
                                // A link that was up ends with its session's summary instead.
                                tracing::info!(
                                    connection = %self.name, cause = cause_name(f.kind),
                                    "dial failed: {}: {}", cause_name(f.kind), f.message
                                );
                            }
                            if let Some(k) = crate::link::labels::dial_failure_kind(f.kind) {
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

    /// The session's summary in the journal, as pppd leaves it: connect time, bytes and
    /// packets each way, and why it ended.
    fn log_summary(&self, up_for: Duration, c: &SessionCounters, failure: Option<&Failure>) {
        let why = match failure {
            Some(f) => format!("{}: {}", cause_name(f.kind), f.message),
            None => "hung up on request".to_string(),
        };
        tracing::info!(
            connection = %self.name,
            connect_time_s = up_for.as_secs(),
            bytes_out = c.bytes_out, packets_out = c.packets_out,
            bytes_in = c.bytes_in, packets_in = c.packets_in,
            "session ended: connect time {}, sent {} bytes in {} packets, received {} bytes in \
             {} packets; {why}",
            clock_text(up_for), c.bytes_out, c.packets_out, c.bytes_in, c.packets_in,
        );
    }

    /// Announce "up: address `local`, this session" to the data plane.
    pub(super) async fn link_up(&mut self, local: Ipv4Addr, peer: Ipv4Addr) {
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
    pub(super) async fn link_down(&mut self) {
        self.shared.uplink.down(&self.name).await;
    }

    pub(super) fn sample(&mut self) {
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
    pub(super) fn budget_sample(&mut self) {
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

    pub(super) fn refresh_view(&mut self) {
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
        // One transcript, in the order things happened: the session's lines as they came,
        // our own notes between them.
        if std::mem::take(&mut self.transcript_dirty) {
            v.transcript = self.transcript.clone();
        }
    }

    pub(super) async fn shutdown(&mut self) {
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
