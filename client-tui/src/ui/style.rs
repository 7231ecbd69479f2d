//! Shared drawing helpers of the renderer: the colour switch (`st`), the panel frame
//! (`block`), the no-data placeholder, countdown text and small text helpers (`wrap_words`)
//! that more than one panel uses.
//!
//! Owns no panel. Must not import any panel module (panels import this, never the reverse),
//! change app state, do I/O or read a clock.

use std::time::Duration;

use masqdial_cli::format;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::app::{App, ConnState, Panel};

/// A style, or plain when colour is off (modifiers such as bold/reverse are kept).
pub(super) fn st(app: &App, s: Style) -> Style {
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

pub(super) fn block<'a>(app: &App, title: String, panel: Panel) -> Block<'a> {
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

/// Seconds until `at`, rounded up, in mclient's duration format (`2s`, `1m05s`).
pub(super) fn countdown(app: &App, at: std::time::Instant) -> String {
    let left = at.saturating_duration_since(app.now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    format::duration(Duration::from_secs(secs))
}

/// Text shown in data panels while there is no live data.
pub(super) fn no_data(app: &App) -> Option<&'static str> {
    match app.conn {
        ConnState::Connected => None,
        ConnState::Connecting { .. } => Some("connecting…"),
        ConnState::Disconnected { .. } => Some("no connection to the server — no data"),
        ConnState::LoggedOut => Some("not logged in"),
    }
}

pub(super) fn placeholder(frame: &mut Frame, app: &App, b: Block, area: Rect, text: &str) {
    let p = Paragraph::new(Span::styled(
        text.to_string(),
        st(app, Style::new().fg(Color::Yellow)),
    ))
    .block(b);
    frame.render_widget(p, area);
}

/// Split `text` into lines of at most `width` characters at spaces (a longer word gets a line
/// of its own); continuation lines are indented by `indent`.
pub(super) fn wrap_words(text: &str, width: usize, indent: usize) -> Vec<String> {
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
