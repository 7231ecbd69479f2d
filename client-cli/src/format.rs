//! Rendering helpers shared by mclient and mtui: expiry `mm:ss.hh`, byte counts, status
//! lines and plain-text tables. The words themselves (state names, durations, refusals,
//! dates) are [`crate::words`]'s, re-exported here; this module must not word them again.
//!
//! Pure functions only: no I/O.

use std::time::{Duration, SystemTime};

use masqdial_proto::v1 as pb;

pub use crate::words::{
    auth_or_none, duration, human_duration, link_state, modem_state, refusal, rfc3339,
};

/// `mm:ss.hh` from hundredths of a second, as `ipchains -M -L` prints expiry
/// (minutes are not wrapped: 125 minutes print as `125:00.00`).
pub fn expire_mmss(centis: u64) -> String {
    let minutes = centis / 6000;
    let seconds = (centis / 100) % 60;
    let hundredths = centis % 100;
    format!("{minutes:02}:{seconds:02}.{hundredths:02}")
}

/// Human byte count: `512 B`, `1.5 KiB`, `3.2 MiB`, `1.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Human byte count as mtui shows it: `999`, `1.2K`, `34M`, `1.1G` (powers of 1000; one
/// decimal below 10). mclient's tables use the same function.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if n < 1000 {
        return n.to_string();
    }
    let mut v = n as f64;
    let mut unit = "";
    for u in UNITS {
        v /= 1000.0;
        unit = u;
        if v < 1000.0 {
            break;
        }
    }
    if v < 10.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// A connection's budget on one line: `bytes 1.7 KiB of 2.9 KiB per month (both), up
/// 0:05:00 of 1:00:00 per day, windows Mo-Fr 18:00-08:00 UTC+01:00 (closed)`, then why a
/// dial is refused now.
pub fn budget_line(b: &pb::Budget) -> String {
    let mut parts = Vec::new();
    if b.bytes_quota > 0 {
        parts.push(format!(
            "bytes {} of {} per {} ({})",
            human_bytes(b.bytes_used),
            human_bytes(b.bytes_quota),
            b.bytes_period,
            b.bytes_counted
        ));
    }
    if b.time_budget_s > 0 {
        parts.push(format!(
            "up {} of {} per {}",
            human_duration(b.time_used_s),
            human_duration(b.time_budget_s),
            b.time_period
        ));
    }
    if !b.windows.is_empty() {
        parts.push(format!(
            "windows {} UTC{} ({})",
            b.windows.join(", "),
            b.utc_offset,
            if b.window_open { "open" } else { "closed" }
        ));
    }
    let mut s = parts.join(", ");
    if !b.refusal.is_empty() {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!("no dial now: {}", b.refusal));
    }
    s
}

