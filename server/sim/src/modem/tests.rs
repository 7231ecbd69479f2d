//! Unit tests of the mock modem's command interpreter, escape, throttle and faults.

use super::*;

fn modem(config: MockModemConfig) -> MockModem {
    MockModem::new(
        config,
        Box::new(|_n: &str| Box::new(EchoAnswerer::default())),
    )
}

fn out(m: &mut MockModem) -> String {
    let mut s = Vec::new();
    while let Some(b) = m.poll_transmit() {
        s.extend(b);
    }
    String::from_utf8_lossy(&s).into_owned()
}

#[test]
fn echo_verbose_and_chained() {
    let t0 = Instant::now();
    let mut m = modem(MockModemConfig::default());
    m.handle_input(t0, b"AT&F E0 V1 S7=45 S7?\r");
    assert_eq!(out(&mut m), "AT&F E0 V1 S7=45 S7?\r\r\n045\r\n\r\nOK\r\n");
    m.handle_input(t0, b"ATV0\r");
    assert_eq!(out(&mut m), "0\r");
    m.handle_input(t0, b"ATQ1\r");
    assert_eq!(out(&mut m), "");
    m.handle_input(t0, b"ATQ0 V1 Y\r");
    assert_eq!(out(&mut m), "\r\nERROR\r\n");
    m.handle_input(t0, b"ATI\r");
    assert_eq!(out(&mut m), "\r\nmasqdial mock modem 1.0\r\n\r\nOK\r\n");
    m.handle_input(t0, b"AT+CGDCONT=1,\"IP\",\"apn\"\r");
    assert_eq!(out(&mut m), "\r\nOK\r\n");
    assert_eq!(m.pdp_context(), Some("1,\"IP\",\"apn\""));
}

#[test]
fn scripted_outcomes_with_delay() {
    let t0 = Instant::now();
    let mut cfg = MockModemConfig::default();
    cfg.outcomes
        .insert("111".into(), "BUSY@2s".parse().expect("valid outcome"));
    cfg.outcomes.insert(
        "222".into(),
        "CONNECT 33600/V42BIS".parse().expect("valid outcome"),
    );
    let mut m = modem(cfg);
    m.handle_input(t0, b"ATE0\r");
    let _ = out(&mut m);
    m.handle_input(t0, b"ATDT111\r");
    assert_eq!(out(&mut m), "");
    assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    m.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(out(&mut m), "\r\nBUSY\r\n");
    m.handle_input(t0, b"ATDP 222\r");
    assert_eq!(out(&mut m), "\r\nCONNECT 33600/V42BIS\r\n");
    assert!(m.in_call());
    m.handle_input(t0, b"hello");
    assert_eq!(out(&mut m), "hello");
}

#[test]
fn escape_needs_guard_time_then_ath() {
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        s12: 5, // 100 ms
        ..MockModemConfig::default()
    };
    let mut m = modem(cfg);
    m.handle_input(t0, b"ATE0D1\r");
    assert!(out(&mut m).contains("CONNECT 115200"));
    // No guard before: the pluses are data.
    m.handle_input(t0 + Duration::from_millis(50), b"+++");
    assert_eq!(out(&mut m), "+++");
    let t1 = t0 + Duration::from_millis(200);
    m.handle_input(t1, b"+++");
    assert_eq!(out(&mut m), "");
    assert_eq!(m.poll_timeout(), Some(t1 + Duration::from_millis(100)));
    m.handle_timeout(t1 + Duration::from_millis(100));
    assert_eq!(out(&mut m), "\r\nOK\r\n");
    m.handle_input(t1, b"ATO\r");
    assert_eq!(out(&mut m), "\r\nCONNECT 115200\r\n");
    let t2 = t1 + Duration::from_secs(1);
    m.handle_input(t2, b"+++");
    m.handle_timeout(t2 + Duration::from_millis(100));
    m.handle_input(t2, b"ATH\r");
    assert_eq!(out(&mut m), "\r\nOK\r\n\r\nOK\r\n");
    assert!(!m.in_call());
    assert_eq!(m.stats().escapes, 2);
}

