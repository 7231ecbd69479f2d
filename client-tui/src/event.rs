//! The one event type the main loop feeds to [`crate::app::App::handle_event`], and the
//! commands the app hands back.
//!
//! Plain data only: no I/O, no drawing. Server data arrives already decoded from protobuf and
//! stamped with the monotonic time it was received, so the app never reads a clock.

use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, MouseEvent};
use masqdial_proto::v1::{
    Chain, Connection, ConnectionInfo, DialEvent, FreePortsResponse, LinkStatus, MasqDelta,
    MasqEntry, Role, TrafficSample,
};

/// A password typed into the login form. Its `Debug` never shows it; it is only read by the
/// network task to send the Login request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a password.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The password itself (only for the Login request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Append a typed character.
    pub fn push(&mut self, c: char) {
        self.0.push(c);
    }

    /// Remove the last character.
    pub fn pop(&mut self) {
        self.0.pop();
    }

    /// Number of characters (what the masked field shows).
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }

    /// True when nothing was typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything that can change the dashboard.
// A few events per second pass through one channel; boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Event {
    /// A key press from the terminal.
    Key(KeyEvent),
    /// Periodic tick: countdowns and lights move.
    Tick,
    /// A mouse click or wheel turn.
    Mouse(MouseEvent),
    /// The terminal has this size (sent once at start and on every resize).
    Resize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// The network task is (re)connecting; `attempt` counts from 1.
    Connecting {
        /// Attempt number since the last successful connection.
        attempt: u32,
    },
    /// Logged in and subscribed.
    Connected {
        /// User name the server reports.
        user: String,
        /// Role of that user.
        role: Role,
        /// Connections the user may dial.
        allowed: Vec<String>,
    },
    /// The server went away (or cannot be reached); everything shown so far is dropped.
    Disconnected {
        /// Why, a short plain phrase such as "connection refused".
        reason: String,
        /// When the next attempt is made.
        retry_in: Duration,
        /// True when the session had got through (then the server was lost, not unreachable).
        was_connected: bool,
    },
    /// The server needs a password: no token, or the saved one is unknown to it (a restart)
    /// or was refused. The app shows the login form; the answer is [`Command::Login`].
    LoginNeeded {
        /// User name to offer in the form ("" when unknown).
        user: String,
        /// Why, as a plain sentence.
        reason: String,
    },
    /// Data from one of the server's rpcs or streams.
    Server(ServerUpdate),
}

/// Data from the server, decoded.
#[derive(Debug, Clone)]
pub enum ServerUpdate {
    /// ListConnections: the configured connection profiles.
    Connections(Vec<Connection>),
    /// WatchLinks: full state of one link.
    Link(LinkStatus),
    /// WatchLinks: traffic sample of an up link.
    Sample(TrafficSample),
    /// WatchLinks or Dial: one dial step of a connection.
    Progress {
        /// Connection name.
        connection: String,
        /// The step.
        event: DialEvent,
    },
    /// WatchLinks: a budget warning ahead of a forced hang-up, or the hang-up.
    Budget(masqdial_proto::v1::BudgetNotice),
    /// A `-l` rule's `Packet log:` line.
    PacketLog(String),
    /// WatchMasq (re)started: the next batches replace the table.
    MasqReset,
    /// WatchMasq snapshot batch.
    MasqBatch {
        /// Entries of the batch.
        entries: Vec<MasqEntry>,
        /// When it was received (countdowns start here).
        at: Instant,
    },
    /// WatchMasq end of snapshot.
    MasqDone {
        /// Entries the server counted.
        total: u64,
        /// Free ports after the snapshot.
        free: Option<FreePortsResponse>,
    },
    /// WatchMasq changes.
    MasqDelta {
        /// The changes.
        delta: MasqDelta,
        /// When they were received.
        at: Instant,
    },
    /// FreePorts.
    FreePorts(FreePortsResponse),
    /// ListChains.
    Chains(Vec<Chain>),
    /// ListModems (cellular status of the modems).
    Modems(Vec<masqdial_proto::v1::Modem>),
    /// GetConnection (the details view).
    Details(Box<ConnectionInfo>),
    /// Result of our Hangup.
    HangupDone {
        /// Connection name.
        connection: String,
        /// True when the link is going down.
        dropped: bool,
        /// Holders keeping it up otherwise.
        remaining: Vec<String>,
    },
    /// A line for the event log.
    Info(String),
    /// An error line for the event log (failed rpc, refused action).
    Error(String),
}

/// What the app asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Leave the program (restore the terminal).
    Quit,
    /// Dialer.Dial of this connection.
    Dial(String),
    /// Dialer.Hangup; `force` is admin only.
    Hangup {
        /// Connection name.
        name: String,
        /// Drop the link whoever holds it.
        force: bool,
    },
    /// Nat.ZeroCounters of every chain (admin only).
    ZeroCounters,
    /// Dialer.GetConnection for the details view.
    Details(String),
    /// Log in with a password (the answer to [`Event::LoginNeeded`]).
    Login {
        /// User name.
        user: String,
        /// Password (redacted in `Debug`).
        password: Secret,
    },
}
