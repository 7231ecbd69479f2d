use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

const LAN_OK: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
const LAN_GUEST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 3);
const LAN_OTHER: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 9);
const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// One IPv4 datagram (header checksum filled) carrying a UDP or TCP header + payload.
fn packet(
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: usize,
) -> Vec<u8> {
    let l4 = if proto == 6 { 20 } else { 8 };
    let total = 20 + l4 + payload;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&u16::try_from(total).unwrap_or(0).to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        p[32] = 5 << 4;
        p[33] = 0x02; // SYN
    } else {
        p[24..26].copy_from_slice(&u16::try_from(8 + payload).unwrap_or(0).to_be_bytes());
    }
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

/// RFC 1071 checksum, written out here independently of nat-core's.
fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        let w = u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
        s += w;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn udp(src: Ipv4Addr, dport: u16) -> Vec<u8> {
    packet(17, src, REMOTE, 40000, dport, 32)
}

fn policy(filter: &[&str]) -> DemandPolicy {
    let mut allowed = HashMap::new();
    allowed.insert("demo".to_string(), vec!["isp1".to_string()]);
    allowed.insert("guest".to_string(), vec!["isp2".to_string()]);
    let mut p = DemandPolicy::new(
        vec![DemandRoute {
            connection: "isp1".into(),
            nets: vec!["0.0.0.0/0".parse().unwrap_or_default()],
            hold: Duration::from_secs(30),
            hold_bytes: 1000,
        }],
        vec![
            ("192.168.77.2/32".parse().unwrap_or_default(), "demo".into()),
            (
                "192.168.77.3/32".parse().unwrap_or_default(),
                "guest".into(),
            ),
        ],
        allowed,
    );
    let rules: Vec<String> = filter.iter().map(|s| s.to_string()).collect();
    if let Ok(Some(f)) = ActivityFilter::parse(&rules) {
        p.set_filter("isp1", f);
    }
    p.set_icmp_source(Ipv4Addr::new(192, 168, 77, 1));
    p
}

fn demand(filter: &[&str]) -> (Demand, Arc<DemandCounters>) {
    let c = Arc::new(DemandCounters::default());
    (Demand::new(policy(filter), Arc::clone(&c)), c)
}

fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

#[test]
fn authorized_host_dials_once_and_its_packets_are_held_then_released_in_order() {
    let (mut d, c) = demand(&[]);
    let t0 = Instant::now();
    let first = udp(LAN_OK, 7);
    let (v, dial) = d.from_lan(t0, first.clone(), false);
    assert_eq!(v, LanVerdict::Consumed);
    assert_eq!(
        dial,
        Some(DialRequest {
            connection: "isp1".into(),
            user: "demo".into(),
            host: LAN_OK,
            at: t0,
        })
    );
    // Later packets (any host) are held during the dial and ask for nothing more.
    let second = packet(6, LAN_OTHER, REMOTE, 40001, 80, 0);
    let (v, dial) = d.from_lan(t0 + Duration::from_millis(5), second.clone(), false);
    assert_eq!((v, dial), (LanVerdict::Consumed, None));
    assert_eq!(d.held(), 2);
    assert_eq!(d.release(t0 + Duration::from_secs(1)), vec![first, second]);
    assert_eq!(d.held(), 0);
    assert_eq!(
        (
            load(&c.triggered),
            load(&c.held),
            load(&c.released),
            load(&c.hold_dropped)
        ),
        (1, 2, 2, 0)
    );
    // With the link attached, packets go on as usual.
    let p = udp(LAN_OK, 7);
    assert_eq!(
        d.from_lan(t0, p.clone(), true),
        (LanVerdict::Continue(p), None)
    );
}

