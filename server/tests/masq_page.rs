//! ListMasq paging over the masquerade table (issue 10: O(page), no table-wide copy and sort):
//! walking every page, at several page sizes and with a protocol filter, lists each live entry
//! exactly once, says the total, and ends without an empty page.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use masqdial_server::config::Config;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::nat_control::NatControl;
use nat_core::wire::{ipv4, proto, tcp, udp};
use nat_core::{Engine, EngineConfig, Instant};

const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

fn packet(protocol: u8, src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16) -> Vec<u8> {
    let len = if protocol == proto::TCP { 20 } else { 8 };
    let mut b = vec![0u8; 20 + len];
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: len,
        ttl: 64,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    if protocol == proto::TCP {
        let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
        t.set_src_port(sp);
        t.set_dst_port(dp);
        t.set_header_len_and_flags(20, 0x002);
        t.set_window_len(1000);
        t.fill_checksum(src, dst);
    } else {
        let mut u = udp::Packet::new_unchecked(&mut b[20..]);
        u.set_src_port(sp);
        u.set_dst_port(dp);
        u.set_len(8);
        u.fill_checksum(src, dst);
    }
    b
}

/// 1,500 TCP and 1,000 UDP entries, interleaved in the slab.
fn control() -> (NatControl, usize, usize) {
    let mut e = Engine::new(EngineConfig::default());
    e.firewall_mut()
        .set_policy("forward", "MASQ")
        .expect("legal policy");
    e.set_masq_address(Some(MASQ));
    let now = Instant::from_secs(1);
    let remote = Ipv4Addr::new(198, 51, 100, 7);
    let (mut tcp_n, mut udp_n) = (0, 0);
    for i in 0..2500u16 {
        let host = Ipv4Addr::new(10, 0, (i / 200) as u8, (i % 200) as u8 + 1);
        let p = if i % 5 < 3 { proto::TCP } else { proto::UDP };
        let mut pkt = packet(p, host, 20_000 + i, remote, 80);
        let _ = e.process_from_lan(now, &mut pkt);
        if p == proto::TCP {
            tcp_n += 1;
        } else {
            udp_n += 1;
        }
    }
    assert_eq!(e.masq().len(), 2500);
    let n = NatControl::new(Arc::new(Config::default()), NatHandle::new(e), None);
    (n, tcp_n, udp_n)
}

/// Every page from the start: the ids listed, in order, and the number of pages.
fn walk(n: &NatControl, size: usize, protocol: Option<u8>) -> (Vec<u64>, usize) {
    let (mut ids, mut pages, mut tok) = (Vec::new(), 0, Some(0));
    while let Some(t) = tok {
        let p = n.masq_page(t, size, protocol);
        assert_eq!(p.total, 2500);
        assert!(p.entries.len() <= size);
        assert!(!p.entries.is_empty(), "an empty page at cursor {t}");
        assert!(p
            .entries
            .iter()
            .all(|e| protocol.is_none_or(|x| e.proto == x)));
        ids.extend(p.entries.iter().map(|e| e.id.0));
        pages += 1;
        tok = p.next;
        assert!(pages <= 2500, "the walk does not end");
    }
    (ids, pages)
}

#[test]
fn every_entry_is_listed_once_at_any_page_size_and_filter() {
    let (n, tcp_n, udp_n) = control();
    let all: BTreeSet<u64> = n
        .nat()
        .lock()
        .masq_snapshot(n.nat().now())
        .iter()
        .map(|e| e.id.0)
        .collect();
    for (protocol, count) in [
        (None, 2500),
        (Some(proto::TCP), tcp_n),
        (Some(proto::UDP), udp_n),
    ] {
        for size in [1, 7, 1000, 2500, 10_000] {
            let (ids, pages) = walk(&n, size, protocol);
            let set: BTreeSet<u64> = ids.iter().copied().collect();
            assert_eq!(set.len(), ids.len(), "listed twice ({protocol:?}, {size})");
            assert_eq!(ids.len(), count, "{protocol:?}, page size {size}");
            assert!(set.is_subset(&all));
            assert_eq!(
                pages,
                count.div_ceil(size),
                "{protocol:?}, page size {size}"
            );
        }
    }
    // ICMP: none, one empty last page.
    let p = n.masq_page(0, 100, Some(proto::ICMP));
    assert!(p.entries.is_empty() && p.next.is_none());
    // A page size of 0 still moves on (one entry).
    let p = n.masq_page(0, 0, None);
    assert_eq!(p.entries.len(), 1);
    assert!(p.next.is_some_and(|t| t > 0));
    // A cursor past the table is its end.
    let p = n.masq_page(u64::from(u32::MAX) + 1, 100, None);
    assert!(p.entries.is_empty() && p.next.is_none());
}
