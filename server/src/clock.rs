//! One clock type per layer, converted only here, by name: tokio, the drivers and the link
//! manager use `std::time::Instant`; nat-core counts milliseconds (`nat_core::Instant`) and
//! the link scheduler nanoseconds (`masqdial_sched::Instant`) since an [`Epoch`] their owner
//! takes when it starts. Owns these conversions; must not keep time itself (callers pass
//! `now`) nor be imported by the sans-IO crates (they know only their own clock).

use std::time::Duration;

/// The zero of a sans-IO clock: the `std` instant its owner (the data plane's NAT handle, a
/// session's egress queue, the ingress shaper) was made.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(std::time::Instant);

impl Epoch {
    /// An epoch at this instant.
    #[must_use]
    pub fn now() -> Self {
        Self(std::time::Instant::now())
    }

    /// `at` on nat-core's clock (whole milliseconds since the epoch; 0 before it).
    #[must_use]
    pub fn to_nat(self, at: std::time::Instant) -> nat_core::Instant {
        let ms = at.saturating_duration_since(self.0).as_millis();
        nat_core::Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Now on nat-core's clock.
    #[must_use]
    pub fn nat_now(self) -> nat_core::Instant {
        self.to_nat(std::time::Instant::now())
    }

    /// `at` on the link scheduler's clock (nanoseconds since the epoch; 0 before it).
    #[must_use]
    pub fn to_sched(self, at: std::time::Instant) -> masqdial_sched::Instant {
        masqdial_sched::Instant::from_elapsed(at.saturating_duration_since(self.0))
    }

    /// Now on the link scheduler's clock.
    #[must_use]
    pub fn sched_now(self) -> masqdial_sched::Instant {
        self.to_sched(std::time::Instant::now())
    }

    /// A link scheduler instant as a `std` instant (to sleep until it).
    #[must_use]
    pub fn from_sched(self, t: masqdial_sched::Instant) -> std::time::Instant {
        self.0 + Duration::from_nanos(t.as_nanos())
    }
}

/// A reading of a manual test clock (whole milliseconds) on nat-core's clock.
#[must_use]
pub fn nat_millis(ms: u64) -> nat_core::Instant {
    nat_core::Instant::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_at_their_resolution() {
        let e = Epoch::now();
        let later = e.0 + Duration::from_micros(2_500_700);
        assert_eq!(e.to_nat(later).as_millis(), 2_500);
        assert_eq!(e.from_sched(e.to_sched(later)), later);
        // Before the epoch: its zero, never a panic.
        let before = e.0.checked_sub(Duration::from_secs(1)).unwrap_or(e.0);
        assert_eq!(e.to_nat(before).as_millis(), 0);
        assert_eq!(e.to_sched(before).as_nanos(), 0);
    }
}