#[test]
fn unknown_or_unauthorized_hosts_get_host_unreachable_and_dial_nothing() {
    let (mut d, c) = demand(&[]);
    let now = Instant::now();
    for src in [LAN_OTHER, LAN_GUEST] {
        let orig = udp(src, 7);
        let (v, dial) = d.from_lan(now, orig.clone(), false);
        assert_eq!(dial, None);
        let LanVerdict::Reply(icmp) = v else {
            panic!("expected an ICMP reply, got {v:?}");
        };
        // IPv4 header: from the gateway to the sender, protocol ICMP, valid checksum.
        assert_eq!(icmp[9], 1);
        assert_eq!(&icmp[12..16], &[192, 168, 77, 1]);
        assert_eq!(&icmp[16..20], &src.octets());
        assert_eq!(checksum(&icmp[..20]), 0);
        // ICMP destination unreachable, code 1 (host), quoting the original datagram.
        assert_eq!((icmp[20], icmp[21]), (3, 1));
        assert_eq!(checksum(&icmp[20..]), 0);
        assert_eq!(&icmp[28..], &orig[..]);
    }
    assert_eq!(load(&c.refused), 2);
    assert_eq!(load(&c.triggered), 0);
    assert_eq!(d.held(), 0);
    // No ICMP error about an ICMP error.
    let mut err = packet(1, LAN_OTHER, REMOTE, 0, 0, 8);
    err[20] = 3;
    assert_eq!(d.from_lan(now, err, false), (LanVerdict::Consumed, None));
}

#[test]
fn activity_filter_ignored_packets_neither_dial_nor_reset_the_idle_timer() {
    let (mut d, c) = demand(&["-p udp -d 0/0 53 -j DENY", "-p udp -d 0/0 123 -j REJECT"]);
    let now = Instant::now();
    for port in [53, 123] {
        assert_eq!(
            d.from_lan(now, udp(LAN_OK, port), false),
            (LanVerdict::Consumed, None)
        );
    }
    assert_eq!((load(&c.ignored), load(&c.triggered)), (2, 0));
    let (_, dial) = d.from_lan(now, udp(LAN_OK, 7), false);
    assert!(dial.is_some());
    let _ = d.release(now);
    // Attached to isp1: only unfiltered packets count, replies matched swapped.
    d.set_active(Some("isp1".into()));
    let _ = d.from_lan(now, udp(LAN_OK, 123), true);
    d.from_link(&packet(17, REMOTE, LAN_OK, 123, 40000, 48));
    assert_eq!(load(&c.activity), 0);
    let _ = d.from_lan(now, udp(LAN_OK, 7), true);
    d.from_link(&packet(17, REMOTE, LAN_OK, 7, 40000, 48));
    assert_eq!(load(&c.activity), 2);
}

#[test]
fn refused_hosts_get_icmp_errors_within_a_per_host_budget() {
    let (mut d, c) = demand(&[]);
    let t0 = Instant::now();
    let replies = |d: &mut Demand, src: Ipv4Addr, at: Instant, n: usize| {
        (0..n)
            .filter(|_| matches!(d.from_lan(at, udp(src, 7), false).0, LanVerdict::Reply(_)))
            .count()
    };
    // A flood of 100 refused packets in the same instant: a burst of 6 ICMP errors.
    assert_eq!(replies(&mut d, LAN_OTHER, t0, 100), 6);
    assert_eq!(load(&c.refused), 100);
    assert_eq!(load(&c.refused_icmp_suppressed), 94);
    // Another host has its own budget.
    assert_eq!(replies(&mut d, LAN_GUEST, t0, 10), 6);
    // 2.5 s later the first host has earned two more, not a new burst.
    assert_eq!(
        replies(&mut d, LAN_OTHER, t0 + Duration::from_millis(2500), 10),
        2
    );
    // After a quiet minute, a full burst again (never more).
    assert_eq!(
        replies(&mut d, LAN_OTHER, t0 + Duration::from_secs(62), 10),
        6
    );
    assert_eq!(load(&c.triggered), 0);
}

