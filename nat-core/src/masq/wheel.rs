//! Lazy timing wheel for masquerade expiry. Owns scheduling records only; the table decides what
//! a due record means. O(1) to schedule; refreshing an entry to a later deadline costs nothing
//! (the record is re-scheduled when it comes due).

use crate::time::Instant;

/// Wheel granularity in milliseconds.
pub const TICK_MS: u64 = 100;
const SLOTS: usize = 8192;
/// Records (or empty slots / 16) processed per `handle_timeout` call at most.
pub const BUDGET: u32 = 512;

pub(crate) struct Wheel {
    slots: Vec<Vec<u32>>,
    /// Next tick to process.
    cursor: u64,
    started: bool,
    draining: Vec<u32>,
    drain_pos: usize,
    draining_tick: u64,
    pending: u64,
}

impl Wheel {
    pub fn new() -> Wheel {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
            started: false,
            draining: Vec::new(),
            drain_pos: 0,
            draining_tick: u64::MAX,
            pending: 0,
        }
    }

    fn tick_of(at: Instant) -> u64 {
        at.as_millis().div_ceil(TICK_MS)
    }

    /// Schedule record `idx` for `at`; returns the tick tag to store in the entry.
    pub fn schedule(&mut self, idx: u32, at: Instant, now: Instant) -> u32 {
        let mut t = Self::tick_of(at);
        if !self.started {
            self.started = true;
            self.cursor = now.as_millis() / TICK_MS;
        }
        if t < self.cursor {
            t = self.cursor;
        }
        // Stay within one rotation; a far deadline is re-scheduled when its record comes due.
        let max = self.cursor + SLOTS as u64 - 1;
        if t > max {
            t = max;
        }
        if t == self.draining_tick {
            self.draining.push(idx);
        } else {
            self.slots[(t % SLOTS as u64) as usize].push(idx);
        }
        self.pending += 1;
        t as u32
    }

    /// Would a deadline `at` be earlier than the tick `sched` already recorded?
    #[inline]
    pub fn is_earlier(&self, at: Instant, sched: u32) -> bool {
        (Self::tick_of(at) as u32) < sched
    }

    pub fn is_idle(&self) -> bool {
        self.pending == 0
    }

    /// The instant of the next tick to process.
    pub fn next_due(&self) -> Instant {
        if self.draining_tick != u64::MAX {
            return Instant::from_millis(self.draining_tick * TICK_MS);
        }
        Instant::from_millis(self.cursor * TICK_MS)
    }

    /// Next due record (index, tick tag), spending budget; None when nothing more is due now or
    /// the budget is spent.
    pub fn next_record(&mut self, now: Instant, budget: &mut u32) -> Option<(u32, u32)> {
        let now_tick = now.as_millis() / TICK_MS;
        let mut empty_steps = 0u32;
        loop {
            if *budget == 0 {
                return None;
            }
            if self.draining_tick != u64::MAX {
                if self.drain_pos < self.draining.len() {
                    let i = self.draining[self.drain_pos];
                    self.drain_pos += 1;
                    *budget -= 1;
                    self.pending = self.pending.saturating_sub(1);
                    return Some((i, self.draining_tick as u32));
                }
                // Slot finished: give the (emptied) buffer back to the slot to keep capacity.
                self.draining.clear();
                self.drain_pos = 0;
                let s = (self.draining_tick % SLOTS as u64) as usize;
                if self.slots[s].is_empty() {
                    std::mem::swap(&mut self.slots[s], &mut self.draining);
                }
                self.draining_tick = u64::MAX;
                self.cursor += 1;
                continue;
            }
            if !self.started || self.cursor > now_tick || self.pending == 0 {
                if self.pending == 0 && self.started && self.cursor <= now_tick {
                    self.cursor = now_tick + 1;
                }
                return None;
            }
            let s = (self.cursor % SLOTS as u64) as usize;
            if self.slots[s].is_empty() {
                self.cursor += 1;
                empty_steps += 1;
                if empty_steps.is_multiple_of(16) {
                    *budget -= 1;
                }
                continue;
            }
            std::mem::swap(&mut self.slots[s], &mut self.draining);
            self.drain_pos = 0;
            self.draining_tick = self.cursor;
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.capacity() * 4 + 24)
            .sum::<usize>()
            + self.draining.capacity() * 4
    }
}
