//! Link manager: one state machine per configured connection, holders, redial, idle timer.
//!
//! [`fsm`] is the pure per-connection automaton; the [`manager`] drives it with modem
//! sessions and tells the data plane "up"/"down" through its uplink. Must not touch
//! nat-core, packets or protobuf, nor import metrics (scrape reads it from above).

pub mod budget;
pub mod events;
pub mod fsm;
pub mod labels;
pub mod manager;
pub mod refused;

pub use fsm::{
    DialOutcome, Failure, FailureKind, HangupOutcome, Holder, LinkAction, LinkFsm, LinkPolicy,
    LinkState, SessionReport,
};
