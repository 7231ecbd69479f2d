//! Property tests of the scheduler on a simulated clock: order within a flow, the byte limit,
//! conservation of packets, no starvation, and per-host shares.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use masqdial_sched::{Class, Config, Discipline, Instant, Packet, Scheduler};
use proptest::prelude::*;

/// A test packet that remembers its flow and sequence number.
#[derive(Debug, Clone)]
struct P {
    host: u8,
    flow: u8,
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
        assert!(self.ect, "mark_ce on a non-ECT packet");
        self.ce = true;
    }
}

fn class(host: u8, flow: u8) -> Class {
    Class {
        host: Ipv4Addr::new(10, 0, 0, host),
        flow: u64::from(flow),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        host: u8,
        flow: u8,
        len: usize,
        ect: bool,
    },
    Dequeue,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u8..5, 1usize..=1500, any::<bool>())
            .prop_map(|(host, flow, len, ect)| Op::Enqueue { host, flow, len, ect }),
        3 => Just(Op::Dequeue),
        1 => (0u64..400).prop_map(Op::Advance),
    ]
}

fn config(limit: u64, overhead: u32, shaping: Option<f64>, fifo: bool) -> Config {
    let mut c = Config::for_baud(115_200);
    c.limit_bytes = Some(limit);
    c.overhead = overhead;
    c.shaping = shaping;
    if fifo {
        c.discipline = Discipline::Fifo;
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random arrivals, departures and clock steps: within each flow packets leave in arrival
    /// order (some may be dropped), the backlog never exceeds the limit, the internal sums hold,
    /// and every accepted packet is sent, dropped or still queued.
    #[test]
    fn order_limit_and_conservation(
        ops in prop::collection::vec(op(), 1..600),
        limit in 1508u64..20_000,
        overhead in 0u32..9,
        shaping in prop::option::of(0.1f64..=1.0),
        fifo in any::<bool>(),
        ingress in any::<bool>(),
    ) {
        let mut cfg = config(limit, overhead, shaping, fifo);
        cfg.ingress = ingress;
        let mut s: Scheduler<P> = Scheduler::new(cfg).expect("valid");
        let mut now = Instant::ZERO;
        let mut seq: HashMap<(u8, u8), u32> = HashMap::new();
        let mut last_out: HashMap<(u8, u8), u32> = HashMap::new();
        let (mut accepted, mut evicted, mut sent, mut marked) = (0u64, 0u64, 0u64, 0u64);
        // Shaped: (time, charged bytes) of every packet sent.
        let mut departures: Vec<(Instant, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Enqueue { host, flow, len, ect } => {
                    let n = seq.entry((host, flow)).or_default();
                    *n += 1;
                    let p = P { host, flow, seq: *n, len, ect, ce: false };
                    let r = s.enqueue(now, p, class(host, flow));
                    accepted += u64::from(r.accepted);
                    evicted += u64::from(r.evicted);
                }
                Op::Dequeue => {
                    if let Some(p) = s.dequeue(now) {
                        sent += 1;
                        departures.push((now, p.len as u64 + u64::from(overhead)));
                        marked += u64::from(p.ce);
                        // (FIFO mode's global order is the next property.)
                        if !fifo {
                            let key = (p.host, p.flow);
                            let prev = last_out.insert(key, p.seq);
                            prop_assert!(prev.is_none_or(|q| q < p.seq),
                                "flow {:?}: {:?} then {}", key, prev, p.seq);
                        }
                    }
                }
                Op::Advance(ms) => now = now + Duration::from_millis(ms),
            }
            prop_assert!(s.backlog_bytes() <= limit);
            if let Err(e) = s.check_invariants() {
                prop_assert!(false, "{}", e);
            }
        }
        let st = s.stats();
        prop_assert_eq!(st.enqueued_packets, accepted);
        prop_assert_eq!(st.sent_packets, sent);
        prop_assert_eq!(st.ecn_marked, marked);
        prop_assert_eq!(accepted, sent + st.dropped_codel + evicted + st.backlog_packets);
        if fifo {
            prop_assert_eq!(evicted, 0);
            prop_assert_eq!(st.dropped_codel, 0);
        }
        // The shaper's rate holds over every window of departures: what leaves from the
        // first to the last packet of a window is at most the rate times the window, plus
        // the sparse lead and the timer slack (5 ms) ahead of schedule, plus the last packet
        // (and a byte per packet for the nanosecond rounding of send times).
        if let Some(rate) = s.params().shaper_rate {
            let ahead = s.params().sparse_lead + Duration::from_millis(5);
            for a in 0..departures.len() {
                let mut bytes = 0u64;
                for (b, &(tb, charge)) in departures.iter().enumerate().skip(a) {
                    bytes += charge;
                    let span = tb.saturating_duration_since(departures[a].0) + ahead;
                    let allowed = (u128::from(rate) * span.as_nanos() / 1_000_000_000) as u64
                        + charge
                        + (b - a) as u64
                        + 1;
                    prop_assert!(bytes <= allowed,
                        "packets {}..={}: {} bytes in {:?}, allowed {}", a, b, bytes, span, allowed);
                }
            }
        }
    }

    /// FIFO mode keeps global arrival order.
    #[test]
    fn fifo_keeps_global_order(lens in prop::collection::vec(1usize..=1500, 1..100)) {
        let mut s: Scheduler<P> =
            Scheduler::new(config(1_000_000, 0, None, true)).expect("valid");
        for (i, len) in lens.iter().enumerate() {
            let host = (i % 3) as u8;
            s.enqueue(Instant::ZERO, P { host, flow: 0, seq: i as u32, len: *len, ect: false, ce: false },
                class(host, (i % 5) as u8));
        }
        let out: Vec<u32> = std::iter::from_fn(|| s.dequeue(Instant::ZERO)).map(|p| p.seq).collect();
        prop_assert_eq!(out, (0..lens.len() as u32).collect::<Vec<_>>());
    }
}

