//! Unit tests of the masquerade table (packet-level tests are in tests/engine.rs).

use super::*;
use crate::wire::proto;

const MA: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

fn table() -> MasqTable {
    let mut t = MasqTable::new(MasqConfig::linux22());
    t.set_masq_addr(Some(MA));
    t
}

fn host(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i)
}

#[test]
fn entry_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<Entry>(), 64);
    assert_eq!(std::mem::align_of::<Entry>(), 64);
}

#[test]
fn expiry_work_is_bounded_per_call() {
    let mut cfg = MasqConfig::linux22();
    cfg.ports = [PortRange {
        lo: 1024,
        hi: 65535,
    }; 3];
    cfg.port_reuse = 64;
    cfg.mapping = Mapping::AddressPortDependent;
    let mut t = MasqTable::new(cfg);
    t.set_masq_addr(Some(MA));
    let now = Instant::from_secs(1);
    let remote = Ipv4Addr::new(198, 51, 100, 1);
    for i in 0..20_000u32 {
        t.create(
            now,
            proto::UDP,
            host(i),
            1000,
            remote,
            (i % 60_000) as u16 + 1,
            0,
            None,
        )
        .expect("room");
    }
    assert_eq!(t.len(), 20_000);
    let later = now + Duration::from_secs(301);
    let mut calls = 0;
    while !t.is_empty() {
        let freed = t.handle_timeout(later);
        assert!(freed <= wheel::BUDGET as usize);
        calls += 1;
        assert!(calls < 1000);
    }
    assert!(calls >= 20_000 / wheel::BUDGET as usize);
    assert_eq!(t.free_ports().udp.0, t.free_ports().udp.1);
}

#[test]
fn refresh_later_and_earlier() {
    let mut t = table();
    let r = Ipv4Addr::new(198, 51, 100, 1);
    let now = Instant::from_secs(10);
    let i = t
        .create(now, proto::TCP, host(1), 1000, r, 80, 0, None)
        .expect("room");
    // NONE state: 30 min. Established by packets, then closed: deadline moves earlier.
    t.tcp_update(now, i, true, crate::wire::tcp::FLG_SYN);
    t.tcp_update(
        now,
        i,
        false,
        crate::wire::tcp::FLG_SYN | crate::wire::tcp::FLG_ACK,
    );
    t.tcp_update(now, i, true, crate::wire::tcp::FLG_RST);
    assert_eq!(State::from_u8(t.entries[i as usize].state), State::Close);
    let _ = t.handle_timeout(now + Duration::from_secs(9));
    assert_eq!(t.len(), 1);
    let _ = t.handle_timeout(now + Duration::from_secs(11));
    assert_eq!(t.len(), 0);
}

#[test]
fn stale_wheel_records_do_not_free_reused_slots() {
    let mut t = table();
    let r = Ipv4Addr::new(198, 51, 100, 1);
    let now = Instant::from_secs(1);
    let i = t
        .create(now, proto::UDP, host(1), 1, r, 53, 0, None)
        .expect("room");
    t.remove(i);
    // Same slot, new entry with a later deadline.
    let later = now + Duration::from_secs(100);
    let j = t
        .create(later, proto::UDP, host(2), 2, r, 53, 0, None)
        .expect("room");
    assert_eq!(i, j);
    let _ = t.handle_timeout(now + Duration::from_secs(301));
    assert_eq!(
        t.len(),
        1,
        "old record for the slot must not expire the new entry"
    );
    let _ = t.handle_timeout(later + Duration::from_secs(301));
    assert_eq!(t.len(), 0);
}

#[test]
fn fixed_port_conflicts() {
    let mut t = table();
    let r = Ipv4Addr::new(198, 51, 100, 1);
    let now = Instant::from_secs(1);
    t.create(now, proto::UDP, host(1), 1, r, 53, 0, Some(61005))
        .expect("free");
    assert_eq!(
        t.create(now, proto::UDP, host(2), 1, r, 53, 0, Some(61005)),
        Err(MasqError::AlreadyUsed)
    );
    assert_eq!(
        MasqTable::new(MasqConfig::linux22()).create(now, proto::UDP, host(2), 1, r, 53, 0, None),
        Err(MasqError::NoAddress)
    );
}

#[test]
fn change_feed_overflows_to_resync() {
    let mut cfg = MasqConfig::linux22();
    cfg.change_log_capacity = 4;
    let mut t = MasqTable::new(cfg);
    t.set_masq_addr(Some(MA));
    let r = Ipv4Addr::new(198, 51, 100, 1);
    let now = Instant::from_secs(1);
    for k in 0..3 {
        t.create(now, proto::UDP, host(k), 1, r, 53, 0, None)
            .expect("room");
    }
    match t.drain_changes() {
        ChangeFeed::Changes(c) => assert_eq!(c.len(), 3),
        ChangeFeed::Resync => panic!("no overflow expected"),
    }
    for k in 3..10 {
        t.create(now, proto::UDP, host(k), 1, r, 53, 0, None)
            .expect("room");
    }
    assert_eq!(t.drain_changes(), ChangeFeed::Resync);
    assert_eq!(t.drain_changes(), ChangeFeed::Changes(Vec::new()));
    let g = t.generation();
    assert!(g >= 10);
}
