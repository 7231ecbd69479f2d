//! Cellular dial tests: SIM, registration wait, attach.

use super::*;

/// Plays a modem that echoes (or not) and answers each command with `answer(cmd)`; time
/// moves to the chat's next timer whenever it waits. Returns the commands sent and the
/// events, and the time it ended.
fn play(
    mut chat: Chat,
    t0: Instant,
    echo: bool,
    mut answer: impl FnMut(&str) -> String,
) -> (Chat, Vec<String>, Vec<ChatEvent>, Instant) {
    let mut now = t0;
    let mut sent = Vec::new();
    let mut events = Vec::new();
    for _ in 0..2000 {
        while let Some(b) = chat.poll_transmit() {
            let cmd = String::from_utf8_lossy(&b)
                .trim_end_matches('\r')
                .to_string();
            if cmd.is_empty() {
                continue;
            }
            if echo {
                chat.handle_input(now, format!("{cmd}\r").as_bytes());
            }
            let reply = answer(&cmd);
            chat.handle_input(now, reply.as_bytes());
            sent.push(cmd);
        }
        events.extend(std::iter::from_fn(|| chat.poll_event()));
        if chat.is_ready() || chat.is_failed() {
            break;
        }
        let Some(t) = chat.poll_timeout() else { break };
        now = now.max(t);
        chat.handle_timeout(now);
    }
    (chat, sent, events, now)
}

fn ok(info: &str) -> String {
    if info.is_empty() {
        "\r\nOK\r\n".into()
    } else {
        format!("\r\n{info}\r\n\r\nOK\r\n")
    }
}

fn cell_plan(pin: Option<&str>) -> ChatConfig {
    let mut cfg = ChatConfig::cellular("internet");
    cfg.init = vec!["ATZ".into()];
    if let Some(c) = &mut cfg.cellular {
        c.sim_pin = pin.map(str::to_string);
    }
    cfg
}

fn failed_message(ev: &[ChatEvent]) -> Option<(ChatFailure, String)> {
    ev.iter().find_map(|e| match e {
        ChatEvent::Failed { kind, message } => Some((*kind, message.clone())),
        _ => None,
    })
}

/// Found by the at_chat fuzz target's property: a modem that echoes the PIN command in its
/// own way (lower case, a space: not recognised as our echo) or repeats the PIN in a reply
/// must not put the PIN in the transcript.
#[test]
fn a_pin_the_modem_repeats_never_reaches_the_transcript() {
    let t0 = Instant::now();
    let mut unlocked = false;
    let (chat, _sent, ev, _end) =
        play(
            Chat::new(cell_plan(Some("2468")), t0),
            t0,
            true,
            |cmd| match cmd {
                "AT+CPIN?" if unlocked => ok("+CPIN: READY"),
                "AT+CPIN?" => ok("+CPIN: SIM PIN"),
                "AT+CPIN=\"2468\"" => {
                    unlocked = true;
                    "\r\nat+cpin = \"2468\"\r\n+CPIN: accepted 2468\r\nOK\r\n".into()
                }
                "AT+CREG?" | "AT+CGREG?" | "AT+CEREG?" => ok("+CREG: 0,1"),
                "AT+CGATT?" => ok("+CGATT: 1"),
                "ATD*99#" => "\r\nCONNECT 150000000\r\n".into(),
                _ => ok(""),
            },
        );
    assert!(chat.is_ready(), "{ev:#?}");
    let t = transcript(&chat);
    assert!(t.iter().all(|l| !l.contains("2468")), "{t:#?}");
    assert!(t.iter().any(|l| l == "+CPIN: accepted ********"), "{t:#?}");
}

