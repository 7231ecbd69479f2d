//! Tests of the dashboard state machine (keys, pickers, filter, deltas, log lines,
//! selection). Tests only.

use super::*;
use crate::table::SortKey;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use masqdial_proto::v1::{FailureKind, MasqDelta, MasqEntry, Protocol};

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

#[test]
fn remote_text_reaches_the_log_as_one_escaped_line() {
    // A packet-log line and a dial failure carrying terminal escapes and a newline (N4).
    let mut app = connected(Role::Admin);
    app.handle_event(Event::Server(ServerUpdate::PacketLog(
        "input DENY\x1b]0;owned\x07\nforged line\u{9b}2J".into(),
    )));
    let last = app.log.back().map(|l| l.text.clone()).unwrap_or_default();
    assert_eq!(
        last,
        "ipchains: input DENY\\x1b]0;owned\\x07\\nforged line\\x9b2J"
    );
    app.handle_event(Event::Server(ServerUpdate::Progress {
        connection: "isp1".into(),
        event: DialEvent {
            event: Some(dial_event::Event::Failed(masqdial_proto::v1::Failure {
                message: "+CME ERROR: \x1b[31mSIM\r\nbusy".into(),
                ..Default::default()
            })),
            ..Default::default()
        },
    }));
    let last = app.log.back().map(|l| l.text.clone()).unwrap_or_default();
    assert!(!last.chars().any(char::is_control), "{last:?}");
    assert!(last.contains("\\x1b[31mSIM\\r\\nbusy"), "{last:?}");
}
