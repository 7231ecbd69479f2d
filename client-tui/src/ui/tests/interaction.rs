//! Interaction tests: scrolling, the event log, mouse, sorting, small terminals, the login
//! form and the units shared with mclient.

use super::*;

#[test]
fn scrolling_keeps_the_viewport_full() {
    let mut app = sized(realistic(false), 80, 24);
    many_sessions(&mut app, 45);
    let total = app.table.visible_len();
    assert_eq!(total, 50);
    let h = app.viewport(Panel::Masq);
    // 80x24 with two links leaves the table 8 rows.
    assert_eq!(h, 8);
    app.handle_event(key(KeyCode::Char('G')));
    assert_eq!(app.masq_sel, total - 1);
    let (lines, _) = draw(&app, 80, 24);
    let shown = masq_rows_shown(&lines);
    assert_eq!(shown.len(), h, "last page full:\n{}", lines.join("\n"));
    // Page up and down move by a whole page and keep it full.
    app.handle_event(key(KeyCode::PageUp));
    assert_eq!(app.masq_offset, total - 2 * h);
    let (lines, _) = draw(&app, 80, 24);
    assert_eq!(masq_rows_shown(&lines).len(), h);
    app.handle_event(key(KeyCode::PageDown));
    app.handle_event(key(KeyCode::PageDown));
    let (lines, _) = draw(&app, 80, 24);
    assert_eq!(masq_rows_shown(&lines).len(), h);
    assert_eq!(app.masq_offset, total - h);
    app.handle_event(key(KeyCode::Char('g')));
    assert_eq!((app.masq_sel, app.masq_offset), (0, 0));
    // Chains: G shows the last lines with the panel full.
    let mut chains = ipmasq_chains();
    let masq_rule = chains[1].rules[0].clone();
    chains[1].rules = (0..20).map(|_| masq_rule.clone()).collect();
    app.handle_event(Event::Server(ServerUpdate::Chains(chains)));
    app.focus = Panel::Chains;
    app.handle_event(key(KeyCode::Char('G')));
    let (lines, _) = draw(&app, 80, 24);
    let body: Vec<&String> = lines[7..lines.len() - 7].iter().collect();
    assert!(
        body.iter()
            .all(|l| !l.trim_matches(|c| c == '│' || c == ' ').is_empty()),
        "no blank chain line after G:\n{}",
        lines.join("\n")
    );
}

#[test]
fn packet_log_lines_show_in_the_events_panel_with_their_own_label_and_colour() {
    // Colour on (without it, the `ipchains:` label alone marks them).
    let mut app = sized(realistic(true), 100, 24);
    let line = "Packet log: input DENY ppp0 PROTO=17 10.1.2.3:53 10.64.3.17:61001 L=61 S=0x00 I=1 F=0x0000 T=64 (#1)";
    app.handle_event(Event::Server(ServerUpdate::PacketLog(line.into())));
    let last = app.log.back().expect("a log line");
    assert_eq!(last.level, Level::Packet);
    assert_eq!(last.text, format!("ipchains: {line}"));
    let (lines, buf) = draw(&app, 100, 24);
    let (row, text) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("ipchains: Packet log: input DENY ppp0"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let col = text
        .find("ipchains:")
        .map(|b| text[..b].chars().count())
        .unwrap_or_default();
    let cell = &buf[(
        u16::try_from(col).unwrap_or_default(),
        u16::try_from(row).unwrap_or_default(),
    )];
    assert_eq!(cell.fg, Color::Cyan, "{lines:#?}");
    // An ordinary line keeps the default colour.
    app.handle_event(Event::Server(ServerUpdate::Info("plain".into())));
    let (lines, buf) = draw(&app, 100, 24);
    let (row, text) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains(" plain"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let col = text
        .find("plain")
        .map(|b| text[..b].chars().count())
        .unwrap_or_default();
    let cell = &buf[(
        u16::try_from(col).unwrap_or_default(),
        u16::try_from(row).unwrap_or_default(),
    )];
    assert_eq!(cell.fg, Color::Reset);
}

#[test]
fn events_panel_says_following_or_paused() {
    let mut app = sized(realistic(false), 80, 24);
    for i in 0..30 {
        app.push_log(Level::Info, format!("line {i}"));
    }
    app.handle_event(Event::Tick);
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(&lines, "Events · following"), "{lines:#?}");
    assert!(contains(&lines, "line 29"));
    app.focus = Panel::Log;
    app.handle_event(key(KeyCode::Up));
    assert!(!app.log_following());
    let (before, _) = draw(&app, 80, 24);
    assert!(contains(&before, "Events · PAUSED · G follows"));
    assert!(!contains(&before, "line 29"));
    // New lines do not move a paused view; the title counts them.
    app.handle_event(Event::Server(ServerUpdate::Info("fresh".into())));
    let (after, _) = draw(&app, 80, 24);
    assert!(contains(&after, "Events · PAUSED, 1 new · G follows"));
    let log_rows = |l: &[String]| -> Vec<String> {
        l.iter().filter(|x| x.contains(" line ")).cloned().collect()
    };
    assert_eq!(log_rows(&before), log_rows(&after));
    // g goes to the oldest line with the panel full; G follows again.
    app.handle_event(key(KeyCode::Char('g')));
    let (top, _) = draw(&app, 80, 24);
    assert!(contains(
        &top,
        "connected to http://192.168.1.1:224 as alice"
    ));
    let r = app.areas().log.expect("log shown");
    for y in r.y + 1..r.y + r.height - 1 {
        let row = &top[usize::from(y)];
        assert!(
            row.trim_matches(|c| c == '│' || c == ' ').len() > 8,
            "blank log row {y} at the top:\n{}",
            top.join("\n")
        );
    }
    app.handle_event(key(KeyCode::Char('G')));
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(&lines, "Events · following"));
    assert!(contains(&lines, "fresh"));
}

