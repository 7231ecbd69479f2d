//! Pure rendering of an [`App`] into a ratatui frame, one function per panel.
//!
//! Reads the app and draws; it must not change state, do I/O or read a clock (countdowns use
//! `app.now`). Only the visible window of the masquerade table is turned into rows, so the cost
//! of a frame does not grow with the table.

use std::time::UNIX_EPOCH;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};
use ratatui::Frame;

use masqdial_proto::v1::{Chain, FreePortsResponse, LinkState, Rule};

use crate::app::{role_name, state_name, App, ConnState, Level, LinkView, Mode, Panel, LIGHT_HOLD};
use crate::table::{expire_mmss, proto_name, SortKey};

/// Terminals at least this wide get the side-by-side layout.
pub const WIDE: u16 = 140;

/// A style, or plain when colour is off (modifiers such as bold/reverse are kept).
fn st(app: &App, s: Style) -> Style {
    if app.color {
        s
    } else {
        Style {
            fg: None,
            bg: None,
            underline_color: None,
            ..s
        }
    }
}

fn block<'a>(app: &App, title: String, panel: Panel) -> Block<'a> {
    let focused = app.focus == panel;
    let style = if focused {
        st(
            app,
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        )
    } else {
        st(app, Style::new().fg(Color::DarkGray))
    };
    // Without colour the focused panel is marked by its title.
    let title = if focused && !app.color {
        format!("[{title}]")
    } else {
        title
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(title, style))
}

/// Draw the whole dashboard.
pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [title, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    render_title(frame, app, title);
    render_footer(frame, app, footer);

    if app.zoom {
        render_panel(frame, app, app.focus, body);
    } else if area.width >= WIDE {
        render_wide(frame, app, body);
    } else {
        render_narrow(frame, app, body);
    }

    match &app.mode {
        Mode::Help => render_help(frame, app, area),
        Mode::DialPicker { sel } => render_picker(
            frame,
            app,
            area,
            "Dial which connection?",
            &app.dialable(),
            *sel,
        ),
        Mode::HangupPicker { sel, force } => {
            let t = if *force {
                "Force hang-up of which link?"
            } else {
                "Hang up which link?"
            };
            render_picker(frame, app, area, t, &app.hangupable(), *sel)
        }
        _ => {}
    }
}

fn links_height(app: &App, max: u16) -> u16 {
    let n = u16::try_from(app.links.len().max(1)).unwrap_or(u16::MAX);
    n.saturating_add(3).min(max)
}

fn render_wide(frame: &mut Frame, app: &App, body: Rect) {
    let log_h = (body.height / 4).clamp(6, 14);
    let [top, mid, log] = Layout::vertical([
        Constraint::Length(links_height(app, 12).max(6)),
        Constraint::Min(5),
        Constraint::Length(log_h),
    ])
    .areas(body);
    let [links, ports] =
        Layout::horizontal([Constraint::Min(60), Constraint::Length(40)]).areas(top);
    // The masquerade table takes what its widest column set needs, the chains the rest.
    let chains_w = body.width.saturating_sub(96).clamp(40, 104);
    let [masq, chains] =
        Layout::horizontal([Constraint::Min(60), Constraint::Length(chains_w)]).areas(mid);
    render_links(frame, app, links);
    render_ports_block(frame, app, ports);
    render_masq(frame, app, masq);
    render_chains(frame, app, chains);
    render_log(frame, app, log);
}

fn render_narrow(frame: &mut Frame, app: &App, body: Rect) {
    let log_h = (body.height / 4).clamp(5, 12);
    let [links, ports, mid, log] = Layout::vertical([
        Constraint::Length(links_height(app, 6)),
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(log_h),
    ])
    .areas(body);
    render_links(frame, app, links);
    render_ports_line(frame, app, ports);
    // The middle slot shows the chains when they have the focus, the table otherwise.
    if app.focus == Panel::Chains {
        render_chains(frame, app, mid);
    } else {
        render_masq(frame, app, mid);
    }
    render_log(frame, app, log);
}

fn render_panel(frame: &mut Frame, app: &App, panel: Panel, area: Rect) {
    match panel {
        Panel::Links => render_links(frame, app, area),
        Panel::Masq => render_masq(frame, app, area),
        Panel::Chains => render_chains(frame, app, area),
        Panel::Log => render_log(frame, app, area),
    }
}

