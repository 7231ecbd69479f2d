//! The details view of one connection: what `mclient cinfo` tells, plus the live link, its
//! queues, holders, LAN hosts, cellular status and budget.
//!
//! Owns `detail_lines` (the text, also counted by `GEOMETRY`) and `cellular_line`. Must not
//! draw the panels beneath, change app state, do I/O or read a clock.

use std::collections::BTreeMap;
use std::time::Duration;

use masqdial_cli::format;
use masqdial_proto::v1::LinkState;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::links::{speed, uptime};
use super::style::st;
use crate::app::App;
use masqdial_cli::words::link_state_short;

/// `HH:MM:SS` (UTC) of a timestamp, `-` when unset.
fn clock(ts: Option<&prost_types::Timestamp>) -> String {
    match ts {
        Some(t) if t.seconds > 0 => {
            let s = t.seconds % 86_400;
            format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
        }
        _ => "-".to_string(),
    }
}

/// A duration in mclient's format; `zero` when unset or 0 (e.g. "never").
fn secs_text(d: Option<&prost_types::Duration>, zero: &str) -> String {
    match d.map(|d| d.seconds).filter(|s| *s > 0) {
        Some(s) => format::duration(Duration::from_secs(s as u64)),
        None => zero.to_string(),
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// One details line for a cellular modem: signal, registration, operator, SIM.
pub fn cellular_line(c: &masqdial_proto::v1::CellularStatus) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "?".to_string()
        } else {
            s.to_string()
        }
    };
    let signal = if c.has_signal {
        let bars = usize::try_from(c.signal_bars.min(4)).unwrap_or(0);
        format!(
            "{} dBm [{}{}]",
            c.signal_dbm,
            "#".repeat(bars),
            ".".repeat(4 - bars)
        )
    } else {
        "unknown".to_string()
    };
    let mut line = format!(
        "  cellular   {signal}, {} on {} ({}), SIM {}",
        dash(&c.registration),
        dash(&c.operator),
        dash(&c.access_technology),
        dash(&c.sim)
    );
    if c.pin_sent && !c.pin_accepted {
        line.push_str(" (PIN refused)");
    }
    if !c.error.is_empty() {
        line.push_str(&format!("; last poll: {}", c.error));
    }
    line
}

/// The details view of connection `name` as text lines (what `mclient cinfo` tells, plus
/// the live link, its holders and the LAN hosts using it), one terminal-safe line each
/// (transcripts and failure messages carry modem and peer text).
pub fn detail_lines(app: &App, name: &str) -> Vec<String> {
    raw_detail_lines(app, name)
        .into_iter()
        .map(|l| match masqdial_cli::safe::line(&l) {
            std::borrow::Cow::Borrowed(_) => l,
            std::borrow::Cow::Owned(o) => o,
        })
        .collect()
}

