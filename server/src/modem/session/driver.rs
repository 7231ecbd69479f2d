//! The session driver thread: owns [`Chat`] and [`Ppp`] for one session, writes to the line,
//! sleeps until input, an outbound packet, a hang-up request or the next protocol timer, and
//! hangs up. Must not contain chat or PPP logic (it feeds the sans-IO machines) nor be seen by
//! tokio (the handle in `session` is).

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc as tmpsc;

use crate::modem::carrier::{CarrierVerdict, NoCarrierWatch};
use crate::modem::hangup::{self, hang_up, HangupReport};
use crate::modem::{
    note_no_status_lines, write_all_bounded, ModemSettings, ModemStatusError, SerialError,
    SerialLine,
};
use masqdial_at::{Chat, ChatConfig, ChatEvent, ChatFailure, TranscriptKind, TranscriptLine};
use masqdial_ppp::{DownReason, Ppp, PppConfig, PppEvent};

use crate::linkq::{line_rate, Egress, Outgoing, SchedulerKind};

use super::*;

pub(super) struct Driver {
    pub(super) line: Box<dyn SerialLine>,
    pub(super) settings: ModemSettings,
    pub(super) input: mpsc::Receiver<Input>,
    pub(super) events: tmpsc::UnboundedSender<SessionEvent>,
    pub(super) inbound: tmpsc::Sender<Vec<u8>>,
    pub(super) shared: Arc<Mutex<SharedState>>,
    pub(super) counters: SessionCounters,
    pub(super) dcd_supported: bool,
    /// DCD was seen high once; only a later high → low transition means carrier loss.
    pub(super) dcd_seen_high: bool,
    pub(super) carrier_lost: bool,
    /// Spots the modem's `NO CARRIER` where frame payload cannot put it.
    pub(super) watch: NoCarrierWatch,
    /// Outbound datagrams wait here until the line can take them.
    pub(super) egress: Egress,
    /// When the bytes written so far finish crossing the line at the DTE speed (the escape's
    /// guard silence starts after that, not after the `write` call).
    pub(super) line_free_at: Option<Instant>,
    /// Inputs set aside while stale serial input was discarded; read before the channel.
    pub(super) deferred: VecDeque<Input>,
    /// The one deadline of the hang-up in progress (set when it starts).
    pub(super) hangup_deadline: Option<Instant>,
    /// Transcript of a chat given up for a recovery and retried.
    pub(super) earlier_transcript: Vec<TranscriptLine>,
    /// A chat command taken out early by [`Driver::feed_chat`], written next.
    pub(super) chat_tx: VecDeque<Vec<u8>>,
    /// Wall-clock time of the session's start and its monotonic instant: every transcript
    /// line is timed from them, so the times follow the order the lines were written in.
    pub(super) wall0: SystemTime,
    pub(super) inst0: Instant,
    /// When the current chat started (its lines carry times relative to it).
    pub(super) chat_start: Instant,
    /// Lines of the current chat's transcript already sent as [`SessionEvent::Line`].
    pub(super) lines_sent: u64,
}

enum Wake {
    Input(Input),
    Timeout,
}

impl Driver {
    fn emit(&self, e: SessionEvent) {
        let _ = self.events.send(e);
    }

    /// The wall-clock time of `t` on the session's one clock.
    fn wall(&self, t: Instant) -> SystemTime {
        self.wall0 + t.saturating_duration_since(self.inst0)
    }

    /// A transcript line of the session's own (PPP, hang-up, carrier), written now.
    fn line(&self, kind: TranscriptKind, text: String) {
        self.emit(SessionEvent::Line(SessionLine {
            at: self.wall(Instant::now()),
            kind,
            text,
        }));
    }