#[test]
fn cellular_dial_enters_the_pin_once_waits_for_registration_then_dials() {
    let t0 = Instant::now();
    let mut unlocked = false;
    let mut csq = 0;
    let (chat, sent, ev, end) = play(Chat::new(cell_plan(Some("2468")), t0), t0, true, |cmd| {
        match cmd {
            "AT+CPIN?" if unlocked => ok("+CPIN: READY"),
            "AT+CPIN?" => ok("+CPIN: SIM PIN"),
            "AT+CPIN=\"2468\"" => {
                unlocked = true;
                ok("")
            }
            // Searching for the first two rounds, then home on LTE.
            "AT+CSQ" => {
                csq += 1;
                ok(&format!("+CSQ: {},99", 8 + csq * 4))
            }
            "AT+CREG?" => ok("+CREG: 0,2"),
            "AT+CGREG?" => ok("+CGREG: 0,2"),
            "AT+CEREG?" if csq >= 2 => ok("+CEREG: 2,1,\"1A2B\",\"01C2D3E4\",7"),
            "AT+CEREG?" => ok("+CEREG: 2, 0001, 00000100, 7"),
            "AT+COPS?" if csq >= 2 => ok("+COPS: 0,0,\"Example Mobile\",7"),
            "AT+COPS?" => ok("+COPS: 0"),
            "AT+CGATT?" => ok("+CGATT: 1"),
            "ATD*99#" => "\r\nCONNECT 150000000\r\n".into(),
            _ => ok(""),
        }
    });
    assert!(chat.is_ready(), "{ev:#?}");
    assert_eq!(sent.iter().filter(|c| c.starts_with("AT+CPIN=")).count(), 1);
    assert!(transcript(&chat).iter().all(|l| !l.contains("2468")));
    assert!(transcript(&chat).iter().any(|l| l == "AT+CPIN=********"));
    let cgdcont = sent
        .iter()
        .position(|c| c.starts_with("AT+CGDCONT"))
        .expect("pdp");
    let first_poll = sent.iter().position(|c| c == "AT+CREG?").expect("poll");
    assert!(cgdcont < first_poll, "{sent:?}");
    assert_eq!(sent.last().map(String::as_str), Some("ATD*99#"));
    // Progress named the state, signal and operator.
    let progress: Vec<String> = ev
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Cellular(p @ CellProgress::Registration { .. }) => Some(p.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        progress[0].starts_with(
            "waiting for registration: searching (LTE), signal -89 dBm (2/4); 0 s of 60 s"
        ),
        "{progress:?}"
    );
    assert!(
        progress
            .last()
            .is_some_and(|p| p.starts_with("registered: home (LTE)")
                && p.contains("operator Example Mobile")),
        "{progress:?}"
    );
    assert!(ev.contains(&ChatEvent::Cellular(CellProgress::Sim(
        SimState::PinRequired
    ))));
    assert!(ev.contains(&ChatEvent::Cellular(CellProgress::PinSent)));
    // Two poll intervals (2 s each) plus settle windows: well under the 60 s bound.
    assert!(end - t0 < Duration::from_secs(10), "{:?}", end - t0);
    assert_eq!(
        chat.registration(RegKind::Cereg).map(|r| r.cell.clone()),
        Some(Some("01C2D3E4".into()))
    );
}

#[test]
fn registration_denied_fails_at_once_with_the_cause() {
    let t0 = Instant::now();
    let (chat, sent, ev, _) = play(Chat::new(cell_plan(None), t0), t0, false, |cmd| match cmd {
        "AT+CPIN?" => ok("+CPIN: READY"),
        "AT+CREG?" => ok("+CREG: 0,3"),
        "AT+CGREG?" => ok("+CGREG: 0,3"),
        "AT+CEREG?" => ok("+CEREG: 3,3,\"FFFE\",\"FFFFFFF\",7,0,15"),
        "AT+CSQ" => ok("+CSQ: 20,99"),
        _ => ok(""),
    });
    assert!(chat.is_failed());
    let (kind, message) = failed_message(&ev).expect("failed");
    assert_eq!(kind, ChatFailure::Error);
    assert!(
        message.contains("denied registration (+CEREG: 3, reject cause 15"),
        "{message}"
    );
    assert!(!sent.iter().any(|c| c.starts_with("ATD")), "{sent:?}");
    assert_eq!(
        sent.iter().filter(|c| *c == "AT+CREG?").count(),
        1,
        "no second round"
    );
}

