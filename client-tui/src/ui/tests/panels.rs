//! Panel content tests: chains, links, the details view and the zero/force-hang-up questions.

use super::*;

#[test]
fn chains_always_show_what_changes_a_rule() {
    for (w, h) in [(80u16, 24u16), (160, 48), (100, 30)] {
        let mut app = realistic(false);
        app.handle_event(Event::Server(ServerUpdate::Chains(ipmasq_chains())));
        app.focus = Panel::Chains;
        let app = sized(app, w, h);
        let (lines, _) = draw(&app, w, h);
        // The anti-spoofing rule: only from ppp0, and logged; not "DENY all 192.168/16".
        let spoof = line_with(&lines, "192.168.0.0/16");
        for s in ["DENY", "all", "----l-", "ppp0", "anywhere"] {
            assert!(spoof.contains(s), "{w}x{h}: {s:?} missing in {spoof:?}");
        }
        let syn = line_with(&lines, "0:60999");
        for s in ["DENY", "tcp", "-y----", "ppp0", "any -> 0:60999"] {
            assert!(syn.contains(s), "{w}x{h}: {s:?} missing in {syn:?}");
        }
        let inv = line_with(&lines, "REJECT");
        for s in ["!192.168.77.0/24", "!ppp+", "any -> !0:1023", "udp"] {
            assert!(inv.contains(s), "{w}x{h}: {s:?} missing in {inv:?}");
        }
        assert!(line_with(&lines, "MASQ").contains("192.168.77.0/24"));
    }
    // Too narrow for columns: each rule as its ipchains spec, wrapped, nothing cut.
    let lines = chain_lines(&ipmasq_chains(), 40);
    let text = lines.join("\n");
    assert!(text.contains("-s 192.168.0.0/16 -i ppp0 -j DENY"), "{text}");
    assert!(
        lines
            .iter()
            .filter(|l| !l.starts_with("Chain "))
            .all(|l| l.chars().count() <= 40),
        "{text}"
    );
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("-d 0.0.0.0/0 ! 0:1023 -j REJECT"), "{text}");
    // Counters go first when space is short: bytes, then packets.
    let full = chain_lines(&ipmasq_chains(), 200);
    assert!(full[1].starts_with(" pkts bytes target"), "{full:?}");
    let w = full.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let less = chain_lines(&ipmasq_chains(), w - 1);
    assert!(less[1].starts_with(" pkts target"), "{less:?}");
}

#[test]
fn links_show_holder_count_at_every_size() {
    for (w, h) in [(180u16, 45u16), (100, 30), (80, 24), (50, 12)] {
        let app = sized(realistic(false), w, h);
        let (lines, _) = draw(&app, w, h);
        let text = lines.join("\n");
        let header = line_with(&lines, "Name");
        assert!(
            header.contains("State") && header.contains("Hold"),
            "{w}x{h}:\n{text}"
        );
        let row = line_with(&lines, "isp1");
        let cells: Vec<&str> = row
            .trim_matches(|c| c == '│' || c == ' ')
            .split_whitespace()
            .collect();
        assert_eq!(&cells[..3], &["isp1", "UP", "1"], "{w}x{h}:\n{text}");
        assert!(
            contains(&lines, "cell"),
            "second link visible at {w}x{h}:\n{text}"
        );
    }
}

