//! The modem slots: which modem a connection may use and picks, absent modems and their
//! re-prober, and the cellular status poller. Owns the `ModemSlot` table's rules; must not drive
//! the link state machine (the actor) or speak protobuf.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::config::{self, ModemConfig};
use crate::link::events::CellView;
use crate::link::fsm::{Failure, FailureKind};
use crate::modem::session::{spawn_session, SessionCounters, SessionEnd};
use crate::modem::{self};
use masqdial_at::TranscriptKind;

use super::settings::{chat_config, modem_settings, ppp_config};
use super::{lock, Actor, Shared};

/// State of a modem as the manager tracks it.
#[derive(Debug, Clone)]
pub(super) struct ModemSlot {
    pub(super) cfg: ModemConfig,
    /// Connection currently using it.
    pub(super) user: Option<String>,
    /// Last open/serial error; the modem counts as absent while set and unprobed.
    pub(super) last_error: Option<String>,
    pub(super) absent: bool,
    pub(super) modem_lines: Option<bool>,
    /// Set while a status poll holds the port; storing true asks it to stop early.
    pub(super) polling: Option<Arc<AtomicBool>>,
    /// Cellular status from the last poll.
    pub(super) cell: Option<CellView>,
    /// The SIM refused the configured PIN (status poll or dial): it is not sent again until
    /// mserver restarts, since every wrong PIN uses up one of the SIM's tries.
    pub(super) pin_refused: bool,
    /// Absent: when the re-prober tries next, and how often it has failed.
    pub(super) next_probe: Option<SystemTime>,
    pub(super) failed_probes: u32,
    /// A re-prober task is running for this modem.
    pub(super) reprobing: bool,
}

/// Poll a cellular modem's status every `cell.poll_s` until `stop`: over its second AT
/// port if configured, else only while no session uses it (never in PPP data mode). A
/// dial that wants the modem mid-poll stops the poll ([`Actor::start_session`]).
pub(super) async fn cell_poller(
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

impl Actor {
    pub(super) fn modem_names(&self) -> (String, String) {
        let modems = lock(&self.shared.modems);
        self.modem
            .and_then(|i| modems.get(i))
            .map(|m| (m.cfg.name.clone(), m.cfg.device.display().to_string()))
            .unwrap_or_default()
    }

    pub(super) fn finish_session(&mut self, end: &SessionEnd) {
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
    pub(super) async fn start_session(&mut self) -> Result<(), (Failure, bool)> {
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
            ppp.refused_networks = crate::link::refused::refused_networks(
                &crate::link::refused::interface_nets(),
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
}

/// Marks modem `idx` absent with `error` and starts its re-prober unless one runs.
pub(super) fn mark_absent(shared: &Arc<Shared>, idx: usize, error: String) {
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