#[test]
fn cs_denied_but_lte_registered_dials() {
    let t0 = Instant::now();
    let (chat, _, ev, _) = play(Chat::new(cell_plan(None), t0), t0, false, |cmd| match cmd {
        "AT+CPIN?" => ok("+CPIN: READY"),
        "AT+CREG?" => ok("+CREG: 0,3"),
        "AT+CGREG?" => ok("+CGREG: 0,4"),
        "AT+CEREG?" => ok("+CEREG: 0,5"),
        "ATD*99#" => "\r\nCONNECT\r\n".into(),
        _ => ok(""),
    });
    assert!(chat.is_ready(), "{ev:#?}");
}

#[test]
fn no_registration_within_the_bound_fails_naming_state_signal_and_operator() {
    let t0 = Instant::now();
    let mut cfg = cell_plan(None);
    if let Some(c) = &mut cfg.cellular {
        c.registration_wait = Duration::from_secs(20);
        c.poll_interval = Duration::from_secs(5);
    }
    let (chat, sent, ev, end) = play(Chat::new(cfg, t0), t0, false, |cmd| match cmd {
        "AT+CPIN?" => ok("+CPIN: READY"),
        "AT+CREG?" => ok("+CREG: 0,2"),
        "AT+CGREG?" => ok("+CGREG: 0,2"),
        // A 3G modem: no +CEREG.
        "AT+CEREG?" => "\r\nERROR\r\n".into(),
        "AT+CSQ" => ok("+CSQ: 3,99"),
        "AT+COPS?" => ok("+COPS: 0"),
        _ => ok(""),
    });
    assert!(chat.is_failed());
    let (kind, message) = failed_message(&ev).expect("failed");
    assert_eq!(kind, ChatFailure::Timeout);
    assert!(
        message.contains("not registered with the network after 20 s"),
        "{message}"
    );
    assert!(message.contains("searching"), "{message}");
    assert!(message.contains("-107 dBm"), "{message}");
    assert!(!sent.iter().any(|c| c.starts_with("ATD")));
    // Unsupported +CEREG? asked once only.
    assert_eq!(sent.iter().filter(|c| *c == "AT+CEREG?").count(), 1);
    assert!(sent.iter().filter(|c| *c == "AT+CREG?").count() >= 4);
    let waited = end - t0;
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(25),
        "{waited:?}"
    );
}

#[test]
fn a_registration_urc_while_waiting_ends_the_wait_at_once() {
    let t0 = Instant::now();
    let mut cfg = cell_plan(None);
    if let Some(c) = &mut cfg.cellular {
        c.poll_interval = Duration::from_secs(30);
    }
    let mut chat = Chat::new(cfg, t0);
    let mut now = t0;
    // Drive to the first wait.
    for _ in 0..50 {
        while let Some(b) = chat.poll_transmit() {
            let cmd = String::from_utf8_lossy(&b)
                .trim_end_matches('\r')
                .to_string();
            let reply = match cmd.as_str() {
                "AT+CPIN?" => ok("+CPIN: READY"),
                "AT+CREG?" => ok("+CREG: 0,2"),
                "AT+CGREG?" => ok("+CGREG: 0,2"),
                "AT+CEREG?" => ok("+CEREG: 0,2"),
                _ => ok(""),
            };
            chat.handle_input(now, reply.as_bytes());
        }
        if chat.state == State::RegWait {
            break;
        }
        now = chat.poll_timeout().expect("timer");
        chat.handle_timeout(now);
    }
    assert_eq!(chat.state, State::RegWait);
    chat.handle_input(now, b"\r\n+CEREG: 5,\"00C3\",\"0000A1B2\",7\r\n");
    assert_eq!(drain_tx(&mut chat), vec!["AT+CGATT?\r"]);
}

