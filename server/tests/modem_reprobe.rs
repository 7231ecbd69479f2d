//! Absent modems are re-probed with backoff: a modem whose device is missing at start is
//! `Absent` with a next probe time; when the device appears (here: a symlink to a mock
//! modem's pty made after start) a probe finds it and it becomes `Idle`, then dials, with
//! no restart.

mod common;

use std::time::{Duration, Instant, SystemTime};

use masqdial_ppp::AuthProtocol;
use masqdial_server::config::Config;
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::events::ModemState;
use masqdial_server::link::manager::{LinkManager, Who};
use masqdial_server::link::{DialOutcome, LinkState};
use masqdial_server::persist::build_engine;
use masqdial_server::shutdown::Shutdown;
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::MockModemConfig;

fn config(device: &std::path::Path, state: &std::path::Path) -> Config {
    common::one_modem_config(device, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_modem_that_appears_is_found_by_the_reprober_and_dials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let device = dir.path().join("ttyLATE0");
    let cfg = config(&device, dir.path());
    let nat = NatHandle::new(build_engine(&cfg).expect("engine"));
    let stop = Shutdown::new();
    let start = SystemTime::now();
    let links = LinkManager::start(&cfg, Uplink::new(nat, None, None), &stop);

    // Missing at start: absent at once, with a probe scheduled within the first backoff
    // step (1 s) and the open error named.
    let m = &links.modems()[0];
    assert_eq!(m.state, ModemState::Absent, "{m:?}");
    assert_eq!(
        m.last_error.as_deref(),
        Some(format!("serial device {} not found", device.display()).as_str())
    );
    let mut next = None;
    for _ in 0..50 {
        next = links.modems()[0].next_probe;
        if next.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let next = next.expect("a next probe time");
    let ahead = next.duration_since(start).expect("next probe after start");
    assert!(ahead <= Duration::from_millis(1500), "{ahead:?}");

    // Still missing after the first probe: one failure counted, next probe 2 s later.
    let t = Instant::now();
    while links.modems()[0].failed_probes == 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "no probe ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = links.modems()[0].clone();
    assert_eq!(m.state, ModemState::Absent);
    assert_eq!(m.failed_probes, 1);
    let gap = m
        .next_probe
        .expect("next probe")
        .duration_since(next)
        .expect("later");
    assert!(
        gap >= Duration::from_secs(2) && gap < Duration::from_secs(3),
        "{gap:?}"
    );

    // The modem appears: a mock modem on a pty, reached through the configured path.
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    std::os::unix::fs::symlink(modem.path(), &device).expect("symlink");
    let t = Instant::now();
    loop {
        let m = links.modems()[0].clone();
        if m.state == ModemState::Idle {
            assert_eq!(m.last_error, None);
            assert_eq!(m.next_probe, None);
            assert_eq!(m.failed_probes, 0);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "modem never re-probed present: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // And it dials, without a restart.
    let who = Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    };
    assert_eq!(
        links.dial("isp1", who.clone()).await.expect("dial"),
        DialOutcome::Started
    );
    let t = Instant::now();
    while links.state("isp1") != Some(LinkState::Up) {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "link never up: {:?}",
            links.status("isp1").map(|s| s.last_failure)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    links.hangup("isp1", who, true).await.expect("hangup");
    assert!(stop.stop(Duration::from_secs(12)).await, "tasks ended");
    drop(modem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_on_a_vanished_modem_marks_it_absent_and_starts_the_reprober() {
    let dir = tempfile::tempdir().expect("tempdir");
    let device = dir.path().join("ttyGONE0");
    // Present at start (so not absent), gone by the dial.
    std::fs::write(&device, b"").expect("placeholder");
    let cfg = config(&device, dir.path());
    let (links, stop) = common::links_without_dataplane(&cfg);
    assert_eq!(links.modems()[0].state, ModemState::Idle);
    std::fs::remove_file(&device).expect("remove");
    let who = Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    };
    links.dial("isp1", who).await.expect("dial");
    let t = Instant::now();
    while links.state("isp1") != Some(LinkState::Failed) {
        assert!(t.elapsed() < Duration::from_secs(5), "dial never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();
    loop {
        let m = links.modems()[0].clone();
        if m.state == ModemState::Absent && m.next_probe.is_some() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{m:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stop.stop(Duration::from_secs(5)).await,
        "reprober ends on stop"
    );
}
