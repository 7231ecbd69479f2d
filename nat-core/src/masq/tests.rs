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

/// Linux 2.2 `net/ipv4/ip_masq.c`, `masq_tcp_states[]` as the kernel lays it out: rows syn, fin,
/// ack, rst for INPUT (outside → inside) then OUTPUT; columns the current state.
const KERNEL_MASQ_TCP_STATES: [&str; 8] = [
    // INPUT    mNO, mES, mSS, mSR, mFW, mTW, mCL, mCW, mLA, mLI
    "syn: mSR, mES, mES, mSR, mSR, mSR, mSR, mSR, mSR, mSR",
    "fin: mCL, mCW, mSS, mTW, mTW, mTW, mCL, mCW, mLA, mLI",
    "ack: mCL, mES, mSS, mSR, mFW, mTW, mCL, mCW, mCL, mLI",
    "rst: mCL, mCL, mCL, mSR, mCL, mCL, mCL, mCL, mLA, mLI",
    // OUTPUT   mNO, mES, mSS, mSR, mFW, mTW, mCL, mCW, mLA, mLI
    "syn: mSS, mES, mSS, mES, mSS, mSS, mSS, mSS, mSS, mLI",
    "fin: mTW, mFW, mSS, mTW, mFW, mTW, mCL, mTW, mLA, mLI",
    "ack: mES, mES, mSS, mSR, mFW, mTW, mCL, mCW, mLA, mES",
    "rst: mCL, mCL, mSS, mCL, mCL, mTW, mCL, mCL, mCL, mCL",
];

/// The kernel's `masq_timeout_table` for the TCP states, in seconds (NONE … LISTEN).
const KERNEL_TCP_TIMEOUTS: [u64; 10] = [
    30 * 60,
    15 * 60,
    2 * 60,
    60,
    2 * 60,
    2 * 60,
    10,
    60,
    30,
    2 * 60,
];

fn kernel_state(name: &str) -> State {
    match name.trim() {
        "mNO" => State::None,
        "mES" => State::Established,
        "mSS" => State::SynSent,
        "mSR" => State::SynRecv,
        "mFW" => State::FinWait,
        "mTW" => State::TimeWait,
        "mCL" => State::Close,
        "mCW" => State::CloseWait,
        "mLA" => State::LastAck,
        "mLI" => State::Listen,
        other => panic!("not a kernel state: {other}"),
    }
}

/// A TCP segment with valid checksums.
fn tcp_segment(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16, flags: u16) -> Vec<u8> {
    use crate::wire::{ipv4, tcp};
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
    t.set_seq_number(1000);
    t.set_ack_number(2000);
    t.set_header_len_and_flags(20, flags);
    t.set_window_len(512);
    t.fill_checksum(src, dst);
    b
}

/// Put an entry in `state`, send one real segment with `flags` through the translator in the
/// given direction, and return the entry's new state and the time to its expiry.
fn after_segment(state: State, outbound: bool, flags: u16) -> (State, Duration) {
    let mut t = table();
    let r = Ipv4Addr::new(198, 51, 100, 1);
    let now = Instant::from_secs(100);
    let i = t
        .create(now, proto::TCP, host(1), 1000, r, 80, 0, None)
        .expect("room");
    t.entries[i as usize].state = state as u8;
    let later = now + Duration::from_secs(7);
    if outbound {
        let mut p = tcp_segment(host(1), 1000, r, 80, flags);
        assert_eq!(t.masquerade(later, &mut p), Ok(i));
    } else {
        let mport = t.entries[i as usize].mport;
        let mut p = tcp_segment(r, 80, MA, mport, flags);
        assert_eq!(
            t.demasquerade(later, &mut p),
            Ok(translate::Demasq::Translated)
        );
    }
    let e = &t.entries[i as usize];
    (
        State::from_u8(e.state),
        Duration::from_millis(e.expires - later.as_millis()),
    )
}

/// All 80 cells of the 2.2 TCP table (8 event rows × 10 states), each driven by a real segment
/// through `masquerade`/`demasquerade`: the next state and the timer it re-arms.
#[test]
fn tcp_state_table_all_80_cells_match_linux22() {
    use crate::wire::tcp::{FLG_ACK, FLG_FIN, FLG_RST, FLG_SYN};
    let events = [
        ("syn", FLG_SYN),
        ("fin", FLG_FIN),
        ("ack", FLG_ACK),
        ("rst", FLG_RST),
    ];
    let mut cells = 0;
    for (row, line) in KERNEL_MASQ_TCP_STATES.iter().enumerate() {
        let outbound = row >= 4;
        let (event, flags) = events[row % 4];
        let (label, cols) = line.split_once(':').expect("row label");
        assert_eq!(label, event);
        let next: Vec<State> = cols.split(',').map(kernel_state).collect();
        assert_eq!(next.len(), tcp::TCP_STATES);
        for (s, &want) in next.iter().enumerate() {
            let from = State::from_u8(s as u8);
            let (got, timer) = after_segment(from, outbound, flags);
            let dir = if outbound { "output" } else { "input" };
            assert_eq!(got, want, "{dir} {event} in {}", from.name());
            assert_eq!(
                timer,
                Duration::from_secs(KERNEL_TCP_TIMEOUTS[want as usize]),
                "{dir} {event} in {}: timer of {}",
                from.name(),
                want.name()
            );
            cells += 1;
        }
    }
    assert_eq!(cells, 80);
}

/// `masq_tcp_state_idx`: RST before SYN before FIN before ACK; a segment with none of the four
/// gets state index -1 and `masq_tcp_state` then sets CLOSE (10 s), in both directions.
#[test]
fn tcp_state_flag_priority_and_flagless_segments() {
    use crate::wire::tcp::{FLG_ACK, FLG_FIN, FLG_PSH, FLG_RST, FLG_SYN};
    for outbound in [false, true] {
        let base = if outbound { 4 } else { 0 };
        let row = |r: usize| -> Vec<State> {
            let (_, cols) = KERNEL_MASQ_TCP_STATES[base + r]
                .split_once(':')
                .expect("row");
            cols.split(',').map(kernel_state).collect()
        };
        for s in 0..tcp::TCP_STATES {
            let from = State::from_u8(s as u8);
            let cases = [
                (FLG_RST | FLG_SYN | FLG_FIN | FLG_ACK, row(3)[s]),
                (FLG_SYN | FLG_FIN | FLG_ACK, row(0)[s]),
                (FLG_FIN | FLG_ACK | FLG_PSH, row(1)[s]),
                (FLG_ACK | FLG_PSH, row(2)[s]),
                (FLG_PSH, State::Close),
                (0, State::Close),
            ];
            for (flags, want) in cases {
                let (got, timer) = after_segment(from, outbound, flags);
                assert_eq!(
                    got,
                    want,
                    "outbound {outbound} flags {flags:#x} in {}",
                    from.name()
                );
                assert_eq!(
                    timer,
                    Duration::from_secs(KERNEL_TCP_TIMEOUTS[want as usize])
                );
            }
        }
    }
}
