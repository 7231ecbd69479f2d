//! Setup shared by the in-process server tests that dial the mock modem on a pty.

// Each test file uses the part it needs.
#![allow(dead_code)]

pub mod events;

use masqdial_server::config::{Config, ConnectionConfig, FlowControl, ModemConfig};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::{Dataplane, LanPort, NatHandle};
use masqdial_server::link::manager::LinkManager;
use masqdial_server::shutdown::Shutdown;
use nat_core::chains::syntax::parse_rule;
use nat_core::Engine;
use tokio::sync::mpsc;

/// One modem (`modem0` on `device`, 115200 8N1, `ATZ`) and one connection `isp1` (number
/// 5550100, PPP user `demo`/`secret`, one attempt, 1 s redial delay, no routes), state in
/// `state`.
pub fn one_modem_config(device: &std::path::Path, state: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.server.state_dir = state.to_path_buf();
    c.modems.push(ModemConfig {
        name: "modem0".into(),
        device: device.to_path_buf(),
        baud: 115_200,
        data_bits: 8,
        parity: Default::default(),
        stop_bits: 1,
        flow_control: FlowControl::None,
        init: vec!["ATZ".into()],
        cellular: None,
    });
    let mut isp1: ConnectionConfig =
        toml::from_str("name = \"isp1\"\nnumbers = [\"5550100\"]\nmodems = [\"modem0\"]")
            .unwrap_or_else(|e| panic!("{e}"));
    isp1.username = "demo".into();
    isp1.password = "secret".into();
    isp1.redial_attempts = 1;
    isp1.redial_delay_s = 1;
    isp1.routes = vec![];
    c.connections.push(isp1);
    c
}

/// A link manager for `cfg` with no data plane (links come up; no packet moves), and its
/// stop signal.
pub fn links_without_dataplane(cfg: &Config) -> (LinkManager, Shutdown) {
    let nat = NatHandle::new(masqdial_server::persist::build_engine(cfg).expect("engine"));
    let stop = Shutdown::new();
    let links = LinkManager::start(cfg, Uplink::new(nat, None, None), &stop);
    (links, stop)
}

/// A gateway over `engine` whose LAN side is a pair of in-memory channels: the forward chain
/// masquerades 192.168.77.0/24, the data plane runs, and the link manager dials `cfg`'s
/// connections through it.
pub struct MemoryGateway {
    /// The engine, shared with the data plane.
    pub nat: NatHandle,
    /// Stops every task.
    pub stop: Shutdown,
    /// Packets from "LAN hosts".
    pub lan_tx: mpsc::Sender<Vec<u8>>,
    /// Packets to "LAN hosts".
    pub lan_out: mpsc::Receiver<Vec<u8>>,
    /// The link manager.
    pub links: LinkManager,
}

/// Start a [`MemoryGateway`] for `cfg` over `engine` (built from `cfg`).
pub fn memory_gateway(cfg: &Config, engine: Engine) -> MemoryGateway {
    memory_gateway_on(cfg, NatHandle::new(with_lan_masq(engine)))
}

/// [`memory_gateway`] on a NAT clock that moves only when the returned hand advances it.
pub fn memory_gateway_with_manual_clock(
    cfg: &Config,
    engine: Engine,
) -> (MemoryGateway, masqdial_server::dataplane::ManualClock) {
    let (nat, clock) = NatHandle::with_manual_clock(with_lan_masq(engine));
    (memory_gateway_on(cfg, nat), clock)
}

fn with_lan_masq(mut engine: Engine) -> Engine {
    let rule = parse_rule("-s 192.168.77.0/24 -j MASQ").expect("rule");
    engine
        .firewall_mut()
        .append("forward", &rule.rule)
        .expect("append");
    engine
}

fn memory_gateway_on(cfg: &Config, nat: NatHandle) -> MemoryGateway {
    let stop = Shutdown::new();
    let (lan_tx, lan_rx) = mpsc::channel(16);
    let (lan_out_tx, lan_out) = mpsc::channel(16);
    let dp = Dataplane::spawn(
        nat.clone(),
        LanPort::Memory {
            rx: lan_rx,
            tx: lan_out_tx,
        },
        &stop,
    );
    let links = LinkManager::start(cfg, Uplink::new(nat.clone(), Some(dp), None), &stop);
    MemoryGateway {
        nat,
        stop,
        lan_tx,
        lan_out,
        links,
    }
}
