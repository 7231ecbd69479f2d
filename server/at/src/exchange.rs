//! The command exchange: sending a command, reading its echo, information lines and final
//! result, and deciding the next command (SIM, PDP context, registration polls). Part of
//! [`Chat`]; must not dial or run the login script (`dial`).

use std::time::{Duration, Instant};

use crate::cell::{RegKind, RegStatus, Registration, SimState};
use crate::*;

/// An `OK` within this time of sending the dial command is a late extra result of the
/// command before, never the dial's answer.
const DIAL_OK_STALE: Duration = Duration::from_millis(1000);

impl Chat {
    pub(crate) fn log(&mut self, now: Instant, kind: TranscriptKind, text: String) {
        if self.transcript.len() >= MAX_TRANSCRIPT {
            self.transcript.pop_front();
        }
        let mut text: String = text
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        // Whatever the line (a modem echoing a command in its own way, a login prompt
        // repeating the answer), the secrets we hold never reach the transcript.
        let pin = self
            .config
            .cellular
            .as_ref()
            .and_then(|c| c.sim_pin.as_deref());
        let secrets = pin.into_iter().chain(
            self.config
                .login
                .iter()
                .filter(|s| s.secret)
                .map(|s| s.send.as_str()),
        );
        for secret in secrets.filter(|s| !s.is_empty()) {
            if text.contains(secret) {
                text = text.replace(secret, "********");
            }
        }
        self.transcript.push_back(TranscriptLine {
            at: now.saturating_duration_since(self.start),
            kind,
            text,
        });
        self.logged += 1;
    }

    pub(crate) fn send_line(&mut self, now: Instant, text: &str, shown: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(b'\r');
        self.tx.push_back(bytes);
        self.last_sent = text.to_string();
        self.log(now, TranscriptKind::Send, shown.to_string());
    }

    /// Drops everything buffered before a command goes out: it cannot be its answer.
    pub(crate) fn discard_stale(&mut self, now: Instant) {
        if !self.rx.is_empty() {
            let text = String::from_utf8_lossy(&self.rx).trim().to_string();
            self.rx.clear();
            if !text.is_empty() {
                self.log(
                    now,
                    TranscriptKind::Info,
                    format!("stale input discarded before the next command: {text}"),
                );
            }
        }
    }

    pub(crate) fn command_text(&self, cmd: Cmd) -> String {
        match cmd {
            Cmd::Init(i) => self.config.init.get(i).cloned().unwrap_or_default(),
            Cmd::Cpin | Cmd::CpinAgain => "AT+CPIN?".into(),
            Cmd::EnterPin => format!(
                "AT+CPIN=\"{}\"",
                self.cellular().sim_pin.clone().unwrap_or_default()
            ),
            Cmd::Pdp => format!(
                "AT+CGDCONT=1,\"IP\",\"{}\"",
                self.config.apn.as_deref().unwrap_or_default()
            ),
            Cmd::Poll(Poll::Reg(k)) => format!("AT{}?", k.prefix()),
            Cmd::Poll(Poll::Csq) => "AT+CSQ".into(),
            Cmd::Poll(Poll::Cops) => "AT+COPS?".into(),
            Cmd::AttachQuery => "AT+CGATT?".into(),
            Cmd::Attach => "AT+CGATT=1".into(),
        }
    }

    /// The command as the transcript shows it (never the PIN).
    pub(crate) fn command_shown(&self, cmd: Cmd) -> String {
        match cmd {
            Cmd::EnterPin => "AT+CPIN=********".into(),
            _ => self.command_text(cmd),
        }
    }

    pub(crate) fn command_limit(&self, cmd: Cmd) -> Duration {
        match cmd {
            // Attaching can take as long as registering.
            Cmd::Attach => self
                .cellular()
                .registration_wait
                .max(self.config.command_timeout),
            _ => self.config.command_timeout,
        }
    }

    pub(crate) fn cellular(&self) -> CellularDial {
        self.config.cellular.clone().unwrap_or_default()
    }

