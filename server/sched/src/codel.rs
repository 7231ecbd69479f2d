//! CoDel (RFC 8289) for one flow's queue. Owns the per-flow controller state and the
//! dequeue-side drop/mark decision; must not know about flows, hosts or scheduling order.
//!
//! Follows the reference pseudocode (RFC 8289 §5 and Linux `codel_impl.h`), with fq_codel's rule
//! that a flow holding at most one full-size packet is never dropped.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::Params;
use crate::{Instant, Packet};

/// A queued packet with its arrival time and its charge (length plus overhead).
#[derive(Debug)]
pub(crate) struct Entry<P> {
    pub(crate) pkt: P,
    pub(crate) enqueued: Instant,
    pub(crate) charge: u64,
}

/// One flow's FIFO and its byte count.
#[derive(Debug)]
pub(crate) struct FlowQueue<P> {
    pub(crate) q: VecDeque<Entry<P>>,
    pub(crate) bytes: u64,
}

impl<P> FlowQueue<P> {
    pub(crate) fn new() -> Self {
        Self {
            q: VecDeque::new(),
            bytes: 0,
        }
    }

    pub(crate) fn push(&mut self, e: Entry<P>) {
        self.bytes += e.charge;
        self.q.push_back(e);
    }

    pub(crate) fn pop(&mut self) -> Option<Entry<P>> {
        let e = self.q.pop_front()?;
        self.bytes -= e.charge;
        Some(e)
    }
}

/// What one CoDel dequeue did besides returning a packet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Packets dropped from the head.
    pub(crate) dropped_packets: u64,
    /// Their charged bytes.
    pub(crate) dropped_bytes: u64,
    /// Packets marked CE instead (the returned one).
    pub(crate) marked: u64,
}

impl Tally {
    fn drop_entry<P>(&mut self, e: Entry<P>) {
        self.dropped_packets += 1;
        self.dropped_bytes += e.charge;
    }
}

/// Controller state of one queue (RFC 8289 §5.1's per-queue variables).
#[derive(Debug, Clone, Default)]
pub(crate) struct Codel {
    /// Drops (or marks) since entering the dropping state.
    count: u32,
    /// `count` when the last dropping state was entered.
    lastcount: u32,
    /// In the dropping state.
    dropping: bool,
    /// When sojourn first stayed above target, plus one interval.
    first_above_time: Option<Instant>,
    /// Next scheduled drop while dropping.
    drop_next: Instant,
}

/// RFC 8289 §5.3 control law: "t + interval / sqrt(count)".
fn control_law(t: Instant, interval: Duration, count: u32) -> Instant {
    let c = f64::from(count.max(1));
    t + Duration::from_secs_f64(interval.as_secs_f64() / c.sqrt())
}

impl Codel {
    /// Whether the head just dequeued ("e") should be dropped; `backlog` is what the flow holds
    /// after it (RFC 8289 §5.4 `dodequeue`).
    fn should_drop<P>(
        &mut self,
        e: Option<&Entry<P>>,
        backlog: u64,
        now: Instant,
        p: &Params,
    ) -> bool {
        let Some(e) = e else {
            self.first_above_time = None;
            return false;
        };
        let sojourn = now.saturating_duration_since(e.enqueued);
        // "if (sojourn_time < TARGET || bytes_in_queue <= MAXPACKET)": below target, or too
        // little queued to be a standing queue.
        if sojourn < p.target || backlog <= p.max_packet {
            self.first_above_time = None;
            return false;
        }
        match self.first_above_time {
            None => {
                self.first_above_time = Some(now + p.interval);
                false
            }
            Some(t) => now >= t,
        }
    }

