//! AT command chat with a modem: init strings, PDP context, dialling with redial, result codes, login
//! script (sans-IO). Owns the chat state and its transcript; must not open ports or read the clock.
//!
//! Call order (quinn-proto style): feed [`Chat::handle_input`] / [`Chat::handle_timeout`], then drain
//! [`Chat::poll_transmit`] and [`Chat::poll_event`], then sleep until [`Chat::poll_timeout`].
//! Once [`Chat::is_ready`] the line belongs to PPP: take the bytes that followed the CONNECT line (or
//! the last login prompt) with [`Chat::take_remaining`].
//!
//! Depends on std only, so it builds and is fuzzed without the server.

pub mod cell;
pub mod result;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

pub use result::ResultCode;

/// One expect/send pair of a login script (chat(8) style) run after CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStep {
    /// Text to wait for (substring of what the far end sends, e.g. `ogin:`); empty = do not wait.
    pub expect: String,
    /// Text to send after it (a CR is appended).
    pub send: String,
    /// True for passwords: the transcript shows `********` instead.
    pub secret: bool,
    /// How long to wait for `expect`.
    pub timeout: Duration,
}

/// Redial policy of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedialPolicy {
    /// Rounds through the number list (1 = each number once; 0 = forever, until the caller stops).
    pub attempts: u32,
    /// Delay before dialling the next number of a round (after BUSY / NO ANSWER / NO CARRIER).
    pub next_number_delay: Duration,
    /// Delay before starting the next round.
    pub round_delay: Duration,
}

impl Default for RedialPolicy {
    fn default() -> Self {
        RedialPolicy {
            attempts: 1,
            next_number_delay: Duration::from_secs(3),
            round_delay: Duration::from_secs(30),
        }
    }
}

/// Everything the chat needs: the modem's init strings and the connection's dial plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatConfig {
    /// Per modem: init commands, each expecting `OK` (e.g. `ATZ`, `AT&F E0 V1`).
    pub init: Vec<String>,
    /// Per connection, cellular: the APN; sends `AT+CGDCONT=1,"IP","<apn>"` after init.
    pub apn: Option<String>,
    /// Dial command prefix: `ATDT`, `ATDP` or `ATD`.
    pub dial_prefix: String,
    /// Numbers to try in order (e.g. `5551234`, or `*99#` for cellular).
    pub numbers: Vec<String>,
    /// Optional expect/send login script after CONNECT.
    pub login: Vec<LoginStep>,
    /// Timeout for each init command.
    pub command_timeout: Duration,
    /// Timeout from sending the dial command to CONNECT.
    pub dial_timeout: Duration,
    /// Redial policy.
    pub redial: RedialPolicy,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            init: vec!["ATZ".into(), "AT&F E0 V1".into()],
            apn: None,
            dial_prefix: "ATDT".into(),
            numbers: Vec::new(),
            login: Vec::new(),
            command_timeout: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(60),
            redial: RedialPolicy::default(),
        }
    }
}

impl ChatConfig {
    /// A plain dial-up plan: default init, `ATDT`, these numbers.
    #[must_use]
    pub fn dialup(numbers: &[&str]) -> Self {
        ChatConfig {
            numbers: numbers.iter().map(|s| (*s).to_string()).collect(),
            ..ChatConfig::default()
        }
    }

    /// A cellular plan: `AT+CGDCONT=1,"IP","<apn>"` then `ATD*99#`.
    #[must_use]
    pub fn cellular(apn: &str) -> Self {
        ChatConfig {
            apn: Some(apn.to_string()),
            dial_prefix: "ATD".into(),
            numbers: vec!["*99#".into()],
            ..ChatConfig::default()
        }
    }
}

/// Why a dial attempt or the whole chat failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFailure {
    /// `NO DIALTONE`: the line is dead; not retried.
    NoDialtone,
    /// `BUSY`.
    Busy,
    /// `NO ANSWER`.
    NoAnswer,
    /// `NO CARRIER` (no handshake, or carrier lost during the login script).
    NoCarrier,
    /// `ERROR` to a command, or an unexpected result.
    Error,
    /// A step did not complete in time (includes a silent modem).
    Timeout,
}

impl fmt::Display for ChatFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChatFailure::NoDialtone => "no dialtone",
            ChatFailure::Busy => "busy",
            ChatFailure::NoAnswer => "no answer",
            ChatFailure::NoCarrier => "no carrier",
            ChatFailure::Error => "error",
            ChatFailure::Timeout => "timeout",
        })
    }
}

