//! Engine tests with real packet bytes: masquerading both ways for UDP, TCP and ICMP, state
//! machine and timeouts, port exhaustion, expiry, dynaddr, ICMP errors, FTP, IRC DCC, views, REJECT.

use nat_core::masq::{ChangeFeed, MasqChange, MasqConfig, PortRange, State};
use nat_core::views::MasqListOptions;
use nat_core::wire::{icmp, ipv4, proto, tcp, udp};
use nat_core::{Action, DropReason, Engine, EngineConfig, Instant};
use std::net::Ipv4Addr;

#[path = "../common/mod.rs"]
mod common;
mod ftp;
mod irc;

const LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const LAN2: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);
const GW_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const MASQ2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 99);
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

fn engine_with(masq: MasqConfig) -> Engine {
    let mut e = Engine::new(EngineConfig {
        masq,
        lan_iface: "eth0".into(),
        link_iface: "ppp0".into(),
        local_addrs: vec![GW_LAN],
        ..EngineConfig::default()
    });
    e.firewall_mut()
        .set_policy("forward", "MASQ")
        .expect("MASQ is a legal forward policy");
    e.set_masq_address(Some(MASQ));
    e
}

fn engine() -> Engine {
    engine_with(MasqConfig::linux22())
}

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

fn udp_pkt(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16, data: &[u8]) -> Vec<u8> {
    let mut b = ip_header(src, dst, proto::UDP, 8 + data.len());
    let mut u = udp::Packet::new_unchecked(&mut b[20..]);
    u.set_src_port(sp);
    u.set_dst_port(dp);
    u.set_len((8 + data.len()) as u16);
    u.payload_mut().copy_from_slice(data);
    u.fill_checksum(src, dst);
    b
}

#[allow(clippy::too_many_arguments)]
fn tcp_pkt(
    src: Ipv4Addr,
    sp: u16,
    dst: Ipv4Addr,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut b = ip_header(src, dst, proto::TCP, 20 + data.len());
    let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
    t.set_src_port(sp);
    t.set_dst_port(dp);
    t.set_seq_number(seq);
    t.set_ack_number(ack);
    t.set_header_len_and_flags(20, flags);
    t.set_window_len(8192);
    t.payload_mut().copy_from_slice(data);
    t.fill_checksum(src, dst);
    b
}

fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, ty: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut b = ip_header(src, dst, proto::ICMP, 12);
    let mut m = icmp::Packet::new_unchecked(&mut b[20..]);
    m.set_msg_type(ty);
    m.set_echo_ident(id);
    m.set_echo_seq_no(seq);
    m.data_mut().copy_from_slice(b"ping");
    m.fill_checksum();
    b
}

struct Hdr {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sp: u16,
    dp: u16,
}

/// Parse and check every checksum of a TCP/UDP packet.
fn check(b: &[u8]) -> Hdr {
    let ip = ipv4::Packet::new_checked(b).expect("valid ip");
    assert!(ip.verify_checksum(), "ip checksum");
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let pl = ip.payload();
    match ip.protocol() {
        proto::UDP => {
            let u = udp::Packet::new_checked(pl).expect("udp");
            assert!(u.verify_checksum(src, dst), "udp checksum");
            Hdr {
                src,
                dst,
                sp: u.src_port(),
                dp: u.dst_port(),
            }
        }
        proto::TCP => {
            let t = tcp::Packet::new_checked(pl).expect("tcp");
            assert!(t.verify_checksum(src, dst), "tcp checksum");
            Hdr {
                src,
                dst,
                sp: t.src_port(),
                dp: t.dst_port(),
            }
        }
        _ => {
            let m = icmp::Packet::new_checked(pl).expect("icmp");
            assert!(m.verify_checksum(), "icmp checksum");
            Hdr {
                src,
                dst,
                sp: m.echo_ident(),
                dp: 0,
            }
        }
    }
}

fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

#[test]
fn udp_out_and_back() {
    let mut e = engine();
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"query");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let h = check(&p);
    assert_eq!((h.src, h.sp, h.dst, h.dp), (MASQ, 61000, REMOTE, 53));
    let mut r = udp_pkt(REMOTE, 53, MASQ, 61000, b"answer");
    assert_eq!(e.process_from_link(t(2), &mut r), Action::ToLan);
    let h = check(&r);
    assert_eq!((h.src, h.sp, h.dst, h.dp), (REMOTE, 53, LAN, 5000));
    // Second flow gets the next port, round robin.
    let mut p = udp_pkt(LAN2, 5000, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(3), &mut p), Action::ToLink);
    assert_eq!(check(&p).sp, 61001);
    // 2.2 UDP is destination-loose: a reply from another remote reaches the inside host.
    let other = Ipv4Addr::new(192, 0, 2, 99);
    let mut r = udp_pkt(other, 4444, MASQ, 61000, b"x");
    assert_eq!(e.process_from_link(t(4), &mut r), Action::ToLan);
    assert_eq!(check(&r).dst, LAN);
    // Unknown port in range: local delivery (the gateway's stack answers).
    let mut r = udp_pkt(REMOTE, 53, MASQ, 62000, b"x");
    assert_eq!(e.process_from_link(t(5), &mut r), Action::Local);
}

