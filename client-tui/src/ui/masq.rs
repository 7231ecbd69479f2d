//! The masquerade panel: the visible window of the sorted, filtered session table.
//!
//! Only the visible rows are turned into cells, so a frame's cost does not grow with the
//! table. Must not sort or filter (the table model in `crate::table` does), change app state
//! or do I/O.

use masqdial_cli::format;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

use super::style::{block, no_data, placeholder, st};
use crate::app::{App, Mode, Panel};
use crate::layout::{content_rows, masq_columns};
use crate::table::{expire_mmss, proto_name, SortKey};

pub(super) fn render_masq(frame: &mut Frame, app: &App, area: Rect) {
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
