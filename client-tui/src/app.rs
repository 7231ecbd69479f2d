//! Dashboard state and `handle_event`: keys, mouse, ticks and server updates in, [`Command`]s
//! out.
//!
//! No drawing and no I/O here, and no clock reads: the loop sets the time with
//! [`App::set_clock`] before each event, so every transition is testable with fixed times.
//! Where a panel sits on screen (for page sizes, scrolling and mouse clicks) comes from the
//! renderer's pure layout, handed in by the event loop as a [`Geometry`] (so this module
//! imports nothing from the renderer), for the terminal size the loop reported.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use masqdial_proto::v1::{
    dial_event, Chain, Connection, ConnectionInfo, DialEvent, FailureKind, FreePortsResponse,
    LinkState, LinkStatus, Role, TrafficSample,
};
use ratatui::layout::{Position, Rect};

use crate::event::{Command, Event, Secret, ServerUpdate};
pub use crate::layout::Panel;
use crate::layout::{content_rows, masq_column_at, Areas};
use crate::table::MasqTable;

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
        self.log.push_back(LogLine {
            time,
            level,
            text: text.into(),
        });
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
                        .map(|f| format!("{}: {}", failure_name(f.kind), f.message))
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
                        format!("{name}: link DOWN ({}){why}", state_name(status.state)),
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

    fn handle_key(&mut self, k: KeyEvent, out: &mut Vec<Command>) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('q')) {
            out.push(Command::Quit);
            return;
        }
        match self.mode.clone() {
            Mode::Normal => self.key_normal(k, out),
            Mode::Help => {
                // Any key closes the help.
                self.mode = Mode::Normal;
                if k.code == KeyCode::Char('q') {
                    out.push(Command::Quit);
                }
            }
            Mode::Filter { mut input } => match k.code {
                KeyCode::Enter => self.mode = Mode::Normal,
                KeyCode::Esc => {
                    self.table.set_filter("");
                    self.mode = Mode::Normal;
                }
                KeyCode::Backspace => {
                    input.pop();
                    self.table.set_filter(&input);
                    self.mode = Mode::Filter { input };
                }
                KeyCode::Char(c) if !ctrl => {
                    input.push(c);
                    self.table.set_filter(&input);
                    self.masq_sel = 0;
                    self.mode = Mode::Filter { input };
                }
                _ => {}
            },
            Mode::DialPicker { sel } => {
                let items = self.dialable();
                match k.code {
                    KeyCode::Esc | KeyCode::Char('q') => self.mode = Mode::Normal,
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.mode = Mode::DialPicker {
                            sel: sel.saturating_sub(1),
                        }
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.mode = Mode::DialPicker {
                            sel: (sel + 1).min(items.len().saturating_sub(1)),
                        }
                    }
                    KeyCode::Enter => {
                        if let Some(name) = items.get(sel) {
                            self.push_log(Level::Info, format!("{name}: dial requested"));
                            out.push(Command::Dial(name.clone()));
                        }
                        self.mode = Mode::Normal;
                    }
                    _ => {}
                }
            }
            Mode::HangupPicker { sel, force } => {
                let items = self.hangupable();
                match k.code {
                    KeyCode::Esc | KeyCode::Char('q') => self.mode = Mode::Normal,
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.mode = Mode::HangupPicker {
                            sel: sel.saturating_sub(1),
                            force,
                        }
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.mode = Mode::HangupPicker {
                            sel: (sel + 1).min(items.len().saturating_sub(1)),
                            force,
                        }
                    }
                    KeyCode::Enter => {
                        self.mode = Mode::Normal;
                        if let Some(name) = items.get(sel) {
                            let cmd = Command::Hangup {
                                name: name.clone(),
                                force,
                            };
                            if force {
                                self.mode = Mode::Confirm {
                                    question: self.force_question(name),
                                    cmd,
                                };
                            } else {
                                out.push(cmd);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Mode::Confirm { cmd, .. } => match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.mode = Mode::Normal;
                    if matches!(self.conn, ConnState::Connected) {
                        out.push(cmd);
                    }
                }
                // Anything else, Enter included, keeps things as they are.
                KeyCode::Char('n')
                | KeyCode::Char('N')
                | KeyCode::Char('q')
                | KeyCode::Esc
                | KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    self.push_log(Level::Info, "cancelled; nothing was changed");
                }
                _ => {}
            },
            Mode::Details { name, scroll } => match k.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                    self.mode = Mode::Normal;
                    self.details = None;
                    self.details_at = None;
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.mode = Mode::Details {
                        name,
                        scroll: scroll.saturating_sub(1),
                    }
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.mode = Mode::Details {
                        name,
                        scroll: scroll + 1,
                    }
                }
                KeyCode::PageUp => {
                    self.mode = Mode::Details {
                        name,
                        scroll: scroll.saturating_sub(10),
                    }
                }
                KeyCode::PageDown => {
                    self.mode = Mode::Details {
                        name,
                        scroll: scroll + 10,
                    }
                }
                KeyCode::Home | KeyCode::Char('g') => self.mode = Mode::Details { name, scroll: 0 },
                KeyCode::End | KeyCode::Char('G') => {
                    self.mode = Mode::Details {
                        name,
                        scroll: usize::MAX / 2,
                    }
                }
                _ => {}
            },
            Mode::Login(mut f) => {
                match k.code {
                    KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                        f.field = match f.field {
                            LoginField::User => LoginField::Password,
                            LoginField::Password => LoginField::User,
                        };
                    }
                    KeyCode::Esc => f.password = Secret::default(),
                    KeyCode::Backspace => match f.field {
                        LoginField::User => {
                            f.user.pop();
                        }
                        LoginField::Password => f.password.pop(),
                    },
                    KeyCode::Enter if !f.busy => {
                        if f.user.trim().is_empty() {
                            f.field = LoginField::User;
                            f.message = "type your user name".into();
                        } else if f.field == LoginField::User && f.password.is_empty() {
                            f.field = LoginField::Password;
                        } else {
                            out.push(Command::Login {
                                user: f.user.trim().to_string(),
                                password: std::mem::take(&mut f.password),
                            });
                            f.busy = true;
                            f.message = "logging in…".into();
                        }
                    }
                    KeyCode::Char(c) if !ctrl && !f.busy => match f.field {
                        LoginField::User => f.user.push(c),
                        LoginField::Password => f.password.push(c),
                    },
                    _ => {}
                }
                self.mode = Mode::Login(f);
            }
        }
    }

    fn force_question(&self, name: &str) -> String {
        let holders: Vec<String> = self
            .links
            .get(name)
            .map(|l| {
                l.status
                    .holders
                    .iter()
                    .map(|h| format!("{}@{}", h.user, h.host))
                    .collect()
            })
            .unwrap_or_default();
        if holders.is_empty() {
            format!("Force hang-up of {name}? The link drops now.")
        } else {
            format!(
                "Force hang-up of {name}? The link drops for every holder: {}.",
                holders.join(", ")
            )
        }
    }

    fn key_normal(&mut self, k: KeyEvent, out: &mut Vec<Command>) {
        let admin = self.is_admin();
        let connected = matches!(self.conn, ConnState::Connected);
        match k.code {
            KeyCode::Char('q') => out.push(Command::Quit),
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Tab => self.focus = self.focus.step(true),
            KeyCode::BackTab => self.focus = self.focus.step(false),
            KeyCode::Char('1') => self.focus = Panel::Links,
            KeyCode::Char('2') => self.focus = Panel::Masq,
            KeyCode::Char('3') => self.focus = Panel::Chains,
            KeyCode::Char('4') => self.focus = Panel::Log,
            KeyCode::Char('z') => self.zoom = !self.zoom,
            KeyCode::Esc => {
                self.zoom = false;
                self.table.set_filter("");
            }
            KeyCode::Char('/') => {
                self.focus = Panel::Masq;
                self.mode = Mode::Filter {
                    input: self.table.filter().to_string(),
                };
            }
            KeyCode::Char('s') => {
                let (key, desc) = self.table.sort();
                self.table.set_sort(key.next(), desc);
            }
            KeyCode::Char('S') => {
                let (key, desc) = self.table.sort();
                self.table.set_sort(key, !desc);
            }
            KeyCode::Char('d') if connected => {
                if self.dialable().is_empty() {
                    self.push_log(Level::Warn, "no connection you may dial");
                } else {
                    self.mode = Mode::DialPicker { sel: 0 };
                }
            }
            KeyCode::Char('h') => self.open_hangup(false),
            KeyCode::Char('H') if admin => self.open_hangup(true),
            KeyCode::Char('Z') if admin && connected => {
                self.mode = Mode::Confirm {
                    question: "Zero the packet and byte counters of every chain?".into(),
                    cmd: Command::ZeroCounters,
                };
            }
            KeyCode::Enter if self.focus == Panel::Links => {
                if let Some(name) = self.selected_link().map(str::to_string) {
                    if connected {
                        out.push(Command::Details(name.clone()));
                        self.details_at = Some(self.now);
                    }
                    self.details = None;
                    self.mode = Mode::Details { name, scroll: 0 };
                }
            }
            KeyCode::Up | KeyCode::Char('k') => self.scroll(self.focus, -1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll(self.focus, 1),
            KeyCode::PageUp => self.page(self.focus, -1),
            KeyCode::PageDown => self.page(self.focus, 1),
            KeyCode::Home | KeyCode::Char('g') => self.scroll(self.focus, isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.scroll(self.focus, isize::MAX / 2),
            _ => {}
        }
    }

    fn open_hangup(&mut self, force: bool) {
        if !matches!(self.conn, ConnState::Connected) {
            return;
        }
        let items = self.hangupable();
        if items.is_empty() {
            self.push_log(Level::Warn, "no link to hang up");
            return;
        }
        // Preselect the link selected in the links panel when it is in the list.
        let selected = self.selected_link().map(str::to_string);
        let sel = selected
            .and_then(|n| items.iter().position(|i| *i == n))
            .unwrap_or(0);
        self.mode = Mode::HangupPicker { sel, force };
    }

    /// Move the selection (tables) or the view (chains, events) of `panel` by `delta` lines;
    /// positive is down (towards newer lines in the event log).
    fn scroll(&mut self, panel: Panel, delta: isize) {
        match panel {
            Panel::Masq => self.masq_sel = step(self.masq_sel, delta, self.table.visible_len()),
            Panel::Links => self.link_sel = step(self.link_sel, delta, self.links.len()),
            Panel::Chains => {
                let (lines, h) = self.chain_line_count();
                let max = lines.saturating_sub(h);
                self.chains_scroll = step(self.chains_scroll, delta, max + 1);
            }
            Panel::Log => {
                let h = self.viewport(Panel::Log);
                let max = self.log.len().saturating_sub(h);
                self.log_back = step(self.log_back, -delta, max + 1);
            }
        }
    }

    /// Page up (`dir` -1) or down (+1): the view moves by a whole viewport and the selection
    /// with it, so the rows shown are always a full page.
    fn page(&mut self, panel: Panel, dir: isize) {
        let h = self.viewport(panel) as isize;
        match panel {
            Panel::Masq => {
                let len = self.table.visible_len();
                self.masq_offset = step(self.masq_offset, dir * h, len);
                self.masq_sel = step(self.masq_sel, dir * h, len);
            }
            Panel::Links => {
                let len = self.links.len();
                self.link_offset = step(self.link_offset, dir * h, len);
                self.link_sel = step(self.link_sel, dir * h, len);
            }
            _ => self.scroll(panel, dir * h),
        }
    }

    fn handle_mouse(&mut self, m: MouseEvent) {
        let at = Position {
            x: m.column,
            y: m.row,
        };
        if let Mode::Details { name, scroll } = &self.mode {
            let scroll = match m.kind {
                MouseEventKind::ScrollUp => scroll.saturating_sub(WHEEL_LINES as usize),
                MouseEventKind::ScrollDown => scroll + WHEEL_LINES as usize,
                _ => return,
            };
            self.mode = Mode::Details {
                name: name.clone(),
                scroll,
            };
            return;
        }
        if !matches!(self.mode, Mode::Normal) {
            return;
        }
        let a = self.areas();
        let hit = [
            (Panel::Links, a.links),
            (Panel::Masq, a.masq),
            (Panel::Chains, a.chains),
            (Panel::Log, a.log),
        ]
        .into_iter()
        .find_map(|(p, r)| r.filter(|r| r.contains(at)).map(|r| (p, r)));
        let Some((panel, r)) = hit else { return };
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                self.focus = panel;
                // Inside the border, below the header row of the tables.
                let first = r.y + 2;
                let last = r.y + r.height.saturating_sub(1);
                match panel {
                    Panel::Masq if at.y == r.y + 1 => {
                        if let Some(key) = masq_column_at(r, at.x) {
                            let (cur, desc) = self.table.sort();
                            let desc = if cur == key { !desc } else { false };
                            self.table.set_sort(key, desc);
                        }
                    }
                    Panel::Masq if at.y >= first && at.y < last => {
                        let i = self.masq_offset + usize::from(at.y - first);
                        if i < self.table.visible_len() {
                            self.masq_sel = i;
                        }
                    }
                    Panel::Links if at.y >= first && at.y < last => {
                        let i = self.link_offset + usize::from(at.y - first);
                        if i < self.links.len() {
                            self.link_sel = i;
                        }
                    }
                    _ => {}
                }
            }
            MouseEventKind::ScrollUp => self.scroll(panel, -WHEEL_LINES),
            MouseEventKind::ScrollDown => self.scroll(panel, WHEEL_LINES),
            _ => {}
        }
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

/// Short upper-case name of a link state.
pub fn state_name(s: i32) -> &'static str {
    match LinkState::try_from(s) {
        Ok(LinkState::Idle) => "IDLE",
        Ok(LinkState::Dialing) => "DIALING",
        Ok(LinkState::Connected) => "CONNECT",
        Ok(LinkState::Authenticating) => "AUTH",
        Ok(LinkState::Up) => "UP",
        Ok(LinkState::HangingUp) => "HANGUP",
        Ok(LinkState::Failed) => "FAILED",
        _ => "?",
    }
}

