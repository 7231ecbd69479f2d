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

use std::collections::BTreeMap;
use std::time::Duration;

use masqdial_cli::format;

use crate::app::{
    role_name, state_name, App, ConnState, Geometry, Level, LinkView, LoginField, LoginForm, Mode,
    Panel, LIGHT_HOLD,
};
pub use crate::layout::{content_rows, masq_column_at, masq_columns, Areas};
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

/// The renderer's geometry, handed to the app by the event loop (the app imports nothing
/// from here).
pub const GEOMETRY: Geometry = Geometry {
    layout,
    chain_lines: chain_line_count,
    detail_lines: detail_line_count,
};

fn chain_line_count(chains: &[Chain], width: usize) -> usize {
    chain_lines(chains, width).len()
}

fn detail_line_count(app: &App, name: &str) -> usize {
    detail_lines(app, name).len()
}

/// The screen layout for `app` in `area` (pure: [`render`] draws into it, the app uses it for
/// page sizes and mouse clicks).
///
/// The links panel comes first at every size: small terminals lose the event log, then the
/// port gauges, never the links. The middle slot shows the focused one of masquerade, chains
/// and (when it has no slot of its own) the event log.
pub fn layout(app: &App, area: Rect) -> Areas {
    let [title, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut a = Areas {
        title,
        body,
        footer,
        ..Areas::default()
    };
    let set = |a: &mut Areas, p: Panel, r: Rect| match p {
        Panel::Links => a.links = Some(r),
        Panel::Masq => a.masq = Some(r),
        Panel::Chains => a.chains = Some(r),
        Panel::Log => a.log = Some(r),
    };
    if app.zoom {
        set(&mut a, app.focus, body);
    } else if area.width >= WIDE && body.height >= 24 {
        let log_h = (body.height / 4).clamp(6, 14);
        let [top, mid, log] = Layout::vertical([
            Constraint::Length(links_height(app, 12).max(6)),
            Constraint::Min(5),
            Constraint::Length(log_h),
        ])
        .areas(body);
        let [links, ports] =
            Layout::horizontal([Constraint::Min(60), Constraint::Length(40)]).areas(top);
        // The masquerade table takes what its widest column set needs and the chains the
        // rest, unless the chains then fit only as specs: the table gives up its byte and
        // packet columns first.
        let fits = |w: u16| chains_fit(&app.chains, usize::from(w.saturating_sub(2)));
        let full = body.width.saturating_sub(99);
        let slim = body.width.saturating_sub(80);
        let chains_w = if fits(full) || !fits(slim) {
            full
        } else {
            slim
        }
        .clamp(40, 110);
        let [masq, chains] =
            Layout::horizontal([Constraint::Min(60), Constraint::Length(chains_w)]).areas(mid);
        a.links = Some(links);
        a.ports_block = Some(ports);
        a.masq = Some(masq);
        a.chains = Some(chains);
        a.log = Some(log);
    } else {
        let links_h = links_height(app, 6).min(body.height);
        let mut rest = body.height - links_h;
        let mut y = body.y;
        a.links = Some(Rect::new(body.x, y, body.width, links_h));
        y += links_h;
        if rest >= 5 {
            a.ports_line = Some(Rect::new(body.x, y, body.width, 1));
            y += 1;
            rest -= 1;
        }
        // The log keeps its own slot only when the middle still gets four rows.
        let log_h = if rest >= 4 + 5 {
            (body.height / 4).clamp(5, 12).min(rest - 4)
        } else {
            0
        };
        let mid_h = rest - log_h;
        if log_h > 0 {
            a.log = Some(Rect::new(body.x, y + mid_h, body.width, log_h));
        }
        if mid_h >= 3 {
            let mid = Rect::new(body.x, y, body.width, mid_h);
            match app.focus {
                Panel::Chains => a.chains = Some(mid),
                Panel::Log if log_h == 0 => a.log = Some(mid),
                _ => a.masq = Some(mid),
            }
        }
    }
    a
}

/// Draw the whole dashboard.
pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let a = layout(app, area);
    render_title(frame, app, a.title);
    render_footer(frame, app, a.footer);
    if let Some(r) = a.links {
        render_links(frame, app, r);
    }
    if let Some(r) = a.ports_block {
        render_ports_block(frame, app, r);
    }
    if let Some(r) = a.ports_line {
        render_ports_line(frame, app, r);
    }
    if let Some(r) = a.masq {
        render_masq(frame, app, r);
    }
    if let Some(r) = a.chains {
        render_chains(frame, app, r);
    }
    if let Some(r) = a.log {
        render_log(frame, app, r);
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
        Mode::Confirm { question, .. } => render_confirm(frame, app, area, question),
        Mode::Details { name, scroll } => render_details(frame, app, a.body, name, *scroll),
        Mode::Login(f) => render_login(frame, app, area, f),
        Mode::Normal | Mode::Filter { .. } => {}
    }
}

fn links_height(app: &App, max: u16) -> u16 {
    let n = u16::try_from(app.links.len().max(1)).unwrap_or(u16::MAX);
    n.saturating_add(3).min(max)
}