#[test]
fn activity_filter_syntax_errors_and_targets_are_refused() {
    assert!(ActivityFilter::parse(&[]).is_ok_and(|f| f.is_none()));
    let bad = ActivityFilter::parse(&["-p udp -d 0/0 53 -j MASQ".into()]);
    assert!(bad.is_err_and(|e| e.contains("ACCEPT")));
    let bad = ActivityFilter::parse(&["-p nosuchproto -j DENY".into()]);
    assert!(bad.is_err_and(|e| e.starts_with("rule 1")));
    // ACCEPT first wins over a later DENY (first match, as ipchains).
    let f = ActivityFilter::parse(&[
        "-p udp -s 192.168.77.2 -j ACCEPT".into(),
        "-p udp -j DENY".into(),
    ]);
    let Ok(Some(f)) = f else {
        panic!("filter did not parse");
    };
    let info = |src| packet_info(&udp(src, 9), false).unwrap_or_else(|| panic!("info"));
    assert!(f.counts(&info(LAN_OK)));
    assert!(!f.counts(&info(LAN_OTHER)));
}

#[test]
fn the_hold_is_bounded_by_bytes_and_by_time() {
    let (mut d, c) = demand(&[]);
    let t0 = Instant::now();
    // 60-byte datagrams, 1000-byte bound: 16 fit.
    for i in 0..20 {
        let _ = d.from_lan(t0 + Duration::from_millis(i), udp(LAN_OK, 7), false);
    }
    assert_eq!(d.held(), 16);
    assert_eq!(load(&c.hold_dropped), 4);
    assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    // The dial did not bring the link up in time: held packets go, the next packet asks again.
    d.handle_timeout(t0 + Duration::from_secs(31));
    assert_eq!(d.held(), 0);
    assert_eq!(load(&c.hold_dropped), 20);
    assert_eq!(d.poll_timeout(), None);
    let (_, dial) = d.from_lan(t0 + Duration::from_secs(32), udp(LAN_OK, 7), false);
    assert!(dial.is_some());
    assert_eq!(load(&c.triggered), 2);
}

#[test]
fn destinations_outside_demand_routes_and_garbage_pass_through() {
    let c = Arc::new(DemandCounters::default());
    let mut p = policy(&[]);
    p.routes[0].nets = vec!["203.0.113.0/24".parse().unwrap_or_default()];
    let mut d = Demand::new(p, c);
    let now = Instant::now();
    let elsewhere = packet(17, LAN_OK, Ipv4Addr::new(198, 51, 100, 1), 1, 2, 0);
    assert_eq!(
        d.from_lan(now, elsewhere.clone(), false),
        (LanVerdict::Continue(elsewhere), None)
    );
    let junk = vec![0x45, 0, 0];
    assert_eq!(
        d.from_lan(now, junk.clone(), false),
        (LanVerdict::Continue(junk), None)
    );
}

#[test]
fn longest_prefix_picks_the_connection_and_the_user() {
    let mut allowed = HashMap::new();
    allowed.insert(
        "demo".to_string(),
        vec!["isp1".to_string(), "isp2".to_string()],
    );
    allowed.insert("kid".to_string(), vec!["isp2".to_string()]);
    let route = |name: &str, net: &str| DemandRoute {
        connection: name.into(),
        nets: vec![net.parse().unwrap_or_default()],
        hold: Duration::from_secs(5),
        hold_bytes: 10_000,
    };
    let p = DemandPolicy::new(
        vec![route("isp1", "0.0.0.0/0"), route("isp2", "203.0.113.0/24")],
        vec![
            ("192.168.77.0/24".parse().unwrap_or_default(), "demo".into()),
            ("192.168.77.8/29".parse().unwrap_or_default(), "kid".into()),
        ],
        allowed,
    );
    assert_eq!(p.user_of(LAN_OK), Some("demo"));
    assert_eq!(p.user_of(LAN_OTHER), Some("kid"));
    assert_eq!(p.user_of(Ipv4Addr::new(10, 0, 0, 1)), None);
    let mut d = Demand::new(p, Arc::new(DemandCounters::default()));
    let now = Instant::now();
    let (_, dial) = d.from_lan(now, udp(LAN_OTHER, 7), false);
    assert_eq!(
        dial.map(|r| (r.connection, r.user)),
        Some(("isp2".into(), "kid".into()))
    );
    // kid may not dial isp1 (a destination only isp1 routes).
    let other = packet(17, LAN_OTHER, Ipv4Addr::new(198, 51, 100, 1), 1, 2, 0);
    let (v, dial) = d.from_lan(now, other, false);
    assert!(matches!(v, LanVerdict::Reply(_)));
    assert_eq!(dial, None);
}

