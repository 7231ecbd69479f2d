//! `natbench`: prints a table of nat-core speed and memory figures (release build:
//! `cargo run --release -p nat-core --bin natbench`). Owns measurement only: wall-clock reads
//! happen here, never in the library. Memory is measured with a counting global allocator.
// The counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use nat_core::masq::{Mapping, MasqConfig, PortRange};
use nat_core::wire::{ipv4, proto, tcp, udp};
use nat_core::{Action, Engine, EngineConfig, Instant};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant as WallClock;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// CPU seconds this thread spent on a CPU (first field of /proc/thread-self/schedstat, ns), so
/// that other processes on a loaded machine do not count against the figures.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: f64 = s
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    ns / 1e9
}

/// Context switches of this thread so far (voluntary + involuntary), to discard timings that
/// include a preemption by another process.
fn ctx_switches() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    s.lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// A stopwatch of both wall and thread CPU time.
struct Watch(WallClock, f64);
impl Watch {
    fn start() -> Watch {
        Watch(WallClock::now(), cpu_secs())
    }
    /// (wall seconds, cpu seconds)
    fn stop(&self) -> (f64, f64) {
        (
            self.0.elapsed().as_secs_f64(),
            (cpu_secs() - self.1).max(1e-9),
        )
    }
}

/// Format a rate as "cpu-rate (wall-rate)" in millions per second.
fn rate(n: u64, w: (f64, f64)) -> String {
    format!("{:.2} ({:.2})", n as f64 / w.1 / 1e6, n as f64 / w.0 / 1e6)
}

const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

fn ip_header(src: Ipv4Addr, dst: Ipv4Addr, p: u8, payload: usize) -> Vec<u8> {
    let mut b = vec![0u8; 20 + payload];
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: p,
        payload_len: payload,
        ttl: 64,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    b
}

/// A 64-byte UDP (20 + 8 + 36) or TCP (20 + 20 + 24) packet.
fn pkt64(tcpp: bool, src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16, flags: u16) -> Vec<u8> {
    if tcpp {
        let mut b = ip_header(src, dst, proto::TCP, 44);
        let mut t = tcp::Packet::new_unchecked(&mut b[ipv4::HEADER_LEN..]);
        t.set_src_port(sp);
        t.set_dst_port(dp);
        t.set_seq_number(1);
        t.set_ack_number(1);
        t.set_header_len_and_flags(20, flags);
        t.set_window_len(65535);
        t.fill_checksum(src, dst);
        b
    } else {
        let mut b = ip_header(src, dst, proto::UDP, 44);
        let mut u = udp::Packet::new_unchecked(&mut b[ipv4::HEADER_LEN..]);
        u.set_src_port(sp);
        u.set_dst_port(dp);
        u.set_len(44);
        u.fill_checksum(src, dst);
        b
    }
}

/// Flow `i`: inside host, inside port, remote, remote port.
fn flow(i: u32) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let host = Ipv4Addr::from(0x0a00_0000 | (i / 1000 + 1));
    let sp = 10_000 + (i % 1000) as u16;
    // Wrapping, as the release figures were always measured (i * 7919 exceeds u32 at 1M flows).
    let remote = Ipv4Addr::from(0xc633_6400 | (i.wrapping_mul(7919) % 4096));
    let dp = 443 + (i % 3) as u16;
    (host, sp, remote, dp)
}

fn config(flows: u32) -> EngineConfig {
    let mut masq = MasqConfig::linux22();
    if flows > 10_000 {
        // Scale-out: widened range and address/port-dependent mapping.
        masq.ports = [PortRange {
            lo: 1024,
            hi: 65535,
        }; 3];
        masq.port_reuse = 64;
        masq.mapping = Mapping::AddressPortDependent;
        masq.max_entries = 1 << 22;
    }
    masq.change_log_capacity = 0;
    EngineConfig {
        masq,
        ..EngineConfig::default()
    }
}