/// Progress of the chat, one per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// Sending init command `step` of `count` (1-based).
    ModemInit {
        /// The command.
        command: String,
        /// 1-based index.
        step: usize,
        /// Number of init commands (PDP context included).
        count: usize,
    },
    /// Dialling number `index` of `count` (1-based), round `attempt` of `attempts` (0 = unlimited).
    Dialing {
        /// The number.
        number: String,
        /// 1-based index in the list.
        index: usize,
        /// Numbers in the list.
        count: usize,
        /// 1-based round.
        attempt: u32,
        /// Rounds allowed (0 = unlimited).
        attempts: u32,
    },
    /// The modem said CONNECT.
    Connected {
        /// Reported speed, bit/s.
        speed: Option<u32>,
        /// Extras after the speed (`V42BIS`, …).
        extras: Option<String>,
    },
    /// Login script step `step` of `count` completed (expect seen, reply sent).
    LoginStep {
        /// 1-based index.
        step: usize,
        /// Steps in the script.
        count: usize,
    },
    /// A dial attempt failed; the next one starts after `after`.
    Redial {
        /// Why the attempt failed.
        kind: ChatFailure,
        /// The number that failed.
        number: String,
        /// Next number to dial.
        next_number: String,
        /// Next round (1-based).
        next_attempt: u32,
        /// Delay before it.
        after: Duration,
    },
    /// The line belongs to PPP now (CONNECT seen and the login script, if any, done).
    Ready,
    /// The chat gave up.
    Failed {
        /// Why.
        kind: ChatFailure,
        /// Human-readable explanation.
        message: String,
    },
}

/// Direction / kind of a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptKind {
    /// We sent this to the modem.
    Send,
    /// The modem (or far end) sent this line.
    Recv,
    /// A note from the chat.
    Info,
    /// A failure note.
    Error,
}

/// One transcript line for `cinfo`. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptLine {
    /// Time since the chat started.
    pub at: Duration,
    /// Kind.
    pub kind: TranscriptKind,
    /// Text (printable; secrets replaced by `********`).
    pub text: String,
}

impl fmt::Display for TranscriptLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.kind {
            TranscriptKind::Send => "send",
            TranscriptKind::Recv => "recv",
            TranscriptKind::Info => "info",
            TranscriptKind::Error => "error",
        };
        write!(
            f,
            "{:>4}.{:03} {tag:<5} {}",
            self.at.as_secs(),
            self.at.subsec_millis(),
            self.text
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for OK to command `idx` of `commands`.
    Command { idx: usize },
    /// Waiting before dialling.
    DialDelay,
    /// Dial command sent, waiting for CONNECT.
    Dialing,
    /// Running login step `idx`.
    Login { idx: usize },
    /// Line belongs to PPP.
    Ready,
    /// Gave up.
    Failed,
}

/// Most bytes kept while waiting for a line end or a login prompt.
const MAX_PENDING: usize = 4096;
/// Most transcript lines kept (older lines are dropped).
const MAX_TRANSCRIPT: usize = 512;

/// The AT chat state machine (sans-IO).
#[derive(Debug)]
pub struct Chat {
    config: ChatConfig,
    commands: Vec<String>,
    start: Instant,
    state: State,
    deadline: Option<Instant>,
    rx: Vec<u8>,
    /// Skip one LF that follows a CR ending the CONNECT line.
    skip_lf: bool,
    last_sent: String,
    number_idx: usize,
    round: u32,
    last_fail: Option<(ChatFailure, String)>,
    tx: VecDeque<Vec<u8>>,
    events: VecDeque<ChatEvent>,
    transcript: VecDeque<TranscriptLine>,
    connect: Option<(Option<u32>, Option<String>)>,
    failed: Option<ChatFailure>,
}

impl Chat {
    /// Creates the chat and queues the first init command (or the dial, without init).
    #[must_use]
    pub fn new(config: ChatConfig, now: Instant) -> Self {
        let mut commands = config.init.clone();
        if let Some(apn) = &config.apn {
            commands.push(format!("AT+CGDCONT=1,\"IP\",\"{apn}\""));
        }
        let mut chat = Chat {
            config,
            commands,
            start: now,
            state: State::Failed,
            deadline: None,
            rx: Vec::new(),
            skip_lf: false,
            last_sent: String::new(),
            number_idx: 0,
            round: 1,
            last_fail: None,
            tx: VecDeque::new(),
            events: VecDeque::new(),
            transcript: VecDeque::new(),
            connect: None,
            failed: None,
        };
        if chat.config.numbers.is_empty() {
            chat.fail(now, ChatFailure::Error, "no phone number configured".into());
        } else if chat.commands.is_empty() {
            chat.dial(now);
        } else {
            chat.send_command(now, 0);
        }
        chat
    }

