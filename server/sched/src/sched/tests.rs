use super::*;

/// A test packet: flow tag, sequence number, length, ECN bits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct P {
    tag: u32,
    seq: u32,
    len: usize,
    ect: bool,
    ce: bool,
}
impl Packet for P {
    fn len(&self) -> usize {
        self.len
    }
    fn is_ect(&self) -> bool {
        self.ect
    }
    fn mark_ce(&mut self) {
        self.ce = true;
    }
}
fn p(tag: u32, seq: u32, len: usize) -> P {
    P {
        tag,
        seq,
        len,
        ect: false,
        ce: false,
    }
}
fn class(host: u8, flow: u64) -> Class {
    Class {
        host: Ipv4Addr::new(192, 168, 1, host),
        flow,
    }
}
const LINK: u64 = 11_520;

/// Time to send `bytes` at the link rate.
fn tx(bytes: u64) -> Duration {
    Duration::from_nanos(bytes * 1_000_000_000 / LINK)
}

fn sched() -> Scheduler<P> {
    Scheduler::new(Config::for_link_rate(LINK)).expect("valid")
}

#[test]
fn empty_scheduler_returns_nothing() {
    let mut s = sched();
    assert_eq!(s.dequeue(Instant::ZERO), None);
    assert_eq!(s.poll_timeout(), None);
    assert!(s.is_empty());
}

#[test]
fn sparse_flow_jumps_the_bulk() {
    let mut s = sched();
    let t0 = Instant::ZERO;
    for i in 0..20 {
        s.enqueue(t0, p(1, i, 1500), class(1, 1));
    }
    // The bulk flow starts sending.
    assert_eq!(s.dequeue(t0).map(|x| x.tag), Some(1));
    // A ping from the same host arrives while 19 bulk packets wait.
    let t1 = t0 + tx(1500);
    s.enqueue(t1, p(2, 0, 84), class(1, 2));
    assert_eq!(s.dequeue(t1).map(|x| (x.tag, x.seq)), Some((2, 0)));
    // And one from another host.
    s.enqueue(t1, p(3, 0, 84), class(2, 9));
    assert_eq!(s.dequeue(t1).map(|x| (x.tag, x.seq)), Some((3, 0)));
    assert_eq!(s.dequeue(t1).map(|x| (x.tag, x.seq)), Some((1, 1)));
    s.check_invariants().expect("invariants");
}

#[test]
fn hosts_share_equally_regardless_of_flow_count() {
    // Host 1: one flow; host 2: ten flows; all backlogged with 1500-byte packets.
    let mut s = sched();
    let mut cfg = s.config().clone();
    cfg.limit_bytes = Some(10_000_000);
    cfg.target = Some(Duration::from_secs(1000));
    cfg.interval = Some(Duration::from_secs(2000));
    s.reconfigure(cfg).expect("valid");
    let t = Instant::ZERO;
    for i in 0..400 {
        s.enqueue(t, p(1, i, 1500), class(1, 1));
        for f in 0..10u32 {
            s.enqueue(t, p(100 + f, i, 1500), class(2, u64::from(f)));
        }
    }
    let mut by_host = [0u64; 2];
    for _ in 0..400 {
        let x = s.dequeue(t).expect("backlogged");
        by_host[usize::from(x.tag >= 100)] += 1;
    }
    assert_eq!(by_host, [200, 200]);
    s.check_invariants().expect("invariants");
}

#[test]
fn overflow_drops_from_the_fattest_flow_of_the_fattest_host() {
    let mut cfg = Config::for_link_rate(LINK);
    cfg.limit_bytes = Some(10_000);
    let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
    let t = Instant::ZERO;
    // Host 1: flow 1 with 4 × 1000, flow 2 with 2 × 1000. Host 2: 3 × 1000 in one flow.
    for i in 0..4 {
        s.enqueue(t, p(1, i, 1000), class(1, 1));
    }
    for i in 0..2 {
        s.enqueue(t, p(2, i, 1000), class(1, 2));
    }
    for i in 0..3 {
        s.enqueue(t, p(3, i, 1000), class(2, 1));
    }
    assert_eq!(s.backlog_bytes(), 9_000);
    // 2000 more bytes for host 2: 11 000 > 10 000; host 1 (6000) is fattest, its flow 1
    // (4000) too: its head (seq 0) goes.
    let r = s.enqueue(t, p(3, 3, 2000), class(2, 1));
    assert_eq!(
        r,
        Enqueued {
            accepted: true,
            evicted: 1
        }
    );
    assert_eq!(s.backlog_bytes(), 10_000);
    assert_eq!(s.stats().dropped_overflow, 1);
    let mut tags = Vec::new();
    while let Some(x) = s.dequeue(t) {
        tags.push((x.tag, x.seq));
    }
    assert!(!tags.contains(&(1, 0)));
    assert!(tags.contains(&(1, 1)));
    assert_eq!(tags.len(), 9);
    s.check_invariants().expect("invariants");
}

