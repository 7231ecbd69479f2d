//! The screen's geometry as plain values: the panels, where each sits ([`Areas`]), how many
//! content rows a panel shows, and which masquerade column a header click hits. A leaf: the
//! app state and the renderer both use it; it imports neither.

use ratatui::layout::Rect;

use crate::table::SortKey;

/// Panels that can take the focus (Tab) and be zoomed (`z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// Links with lights and sparkline.
    Links,
    /// Masquerade table.
    Masq,
    /// Chains with counters.
    Chains,
    /// Event log.
    Log,
}

impl Panel {
    /// Every panel, in Tab order.
    pub const ORDER: [Panel; 4] = [Panel::Links, Panel::Masq, Panel::Chains, Panel::Log];

    /// The next (or previous) panel in Tab order.
    pub fn step(self, forward: bool) -> Panel {
        let i = Panel::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        let n = Panel::ORDER.len();
        Panel::ORDER[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// Where each part of the screen goes; `None` for a panel not shown at this size/zoom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    /// Title line.
    pub title: Rect,
    /// Everything between the title and the footer.
    pub body: Rect,
    /// Key line.
    pub footer: Rect,
    /// Links panel.
    pub links: Option<Rect>,
    /// Free-port gauges as a block (wide layout).
    pub ports_block: Option<Rect>,
    /// Free-port gauges on one line (narrow layout).
    pub ports_line: Option<Rect>,
    /// Masquerade table.
    pub masq: Option<Rect>,
    /// Chains.
    pub chains: Option<Rect>,
    /// Event log.
    pub log: Option<Rect>,
}

/// Rows of content inside a panel drawn at `r` (borders and, for tables, the header row
/// taken off).
pub fn content_rows(panel: Panel, r: Rect) -> usize {
    let chrome = match panel {
        Panel::Links | Panel::Masq => 3,
        Panel::Chains | Panel::Log => 2,
    };
    usize::from(r.height.saturating_sub(chrome))
}

/// Masquerade columns for a panel `width` wide, in screen order with their widths.
///
/// Taken by priority until the panel is full: protocol, LAN side and expiry always, then
/// the remote side, state, masquerade port, bytes and packets.
pub fn masq_columns(width: u16) -> Vec<(SortKey, u16)> {
    let all: [(SortKey, u16); 8] = [
        (SortKey::Proto, 5),
        (SortKey::Lan, 21),
        (SortKey::Masq, 5),
        (SortKey::Remote, 21),
        (SortKey::State, 11),
        (SortKey::Bytes, 10),
        (SortKey::Packets, 7),
        (SortKey::Expire, 8),
    ];
    let priority = [0usize, 1, 7, 3, 4, 2, 5, 6];
    let inner = width.saturating_sub(2);
    let mut keep = [false; 8];
    let mut used = 0u16;
    for i in priority {
        let need = all[i].1 + u16::from(used > 0);
        if used + need <= inner || i < 2 || i == 7 {
            keep[i] = true;
            used += need;
        }
    }
    all.iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(c, _)| *c)
        .collect()
}

/// The masquerade column under screen column `x` of a panel drawn at `r` (header clicks).
pub fn masq_column_at(r: Rect, x: u16) -> Option<SortKey> {
    let mut start = r.x + 1;
    for (key, w) in masq_columns(r.width) {
        if x >= start && x < start + w {
            return Some(key);
        }
        start += w + 1;
    }
    None
}
