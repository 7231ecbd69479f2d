//! Dashboard state and `handle_event`: keys, mouse, ticks and server updates in, [`Command`]s
//! out.
//!
//! No drawing and no I/O here, and no clock reads: the loop sets the time with
//! [`App::set_clock`] before each event, so every transition is testable with fixed times.
//! Where a panel sits on screen (for page sizes, scrolling and mouse clicks) comes from the
//! renderer's pure layout, handed in by the event loop as a [`Geometry`] (so this module
//! imports nothing from the renderer), for the terminal size the loop reported.
//!
//! Key and mouse handling live in `app/input.rs` (more `impl App`), the tests in
//! `app/tests.rs`; neither imports the renderer.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::KeyEventKind;
use masqdial_cli::words::{self, link_state_short};
use masqdial_proto::v1::{
    dial_event, Chain, Connection, ConnectionInfo, DialEvent, FreePortsResponse, LinkState,
    LinkStatus, Role, TrafficSample,
};
use ratatui::layout::Rect;

use crate::event::{Command, Event, Secret, ServerUpdate};
pub use crate::layout::Panel;
use crate::layout::{content_rows, masq_column_at, Areas};
use crate::table::MasqTable;

mod input;

/// Samples kept per link for the sparkline (one per second: three minutes).
pub const HISTORY: usize = 180;
/// Lines kept in the event log.
pub const LOG_LINES: usize = 500;
/// A light stays lit this long after a sample with traffic.
pub const LIGHT_HOLD: Duration = Duration::from_millis(1500);
/// The details view asks the server again this often while it is open.
pub const DETAILS_REFRESH: Duration = Duration::from_secs(3);
/// Lines one wheel step scrolls.
pub const WHEEL_LINES: isize = 3;

/// Connection to the server as the status line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// First attempt (or a retry) in progress.
    Connecting {
        /// Attempt number.
        attempt: u32,
    },
    /// Logged in and subscribed.
    Connected,
    /// Server gone or unreachable; next attempt at `retry_at`.
    Disconnected {
        /// Why, a short plain phrase.
        reason: String,
        /// When the next attempt is made.
        retry_at: Instant,
        /// The session had got through before (the server was lost, not unreachable).
        was_connected: bool,
    },
    /// Waiting for the user to log in.
    LoggedOut,
}

/// Field of the login form that takes the typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginField {
    /// User name.
    User,
    /// Password (masked).
    Password,
}

/// The login form shown inside the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginForm {
    /// User name typed or offered.
    pub user: String,
    /// Password typed so far (redacted in `Debug`, shown masked).
    pub password: Secret,
    /// Field with the cursor.
    pub field: LoginField,
    /// Why a login is needed, or why the last attempt failed.
    pub message: String,
    /// A login request is on its way.
    pub busy: bool,
}

/// Modal state of the keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Navigation keys.
    Normal,
    /// Typing a filter after `/`.
    Filter {
        /// Text typed so far (applied live).
        input: String,
    },
    /// Help overlay (`?`).
    Help,
    /// Choosing a connection to dial.
    DialPicker {
        /// Selected index into [`App::dialable`].
        sel: usize,
    },
    /// Choosing a link to hang up.
    HangupPicker {
        /// Selected index into [`App::hangupable`].
        sel: usize,
        /// Force (admin) hang-up.
        force: bool,
    },
    /// A yes/no question before a command that cannot be undone (`Z`, `H`).
    Confirm {
        /// The question, one sentence.
        question: String,
        /// What `y` sends.
        cmd: Command,
    },
    /// Details of one connection (Enter on a link).
    Details {
        /// Connection name.
        name: String,
        /// First line shown.
        scroll: usize,
    },
    /// The login form.
    Login(LoginForm),
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Progress, state changes.
    Info,
    /// Something went down or was refused.
    Warn,
    /// An error.
    Error,
    /// A `-l` rule's `Packet log:` line (its own colour and `ipchains` label).
    Packet,
}

/// One event-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `HH:MM:SS` (UTC).
    pub time: String,
    /// Severity.
    pub level: Level,
    /// Text.
    pub text: String,
}

