//! Our AT chat against our mock modem over an in-memory wire with a simulated clock.

use std::time::{Duration, Instant};

use masqdial_at::{Chat, ChatConfig, ChatEvent, ChatFailure, LoginStep, RedialPolicy};
use masqdial_sim::modem::{
    Answerer, CallResult, EchoAnswerer, MockModem, MockModemConfig, Outcome,
};

/// Runs chat and modem against each other until the chat is ready/failed or `limit` passes.
/// Returns the events (with the simulated time they were seen) and the time it ended.
fn run(
    chat: &mut Chat,
    modem: &mut MockModem,
    t0: Instant,
) -> (Vec<(Duration, ChatEvent)>, Instant) {
    let mut now = t0;
    let mut events = Vec::new();
    let limit = t0 + Duration::from_secs(600);
    loop {
        let mut moved = true;
        while moved {
            moved = false;
            while let Some(b) = chat.poll_transmit() {
                modem.handle_input(now, &b);
                moved = true;
            }
            while let Some(b) = modem.poll_transmit() {
                chat.handle_input(now, &b);
                moved = true;
            }
            while let Some(e) = chat.poll_event() {
                events.push((now - t0, e));
            }
        }
        if chat.is_ready() || chat.is_failed() {
            return (events, now);
        }
        let next = [chat.poll_timeout(), modem.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else {
            return (events, now);
        };
        assert!(next <= limit, "simulation ran away");
        now = now.max(next);
        chat.handle_timeout(now);
        modem.handle_timeout(now);
    }
}

fn echo_modem(config: MockModemConfig) -> MockModem {
    MockModem::new(
        config,
        Box::new(|_: &str| Box::new(EchoAnswerer::default()) as Box<dyn Answerer>),
    )
}

fn failed_kind(events: &[(Duration, ChatEvent)]) -> Option<ChatFailure> {
    events.iter().find_map(|(_, e)| match e {
        ChatEvent::Failed { kind, .. } => Some(*kind),
        _ => None,
    })
}

#[test]
fn init_dial_connect_reports_speed() {
    let t0 = Instant::now();
    let mut cfg = MockModemConfig::default();
    cfg.outcomes.insert(
        "5551234".into(),
        "CONNECT 115200/V42BIS@300ms"
            .parse()
            .expect("valid outcome"),
    );
    let mut modem = echo_modem(cfg);
    let mut chat = Chat::new(ChatConfig::dialup(&["5551234"]), t0);
    let (ev, end) = run(&mut chat, &mut modem, t0);
    assert!(chat.is_ready(), "{ev:?}");
    // 300 ms to CONNECT plus the chat's settle window after each of the two init OKs.
    assert_eq!(
        end - t0,
        Duration::from_millis(300) + 2 * ChatConfig::default().settle
    );
    let kinds: Vec<&ChatEvent> = ev.iter().map(|(_, e)| e).collect();
    assert!(matches!(
        kinds[0],
        ChatEvent::ModemInit {
            step: 1,
            count: 2,
            ..
        }
    ));
    assert!(matches!(
        kinds[2],
        ChatEvent::Dialing {
            index: 1,
            count: 1,
            attempt: 1,
            ..
        }
    ));
    assert_eq!(
        kinds[3],
        &ChatEvent::Connected {
            speed: Some(115200),
            extras: Some("V42BIS".into())
        }
    );
    assert_eq!(kinds[4], &ChatEvent::Ready);
    assert!(chat.take_remaining().is_empty());
    assert!(modem.in_call());
}

#[test]
fn busy_then_next_number_connects() {
    let t0 = Instant::now();
    let mut cfg = MockModemConfig::default();
    cfg.outcomes
        .insert("111".into(), "BUSY@1s".parse().expect("valid outcome"));
    cfg.outcomes.insert(
        "222".into(),
        "CONNECT 33600@2s".parse().expect("valid outcome"),
    );
    let mut modem = echo_modem(cfg);
    let mut plan = ChatConfig::dialup(&["111", "222"]);
    plan.redial.next_number_delay = Duration::from_millis(500);
    let mut chat = Chat::new(plan, t0);
    let (ev, end) = run(&mut chat, &mut modem, t0);
    assert!(chat.is_ready());
    // 1 s busy + 0.5 s pause + 2 s to connect, after two init commands' settle windows.
    assert_eq!(
        end - t0,
        Duration::from_millis(3500) + 2 * ChatConfig::default().settle
    );
    assert!(ev.iter().any(|(_, e)| matches!(
        e,
        ChatEvent::Redial { kind: ChatFailure::Busy, number, next_number, .. }
            if number == "111" && next_number == "222"
    )));
    assert!(ev.iter().any(|(_, e)| matches!(
        e,
        ChatEvent::Dialing {
            index: 2,
            count: 2,
            ..
        }
    )));
}

#[test]
fn no_answer_exhausts_redial_rounds_with_delays() {
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        default_outcome: "NO ANSWER@10s".parse().expect("valid outcome"),
        ..MockModemConfig::default()
    };
    let mut modem = echo_modem(cfg);
    let mut plan = ChatConfig::dialup(&["1", "2"]);
    plan.init = vec!["ATZ".into()];
    plan.redial = RedialPolicy {
        attempts: 3,
        next_number_delay: Duration::from_secs(2),
        round_delay: Duration::from_secs(20),
    };
    let mut chat = Chat::new(plan, t0);
    let (ev, end) = run(&mut chat, &mut modem, t0);
    assert_eq!(failed_kind(&ev), Some(ChatFailure::NoAnswer));
    let dial_times: Vec<(Duration, u32, usize)> = ev
        .iter()
        .filter_map(|(t, e)| match e {
            ChatEvent::Dialing { attempt, index, .. } => Some((*t, *attempt, *index)),
            _ => None,
        })
        .collect();
    // Everything after the one init command's settle window.
    let settle = ChatConfig::default().settle;
    let s = |n| Duration::from_secs(n) + settle;
    assert_eq!(
        dial_times,
        vec![
            (s(0), 1, 1),
            (s(12), 1, 2),
            (s(42), 2, 1),
            (s(54), 2, 2),
            (s(84), 3, 1),
            (s(96), 3, 2),
        ]
    );
    assert_eq!(end - t0, s(106));
    assert_eq!(modem.stats().calls, 6);
}