#[test]
fn udp_zero_checksum_stays_zero() {
    let mut e = engine();
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"query");
    p[26] = 0;
    p[27] = 0;
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    assert_eq!(&p[26..28], &[0, 0]);
}

#[test]
fn bad_checksums_dropped() {
    let mut e = engine();
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"query");
    p[30] ^= 0xFF;
    assert_eq!(
        e.process_from_lan(t(1), &mut p),
        Action::Drop(DropReason::BadChecksum)
    );
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"query");
    p[10] ^= 0xFF;
    assert_eq!(
        e.process_from_lan(t(1), &mut p),
        Action::Drop(DropReason::BadIpChecksum)
    );
    let mut p = vec![0x45, 0, 0];
    assert_eq!(
        e.process_from_lan(t(1), &mut p),
        Action::Drop(DropReason::Malformed)
    );
    assert_eq!(e.drops(DropReason::BadChecksum), 1);
    let c = e.counters();
    assert!(c.iter().any(|(k, v)| k == "drop.malformed" && *v == 1));
}

#[test]
fn ipv6_from_the_lan_is_counted_as_ipv6_not_malformed() {
    let mut e = engine();
    // An IPv6 neighbour solicitation header (version 6, next header ICMPv6), 40 bytes.
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[6] = 58;
    p[7] = 255;
    assert_eq!(
        e.process_from_lan(t(1), &mut p),
        Action::Drop(DropReason::Ipv6)
    );
    let mut p = vec![0x60];
    assert_eq!(
        e.process_from_link(t(1), &mut p),
        Action::Drop(DropReason::Ipv6)
    );
    let c = e.counters();
    let get = |k: &str| c.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    assert_eq!(get("drop.ipv6"), Some(2));
    assert_eq!(get("drop.malformed"), Some(0));
}

#[test]
fn created_counter_counts_every_entry_ever_made() {
    let mut e = engine();
    for port in 0..5u16 {
        let mut p = udp_pkt(LAN, 5000 + port, REMOTE, 53, b"query");
        assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    }
    // The same flow again creates nothing new.
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"query");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let get = |e: &Engine, k: &str| e.counters().iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    assert_eq!(get(&e, "masq.entries.created"), Some(5));
    assert_eq!(get(&e, "masq.entries.live"), Some(5));
    // After every entry expires, created stays and live drops to 0.
    e.handle_timeout(t(100_000));
    assert_eq!(get(&e, "masq.entries.live"), Some(0));
    assert_eq!(get(&e, "masq.entries.created"), Some(5));
}

#[test]
fn tcp_states_and_timeouts() {
    let mut e = engine();
    use tcp::{FLG_ACK, FLG_FIN, FLG_SYN};
    let mut p = tcp_pkt(LAN, 1025, REMOTE, 80, 1000, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(10), &mut p), Action::ToLink);
    let mport = check(&p).sp;
    let snap = &e.masq_snapshot(t(10))[0];
    assert_eq!(snap.state, State::SynSent);
    assert_eq!(snap.expire_cs, 120 * 100);
    let mut r = tcp_pkt(REMOTE, 80, MASQ, mport, 5000, 1001, FLG_SYN | FLG_ACK, b"");
    assert_eq!(e.process_from_link(t(11), &mut r), Action::ToLan);
    assert_eq!(check(&r).dst, LAN);
    let s = &e.masq_snapshot(t(11))[0];
    assert_eq!(s.state, State::Established);
    assert_eq!(s.expire_cs, 15 * 60 * 100);
    let mut p = tcp_pkt(LAN, 1025, REMOTE, 80, 1001, 5001, FLG_FIN | FLG_ACK, b"");
    assert_eq!(e.process_from_lan(t(12), &mut p), Action::ToLink);
    let s = &e.masq_snapshot(t(12))[0];
    assert_eq!(s.state, State::FinWait);
    assert_eq!(s.expire_cs, 2 * 60 * 100);
    // -M -S 0 0 30: only UDP changes; then 7200 0 0: only ESTABLISHED.
    e.set_timeouts(0, 0, 30);
    let to = e.timeouts();
    assert_eq!(to.udp.as_secs(), 30);
    assert_eq!(to.tcp[State::Established as usize].as_secs(), 900);
    assert_eq!(to.tcp[State::FinWait as usize].as_secs(), 120);
    e.set_timeouts(7200, 0, 0);
    let to = e.timeouts();
    assert_eq!(to.tcp[State::Established as usize].as_secs(), 7200);
    assert_eq!(to.tcp[State::FinWait as usize].as_secs(), 120);
    assert_eq!(to.udp.as_secs(), 30);
}

