//! The link manager's domain vocabulary: the events it broadcasts (dial progress, link
//! changes, traffic samples) and the read-only views it answers with (link status, modem
//! state, transcript, negotiated PPP options). Plain data; the rpc layer translates these
//! to protobuf, nothing here knows about the wire.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use super::fsm::{Failure, Holder, LinkState};
use masqdial_at::TranscriptKind;
use masqdial_ppp::{AuthProtocol, NegotiatedOptions, PppStats};

/// One step of a dial, as watchers see it.
#[derive(Debug, Clone, PartialEq)]
pub enum DialStep {
    /// The modem is being initialised.
    ModemInit {
        /// Modem name.
        modem: String,
        /// Serial device.
        device: String,
    },
    /// Dialling a number.
    Dialing {
        /// The number.
        number: String,
        /// 1-based index among the connection's numbers.
        index: usize,
        /// How many numbers there are.
        count: usize,
        /// The how-manyth dial of this request (1-based, across numbers, rounds and the
        /// redials after a loss).
        attempt: u32,
        /// Dials the plan makes (numbers × rounds; 0 = unlimited).
        attempts: u32,
    },
    /// The modem answered CONNECT.
    Connected {
        /// Line speed in bit/s (0 if not reported).
        speed_bps: u32,
        /// Text after the speed (`/V42BIS`).
        extras: String,
    },
    /// LCP opened.
    LcpUp {
        /// The peer's MRU.
        peer_mru: u16,
        /// Authentication the peer asked for.
        auth: Option<AuthProtocol>,
        /// Everything negotiated so far, both directions, with the refused options.
        options: Box<NegotiatedOptions>,
    },
    /// Authentication succeeded (`None`: no authentication was asked).
    AuthOk(Option<AuthProtocol>),
    /// IPCP opened.
    IpcpUp {
        /// Our address.
        local: Ipv4Addr,
        /// Peer address.
        peer: Ipv4Addr,
        /// DNS servers offered.
        dns: Vec<Ipv4Addr>,
        /// Everything negotiated, both directions, with the refused options.
        options: Box<NegotiatedOptions>,
    },
    /// A redial is scheduled (an `Info` step before it says what the modem answered).
    Redial {
        /// The next dial's `attempt` (see [`DialStep::Dialing`]).
        next_attempt: u32,
        /// Delay before it.
        delay: Duration,
    },
    /// Free text (a transcript note).
    Info(String),
    /// The link is up (final).
    Up(LinkStatus),
    /// The dial failed (final).
    Failed(Failure),
}

impl DialStep {
    /// True for the steps that end a dial (`Up`, `Failed`).
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Up(_) | Self::Failed(_))
    }
}

/// A dial step with its wall-clock time.
#[derive(Debug, Clone, PartialEq)]
pub struct DialEvent {
    /// When it happened.
    pub at: SystemTime,
    /// What happened.
    pub step: DialStep,
}

/// Traffic of one link over one sample period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSample {
    /// Connection name.
    pub connection: String,
    /// IPv4 bytes received in the period.
    pub bytes_in: u64,
    /// IPv4 bytes sent in the period.
    pub bytes_out: u64,
    /// IPv4 packets received in the period.
    pub packets_in: u64,
    /// IPv4 packets sent in the period.
    pub packets_out: u64,
    /// Length of the period.
    pub period: Duration,
}

/// What changed on some link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkChange {
    /// A link changed state (its full status after the change).
    State(LinkStatus),
    /// A traffic sample of an up link.
    Sample(TrafficSample),
    /// Dial progress of a connection.
    Progress {
        /// Connection name.
        connection: String,
        /// The step.
        event: DialEvent,
    },
    /// A budget warning ahead of a forced hang-up, or the hang-up.
    Budget {
        /// Connection name.
        connection: String,
        /// What the budget said.
        notice: crate::budget::Notice,
    },
}

/// A link change with its wall-clock time.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkEvent {
    /// When it happened.
    pub at: SystemTime,
    /// What changed.
    pub change: LinkChange,
}

/// Status of one link. Addresses and `connected_since` are set only while it is up.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkStatus {
    /// Connection name.
    pub connection: String,
    /// State.
    pub state: LinkState,
    /// Modem in use (or last used).
    pub modem: String,
    /// Line speed in bit/s.
    pub speed_bps: u32,
    /// Our address while up.
    pub local: Option<Ipv4Addr>,
    /// Peer address while up.
    pub peer: Option<Ipv4Addr>,
    /// DNS servers while up.
    pub dns: Vec<Ipv4Addr>,
    /// Since when it is up.
    pub connected_since: Option<SystemTime>,
    /// IPv4 bytes received by the session.
    pub bytes_in: u64,
    /// IPv4 bytes sent by the session.
    pub bytes_out: u64,
    /// IPv4 packets received by the session.
    pub packets_in: u64,
    /// IPv4 packets sent by the session.
    pub packets_out: u64,
    /// Users holding the link.
    pub holders: Vec<Holder>,
    /// Why the last attempt failed.
    pub last_failure: Option<Failure>,
    /// Seconds without traffic (while up).
    pub idle_seconds: u32,
    /// The queues in front of the link (while a session runs).
    pub queues: Option<Box<crate::linkq::LinkQueues>>,
    /// The connection's budget, if it has one.
    pub budget: Option<Box<crate::budget::BudgetView>>,
}

/// One line of a connection's dial transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptEntry {
    /// When.
    pub at: SystemTime,
    /// Direction or kind.
    pub kind: TranscriptKind,
    /// The text (secrets already masked by the chat).
    pub text: String,
}

/// Negotiated PPP options of the current or last session, with its frame counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppDetails {
    /// The options.
    pub options: NegotiatedOptions,
    /// Frame counters.
    pub stats: PppStats,
}

/// What the manager knows about a modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModemState {
    /// Free.
    Idle,
    /// Used by a connection.
    Busy,
    /// Could not be opened.
    Absent,
    /// Last use ended with a serial error.
    Error,
}

/// One modem as the manager tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemView {
    /// Modem name.
    pub name: String,
    /// Serial device.
    pub device: String,
    /// Baud rate.
    pub baud: u32,
    /// State.
    pub state: ModemState,
    /// Connection using it.
    pub connection: Option<String>,
    /// Last open/serial error.
    pub last_error: Option<String>,
    /// Whether modem control lines were seen.
    pub modem_lines: bool,
    /// Cellular status from the last poll (cellular modems only).
    pub cellular: Option<CellView>,
    /// Absent modems: when the next re-probe is due.
    pub next_probe: Option<SystemTime>,
    /// Absent modems: probes failed since it went absent.
    pub failed_probes: u32,
}

/// A cellular modem's status as the last poll found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellView {
    /// What the modem answered (last successful poll).
    pub status: masqdial_at::cell::CellStatus,
    /// When it was polled (successfully).
    pub at: Option<SystemTime>,
    /// Why the last poll failed, if it did.
    pub error: Option<String>,
}