fn render_title(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![
        Span::styled("mtui ", st(app, Style::new().add_modifier(Modifier::BOLD))),
        Span::raw(app.server.clone()),
        Span::raw("  "),
    ];
    match &app.conn {
        ConnState::Connected => {
            spans.push(Span::raw(format!(
                "{} ({})  ",
                app.user,
                role_name(app.role)
            )));
            spans.push(Span::styled(
                "connected",
                st(app, Style::new().fg(Color::Green)),
            ));
        }
        ConnState::Connecting { attempt } => {
            spans.push(Span::styled(
                format!("connecting (attempt {attempt})"),
                st(app, Style::new().fg(Color::Yellow)),
            ));
        }
        ConnState::Disconnected { reason, retry_at } => {
            let secs = retry_at.saturating_duration_since(app.now).as_secs();
            spans.push(Span::styled(
                format!("DISCONNECTED: {reason} (retry in {secs}s)"),
                st(
                    app,
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
            ));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Text shown in data panels while there is no live data.
fn no_data(app: &App) -> Option<&'static str> {
    match app.conn {
        ConnState::Connected => None,
        ConnState::Connecting { .. } => Some("connecting…"),
        ConnState::Disconnected { .. } => Some("disconnected — no data"),
    }
}

fn placeholder(frame: &mut Frame, app: &App, b: Block, area: Rect, text: &str) {
    let p = Paragraph::new(Span::styled(
        text.to_string(),
        st(app, Style::new().fg(Color::Yellow)),
    ))
    .block(b);
    frame.render_widget(p, area);
}

/// Human byte count: 999, 1.2K, 34.5M, 1.1G.
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

/// `H:MM:SS`, or `Nd HH:MM` past a day.
pub fn human_duration(secs: u64) -> String {
    if secs >= 86_400 {
        format!(
            "{}d {:02}:{:02}",
            secs / 86_400,
            (secs / 3600) % 24,
            (secs / 60) % 60
        )
    } else {
        format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)
    }
}

/// Sparkline of the last `width` samples (bytes both ways), scaled to the window's peak.
pub fn sparkline(
    history: impl DoubleEndedIterator<Item = u64> + ExactSizeIterator,
    width: usize,
) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let n = history.len();
    let vals: Vec<u64> = history.skip(n.saturating_sub(width)).collect();
    let max = vals.iter().copied().max().unwrap_or(0);
    let mut s: String = std::iter::repeat_n(' ', width.saturating_sub(vals.len())).collect();
    for v in vals {
        let i = if max == 0 || v == 0 {
            0
        } else {
            // Any traffic shows at least the lowest bar.
            (((v as u128 * 8).div_ceil(max as u128)) as usize).clamp(1, 8)
        };
        s.push(BARS[i]);
    }
    s
}

fn uptime(app: &App, l: &LinkView) -> String {
    let Some(since) = l.status.connected_since.as_ref() else {
        return "-".into();
    };
    if l.status.state != LinkState::Up as i32 {
        return "-".into();
    }
    let now = app
        .wall
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    human_duration(now.saturating_sub(since.seconds).max(0) as u64)
}

fn lights(app: &App, l: &LinkView, compact: bool) -> Vec<Span<'static>> {
    let lit = |at: Option<std::time::Instant>| {
        at.is_some_and(|t| app.now.saturating_duration_since(t) <= LIGHT_HOLD)
            && l.status.state == LinkState::Up as i32
    };
    let light = |on: bool, c: Color| {
        if on {
            Span::styled(
                "●",
                st(app, Style::new().fg(c).add_modifier(Modifier::BOLD)),
            )
        } else {
            Span::styled("○", st(app, Style::new().fg(Color::DarkGray)))
        }
    };
    let (rx, tx) = (lit(l.rx_at), lit(l.tx_at));
    if compact {
        vec![light(rx, Color::Green), light(tx, Color::Yellow)]
    } else {
        vec![
            Span::raw("RX"),
            light(rx, Color::Green),
            Span::raw(" TX"),
            light(tx, Color::Yellow),
        ]
    }
}

fn state_style(app: &App, state: i32) -> Style {
    let c = match LinkState::try_from(state) {
        Ok(LinkState::Up) => Color::Green,
        Ok(LinkState::Failed) => Color::Red,
        Ok(LinkState::Idle) | Ok(LinkState::Unspecified) | Err(_) => Color::Gray,
        _ => Color::Yellow,
    };
    st(app, Style::new().fg(c).add_modifier(Modifier::BOLD))
}

fn speed(bps: u32) -> String {
    match bps {
        0 => "-".into(),
        b if b < 100_000 => b.to_string(),
        b => format!("{}k", b / 1000),
    }
}

fn render_links(frame: &mut Frame, app: &App, area: Rect) {
    if let Some(t) = no_data(app) {
        let b = block(app, "Links".to_string(), Panel::Links);
        return placeholder(frame, app, b, area, t);
    }
    let b = block(app, format!("Links ({})", app.links.len()), Panel::Links);
    if app.links.is_empty() {
        return placeholder(frame, app, b, area, "no link configured");
    }
    let wide = area.width >= 124;
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec![
                "Name", "State", "Modem", "Speed", "Local", "Peer", "Uptime", "Holders", "Rx",
                "Tx", "Lights", "Traffic",
            ],
            vec![
                Constraint::Length(8),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(6),
                Constraint::Length(15),
                Constraint::Length(15),
                Constraint::Length(8),
                Constraint::Length(18),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Min(6),
            ],
        )
    } else {
        (
            vec![
                "Name", "State", "Speed", "Local", "Uptime", "Rx", "Tx", "RT", "Traffic",
            ],
            vec![
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Length(6),
                Constraint::Length(15),
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(2),
                Constraint::Min(4),
            ],
        )
    };
    // Traffic column width: what is left after the fixed columns and the spacing.
    let fixed: u16 = widths
        .iter()
        .map(|c| match c {
            Constraint::Length(n) => *n + 1,
            _ => 0,
        })
        .sum();
    let spark_w = usize::from(area.width.saturating_sub(2).saturating_sub(fixed)).max(4);
    let rows: Vec<Row> = app
        .links
        .values()
        .enumerate()
        .map(|(i, l)| {
            let s = &l.status;
            let spark = sparkline(l.history.iter().map(|(a, b)| a + b), spark_w);
            let state = Cell::from(Span::styled(state_name(s.state), state_style(app, s.state)));
            let mut cells = vec![Cell::from(s.connection.clone()), state];
            if wide {
                cells.push(Cell::from(s.modem.clone()));
            }
            cells.push(Cell::from(speed(s.speed_bps)));
            cells.push(Cell::from(s.local_address.clone()));
            if wide {
                cells.push(Cell::from(s.peer_address.clone()));
            }
            cells.push(Cell::from(uptime(app, l)));
            if wide {
                let holders: Vec<String> = s
                    .holders
                    .iter()
                    .map(|h| format!("{}@{}", h.user, h.host))
                    .collect();
                cells.push(Cell::from(holders.join(",")));
            }
            cells.push(Cell::from(human_bytes(s.bytes_in)));
            cells.push(Cell::from(human_bytes(s.bytes_out)));
            cells.push(Cell::from(Line::from(lights(app, l, !wide))));
            cells.push(Cell::from(Span::styled(
                spark,
                st(app, Style::new().fg(Color::Green)),
            )));
            let row = Row::new(cells);
            if i == app.link_sel && app.focus == Panel::Links {
                row.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        })
        .collect();
    let t = Table::new(rows, widths)
        .header(Row::new(header).style(st(
            app,
            Style::new().add_modifier(Modifier::BOLD).fg(Color::Cyan),
        )))
        .block(b);
    frame.render_widget(t, area);
}