#[test]
fn carrier_loss_and_far_end_close() {
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        carrier_loss_after: Some(Duration::from_secs(3)),
        ..MockModemConfig::default()
    };
    let mut m = modem(cfg);
    m.handle_input(t0, b"ATE0D1\r");
    let _ = out(&mut m);
    m.handle_timeout(t0 + Duration::from_secs(3));
    assert_eq!(out(&mut m), "\r\nNO CARRIER\r\n");
    m.handle_input(t0, b"ATD1\r");
    let _ = out(&mut m);
    m.handle_input(t0, b"BYE\r");
    assert_eq!(out(&mut m), "BYE\r\r\nNO CARRIER\r\n");
}

#[test]
fn throttle_releases_at_line_rate() {
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        baud: 9600, // 960 bytes/s
        ..MockModemConfig::default()
    };
    let mut m = modem(cfg);
    m.handle_input(t0, b"ATE0D1\r");
    let _ = out(&mut m);
    m.handle_input(t0, &[b'x'; 960]);
    let mut got = 0usize;
    let mut now = t0;
    while let Some(t) = m.poll_timeout() {
        now = t;
        m.handle_timeout(t);
        got += out(&mut m).len();
    }
    assert_eq!(got, 960);
    // 960 bytes each way at 960 B/s, full duplex: the echo overlaps the upload, so ≈ 1 s
    // plus one batch of pipeline delay; never faster than the line.
    let took = now - t0;
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_millis(1200), "{took:?}");
}

#[test]
fn noise_is_seeded() {
    let run = || {
        let t0 = Instant::now();
        let cfg = MockModemConfig {
            noise: Some(Noise { rate: 0.1, seed: 7 }),
            ..MockModemConfig::default()
        };
        let mut m = modem(cfg);
        m.handle_input(t0, b"ATE0D1\r");
        let _ = out(&mut m);
        m.handle_input(t0, &[0u8; 1000]);
        (out(&mut m), m.stats().corrupted)
    };
    let (a, ca) = run();
    let (b, cb) = run();
    assert_eq!(a, b);
    assert_eq!(ca, cb);
    assert!(ca > 100 && ca < 300, "{ca}");
}

#[test]
fn silent_modem_says_nothing_and_dial_abort() {
    let t0 = Instant::now();
    let mut cfg = MockModemConfig::default();
    cfg.outcomes
        .insert("9".into(), Outcome::now(CallResult::Silent));
    let mut m = modem(cfg);
    m.handle_input(t0, b"ATE0D9\r");
    assert_eq!(out(&mut m), "ATE0D9\r"); // echoed before E0 takes effect
    m.handle_input(t0, b"\r");
    assert_eq!(out(&mut m), "\r\nNO CARRIER\r\n");
    m.set_silent(true);
    m.handle_input(t0, b"ATZ\r");
    assert_eq!(out(&mut m), "");
}

