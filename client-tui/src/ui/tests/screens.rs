//! Whole-screen tests: states (connecting, empty, dialing, up), sizes, colour off, overlays,
//! zoom; and the ignored `print_screen` and `bench_100k` tools.

use super::*;
use crate::ui::ports::gauge_text;

#[test]
fn empty_connecting_state() {
    let app = App::new("http://gw:224", Instant::now(), wall(), true, GEOMETRY);
    let (lines, _) = draw(&app, 80, 24);
    assert!(lines[0].contains("connecting…"), "{lines:#?}");
    assert!(contains(&lines, "connecting…"));
    assert!(lines[23].contains("q quit"));
}

#[test]
fn connected_empty_tables() {
    let mut app = App::new("http://gw:224", Instant::now(), wall(), true, GEOMETRY);
    app.handle_event(Event::Connected {
        user: "bob".into(),
        role: Role::User,
        allowed: vec![],
    });
    let (lines, _) = draw(&app, 80, 24);
    assert!(lines[0].contains("bob (user)  connected"));
    assert!(contains(&lines, "no masqueraded sessions"));
    assert!(contains(&lines, "no link configured"));
    // Users do not see the admin keys.
    assert!(!lines[23].contains("Z zero"));
}

#[test]
fn dialing_shows_state_and_progress_log() {
    let mut app = realistic(true);
    app.handle_event(Event::Server(ServerUpdate::Link(LinkStatus {
        connection: "cell".into(),
        state: LinkState::Dialing as i32,
        modem: "modem1".into(),
        ..Default::default()
    })));
    app.handle_event(Event::Server(ServerUpdate::Progress {
        connection: "cell".into(),
        event: masqdial_proto::v1::DialEvent {
            at: None,
            event: Some(masqdial_proto::v1::dial_event::Event::Dialing(
                masqdial_proto::v1::Dialing {
                    number: "*99#".into(),
                    index: 1,
                    count: 1,
                    attempt: 1,
                    attempts: 3,
                },
            )),
        },
    }));
    let (lines, _) = draw(&app, 140, 40);
    assert!(contains(&lines, "DIALING"), "{lines:#?}");
    assert!(contains(
        &lines,
        "cell: dialing *99# (number 1 of 1, attempt 1 of 3)"
    ));
}

#[test]
fn up_with_sessions_wide() {
    let app = realistic(true);
    let (lines, _) = draw(&app, 180, 45);
    let text = lines.join("\n");
    for s in [
        "isp1",
        "UP",
        "33600",
        "10.64.3.17",
        "10.64.0.1",
        "Hold",
        "1.8 MiB",
        "1h02m03s",
        "192.168.1.10:1034",
        "61001",
        "198.51.100.80:80",
        "ESTABLISHED",
        "14:55.12",
        "Expire▲",
        "Chain forward (policy DENY: 3 packets, 180 bytes):",
        " 120K   88M MASQ",
        "4093/4096",
        "H force",
        "Z zero",
        "isp1: link UP 10.64.3.17 peer 10.64.0.1",
    ] {
        assert!(text.contains(s), "missing {s:?} in\n{text}");
    }
    // Sorted by expiry: the ICMP entry (59.11 s) comes first.
    let icmp = lines.iter().position(|l| l.contains("192.168.1.5:512"));
    let tcp = lines.iter().position(|l| l.contains("192.168.1.10:1035"));
    assert!(icmp < tcp);
}

#[test]
fn countdown_moves_with_app_time() {
    let mut app = realistic(true);
    let (before, _) = draw(&app, 80, 24);
    assert!(contains(&before, "00:59.11"), "{before:#?}");
    app.set_clock(app.now + Duration::from_millis(1500), wall());
    app.handle_event(Event::Tick);
    let (after, _) = draw(&app, 80, 24);
    assert!(contains(&after, "00:57.61"));
}

#[test]
fn narrow_80x24_fits_the_essentials() {
    let app = realistic(true);
    let (lines, _) = draw(&app, 80, 24);
    let text = lines.join("\n");
    for s in [
        "isp1",
        "UP",
        "192.168.1.10:1034",
        "198.51.100.80:443",
        "Expire",
        "TCP ▕",
        "Events",
        "q quit",
    ] {
        assert!(text.contains(s), "missing {s:?} in\n{text}");
    }
    // Chains take the middle slot when focused.
    let mut app = app;
    app.focus = Panel::Chains;
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(&lines, "Chain input (policy ACCEPT"));
}

