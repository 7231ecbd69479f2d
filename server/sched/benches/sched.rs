//! Criterion benchmarks of the scheduler's per-packet cost (`cargo bench -p masqdial-sched`).
//!
//! Steady state: every iteration enqueues one packet and dequeues one, with `hosts × flows`
//! flows backlogged, so the figure is nanoseconds per packet through the scheduler.

use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use masqdial_sched::{Class, Config, Discipline, Instant, Packet, Scheduler};

struct Pkt {
    len: usize,
}

impl Packet for Pkt {
    fn len(&self) -> usize {
        self.len
    }
    fn is_ect(&self) -> bool {
        false
    }
    fn mark_ce(&mut self) {}
}

fn steady(c: &mut Criterion) {
    let mut g = c.benchmark_group("enqueue_dequeue");
    g.throughput(Throughput::Elements(1));
    for &(hosts, flows, fifo) in &[
        (1u32, 1u32, false),
        (2, 8, false),
        (10, 10, false),
        (50, 20, false),
        (10, 10, true),
    ] {
        let mut cfg = Config::for_link_rate(12_500_000);
        cfg.limit_bytes = Some(64 << 20);
        if fifo {
            cfg.discipline = Discipline::Fifo;
        }
        let mut s: Scheduler<Pkt> = Scheduler::new(cfg).expect("valid config");
        let classes: Vec<Class> = (0..hosts)
            .flat_map(|h| {
                (0..flows).map(move |f| Class {
                    host: Ipv4Addr::from(0x0a00_0000 + h),
                    flow: u64::from(f).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                })
            })
            .collect();
        let mut now = Instant::ZERO;
        for (i, c) in classes.iter().cycle().take(classes.len() * 4).enumerate() {
            s.enqueue(
                now,
                Pkt {
                    len: 64 + (i * 97) % 1437,
                },
                *c,
            );
        }
        let mut k = 0usize;
        let name = if fifo { "fifo" } else { "fair" };
        g.bench_function(BenchmarkId::new(name, format!("{hosts}x{flows}")), |b| {
            b.iter(|| {
                k = k.wrapping_add(1);
                now = now + Duration::from_nanos(100);
                let c = classes[k % classes.len()];
                s.enqueue(
                    now,
                    Pkt {
                        len: 64 + (k * 97) % 1437,
                    },
                    c,
                );
                s.dequeue(now)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, steady);
criterion_main!(benches);