#[test]
fn outcome_parse_errors() {
    assert!("FOO".parse::<Outcome>().is_err());
    assert!("BUSY@x".parse::<Outcome>().is_err());
    assert_eq!(
        "no answer@500ms".parse::<Outcome>(),
        Ok(Outcome {
            result: CallResult::NoAnswer,
            delay: Duration::from_millis(500)
        })
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any DTE byte sequence, in any chunking, with timers firing, never panics the modem.
        #[test]
        /// ... and keeps its books: no more connects than calls, nothing to the far end or
        /// escaped without a connected call.
        fn any_dte_input_keeps_the_call_books(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..24),
            prefix in prop_oneof![Just(&b""[..]), Just(&b"ATE0D1\r"[..]), Just(&b"ATV0Q0S12=1\r"[..])],
            baud in prop_oneof![Just(0u32), Just(9600u32)],
        ) {
            let t0 = Instant::now();
            let cfg = MockModemConfig {
                baud,
                noise: Some(Noise { rate: 0.05, seed: 3 }),
                carrier_loss_after: Some(Duration::from_secs(5)),
                ..MockModemConfig::default()
            };
            let mut m = modem(cfg);
            m.handle_input(t0, prefix);
            for (i, c) in chunks.iter().enumerate() {
                let now = t0 + Duration::from_millis(i as u64 * 300);
                m.handle_input(now, c);
                m.handle_timeout(now);
                while m.poll_transmit().is_some() {}
                let st = m.stats();
                prop_assert!(st.connects <= st.calls, "{:?}", st);
                if st.connects == 0 {
                    prop_assert_eq!(st.bytes_up, 0);
                    prop_assert_eq!(st.escapes, 0);
                    prop_assert!(!m.in_call());
                }
            }
            let _ = m.poll_timeout();
        }

        /// Guard timed on the line: after `n` data bytes, a `+++` escapes exactly when the
        /// silence on the line (the gap minus the bytes' line time) is at least the guard.
        #[test]
        fn escape_needs_guard_silence_on_the_line(n in 1usize..400, gap_ms in 0u64..800) {
            let t0 = Instant::now();
            let mut m = modem(MockModemConfig {
                baud: 9600,
                s12: 10, // 200 ms
                guard_on_line: true,
                ..MockModemConfig::default()
            });
            m.handle_input(t0, b"ATE0D1\r");
            while m.poll_transmit().is_some() {}
            let t1 = t0 + Duration::from_secs(1);
            m.handle_input(t1, &vec![b'x'; n]);
            let t2 = t1 + Duration::from_millis(gap_ms);
            m.handle_input(t2, b"+++");
            let end = t2 + Duration::from_secs(3);
            while let Some(t) = m.poll_timeout() {
                if t > end {
                    break;
                }
                m.handle_timeout(t);
            }
            let byte = Duration::from_nanos(10_000_000_000 / 9600);
            let silence = Duration::from_millis(gap_ms).saturating_sub(byte * u32::try_from(n).unwrap_or(u32::MAX));
            let want = u64::from(silence >= Duration::from_millis(200));
            prop_assert_eq!(m.stats().escapes, want, "n {} gap {} ms", n, gap_ms);
        }
    }
}

/// One status poll (the server's sans-IO `CellPoll`) against the mock modem.
fn cell_poll(m: &mut MockModem, pin: Option<&str>) -> masqdial_at::cell::CellStatus {
    use masqdial_at::cell::CellPoll;
    let t0 = Instant::now();
    let mut p = CellPoll::new(t0, pin.map(str::to_string), Duration::from_secs(1));
    for _ in 0..100 {
        while let Some(b) = p.poll_transmit() {
            m.handle_input(t0, &b);
            let o = out(m);
            p.handle_input(t0, o.as_bytes());
        }
        if p.is_done() {
            break;
        }
    }
    assert!(p.is_done(), "the poll did not finish: {:?}", p.status());
    p.status().clone()
}

#[test]
fn cellular_status_follows_the_script_and_the_sim_pin() {
    use masqdial_at::cell::{RegStatus, SimState};
    let cfg = MockModemConfig {
        cell: vec![
            "3,2".parse().expect("state"),
            "25,5,Roam Mobile,7".parse().expect("state"),
        ],
        sim_pin: Some("4321".into()),
        ..MockModemConfig::default()
    };
    let mut m = modem(cfg);
    // Without the PIN: locked SIM, not registered, no operator.
    let s = cell_poll(&mut m, None);
    assert_eq!(s.sim, Some(SimState::PinRequired));
    assert_eq!(s.pin, None);
    assert_eq!(s.manufacturer.as_deref(), Some("masqdial"));
    assert_eq!(s.model.as_deref(), Some("mock-cellular"));
    assert_eq!(s.imei.as_deref(), Some("001010123456789"));
    assert_eq!(s.ident, ["masqdial mock modem 1.0"]);
    assert_eq!(s.signal.map(|q| (q.rssi, q.bars())), Some((3, 1)));
    assert_eq!(s.creg.map(|r| r.status), Some(RegStatus::NotRegistered));
    assert_eq!(s.operator.map(|o| o.name), Some(None));
    assert!(s.unanswered.is_empty(), "{:?}", s.unanswered);
    // A wrong PIN is refused with +CME ERROR: 16.
    let s = cell_poll(&mut m, Some("0000"));
    assert_eq!(s.pin, Some(false));
    assert_eq!(s.sim, Some(SimState::PinRequired));
    // The right PIN unlocks; the script moved on: strong signal, roaming.
    let s = cell_poll(&mut m, Some("4321"));
    assert_eq!(s.pin, Some(true));
    assert_eq!(s.sim, Some(SimState::Ready));
    assert_eq!(s.signal.and_then(|q| q.dbm()), Some(-63));
    assert_eq!(s.cereg.map(|r| r.status), Some(RegStatus::Roaming));
    assert_eq!(
        s.operator.and_then(|o| o.name).as_deref(),
        Some("Roam Mobile")
    );
    assert!("x,1".parse::<CellState>().is_err());
}

