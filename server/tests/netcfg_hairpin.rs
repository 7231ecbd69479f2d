//! The hairpin policy routing of `dataplane::netcfg` (`NetCfg::hairpin_on`/`hairpin_off`) in a
//! private network namespace, checked with iproute2's `ip rule`/`ip route` (a parser we did not
//! write): the kernel's `lookup local` rule moves from preference 0 and comes back exactly, a LAN
//! packet to the link's address is routed into the TUN while local traffic is still delivered
//! locally, and rules left by a crashed run are removed. Root only: elsewhere it prints SKIPPED.

use std::net::Ipv4Addr;
use std::process::Command;

use masqdial_server::dataplane::netcfg::{HairpinRules, NetCfg};
use masqdial_server::dataplane::tun::Tun;

#[path = "common/private_netns.rs"]
mod private_netns;

fn skip(why: &str) {
    masqdial_testkit::skip("netcfg_hairpin", why);
}

/// `ip ARGS` run from this thread (so in its namespace): stdout, or the error text.
fn ip(args: &[&str]) -> Result<String, String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn rules() -> Result<Vec<String>, String> {
    Ok(ip(&["-4", "rule", "show"])?
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect())
}

/// The first line of `ip route get ARGS`, whitespace collapsed.
fn route_get(args: &[&str]) -> Result<String, String> {
    let mut a = vec!["-4", "route", "get"];
    a.extend_from_slice(args);
    Ok(ip(&a)?
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" "))
}

#[test]
fn hairpin_rules_route_lan_packets_to_the_link_address_into_the_tun_and_restore_local() {
    if Command::new("ip").arg("-V").output().is_err() {
        return skip("iproute2 (`ip`) [not installed]");
    }
    private_netns::run("netcfg_hairpin", scenario);
}

async fn scenario() -> Result<(), String> {
    let e = |e: masqdial_server::dataplane::netcfg::NetCfgError| e.to_string();
    let tun = Tun::open("mqt0", 1500).map_err(|e| e.to_string())?;
    let nc = NetCfg::new(tun.name());
    // The LAN side: another TUN with the gateway's LAN address; forwarding on.
    let lan = Tun::open("gw0", 1500).map_err(|e| e.to_string())?;
    ip(&["addr", "add", "192.168.77.1/24", "dev", "gw0"])?;
    ip(&["link", "set", "gw0", "up"])?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| e.to_string())?;
    let local = Ipv4Addr::new(10, 64, 0, 5);
    let peer = Ipv4Addr::new(10, 64, 0, 1);
    nc.link_up(local, peer).await.map_err(e)?;

    let original = rules()?;
    assert_eq!(
        original,
        [
            "0: from all lookup local",
            "32766: from all lookup main",
            "32767: from all lookup default"
        ]
    );
    assert_eq!(
        nc.hairpin_rules().await.map_err(e)?,
        HairpinRules {
            ours: 0,
            kernel_local_at_0: true,
            any_local: true
        }
    );
    // Nothing to undo: nothing is touched.
    assert!(!nc.hairpin_off().await.map_err(e)?);
    assert_eq!(rules()?, original);
    // Before: the LAN's packet to the link address is delivered locally.
    let lan_to_link = ["10.64.0.5", "from", "192.168.77.2", "iif", "gw0"];
    assert!(
        route_get(&lan_to_link)?.starts_with("local 10.64.0.5 from 192.168.77.2 dev lo"),
        "{}",
        route_get(&lan_to_link)?
    );

    nc.hairpin_on("gw0", local).await.map_err(e)?;
    assert_eq!(
        rules()?,
        [
            "0: from all to 10.64.0.5 iif gw0 lookup 4787 proto 77",
            "1: from all lookup local proto 77",
            "32766: from all lookup main",
            "32767: from all lookup default"
        ]
    );
    assert_eq!(
        ip(&["-4", "route", "show", "table", "4787"])?.trim(),
        "default dev mqt0 scope link"
    );
    // The LAN's packet to the link address goes into the TUN ...
    assert!(
        route_get(&lan_to_link)?.starts_with("10.64.0.5 from 192.168.77.2 dev mqt0 table 4787"),
        "{}",
        route_get(&lan_to_link)?
    );
    // ... the gateway's own packet to it (and the LAN address) are still local ...
    assert!(route_get(&["10.64.0.5"])?.starts_with("local 10.64.0.5 dev lo table local"));
    let lan_to_gw = ["192.168.77.1", "from", "192.168.77.2", "iif", "gw0"];
    assert!(route_get(&lan_to_gw)?.starts_with("local 192.168.77.1 from 192.168.77.2 dev lo"));
    // ... and so is what the data plane writes to the TUN for the link address.
    let tun_to_link = ["10.64.0.5", "from", "203.0.113.1", "iif", "mqt0"];
    assert!(
        route_get(&tun_to_link)?.starts_with("local 10.64.0.5 from 203.0.113.1 dev lo"),
        "{}",
        route_get(&tun_to_link)?
    );

    // A redial to another address: still one hairpin rule, for the new address.
    let local2 = Ipv4Addr::new(10, 64, 0, 9);
    nc.link_up(local2, peer).await.map_err(e)?;
    nc.hairpin_on("gw0", local2).await.map_err(e)?;
    assert_eq!(
        rules()?,
        [
            "0: from all to 10.64.0.9 iif gw0 lookup 4787 proto 77",
            "1: from all lookup local proto 77",
            "32766: from all lookup main",
            "32767: from all lookup default"
        ]
    );

    // Link down: exactly the kernel's rules again, and no hairpin route.
    assert!(nc.hairpin_off().await.map_err(e)?);
    assert_eq!(rules()?, original);
    assert_eq!(ip(&["-4", "route", "show", "table", "4787"])?.trim(), "");
    assert!(route_get(&lan_to_link[..])
        .map(|r| !r.contains("mqt0"))
        .unwrap_or(true));

    // A crashed run left its rules (and the kernel's local rule deleted): a new run's
    // handle (no memory of them) restores the namespace.
    nc.hairpin_on("gw0", local2).await.map_err(e)?;
    nc.link_down().await.map_err(e)?;
    let fresh = NetCfg::new("mqt0");
    assert_eq!(
        fresh.hairpin_rules().await.map_err(e)?,
        HairpinRules {
            ours: 2,
            kernel_local_at_0: false,
            any_local: true
        }
    );
    assert!(fresh.hairpin_off().await.map_err(e)?);
    assert_eq!(rules()?, original);
    // The same with the TUN device gone altogether.
    nc.link_up(local, peer).await.map_err(e)?;
    nc.hairpin_on("gw0", local).await.map_err(e)?;
    drop(tun);
    assert!(fresh.hairpin_off().await.map_err(e)?);
    assert_eq!(rules()?, original);
    drop(lan);
    Ok(())
}

