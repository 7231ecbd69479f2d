//! Cost of a connection's budget: what the link's actor does once a second while the link
//! is up (count the sample, check for a warning or hang-up), a dial check, and the local
//! time zone lookup, printed as ns per call. Not on the packet path.
//!
//! `cargo bench -p masqdial-server --bench budget`

use std::hint::black_box;
use std::time::Instant;

use masqdial_server::budget::{local_offset, Budget, Clock, Count, Period, Usage};
use masqdial_server::config::BudgetConfig;

fn per_call(name: &str, n: u32, mut f: impl FnMut(u32)) {
    for i in 0..n / 10 {
        f(i);
    }
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    let ns = t.elapsed().as_nanos() / u128::from(n);
    println!("{name:<48} {ns:>6} ns/call ({n} calls)");
}

fn main() {
    let cfg = BudgetConfig {
        connection: "isp1".into(),
        bytes: Some(500_000_000),
        bytes_period: Period::Month,
        count: Count::Both,
        connect_time_s: Some(36_000),
        time_period: Period::Day,
        windows: vec!["Mo-Fr 18:00-08:00".into(), "Sa-Su 00:00-24:00".into()],
        utc_offset: None,
        warn_before_s: 300,
        warn_at: 0.9,
    };
    let policy = cfg.policy().expect("policy");
    let mut b = Budget::new("isp1", policy, Usage::default());
    // Saturday noon UTC 2026-12-05: inside the weekend window, far from its end.
    let t0 = 1_796_472_000;
    per_call(
        "record + poll (the per-second tick, fixed offset)",
        1_000_000,
        |i| {
            let now = Clock {
                unix: t0 + i64::from(i % 3600),
                offset: 3600,
            };
            b.record(now, 15, 4, 0);
            black_box(b.poll(now));
        },
    );
    per_call("check_dial", 1_000_000, |i| {
        let now = Clock {
            unix: t0 + i64::from(i % 3600),
            offset: 3600,
        };
        black_box(b.check_dial(now).is_ok());
    });
    per_call("local_offset (system TZif, cached file)", 1_000_000, |i| {
        black_box(local_offset(t0 + i64::from(i)));
    });
}