fn engine(flows: u32) -> Engine {
    let mut e = Engine::new(config(flows));
    e.firewall_mut()
        .set_policy("forward", "MASQ")
        .expect("legal policy");
    e.set_masq_address(Some(MASQ));
    e
}

/// Create `n` flows (outbound packet each); returns engine, outbound and inbound templates.
fn setup(n: u32, tcpp: bool) -> (Engine, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut e = engine(n);
    e.masq_mut().reserve(n as usize);
    let now = Instant::from_secs(1);
    let mut outs = Vec::with_capacity(n as usize);
    let mut ins = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (h, sp, r, dp) = flow(i);
        let syn = if tcpp { tcp::FLG_SYN } else { 0 };
        let mut p = pkt64(tcpp, h, sp, r, dp, syn);
        let a = e.process_from_lan(now, &mut p);
        assert_eq!(a, Action::ToLink, "setup flow {i}");
        let mport = udp::Packet::new_unchecked(&p[ipv4::HEADER_LEN..]).src_port();
        // Established: answer SYN-ACK, then steady ACKs.
        let mut back = pkt64(
            tcpp,
            r,
            dp,
            MASQ,
            mport,
            if tcpp { tcp::FLG_SYN | tcp::FLG_ACK } else { 0 },
        );
        assert_eq!(e.process_from_lan(now, &mut back.clone()), Action::Local);
        assert_eq!(e.process_from_link(now, &mut back), Action::ToLan);
        outs.push(pkt64(tcpp, h, sp, r, dp, tcp::FLG_ACK));
        ins.push(pkt64(tcpp, r, dp, MASQ, mport, tcp::FLG_ACK));
    }
    // Packets arrive in sequential buffers but for flows in random order: lay the templates
    // out in a shuffled flow order and read them sequentially.
    let order = shuffle_order(n as usize);
    let outs = order.iter().map(|&k| outs[k as usize].clone()).collect();
    let ins = order.iter().map(|&k| ins[k as usize].clone()).collect();
    (e, outs, ins)
}

fn shuffle_order(n: usize) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// Packets per batch: a batch is warmed (index slot + entry per packet) then processed.
const BATCH: usize = 16;

fn run_established(n: u32, tcpp: bool, packets: u32) -> (String, String) {
    let (mut e, outs, ins) = setup(n, tcpp);
    let now = Instant::from_secs(2);
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(2048)).collect();
    let mut rates = [String::new(), String::new()];
    let n = n as usize;
    for (k, set) in [&outs, &ins].iter().enumerate() {
        let want = if k == 0 {
            Action::ToLink
        } else {
            Action::ToLan
        };
        let mut good = 0u64;
        let t0 = Watch::start();
        let mut i = 0usize;
        while i < packets as usize {
            for (j, b) in bufs.iter_mut().enumerate() {
                b.clear();
                b.extend_from_slice(&set[(i + j) % n]);
            }
            let mut w = 0u64;
            for b in &bufs {
                w ^= if k == 0 {
                    e.warm_from_lan(b)
                } else {
                    e.warm_from_link(b)
                };
            }
            std::hint::black_box(w);
            for b in bufs.iter_mut() {
                let a = if k == 0 {
                    e.process_from_lan(now, b)
                } else {
                    e.process_from_link(now, b)
                };
                good += u64::from(a == want);
                std::hint::black_box(&a);
            }
            i += BATCH;
        }
        rates[k] = rate(i as u64, t0.stop());
        // Checked outside the timed loop, in release builds too.
        assert_eq!(
            good, i as u64,
            "{n} flows, tcp {tcpp}: every packet must give {want:?}"
        );
    }
    let [a, b] = rates;
    (a, b)
}

