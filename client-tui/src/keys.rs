//! mtui's keys, one table: the help overlay and the mtui(1) man page both print it.
//! Owns the words only; must not touch the terminal or the app state.

/// Every user's keys: (key, what it does). An empty key continues the line above.
pub const KEYS: &[(&str, &str)] = &[
    ("q / Ctrl-C", "quit"),
    ("?", "this help"),
    ("Tab/S-Tab 1-4", "focus links / masq / chains / events"),
    ("z", "zoom the focused panel"),
    ("↑↓ PgUp PgDn", "move / scroll (g G: top, bottom)"),
    ("G / End", "events: follow new lines again"),
    ("Enter", "details of the selected link"),
    ("mouse", "click: select / focus; wheel: scroll"),
    ("", "click a column title: sort by it"),
    ("s / S", "sort masq by next column / reverse"),
    ("/", "filter masq by text (Esc clears)"),
    ("d", "dial a connection (picker)"),
    ("h", "hang up a link you hold"),
];

/// The admins' keys besides [`KEYS`].
pub const ADMIN_KEYS: &[(&str, &str)] = &[
    ("H", "force hang-up (admin, asks first)"),
    ("Z", "zero chain counters (admin, asks first)"),
];