/// One free-port gauge as text: `TCP ▕████░░░░▏ 4090/4096`; the bar fills as ports are used.
fn gauge_text(name: &str, free: u32, total: u32, bar: usize) -> (String, f64) {
    let used = total.saturating_sub(free);
    let ratio = if total == 0 {
        0.0
    } else {
        f64::from(used) / f64::from(total)
    };
    let filled = ((ratio * bar as f64).round() as usize).min(bar);
    let mut s = format!("{name:<4}▕");
    s.extend(std::iter::repeat_n('█', filled));
    s.extend(std::iter::repeat_n('░', bar - filled));
    s.push_str(&format!("▏{free}/{total}"));
    (s, ratio)
}

fn gauge_style(app: &App, ratio: f64) -> Style {
    let c = if ratio > 0.9 {
        Color::Red
    } else if ratio > 0.6 {
        Color::Yellow
    } else {
        Color::Green
    };
    st(app, Style::new().fg(c))
}

fn pools(f: &FreePortsResponse) -> [(&'static str, u32, u32); 3] {
    [
        ("TCP", f.tcp, f.tcp_total),
        ("UDP", f.udp, f.udp_total),
        ("ICMP", f.icmp, f.icmp_total),
    ]
}

fn render_ports_block(frame: &mut Frame, app: &App, area: Rect) {
    let b = Block::default()
        .borders(Borders::ALL)
        .border_style(st(app, Style::new().fg(Color::DarkGray)))
        .title("Free masq ports");
    if let Some(t) = no_data(app) {
        return placeholder(frame, app, b, area, t);
    }
    let Some(f) = &app.free else {
        return placeholder(frame, app, b, area, "…");
    };
    let bar = usize::from(area.width.saturating_sub(2 + 5 + 2 + 12)).max(4);
    let mut lines: Vec<Line> = pools(f)
        .iter()
        .map(|(n, free, total)| {
            let (s, r) = gauge_text(n, *free, *total, bar);
            Line::from(Span::styled(s, gauge_style(app, r)))
        })
        .collect();
    lines.push(Line::from(format!("range {}-{}", f.port_low, f.port_high)));
    frame.render_widget(Paragraph::new(lines).block(b), area);
}

fn render_ports_line(frame: &mut Frame, app: &App, area: Rect) {
    if no_data(app).is_some() {
        return;
    }
    let Some(f) = &app.free else { return };
    let third = usize::from(area.width / 3);
    let mut spans = Vec::new();
    for (n, free, total) in pools(f) {
        let label_len = format!("{free}/{total}").len() + 7;
        let bar = third.saturating_sub(label_len).clamp(2, 30);
        let (s, r) = gauge_text(n, free, total, bar);
        let pad = third.saturating_sub(s.chars().count());
        spans.push(Span::styled(s, gauge_style(app, r)));
        spans.push(Span::raw(" ".repeat(pad)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_masq(frame: &mut Frame, app: &App, area: Rect) {
    let (key, desc) = app.table.sort();
    let arrow = if desc { "▼" } else { "▲" };
    let mut title = format!("Masquerade {}", app.table.len());
    if !app.table.filter().is_empty() || matches!(app.mode, Mode::Filter { .. }) {
        title.push_str(&format!(
            " ({} match /{})",
            app.table.visible_len(),
            app.table.filter()
        ));
    }
    // The sort column may be one the narrow layout hides, so the title names it too.
    title.push_str(&format!(" · by {}{arrow}", key.title()));
    if app.masq_loading {
        title.push_str(" loading…");
    }
    if let Some(t) = no_data(app) {
        let b = block(app, "Masquerade".to_string(), Panel::Masq);
        return placeholder(frame, app, b, area, t);
    }
    let b = block(app, title, Panel::Masq);
    if app.table.is_empty() {
        return placeholder(frame, app, b, area, "no masqueraded sessions");
    }
    let wide = area.width >= 95;
    let mut cols: Vec<(SortKey, Constraint)> = vec![
        (SortKey::Proto, Constraint::Length(5)),
        (SortKey::Lan, Constraint::Length(21)),
        (SortKey::Masq, Constraint::Length(5)),
        (SortKey::Remote, Constraint::Length(21)),
        (SortKey::State, Constraint::Length(11)),
    ];
    if wide {
        cols.push((SortKey::Bytes, Constraint::Length(7)));
        cols.push((SortKey::Packets, Constraint::Length(6)));
    }
    cols.push((SortKey::Expire, Constraint::Length(8)));
    let header: Vec<Cell> = cols
        .iter()
        .map(|(k, _)| {
            let t = match k {
                SortKey::Lan => "LAN addr:port",
                SortKey::Remote => "Remote addr:port",
                other => other.title(),
            };
            if *k == key {
                Cell::from(format!("{t}{arrow}"))
            } else {
                Cell::from(t)
            }
        })
        .collect();
    let height = usize::from(area.height.saturating_sub(3)).max(1);
    // Page-wise scrolling: stateless, and the selection is always on screen.
    let offset = (app.masq_sel / height) * height;
    let sel_style = if app.focus == Panel::Masq {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    };
    let rows: Vec<Row> = app
        .table
        .window(offset, height)
        .enumerate()
        .map(|(i, r)| {
            let e = &r.entry;
            let remaining = r.remaining_centis(app.now);
            let mut cells = vec![
                Cell::from(proto_name(e.protocol)),
                Cell::from(format!("{}:{}", e.lan_address, e.lan_port)),
                Cell::from(e.masq_port.to_string()),
                Cell::from(if e.no_remote_port {
                    format!("{}:*", e.remote_address)
                } else {
                    format!("{}:{}", e.remote_address, e.remote_port)
                }),
                Cell::from(e.state.clone()),
            ];
            if wide {
                // Both-direction totals (fields 21/22); older servers only had in/out.
                cells.push(Cell::from(human_bytes(
                    e.bytes.max(e.bytes_in.saturating_add(e.bytes_out)),
                )));
                cells.push(Cell::from(human_bytes(
                    e.packets.max(e.packets_in.saturating_add(e.packets_out)),
                )));
            }
            let exp_style = if remaining < 1000 {
                st(app, Style::new().fg(Color::Red))
            } else {
                Style::new()
            };
            cells.push(Cell::from(Span::styled(expire_mmss(remaining), exp_style)));
            let row = Row::new(cells);
            if offset + i == app.masq_sel {
                row.style(sel_style)
            } else {
                row
            }
        })
        .collect();
    let widths: Vec<Constraint> = cols.iter().map(|(_, c)| *c).collect();
    let t = Table::new(rows, widths)
        .header(Row::new(header).style(st(
            app,
            Style::new().add_modifier(Modifier::BOLD).fg(Color::Cyan),
        )))
        .block(b);
    frame.render_widget(t, area);
}

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

fn rule_line(r: &Rule, compact: bool) -> String {
    let proto = if r.protocol.is_empty() {
        "all"
    } else {
        &r.protocol
    };
    let ports = if matches!(proto.trim_start_matches('!'), "tcp" | "udp" | "icmp") {
        let sp = if r.source_ports.is_empty() {
            "any"
        } else {
            &r.source_ports
        };
        let dp = if r.destination_ports.is_empty() {
            "any"
        } else {
            &r.destination_ports
        };
        format!("{sp} -> {dp}")
    } else {
        "n/a".to_string()
    };
    let target = if r.target.is_empty() { "-" } else { &r.target };
    let iface = if r.interface.is_empty() {
        "any"
    } else {
        &r.interface
    };
    let opt = if r.options.is_empty() {
        "------"
    } else {
        &r.options
    };
    if compact {
        return format!(
            "{} {} {:<9} {:<5} {:<16} {:<16} {}",
            ipchains_count(r.packets),
            ipchains_count(r.bytes),
            target,
            proto,
            addr(&r.source),
            addr(&r.destination),
            ports
        );
    }
    format!(
        "{} {} {:<9} {:<5} {:<6} {:<6} {:<18} {:<18} {}",
        ipchains_count(r.packets),
        ipchains_count(r.bytes),
        target,
        proto,
        opt,
        iface,
        addr(&r.source),
        addr(&r.destination),
        ports
    )
}

/// The chains as `ipchains -L -v` would list them (tos/mark/outsize columns left out;
/// `compact` also drops opt and ifname to fit 80 columns).
pub fn chain_lines(chains: &[Chain], compact: bool) -> Vec<String> {
    let mut out = Vec::new();
    for c in chains {
        if c.builtin {
            out.push(format!(
                "Chain {} (policy {}: {} packets, {} bytes):",
                c.name, c.policy, c.policy_packets, c.policy_bytes
            ));
        } else {
            out.push(format!("Chain {} ({} references):", c.name, c.references));
        }
        if compact {
            out.push(format!(
                " pkts bytes {:<9} {:<5} {:<16} {:<16} ports",
                "target", "prot", "source", "destination"
            ));
        } else {
            out.push(format!(
                " pkts bytes {:<9} {:<5} {:<6} {:<6} {:<18} {:<18} ports",
                "target", "prot", "opt", "ifname", "source", "destination"
            ));
        }
        out.extend(c.rules.iter().map(|r| rule_line(r, compact)));
    }
    out
}

fn render_chains(frame: &mut Frame, app: &App, area: Rect) {
    let rules: usize = app.chains.iter().map(|c| c.rules.len()).sum();
    if let Some(t) = no_data(app) {
        let b = block(app, "Chains".to_string(), Panel::Chains);
        return placeholder(frame, app, b, area, t);
    }
    let b = block(app, format!("Chains ({} rules)", rules), Panel::Chains);
    let lines: Vec<Line> = chain_lines(&app.chains, area.width < 102)
        .into_iter()
        .skip(app.chains_scroll)
        .take(usize::from(area.height))
        .map(|l| {
            if l.starts_with("Chain ") {
                Line::from(Span::styled(
                    l,
                    st(app, Style::new().add_modifier(Modifier::BOLD)),
                ))
            } else if l.starts_with(" pkts") {
                Line::from(Span::styled(l, st(app, Style::new().fg(Color::Cyan))))
            } else {
                Line::from(l)
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(b), area);
}

fn render_log(frame: &mut Frame, app: &App, area: Rect) {
    let b = block(app, "Events".to_string(), Panel::Log);
    let h = usize::from(area.height.saturating_sub(2));
    let end = app.log.len().saturating_sub(app.log_back);
    let start = end.saturating_sub(h);
    let lines: Vec<Line> = app
        .log
        .range(start..end)
        .map(|l| {
            let s = match l.level {
                Level::Info => Style::new(),
                Level::Warn => st(app, Style::new().fg(Color::Yellow)),
                Level::Error => st(app, Style::new().fg(Color::Red)),
            };
            Line::from(vec![
                Span::styled(
                    format!("{} ", l.time),
                    st(app, Style::new().fg(Color::DarkGray)),
                ),
                Span::styled(l.text.clone(), s),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(b), area);
}

fn footer_keys(app: &App) -> Vec<(&'static str, &'static str)> {
    match &app.mode {
        Mode::Filter { .. } => vec![("Enter", "keep"), ("Esc", "clear"), ("Bksp", "delete")],
        Mode::Help => vec![("any key", "close")],
        Mode::DialPicker { .. } | Mode::HangupPicker { .. } => {
            vec![("↑↓", "choose"), ("Enter", "confirm"), ("Esc", "cancel")]
        }
        Mode::Normal => {
            let mut k = vec![
                ("q", "quit"),
                ("?", "help"),
                ("d", "dial"),
                ("h", "hangup"),
                ("Tab", "panel"),
                ("z", "zoom"),
                ("s/S", "sort"),
                ("/", "filter"),
            ];
            if app.is_admin() {
                k.push(("H", "force"));
                k.push(("Z", "zero"));
            }
            k
        }
    }
}

fn render_footer(frame: &mut Frame, app: &App, area: Rect) {
    let key = st(app, Style::new().fg(Color::Black).bg(Color::Cyan));
    let key = if app.color {
        key
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    let mut spans = Vec::new();
    if let Mode::Filter { input } = &app.mode {
        spans.push(Span::styled(
            format!("/{input}█ "),
            st(app, Style::new().fg(Color::Yellow)),
        ));
    }
    for (k, what) in footer_keys(app) {
        spans.push(Span::styled(k, key));
        spans.push(Span::raw(format!(" {what} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn render_help(frame: &mut Frame, app: &App, area: Rect) {
    let mut lines = vec![
        "q / Ctrl-C    quit",
        "?             this help",
        "Tab/S-Tab 1-4 focus links / masq / chains / events",
        "z             zoom the focused panel",
        "↑↓ PgUp PgDn  move / scroll (g G: top, bottom)",
        "s / S         sort masq by next column / reverse",
        "/             filter masq by text (Esc clears)",
        "d             dial a connection (picker)",
        "h             hang up a link you hold",
    ];
    if app.is_admin() {
        lines.push("H             force hang-up (admin)");
        lines.push("Z             zero chain counters (admin)");
    }
    let h = u16::try_from(lines.len()).unwrap_or(20) + 2;
    let r = centered(area, 60, h);
    frame.render_widget(Clear, r);
    let b = Block::default()
        .borders(Borders::ALL)
        .title("Help")
        .border_style(st(app, Style::new().fg(Color::Cyan)));
    let text: Vec<Line> = lines.into_iter().map(Line::from).collect();
    frame.render_widget(Paragraph::new(text).block(b), r);
}

fn render_picker(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    title: &str,
    items: &[String],
    sel: usize,
) {
    let h = u16::try_from(items.len()).unwrap_or(10).clamp(1, 10) + 2;
    let w = (title.chars().count() as u16 + 4).max(30);
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    let lines: Vec<Line> = if items.is_empty() {
        vec![Line::from("(none)")]
    } else {
        items
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let marker = if i == sel { "> " } else { "  " };
                let s = if i == sel {
                    Style::new().add_modifier(Modifier::REVERSED)
                } else {
                    Style::new()
                };
                Line::from(Span::styled(format!("{marker}{n}"), s))
            })
            .collect()
    };
    let b = Block::default()
        .borders(Borders::ALL)
        .title(title.to_string())
        .border_style(st(app, Style::new().fg(Color::Cyan)));
    frame.render_widget(Paragraph::new(lines).block(b), r);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Event, ServerUpdate};
    use masqdial_proto::v1::{Holder, LinkStatus, MasqEntry, Protocol, Role, TrafficSample};
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::Terminal;
    use std::time::{Duration, Instant, SystemTime};

    pub(crate) fn buffer_text(b: &Buffer) -> Vec<String> {
        let w = usize::from(b.area.width);
        b.content
            .chunks(w)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect()
    }

    pub(crate) fn draw(app: &App, w: u16, h: u16) -> (Vec<String>, Buffer) {
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend cannot fail");
        term.draw(|f| render(f, app))
            .expect("test backend cannot fail");
        let buf = term.backend().buffer().clone();
        (buffer_text(&buf), buf)
    }

    fn wall() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    // A test fixture: one argument per column reads best in the tables below.
    #[allow(clippy::too_many_arguments)]
    fn masq(
        id: u64,
        proto: Protocol,
        lan: &str,
        lport: u32,
        remote: &str,
        rport: u32,
        state: &str,
        expire: u64,
    ) -> MasqEntry {
        MasqEntry {
            id,
            protocol: proto as i32,
            lan_address: lan.into(),
            lan_port: lport,
            masq_address: "10.64.3.17".into(),
            masq_port: 61000 + id as u32,
            remote_address: remote.into(),
            remote_port: rport,
            expire_centis: expire,
            state: state.into(),
            bytes_in: 48_213 * id,
            bytes_out: 3_101 * id,
            packets_in: 40 * id,
            packets_out: 31 * id,
            ..Default::default()
        }
    }

    fn chains() -> Vec<Chain> {
        vec![
            Chain {
                name: "input".into(),
                policy: "ACCEPT".into(),
                builtin: true,
                policy_packets: 18_230,
                policy_bytes: 2_310_442,
                ..Default::default()
            },
            Chain {
                name: "forward".into(),
                policy: "DENY".into(),
                builtin: true,
                policy_packets: 3,
                policy_bytes: 180,
                rules: vec![Rule {
                    number: 1,
                    target: "MASQ".into(),
                    protocol: "all".into(),
                    source: "192.168.1.0/24".into(),
                    destination: "0.0.0.0/0".into(),
                    options: "------".into(),
                    packets: 120_455,
                    bytes: 88_120_330,
                    ..Default::default()
                }],
                ..Default::default()
            },
        ]
    }

    /// A realistic dashboard: admin, one link up with traffic, one idle, a few sessions.
    pub(crate) fn realistic(color: bool) -> App {
        let t0 = Instant::now();
        let mut app = App::new("http://192.168.1.1:224", t0, wall(), color);
        app.handle_event(Event::Connected {
            user: "alice".into(),
            role: Role::Admin,
            allowed: vec!["isp1".into(), "cell".into()],
        });
        let mut up = LinkStatus {
            connection: "isp1".into(),
            state: LinkState::Up as i32,
            modem: "modem0".into(),
            speed_bps: 33_600,
            local_address: "10.64.3.17".into(),
            peer_address: "10.64.0.1".into(),
            connected_since: Some(prost_types::Timestamp {
                seconds: 1_700_000_000 - 3_723,
                nanos: 0,
            }),
            bytes_in: 1_843_200,
            bytes_out: 212_992,
            holders: vec![Holder {
                user: "alice".into(),
                host: "192.168.1.10".into(),
                since: None,
            }],
            ..Default::default()
        };
        app.handle_event(Event::Server(ServerUpdate::Link(LinkStatus {
            connection: "cell".into(),
            state: LinkState::Idle as i32,
            ..Default::default()
        })));
        up.state = LinkState::Dialing as i32;
        app.handle_event(Event::Server(ServerUpdate::Link(up.clone())));
        use masqdial_proto::v1::dial_event::Event as D;
        let steps = [
            D::ModemInit(masqdial_proto::v1::ModemInit {
                modem: "modem0".into(),
                device: "/dev/ttyS0".into(),
            }),
            D::Dialing(masqdial_proto::v1::Dialing {
                number: "555-0100".into(),
                index: 1,
                count: 2,
                attempt: 1,
                attempts: 3,
            }),
            D::Connected(masqdial_proto::v1::Connected {
                speed_bps: 33_600,
                extras: "/ARQ/V42BIS".into(),
            }),
            D::LcpUp(masqdial_proto::v1::LcpUp {
                peer_mru: 1500,
                auth_protocol: "CHAP-MD5".into(),
            }),
            D::AuthOk(masqdial_proto::v1::AuthOk {
                protocol: "CHAP-MD5".into(),
            }),
            D::IpcpUp(masqdial_proto::v1::IpcpUp {
                local_address: "10.64.3.17".into(),
                peer_address: "10.64.0.1".into(),
                dns: vec![],
            }),
        ];
        for (i, step) in steps.into_iter().enumerate() {
            app.set_clock(t0, wall() - Duration::from_secs(3_730 - 2 * i as u64));
            app.handle_event(Event::Server(ServerUpdate::Progress {
                connection: "isp1".into(),
                event: masqdial_proto::v1::DialEvent {
                    at: None,
                    event: Some(step),
                },
            }));
        }
        up.state = LinkState::Up as i32;
        app.handle_event(Event::Server(ServerUpdate::Link(up)));
        app.set_clock(t0, wall());
        for i in 0..60u64 {
            app.handle_event(Event::Server(ServerUpdate::Sample(TrafficSample {
                connection: "isp1".into(),
                bytes_in: (i * 37 % 11) * 300,
                bytes_out: (i * 13 % 7) * 80,
                packets_in: 1,
                packets_out: 1,
                period_ms: 1000,
            })));
        }
        app.handle_event(Event::Server(ServerUpdate::MasqReset));
        app.handle_event(Event::Server(ServerUpdate::MasqBatch {
            entries: vec![
                masq(
                    1,
                    Protocol::Tcp,
                    "192.168.1.10",
                    1034,
                    "198.51.100.80",
                    80,
                    "ESTABLISHED",
                    89_512,
                ),
                masq(
                    2,
                    Protocol::Tcp,
                    "192.168.1.10",
                    1035,
                    "198.51.100.80",
                    443,
                    "ESTABLISHED",
                    90_000,
                ),
                masq(
                    3,
                    Protocol::Udp,
                    "192.168.1.23",
                    1027,
                    "203.0.113.53",
                    53,
                    "UDP",
                    29_871,
                ),
                masq(
                    4,
                    Protocol::Tcp,
                    "192.168.1.23",
                    1100,
                    "192.0.2.21",
                    21,
                    "FIN_WAIT",
                    11_204,
                ),
                masq(
                    5,
                    Protocol::Icmp,
                    "192.168.1.5",
                    512,
                    "192.0.2.1",
                    2048,
                    "ICMP",
                    5_911,
                ),
            ],
            at: t0,
        }));
        app.handle_event(Event::Server(ServerUpdate::MasqDone {
            total: 5,
            free: Some(FreePortsResponse {
                tcp: 4093,
                udp: 4095,
                icmp: 4095,
                tcp_total: 4096,
                udp_total: 4096,
                icmp_total: 4096,
                port_low: 61000,
                port_high: 65095,
            }),
        }));
        app.handle_event(Event::Server(ServerUpdate::Chains(chains())));
        app
    }

    fn contains(lines: &[String], s: &str) -> bool {
        lines.iter().any(|l| l.contains(s))
    }

    #[test]
    fn empty_connecting_state() {
        let app = App::new("http://gw:224", Instant::now(), wall(), true);
        let (lines, _) = draw(&app, 80, 24);
        assert!(lines[0].contains("connecting (attempt 1)"), "{lines:#?}");
        assert!(contains(&lines, "connecting…"));
        assert!(lines[23].contains("q quit"));
    }

    #[test]
    fn connected_empty_tables() {
        let mut app = App::new("http://gw:224", Instant::now(), wall(), true);
        app.handle_event(Event::Connected {
            user: "bob".into(),
            role: Role::User,
            allowed: vec![],
        });
        let (lines, _) = draw(&app, 80, 24);
        assert!(lines[0].contains("bob (user)  connected"));
        assert!(contains(&lines, "no masqueraded sessions"));
        assert!(contains(&lines, "no link configured"));
        // Users do not see the admin keys.
        assert!(!lines[23].contains("Z zero"));
    }

    #[test]
    fn dialing_shows_state_and_progress_log() {
        let mut app = realistic(true);
        app.handle_event(Event::Server(ServerUpdate::Link(LinkStatus {
            connection: "cell".into(),
            state: LinkState::Dialing as i32,
            modem: "modem1".into(),
            ..Default::default()
        })));
        app.handle_event(Event::Server(ServerUpdate::Progress {
            connection: "cell".into(),
            event: masqdial_proto::v1::DialEvent {
                at: None,
                event: Some(masqdial_proto::v1::dial_event::Event::Dialing(
                    masqdial_proto::v1::Dialing {
                        number: "*99#".into(),
                        index: 1,
                        count: 1,
                        attempt: 1,
                        attempts: 3,
                    },
                )),
            },
        }));
        let (lines, _) = draw(&app, 140, 40);
        assert!(contains(&lines, "DIALING"), "{lines:#?}");
        assert!(contains(
            &lines,
            "cell: dialing *99# (number 1/1, attempt 1/3)"
        ));
    }

    #[test]
    fn up_with_sessions_wide() {
        let app = realistic(true);
        let (lines, _) = draw(&app, 180, 45);
        let text = lines.join("\n");
        for s in [
            "isp1",
            "UP",
            "33600",
            "10.64.3.17",
            "10.64.0.1",
            "1:02:03",
            "alice@192.168.1.10",
            "1.9M",
            "192.168.1.10:1034",
            "61001",
            "198.51.100.80:80",
            "ESTABLISHED",
            "14:55.12",
            "Expire▲",
            "Chain forward (policy DENY: 3 packets, 180 bytes):",
            " 120K   88M MASQ",
            "4093/4096",
            "H force",
            "Z zero",
            "isp1: link UP 10.64.3.17 peer 10.64.0.1",
        ] {
            assert!(text.contains(s), "missing {s:?} in\n{text}");
        }
        // Sorted by expiry: the ICMP entry (59.11 s) comes first.
        let icmp = lines.iter().position(|l| l.contains("192.168.1.5:512"));
        let tcp = lines.iter().position(|l| l.contains("192.168.1.10:1035"));
        assert!(icmp < tcp);
    }

    #[test]
    fn countdown_moves_with_app_time() {
        let mut app = realistic(true);
        let (before, _) = draw(&app, 80, 24);
        assert!(contains(&before, "00:59.11"), "{before:#?}");
        app.set_clock(app.now + Duration::from_millis(1500), wall());
        app.handle_event(Event::Tick);
        let (after, _) = draw(&app, 80, 24);
        assert!(contains(&after, "00:57.61"));
    }

    #[test]
    fn narrow_80x24_fits_the_essentials() {
        let app = realistic(true);
        let (lines, _) = draw(&app, 80, 24);
        let text = lines.join("\n");
        for s in [
            "isp1",
            "UP",
            "192.168.1.10:1034",
            "198.51.100.80:443",
            "Expire",
            "TCP ▕",
            "Events",
            "q quit",
        ] {
            assert!(text.contains(s), "missing {s:?} in\n{text}");
        }
        // Chains take the middle slot when focused.
        let mut app = app;
        app.focus = Panel::Chains;
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(&lines, "Chain input (policy ACCEPT"));
    }

    #[test]
    fn no_colour_has_no_colours() {
        let app = realistic(false);
        let (lines, buf) = draw(&app, 100, 30);
        assert!(
            contains(&lines, "[Masquerade 5 · by Expire▲]"),
            "focused panel marked without colour"
        );
        for c in &buf.content {
            assert_eq!(c.fg, Color::Reset, "cell {:?} has a colour", c.symbol());
            assert_eq!(c.bg, Color::Reset);
        }
        let (_, colour) = draw(&realistic(true), 100, 30);
        assert!(colour.content.iter().any(|c| c.fg != Color::Reset));
    }

    #[test]
    fn disconnected_hides_numbers() {
        let mut app = realistic(true);
        app.handle_event(Event::Disconnected {
            reason: "transport error".into(),
            retry_in: Duration::from_secs(4),
        });
        let (lines, _) = draw(&app, 80, 24);
        let text = lines.join("\n");
        assert!(
            lines[0].contains("DISCONNECTED: transport error (retry in 4s)"),
            "{text}"
        );
        assert!(text.contains("disconnected — no data"));
        assert!(!text.contains("192.168.1.10:1034"));
        assert!(!text.contains("4093/4096"));
        assert!(!text.contains("Masquerade 0") && text.contains("Masquerade"));
    }

    #[test]
    fn pickers_help_and_filter_overlay() {
        let mut app = realistic(true);
        app.mode = Mode::DialPicker { sel: 1 };
        app.connections = vec![];
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(&lines, "Dial which connection?"));
        assert!(contains(&lines, "> cell"));
        app.mode = Mode::Help;
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(&lines, "zero chain counters (admin)"));
        app.mode = Mode::Filter {
            input: "udp".into(),
        };
        app.table.set_filter("udp");
        app.table.refresh();
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(&lines, "Masquerade 5 (1 match /udp)"));
        assert!(lines[23].starts_with("/udp█"));
    }

    #[test]
    fn zoom_fills_the_screen_with_the_focused_panel() {
        let mut app = realistic(true);
        app.focus = Panel::Chains;
        app.zoom = true;
        let (lines, _) = draw(&app, 80, 24);
        let text = lines.join("\n");
        assert!(lines[1].starts_with("┌Chains (1 rules)"), "{text}");
        assert!(text.contains("Chain forward (policy DENY: 3 packets, 180 bytes):"));
        assert!(
            !text.contains("192.168.1.10:1034"),
            "masq table hidden while zoomed"
        );
        assert!(!text.contains("Events"));
    }

    #[test]
    fn helpers() {
        assert_eq!(human_bytes(999), "999");
        assert_eq!(human_bytes(1_843_200), "1.8M");
        assert_eq!(human_bytes(88_120_330), "88M");
        assert_eq!(ipchains_count(99_999), "99999");
        assert_eq!(ipchains_count(100_000), " 100K");
        assert_eq!(ipchains_count(88_120_330), "  88M");
        assert_eq!(human_duration(3_723), "1:02:03");
        assert_eq!(human_duration(90_061), "1d 01:01");
        assert_eq!(sparkline([0u64, 1, 8].into_iter(), 5), "   ▁█");
        assert_eq!(sparkline([4u64, 8].into_iter(), 1), "█");
        assert_eq!(gauge_text("TCP", 3, 4, 4).0, "TCP ▕█░░░▏3/4");
    }

    /// Prints the screen used for client-tui/SCREEN.txt:
    /// `cargo test -p masqdial-tui --lib print_screen -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_screen() {
        let mut app = realistic(false);
        let at = app.now;
        let more = vec![
            masq(
                6,
                Protocol::Tcp,
                "192.168.1.10",
                1036,
                "203.0.113.110",
                110,
                "TIME_WAIT",
                9_870,
            ),
            masq(
                7,
                Protocol::Tcp,
                "192.168.1.31",
                1041,
                "198.51.100.25",
                25,
                "SYN_SENT",
                12_033,
            ),
            masq(
                8,
                Protocol::Udp,
                "192.168.1.31",
                1042,
                "192.0.2.123",
                123,
                "UDP",
                21_950,
            ),
            masq(
                9,
                Protocol::Tcp,
                "192.168.1.12",
                1029,
                "198.51.100.80",
                80,
                "ESTABLISHED",
                61_200,
            ),
            masq(
                10,
                Protocol::Tcp,
                "192.168.1.12",
                1030,
                "198.51.100.6",
                6667,
                "ESTABLISHED",
                88_004,
            ),
            masq(
                11,
                Protocol::Tcp,
                "192.168.1.23",
                1101,
                "192.0.2.21",
                20,
                "ESTABLISHED",
                89_960,
            ),
        ];
        app.handle_event(Event::Server(ServerUpdate::MasqDelta {
            delta: masqdial_proto::v1::MasqDelta {
                upserted: more,
                removed: vec![],
                free: Some(FreePortsResponse {
                    tcp: 3179,
                    udp: 4093,
                    icmp: 4095,
                    tcp_total: 4096,
                    udp_total: 4096,
                    icmp_total: 4096,
                    port_low: 61000,
                    port_high: 65095,
                }),
            },
            at,
        }));
        for (w, h) in [(80, 24), (100, 30), (180, 40)] {
            let (lines, _) = draw(&app, w, h);
            for l in lines {
                println!("{}", l.trim_end());
            }
        }
    }

    /// Frame cost with 100,000 entries (figures printed, nothing asserted on time):
    /// `cargo test --release -p masqdial-tui --lib bench_100k -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_100k() {
        let mut app = realistic(true);
        let t0 = app.now;
        let entries: Vec<MasqEntry> = (0..100_000u64)
            .map(|i| {
                let lan = format!("192.168.{}.{}", (i / 250) % 250, i % 250 + 1);
                masq(
                    100 + i,
                    Protocol::Tcp,
                    &lan,
                    1024 + (i % 60000) as u32,
                    "198.51.100.80",
                    443,
                    "ESTABLISHED",
                    (i * 7919) % 90_000,
                )
            })
            .collect();
        let start = Instant::now();
        app.handle_event(Event::Server(ServerUpdate::MasqBatch { entries, at: t0 }));
        println!(
            "snapshot of 100000 entries applied + sorted: {:?}",
            start.elapsed()
        );
        let mut term = Terminal::new(TestBackend::new(160, 50)).expect("test backend");
        let frames = 200u32;
        let start = Instant::now();
        for _ in 0..frames {
            term.draw(|f| render(f, &app)).expect("test backend");
        }
        println!(
            "render 160x50 with {} entries: {:?}/frame",
            app.table.len(),
            start.elapsed() / frames
        );
        let start = Instant::now();
        let rounds = 100u64;
        for r in 0..rounds {
            let up: Vec<MasqEntry> = (0..100u64)
                .map(|j| {
                    masq(
                        100 + (r * 1000 + j * 7) % 100_000,
                        Protocol::Tcp,
                        "192.168.9.9",
                        2000,
                        "198.51.100.80",
                        443,
                        "ESTABLISHED",
                        r * 100 + j,
                    )
                })
                .collect();
            app.handle_event(Event::Server(ServerUpdate::MasqDelta {
                delta: masqdial_proto::v1::MasqDelta {
                    upserted: up,
                    removed: vec![100 + r],
                    free: None,
                },
                at: t0,
            }));
        }
        println!(
            "delta of 100 upserts + 1 removal on 100000 entries: {:?}/delta",
            start.elapsed() / rounds as u32
        );
        let start = Instant::now();
        app.table.set_sort(SortKey::Remote, true);
        app.table.refresh();
        println!("re-sort 100000 entries by remote: {:?}", start.elapsed());
        let start = Instant::now();
        app.table.set_filter("192.168.7.");
        app.table.refresh();
        println!(
            "filter 100000 entries: {:?} ({} match)",
            start.elapsed(),
            app.table.visible_len()
        );
    }
}
