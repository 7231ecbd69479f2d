//! `nat-core`: the masquerading engine. Pure library: no I/O, no clock reads (callers pass `now`).
//!
//! # Layout
//! - [`wire`]: zero-copy IPv4/TCP/UDP/ICMP views and checksums (RFC 1071/1624).
//! - [`time`]: the caller's monotonic [`Instant`] in milliseconds.
//! - [`frag`]: IPv4 reassembly (always-defragment before rules and masquerading).
//! - [`mtu`]: datagrams larger than the link MTU: fragmentation (RFC 791) and ICMP
//!   Frag-Needed (RFC 1191).
//! - [`icmp_error`]: the ICMP errors the engine replies with (RFC 1812 quoting).
//! - [`chains`]: ipchains rules, matching and listings.
//! - [`masq`]: the masquerade table and packet translation; [`helpers`]: its application
//!   helpers (registry and FTP).
//! - [`rwnd`]: receive-window clamping of LAN hosts' ACKs to the link's bandwidth-delay product.

pub mod chains;
pub mod engine;
pub mod frag;
pub mod helpers;
pub mod icmp_error;
pub mod masq;
pub mod mss;
pub mod mtu;
pub mod pktlog;
pub mod portfw;
pub mod redirect;
pub mod rwnd;
pub mod time;
pub mod views;
pub mod wire;

pub use engine::{Action, DropReason, Engine, EngineConfig};
pub use time::{Duration, Instant};
