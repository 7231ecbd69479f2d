//! Criterion benchmarks of the masquerading fast path (`cargo bench -p nat-core`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nat_core::wire::{ipv4, proto, udp};
use nat_core::{Engine, EngineConfig, Instant};
use std::net::Ipv4Addr;

const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

fn udp64(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto::UDP,
        payload_len: 44,
        ttl: 64,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    let mut u = udp::Packet::new_unchecked(&mut b[20..]);
    u.set_src_port(sp);
    u.set_dst_port(dp);
    u.set_len(44);
    u.fill_checksum(src, dst);
    b
}

fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    e.firewall_mut()
        .set_policy("forward", "MASQ")
        .expect("legal policy");
    e.set_masq_address(Some(MASQ));
    e
}

fn established(c: &mut Criterion) {
    let mut e = engine();
    let now = Instant::from_secs(1);
    let remote = Ipv4Addr::new(198, 51, 100, 7);
    let mut outs = Vec::new();
    let mut ins = Vec::new();
    for i in 0..1000u16 {
        let host = Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1);
        let mut p = udp64(host, 10_000 + i, remote, 53);
        let _ = e.process_from_lan(now, &mut p);
        let mport = u16::from_be_bytes([p[20], p[21]]);
        outs.push(udp64(host, 10_000 + i, remote, 53));
        ins.push(udp64(remote, 53, MASQ, mport));
    }
    let mut g = c.benchmark_group("established_udp_1000_flows");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(2048);
    let mut k = 0usize;
    g.bench_function("outbound", |b| {
        b.iter(|| {
            k = (k + 1) % outs.len();
            buf.clear();
            buf.extend_from_slice(&outs[k]);
            e.process_from_lan(now, &mut buf)
        })
    });
    g.bench_function("inbound", |b| {
        b.iter(|| {
            k = (k + 1) % ins.len();
            buf.clear();
            buf.extend_from_slice(&ins[k]);
            e.process_from_link(now, &mut buf)
        })
    });
    g.finish();
}

fn new_mappings(c: &mut Criterion) {
    let remote = Ipv4Addr::new(198, 51, 100, 7);
    c.bench_function("new_mapping_udp", |b| {
        let mut e = engine();
        let mut i: u32 = 0;
        let mut buf = Vec::with_capacity(2048);
        b.iter(|| {
            i = i.wrapping_add(1);
            if e.free_ports().udp.0 == 0 {
                e.masq_mut().flush();
            }
            let host = Ipv4Addr::from(0x0a00_0000 | (i >> 12));
            buf.clear();
            buf.extend_from_slice(&udp64(host, (i & 0xFFF) as u16 + 1024, remote, 53));
            e.process_from_lan(Instant::from_secs(1), &mut buf)
        })
    });
}

criterion_group!(benches, established, new_mappings);
criterion_main!(benches);