/// One link as the dashboard keeps it.
#[derive(Debug, Clone)]
pub struct LinkView {
    /// Last full state.
    pub status: LinkStatus,
    /// Bytes in/out per sample, oldest first.
    pub history: VecDeque<(u64, u64)>,
    /// Last sample with bytes in.
    pub rx_at: Option<Instant>,
    /// Last sample with bytes out.
    pub tx_at: Option<Instant>,
    /// Rate of the last sample, bytes/s in and out.
    pub rate: (u64, u64),
}

/// The renderer's geometry: where the panels sit for a terminal area, and how many lines the
/// chains and a connection's details take at a width. The event loop hands in the renderer's
/// (`ui::GEOMETRY`), so the app, which needs them for page sizes, scrolling and clicks,
/// imports nothing from the renderer.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// The screen layout for the app in an area.
    pub layout: fn(&App, Rect) -> Areas,
    /// Lines of the chains listing at a width.
    pub chain_lines: fn(&[Chain], usize) -> usize,
    /// Lines of a connection's details view.
    pub detail_lines: fn(&App, &str) -> usize,
}

/// The whole dashboard state.
#[derive(Debug)]
pub struct App {
    /// The renderer's geometry (see [`Geometry`]).
    pub geometry: Geometry,
    /// Server address shown in the title.
    pub server: String,
    /// Monotonic time of the current event.
    pub now: Instant,
    /// Wall time of the current event.
    pub wall: SystemTime,
    /// Terminal size (columns, rows) as last reported.
    pub size: (u16, u16),
    /// Server connection.
    pub conn: ConnState,
    /// Logged-in user.
    pub user: String,
    /// Role of the user (admin actions are hidden otherwise).
    pub role: Role,
    /// Connections the user may dial.
    pub allowed: Vec<String>,
    /// Configured connections.
    pub connections: Vec<Connection>,
    /// Links by connection name.
    pub links: BTreeMap<String, LinkView>,
    /// Masquerade table.
    pub table: MasqTable,
    /// True while the WatchMasq snapshot is still arriving.
    pub masq_loading: bool,
    /// Free ports.
    pub free: Option<FreePortsResponse>,
    /// Modems (with their cellular status), from the last poll.
    pub modems: Vec<masqdial_proto::v1::Modem>,
    /// Chains with counters.
    pub chains: Vec<Chain>,
    /// Event log, oldest first.
    pub log: VecDeque<LogLine>,
    /// Focused panel.
    pub focus: Panel,
    /// Focused panel fills the screen.
    pub zoom: bool,
    /// Keyboard mode.
    pub mode: Mode,
    /// Selected row of the masquerade view.
    pub masq_sel: usize,
    /// First masquerade row shown.
    pub masq_offset: usize,
    /// Selected link.
    pub link_sel: usize,
    /// First link row shown.
    pub link_offset: usize,
    /// First chain line shown.
    pub chains_scroll: usize,
    /// Log lines scrolled back from the newest: 0 follows new lines, more is paused.
    pub log_back: usize,
    /// Lines that arrived while the log was paused.
    pub log_new: usize,
    /// Last answer for the details view.
    pub details: Option<ConnectionInfo>,
    /// When the details were last asked for.
    details_at: Option<Instant>,
    /// Draw with colours.
    pub color: bool,
    /// Something changed since the last draw.
    pub dirty: bool,
    /// Recent dial steps: our own Dial stream and WatchLinks both carry them; log each once.
    recent_progress: VecDeque<(String, DialEvent)>,
    /// Reason of the last logged disconnect: retries failing the same way are not re-logged.
    last_disconnect: Option<String>,
}

/// First row to show so that `sel` is visible and, when there are enough rows, the viewport
/// of `height` rows is full (never a half-blank page at the end).
pub fn fit_offset(offset: usize, sel: usize, len: usize, height: usize) -> usize {
    if height == 0 {
        return 0;
    }
    let mut o = offset;
    if sel < o {
        o = sel;
    } else if sel >= o + height {
        o = sel + 1 - height;
    }
    o.min(len.saturating_sub(height))
}

fn step(v: usize, delta: isize, len: usize) -> usize {
    let max = len.saturating_sub(1) as isize;
    (v as isize).saturating_add(delta).clamp(0, max.max(0)) as usize
}

