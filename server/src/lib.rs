//! `masqdial-server`: the gateway behind `mserver`.
//!
//! # Layout
//! - [`cli`]: `mserver`'s command line (also rendered into its man page).
//! - [`config`]: TOML configuration, validated with file/line/key errors.
//! - [`activity`]: activity filters (which packets dial on demand or count as activity).
//! - [`budget`]: budget value types and pure logic (quotas, windows, time zones), below
//!   config, persist and the link manager.
//! - [`phc`]: the argon2 PHC format check shared by config validation and login.
//! - [`auth`]: users (argon2 PHC), roles, tokens, LAN allow-list, login throttling.
//! - [`rpc`]: thin tonic services, one per protobuf service; authenticate, authorize,
//!   translate (the only place protobuf appears), map errors.
//! - [`server`]: process lifecycle (bind, serve, SIGHUP reload, signals).
//! - [`daemon`]: the composition root — builds and wires everything below.
//! - [`shutdown`]: the one stop signal and the tracker that joins every task.
//! - [`persist`]: the state directory (saved rules and timeouts).
//! - [`nat_control`]: rule edits, timeouts, views, counters and the masquerade feed.
//! - [`setup`]: `mserver init`, `check-config` and `gen-cert`.
//! - [`memory`]: allocator settings applied at start (large blocks go back to the system).
//! - [`counters`]: process-wide event counters and the Prometheus text encoder (a leaf).
//! - [`scrape`]: the metrics sources (links, NAT engine) and the systemd status line, wired by
//!   the composition root.
//! - [`metrics`]: the Prometheus text endpoint (`[server] metrics_listen`) and the RPC layer.
//! - [`web`]: the web page (`[web] listen`) and the metrics endpoint on axum: same users,
//!   sessions, allow-list and domain handles as [`rpc`], no protobuf.
//! - [`notify`]: systemd readiness and status (sd_notify).
//! - `demo` (cargo feature `demo`, default on): the built-in `mserver --demo` configuration and
//!   its simulated world; the only user of `masqdial-sim` in the server.
//! - [`modem`]: the only code that opens a serial port.
//! - [`link`]: link manager, one state machine per configured connection; domain events.
//! - [`linkq`]: the link queue below both the modem driver and the data plane: classify,
//!   schedule, pace, fragment to the link MTU.
//! - [`dataplane`]: TUN ⇄ nat-core ⇄ PPP, and the data plane's side of link up/down.
//!
//! # Crates beside this one (in `server/`)
//! - `masqdial-ppp` (`server/ppp`): userspace PPP — HDLC, LCP, PAP/CHAP, IPCP (sans-IO, both
//!   sides); std + md-5 only.
//! - `masqdial-at` (`server/at`): AT command chat with a modem and result codes (sans-IO); std
//!   only.
//! - `masqdial-sim` (`server/sim`): mock modem, mock ISP and simulated internet, for tests and
//!   `mserver --demo`; never in a build without the `demo` feature.

pub mod activity;
pub mod auth;
pub mod budget;
pub mod cli;
pub mod clock;
pub mod config;
pub mod counters;
pub mod daemon;
pub mod dataplane;
#[cfg(feature = "demo")]
pub mod demo;
pub mod link;
pub mod linkq;
pub mod memory;
pub mod metrics;
pub mod modem;
pub mod nat_control;
pub mod notify;
pub mod persist;
pub mod phc;
pub mod privdrop;
pub mod rpc;
pub mod scrape;
pub mod server;
pub mod setup;
pub mod shutdown;
pub mod web;
