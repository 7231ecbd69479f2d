//! Dataplane throughput: LAN side → pump → nat-core → link queue, printed as packets/s.
//!
//! `cargo bench -p masqdial-server --bench dataplane`
//!
//! - memory: LAN packets from an in-memory port (what the pump costs without the kernel);
//! - tun (root only, else a SKIPPED line): UDP datagrams sent by a socket, routed by the
//!   kernel into a TUN device `dpbench0` (route 198.18.0.0/15, removed with the device), read
//!   by the pump, masqueraded and queued to an in-memory link that counts them.
//!
//! Both run with 1,000 flows of 64-byte UDP datagrams and a MASQ rule in `forward`.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use masqdial_server::dataplane::tun::Tun;
use masqdial_server::dataplane::{Dataplane, LanPort, LinkPort, LinkTx, NatHandle};
use masqdial_server::shutdown::Shutdown;
use nat_core::chains::syntax::parse_rule;
use nat_core::{Engine, EngineConfig};
use tokio::sync::mpsc;

const FLOWS: u16 = 1000;

fn engine(src_net: &str) -> NatHandle {
    let mut e = Engine::new(EngineConfig::default());
    let r = parse_rule(&format!("-s {src_net} -j MASQ")).expect("rule");
    e.firewall_mut().append("forward", &r.rule).expect("append");
    let _ = e.set_masq_address(Some(Ipv4Addr::new(10, 64, 0, 2)));
    NatHandle::new(e)
}

fn packet(flow: u16) -> Vec<u8> {
    // 20 + 8 + 36 = 64 bytes.
    masqdial_sim::isp::udp_datagram(
        Ipv4Addr::new(192, 168, 77, 2),
        10_000 + flow,
        Ipv4Addr::new(198, 51, 100, 7),
        7,
        &[0u8; 36],
    )
}

/// Count packets until `want` arrived or none came for `quiet`; the duration is up to the
/// last packet (so a tail of losses does not count as time spent).
async fn drain(mut rx: mpsc::Receiver<Vec<u8>>, want: u64, quiet: Duration) -> (u64, Duration) {
    let start = Instant::now();
    let mut last = start;
    let mut n = 0u64;
    while n < want {
        match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(_)) => {
                n += 1;
                last = Instant::now();
            }
            _ => break,
        }
    }
    (n, last.duration_since(start))
}

async fn memory(total: u64) -> f64 {
    let nat = engine("192.168.77.0/24");
    let stop = Shutdown::new();
    let (lan_tx, lan_rx) = mpsc::channel(4096);
    let (lan_out, _lan_back) = mpsc::channel(16);
    let dp = Dataplane::spawn(
        nat,
        LanPort::Memory {
            rx: lan_rx,
            tx: lan_out,
        },
        &stop,
    );
    let (link_tx, link_rx) = mpsc::channel(65_536);
    let (_in_tx, in_rx) = mpsc::channel(1);
    dp.attach(LinkPort {
        tx: LinkTx::Channel(link_tx),
        rx: in_rx,
    })
    .await;
    let pkts: Vec<Vec<u8>> = (0..FLOWS).map(packet).collect();
    let counter = tokio::spawn(drain(link_rx, total, Duration::from_secs(2)));
    let start = Instant::now();
    for i in 0..total {
        if lan_tx
            .send(pkts[(i % u64::from(FLOWS)) as usize].clone())
            .await
            .is_err()
        {
            break;
        }
    }
    let (n, took) = counter.await.expect("counter");
    let _ = start;
    n as f64 / took.as_secs_f64()
}

async fn tun(total: u64) -> Option<(f64, u64)> {
    let dev = match Tun::open("dpbench0", 1500) {
        Ok(d) => d,
        Err(e) => {
            masqdial_testkit::skip(
                "dataplane tun bench",
                &format!("CAP_NET_ADMIN and /dev/net/tun ({e})"),
            );
            return None;
        }
    };
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .status()
            .map(|s| s.success())
    };
    let ok = ip(&["addr", "add", "198.18.255.254/15", "dev", "dpbench0"]).unwrap_or(false)
        && ip(&["link", "set", "dpbench0", "up"]).unwrap_or(false);
    if !ok {
        masqdial_testkit::skip(
            "dataplane tun bench",
            "a configurable dpbench0 (ip addr/link failed)",
        );
        return None;
    }
    let nat = engine("198.18.0.0/15");
    let stop = Shutdown::new();
    let dp = Dataplane::spawn(nat, LanPort::Tun(dev), &stop);
    let (link_tx, link_rx) = mpsc::channel(65_536);
    let (_in_tx, in_rx) = mpsc::channel(1);
    dp.attach(LinkPort {
        tx: LinkTx::Channel(link_tx),
        rx: in_rx,
    })
    .await;
    let counter = tokio::spawn(drain(link_rx, total, Duration::from_secs(2)));
    let sender = std::thread::spawn(move || {
        let sock = UdpSocket::bind("198.18.255.254:0").expect("bind");
        let payload = [0u8; 36];
        let start = Instant::now();
        for i in 0..total {
            let port = 10_000 + (i % u64::from(FLOWS)) as u16;
            let _ = sock.send_to(
                &payload,
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port),
            );
        }
        start.elapsed()
    });
    let _sent_in = sender.join().expect("sender");
    let (n, took) = counter.await.expect("counter");
    let lan_in = dp.counters().lan_in.load(Ordering::Relaxed);
    Some((n as f64 / took.as_secs_f64(), total.saturating_sub(lan_in)))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let total = 1_000_000;
    let mem = rt.block_on(memory(total));
    println!("dataplane benchmark (64-byte UDP, {FLOWS} flows, MASQ rule)");
    println!("{:<40} {:>14}", "path", "packets/s");
    println!(
        "{:<40} {:>14.0}",
        "memory LAN -> pump -> nat-core -> link", mem
    );
    if let Some((pps, lost)) = rt.block_on(tun(300_000)) {
        println!(
            "{:<40} {:>14.0}   ({lost} of 300000 not read from the TUN: kernel queue drops)",
            "TUN -> pump -> nat-core -> link", pps
        );
    }
    let line = 115_200.0 / 10.0 / 64.0;
    println!("for scale: a 115200 bit/s line carries {line:.0} 64-byte packets/s");
}
