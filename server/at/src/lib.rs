//! AT command chat with a modem: init strings, SIM check, PDP context, registration wait,
//! dialling with redial, result codes (V.250, 27.007 `+CME ERROR`, vendor finals), login
//! script (sans-IO). Owns the chat state and its transcript; must not open ports or read the clock.
//!
//! Call order (quinn-proto style): feed [`Chat::handle_input`](crate::Chat::handle_input) / [`Chat::handle_timeout`](crate::Chat::handle_timeout), then drain
//! [`Chat::poll_transmit`](crate::Chat::poll_transmit) and [`Chat::poll_event`](crate::Chat::poll_event), then sleep until [`Chat::poll_timeout`](crate::Chat::poll_timeout).
//! Once [`Chat::is_ready`](crate::Chat::is_ready) the line belongs to PPP: take the bytes that followed the CONNECT line (or
//! the last login prompt) with [`Chat::take_remaining`](crate::Chat::take_remaining).
//!
//! Depends on std only, so it builds and is fuzzed without the server.

pub mod cell;
pub mod config;
mod dial;
pub mod errors;
pub mod events;
mod exchange;
pub mod result;

use std::collections::VecDeque;
use std::time::Instant;

use cell::{RegKind, Registration, Signal};
pub use result::{ErrorValue, ResultCode};

pub use config::{CellularDial, ChatConfig, LoginStep, RedialPolicy};
pub use events::{CellProgress, ChatEvent, ChatFailure, TranscriptKind, TranscriptLine};

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
/// [`ChatConfig::settle`](crate::ChatConfig::settle) and sets aside further result codes (all recorded in the
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
    /// Lines ever written to the transcript (the oldest are dropped past its bound).
    logged: u64,
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
            logged: 0,
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

    /// When [`Chat::handle_timeout`](crate::Chat::handle_timeout) must be called next.
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
    /// Empty unless [`Chat::is_ready`](crate::Chat::is_ready).
    pub fn take_remaining(&mut self) -> Vec<u8> {
        if self.state == State::Ready {
            std::mem::take(&mut self.rx)
        } else {
            Vec::new()
        }
    }

    /// Why the chat gave up, once [`Chat::is_failed`](crate::Chat::is_failed).
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

    /// How many lines were ever written to the transcript: a reader that saw `n` of them
    /// finds the newer ones as the last `transcript_logged() - n` lines of [`Chat::transcript`]
    /// (fewer if the bound dropped some unread).
    #[must_use]
    pub fn transcript_logged(&self) -> u64 {
        self.logged
    }

    /// Adds a note to the transcript (used by the modem driver for hang-up steps).
    pub fn note(&mut self, now: Instant, kind: TranscriptKind, text: impl Into<String>) {
        self.log(now, kind, text.into());
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
