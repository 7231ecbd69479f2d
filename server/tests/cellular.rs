//! Cellular status end to end inside the server: the link manager polls an idle modem (the
//! mock modem on a pseudo-terminal, with a SIM PIN and a scripted signal/registration
//! change) and its modem view shows what the modem answered.

use std::time::{Duration, Instant};

use masqdial_at::cell::{RegStatus, SimState};
use masqdial_server::config::{CellularConfig, Config, FlowControl, ModemConfig};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::manager::LinkManager;
use masqdial_server::shutdown::Shutdown;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::{Answerer, EchoAnswerer, MockModemConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_polls_an_idle_cellular_modem_and_follows_the_script() {
    let mock = spawn_pty(
        MockModemConfig {
            cell: vec![
                "8,2".parse().expect("state"),
                "22,5,Roam Mobile,7".parse().expect("state"),
            ],
            sim_pin: Some("2468".into()),
            ..MockModemConfig::default()
        },
        Box::new(|_: &str| Box::new(EchoAnswerer::default()) as Box<dyn Answerer>),
    )
    .expect("pty");
    let mut c = Config::default();
    c.modems.push(ModemConfig {
        name: "cell0".into(),
        device: mock.path().to_path_buf(),
        baud: 115_200,
        data_bits: 8,
        parity: Default::default(),
        stop_bits: 1,
        flow_control: FlowControl::None,
        init: vec!["ATZ".into()],
        cellular: Some(CellularConfig {
            poll_s: 1,
            sim_pin: Some("2468".into()),
            status_port: None,
        }),
    });
    let shutdown = Shutdown::new();
    let nat = NatHandle::new(nat_core::Engine::new(nat_core::EngineConfig::default()));
    let links = LinkManager::start(&c, Uplink::new(nat, None, None), &shutdown);

    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Some(cell) = links.modems().first().and_then(|m| m.cellular.clone()) {
            if cell.at.is_some() && seen.last() != Some(&cell.status) {
                seen.push(cell.status.clone());
            }
            if seen.len() >= 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        shutdown.stop(Duration::from_secs(10)).await,
        "tasks stopped"
    );
    assert!(seen.len() >= 2, "two polls: {seen:#?}");
    // First poll: the PIN unlocks the SIM; weak signal, searching.
    let first = &seen[0];
    assert_eq!(first.pin, Some(true));
    assert_eq!(first.sim, Some(SimState::Ready));
    assert_eq!(first.imei.as_deref(), Some("001010123456789"));
    assert_eq!(
        first.signal.map(|s| (s.dbm(), s.bars())),
        Some((Some(-97), 1))
    );
    assert_eq!(
        first.cereg.as_ref().map(|r| r.status),
        Some(RegStatus::Searching)
    );
    // Second poll: the script moved on (the SIM stays unlocked, no PIN sent again).
    let second = &seen[1];
    assert_eq!(second.pin, None);
    assert_eq!(second.sim, Some(SimState::Ready));
    assert_eq!(second.signal.and_then(|s| s.dbm()), Some(-69));
    assert_eq!(
        second
            .registration()
            .map(|r| (r.status, r.status.roaming())),
        Some((RegStatus::Roaming, true))
    );
    assert_eq!(
        second.operator.as_ref().and_then(|o| o.name.as_deref()),
        Some("Roam Mobile")
    );
}
