//! The `-l` log: `Packet log:` lines (2.2 `dump_packet` format, see
//! [`crate::chains::log_line`]) queued for the caller to write, rate-limited like
//! the kernel's `net_ratelimit()` (a burst of 10 lines per 5 s) and counted. Owns the queue
//! and the limiter; must not write anything itself (sans-IO).

use std::collections::VecDeque;

use crate::time::{Duration, Instant};

/// Lines allowed per window.
pub const BURST: u32 = 10;
/// The rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(5);
/// Lines kept until the caller drains them.
const QUEUE: usize = 64;

/// Queued `Packet log:` lines and their counters.
#[derive(Debug, Clone, Default)]
pub struct PacketLog {
    queue: VecDeque<String>,
    window_start: Option<Instant>,
    in_window: u32,
    logged: u64,
    suppressed: u64,
}

impl PacketLog {
    /// May one more line be written at `now`? Counts the line either way.
    pub fn admit(&mut self, now: Instant) -> bool {
        let fresh = self
            .window_start
            .is_none_or(|s| now.saturating_duration_since(s) >= WINDOW);
        if fresh {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= BURST || self.queue.len() >= QUEUE {
            self.suppressed += 1;
            return false;
        }
        self.in_window += 1;
        self.logged += 1;
        true
    }

    /// Queue an admitted line.
    pub fn push(&mut self, line: String) {
        self.queue.push_back(line);
    }

    /// Whether lines wait to be written.
    pub fn pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Take the queued lines.
    pub fn drain(&mut self) -> Vec<String> {
        self.queue.drain(..).collect()
    }

    /// Lines admitted so far.
    pub fn logged(&self) -> u64 {
        self.logged
    }

    /// Lines suppressed by the rate limit so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_suppressed_until_the_window_ends() {
        let mut l = PacketLog::default();
        let t0 = Instant::from_secs(100);
        let admitted = (0..25).filter(|_| l.admit(t0)).count();
        assert_eq!(admitted, 10);
        assert_eq!((l.logged(), l.suppressed()), (10, 15));
        assert!(!l.admit(t0 + Duration::from_millis(4999)));
        assert!(l.admit(t0 + WINDOW));
        assert_eq!((l.logged(), l.suppressed()), (11, 16));
    }
}
