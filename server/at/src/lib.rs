//! AT command chat with a modem: init strings, SIM check, PDP context, registration wait,
//! dialling with redial, result codes (V.250, 27.007 `+CME ERROR`, vendor finals), login
//! script (sans-IO). Owns the chat state and its transcript; must not open ports or read the clock.
//!
//! Call order (quinn-proto style): feed [`Chat::handle_input`] / [`Chat::handle_timeout`], then drain
//! [`Chat::poll_transmit`] and [`Chat::poll_event`], then sleep until [`Chat::poll_timeout`].
//! Once [`Chat::is_ready`] the line belongs to PPP: take the bytes that followed the CONNECT line (or
//! the last login prompt) with [`Chat::take_remaining`].
//!
//! Depends on std only, so it builds and is fuzzed without the server.

pub mod cell;
pub mod errors;
pub mod result;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use cell::{RegKind, RegStatus, Registration, Signal, SimState};
pub use result::{ErrorValue, ResultCode};

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

/// Cellular steps of a dial plan (3GPP TS 27.007): SIM check, registration wait, attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellularDial {
    /// SIM PIN, entered once when `+CPIN?` says `SIM PIN`. Never sent for a PUK, never sent
    /// again after the SIM refused it (a second wrong PIN would use up another try).
    pub sim_pin: Option<String>,
    /// Longest wait for registration (home or roaming) before dialling; zero = no wait.
    pub registration_wait: Duration,
    /// Time between two registration polls (`+CREG?`, `+CGREG?`, `+CEREG?`, `+CSQ`, `+COPS?`).
    pub poll_interval: Duration,
}

impl Default for CellularDial {
    fn default() -> Self {
        CellularDial {
            sim_pin: None,
            registration_wait: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
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
    /// Cellular checks before dialling (SIM, registration wait, attach); `None` for a plain
    /// dial-up modem.
    pub cellular: Option<CellularDial>,
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
    /// After a command's final result, how long further result codes (a second `OK` after
    /// `ATZ`, `NO CARRIER` then `OK` after `ATH`) are read and set aside before the next
    /// command goes out. Zero: the next command goes out at once.
    pub settle: Duration,
    /// Redial policy.
    pub redial: RedialPolicy,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            init: vec!["ATZ".into(), "AT&F E0 V1".into()],
            apn: None,
            cellular: None,
            dial_prefix: "ATDT".into(),
            numbers: Vec::new(),
            login: Vec::new(),
            command_timeout: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(60),
            settle: Duration::from_millis(150),
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

    /// A cellular plan: SIM check, `AT+CGDCONT=1,"IP","<apn>"`, wait for registration
    /// (60 s at most), then `ATD*99#`.
    #[must_use]
    pub fn cellular(apn: &str) -> Self {
        ChatConfig {
            apn: Some(apn.to_string()),
            cellular: Some(CellularDial::default()),
            dial_prefix: "ATD".into(),
            numbers: vec!["*99#".into()],
            ..ChatConfig::default()
        }
    }
}

/// Why a dial attempt or the whole chat failed. The cause the modem gave (`+CME ERROR: 10
/// (SIM not inserted)`) is in the failure's message and in [`Chat::failure_cause`].
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
    /// `ERROR`, `+CME ERROR`, `+CMS ERROR` or a vendor error to a command, an unexpected
    /// result, a SIM that needs a PIN/PUK, or registration denied.
    Error,
    /// A step did not complete in time (includes a silent modem and no registration).
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

/// What the cellular checks saw (progress while waiting for the network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellProgress {
    /// `+CPIN?` answered.
    Sim(SimState),
    /// The configured PIN was sent (once).
    PinSent,
    /// The SIM refused the configured PIN; it is not sent again (the caller should not
    /// send it again either: every wrong PIN uses up one of the SIM's tries).
    PinRefused {
        /// The modem's answer, with its named cause.
        cause: String,
    },
    /// A registration poll: not registered yet (`registered` false) or registered.
    Registration {
        /// Best registration known, and which query reported it.
        status: Option<(RegKind, RegStatus)>,
        /// Access technology, if known.
        act: Option<u8>,
        /// `+CSQ`.
        signal: Option<Signal>,
        /// `+COPS?` operator name.
        operator: Option<String>,
        /// Time waited so far.
        waited: Duration,
        /// The wait's bound.
        limit: Duration,
    },
    /// Packet-switched attach requested (`AT+CGATT=1`).
    Attaching,
}

impl fmt::Display for CellProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CellProgress::Sim(s) => write!(f, "SIM: {}", s.describe()),
            CellProgress::PinSent => f.write_str("SIM PIN sent"),
            CellProgress::PinRefused { cause } => {
                write!(f, "the SIM refused the configured PIN ({cause})")
            }
            CellProgress::Registration {
                status,
                act,
                signal,
                operator,
                waited,
                limit,
            } => {
                match status {
                    Some((_, s)) if s.registered() => write!(f, "registered: {}", s.name())?,
                    Some((_, s)) => write!(f, "waiting for registration: {}", s.name())?,
                    None => f.write_str("waiting for registration: no answer yet")?,
                }
                if let Some(a) = act {
                    write!(f, " ({})", cell::act_name(*a))?;
                }
                match signal.and_then(|s| s.dbm().map(|d| (d, s.bars()))) {
                    Some((d, b)) => write!(f, ", signal {d} dBm ({b}/4)")?,
                    None if signal.is_some() => f.write_str(", no signal")?,
                    None => {}
                }
                if let Some(o) = operator {
                    write!(f, ", operator {o}")?;
                }
                write!(f, "; {} s of {} s", waited.as_secs(), limit.as_secs())
            }
            CellProgress::Attaching => f.write_str("attaching to the packet domain (AT+CGATT=1)"),
        }
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
    /// A cellular check (SIM, registration wait, attach).
    Cellular(CellProgress),
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
        /// Human-readable explanation, with the modem's named cause when it gave one.
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