    pub(crate) fn send_command(&mut self, now: Instant, cmd: Cmd) {
        self.discard_stale(now);
        self.info.clear();
        self.stale = 0;
        let count = self.config.init.len() + usize::from(self.config.apn.is_some());
        match cmd {
            Cmd::Init(i) => self.events.push_back(ChatEvent::ModemInit {
                command: self.command_text(cmd),
                step: i + 1,
                count,
            }),
            Cmd::Pdp => self.events.push_back(ChatEvent::ModemInit {
                command: self.command_text(cmd),
                step: count,
                count,
            }),
            Cmd::EnterPin => self
                .events
                .push_back(ChatEvent::Cellular(CellProgress::PinSent)),
            Cmd::Attach => self
                .events
                .push_back(ChatEvent::Cellular(CellProgress::Attaching)),
            _ => {}
        }
        let text = self.command_text(cmd);
        let shown = self.command_shown(cmd);
        self.send_line(now, &text, &shown);
        self.state = State::Command { cmd, echo: false };
        self.deadline = Some(now + self.command_limit(cmd));
    }

    pub(crate) fn fail(&mut self, now: Instant, kind: ChatFailure, message: String) {
        self.log(now, TranscriptKind::Error, message.clone());
        self.events.push_back(ChatEvent::Failed { kind, message });
        self.failed = Some(kind);
        self.state = State::Failed;
        self.deadline = None;
    }

    pub(crate) fn fail_with(&mut self, now: Instant, code: ResultCode, message: String) {
        self.cause = Some(code);
        self.fail(now, ChatFailure::Error, message);
    }

    /// The echo of the command just sent (possibly behind a stale fragment that arrived
    /// just before it), or any command line.
    pub(crate) fn is_echo(&self, line: &str) -> bool {
        let l = line.trim().to_ascii_uppercase();
        let sent = self.last_sent.trim().to_ascii_uppercase();
        (!sent.is_empty() && l.ends_with(&sent)) || l.starts_with("AT")
    }

    /// After the init commands: the SIM check (cellular), else the PDP context / dial.
    pub(crate) fn after_init(&self) -> Next {
        if self.config.cellular.is_some() {
            Next::Cmd(Cmd::Cpin)
        } else {
            self.after_sim()
        }
    }

    pub(crate) fn after_sim(&self) -> Next {
        if self.config.apn.is_some() {
            Next::Cmd(Cmd::Pdp)
        } else {
            self.after_pdp()
        }
    }

    pub(crate) fn after_pdp(&self) -> Next {
        match &self.config.cellular {
            Some(c) if !c.registration_wait.is_zero() => self.next_poll(None),
            Some(_) => Next::Cmd(Cmd::AttachQuery),
            None => Next::Dial,
        }
    }

    /// The poll query after `done` (or the first of a round), skipping unsupported ones.
    pub(crate) fn next_poll(&self, done: Option<Poll>) -> Next {
        let from = done
            .and_then(|d| POLLS.iter().position(|p| *p == d))
            .map_or(0, |i| i + 1);
        POLLS[from.min(POLLS.len())..]
            .iter()
            .find(|p| !self.unsupported.contains(p))
            .map_or(Next::RoundDone, |p| Next::Cmd(Cmd::Poll(*p)))
    }

    /// Goes on to `next`, after the settle window if there is one.
    pub(crate) fn proceed(&mut self, now: Instant, after: Cmd, next: Next) {
        if self.config.settle.is_zero() {
            self.run_next(now, next);
        } else {
            self.state = State::Settle { after, next };
            self.deadline = Some(now + self.config.settle);
        }
    }

    pub(crate) fn run_next(&mut self, now: Instant, next: Next) {
        match next {
            Next::Cmd(c) => {
                if matches!(c, Cmd::Poll(_)) && self.wait_start.is_none() {
                    self.wait_start = Some(now);
                }
                self.send_command(now, c);
            }
            Next::Dial => self.dial(now),
            Next::RoundDone => self.round_done(now),
        }
    }

