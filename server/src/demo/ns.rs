//! The demo's private LAN (root only): a gateway namespace holding the TUN device and a
//! LAN-host namespace behind a veth pair, so `mserver --demo` can masquerade real traffic
//! without touching the host's own routes or sysctls. Owns those namespaces and removes
//! them on drop; owns nothing else.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::dataplane::netcfg::NetCfg;

/// The LAN host's address.
pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
/// The gateway's LAN address.
pub const LAN_GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);

/// Errors setting up the demo LAN.
#[derive(Debug, thiserror::Error)]
pub enum DemoNsError {
    /// A setup command failed.
    #[error("demo LAN setup: `{cmd}` failed: {detail}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its error output.
        detail: String,
    },
}

pub(crate) fn run(args: &[&str]) -> Result<(), DemoNsError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DemoNsError::Command {
            cmd: args.join(" "),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DemoNsError::Command {
            cmd: args.join(" "),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The demo runs whose namespaces are named in `names` (`mqdemo-<role>-<pid>`) and whose
/// mserver is gone: `alive(pid)` tells whether that pid is still an mserver. Our own pid is
/// never stale.
pub fn stale_namespaces(names: &[String], me: u32, alive: impl Fn(u32) -> bool) -> Vec<String> {
    names
        .iter()
        .filter(|n| {
            let Some(rest) = n.strip_prefix("mqdemo-") else {
                return false;
            };
            let Some(pid) = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                return false;
            };
            pid != me && !alive(pid)
        })
        .cloned()
        .collect()
}

/// Delete the namespaces left by demo runs that were killed hard (their Drop never ran), so
/// they do not pile up: `mqdemo-*-<pid>` whose pid is no longer an mserver.
pub fn remove_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    let names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "mserver")
    };
    let stale = stale_namespaces(&names, std::process::id(), alive);
    for ns in &stale {
        match run(&["ip", "netns", "del", ns]) {
            Ok(()) => tracing::info!(netns = %ns, "removed a namespace left by a killed demo"),
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

/// The demo's namespaces. Dropping it deletes them.
#[derive(Debug)]
pub struct DemoLan {
    gw: String,
    lan: String,
    tun: String,
    stop: Arc<AtomicBool>,
}

impl DemoLan {
    /// Create `mqdemo-gw-<pid>` and `mqdemo-lan-<pid>`, move TUN `tun` into the gateway
    /// namespace, wire a veth pair 192.168.77.1/24 ⇄ 192.168.77.2/24 and enable forwarding
    /// in the gateway namespace only.
    pub fn create(tun: &str) -> Result<Self, DemoNsError> {
        let pid = std::process::id();
        let me = Self {
            gw: format!("mqdemo-gw-{pid}"),
            lan: format!("mqdemo-lan-{pid}"),
            tun: tun.to_string(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (gw, lan) = (me.gw.as_str(), me.lan.as_str());
        run(&["ip", "netns", "add", gw])?;
        run(&["ip", "netns", "add", lan])?;
        run(&["ip", "link", "set", tun, "netns", gw])?;
        run(&[
            "ip", "-n", gw, "link", "add", "gw0", "type", "veth", "peer", "name", "lan0", "netns",
            lan,
        ])?;
        run(&[
            "ip",
            "-n",
            gw,
            "addr",
            "add",
            "192.168.77.1/24",
            "dev",
            "gw0",
        ])?;
        run(&[
            "ip",
            "-n",
            lan,
            "addr",
            "add",
            "192.168.77.2/24",
            "dev",
            "lan0",
        ])?;
        for ns in [gw, lan] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        run(&["ip", "-n", gw, "link", "set", "gw0", "up"])?;
        run(&["ip", "-n", lan, "link", "set", "lan0", "up"])?;
        run(&[
            "ip",
            "-n",
            lan,
            "route",
            "add",
            "default",
            "via",
            "192.168.77.1",
        ])?;
        run(&[
            "ip",
            "netns",
            "exec",
            gw,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ])?;
        Ok(me)
    }

    /// How to configure the TUN device now that it lives in the gateway namespace.
    pub fn netcfg(&self) -> NetCfg {
        NetCfg::in_netns(&self.tun, &self.gw)
    }

    /// The LAN host namespace's name (for `ip netns exec`).
    pub fn lan_ns(&self) -> &str {
        &self.lan
    }

    /// Start background traffic from the LAN host: a UDP datagram to a few "internet"
    /// addresses every `period` and a ping now and then, so the masquerade table has live
    /// entries. Runs until the `DemoLan` is dropped.
    pub fn start_traffic(&self, period: Duration) {
        let lan = self.lan.clone();
        let stop = Arc::clone(&self.stop);
        std::thread::spawn(move || traffic_loop(&lan, period, &stop));
    }
}

fn traffic_loop(lan: &str, period: Duration, stop: &AtomicBool) {
    let targets = [
        SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 7),
        SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 53), 53),
        SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 123),
    ];
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        // Each datagram comes from a fresh process inside the LAN namespace so the source
        // ports vary like real clients' do.
        for t in targets {
            let _ = Command::new("ip")
                .args(["netns", "exec", lan, "bash", "-c"])
                .arg(format!(
                    "exec 3<>/dev/udp/{}/{} 2>/dev/null && echo masqdial-demo >&3; true",
                    t.ip(),
                    t.port()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if round.is_multiple_of(4) {
            let _ = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    lan,
                    "ping",
                    "-c",
                    "1",
                    "-W",
                    "1",
                    "198.51.100.1",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        round = round.wrapping_add(1);
        std::thread::sleep(period);
    }
}

impl Drop for DemoLan {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = run(&["ip", "netns", "del", &self.lan]);
        let _ = run(&["ip", "netns", "del", &self.gw]);
    }
}

#[cfg(test)]
mod tests {
    use super::stale_namespaces;

    #[test]
    fn only_namespaces_of_gone_demo_runs_are_stale() {
        let names: Vec<String> = [
            "mqdemo-gw-100",
            "mqdemo-lan-100",
            "mqdemo-wan-100",
            "mqdemo-gw-200",
            "mqdemo-lan-300",
            "mqdemo-gw-x",
            "other-ns-100",
            "mqdemo-lan-42",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // 200 is still an mserver; 42 is us; 100 and 300 are gone.
        let stale = stale_namespaces(&names, 42, |pid| pid == 200);
        assert_eq!(
            stale,
            vec![
                "mqdemo-gw-100",
                "mqdemo-lan-100",
                "mqdemo-wan-100",
                "mqdemo-lan-300"
            ]
        );
    }
}