#[test]
fn a_puk_is_never_sent_and_fails_at_once() {
    let t0 = Instant::now();
    let (chat, sent, ev, _) =
        play(
            Chat::new(cell_plan(Some("1234")), t0),
            t0,
            false,
            |cmd| match cmd {
                "AT+CPIN?" => ok("+CPIN: SIM PUK"),
                _ => ok(""),
            },
        );
    assert!(chat.is_failed());
    assert!(!sent.iter().any(|c| c.starts_with("AT+CPIN=")), "{sent:?}");
    let (_, message) = failed_message(&ev).expect("failed");
    assert!(message.contains("SIM PUK required"), "{message}");
    assert!(message.contains("never sends a PUK"), "{message}");
}

#[test]
fn a_wrong_pin_is_sent_once_and_reported() {
    let t0 = Instant::now();
    let (chat, sent, ev, _) = play(
        Chat::new(cell_plan(Some("0000")), t0),
        t0,
        true,
        |cmd| match cmd {
            "AT+CPIN?" => ok("+CPIN: SIM PIN"),
            c if c.starts_with("AT+CPIN=") => "\r\n+CME ERROR: 16\r\n".into(),
            _ => ok(""),
        },
    );
    assert!(chat.is_failed());
    assert_eq!(sent.iter().filter(|c| c.starts_with("AT+CPIN=")).count(), 1);
    assert!(ev.iter().any(|e| matches!(
        e,
        ChatEvent::Cellular(CellProgress::PinRefused { cause }) if cause == "+CME ERROR: 16 (incorrect password)"
    )));
    let (_, message) = failed_message(&ev).expect("failed");
    assert!(message.contains("incorrect password"), "{message}");
    assert!(transcript(&chat).iter().all(|l| !l.contains("0000")));
}

#[test]
fn sim_states_without_a_pin_are_named() {
    for (reply, named) in [
        ("+CPIN: SIM PIN", "set sim_pin"),
        ("+CPIN: PH-NET PIN", "network personalization"),
        ("+CPIN: SIM PUK2", "SIM PUK2 required"),
    ] {
        let t0 = Instant::now();
        let (chat, _, ev, _) = play(Chat::new(cell_plan(None), t0), t0, false, |cmd| match cmd {
            "AT+CPIN?" => ok(reply),
            _ => ok(""),
        });
        assert!(chat.is_failed());
        let (_, message) = failed_message(&ev).expect("failed");
        assert!(message.contains(named), "{reply}: {message}");
    }
    // No SIM: +CME ERROR: 10 to AT+CPIN?.
    let t0 = Instant::now();
    let (chat, _, ev, _) = play(Chat::new(cell_plan(None), t0), t0, false, |cmd| match cmd {
        "AT+CPIN?" => "\r\n+CME ERROR: 10\r\n".into(),
        _ => ok(""),
    });
    assert!(chat.is_failed());
    let (_, message) = failed_message(&ev).expect("failed");
    assert!(message.contains("SIM not inserted"), "{message}");
}

#[test]
fn attach_error_names_its_cause() {
    let t0 = Instant::now();
    let (chat, sent, ev, _) = play(Chat::new(cell_plan(None), t0), t0, false, |cmd| match cmd {
        "AT+CPIN?" => ok("+CPIN: READY"),
        "AT+CEREG?" => ok("+CEREG: 0,1"),
        "AT+CGATT?" => ok("+CGATT: 0"),
        "AT+CGATT=1" => "\r\n+CME ERROR: 107\r\n".into(),
        _ => ok(""),
    });
    assert!(chat.is_failed());
    assert!(sent.contains(&"AT+CGATT=1".to_string()));
    let (_, message) = failed_message(&ev).expect("failed");
    assert!(
        message.contains("+CME ERROR: 107 (GPRS services not allowed)"),
        "{message}"
    );
    assert!(ev.contains(&ChatEvent::Cellular(CellProgress::Attaching)));
}

