//! Fuzz the mock modem's command interpreter and data path: arbitrary DTE bytes (split at
//! arbitrary points, with timers firing). Properties: never a panic; nothing reaches the far
//! end before a call connected; the far end (an echo) never gets more bytes back to the DTE
//! than it was sent; no more connects than calls; an escape only from a connected call; and
//! `in_call` only after a connect.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use masqdial_sim::modem::{Answerer, EchoAnswerer, MockModem, MockModemConfig, Noise};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        baud: if ctl & 1 == 1 { 9600 } else { 0 },
        noise: (ctl & 2 == 2).then_some(Noise {
            rate: 0.01,
            seed: u64::from(ctl),
        }),
        ..MockModemConfig::default()
    };
    let mut m = MockModem::new(
        cfg,
        Box::new(|_: &str| Box::new(EchoAnswerer::default()) as Box<dyn Answerer>),
    );
    let step = usize::from(ctl >> 2).max(1);
    for (i, chunk) in rest.chunks(step).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 250);
        m.handle_input(now, chunk);
        m.handle_timeout(now);
        while m.poll_transmit().is_some() {}
        let st = m.stats();
        assert!(st.connects <= st.calls, "{st:?}");
        if st.connects == 0 {
            assert_eq!(st.bytes_up, 0, "data reached the far end without a call: {st:?}");
            assert_eq!(st.escapes, 0, "an escape without a call: {st:?}");
            assert!(!m.in_call(), "in a call that never connected: {st:?}");
        }
        assert!(
            st.bytes_down <= st.bytes_up,
            "the echo sent back more than it got: {st:?}"
        );
    }
});