fn run_table_only(n: u32, packets: u32) -> String {
    let (mut e, outs, _) = setup(n, false);
    let now = Instant::from_secs(2);
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(2048)).collect();
    let mut good = 0u64;
    let t0 = Watch::start();
    let mut i = 0usize;
    while i < packets as usize {
        for (j, b) in bufs.iter_mut().enumerate() {
            b.clear();
            b.extend_from_slice(&outs[(i + j) % n as usize]);
        }
        let mut w = 0u64;
        for b in &bufs {
            w ^= e.masq().warm(b, true);
        }
        std::hint::black_box(w);
        for b in bufs.iter_mut() {
            let r = e.masq_mut().masquerade(now, b);
            good += u64::from(r.is_ok());
            std::hint::black_box(&r);
        }
        i += BATCH;
    }
    let r = rate(i as u64, t0.stop());
    assert_eq!(good, i as u64, "{n} flows: every masquerade must succeed");
    r
}

fn run_new_mappings(n: u32) -> String {
    let mut e = engine(n);
    e.masq_mut().reserve(n as usize);
    let pkts: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let (h, sp, r, dp) = flow(i);
            pkt64(false, h, sp, r, dp, 0)
        })
        .collect();
    let now = Instant::from_secs(1);
    let mut buf = Vec::with_capacity(2048);
    let mut good = 0u64;
    let t0 = Watch::start();
    for p in &pkts {
        buf.clear();
        buf.extend_from_slice(p);
        let a = e.process_from_lan(now, &mut buf);
        good += u64::from(a == Action::ToLink);
        std::hint::black_box(&a);
    }
    let r = rate(u64::from(n), t0.stop());
    assert_eq!(good, u64::from(n), "every new flow must be masqueraded");
    assert_eq!(e.masq().len(), n as usize);
    r
}

/// Memory per live mapping: heap growth while creating `n` mappings, divided by `n`.
fn memory_per_mapping(n: u32) -> f64 {
    let pkts: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let (h, sp, r, dp) = flow(i);
            pkt64(false, h, sp, r, dp, 0)
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut e = engine(n);
    let now = Instant::from_secs(1);
    let mut buf = Vec::with_capacity(2048);
    for p in &pkts {
        buf.clear();
        buf.extend_from_slice(p);
        assert_eq!(e.process_from_lan(now, &mut buf), Action::ToLink);
    }
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(e.masq().len(), n as usize);
    let per = (after - before) as f64 / f64::from(n);
    drop(e);
    per
}

/// Expire `n` entries that all time out together while packets keep flowing: the worst single
/// `handle_timeout` call (one per packet) and the time to drain.
fn run_expiry(n: u32) -> (f64, f64, f64, u64, u64) {
    let (mut e, outs, _) = setup(n, false);
    // UDP timeout 5 min after t = 1 s; go past it.
    let mut now_ms = 302_000u64;
    let keep = &outs[0];
    let mut buf = Vec::with_capacity(2048);
    let mut worst = 0f64;
    let mut calls = 0u64;
    let mut over_1ms = 0u64;
    let mut worst_cpu = 0f64;
    let mut cpu_calls: Vec<f64> = Vec::new();
    let t0 = WallClock::now();
    while e.masq().len() > 1 && calls < 100_000_000 {
        buf.clear();
        buf.extend_from_slice(keep);
        let _ = e.process_from_lan(Instant::from_millis(now_ms), &mut buf);
        let sw0 = ctx_switches();
        let c = WallClock::now();
        let _ = e.handle_timeout(Instant::from_millis(now_ms));
        let d = c.elapsed().as_secs_f64();
        if ctx_switches() == sw0 {
            // Not preempted during the call: this is the engine's own pause.
            worst_cpu = worst_cpu.max(d);
            cpu_calls.push(d);
        }
        if d > worst {
            worst = d;
        }
        if d > 1e-3 {
            over_1ms += 1;
        }
        calls += 1;
        if calls.is_multiple_of(1000) {
            now_ms += 1;
        }
    }
    assert_eq!(
        e.masq().len(),
        1,
        "expiry did not drain within the call bound"
    );
    cpu_calls.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        cpu_calls
            .get(((cpu_calls.len() as f64 - 1.0) * q) as usize)
            .copied()
    };
    println!(
        "expiry: handle_timeout wall time per call without a context switch ({} calls): p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        cpu_calls.len(),
        pct(0.5).unwrap_or(0.0) * 1e6,
        pct(0.99).unwrap_or(0.0) * 1e6,
        pct(0.999).unwrap_or(0.0) * 1e6,
        worst_cpu * 1e6
    );
    (
        worst * 1e6,
        worst_cpu * 1e6,
        t0.elapsed().as_secs_f64() * 1e3,
        calls,
        over_1ms,
    )
}

