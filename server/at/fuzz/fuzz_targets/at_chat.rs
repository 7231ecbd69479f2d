//! Fuzz the AT chat input path: arbitrary modem bytes (split at arbitrary points, with timer firings)
//! are handled without a panic, in every chat state.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use masqdial_at::{Chat, ChatConfig, LoginStep};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let mut cfg = ChatConfig::dialup(&["1", "2"]);
    if ctl & 1 == 1 {
        cfg.login = vec![LoginStep {
            expect: "ogin:".into(),
            send: "user".into(),
            secret: false,
            timeout: Duration::from_secs(1),
        }];
    }
    let mut chat = Chat::new(cfg, t0);
    let step = usize::from(ctl >> 1).max(1);
    for (i, chunk) in rest.chunks(step).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 900);
        chat.handle_input(now, chunk);
        chat.handle_timeout(now);
        while chat.poll_transmit().is_some() {}
        while chat.poll_event().is_some() {}
    }
    let _ = chat.take_remaining();
    let _ = chat.transcript().count();
});
