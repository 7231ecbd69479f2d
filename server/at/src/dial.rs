//! Dialling, redial rounds and the login script after CONNECT. Part of [`Chat`]; must not
//! send commands other than the dial (`exchange`).

use std::time::Instant;

use crate::*;

impl Chat {
    pub(crate) fn dial(&mut self, now: Instant) {
        self.discard_stale(now);
        let number = self.config.numbers[self.number_idx].clone();
        self.events.push_back(ChatEvent::Dialing {
            number: number.clone(),
            index: self.number_idx + 1,
            count: self.config.numbers.len(),
            attempt: self.round,
            attempts: self.config.redial.attempts,
        });
        // The note comes before the command it describes.
        let of = match self.config.redial.attempts {
            0 => String::new(),
            n => format!(" of {n}"),
        };
        self.log(
            now,
            TranscriptKind::Info,
            format!(
                "dialling {number} (number {} of {}, attempt {}{of})",
                self.number_idx + 1,
                self.config.numbers.len(),
                self.round,
            ),
        );
        let line = format!("{}{}", self.config.dial_prefix, number);
        self.send_line(now, &line, &line);
        self.stale = 0;
        self.state = State::Dialing { echo: false };
        self.deadline = Some(now + self.config.dial_timeout);
    }
    /// A registration poll round is over (or a URC came while waiting): dial, fail or wait.
    pub(crate) fn round_done(&mut self, now: Instant) {
        let reg_queries = POLLS
            .iter()
            .filter(|p| matches!(p, Poll::Reg(_)) && !self.unsupported.contains(p))
            .count();
        if self
            .best_registration()
            .is_some_and(|(_, r)| r.status.registered())
        {
            self.emit_progress(now, true);
            self.run_next(now, Next::Cmd(Cmd::AttachQuery));
            return;
        }
        if let Some((kind, reg)) = self.denied() {
            self.emit_progress(now, false);
            let reject = reg
                .reject
                .map(|(t, c)| format!(", reject cause {c} (type {t})"))
                .unwrap_or_default();
            self.fail(
                now,
                ChatFailure::Error,
                format!(
                    "the network denied registration ({}: {}{reject}): check the SIM's \
                     subscription and the operator selection",
                    kind.prefix(),
                    reg.status.code()
                ),
            );
            return;
        }
        if reg_queries == 0 && self.regs.iter().all(Option::is_none) {
            self.log(
                now,
                TranscriptKind::Info,
                "the modem answers no registration query: dialling without waiting".into(),
            );
            self.run_next(now, Next::Cmd(Cmd::AttachQuery));
            return;
        }
        self.emit_progress(now, false);
        let limit = self.cellular().registration_wait;
        let start = self.wait_start.unwrap_or(now);
        let end = start + limit;
        if now >= end {
            let p = self.progress(now);
            self.fail(
                now,
                ChatFailure::Timeout,
                format!(
                    "not registered with the network after {} s: {p}",
                    limit.as_secs()
                ),
            );
            return;
        }
        self.state = State::RegWait;
        self.deadline = Some((now + self.cellular().poll_interval).min(end));
    }

    pub(crate) fn dial_final(&mut self, now: Instant, code: ResultCode) {
        match code {
            ResultCode::Connect { speed, extras } => {
                self.connect = Some((speed, extras.clone()));
                self.events
                    .push_back(ChatEvent::Connected { speed, extras });
                self.deadline = None;
                if self.config.login.is_empty() {
                    self.become_ready(now);
                } else {
                    self.start_login_step(now, 0);
                }
            }
            ResultCode::Busy => self.attempt_failed(now, ChatFailure::Busy, "BUSY".into()),
            ResultCode::NoAnswer => {
                self.attempt_failed(now, ChatFailure::NoAnswer, "NO ANSWER".into());
            }
            ResultCode::NoCarrier => {
                self.attempt_failed(now, ChatFailure::NoCarrier, "NO CARRIER".into());
            }
            ResultCode::NoDialtone => {
                self.fail(
                    now,
                    ChatFailure::NoDialtone,
                    "NO DIALTONE: check the phone line".into(),
                );
            }
            other => {
                let number = self.config.numbers[self.number_idx].clone();
                let cause = other.cause();
                self.fail_with(
                    now,
                    other,
                    format!("modem answered {cause} to dialling {number}"),
                );
            }
        }
    }

    pub(crate) fn attempt_failed(&mut self, now: Instant, kind: ChatFailure, why: String) {
        let number = self.config.numbers[self.number_idx].clone();
        self.last_fail = Some((kind, why.clone()));
        let (next_idx, next_round, after) = if self.number_idx + 1 < self.config.numbers.len() {
            (
                self.number_idx + 1,
                self.round,
                self.config.redial.next_number_delay,
            )
        } else {
            (0, self.round + 1, self.config.redial.round_delay)
        };
        let attempts = self.config.redial.attempts;
        if attempts != 0 && next_round > attempts {
            self.fail(
                now,
                kind,
                format!(
                    "{why} from {number}; all {} number(s) tried {attempts} time(s)",
                    self.config.numbers.len()
                ),
            );
            return;
        }
        let next_number = self.config.numbers[next_idx].clone();
        self.log(
            now,
            TranscriptKind::Info,
            format!(
                "{why} from {number}; dialling {next_number} in {} ms",
                after.as_millis()
            ),
        );
        self.events.push_back(ChatEvent::Redial {
            kind,
            number,
            next_number,
            next_attempt: next_round,
            after,
        });
        self.number_idx = next_idx;
        self.round = next_round;
        self.state = State::DialDelay;
        self.deadline = Some(now + after);
    }

    pub(crate) fn start_login_step(&mut self, now: Instant, idx: usize) {
        self.state = State::Login { idx };
        self.deadline = self.config.login.get(idx).map(|s| now + s.timeout);
    }

    pub(crate) fn become_ready(&mut self, now: Instant) {
        self.state = State::Ready;
        self.deadline = None;
        self.log(now, TranscriptKind::Info, "line handed to PPP".into());
        self.events.push_back(ChatEvent::Ready);
    }

    /// Looks for the expect text of login step `idx`; true if the state advanced.
    pub(crate) fn process_login(&mut self, now: Instant, idx: usize) -> bool {
        let Some(step) = self.config.login.get(idx).cloned() else {
            self.become_ready(now);
            return true;
        };
        let text = String::from_utf8_lossy(&self.rx).into_owned();
        if has_line(&text, "NO CARRIER") {
            self.rx.clear();
            self.fail(
                now,
                ChatFailure::NoCarrier,
                format!("carrier lost during login step {}", idx + 1),
            );
            return false;
        }
        let end = if step.expect.is_empty() {
            Some(0)
        } else {
            text.find(&step.expect).map(|p| p + step.expect.len())
        };
        let Some(end) = end else {
            return false;
        };
        // `end` is a byte offset into the lossy string; map it back conservatively.
        let consumed = byte_offset_for(&self.rx, end);
        let seen: Vec<u8> = self.rx.drain(..consumed).collect();
        let seen = String::from_utf8_lossy(&seen).trim().to_string();
        if !seen.is_empty() {
            self.log(now, TranscriptKind::Recv, seen);
        }
        let shown = if step.secret {
            "********".to_string()
        } else {
            step.send.clone()
        };
        self.send_line(now, &step.send, &shown);
        self.events.push_back(ChatEvent::LoginStep {
            step: idx + 1,
            count: self.config.login.len(),
        });
        if idx + 1 < self.config.login.len() {
            self.start_login_step(now, idx + 1);
        } else {
            self.become_ready(now);
        }
        true
    }
}
