//! mtui: live ratatui dashboard of masqdial links and masqueraded sessions.
//!
//! Layout (STYLE.md, ratatui apps):
//! - [`event`]: the one event enum (keys, mouse, ticks, resizes, server updates, login
//!   requests) and the commands the app emits.
//! - [`app`]: dashboard state and `handle_event`: focus, scrolling, pickers, confirmations,
//!   the details view and the login form; no drawing, no I/O, no clock reads.
//! - [`layout`]: the screen's geometry as values (panels, areas, content rows, column hits);
//!   a leaf under both the app and the renderer.
//! - [`table`]: the masquerade table model (deltas, sort, filter, cached ordered view).
//! - [`ui`]: the pure `layout(&app, area)` (handed to the app as a `Geometry` by the event loop,
//!   for page sizes and clicks) and `render(frame, &app)`, one function per panel or overlay.
//! - [`net`]: the gRPC task (token, login on request, subscriptions, reconnect with backoff,
//!   commands), reporting errors as plain phrases.
//!
//! Connection, bearer token, the token store and the unit formatters (`format::bytes`,
//! `format::duration`) come from the shared `masqdial_cli` library, so mtui and mclient agree.
//!
//! The binary (`src/main.rs`) owns the terminal and the single event loop.

pub mod app;
pub mod cli;
pub mod event;
pub mod keys;
pub mod layout;
pub mod net;
pub mod table;
pub mod ui;