#[test]
fn mouse_focuses_selects_sorts_and_scrolls() {
    let mut app = sized(realistic(false), 80, 24);
    many_sessions(&mut app, 20);
    let a = app.areas();
    let masq = a.masq.expect("masq shown");
    let links = a.links.expect("links shown");
    // Click the third masquerade row.
    app.handle_event(click(masq.x + 5, masq.y + 4));
    assert_eq!((app.focus, app.masq_sel), (Panel::Masq, 2));
    // Click a link row: focus moves there and selects it.
    app.handle_event(click(links.x + 3, links.y + 3));
    assert_eq!((app.focus, app.link_sel), (Panel::Links, 1));
    // Wheel over the table moves three rows.
    app.handle_event(wheel(true, masq.x + 5, masq.y + 4));
    assert_eq!(app.masq_sel, 5);
    app.handle_event(wheel(false, masq.x + 5, masq.y + 4));
    assert_eq!(app.masq_sel, 2);
    // Clicking a column title sorts by it; clicking again reverses.
    app.handle_event(click(masq.x + 2, masq.y + 1));
    assert_eq!(app.table.sort(), (SortKey::Proto, false));
    app.handle_event(click(masq.x + 2, masq.y + 1));
    assert_eq!(app.table.sort(), (SortKey::Proto, true));
    app.handle_event(click(masq.x + 40, masq.y + 1));
    assert_eq!(app.table.sort(), (SortKey::Remote, false));
    // The events panel takes the focus on a click and pauses on the wheel.
    let log = a.log.expect("log shown");
    app.handle_event(click(log.x + 3, log.y + 2));
    assert_eq!(app.focus, Panel::Log);
    for i in 0..20 {
        app.push_log(Level::Info, format!("l{i}"));
    }
    app.handle_event(wheel(false, log.x + 3, log.y + 2));
    assert!(!app.log_following());
}

#[test]
fn every_sort_column_runs_the_same_way() {
    let mut app = realistic(false);
    // Ascending (▲) means A→Z, 0→9, soonest expiry first, for every column.
    for k in SortKey::ALL {
        app.table.set_sort(k, false);
        app.table.refresh();
        let rows: Vec<_> = app.table.window(0, usize::MAX).cloned().collect();
        for pair in rows.windows(2) {
            let (a, b) = (&pair[0].entry, &pair[1].entry);
            let ok = match k {
                SortKey::Proto => proto_name(a.protocol) <= proto_name(b.protocol),
                SortKey::Masq => a.masq_port <= b.masq_port,
                SortKey::State => a.state <= b.state,
                SortKey::Expire => a.expire_centis <= b.expire_centis,
                SortKey::Bytes => a.bytes_in + a.bytes_out <= b.bytes_in + b.bytes_out,
                SortKey::Packets => a.packets_in + a.packets_out <= b.packets_in + b.packets_out,
                SortKey::Lan | SortKey::Remote => true,
            };
            assert!(ok, "{k:?} ascending: {a:?} before {b:?}");
        }
    }
    app.table.set_sort(SortKey::Proto, false);
    app.table.refresh();
    let protos: Vec<&str> = app
        .table
        .window(0, usize::MAX)
        .map(|r| proto_name(r.entry.protocol))
        .collect();
    assert_eq!(protos, vec!["ICMP", "TCP", "TCP", "TCP", "UDP"]);
}