#[test]
fn no_colour_has_no_colours() {
    let app = realistic(false);
    let (lines, buf) = draw(&app, 100, 30);
    assert!(
        contains(&lines, "[Masquerade 5 · by Expire▲]"),
        "focused panel marked without colour"
    );
    for c in &buf.content {
        assert_eq!(c.fg, Color::Reset, "cell {:?} has a colour", c.symbol());
        assert_eq!(c.bg, Color::Reset);
    }
    let (_, colour) = draw(&realistic(true), 100, 30);
    assert!(colour.content.iter().any(|c| c.fg != Color::Reset));
}

#[test]
fn disconnected_hides_numbers() {
    let mut app = realistic(true);
    app.handle_event(Event::Disconnected {
        reason: "connection refused".into(),
        retry_in: Duration::from_secs(4),
        was_connected: true,
    });
    let (lines, _) = draw(&app, 100, 24);
    let text = lines.join("\n");
    assert!(
        lines[0].contains("lost the server (connection refused); reconnecting in 4s"),
        "{text}"
    );
    assert!(text.contains("no connection to the server — no data"));
    assert!(!text.contains("192.168.1.10:1034"));
    assert!(!text.contains("4093/4096"));
    assert!(!text.contains("Masquerade 0") && text.contains("Masquerade"));
}

#[test]
fn pickers_help_and_filter_overlay() {
    let mut app = realistic(true);
    app.mode = Mode::DialPicker { sel: 1 };
    app.connections = vec![];
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(&lines, "Dial which connection?"));
    assert!(contains(&lines, "> cell"));
    app.mode = Mode::Help;
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(&lines, "zero chain counters (admin, asks first)"));
    app.mode = Mode::Filter {
        input: "udp".into(),
    };
    app.table.set_filter("udp");
    app.table.refresh();
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(&lines, "Masquerade 5 (1 match /udp)"));
    assert!(lines[23].starts_with("/udp█"));
}

#[test]
fn zoom_fills_the_screen_with_the_focused_panel() {
    let mut app = realistic(true);
    app.focus = Panel::Chains;
    app.zoom = true;
    let (lines, _) = draw(&app, 80, 24);
    let text = lines.join("\n");
    assert!(lines[1].starts_with("┌Chains (1 rules)"), "{text}");
    assert!(text.contains("Chain forward (policy DENY: 3 packets, 180 bytes):"));
    assert!(
        !text.contains("192.168.1.10:1034"),
        "masq table hidden while zoomed"
    );
    assert!(!text.contains("Events"));
}

#[test]
fn helpers() {
    assert_eq!(ipchains_count(99_999), "99999");
    assert_eq!(ipchains_count(100_000), " 100K");
    assert_eq!(ipchains_count(88_120_330), "  88M");
    assert_eq!(sparkline([0u64, 1, 8].into_iter(), 5), "   ▁█");
    assert_eq!(sparkline([4u64, 8].into_iter(), 1), "█");
    assert_eq!(gauge_text("TCP", 3, 4, 4).0, "TCP ▕█░░░▏3/4");
}

