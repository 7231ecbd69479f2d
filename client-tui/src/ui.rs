//! Pure rendering of an [`App`] into a ratatui frame, one module per panel.
//!
//! Reads the app and draws; it must not change state, do I/O or read a clock (countdowns use
//! `app.now`). Only the visible window of the masquerade table is turned into rows, so the cost
//! of a frame does not grow with the table.
//!
//! This module keeps the screen [`layout`], [`render`] (which calls each panel) and
//! [`GEOMETRY`] (handed to the app by the event loop); the panels live in `links`, `ports`,
//! `masq`, `chains`, `log` and `details`, the title and footer in `status`, the pickers,
//! confirmations, login form and help in `overlays`, shared styling helpers in `style`, and
//! the tests in `tests/`. Panels import `style` (the details view also the link cell texts
//! from `links`) and only read the app; nothing here is imported by `app` or `layout`.

mod chains;
mod details;
mod links;
mod log;
mod masq;
mod overlays;
mod ports;
mod status;
mod style;

use masqdial_proto::v1::Chain;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;

use crate::app::{App, Geometry, Mode, Panel};
pub use crate::layout::{content_rows, masq_column_at, masq_columns, Areas};
use chains::render_chains;
pub use chains::{chain_lines, chains_fit, ipchains_count};
use details::render_details;
pub use details::{cellular_line, detail_lines};
use links::render_links;
pub use links::sparkline;
pub use log::log_title;
use log::render_log;
use masq::render_masq;
use overlays::{render_confirm, render_help, render_login, render_picker};
use ports::{render_ports_block, render_ports_line};
pub use status::conn_text;
use status::{render_footer, render_title};

/// Terminals at least this wide get the side-by-side layout.
pub const WIDE: u16 = 140;

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

#[cfg(test)]
pub(crate) mod tests;
