//! Unit tests of the chat against hand-written modem replies (real byte vectors).

use super::*;
use proptest::prelude::*;

fn drain_tx(chat: &mut Chat) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(b) = chat.poll_transmit() {
        out.push(String::from_utf8_lossy(&b).into_owned());
    }
    out
}

fn drain_events(chat: &mut Chat) -> Vec<ChatEvent> {
    let mut out = Vec::new();
    while let Some(e) = chat.poll_event() {
        out.push(e);
    }
    out
}

#[test]
fn init_dial_connect_with_echo_and_trailing_ppp_bytes() {
    let t0 = Instant::now();
    let mut chat = Chat::new(ChatConfig::dialup(&["5551234"]), t0);
    assert_eq!(drain_tx(&mut chat), vec!["ATZ\r"]);
    chat.handle_input(t0, b"ATZ\r\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["AT&F E0 V1\r"]);
    chat.handle_input(t0, b"AT&F E0 V1\r");
    chat.handle_input(t0, b"\r\nO");
    chat.handle_input(t0, b"K\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATDT5551234\r"]);
    chat.handle_input(t0, b"\r\n+CREG: 1\r\nRING\r\n\r\nCONNECT 115200/V42BIS\r");
    assert!(chat.is_ready());
    chat.handle_input(t0, b"\n\x7e\xff\x7d\x23");
    assert_eq!(chat.take_remaining(), vec![0x7e, 0xff, 0x7d, 0x23]);
    let ev = drain_events(&mut chat);
    assert!(ev.contains(&ChatEvent::Connected {
        speed: Some(115200),
        extras: Some("V42BIS".into())
    }));
    assert_eq!(ev.last(), Some(&ChatEvent::Ready));
    let lines: Vec<String> = chat.transcript().map(|l| l.text.clone()).collect();
    assert!(lines.contains(&"CONNECT 115200/V42BIS".to_string()));
    assert!(lines.contains(&"+CREG: 1".to_string()));
}

#[test]
fn numeric_mode_connect() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec!["ATV0".into()],
        ..ChatConfig::dialup(&["1"])
    };
    let mut chat = Chat::new(cfg, t0);
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0, b"0\r");
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
    chat.handle_input(t0, b"19\r~\xff");
    assert!(chat.is_ready());
    assert_eq!(chat.take_remaining(), b"~\xff".to_vec());
    assert_eq!(chat.connect_info(), Some((Some(115200), None)));
}

#[test]
fn init_error_fails() {
    let t0 = Instant::now();
    let mut chat = Chat::new(ChatConfig::dialup(&["1"]), t0);
    chat.handle_input(t0, b"\r\nERROR\r\n");
    assert!(chat.is_failed());
    let ev = drain_events(&mut chat);
    assert!(matches!(
        ev.last(),
        Some(ChatEvent::Failed {
            kind: ChatFailure::Error,
            ..
        })
    ));
}

#[test]
fn init_timeout_fails() {
    let t0 = Instant::now();
    let mut chat = Chat::new(ChatConfig::dialup(&["1"]), t0);
    let d = chat.poll_timeout().expect("init step has a timer");
    chat.handle_timeout(d - Duration::from_millis(1));
    assert!(!chat.is_failed());
    chat.handle_timeout(d);
    assert!(chat.is_failed());
}

#[test]
fn busy_moves_to_next_number_and_rounds_end() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec![],
        redial: RedialPolicy {
            attempts: 2,
            next_number_delay: Duration::from_secs(1),
            round_delay: Duration::from_secs(5),
        },
        ..ChatConfig::dialup(&["111", "222"])
    };
    let mut chat = Chat::new(cfg, t0);
    assert_eq!(drain_tx(&mut chat), vec!["ATDT111\r"]);
    chat.handle_input(t0, b"\r\nBUSY\r\n");
    assert_eq!(chat.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    chat.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(drain_tx(&mut chat), vec!["ATDT222\r"]);
    let t1 = t0 + Duration::from_secs(1);
    chat.handle_input(t1, b"\r\nNO ANSWER\r\n");
    assert_eq!(chat.poll_timeout(), Some(t1 + Duration::from_secs(5)));
    chat.handle_timeout(t1 + Duration::from_secs(5));
    assert_eq!(drain_tx(&mut chat), vec!["ATDT111\r"]);
    chat.handle_input(t1, b"\r\nNO CARRIER\r\n");
    chat.handle_timeout(t1 + Duration::from_secs(10));
    assert_eq!(drain_tx(&mut chat), vec!["ATDT222\r"]);
    chat.handle_input(t1, b"\r\nBUSY\r\n");
    assert!(chat.is_failed());
    let ev = drain_events(&mut chat);
    let redials = ev
        .iter()
        .filter(|e| matches!(e, ChatEvent::Redial { .. }))
        .count();
    assert_eq!(redials, 3);
    assert!(matches!(
        ev.last(),
        Some(ChatEvent::Failed {
            kind: ChatFailure::Busy,
            ..
        })
    ));
}