    pub(crate) fn handle_line(&mut self, now: Instant, line: &str) {
        if self.is_echo(line) {
            match &mut self.state {
                State::Command { echo, .. } | State::Dialing { echo } => {
                    *echo = true;
                    self.echo = Some(true);
                }
                _ => {}
            }
            return;
        }
        self.log(now, TranscriptKind::Recv, line.to_string());
        let code = ResultCode::parse(line);
        if !code.is_final() {
            if let ResultCode::Other(text) = &code {
                self.information(now, text);
            }
            return;
        }
        match self.state {
            State::Command { cmd, echo } => {
                if self.echo == Some(true) && !echo {
                    self.set_aside(now, &code, "before the echo of", cmd);
                    return;
                }
                self.command_final(now, cmd, echo, code);
            }
            State::Settle { after, .. } => self.set_aside(now, &code, "after", after),
            State::RegWait | State::DialDelay => {
                self.stale += 1;
                self.log(
                    now,
                    TranscriptKind::Info,
                    format!("result code `{code}` with no command pending: set aside"),
                );
            }
            State::Dialing { echo } => {
                if self.echo == Some(true) && !echo {
                    self.stale += 1;
                    self.log(
                        now,
                        TranscriptKind::Info,
                        format!(
                            "result code `{code}` came before the dial command's echo: set aside"
                        ),
                    );
                    return;
                }
                // A plain OK this soon after ATD cannot be the dial's result (no call is set
                // up in a second): it is an extra result of the command before, late on the
                // line (a modem printing a second OK after ATZ). Set aside; wait on.
                let sent = self
                    .deadline
                    .map(|d| d.checked_sub(self.config.dial_timeout).unwrap_or(d));
                if code == ResultCode::Ok
                    && sent.is_some_and(|s| now.saturating_duration_since(s) < DIAL_OK_STALE)
                {
                    self.stale += 1;
                    self.log(
                        now,
                        TranscriptKind::Info,
                        "an OK right after dialling (late from the command before): set aside"
                            .into(),
                    );
                    return;
                }
                self.dial_final(now, code);
            }
            State::Login { .. } | State::Ready | State::Failed => {}
        }
    }

    pub(crate) fn set_aside(&mut self, now: Instant, code: &ResultCode, when: &str, cmd: Cmd) {
        self.stale += 1;
        let shown = self.command_shown(cmd);
        self.log(
            now,
            TranscriptKind::Info,
            format!("extra result code `{code}` {when} `{shown}`: set aside"),
        );
    }

    /// An information or unsolicited line: kept for the current command; registration
    /// lines update what the chat knows at any time.
    pub(crate) fn information(&mut self, now: Instant, text: &str) {
        if matches!(self.state, State::Command { .. }) && self.info.len() < MAX_INFO {
            self.info.push(text.to_string());
        }
        if let Some((kind, reg)) = cell::parse_any_registration(text) {
            let waiting = self.state == State::RegWait;
            self.regs[reg_index(kind)] = Some(reg);
            if waiting {
                // An unsolicited change while waiting: judge it now.
                self.round_done(now);
            }
        }
    }

    pub(crate) fn command_final(&mut self, now: Instant, cmd: Cmd, echo: bool, code: ResultCode) {
        if !echo && self.echo.is_none() {
            self.echo = Some(false);
        }
        if let Cmd::Init(i) = cmd {
            if let Some(text) = self.config.init.get(i) {
                self.echo = echo_after(text, self.echo);
            }
        }
        match code {
            ResultCode::Ok => self.command_ok(now, cmd),
            c if c.is_error() => self.command_error(now, cmd, c),
            // NO CARRIER / BUSY / CONNECT… answer no command here: leftovers of a call.
            other => self.set_aside(now, &other, "while waiting for the answer to", cmd),
        }
    }