#[test]
fn tcp_rst_closes_and_expiry_frees_port() {
    let mut e = engine();
    let total = e.free_ports().tcp;
    assert_eq!(total, (40960, 40960));
    let mut p = tcp_pkt(LAN, 1025, REMOTE, 80, 1, 0, tcp::FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(0), &mut p), Action::ToLink);
    assert_eq!(e.free_ports().tcp.0, 40959);
    // 2.2 table: an outbound RST in SYN_SENT stays SYN_SENT; once established it closes.
    let mport = check(&p).sp;
    let mut r = tcp_pkt(
        REMOTE,
        80,
        MASQ,
        mport,
        9,
        2,
        tcp::FLG_SYN | tcp::FLG_ACK,
        b"",
    );
    assert_eq!(e.process_from_link(t(0), &mut r), Action::ToLan);
    let mut p = tcp_pkt(LAN, 1025, REMOTE, 80, 2, 0, tcp::FLG_RST, b"");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    assert_eq!(e.masq_snapshot(t(1))[0].state, State::Close);
    // CLOSE lasts 10 s.
    let mut now = 1_000;
    while now < 10_500 {
        let _ = e.handle_timeout(Instant::from_millis(now));
        now += 100;
    }
    assert_eq!(e.masq().len(), 1, "not yet expired at 10.5 s");
    while now < 12_000 {
        let _ = e.handle_timeout(Instant::from_millis(now));
        now += 100;
    }
    assert_eq!(e.masq().len(), 0);
    assert_eq!(e.free_ports().tcp.0, 40960);
}

#[test]
fn icmp_echo_by_id() {
    let mut e = engine();
    let mut p = icmp_echo(LAN, REMOTE, icmp::types::ECHO_REQUEST, 0x1234, 1);
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let h = check(&p);
    assert_eq!(h.src, MASQ);
    let mid = h.sp;
    assert!(PortRange::LINUX22.contains(mid));
    let mut r = icmp_echo(REMOTE, MASQ, icmp::types::ECHO_REPLY, mid, 1);
    assert_eq!(e.process_from_link(t(2), &mut r), Action::ToLan);
    let h = check(&r);
    assert_eq!((h.dst, h.sp), (LAN, 0x1234));
    let s = &e.masq_snapshot(t(2))[0];
    assert_eq!(s.state, State::Icmp);
    assert_eq!(s.remote.1, 8 << 8);
    assert_eq!(s.expire_cs, 6000);
}

#[test]
fn port_exhaustion_is_clean() {
    let mut cfg = MasqConfig::linux22();
    cfg.ports = [PortRange {
        lo: 61000,
        hi: 61001,
    }; 3];
    cfg.port_reuse = 1;
    let mut e = engine_with(cfg);
    for (i, sp) in [5000u16, 5001].iter().enumerate() {
        let mut p = udp_pkt(LAN, *sp, REMOTE, 53, b"q");
        assert_eq!(e.process_from_lan(t(i as u64), &mut p), Action::ToLink);
    }
    let mut p = udp_pkt(LAN, 5002, REMOTE, 53, b"q");
    assert_eq!(
        e.process_from_lan(t(3), &mut p),
        Action::Drop(DropReason::PortsExhausted)
    );
    assert_eq!(e.free_ports().udp, (0, 2));
    // Existing flows still work.
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(4), &mut p), Action::ToLink);
}

#[test]
fn tcp_port_reuse_per_destination() {
    let mut cfg = MasqConfig::linux22();
    cfg.ports = [PortRange {
        lo: 61000,
        hi: 61000,
    }; 3];
    let mut e = engine_with(cfg);
    let r2 = Ipv4Addr::new(198, 51, 100, 8);
    let mut a = tcp_pkt(LAN, 1025, REMOTE, 80, 1, 0, tcp::FLG_SYN, b"");
    let mut b = tcp_pkt(LAN2, 1025, r2, 80, 1, 0, tcp::FLG_SYN, b"");
    let mut c = tcp_pkt(LAN2, 1026, REMOTE, 80, 1, 0, tcp::FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(1), &mut a), Action::ToLink);
    assert_eq!(e.process_from_lan(t(1), &mut b), Action::ToLink);
    assert_eq!(check(&a).sp, check(&b).sp);
    // Same destination 5-tuple would collide: no port left.
    assert_eq!(
        e.process_from_lan(t(1), &mut c),
        Action::Drop(DropReason::PortsExhausted)
    );
}

