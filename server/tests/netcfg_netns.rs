//! `dataplane::netcfg` over rtnetlink, checked in a private network namespace against what
//! the kernel reports through interfaces we did not write (getifaddrs(3) and
//! `/proc/thread-self/net/route`). Root only: elsewhere it prints SKIPPED to the real stderr.

use std::net::Ipv4Addr;

use masqdial_server::dataplane::netcfg::{NetCfg, NetCfgError, RouteSpec};
use masqdial_server::dataplane::tun::Tun;
use nix::net::if_::InterfaceFlags;

#[path = "common/private_netns.rs"]
mod private_netns;

/// (address, destination, up) of `dev` as getifaddrs(3) sees them (IPv4 only).
fn ifaddr(dev: &str) -> (Option<Ipv4Addr>, Option<Ipv4Addr>, bool) {
    let mut addr = None;
    let mut dst = None;
    let mut up = false;
    for i in nix::ifaddrs::getifaddrs().into_iter().flatten() {
        if i.interface_name != dev {
            continue;
        }
        up |= i.flags.contains(InterfaceFlags::IFF_UP);
        if let Some(a) = i.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            addr = Some(a.ip());
            dst = i
                .destination
                .as_ref()
                .and_then(|d| d.as_sockaddr_in())
                .map(|d| d.ip());
        }
    }
    (addr, dst, up)
}

/// IPv4 routes of this thread's namespace: (device, destination, mask) from the kernel's
/// `/proc/net/route` table (hex, little-endian as the kernel prints them).
fn routes() -> Vec<(String, Ipv4Addr, Ipv4Addr)> {
    let text = std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default();
    let hex = |s: &str| Ipv4Addr::from(u32::from_be(u32::from_str_radix(s, 16).unwrap_or(0)));
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 7).then(|| (f[0].to_string(), hex(f[1]), hex(f[7])))
        })
        .collect()
}

#[test]
fn netlink_configures_addresses_routes_and_link_state_in_a_namespace() {
    private_netns::run("netcfg_netns", scenario);
}

async fn scenario() -> Result<(), String> {
    let tun = Tun::open("mqt0", 1500).map_err(|e| e.to_string())?;
    let other = Tun::open("mqt1", 1500).map_err(|e| e.to_string())?;
    let nc = NetCfg::new(tun.name());
    let local = Ipv4Addr::new(10, 64, 0, 2);
    let peer = Ipv4Addr::new(10, 64, 0, 1);

    // A fresh namespace has no default route at all.
    assert!(!nc
        .other_default_route_exists()
        .await
        .map_err(|e| e.to_string())?);

    nc.link_up(local, peer).await.map_err(|e| e.to_string())?;
    assert_eq!(ifaddr("mqt0"), (Some(local), Some(peer), true));
    // Bringing it up again (a redial) replaces the address instead of failing.
    let local2 = Ipv4Addr::new(10, 64, 0, 7);
    nc.link_up(local2, peer).await.map_err(|e| e.to_string())?;
    assert_eq!(ifaddr("mqt0"), (Some(local2), Some(peer), true));

    nc.add_route(RouteSpec::Default)
        .await
        .map_err(|e| e.to_string())?;
    let net: ipnet::Ipv4Net = "203.0.113.0/24".parse().map_err(|e| format!("{e}"))?;
    nc.add_route(RouteSpec::Net(net))
        .await
        .map_err(|e| e.to_string())?;
    // Adding the same route again replaces it.
    nc.add_route(RouteSpec::Net(net))
        .await
        .map_err(|e| e.to_string())?;
    let mut r = routes();
    r.sort();
    let zero = Ipv4Addr::UNSPECIFIED;
    let mask24 = Ipv4Addr::new(255, 255, 255, 0);
    let net_addr = Ipv4Addr::new(203, 0, 113, 0);
    // The peer's host route comes with the point-to-point address (as with `ip addr add`).
    let host = Ipv4Addr::BROADCAST;
    assert_eq!(
        r,
        vec![
            ("mqt0".to_string(), zero, zero),
            ("mqt0".to_string(), peer, host),
            ("mqt0".to_string(), net_addr, mask24),
        ]
    );
    // Our own default route is not "another" one.
    assert!(!nc
        .other_default_route_exists()
        .await
        .map_err(|e| e.to_string())?);

    // A default route on another device is.
    let nc1 = NetCfg::new(other.name());
    nc1.link_up(Ipv4Addr::new(10, 65, 0, 2), Ipv4Addr::new(10, 65, 0, 1))
        .await
        .map_err(|e| e.to_string())?;
    nc1.add_route(RouteSpec::Default)
        .await
        .map_err(|e| e.to_string())?;
    assert!(nc
        .other_default_route_exists()
        .await
        .map_err(|e| e.to_string())?);
    assert!(!nc1
        .other_default_route_exists()
        .await
        .map_err(|e| e.to_string())?);

    // Deleting a route, and deleting it again (already gone), both succeed.
    nc.del_route(RouteSpec::Net(net))
        .await
        .map_err(|e| e.to_string())?;
    nc.del_route(RouteSpec::Net(net))
        .await
        .map_err(|e| e.to_string())?;
    assert!(!routes().iter().any(|(_, d, _)| *d == net_addr));

    nc.link_down().await.map_err(|e| e.to_string())?;
    assert_eq!(ifaddr("mqt0"), (None, None, false));
    assert!(!routes().iter().any(|(d, _, _)| d == "mqt0"));

    // Typed errors: a missing device, and a route on it.
    let ghost = NetCfg::new("mqghost0");
    match ghost.link_up(local, peer).await {
        Err(NetCfgError::NoDevice { dev }) => assert_eq!(dev, "mqghost0"),
        other => return Err(format!("link_up on a missing device: {other:?}")),
    }
    assert!(matches!(
        ghost.add_route(RouteSpec::Default).await,
        Err(NetCfgError::NoDevice { .. })
    ));
    // Deleting a route of a missing device is not an error (its routes are gone).
    ghost
        .del_route(RouteSpec::Default)
        .await
        .map_err(|e| e.to_string())?;
    drop((tun, other));
    Ok(())
}