/// Seconds until `at`, rounded up, in mclient's duration format (`2s`, `1m05s`).
fn countdown(app: &App, at: std::time::Instant) -> String {
    let left = at.saturating_duration_since(app.now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    format::duration(Duration::from_secs(secs))
}

/// The connection state as the title line says it: one plain sentence, no rpc names.
pub fn conn_text(app: &App) -> String {
    match &app.conn {
        ConnState::Connected => format!("{} ({})  connected", app.user, role_name(app.role)),
        ConnState::Connecting { attempt: 1 } => "connecting…".to_string(),
        ConnState::Connecting { attempt } => format!("connecting (attempt {attempt})…"),
        ConnState::Disconnected {
            reason,
            retry_at,
            was_connected,
        } => {
            let when = countdown(app, *retry_at);
            if *was_connected {
                format!("lost the server ({reason}); reconnecting in {when}")
            } else {
                format!("cannot reach the server ({reason}); retrying in {when}")
            }
        }
        ConnState::LoggedOut => "not logged in".to_string(),
    }
}

fn render_title(frame: &mut Frame, app: &App, area: Rect) {
    let style = match app.conn {
        ConnState::Connected => Style::new().fg(Color::Green),
        ConnState::Connecting { .. } | ConnState::LoggedOut => Style::new().fg(Color::Yellow),
        ConnState::Disconnected { .. } => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    };
    let spans = vec![
        Span::styled("mtui ", st(app, Style::new().add_modifier(Modifier::BOLD))),
        Span::raw(app.server.clone()),
        Span::raw("  "),
        Span::styled(conn_text(app), st(app, style)),
    ];
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Text shown in data panels while there is no live data.
fn no_data(app: &App) -> Option<&'static str> {
    match app.conn {
        ConnState::Connected => None,
        ConnState::Connecting { .. } => Some("connecting…"),
        ConnState::Disconnected { .. } => Some("no connection to the server — no data"),
        ConnState::LoggedOut => Some("not logged in"),
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
    format::duration(Duration::from_secs(
        now.saturating_sub(since.seconds).max(0) as u64,
    ))
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

/// Line speed as mclient prints it: bits per second, `-` when unknown.
fn speed(bps: u32) -> String {
    match bps {
        0 => "-".into(),
        b => b.to_string(),
    }
}

/// A column of the links table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkCol {
    Name,
    State,
    Holders,
    Modem,
    Speed,
    Local,
    Peer,
    Uptime,
    Rx,
    Tx,
    Lights,
    Traffic,
}

/// The links columns that fit in `inner` columns, in screen order, with their widths.
///
/// Columns are taken by priority: name, state and holder count always; then the byte
/// counters, lights, uptime, local address, speed, the sparkline, modem and peer. The
/// sparkline gets whatever is left.
fn link_columns(app: &App, inner: u16) -> Vec<(LinkCol, u16)> {
    let name_w = app
        .links
        .keys()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 12) as u16;
    let lights_w = if inner >= 122 { 7 } else { 2 };
    // (column, width, priority); screen order is this order.
    let all = [
        (LinkCol::Name, name_w, 0),
        (LinkCol::State, 7, 0),
        (LinkCol::Holders, 4, 0),
        (LinkCol::Modem, 7, 7),
        (LinkCol::Speed, 7, 5),
        (LinkCol::Local, 15, 4),
        (LinkCol::Peer, 15, 7),
        (LinkCol::Uptime, 9, 3),
        (LinkCol::Rx, 9, 1),
        (LinkCol::Tx, 9, 1),
        (LinkCol::Lights, lights_w, 2),
        (LinkCol::Traffic, 8, 6),
    ];
    let mut by_prio: Vec<usize> = (0..all.len()).collect();
    by_prio.sort_by_key(|&i| all[i].2);
    let mut keep = [false; 12];
    let mut used = 0u16;
    for i in by_prio {
        let need = all[i].1 + u16::from(used > 0);
        if used + need <= inner {
            keep[i] = true;
            used += need;
        }
    }
    let mut cols: Vec<(LinkCol, u16)> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| keep[*i])
        .map(|(_, c)| (c.0, c.1))
        .collect();
    if let Some(t) = cols.iter_mut().find(|c| c.0 == LinkCol::Traffic) {
        t.1 += inner - used;
    }
    cols
}

fn render_links(frame: &mut Frame, app: &App, area: Rect) {
    if let Some(t) = no_data(app) {
        let b = block(app, "Links".to_string(), Panel::Links);
        return placeholder(frame, app, b, area, t);
    }
    let mut title = format!("Links ({})", app.links.len());
    if app.focus == Panel::Links && !app.links.is_empty() {
        title.push_str(" · Enter details");
    }
    let b = block(app, title, Panel::Links);
    if app.links.is_empty() {
        return placeholder(frame, app, b, area, "no link configured");
    }
    let cols = link_columns(app, area.width.saturating_sub(2));
    let header: Vec<&str> = cols
        .iter()
        .map(|(c, w)| match c {
            LinkCol::Name => "Name",
            LinkCol::State => "State",
            LinkCol::Holders => "Hold",
            LinkCol::Modem => "Modem",
            LinkCol::Speed => "Speed",
            LinkCol::Local => "Local",
            LinkCol::Peer => "Peer",
            LinkCol::Uptime => "Uptime",
            LinkCol::Rx => "Rx",
            LinkCol::Tx => "Tx",
            LinkCol::Lights if *w >= 7 => "Lights",
            LinkCol::Lights => "RT",
            LinkCol::Traffic => "Traffic",
        })
        .collect();
    let height = content_rows(Panel::Links, area);
    let offset = crate::app::fit_offset(app.link_offset, app.link_sel, app.links.len(), height);
    let rows: Vec<Row> = app
        .links
        .values()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, l)| {
            let s = &l.status;
            let cells: Vec<Cell> = cols
                .iter()
                .map(|(c, w)| match c {
                    LinkCol::Name => Cell::from(s.connection.clone()),
                    LinkCol::State => {
                        Cell::from(Span::styled(state_name(s.state), state_style(app, s.state)))
                    }
                    LinkCol::Holders => Cell::from(s.holders.len().to_string()),
                    LinkCol::Modem => Cell::from(s.modem.clone()),
                    LinkCol::Speed => Cell::from(speed(s.speed_bps)),
                    LinkCol::Local => Cell::from(s.local_address.clone()),
                    LinkCol::Peer => Cell::from(s.peer_address.clone()),
                    LinkCol::Uptime => Cell::from(uptime(app, l)),
                    LinkCol::Rx => Cell::from(format::bytes(s.bytes_in)),
                    LinkCol::Tx => Cell::from(format::bytes(s.bytes_out)),
                    LinkCol::Lights => Cell::from(Line::from(lights(app, l, *w < 7))),
                    LinkCol::Traffic => Cell::from(Span::styled(
                        sparkline(l.history.iter().map(|(a, b)| a + b), usize::from(*w).max(1)),
                        st(app, Style::new().fg(Color::Green)),
                    )),
                })
                .collect();
            let row = Row::new(cells);
            if i == app.link_sel && app.focus == Panel::Links {
                row.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        })
        .collect();
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
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
        let pad = third.saturating_sub(s.chars().count()).max(1);
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
    let cols = masq_columns(area.width);
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
    let height = content_rows(Panel::Masq, area);
    // The app keeps the offset; fitted again here in case the size changed since.
    let offset = crate::app::fit_offset(
        app.masq_offset,
        app.masq_sel,
        app.table.visible_len(),
        height,
    );
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
            let exp_style = if remaining < 1000 {
                st(app, Style::new().fg(Color::Red))
            } else {
                Style::new()
            };
            let cells: Vec<Cell> = cols
                .iter()
                .map(|(k, _)| match k {
                    SortKey::Proto => Cell::from(proto_name(e.protocol)),
                    SortKey::Lan => Cell::from(format!("{}:{}", e.lan_address, e.lan_port)),
                    SortKey::Masq => Cell::from(e.masq_port.to_string()),
                    SortKey::Remote => Cell::from(if e.no_remote_port {
                        format!("{}:*", e.remote_address)
                    } else {
                        format!("{}:{}", e.remote_address, e.remote_port)
                    }),
                    SortKey::State => Cell::from(e.state.clone()),
                    // Both-direction totals (fields 21/22); older servers only had in/out.
                    SortKey::Bytes => Cell::from(format::bytes(
                        e.bytes.max(e.bytes_in.saturating_add(e.bytes_out)),
                    )),
                    SortKey::Packets => Cell::from(
                        e.packets
                            .max(e.packets_in.saturating_add(e.packets_out))
                            .to_string(),
                    ),
                    SortKey::Expire => Cell::from(Span::styled(expire_mmss(remaining), exp_style)),
                })
                .collect();
            let row = Row::new(cells);
            if offset + i == app.masq_sel {
                row.style(sel_style)
            } else {
                row
            }
        })
        .collect();
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
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