/// Prints the screen used for client-tui/SCREEN.txt:
/// `cargo test -p masqdial-tui --lib print_screen -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_screen() {
    let mut app = realistic(false);
    let at = app.now;
    let more = vec![
        masq(
            6,
            Protocol::Tcp,
            "192.168.1.10",
            1036,
            "203.0.113.110",
            110,
            "TIME_WAIT",
            9_870,
        ),
        masq(
            7,
            Protocol::Tcp,
            "192.168.1.31",
            1041,
            "198.51.100.25",
            25,
            "SYN_SENT",
            12_033,
        ),
        masq(
            8,
            Protocol::Udp,
            "192.168.1.31",
            1042,
            "192.0.2.123",
            123,
            "UDP",
            21_950,
        ),
        masq(
            9,
            Protocol::Tcp,
            "192.168.1.12",
            1029,
            "198.51.100.80",
            80,
            "ESTABLISHED",
            61_200,
        ),
        masq(
            10,
            Protocol::Tcp,
            "192.168.1.12",
            1030,
            "198.51.100.6",
            6667,
            "ESTABLISHED",
            88_004,
        ),
        masq(
            11,
            Protocol::Tcp,
            "192.168.1.23",
            1101,
            "192.0.2.21",
            20,
            "ESTABLISHED",
            89_960,
        ),
    ];
    app.handle_event(Event::Server(ServerUpdate::MasqDelta {
        delta: masqdial_proto::v1::MasqDelta {
            upserted: more,
            removed: vec![],
            free: Some(FreePortsResponse {
                tcp: 3179,
                udp: 4093,
                icmp: 4095,
                tcp_total: 4096,
                udp_total: 4096,
                icmp_total: 4096,
                port_low: 61000,
                port_high: 65095,
            }),
        },
        at,
    }));
    app.handle_event(Event::Server(ServerUpdate::Chains(ipmasq_chains())));
    for (w, h) in [(50, 12), (80, 24), (100, 30), (160, 48)] {
        app.handle_event(Event::Resize {
            width: w,
            height: h,
        });
        let (lines, _) = draw(&app, w, h);
        for l in lines {
            println!("{}", l.trim_end());
        }
    }
    // Overlays at 80x24: the force hang-up question, the details view, the login form.
    app.handle_event(Event::Resize {
        width: 80,
        height: 24,
    });
    app.handle_event(key(KeyCode::Char('H')));
    app.handle_event(key(KeyCode::Enter));
    let mut shots = vec![draw(&app, 80, 24).0];
    app.handle_event(key(KeyCode::Esc));
    app.focus = Panel::Links;
    app.link_sel = 1;
    app.handle_event(key(KeyCode::Enter));
    shots.push(draw(&app, 80, 24).0);
    app.handle_event(key(KeyCode::Esc));
    app.handle_event(Event::LoginNeeded {
        user: "alice".into(),
        reason: crate::net::TOKEN_UNKNOWN.into(),
    });
    for c in "secret".chars() {
        app.handle_event(key(KeyCode::Char(c)));
    }
    shots.push(draw(&app, 80, 24).0);
    for lines in shots {
        for l in lines {
            println!("{}", l.trim_end());
        }
    }
}

/// Frame cost with 100,000 entries (figures printed, nothing asserted on time):
/// `cargo test --release -p masqdial-tui --lib bench_100k -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_100k() {
    let mut app = realistic(true);
    let t0 = app.now;
    let entries: Vec<MasqEntry> = (0..100_000u64)
        .map(|i| {
            let lan = format!("192.168.{}.{}", (i / 250) % 250, i % 250 + 1);
            masq(
                100 + i,
                Protocol::Tcp,
                &lan,
                1024 + (i % 60000) as u32,
                "198.51.100.80",
                443,
                "ESTABLISHED",
                (i * 7919) % 90_000,
            )
        })
        .collect();
    let start = Instant::now();
    app.handle_event(Event::Server(ServerUpdate::MasqBatch { entries, at: t0 }));
    println!(
        "snapshot of 100000 entries applied + sorted: {:?}",
        start.elapsed()
    );
    let mut term = Terminal::new(TestBackend::new(160, 50)).expect("test backend");
    let frames = 200u32;
    let start = Instant::now();
    for _ in 0..frames {
        term.draw(|f| render(f, &app)).expect("test backend");
    }
    println!(
        "render 160x50 with {} entries: {:?}/frame",
        app.table.len(),
        start.elapsed() / frames
    );
    let start = Instant::now();
    let rounds = 100u64;
    for r in 0..rounds {
        let up: Vec<MasqEntry> = (0..100u64)
            .map(|j| {
                masq(
                    100 + (r * 1000 + j * 7) % 100_000,
                    Protocol::Tcp,
                    "192.168.9.9",
                    2000,
                    "198.51.100.80",
                    443,
                    "ESTABLISHED",
                    r * 100 + j,
                )
            })
            .collect();
        app.handle_event(Event::Server(ServerUpdate::MasqDelta {
            delta: masqdial_proto::v1::MasqDelta {
                upserted: up,
                removed: vec![100 + r],
                free: None,
            },
            at: t0,
        }));
    }
    println!(
        "delta of 100 upserts + 1 removal on 100000 entries: {:?}/delta",
        start.elapsed() / rounds as u32
    );
    let start = Instant::now();
    app.table.set_sort(SortKey::Remote, true);
    app.table.refresh();
    println!("re-sort 100000 entries by remote: {:?}", start.elapsed());
    let start = Instant::now();
    app.table.set_filter("192.168.7.");
    app.table.refresh();
    println!(
        "filter 100000 entries: {:?} ({} match)",
        start.elapsed(),
        app.table.visible_len()
    );
}
