//! Fuzz the cellular status parsers and the status poll: any modem output is parsed or
//! skipped, never a panic, and the poll always finishes once time runs on.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use masqdial_at::cell::{self, CellPoll};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = cell::parse_csq(&line).map(|s| (s.dbm(), s.bars()));
    let _ = cell::parse_registration("+CEREG", &line);
    let _ = cell::parse_cops(&line);
    let _ = cell::parse_cpin(&line);
    let t0 = Instant::now();
    let mut p = CellPoll::new(t0, Some("1234".into()), Duration::from_millis(10));
    let mut now = t0;
    for chunk in data.chunks(7) {
        p.handle_input(now, chunk);
        while p.poll_transmit().is_some() {}
    }
    for _ in 0..40 {
        if p.is_done() {
            break;
        }
        now = p.poll_timeout().unwrap_or(now);
        p.handle_timeout(now);
        while p.poll_transmit().is_some() {}
    }
    assert!(p.is_done());
});
