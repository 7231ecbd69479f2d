//! mclient's `--json` shapes, one function per protobuf message, following the one naming
//! scheme written down in `client-cli/JSON.md`:
//! - snake_case keys; a connection's name is always `connection`, a modem's `modem`;
//! - times are RFC 3339 UTC strings (`connected_since`, `expires_at`, `since`);
//! - durations are integer seconds in keys ending `_seconds`; speeds are `speed_bps`;
//! - byte and packet counts are integers (`bytes_in`, `packets_out`);
//! - an absent value is `null`, never `""`; an empty list is `[]`;
//! - enum values are lower-case strings (`up`, `idle`, `tcp`).
//!
//! Pure functions only.

use masqdial_proto::v1 as pb;
use serde_json::{json, Value};

use crate::format;

/// `null` for an empty string.
pub fn opt(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

/// `null` for zero.
pub fn nonzero(n: u64) -> Value {
    if n == 0 {
        Value::Null
    } else {
        json!(n)
    }
}

/// RFC 3339 text or `null`.
pub fn time(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.and_then(format::rfc3339)
        .map_or(Value::Null, Value::String)
}

/// RFC 3339 with milliseconds (transcript lines), `null` when unset.
pub fn time_ms(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.and_then(crate::words::rfc3339_ms)
        .map_or(Value::Null, Value::String)
}

/// Whole seconds of a protobuf duration (0 when unset).
pub fn seconds(d: Option<&prost_types::Duration>) -> i64 {
    d.map_or(0, |d| d.seconds)
}

/// Lower-case failure kind (`busy`, `no_carrier`).
pub fn failure_kind(kind: i32) -> String {
    match pb::FailureKind::try_from(kind) {
        Ok(k) => k
            .as_str_name()
            .trim_start_matches("FAILURE_KIND_")
            .to_lowercase(),
        Err(_) => "unspecified".into(),
    }
}

/// A failure, or `null` when unset.
pub fn failure(f: Option<&pb::Failure>) -> Value {
    match f {
        Some(f) if f.kind != 0 || !f.message.is_empty() => {
            json!({"kind": failure_kind(f.kind), "message": f.message})
        }
        _ => Value::Null,
    }
}

/// A configured connection (`list`).
pub fn connection(c: &pb::Connection) -> Value {
    json!({"connection": c.name, "description": opt(&c.description), "numbers": c.numbers,
           "modems": c.modems, "allowed": c.allowed, "state": format::link_state(c.state)})
}

/// A holder of a link.
pub fn holder(h: &pb::Holder) -> Value {
    json!({"user": h.user, "host": h.host, "since": time(h.since.as_ref())})
}

/// A link's state and counters (`status`, `cinfo`, `dial`'s `up`, `watch`).
pub fn link(l: &pb::LinkStatus) -> Value {
    json!({"connection": l.connection, "state": format::link_state(l.state), "modem": opt(&l.modem),
           "speed_bps": nonzero(u64::from(l.speed_bps)), "local_address": opt(&l.local_address),
           "peer_address": opt(&l.peer_address), "dns": l.dns,
           "connected_since": time(l.connected_since.as_ref()),
           "bytes_in": l.bytes_in, "bytes_out": l.bytes_out,
           "packets_in": l.packets_in, "packets_out": l.packets_out,
           "holders": l.holders.iter().map(holder).collect::<Vec<_>>(),
           "last_failure": failure(l.last_failure.as_ref()),
           "idle_seconds": l.idle_seconds, "queues": l.queues.as_ref().map(queues),
           "budget": l.budget.as_ref().map(budget)})
}

/// A connection's budget, or null when it has none.
pub fn budget(b: &pb::Budget) -> Value {
    json!({"bytes_quota": nonzero(b.bytes_quota), "bytes_used": b.bytes_used,
           "bytes_period": b.bytes_period, "bytes_counted": b.bytes_counted,
           "bytes_resets_at": time(b.bytes_resets_at.as_ref()),
           "time_budget_seconds": nonzero(b.time_budget_s), "time_used_seconds": b.time_used_s,
           "time_period": b.time_period, "time_resets_at": time(b.time_resets_at.as_ref()),
           "windows": b.windows, "window_open": b.window_open,
           "window_changes_at": time(b.window_changes_at.as_ref()),
           "refusal": opt(&b.refusal), "utc_offset": b.utc_offset})
}

fn queue_stats(q: &pb::QueueStats) -> Value {
    json!({"backlog_bytes": q.backlog_bytes, "backlog_packets": q.backlog_packets,
           "limit_bytes": q.limit_bytes, "sent_packets": q.sent_packets, "sent_bytes": q.sent_bytes,
           "dropped_overflow": q.dropped_overflow, "dropped_aqm": q.dropped_aqm, "ecn_marked": q.ecn_marked,
           "sojourn_p50_ms": q.sojourn_p50_ms, "sojourn_p95_ms": q.sojourn_p95_ms,
           "in_flight_bytes": q.in_flight_bytes,
           "hosts": q.hosts.iter().map(|h| json!({"host": h.host, "bytes": h.bytes, "share": h.share})).collect::<Vec<_>>()})
}

/// The link's queues (scheduler, both directions), or null when the link has none.
pub fn queues(q: &pb::LinkQueues) -> Value {
    json!({"scheduler": q.scheduler, "egress": q.egress.as_ref().map(queue_stats),
           "ingress": q.ingress.as_ref().map(queue_stats), "ingress_shaping": q.ingress_shaping})
}

/// Everything about one connection (`cinfo`).
pub fn connection_info(i: &pb::ConnectionInfo) -> Value {
    let conn = i.connection.clone().unwrap_or_default();
    let mut link = i.link.clone().unwrap_or_default();
    if link.connection.is_empty() {
        link.connection = conn.name.clone();
    }
    let never = |d: Option<&prost_types::Duration>| match seconds(d) {
        0 => Value::Null,
        s => json!(s),
    };
    json!({
        "connection": conn.name, "description": opt(&conn.description), "numbers": conn.numbers,
        "modems": conn.modems, "allowed": conn.allowed, "state": format::link_state(conn.state),
        "link": self::link(&link), "dial_prefix": opt(&i.dial_prefix), "auth": opt(&i.auth),
        "redial_attempts": i.redial_attempts, "redial_delay_seconds": seconds(i.redial_delay.as_ref()),
        "idle_timeout_seconds": never(i.idle_timeout.as_ref()),
        "max_connect_seconds": never(i.max_connect_time.as_ref()),
        "redial_on_loss": i.redial_on_loss, "allowed_users": i.allowed_users,
        "apn": opt(&i.apn), "ppp_username": opt(&i.ppp_username), "routes": i.routes,
        "transcript": i.transcript.iter().map(|t| json!({"at": time_ms(t.at.as_ref()), "kind": t.kind, "text": t.text})).collect::<Vec<_>>(),
        "ppp": i.ppp.as_ref().map(ppp_options),
    })
}

/// The PPP options negotiated on the current/last link, both directions (`cinfo`).
pub fn ppp_options(p: &pb::PppOptions) -> Value {
    json!({"local_mru": p.local_mru, "peer_mru": p.peer_mru, "local_accm": p.local_accm,
           "peer_accm": p.peer_accm, "local_magic": p.local_magic, "peer_magic": p.peer_magic,
           "pfc": p.pfc, "acfc": p.acfc, "fcs32": p.fcs32,
           "auth_protocol": opt(&p.auth_protocol), "auth_of_peer": opt(&p.auth_of_peer),
           "local_address": opt(&p.local_address), "peer_address": opt(&p.peer_address),
           "dns": p.dns, "refused": p.refused.iter().map(refusal).collect::<Vec<_>>(),
           "frames_in": p.frames_in, "frames_out": p.frames_out, "fcs_errors": p.fcs_errors,
           "discarded": p.discarded})
}

/// One option Nak'd or Rejected while negotiating.
pub fn refusal(r: &pb::OptionRefusal) -> Value {
    json!({"protocol": r.protocol, "option": r.option, "name": opt(&r.name),
           "by_peer": r.by_peer, "reject": r.reject, "value": opt(&r.value)})
}

/// A modem (`modems`).
pub fn modem(m: &pb::Modem) -> Value {
    json!({"modem": m.name, "device": m.device, "speed_bps": nonzero(u64::from(m.baud)),
           "state": format::modem_state(m.state), "connection": opt(&m.connection),
           "last_error": opt(&m.last_error), "modem_lines": m.modem_lines,
           "usable_by": m.usable_by, "cellular": m.cellular.as_ref().map(cellular),
           "next_probe_at": time(m.next_probe.as_ref()), "failed_probes": m.failed_probes})
}

/// A cellular modem's polled status (`signal_dbm` null when unknown; `pin` is
/// `accepted`/`refused`, null when no PIN was sent).
pub fn cellular(c: &pb::CellularStatus) -> Value {
    let pin = match (c.pin_sent, c.pin_accepted) {
        (false, _) => Value::Null,
        (true, true) => json!("accepted"),
        (true, false) => json!("refused"),
    };
    json!({"manufacturer": opt(&c.manufacturer), "model": opt(&c.model), "imei": opt(&c.imei),
           "ident": c.ident, "sim": opt(&c.sim),
           "signal_dbm": if c.has_signal { json!(c.signal_dbm) } else { Value::Null },
           "signal_bars": c.signal_bars, "rssi": c.rssi, "registration": opt(&c.registration),
           "roaming": c.roaming, "operator": opt(&c.operator),
           "access_technology": opt(&c.access_technology),
           "polled_at": time(c.polled_at.as_ref()), "error": opt(&c.error), "pin": pin})
}

/// Lower-case protocol name.
pub fn protocol(p: i32) -> String {
    format::protocol(p).to_lowercase()
}

/// A masquerade entry (`masq`, `ipchains -M -L`).
pub fn masq_entry(e: &pb::MasqEntry) -> Value {
    json!({"id": e.id, "protocol": protocol(e.protocol), "lan_address": e.lan_address,
           "lan_port": e.lan_port, "masq_address": opt(&e.masq_address), "masq_port": e.masq_port,
           "remote_address": e.remote_address, "remote_port": e.remote_port,
           "expires_in_centis": e.expire_centis, "state": opt(&e.state), "init_seq": e.init_seq,
           "delta": e.delta, "prev_delta": e.prev_delta, "helper": opt(&e.helper),
           "packets": e.packets, "bytes": e.bytes})
}

/// A chain rule (`ipchains -L`).
pub fn rule(r: &pb::Rule) -> Value {
    json!({"number": r.number, "spec": r.spec, "target": opt(&r.target), "protocol": r.protocol,
           "source": r.source, "destination": r.destination,
           "source_ports": opt(&r.source_ports), "destination_ports": opt(&r.destination_ports),
           "interface": opt(&r.interface), "options": r.options,
           "redirect_port": nonzero(u64::from(r.redirect_port)), "packets": r.packets,
           "bytes": r.bytes, "log": r.log, "tos_and": r.tos_and, "tos_xor": r.tos_xor,
           "mark": r.mark})
}

/// A chain with its rules (`ipchains -L`, and every rule change).
pub fn chain(c: &pb::Chain) -> Value {
    json!({"chain": c.name, "policy": opt(&c.policy), "builtin": c.builtin,
           "references": c.references, "policy_packets": c.policy_packets,
           "policy_bytes": c.policy_bytes,
           "rules": c.rules.iter().map(rule).collect::<Vec<_>>()})
}

/// Masquerade timeouts.
pub fn timeouts(t: &pb::Timeouts) -> Value {
    json!({"tcp_seconds": t.tcp, "tcpfin_seconds": t.tcpfin, "udp_seconds": t.udp,
           "icmp_seconds": t.icmp})
}

/// One dial event as a JSON line: `{"event": NAME, "connection": …, …}`.
pub fn dial_event(connection: &str, ev: &pb::DialEvent) -> Value {
    use pb::dial_event::Event;
    let (name, mut v) = match &ev.event {
        Some(Event::ModemInit(m)) => ("modem_init", json!({"modem": m.modem, "device": m.device})),
        Some(Event::Dialing(d)) => (
            "dialing",
            json!({"number": d.number, "index": d.index, "count": d.count, "attempt": d.attempt, "attempts": d.attempts}),
        ),
        Some(Event::Connected(c)) => (
            "connected",
            json!({"speed_bps": nonzero(u64::from(c.speed_bps)), "extras": opt(&c.extras)}),
        ),
        Some(Event::LcpUp(l)) => (
            "lcp_up",
            json!({"peer_mru": l.peer_mru, "auth_protocol": opt(&l.auth_protocol),
                   "local_mru": l.local_mru, "local_accm": l.local_accm, "peer_accm": l.peer_accm,
                   "auth_of_peer": opt(&l.auth_of_peer),
                   "refused": l.refused.iter().map(refusal).collect::<Vec<_>>()}),
        ),
        Some(Event::AuthOk(a)) => ("auth_ok", json!({"protocol": a.protocol})),
        Some(Event::IpcpUp(i)) => (
            "ipcp_up",
            json!({"local_address": i.local_address, "peer_address": i.peer_address, "dns": i.dns,
                   "refused": i.refused.iter().map(refusal).collect::<Vec<_>>()}),
        ),
        Some(Event::Up(u)) => (
            "up",
            json!({"link": link(&u.link.clone().unwrap_or_default())}),
        ),
        Some(Event::Failed(f)) => (
            "failed",
            json!({"kind": failure_kind(f.kind), "message": f.message}),
        ),
        Some(Event::Joined(j)) => (
            "joined",
            json!({"state": format::link_state(j.state), "holders": j.holders}),
        ),
        Some(Event::Info(t)) => ("info", json!({"text": t})),
        Some(Event::Redial(r)) => (
            "redial",
            json!({"next_attempt": r.next_attempt, "delay_seconds": seconds(r.delay.as_ref())}),
        ),
        None => ("unknown", json!({})),
    };
    if let Value::Object(m) = &mut v {
        m.insert("event".into(), json!(name));
        m.insert("connection".into(), json!(connection));
        m.insert("at".into(), time(ev.at.as_ref()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_null_and_times_are_rfc3339() {
        let l = pb::LinkStatus {
            connection: "isp1".into(),
            state: pb::LinkState::Up as i32,
            connected_since: Some(prost_types::Timestamp {
                seconds: 1_796_029_102,
                nanos: 0,
            }),
            ..Default::default()
        };
        let v = link(&l);
        assert_eq!(v["connection"], "isp1");
        assert_eq!(v["state"], "up");
        assert_eq!(v["modem"], Value::Null);
        assert_eq!(v["speed_bps"], Value::Null);
        assert_eq!(v["connected_since"], "2026-11-30T08:58:22Z");
        assert_eq!(v["last_failure"], Value::Null);
        assert_eq!(
            failure_kind(pb::FailureKind::NoCarrier as i32),
            "no_carrier"
        );
    }
}
