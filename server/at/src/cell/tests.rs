use super::*;
use proptest::prelude::*;

#[test]
fn csq_maps_to_dbm_and_bars_per_27_007() {
    // 27.007 8.5: 0 -> -113 dBm or less, 1 -> -111, 2..30 -> -109..-53, 31 -> -51 or more.
    let s = |rssi| Signal { rssi, ber: 99 };
    assert_eq!(s(0).dbm(), Some(-113));
    assert_eq!(s(1).dbm(), Some(-111));
    assert_eq!(s(2).dbm(), Some(-109));
    assert_eq!(s(30).dbm(), Some(-53));
    assert_eq!(s(31).dbm(), Some(-51));
    assert_eq!(s(99).dbm(), None);
    assert_eq!(
        [0, 1, 2, 9, 10, 14, 15, 19, 20, 31, 99].map(|r| s(r).bars()),
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 0]
    );
    assert_eq!(parse_csq("+CSQ: 17,99"), Some(Signal { rssi: 17, ber: 99 }));
    assert_eq!(parse_csq("+CSQ: 99,99"), Some(Signal { rssi: 99, ber: 99 }));
    assert_eq!(parse_csq("+CSQ: 32,0"), None);
    assert_eq!(parse_csq("+CSQ: 12"), None);
    assert_eq!(parse_csq("+CSQ 12,0"), None);
}

#[test]
fn registration_read_answers_and_unsolicited_lines() {
    // Read answer with location (n=2), LTE.
    let r = parse_registration("+CEREG", "+CEREG: 2,5,\"1A2B\",\"01C2D3E4\",7");
    assert_eq!(
        r,
        Some(Registration {
            status: RegStatus::Roaming,
            mode: Some(2),
            area: Some("1A2B".into()),
            cell: Some("01C2D3E4".into()),
            act: Some(7),
            rac: None,
            reject: None,
        })
    );
    assert!(r.as_ref().is_some_and(|r| r.status.roaming()));
    // Plain read answer.
    let r = parse_registration("+CREG", "+CREG: 0,1");
    assert_eq!(r.map(|r| r.status), Some(RegStatus::Home));
    // Unsolicited: <stat>[,<lac>,<ci>].
    let r = parse_registration("+CGREG", "+CGREG: 2");
    assert_eq!(r.map(|r| r.status), Some(RegStatus::Searching));
    let r = parse_registration("+CREG", "+CREG: 1,\"00C3\",\"A1B2\"");
    assert_eq!(
        r.map(|r| (r.status, r.area)),
        Some((RegStatus::Home, Some("00C3".into())))
    );
    assert_eq!(
        parse_registration("+CREG", "+CREG: 0,11").map(|r| (r.mode, r.status)),
        Some((Some(0), RegStatus::Rlos))
    );
    assert_eq!(parse_registration("+CREG", "+CREG: 0,12"), None);
    assert_eq!(parse_registration("+CREG", "+CGREG: 0,1"), None);
    assert_eq!(RegStatus::from_code(3), Some(RegStatus::Denied));
    assert!(!RegStatus::Searching.registered());
}

#[test]
fn cops_and_cpin() {
    assert_eq!(
        parse_cops("+COPS: 0,0,\"Example Mobile\",7"),
        Some(Operator {
            mode: 0,
            name: Some("Example Mobile".into()),
            act: Some(7),
        })
    );
    assert_eq!(
        parse_cops("+COPS: 0"),
        Some(Operator {
            mode: 0,
            name: None,
            act: None
        })
    );
    assert_eq!(parse_cops("+COPS: 9,0,\"x\""), None);
    assert_eq!(parse_cpin("+CPIN: READY"), Some(SimState::Ready));
    assert_eq!(parse_cpin("+CPIN: SIM PIN"), Some(SimState::PinRequired));
    assert_eq!(parse_cpin("+CPIN: SIM PUK"), Some(SimState::PukRequired));
    assert_eq!(
        parse_cpin("+CPIN: PH-SIM PIN"),
        Some(SimState::Other("PH-SIM PIN".into()))
    );
    assert_eq!(act_name(7), "LTE");
}

/// Play a scripted modem: answer each command line the poll sends.
fn run(pin: Option<&str>, answer: impl Fn(&str) -> String) -> (CellPoll, Vec<String>) {
    let t0 = Instant::now();
    let mut p = CellPoll::new(t0, pin.map(str::to_string), Duration::from_secs(1));
    let mut sent = Vec::new();
    let mut now = t0;
    for _ in 0..40 {
        while let Some(b) = p.poll_transmit() {
            let cmd = String::from_utf8_lossy(&b)
                .trim_end_matches('\r')
                .to_string();
            let reply = answer(&cmd);
            // Echo on, as a modem after ATZ.
            p.handle_input(now, format!("{cmd}\r").as_bytes());
            p.handle_input(now, reply.as_bytes());
            sent.push(cmd);
        }
        if p.is_done() {
            break;
        }
        now = p.poll_timeout().unwrap_or(now);
        p.handle_timeout(now);
    }
    (p, sent)
}