/// Finding N15: the administrator's own `lookup local` rules keep their positions exactly.
/// One placed at preference 100 (as VRF set-ups do) is never moved and no `lookup local`
/// appears at 0 afterwards; one at 0 with the admin's own attributes (`proto static`) comes
/// back with them. After a crash (a fresh handle without memory) the preference-100
/// arrangement comes back exactly too.
#[test]
fn hairpin_restores_the_administrators_own_rule_positions_exactly() {
    if Command::new("ip").arg("-V").output().is_err() {
        return skip("iproute2 (`ip`) [not installed]");
    }
    private_netns::run("netcfg_hairpin_admin_rules", admin_rules);
}

async fn admin_rules() -> Result<(), String> {
    let e = |e: masqdial_server::dataplane::netcfg::NetCfgError| e.to_string();
    let tun = Tun::open("mqt1", 1500).map_err(|e| e.to_string())?;
    let nc = NetCfg::new(tun.name());
    let lan = Tun::open("gw1", 1500).map_err(|e| e.to_string())?;
    ip(&["addr", "add", "192.168.78.1/24", "dev", "gw1"])?;
    ip(&["link", "set", "gw1", "up"])?;
    let local = Ipv4Addr::new(10, 65, 0, 5);
    nc.link_up(local, Ipv4Addr::new(10, 65, 0, 1))
        .await
        .map_err(e)?;

    // The admin moved `lookup local` to 100 (and has a rule of their own at 50).
    ip(&["rule", "add", "pref", "100", "lookup", "local"])?;
    ip(&["rule", "del", "pref", "0"])?;
    ip(&[
        "rule",
        "add",
        "pref",
        "50",
        "from",
        "192.168.78.9",
        "lookup",
        "main",
    ])?;
    let admin = rules()?;
    assert_eq!(
        admin,
        [
            "50: from 192.168.78.9 lookup main",
            "100: from all lookup local",
            "32766: from all lookup main",
            "32767: from all lookup default"
        ]
    );
    nc.hairpin_on("gw1", local).await.map_err(e)?;
    assert_eq!(
        rules()?,
        [
            "0: from all to 10.65.0.5 iif gw1 lookup 4787 proto 77",
            "50: from 192.168.78.9 lookup main",
            "100: from all lookup local",
            "32766: from all lookup main",
            "32767: from all lookup default"
        ],
        "nothing of the admin's moved, no local rule added"
    );
    assert!(nc.hairpin_off().await.map_err(e)?);
    assert_eq!(rules()?, admin, "exactly the admin's rules again");
    // The same after a crash: a fresh handle without memory.
    nc.hairpin_on("gw1", local).await.map_err(e)?;
    assert!(NetCfg::new("mqt1").hairpin_off().await.map_err(e)?);
    assert_eq!(rules()?, admin, "exactly the admin's rules after a crash");

    // The admin's own `lookup local` at 0, with attributes of theirs: moved while hairpinning,
    // back verbatim after.
    ip(&["rule", "del", "pref", "100"])?;
    ip(&[
        "rule", "add", "pref", "0", "lookup", "local", "proto", "static",
    ])?;
    let admin0 = rules()?;
    assert_eq!(admin0[0], "0: from all lookup local proto static");
    nc.hairpin_on("gw1", local).await.map_err(e)?;
    assert_eq!(
        rules()?[..3],
        [
            "0: from all to 10.65.0.5 iif gw1 lookup 4787 proto 77",
            "1: from all lookup local proto 77",
            "50: from 192.168.78.9 lookup main",
        ]
    );
    // A redial re-adds the hairpin rule and keeps the memory.
    nc.hairpin_on("gw1", local).await.map_err(e)?;
    assert!(nc.clone().hairpin_off().await.map_err(e)?);
    assert_eq!(rules()?, admin0, "proto static kept");
    drop((tun, lan));
    Ok(())
}
