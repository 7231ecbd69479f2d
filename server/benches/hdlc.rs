//! HDLC framing throughput: encode and decode of 1500-byte frames (random payload), with the
//! negotiated ACCM 0 and with the default all-ones ACCM. Reports MB/s of payload.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use masqdial_server::ppp::hdlc::{Decoder, Encoder};

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

fn bench(c: &mut Criterion) {
    let payloads = payloads();
    for accm in [0u32, 0xFFFF_FFFF] {
        let enc = Encoder::new(accm, false);
        let mut g = c.benchmark_group(format!("hdlc_accm_{accm:08x}"));
        g.throughput(Throughput::Bytes((FRAME * FRAMES) as u64));
        let mut out = Vec::with_capacity(FRAMES * FRAME * 2);
        g.bench_function("encode_1500", |b| {
            b.iter(|| {
                out.clear();
                for p in &payloads {
                    enc.encode(&[0x21], black_box(p), &mut out);
                }
                black_box(out.len())
            })
        });
        let mut line = Vec::new();
        for p in &payloads {
            enc.encode(&[0x21], p, &mut line);
        }
        let mut dec = Decoder::new(1600);
        dec.set_accm(accm);
        g.bench_function("decode_1500", |b| {
            b.iter(|| {
                let mut input = black_box(&line[..]);
                let mut n = 0usize;
                while !input.is_empty() {
                    let (used, ready) = dec.decode(input);
                    input = &input[used..];
                    if ready {
                        n += dec.frame().len();
                    }
                }
                assert_eq!(n, FRAMES * (FRAME + 1));
                n
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