/// Convert a protobuf timestamp.
pub fn system_time(ts: &prost_types::Timestamp) -> Option<SystemTime> {
    let secs = u64::try_from(ts.seconds).ok()?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Time since `ts` at `now` as [`human_duration`]; empty when unset or in the future.
pub fn since(ts: Option<&prost_types::Timestamp>, now: SystemTime) -> String {
    ts.filter(|t| t.seconds > 0)
        .and_then(system_time)
        .and_then(|t| now.duration_since(t).ok())
        .map(|d| human_duration(d.as_secs()))
        .unwrap_or_default()
}

/// A modem's state as the `modems` table shows it: an absent modem adds its re-probe,
/// `absent (2 probes failed, next in 8s)`.
pub fn modem_state_text(m: &pb::Modem, now: SystemTime) -> String {
    let state = modem_state(m.state);
    let next = m
        .next_probe
        .as_ref()
        .and_then(system_time)
        .map(|t| t.duration_since(now).map(|d| d.as_secs()).unwrap_or(0));
    match next {
        Some(secs) if m.state == pb::ModemState::Absent as i32 => format!(
            "{state} ({} probe{} failed, next in {secs}s)",
            m.failed_probes,
            if m.failed_probes == 1 { "" } else { "s" }
        ),
        _ => state.to_string(),
    }
}

/// The negotiated PPP options as `cinfo` lines (key, value), both directions.
pub fn ppp_lines(p: &pb::PppOptions) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (
            "MRU",
            format!("we receive {}, peer receives {}", p.local_mru, p.peer_mru),
        ),
        (
            "ACCM",
            format!(
                "we receive with {:#010x}, we send with {:#010x}",
                p.local_accm, p.peer_accm
            ),
        ),
        (
            "auth",
            format!(
                "we authenticate with {}, peer authenticates with {}",
                auth_or_none(&p.auth_protocol),
                auth_or_none(&p.auth_of_peer)
            ),
        ),
        (
            "compression",
            format!(
                "PFC {}, ACFC {}, FCS-32 {}",
                on_off(p.pfc),
                on_off(p.acfc),
                on_off(p.fcs32)
            ),
        ),
    ];
    if !p.local_address.is_empty() {
        v.push((
            "IPCP",
            format!("local {}, peer {}", p.local_address, p.peer_address),
        ));
        v.push((
            "DNS",
            if p.dns.is_empty() {
                "none".into()
            } else {
                p.dns.join(", ")
            },
        ));
    }
    for r in &p.refused {
        v.push(("refused", refusal(r)));
    }
    v
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Signal as `-71 dBm ▂▄▆█` style text with ASCII bars (`-71 dBm [####]`), `-` unknown.
pub fn signal(c: &pb::CellularStatus) -> String {
    if !c.has_signal {
        return "-".into();
    }
    let bars = usize::try_from(c.signal_bars.min(4)).unwrap_or(0);
    format!(
        "{} dBm [{}{}]",
        c.signal_dbm,
        "#".repeat(bars),
        ".".repeat(4 - bars)
    )
}

/// One row of `mclient modems`' cellular table.
pub fn cellular_row(modem: &str, c: &pb::CellularStatus) -> Vec<String> {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let sim = match (c.sim.as_str(), c.pin_sent, c.pin_accepted) {
        (s, true, false) => format!("{} (PIN refused)", dash(s)),
        (s, _, _) => dash(s),
    };
    let mut reg = dash(&c.registration);
    if !c.error.is_empty() {
        reg = format!("{reg} (last poll: {})", c.error);
    }
    vec![
        modem.to_string(),
        signal(c),
        reg,
        dash(&c.operator),
        dash(&c.access_technology),
        sim,
        dash(&c.imei),
        [c.manufacturer.as_str(), c.model.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
    ]
}

/// Name of a role.
pub fn role(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Admin) => "admin",
        Ok(pb::Role::User) => "user",
        _ => "unknown",
    }
}

/// Name of a masquerade protocol as ipchains prints it.
pub fn protocol(p: i32) -> &'static str {
    match pb::Protocol::try_from(p) {
        Ok(pb::Protocol::Tcp) => "TCP",
        Ok(pb::Protocol::Udp) => "UDP",
        Ok(pb::Protocol::Icmp) => "ICMP",
        _ => "?",
    }
}

/// Left-aligned text table with a header row, columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    // A cell is one line of terminal-safe text, whatever the server sent.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::safe::line(c).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows[..];
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `ipchains -M -L [-v]` text from masquerade entries (addresses always numeric).
pub fn masq_listing(entries: &[pb::MasqEntry], verbose: bool) -> String {
    let mut out = String::from("IP masquerading entries\n");
    if entries.is_empty() {
        return out;
    }
    out.push_str(&format!("prot {:<8} ", "expire"));
    if verbose {
        out.push_str(&format!("{:>10} delta prevd ", "initseq"));
    }
    out.push_str(&format!("{:<20} {:<20} ports\n", "source", "destination"));
    for e in entries {
        out.push_str(&format!(
            "{:<5}{} ",
            protocol(e.protocol),
            expire_mmss(e.expire_centis)
        ));
        if verbose {
            out.push_str(&format!(
                "{:>10} {:>5} {:>5} ",
                e.init_seq, e.delta, e.prev_delta
            ));
        }
        out.push_str(&format!(
            "{:<20} {:<20} {} ({}) -> {}\n",
            e.lan_address, e.remote_address, e.lan_port, e.masq_port, e.remote_port
        ));
    }
    out
}