    /// A PPP milestone: its transcript line, then the event.
    fn ppp_event(&self, e: PppEvent) {
        let text = match &e {
            PppEvent::LcpUp { peer_mru, auth } => Some((
                TranscriptKind::Info,
                format!("LCP up (peer MRU {peer_mru}, auth {})", auth_name(*auth)),
            )),
            PppEvent::AuthOk { protocol, .. } => Some((
                TranscriptKind::Info,
                format!(
                    "authentication ok ({})",
                    protocol.map_or("none", |p| auth_name(Some(p)))
                ),
            )),
            PppEvent::AuthFailed { message } => Some((
                TranscriptKind::Error,
                format!("authentication failed: {message}"),
            )),
            PppEvent::IpcpUp { local, peer, dns } => Some((
                TranscriptKind::Info,
                format!("IPCP up: local {local}, peer {peer}, dns {dns:?}"),
            )),
            PppEvent::Down { reason } => {
                Some((TranscriptKind::Info, format!("PPP down: {reason}")))
            }
            PppEvent::Ipv4(_) => None,
        };
        if let Some((kind, text)) = text {
            self.line(kind, text);
        }
        self.emit(SessionEvent::Ppp(e));
    }

    /// Hanging up: its transcript line, then the event.
    fn hanging_up(&self) {
        self.line(TranscriptKind::Info, "hanging up".into());
        self.emit(SessionEvent::HangingUp);
    }