/// Split `text` into lines of at most `width` characters at spaces (a longer word gets a line
/// of its own); continuation lines are indented by `indent`.
fn wrap_words(text: &str, width: usize, indent: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    let mut has_word = false;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let wl = word.chars().count();
        if has_word && len + 1 + wl > width {
            out.push(std::mem::take(&mut line));
            line.push_str(&" ".repeat(indent));
            len = indent;
            has_word = false;
        }
        if has_word {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += wl;
        has_word = true;
    }
    if has_word {
        out.push(line);
    }
    out
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

fn render_chains(frame: &mut Frame, app: &App, area: Rect) {
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

/// Title of the event log: says whether it follows new lines or is paused.
pub fn log_title(app: &App) -> String {
    if app.log_following() {
        "Events · following".to_string()
    } else if app.log_new > 0 {
        format!("Events · PAUSED, {} new · G follows", app.log_new)
    } else {
        "Events · PAUSED · G follows".to_string()
    }
}

fn render_log(frame: &mut Frame, app: &App, area: Rect) {
    let b = block(app, log_title(app), Panel::Log);
    let h = content_rows(Panel::Log, area);
    let back = app.log_back.min(app.log.len().saturating_sub(h));
    let end = app.log.len().saturating_sub(back);
    let start = end.saturating_sub(h);
    let lines: Vec<Line> = app
        .log
        .range(start..end)
        .map(|l| {
            let s = match l.level {
                Level::Info => Style::new(),
                Level::Warn => st(app, Style::new().fg(Color::Yellow)),
                Level::Error => st(app, Style::new().fg(Color::Red)),
                Level::Packet => st(app, Style::new().fg(Color::Cyan)),
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
        Mode::Confirm { .. } => vec![("y", "yes"), ("n/Esc", "no")],
        Mode::Details { .. } => vec![("↑↓ PgUp PgDn", "scroll"), ("Esc", "close")],
        Mode::Login(_) => vec![
            ("Enter", "log in"),
            ("Tab", "next field"),
            ("Ctrl-C", "quit"),
        ],
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
        "G / End       events: follow new lines again",
        "Enter         details of the selected link",
        "mouse         click: select / focus; wheel: scroll",
        "              click a column title: sort by it",
        "s / S         sort masq by next column / reverse",
        "/             filter masq by text (Esc clears)",
        "d             dial a connection (picker)",
        "h             hang up a link you hold",
    ];
    if app.is_admin() {
        lines.push("H             force hang-up (admin, asks first)");
        lines.push("Z             zero chain counters (admin, asks first)");
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

fn render_confirm(frame: &mut Frame, app: &App, area: Rect, question: &str) {
    let w = area.width.clamp(20, 64);
    let inner = usize::from(w.saturating_sub(2));
    let mut lines: Vec<Line> = wrap_words(question, inner, 0)
        .into_iter()
        .map(Line::from)
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "y: yes    n / Esc: no",
        st(app, Style::new().add_modifier(Modifier::BOLD)),
    )));
    let h = u16::try_from(lines.len()).unwrap_or(8) + 2;
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    let b = Block::default()
        .borders(Borders::ALL)
        .title("Are you sure?")
        .border_style(st(app, Style::new().fg(Color::Red)));
    frame.render_widget(Paragraph::new(lines).block(b), r);
}

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
/// the live link, its holders and the LAN hosts using it).
pub fn detail_lines(app: &App, name: &str) -> Vec<String> {
    let info = app
        .details
        .as_ref()
        .filter(|i| i.connection.as_ref().is_some_and(|c| c.name == name));
    let live = app.links.get(name);
    let link = live
        .map(|l| &l.status)
        .or_else(|| info.and_then(|i| i.link.as_ref()));
    let mut out = Vec::new();
    let state = link.map_or("?", |l| state_name(l.state));
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
                crate::app::failure_name(f.kind),
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
            clock(t.at.as_ref()),
            t.kind,
            t.text
        ));
    }
    out
}