#[test]
fn dynaddr_rekeys_unreplied_and_drops_others() {
    let mut e = engine();
    let mut a = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    let mut b = udp_pkt(LAN2, 5001, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(1), &mut a), Action::ToLink);
    assert_eq!(e.process_from_lan(t(1), &mut b), Action::ToLink);
    let pb = check(&b).sp;
    let mut r = udp_pkt(REMOTE, 53, MASQ, check(&a).sp, b"r");
    assert_eq!(e.process_from_link(t(2), &mut r), Action::ToLan);
    let _ = e.drain_changes();
    assert_eq!(e.set_masq_address(Some(MASQ2)), (1, 1));
    assert_eq!(e.masq().len(), 1);
    let mut b = udp_pkt(LAN2, 5001, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(3), &mut b), Action::ToLink);
    let h = check(&b);
    assert_eq!((h.src, h.sp), (MASQ2, pb));
    let mut r = udp_pkt(REMOTE, 53, MASQ2, pb, b"r");
    assert_eq!(e.process_from_link(t(4), &mut r), Action::ToLan);
    assert_eq!(check(&r).dst, LAN2);
    match e.drain_changes() {
        ChangeFeed::Changes(c) => {
            assert!(c.iter().any(|c| matches!(c, MasqChange::Removed(_))));
            assert!(c.iter().any(|c| matches!(c, MasqChange::Updated(_))));
        }
        ChangeFeed::Resync => panic!("small change log overflowed"),
    }
    // Link down: everything goes.
    e.set_masq_address(None);
    assert_eq!(e.masq().len(), 0);
    let mut a = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    assert_eq!(
        e.process_from_lan(t(5), &mut a),
        Action::Drop(DropReason::NoMasqAddress)
    );
}

fn icmp_error_about(from: Ipv4Addr, to: Ipv4Addr, orig: &[u8], ty: u8, code: u8) -> Vec<u8> {
    let q = orig.len().min(28);
    let mut b = ip_header(from, to, proto::ICMP, 8 + q);
    let mut m = icmp::Packet::new_unchecked(&mut b[20..]);
    m.set_msg_type(ty);
    m.set_msg_code(code);
    m.data_mut().copy_from_slice(&orig[..q]);
    m.fill_checksum();
    b
}

#[test]
fn inbound_icmp_error_translated() {
    let mut e = engine();
    let mut p = udp_pkt(LAN, 5000, REMOTE, 33434, b"trace");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let before = e.masq_snapshot(t(1))[0].expire_cs;
    let router = Ipv4Addr::new(198, 51, 100, 1);
    let mut err = icmp_error_about(router, MASQ, &p, icmp::types::TIME_EXCEEDED, 0);
    assert_eq!(e.process_from_link(t(30), &mut err), Action::ToLan);
    let ip = ipv4::Packet::new_checked(&err[..]).expect("ip");
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (router, LAN));
    let m = icmp::Packet::new_checked(ip.payload()).expect("icmp");
    assert!(m.verify_checksum());
    let inner = ipv4::Packet::new_unchecked(m.data());
    assert!(inner.verify_checksum());
    assert_eq!((inner.src_addr(), inner.dst_addr()), (LAN, REMOTE));
    let iu = udp::Packet::new_unchecked(&m.data()[20..]);
    assert_eq!((iu.src_port(), iu.dst_port()), (5000, 33434));
    // RFC 5508 REQ-6: the error did not refresh the mapping.
    assert_eq!(e.masq_snapshot(t(30))[0].expire_cs, before - 29 * 100);
    // An error about nothing we know: dropped.
    let other = udp_pkt(MASQ, 64000, REMOTE, 53, b"x");
    let mut err = icmp_error_about(router, MASQ, &other, icmp::types::DST_UNREACHABLE, 3);
    assert_eq!(
        e.process_from_link(t(31), &mut err),
        Action::Drop(DropReason::IcmpNoMapping)
    );
}