    /// Carrier lost: its transcript line, then the event.
    fn carrier_gone(&self) {
        self.line(TranscriptKind::Error, "carrier lost".into());
        self.emit(SessionEvent::CarrierLost);
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SerialError> {
        write_all_bounded(self.line.as_mut(), bytes, WRITE_LIMIT)?;
        self.counters.serial_bytes_out += bytes.len() as u64;
        self.egress.on_write(bytes.len());
        let now = Instant::now();
        let start = self.line_free_at.map_or(now, |f| f.max(now));
        self.line_free_at = Some(start + self.settings.line_time(bytes.len() as u64));
        Ok(())
    }

    /// Before a chat command: drop what the modem said since the last result we used (the
    /// kernel's input queue and what the reader already forwarded). Other inputs are kept.
    fn discard_stale_input(&mut self) {
        if let Err(e) = self.line.flush_input() {
            tracing::debug!(device = %self.line.name(), error = %e, "flushing input failed");
        }
        let mut stale = 0usize;
        while let Ok(i) = self.input.try_recv() {
            match i {
                Input::Serial(b) => {
                    self.counters.serial_bytes_in += b.len() as u64;
                    stale += b.len();
                }
                other => self.deferred.push_back(other),
            }
        }
        if stale > 0 {
            tracing::debug!(device = %self.line.name(), bytes = stale, "discarded stale modem output before a command");
        }
    }

    /// Feeds the chat what the modem said, one line at a time until CONNECT. When a line makes
    /// the chat send its next command, the rest of the chunk arrived before that command was
    /// written, so none of it can be its answer: it is discarded (an extra `OK` printed right
    /// after the first). After CONNECT everything goes to the chat (it is the far end's data).
    fn feed_chat(&mut self, chat: &mut Chat, bytes: &[u8]) {
        let now = Instant::now();
        let mut rest = bytes;
        while !rest.is_empty() {
            if chat.connect_info().is_some() || chat.is_failed() {
                chat.handle_input(now, rest);
                return;
            }
            let cut = rest
                .iter()
                .position(|&c| c == b'\r' || c == b'\n')
                .map_or(rest.len(), |p| p + 1);
            let (line, tail) = rest.split_at(cut);
            chat.handle_input(now, line);
            rest = tail;
            if rest.is_empty() || chat.connect_info().is_some() {
                continue;
            }
            if let Some(cmd) = chat.poll_transmit() {
                self.chat_tx.push_back(cmd);
                let stale = rest.iter().filter(|c| !c.is_ascii_whitespace()).count();
                if stale > 0 {
                    tracing::debug!(
                        device = %self.line.name(),
                        bytes = rest.len(),
                        "discarded modem output that came before the next command"
                    );
                }
                return;
            }
        }
    }

    /// The hang-up's deadline: the one set when it was asked for, or from now.
    fn hangup_deadline(&mut self) -> Instant {
        *self
            .hangup_deadline
            .get_or_insert_with(|| Instant::now() + hangup::bound(&self.settings))
    }

    /// Hand datagrams from the link queue to PPP while the line can take more (about one
    /// packet below the writer, never a hidden FIFO).
    fn feed_line(&mut self, ppp: &mut Ppp) -> Result<(), SerialError> {
        loop {
            if self.watch.suspecting() && !self.egress.mid_datagram() {
                return Ok(());
            }
            let outq = self.line.output_queue();
            let mtu = ppp.options().peer_mru;
            match self.egress.next_for_link(outq, mtu) {
                None => return Ok(()),
                Some(Outgoing::Datagram(p)) => self.send_one(ppp, &p)?,
                Some(Outgoing::Fragment { bytes, first }) => {
                    if first {
                        self.counters.fragmented += 1;
                    }
                    self.send_one(ppp, &bytes)?;
                }
                Some(Outgoing::Refused) => self.counters.outbound_refused += 1,
            }
        }
    }

    /// Hand one datagram (at most the peer's MRU) to PPP and write what it framed.
    fn send_one(&mut self, ppp: &mut Ppp, p: &[u8]) -> Result<(), SerialError> {
        let len = p.len() as u64;
        match ppp.send_ipv4(p) {
            Ok(()) => {
                self.counters.packets_out += 1;
                self.counters.bytes_out += len;
            }
            Err(_) => self.counters.outbound_refused += 1,
        }
        while let Some(b) = ppp.poll_transmit() {
            self.write(&b)?;
        }
        Ok(())
    }

    fn set_queue_kind(&mut self, kind: SchedulerKind) {
        if kind != self.egress.kind() {
            self.egress.set_kind(kind);
        }
    }

    /// The line's data rate and MTU once CONNECT and LCP told them: the lower of the DTE speed
    /// and the CONNECT speed, and the peer's MRU.
    fn tune_egress(&mut self, connect_bps: Option<u32>, peer_mru: Option<u16>) {
        let bps = connect_bps.map_or(self.settings.baud, |c| c.min(self.settings.baud).max(1));
        self.egress
            .set_link(line_rate(bps), peer_mru.unwrap_or(1500));
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        if let Some(i) = self.deferred.pop_front() {
            return Wake::Input(i);
        }
        let now = Instant::now();
        let res = match deadline {
            Some(d) if d <= now => return Wake::Timeout,
            Some(d) => self.input.recv_timeout(d - now),
            None => self.input.recv_timeout(Duration::from_secs(3600)),
        };
        match res {
            Ok(i) => Wake::Input(i),
            Err(RecvTimeoutError::Timeout) => Wake::Timeout,
            // Cannot happen while we hold a sender clone in the handle; treat as hang-up.
            Err(RecvTimeoutError::Disconnected) => Wake::Input(Input::Hangup),
        }
    }

    /// A new chat, its lines timed from now.
    fn new_chat(&mut self, plan: ChatConfig) -> Chat {
        let now = Instant::now();
        self.chat_start = now;
        self.lines_sent = 0;
        Chat::new(plan, now)
    }

    /// Send the chat's transcript lines not sent yet, in order, each once; each also goes
    /// to the journal at debug, as `chat -v` logs its sends and expects.
    fn send_lines(&mut self, chat: &Chat) {
        let logged = chat.transcript_logged();
        if logged <= self.lines_sent {
            return;
        }
        let new = usize::try_from(logged - self.lines_sent).unwrap_or(usize::MAX);
        let len = chat.transcript().count();
        let device = self.line.name();
        for l in chat.transcript().skip(len.saturating_sub(new)) {
            match l.kind {
                TranscriptKind::Send => tracing::debug!(device = %device, "send ({})", l.text),
                TranscriptKind::Recv => {
                    tracing::debug!(device = %device, "expect: got ({})", l.text)
                }
                TranscriptKind::Info => tracing::debug!(device = %device, "chat: {}", l.text),
                TranscriptKind::Error => {
                    tracing::debug!(device = %device, "chat error: {}", l.text)
                }
            }
            let _ = self.events.send(SessionEvent::Line(SessionLine {
                at: self.wall(self.chat_start + l.at),
                kind: l.kind,
                text: l.text.clone(),
            }));
        }
        self.lines_sent = logged;
    }

    pub(super) fn publish(&mut self, chat: Option<&Chat>, ppp: Option<&Ppp>) {
        if let Some(c) = chat {
            self.send_lines(c);
        }
        if let Ok(mut s) = self.shared.lock() {
            s.counters = self.counters;
            if let Some(p) = ppp {
                s.counters.ppp = p.stats();
                s.options = Some(p.options());
            }
            if let Some(c) = chat {
                s.transcript = self
                    .earlier_transcript
                    .iter()
                    .cloned()
                    .chain(c.transcript().cloned())
                    .collect();
                s.connect = c.connect_info();
            }
            s.queue = Some(self.egress.snapshot());
        }
    }

    pub(super) fn run(&mut self, plan: ChatConfig, ppp_config: PppConfig) -> SessionEnd {
        let mut chat = self.new_chat(plan.clone());
        let mut retried = false;
        loop {
            let mut phase = ChatPhase::Init;
            match self.run_chat(&mut chat, &mut phase) {
                Ok(true) => break,
                Ok(false) => {
                    self.publish(Some(&chat), None);
                    let connected = chat.connect_info().is_some();
                    let (kind, message) = chat_failure(&chat);
                    let Some(kind) = kind else {
                        // Hang-up requested during the chat: a modem past CONNECT is in data
                        // state.
                        self.hanging_up();
                        let _ = self.modem_hangup(&mut chat, !connected);
                        self.publish(Some(&chat), None);
                        return SessionEnd::HungUp;
                    };
                    // A call that got past CONNECT is up; a command nobody answered leaves the
                    // modem's state unknown (most likely still online from an earlier call or
                    // a crash, taking our commands as data). Both get the full recovery.
                    if !(connected || kind == ChatFailure::Timeout) {
                        return SessionEnd::ChatFailed { kind, message };
                    }
                    let why = if connected {
                        "chat failed after CONNECT: escape, ATH, ATZ"
                    } else {
                        "modem state unknown (no answer): escape, ATH, ATZ"
                    };
                    tracing::warn!(device = %self.line.name(), ?message, "{why}");
                    chat.note(Instant::now(), TranscriptKind::Info, why);
                    self.hangup_deadline = None;
                    let asked = match self.modem_hangup(&mut chat, false) {
                        Ok((_, asked)) => asked,
                        Err(e) => {
                            self.publish(Some(&chat), None);
                            return SessionEnd::Serial(e);
                        }
                    };
                    self.hangup_deadline = None;
                    self.publish(Some(&chat), None);
                    // An init nobody answered is tried once more, now that the modem is in
                    // command state again.
                    if asked {
                        return SessionEnd::HungUp;
                    }
                    if retried || connected || phase != ChatPhase::Init {
                        return SessionEnd::ChatFailed { kind, message };
                    }
                    retried = true;
                    chat.note(
                        Instant::now(),
                        TranscriptKind::Info,
                        "retrying the modem init after the recovery",
                    );
                    self.publish(Some(&chat), None);
                    self.earlier_transcript.extend(chat.transcript().cloned());
                    chat = self.new_chat(plan.clone());
                }
                Err(e) => {
                    self.publish(Some(&chat), None);
                    return SessionEnd::Serial(e);
                }
            }
        }
        let mut ppp = Ppp::new(ppp_config);
        let now = Instant::now();
        ppp.open(now);
        let rest = chat.take_remaining();
        if !rest.is_empty() {
            ppp.handle_input(now, &rest);
        }
        let end = match self.run_ppp(&mut ppp) {
            Ok(end) => end,
            Err(e) => {
                self.publish(Some(&chat), Some(&ppp));
                return SessionEnd::Serial(e);
            }
        };
        self.hanging_up();
        let command_state = self.carrier_lost;
        if let Err(e) = self.modem_hangup(&mut chat, command_state) {
            self.publish(Some(&chat), Some(&ppp));
            return SessionEnd::Serial(e);
        }
        self.publish(Some(&chat), Some(&ppp));
        end
    }

    /// Runs the chat; Ok(true) when the line belongs to PPP, Ok(false) on failure or hang-up.
    /// `phase` follows the chat's events (init, dialling, connected).
    fn run_chat(&mut self, chat: &mut Chat, phase: &mut ChatPhase) -> Result<bool, SerialError> {
        loop {
            while let Some(b) = self.chat_tx.pop_front().or_else(|| chat.poll_transmit()) {
                // Every command goes out on a clean input: nothing the modem said before it
                // can be taken for its answer. Not after CONNECT: that is the far end's data.
                if chat.connect_info().is_none() {
                    self.discard_stale_input();
                }
                self.write(&b)?;
            }
            // This step's lines first, then its events.
            self.publish(Some(chat), None);
            let mut ready = false;
            while let Some(e) = chat.poll_event() {
                match &e {
                    ChatEvent::Ready => ready = true,
                    ChatEvent::ModemInit { .. } => *phase = ChatPhase::Init,
                    ChatEvent::Dialing { .. } => *phase = ChatPhase::Dial,
                    ChatEvent::Connected { .. } => *phase = ChatPhase::Connected,
                    _ => {}
                }
                self.emit(SessionEvent::Chat(e));
            }
            self.publish(Some(chat), None);
            if ready {
                return Ok(true);
            }
            if chat.is_failed() {
                return Ok(false);
            }
            match self.wait(chat.poll_timeout()) {
                Wake::Timeout => chat.handle_timeout(Instant::now()),
                Wake::Input(Input::Serial(b)) => {
                    self.counters.serial_bytes_in += b.len() as u64;
                    self.feed_chat(chat, &b);
                }
                Wake::Input(Input::SerialFailed(e)) => return Err(e),
                Wake::Input(Input::Packet(..)) => self.counters.outbound_refused += 1,
                Wake::Input(Input::Queue(kind)) => self.set_queue_kind(kind),
                Wake::Input(Input::Hangup) => {
                    chat.note(Instant::now(), TranscriptKind::Info, "hang-up requested");
                    return Ok(false);
                }
            }
        }
    }

    /// Read path, carrier part: feeds what was read to the `NO CARRIER` watcher and acts on
    /// its verdict (see [`super::carrier`]). True if carrier is gone.
    fn watch_input(&mut self, ppp: &mut Ppp, now: Instant, bytes: &[u8]) -> bool {
        let v = self.watch.handle_input(now, bytes);
        self.carrier_verdict(ppp, now, v)
    }

    /// Timer path of the watcher.
    fn watch_timeout(&mut self, ppp: &mut Ppp, now: Instant) -> bool {
        if self.watch.poll_timeout().is_some_and(|t| t <= now) {
            let v = self.watch.handle_timeout(now);
            return self.carrier_verdict(ppp, now, v);
        }
        false
    }

    fn carrier_verdict(&mut self, ppp: &mut Ppp, now: Instant, v: Option<CarrierVerdict>) -> bool {
        match v {
            Some(CarrierVerdict::Lost) if !self.carrier_lost => {
                tracing::warn!(device = %self.line.name(), "modem reported NO CARRIER");
                self.carrier_lost = true;
                self.carrier_gone();
                ppp.lower_down(now);
                true
            }
            Some(CarrierVerdict::Probe) => {
                tracing::debug!(
                    device = %self.line.name(),
                    "NO CARRIER inside a frame followed by silence: probing with LCP echo"
                );
                ppp.send_echo_request(now);
                false
            }
            _ => false,
        }
    }

    fn check_dcd(&mut self) -> bool {
        if !self.dcd_supported {
            return true;
        }
        match self.line.carrier_detect() {
            Ok(true) => {
                self.dcd_seen_high = true;
                true
            }
            // Like FreeBSD ppp's `set cd`: a DCD that is low from the start means the modem does
            // not report carrier (no AT&C1, or a cable without the line); stop checking.
            Ok(false) if !self.dcd_seen_high => {
                tracing::info!(
                    device = %self.line.name(),
                    "DCD low after CONNECT: modem does not report carrier; relying on NO CARRIER"
                );
                self.dcd_supported = false;
                true
            }
            Ok(false) => false,
            Err(ModemStatusError::Unsupported) => {
                note_no_status_lines(&self.line.name());
                self.dcd_supported = false;
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "DCD read failed; carrier detection off");
                self.dcd_supported = false;
                true
            }
        }
    }