#[test]
fn small_terminals_keep_the_links() {
    for (w, h) in [(80u16, 24u16), (50, 12), (50, 10)] {
        let app = sized(realistic(false), w, h);
        let a = app.areas();
        let links = a.links.expect("links always laid out");
        assert_eq!(links.height, 5, "{w}x{h}: both links and the header");
        let (lines, _) = draw(&app, w, h);
        let text = lines.join("\n");
        assert!(text.contains("isp1") && text.contains("UP"), "{text}");
        assert!(text.contains("cell") && text.contains("IDLE"), "{text}");
    }
    // The masquerade table keeps whole columns: protocol, LAN side and expiry first.
    let app = sized(realistic(false), 50, 12);
    let (lines, _) = draw(&app, 50, 12);
    let header = line_with(&lines, "Proto");
    assert!(
        header.contains("LAN addr:port") && header.contains("Expire▲"),
        "{}",
        lines.join("\n")
    );
    assert!(contains(&lines, "192.168.1.5:512"));
    // At 50x12 the event log gives way; focusing it shows it in the middle slot.
    let mut app = sized(realistic(false), 50, 12);
    assert!(app.areas().log.is_none());
    app.handle_event(key(KeyCode::Char('4')));
    let (lines, _) = draw(&app, 50, 12);
    assert!(contains(&lines, "Events · following"), "{lines:#?}");
}

#[test]
fn login_form_masks_the_password_and_sends_it() {
    let mut app = realistic(false);
    app.handle_event(Event::LoginNeeded {
        user: "alice".into(),
        reason: crate::net::TOKEN_UNKNOWN.into(),
    });
    assert_eq!(app.conn, ConnState::LoggedOut);
    assert!(app.links.is_empty(), "stale data dropped");
    for c in "s3cr3t".chars() {
        app.handle_event(key(KeyCode::Char(c)));
    }
    let (lines, _) = draw(&app, 80, 24);
    let text = lines.join("\n");
    assert!(text.contains("Log in to http://192.168.1.1:224"), "{text}");
    assert!(text.contains("may have restarted"), "{text}");
    assert!(text.contains("user:     alice"), "{text}");
    assert!(text.contains("password: ******█"), "{text}");
    assert!(!text.contains("s3cr3t"));
    assert!(lines[0].contains("not logged in"));
    assert!(!format!("{:?}", app.mode).contains("s3cr3t"));
    let cmds = app.handle_event(key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Login {
            user: "alice".into(),
            password: crate::event::Secret::new("s3cr3t"),
        }]
    );
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(&lines, "logging in…"));
    // A wrong password: asked again with the reason, the user name kept.
    app.handle_event(Event::LoginNeeded {
        user: "alice".into(),
        reason: "Wrong user name or password; try again.".into(),
    });
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(&lines, "Wrong user name or password"));
    assert!(contains(&lines, "password: █"));
    // q is a letter here, not quit.
    assert!(app.handle_event(key(KeyCode::Char('q'))).is_empty());
    app.handle_event(Event::Connected {
        user: "alice".into(),
        role: Role::Admin,
        allowed: vec![],
    });
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn units_match_mclient() {
    let app = sized(realistic(false), 180, 45);
    let (lines, _) = draw(&app, 180, 45);
    let row = line_with(&lines, "33600");
    // format::bytes and format::duration, as mclient status prints them.
    let l = &app.links["isp1"].status;
    assert!(row.contains(&format::bytes(l.bytes_in)), "{row}");
    assert!(row.contains(&format::bytes(l.bytes_out)), "{row}");
    assert!(row.contains("1h02m03s"), "{row}");
    assert!(
        contains(&lines, &format::bytes(48_213 + 3_101)),
        "masq bytes in KiB"
    );
}