/// A far end that has five 100-byte frames ready as soon as the call is answered.
struct Burst(VecDeque<Vec<u8>>);

impl Answerer for Burst {
    fn handle_input(&mut self, _now: Instant, _bytes: &[u8]) {}
    fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.0.pop_front()
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
fn down_buffer_drops_whole_frames_that_do_not_fit() {
    let t0 = Instant::now();
    let cfg = MockModemConfig {
        baud: 9600,
        down_buffer: Some(250),
        ..MockModemConfig::default()
    };
    let mut m = MockModem::new(
        cfg,
        Box::new(|_n: &str| {
            Box::new(Burst((0..5u8).map(|i| vec![b'a' + i; 100]).collect())) as Box<dyn Answerer>
        }),
    );
    m.handle_input(t0, b"ATE0D1\r");
    assert_eq!(out(&mut m), "ATE0D1\r\r\nCONNECT 115200\r\n");
    // Two frames fit in 250 bytes; the other three are dropped whole.
    assert_eq!(m.stats().down_dropped, 3);
    assert_eq!(m.stats().down_queued, 200);
    assert_eq!(m.stats().down_queue_peak, 200);
    let mut got = String::new();
    while let Some(t) = m.poll_timeout() {
        m.handle_timeout(t);
        got.push_str(&out(&mut m));
    }
    assert_eq!(got, format!("{}{}", "a".repeat(100), "b".repeat(100)));
    assert_eq!(m.stats().down_queued, 0);
    assert_eq!(m.stats().down_queue_peak, 200);
}

#[test]
fn extra_result_codes_after_ath_and_atz() {
    let t0 = Instant::now();
    let cfg = |extra| MockModemConfig {
        extra_codes: extra,
        echo: false,
        ..MockModemConfig::default()
    };
    let mut m = modem(cfg(ExtraCodes::NoCarrierThenOk));
    m.handle_input(t0, b"ATH\r");
    assert_eq!(out(&mut m), "\r\nNO CARRIER\r\n\r\nOK\r\n");
    m.handle_input(t0, b"ATE0\r");
    assert_eq!(out(&mut m), "\r\nOK\r\n", "only H and Z lines get extras");
    let mut m = modem(cfg(ExtraCodes::DoubleOk));
    m.handle_input(t0, b"ATZ\r");
    assert_eq!(out(&mut m), "\r\nOK\r\n\r\nOK\r\n");
    let late = Duration::from_millis(150);
    let mut m = modem(cfg(ExtraCodes::LateOk(late)));
    m.handle_input(t0, b"ATH\r");
    assert_eq!(out(&mut m), "\r\nOK\r\n");
    assert_eq!(m.poll_timeout(), Some(t0 + late));
    m.handle_timeout(t0 + late);
    assert_eq!(out(&mut m), "\r\nOK\r\n");
    assert_eq!(m.stats().extra_codes, 1);
}

#[test]
fn stored_profile_numeric_no_echo_and_ats12() {
    let t0 = Instant::now();
    let mut m = modem(MockModemConfig {
        echo: false,
        verbose: false,
        ..MockModemConfig::default()
    });
    m.handle_input(t0, b"ATZ\r");
    assert_eq!(out(&mut m), "0\r");
    m.handle_input(t0, b"ATE1V1S12=10\r");
    assert_eq!(out(&mut m), "\r\nOK\r\n", "E1 takes effect after the line");
    m.handle_input(t0, b"ATS12?\r");
    assert_eq!(out(&mut m), "ATS12?\r\r\n010\r\n\r\nOK\r\n");
    // ATZ restores the stored profile (E0 V0) and S12 from the config.
    m.handle_input(t0, b"ATZ\r");
    assert_eq!(out(&mut m), "ATZ\r0\r");
    m.handle_input(t0, b"ATS12?\r");
    assert_eq!(out(&mut m), "050\r\n0\r");
}

/// Guard timed on the line: at 9600 baud 200 bytes take 208 ms to cross; a `+++` that arrives
/// 150 ms after them (more than the 100 ms guard after their *arrival*) still follows them with
/// no silence on the line, so it is data. The same modem timing arrivals escapes.
#[test]
fn guard_on_the_line_counts_queued_bytes() {
    let run = |on_line: bool, gap_ms: u64| {
        let t0 = Instant::now();
        let mut m = modem(MockModemConfig {
            baud: 9600,
            s12: 5,
            guard_on_line: on_line,
            ..MockModemConfig::default()
        });
        m.handle_input(t0, b"ATE0D1\r");
        let _ = out(&mut m);
        let t1 = t0 + Duration::from_secs(1);
        m.handle_input(t1, &[b'x'; 200]);
        let t2 = t1 + Duration::from_millis(gap_ms);
        m.handle_input(t2, b"+++");
        let mut now = t2;
        while let Some(t) = m.poll_timeout() {
            if t > t2 + Duration::from_secs(2) {
                break;
            }
            now = t;
            m.handle_timeout(t);
        }
        let _ = now;
        (m.stats().escapes, m.stats().escapes_missed)
    };
    assert_eq!(run(false, 150).0, 1, "arrival-timed guard escapes");
    assert_eq!(run(true, 150).0, 0, "queued bytes count against the guard");
    // 208 ms on the line + 100 ms guard: a `+++` arriving 320 ms later escapes.
    assert_eq!(run(true, 320).0, 1);
}

#[test]
fn dtr_settings() {
    let t0 = Instant::now();
    let mut m = modem(MockModemConfig::default());
    m.handle_input(t0, b"ATE0&D0D1\r");
    assert!(out(&mut m).contains("CONNECT"));
    m.dtr_drop(t0);
    assert!(m.in_call(), "&D0 ignores DTR");
    assert_eq!(out(&mut m), "");
    m.handle_input(t0, b"");
    let mut m = modem(MockModemConfig::default());
    m.handle_input(t0, b"ATE0&D1D1\r");
    let _ = out(&mut m);
    m.dtr_drop(t0);
    assert_eq!(out(&mut m), "\r\nOK\r\n", "&D1: online command state");
    assert!(m.in_call());
    m.handle_input(t0, b"ATH\r");
    assert!(!m.in_call());
    let mut m = modem(MockModemConfig::default());
    m.handle_input(t0, b"ATE0&D2D1\r");
    let _ = out(&mut m);
    m.dtr_drop(t0);
    assert_eq!(out(&mut m), "\r\nNO CARRIER\r\n");
    assert!(!m.in_call());
    m.handle_input(t0, b"AT&D3\r");
    assert_eq!(out(&mut m), "\r\nERROR\r\n");
}

#[test]
fn left_online_then_escape_and_silent_mid_call() {
    let t0 = Instant::now();
    let mut m = modem(MockModemConfig {
        online_at_start: true,
        s12: 5,
        ..MockModemConfig::default()
    });
    assert!(m.in_call());
    m.handle_input(t0, b"ATZ\r");
    assert_eq!(out(&mut m), "ATZ\r", "data to the far end (echoed back)");
    let t1 = t0 + Duration::from_millis(200);
    m.handle_input(t1, b"+++");
    m.handle_timeout(t1 + Duration::from_millis(100));
    assert_eq!(out(&mut m), "\r\nOK\r\n");
    m.handle_input(t1 + Duration::from_millis(150), b"ATH\r");
    assert!(!m.in_call());

    let mut m = modem(MockModemConfig {
        silent_after: Some(Duration::from_secs(1)),
        ..MockModemConfig::default()
    });
    m.handle_input(t0, b"ATE0D1\r");
    let _ = out(&mut m);
    m.handle_input(t0, b"hi");
    assert_eq!(out(&mut m), "hi");
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(m.poll_timeout(), Some(t1));
    m.handle_timeout(t1);
    m.handle_input(t1, b"hello");
    assert_eq!(out(&mut m), "");
    let t2 = t1 + Duration::from_secs(2);
    m.handle_input(t2, b"+++");
    m.handle_timeout(t2 + Duration::from_secs(2));
    assert_eq!(out(&mut m), "", "commands are ignored too");
    assert!(m.stats().ignored_silent >= 8);
    m.set_silent(false);
    m.handle_input(t2, b"x");
    assert_eq!(out(&mut m), "x", "still in the call");
}