    fn run_ppp(&mut self, ppp: &mut Ppp) -> Result<SessionEnd, SerialError> {
        let mut closing: Option<Instant> = None;
        let mut next_dcd = Instant::now() + DCD_POLL;
        loop {
            while let Some(b) = ppp.poll_transmit() {
                self.write(&b)?;
            }
            self.feed_line(ppp)?;
            let mut delivered = Vec::new();
            while let Some(e) = ppp.poll_event() {
                match e {
                    PppEvent::Ipv4(p) => {
                        self.counters.packets_in += 1;
                        self.counters.bytes_in += p.len() as u64;
                        delivered.push(p);
                    }
                    PppEvent::Down { reason } => {
                        log_ppp_event(
                            &self.line.name(),
                            &PppEvent::Down {
                                reason: reason.clone(),
                            },
                        );
                        self.ppp_event(PppEvent::Down {
                            reason: reason.clone(),
                        });
                        self.publish(None, Some(ppp));
                        return Ok(match closing {
                            Some(_) if !matches!(reason, DownReason::LowerDown) => {
                                SessionEnd::HungUp
                            }
                            _ => SessionEnd::PppDown(reason),
                        });
                    }
                    other => {
                        if let PppEvent::LcpUp { peer_mru, .. } = &other {
                            let connect = self
                                .shared
                                .lock()
                                .ok()
                                .and_then(|s| s.connect.clone())
                                .and_then(|c| c.0);
                            self.tune_egress(connect, Some(*peer_mru));
                        }
                        if matches!(other, PppEvent::LcpUp { .. } | PppEvent::IpcpUp { .. }) {
                            // Whoever gets the event reads the options it reports.
                            self.publish(None, Some(ppp));
                        }
                        log_ppp_event(&self.line.name(), &other);
                        self.ppp_event(other);
                    }
                }
            }
            // Counters first, so a reader who got the packet also sees it counted.
            self.publish(None, Some(ppp));
            for p in delivered {
                if self.inbound.try_send(p).is_err() {
                    self.counters.inbound_dropped += 1;
                }
            }
            let now = Instant::now();
            if let Some(c) = closing {
                if now >= c {
                    // The peer never acknowledged; declare the lower layer gone.
                    ppp.lower_down(now);
                    continue;
                }
            }
            if now >= next_dcd {
                next_dcd = now + DCD_POLL;
                if !self.check_dcd() && !self.carrier_lost {
                    self.carrier_lost = true;
                    self.carrier_gone();
                    ppp.lower_down(now);
                    continue;
                }
            }
            let mut deadline = ppp.poll_timeout();
            if let Some(w) = self.watch.poll_timeout() {
                deadline = Some(deadline.map_or(w, |d| d.min(w)));
            }
            if self.dcd_supported {
                deadline = Some(deadline.map_or(next_dcd, |d| d.min(next_dcd)));
            }
            if let Some(c) = closing {
                deadline = Some(deadline.map_or(c, |d| d.min(c)));
            }
            if let Some(w) = self.egress.wake_at() {
                deadline = Some(deadline.map_or(w, |d| d.min(w)));
            }
            match self.wait(deadline) {
                Wake::Timeout => {
                    let now = Instant::now();
                    if ppp.poll_timeout().is_some_and(|t| t <= now) {
                        ppp.handle_timeout(now);
                    }
                    self.watch_timeout(ppp, now);
                }
                Wake::Input(Input::Serial(b)) => {
                    self.counters.serial_bytes_in += b.len() as u64;
                    let now = Instant::now();
                    ppp.handle_input(now, &b);
                    self.watch_input(ppp, now, &b);
                }
                Wake::Input(Input::SerialFailed(e)) => return Err(e),
                Wake::Input(Input::Packet(p, class)) => self.egress.enqueue(p, class),
                Wake::Input(Input::Queue(kind)) => self.set_queue_kind(kind),
                Wake::Input(Input::Hangup) => {
                    if closing.is_none() {
                        // The one deadline of the whole hang-up: PPP close, then the modem.
                        let now = Instant::now();
                        self.hangup_deadline =
                            Some(now + PPP_CLOSE_LIMIT + hangup::bound(&self.settings));
                        closing = Some(now + PPP_CLOSE_LIMIT);
                        ppp.close(now, "hang-up requested");
                    }
                }
            }
        }
    }

