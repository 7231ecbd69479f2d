//! Setup shared by the in-process server tests that dial the mock modem on a pty.

use masqdial_server::config::{Config, ConnectionConfig, FlowControl, ModemConfig};

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