#[test]
fn registration_wait_zero_skips_the_polls() {
    let t0 = Instant::now();
    let mut cfg = cell_plan(None);
    if let Some(c) = &mut cfg.cellular {
        c.registration_wait = Duration::ZERO;
    }
    let (chat, sent, _, _) = play(Chat::new(cfg, t0), t0, false, |cmd| match cmd {
        "AT+CPIN?" => ok("+CPIN: READY"),
        "ATD*99#" => "\r\nCONNECT\r\n".into(),
        _ => ok(""),
    });
    assert!(chat.is_ready());
    assert!(!sent.iter().any(|c| c.ends_with("REG?")), "{sent:?}");
}

proptest! {
    /// A modem that sends up to three extra result codes after each answer (at once or up to
    /// 120 ms later, echo on or off): every command still gets exactly one answer, in order.
    #[test]
    fn extra_result_codes_never_answer_the_next_command(
        n in 1usize..5,
        extras in proptest::collection::vec((0usize..4, 0u64..120, any::<bool>()), 5),
        echo in any::<bool>(),
        numeric in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let init: Vec<String> = (0..n).map(|i| format!("ATS{i}?")).collect();
        let cfg = ChatConfig { init: init.clone(), ..ChatConfig::dialup(&["1"]) };
        let mut chat = Chat::new(cfg, t0);
        let (ok, extra): (&[u8], &[u8]) = if numeric { (b"0\r", b"3\r") } else { (b"\r\nOK\r\n", b"\r\nNO CARRIER\r\n") };
        let mut now = t0;
        let mut sent = Vec::new();
        for (i, (k, late, second_ok)) in extras.iter().enumerate().take(n) {
            let tx = drain_tx(&mut chat);
            prop_assert_eq!(tx.len(), 1, "one command at a time: {:?}", tx);
            let cmd = tx[0].trim_end_matches('\r').to_string();
            prop_assert_eq!(&cmd, &init[i]);
            sent.push(cmd.clone());
            if echo {
                chat.handle_input(now, format!("{cmd}\r").as_bytes());
            }
            chat.handle_input(now, ok);
            for j in 0..*k {
                let t = now + Duration::from_millis(*late * (j as u64 + 1) / 4);
                chat.handle_timeout(t);
                prop_assert!(drain_tx(&mut chat).is_empty(), "nothing sent inside the settle window");
                chat.handle_input(t, if *second_ok { ok } else { extra });
            }
            now += Duration::from_millis(150);
            chat.handle_timeout(now);
        }
        let tx = drain_tx(&mut chat);
        prop_assert_eq!(tx, vec!["ATDT1\r".to_string()]);
        prop_assert!(!chat.is_failed());
        prop_assert_eq!(sent, init);
    }
}

#[test]
fn cs_denied_with_no_packet_registration_answered_fails() {
    let t0 = Instant::now();
    let (chat, _, ev, _) = play(Chat::new(cell_plan(None), t0), t0, false, |cmd| match cmd {
        "AT+CPIN?" => ok("+CPIN: READY"),
        "AT+CREG?" => ok("+CREG: 2,3,\"00C3\",\"A1B2\""),
        "AT+CGREG?" | "AT+CEREG?" => "\r\nERROR\r\n".into(),
        _ => ok(""),
    });
    assert!(chat.is_failed());
    let (_, message) = failed_message(&ev).expect("failed");
    assert!(
        message.contains("denied registration (+CREG: 3)"),
        "{message}"
    );
}

#[test]
fn a_modem_without_registration_queries_dials_without_waiting() {
    let t0 = Instant::now();
    let (chat, sent, _, _) = play(Chat::new(cell_plan(None), t0), t0, false, |cmd| match cmd {
        "AT+CPIN?" => "\r\nERROR\r\n".into(),
        c if c.ends_with("REG?") => "\r\nERROR\r\n".into(),
        "ATD*99#" => "\r\nCONNECT\r\n".into(),
        _ => ok(""),
    });
    assert!(chat.is_ready());
    assert!(transcript(&chat)
        .iter()
        .any(|l| l.contains("answers no registration query")));
    assert_eq!(sent.iter().filter(|c| *c == "AT+CREG?").count(), 1);
}