/// The value after `--name` on the command line, parsed.
fn arg_value<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--flows N`: the large flow count (1,000,000; `--quick` 100,000). `--packets N`: packets
    // per established row (20,000,000; `--quick` 2,000,000). `--only a,b`: run only these rows
    // (udp-1k, tcp-1k, table-1k, udp-big, tcp-big, table-big, new, mem, expiry), e.g. for
    // instruction counts under cachegrind with a fixed, smaller workload.
    let big = arg_value::<u32>("--flows").unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let pk = arg_value::<u32>("--packets").unwrap_or(if quick { 2_000_000 } else { 20_000_000 });
    let only: Option<Vec<String>> =
        arg_value::<String>("--only").map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let want = |row: &str| only.as_ref().is_none_or(|o| o.iter().any(|r| r == row));
    println!("nat-core natbench (one core, release build)");
    println!("rates: M packets per CPU-second of this thread (per wall-second in parentheses)");
    println!("{:<58} {:>16}", "measurement", "result");
    let line = |name: String, v: String| println!("{name:<58} {v:>16}");
    let big_label = match big {
        1_000_000 => "1,000,000".to_string(),
        100_000 => "100,000".to_string(),
        n => n.to_string(),
    };
    if std::env::args().any(|a| a == "--expiry-only") {
        let (w, wc, total, calls, over) = run_expiry(big);
        println!("expiry {big}: worst wall {w:.1} us, worst not preempted {wc:.1} us, {over} of {calls} calls > 1 ms, {total:.0} ms");
        return;
    }
    for (n, label, tag) in [
        (1_000u32, "1,000".to_string(), "1k"),
        (big, big_label, "big"),
    ] {
        if want(&format!("udp-{tag}")) {
            let (o, i) = run_established(n, false, pk);
            line(
                format!("established UDP 64 B, {label} flows, outbound (engine)"),
                o,
            );
            line(
                format!("established UDP 64 B, {label} flows, inbound (engine)"),
                i,
            );
        }
        if want(&format!("tcp-{tag}")) {
            let (o, i) = run_established(n, true, pk);
            line(
                format!("established TCP 64 B, {label} flows, outbound (engine)"),
                o,
            );
            line(
                format!("established TCP 64 B, {label} flows, inbound (engine)"),
                i,
            );
        }
        if want(&format!("table-{tag}")) {
            let t = run_table_only(n, pk);
            line(
                format!("established UDP 64 B, {label} flows, masq table only"),
                t,
            );
        }
    }
    if want("new") {
        let nm = run_new_mappings(big);
        line(format!("new mappings (UDP, {big} distinct flows)"), nm);
    }
    if want("mem") {
        let mem = memory_per_mapping(big);
        line(
            format!("heap per live mapping ({big} mappings, engine total)"),
            format!("{mem:.1} B"),
        );
    }
    if !want("expiry") {
        return;
    }
    let (worst_us, worst_cpu_us, total_ms, calls, over) = run_expiry(big);
    line(
        format!("expiry of {big}: worst handle_timeout call (not preempted)"),
        format!("{worst_cpu_us:.1} us"),
    );
    line(
        format!("expiry of {big}: worst handle_timeout call (wall)"),
        format!("{worst_us:.1} us"),
    );
    line(
        format!("expiry of {big}: calls over 1 ms (wall)"),
        format!("{over} of {calls}"),
    );
    line(
        format!("expiry of {big}: drained in (wall)"),
        format!("{total_ms:.0} ms"),
    );
}
