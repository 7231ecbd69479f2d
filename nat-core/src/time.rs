//! Caller-supplied monotonic time for nat-core. Owns the `Instant`/`Duration` types; must never
//! read a clock.

use std::ops::{Add, Sub};

/// A point on the caller's monotonic clock, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's zero.
    pub const ZERO: Instant = Instant(0);
    /// From milliseconds since the caller's epoch.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms)
    }
    /// From seconds since the caller's epoch.
    pub const fn from_secs(s: u64) -> Instant {
        Instant(s.saturating_mul(1000))
    }
    /// Milliseconds since the caller's epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

/// A span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration(0);
    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms)
    }
    /// From seconds.
    pub const fn from_secs(s: u64) -> Duration {
        Duration(s.saturating_mul(1000))
    }
    /// Milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// Whole seconds.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Duration {
        Duration(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> std::time::Duration {
        std::time::Duration::from_millis(d.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        let t = Instant::from_millis(1500) + Duration::from_secs(2);
        assert_eq!(t.as_millis(), 3500);
        assert_eq!(
            t.saturating_duration_since(Instant::from_secs(1))
                .as_millis(),
            2500
        );
        assert_eq!(Instant::ZERO.saturating_duration_since(t), Duration::ZERO);
    }
}
