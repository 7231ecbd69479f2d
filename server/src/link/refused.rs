//! Which networks a PPP peer may not hand out (`PppConfig::refused_networks`): the networks
//! of this host's own interfaces (its LANs: an address inside one would hijack a LAN host's
//! route on the TUN) plus `[link] refused_networks` from the config. Not the server's
//! `allow` list: that is RFC 1918 by default, and an ISP may well give a 10.x address.
//! Loopback, multicast, broadcast, reserved and 0.0.0.0 are refused by the PPP crate anyway.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use masqdial_ppp::ipcp::Ipv4Network;

/// One IPv4 address of an interface, with its netmask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfNet {
    /// Interface name.
    pub name: String,
    /// Address.
    pub addr: Ipv4Addr,
    /// Netmask (`None`: a host address, /32).
    pub netmask: Option<Ipv4Addr>,
    /// A point-to-point interface (another PPP link, a tunnel): its address is not a LAN.
    pub point_to_point: bool,
}

/// The IPv4 addresses of this namespace's interfaces.
pub fn interface_nets() -> Vec<IfNet> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|i| {
        let addr = i.address?.as_sockaddr_in()?.ip();
        let netmask = i
            .netmask
            .and_then(|m| m.as_sockaddr_in().map(nix::sys::socket::SockaddrIn::ip));
        Some(IfNet {
            name: i.interface_name.clone(),
            addr,
            netmask,
            point_to_point: i
                .flags
                .contains(nix::net::if_::InterfaceFlags::IFF_POINTOPOINT),
        })
    })
    .collect()
}

/// The refused networks: every LAN network of `ifaces` (each address with its prefix; the
/// loopback, the TUN `tun` and point-to-point interfaces left out; only `lan_interface` when
/// it is set), then the `configured` IPv4 networks. Duplicates are dropped.
#[must_use]
pub fn refused_networks(
    ifaces: &[IfNet],
    lan_interface: Option<&str>,
    tun: &str,
    configured: &[IpNet],
) -> Vec<Ipv4Network> {
    let mut out: Vec<Ipv4Network> = Vec::new();
    let lan = ifaces.iter().filter(|i| {
        !i.addr.is_loopback()
            && !i.point_to_point
            && i.name != tun
            && lan_interface.is_none_or(|l| l == i.name)
    });
    for i in lan {
        let prefix = i.netmask.map_or(32, |m| {
            u8::try_from(u32::from(m).leading_ones()).unwrap_or(32)
        });
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        push(
            &mut out,
            Ipv4Network::new(Ipv4Addr::from(u32::from(i.addr) & mask), prefix),
        );
    }
    for n in configured {
        if let IpNet::V4(n) = n {
            push(&mut out, Ipv4Network::new(n.network(), n.prefix_len()));
        }
    }
    out
}

fn push(out: &mut Vec<Ipv4Network>, n: Ipv4Network) {
    if !out.contains(&n) {
        out.push(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifnet(name: &str, addr: [u8; 4], mask: Option<[u8; 4]>, p2p: bool) -> IfNet {
        IfNet {
            name: name.into(),
            addr: Ipv4Addr::from(addr),
            netmask: mask.map(Ipv4Addr::from),
            point_to_point: p2p,
        }
    }

    #[test]
    fn lan_networks_and_configured_ones_not_the_tun_loopback_or_ppp() {
        let ifaces = [
            ifnet("lo", [127, 0, 0, 1], Some([255, 0, 0, 0]), false),
            ifnet("eth0", [192, 168, 77, 1], Some([255, 255, 255, 0]), false),
            ifnet("eth0", [192, 168, 78, 9], Some([255, 255, 254, 0]), false),
            ifnet("eth1", [172, 20, 1, 2], Some([255, 255, 0, 0]), false),
            ifnet("masq0", [10, 64, 0, 2], Some([255, 255, 255, 255]), true),
            ifnet("ppp1", [10, 9, 9, 9], None, true),
            ifnet("dummy0", [198, 51, 100, 7], None, false),
        ];
        let cfg: Vec<IpNet> = ["203.0.113.0/24", "2001:db8::/32", "192.168.77.0/24"]
            .iter()
            .map(|s| s.parse().expect("net"))
            .collect();
        let got: Vec<String> = refused_networks(&ifaces, None, "masq0", &cfg)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "192.168.77.0/24",
                "192.168.78.0/23",
                "172.20.0.0/16",
                "198.51.100.7/32",
                "203.0.113.0/24",
            ]
        );
        // With lan_interface set, only that interface's networks (and the configured ones).
        let got: Vec<String> = refused_networks(&ifaces, Some("eth0"), "masq0", &[])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["192.168.77.0/24", "192.168.78.0/23"]);
        // Never the RFC 1918 allow-list: a 10.x address from the ISP is fine.
        let n = refused_networks(&ifaces, None, "masq0", &cfg);
        assert!(masqdial_ppp::ipcp::check_address(Ipv4Addr::new(10, 0, 2, 15), &n).is_ok());
        assert!(masqdial_ppp::ipcp::check_address(Ipv4Addr::new(192, 168, 77, 20), &n).is_err());
    }
}
