//! Unit tests of the chat against hand-written modem replies (real byte vectors).

use super::*;
use crate::cell::SimState;
use proptest::prelude::*;
use std::time::Duration;

mod cellular;

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
    let cfg = ChatConfig {
        settle: Duration::ZERO,
        ..ChatConfig::dialup(&["5551234"])
    };
    let mut chat = Chat::new(cfg, t0);
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
        settle: Duration::ZERO,
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
    /// Whatever the modem says: at most one ending (Ready or Failed); nothing sent after it;
    /// Ready only after CONNECT and, with a login script, after its step (whose expect text
    /// came from the line).
    fn any_input_ends_at_most_once_and_ready_only_after_connect(
        chunks in proptest::collection::vec(prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::sample::select(vec![
                &b"\r\nOK\r\n"[..], b"\r\nCONNECT 9600\r\n", b"login:", b"\r\nBUSY\r\n",
                b"\r\nNO CARRIER\r\n", b"\r\nERROR\r\n", b"0\r", b"1\r", b"\r\n+CME ERROR: 10\r\n",
            ]).prop_map(<[u8]>::to_vec),
        ], 0..16),
        login in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let cfg = ChatConfig {
            login: if login { vec![LoginStep { expect: "in:".into(), send: "u".into(), secret: false, timeout: Duration::from_secs(1) }] } else { vec![] },
            ..ChatConfig::dialup(&["1", "2"])
        };
        let mut chat = Chat::new(cfg, t0);
        let (mut ended, mut connected, mut logged_in) = (false, false, false);
        let mut fed = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 700);
            chat.handle_input(now, c);
            fed.extend_from_slice(c);
            chat.handle_timeout(now);
            while chat.poll_transmit().is_some() {
                prop_assert!(!ended, "sent after the chat ended");
            }
            while let Some(e) = chat.poll_event() {
                match e {
                    ChatEvent::Connected { .. } => connected = true,
                    ChatEvent::LoginStep { .. } => {
                        prop_assert!(connected, "login step before CONNECT");
                        prop_assert!(fed.windows(3).any(|w| w == b"in:"), "login step without its prompt");
                        logged_in = true;
                    }
                    ChatEvent::Ready => {
                        prop_assert!(!ended, "ended twice");
                        prop_assert!(connected, "Ready before CONNECT");
                        prop_assert!(!login || logged_in, "Ready before the login script ran");
                        ended = true;
                    }
                    ChatEvent::Failed { .. } => {
                        prop_assert!(!ended, "ended twice");
                        ended = true;
                    }
                    _ => {}
                }
            }
        }
        let _ = chat.take_remaining();
    }
}

// ---- Line discipline: extra result codes, stale input, echo, numeric results ----

/// A chat with these init commands, dialling `1`, with the default 150 ms settle window.
fn line_chat(init: &[&str], t0: Instant) -> Chat {
    let cfg = ChatConfig {
        init: init.iter().map(|s| (*s).to_string()).collect(),
        ..ChatConfig::dialup(&["1"])
    };
    Chat::new(cfg, t0)
}

fn transcript(chat: &Chat) -> Vec<String> {
    chat.transcript().map(|l| l.text.clone()).collect()
}

#[test]
fn ath_answered_no_carrier_then_ok_takes_the_ok_and_records_the_no_carrier() {
    let t0 = Instant::now();
    let mut chat = line_chat(&["ATH", "ATZ"], t0);
    assert_eq!(drain_tx(&mut chat), vec!["ATH\r"]);
    chat.handle_input(t0, b"\r\nNO CARRIER\r\n\r\nOK\r\n");
    // OK answered ATH; ATZ waits for the settle window.
    assert_eq!(drain_tx(&mut chat), Vec::<String>::new());
    let settle = t0 + Duration::from_millis(150);
    assert_eq!(chat.poll_timeout(), Some(settle));
    chat.handle_timeout(settle);
    assert_eq!(drain_tx(&mut chat), vec!["ATZ\r"]);
    let lines = transcript(&chat);
    assert!(lines.contains(&"NO CARRIER".to_string()), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("`NO CARRIER`") && l.contains("set aside")),
        "{lines:?}"
    );
    assert!(!chat.is_failed());
}