    /// Dequeue the next packet of `fq`, dropping (or CE-marking, for ECT packets when `p.ecn`)
    /// as the control law says. Drops are added to `tally`.
    pub(crate) fn dequeue<P: Packet>(
        &mut self,
        fq: &mut FlowQueue<P>,
        now: Instant,
        p: &Params,
        tally: &mut Tally,
    ) -> Option<Entry<P>> {
        let mut e = fq.pop();
        let drop = self.should_drop(e.as_ref(), fq.bytes, now, p);
        let mut cur = match e.take() {
            Some(c) => c,
            None => {
                // "if queue is empty, exit the dropping state".
                self.dropping = false;
                return None;
            }
        };
        if self.dropping {
            if !drop {
                // Sojourn fell below target: leave the dropping state.
                self.dropping = false;
            } else {
                // "while now >= drop_next and still dropping: drop, schedule the next".
                while self.dropping && now >= self.drop_next {
                    self.count = self.count.saturating_add(1);
                    if p.ecn && cur.pkt.is_ect() {
                        cur.pkt.mark_ce();
                        tally.marked += 1;
                        self.drop_next = control_law(self.drop_next, p.interval, self.count);
                        return Some(cur);
                    }
                    tally.drop_entry(cur);
                    let next = fq.pop();
                    if !self.should_drop(next.as_ref(), fq.bytes, now, p) {
                        self.dropping = false;
                    } else {
                        self.drop_next = control_law(self.drop_next, p.interval, self.count);
                    }
                    match next {
                        Some(n) => cur = n,
                        None => return None,
                    }
                }
            }
        } else if drop {
            // Enter the dropping state: drop (or mark) this one.
            let out = if p.ecn && cur.pkt.is_ect() {
                cur.pkt.mark_ce();
                tally.marked += 1;
                Some(cur)
            } else {
                tally.drop_entry(cur);
                let next = fq.pop();
                // Recompute first_above_time for the new head, as the reference does.
                let _ = self.should_drop(next.as_ref(), fq.bytes, now, p);
                next
            };
            self.dropping = true;
            // "If min went above target close to when it last went below, assume the drop
            // rate that controlled the queue on the last cycle is a good starting point."
            let delta = self.count.wrapping_sub(self.lastcount);
            self.count =
                if delta > 1 && now.saturating_duration_since(self.drop_next) < p.interval * 16 {
                    delta
                } else {
                    1
                };
            self.lastcount = self.count;
            self.drop_next = control_law(now, p.interval, self.count);
            return out;
        }
        Some(cur)
    }

    /// The flow's queue was found empty: leave the dropping state (RFC 8289 §5.4, "if queue
    /// is empty, exit the dropping state"), as a dequeue from the empty queue would.
    pub(crate) fn on_empty(&mut self) {
        self.first_above_time = None;
        self.dropping = false;
    }