#[test]
fn no_dialtone_fails_without_retry() {
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        default_outcome: Outcome::now(CallResult::NoDialtone),
        ..MockModemConfig::default()
    };
    let mut modem = echo_modem(cfg);
    let mut chat = Chat::new(ChatConfig::dialup(&["1", "2"]), t0);
    let (ev, _) = run(&mut chat, &mut modem, t0);
    assert_eq!(failed_kind(&ev), Some(ChatFailure::NoDialtone));
    assert_eq!(modem.stats().calls, 1);
}

#[test]
fn init_error_fails() {
    let t0 = Instant::now();
    let mut modem = echo_modem(MockModemConfig::default());
    let mut plan = ChatConfig::dialup(&["1"]);
    plan.init = vec!["ATZ".into(), "AT&Q9Y".into()];
    let mut chat = Chat::new(plan, t0);
    let (ev, _) = run(&mut chat, &mut modem, t0);
    assert_eq!(failed_kind(&ev), Some(ChatFailure::Error));
    assert!(ev.iter().any(|(_, e)| matches!(
        e,
        ChatEvent::Failed { message, .. } if message.contains("AT&Q9Y")
    )));
}

#[test]
fn silent_modem_times_out_on_init() {
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        silent: true,
        ..MockModemConfig::default()
    };
    let mut modem = echo_modem(cfg);
    let mut chat = Chat::new(ChatConfig::dialup(&["1"]), t0);
    let (ev, end) = run(&mut chat, &mut modem, t0);
    assert_eq!(failed_kind(&ev), Some(ChatFailure::Timeout));
    assert_eq!(end - t0, Duration::from_secs(5));
}

#[test]
fn silent_dial_times_out_and_is_aborted() {
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        default_outcome: Outcome::now(CallResult::Silent),
        ..MockModemConfig::default()
    };
    let mut modem = echo_modem(cfg);
    let mut plan = ChatConfig::dialup(&["1"]);
    plan.dial_timeout = Duration::from_secs(45);
    let mut chat = Chat::new(plan, t0);
    let (ev, end) = run(&mut chat, &mut modem, t0);
    assert_eq!(failed_kind(&ev), Some(ChatFailure::Timeout));
    assert_eq!(
        end - t0,
        Duration::from_secs(45) + 2 * ChatConfig::default().settle
    );
    assert!(!modem.in_call());
}