#[test]
fn no_dialtone_is_not_retried() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec![],
        ..ChatConfig::dialup(&["1", "2"])
    };
    let mut chat = Chat::new(cfg, t0);
    chat.handle_input(t0, b"\r\nNO DIALTONE\r\n");
    assert!(chat.is_failed());
}

#[test]
fn login_script_hides_secret() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec![],
        login: vec![
            LoginStep {
                expect: "ogin:".into(),
                send: "alice".into(),
                secret: false,
                timeout: Duration::from_secs(5),
            },
            LoginStep {
                expect: "assword:".into(),
                send: "hunter2".into(),
                secret: true,
                timeout: Duration::from_secs(5),
            },
        ],
        ..ChatConfig::dialup(&["1"])
    };
    let mut chat = Chat::new(cfg, t0);
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0, b"\r\nCONNECT 33600\r\n\r\nWelcome\r\nlog");
    assert!(!chat.is_ready());
    chat.handle_input(t0, b"in: ");
    assert_eq!(drain_tx(&mut chat), vec!["alice\r"]);
    chat.handle_input(t0, b"Password:");
    assert_eq!(drain_tx(&mut chat), vec!["hunter2\r"]);
    assert!(chat.is_ready());
    assert!(chat.transcript().all(|l| !l.text.contains("hunter2")));
    assert!(chat.transcript().any(|l| l.text == "********"));
}

#[test]
fn login_carrier_loss_fails() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec![],
        login: vec![LoginStep {
            expect: "ogin:".into(),
            send: "x".into(),
            secret: false,
            timeout: Duration::from_secs(5),
        }],
        ..ChatConfig::dialup(&["1"])
    };
    let mut chat = Chat::new(cfg, t0);
    chat.handle_input(t0, b"CONNECT\r\n\r\nNO CARRIER\r\n");
    assert!(chat.is_failed());
}

#[test]
fn cellular_sends_cgdcont() {
    let t0 = Instant::now();
    let mut chat = Chat::new(ChatConfig::cellular("internet"), t0);
    assert_eq!(drain_tx(&mut chat), vec!["ATZ\r"]);
    chat.handle_input(t0, b"OK\r\n");
    chat.handle_input(t0, b"OK\r\n");
    assert_eq!(
        drain_tx(&mut chat),
        vec!["AT&F E0 V1\r", "AT+CGDCONT=1,\"IP\",\"internet\"\r"]
    );
    chat.handle_input(t0, b"OK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATD*99#\r"]);
}

#[test]
fn dial_timeout_aborts_and_fails() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec![],
        ..ChatConfig::dialup(&["1"])
    };
    let mut chat = Chat::new(cfg, t0);
    let _ = drain_tx(&mut chat);
    chat.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(drain_tx(&mut chat), vec!["\r"]);
    assert!(chat.is_failed());
}

#[test]
fn byte_offset_maps_lossy_text() {
    assert_eq!(byte_offset_for(b"abc", 2), 2);
    assert_eq!(byte_offset_for(b"\xffab", 4), 2);
    assert_eq!(byte_offset_for(b"ab", 9), 2);
}

proptest! {
    #[test]
    fn any_input_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16), login in any::<bool>()) {
        let t0 = Instant::now();
        let cfg = ChatConfig {
            login: if login { vec![LoginStep { expect: "in:".into(), send: "u".into(), secret: false, timeout: Duration::from_secs(1) }] } else { vec![] },
            ..ChatConfig::dialup(&["1", "2"])
        };
        let mut chat = Chat::new(cfg, t0);
        for (i, c) in chunks.iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 700);
            chat.handle_input(now, c);
            chat.handle_timeout(now);
            while chat.poll_transmit().is_some() {}
            while chat.poll_event().is_some() {}
        }
        let _ = chat.take_remaining();
    }
}