#[test]
fn details_show_the_link_queues_and_host_shares() {
    use masqdial_proto::v1::{HostShare, LinkQueues, QueueStats};
    let mut app = realistic(false);
    let mut st = app
        .links
        .get("isp1")
        .map(|l| l.status.clone())
        .unwrap_or_default();
    st.queues = Some(LinkQueues {
        scheduler: "fair".into(),
        egress: Some(QueueStats {
            backlog_packets: 3,
            backlog_bytes: 4_500,
            sojourn_p50_ms: 92,
            sojourn_p95_ms: 153,
            dropped_overflow: 1,
            dropped_aqm: 7,
            ecn_marked: 2,
            sent_bytes: 2_048,
            hosts: vec![
                HostShare {
                    host: "192.168.1.10".into(),
                    share: 0.54,
                    ..Default::default()
                },
                HostShare {
                    host: "192.168.1.11".into(),
                    share: 0.46,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        ingress: Some(QueueStats::default()),
        ingress_shaping: 0.9,
    });
    app.handle_event(Event::Server(ServerUpdate::Link(st)));
    let lines = detail_lines(&app, "isp1");
    let at = lines
        .iter()
        .position(|l| l == "Link queue (fair scheduler)")
        .unwrap_or_else(|| panic!("no queue section: {lines:#?}"));
    assert_eq!(
        &lines[at + 1..at + 7],
        &[
            "  up         backlog 3 pkts/4.4 KiB, sojourn p50 92 ms p95 153 ms".to_string(),
            "             drops 1 over limit, 7 by AQM; 2 ECN-marked; sent 2.0 KiB".to_string(),
            "             192.168.1.10       54% of the line".to_string(),
            "             192.168.1.11       46% of the line".to_string(),
            "  down 90%   backlog 0 pkts/0 B, sojourn p50 0 ms p95 0 ms".to_string(),
            "             drops 0 over limit, 0 by AQM; 0 ECN-marked; sent 0 B".to_string(),
        ]
    );
}

#[test]
fn enter_opens_details_with_cinfo_log_hosts_and_holders() {
    use masqdial_proto::v1::{Connection, ConnectionInfo, PppOptions, TranscriptLine};
    let mut app = sized(realistic(false), 100, 40);
    app.focus = Panel::Links;
    // isp1 sorts after cell: select it.
    app.handle_event(key(KeyCode::Down));
    assert_eq!(app.selected_link(), Some("isp1"));
    let cmds = app.handle_event(key(KeyCode::Enter));
    assert_eq!(cmds, vec![Command::Details("isp1".into())]);
    let (lines, _) = draw(&app, 100, 40);
    assert!(contains(&lines, "asking the server for the details"));
    let at = |s: i64| {
        Some(prost_types::Timestamp {
            seconds: 1_700_000_000 - 3_730 + s,
            nanos: 0,
        })
    };
    let info = ConnectionInfo {
        connection: Some(Connection {
            name: "isp1".into(),
            numbers: vec!["555-0100".into(), "555-0101".into()],
            modems: vec!["modem0".into()],
            allowed: true,
            ..Default::default()
        }),
        dial_prefix: "ATDT".into(),
        auth: "chap".into(),
        redial_attempts: 3,
        ppp: Some(PppOptions {
            local_mru: 1500,
            peer_mru: 1500,
            peer_accm: 0x000a_0000,
            pfc: true,
            acfc: true,
            auth_protocol: "CHAP-MD5".into(),
            frames_in: 812,
            frames_out: 640,
            local_address: "10.64.3.17".into(),
            peer_address: "10.64.64.64".into(),
            refused: vec![masqdial_proto::v1::OptionRefusal {
                protocol: "IPCP".into(),
                option: 129,
                name: "Primary-DNS".into(),
                by_peer: true,
                reject: true,
                value: "0.0.0.0".into(),
            }],
            ..Default::default()
        }),
        transcript: vec![
            TranscriptLine {
                at: at(0),
                kind: "send".into(),
                text: "ATDT555-0100".into(),
            },
            TranscriptLine {
                at: at(2),
                kind: "recv".into(),
                text: "CONNECT 33600/ARQ/V42BIS".into(),
            },
        ],
        ..Default::default()
    };
    app.handle_event(Event::Server(ServerUpdate::Details(Box::new(info))));
    let (lines, _) = draw(&app, 100, 40);
    let text = lines.join("\n");
    for s in [
        "isp1 · details · Esc closes",
        "Holders (1)",
        "alice@192.168.1.10",
        "Negotiated PPP options",
        "MRU        local 1500, peer 1500",
        "ACCM       local 0x00000000, peer 0x000a0000",
        "auth CHAP-MD5 · PFC yes · ACFC yes",
        "auth of peer none (what we demanded)",
        "IPCP       local 10.64.3.17, peer 10.64.64.64",
        "DNS        none",
        "refused options (1)",
        "peer Rejected our IPCP Primary-DNS (129): 0.0.0.0",
        "LAN hosts using it (3, live sessions)",
        "Log of the last dial (2 lines, UTC)",
        "21:11:10.000 send  ATDT555-0100",
        "21:11:12.000 recv  CONNECT 33600/ARQ/V42BIS",
        "3 attempts 0s apart",
        "numbers    555-0100, 555-0101",
    ] {
        assert!(text.contains(s), "missing {s:?} in\n{text}");
    }
    // Per LAN host: 192.168.1.10 has entries 1 and 2 (both ways, bytes or in+out).
    let host = line_with(&lines, "2 sessions");
    assert!(host.contains("192.168.1.10 "), "{host}");
    // Refreshed while open, Esc closes.
    app.set_clock(app.now + DETAILS_REFRESH, wall());
    assert_eq!(
        app.handle_event(Event::Tick),
        vec![Command::Details("isp1".into())]
    );
    app.handle_event(key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
    let (lines, _) = draw(&app, 100, 40);
    assert!(!contains(&lines, "details · Esc closes"));
}

#[test]
fn details_show_the_modems_cellular_status() {
    let mut app = realistic(false);
    let modem = app
        .links
        .get("isp1")
        .map(|l| l.status.modem.clone())
        .unwrap_or_default();
    assert!(!modem.is_empty(), "isp1 has a modem in the fixture");
    app.handle_event(Event::Server(ServerUpdate::Modems(vec![
        masqdial_proto::v1::Modem {
            name: modem,
            cellular: Some(masqdial_proto::v1::CellularStatus {
                has_signal: true,
                signal_dbm: -71,
                signal_bars: 3,
                registration: "roaming".into(),
                roaming: true,
                operator: "Example Mobile".into(),
                access_technology: "LTE".into(),
                sim: "ready".into(),
                pin_sent: true,
                pin_accepted: false,
                ..Default::default()
            }),
            ..Default::default()
        },
    ])));
    let lines = detail_lines(&app, "isp1");
    assert!(
        lines.iter().any(|l| l
            == "  cellular   -71 dBm [###.], roaming on Example Mobile (LTE), SIM ready (PIN refused)"),
        "{lines:#?}"
    );
}

#[test]
fn details_show_the_budget() {
    let mut app = realistic(false);
    let mut st = app
        .links
        .get("isp1")
        .map(|l| l.status.clone())
        .unwrap_or_default();
    st.budget = Some(masqdial_proto::v1::Budget {
        time_budget_s: 3600,
        time_used_s: 300,
        time_period: "day".into(),
        windows: vec!["Mo-Fr 18:00-08:00".into()],
        window_open: true,
        utc_offset: "+01:00".into(),
        ..Default::default()
    });
    app.handle_event(Event::Server(ServerUpdate::Link(st)));
    let lines = detail_lines(&app, "isp1");
    assert!(
        lines.iter().any(|l| l
            == "  budget     up 0:05:00 of 1:00:00 per day, windows Mo-Fr 18:00-08:00 UTC+01:00 (open)"),
        "{lines:#?}"
    );
}

#[test]
fn details_scroll_stays_inside_the_text() {
    let mut app = sized(realistic(false), 80, 14);
    app.focus = Panel::Links;
    app.link_sel = 1;
    app.handle_event(key(KeyCode::Enter));
    let lines = detail_lines(&app, "isp1").len();
    let h = usize::from(app.areas().body.height - 2);
    assert!(lines > h, "the text is longer than the view");
    app.handle_event(key(KeyCode::Char('G')));
    let max = lines - h;
    assert_eq!(
        app.mode,
        Mode::Details {
            name: "isp1".into(),
            scroll: max
        }
    );
    app.handle_event(key(KeyCode::Up));
    assert_eq!(
        app.mode,
        Mode::Details {
            name: "isp1".into(),
            scroll: max - 1
        }
    );
    let (screen, _) = draw(&app, 80, 14);
    assert!(contains(&screen, "192.168.1.10 "), "{screen:#?}");
}

#[test]
fn zero_and_force_hangup_ask_first() {
    let mut app = realistic(false);
    assert!(app.handle_event(key(KeyCode::Char('Z'))).is_empty());
    let (lines, _) = draw(&app, 80, 24);
    assert!(contains(
        &lines,
        "Zero the packet and byte counters of every"
    ));
    assert!(contains(&lines, "y: yes    n / Esc: no"));
    // Enter does not confirm; n neither.
    assert!(app.handle_event(key(KeyCode::Enter)).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    app.handle_event(key(KeyCode::Char('Z')));
    assert!(app.handle_event(key(KeyCode::Char('n'))).is_empty());
    app.handle_event(key(KeyCode::Char('Z')));
    assert_eq!(
        app.handle_event(key(KeyCode::Char('y'))),
        vec![Command::ZeroCounters]
    );
    // H: pick the link, then confirm naming who loses it.
    app.handle_event(key(KeyCode::Char('H')));
    assert!(app.handle_event(key(KeyCode::Enter)).is_empty());
    let (lines, _) = draw(&app, 80, 24);
    let text = lines.join("\n");
    assert!(text.contains("Force hang-up of isp1?"), "{text}");
    assert!(text.contains("alice@192.168.1.10"), "{text}");
    assert!(app.handle_event(key(KeyCode::Esc)).is_empty());
    app.handle_event(key(KeyCode::Char('H')));
    app.handle_event(key(KeyCode::Enter));
    assert_eq!(
        app.handle_event(key(KeyCode::Char('y'))),
        vec![Command::Hangup {
            name: "isp1".into(),
            force: true
        }]
    );
}