#[test]
fn a_poll_collects_everything_and_enters_the_pin_once() {
    let sim_ready = std::cell::Cell::new(false);
    let (p, sent) = run(Some("1234"), |cmd| {
        match cmd {
            "ATI" => "\r\nQuectel\r\nEC25\r\nRevision: EC25EFAR06A06M4G\r\n\r\nOK\r\n".into(),
            "AT+CGMI" => "\r\nQuectel\r\n\r\nOK\r\n".into(),
            "AT+CGMM" => "\r\n+CGMM: EC25\r\n\r\nOK\r\n".into(),
            "AT+CGSN" => "\r\n867698040000000\r\n\r\nOK\r\n".into(),
            "AT+CPIN?" if sim_ready.get() => "\r\n+CPIN: READY\r\n\r\nOK\r\n".into(),
            "AT+CPIN?" => "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n".into(),
            "AT+CPIN=\"1234\"" => {
                sim_ready.set(true);
                "\r\nOK\r\n".into()
            }
            "AT+CSQ" => "\r\n+CSQ: 21,99\r\n\r\nOK\r\n".into(),
            "AT+CREG?" => "\r\n+CREG: 0,5\r\n\r\nOK\r\n".into(),
            // An unsolicited ring in the middle is ignored.
            "AT+CGREG?" => "\r\nRING\r\n+CGREG: 0,5\r\n\r\nOK\r\n".into(),
            "AT+CEREG?" => "\r\n+CME ERROR: 4\r\n".into(),
            "AT+COPS?" => "\r\n+COPS: 0,0,\"Example Mobile\",7\r\n\r\nOK\r\n".into(),
            _ => "\r\nERROR\r\n".into(),
        }
    });
    assert!(p.is_done());
    let s = p.status();
    assert_eq!(s.ident, ["Quectel", "EC25", "Revision: EC25EFAR06A06M4G"]);
    assert_eq!(s.manufacturer.as_deref(), Some("Quectel"));
    assert_eq!(s.model.as_deref(), Some("EC25"));
    assert_eq!(s.imei.as_deref(), Some("867698040000000"));
    assert_eq!(s.sim, Some(SimState::Ready));
    assert_eq!(s.pin, Some(true));
    assert_eq!(s.signal.and_then(Signal::dbm), Some(-71));
    assert_eq!(s.signal.map(Signal::bars), Some(4));
    assert_eq!(s.creg.as_ref().map(|r| r.status), Some(RegStatus::Roaming));
    assert_eq!(s.cereg, None);
    assert_eq!(s.unanswered, ["AT+CEREG?"]);
    assert_eq!(
        s.registration().map(|r| r.status.roaming()),
        Some(true),
        "roaming"
    );
    assert_eq!(
        s.operator.as_ref().and_then(|o| o.name.as_deref()),
        Some("Example Mobile")
    );
    assert_eq!(sent.iter().filter(|c| c.starts_with("AT+CPIN=")).count(), 1);
    assert_eq!(p.answered(), 12);
}

#[test]
fn a_silent_modem_times_out_each_command_and_no_pin_is_sent_unasked() {
    let (p, sent) = run(Some("0000"), |_| String::new());
    assert!(p.is_done());
    assert_eq!(p.answered(), 0);
    assert_eq!(p.status().unanswered.len(), 10);
    assert!(!sent.iter().any(|c| c.contains("0000")));
    // A SIM asking for a PUK never gets the PIN either.
    let (p, sent) = run(Some("0000"), |cmd| match cmd {
        "AT+CPIN?" => "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n".into(),
        _ => "\r\nOK\r\n".into(),
    });
    assert_eq!(p.status().sim, Some(SimState::PukRequired));
    assert!(!sent.iter().any(|c| c.contains("0000")));
}