impl App {
    /// A fresh dashboard for `server`, connecting.
    pub fn new(
        server: &str,
        now: Instant,
        wall: SystemTime,
        color: bool,
        geometry: Geometry,
    ) -> App {
        App {
            geometry,
            server: server.to_string(),
            now,
            wall,
            size: (80, 24),
            conn: ConnState::Connecting { attempt: 1 },
            user: String::new(),
            role: Role::Unspecified,
            allowed: Vec::new(),
            connections: Vec::new(),
            links: BTreeMap::new(),
            table: MasqTable::new(),
            masq_loading: false,
            free: None,
            modems: Vec::new(),
            chains: Vec::new(),
            log: VecDeque::new(),
            focus: Panel::Masq,
            zoom: false,
            mode: Mode::Normal,
            masq_sel: 0,
            masq_offset: 0,
            link_sel: 0,
            link_offset: 0,
            chains_scroll: 0,
            log_back: 0,
            log_new: 0,
            details: None,
            details_at: None,
            color,
            dirty: true,
            recent_progress: VecDeque::new(),
            last_disconnect: None,
        }
    }

    /// Set the time of the next event (the loop reads the clocks, the app does not).
    pub fn set_clock(&mut self, now: Instant, wall: SystemTime) {
        if now > self.now {
            self.now = now;
        }
        self.wall = wall;
    }

    /// True for ROLE_ADMIN.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether a tick changes anything on screen (countdowns, lights, uptime, retry timer,
    /// the details refresh).
    pub fn animated(&self) -> bool {
        !self.table.is_empty()
            || !matches!(self.conn, ConnState::Connected | ConnState::LoggedOut)
            || matches!(self.mode, Mode::Details { .. })
            || self.links.values().any(|l| {
                l.status.state != LinkState::Idle as i32
                    && l.status.state != LinkState::Failed as i32
            })
    }

    /// True while the event log follows new lines (not scrolled back).
    pub fn log_following(&self) -> bool {
        self.log_back == 0
    }

    /// Connections the user may dial, in config order.
    pub fn dialable(&self) -> Vec<String> {
        if self.connections.is_empty() {
            return self.allowed.clone();
        }
        self.connections
            .iter()
            .filter(|c| c.allowed || self.is_admin())
            .map(|c| c.name.clone())
            .collect()
    }

    /// Links that are not idle (what a hang-up can act on).
    pub fn hangupable(&self) -> Vec<String> {
        self.links
            .values()
            .filter(|l| {
                l.status.state != LinkState::Idle as i32
                    && l.status.state != LinkState::Failed as i32
                    && l.status.state != LinkState::Unspecified as i32
            })
            .map(|l| l.status.connection.clone())
            .collect()
    }

    /// Name of the selected link.
    pub fn selected_link(&self) -> Option<&str> {
        self.links.keys().nth(self.link_sel).map(String::as_str)
    }

    /// Where each panel is drawn at the current terminal size.
    pub fn areas(&self) -> Areas {
        (self.geometry.layout)(self, Rect::new(0, 0, self.size.0, self.size.1))
    }

    /// Rows of content a panel shows at the current size (its page size).
    pub fn viewport(&self, p: Panel) -> usize {
        let a = self.areas();
        let r = match p {
            Panel::Links => a.links,
            Panel::Masq => a.masq,
            Panel::Chains => a.chains,
            Panel::Log => a.log,
        };
        r.map_or(1, |r| content_rows(p, r)).max(1)
    }

    fn chain_line_count(&self) -> (usize, usize) {
        match self.areas().chains {
            Some(r) => (
                (self.geometry.chain_lines)(&self.chains, usize::from(r.width.saturating_sub(2))),
                content_rows(Panel::Chains, r),
            ),
            None => (0, 1),
        }
    }

    fn time_label(&self) -> String {
        let secs = self
            .wall
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let s = secs % 86_400;
        format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    }