#[test]
fn ath_answered_ok_ok_the_second_ok_never_answers_the_next_command() {
    let t0 = Instant::now();
    let mut chat = line_chat(&["ATH", "ATZ"], t0);
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0, b"\r\nOK\r\n\r\nOK\r\n");
    chat.handle_timeout(t0 + Duration::from_millis(150));
    assert_eq!(drain_tx(&mut chat), vec!["ATZ\r"]);
    // ATZ is not answered yet: the second OK was set aside, not taken for it.
    assert!(matches!(
        chat.state,
        State::Command {
            cmd: Cmd::Init(1),
            ..
        }
    ));
    assert!(transcript(&chat)
        .iter()
        .any(|l| l == "extra result code `OK` after `ATH`: set aside"));
    let t1 = t0 + Duration::from_millis(200);
    chat.handle_input(t1, b"\r\nOK\r\n");
    chat.handle_timeout(t1 + Duration::from_millis(150));
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
}

#[test]
fn a_late_ok_50_ms_after_the_first_is_set_aside() {
    let t0 = Instant::now();
    let mut chat = line_chat(&["ATZ"], t0);
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0, b"\r\nOK\r\n");
    let late = t0 + Duration::from_millis(50);
    chat.handle_timeout(late);
    chat.handle_input(late, b"\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), Vec::<String>::new());
    chat.handle_timeout(t0 + Duration::from_millis(150));
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
    // The dial is not answered by that OK.
    chat.handle_input(t0 + Duration::from_millis(160), b"\r\nCONNECT 33600\r\n");
    assert!(chat.is_ready());
    assert_eq!(
        transcript(&chat)
            .iter()
            .filter(|l| l.contains("set aside"))
            .count(),
        1
    );
}

/// Found by the behaviour matrix on a loaded box: a late OK (150 ms after ATZ's) that
/// arrives just after the settle window, so after ATD went out, is not the dial's answer.
#[test]
fn a_late_ok_just_after_the_dial_went_out_is_set_aside() {
    let t0 = Instant::now();
    let mut chat = line_chat(&["ATZ"], t0);
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0, b"\r\nOK\r\n");
    chat.handle_timeout(t0 + Duration::from_millis(150));
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
    chat.handle_input(t0 + Duration::from_millis(151), b"\r\nOK\r\n");
    assert!(!chat.is_failed(), "{:?}", chat.failure());
    chat.handle_input(t0 + Duration::from_millis(900), b"\r\nCONNECT 33600\r\n");
    assert!(chat.is_ready());
    assert!(transcript(&chat)
        .iter()
        .any(|l| l.contains("an OK right after dialling")));
    // An OK long after the dial went out is still a wrong answer, and fails.
    let mut chat = line_chat(&["ATZ"], t0);
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0, b"\r\nOK\r\n");
    chat.handle_timeout(t0 + Duration::from_millis(150));
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0 + Duration::from_secs(3), b"\r\nOK\r\n");
    assert!(chat.is_failed());
}

#[test]
fn without_settle_buffered_extra_results_are_discarded_when_the_next_command_goes_out() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec!["ATH".into(), "ATZ".into()],
        settle: Duration::ZERO,
        ..ChatConfig::dialup(&["1"])
    };
    let mut chat = Chat::new(cfg, t0);
    let _ = drain_tx(&mut chat);
    // Both OKs and a partial line in one read: the first answers ATH, the rest is stale.
    chat.handle_input(t0, b"\r\nOK\r\n\r\nOK\r\nNO CAR");
    assert_eq!(drain_tx(&mut chat), vec!["ATZ\r"]);
    assert!(matches!(
        chat.state,
        State::Command {
            cmd: Cmd::Init(1),
            ..
        }
    ));
    assert!(transcript(&chat)
        .iter()
        .any(|l| l.starts_with("stale input discarded")));
    chat.handle_input(t0, b"\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
}

