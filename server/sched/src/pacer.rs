//! The line pacer: estimates what still sits below the PPP writer (tty output queue, UART, a
//! modem's buffer) and says when the writer may take the next packet from the scheduler. Owns
//! that estimate; must not choose packets.
//!
//! The estimate is a virtual clock: every byte written keeps the line busy for one byte time
//! (10 bits at the line's baud rate for 8N1). Where the driver can read the real output queue
//! (`TIOCOUTQ` on a serial port; a pseudo-terminal always reports 0), it calls
//! [`LinePacer::observe_queue`] and the estimate follows the kernel's figure instead, so a modem
//! that drains slower than the serial port (hardware flow control at a lower connect speed)
//! is followed too.

use std::time::Duration;

use crate::Instant;

/// Paces writes to a serial line so that at most about one packet waits below the writer.
#[derive(Debug, Clone)]
pub struct LinePacer {
    rate: u64,
    allowance: Duration,
    busy_until: Instant,
}

impl LinePacer {
    /// A pacer for a line draining `rate` bytes per second (at least 1). The writer may hand
    /// down the next packet once the line's estimated backlog drains within `allowance` (a few
    /// milliseconds, so the line never idles for a timer's lateness).
    pub fn new(rate: u64, allowance: Duration) -> Self {
        Self {
            rate: rate.max(1),
            allowance,
            busy_until: Instant::ZERO,
        }
    }

    /// A pacer for an 8N1 line at `baud` (10 bits per byte).
    pub fn for_baud(baud: u32, allowance: Duration) -> Self {
        Self::new(u64::from(baud) / 10, allowance)
    }

    /// Bytes per second the pacer assumes.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Change the assumed rate (e.g. the CONNECT speed once known). The current backlog estimate
    /// is kept in time.
    pub fn set_rate(&mut self, rate: u64) {
        self.rate = rate.max(1);
    }

    fn time_of(&self, bytes: u64) -> Duration {
        Duration::from_nanos(
            u64::try_from(u128::from(bytes) * 1_000_000_000 / u128::from(self.rate))
                .unwrap_or(u64::MAX),
        )
    }

    /// `bytes` were written to the line at `now`.
    pub fn on_write(&mut self, now: Instant, bytes: usize) {
        let start = self.busy_until.max(now);
        self.busy_until = start + self.time_of(bytes as u64);
    }

    /// The driver read the line's real output queue: `bytes` not yet sent at `now`.
    pub fn observe_queue(&mut self, now: Instant, bytes: u64) {
        self.busy_until = now + self.time_of(bytes);
    }

    /// Whether the writer may hand down another packet at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.busy_until <= now + self.allowance
    }

    /// When the writer may hand down the next packet (possibly already past).
    pub fn ready_at(&self) -> Instant {
        self.busy_until - self.allowance
    }

    /// Estimated bytes still below the writer at `now`.
    pub fn in_flight(&self, now: Instant) -> u64 {
        let left = self.busy_until.saturating_duration_since(now);
        u64::try_from(left.as_nanos() * u128::from(self.rate) / 1_000_000_000).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_at_the_line_rate_with_allowance() {
        // 115200 baud: 11 520 B/s; 1152 bytes take exactly 100 ms.
        let mut p = LinePacer::for_baud(115_200, Duration::from_millis(5));
        let t0 = Instant::from_millis(1000);
        assert!(p.ready(t0));
        p.on_write(t0, 1152);
        assert_eq!(p.in_flight(t0), 1152);
        assert_eq!(p.ready_at(), Instant::from_millis(1095));
        assert!(!p.ready(Instant::from_millis(1094)));
        assert!(p.ready(Instant::from_millis(1095)));
        assert_eq!(p.in_flight(Instant::from_millis(1050)), 576);
        // Written 5 ms early: the line stays busy back to back.
        p.on_write(Instant::from_millis(1095), 1152);
        assert_eq!(p.ready_at(), Instant::from_millis(1195));
        // After an idle gap, the clock restarts from the write.
        p.on_write(Instant::from_millis(5000), 576);
        assert_eq!(p.ready_at(), Instant::from_millis(5045));
        assert_eq!(p.in_flight(Instant::from_millis(6000)), 0);
    }

    #[test]
    fn observed_queue_overrides_the_estimate() {
        let mut p = LinePacer::for_baud(115_200, Duration::ZERO);
        let t0 = Instant::from_millis(0);
        p.on_write(t0, 1152);
        // The kernel says 2304 bytes are still queued 50 ms later (the modem drains slower).
        p.observe_queue(Instant::from_millis(50), 2304);
        assert_eq!(p.ready_at(), Instant::from_millis(250));
        p.observe_queue(Instant::from_millis(60), 0);
        assert!(p.ready(Instant::from_millis(60)));
    }
}