/// A command the chat sends in command state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    /// Init command `idx` of the modem's list.
    Init(usize),
    /// `AT+CPIN?` before anything cellular.
    Cpin,
    /// `AT+CPIN="<pin>"`.
    EnterPin,
    /// `AT+CPIN?` after the PIN.
    CpinAgain,
    /// `AT+CGDCONT=1,"IP","<apn>"`.
    Pdp,
    /// One query of a registration poll round.
    Poll(Poll),
    /// `AT+CGATT?`.
    AttachQuery,
    /// `AT+CGATT=1`.
    Attach,
}

/// The queries of one registration poll round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    Reg(RegKind),
    Csq,
    Cops,
}

const POLLS: [Poll; 5] = [
    Poll::Reg(RegKind::Creg),
    Poll::Reg(RegKind::Cgreg),
    Poll::Reg(RegKind::Cereg),
    Poll::Csq,
    Poll::Cops,
];

/// What follows once a command is done (after the settle window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Cmd(Cmd),
    Dial,
    /// Judge the registration poll round just finished.
    RoundDone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the final result of `cmd`; `echo` once its echo was seen.
    Command { cmd: Cmd, echo: bool },
    /// A command is done; extra result codes are read and set aside until the deadline.
    Settle { after: Cmd, next: Next },
    /// Waiting for the next registration poll round.
    RegWait,
    /// Waiting before dialling.
    DialDelay,
    /// Dial command sent, waiting for CONNECT; `echo` once its echo was seen.
    Dialing { echo: bool },
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
/// Most information lines kept for one command.
const MAX_INFO: usize = 64;

/// The AT chat state machine (sans-IO).
///
/// Line discipline: a result line is only ever taken as the answer to the command just sent.
/// Sending a command discards whatever was buffered; with echo on, result codes that come
/// before the command's echo are stale and set aside; after a final result the chat waits
/// [`ChatConfig::settle`] and sets aside further result codes (all recorded in the
/// transcript) before the next command.
#[derive(Debug)]
pub struct Chat {
    config: ChatConfig,
    start: Instant,
    state: State,
    deadline: Option<Instant>,
    rx: Vec<u8>,
    /// Skip one LF that follows a CR ending the CONNECT line.
    skip_lf: bool,
    last_sent: String,
    /// Whether the modem echoes commands (`None`: not known yet).
    echo: Option<bool>,
    /// Information lines of the current command.
    info: Vec<String>,
    /// Result codes set aside as stale for the current command.
    stale: usize,
    number_idx: usize,
    round: u32,
    last_fail: Option<(ChatFailure, String)>,
    tx: VecDeque<Vec<u8>>,
    events: VecDeque<ChatEvent>,
    transcript: VecDeque<TranscriptLine>,
    connect: Option<(Option<u32>, Option<String>)>,
    failed: Option<ChatFailure>,
    cause: Option<ResultCode>,
    /// Registration as last reported, per kind (index of [`RegKind::ALL`]).
    regs: [Option<Registration>; 4],
    signal: Option<Signal>,
    operator: Option<cell::Operator>,
    /// Poll queries the modem answered with an error (not asked again).
    unsupported: Vec<Poll>,
    wait_start: Option<Instant>,
    last_progress: Option<CellProgress>,
}

fn reg_index(k: RegKind) -> usize {
    RegKind::ALL.iter().position(|x| *x == k).unwrap_or(0)
}

