//! mtui: live ratatui dashboard of masqdial links and masqueraded sessions.
//!
//! Layout (STYLE.md, ratatui apps):
//! - [`event`]: the one event enum (keys, ticks, server updates) and the commands the app emits.
//! - [`app`]: dashboard state and `handle_event`; no drawing, no I/O, no clock reads.
//! - [`table`]: the masquerade table model (deltas, sort, filter, cached ordered view).
//! - [`ui`]: pure `render(frame, &app)`, one function per panel.
//! - [`net`]: the gRPC task (login token, subscriptions, reconnect with backoff, commands).
//!
//! Connection, bearer token and the token store come from the shared `masqdial_cli` library.
//!
//! The binary (`src/main.rs`) owns the terminal and the single event loop.

pub mod app;
pub mod event;
pub mod net;
pub mod table;
pub mod ui;
