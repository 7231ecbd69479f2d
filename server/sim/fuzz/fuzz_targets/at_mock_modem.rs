//! Fuzz the mock modem's command interpreter and data path: arbitrary DTE bytes (split at
//! arbitrary points, with timers firing) never panic it.
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
    }
});