    pub(crate) fn command_ok(&mut self, now: Instant, cmd: Cmd) {
        let next = match cmd {
            Cmd::Init(i) if i + 1 < self.config.init.len() => Next::Cmd(Cmd::Init(i + 1)),
            Cmd::Init(_) => self.after_init(),
            Cmd::Cpin | Cmd::CpinAgain => {
                let sim = self.info.iter().find_map(|l| cell::parse_cpin(l));
                match self.sim_next(now, cmd, sim) {
                    Some(n) => n,
                    None => return,
                }
            }
            Cmd::EnterPin => Next::Cmd(Cmd::CpinAgain),
            Cmd::Pdp => self.after_pdp(),
            Cmd::Poll(p) => {
                match p {
                    Poll::Reg(k) => {
                        if let Some(r) = self
                            .info
                            .iter()
                            .find_map(|l| cell::parse_registration(k.prefix(), l))
                        {
                            self.regs[reg_index(k)] = Some(r);
                        }
                    }
                    Poll::Csq => {
                        if let Some(s) = self.info.iter().find_map(|l| cell::parse_csq(l)) {
                            self.signal = Some(s);
                        }
                    }
                    Poll::Cops => {
                        if let Some(o) = self.info.iter().find_map(|l| cell::parse_cops(l)) {
                            self.operator = Some(o);
                        }
                    }
                }
                self.next_poll(Some(p))
            }
            Cmd::AttachQuery => {
                let detached = self.info.iter().any(|l| {
                    l.to_ascii_uppercase()
                        .strip_prefix("+CGATT:")
                        .is_some_and(|v| v.trim() == "0")
                });
                if detached {
                    Next::Cmd(Cmd::Attach)
                } else {
                    Next::Dial
                }
            }
            Cmd::Attach => Next::Dial,
        };
        self.proceed(now, cmd, next);
    }

    /// What follows `+CPIN?`; `None` when the chat failed.
    pub(crate) fn sim_next(
        &mut self,
        now: Instant,
        cmd: Cmd,
        sim: Option<SimState>,
    ) -> Option<Next> {
        let Some(sim) = sim else {
            self.log(
                now,
                TranscriptKind::Info,
                "the modem gave no +CPIN line: SIM state unknown, going on".into(),
            );
            return Some(self.after_sim());
        };
        self.events
            .push_back(ChatEvent::Cellular(CellProgress::Sim(sim.clone())));
        match &sim {
            SimState::Ready => return Some(self.after_sim()),
            SimState::PinRequired if cmd == Cmd::Cpin => {
                if self.cellular().sim_pin.is_some() {
                    return Some(Next::Cmd(Cmd::EnterPin));
                }
                self.fail(
                    now,
                    ChatFailure::Error,
                    "the SIM asks for its PIN (+CPIN: SIM PIN) and none is configured: set \
                     sim_pin in the modem's [modems.cellular] section"
                        .into(),
                );
                return None;
            }
            SimState::Other(t) if t.eq_ignore_ascii_case("SIM PIN2") => {
                // PIN2 guards the fixed-dialling phone book, not data.
                return Some(self.after_sim());
            }
            _ => {}
        }
        let message = if sim.needs_puk() {
            format!(
                "+CPIN: {}: {}; masqdial never sends a PUK: unblock the SIM in a phone",
                sim.code(),
                sim.describe()
            )
        } else if cmd == Cmd::CpinAgain {
            format!(
                "the SIM still reports +CPIN: {} ({}) after the PIN; it is not sent again",
                sim.code(),
                sim.describe()
            )
        } else {
            format!(
                "the SIM is not ready: +CPIN: {} ({})",
                sim.code(),
                sim.describe()
            )
        };
        self.fail(now, ChatFailure::Error, message);
        None
    }