#[test]
fn with_echo_on_results_before_the_echo_are_stale() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec!["ATE1".into(), "ATI".into()],
        settle: Duration::ZERO,
        ..ChatConfig::dialup(&["1"])
    };
    let mut chat = Chat::new(cfg, t0);
    assert_eq!(drain_tx(&mut chat), vec!["ATE1\r"]);
    chat.handle_input(t0, b"ATE1\r\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATI\r"]);
    // A late OK (of ATE1) arrives after ATI went out but before its echo.
    chat.handle_input(t0, b"\r\nOK\r\n");
    assert!(matches!(
        chat.state,
        State::Command {
            cmd: Cmd::Init(1),
            ..
        }
    ));
    chat.handle_input(t0, b"ATI\r\r\nACME 56k\r\n\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
    chat.handle_input(t0, b"\r\nNO CARRIER\r\nATDT1\r\r\nCONNECT 33600\r\n");
    assert!(chat.is_ready(), "{:?}", transcript(&chat));
    assert!(transcript(&chat)
        .iter()
        .any(|l| l.contains("before the dial command's echo")));
}

#[test]
fn an_echo_behind_a_stale_fragment_is_still_the_echo() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec!["ATE1".into(), "ATI".into()],
        settle: Duration::ZERO,
        ..ChatConfig::dialup(&["1"])
    };
    let mut chat = Chat::new(cfg, t0);
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0, b"ATE1\r\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATI\r"]);
    // The tail of a late result code runs into the echo.
    chat.handle_input(t0, b"\r\nNO CARRATI\r\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
}

#[test]
fn with_echo_off_results_are_taken_without_an_echo() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec!["ATE0".into(), "ATI".into()],
        settle: Duration::ZERO,
        ..ChatConfig::dialup(&["1"])
    };
    let mut chat = Chat::new(cfg, t0);
    let _ = drain_tx(&mut chat);
    // ATE0 is still echoed (it is typed before it runs); ATI is not.
    chat.handle_input(t0, b"ATE0\r\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATI\r"]);
    chat.handle_input(t0, b"\r\nACME\r\n\r\nOK\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
    chat.handle_input(t0, b"\r\nCONNECT\r\n");
    assert!(chat.is_ready());
}

#[test]
fn numeric_results_no_carrier_then_ok_after_ath() {
    let t0 = Instant::now();
    let mut chat = line_chat(&["ATV0", "ATH", "ATZ"], t0);
    let _ = drain_tx(&mut chat);
    chat.handle_input(t0, b"0\r");
    chat.handle_timeout(t0 + Duration::from_millis(150));
    assert_eq!(drain_tx(&mut chat), vec!["ATH\r"]);
    let t1 = t0 + Duration::from_millis(150);
    // NO CARRIER (3) then OK (0), then a second OK (0) 50 ms later.
    chat.handle_input(t1, b"3\r0\r");
    chat.handle_input(t1 + Duration::from_millis(50), b"0\r");
    chat.handle_timeout(t1 + Duration::from_millis(150));
    assert_eq!(drain_tx(&mut chat), vec!["ATZ\r"]);
    assert!(matches!(
        chat.state,
        State::Command {
            cmd: Cmd::Init(2),
            ..
        }
    ));
    let t2 = t1 + Duration::from_millis(150);
    chat.handle_input(t2, b"0\r");
    chat.handle_timeout(t2 + Duration::from_millis(150));
    assert_eq!(drain_tx(&mut chat), vec!["ATDT1\r"]);
    chat.handle_input(t2, b"18\r");
    assert!(chat.is_ready());
    assert_eq!(chat.connect_info(), Some((Some(57600), None)));
}

