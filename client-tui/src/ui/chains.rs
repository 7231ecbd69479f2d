//! The chains panel: ipchains `-L -v` style rule lines, fitted to the panel width.
//!
//! Owns `chain_lines`, `chains_fit`, `ipchains_count` and the rule cell texts. Must not draw
//! other panels, change app state or do I/O.

use masqdial_proto::v1::{Chain, Rule};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style::{block, no_data, placeholder, st, wrap_words};
use crate::app::{App, Panel};
use crate::layout::content_rows;

/// ipchains counter format without -x: `%5llu`, or K/M/G when the value does not fit.
pub fn ipchains_count(n: u64) -> String {
    if n <= 99_999 {
        return format!("{n:>5}");
    }
    let mut v = n;
    for unit in ['K', 'M', 'G', 'T'] {
        v = (v + 500) / 1000;
        if v <= 9_999 {
            return format!("{v:>4}{unit}");
        }
    }
    format!("{v:>4}P")
}

fn addr(a: &str) -> String {
    match a.trim_start_matches('!') {
        "" | "0.0.0.0/0" => {
            if a.starts_with('!') {
                "!anywhere".into()
            } else {
                "anywhere".into()
            }
        }
        _ => a.to_string(),
    }
}

/// `-L` port text of one side: `any` for the full range, `!` kept for an inverted range.
fn port_side(p: &str) -> &str {
    if p.is_empty() {
        "any"
    } else {
        p
    }
}

/// The cells of one rule, in [`CHAIN_COLUMNS`] order, as `ipchains -L -v` prints them
/// (tos/mark/outsize left out: they do not change which packets a rule matches).
fn rule_cells(r: &Rule) -> [String; 9] {
    let proto = if r.protocol.is_empty() {
        "all"
    } else {
        &r.protocol
    };
    let mut ports = if matches!(proto.trim_start_matches('!'), "tcp" | "udp" | "icmp") {
        format!(
            "{} -> {}",
            port_side(&r.source_ports),
            port_side(&r.destination_ports)
        )
    } else {
        "n/a".to_string()
    };
    if r.target == "REDIRECT" {
        if r.redirect_port == 0 {
            ports.push_str(" => any");
        } else {
            ports.push_str(&format!(" => {}", r.redirect_port));
        }
    }
    let opt = if r.options.is_empty() {
        let mut o = String::from("------");
        if r.log {
            o.replace_range(4..5, "l");
        }
        o
    } else {
        r.options.clone()
    };
    [
        ipchains_count(r.packets),
        ipchains_count(r.bytes),
        if r.target.is_empty() {
            "-".to_string()
        } else {
            r.target.clone()
        },
        proto.to_string(),
        opt,
        if r.interface.is_empty() {
            "any".to_string()
        } else {
            r.interface.clone()
        },
        addr(&r.source),
        addr(&r.destination),
        ports,
    ]
}

/// Column titles of the chains panel; the first two (counters) are the only ones that may be
/// left out, because every other one changes what a rule matches or does.
const CHAIN_COLUMNS: [&str; 9] = [
    "pkts",
    "bytes",
    "target",
    "prot",
    "opt",
    "ifname",
    "source",
    "destination",
    "ports",
];

fn join_cells(cells: &[String], widths: &[usize], cols: &[usize]) -> String {
    let mut s = String::new();
    let last = cells.len() - 1;
    for &i in cols {
        let c = &cells[i];
        if i == last {
            s.push_str(c);
        } else if i < 2 {
            s.push_str(&format!("{c:>w$} ", w = widths[i]));
        } else {
            s.push_str(&format!("{c:<w$} ", w = widths[i]));
        }
    }
    s.trim_end().to_string()
}

fn is_chain_header(l: &str) -> bool {
    l.starts_with(" pkts ") || l.starts_with("target ")
}