#[test]
fn packet_larger_than_limit_is_refused() {
    let mut cfg = Config::for_link_rate(LINK);
    cfg.limit_bytes = Some(2_000);
    let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
    let r = s.enqueue(Instant::ZERO, p(1, 0, 2_001), class(1, 1));
    assert!(!r.accepted);
    assert!(s.is_empty());
    assert_eq!(s.stats().dropped_overflow, 1);
}

#[test]
fn shaper_paces_at_the_configured_fraction() {
    let mut cfg = Config::for_link_rate(10_000);
    cfg.shaping = Some(0.5); // 5000 B/s: 1000 bytes every 200 ms.
    let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
    let t0 = Instant::from_millis(1000);
    for i in 0..3 {
        s.enqueue(t0, p(1, i, 1000), class(1, 1));
    }
    assert_eq!(s.poll_timeout(), Some(Instant::ZERO));
    assert_eq!(s.dequeue(t0).map(|x| x.seq), Some(0));
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(1200)));
    assert_eq!(s.dequeue(Instant::from_millis(1199)), None);
    // 2 ms late: within the slack, the schedule holds (next at 1400, not 1402).
    assert_eq!(
        s.dequeue(Instant::from_millis(1202)).map(|x| x.seq),
        Some(1)
    );
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(1400)));
    // Much later: no burst credit; the next send is 200 ms after this one.
    assert_eq!(
        s.dequeue(Instant::from_millis(5000)).map(|x| x.seq),
        Some(2)
    );
    assert_eq!(s.poll_timeout(), None);
    s.enqueue(Instant::from_millis(5000), p(1, 3, 1000), class(1, 1));
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(5200)));
    assert_eq!(s.dequeue(Instant::from_millis(5100)), None);
}

#[test]
fn sparse_packets_lead_the_shaper_by_at_most_one_packet_time() {
    // 10 000 B/s link shaped to 0.5: 5000 B/s, so 1000 bytes take 200 ms and the lead
    // (one 1500-byte packet) is 300 ms.
    let mut cfg = Config::for_link_rate(10_000);
    cfg.shaping = Some(0.5);
    let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
    assert_eq!(s.params().sparse_lead, Duration::from_millis(300));
    let t0 = Instant::from_millis(1000);
    for i in 0..3 {
        s.enqueue(t0, p(1, i, 1000), class(1, 1));
    }
    assert_eq!(s.dequeue(t0).map(|x| x.seq), Some(0));
    // The bulk waits for its slot at 1200 ms.
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(1200)));
    assert_eq!(s.dequeue(Instant::from_millis(1050)), None);
    // A ping of the same host (a new flow) may go now: at most 300 ms ahead of 1200.
    let t1 = Instant::from_millis(1050);
    s.enqueue(t1, p(2, 0, 100), class(1, 2));
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(900)));
    assert_eq!(s.dequeue(t1).map(|x| x.tag), Some(2));
    // It is charged: the bulk's slot moves by 100 bytes' time (20 ms).
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(1220)));
    assert_eq!(s.dequeue(Instant::from_millis(1219)), None);
    // Another host's ping too, but not before 1420 - 300 = 1120 once the bulk went.
    assert_eq!(
        s.dequeue(Instant::from_millis(1220)).map(|x| x.seq),
        Some(1)
    );
    s.enqueue(Instant::from_millis(1221), p(3, 0, 100), class(2, 7));
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(1120)));
    assert_eq!(
        s.dequeue(Instant::from_millis(1221)).map(|x| x.tag),
        Some(3)
    );
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(1440)));
}