#[test]
fn outbound_icmp_error_from_inside_translated() {
    let mut e = engine();
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let mport = check(&p).sp;
    let mut r = udp_pkt(REMOTE, 53, MASQ, mport, b"late");
    assert_eq!(e.process_from_link(t(2), &mut r), Action::ToLan);
    // The inside host answers port unreachable about the demasqueraded reply.
    let mut err = icmp_error_about(LAN, REMOTE, &r, icmp::types::DST_UNREACHABLE, 3);
    assert_eq!(e.process_from_lan(t(3), &mut err), Action::ToLink);
    let ip = ipv4::Packet::new_checked(&err[..]).expect("ip");
    assert_eq!(ip.src_addr(), MASQ);
    let m = icmp::Packet::new_checked(ip.payload()).expect("icmp");
    assert!(m.verify_checksum());
    let inner = ipv4::Packet::new_unchecked(m.data());
    assert_eq!(inner.dst_addr(), MASQ);
    assert_eq!(u16::from_be_bytes([m.data()[22], m.data()[23]]), mport);
}

#[test]
fn views_byte_exact() {
    let mut e = engine();
    assert_eq!(
        e.render_masq_list(t(0), MasqListOptions::default()),
        "IP masquerading entries\n"
    );
    let mut p = udp_pkt(LAN, 1026, REMOTE, 53, b"q");
    assert_eq!(
        e.process_from_lan(Instant::from_millis(0), &mut p),
        Action::ToLink
    );
    let now = Instant::from_millis(12_340);
    let expect = "IP masquerading entries\n\
prot expire   source               destination          ports\n\
UDP  04:47.66 192.168.1.10         198.51.100.7         1026 (61000) -> domain\n";
    assert_eq!(e.render_masq_list(now, MasqListOptions::default()), expect);
    let expect_nv = "IP masquerading entries\n\
prot expire      initseq delta prevd source               destination          ports\n\
UDP  04:47.66          0     0     0 192.168.1.10         198.51.100.7         1026 (61000) -> 53\n";
    assert_eq!(
        e.render_masq_list(
            now,
            MasqListOptions {
                numeric: true,
                verbose: true
            }
        ),
        expect_nv
    );
    let proc_ = e.render_proc_ip_masquerade(now);
    let h = "Prc FromIP   FPrt ToIP     TPrt Masq Init-seq  Delta PDelta Expires (free=40959,40960,40960)";
    let r = "UDP C0A8010A:0402 C6336407:0035 EE48 00000000      0      0   28766";
    let expect = format!("{h:<127}\n{r:<127}\n");
    assert_eq!(proc_, expect);
    assert_eq!(proc_.len(), 256);

    // /proc/net/ip_masq/{udp,tcp,icmp}, 2.2's ip_masq_user_info: "%-127s\n" records of
    // "%-4s %08lX:%04X %08lX:%04X %08lX:%04X %-12s %3X %4d %3d %7lu %4d %4d".
    let mut s = tcp_pkt(LAN2, 1030, REMOTE, 80, 1000, 0, tcp::FLG_SYN, b"");
    assert_eq!(
        e.process_from_lan(Instant::from_millis(0), &mut s),
        Action::ToLink
    );
    let h = "Prot SrcIP    SPrt DstIP    DPrt MAddr    MPrt State        Flgs Ref Ctl Expires HRow HCol (free=40959,40959,40960)";
    // UDP: DLOOSE|NO_REPLY|HASHED = 0x190; loose, so row = (17 ^ maddr ^ mport) & 255 =
    // 0x11 ^ 0x05 ^ 0x48 = 92; 300 s - 12.34 s left.
    let u = "UDP  C0A8010A:0402 C6336407:0035 CB007105:EE48 UDP          190    3   0     287   92    1";
    assert_eq!(
        e.render_proc_ip_masq_proto(now, proto::UDP),
        format!("{h:<127}\n{u:<127}\n")
    );
    // TCP: the next port of 2.2's one masq_port counter (61001); NO_REPLY|HASHED = 0x180;
    // strict, so row = (6 ^ (maddr ^ daddr) ^ (mport ^ dport)) & 255
    // = 0x06 ^ (0x05 ^ 0x07) ^ (0x49 ^ 0x50) = 29; SYN_SENT: 120 s - 12.34 s left.
    let t_ = "TCP  C0A8010B:0406 C6336407:0050 CB007105:EE49 SYN_SENT     180    3   0     107   29    1";
    assert_eq!(
        e.render_proc_ip_masq_proto(now, proto::TCP),
        format!("{h:<127}\n{t_:<127}\n")
    );
    assert_eq!(
        e.render_proc_ip_masq_proto(now, proto::ICMP),
        format!("{h:<127}\n")
    );
}

