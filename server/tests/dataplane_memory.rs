//! The dataplane pump over in-memory LAN and link ports: LAN traffic is masqueraded onto
//! the link with the link's address, replies come back demasqueraded, and nothing passes
//! while no link is attached.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use masqdial_server::dataplane::{Dataplane, LanPort, LinkPort, LinkTx, NatHandle};
use masqdial_server::shutdown::Shutdown;
use nat_core::chains::syntax::parse_rule;
use nat_core::wire::{ipv4, udp};
use nat_core::{Engine, EngineConfig};
use tokio::sync::mpsc;

/// One UDP datagram with valid checksums (the mock ISP's builder).
fn udp_packet(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    masqdial_sim::isp::udp_datagram(src.0, src.1, dst.0, dst.1, payload)
}

fn fields(p: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let ip = ipv4::Packet::new_checked(p).expect("valid ip");
    assert!(ip.verify_checksum());
    let u = udp::Packet::new_checked(ip.payload()).expect("valid udp");
    assert!(u.verify_checksum(ip.src_addr(), ip.dst_addr()));
    (ip.src_addr(), u.src_port(), ip.dst_addr(), u.dst_port())
}

async fn recv(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("packet within 5 s")
        .expect("channel open")
}

#[tokio::test]
async fn lan_traffic_is_masqueraded_over_the_attached_link() {
    let mut engine = Engine::new(EngineConfig::default());
    let rule = parse_rule("-s 192.168.77.0/24 -j MASQ").expect("valid rule");
    engine
        .firewall_mut()
        .append("forward", &rule.rule)
        .expect("append");
    let link_addr = Ipv4Addr::new(10, 64, 0, 2);
    let _ = engine.set_masq_address(Some(link_addr));
    let nat = NatHandle::new(engine);

    let (lan_in_tx, lan_in_rx) = mpsc::channel(16);
    let (lan_out_tx, mut lan_out_rx) = mpsc::channel(16);
    let stop = Shutdown::new();
    let dp = Dataplane::spawn(
        nat.clone(),
        LanPort::Memory {
            rx: lan_in_rx,
            tx: lan_out_tx,
        },
        &stop,
    );

    let host = (Ipv4Addr::new(192, 168, 77, 2), 40_000);
    let server = (Ipv4Addr::new(203, 0, 113, 1), 7);

    // No link yet: the packet is dropped and counted, not queued.
    lan_in_tx
        .send(udp_packet(host, server, b"early"))
        .await
        .expect("send");
    for _ in 0..500 {
        if dp.counters().lan_in.load(Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dp.counters().link_drops.load(Ordering::Relaxed), 1);
    let (link_tx, mut link_out) = mpsc::channel(16);
    let (link_in, link_rx) = mpsc::channel(16);
    dp.attach(LinkPort {
        tx: LinkTx::Channel(link_tx),
        rx: link_rx,
    })
    .await;

    lan_in_tx
        .send(udp_packet(host, server, b"hello"))
        .await
        .expect("send");
    let out = recv(&mut link_out).await;
    let (src, sport, dst, dport) = fields(&out);
    assert_eq!(src, link_addr, "source rewritten to the link address");
    assert!((61_000..=65_095).contains(&sport), "masq port {sport}");
    assert_eq!((dst, dport), server);
    assert_eq!(&out[28..], b"hello");

    // The reply comes back to the LAN host.
    link_in
        .send(udp_packet(server, (link_addr, sport), b"world"))
        .await
        .expect("send");
    let back = recv(&mut lan_out_rx).await;
    assert_eq!(fields(&back), (server.0, server.1, host.0, host.1));
    assert_eq!(&back[28..], b"world");

    let snap = nat.lock().masq_snapshot(nat.now());
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].lan, host);
    assert_eq!(snap[0].masq, (link_addr, sport));
    let c = dp.counters().snapshot();
    let get = |n: &str| c.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    assert_eq!(get("dataplane.link_drops"), Some(1), "the early packet");
    assert_eq!(get("dataplane.to_link"), Some(1));
    assert_eq!(get("dataplane.to_lan"), Some(1));
}
