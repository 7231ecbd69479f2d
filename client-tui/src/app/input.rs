//! Input handling of the dashboard: keys (per mode: normal, pickers, confirmations, filter,
//! details, login form) and the mouse (focus, select, sort, wheel), as `impl App` methods
//! that `App::handle_event` calls.
//!
//! Changes app state and emits [`Command`]s only; must not draw, do I/O, read a clock or
//! import the renderer (`crate::ui`); where panels sit comes from `App::areas`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::*;

impl App {
    pub(super) fn handle_key(&mut self, k: KeyEvent, out: &mut Vec<Command>) {
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

    pub(super) fn handle_mouse(&mut self, m: MouseEvent) {
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