    /// The modem hang-up procedure under the hang-up's one deadline. Also says whether a
    /// hang-up was asked for meanwhile (a recovery must then not redial).
    fn modem_hangup(
        &mut self,
        chat: &mut Chat,
        command_state: bool,
    ) -> Result<(HangupReport, bool), SerialError> {
        let deadline = self.hangup_deadline();
        let line_free_at = self.line_free_at.filter(|t| *t > Instant::now());
        let mut asked = self.deferred.iter().any(|i| matches!(i, Input::Hangup));
        self.deferred.clear();
        let input = &self.input;
        let counters = &mut self.counters;
        let asked_ref = &mut asked;
        let mut read = |deadline: Instant| -> Result<Option<Vec<u8>>, SerialError> {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = if left.is_zero() {
                match input.try_recv() {
                    Ok(i) => Ok(i),
                    Err(_) => return Ok(None),
                }
            } else {
                input.recv_timeout(left)
            };
            match got {
                Ok(Input::Serial(b)) => {
                    counters.serial_bytes_in += b.len() as u64;
                    Ok(Some(b))
                }
                Ok(Input::SerialFailed(e)) => Err(e),
                Ok(Input::Hangup) => {
                    *asked_ref = true;
                    Ok(Some(Vec::new()))
                }
                Ok(Input::Packet(..) | Input::Queue(_)) => Ok(Some(Vec::new())),
                Err(_) => Ok(None),
            }
        };
        let report = hang_up(
            self.line.as_mut(),
            &self.settings,
            command_state,
            line_free_at,
            deadline,
            &mut read,
        )?;
        let now = Instant::now();
        if report.deadline_hit {
            tracing::warn!(device = %self.line.name(), "hang-up cut short by its deadline");
        }
        chat.note(
            now,
            TranscriptKind::Info,
            format!(
                "hang-up: DTR drop {}, +++ {}, ATH {}, ATZ {}{}",
                if report.dtr_dropped {
                    "done"
                } else {
                    "unsupported"
                },
                match (report.escape_sent, report.escape_ok) {
                    (false, _) => "not sent",
                    (true, true) => "OK",
                    (true, false) => "no answer",
                },
                if report.ath_ok { "OK" } else { "no answer" },
                if report.atz_ok { "OK" } else { "no answer" },
                if report.extra_lines > 0 {
                    format!(" ({} extra result code(s) read)", report.extra_lines)
                } else {
                    String::new()
                }
            ),
        );
        Ok((report, asked))
    }
}