    /// Append a line to the event log. A paused (scrolled back) log keeps its view.
    pub fn push_log(&mut self, level: Level, text: impl Into<String>) {
        let time = self.time_label();
        // Log lines carry modem replies, peer messages and packet-log text: one line of
        // terminal-safe text each (the one escaping mclient uses too).
        let text: String = text.into();
        let text = match masqdial_cli::safe::line(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(o) => o,
        };
        self.log.push_back(LogLine { time, level, text });
        if self.log_back > 0 {
            self.log_back += 1;
            self.log_new += 1;
        }
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
    }

    /// Forget everything the server told us (never show stale numbers).
    fn drop_server_data(&mut self) {
        self.links.clear();
        self.table.clear();
        self.masq_loading = false;
        self.free = None;
        self.chains.clear();
        self.connections.clear();
        self.details = None;
        if matches!(
            self.mode,
            Mode::DialPicker { .. }
                | Mode::HangupPicker { .. }
                | Mode::Confirm { .. }
                | Mode::Details { .. }
        ) {
            self.mode = Mode::Normal;
        }
    }

    /// Apply one event; returns what the outside world should do.
    pub fn handle_event(&mut self, ev: Event) -> Vec<Command> {
        let mut out = Vec::new();
        let user_input = matches!(ev, Event::Key(_) | Event::Mouse(_) | Event::Resize { .. });
        match ev {
            Event::Key(k) => {
                if k.kind != KeyEventKind::Release {
                    self.handle_key(k, &mut out);
                }
            }
            Event::Mouse(m) => self.handle_mouse(m),
            Event::Tick => {
                if let Mode::Details { name, .. } = &self.mode {
                    let due = self
                        .details_at
                        .is_none_or(|t| self.now.saturating_duration_since(t) >= DETAILS_REFRESH);
                    if due && matches!(self.conn, ConnState::Connected) {
                        out.push(Command::Details(name.clone()));
                        self.details_at = Some(self.now);
                    }
                }
            }
            Event::Resize { width, height } => self.size = (width, height),
            Event::Connecting { attempt } => {
                if !matches!(self.conn, ConnState::LoggedOut) || attempt > 1 {
                    self.conn = ConnState::Connecting { attempt };
                }
            }
            Event::Connected {
                user,
                role,
                allowed,
            } => {
                let role_name = role_name(role);
                self.push_log(
                    Level::Info,
                    format!("connected to {} as {user} ({role_name})", self.server),
                );
                self.last_disconnect = None;
                self.user = user;
                self.role = role;
                self.allowed = allowed;
                self.conn = ConnState::Connected;
                if matches!(self.mode, Mode::Login(_)) {
                    self.mode = Mode::Normal;
                }
            }
            Event::Disconnected {
                reason,
                retry_in,
                was_connected,
            } => {
                let text = if was_connected {
                    format!("lost the server: {reason}")
                } else {
                    format!("cannot reach the server: {reason}")
                };
                if self.last_disconnect.as_deref() != Some(text.as_str()) {
                    self.push_log(Level::Error, text.clone());
                    self.last_disconnect = Some(text);
                }
                if let Mode::Login(f) = &mut self.mode {
                    // A login on its way waits for the server: say so in the form.
                    f.message = format!("Cannot reach the server ({reason}); trying again…");
                }
                self.conn = ConnState::Disconnected {
                    reason,
                    retry_at: self.now + retry_in,
                    was_connected,
                };
                self.drop_server_data();
            }
            Event::LoginNeeded { user, reason } => {
                self.push_log(Level::Warn, reason.clone());
                self.conn = ConnState::LoggedOut;
                self.last_disconnect = None;
                self.drop_server_data();
                let user = match &self.mode {
                    Mode::Login(f) if !f.user.is_empty() => f.user.clone(),
                    _ => user,
                };
                let field = if user.is_empty() {
                    LoginField::User
                } else {
                    LoginField::Password
                };
                self.mode = Mode::Login(LoginForm {
                    user,
                    password: Secret::default(),
                    field,
                    message: reason,
                    busy: false,
                });
            }
            Event::Server(u) => self.handle_update(u),
        }
        self.table.refresh();
        self.clamp_selection();
        self.fix_scroll();
        if user_input {
            self.fix_details_scroll();
        }
        self.dirty = true;
        out
    }

