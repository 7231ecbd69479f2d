//! JSON and text views of the domain objects for the page. Wording follows `mclient` (dial
//! progress lines, states) so that the page and the CLI say the same things.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::link::events::{DialStep, LinkStatus, ModemState, ModemView};
use crate::link::manager::LinkManager;
use crate::link::LinkState;
use crate::nat_control::PortUsage;
use crate::rpc::Caller;
use nat_core::masq::EntrySnapshot;

/// Unix seconds of a wall-clock time (0 before 1970).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A link state as the page (and `[data-field=state]`) shows it.
pub fn state_name(s: LinkState) -> &'static str {
    match s {
        LinkState::Idle => "idle",
        LinkState::Dialing => "dialing",
        LinkState::Connected => "connected",
        LinkState::Authenticating => "authenticating",
        LinkState::Up => "up",
        LinkState::HangingUp => "hanging up",
        LinkState::Failed => "failed",
    }
}

/// A dial step as `mclient dial` prints it.
pub fn dial_line(connection: &str, step: &DialStep) -> String {
    match step {
        DialStep::ModemInit { modem, device } => format!("initialising modem {modem} ({device})"),
        DialStep::Dialing {
            number,
            index,
            count,
            attempt,
            attempts,
        } => {
            format!("dialing {number} (number {index} of {count}, attempt {attempt} of {attempts})")
        }
        DialStep::Connected { speed_bps, extras } => format!("CONNECT {speed_bps} {extras}")
            .trim_end()
            .to_string(),
        DialStep::LcpUp { peer_mru, auth, .. } => format!(
            "LCP up (MRU peer {peer_mru}, peer asks {})",
            auth.map_or_else(|| "none".to_string(), |a| a.to_string())
        ),
        DialStep::AuthOk(a) => format!(
            "authenticated ({})",
            a.map_or_else(|| "none".to_string(), |a| a.to_string())
        ),
        DialStep::IpcpUp {
            local, peer, dns, ..
        } => format!(
            "IPCP up: local {local} peer {peer} dns {}",
            dns.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        DialStep::Redial {
            next_attempt,
            delay,
        } => format!(
            "redialing in {} s (attempt {next_attempt})",
            delay.as_secs()
        ),
        DialStep::Info(t) => t.clone(),
        DialStep::Up(s) => format!(
            "{connection} is up ({})",
            s.local.map(|a| a.to_string()).unwrap_or_default()
        ),
        DialStep::Failed(f) => format!("failed: {}", f.message),
    }
}

/// The link queue one-liner (`mclient status`'s `queue:` line, shortened).
fn queue_line(s: &LinkStatus) -> String {
    let Some(q) = &s.queues else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (dir, snap) in [("up", &q.egress), ("down", &q.ingress)] {
        if let Some(x) = snap {
            parts.push(format!(
                "{dir}: {:?} {} B queued ({} pkts), {} hosts/{} flows, {} dropped",
                x.kind,
                x.stats.backlog_bytes,
                x.stats.backlog_packets,
                x.stats.active_hosts,
                x.stats.active_flows,
                x.stats.dropped_overflow
            ));
        }
    }
    parts.join("; ")
}

/// The budget one-liner.
fn budget_line(s: &LinkStatus) -> String {
    let Some(b) = &s.budget else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(q) = b.bytes_quota {
        parts.push(format!(
            "{} of {} bytes this {}",
            b.bytes_used, q, b.bytes_period
        ));
    }
    if let Some(t) = b.time_budget_s {
        parts.push(format!(
            "{} of {} s this {}",
            b.time_used_s, t, b.time_period
        ));
    }
    if !b.windows.is_empty() {
        parts.push(format!(
            "windows {} ({})",
            b.windows.join(","),
            if b.window_open { "open" } else { "closed" }
        ));
    }
    if let Some(r) = &b.refusal {
        parts.push(format!("refused: {r}"));
    }
    parts.join("; ")
}

/// One connection card.
pub fn connection(links: &LinkManager, caller: &Caller, name: &str) -> Value {
    let description = links
        .connection(name)
        .map(|c| c.description.clone())
        .unwrap_or_default();
    let s = links.status(name).ok();
    let state = s.as_ref().map_or(LinkState::Idle, |s| s.state);
    let now = SystemTime::now();
    json!({
        "name": name,
        "description": description,
        "state": state_name(state),
        "may_dial": caller.may_use(name),
        "holders": s.as_ref().map(|s| s.holders.iter().map(|h| json!({
            "user": h.user, "host": h.host, "since": unix(h.since)
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "uptime_s": s.as_ref().and_then(|s| s.connected_since)
            .and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs()),
        "speed": s.as_ref().map_or(0, |s| s.speed_bps),
        "local": s.as_ref().and_then(|s| s.local).map(|a| a.to_string()),
        "peer": s.as_ref().and_then(|s| s.peer).map(|a| a.to_string()),
        "dns": s.as_ref().map(|s| s.dns.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
        "bytes_in": s.as_ref().map_or(0, |s| s.bytes_in),
        "bytes_out": s.as_ref().map_or(0, |s| s.bytes_out),
        "queue": s.as_ref().map(queue_line).unwrap_or_default(),
        "budget": s.as_ref().map(budget_line).unwrap_or_default(),
        "last_failure": s.as_ref().and_then(|s| s.last_failure.as_ref()).map(|f| f.message.clone()),
    })
}

fn modem_state(s: ModemState) -> &'static str {
    match s {
        ModemState::Idle => "idle",
        ModemState::Busy => "busy",
        ModemState::Absent => "absent",
        ModemState::Error => "error",
    }
}

/// One modem row.
pub fn modem(m: &ModemView) -> Value {
    let cell = m.cellular.as_ref();
    let st = cell.map(|c| &c.status);
    json!({
        "name": m.name,
        "device": m.device,
        "state": modem_state(m.state),
        "connection": m.connection,
        "error": m.last_error,
        "signal": st.and_then(|s| s.signal.as_ref()).map(|x| match x.dbm() {
            Some(dbm) => format!("{dbm} dBm ({} of 4 bars)", x.bars()),
            None => "not known".to_string(),
        }),
        "registration": st.and_then(|s| s.registration()).map(|r| {
            let mut t = r.status.name().to_string();
            if let Some(a) = &r.area {
                t.push_str(&format!(", area {a}"));
            }
            if let Some(c) = &r.cell {
                t.push_str(&format!(", cell {c}"));
            }
            t
        }),
        "operator": st
            .and_then(|s| s.operator.as_ref())
            .and_then(|o| o.name.clone()),
        "next_probe": m.next_probe.map(unix),
    })
}

/// Everything a page shows outside the masquerade table.
pub fn snapshot(links: &LinkManager, caller: &Caller) -> Value {
    json!({
        "connections": links.names().iter().map(|n| connection(links, caller, n)).collect::<Vec<_>>(),
        "modems": links.modems().iter().map(modem).collect::<Vec<_>>(),
    })
}

/// Protocol name of an IP protocol number.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        _ => "other",
    }
}

/// One masquerade row.
pub fn masq_entry(e: &EntrySnapshot) -> Value {
    json!({
        "id": e.id.0,
        "p": proto_name(e.proto),
        "lan": format!("{}:{}", e.lan.0, e.lan.1),
        "masq": e.masq.1,
        "remote": format!("{}:{}", e.remote.0, e.remote.1),
        "exp": e.expire_cs,
        "st": e.state.name(),
        "h": e.helper.unwrap_or_default(),
    })
}

/// The free-port gauges.
pub fn free_ports(p: &PortUsage) -> Value {
    let f = &p.free;
    json!({
        "tcp": [f.tcp.0, f.tcp.1],
        "udp": [f.udp.0, f.udp.1],
        "icmp": [f.icmp.0, f.icmp.1],
    })
}

/// The negotiated PPP options as `key: value` lines (both directions, the refusals), as
/// `mclient cinfo` shows them.
pub fn ppp_lines(o: &masqdial_ppp::NegotiatedOptions) -> String {
    use masqdial_ppp::options::Ncp;
    let auth =
        |a: Option<masqdial_ppp::AuthProtocol>| a.map_or("none".to_string(), |a| a.to_string());
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut v = vec![
        format!("MRU: ours {} peer {}", o.local_mru, o.peer_mru),
        format!(
            "ACCM: sent {:#010x} received {:#010x}",
            o.tx_accm, o.rx_accm
        ),
        format!(
            "compression: PFC {}/{}, ACFC {}/{} (sent/received)",
            yes(o.tx_pfc),
            yes(o.rx_pfc),
            yes(o.tx_acfc),
            yes(o.rx_acfc)
        ),
        format!(
            "FCS: {} sent, {} received",
            if o.tx_fcs32 { "32-bit" } else { "16-bit" },
            if o.rx_fcs32 { "32-bit" } else { "16-bit" }
        ),
        format!(
            "authentication: we authenticate with {}, the peer with {}{}",
            auth(o.auth_by_peer),
            auth(o.auth_of_peer),
            if o.pap_fallback {
                " (PAP fallback: the password crossed in clear)"
            } else {
                ""
            }
        ),
        format!(
            "addresses: local {} peer {}",
            o.local_ip.map_or("-".to_string(), |a| a.to_string()),
            o.peer_ip.map_or("-".to_string(), |a| a.to_string())
        ),
        format!(
            "DNS: {}",
            if o.dns.is_empty() {
                "none".to_string()
            } else {
                o.dns
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    ];
    if let Some(n) = &o.peer_name {
        v.push(format!("peer name: {n}"));
    }
    v.extend(o.lcp_refused.iter().map(|r| r.describe(Ncp::Lcp)));
    v.extend(o.ipcp_refused.iter().map(|r| r.describe(Ncp::Ipcp)));
    v.join("\n")
}