fn render_details(frame: &mut Frame, app: &App, body: Rect, name: &str, scroll: usize) {
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

fn render_login(frame: &mut Frame, app: &App, area: Rect, f: &LoginForm) {
    let w = area.width.clamp(20, 64);
    let inner = usize::from(w.saturating_sub(2));
    let cursor = |on: bool| if on { "█" } else { "" };
    let mut lines: Vec<Line> = wrap_words(&f.message, inner, 0)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, st(app, Style::new().fg(Color::Yellow)))))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(format!(
        "user:     {}{}",
        f.user,
        cursor(f.field == LoginField::User && !f.busy)
    )));
    lines.push(Line::from(format!(
        "password: {}{}",
        "*".repeat(f.password.chars()),
        cursor(f.field == LoginField::Password && !f.busy)
    )));
    let h = u16::try_from(lines.len()).unwrap_or(8) + 2;
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    let b = Block::default()
        .borders(Borders::ALL)
        .title(format!("Log in to {}", app.server))
        .border_style(st(app, Style::new().fg(Color::Cyan)));
    frame.render_widget(Paragraph::new(lines).block(b), r);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::app::DETAILS_REFRESH;
    use crate::event::{Command, Event, ServerUpdate};
    use crossterm::event::{
        KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
    };
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
        let mut app = App::new("http://192.168.1.1:224", t0, wall(), color, GEOMETRY);
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
                ..Default::default()
            }),
            D::AuthOk(masqdial_proto::v1::AuthOk {
                protocol: "CHAP-MD5".into(),
            }),
            D::IpcpUp(masqdial_proto::v1::IpcpUp {
                local_address: "10.64.3.17".into(),
                peer_address: "10.64.0.1".into(),
                dns: vec![],
                ..Default::default()
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
        let app = App::new("http://gw:224", Instant::now(), wall(), true, GEOMETRY);
        let (lines, _) = draw(&app, 80, 24);
        assert!(lines[0].contains("connecting…"), "{lines:#?}");
        assert!(contains(&lines, "connecting…"));
        assert!(lines[23].contains("q quit"));
    }

    #[test]
    fn connected_empty_tables() {
        let mut app = App::new("http://gw:224", Instant::now(), wall(), true, GEOMETRY);
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
            "Hold",
            "1.8 MiB",
            "1h02m03s",
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
            reason: "connection refused".into(),
            retry_in: Duration::from_secs(4),
            was_connected: true,
        });
        let (lines, _) = draw(&app, 100, 24);
        let text = lines.join("\n");
        assert!(
            lines[0].contains("lost the server (connection refused); reconnecting in 4s"),
            "{text}"
        );
        assert!(text.contains("no connection to the server — no data"));
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
        assert!(contains(&lines, "zero chain counters (admin, asks first)"));
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
        assert_eq!(ipchains_count(99_999), "99999");
        assert_eq!(ipchains_count(100_000), " 100K");
        assert_eq!(ipchains_count(88_120_330), "  88M");
        assert_eq!(sparkline([0u64, 1, 8].into_iter(), 5), "   ▁█");
        assert_eq!(sparkline([4u64, 8].into_iter(), 1), "█");
        assert_eq!(gauge_text("TCP", 3, 4, 4).0, "TCP ▕█░░░▏3/4");
    }

    fn key(c: KeyCode) -> Event {
        Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    fn sized(mut app: App, w: u16, h: u16) -> App {
        app.handle_event(Event::Resize {
            width: w,
            height: h,
        });
        app
    }

    /// The deploy/ipmasq.rules input chain as the server lists it (nat-core's snapshot).
    fn ipmasq_chains() -> Vec<Chain> {
        let rule = |n: u32, spec: &str, target: &str, proto: &str, src: &str, dst: &str| Rule {
            number: n,
            spec: spec.into(),
            target: target.into(),
            protocol: proto.into(),
            source: src.into(),
            destination: dst.into(),
            options: "------".into(),
            ..Default::default()
        };
        let mut spoof = rule(
            1,
            "-s 192.168.0.0/16 -i ppp0 -j DENY -l",
            "DENY",
            "all",
            "192.168.0.0/16",
            "0.0.0.0/0",
        );
        spoof.interface = "ppp0".into();
        spoof.options = "----l-".into();
        spoof.log = true;
        let mut syn = rule(
            2,
            "-p tcp -d 0.0.0.0/0 0:60999 -i ppp0 -y -j DENY",
            "DENY",
            "tcp",
            "0.0.0.0/0",
            "0.0.0.0/0",
        );
        syn.interface = "ppp0".into();
        syn.options = "-y----".into();
        syn.destination_ports = "0:60999".into();
        let mut inv = rule(
            3,
            "-p udp -s ! 192.168.77.0/24 -i ! ppp+ -d 0.0.0.0/0 ! 0:1023 -j REJECT",
            "REJECT",
            "udp",
            "!192.168.77.0/24",
            "0.0.0.0/0",
        );
        inv.interface = "!ppp+".into();
        inv.destination_ports = "!0:1023".into();
        vec![
            Chain {
                name: "input".into(),
                policy: "ACCEPT".into(),
                builtin: true,
                rules: vec![spoof, syn, inv],
                ..Default::default()
            },
            Chain {
                name: "forward".into(),
                policy: "DENY".into(),
                builtin: true,
                rules: vec![rule(
                    1,
                    "-s 192.168.77.0/24 -j MASQ",
                    "MASQ",
                    "all",
                    "192.168.77.0/24",
                    "0.0.0.0/0",
                )],
                ..Default::default()
            },
        ]
    }

    fn line_with<'a>(lines: &'a [String], s: &str) -> &'a str {
        lines
            .iter()
            .find(|l| l.contains(s))
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no line with {s:?} in\n{}", lines.join("\n")))
    }

    #[test]
    fn chains_always_show_what_changes_a_rule() {
        for (w, h) in [(80u16, 24u16), (160, 48), (100, 30)] {
            let mut app = realistic(false);
            app.handle_event(Event::Server(ServerUpdate::Chains(ipmasq_chains())));
            app.focus = Panel::Chains;
            let app = sized(app, w, h);
            let (lines, _) = draw(&app, w, h);
            // The anti-spoofing rule: only from ppp0, and logged; not "DENY all 192.168/16".
            let spoof = line_with(&lines, "192.168.0.0/16");
            for s in ["DENY", "all", "----l-", "ppp0", "anywhere"] {
                assert!(spoof.contains(s), "{w}x{h}: {s:?} missing in {spoof:?}");
            }
            let syn = line_with(&lines, "0:60999");
            for s in ["DENY", "tcp", "-y----", "ppp0", "any -> 0:60999"] {
                assert!(syn.contains(s), "{w}x{h}: {s:?} missing in {syn:?}");
            }
            let inv = line_with(&lines, "REJECT");
            for s in ["!192.168.77.0/24", "!ppp+", "any -> !0:1023", "udp"] {
                assert!(inv.contains(s), "{w}x{h}: {s:?} missing in {inv:?}");
            }
            assert!(line_with(&lines, "MASQ").contains("192.168.77.0/24"));
        }
        // Too narrow for columns: each rule as its ipchains spec, wrapped, nothing cut.
        let lines = chain_lines(&ipmasq_chains(), 40);
        let text = lines.join("\n");
        assert!(text.contains("-s 192.168.0.0/16 -i ppp0 -j DENY"), "{text}");
        assert!(
            lines
                .iter()
                .filter(|l| !l.starts_with("Chain "))
                .all(|l| l.chars().count() <= 40),
            "{text}"
        );
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("-d 0.0.0.0/0 ! 0:1023 -j REJECT"), "{text}");
        // Counters go first when space is short: bytes, then packets.
        let full = chain_lines(&ipmasq_chains(), 200);
        assert!(full[1].starts_with(" pkts bytes target"), "{full:?}");
        let w = full.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let less = chain_lines(&ipmasq_chains(), w - 1);
        assert!(less[1].starts_with(" pkts target"), "{less:?}");
    }

    #[test]
    fn links_show_holder_count_at_every_size() {
        for (w, h) in [(180u16, 45u16), (100, 30), (80, 24), (50, 12)] {
            let app = sized(realistic(false), w, h);
            let (lines, _) = draw(&app, w, h);
            let text = lines.join("\n");
            let header = line_with(&lines, "Name");
            assert!(
                header.contains("State") && header.contains("Hold"),
                "{w}x{h}:\n{text}"
            );
            let row = line_with(&lines, "isp1");
            let cells: Vec<&str> = row
                .trim_matches(|c| c == '│' || c == ' ')
                .split_whitespace()
                .collect();
            assert_eq!(&cells[..3], &["isp1", "UP", "1"], "{w}x{h}:\n{text}");
            assert!(
                contains(&lines, "cell"),
                "second link visible at {w}x{h}:\n{text}"
            );
        }
    }

    #[test]
    fn details_show_the_link_queues_and_host_shares() {
        use masqdial_proto::v1::{HostShare, LinkQueues, QueueStats};
        let mut app = realistic(false);
        let mut st = app
            .links
            .get("isp1")
            .map(|l| l.status.clone())
            .unwrap_or_default();
        st.queues = Some(LinkQueues {
            scheduler: "fair".into(),
            egress: Some(QueueStats {
                backlog_packets: 3,
                backlog_bytes: 4_500,
                sojourn_p50_ms: 92,
                sojourn_p95_ms: 153,
                dropped_overflow: 1,
                dropped_aqm: 7,
                ecn_marked: 2,
                sent_bytes: 2_048,
                hosts: vec![
                    HostShare {
                        host: "192.168.1.10".into(),
                        share: 0.54,
                        ..Default::default()
                    },
                    HostShare {
                        host: "192.168.1.11".into(),
                        share: 0.46,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            ingress: Some(QueueStats::default()),
            ingress_shaping: 0.9,
        });
        app.handle_event(Event::Server(ServerUpdate::Link(st)));
        let lines = detail_lines(&app, "isp1");
        let at = lines
            .iter()
            .position(|l| l == "Link queue (fair scheduler)")
            .unwrap_or_else(|| panic!("no queue section: {lines:#?}"));
        assert_eq!(
            &lines[at + 1..at + 7],
            &[
                "  up         backlog 3 pkts/4.4 KiB, sojourn p50 92 ms p95 153 ms".to_string(),
                "             drops 1 over limit, 7 by AQM; 2 ECN-marked; sent 2.0 KiB".to_string(),
                "             192.168.1.10       54% of the line".to_string(),
                "             192.168.1.11       46% of the line".to_string(),
                "  down 90%   backlog 0 pkts/0 B, sojourn p50 0 ms p95 0 ms".to_string(),
                "             drops 0 over limit, 0 by AQM; 0 ECN-marked; sent 0 B".to_string(),
            ]
        );
    }

    #[test]
    fn enter_opens_details_with_cinfo_log_hosts_and_holders() {
        use masqdial_proto::v1::{Connection, ConnectionInfo, PppOptions, TranscriptLine};
        let mut app = sized(realistic(false), 100, 40);
        app.focus = Panel::Links;
        // isp1 sorts after cell: select it.
        app.handle_event(key(KeyCode::Down));
        assert_eq!(app.selected_link(), Some("isp1"));
        let cmds = app.handle_event(key(KeyCode::Enter));
        assert_eq!(cmds, vec![Command::Details("isp1".into())]);
        let (lines, _) = draw(&app, 100, 40);
        assert!(contains(&lines, "asking the server for the details"));
        let at = |s: i64| {
            Some(prost_types::Timestamp {
                seconds: 1_700_000_000 - 3_730 + s,
                nanos: 0,
            })
        };
        let info = ConnectionInfo {
            connection: Some(Connection {
                name: "isp1".into(),
                numbers: vec!["555-0100".into(), "555-0101".into()],
                modems: vec!["modem0".into()],
                allowed: true,
                ..Default::default()
            }),
            dial_prefix: "ATDT".into(),
            auth: "chap".into(),
            redial_attempts: 3,
            ppp: Some(PppOptions {
                local_mru: 1500,
                peer_mru: 1500,
                peer_accm: 0x000a_0000,
                pfc: true,
                acfc: true,
                auth_protocol: "CHAP-MD5".into(),
                frames_in: 812,
                frames_out: 640,
                local_address: "10.64.3.17".into(),
                peer_address: "10.64.64.64".into(),
                refused: vec![masqdial_proto::v1::OptionRefusal {
                    protocol: "IPCP".into(),
                    option: 129,
                    name: "Primary-DNS".into(),
                    by_peer: true,
                    reject: true,
                    value: "0.0.0.0".into(),
                }],
                ..Default::default()
            }),
            transcript: vec![
                TranscriptLine {
                    at: at(0),
                    kind: "send".into(),
                    text: "ATDT555-0100".into(),
                },
                TranscriptLine {
                    at: at(2),
                    kind: "recv".into(),
                    text: "CONNECT 33600/ARQ/V42BIS".into(),
                },
            ],
            ..Default::default()
        };
        app.handle_event(Event::Server(ServerUpdate::Details(Box::new(info))));
        let (lines, _) = draw(&app, 100, 40);
        let text = lines.join("\n");
        for s in [
            "isp1 · details · Esc closes",
            "Holders (1)",
            "alice@192.168.1.10",
            "Negotiated PPP options",
            "MRU        local 1500, peer 1500",
            "ACCM       local 0x00000000, peer 0x000a0000",
            "auth CHAP-MD5 · PFC yes · ACFC yes",
            "auth of peer none (what we demanded)",
            "IPCP       local 10.64.3.17, peer 10.64.64.64",
            "DNS        none",
            "refused options (1)",
            "peer Rejected our IPCP Primary-DNS (129): 0.0.0.0",
            "LAN hosts using it (3, live sessions)",
            "Log of the last dial (2 lines, UTC)",
            "21:11:10 send  ATDT555-0100",
            "21:11:12 recv  CONNECT 33600/ARQ/V42BIS",
            "3 attempts 0s apart",
            "numbers    555-0100, 555-0101",
        ] {
            assert!(text.contains(s), "missing {s:?} in\n{text}");
        }
        // Per LAN host: 192.168.1.10 has entries 1 and 2 (both ways, bytes or in+out).
        let host = line_with(&lines, "2 sessions");
        assert!(host.contains("192.168.1.10 "), "{host}");
        // Refreshed while open, Esc closes.
        app.set_clock(app.now + DETAILS_REFRESH, wall());
        assert_eq!(
            app.handle_event(Event::Tick),
            vec![Command::Details("isp1".into())]
        );
        app.handle_event(key(KeyCode::Esc));
        assert_eq!(app.mode, Mode::Normal);
        let (lines, _) = draw(&app, 100, 40);
        assert!(!contains(&lines, "details · Esc closes"));
    }

    #[test]
    fn details_show_the_modems_cellular_status() {
        let mut app = realistic(false);
        let modem = app
            .links
            .get("isp1")
            .map(|l| l.status.modem.clone())
            .unwrap_or_default();
        assert!(!modem.is_empty(), "isp1 has a modem in the fixture");
        app.handle_event(Event::Server(ServerUpdate::Modems(vec![
            masqdial_proto::v1::Modem {
                name: modem,
                cellular: Some(masqdial_proto::v1::CellularStatus {
                    has_signal: true,
                    signal_dbm: -71,
                    signal_bars: 3,
                    registration: "roaming".into(),
                    roaming: true,
                    operator: "Example Mobile".into(),
                    access_technology: "LTE".into(),
                    sim: "ready".into(),
                    pin_sent: true,
                    pin_accepted: false,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ])));
        let lines = detail_lines(&app, "isp1");
        assert!(
            lines.iter().any(|l| l
                == "  cellular   -71 dBm [###.], roaming on Example Mobile (LTE), SIM ready (PIN refused)"),
            "{lines:#?}"
        );
    }

    #[test]
    fn details_show_the_budget() {
        let mut app = realistic(false);
        let mut st = app
            .links
            .get("isp1")
            .map(|l| l.status.clone())
            .unwrap_or_default();
        st.budget = Some(masqdial_proto::v1::Budget {
            time_budget_s: 3600,
            time_used_s: 300,
            time_period: "day".into(),
            windows: vec!["Mo-Fr 18:00-08:00".into()],
            window_open: true,
            utc_offset: "+01:00".into(),
            ..Default::default()
        });
        app.handle_event(Event::Server(ServerUpdate::Link(st)));
        let lines = detail_lines(&app, "isp1");
        assert!(
            lines.iter().any(|l| l
                == "  budget     up 0:05:00 of 1:00:00 per day, windows Mo-Fr 18:00-08:00 UTC+01:00 (open)"),
            "{lines:#?}"
        );
    }

    #[test]
    fn details_scroll_stays_inside_the_text() {
        let mut app = sized(realistic(false), 80, 14);
        app.focus = Panel::Links;
        app.link_sel = 1;
        app.handle_event(key(KeyCode::Enter));
        let lines = detail_lines(&app, "isp1").len();
        let h = usize::from(app.areas().body.height - 2);
        assert!(lines > h, "the text is longer than the view");
        app.handle_event(key(KeyCode::Char('G')));
        let max = lines - h;
        assert_eq!(
            app.mode,
            Mode::Details {
                name: "isp1".into(),
                scroll: max
            }
        );
        app.handle_event(key(KeyCode::Up));
        assert_eq!(
            app.mode,
            Mode::Details {
                name: "isp1".into(),
                scroll: max - 1
            }
        );
        let (screen, _) = draw(&app, 80, 14);
        assert!(contains(&screen, "192.168.1.10 "), "{screen:#?}");
    }

    #[test]
    fn zero_and_force_hangup_ask_first() {
        let mut app = realistic(false);
        assert!(app.handle_event(key(KeyCode::Char('Z'))).is_empty());
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(
            &lines,
            "Zero the packet and byte counters of every"
        ));
        assert!(contains(&lines, "y: yes    n / Esc: no"));
        // Enter does not confirm; n neither.
        assert!(app.handle_event(key(KeyCode::Enter)).is_empty());
        assert_eq!(app.mode, Mode::Normal);
        app.handle_event(key(KeyCode::Char('Z')));
        assert!(app.handle_event(key(KeyCode::Char('n'))).is_empty());
        app.handle_event(key(KeyCode::Char('Z')));
        assert_eq!(
            app.handle_event(key(KeyCode::Char('y'))),
            vec![Command::ZeroCounters]
        );
        // H: pick the link, then confirm naming who loses it.
        app.handle_event(key(KeyCode::Char('H')));
        assert!(app.handle_event(key(KeyCode::Enter)).is_empty());
        let (lines, _) = draw(&app, 80, 24);
        let text = lines.join("\n");
        assert!(text.contains("Force hang-up of isp1?"), "{text}");
        assert!(text.contains("alice@192.168.1.10"), "{text}");
        assert!(app.handle_event(key(KeyCode::Esc)).is_empty());
        app.handle_event(key(KeyCode::Char('H')));
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(
            app.handle_event(key(KeyCode::Char('y'))),
            vec![Command::Hangup {
                name: "isp1".into(),
                force: true
            }]
        );
    }

    /// Rows of the masquerade panel that show an entry.
    fn masq_rows_shown(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains("192.168.") && l.contains(":61"))
            .cloned()
            .collect()
    }

    fn many_sessions(app: &mut App, n: u64) {
        let at = app.now;
        let entries = (0..n)
            .map(|i| {
                let mut e = masq(
                    100 + i,
                    Protocol::Tcp,
                    "192.168.1.50",
                    2000 + i as u32,
                    "198.51.100.9",
                    61000 + i as u32,
                    "ESTABLISHED",
                    100_000 + i * 100,
                );
                e.bytes_in = 0;
                e
            })
            .collect();
        app.handle_event(Event::Server(ServerUpdate::MasqBatch { entries, at }));
    }

    #[test]
    fn scrolling_keeps_the_viewport_full() {
        let mut app = sized(realistic(false), 80, 24);
        many_sessions(&mut app, 45);
        let total = app.table.visible_len();
        assert_eq!(total, 50);
        let h = app.viewport(Panel::Masq);
        // 80x24 with two links leaves the table 8 rows.
        assert_eq!(h, 8);
        app.handle_event(key(KeyCode::Char('G')));
        assert_eq!(app.masq_sel, total - 1);
        let (lines, _) = draw(&app, 80, 24);
        let shown = masq_rows_shown(&lines);
        assert_eq!(shown.len(), h, "last page full:\n{}", lines.join("\n"));
        // Page up and down move by a whole page and keep it full.
        app.handle_event(key(KeyCode::PageUp));
        assert_eq!(app.masq_offset, total - 2 * h);
        let (lines, _) = draw(&app, 80, 24);
        assert_eq!(masq_rows_shown(&lines).len(), h);
        app.handle_event(key(KeyCode::PageDown));
        app.handle_event(key(KeyCode::PageDown));
        let (lines, _) = draw(&app, 80, 24);
        assert_eq!(masq_rows_shown(&lines).len(), h);
        assert_eq!(app.masq_offset, total - h);
        app.handle_event(key(KeyCode::Char('g')));
        assert_eq!((app.masq_sel, app.masq_offset), (0, 0));
        // Chains: G shows the last lines with the panel full.
        let mut chains = ipmasq_chains();
        let masq_rule = chains[1].rules[0].clone();
        chains[1].rules = (0..20).map(|_| masq_rule.clone()).collect();
        app.handle_event(Event::Server(ServerUpdate::Chains(chains)));
        app.focus = Panel::Chains;
        app.handle_event(key(KeyCode::Char('G')));
        let (lines, _) = draw(&app, 80, 24);
        let body: Vec<&String> = lines[7..lines.len() - 7].iter().collect();
        assert!(
            body.iter()
                .all(|l| !l.trim_matches(|c| c == '│' || c == ' ').is_empty()),
            "no blank chain line after G:\n{}",
            lines.join("\n")
        );
    }

    #[test]
    fn packet_log_lines_show_in_the_events_panel_with_their_own_label_and_colour() {
        // Colour on (without it, the `ipchains:` label alone marks them).
        let mut app = sized(realistic(true), 100, 24);
        let line = "Packet log: input DENY ppp0 PROTO=17 10.1.2.3:53 10.64.3.17:61001 L=61 S=0x00 I=1 F=0x0000 T=64 (#1)";
        app.handle_event(Event::Server(ServerUpdate::PacketLog(line.into())));
        let last = app.log.back().expect("a log line");
        assert_eq!(last.level, Level::Packet);
        assert_eq!(last.text, format!("ipchains: {line}"));
        let (lines, buf) = draw(&app, 100, 24);
        let (row, text) = lines
            .iter()
            .enumerate()
            .find(|(_, l)| l.contains("ipchains: Packet log: input DENY ppp0"))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        let col = text
            .find("ipchains:")
            .map(|b| text[..b].chars().count())
            .unwrap_or_default();
        let cell = &buf[(
            u16::try_from(col).unwrap_or_default(),
            u16::try_from(row).unwrap_or_default(),
        )];
        assert_eq!(cell.fg, Color::Cyan, "{lines:#?}");
        // An ordinary line keeps the default colour.
        app.handle_event(Event::Server(ServerUpdate::Info("plain".into())));
        let (lines, buf) = draw(&app, 100, 24);
        let (row, text) = lines
            .iter()
            .enumerate()
            .find(|(_, l)| l.contains(" plain"))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        let col = text
            .find("plain")
            .map(|b| text[..b].chars().count())
            .unwrap_or_default();
        let cell = &buf[(
            u16::try_from(col).unwrap_or_default(),
            u16::try_from(row).unwrap_or_default(),
        )];
        assert_eq!(cell.fg, Color::Reset);
    }

    #[test]
    fn events_panel_says_following_or_paused() {
        let mut app = sized(realistic(false), 80, 24);
        for i in 0..30 {
            app.push_log(Level::Info, format!("line {i}"));
        }
        app.handle_event(Event::Tick);
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(&lines, "Events · following"), "{lines:#?}");
        assert!(contains(&lines, "line 29"));
        app.focus = Panel::Log;
        app.handle_event(key(KeyCode::Up));
        assert!(!app.log_following());
        let (before, _) = draw(&app, 80, 24);
        assert!(contains(&before, "Events · PAUSED · G follows"));
        assert!(!contains(&before, "line 29"));
        // New lines do not move a paused view; the title counts them.
        app.handle_event(Event::Server(ServerUpdate::Info("fresh".into())));
        let (after, _) = draw(&app, 80, 24);
        assert!(contains(&after, "Events · PAUSED, 1 new · G follows"));
        let log_rows = |l: &[String]| -> Vec<String> {
            l.iter().filter(|x| x.contains(" line ")).cloned().collect()
        };
        assert_eq!(log_rows(&before), log_rows(&after));
        // g goes to the oldest line with the panel full; G follows again.
        app.handle_event(key(KeyCode::Char('g')));
        let (top, _) = draw(&app, 80, 24);
        assert!(contains(
            &top,
            "connected to http://192.168.1.1:224 as alice"
        ));
        let r = app.areas().log.expect("log shown");
        for y in r.y + 1..r.y + r.height - 1 {
            let row = &top[usize::from(y)];
            assert!(
                row.trim_matches(|c| c == '│' || c == ' ').len() > 8,
                "blank log row {y} at the top:\n{}",
                top.join("\n")
            );
        }
        app.handle_event(key(KeyCode::Char('G')));
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(&lines, "Events · following"));
        assert!(contains(&lines, "fresh"));
    }

    fn click(x: u16, y: u16) -> Event {
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        })
    }

    fn wheel(down: bool, x: u16, y: u16) -> Event {
        Event::Mouse(MouseEvent {
            kind: if down {
                MouseEventKind::ScrollDown
            } else {
                MouseEventKind::ScrollUp
            },
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        })
    }

    #[test]
    fn mouse_focuses_selects_sorts_and_scrolls() {
        let mut app = sized(realistic(false), 80, 24);
        many_sessions(&mut app, 20);
        let a = app.areas();
        let masq = a.masq.expect("masq shown");
        let links = a.links.expect("links shown");
        // Click the third masquerade row.
        app.handle_event(click(masq.x + 5, masq.y + 4));
        assert_eq!((app.focus, app.masq_sel), (Panel::Masq, 2));
        // Click a link row: focus moves there and selects it.
        app.handle_event(click(links.x + 3, links.y + 3));
        assert_eq!((app.focus, app.link_sel), (Panel::Links, 1));
        // Wheel over the table moves three rows.
        app.handle_event(wheel(true, masq.x + 5, masq.y + 4));
        assert_eq!(app.masq_sel, 5);
        app.handle_event(wheel(false, masq.x + 5, masq.y + 4));
        assert_eq!(app.masq_sel, 2);
        // Clicking a column title sorts by it; clicking again reverses.
        app.handle_event(click(masq.x + 2, masq.y + 1));
        assert_eq!(app.table.sort(), (SortKey::Proto, false));
        app.handle_event(click(masq.x + 2, masq.y + 1));
        assert_eq!(app.table.sort(), (SortKey::Proto, true));
        app.handle_event(click(masq.x + 40, masq.y + 1));
        assert_eq!(app.table.sort(), (SortKey::Remote, false));
        // The events panel takes the focus on a click and pauses on the wheel.
        let log = a.log.expect("log shown");
        app.handle_event(click(log.x + 3, log.y + 2));
        assert_eq!(app.focus, Panel::Log);
        for i in 0..20 {
            app.push_log(Level::Info, format!("l{i}"));
        }
        app.handle_event(wheel(false, log.x + 3, log.y + 2));
        assert!(!app.log_following());
    }

    #[test]
    fn every_sort_column_runs_the_same_way() {
        let mut app = realistic(false);
        // Ascending (▲) means A→Z, 0→9, soonest expiry first, for every column.
        for k in SortKey::ALL {
            app.table.set_sort(k, false);
            app.table.refresh();
            let rows: Vec<_> = app.table.window(0, usize::MAX).cloned().collect();
            for pair in rows.windows(2) {
                let (a, b) = (&pair[0].entry, &pair[1].entry);
                let ok = match k {
                    SortKey::Proto => proto_name(a.protocol) <= proto_name(b.protocol),
                    SortKey::Masq => a.masq_port <= b.masq_port,
                    SortKey::State => a.state <= b.state,
                    SortKey::Expire => a.expire_centis <= b.expire_centis,
                    SortKey::Bytes => a.bytes_in + a.bytes_out <= b.bytes_in + b.bytes_out,
                    SortKey::Packets => {
                        a.packets_in + a.packets_out <= b.packets_in + b.packets_out
                    }
                    SortKey::Lan | SortKey::Remote => true,
                };
                assert!(ok, "{k:?} ascending: {a:?} before {b:?}");
            }
        }
        app.table.set_sort(SortKey::Proto, false);
        app.table.refresh();
        let protos: Vec<&str> = app
            .table
            .window(0, usize::MAX)
            .map(|r| proto_name(r.entry.protocol))
            .collect();
        assert_eq!(protos, vec!["ICMP", "TCP", "TCP", "TCP", "UDP"]);
    }

    #[test]
    fn small_terminals_keep_the_links() {
        for (w, h) in [(80u16, 24u16), (50, 12), (50, 10)] {
            let app = sized(realistic(false), w, h);
            let a = app.areas();
            let links = a.links.expect("links always laid out");
            assert_eq!(links.height, 5, "{w}x{h}: both links and the header");
            let (lines, _) = draw(&app, w, h);
            let text = lines.join("\n");
            assert!(text.contains("isp1") && text.contains("UP"), "{text}");
            assert!(text.contains("cell") && text.contains("IDLE"), "{text}");
        }
        // The masquerade table keeps whole columns: protocol, LAN side and expiry first.
        let app = sized(realistic(false), 50, 12);
        let (lines, _) = draw(&app, 50, 12);
        let header = line_with(&lines, "Proto");
        assert!(
            header.contains("LAN addr:port") && header.contains("Expire▲"),
            "{}",
            lines.join("\n")
        );
        assert!(contains(&lines, "192.168.1.5:512"));
        // At 50x12 the event log gives way; focusing it shows it in the middle slot.
        let mut app = sized(realistic(false), 50, 12);
        assert!(app.areas().log.is_none());
        app.handle_event(key(KeyCode::Char('4')));
        let (lines, _) = draw(&app, 50, 12);
        assert!(contains(&lines, "Events · following"), "{lines:#?}");
    }

    #[test]
    fn login_form_masks_the_password_and_sends_it() {
        let mut app = realistic(false);
        app.handle_event(Event::LoginNeeded {
            user: "alice".into(),
            reason: crate::net::TOKEN_UNKNOWN.into(),
        });
        assert_eq!(app.conn, ConnState::LoggedOut);
        assert!(app.links.is_empty(), "stale data dropped");
        for c in "s3cr3t".chars() {
            app.handle_event(key(KeyCode::Char(c)));
        }
        let (lines, _) = draw(&app, 80, 24);
        let text = lines.join("\n");
        assert!(text.contains("Log in to http://192.168.1.1:224"), "{text}");
        assert!(text.contains("may have restarted"), "{text}");
        assert!(text.contains("user:     alice"), "{text}");
        assert!(text.contains("password: ******█"), "{text}");
        assert!(!text.contains("s3cr3t"));
        assert!(lines[0].contains("not logged in"));
        assert!(!format!("{:?}", app.mode).contains("s3cr3t"));
        let cmds = app.handle_event(key(KeyCode::Enter));
        assert_eq!(
            cmds,
            vec![Command::Login {
                user: "alice".into(),
                password: crate::event::Secret::new("s3cr3t"),
            }]
        );
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(&lines, "logging in…"));
        // A wrong password: asked again with the reason, the user name kept.
        app.handle_event(Event::LoginNeeded {
            user: "alice".into(),
            reason: "Wrong user name or password; try again.".into(),
        });
        let (lines, _) = draw(&app, 80, 24);
        assert!(contains(&lines, "Wrong user name or password"));
        assert!(contains(&lines, "password: █"));
        // q is a letter here, not quit.
        assert!(app.handle_event(key(KeyCode::Char('q'))).is_empty());
        app.handle_event(Event::Connected {
            user: "alice".into(),
            role: Role::Admin,
            allowed: vec![],
        });
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn units_match_mclient() {
        let app = sized(realistic(false), 180, 45);
        let (lines, _) = draw(&app, 180, 45);
        let row = line_with(&lines, "33600");
        // format::bytes and format::duration, as mclient status prints them.
        let l = &app.links["isp1"].status;
        assert!(row.contains(&format::bytes(l.bytes_in)), "{row}");
        assert!(row.contains(&format::bytes(l.bytes_out)), "{row}");
        assert!(row.contains("1h02m03s"), "{row}");
        assert!(
            contains(&lines, &format::bytes(48_213 + 3_101)),
            "masq bytes in KiB"
        );
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
        app.handle_event(Event::Server(ServerUpdate::Chains(ipmasq_chains())));
        for (w, h) in [(50, 12), (80, 24), (100, 30), (160, 48)] {
            app.handle_event(Event::Resize {
                width: w,
                height: h,
            });
            let (lines, _) = draw(&app, w, h);
            for l in lines {
                println!("{}", l.trim_end());
            }
        }
        // Overlays at 80x24: the force hang-up question, the details view, the login form.
        app.handle_event(Event::Resize {
            width: 80,
            height: 24,
        });
        app.handle_event(key(KeyCode::Char('H')));
        app.handle_event(key(KeyCode::Enter));
        let mut shots = vec![draw(&app, 80, 24).0];
        app.handle_event(key(KeyCode::Esc));
        app.focus = Panel::Links;
        app.link_sel = 1;
        app.handle_event(key(KeyCode::Enter));
        shots.push(draw(&app, 80, 24).0);
        app.handle_event(key(KeyCode::Esc));
        app.handle_event(Event::LoginNeeded {
            user: "alice".into(),
            reason: crate::net::TOKEN_UNKNOWN.into(),
        });
        for c in "secret".chars() {
            app.handle_event(key(KeyCode::Char(c)));
        }
        shots.push(draw(&app, 80, 24).0);
        for lines in shots {
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