#[test]
fn echo_setting_follows_e_z_and_f() {
    assert_eq!(echo_after("ATE0", None), Some(false));
    assert_eq!(echo_after("AT E1 V1", Some(false)), Some(true));
    assert_eq!(echo_after("AT&F E0 V1", Some(true)), Some(false));
    assert_eq!(echo_after("ATZ", Some(false)), None);
    assert_eq!(echo_after("AT&F", Some(false)), None);
    assert_eq!(echo_after("ATS0=0E0", Some(true)), Some(false));
    assert_eq!(
        echo_after("AT+CGDCONT=1,\"IP\",\"E1\"", Some(false)),
        Some(false)
    );
    assert_eq!(echo_after("AT&D2", Some(true)), Some(true));
    assert_eq!(echo_after("ATDT5551234", Some(true)), Some(true));
    assert_eq!(echo_after("ATE", Some(true)), Some(false));
}

// ---- Final results with a cause: +CME ERROR, +CMS ERROR, vendor finals ----

#[test]
fn cgdcont_answered_cme_error_fails_at_once_with_the_named_cause() {
    let t0 = Instant::now();
    let cfg = ChatConfig {
        init: vec![],
        cellular: None,
        ..ChatConfig::cellular("internet")
    };
    let mut chat = Chat::new(cfg, t0);
    assert_eq!(
        drain_tx(&mut chat),
        vec!["AT+CGDCONT=1,\"IP\",\"internet\"\r"]
    );
    chat.handle_input(t0, b"\r\n+CME ERROR: 10\r\n");
    assert!(chat.is_failed(), "failed at once, not 5 s later");
    assert_eq!(chat.failure(), Some(ChatFailure::Error));
    assert_eq!(
        chat.failure_cause(),
        Some(&ResultCode::CmeError(ErrorValue::Code(10)))
    );
    let ev = drain_events(&mut chat);
    let Some(ChatEvent::Failed { message, .. }) = ev.last() else {
        panic!("{ev:?}");
    };
    assert!(
        message.contains("+CME ERROR: 10 (SIM not inserted)"),
        "{message}"
    );
    assert!(message.contains("PDP context"), "{message}");
}

#[test]
fn dial_answered_cme_error_fails_at_once_not_after_the_dial_timeout() {
    for (reply, named) in [
        (&b"\r\n+CME ERROR: 30\r\n"[..], "no network service"),
        (
            &b"\r\n+CME ERROR: SIM not inserted\r\n"[..],
            "SIM not inserted (10)",
        ),
        (&b"\r\n+CMS ERROR: 310\r\n"[..], "(U)SIM not inserted"),
        (&b"\r\nCOMMAND NOT SUPPORT\r\n"[..], "COMMAND NOT SUPPORT"),
        (&b"\r\nMODEM ERROR: 3\r\n"[..], "MODEM ERROR: 3"),
        (&b"\r\nERROR\r\n"[..], "ERROR"),
    ] {
        let t0 = Instant::now();
        let cfg = ChatConfig {
            init: vec![],
            apn: None,
            cellular: None,
            ..ChatConfig::cellular("x")
        };
        let mut chat = Chat::new(cfg, t0);
        assert_eq!(drain_tx(&mut chat), vec!["ATD*99#\r"]);
        chat.handle_input(t0 + Duration::from_millis(300), reply);
        assert!(chat.is_failed());
        let ev = drain_events(&mut chat);
        assert!(
            !ev.iter().any(|e| matches!(e, ChatEvent::Redial { .. })),
            "not redialled"
        );
        let Some(ChatEvent::Failed { message, kind }) = ev.last() else {
            panic!("{ev:?}");
        };
        assert_eq!(*kind, ChatFailure::Error);
        assert!(message.contains(named), "{message}");
    }
}

#[test]
fn vendor_error_to_an_init_command_fails_at_once() {
    let t0 = Instant::now();
    let mut chat = line_chat(&["AT^CURC=0"], t0);
    chat.handle_input(t0, b"\r\nCOMMAND NOT SUPPORT\r\n");
    assert!(chat.is_failed());
    assert_eq!(
        chat.failure_cause(),
        Some(&ResultCode::VendorError("COMMAND NOT SUPPORT".into()))
    );
}
