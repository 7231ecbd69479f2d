//! Engine paths of issue 12 with real packet bytes: the gateway's own traffic (output chain
//! only, not masqueraded), REDIRECT from the LAN and from the link, portfw with preference
//! counters, `-l` lines rate-limited and counted, `-t` TOS mangling, link interface aliases,
//! and ICMP errors about the gateway's own flows delivered to it.

use nat_core::portfw::{PortFw, PortFwCmd, PortFwTable};
use nat_core::wire::{icmp, ipv4, proto, tcp, udp};
use nat_core::{Action, DropReason, Engine, EngineConfig, Instant};
use std::net::Ipv4Addr;

const LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const GW_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// The shipped policy's shape: forward DENY, MASQ for the LAN only.
fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig {
        lan_iface: "gw0".into(),
        link_iface: "ppp0".into(),
        local_addrs: vec![GW_LAN],
        ..EngineConfig::default()
    });
    e.firewall_mut()
        .restore(
            ":input ACCEPT\n:forward DENY\n:output ACCEPT\n-A forward -s 192.168.1.0/24 -j MASQ\n",
        )
        .expect("ruleset");
    e.set_masq_address(Some(MASQ));
    e.set_link_peer(Some(PEER));
    e
}

fn ip(src: Ipv4Addr, dst: Ipv4Addr, p: u8, payload: usize) -> Vec<u8> {
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

fn udp_pkt(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16) -> Vec<u8> {
    let mut b = ip(src, dst, proto::UDP, 12);
    let mut u = udp::Packet::new_unchecked(&mut b[20..]);
    u.set_src_port(sp);
    u.set_dst_port(dp);
    u.set_len(12);
    u.payload_mut().copy_from_slice(b"data");
    u.fill_checksum(src, dst);
    b
}

fn tcp_pkt(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16, flags: u16) -> Vec<u8> {
    let mut b = ip(src, dst, proto::TCP, 20);
    let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
    t.set_src_port(sp);
    t.set_dst_port(dp);
    t.set_seq_number(1000);
    t.set_header_len_and_flags(20, flags);
    t.set_window_len(8192);
    t.fill_checksum(src, dst);
    b
}

/// (src, sport, dst, dport) after checking every checksum.
fn tuple(b: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let p = ipv4::Packet::new_checked(b).expect("ip");
    assert!(p.verify_checksum(), "ip checksum");
    let (s, d) = (p.src_addr(), p.dst_addr());
    match p.protocol() {
        proto::TCP => {
            let t = tcp::Packet::new_checked(p.payload()).expect("tcp");
            assert!(t.verify_checksum(s, d), "tcp checksum");
            (s, t.src_port(), d, t.dst_port())
        }
        _ => {
            let u = udp::Packet::new_checked(p.payload()).expect("udp");
            assert!(u.verify_checksum(s, d), "udp checksum");
            (s, u.src_port(), d, u.dst_port())
        }
    }
}

#[test]
fn own_traffic_passes_output_only_and_keeps_its_address() {
    let mut e = engine();
    // From the gateway (source = the link address): forward DENY does not apply.
    let mut syn = tcp_pkt(MASQ, 40000, REMOTE, 80, tcp::FLG_SYN);
    let before = syn.clone();
    assert_eq!(e.process_from_lan(t(1), &mut syn), Action::ToLink);
    assert_eq!(syn, before, "not masqueraded");
    assert!(e.masq_snapshot(t(1)).is_empty());
    // The reply is delivered to the gateway.
    let mut synack = tcp_pkt(REMOTE, 80, MASQ, 40000, tcp::FLG_SYN | tcp::FLG_ACK);
    assert_eq!(e.process_from_link(t(1), &mut synack), Action::Local);
    // Output DENY stops it.
    e.firewall_mut()
        .set_policy("output", "DENY")
        .expect("policy");
    let mut p = udp_pkt(MASQ, 40001, REMOTE, 53);
    assert_eq!(
        e.process_from_lan(t(2), &mut p),
        Action::Drop(DropReason::OutputDeny)
    );
    // A forwarded LAN packet still needs the forward chain.
    e.firewall_mut()
        .set_policy("output", "ACCEPT")
        .expect("policy");
    let mut p = udp_pkt(Ipv4Addr::new(10, 9, 9, 9), 5000, REMOTE, 53);
    assert_eq!(
        e.process_from_lan(t(3), &mut p),
        Action::Drop(DropReason::ForwardDeny)
    );
}

#[test]
fn redirect_from_lan_goes_to_the_local_port_and_back() {
    let mut e = engine();
    e.firewall_mut()
        .restore("-A input -p tcp -s 192.168.1.0/24 -d 0.0.0.0/0 80 -j REDIRECT 3128\n")
        .expect("rule");
    let mut syn = tcp_pkt(LAN, 1025, REMOTE, 80, tcp::FLG_SYN);
    assert_eq!(e.process_from_lan(t(1), &mut syn), Action::Local);
    let (s, sp, d, dp) = tuple(&syn);
    assert_eq!((s, d, dp), (PEER, MASQ, 3128));
    // The local stack answers the peer address; the LAN host gets the original addresses.
    let mut synack = tcp_pkt(MASQ, 3128, PEER, sp, tcp::FLG_SYN | tcp::FLG_ACK);
    assert_eq!(e.process_from_lan(t(1), &mut synack), Action::ToLan);
    assert_eq!(tuple(&synack), (REMOTE, 80, LAN, 1025));
    // The next packet of the connection takes the same entry.
    let mut ack = tcp_pkt(LAN, 1025, REMOTE, 80, tcp::FLG_ACK);
    assert_eq!(e.process_from_lan(t(2), &mut ack), Action::Local);
    assert_eq!(tuple(&ack), (PEER, sp, MASQ, 3128));
    assert_eq!(e.redirect_connections(), 1);
    // Idle connections go.
    e.handle_timeout(t(2 + 15 * 60 + 10));
    assert_eq!(e.redirect_connections(), 0);
    // Link down: nothing to deliver to.
    e.set_masq_address(None);
    let mut syn = tcp_pkt(LAN, 1026, REMOTE, 80, tcp::FLG_SYN);
    assert_eq!(
        e.process_from_lan(t(3000), &mut syn),
        Action::Drop(DropReason::NoMasqAddress)
    );
}

#[test]
fn redirect_from_the_link_changes_only_the_port() {
    let mut e = engine();
    e.firewall_mut()
        .restore("-A input -p tcp -i ppp0 -d 0.0.0.0/0 80 -j REDIRECT 8080\n")
        .expect("rule");
    let mut syn = tcp_pkt(REMOTE, 5555, MASQ, 80, tcp::FLG_SYN);
    assert_eq!(e.process_from_link(t(1), &mut syn), Action::Local);
    assert_eq!(tuple(&syn), (REMOTE, 5555, MASQ, 8080));
    let mut synack = tcp_pkt(MASQ, 8080, REMOTE, 5555, tcp::FLG_SYN | tcp::FLG_ACK);
    assert_eq!(e.process_from_lan(t(1), &mut synack), Action::ToLink);
    assert_eq!(tuple(&synack), (MASQ, 80, REMOTE, 5555));
}

#[test]
fn portfw_forwards_with_preferences_and_survives_a_new_address() {
    let mut e = engine();
    let add = |e: &mut Engine, line: &str| match PortFwTable::parse(line) {
        Ok(PortFwCmd::Add(f)) => e.portfw_add(f).expect("add"),
        other => panic!("{other:?}"),
    };
    add(&mut e, "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 2");
    add(&mut e, "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.11 80 -p 1");
    let mut hosts = Vec::new();
    for (k, sp) in (5000..5003).enumerate() {
        let mut syn = tcp_pkt(REMOTE, sp, MASQ, 8080, tcp::FLG_SYN);
        assert_eq!(e.process_from_link(t(k as u64), &mut syn), Action::ToLan);
        let (s, _, d, dp) = tuple(&syn);
        assert_eq!((s, dp), (REMOTE, 80));
        hosts.push(d);
        // The LAN host's answer leaves with the link address and the public port.
        let mut synack = tcp_pkt(d, 80, REMOTE, sp, tcp::FLG_SYN | tcp::FLG_ACK);
        assert_eq!(e.process_from_lan(t(k as u64), &mut synack), Action::ToLink);
        assert_eq!(tuple(&synack), (MASQ, 8080, REMOTE, sp));
    }
    let h10 = Ipv4Addr::new(192, 168, 1, 10);
    let h11 = Ipv4Addr::new(192, 168, 1, 11);
    // 2.2: the newest entry is at the head of the list, takes one (its pref) and goes to the tail.
    assert_eq!(hosts, vec![h11, h10, h10]);
    let list = e.portfw().render();
    assert!(
        // ipmasqadm's layout (issue 29): pcnt and pref columns after the ports.
        list.contains(
            "TCP  0.0.0.0              192.168.1.10             8080       80     2     2"
        ),
        "{list}"
    );
    assert_eq!(e.portfw().entries()[0].conns, 2);
    assert_eq!(e.portfw().entries()[0].pkts, 2);
    // Redial with a new address: the 0.0.0.0 entry answers on it.
    let new = Ipv4Addr::new(203, 0, 113, 77);
    e.set_masq_address(Some(new));
    let mut syn = tcp_pkt(REMOTE, 6000, new, 8080, tcp::FLG_SYN);
    assert_eq!(e.process_from_link(t(10), &mut syn), Action::ToLan);
    // An entry bound to one address ignores another.
    assert_eq!(e.portfw_flush(), 2);
    e.portfw_add(PortFw::new(proto::UDP, Some(MASQ), 53, h10, 53, 0))
        .expect("add");
    let mut q = udp_pkt(REMOTE, 7000, new, 53);
    assert_eq!(e.process_from_link(t(11), &mut q), Action::Local);
}

#[test]
fn log_lines_are_rate_limited_and_counted() {
    let mut e = engine();
    e.firewall_mut()
        .restore("-A input -p udp -s 192.168.1.0/24 -d 0.0.0.0/0 53 -l\n")
        .expect("rule");
    for k in 0..25 {
        let mut p = udp_pkt(LAN, 5000 + k, REMOTE, 53);
        assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    }
    let lines = e.drain_packet_log();
    assert_eq!(lines.len(), 10);
    assert_eq!(
        lines[0],
        "Packet log: input - gw0 PROTO=17 192.168.1.10:5000 198.51.100.7:53 L=32 S=0x00 I=0 F=0x0000 T=64 (#1)"
    );
    let c = e.counters();
    let get = |k: &str| c.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    assert_eq!(
        (get("log.lines"), get("log.suppressed")),
        (Some(10), Some(15))
    );
    // A new window admits more.
    let mut p = udp_pkt(LAN, 6000, REMOTE, 53);
    let _ = e.process_from_lan(t(7), &mut p);
    assert_eq!(e.drain_packet_log().len(), 1);
}

#[test]
fn tos_rule_rewrites_the_header() {
    let mut e = engine();
    e.firewall_mut()
        .restore("-A output -p udp -s 0.0.0.0/0 -d 0.0.0.0/0 53 -t 0x01 0x10\n")
        .expect("rule");
    let mut p = udp_pkt(LAN, 5000, REMOTE, 53);
    assert_eq!(e.process_from_lan(t(1), &mut p), Action::ToLink);
    let ip = ipv4::Packet::new_checked(&p[..]).expect("ip");
    assert_eq!(ip.tos(), 0x10);
    assert!(ip.verify_checksum());
}

#[test]
fn link_rules_match_the_aliases() {
    let mut e = engine();
    e.set_link_aliases(vec!["isp1".into(), "masq0".into()]);
    e.firewall_mut()
        .restore("-A input -i isp1 -p udp -s 0.0.0.0/0 53 -j DENY\n-A input -i masq+ -p udp -s 0.0.0.0/0 54 -j DENY\n-A input -i gw0 -p udp -s 0.0.0.0/0 55 -j DENY\n")
        .expect("rules");
    let mut p = udp_pkt(REMOTE, 53, MASQ, 40000);
    assert_eq!(
        e.process_from_link(t(1), &mut p),
        Action::Drop(DropReason::InputDeny)
    );
    let mut p = udp_pkt(REMOTE, 54, MASQ, 40000);
    assert_eq!(
        e.process_from_link(t(1), &mut p),
        Action::Drop(DropReason::InputDeny)
    );
    let mut p = udp_pkt(REMOTE, 55, MASQ, 40000);
    assert_eq!(e.process_from_link(t(1), &mut p), Action::Local);
    let mut p = udp_pkt(LAN, 55, REMOTE, 40000);
    assert_eq!(
        e.process_from_lan(t(1), &mut p),
        Action::Drop(DropReason::InputDeny)
    );
}

#[test]
fn icmp_errors_about_the_gateways_own_flows_reach_it() {
    let mut e = engine();
    // Frag-needed quoting the gateway's own TCP segment (port below the masq range).
    let own = tcp_pkt(MASQ, 40000, REMOTE, 80, tcp::FLG_ACK);
    let mut err = ip(REMOTE, MASQ, proto::ICMP, 8 + 28);
    {
        let mut m = icmp::Packet::new_unchecked(&mut err[20..]);
        m.set_msg_type(icmp::types::DST_UNREACHABLE);
        m.set_msg_code(4);
        m.data_mut().copy_from_slice(&own[..28]);
        m.fill_checksum();
    }
    assert_eq!(e.process_from_link(t(1), &mut err), Action::Local);
}

#[test]
fn ip_dynaddr_zero_lets_old_entries_die_one_moves_unanswered_ones() {
    for (dynaddr, want) in [(0u8, (0usize, 2usize)), (1, (1, 1)), (2, (1, 1))] {
        let mut e = engine();
        e.set_dynaddr(dynaddr);
        // One entry answered, one never.
        let mut a = udp_pkt(LAN, 5000, REMOTE, 53);
        assert_eq!(e.process_from_lan(t(1), &mut a), Action::ToLink);
        let (_, mport, _, _) = tuple(&a);
        let mut reply = udp_pkt(REMOTE, 53, MASQ, mport);
        assert_eq!(e.process_from_link(t(1), &mut reply), Action::ToLan);
        let mut b = udp_pkt(LAN, 5001, REMOTE, 53);
        assert_eq!(e.process_from_lan(t(1), &mut b), Action::ToLink);
        let new = Ipv4Addr::new(203, 0, 113, 77);
        assert_eq!(e.set_masq_address(Some(new)), want, "ip_dynaddr={dynaddr}");
        assert_eq!(e.masq_snapshot(t(2)).len(), want.0, "ip_dynaddr={dynaddr}");
    }
}
