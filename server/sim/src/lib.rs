//! `masqdial-sim`: simulation for tests, the `mock-modem` program and `mserver --demo` — a Hayes
//! modem on a pseudo-terminal, an ISP (PPP access server) behind it, and a simulated internet.
//! Owns nothing the production gateway needs: `mserver` links it only through the `demo` cargo
//! feature of `masqdial-server`.
//!
//! # Layout
//! - [`modem`]: the mock modem (sans-IO AT command set and data mode), and [`modem::pty`] which
//!   serves it on a pseudo-terminal.
//! - [`isp`]: the mock ISP: a [`masqdial_ppp`] access server with an address pool, answering
//!   ping/UDP from a tiny simulated internet.
//! - [`internet`]: bridges the mock ISP to a real TUN device (root; the e2e tests and the
//!   root demo).
//! - [`wan`]: the "internet" servers behind that TUN (TCP/UDP echo, a deterministic blob
//!   server) and [`ftp`], a small FTP server and client; run by the e2e tests' `wan-servers`
//!   and by the root demo in its WAN namespace.
//! - [`blob`]: the seeded byte stream those transfers are checked against.

pub mod blob;
pub mod ftp;
pub mod internet;
pub mod isp;
pub mod modem;
pub mod wan;