    fn clamp_selection(&mut self) {
        let n = self.table.visible_len();
        if self.masq_sel >= n {
            self.masq_sel = n.saturating_sub(1);
        }
        let l = self.links.len();
        if self.link_sel >= l {
            self.link_sel = l.saturating_sub(1);
        }
        let picker_len = match self.mode {
            Mode::DialPicker { .. } => Some(self.dialable().len()),
            Mode::HangupPicker { .. } => Some(self.hangupable().len()),
            _ => None,
        };
        if let Some(len) = picker_len {
            match &mut self.mode {
                Mode::DialPicker { sel } | Mode::HangupPicker { sel, .. } => {
                    *sel = (*sel).min(len.saturating_sub(1));
                }
                _ => {}
            }
        }
    }

    /// Keep every scroll position inside its content and every viewport full.
    fn fix_scroll(&mut self) {
        let a = self.areas();
        if let Some(r) = a.masq {
            let h = content_rows(Panel::Masq, r);
            self.masq_offset =
                fit_offset(self.masq_offset, self.masq_sel, self.table.visible_len(), h);
        }
        if let Some(r) = a.links {
            let h = content_rows(Panel::Links, r);
            self.link_offset = fit_offset(self.link_offset, self.link_sel, self.links.len(), h);
        }
        if a.chains.is_some() {
            let (lines, h) = self.chain_line_count();
            self.chains_scroll = self.chains_scroll.min(lines.saturating_sub(h));
        }
        if let Some(r) = a.log {
            let h = content_rows(Panel::Log, r);
            self.log_back = self.log_back.min(self.log.len().saturating_sub(h));
        }
        if self.log_back == 0 {
            self.log_new = 0;
        }
    }

    /// Keep the details view's scroll inside its text (after keys, wheel and resizes only:
    /// the text walks the whole masquerade table for the per-host bytes).
    fn fix_details_scroll(&mut self) {
        let body = self.areas().body;
        if let Mode::Details { name, scroll } = &self.mode {
            let lines = (self.geometry.detail_lines)(self, name);
            let h = usize::from(body.height.saturating_sub(2));
            let max = lines.saturating_sub(h);
            if *scroll > max {
                self.mode = Mode::Details {
                    name: name.clone(),
                    scroll: max,
                };
            }
        }
    }

    fn handle_update(&mut self, u: ServerUpdate) {
        match u {
            ServerUpdate::Connections(c) => self.connections = c,
            ServerUpdate::Link(status) => self.apply_link(status),
            ServerUpdate::Sample(s) => self.apply_sample(s),
            ServerUpdate::Progress { connection, event } => {
                let key = (connection, event);
                if !self.recent_progress.contains(&key) {
                    let (level, text) = describe_dial(&key.0, &key.1);
                    self.push_log(level, text);
                    self.recent_progress.push_back(key);
                    if self.recent_progress.len() > 32 {
                        self.recent_progress.pop_front();
                    }
                }
            }
            ServerUpdate::Budget(b) => {
                let (level, what) = if b.hang_up {
                    (Level::Error, "budget hang-up")
                } else {
                    (Level::Warn, "budget warning")
                };
                self.push_log(level, format!("{}: {what}: {}", b.connection, b.message));
            }
            ServerUpdate::PacketLog(line) => {
                self.push_log(Level::Packet, format!("ipchains: {line}"))
            }
            ServerUpdate::MasqReset => {
                self.table.clear();
                self.masq_loading = true;
            }
            ServerUpdate::MasqBatch { entries, at } => self.table.upsert(entries, at),
            ServerUpdate::MasqDone { total: _, free } => {
                self.masq_loading = false;
                if free.is_some() {
                    self.free = free;
                }
            }
            ServerUpdate::MasqDelta { delta, at } => {
                self.table.remove(&delta.removed);
                self.table.upsert(delta.upserted, at);
                if delta.free.is_some() {
                    self.free = delta.free;
                }
            }
            ServerUpdate::FreePorts(f) => self.free = Some(f),
            ServerUpdate::Modems(m) => self.modems = m,
            ServerUpdate::Chains(c) => self.chains = c,
            ServerUpdate::Details(info) => {
                let name = info.connection.as_ref().map(|c| c.name.as_str());
                if let Mode::Details { name: open, .. } = &self.mode {
                    if name == Some(open.as_str()) {
                        self.details = Some(*info);
                    }
                }
            }
            ServerUpdate::HangupDone {
                connection,
                dropped,
                remaining,
            } => {
                if dropped {
                    self.push_log(Level::Info, format!("{connection}: hanging up"));
                } else {
                    self.push_log(
                        Level::Info,
                        format!(
                            "{connection}: released; still held by {}",
                            remaining.join(", ")
                        ),
                    );
                }
            }
            ServerUpdate::Info(t) => self.push_log(Level::Info, t),
            ServerUpdate::Error(t) => self.push_log(Level::Error, t),
        }
    }

