//! The gateway's own side of the dataplane: which addresses and interface name are the LAN's
//! (so nat-core can tell the gateway's own packets from forwarded ones and source its ICMP
//! errors from the LAN address), the TUN sysctls that let the kernel accept what nat-core
//! hands back (REJECT's errors carry a local source address), and writing nat-core's queued
//! `-l` lines to the log. Owns no packets and makes no link decisions.

use std::net::Ipv4Addr;

use nat_core::Engine;

/// The tracing target of `-l` lines (`RUST_LOG=masqdial::packet_log=info` to see only them).
pub const PACKET_LOG_TARGET: &str = "masqdial::packet_log";

/// Write nat-core's queued `Packet log:` lines (already rate-limited and counted by it) to
/// the log, and send them to `watchers` (if any: a send without receivers is not an error).
pub fn emit_packet_log(engine: &mut Engine, watchers: &tokio::sync::broadcast::Sender<String>) {
    if engine.packet_log_pending() {
        for line in engine.drain_packet_log() {
            tracing::info!(target: PACKET_LOG_TARGET, "{line}");
            if watchers.receiver_count() > 0 {
                let _ = watchers.send(line);
            }
        }
    }
}

/// One IPv4 address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface name.
    pub name: String,
    /// Address.
    pub addr: Ipv4Addr,
}

/// The IPv4 addresses of this namespace's interfaces, loopback left out.
pub fn interface_addrs() -> Vec<IfAddr> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|i| {
        let a = i.address?.as_sockaddr_in()?.ip();
        (!a.is_loopback()).then(|| IfAddr {
            name: i.interface_name.clone(),
            addr: a,
        })
    })
    .collect()
}

/// [`interface_addrs`] of network namespace `/run/netns/<ns>` (the demo's gateway
/// namespace, where the LAN veth lives), read on a short-lived thread that joined it
/// (setns affects only that thread). `None`: this namespace. Empty if it cannot be entered.
pub fn interface_addrs_in(netns: Option<&str>) -> Vec<IfAddr> {
    let Some(ns) = netns else {
        return interface_addrs();
    };
    let path = format!("/run/netns/{ns}");
    let read = move || {
        let f = std::fs::File::open(&path).ok()?;
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        Some(interface_addrs())
    };
    std::thread::Builder::new()
        .name("lan-addrs-setns".into())
        .spawn(read)
        .ok()
        .and_then(|t| t.join().ok())
        .flatten()
        .unwrap_or_else(|| {
            tracing::warn!(
                netns = ns,
                "cannot read the LAN interfaces of the namespace"
            );
            Vec::new()
        })
}

/// Choose the LAN interface and addresses: the configured `lan_interface`, or else the only
/// interface other than the TUN with a private (RFC 1918) address.
pub fn choose_lan(
    configured: Option<&str>,
    tun: &str,
    addrs: &[IfAddr],
) -> Option<(String, Vec<Ipv4Addr>)> {
    let name = match configured {
        Some(n) => n.to_string(),
        None => {
            let mut names: Vec<&str> = addrs
                .iter()
                .filter(|a| a.name != tun && a.addr.is_private())
                .map(|a| a.name.as_str())
                .collect();
            names.dedup();
            match names[..] {
                [one] => one.to_string(),
                _ => return None,
            }
        }
    };
    let mine: Vec<Ipv4Addr> = addrs
        .iter()
        .filter(|a| a.name == name)
        .map(|a| a.addr)
        .collect();
    Some((name, mine))
}

/// Tell the engine the LAN interface's name and the gateway's LAN addresses; answers the
/// name, when known.
pub fn configure_lan(
    nat: &super::NatHandle,
    configured: Option<&str>,
    tun: &str,
    netns: Option<&str>,
) -> Option<String> {
    match choose_lan(configured, tun, &interface_addrs_in(netns)) {
        Some((name, addrs)) => {
            tracing::info!(lan_interface = %name, addresses = ?addrs, "LAN side for the NAT engine");
            let mut e = nat.lock();
            e.set_lan_iface(&name);
            if !addrs.is_empty() {
                e.set_local_addrs(addrs);
            }
            Some(name)
        }
        None => {
            tracing::warn!(
                "cannot tell the LAN interface (set [nat] lan_interface): REJECT sends no ICMP to the LAN, rules name it `{}`, and there is no hairpinning",
                nat.lock().config().lan_iface
            );
            None
        }
    }
}

/// Let the kernel take what the dataplane writes to the TUN: ICMP errors from the gateway's
/// LAN address (a local source: `accept_local`), without reverse-path filtering on the TUN.
pub fn prepare_tun(dev: &str) {
    let base = format!("/proc/sys/net/ipv4/conf/{dev}");
    if !std::path::Path::new(&base).exists() {
        tracing::debug!(%dev, "no sysctls for the TUN in this namespace");
        return;
    }
    for (key, val) in [("accept_local", "1"), ("rp_filter", "0")] {
        if let Err(e) = std::fs::write(format!("{base}/{key}"), val) {
            tracing::warn!(%dev, error = %e, "setting {key}={val}");
        }
    }
    if std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/rp_filter")
        .is_ok_and(|v| v.trim() != "0")
    {
        tracing::warn!("net.ipv4.conf.all.rp_filter is on: REJECT's ICMP errors to the LAN may be dropped by the kernel");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: &str, addr: [u8; 4]) -> IfAddr {
        IfAddr {
            name: name.into(),
            addr: addr.into(),
        }
    }

    #[test]
    fn lan_is_the_configured_or_the_only_private_interface() {
        let addrs = [
            a("gw0", [192, 168, 77, 1]),
            a("masq0", [10, 64, 0, 5]),
            a("eth1", [203, 0, 113, 9]),
        ];
        assert_eq!(
            choose_lan(None, "masq0", &addrs),
            Some(("gw0".into(), vec![Ipv4Addr::new(192, 168, 77, 1)]))
        );
        assert_eq!(
            choose_lan(Some("eth1"), "masq0", &addrs),
            Some(("eth1".into(), vec![Ipv4Addr::new(203, 0, 113, 9)]))
        );
        let two = [a("gw0", [192, 168, 77, 1]), a("gw1", [10, 1, 0, 1])];
        assert_eq!(choose_lan(None, "masq0", &two), None);
    }
}
