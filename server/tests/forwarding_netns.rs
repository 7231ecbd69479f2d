//! Finding N6: mserver switches IPv4 forwarding on for the LAN interface and its TUN only,
//! while it runs, and puts both back at exit; `net.ipv4.ip_forward` stays off. Run in a
//! private network namespace through the composition root (`daemon::start` with the real
//! TUN), checked with `/proc/sys` and iproute2's `ip route get ... iif` (the kernel's own
//! forwarding decision). Root only: elsewhere it prints SKIPPED.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use masqdial_server::config::Config;
use masqdial_server::daemon::{self, LanSide};
use masqdial_server::dataplane::netcfg::NetCfg;
use masqdial_server::dataplane::tun::Tun;
use masqdial_server::shutdown::Shutdown;

#[path = "common/private_netns.rs"]
mod private_netns;

fn ip(args: &[&str]) -> Result<String, String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn sysctl(path: &str) -> Result<String, String> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{path}"))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{path}: {e}"))
}

/// Whether the kernel would forward a LAN packet to the internet (in on `gw0`).
fn lan_forwards() -> bool {
    ip(&[
        "-4",
        "route",
        "get",
        "203.0.113.9",
        "from",
        "192.168.77.2",
        "iif",
        "gw0",
    ])
    .is_ok()
}

#[test]
fn forwarding_is_on_for_the_lan_interface_and_tun_while_running_and_restored_after() {
    if Command::new("ip").arg("-V").output().is_err() {
        return masqdial_testkit::skip("forwarding_netns", "iproute2 (`ip`) [not installed]");
    }
    private_netns::run("forwarding_netns", scenario);
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<(), String> {
    // A hang guard only.
    for _ in 0..600 {
        if f() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("timed out waiting for {what}"))
}

async fn scenario() -> Result<(), String> {
    // The LAN side: a TUN standing in for eth0, with the gateway's LAN address; an "uplink"
    // default route so that `route get` has somewhere to send the LAN's packet.
    let lan = Tun::open("gw0", 1500).map_err(|e| e.to_string())?;
    ip(&["addr", "add", "192.168.77.1/24", "dev", "gw0"])?;
    ip(&["link", "set", "gw0", "up"])?;
    ip(&["link", "set", "lo", "up"])?;
    let other = Tun::open("wan9", 1500).map_err(|e| e.to_string())?;
    ip(&["addr", "add", "198.51.100.2/24", "dev", "wan9"])?;
    ip(&["link", "set", "wan9", "up"])?;
    ip(&["route", "add", "default", "dev", "wan9"])?;
    assert_eq!(sysctl("ip_forward")?, "0");
    assert_eq!(sysctl("conf/gw0/forwarding")?, "0");
    assert!(!lan_forwards(), "forwarding off at first");

    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cfg = Config::default();
    cfg.server.state_dir = state.path().to_path_buf();
    cfg.nat.tun_name = "mqf0".into();
    cfg.nat.lan_interface = Some("gw0".into());
    let shutdown = Shutdown::new();
    let running =
        daemon::start(Arc::new(cfg), LanSide::Tun, &shutdown).map_err(|e| e.to_string())?;
    assert!(running.dataplane_on);

    wait_for("forwarding on gw0 and mqf0", || {
        sysctl("conf/gw0/forwarding").as_deref() == Ok("1")
            && sysctl("conf/mqf0/forwarding").as_deref() == Ok("1")
    })
    .await?;
    // Only those two: the host-wide switch and the other interface stay off ...
    assert_eq!(sysctl("ip_forward")?, "0");
    assert_eq!(sysctl("conf/all/forwarding")?, "0");
    assert_eq!(sysctl("conf/wan9/forwarding")?, "0");
    // ... and the kernel now forwards the LAN's packet (decided by the input interface).
    assert!(
        lan_forwards(),
        "the LAN's packet is forwarded while mserver runs"
    );
    // The reading over netlink agrees with /proc/sys.
    assert!(NetCfg::new("gw0")
        .ipv4_forwarding()
        .await
        .map_err(|e| e.to_string())?);
    assert!(!NetCfg::new("wan9")
        .ipv4_forwarding()
        .await
        .map_err(|e| e.to_string())?);

    assert!(shutdown.stop(Duration::from_secs(30)).await, "tasks ended");
    assert_eq!(sysctl("conf/gw0/forwarding")?, "0", "restored at exit");
    assert!(!lan_forwards(), "no forwarding after exit");
    assert_eq!(sysctl("ip_forward")?, "0");

    // A switch that was already on stays on (it is the admin's), and is not switched off.
    ip(&["link", "set", "wan9", "down"])?;
    std::fs::write("/proc/sys/net/ipv4/conf/gw0/forwarding", "1").map_err(|e| e.to_string())?;
    let state2 = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cfg = Config::default();
    cfg.server.state_dir = state2.path().to_path_buf();
    cfg.nat.tun_name = "mqf1".into();
    cfg.nat.lan_interface = Some("gw0".into());
    let shutdown = Shutdown::new();
    let running =
        daemon::start(Arc::new(cfg), LanSide::Tun, &shutdown).map_err(|e| e.to_string())?;
    assert!(running.dataplane_on);
    let on = wait_for("forwarding on mqf1", || {
        sysctl("conf/mqf1/forwarding").as_deref() == Ok("1")
    })
    .await;
    if let Err(e) = on {
        return Err(format!(
            "{e}: {:?} {:?} {:?}",
            sysctl("conf/mqf1/forwarding"),
            NetCfg::new("mqf1")
                .ipv4_forwarding()
                .await
                .map_err(|e| e.to_string()),
            ip(&["link"])
        ));
    }
    assert!(shutdown.stop(Duration::from_secs(30)).await, "tasks ended");
    assert_eq!(
        sysctl("conf/gw0/forwarding")?,
        "1",
        "the admin's value kept"
    );
    drop((lan, other));
    Ok(())
}