#[test]
fn reject_builds_icmp_and_deny_counts() {
    let mut e = engine();
    e.firewall_mut()
        .set_policy("forward", "REJECT")
        .expect("legal");
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    let orig = p.clone();
    let Action::Reply(r) = e.process_from_lan(t(1), &mut p) else {
        panic!("REJECT must reply");
    };
    let ip = ipv4::Packet::new_checked(&r[..]).expect("ip");
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (GW_LAN, LAN));
    let m = icmp::Packet::new_checked(ip.payload()).expect("icmp");
    assert!(m.verify_checksum());
    assert_eq!((m.msg_type(), m.msg_code()), (3, 1));
    assert_eq!(&m.data()[..orig.len()], &orig[..]);
    e.firewall_mut()
        .set_policy("forward", "DENY")
        .expect("legal");
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    assert_eq!(
        e.process_from_lan(t(1), &mut p),
        Action::Drop(DropReason::ForwardDeny)
    );
    assert_eq!(e.drops(DropReason::ForwardDeny), 2);
}

#[test]
fn local_delivery_and_demasq_skips_forward() {
    let mut e = engine();
    let mut p = udp_pkt(LAN, 5000, GW_LAN, 53, b"q");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::Local);
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let mport = check(&p).sp;
    // Forward DENY must not stop demasqueraded replies (forward is skipped), output does.
    e.firewall_mut()
        .set_policy("forward", "DENY")
        .expect("legal");
    let mut r = udp_pkt(REMOTE, 53, MASQ, mport, b"r");
    assert_eq!(e.process_from_link(t(2), &mut r), Action::ToLan);
    e.firewall_mut()
        .set_policy("output", "DENY")
        .expect("legal");
    let mut r = udp_pkt(REMOTE, 53, MASQ, mport, b"r");
    assert_eq!(
        e.process_from_link(t(3), &mut r),
        Action::Drop(DropReason::OutputDeny)
    );
}

#[test]
fn rfc_profile_eim_filtering_timeouts() {
    let mut e = engine_with(MasqConfig::rfc());
    let mut a = udp_pkt(LAN, 5000, REMOTE, 3478, b"stun");
    assert_eq!(e.process_from_lan(t(1), &mut a), Action::ToLink);
    let m1 = check(&a).sp;
    let r2 = Ipv4Addr::new(192, 0, 2, 50);
    let mut b = udp_pkt(LAN, 5000, r2, 3479, b"stun");
    assert_eq!(e.process_from_lan(t(1), &mut b), Action::ToLink);
    assert_eq!(
        check(&b).sp,
        m1,
        "RFC 4787 REQ-1: same mapping for any destination"
    );
    // Address-dependent filtering: a never-contacted address is refused.
    let mut x = udp_pkt(Ipv4Addr::new(192, 0, 2, 51), 1, MASQ, m1, b"x");
    assert_eq!(e.process_from_link(t(2), &mut x), Action::Local);
    let mut y = udp_pkt(r2, 9999, MASQ, m1, b"y");
    assert_eq!(e.process_from_link(t(2), &mut y), Action::ToLan);
    assert_eq!(e.masq_snapshot(t(2))[0].expire_cs, 300 * 100);
    assert_eq!(
        e.timeouts().tcp[State::Established as usize].as_secs(),
        7440
    );
}

#[test]
fn timeouts_poll_contract() {
    let mut e = engine();
    assert_eq!(e.poll_timeout(), None);
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(0), &mut p), Action::ToLink);
    let mut now = Instant::ZERO;
    let mut calls = 0;
    while !e.masq().is_empty() && calls < 100_000 {
        now = e.poll_timeout().expect("pending").max(now);
        let _ = e.handle_timeout(now);
        now = now + nat_core::Duration::from_millis(100);
        calls += 1;
    }
    assert_eq!(e.masq().len(), 0);
    assert!(
        now.as_millis() >= 300_000 && now.as_millis() < 301_000,
        "{now:?}"
    );
}

/// What must hold for any input, valid or not: a forwarded packet has a valid IP header
/// checksum, and a valid transport checksum whenever the input had one (the engine only ever
/// rewrites checksums consistently; it does not repair a forwarded packet's bad ones); a dropped
/// or held packet is counted; a generated ICMP error has valid outer checksums.
fn engine_invariants(
    e: &Engine,
    input: &[u8],
    action: &Action,
    output: &[u8],
    drops_before: u64,
) -> Result<(), proptest::test_runner::TestCaseError> {
    use proptest::prop_assert;
    let input_ok = common::all_checksums_ok(input).is_ok();
    match action {
        Action::ToLink | Action::ToLan => {
            prop_assert!(
                common::ip_header_ok(output),
                "forwarded with a bad IP header checksum"
            );
            if input_ok {
                let r = common::all_checksums_ok(output);
                prop_assert!(r.is_ok(), "valid input forwarded with {:?}", r);
            }
        }
        Action::Reply(r) => {
            prop_assert!(common::ip_header_ok(r));
            let hl = common::ihl(r);
            prop_assert!(common::transport_ok(
                common::addr(r, 12),
                common::addr(r, 16),
                r[9],
                &r[hl..]
            ));
        }
        Action::Drop(_) => {
            prop_assert!(drops(e) > drops_before, "a drop that was not counted");
        }
        _ => {}
    }
    Ok(())
}

