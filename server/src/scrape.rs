//! The metrics sources read at scrape time (the link table, the NAT engine) and the systemd
//! status line: the composition root registers them with [`crate::counters`]. Sits above the
//! link manager and the data plane, which it only reads.

use crate::counters::{Kind, Source};

/// Source for the NAT engine: masquerade entries and free ports per protocol, drops per
/// reason, chain rule and policy counters.
pub fn nat_source(nat: crate::dataplane::NatHandle) -> Source {
    Box::new(move |e| {
        let now = nat.now();
        let engine = nat.lock();
        let fp = engine.free_ports();
        let mut entries = [0u64; 3];
        for s in engine.masq_snapshot(now) {
            match s.proto {
                6 => entries[0] += 1,
                17 => entries[1] += 1,
                1 => entries[2] += 1,
                _ => {}
            }
        }
        let protos = [("tcp", fp.tcp), ("udp", fp.udp), ("icmp", fp.icmp)];
        e.family(
            "masqdial_masq_entries",
            Kind::Gauge,
            "Live masquerade entries per protocol.",
        );
        for ((p, _), n) in protos.iter().zip(entries) {
            e.sample("masqdial_masq_entries", &[("protocol", p)], n as f64);
        }
        e.family(
            "masqdial_masq_free_ports",
            Kind::Gauge,
            "Free masquerade ports per protocol.",
        );
        for (p, (free, _)) in &protos {
            e.sample(
                "masqdial_masq_free_ports",
                &[("protocol", p)],
                f64::from(*free),
            );
        }
        e.family(
            "masqdial_masq_ports",
            Kind::Gauge,
            "Masquerade ports in the pool per protocol.",
        );
        for (p, (_, total)) in &protos {
            e.sample("masqdial_masq_ports", &[("protocol", p)], f64::from(*total));
        }
        e.family(
            "masqdial_drops_total",
            Kind::Counter,
            "Packets dropped by the NAT engine per reason.",
        );
        for r in nat_core::engine::DropReason::ALL {
            e.sample(
                "masqdial_drops_total",
                &[("reason", r.name())],
                engine.drops(r) as f64,
            );
        }
        e.family(
            "masqdial_chain_packets_total",
            Kind::Counter,
            "Packets matched per chain and rule (rule=policy: the chain's policy).",
        );
        e.family(
            "masqdial_chain_bytes_total",
            Kind::Counter,
            "Bytes matched per chain and rule (rule=policy: the chain's policy).",
        );
        let fw = engine.firewall();
        for chain in fw.chain_names() {
            let n = fw.rules(&chain).map(|r| r.len()).unwrap_or(0);
            let mut rows: Vec<(String, nat_core::chains::Counter)> = (1..=n)
                .filter_map(|i| fw.rule_counters(&chain, i).ok().map(|c| (i.to_string(), c)))
                .collect();
            if let Ok(c) = fw.policy_counters(&chain) {
                if fw.policy(&chain).ok().flatten().is_some() {
                    rows.push(("policy".into(), c));
                }
            }
            for (rule, c) in rows {
                let labels = [("chain", chain.as_str()), ("rule", rule.as_str())];
                e.sample("masqdial_chain_packets_total", &labels, c.packets as f64);
                e.sample("masqdial_chain_bytes_total", &labels, c.bytes as f64);
            }
        }
    })
}

/// Lower-case name of a link state, as in metrics labels and the systemd status line.
pub fn state_name(s: crate::link::LinkState) -> &'static str {
    use crate::link::LinkState as S;
    match s {
        S::Idle => "idle",
        S::Dialing => "dialing",
        S::Connected => "connected",
        S::Authenticating => "authenticating",
        S::Up => "up",
        S::HangingUp => "hanging_up",
        S::Failed => "failed",
    }
}

/// Source for the links: state, up flag, bytes and packets per connection.
pub fn link_source(links: crate::link::manager::LinkManager) -> Source {
    Box::new(move |e| {
        e.family(
            "masqdial_link_up",
            Kind::Gauge,
            "1 while the connection's link is up (IPCP open).",
        );
        e.family(
            "masqdial_link_state",
            Kind::Gauge,
            "1 for the connection's current link state.",
        );
        for name in links.names() {
            let state = links.state(name).map_or("idle", state_name);
            let up = if state == "up" { 1.0 } else { 0.0 };
            e.sample("masqdial_link_up", &[("connection", name)], up);
            e.sample(
                "masqdial_link_state",
                &[("connection", name), ("state", state)],
                1.0,
            );
        }
        e.family(
            "masqdial_link_bytes_total",
            Kind::Counter,
            "IP bytes over the link since it came up, per direction.",
        );
        e.family(
            "masqdial_link_packets_total",
            Kind::Counter,
            "IP packets over the link since it came up, per direction.",
        );
        for s in links.statuses() {
            let c = s.connection.as_str();
            for (dir, bytes, packets) in [
                ("rx", s.bytes_in, s.packets_in),
                ("tx", s.bytes_out, s.packets_out),
            ] {
                let labels = [("connection", c), ("direction", dir)];
                e.sample("masqdial_link_bytes_total", &labels, bytes as f64);
                e.sample("masqdial_link_packets_total", &labels, packets as f64);
            }
        }
    })
}

/// One line for `systemctl status`: every connection's state (and address when up).
pub fn link_summary(links: &crate::link::manager::LinkManager) -> String {
    let parts: Vec<String> = links
        .statuses()
        .iter()
        .map(|s| {
            let state = state_name(s.state);
            match s.local {
                Some(a) => format!("{} {state} {a}", s.connection),
                None => format!("{} {state}", s.connection),
            }
        })
        .collect();
    if parts.is_empty() {
        "no connections configured".into()
    } else {
        parts.join(", ")
    }
}