#[test]
fn a_burst_of_new_flows_gets_one_lead_then_the_shaper_rate() {
    // Forty 1000-byte packets, each its own new flow, all at 1000 ms: the first goes at
    // once, then each may go 300 ms before its 200 ms slot, so the second leaves at once
    // too and the rest follow every 200 ms.
    let mut cfg = Config::for_link_rate(10_000);
    cfg.shaping = Some(0.5);
    cfg.limit_bytes = Some(1_000_000);
    let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
    let t0 = Instant::from_millis(1000);
    for i in 0..40 {
        s.enqueue(t0, p(i, 0, 1000), class(1, u64::from(i)));
    }
    let mut times = Vec::new();
    let mut now = t0;
    while let Some(t) = s.poll_timeout() {
        now = now.max(t);
        let x = s.dequeue(now).expect("due");
        times.push((x.tag, now.as_nanos() / 1_000_000));
    }
    assert_eq!(times.len(), 40);
    assert_eq!(&times[..4], &[(0, 1000), (1, 1000), (2, 1100), (3, 1300)]);
    // 39 slots of 200 ms after the first, less the one 300 ms lead: never earlier.
    assert_eq!(times[39], (39, 8500));
}

/// Six 1000-byte packets of one flow at 1000 ms on a 10 000 B/s link shaped to 0.5
/// (200 ms each), CoDel target 10 ms / interval 20 ms; returns the packets sent with their
/// times until the queue is empty, and the drop count.
fn ingress_run(ingress: bool) -> (Vec<(u32, u64)>, u64) {
    let mut cfg = Config::for_link_rate(10_000);
    cfg.shaping = Some(0.5);
    cfg.target = Some(Duration::from_millis(10));
    cfg.interval = Some(Duration::from_millis(20));
    cfg.ingress = ingress;
    let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
    let t0 = Instant::from_millis(1000);
    for i in 0..6 {
        s.enqueue(t0, p(1, i, 1000), class(1, 1));
    }
    let mut out = Vec::new();
    let mut now = t0;
    while let Some(t) = s.poll_timeout() {
        now = now.max(t);
        if let Some(x) = s.dequeue(now) {
            out.push((x.seq, now.as_nanos() / 1_000_000));
        }
    }
    (out, s.stats().dropped_codel)
}

#[test]
fn ingress_mode_charges_drops_to_the_shaper() {
    // 1000 ms: seq 0. 1200 ms: seq 1 (sojourn 200 ms arms CoDel). 1400 ms: seq 2 is
    // dropped (one interval above target, 3000 bytes behind it) and seq 3 goes. Then
    // the flow's backlog is at most one packet, so nothing more is dropped.
    let (plain, drops) = ingress_run(false);
    assert_eq!(drops, 1);
    assert_eq!(
        plain,
        vec![(0, 1000), (1, 1200), (3, 1400), (4, 1600), (5, 1800)]
    );
    // Ingress: the dropped 1000 bytes already crossed the bottleneck and cost 200 ms of
    // the shaper's time like a sent packet.
    let (ingress, drops) = ingress_run(true);
    assert_eq!(drops, 1);
    assert_eq!(
        ingress,
        vec![(0, 1000), (1, 1200), (3, 1400), (4, 1800), (5, 2000)]
    );
}

#[test]
fn codel_keeps_a_bulk_flow_near_target_on_a_simulated_link() {
    // One unresponsive bulk flow arriving at twice the link rate, one packet sent every
    // 130 ms: CoDel drops enough that sojourn stays bounded, and the ping flow is never late.
    let mut s = sched();
    let mut now = Instant::ZERO;
    let mut next_arrival = Instant::ZERO;
    let mut seq = 0;
    let mut ping_delays = Vec::new();
    let mut next_ping = Instant::from_millis(500);
    let mut pending_ping: Option<Instant> = None;
    while now < Instant::from_millis(60_000) {
        while next_arrival <= now {
            s.enqueue(next_arrival, p(1, seq, 1500), class(1, 1));
            seq += 1;
            next_arrival = next_arrival + tx(750);
        }
        if next_ping <= now {
            s.enqueue(now, p(2, 0, 84), class(2, 2));
            pending_ping = Some(now);
            next_ping = next_ping + Duration::from_millis(1000);
        }
        match s.dequeue(now) {
            Some(x) => {
                if x.tag == 2 {
                    let sent = pending_ping.take().expect("ping queued");
                    ping_delays.push(now.saturating_duration_since(sent));
                }
                now = now + tx(x.len as u64);
            }
            None => now = now + Duration::from_millis(1),
        }
        s.check_invariants().expect("invariants");
    }
    let st = s.stats();
    assert!(st.dropped_codel > 0, "{st:?}");
    // Pings arrive when the link is between packets here, and each goes out next.
    assert_eq!(ping_delays.len(), 60);
    assert!(ping_delays.iter().all(|d| d.is_zero()), "{ping_delays:?}");
    // The bulk flow's standing queue is controlled: median sojourn within a few targets.
    let p50 = st.sojourn_p50.expect("samples");
    assert!(p50 <= Duration::from_millis(1000), "{st:?}");
}