    pub(crate) fn command_error(&mut self, now: Instant, cmd: Cmd, code: ResultCode) {
        let cause = code.cause();
        let shown = self.command_shown(cmd);
        match cmd {
            Cmd::Init(_) | Cmd::Pdp => {
                let what = if cmd == Cmd::Pdp {
                    "setting the PDP context (APN)"
                } else {
                    "an init command"
                };
                self.fail_with(
                    now,
                    code,
                    format!("modem answered {cause} to `{shown}` ({what})"),
                );
            }
            Cmd::Cpin | Cmd::CpinAgain if code == ResultCode::Error => {
                self.log(
                    now,
                    TranscriptKind::Info,
                    "the modem does not answer AT+CPIN?: SIM state unknown, going on".into(),
                );
                let next = self.after_sim();
                self.proceed(now, cmd, next);
            }
            Cmd::Cpin | Cmd::CpinAgain => {
                self.fail_with(now, code, format!("SIM check failed: {cause}"));
            }
            Cmd::EnterPin => {
                self.events
                    .push_back(ChatEvent::Cellular(CellProgress::PinRefused {
                        cause: cause.clone(),
                    }));
                self.fail_with(
                    now,
                    code,
                    format!(
                        "the SIM refused the configured PIN ({cause}); it is not sent again \
                         (each wrong PIN uses up one of the SIM's tries): check sim_pin"
                    ),
                );
            }
            Cmd::Poll(p) => {
                // The modem does not know this query (a 2G modem and +CEREG?): skip it.
                self.unsupported.push(p);
                let next = self.next_poll(Some(p));
                self.proceed(now, cmd, next);
            }
            Cmd::AttachQuery => self.proceed(now, cmd, Next::Dial),
            Cmd::Attach => {
                self.fail_with(
                    now,
                    code,
                    format!("packet attach (AT+CGATT=1) failed: {cause}"),
                );
            }
        }
    }

    /// The best registration known: a registered one first (packet kinds before CS).
    pub(crate) fn best_registration(&self) -> Option<(RegKind, &Registration)> {
        let order = [
            RegKind::C5greg,
            RegKind::Cereg,
            RegKind::Cgreg,
            RegKind::Creg,
        ];
        let known = || {
            order
                .iter()
                .filter_map(|k| self.regs[reg_index(*k)].as_ref().map(|r| (*k, r)))
        };
        known()
            .find(|(_, r)| r.status.registered())
            .or_else(|| known().next())
    }

    /// Denied: nothing registered, and every packet registration known (or, with none, the
    /// CS one) says denied.
    pub(crate) fn denied(&self) -> Option<(RegKind, Registration)> {
        let order = [
            RegKind::C5greg,
            RegKind::Cereg,
            RegKind::Cgreg,
            RegKind::Creg,
        ];
        let known: Vec<(RegKind, &Registration)> = order
            .iter()
            .filter_map(|k| self.regs[reg_index(*k)].as_ref().map(|r| (*k, r)))
            .collect();
        if known.iter().any(|(_, r)| r.status.registered()) {
            return None;
        }
        let packet: Vec<_> = known.iter().filter(|(k, _)| k.packet()).collect();
        let judged: Vec<_> = if packet.is_empty() {
            known.iter().collect()
        } else {
            packet
        };
        if !judged.is_empty() && judged.iter().all(|(_, r)| r.status == RegStatus::Denied) {
            judged.first().map(|(k, r)| (*k, (*r).clone()))
        } else {
            None
        }
    }

    pub(crate) fn progress(&self, now: Instant) -> CellProgress {
        let best = self.best_registration();
        let limit = self.cellular().registration_wait;
        CellProgress::Registration {
            status: best.map(|(k, r)| (k, r.status)),
            act: best
                .and_then(|(_, r)| r.act)
                .or_else(|| self.operator.as_ref().and_then(|o| o.act)),
            signal: self.signal,
            operator: self.operator.as_ref().and_then(|o| o.name.clone()),
            waited: self
                .wait_start
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s)),
            limit,
        }
    }

    pub(crate) fn emit_progress(&mut self, now: Instant, force: bool) {
        let p = self.progress(now);
        let same = |a: &CellProgress, b: &CellProgress| match (a, b) {
            (
                CellProgress::Registration {
                    status: s1,
                    act: a1,
                    signal: g1,
                    operator: o1,
                    ..
                },
                CellProgress::Registration {
                    status: s2,
                    act: a2,
                    signal: g2,
                    operator: o2,
                    ..
                },
            ) => s1 == s2 && a1 == a2 && g1 == g2 && o1 == o2,
            _ => false,
        };
        if force || !self.last_progress.as_ref().is_some_and(|l| same(l, &p)) {
            self.log(now, TranscriptKind::Info, p.to_string());
            self.events.push_back(ChatEvent::Cellular(p.clone()));
            self.last_progress = Some(p);
        }
    }
}