    /// Whether the controller is in its dropping state (for tests).
    #[cfg(test)]
    pub(crate) fn dropping(&self) -> bool {
        self.dropping
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[derive(Debug)]
    struct P {
        ect: bool,
        ce: bool,
    }
    impl Packet for P {
        fn len(&self) -> usize {
            1000
        }
        fn is_ect(&self) -> bool {
            self.ect
        }
        fn mark_ce(&mut self) {
            self.ce = true;
        }
    }

    fn params(ecn: bool) -> Params {
        let mut c = Config::for_link_rate(10_000);
        c.target = Some(Duration::from_millis(100));
        c.interval = Some(Duration::from_millis(400));
        c.ecn = ecn;
        c.params().expect("valid")
    }

    fn fill(fq: &mut FlowQueue<P>, n: usize, at: Instant, ect: bool) {
        for _ in 0..n {
            fq.push(Entry {
                pkt: P { ect, ce: false },
                enqueued: at,
                charge: 1000,
            });
        }
    }

    #[test]
    fn below_target_never_drops() {
        let p = params(false);
        let mut c = Codel::default();
        let mut fq = FlowQueue::new();
        let mut t = Tally::default();
        fill(&mut fq, 10, Instant::ZERO, false);
        // Each dequeued 99 ms after arrival.
        for i in 0..10u64 {
            let now = Instant::from_millis(99);
            assert!(c.dequeue(&mut fq, now, &p, &mut t).is_some(), "packet {i}");
        }
        assert_eq!(t, Tally::default());
    }

    #[test]
    fn drops_after_one_interval_above_target_then_by_control_law() {
        let p = params(false);
        let mut c = Codel::default();
        let mut fq = FlowQueue::new();
        let mut t = Tally::default();
        fill(&mut fq, 100, Instant::ZERO, false);
        // First look at 200 ms (sojourn 200 > 100): arms first_above_time = 600 ms.
        assert!(c
            .dequeue(&mut fq, Instant::from_millis(200), &p, &mut t)
            .is_some());
        assert_eq!(t.dropped_packets, 0);
        // 599 ms: still within the interval.
        assert!(c
            .dequeue(&mut fq, Instant::from_millis(599), &p, &mut t)
            .is_some());
        assert_eq!(t.dropped_packets, 0);
        // 600 ms: one interval above target: drop one, return the next, enter dropping.
        assert!(c
            .dequeue(&mut fq, Instant::from_millis(600), &p, &mut t)
            .is_some());
        assert_eq!(t.dropped_packets, 1);
        assert!(c.dropping());
        assert_eq!(fq.q.len(), 100 - 4);
        // Next drop at 600 + 400/sqrt(1) = 1000 ms; none before.
        assert!(c
            .dequeue(&mut fq, Instant::from_millis(999), &p, &mut t)
            .is_some());
        assert_eq!(t.dropped_packets, 1);
        assert!(c
            .dequeue(&mut fq, Instant::from_millis(1000), &p, &mut t)
            .is_some());
        assert_eq!(t.dropped_packets, 2);
        // Then 1000 + 400/sqrt(2) = 1282.84 ms.
        assert!(c
            .dequeue(&mut fq, Instant::from_millis(1282), &p, &mut t)
            .is_some());
        assert_eq!(t.dropped_packets, 2);
        assert!(c
            .dequeue(&mut fq, Instant::from_millis(1283), &p, &mut t)
            .is_some());
        assert_eq!(t.dropped_packets, 3);
    }

    #[test]
    fn ect_packets_are_marked_not_dropped() {
        let p = params(true);
        let mut c = Codel::default();
        let mut fq = FlowQueue::new();
        let mut t = Tally::default();
        fill(&mut fq, 10, Instant::ZERO, true);
        let _ = c.dequeue(&mut fq, Instant::from_millis(200), &p, &mut t);
        let e = c
            .dequeue(&mut fq, Instant::from_millis(600), &p, &mut t)
            .expect("packet");
        assert!(e.pkt.ce);
        assert_eq!(
            t,
            Tally {
                dropped_packets: 0,
                dropped_bytes: 0,
                marked: 1
            }
        );
        assert_eq!(fq.q.len(), 8);
    }

    #[test]
    fn small_backlog_is_never_dropped() {
        // One packet behind the head (1000 bytes <= max_packet 1500): no drop however old.
        let p = params(false);
        let mut c = Codel::default();
        let mut fq = FlowQueue::new();
        let mut t = Tally::default();
        fill(&mut fq, 2, Instant::ZERO, false);
        let _ = c.dequeue(&mut fq, Instant::from_secs_test(10), &p, &mut t);
        let _ = c.dequeue(&mut fq, Instant::from_secs_test(20), &p, &mut t);
        assert_eq!(t.dropped_packets, 0);
    }

    #[test]
    fn empty_queue_leaves_dropping_state() {
        let p = params(false);
        let mut c = Codel::default();
        let mut fq = FlowQueue::new();
        let mut t = Tally::default();
        fill(&mut fq, 5, Instant::ZERO, false);
        let _ = c.dequeue(&mut fq, Instant::from_millis(200), &p, &mut t);
        let _ = c.dequeue(&mut fq, Instant::from_millis(600), &p, &mut t);
        assert!(c.dropping());
        while c
            .dequeue(&mut fq, Instant::from_millis(700), &p, &mut t)
            .is_some()
        {}
        assert!(!c.dropping());
    }

    impl Instant {
        fn from_secs_test(s: u64) -> Instant {
            Instant::from_millis(s * 1000)
        }
    }
}