proptest! {
    #[test]
    /// Each parser takes only its own answer (`+NAME:` in any case, after trimming), and
    /// signal values stay in 27.007's ranges.
    fn parsers_take_only_their_own_answer(line in prop_oneof![
        ".{0,80}".boxed(),
        "(\\+CSQ|\\+CREG|\\+COPS|\\+CPIN|\\+csq|\\+CEREG): ?[0-9,\" A-Z]{0,30}".boxed(),
    ]) {
        let own = |name: &str| {
            let t = line.trim();
            t.get(..name.len()).is_some_and(|p| p.eq_ignore_ascii_case(name))
                && t[name.len()..].starts_with(':')
        };
        if let Some(s) = parse_csq(&line) {
            prop_assert!(own("+CSQ"));
            prop_assert!((s.rssi <= 31 || s.rssi == 99) && (s.ber <= 7 || s.ber == 99));
        }
        if parse_registration("+CREG", &line).is_some() {
            prop_assert!(own("+CREG"));
        }
        if parse_cops(&line).is_some() {
            prop_assert!(own("+COPS"));
        }
        if parse_cpin(&line).is_some() {
            prop_assert!(own("+CPIN"));
        }
    }

    #[test]
    fn registration_lines_round_trip(n in 0u8..=5, stat in 0u8..=10, lac in "[0-9A-F]{4}", ci in "[0-9A-F]{8}", act in 0u8..=13) {
        let line = format!("+CEREG: {n},{stat},\"{lac}\",\"{ci}\",{act}");
        let r = parse_registration("+CEREG", &line);
        prop_assert_eq!(r.clone().map(|r| r.status), RegStatus::from_code(stat));
        prop_assert_eq!(r.clone().and_then(|r| r.area), Some(lac));
        prop_assert_eq!(r.and_then(|r| r.act), Some(act));
        // The unsolicited form of the same.
        let urc = format!("+CEREG: {stat},\"{ci}\"");
        prop_assert_eq!(parse_registration("+CEREG", &urc).map(|r| r.status), RegStatus::from_code(stat));
    }

    #[test]
    fn dbm_is_monotone_in_rssi(a in 0u8..=31, b in 0u8..=31) {
        let (sa, sb) = (Signal { rssi: a, ber: 0 }, Signal { rssi: b, ber: 0 });
        prop_assert_eq!(a <= b, sa.dbm() <= sb.dbm());
        prop_assert!(a > b || sa.bars() <= sb.bars());
    }

    #[test]
    fn poll_survives_any_bytes(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20)) {
        let t0 = Instant::now();
        let mut p = CellPoll::new(t0, Some("1111".into()), Duration::from_millis(10));
        let mut now = t0;
        for c in &chunks {
            p.handle_input(now, c);
            while p.poll_transmit().is_some() {}
            now += Duration::from_millis(5);
            p.handle_timeout(now);
        }
        for _ in 0..30 {
            if p.is_done() { break; }
            now = p.poll_timeout().unwrap_or(now);
            p.handle_timeout(now);
        }
        prop_assert!(p.is_done());
    }
}

fn any_registration() -> impl Strategy<Value = (RegKind, Registration)> {
    let loc = proptest::option::of((
        "[0-9A-Fa-f]{1,4}",
        "[0-9A-Fa-f]{1,8}",
        proptest::option::of(0u8..=13),
    ));
    (
        proptest::sample::select(RegKind::ALL.to_vec()),
        0u8..=11,
        proptest::option::of(0u8..=5),
        loc,
    )
        .prop_map(|(kind, stat, mode, loc)| {
            let (area, cell, act) = match loc {
                Some((a, c, t)) => (Some(a), Some(c), t),
                None => (None, None, None),
            };
            (
                kind,
                Registration {
                    status: RegStatus::from_code(stat).expect("0..=11"),
                    mode,
                    area,
                    cell,
                    act,
                    rac: None,
                    reject: None,
                },
            )
        })
}