/// Upper-case name of a failure kind.
pub fn failure_name(k: i32) -> &'static str {
    match FailureKind::try_from(k) {
        Ok(FailureKind::NoModem) => "NO MODEM",
        Ok(FailureKind::ModemError) => "MODEM ERROR",
        Ok(FailureKind::NoDialtone) => "NO DIALTONE",
        Ok(FailureKind::Busy) => "BUSY",
        Ok(FailureKind::NoAnswer) => "NO ANSWER",
        Ok(FailureKind::NoCarrier) => "NO CARRIER",
        Ok(FailureKind::Timeout) => "TIMEOUT",
        Ok(FailureKind::LcpFailed) => "LCP FAILED",
        Ok(FailureKind::AuthFailed) => "AUTH FAILED",
        Ok(FailureKind::IpcpFailed) => "IPCP FAILED",
        Ok(FailureKind::CarrierLost) => "CARRIER LOST",
        Ok(FailureKind::EchoTimeout) => "ECHO TIMEOUT",
        Ok(FailureKind::Cancelled) => "CANCELLED",
        Ok(FailureKind::IdleTimeout) => "IDLE TIMEOUT",
        Ok(FailureKind::MaxConnectTime) => "MAX CONNECT TIME",
        _ => "FAILED",
    }
}