const MAC_OK: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];

/// Finding N12: a `[[lan_hosts]] mac` binding dials only while the neighbour table resolves
/// the host to that address; a host spoofing the address from another MAC (or one the table
/// does not know) is refused like an unknown host, with the reason logged.
#[test]
fn a_mac_bound_host_dials_only_from_its_mac() {
    let table = Arc::new(std::sync::Mutex::new(None::<[u8; 6]>));
    let t2 = Arc::clone(&table);
    let mut p = policy(&[]);
    p.bind_mac(LAN_OK, MAC_OK);
    p.set_neighbours(Neighbours::from_fn(move |h| {
        if h == LAN_OK {
            *t2.lock().unwrap_or_else(|e| e.into_inner())
        } else {
            None
        }
    }));
    let c = Arc::new(DemandCounters::default());
    let mut d = Demand::new(p, Arc::clone(&c));
    let t0 = Instant::now();
    // Not in the table: refused (ICMP host-unreachable back).
    let (v, dial) = d.from_lan(t0, udp(LAN_OK, 7), false);
    assert!(matches!(v, LanVerdict::Reply(_)), "{v:?}");
    assert_eq!(dial, None);
    // Another MAC: refused.
    *table.lock().unwrap_or_else(|e| e.into_inner()) = Some([0x02, 0, 0, 0, 0, 0x66]);
    let (_, dial) = d.from_lan(t0, udp(LAN_OK, 7), false);
    assert_eq!(dial, None);
    assert_eq!(load(&c.refused), 2);
    // Its own MAC: the dial.
    *table.lock().unwrap_or_else(|e| e.into_inner()) = Some(MAC_OK);
    let (v, dial) = d.from_lan(t0, udp(LAN_OK, 7), false);
    assert_eq!(v, LanVerdict::Consumed);
    assert_eq!(dial.map(|r| r.user), Some("demo".to_string()));
    // A host without a binding is still authorized by its address alone.
    let (mut d, _) = demand(&[]);
    let (_, dial) = d.from_lan(t0, udp(LAN_OK, 7), false);
    assert!(dial.is_some());
}

#[test]
fn the_kernel_arp_table_is_read_for_complete_entries_only() {
    let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
                192.168.77.2     0x1         0x2         02:00:5E:10:00:02     *        eth0\n\
                192.168.77.3     0x1         0x0         00:00:00:00:00:00     *        eth0\n\
                192.168.77.4     0x1         0x2         zz:00:5e:10:00:02     *        eth0\n";
    assert_eq!(arp_lookup(text, LAN_OK), Some(MAC_OK));
    assert_eq!(arp_lookup(text, LAN_GUEST), None, "incomplete");
    assert_eq!(
        arp_lookup(text, Ipv4Addr::new(192, 168, 77, 4)),
        None,
        "garbage"
    );
    assert_eq!(arp_lookup(text, LAN_OTHER), None, "absent");
    assert_eq!(arp_lookup("", LAN_OK), None);
    assert_eq!(parse_mac("02:00:5e:10:00:02"), Some(MAC_OK));
    for bad in [
        "02:00:5e:10:00",
        "02:00:5e:10:00:02:03",
        "2:00:5e:10:00:02",
        "02-00-5e-10-00-02",
        "",
    ] {
        assert_eq!(parse_mac(bad), None, "{bad}");
    }
}
