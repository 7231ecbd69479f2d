//! What the chat tells its caller: events, failures, cellular progress and transcript lines.
//! Owns these value types and their wording; must not hold chat state.

use std::fmt;
use std::time::Duration;

use crate::cell::{self, RegKind, RegStatus, Signal, SimState};

/// Why a dial attempt or the whole chat failed. The cause the modem gave (`+CME ERROR: 10
/// (SIM not inserted)`) is in the failure's message and in [`Chat::failure_cause`](crate::Chat::failure_cause).
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