/// Echo setting after the basic commands of `cmd` ran (`E0`/`E1` set it, `Z` and `&F`
/// restore a profile we cannot see).
fn echo_after(cmd: &str, before: Option<bool>) -> Option<bool> {
    let u: Vec<u8> = cmd
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let Some(b) = u.strip_prefix(b"AT") else {
        return before;
    };
    let digits = |i: usize| {
        b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut echo = before;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' | b'*' | b'^' | b'$' | b'!' | b'%' | b'#' => {
                // Extended command: runs to the next ';'.
                while i < b.len() && b[i] != b';' {
                    i += 1;
                }
                i += 1;
            }
            b'D' | b'A' | b'O' => break,
            b'&' => {
                if b.get(i + 1) == Some(&b'F') {
                    echo = None;
                }
                i += 2;
                i += digits(i);
            }
            b'Z' => {
                echo = None;
                i += 1;
                i += digits(i);
            }
            b'E' => {
                i += 1;
                let n = digits(i);
                echo = Some(n > 0 && b[i..i + n].iter().any(|d| *d != b'0'));
                i += n;
            }
            b'S' => {
                i += 1;
                i += digits(i);
                if b.get(i) == Some(&b'=') {
                    i += 1;
                    i += digits(i);
                } else if b.get(i) == Some(&b'?') {
                    i += 1;
                }
            }
            _ => {
                i += 1;
                i += digits(i);
            }
        }
    }
    echo
}