    fn apply_link(&mut self, status: LinkStatus) {
        let name = status.connection.clone();
        let old = self.links.get(&name).map(|l| l.status.state);
        if let Some(old) = old {
            if old != status.state {
                let up = LinkState::Up as i32;
                if status.state == up {
                    self.push_log(
                        Level::Info,
                        format!(
                            "{name}: link UP {} peer {}",
                            status.local_address, status.peer_address
                        ),
                    );
                } else if status.state == LinkState::Failed as i32 {
                    let why = status
                        .last_failure
                        .as_ref()
                        .map(|f| format!("{}: {}", words::failure_name(f.kind), f.message))
                        .unwrap_or_default();
                    self.push_log(Level::Error, format!("{name}: link failed {why}"));
                } else if old == up {
                    // The server's reason, e.g. who forced the hang-up, when it gives one.
                    let why = status
                        .last_failure
                        .as_ref()
                        .filter(|f| !f.message.is_empty())
                        .map(|f| format!(": {}", f.message))
                        .unwrap_or_default();
                    self.push_log(
                        Level::Warn,
                        format!(
                            "{name}: link DOWN ({}){why}",
                            link_state_short(status.state)
                        ),
                    );
                } else if status.state == LinkState::Idle as i32 {
                    self.push_log(Level::Info, format!("{name}: idle"));
                }
            }
        }
        let view = self.links.entry(name).or_insert_with(|| LinkView {
            status: LinkStatus::default(),
            history: VecDeque::new(),
            rx_at: None,
            tx_at: None,
            rate: (0, 0),
        });
        if status.state != LinkState::Up as i32 {
            view.rate = (0, 0);
        }
        view.status = status;
    }

    fn apply_sample(&mut self, s: TrafficSample) {
        let now = self.now;
        let Some(view) = self.links.get_mut(&s.connection) else {
            return;
        };
        view.history.push_back((s.bytes_in, s.bytes_out));
        while view.history.len() > HISTORY {
            view.history.pop_front();
        }
        if s.bytes_in > 0 || s.packets_in > 0 {
            view.rx_at = Some(now);
        }
        if s.bytes_out > 0 || s.packets_out > 0 {
            view.tx_at = Some(now);
        }
        let period = u64::from(s.period_ms.max(1));
        view.rate = (s.bytes_in * 1000 / period, s.bytes_out * 1000 / period);
        view.status.bytes_in = view.status.bytes_in.saturating_add(s.bytes_in);
        view.status.packets_in = view.status.packets_in.saturating_add(s.packets_in);
        view.status.packets_out = view.status.packets_out.saturating_add(s.packets_out);
        view.status.bytes_out = view.status.bytes_out.saturating_add(s.bytes_out);
    }
}

/// Lower-case name of a role.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::User => "user",
        Role::Unspecified => "?",
    }
}

/// One log line for a dial step: the client vocabulary's sentence (its first line; the
/// refused options are in the details panel), at a level.
pub fn describe_dial(conn: &str, ev: &DialEvent) -> (Level, String) {
    use dial_event::Event as E;
    let level = match &ev.event {
        Some(E::Failed(_)) => Level::Error,
        Some(E::Redial(_)) => Level::Warn,
        _ => Level::Info,
    };
    let (text, _) = words::dial_event(ev);
    let text = text.lines().next().unwrap_or_default();
    (level, format!("{conn}: {text}"))
}

#[cfg(test)]
mod tests;