#[test]
fn ecn_marks_instead_of_dropping() {
    let mut s = sched();
    let mut now = Instant::ZERO;
    let mut seq = 0;
    let mut next_arrival = Instant::ZERO;
    let mut marked = 0;
    while now < Instant::from_millis(30_000) {
        while next_arrival <= now {
            let mut x = p(1, seq, 1500);
            x.ect = true;
            s.enqueue(next_arrival, x, class(1, 1));
            seq += 1;
            next_arrival = next_arrival + tx(1000);
        }
        match s.dequeue(now) {
            Some(x) => {
                marked += u64::from(x.ce);
                now = now + tx(1500);
            }
            None => now = now + Duration::from_millis(1),
        }
    }
    let st = s.stats();
    assert_eq!(st.dropped_codel, 0);
    assert!(st.ecn_marked > 0);
    assert_eq!(st.ecn_marked, marked);
}

#[test]
fn fifo_discipline_is_first_in_first_out_with_tail_drop() {
    let mut cfg = Config::for_link_rate(LINK);
    cfg.discipline = Discipline::Fifo;
    cfg.limit_bytes = Some(3_000);
    let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
    let t = Instant::ZERO;
    assert!(s.enqueue(t, p(1, 0, 1500), class(1, 1)).accepted);
    assert!(s.enqueue(t, p(2, 0, 1000), class(2, 1)).accepted);
    assert!(!s.enqueue(t, p(3, 0, 1000), class(3, 1)).accepted);
    assert!(s.enqueue(t, p(4, 0, 500), class(3, 1)).accepted);
    let order: Vec<u32> = std::iter::from_fn(|| s.dequeue(t)).map(|x| x.tag).collect();
    assert_eq!(order, vec![1, 2, 4]);
}

#[test]
fn stats_report_shares_and_sojourn() {
    let mut s = sched();
    let t0 = Instant::ZERO;
    for i in 0..4 {
        s.enqueue(t0, p(1, i, 1000), class(1, 1));
        s.enqueue(t0, p(2, i, 1000), class(2, 1));
    }
    let mut now = t0;
    while s.dequeue(now).is_some() {
        now = now + Duration::from_millis(100);
    }
    let st = s.stats();
    assert_eq!(st.sent_packets, 8);
    assert_eq!(st.sent_bytes, 8000);
    assert_eq!(st.backlog_bytes, 0);
    assert_eq!(st.active_flows, 0);
    assert_eq!(st.active_hosts, 0);
    assert_eq!(st.hosts.len(), 2);
    assert_eq!(st.hosts[0].share, 0.5);
    assert_eq!(st.hosts[1].share, 0.5);
    // Sojourns 0, 100, …, 700 ms: the 4th of 8 is 300 ms; the 8th 700 ms (bucket 800).
    assert_eq!(st.sojourn_p50, Some(Duration::from_millis(300)));
    assert_eq!(st.sojourn_p95, Some(Duration::from_millis(800)));
}

#[test]
fn stalled_link_does_not_accumulate_empty_entries() {
    // Nothing is dequeued; 10 000 packets in distinct flows of 100 hosts overflow a
    // 3000-byte limit. Only flows holding packets may remain.
    let mut cfg = Config::for_link_rate(LINK);
    cfg.limit_bytes = Some(3_000);
    let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
    for i in 0..10_000u32 {
        s.enqueue(
            Instant::ZERO,
            p(i, 0, 100),
            class((i % 100) as u8, u64::from(i)),
        );
    }
    s.check_invariants().expect("invariants");
    assert_eq!(s.backlog_packets(), 30);
    let (hosts, flows) = s.table_sizes();
    assert_eq!(flows, 30);
    assert_eq!(hosts, 30);
    assert_eq!(s.stats().dropped_overflow, 10_000 - 30);
}

#[test]
fn clear_empties_everything() {
    let mut s = sched();
    for i in 0..5 {
        s.enqueue(Instant::ZERO, p(1, i, 100), class(i as u8, 1));
    }
    s.clear();
    assert!(s.is_empty());
    assert_eq!(s.dequeue(Instant::ZERO), None);
    s.check_invariants().expect("invariants");
    s.enqueue(Instant::ZERO, p(9, 0, 100), class(1, 1));
    assert_eq!(s.dequeue(Instant::ZERO).map(|x| x.tag), Some(9));
}
