//! HDLC framing throughput: encode and decode of 1500-byte frames (random payload), with the
//! negotiated ACCM 0 and with the default all-ones ACCM, plus the FCS alone.
//!
//! Two figures per case: criterion's wall-clock throughput, and — because a shared build machine
//! steals CPU — a CPU-time figure (MB of payload per second of this thread's CPU time, read from
//! `/proc/thread-self/stat`), printed at the end as "per core".

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use masqdial_ppp::hdlc::{fcs16, fcs32, Decoder, Encoder, FCS16_INIT, FCS32_INIT};

const FRAME: usize = 1500;
const FRAMES: usize = 64;

fn payloads() -> Vec<Vec<u8>> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..FRAMES)
        .map(|_| {
            (0..FRAME)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

/// One batch: encode all payloads into `out`.
fn encode_batch(enc: &Encoder, payloads: &[Vec<u8>], out: &mut Vec<u8>) -> usize {
    out.clear();
    for p in payloads {
        enc.encode(&[0x21], black_box(p), out);
    }
    out.len()
}

/// One batch: decode a line holding all frames; returns delivered bytes.
fn decode_batch(dec: &mut Decoder, line: &[u8]) -> usize {
    let mut input = black_box(line);
    let mut n = 0usize;
    while !input.is_empty() {
        let (used, ready) = dec.decode(input);
        input = &input[used..];
        if ready {
            n += dec.frame().len();
        }
    }
    n
}

fn line_for(enc: &Encoder, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut line = Vec::new();
    for p in payloads {
        enc.encode(&[0x21], p, &mut line);
    }
    line
}

fn bench(c: &mut Criterion) {
    let payloads = payloads();
    for accm in [0u32, 0xFFFF_FFFF] {
        let enc = Encoder::new(accm, false);
        let mut g = c.benchmark_group(format!("hdlc_accm_{accm:08x}"));
        g.throughput(Throughput::Bytes((FRAME * FRAMES) as u64));
        let mut out = Vec::with_capacity(FRAMES * FRAME * 2);
        g.bench_function("encode_1500", |b| {
            b.iter(|| encode_batch(&enc, &payloads, &mut out))
        });
        let line = line_for(&enc, &payloads);
        let mut dec = Decoder::new(1600);
        dec.set_accm(accm);
        g.bench_function("decode_1500", |b| {
            b.iter(|| {
                let n = decode_batch(&mut dec, &line);
                assert_eq!(n, FRAMES * (FRAME + 1));
                n
            })
        });
        g.finish();
    }
    let mut g = c.benchmark_group("fcs");
    g.throughput(Throughput::Bytes(FRAME as u64));
    g.bench_function("fcs16_1500", |b| {
        b.iter(|| fcs16(FCS16_INIT, black_box(&payloads[0])))
    });
    g.bench_function("fcs32_1500", |b| {
        b.iter(|| fcs32(FCS32_INIT, black_box(&payloads[0])))
    });
    g.finish();
}

/// This thread's CPU time in seconds (utime + stime, clock ticks of 10 ms), if readable.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Runs `batch` (moving `bytes` payload bytes each time) for about 3 s of CPU time.
fn cpu_rate(name: &str, bytes: usize, mut batch: impl FnMut() -> usize) {
    if std::env::var("HDLC_CPU_ONLY").is_ok_and(|f| !name.contains(f.as_str())) {
        return;
    }
    let Some(start) = cpu_seconds() else {
        println!("{name}: CPU time not readable here");
        return;
    };
    let mut iters = 0u64;
    let mut sink = 0usize;
    let spent = loop {
        for _ in 0..100 {
            sink = sink.wrapping_add(batch());
        }
        iters += 100;
        let now = cpu_seconds().unwrap_or(start);
        if now - start >= 3.0 {
            break now - start;
        }
    };
    black_box(sink);
    let mbps = (iters as f64 * bytes as f64) / spent / 1e6;
    println!("{name:<34} {mbps:>8.0} MB/s per core (CPU time, {iters} batches)");
}

fn cpu_report() {
    let payloads = payloads();
    let total = FRAME * FRAMES;
    println!("\nHDLC throughput per core, CPU time (1500-byte random payloads, FCS-16):");
    for accm in [0u32, 0xFFFF_FFFF] {
        let enc = Encoder::new(accm, false);
        let mut out = Vec::with_capacity(total * 2);
        cpu_rate(&format!("encode ACCM {accm:08x}"), total, || {
            encode_batch(&enc, &payloads, &mut out)
        });
        let line = line_for(&enc, &payloads);
        let mut dec = Decoder::new(1600);
        dec.set_accm(accm);
        cpu_rate(&format!("decode ACCM {accm:08x}"), total, || {
            decode_batch(&mut dec, &line)
        });
        cpu_rate(&format!("encode+decode ACCM {accm:08x}"), total, || {
            let n = encode_batch(&enc, &payloads, &mut out);
            decode_batch(&mut dec, &out) + n
        });
    }
    cpu_rate("fcs16 alone", total, || {
        payloads
            .iter()
            .map(|p| usize::from(fcs16(FCS16_INIT, p)))
            .sum()
    });
    cpu_rate("fcs32 alone", total, || {
        payloads.iter().map(|p| fcs32(FCS32_INIT, p) as usize).sum()
    });
}

criterion_group!(benches, bench);

fn main() {
    // HDLC_CPU_ONLY=<substring> skips criterion and runs only the matching CPU-time cases (profiling).
    if std::env::var("HDLC_CPU_ONLY").is_ok() {
        cpu_report();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        cpu_report();
    }
}