impl Chat {
    /// Creates the chat and queues the first command (or the dial, without commands).
    #[must_use]
    pub fn new(config: ChatConfig, now: Instant) -> Self {
        let mut chat = Chat {
            config,
            start: now,
            state: State::Failed,
            deadline: None,
            rx: Vec::new(),
            skip_lf: false,
            last_sent: String::new(),
            echo: None,
            info: Vec::new(),
            stale: 0,
            number_idx: 0,
            round: 1,
            last_fail: None,
            tx: VecDeque::new(),
            events: VecDeque::new(),
            transcript: VecDeque::new(),
            connect: None,
            failed: None,
            cause: None,
            regs: [None, None, None, None],
            signal: None,
            operator: None,
            unsupported: Vec::new(),
            wait_start: None,
            last_progress: None,
        };
        if chat.config.numbers.is_empty() {
            chat.fail(now, ChatFailure::Error, "no phone number configured".into());
        } else {
            let first = if chat.config.init.is_empty() {
                chat.after_init()
            } else {
                Next::Cmd(Cmd::Init(0))
            };
            chat.run_next(now, first);
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
                _ => {
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
            State::Command { cmd, .. } => {
                let stale = if self.stale > 0 {
                    format!(
                        " ({} result code(s) that came before its echo were set aside)",
                        self.stale
                    )
                } else {
                    String::new()
                };
                let text = self.command_shown(cmd);
                let limit = self.command_limit(cmd);
                self.fail(
                    now,
                    ChatFailure::Timeout,
                    format!(
                        "modem did not answer `{text}` within {} ms{stale}",
                        limit.as_millis()
                    ),
                );
            }
            State::Settle { next, .. } => self.run_next(now, next),
            State::RegWait => {
                let first = self.next_poll(None);
                self.run_next(now, first);
            }
            State::DialDelay => self.dial(now),
            State::Dialing { .. } => {
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

    /// The modem's final result that made the chat give up, if one did (`+CME ERROR: 10`,
    /// `ERROR`, `COMMAND NOT SUPPORT`, …); its [`ResultCode::cause`] names it.
    #[must_use]
    pub fn failure_cause(&self) -> Option<&ResultCode> {
        self.cause.as_ref()
    }

    /// The CONNECT speed and extras, once connected.
    #[must_use]
    pub fn connect_info(&self) -> Option<(Option<u32>, Option<String>)> {
        self.connect.clone()
    }

    /// The latest registration the chat saw of `kind` (cellular plans).
    #[must_use]
    pub fn registration(&self, kind: RegKind) -> Option<&Registration> {
        self.regs[reg_index(kind)].as_ref()
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
    }

    fn send_line(&mut self, now: Instant, text: &str, shown: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(b'\r');
        self.tx.push_back(bytes);
        self.last_sent = text.to_string();
        self.log(now, TranscriptKind::Send, shown.to_string());
    }

    /// Drops everything buffered before a command goes out: it cannot be its answer.
    fn discard_stale(&mut self, now: Instant) {
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

    fn command_text(&self, cmd: Cmd) -> String {
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
    fn command_shown(&self, cmd: Cmd) -> String {
        match cmd {
            Cmd::EnterPin => "AT+CPIN=********".into(),
            _ => self.command_text(cmd),
        }
    }

    fn command_limit(&self, cmd: Cmd) -> Duration {
        match cmd {
            // Attaching can take as long as registering.
            Cmd::Attach => self
                .cellular()
                .registration_wait
                .max(self.config.command_timeout),
            _ => self.config.command_timeout,
        }
    }

    fn cellular(&self) -> CellularDial {
        self.config.cellular.clone().unwrap_or_default()
    }

    fn send_command(&mut self, now: Instant, cmd: Cmd) {
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

    fn dial(&mut self, now: Instant) {
        self.discard_stale(now);
        let number = self.config.numbers[self.number_idx].clone();
        self.events.push_back(ChatEvent::Dialing {
            number: number.clone(),
            index: self.number_idx + 1,
            count: self.config.numbers.len(),
            attempt: self.round,
            attempts: self.config.redial.attempts,
        });
        let line = format!("{}{}", self.config.dial_prefix, number);
        self.send_line(now, &line, &line);
        self.stale = 0;
        self.state = State::Dialing { echo: false };
        self.deadline = Some(now + self.config.dial_timeout);
    }

    fn fail(&mut self, now: Instant, kind: ChatFailure, message: String) {
        self.log(now, TranscriptKind::Error, message.clone());
        self.events.push_back(ChatEvent::Failed { kind, message });
        self.failed = Some(kind);
        self.state = State::Failed;
        self.deadline = None;
    }

    fn fail_with(&mut self, now: Instant, code: ResultCode, message: String) {
        self.cause = Some(code);
        self.fail(now, ChatFailure::Error, message);
    }

    /// The echo of the command just sent (possibly behind a stale fragment that arrived
    /// just before it), or any command line.
    fn is_echo(&self, line: &str) -> bool {
        let l = line.trim().to_ascii_uppercase();
        let sent = self.last_sent.trim().to_ascii_uppercase();
        (!sent.is_empty() && l.ends_with(&sent)) || l.starts_with("AT")
    }

    /// After the init commands: the SIM check (cellular), else the PDP context / dial.
    fn after_init(&self) -> Next {
        if self.config.cellular.is_some() {
            Next::Cmd(Cmd::Cpin)
        } else {
            self.after_sim()
        }
    }

    fn after_sim(&self) -> Next {
        if self.config.apn.is_some() {
            Next::Cmd(Cmd::Pdp)
        } else {
            self.after_pdp()
        }
    }

    fn after_pdp(&self) -> Next {
        match &self.config.cellular {
            Some(c) if !c.registration_wait.is_zero() => self.next_poll(None),
            Some(_) => Next::Cmd(Cmd::AttachQuery),
            None => Next::Dial,
        }
    }

    /// The poll query after `done` (or the first of a round), skipping unsupported ones.
    fn next_poll(&self, done: Option<Poll>) -> Next {
        let from = done
            .and_then(|d| POLLS.iter().position(|p| *p == d))
            .map_or(0, |i| i + 1);
        POLLS[from.min(POLLS.len())..]
            .iter()
            .find(|p| !self.unsupported.contains(p))
            .map_or(Next::RoundDone, |p| Next::Cmd(Cmd::Poll(*p)))
    }

    /// Goes on to `next`, after the settle window if there is one.
    fn proceed(&mut self, now: Instant, after: Cmd, next: Next) {
        if self.config.settle.is_zero() {
            self.run_next(now, next);
        } else {
            self.state = State::Settle { after, next };
            self.deadline = Some(now + self.config.settle);
        }
    }

    fn run_next(&mut self, now: Instant, next: Next) {
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

    fn handle_line(&mut self, now: Instant, line: &str) {
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
                self.dial_final(now, code);
            }
            State::Login { .. } | State::Ready | State::Failed => {}
        }
    }

    fn set_aside(&mut self, now: Instant, code: &ResultCode, when: &str, cmd: Cmd) {
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
    fn information(&mut self, now: Instant, text: &str) {
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

    fn command_final(&mut self, now: Instant, cmd: Cmd, echo: bool, code: ResultCode) {
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

    fn command_ok(&mut self, now: Instant, cmd: Cmd) {
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
    fn sim_next(&mut self, now: Instant, cmd: Cmd, sim: Option<SimState>) -> Option<Next> {
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

    fn command_error(&mut self, now: Instant, cmd: Cmd, code: ResultCode) {
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
    fn best_registration(&self) -> Option<(RegKind, &Registration)> {
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
    fn denied(&self) -> Option<(RegKind, Registration)> {
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

    fn progress(&self, now: Instant) -> CellProgress {
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

    fn emit_progress(&mut self, now: Instant, force: bool) {
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

    /// A registration poll round is over (or a URC came while waiting): dial, fail or wait.
    fn round_done(&mut self, now: Instant) {
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

    fn dial_final(&mut self, now: Instant, code: ResultCode) {
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
