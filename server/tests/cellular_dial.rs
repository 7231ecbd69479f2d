//! A cellular dial through the link manager against the mock modem on a pty (issue 23): the
//! SIM check names what the SIM waits for and fails at once; the dial waits for registration,
//! and dial watchers see the state, signal and operator while it waits; the named cause of a
//! failure is the connection's last failure (what `mclient cinfo` and `--json` show).

mod common;

use std::time::{Duration, Instant};

use masqdial_ppp::AuthProtocol;
use masqdial_server::config::Config;
use masqdial_server::link::events::DialStep;
use masqdial_server::link::manager::Who;
use masqdial_server::link::{Failure, FailureKind, LinkState};
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::MockModemConfig;

enum Outcome {
    Up(Vec<String>),
    Failed(Failure, Vec<String>),
}

/// Dials `isp1`, made a cellular connection (`*99#`, an APN), on the mock modem `modem`.
async fn dial_cellular(modem: MockModemConfig) -> (Outcome, Duration, Option<Failure>) {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let pty = spawn_pty(modem, isp.factory()).expect("pty modem");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg: Config = common::one_modem_config(pty.path(), dir.path());
    let c = &mut cfg.connections[0];
    c.numbers = vec!["*99#".into()];
    c.dial_prefix = "ATD".into();
    c.apn = Some("internet".into());
    c.registration_wait_s = 30;
    let (links, stop) = common::links_without_dataplane(&cfg);
    let mut progress = links.progress("isp1").expect("progress");
    let who = Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    };
    let t0 = Instant::now();
    links.dial("isp1", who.clone()).await.expect("dial");
    let mut infos = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match progress.recv().await.expect("progress open").step {
                DialStep::Info(t) => infos.push(t),
                DialStep::Up(_) => return Outcome::Up(std::mem::take(&mut infos)),
                DialStep::Failed(f) => return Outcome::Failed(f, std::mem::take(&mut infos)),
                _ => {}
            }
        }
    })
    .await
    .expect("dial finished within 40 s");
    let took = t0.elapsed();
    let last = links.status("isp1").ok().and_then(|s| s.last_failure);
    if matches!(outcome, Outcome::Up(_)) {
        links.hangup("isp1", who, true).await.expect("hangup");
        let t = Instant::now();
        while links.state("isp1") != Some(LinkState::Idle) {
            assert!(t.elapsed() < Duration::from_secs(15), "never idle");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(stop.stop(Duration::from_secs(12)).await, "tasks ended");
    drop(pty);
    (outcome, took, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_asking_for_a_pin_nobody_configured_fails_at_once_naming_it() {
    let (outcome, took, last) = dial_cellular(MockModemConfig {
        sim_pin: Some("2468".into()),
        ..MockModemConfig::default()
    })
    .await;
    let Outcome::Failed(failure, infos) = outcome else {
        panic!("the dial came up with a locked SIM");
    };
    assert_eq!(failure.kind, FailureKind::ModemError, "{failure:?}");
    assert!(
        failure.message.contains("+CPIN: SIM PIN") && failure.message.contains("set sim_pin"),
        "{failure:?}"
    );
    assert!(
        infos.iter().any(|i| i == "SIM: SIM PIN required"),
        "{infos:?}"
    );
    // Dial watchers get the cause once, as the failure above: progress does not repeat it
    // (issue 29).
    assert!(
        !infos.iter().any(|i| i.contains("set sim_pin")),
        "the cause is said once: {infos:?}"
    );
    assert_eq!(last.map(|f| f.message), Some(failure.message));
    assert!(took < Duration::from_secs(10), "failed at once: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cellular_dial_waits_for_registration_and_names_state_signal_and_operator() {
    let (outcome, took, _) = dial_cellular(MockModemConfig {
        // Searching with a weak signal, then roaming (each AT+CSQ moves the script on).
        cell: vec![
            "8,2".parse().expect("state"),
            "22,5,Roam Mobile,7".parse().expect("state"),
        ],
        ..MockModemConfig::default()
    })
    .await;
    let infos = match outcome {
        Outcome::Up(infos) => infos,
        Outcome::Failed(f, infos) => panic!("{f:?}\n{infos:#?}"),
    };
    assert!(
        infos
            .iter()
            .any(|i| i.starts_with("waiting for registration: searching, signal -97 dBm (1/4)")),
        "{infos:#?}"
    );
    assert!(
        infos.iter().any(|i| i
            .starts_with("registered: roaming (LTE), signal -69 dBm (4/4), operator Roam Mobile")),
        "{infos:#?}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
}