    /// Bytes received from the modem (any chunking).
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.rx.extend_from_slice(bytes);
        if self.skip_lf && matches!(self.state, State::Login { .. } | State::Ready) {
            if let Some(&first) = self.rx.first() {
                if first == b'\n' {
                    self.rx.remove(0);
                }
                self.skip_lf = false;
            }
        }
        loop {
            match self.state {
                State::Ready | State::Failed => return,
                State::Login { idx } => {
                    if !self.process_login(now, idx) {
                        break;
                    }
                }
                State::Command { .. } | State::DialDelay | State::Dialing => {
                    let Some(pos) = self.rx.iter().position(|&b| b == b'\r' || b == b'\n') else {
                        break;
                    };
                    let raw: Vec<u8> = self.rx.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
                    let line = line.trim();
                    if !line.is_empty() {
                        let line = line.to_string();
                        self.handle_line(now, &line);
                        if self.state == State::Ready || matches!(self.state, State::Login { .. }) {
                            // The CONNECT line ended with CR; its LF may follow.
                            if raw.last() == Some(&b'\r') {
                                if self.rx.first() == Some(&b'\n') {
                                    self.rx.remove(0);
                                } else if self.rx.is_empty() {
                                    self.skip_lf = true;
                                }
                            }
                        }
                    }
                }
            }
        }
        if self.rx.len() > MAX_PENDING {
            let excess = self.rx.len() - MAX_PENDING;
            self.rx.drain(..excess);
        }
    }

    /// The next bytes to write to the modem.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    /// When [`Chat::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Acts on an expired step timer (no-op when called early).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        self.deadline = None;
        match self.state {
            State::Command { idx } => {
                let cmd = self.commands.get(idx).cloned().unwrap_or_default();
                self.fail(
                    now,
                    ChatFailure::Timeout,
                    format!(
                        "modem did not answer `{cmd}` within {} ms",
                        self.config.command_timeout.as_millis()
                    ),
                );
            }
            State::DialDelay => self.dial(now),
            State::Dialing => {
                // Any character aborts a dial in progress (V.250 6.3.1).
                self.tx.push_back(b"\r".to_vec());
                self.attempt_failed(
                    now,
                    ChatFailure::Timeout,
                    format!(
                        "no CONNECT within {} s",
                        self.config.dial_timeout.as_secs_f32()
                    ),
                );
            }
            State::Login { idx } => {
                let expect = self
                    .config
                    .login
                    .get(idx)
                    .map(|s| s.expect.clone())
                    .unwrap_or_default();
                self.fail(
                    now,
                    ChatFailure::Timeout,
                    format!("login script step {}: `{expect}` not seen", idx + 1),
                );
            }
            State::Ready | State::Failed => {}
        }
    }

    /// The next progress event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ChatEvent> {
        self.events.pop_front()
    }

    /// True once the line belongs to PPP.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// True once the chat gave up.
    #[must_use]
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Bytes received after the CONNECT line / login script: the start of the PPP stream.
    /// Empty unless [`Chat::is_ready`].
    pub fn take_remaining(&mut self) -> Vec<u8> {
        if self.state == State::Ready {
            std::mem::take(&mut self.rx)
        } else {
            Vec::new()
        }
    }

    /// Why the chat gave up, once [`Chat::is_failed`].
    #[must_use]
    pub fn failure(&self) -> Option<ChatFailure> {
        self.failed
    }

    /// The CONNECT speed and extras, once connected.
    #[must_use]
    pub fn connect_info(&self) -> Option<(Option<u32>, Option<String>)> {
        self.connect.clone()
    }

    /// The transcript so far (oldest first, at most 512 lines).
    pub fn transcript(&self) -> impl Iterator<Item = &TranscriptLine> {
        self.transcript.iter()
    }

    /// Adds a note to the transcript (used by the modem driver for hang-up steps).
    pub fn note(&mut self, now: Instant, kind: TranscriptKind, text: impl Into<String>) {
        self.log(now, kind, text.into());
    }

    fn log(&mut self, now: Instant, kind: TranscriptKind, text: String) {
        if self.transcript.len() >= MAX_TRANSCRIPT {
            self.transcript.pop_front();
        }
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        self.transcript.push_back(TranscriptLine {
            at: now.saturating_duration_since(self.start),
            kind,
            text,
        });
    }

    fn send_line(&mut self, now: Instant, text: &str, secret: bool) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(b'\r');
        self.tx.push_back(bytes);
        self.last_sent = text.to_string();
        let shown = if secret {
            "********".to_string()
        } else {
            text.to_string()
        };
        self.log(now, TranscriptKind::Send, shown);
    }

    fn send_command(&mut self, now: Instant, idx: usize) {
        let cmd = self.commands[idx].clone();
        self.events.push_back(ChatEvent::ModemInit {
            command: cmd.clone(),
            step: idx + 1,
            count: self.commands.len(),
        });
        self.send_line(now, &cmd, false);
        self.state = State::Command { idx };
        self.deadline = Some(now + self.config.command_timeout);
    }

    fn dial(&mut self, now: Instant) {
        let number = self.config.numbers[self.number_idx].clone();
        self.events.push_back(ChatEvent::Dialing {
            number: number.clone(),
            index: self.number_idx + 1,
            count: self.config.numbers.len(),
            attempt: self.round,
            attempts: self.config.redial.attempts,
        });
        let line = format!("{}{}", self.config.dial_prefix, number);
        self.send_line(now, &line, false);
        self.state = State::Dialing;
        self.deadline = Some(now + self.config.dial_timeout);
    }

    fn fail(&mut self, now: Instant, kind: ChatFailure, message: String) {
        self.log(now, TranscriptKind::Error, message.clone());
        self.events.push_back(ChatEvent::Failed { kind, message });
        self.failed = Some(kind);
        self.state = State::Failed;
        self.deadline = None;
    }

    fn is_echo(&self, line: &str) -> bool {
        let l = line.trim();
        l.eq_ignore_ascii_case(self.last_sent.trim())
            || l.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT"))
    }

    fn handle_line(&mut self, now: Instant, line: &str) {
        if self.is_echo(line) {
            return;
        }
        self.log(now, TranscriptKind::Recv, line.to_string());
        let code = ResultCode::parse(line);
        match (self.state, code) {
            (_, ResultCode::Ring | ResultCode::Other(_)) => {}
            (State::Command { idx }, ResultCode::Ok) => {
                if idx + 1 < self.commands.len() {
                    self.send_command(now, idx + 1);
                } else {
                    self.dial(now);
                }
            }
            (State::Command { idx }, ResultCode::Error) => {
                let cmd = self.commands[idx].clone();
                self.fail(
                    now,
                    ChatFailure::Error,
                    format!("modem answered ERROR to `{cmd}`"),
                );
            }
            // Leftovers of a previous call in command state are harmless.
            (State::Command { .. } | State::DialDelay, _) => {}
            (State::Dialing, ResultCode::Connect { speed, extras }) => {
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
            (State::Dialing, ResultCode::Busy) => {
                self.attempt_failed(now, ChatFailure::Busy, "BUSY".into());
            }
            (State::Dialing, ResultCode::NoAnswer) => {
                self.attempt_failed(now, ChatFailure::NoAnswer, "NO ANSWER".into());
            }
            (State::Dialing, ResultCode::NoCarrier) => {
                self.attempt_failed(now, ChatFailure::NoCarrier, "NO CARRIER".into());
            }
            (State::Dialing, ResultCode::NoDialtone) => {
                self.fail(
                    now,
                    ChatFailure::NoDialtone,
                    "NO DIALTONE: check the phone line".into(),
                );
            }
            (State::Dialing, r @ (ResultCode::Error | ResultCode::Ok)) => {
                let number = self.config.numbers[self.number_idx].clone();
                self.fail(
                    now,
                    ChatFailure::Error,
                    format!("modem answered {r} to dialling {number}"),
                );
            }
            (State::Login { .. } | State::Ready | State::Failed, _) => {}
        }
    }

    fn attempt_failed(&mut self, now: Instant, kind: ChatFailure, why: String) {
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

    fn start_login_step(&mut self, now: Instant, idx: usize) {
        self.state = State::Login { idx };
        self.deadline = self.config.login.get(idx).map(|s| now + s.timeout);
    }

    fn become_ready(&mut self, now: Instant) {
        self.state = State::Ready;
        self.deadline = None;
        self.log(now, TranscriptKind::Info, "line handed to PPP".into());
        self.events.push_back(ChatEvent::Ready);
    }

    /// Looks for the expect text of login step `idx`; true if the state advanced.
    fn process_login(&mut self, now: Instant, idx: usize) -> bool {
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
        self.send_line(now, &step.send, step.secret);
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

/// True if `needle` appears as a whole, terminated line of `text`.
fn has_line(text: &str, needle: &str) -> bool {
    text.split_inclusive(['\r', '\n'])
        .any(|line| line.ends_with(['\r', '\n']) && line.trim() == needle)
}

/// Byte count of `raw` whose lossy UTF-8 decoding is `lossy_len` bytes long (never beyond `raw`).
fn byte_offset_for(raw: &[u8], lossy_len: usize) -> usize {
    let mut acc = 0usize;
    let mut used = 0usize;
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            if acc >= lossy_len {
                return used;
            }
            acc += c.len_utf8();
            used += c.len_utf8();
        }
        if !chunk.invalid().is_empty() {
            if acc >= lossy_len {
                return used;
            }
            acc += '\u{FFFD}'.len_utf8();
            used += chunk.invalid().len();
        }
    }
    used.min(raw.len())
}

#[cfg(test)]
mod tests;