/// One log line for a dial step.
pub fn describe_dial(conn: &str, ev: &DialEvent) -> (Level, String) {
    use dial_event::Event as E;
    let (level, text) = match &ev.event {
        Some(E::ModemInit(m)) => (Level::Info, format!("init {} ({})", m.modem, m.device)),
        Some(E::Dialing(d)) => (
            Level::Info,
            format!(
                "dialing {} (number {}/{}, attempt {}/{})",
                d.number, d.index, d.count, d.attempt, d.attempts
            ),
        ),
        Some(E::Connected(c)) => (Level::Info, format!("CONNECT {}{}", c.speed_bps, c.extras)),
        Some(E::LcpUp(l)) => (
            Level::Info,
            format!(
                "LCP up (peer MRU {}, auth {})",
                l.peer_mru,
                if l.auth_protocol.is_empty() {
                    "none"
                } else {
                    &l.auth_protocol
                }
            ),
        ),
        Some(E::AuthOk(a)) => (Level::Info, format!("authenticated ({})", a.protocol)),
        Some(E::IpcpUp(i)) => (
            Level::Info,
            format!("IPCP up: {} peer {}", i.local_address, i.peer_address),
        ),
        Some(E::Up(_)) => (Level::Info, "dial complete, link up".to_string()),
        Some(E::Failed(f)) => (
            Level::Error,
            format!("dial FAILED: {} {}", failure_name(f.kind), f.message),
        ),
        Some(E::Joined(j)) => (
            Level::Info,
            format!(
                "joined ({}, holders {})",
                state_name(j.state),
                j.holders.join(", ")
            ),
        ),
        Some(E::Info(t)) => (Level::Info, t.clone()),
        Some(E::Redial(r)) => (
            Level::Warn,
            format!(
                "redial attempt {} in {}s",
                r.next_attempt,
                r.delay.as_ref().map(|d| d.seconds).unwrap_or(0)
            ),
        ),
        None => (Level::Info, "progress".to_string()),
    };
    (level, format!("{conn}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::SortKey;
    use masqdial_proto::v1::{MasqDelta, MasqEntry, Protocol};

    fn key(c: KeyCode) -> Event {
        Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    fn connected(role: Role) -> App {
        let t0 = Instant::now();
        let mut app = App::new(
            "http://gw:224",
            t0,
            UNIX_EPOCH + Duration::from_secs(3600),
            true,
            crate::ui::GEOMETRY,
        );
        app.handle_event(Event::Connected {
            user: "alice".into(),
            role,
            allowed: vec!["isp1".into()],
        });
        app.handle_event(Event::Server(ServerUpdate::Connections(vec![
            Connection {
                name: "isp1".into(),
                allowed: true,
                ..Default::default()
            },
            Connection {
                name: "isp2".into(),
                allowed: false,
                ..Default::default()
            },
        ])));
        app
    }

    fn up_link(name: &str) -> LinkStatus {
        LinkStatus {
            connection: name.into(),
            state: LinkState::Up as i32,
            local_address: "10.0.0.5".into(),
            peer_address: "10.0.0.1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn q_and_ctrl_c_quit() {
        let mut app = connected(Role::User);
        assert_eq!(
            app.handle_event(key(KeyCode::Char('q'))),
            vec![Command::Quit]
        );
        let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(app.handle_event(ctrl_c), vec![Command::Quit]);
    }

    #[test]
    fn dial_picker_lists_allowed_and_dials() {
        let mut app = connected(Role::User);
        app.handle_event(key(KeyCode::Char('d')));
        assert_eq!(app.mode, Mode::DialPicker { sel: 0 });
        assert_eq!(app.dialable(), vec!["isp1".to_string()]);
        // Down cannot move past the only allowed entry.
        app.handle_event(key(KeyCode::Down));
        assert_eq!(app.mode, Mode::DialPicker { sel: 0 });
        let cmds = app.handle_event(key(KeyCode::Enter));
        assert_eq!(cmds, vec![Command::Dial("isp1".into())]);
        assert_eq!(app.mode, Mode::Normal);
        // Admins may dial everything.
        let mut admin = connected(Role::Admin);
        assert_eq!(admin.dialable().len(), 2);
        admin.handle_event(key(KeyCode::Char('d')));
        admin.handle_event(key(KeyCode::Char('j')));
        assert_eq!(
            admin.handle_event(key(KeyCode::Enter)),
            vec![Command::Dial("isp2".into())]
        );
    }

    #[test]
    fn hangup_and_admin_only_keys() {
        let mut app = connected(Role::User);
        app.handle_event(key(KeyCode::Char('h')));
        assert_eq!(app.mode, Mode::Normal, "nothing to hang up");
        app.handle_event(Event::Server(ServerUpdate::Link(up_link("isp1"))));
        app.handle_event(key(KeyCode::Char('h')));
        assert_eq!(
            app.mode,
            Mode::HangupPicker {
                sel: 0,
                force: false
            }
        );
        assert_eq!(
            app.handle_event(key(KeyCode::Enter)),
            vec![Command::Hangup {
                name: "isp1".into(),
                force: false
            }]
        );
        // Users: H and Z do nothing.
        app.handle_event(key(KeyCode::Char('H')));
        assert_eq!(app.mode, Mode::Normal);
        assert!(app.handle_event(key(KeyCode::Char('Z'))).is_empty());
        // Admin: both work.
        let mut admin = connected(Role::Admin);
        admin.handle_event(Event::Server(ServerUpdate::Link(up_link("isp1"))));
        admin.handle_event(key(KeyCode::Char('H')));
        assert_eq!(
            admin.mode,
            Mode::HangupPicker {
                sel: 0,
                force: true
            }
        );
        admin.handle_event(key(KeyCode::Esc));
        assert_eq!(admin.mode, Mode::Normal);
        // Z asks first (see confirm_before_zero_and_force_hangup).
        assert!(admin.handle_event(key(KeyCode::Char('Z'))).is_empty());
        assert!(matches!(admin.mode, Mode::Confirm { .. }));
    }

    #[test]
    fn focus_zoom_help_sort() {
        let mut app = connected(Role::User);
        assert_eq!(app.focus, Panel::Masq);
        app.handle_event(key(KeyCode::Tab));
        assert_eq!(app.focus, Panel::Chains);
        app.handle_event(key(KeyCode::BackTab));
        app.handle_event(key(KeyCode::BackTab));
        assert_eq!(app.focus, Panel::Links);
        app.handle_event(key(KeyCode::Char('z')));
        assert!(app.zoom);
        app.handle_event(key(KeyCode::Char('?')));
        assert_eq!(app.mode, Mode::Help);
        app.handle_event(key(KeyCode::Char('x')));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.table.sort(), (SortKey::Expire, false));
        app.handle_event(key(KeyCode::Char('s')));
        assert_eq!(app.table.sort(), (SortKey::Proto, false));
        app.handle_event(key(KeyCode::Char('S')));
        assert_eq!(app.table.sort(), (SortKey::Proto, true));
    }

    fn masq(id: u64, lan: &str, expire: u64) -> MasqEntry {
        MasqEntry {
            id,
            protocol: Protocol::Tcp as i32,
            lan_address: lan.into(),
            lan_port: 1025,
            masq_port: 61000 + id as u32,
            remote_address: "203.0.113.9".into(),
            remote_port: 443,
            expire_centis: expire,
            state: "ESTABLISHED".into(),
            ..Default::default()
        }
    }

    #[test]
    fn filter_typing_applies_live_and_esc_clears() {
        let mut app = connected(Role::User);
        let at = app.now;
        app.handle_event(Event::Server(ServerUpdate::MasqReset));
        app.handle_event(Event::Server(ServerUpdate::MasqBatch {
            entries: vec![masq(1, "192.168.1.10", 500), masq(2, "192.168.1.20", 600)],
            at,
        }));
        assert_eq!(app.table.visible_len(), 2);
        app.handle_event(key(KeyCode::Char('/')));
        for c in ".20".chars() {
            app.handle_event(key(KeyCode::Char(c)));
        }
        assert_eq!(app.table.visible_len(), 1);
        assert_eq!(
            app.mode,
            Mode::Filter {
                input: ".20".into()
            }
        );
        app.handle_event(key(KeyCode::Backspace));
        app.handle_event(key(KeyCode::Backspace));
        assert_eq!(app.table.filter(), ".");
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(app.mode, Mode::Normal);
        app.handle_event(key(KeyCode::Esc));
        assert_eq!(app.table.filter(), "");
    }

    #[test]
    fn deltas_and_disconnect_drop_stale_data() {
        let mut app = connected(Role::User);
        let at = app.now;
        app.handle_event(Event::Server(ServerUpdate::MasqBatch {
            entries: vec![masq(1, "192.168.1.10", 500), masq(2, "192.168.1.20", 600)],
            at,
        }));
        app.handle_event(Event::Server(ServerUpdate::MasqDelta {
            delta: MasqDelta {
                upserted: vec![masq(3, "192.168.1.30", 100)],
                removed: vec![1],
                free: Some(FreePortsResponse {
                    tcp: 4095,
                    tcp_total: 4096,
                    ..Default::default()
                }),
            },
            at,
        }));
        assert_eq!(app.table.len(), 2);
        assert_eq!(app.table.id_at(0), Some(3));
        assert_eq!(app.free.as_ref().map(|f| f.tcp), Some(4095));
        app.masq_sel = 1;
        app.handle_event(Event::Server(ServerUpdate::Link(up_link("isp1"))));
        app.handle_event(Event::Disconnected {
            reason: "connection refused".into(),
            retry_in: Duration::from_secs(2),
            was_connected: true,
        });
        assert!(app.table.is_empty());
        assert!(app.links.is_empty());
        assert!(app.free.is_none());
        assert_eq!(app.masq_sel, 0);
        assert!(matches!(app.conn, ConnState::Disconnected { .. }));
        assert!(app
            .log
            .iter()
            .any(|l| l.text.contains("connection refused")));
        // Retries failing the same way are not logged again.
        let lines = app.log.len();
        app.handle_event(Event::Connecting { attempt: 2 });
        app.handle_event(Event::Disconnected {
            reason: "connection refused".into(),
            retry_in: Duration::from_secs(4),
            was_connected: true,
        });
        assert_eq!(app.log.len(), lines);
    }

    #[test]
    fn link_transitions_and_samples_are_logged_and_lit() {
        let mut app = connected(Role::User);
        let mut s = up_link("isp1");
        s.state = LinkState::Dialing as i32;
        app.handle_event(Event::Server(ServerUpdate::Link(s)));
        app.handle_event(Event::Server(ServerUpdate::Link(up_link("isp1"))));
        assert!(app
            .log
            .iter()
            .any(|l| l.text == "isp1: link UP 10.0.0.5 peer 10.0.0.1"));
        app.handle_event(Event::Server(ServerUpdate::Sample(TrafficSample {
            connection: "isp1".into(),
            bytes_in: 2000,
            packets_in: 3,
            period_ms: 1000,
            ..Default::default()
        })));
        let l = &app.links["isp1"];
        assert_eq!(l.rate, (2000, 0));
        assert!(l.rx_at.is_some() && l.tx_at.is_none());
        assert_eq!(l.status.bytes_in, 2000);
        let mut down = up_link("isp1");
        down.state = LinkState::Idle as i32;
        app.handle_event(Event::Server(ServerUpdate::Link(down)));
        assert!(app
            .log
            .iter()
            .any(|l| l.text.starts_with("isp1: link DOWN")));
        // A reason from the server (a forced hang-up names who did it) is shown.
        app.handle_event(Event::Server(ServerUpdate::Link(up_link("isp1"))));
        let mut forced = up_link("isp1");
        forced.state = LinkState::HangingUp as i32;
        forced.last_failure = Some(masqdial_proto::v1::Failure {
            kind: FailureKind::Cancelled as i32,
            message: "hung up by admin@192.168.1.2 (forced)".into(),
        });
        app.handle_event(Event::Server(ServerUpdate::Link(forced)));
        assert_eq!(
            app.log.back().map(|l| l.text.as_str()),
            Some("isp1: link DOWN (HANGUP): hung up by admin@192.168.1.2 (forced)")
        );
    }

    #[test]
    fn dial_progress_seen_twice_is_logged_once() {
        let mut app = connected(Role::User);
        let ev = DialEvent {
            at: Some(prost_types::Timestamp {
                seconds: 5,
                nanos: 0,
            }),
            event: Some(dial_event::Event::Info("ATZ OK".into())),
        };
        for _ in 0..2 {
            app.handle_event(Event::Server(ServerUpdate::Progress {
                connection: "isp1".into(),
                event: ev.clone(),
            }));
        }
        let n = app.log.iter().filter(|l| l.text == "isp1: ATZ OK").count();
        assert_eq!(n, 1);
    }

    #[test]
    fn budget_notices_are_logged_as_warning_then_error() {
        let mut app = connected(Role::User);
        for (hang_up, message) in [
            (false, "isp1 will hang up in 5m00s: its dialling window closes 2026-11-30 08:00 (UTC+01:00)"),
            (true, "hanging up: isp1 may not be dialled now: outside its dialling windows (Mo-Fr 18:00-08:00)"),
        ] {
            app.handle_event(Event::Server(ServerUpdate::Budget(
                masqdial_proto::v1::BudgetNotice {
                    connection: "isp1".into(),
                    limit: "window".into(),
                    hang_up,
                    remaining: if hang_up { 0 } else { 300 },
                    message: message.into(),
                },
            )));
        }
        let got: Vec<(Level, &str)> = app
            .log
            .iter()
            .filter(|l| l.text.contains("budget"))
            .map(|l| (l.level, l.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Level::Warn, "isp1: budget warning: isp1 will hang up in 5m00s: its dialling window closes 2026-11-30 08:00 (UTC+01:00)"),
                (Level::Error, "isp1: budget hang-up: hanging up: isp1 may not be dialled now: outside its dialling windows (Mo-Fr 18:00-08:00)"),
            ]
        );
    }

    #[test]
    fn masq_selection_moves_and_clamps() {
        let mut app = connected(Role::User);
        let at = app.now;
        app.handle_event(Event::Server(ServerUpdate::MasqBatch {
            entries: (0..50).map(|i| masq(i, "192.168.1.10", 100 + i)).collect(),
            at,
        }));
        app.handle_event(key(KeyCode::Down));
        assert_eq!(app.masq_sel, 1);
        // A page is what the panel shows: 80x24 leaves the table 9 rows.
        assert_eq!(app.viewport(Panel::Masq), 9);
        app.handle_event(key(KeyCode::PageDown));
        assert_eq!(app.masq_sel, 10);
        assert_eq!(app.masq_offset, 9);
        app.handle_event(key(KeyCode::End));
        assert_eq!(app.masq_sel, 49);
        app.handle_event(key(KeyCode::Home));
        assert_eq!(app.masq_sel, 0);
    }
}
