//! The one event type the main loop feeds to [`crate::app::App::handle_event`], and the
//! commands the app hands back.
//!
//! Plain data only: no I/O, no drawing. Server data arrives already decoded from protobuf and
//! stamped with the monotonic time it was received, so the app never reads a clock.

use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use masqdial_proto::v1::{
    Chain, Connection, DialEvent, FreePortsResponse, LinkStatus, MasqDelta, MasqEntry, Role,
    TrafficSample,
};

/// Everything that can change the dashboard.
// A few events per second pass through one channel; boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Event {
    /// A key press from the terminal.
    Key(KeyEvent),
    /// Periodic tick: countdowns and lights move.
    Tick,
    /// The terminal was resized.
    Resize,
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
    /// The server went away (or refused us); everything shown so far is dropped.
    Disconnected {
        /// Why, for the status line and the log.
        reason: String,
        /// When the next attempt is made.
        retry_in: Duration,
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
}
