//! Fuzz the cellular status parsers and the status poll. Properties: a registration line
//! that parses has fields of 27.007's shapes (stat 0..=11, `<n>` 0..=5, hex area / cell /
//! RAC, AcT 0..=15) and parses back to the same values from its rendering; +CSQ values are in
//! range; the poll always finishes once time runs on.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use masqdial_at::cell::{self, CellPoll, RegKind};

fn hex(s: &Option<String>) -> bool {
    s.as_ref()
        .is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    if let Some(s) = cell::parse_csq(&line) {
        assert!(s.rssi <= 31 || s.rssi == 99);
        assert!(s.ber <= 7 || s.ber == 99);
        assert_eq!(s.dbm().is_some(), s.rssi <= 31);
    }
    if let Some(o) = cell::parse_cops(&line) {
        assert!(o.mode <= 4);
    }
    let _ = cell::parse_cpin(&line).map(|s| (s.describe(), s.needs_puk()));
    for kind in RegKind::ALL {
        // Also try the bytes as the body of each kind's line.
        for candidate in [line.to_string(), format!("{}: {line}", kind.prefix())] {
            let Some(r) = cell::parse_registration(kind.prefix(), &candidate) else {
                continue;
            };
            assert!(r.status.code() <= 11);
            assert!(r.mode.is_none_or(|n| n <= 5));
            assert!(r.act.is_none_or(|a| a <= 15));
            assert!(
                hex(&r.area) && hex(&r.cell) && hex(&r.rac),
                "{candidate:?} {r:?}"
            );
            let again =
                cell::parse_registration(kind.prefix(), &cell::render_registration(kind, &r))
                    .expect("a rendering parses");
            assert_eq!(
                (again.status, again.mode, &again.area, &again.cell),
                (r.status, r.mode, &r.area, &r.cell),
                "{candidate:?}"
            );
        }
    }
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