fn drops(e: &Engine) -> u64 {
    e.counters()
        .iter()
        .filter(|(n, _)| n.starts_with("drop."))
        .map(|(_, v)| v)
        .sum()
}

proptest::proptest! {
    #[test]
    fn any_bytes_keep_the_engine_invariants(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
        let mut e = engine();
        let mut a = data.clone();
        let d = drops(&e);
        let act = e.process_from_lan(t(1), &mut a);
        engine_invariants(&e, &data, &act, &a, d)?;
        let mut b = data.clone();
        let d = drops(&e);
        let act = e.process_from_link(t(1), &mut b);
        engine_invariants(&e, &data, &act, &b, d)?;
    }

    #[test]
    fn mutated_packets_keep_the_engine_invariants(seed in proptest::collection::vec((0usize..80, proptest::prelude::any::<u8>()), 0..6), which in 0usize..3) {
        let mut e = engine();
        let base = match which {
            0 => udp_pkt(LAN, 5000, REMOTE, 53, b"payload!"),
            1 => tcp_pkt(LAN, 1030, REMOTE, 21, 1, 2, tcp::FLG_ACK, b"PORT 192,168,1,10,4,10\r\n"),
            _ => icmp_echo(LAN, REMOTE, 8, 7, 7),
        };
        let mut p = base.clone();
        proptest::prop_assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
        let mut q = base;
        for (i, v) in seed { if i < q.len() { q[i] = v; } }
        let mut a = q.clone();
        let d = drops(&e);
        let act = e.process_from_lan(t(2), &mut a);
        engine_invariants(&e, &q, &act, &a, d)?;
        let mut b = q.clone();
        let d = drops(&e);
        let act = e.process_from_link(t(2), &mut b);
        engine_invariants(&e, &q, &act, &b, d)?;
    }

    #[test]
    fn out_then_in_is_identity(sp in 1u16.., dp in 1u16.., len in 0usize..64, tcpp in proptest::prelude::any::<bool>()) {
        let mut e = engine();
        let data = vec![0x5a; len];
        let mut p = if tcpp { tcp_pkt(LAN, sp, REMOTE, dp, 7, 0, tcp::FLG_SYN, &data) } else { udp_pkt(LAN, sp, REMOTE, dp, &data) };
        proptest::prop_assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
        let h = check(&p);
        let mut r = if tcpp { tcp_pkt(REMOTE, dp, MASQ, h.sp, 9, 8, tcp::FLG_SYN | tcp::FLG_ACK, &data) } else { udp_pkt(REMOTE, dp, MASQ, h.sp, &data) };
        proptest::prop_assert_eq!(e.process_from_link(t(2), &mut r), Action::ToLan);
        let expect = if tcpp { tcp_pkt(REMOTE, dp, LAN, sp, 9, 8, tcp::FLG_SYN | tcp::FLG_ACK, &data) } else { udp_pkt(REMOTE, dp, LAN, sp, &data) };
        proptest::prop_assert_eq!(r, expect);
    }
}

#[test]
fn rfc_hairpinning() {
    let mut cfg = MasqConfig::rfc();
    cfg.filtering = nat_core::masq::Filtering::EndpointIndependent;
    let mut e = engine_with(cfg);
    // B opens a mapping by sending out.
    let mut b = udp_pkt(LAN2, 7000, REMOTE, 3478, b"b");
    assert_eq!(e.process_from_lan(t(1), &mut b), Action::ToLink);
    let mb = check(&b).sp;
    // A sends to B's external address: hairpinned to B, source = A's mapping.
    let mut a = udp_pkt(LAN, 6000, MASQ, mb, b"hello");
    assert_eq!(e.process_from_lan(t(2), &mut a), Action::ToLan);
    let h = check(&a);
    assert_eq!((h.dst, h.dp), (LAN2, 7000));
    assert_eq!(h.src, MASQ);
    assert_ne!(h.sp, 6000);
}

