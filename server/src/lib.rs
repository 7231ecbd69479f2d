//! `masqdial-server`: the gateway behind `mserver`.
//!
//! # Layout
//! - [`cli`]: `mserver`'s command line (also rendered into its man page).
//! - [`config`]: TOML configuration, validated with file/line/key errors.
//! - [`auth`]: users (argon2 PHC), roles, tokens, LAN allow-list, login throttling.
//! - [`rpc`]: thin tonic services; authenticate, authorize, translate, map errors.
//! - [`server`]: lifecycle of `mserver` (serve, SIGHUP reload, graceful shutdown).
//! - [`setup`]: `mserver init`, `check-config` and `gen-cert`.
//! - [`demo`]: the built-in `mserver --demo` configuration.
//! - [`at`]: AT command chat with a modem (sans-IO).
//! - [`ppp`]: userspace PPP — HDLC, LCP, PAP/CHAP, IPCP (sans-IO, both roles).
//! - [`metrics`]: Prometheus text endpoint (`[server] metrics_listen`) and counters.
//! - [`notify`]: systemd readiness and status (sd_notify).
//! - [`modem`]: the only code that opens a serial port.
//! - [`sim`]: mock modem and mock ISP (tests and `mserver --demo`).
//! - [`link`]: link manager, one state machine per configured connection.
//! - [`dataplane`]: TUN ⇄ nat-core ⇄ PPP.

pub mod at;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dataplane;
pub mod demo;
pub mod gateway;
pub mod link;
pub mod metrics;
pub mod modem;
pub mod notify;
pub mod ppp;
pub mod rpc;
pub mod server;
pub mod setup;
pub mod sim;
