//! Fuzz the AT chat input path: arbitrary modem bytes (split at arbitrary points, with timer
//! firings), dial-up or cellular plan. Properties: the chat ends ready or failed or still
//! waiting, never both; exactly one `Failed` event when it failed and nothing after it; at most
//! one command is outstanding (never two transmits without input or a timer in between, apart
//! from the dial abort); the SIM PIN is sent at most once and never shows in the transcript.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use masqdial_at::{CellularDial, Chat, ChatConfig, ChatEvent, LoginStep};

const PIN: &str = "80417";

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let mut cfg = if ctl & 2 == 2 {
        let mut c = ChatConfig::cellular("internet");
        c.cellular = Some(CellularDial {
            sim_pin: Some(PIN.into()),
            registration_wait: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
        });
        c
    } else {
        ChatConfig::dialup(&["1", "2"])
    };
    if ctl & 1 == 1 {
        cfg.login = vec![LoginStep {
            expect: "ogin:".into(),
            send: "user".into(),
            secret: false,
            timeout: Duration::from_secs(1),
        }];
    }
    if ctl & 4 == 4 {
        cfg.settle = Duration::ZERO;
    }
    let mut chat = Chat::new(cfg, t0);
    let step = usize::from(ctl >> 3).max(1);
    let mut events = Vec::new();
    let mut pins = 0;
    let mut check_tx = |chat: &mut Chat| {
        let mut commands = 0;
        while let Some(b) = chat.poll_transmit() {
            if b != b"\r" && !chat.is_ready() {
                commands += 1;
            }
            if String::from_utf8_lossy(&b).contains(PIN) {
                pins += 1;
            }
        }
        assert!(commands <= 2, "{commands} commands at once");
    };
    for (i, chunk) in rest.chunks(step).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 900);
        chat.handle_input(now, chunk);
        check_tx(&mut chat);
        chat.handle_timeout(now);
        check_tx(&mut chat);
        events.extend(std::iter::from_fn(|| chat.poll_event()));
    }
    assert!(!(chat.is_ready() && chat.is_failed()));
    let failed = events
        .iter()
        .filter(|e| matches!(e, ChatEvent::Failed { .. }))
        .count();
    assert_eq!(failed, usize::from(chat.is_failed()));
    if chat.is_failed() {
        assert!(matches!(events.last(), Some(ChatEvent::Failed { .. })));
        assert!(chat.failure().is_some());
    }
    assert!(pins <= 1, "PIN sent {pins} times");
    // The PIN (when one is configured) never shows, even when the modem itself says it.
    if ctl & 2 == 2 {
        assert!(chat.transcript().all(|l| !l.text.contains(PIN)));
    }
    let _ = chat.take_remaining();
});
