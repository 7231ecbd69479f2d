//! `masqdial-sched`: the link scheduler that sits between nat-core and the PPP writer. Pure
//! library: no I/O, no clock reads (callers pass `now`), no packet parsing (callers classify and
//! implement [`Packet`]).
//!
//! On an 11.5 KB/s dial-up link one 1500-byte packet takes 130 ms to serialise, so every packet
//! queued in front of a keystroke costs a visible delay. The scheduler keeps the queue where it
//! can be managed and decides what goes next:
//!
//! - **fairness per LAN host, then per flow** inside a host (two-level deficit round robin, CAKE's
//!   "dual-srchost" idea): a host with one flow and a host with ten flows each get about half;
//! - **sparse-flow priority** at both levels (fq_codel's new/old lists, RFC 8290 §4.2): a host or
//!   flow that was idle is served before the backlogged ones, so DNS, ssh keystrokes and ping
//!   jump the bulk transfers;
//! - **CoDel** on each flow's sojourn time (RFC 8289), with target and interval derived from the
//!   link rate the way CAKE does (at 115200 baud: 195 ms / 391 ms), marking ECN-capable packets
//!   CE instead of dropping them (RFC 3168);
//! - a **total byte limit**; on overflow the head of the fattest flow of the fattest host is
//!   dropped (fq_codel drops from the fattest flow);
//! - an optional **shaper** (a virtual clock at a fraction of the link rate) for the download
//!   direction, CAKE's ingress mode: [`Scheduler::dequeue`] returns `None` until the next send
//!   time, which [`Scheduler::poll_timeout`] reports.
//!
//! Everything is sized in bytes and time, not packets.
//!
//! # Layout
//! - [`config`]: [`Config`], the derived [`Params`] and [`ConfigError`].
//! - [`sched`]: the [`Scheduler`] itself (host and flow lists, DRR, overflow, shaper).
//! - [`pacer`]: the [`LinePacer`], which tells the PPP writer when the serial line can take
//!   the next packet (so no hidden FIFO forms below the scheduler).
//! - `codel`: the per-flow CoDel controller.
//! - [`stats`]: [`Stats`] snapshots, the sojourn [`Histogram`] and [`HostShare`]s.
//! - [`time`]: the caller's monotonic [`Instant`] in nanoseconds.
//!
//! # Driving it
//! ```
//! use masqdial_sched::{Class, Config, Instant, Packet, Scheduler};
//! use std::net::Ipv4Addr;
//!
//! struct Pkt(Vec<u8>);
//! impl Packet for Pkt {
//!     fn len(&self) -> usize { self.0.len() }
//!     fn is_ect(&self) -> bool { false }
//!     fn mark_ce(&mut self) {}
//! }
//!
//! let mut s = Scheduler::new(Config::for_baud(115_200)).expect("valid config");
//! let class = Class { host: Ipv4Addr::new(192, 168, 1, 10), flow: 7 };
//! s.enqueue(Instant::ZERO, Pkt(vec![0; 60]), class);
//! // When the serial line can take more:
//! let next = s.dequeue(Instant::from_millis(1));
//! assert_eq!(next.map(|p| p.len()), Some(60));
//! ```

pub mod config;
pub mod pacer;
pub mod sched;
pub mod stats;
pub mod time;

mod codel;

pub use config::{Config, ConfigError, Discipline, Params};
pub use pacer::LinePacer;
pub use sched::{Class, Enqueued, Scheduler};
pub use stats::{Histogram, HostShare, Stats};
pub use time::Instant;

/// What the scheduler needs to know about a packet. The caller implements it over its own
/// buffer type (the gateway over an IPv4 datagram, using nat-core's wire views).
pub trait Packet {
    /// Length in bytes (the IP datagram's length; the configured per-packet overhead is added
    /// on top).
    fn len(&self) -> usize;

    /// Whether the packet is empty (zero length).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the packet is ECN-capable (ECT(0) or ECT(1), RFC 3168 §5), so CoDel may mark it
    /// instead of dropping it.
    fn is_ect(&self) -> bool;

    /// Set the ECN field to CE (11). Called only when [`Packet::is_ect`] is true; the
    /// implementation updates the IPv4 header checksum.
    fn mark_ce(&mut self);
}