#[test]
fn echo_on_and_off_and_numeric_mode() {
    for init in [
        vec!["ATZ", "ATE1 V1"],
        vec!["ATZ", "ATE0 V1"],
        vec!["ATZ", "ATE1 V0"],
        vec!["ATZ", "ATE0V0"],
    ] {
        let t0 = Instant::now();
        let mut cfg = MockModemConfig::default();
        cfg.outcomes.insert("7".into(), Outcome::connect(57600));
        let mut modem = echo_modem(cfg);
        let mut plan = ChatConfig::dialup(&["7"]);
        plan.init = init.iter().map(|s| (*s).to_string()).collect();
        let mut chat = Chat::new(plan, t0);
        let (ev, _) = run(&mut chat, &mut modem, t0);
        assert!(chat.is_ready(), "{init:?}: {ev:?}");
        assert_eq!(chat.connect_info(), Some((Some(57600), None)), "{init:?}");
    }
}

/// A far end with a text login prompt before PPP.
struct LoginAnswerer {
    out: Vec<Vec<u8>>,
    rx: Vec<u8>,
    stage: u8,
}

impl Answerer for LoginAnswerer {
    fn handle_input(&mut self, _now: Instant, bytes: &[u8]) {
        self.rx.extend_from_slice(bytes);
        let text = String::from_utf8_lossy(&self.rx).into_owned();
        if self.stage == 0 && text.contains("alice\r") {
            self.stage = 1;
            self.rx.clear();
            self.out.push(b"Password: ".to_vec());
        } else if self.stage == 1 && text.contains("s3cret\r") {
            self.stage = 2;
            self.out
                .push(b"\r\nPPP session starting\r\n~\xff\x03".to_vec());
        }
    }
    fn poll_output(&mut self) -> Option<Vec<u8>> {
        (!self.out.is_empty()).then(|| self.out.remove(0))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn is_closed(&self) -> bool {
        false
    }
}

#[test]
fn login_script_then_ppp_bytes() {
    let t0 = Instant::now();
    let mut modem = MockModem::new(
        MockModemConfig::default(),
        Box::new(|_: &str| {
            Box::new(LoginAnswerer {
                out: vec![b"\r\nWelcome\r\nlogin: ".to_vec()],
                rx: Vec::new(),
                stage: 0,
            }) as Box<dyn Answerer>
        }),
    );
    let mut plan = ChatConfig::dialup(&["1"]);
    plan.login = vec![
        LoginStep {
            expect: "login:".into(),
            send: "alice".into(),
            secret: false,
            timeout: Duration::from_secs(10),
        },
        LoginStep {
            expect: "Password:".into(),
            send: "s3cret".into(),
            secret: true,
            timeout: Duration::from_secs(10),
        },
        LoginStep {
            expect: "starting".into(),
            send: String::new(),
            secret: false,
            timeout: Duration::from_secs(10),
        },
    ];
    // The last step sends an empty line; harmless for PPP peers.
    let mut chat = Chat::new(plan, t0);
    let (ev, _) = run(&mut chat, &mut modem, t0);
    assert!(chat.is_ready(), "{ev:?}");
    let rest = chat.take_remaining();
    assert!(rest.ends_with(b"~\xff\x03"), "{rest:?}");
    assert!(chat.transcript().all(|l| !l.text.contains("s3cret")));
}

#[test]
fn cellular_sets_pdp_context() {
    let t0 = Instant::now();
    let mut cfg = MockModemConfig::default();
    cfg.outcomes
        .insert("*99#".into(), Outcome::connect(7_200_000));
    let mut modem = echo_modem(cfg);
    let mut chat = Chat::new(ChatConfig::cellular("internet"), t0);
    let (ev, _) = run(&mut chat, &mut modem, t0);
    assert!(chat.is_ready(), "{ev:?}");
    assert_eq!(modem.pdp_context(), Some("1,\"IP\",\"internet\""));
    assert_eq!(chat.connect_info(), Some((Some(7_200_000), None)));
}

#[test]
fn no_carrier_while_dialling_moves_on() {
    let t0 = Instant::now();
    let mut cfg = MockModemConfig::default();
    cfg.outcomes
        .insert("1".into(), Outcome::now(CallResult::NoCarrier));
    let mut modem = echo_modem(cfg);
    let mut plan = ChatConfig::dialup(&["1", "2"]);
    plan.redial.next_number_delay = Duration::ZERO;
    let mut chat = Chat::new(plan, t0);
    let (ev, _) = run(&mut chat, &mut modem, t0);
    assert!(chat.is_ready());
    assert!(ev.iter().any(|(_, e)| matches!(
        e,
        ChatEvent::Redial {
            kind: ChatFailure::NoCarrier,
            ..
        }
    )));
}
