//! The free-port gauges: the side block on wide terminals and the one-line form otherwise.
//!
//! Owns the gauge text and colour. Must not draw other panels, change app state or do I/O.

use masqdial_proto::v1::FreePortsResponse;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::style::{no_data, placeholder, st};
use crate::app::App;

/// One free-port gauge as text: `TCP ▕████░░░░▏ 4090/4096`; the bar fills as ports are used.
pub(super) fn gauge_text(name: &str, free: u32, total: u32, bar: usize) -> (String, f64) {
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

pub(super) fn render_ports_block(frame: &mut Frame, app: &App, area: Rect) {
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

pub(super) fn render_ports_line(frame: &mut Frame, app: &App, area: Rect) {
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