/// Dequeue positions at which each (host, flow) was served.
type Served = HashMap<(u8, u8), Vec<usize>>;

/// Keep every flow of `flows` (host, flow count) backlogged with packets whose sizes cycle through
/// `sizes`, dequeue `rounds` packets, and return (per-flow dequeue positions, bytes per host).
fn run_backlogged(
    flows: &[(u8, u8)],
    sizes: &[usize],
    rounds: usize,
) -> (Served, HashMap<u8, u64>) {
    let mut c = Config::for_baud(115_200);
    c.limit_bytes = Some(100_000_000);
    // CoDel out of the way: these properties are about the round robin.
    c.target = Some(Duration::from_secs(1_000_000));
    c.interval = Some(Duration::from_secs(2_000_000));
    let mut s: Scheduler<P> = Scheduler::new(c).expect("valid");
    let mut seq: HashMap<(u8, u8), u32> = HashMap::new();
    let mut push = |s: &mut Scheduler<P>, host: u8, flow: u8| {
        let n = seq.entry((host, flow)).or_default();
        *n += 1;
        let len = sizes[(*n as usize + usize::from(host) * 7 + usize::from(flow)) % sizes.len()];
        let p = P {
            host,
            flow,
            seq: *n,
            len,
            ect: false,
            ce: false,
        };
        s.enqueue(Instant::ZERO, p, class(host, flow));
    };
    for &(host, n) in flows {
        for flow in 0..n {
            push(&mut s, host, flow);
            push(&mut s, host, flow);
        }
    }
    let mut served = Served::new();
    let mut bytes: HashMap<u8, u64> = HashMap::new();
    for i in 0..rounds {
        let p = s.dequeue(Instant::ZERO).expect("all flows backlogged");
        served.entry((p.host, p.flow)).or_default().push(i);
        *bytes.entry(p.host).or_default() += p.len as u64;
        push(&mut s, p.host, p.flow);
    }
    (served, bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every continuously backlogged flow is served, and never waits longer than a bound that
    /// follows from DRR: between two turns of one flow, each other flow of its host sends at
    /// most about two MTUs plus a quantum, and the other hosts match its host's bytes plus one
    /// turn each.
    #[test]
    fn no_starvation(
        hosts in prop::collection::vec(1u8..6, 1..5),
        sizes in prop::collection::vec(64usize..=1500, 1..8),
    ) {
        let flows: Vec<(u8, u8)> =
            hosts.iter().enumerate().map(|(h, &n)| (h as u8 + 1, n)).collect();
        let rounds = 3000;
        let (served, _) = run_backlogged(&flows, &sizes, rounds);
        let q = 300usize;
        let max_flows = usize::from(*hosts.iter().max().expect("non-empty"));
        // Bytes between two services of one flow, divided by the smallest packet: a bound on
        // the number of packets in between.
        let host_bytes = max_flows * (2 * 1500 + q);
        let bound_bytes = hosts.len() * (host_bytes + q + 1500);
        let bound = bound_bytes / 64 + 1;
        for &(host, n) in &flows {
            for flow in 0..n {
                let at = served.get(&(host, flow)).cloned().unwrap_or_default();
                prop_assert!(!at.is_empty(), "flow {host}/{flow} never served");
                let mut prev = 0usize;
                for &i in at.iter().chain(std::iter::once(&rounds)) {
                    prop_assert!(i - prev <= bound,
                        "flow {host}/{flow} waited {} dequeues (bound {bound})", i - prev);
                    prev = i;
                }
            }
        }
    }

    /// Two hosts, one with a single flow and one with 1–10 flows: each gets half the bytes, to
    /// within DRR's bound (a quantum plus two full packets) over the whole run.
    #[test]
    fn per_host_shares_are_equal(
        many in 1u8..=10,
        sizes in prop::collection::vec(64usize..=1500, 1..8),
    ) {
        let (_, bytes) = run_backlogged(&[(1, 1), (2, many)], &sizes, 4000);
        let a = bytes.get(&1).copied().unwrap_or(0);
        let b = bytes.get(&2).copied().unwrap_or(0);
        let diff = a.abs_diff(b);
        prop_assert!(diff <= 300 + 2 * 1500 + 1500, "host bytes {a} vs {b}");
        let share = a as f64 / (a + b) as f64;
        prop_assert!((0.45..=0.55).contains(&share), "share {share}");
    }
}

/// 32 LAN hosts, each with 1 to 4 backlogged flows: every host gets 1/32 of the bytes, to
/// within DRR's bound (a quantum plus two full packets per host) over the run.
#[test]
fn thirty_two_hosts_share_equally() {
    let flows: Vec<(u8, u8)> = (1..=32u8).map(|h| (h, 1 + h % 4)).collect();
    let sizes = [1500, 64, 576, 1500, 300];
    let (served, bytes) = run_backlogged(&flows, &sizes, 32 * 400);
    assert_eq!(bytes.len(), 32, "every host was served");
    let total: u64 = bytes.values().sum();
    let fair = total / 32;
    for (h, b) in &bytes {
        assert!(
            b.abs_diff(fair) <= 300 + 2 * 1500 + 1500,
            "host {h}: {b} bytes, fair share {fair}"
        );
    }
    // No flow waits more than one round of every host's every flow, each sending at most a
    // quantum's worth of the smallest packets (1514 / 64 + 1 = 24) in its turn.
    for ((h, f), at) in &served {
        let gaps = at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        assert!(
            gaps <= 32 * 4 * 24,
            "host {h} flow {f}: gap of {gaps} packets"
        );
    }
}

/// One LAN machine forging 200 source addresses against one honest host. Fairness is per
/// source address (the LAN side is layer 3: a forged address cannot be told apart), so the
/// forger gets one share per address; what must hold is that the honest host is never
/// starved (at least its 1/201 share), the backlog stays within the byte limit, and the
/// forger's addresses are the ones that lose packets when it is full.
#[test]
fn a_host_forging_many_source_addresses_cannot_starve_others_or_grow_the_queue() {
    let mut c = Config::for_baud(115_200);
    let limit = 64 * 1500;
    c.limit_bytes = Some(limit);
    c.target = Some(Duration::from_secs(1_000_000));
    c.interval = Some(Duration::from_secs(2_000_000));
    let mut s: Scheduler<P> = Scheduler::new(c).expect("valid");
    let honest = 1u8;
    let mut honest_sent = 0u64;
    let mut total_sent = 0u64;
    let mut seq = 0u32;
    for round in 0..20_000usize {
        // The forger sends 4 packets per dequeue, each from a different forged address
        // (10.0.1.x, 200 of them); the honest host keeps one packet queued.
        for k in 0..4 {
            seq += 1;
            let addr = ((round * 4 + k) % 200) as u8;
            let p = P {
                host: 100,
                flow: addr,
                seq,
                len: 1500,
                ect: false,
                ce: false,
            };
            let cls = Class {
                host: Ipv4Addr::new(10, 0, 1, addr),
                flow: u64::from(addr),
            };
            s.enqueue(Instant::ZERO, p, cls);
        }
        if s.backlog_packets() == 0 || round % 2 == 0 {
            seq += 1;
            let p = P {
                host: honest,
                flow: 0,
                seq,
                len: 1500,
                ect: false,
                ce: false,
            };
            s.enqueue(Instant::ZERO, p, class(honest, 0));
        }
        assert!(
            s.backlog_bytes() <= limit,
            "backlog {} over the limit {limit}",
            s.backlog_bytes()
        );
        if let Some(p) = s.dequeue(Instant::ZERO) {
            total_sent += 1;
            if p.host == honest {
                honest_sent += 1;
            }
        }
    }
    // At least its share among 201 sources (less DRR's slack), never starved.
    assert!(
        honest_sent * 201 >= total_sent * 9 / 10,
        "honest host sent {honest_sent} of {total_sent}"
    );
}