/// Column widths (from the content) and the fullest column set that fits `width`, if any.
fn chain_columns(rows: &[[String; 9]], width: usize) -> (Vec<usize>, Option<&'static [usize]>) {
    let mut widths: Vec<usize> = CHAIN_COLUMNS.iter().map(|h| h.len()).collect();
    widths[0] = 5;
    widths[1] = 5;
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Column sets from the fullest: without bytes, then without both counters.
    const SETS: [&[usize]; 3] = [
        &[0, 1, 2, 3, 4, 5, 6, 7, 8],
        &[0, 2, 3, 4, 5, 6, 7, 8],
        &[2, 3, 4, 5, 6, 7, 8],
    ];
    let total =
        |cols: &[usize]| -> usize { cols.iter().map(|&i| widths[i] + 1).sum::<usize>() - 1 };
    let cols = SETS.into_iter().find(|c| total(c) <= width);
    (widths, cols)
}

/// True when the chains fit `width` as a table (else they are listed as specs).
pub fn chains_fit(chains: &[Chain], width: usize) -> bool {
    let rows: Vec<[String; 9]> = chains
        .iter()
        .flat_map(|c| c.rules.iter().map(rule_cells))
        .collect();
    chain_columns(&rows, width).1.is_some()
}

/// The chains as `ipchains -L -v` would list them, fitted to `width` columns.
///
/// Every column that changes a rule's meaning (target, protocol, the opt flags such as `-y`
/// and `-l`, interface, source, destination, ports, and each `!`) is always shown. Column
/// widths follow the content; when the table is too wide the byte counter, then the packet
/// counter are left out; when even that does not fit, each rule is shown as its ipchains spec
/// (`-s 192.168.0.0/16 -i ppp0 -j DENY -l`), wrapped.
pub fn chain_lines(chains: &[Chain], width: usize) -> Vec<String> {
    let rows: Vec<[String; 9]> = chains
        .iter()
        .flat_map(|c| c.rules.iter().map(rule_cells))
        .collect();
    let (widths, cols) = chain_columns(&rows, width);
    let header: Vec<String> = CHAIN_COLUMNS.iter().map(|h| h.to_string()).collect();
    let mut out = Vec::new();
    let mut rows = rows.into_iter();
    for c in chains {
        if c.builtin {
            out.push(format!(
                "Chain {} (policy {}: {} packets, {} bytes):",
                c.name, c.policy, c.policy_packets, c.policy_bytes
            ));
        } else {
            out.push(format!("Chain {} ({} references):", c.name, c.references));
        }
        match cols {
            Some(cols) => {
                out.push(join_cells(&header, &widths, cols));
                for r in rows.by_ref().take(c.rules.len()) {
                    out.push(join_cells(&r, &widths, cols));
                }
            }
            None => {
                // Too narrow for columns: packets, then the rule as ipchains takes it.
                out.push(" pkts rule".to_string());
                for (rule, cells) in c.rules.iter().zip(rows.by_ref()) {
                    let text = if rule.spec.is_empty() {
                        cells[2..].join(" ")
                    } else {
                        rule.spec.clone()
                    };
                    // Counter in its 5 columns, the spec wrapped beside it.
                    let wrapped = wrap_words(&text, width.saturating_sub(6).max(10), 0);
                    for (i, l) in wrapped.into_iter().enumerate() {
                        if i == 0 {
                            out.push(format!("{} {l}", cells[0]));
                        } else {
                            out.push(format!("      {l}"));
                        }
                    }
                }
            }
        }
    }
    out
}

pub(super) fn render_chains(frame: &mut Frame, app: &App, area: Rect) {
    let rules: usize = app.chains.iter().map(|c| c.rules.len()).sum();
    if let Some(t) = no_data(app) {
        let b = block(app, "Chains".to_string(), Panel::Chains);
        return placeholder(frame, app, b, area, t);
    }
    let b = block(app, format!("Chains ({} rules)", rules), Panel::Chains);
    let inner = usize::from(area.width.saturating_sub(2));
    let all = chain_lines(&app.chains, inner);
    let h = content_rows(Panel::Chains, area);
    let scroll = app.chains_scroll.min(all.len().saturating_sub(h));
    let lines: Vec<Line> = all
        .into_iter()
        .skip(scroll)
        .take(usize::from(area.height))
        .map(|l| {
            if l.starts_with("Chain ") {
                Line::from(Span::styled(
                    l,
                    st(app, Style::new().add_modifier(Modifier::BOLD)),
                ))
            } else if is_chain_header(&l) {
                Line::from(Span::styled(l, st(app, Style::new().fg(Color::Cyan))))
            } else {
                Line::from(l)
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(b), area);
}