fn raw_detail_lines(app: &App, name: &str) -> Vec<String> {
    let info = app
        .details
        .as_ref()
        .filter(|i| i.connection.as_ref().is_some_and(|c| c.name == name));
    let live = app.links.get(name);
    let link = live
        .map(|l| &l.status)
        .or_else(|| info.and_then(|i| i.link.as_ref()));
    let mut out = Vec::new();
    let state = link.map_or("?", |l| link_state_short(l.state));
    out.push(format!("{name}: {state}"));
    if info.is_none() {
        out.push("asking the server for the details…".to_string());
    }
    if let Some(l) = link {
        if let Some(lv) = live.filter(|_| l.state == LinkState::Up as i32) {
            out.push(format!(
                "  up for     {} (since {} UTC)",
                uptime(app, lv),
                clock(l.connected_since.as_ref())
            ));
        }
        if !l.modem.is_empty() {
            out.push(format!(
                "  modem      {} at {} bps",
                l.modem,
                speed(l.speed_bps)
            ));
            if let Some(c) = app
                .modems
                .iter()
                .find(|m| m.name == l.modem)
                .and_then(|m| m.cellular.as_ref())
            {
                out.push(cellular_line(c));
            }
        }
        if !l.local_address.is_empty() {
            let mut a = format!("  addresses  {} -> {}", l.local_address, l.peer_address);
            if !l.dns.is_empty() {
                a.push_str(&format!(", DNS {}", l.dns.join(" ")));
            }
            out.push(a);
        }
        out.push(format!(
            "  traffic    in {} ({} packets), out {} ({} packets); idle {}",
            format::bytes(l.bytes_in),
            l.packets_in,
            format::bytes(l.bytes_out),
            l.packets_out,
            format::duration(Duration::from_secs(u64::from(l.idle_seconds)))
        ));
        if let Some(b) = &l.budget {
            out.push(format!("  budget     {}", format::budget_line(b)));
        }
        if let Some(f) = &l.last_failure {
            out.push(format!(
                "  last failure  {}: {}",
                masqdial_cli::words::failure_name(f.kind),
                f.message
            ));
        }
        if let Some(q) = &l.queues {
            out.push(String::new());
            out.push(format!("Link queue ({} scheduler)", q.scheduler));
            let mut queue = |dir: &str, st: &masqdial_proto::v1::QueueStats| {
                out.push(format!(
                    "  {dir:<10} backlog {} pkts/{}, sojourn p50 {} ms p95 {} ms",
                    st.backlog_packets,
                    format::bytes(st.backlog_bytes),
                    st.sojourn_p50_ms,
                    st.sojourn_p95_ms
                ));
                out.push(format!(
                    "  {:<10} drops {} over limit, {} by AQM; {} ECN-marked; sent {}",
                    "",
                    st.dropped_overflow,
                    st.dropped_aqm,
                    st.ecn_marked,
                    format::bytes(st.sent_bytes)
                ));
                for h in &st.hosts {
                    out.push(format!(
                        "  {:<10} {:<16} {:>4.0}% of the line",
                        "",
                        h.host,
                        h.share * 100.0
                    ));
                }
            };
            if let Some(e) = &q.egress {
                queue("up", e);
            }
            if let Some(i) = &q.ingress {
                let dir = format!("down {:.0}%", q.ingress_shaping * 100.0);
                queue(&dir, i);
            }
        }
        out.push(String::new());
        out.push(format!("Holders ({})", l.holders.len()));
        if l.holders.is_empty() {
            out.push("  nobody holds this link".to_string());
        }
        for h in &l.holders {
            let who = format!("{}@{}", h.user, h.host);
            if h.since.is_some() {
                out.push(format!(
                    "  {who:<28} since {} UTC ({})",
                    clock(h.since.as_ref()),
                    format::since(h.since.as_ref(), app.wall)
                ));
            } else {
                out.push(format!("  {who}"));
            }
        }
        // Per LAN host: the live masqueraded sessions going out through this link's address.
        if !l.local_address.is_empty() {
            let mut hosts: BTreeMap<std::net::Ipv4Addr, (String, usize, u64)> = BTreeMap::new();
            for r in app.table.rows() {
                let e = &r.entry;
                if e.masq_address != l.local_address {
                    continue;
                }
                let key = e
                    .lan_address
                    .parse()
                    .unwrap_or(std::net::Ipv4Addr::BROADCAST);
                let h = hosts
                    .entry(key)
                    .or_insert_with(|| (e.lan_address.clone(), 0, 0));
                h.1 += 1;
                h.2 =
                    h.2.saturating_add(e.bytes.max(e.bytes_in.saturating_add(e.bytes_out)));
            }
            out.push(String::new());
            out.push(format!(
                "LAN hosts using it ({}, live sessions)",
                hosts.len()
            ));
            for (addr, n, bytes) in hosts.values() {
                out.push(format!(
                    "  {addr:<16} {n:>4} session{} {:>11}",
                    if *n == 1 { " " } else { "s" },
                    format::bytes(*bytes)
                ));
            }
        }
    }
    let Some(i) = info else { return out };
    if let Some(p) = &i.ppp {
        out.push(String::new());
        out.push("Negotiated PPP options".to_string());
        out.push(format!(
            "  MRU        local {}, peer {}",
            p.local_mru, p.peer_mru
        ));
        out.push(format!(
            "  ACCM       local 0x{:08x}, peer 0x{:08x}",
            p.local_accm, p.peer_accm
        ));
        out.push(format!(
            "  magic      local 0x{:08x}, peer 0x{:08x}",
            p.local_magic, p.peer_magic
        ));
        out.push(format!(
            "  auth {} · PFC {} · ACFC {} · FCS-32 {}",
            if p.auth_protocol.is_empty() {
                "none"
            } else {
                &p.auth_protocol
            },
            yes(p.pfc),
            yes(p.acfc),
            yes(p.fcs32)
        ));
        out.push(format!(
            "  auth of peer {} (what we demanded)",
            if p.auth_of_peer.is_empty() {
                "none"
            } else {
                &p.auth_of_peer
            }
        ));
        if !p.local_address.is_empty() {
            out.push(format!(
                "  IPCP       local {}, peer {}",
                p.local_address, p.peer_address
            ));
            out.push(format!(
                "  DNS        {}",
                if p.dns.is_empty() {
                    "none".to_string()
                } else {
                    p.dns.join(", ")
                }
            ));
        }
        out.push(format!(
            "  frames     in {}, out {}; FCS errors {}; discarded {}",
            p.frames_in, p.frames_out, p.fcs_errors, p.discarded
        ));
        if !p.refused.is_empty() {
            out.push(format!("  refused options ({})", p.refused.len()));
            for r in &p.refused {
                let verdict = if r.reject { "Rejected" } else { "Nak'd" };
                let whose = if r.by_peer {
                    format!("peer {verdict} our")
                } else {
                    format!("we {verdict} the peer's")
                };
                let name = if r.name.is_empty() {
                    format!("option {}", r.option)
                } else {
                    format!("{} ({})", r.name, r.option)
                };
                let value = if r.value.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.value)
                };
                out.push(format!("    {whose} {} {name}{value}", r.protocol));
            }
        }
    }
    out.push(String::new());
    out.push("Profile".to_string());
    if let Some(c) = &i.connection {
        if !c.description.is_empty() {
            out.push(format!("  {}", c.description));
        }
        out.push(format!("  numbers    {}", c.numbers.join(", ")));
        out.push(format!("  modems     {}", c.modems.join(", ")));
        out.push(format!("  you may dial it: {}", yes(c.allowed)));
    }
    out.push(format!(
        "  dial       prefix {}, auth {}, {} attempts {} apart",
        i.dial_prefix,
        i.auth,
        i.redial_attempts,
        secs_text(i.redial_delay.as_ref(), "0s")
    ));
    out.push(format!(
        "  hang up    when idle {}, after {} connected; redial on loss: {}",
        secs_text(i.idle_timeout.as_ref(), "never"),
        secs_text(i.max_connect_time.as_ref(), "never"),
        yes(i.redial_on_loss)
    ));
    if !i.routes.is_empty() {
        out.push(format!("  routes     {}", i.routes.join(", ")));
    }
    if !i.apn.is_empty() {
        out.push(format!("  APN        {}", i.apn));
    }
    if !i.allowed_users.is_empty() {
        out.push(format!("  allowed    {}", i.allowed_users.join(", ")));
    }
    out.push(String::new());
    out.push(format!(
        "Log of the last dial ({} lines, UTC)",
        i.transcript.len()
    ));
    for t in &i.transcript {
        out.push(format!(
            "  {} {:<5} {}",
            masqdial_cli::words::clock_ms(t.at.as_ref()),
            t.kind,
            t.text
        ));
    }
    out
}

pub(super) fn render_details(frame: &mut Frame, app: &App, body: Rect, name: &str, scroll: usize) {
    let r = body;
    frame.render_widget(Clear, r);
    let lines = detail_lines(app, name);
    let h = usize::from(r.height.saturating_sub(2));
    let scroll = scroll.min(lines.len().saturating_sub(h));
    let title = format!("{name} · details · Esc closes");
    let b = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(st(app, Style::new().fg(Color::Cyan)));
    let text: Vec<Line> = lines
        .into_iter()
        .skip(scroll)
        .take(h)
        .map(|l| {
            if !l.starts_with(' ') && !l.is_empty() {
                Line::from(Span::styled(
                    l,
                    st(app, Style::new().add_modifier(Modifier::BOLD)),
                ))
            } else {
                Line::from(l)
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(text).block(b), r);
}
