//! Overlays drawn over the dashboard: help, the dial/hang-up pickers, confirmations and the
//! login form.
//!
//! Owns the centred-box geometry. Must not draw the panels beneath, change app state, do I/O
//! or show a typed password (the form shows it masked).

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::style::{st, wrap_words};
use crate::app::{App, LoginField, LoginForm};

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

pub(super) fn render_help(frame: &mut Frame, app: &App, area: Rect) {
    let admin: &[(&str, &str)] = if app.is_admin() {
        crate::keys::ADMIN_KEYS
    } else {
        &[]
    };
    let lines: Vec<String> = crate::keys::KEYS
        .iter()
        .chain(admin)
        .map(|(k, v)| format!("{k:<13} {v}"))
        .collect();
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

pub(super) fn render_picker(
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

pub(super) fn render_confirm(frame: &mut Frame, app: &App, area: Rect, question: &str) {
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

pub(super) fn render_login(frame: &mut Frame, app: &App, area: Rect, f: &LoginForm) {
    let w = area.width.clamp(20, 64);
    let inner = usize::from(w.saturating_sub(2));
    let cursor = |on: bool| if on { "█" } else { "" };
    let mut lines: Vec<Line> = wrap_words(&masqdial_cli::safe::line(&f.message), inner, 0)
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