/// One queue in a line: backlog, sojourn, drops, marks and host shares.
pub fn queue_stats_line(q: &pb::QueueStats) -> String {
    let mut s = format!(
        "backlog {} pkts/{}, sojourn p50 {} ms p95 {} ms, drops {} limit/{} aqm, {} marked",
        q.backlog_packets,
        bytes(q.backlog_bytes),
        q.sojourn_p50_ms,
        q.sojourn_p95_ms,
        q.dropped_overflow,
        q.dropped_aqm,
        q.ecn_marked
    );
    if !q.hosts.is_empty() {
        let shares: Vec<String> = q
            .hosts
            .iter()
            .map(|h| format!("{} {:.0}%", h.host, h.share * 100.0))
            .collect();
        s.push_str(&format!("; hosts {}", shares.join(", ")));
    }
    s
}

/// The link's queues in one line (`mclient status`, `cinfo`).
pub fn queues_line(q: &pb::LinkQueues) -> String {
    let mut s = format!("{} up: ", q.scheduler);
    s.push_str(&q.egress.as_ref().map(queue_stats_line).unwrap_or_default());
    if let Some(i) = &q.ingress {
        s.push_str(&format!(
            " | down (shaped to {:.0}%): {}",
            q.ingress_shaping * 100.0,
            queue_stats_line(i)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_line_names_each_limit_and_the_refusal() {
        let mut b = pb::Budget {
            bytes_quota: 500 * 1024 * 1024,
            bytes_used: 3 * 1024 * 1024,
            bytes_period: "month".into(),
            bytes_counted: "both".into(),
            time_budget_s: 3600,
            time_used_s: 300,
            time_period: "day".into(),
            windows: vec!["Mo-Fr 18:00-08:00".into(), "Sa-Su 00:00-24:00".into()],
            window_open: false,
            utc_offset: "+01:00".into(),
            ..Default::default()
        };
        assert_eq!(
            budget_line(&b),
            format!(
                "bytes {} of {} per month (both), up 0:05:00 of 1:00:00 per day, windows \
                 Mo-Fr 18:00-08:00, Sa-Su 00:00-24:00 UTC+01:00 (closed)",
                human_bytes(3 * 1024 * 1024),
                human_bytes(500 * 1024 * 1024)
            )
        );
        b.bytes_quota = 0;
        b.time_budget_s = 0;
        b.windows.clear();
        b.refusal = "isp1 has used its daily connect time".into();
        assert_eq!(
            budget_line(&b),
            "no dial now: isp1 has used its daily connect time"
        );
    }

    #[test]
    fn ppp_lines_show_both_directions_and_refusals() {
        let p = pb::PppOptions {
            local_mru: 1500,
            peer_mru: 296,
            peer_accm: 0x000a_0000,
            auth_protocol: "CHAP-MD5".into(),
            local_address: "10.0.2.15".into(),
            peer_address: "10.64.64.64".into(),
            refused: vec![
                pb::OptionRefusal {
                    protocol: "IPCP".into(),
                    option: 3,
                    name: "IP-Address".into(),
                    by_peer: false,
                    reject: false,
                    value: "10.64.64.64".into(),
                },
                pb::OptionRefusal {
                    protocol: "LCP".into(),
                    option: 42,
                    by_peer: true,
                    reject: true,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let lines: Vec<String> = ppp_lines(&p)
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        assert_eq!(
            lines,
            [
                "MRU: we receive 1500, peer receives 296",
                "ACCM: we receive with 0x00000000, we send with 0x000a0000",
                "auth: we authenticate with CHAP-MD5, peer authenticates with none",
                "compression: PFC off, ACFC off, FCS-32 off",
                "IPCP: local 10.0.2.15, peer 10.64.64.64",
                "DNS: none",
                "refused: we Nak'd the peer's IPCP IP-Address (3): 10.64.64.64",
                "refused: peer Rejected our LCP option 42",
            ]
        );
    }

    #[test]
    fn absent_modem_shows_its_next_probe() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut m = pb::Modem {
            state: pb::ModemState::Absent as i32,
            next_probe: Some(prost_types::Timestamp {
                seconds: 1_700_000_008,
                nanos: 0,
            }),
            failed_probes: 3,
            ..Default::default()
        };
        assert_eq!(
            modem_state_text(&m, now),
            "absent (3 probes failed, next in 8s)"
        );
        m.failed_probes = 1;
        assert_eq!(
            modem_state_text(&m, now + Duration::from_secs(9)),
            "absent (1 probe failed, next in 0s)"
        );
        m.state = pb::ModemState::Idle as i32;
        assert_eq!(modem_state_text(&m, now), "idle");
    }

    #[test]
    fn expire_format() {
        assert_eq!(expire_mmss(0), "00:00.00");
        assert_eq!(expire_mmss(90_000), "15:00.00");
        assert_eq!(expire_mmss(12_345), "02:03.45");
        assert_eq!(expire_mmss(750_000), "125:00.00");
    }

    #[test]
    fn byte_and_duration_format() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(duration(Duration::from_secs(3723)), "1h02m03s");
        assert_eq!(duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(duration(Duration::from_secs(6)), "6s");
    }

    #[test]
    fn mtui_units() {
        assert_eq!(human_bytes(999), "999");
        assert_eq!(human_bytes(2_300), "2.3K");
        assert_eq!(human_bytes(1_843_200), "1.8M");
        assert_eq!(human_bytes(88_120_330), "88M");
        assert_eq!(human_duration(19), "0:00:19");
        assert_eq!(human_duration(3_723), "1:02:03");
        assert_eq!(human_duration(90_061), "1d 01:01");
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        let t = |s: i64| {
            rfc3339(&prost_types::Timestamp {
                seconds: s,
                nanos: 0,
            })
        };
        // Values checked with `date -u -d @N +%FT%TZ`.
        assert_eq!(t(1).as_deref(), Some("1970-01-01T00:00:01Z"));
        assert_eq!(t(951_782_400).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(t(1_796_029_102).as_deref(), Some("2026-11-30T08:58:22Z"));
        assert_eq!(t(4_107_542_399).as_deref(), Some("2100-02-28T23:59:59Z"));
        assert_eq!(t(0), None);
    }

    #[test]
    fn table_aligns() {
        let t = table(
            &["name", "state"],
            &[
                vec!["isp1".into(), "up".into()],
                vec!["longer".into(), "idle".into()],
            ],
        );
        assert_eq!(t, "name    state\nisp1    up\nlonger  idle\n");
    }

    #[test]
    fn masq_listing_matches_ipchains_layout() {
        let e = pb::MasqEntry {
            protocol: pb::Protocol::Tcp as i32,
            lan_address: "192.168.1.2".into(),
            lan_port: 1025,
            masq_port: 61000,
            remote_address: "10.0.0.1".into(),
            remote_port: 80,
            expire_centis: 90_000,
            ..Default::default()
        };
        let t = masq_listing(&[e], false);
        assert_eq!(
            t,
            "IP masquerading entries\nprot expire   source               destination          ports\nTCP  15:00.00 192.168.1.2          10.0.0.1             1025 (61000) -> 80\n"
        );
        assert_eq!(masq_listing(&[], true), "IP masquerading entries\n");
    }
}
