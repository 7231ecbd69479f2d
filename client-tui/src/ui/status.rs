//! The title line (server, user, connection sentence) and the footer of key hints.
//!
//! Owns `conn_text` and the footer's key list. Must not draw panels or overlays, change app
//! state, do I/O or read a clock (countdowns use `app.now`).

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style::{countdown, st};
use crate::app::{role_name, App, ConnState, Mode};

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

pub(super) fn render_title(frame: &mut Frame, app: &App, area: Rect) {
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

pub(super) fn render_footer(frame: &mut Frame, app: &App, area: Rect) {
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