#[test]
fn fragments_reassembled_before_masquerading() {
    let mut e = engine();
    let data: Vec<u8> = (0..64u8).collect();
    let whole = udp_pkt(LAN, 5000, REMOTE, 53, &data);
    // Split the 72-byte UDP datagram into 32 + 40 bytes.
    let frag = |off: usize, len: usize, mf: bool| {
        let mut f = ip_header(LAN, REMOTE, proto::UDP, len);
        f[20..].copy_from_slice(&whole[20 + off..20 + off + len]);
        let mut ip = ipv4::Packet::new_unchecked(&mut f[..]);
        ip.set_ident(77);
        ip.set_flags_and_offset(false, mf, off as u16);
        ip.fill_checksum();
        f
    };
    let mut f1 = frag(0, 32, true);
    let mut f2 = frag(32, 40, false);
    assert_eq!(e.process_from_lan(t(1), &mut f2), Action::Held);
    assert_eq!(e.process_from_lan(t(1), &mut f1), Action::ToLink);
    let h = check(&f1);
    assert_eq!((h.src, h.sp), (MASQ, 61000));
    assert_eq!(&f1[28..], &data[..]);
}

#[test]
fn rfc_exhaustion_answers_icmp_code_13() {
    let mut cfg = MasqConfig::rfc();
    cfg.ports = [PortRange {
        lo: 40000,
        hi: 40000,
    }; 3];
    let mut e = engine_with(cfg);
    let mut a = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(1), &mut a), Action::ToLink);
    assert_eq!(check(&a).sp, 40000);
    let mut b = udp_pkt(LAN2, 5000, REMOTE, 53, b"q");
    let Action::Reply(r) = e.process_from_lan(t(1), &mut b) else {
        panic!("RFC 5508 REQ-8 reply expected");
    };
    let ip = ipv4::Packet::new_checked(&r[..]).expect("ip");
    assert_eq!(ip.dst_addr(), LAN2);
    let m = icmp::Packet::new_checked(ip.payload()).expect("icmp");
    assert_eq!((m.msg_type(), m.msg_code()), (3, 13));
    assert!(m.verify_checksum());
    assert_eq!(e.drops(DropReason::PortsExhausted), 1);
}

#[test]
fn engine_is_send_for_the_dataplane_task() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Engine>();
}

#[test]
fn entry_counts_packets_and_bytes() {
    let mut e = engine();
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"query");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let mut r = udp_pkt(REMOTE, 53, MASQ, 61000, b"answer!");
    assert_eq!(e.process_from_link(t(2), &mut r), Action::ToLan);
    let s = &e.masq_snapshot(t(2))[0];
    assert_eq!((s.packets, s.bytes), (2, 33 + 35));
}

#[test]
fn a_lan_host_over_its_entry_quota_is_refused_and_others_are_not() {
    let mut e = engine_with(MasqConfig {
        max_per_host: 3,
        icmp_on_exhaustion: false,
        ..MasqConfig::linux22()
    });
    for port in 0..3u16 {
        let mut p = udp_pkt(LAN, 5000 + port, REMOTE, 53, b"q");
        assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    }
    let mut p = udp_pkt(LAN, 5003, REMOTE, 53, b"q");
    assert_eq!(
        e.process_from_lan(t(1), &mut p),
        Action::Drop(DropReason::HostQuota)
    );
    // An existing flow of that host still passes; another host is not affected.
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let mut p = udp_pkt(LAN2, 5003, REMOTE, 53, b"q");
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    assert_eq!(e.drops(DropReason::HostQuota), 1);
    // Once the entries expire the host gets its quota back.
    e.handle_timeout(t(100_000));
    for port in 10..13u16 {
        let mut p = udp_pkt(LAN, 5000 + port, REMOTE, 53, b"q");
        assert_eq!(e.process_from_lan(t(100_001), &mut p), Action::ToLink);
    }
    let mut p = udp_pkt(LAN, 5013, REMOTE, 53, b"q");
    assert_eq!(
        e.process_from_lan(t(100_001), &mut p),
        Action::Drop(DropReason::HostQuota)
    );
}

#[test]
fn the_table_copies_in_bounded_pieces_that_add_up_to_the_whole() {
    let mut e = engine();
    for port in 0..25u16 {
        let mut p = udp_pkt(LAN, 6000 + port, REMOTE, 53, b"q");
        assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    }
    // Free some slots in the middle: pieces skip them.
    let mut whole = e.masq_snapshot(t(2));
    assert_eq!(whole.len(), 25);
    let mut got = Vec::new();
    let mut from = Some(0u32);
    let mut pieces = 0;
    while let Some(f) = from {
        let (piece, next) = e.masq_snapshot_from(t(2), f, 7);
        assert!(piece.len() <= 7);
        got.extend(piece);
        from = next;
        pieces += 1;
        assert!(pieces < 100, "pieces must end");
    }
    assert_eq!(pieces, 4);
    whole.sort_by_key(|s| s.id);
    got.sort_by_key(|s| s.id);
    assert_eq!(got, whole);
    // Past the end: nothing, and no continuation.
    assert_eq!(e.masq_snapshot_from(t(2), 1000, 7), (vec![], None));
}
