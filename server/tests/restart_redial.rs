//! Without root: state that survives a server restart (rules, masquerade timeouts, port
//! forwards, through persist.rs on one state_dir), and a redial that re-keys the NAT (a new
//! IPCP address: answered entries expire, unanswered ones move per `ip_dynaddr`, new flows
//! use the new address) — in process, over the mock modem on a pseudo-terminal.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use masqdial_ppp::AuthProtocol;
use masqdial_server::config::Config;
use masqdial_server::daemon::{start, LanSide};
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::manager::{LinkManager, Who};
use masqdial_server::link::{DialOutcome, HangupOutcome, LinkState};
use masqdial_server::persist::{build_engine, DEFAULT_RULESET};
use masqdial_server::shutdown::Shutdown;
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::MockModemConfig;
use nat_core::wire::{ipv4, udp};

/// What a restarted server must show exactly as before.
#[derive(Debug, PartialEq)]
struct Persisted {
    rules: String,
    timeouts: (u32, u32, u32),
    portfw: String,
}

fn persisted(nat: &masqdial_server::nat_control::NatControl) -> Persisted {
    let t = nat.timeouts();
    Persisted {
        rules: nat.save_ruleset(),
        timeouts: (t.tcp, t.tcpfin, t.udp),
        portfw: nat
            .portfw("-l")
            .map(|(list, _)| list)
            .unwrap_or_else(|e| panic!("{e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_timeouts_and_portfw_survive_a_restart_on_the_same_state_dir() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = Config::default();
    cfg.server.state_dir = dir.path().join("state");
    let seed = dir.path().join("start.rules");
    std::fs::write(&seed, DEFAULT_RULESET).unwrap_or_else(|e| panic!("{e}"));
    cfg.nat.ruleset = Some(seed.clone());
    let cfg = Arc::new(cfg);

    let stop = Shutdown::new();
    let first = start(Arc::clone(&cfg), LanSide::Off, &stop).unwrap_or_else(|e| panic!("{e}"));
    let nat = &first.control.nat;
    let fresh = persisted(nat);
    nat.append("input", "-p tcp -s 198.51.100.0/24 -j DENY")
        .unwrap_or_else(|e| panic!("{e}"));
    nat.new_chain("lanin").unwrap_or_else(|e| panic!("{e}"));
    nat.append("lanin", "-p udp -d 0.0.0.0/0 53 -j ACCEPT")
        .unwrap_or_else(|e| panic!("{e}"));
    nat.set_policy("forward", "DENY")
        .unwrap_or_else(|e| panic!("{e}"));
    nat.set_timeouts(1000, 100, 200)
        .unwrap_or_else(|e| panic!("{e}"));
    nat.portfw("-a -P tcp -L 0.0.0.0 8080 -R 192.168.77.2 80 -p 10")
        .unwrap_or_else(|e| panic!("{e}"));
    let before = persisted(nat);
    assert_ne!(before, fresh, "the changes took effect");
    assert_eq!(before.timeouts, (1000, 100, 200));
    assert!(stop.stop(Duration::from_secs(10)).await, "stopped in time");
    drop(first);

    // The same configuration (its seed ruleset included) on the same state_dir.
    let stop = Shutdown::new();
    let second = start(Arc::clone(&cfg), LanSide::Off, &stop).unwrap_or_else(|e| panic!("{e}"));
    let after = persisted(&second.control.nat);
    assert_eq!(after, before);
    // Also rebuilt straight from the saved files (no daemon): the same engine state.
    let engine = build_engine(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let t = engine.timeouts();
    use nat_core::masq::tcp::State;
    assert_eq!(
        (
            t.tcp[State::Established as usize].as_secs(),
            t.tcp[State::FinWait as usize].as_secs(),
            t.udp.as_secs()
        ),
        (1000, 100, 200)
    );
    assert!(stop.stop(Duration::from_secs(10)).await);
}

async fn wait_state(links: &LinkManager, want: LinkState) {
    for _ in 0..1000 {
        if links.state("isp1") == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("link never reached {want:?}");
}

const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

fn udp_packet(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    masqdial_sim::isp::udp_datagram(HOST, sport, SERVER, dport, payload)
}

/// (LAN port, masquerade address, answered?) of every UDP entry, sorted.
fn entries(nat: &NatHandle) -> Vec<(u16, Ipv4Addr)> {
    let mut v: Vec<(u16, Ipv4Addr)> = nat
        .lock()
        .masq_snapshot(nat.now())
        .iter()
        .map(|e| (e.lan.1, e.masq.0))
        .collect();
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redial_rekeys_the_nat_to_the_new_address() {
    // UDP echo on port 7 only: a datagram to port 9 is never answered.
    let mut isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    isp.udp_echo_port = Some(7);
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    // No netcfg in this gateway, so the connection's routes are never installed.
    let cfg = common::one_modem_config(modem.path(), state.path());
    let engine = build_engine(&cfg).expect("engine");
    assert_eq!(engine.config().dynaddr, 1, "ip_dynaddr default");
    let common::MemoryGateway {
        nat,
        stop,
        lan_tx,
        mut lan_out,
        links,
    } = common::memory_gateway(&cfg, engine);
    let who = Who {
        user: "demo".into(),
        host: HOST.to_string(),
    };

    assert_eq!(
        links.dial("isp1", who.clone()).await.expect("dial"),
        DialOutcome::Started
    );
    wait_state(&links, LinkState::Up).await;
    let first = links
        .status("isp1")
        .ok()
        .and_then(|s| s.local)
        .expect("address");
    assert_eq!(nat.lock().masq_address(), Some(first));

    // One answered flow (echo, port 7) and one never answered (port 9).
    lan_tx
        .send(udp_packet(40_007, 7, b"answered"))
        .await
        .expect("send");
    let back = tokio::time::timeout(Duration::from_secs(5), lan_out.recv())
        .await
        .expect("echo within 5 s")
        .expect("open");
    assert_eq!(
        ipv4::Packet::new_checked(&back[..]).map(|p| p.dst_addr()),
        Ok(HOST)
    );
    lan_tx
        .send(udp_packet(40_009, 9, b"unanswered"))
        .await
        .expect("send");
    for _ in 0..100 {
        if entries(&nat).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(entries(&nat), vec![(40_007, first), (40_009, first)]);

    // Hang up and dial again: the ISP's pool hands out the next address.
    assert_eq!(
        links
            .hangup("isp1", who.clone(), false)
            .await
            .expect("hangup"),
        HangupOutcome::Dropping
    );
    wait_state(&links, LinkState::Idle).await;
    assert_eq!(
        links.dial("isp1", who.clone()).await.expect("redial"),
        DialOutcome::Started
    );
    wait_state(&links, LinkState::Up).await;
    let second = links
        .status("isp1")
        .ok()
        .and_then(|s| s.local)
        .expect("address");
    assert_ne!(second, first, "the redial got a new address");
    assert_eq!(nat.lock().masq_address(), Some(second));

    // ip_dynaddr 1: the answered entry died with the old address; the unanswered one moved.
    assert_eq!(entries(&nat), vec![(40_009, second)]);

    // A new flow goes out from the new address and its answer comes back.
    lan_tx
        .send(udp_packet(40_017, 7, b"new flow"))
        .await
        .expect("send");
    let back = tokio::time::timeout(Duration::from_secs(5), lan_out.recv())
        .await
        .expect("echo within 5 s")
        .expect("open");
    let ip = ipv4::Packet::new_checked(&back[..]).expect("ip");
    assert_eq!(ip.dst_addr(), HOST);
    let u = udp::Packet::new_checked(ip.payload()).expect("udp");
    assert_eq!((u.dst_port(), u.payload()), (40_017, &b"new flow"[..]));
    assert_eq!(
        entries(&nat),
        vec![(40_009, second), (40_017, second)],
        "new flows use the new address"
    );
    assert_eq!(
        links.hangup("isp1", who, false).await.expect("hangup"),
        HangupOutcome::Dropping
    );
    wait_state(&links, LinkState::Idle).await;
    assert!(stop.stop(Duration::from_secs(10)).await);
    drop(modem);
}