/// An authentication protocol as the transcript names it.
fn auth_name(a: Option<masqdial_ppp::AuthProtocol>) -> &'static str {
    match a {
        Some(masqdial_ppp::AuthProtocol::Pap) => "PAP",
        Some(masqdial_ppp::AuthProtocol::Chap) => "CHAP-MD5",
        None => "",
    }
}

/// Where the chat was when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChatPhase {
    /// Init commands (`ATZ`, …).
    Init,
    /// Dialling.
    Dial,
    /// CONNECT seen (login script).
    Connected,
}

/// Logs a PPP milestone (the sans-IO crate does not log): LCP up, authentication, IPCP up,
/// link down with its reason (loop-back and echo timeout as warnings). Never logs a secret:
/// events carry none.
fn log_ppp_event(device: &str, e: &PppEvent) {
    match e {
        PppEvent::LcpUp { peer_mru, auth } => {
            tracing::info!(device, peer_mru, auth = ?auth, "LCP up");
        }
        PppEvent::AuthOk {
            protocol,
            peer_name,
        } => tracing::info!(device, protocol = ?protocol, peer = ?peer_name, "authentication ok"),
        PppEvent::AuthFailed { message } => {
            tracing::warn!(device, ?message, "authentication failed");
        }
        PppEvent::IpcpUp { local, peer, dns } => {
            tracing::info!(device, %local, %peer, dns = ?dns, "IPCP up");
        }
        PppEvent::Down { reason } => match reason {
            DownReason::LoopbackDetected => {
                tracing::warn!(
                    device,
                    "PPP down: line is looped back (our magic number came back)"
                );
            }
            DownReason::EchoTimeout => {
                tracing::warn!(device, "PPP down: peer stopped answering LCP echo requests");
            }
            DownReason::LocalClose(_) => {
                tracing::info!(device, reason = ?reason.to_string(), "PPP down")
            }
            _ => tracing::warn!(device, reason = ?reason.to_string(), "PPP down"),
        },
        PppEvent::Ipv4(_) => {}
    }
}

fn chat_failure(chat: &Chat) -> (Option<ChatFailure>, String) {
    if !chat.is_failed() {
        return (None, String::new());
    }
    let msg = chat
        .transcript()
        .filter(|l| l.kind == TranscriptKind::Error)
        .last()
        .map(|l| l.text.clone())
        .unwrap_or_default();
    let kind = chat.failure().unwrap_or(ChatFailure::Error);
    (Some(kind), msg)
}
