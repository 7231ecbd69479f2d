//! The links panel: one row per link with state, lights, speed, uptime, traffic sparkline
//! and holders; its column choice by width.
//!
//! Owns `sparkline`, the link columns and the link cell texts (`speed`, `uptime`, reused by
//! the details view). Must not draw other panels, change app state, do I/O or read a clock.

use std::time::{Duration, UNIX_EPOCH};

use masqdial_cli::format;
use masqdial_proto::v1::LinkState;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

use super::style::{block, no_data, placeholder, st};
use crate::app::{App, LinkView, Panel, LIGHT_HOLD};
use crate::layout::content_rows;
use masqdial_cli::words::link_state_short;

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

pub(super) fn uptime(app: &App, l: &LinkView) -> String {
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
pub(super) fn speed(bps: u32) -> String {
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

pub(super) fn render_links(frame: &mut Frame, app: &App, area: Rect) {
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
                    LinkCol::State => Cell::from(Span::styled(
                        link_state_short(s.state),
                        state_style(app, s.state),
                    )),
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
