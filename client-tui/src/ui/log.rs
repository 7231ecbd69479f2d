//! The event log panel and its title (following or paused).
//!
//! Must not draw other panels, change app state or do I/O.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style::{block, st};
use crate::app::{App, Level, Panel};
use crate::layout::content_rows;

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

pub(super) fn render_log(frame: &mut Frame, app: &App, area: Rect) {
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
