//! `masqdial-server`: the gateway behind `mserver`.
//!
//! # Layout
//! - [`config`]: TOML configuration, validated with file/line/key errors.
//! - [`auth`]: users (argon2 PHC), roles, tokens, LAN allow-list, login throttling.
//! - [`rpc`]: thin tonic services; authenticate, authorize, translate, map errors.
//! - [`server`]: lifecycle of `mserver` (serve, SIGHUP reload, graceful shutdown).
//! - `demo` (cargo feature `demo`, default on): the built-in `mserver --demo` configuration and
//!   its simulated world; the only user of `masqdial-sim` in the server.
//! - [`modem`]: the only code that opens a serial port.
//! - [`link`]: link manager, one state machine per configured connection.
//! - [`dataplane`]: TUN ⇄ nat-core ⇄ PPP.
//!
//! # Crates beside this one (in `server/`)
//! - `masqdial-ppp` (`server/ppp`): userspace PPP — HDLC, LCP, PAP/CHAP, IPCP (sans-IO, both
//!   sides); std + md-5 only.
//! - `masqdial-at` (`server/at`): AT command chat with a modem and result codes (sans-IO); std
//!   only.
//! - `masqdial-sim` (`server/sim`): mock modem, mock ISP and simulated internet, for tests and
//!   `mserver --demo`; never in a build without the `demo` feature.

pub mod auth;
pub mod config;
pub mod dataplane;
#[cfg(feature = "demo")]
pub mod demo;
pub mod gateway;
pub mod link;
pub mod modem;
pub mod rpc;
pub mod server;
