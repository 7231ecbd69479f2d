//! SIGTERM's path (issue 10, item 5): [`Shutdown::stop`] (what mserver runs on SIGTERM, with
//! its 12 s bound, below the unit's TimeoutStopSec=15) hangs up every link: LCP
//! Terminate-Request to the peer, then `+++`/`ATH` to the modem, the masquerade address and
//! routes taken down, and every task joined. Mock modem on a real pty, mock ISP behind it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use masqdial_ppp::fsm::State;
use masqdial_ppp::AuthProtocol;
use masqdial_server::config::{Config, ConnectionConfig, ModemConfig};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::manager::{LinkManager, Who};
use masqdial_server::link::{DialOutcome, LinkState};
use masqdial_server::nat_control::NatControl;
use masqdial_server::persist::build_engine;
use masqdial_server::shutdown::Shutdown;
use masqdial_sim::isp::{IspConfig, MockIsp};
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::{Answerer, AnswererFactory, MockModemConfig};

/// mserver's bound on joining every task after SIGTERM (main.rs STOP_BOUND).
const STOP_BOUND: Duration = Duration::from_secs(20);

/// The mock ISP, recording each change of the access server's LCP state where the test
/// can see it.
struct Recording {
    isp: MockIsp,
    states: Arc<Mutex<Vec<State>>>,
}

impl Recording {
    fn copy_events(&mut self) {
        let now = self.isp.ppp().lcp_state();
        if let Ok(mut v) = self.states.lock() {
            if v.last() != Some(&now) {
                v.push(now);
            }
        }
    }
}

impl Answerer for Recording {
    fn handle_input(&mut self, now: std::time::Instant, bytes: &[u8]) {
        self.isp.handle_input(now, bytes);
        self.copy_events();
    }
    fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.isp.poll_output()
    }
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.isp.poll_timeout()
    }
    fn handle_timeout(&mut self, now: std::time::Instant) {
        self.isp.handle_timeout(now);
        self.copy_events();
    }
    fn is_closed(&self) -> bool {
        self.isp.is_closed()
    }
}

fn config(device: &std::path::Path, state: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.server.state_dir = state.to_path_buf();
    c.modems.push(ModemConfig {
        name: "modem0".into(),
        device: device.to_path_buf(),
        baud: 115_200,
        data_bits: 8,
        parity: Default::default(),
        stop_bits: 1,
        flow_control: masqdial_server::config::FlowControl::None,
        init: vec!["ATZ".into()],
        cellular: None,
    });
    let cc: ConnectionConfig = toml::from_str(
        "name = \"isp1\"\nmodems = [\"modem0\"]\nnumbers = [\"5550100\"]\nusername = \"demo\"\npassword = \"secret\"\nredial_attempts = 1\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    c.connections.push(cc);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_hangs_up_the_link_with_lcp_terminate_and_ath_within_the_bound() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let factory: AnswererFactory = Box::new(move |_n: &str| {
        Box::new(Recording {
            isp: MockIsp::new(isp.clone()),
            states: ev.clone(),
        }) as Box<dyn Answerer>
    });
    let modem = spawn_pty(MockModemConfig::default(), factory).unwrap_or_else(|e| panic!("{e}"));
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = config(modem.path(), state.path());
    let nat = NatHandle::new(build_engine(&cfg).unwrap_or_else(|e| panic!("{e}")));
    let stop = Shutdown::new();
    let uplink = Uplink::new(nat.clone(), None, None);
    let links = LinkManager::start(&cfg, uplink.clone(), &stop);
    let natctl = NatControl::new(Arc::new(cfg), nat, None);
    let who = Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    };
    assert_eq!(
        links
            .dial("isp1", who)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        DialOutcome::Started
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while links.state("isp1") != Some(LinkState::Up) {
        assert!(Instant::now() < deadline, "link never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(natctl.masq_address().is_some());
    assert_eq!(uplink.active().as_deref(), Some("isp1"));
    assert_eq!(modem.stats().ath_commands, 0);

    // What mserver does after SIGTERM.
    assert!(
        stop.stop(STOP_BOUND).await,
        "every task (link actors included) joined within {STOP_BOUND:?}"
    );

    // The peer got our LCP Terminate-Request while Opened (RFC 1661: RTR in Opened ->
    // Stopping)...
    let states = events.lock().map(|e| e.clone()).unwrap_or_default();
    let opened = states.iter().position(|s| *s == State::Opened);
    assert!(opened.is_some(), "{states:?}");
    assert_eq!(
        states.get(opened.unwrap_or(0) + 1),
        Some(&State::Stopping),
        "{states:?}"
    );
    // ...the modem got ATH (the stats are published by the modem's loop: poll briefly)...
    let deadline = Instant::now() + Duration::from_secs(5);
    while modem.stats().ath_commands == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(modem.stats().ath_commands >= 1, "{:?}", modem.stats());
    // ...and the uplink took the link down (its routes are removed there; this test has
    // no netns, so no routes were installed).
    assert_eq!(uplink.active(), None);
    drop(modem);
}
