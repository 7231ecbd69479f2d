//! `[[lan_hosts]]` are reloaded like the users (what SIGHUP runs: `server::reload`): a LAN
//! host the running config does not know is refused by dial on demand (ICMP unreachable,
//! no dial), and once the file names it and is reloaded, its packet asks for a dial
//! credited to its user; a host removed from the file is refused again. In process, no
//! root: the dataplane runs on the in-memory LAN port.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use masqdial_server::auth::{self, Auth};
use masqdial_server::config::{Config, ConnectionConfig, LanHostConfig, UserConfig, UserRole};
use masqdial_server::dataplane::demand::{Demand, DemandPolicy, DemandPort, DialRequest};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::{Dataplane, LanPort, NatHandle};
use masqdial_server::link::manager::LinkManager;
use masqdial_server::nat_control::NatControl;
use masqdial_server::rpc::{ControlPlane, ServerState};
use masqdial_server::server;
use masqdial_server::shutdown::Shutdown;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

fn config() -> Config {
    let mut c = Config::default();
    c.users.push(UserConfig {
        name: "alice".into(),
        password_hash: auth::hash_password_with("alice-pw", auth::fast_params())
            .unwrap_or_default(),
        role: UserRole::User,
        connections: vec!["isp1".into()],
    });
    let cc: ConnectionConfig = toml::from_str(
        "name = \"isp1\"\nnumbers = [\"555\"]\ndemand = true\nidle_timeout_s = 60\nroutes = [\"0.0.0.0/0\"]",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    c.connections.push(cc);
    c.lan_hosts.push(host("192.168.77.2"));
    c
}

fn host(a: &str) -> LanHostConfig {
    LanHostConfig {
        host: format!("{a}/32").parse().unwrap_or_else(|e| panic!("{e}")),
        user: "alice".into(),
        mac: None,
    }
}

fn udp_from(src: Ipv4Addr, port: u16) -> Vec<u8> {
    masqdial_sim::isp::udp_datagram(src, port, Ipv4Addr::new(198, 51, 100, 7), 7, b"hello")
}

/// The host is refused: an ICMP host unreachable comes back to it, no dial is asked.
async fn refused(
    lan: &mpsc::Sender<Vec<u8>>,
    lan_out: &mut mpsc::Receiver<Vec<u8>>,
    dials: &mut mpsc::Receiver<DialRequest>,
    src: Ipv4Addr,
    port: u16,
) {
    lan.send(udp_from(src, port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let back = tokio::time::timeout(WAIT, lan_out.recv())
        .await
        .unwrap_or_else(|_| panic!("no ICMP error for {src}"))
        .unwrap_or_else(|| panic!("LAN closed"));
    assert_eq!(back[9], 1, "ICMP");
    assert_eq!(&back[16..20], &src.octets(), "to the sender");
    let hl = usize::from(back[0] & 0x0f) * 4;
    assert_eq!((back[hl], back[hl + 1]), (3, 1), "host unreachable");
    assert!(dials.try_recv().is_err(), "no dial for {src}");
}

/// The host's packet asks for a dial of isp1 credited to alice.
async fn dials_for(
    lan: &mpsc::Sender<Vec<u8>>,
    dials: &mut mpsc::Receiver<DialRequest>,
    src: Ipv4Addr,
    port: u16,
) {
    lan.send(udp_from(src, port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = tokio::time::timeout(WAIT, dials.recv())
        .await
        .unwrap_or_else(|_| panic!("no dial request for {src}"))
        .unwrap_or_else(|| panic!("dials closed"));
    assert_eq!(
        (d.connection.as_str(), d.user.as_str(), d.host),
        ("isp1", "alice", src)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_lan_hosts_to_dial_on_demand() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = config();
    cfg.server.state_dir = dir.path().join("state");
    let stop = Shutdown::new();
    let nat = NatHandle::new(
        masqdial_server::persist::build_engine(&cfg).unwrap_or_else(|e| panic!("{e}")),
    );
    let (lan_tx, lan_rx) = mpsc::channel(16);
    let (lan_out_tx, mut lan_out) = mpsc::channel(16);
    let dp = Dataplane::spawn(
        nat.clone(),
        LanPort::Memory {
            rx: lan_rx,
            tx: lan_out_tx,
        },
        &stop,
    );
    let (dials_tx, mut dials) = mpsc::channel(16);
    let policy = DemandPolicy::from_config(&cfg).unwrap_or_else(|| panic!("demand policy"));
    let state = Demand::new(policy, Arc::clone(&dp.counters().demand));
    assert!(dp.set_demand(Some(DemandPort::new(state, dials_tx))));
    let control = ControlPlane {
        links: LinkManager::start(&cfg, Uplink::new(nat.clone(), Some(dp), None), &stop),
        nat: NatControl::new(Arc::new(cfg.clone()), nat, None),
    };
    let auth = Auth::new(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let st = ServerState::with_shutdown(cfg.clone(), auth, Some(control), stop.clone());

    let two = Ipv4Addr::new(192, 168, 77, 2);
    let three = Ipv4Addr::new(192, 168, 77, 3);
    refused(&lan_tx, &mut lan_out, &mut dials, three, 40_000).await;

    // The file now names .3 (and no longer .2); reload as SIGHUP does.
    let path = dir.path().join("mserver.toml");
    let mut next = cfg.clone();
    next.lan_hosts = vec![host("192.168.77.3")];
    std::fs::write(
        &path,
        toml::to_string(&next).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    server::reload(&st, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(st.config().lan_hosts, next.lan_hosts);

    // .2 was removed: refused now; .3 was added: it dials.
    refused(&lan_tx, &mut lan_out, &mut dials, two, 40_001).await;
    dials_for(&lan_tx, &mut dials, three, 40_002).await;
    assert!(stop.stop(Duration::from_secs(5)).await);
}
