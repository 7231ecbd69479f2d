//! ListMasq paging cost with 100,000 masquerade entries (issue 10): one page of 1,000 from the
//! start and from the middle of the table, and a walk over every page. Criterion;
//! `cargo bench -p masqdial-server --bench masq_page`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use masqdial_server::config::Config;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::nat_control::NatControl;
use nat_core::masq::{MasqConfig, PortRange};
use nat_core::wire::{ipv4, proto, tcp};
use nat_core::{Engine, EngineConfig, Instant};

const ENTRIES: u32 = 100_000;
const PAGE: usize = 1000;
const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

/// A TCP SYN (TCP, so that 2.2's port reuse applies: its UDP is destination-loose).
fn syn(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16) -> Vec<u8> {
    let mut b = vec![0u8; 40];
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto::TCP,
        payload_len: 20,
        ttl: 64,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
    t.set_src_port(sp);
    t.set_dst_port(dp);
    t.set_seq_number(1);
    t.set_header_len_and_flags(20, 0x002);
    t.set_window_len(65535);
    t.fill_checksum(src, dst);
    b
}

/// A NatControl over an engine holding `ENTRIES` TCP mappings (400 LAN hosts × 250 flows).
fn control() -> NatControl {
    let cfg = EngineConfig {
        masq: MasqConfig {
            ports: [PortRange {
                lo: 1024,
                hi: 65535,
            }; 3],
            ..MasqConfig::linux22()
        },
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg);
    e.firewall_mut()
        .set_policy("forward", "MASQ")
        .expect("legal policy");
    e.set_masq_address(Some(MASQ));
    let now = Instant::from_secs(1);
    for i in 0..ENTRIES {
        // Several remotes, so masquerade ports are shared (2.2's ×10 reuse).
        let remote = Ipv4Addr::new(198, 51, 100, (i % 16) as u8 + 1);
        let host = Ipv4Addr::new(10, (i / 250 / 250) as u8, (i / 250 % 250) as u8, 1);
        let mut p = syn(host, 10_000 + (i % 250) as u16, remote, 80);
        let _ = e.process_from_lan(now, &mut p);
    }
    assert_eq!(e.masq().len(), ENTRIES as usize, "every flow mapped");
    NatControl::new(Arc::new(Config::default()), NatHandle::new(e), None)
}

fn pages(c: &mut Criterion) {
    let n = control();
    let mut g = c.benchmark_group("masq_page_100k");
    g.bench_function("first page of 1000", |b| {
        b.iter(|| black_box(n.masq_page(0, PAGE, None).entries.len()))
    });
    // The cursor of the page half-way through (id and slab slot coincide in a fresh table).
    let mut mid = 0;
    let mut tok = Some(0);
    for _ in 0..ENTRIES as usize / PAGE / 2 {
        tok = tok.and_then(|t| n.masq_page(t, PAGE, None).next);
        mid = tok.unwrap_or(0);
    }
    g.bench_function("middle page of 1000", |b| {
        b.iter(|| black_box(n.masq_page(mid, PAGE, None).entries.len()))
    });
    g.sample_size(10);
    g.bench_function("every page (100 x 1000)", |b| {
        b.iter(|| {
            let (mut tok, mut seen) = (Some(0), 0);
            while let Some(t) = tok {
                let p = n.masq_page(t, PAGE, None);
                seen += p.entries.len();
                tok = p.next;
            }
            assert_eq!(seen, ENTRIES as usize);
            black_box(seen)
        })
    });
    g.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