/// The fields of a parsed registration have the shapes 27.007 gives them.
fn consistent(r: &Registration) -> bool {
    let hex = |s: &Option<String>| {
        s.as_ref()
            .is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    r.status.code() <= 11
        && RegStatus::from_code(r.status.code()) == Some(r.status)
        && r.mode.is_none_or(|n| n <= 5)
        && r.act.is_none_or(|a| a <= 15)
        && hex(&r.area)
        && hex(&r.cell)
        && hex(&r.rac)
}

proptest! {
    #[test]
    fn any_registration_renders_and_parses_back((kind, reg) in any_registration()) {
        let line = render_registration(kind, &reg);
        prop_assert_eq!(parse_registration(kind.prefix(), &line), Some(reg.clone()), "{}", line);
        prop_assert_eq!(parse_any_registration(&line), Some((kind, reg)));
    }

    #[test]
    fn an_unquoted_urc_is_never_taken_for_a_read_answer(
        stat in 0u8..=11, area in "[0-9A-F]{4}", cell in "[0-9A-F]{5,8}", act in 0u8..=13, spaces in any::<bool>(),
    ) {
        // `+CEREG: 2, 0001, 00000100, 7`: the area code is 4 digits, the cell id longer.
        let sep = if spaces { ", " } else { "," };
        let line = format!("+CEREG: {stat}{sep}{area}{sep}{cell}{sep}{act}");
        let r = parse_registration("+CEREG", &line).expect("parses");
        prop_assert_eq!(r.mode, None);
        prop_assert_eq!(r.status.code(), stat);
        prop_assert_eq!(r.area, Some(area));
        prop_assert_eq!(r.cell, Some(cell));
        prop_assert_eq!(r.act, Some(act));
    }

    #[test]
    fn the_vendor_rac_layout_keeps_cell_and_act(
        n in 0u8..=5, stat in 0u8..=11, tac in "[0-9A-F]{4}", rac in "[0-9A-F]{2}", ci in "[0-9A-F]{5,8}", act in 0u8..=13,
    ) {
        // Novatel E362: `+CEREG: <n>,<stat>, <tac>, <rac> ,<ci> ,<AcT>`.
        let line = format!("+CEREG: {n},{stat}, {tac}, {rac} ,{ci} ,{act}");
        let r = parse_registration("+CEREG", &line).expect("parses");
        prop_assert_eq!(r.mode, Some(n));
        prop_assert_eq!(r.status.code(), stat);
        prop_assert_eq!(r.area, Some(tac));
        prop_assert_eq!(r.rac, Some(rac));
        prop_assert_eq!(r.cell, Some(ci));
        prop_assert_eq!(r.act, Some(act));
    }

    #[test]
    fn whatever_parses_is_consistent_and_stable(
        fields in proptest::collection::vec(
            prop_oneof!["[0-9]{1,3}", "[0-9A-Fa-f]{1,9}", "\"[0-9A-F]{0,8}\"", " ?[0-9]{1,2} ?", Just(String::new())],
            1..8,
        ),
        kind in proptest::sample::select(RegKind::ALL.to_vec()),
    ) {
        let line = format!("{}: {}", kind.prefix(), fields.join(","));
        if let Some(r) = parse_registration(kind.prefix(), &line) {
            prop_assert!(consistent(&r), "{line} -> {r:?}");
            // Rendering what was understood and parsing it again changes nothing.
            let again = parse_registration(kind.prefix(), &render_registration(kind, &r));
            prop_assert!(again.is_some(), "{line}");
            if let Some(a) = again {
                prop_assert_eq!((a.status, a.mode, &a.area, &a.cell), (r.status, r.mode, &r.area, &r.cell));
                if r.area.is_some() || r.cell.is_some() {
                    prop_assert_eq!(a.act, r.act);
                }
            }
        }
    }

    #[test]
    fn csq_accepts_exactly_the_27_007_ranges(rssi in 0u8..=120, ber in 0u8..=120) {
        let ok = (rssi <= 31 || rssi == 99) && (ber <= 7 || ber == 99);
        prop_assert_eq!(parse_csq(&format!("+CSQ: {rssi},{ber}")), ok.then_some(Signal { rssi, ber }));
    }

    #[test]
    fn cops_round_trips(mode in 0u8..=4, name in "[A-Za-z0-9][A-Za-z0-9 .-]{0,15}[A-Za-z0-9]", act in proptest::option::of(0u8..=13)) {
        let line = match act {
            Some(a) => format!("+COPS: {mode},0,\"{name}\",{a}"),
            None => format!("+COPS: {mode},0,\"{name}\""),
        };
        prop_assert_eq!(parse_cops(&line), Some(Operator { mode, name: Some(name), act }));
    }
}

#[test]
fn sim_states_are_named_and_puks_flagged() {
    for (line, code, puk) in [
        ("+CPIN: READY", "READY", false),
        ("+CPIN: SIM PIN", "SIM PIN", false),
        ("+CPIN: SIM PUK", "SIM PUK", true),
        ("+CPIN: SIM PIN2", "SIM PIN2", false),
        ("+CPIN: SIM PUK2", "SIM PUK2", true),
        ("+CPIN: \"PH-NET PUK\"", "PH-NET PUK", true),
        ("+cpin: sim pin", "SIM PIN", false),
    ] {
        let s = parse_cpin(line).expect(line);
        assert_eq!(s.code(), code, "{line}");
        assert_eq!(s.needs_puk(), puk, "{line}");
        assert!(
            !s.describe().starts_with("SIM state"),
            "{line}: {}",
            s.describe()
        );
    }
    assert_eq!(
        parse_cpin("+CPIN: FOO").map(|s| s.describe()),
        Some("SIM state FOO".into())
    );
}

#[test]
fn a_vendor_or_cms_final_ends_a_poll_command_at_once() {
    let (p, _) = run(None, |cmd| match cmd {
        "AT+CEREG?" => "\r\nCOMMAND NOT SUPPORT\r\n".into(),
        "AT+COPS?" => "\r\n+CMS ERROR: 500\r\n".into(),
        "AT+CPIN?" => "\r\n+CPIN: READY\r\n\r\nOK\r\n".into(),
        _ => "\r\nOK\r\n".into(),
    });
    assert!(p.is_done());
    // Every command got a final result: none waited for its timeout.
    assert_eq!(p.answered(), 10);
    assert_eq!(p.status().unanswered, ["AT+CEREG?", "AT+COPS?"]);
}
