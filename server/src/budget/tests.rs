use super::*;
use crate::config::BudgetConfig;

/// The day number of a valid civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    tz::days_from_civil(y, m, d).unwrap_or_else(|| panic!("{y}-{m}-{d} is no date"))
}

/// The Unix second of local `y-m-d h:mi` at `offset`.
fn at(y: i64, m: u32, d: u32, h: i64, mi: i64, offset: i32) -> Clock {
    Clock {
        unix: days_from_civil(y, m, d) * DAY + h * 3600 + mi * 60 - i64::from(offset),
        offset,
    }
}

fn cfg() -> BudgetConfig {
    BudgetConfig {
        connection: "isp1".into(),
        bytes: None,
        bytes_period: Period::Month,
        count: Count::Both,
        connect_time_s: None,
        time_period: Period::Day,
        windows: vec![],
        utc_offset: None,
        warn_before_s: 300,
        warn_at: 0.9,
    }
}

fn budget(c: &BudgetConfig) -> Budget {
    Budget::new(
        "isp1",
        c.policy().unwrap_or_else(|e| panic!("{e}")),
        Usage::default(),
    )
}

#[test]
fn civil_dates_match_known_days() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    // 2026-11-30 (a Monday) at 00:00Z, as `date -u -d 2026-11-30 +%s` says.
    assert_eq!(days_from_civil(2026, 11, 30) * DAY, 1_795_996_800);
    for z in [-1, 0, 59, 60, 11_016, 20_000, 20_787, 47_482] {
        let (y, m, d) = civil_from_days(z);
        assert_eq!(days_from_civil(y, m, d), z, "{y}-{m}-{d}");
    }
    assert_eq!(at(2026, 11, 30, 0, 0, 0).week_second(), 0);
    assert_eq!(at(2026, 12, 6, 23, 59, 0).week_second(), WEEK - 60);
    assert_eq!(parse_date("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
    assert_eq!(parse_date("2026-02-29"), None);
}

#[test]
fn windows_open_and_closed_table() {
    // 2026-11-30 is a Monday; 2026-12-04 a Friday.
    let evening = ["Mo-Fr 18:00-08:00".to_string()];
    let cases: &[(&[&str], Clock, bool)] = &[
        (&["Mo-Fr 18:00-08:00"], at(2026, 11, 30, 17, 59, 0), false),
        (&["Mo-Fr 18:00-08:00"], at(2026, 11, 30, 18, 0, 0), true),
        (&["Mo-Fr 18:00-08:00"], at(2026, 12, 1, 7, 59, 0), true), // crossed midnight
        (&["Mo-Fr 18:00-08:00"], at(2026, 12, 1, 8, 0, 0), false),
        (&["Mo-Fr 18:00-08:00"], at(2026, 12, 5, 7, 0, 0), true), // Fri's runs into Sat
        (&["Mo-Fr 18:00-08:00"], at(2026, 12, 6, 20, 0, 0), false), // Sunday
        (&["Mo-Fr 18:00-08:00"], at(2026, 11, 30, 7, 0, 0), false), // Sun was not listed
        (&["Sa-Su 00:00-24:00"], at(2026, 12, 6, 23, 59, 0), true),
        (&["Sa-Su 00:00-24:00"], at(2026, 12, 7, 0, 0, 0), false),
        (&["Su-Mo 22:00-23:00"], at(2026, 11, 30, 22, 30, 0), true), // wrapping range
        (&["Fr-Mo 09:00-10:00"], at(2026, 12, 2, 9, 30, 0), false),
        (&["* 12:00-13:00"], at(2026, 12, 2, 12, 0, 0), true),
        (&["Mo,We 12:00-13:00"], at(2026, 12, 1, 12, 0, 0), false),
        (&["Mo,We 12:00-13:00"], at(2026, 12, 2, 12, 59, 0), true),
        (&["Tu 00:00-00:00"], at(2026, 12, 1, 23, 0, 0), true), // a full day from Tue 00:00
        (&[], at(2026, 12, 2, 3, 0, 0), true),
    ];
    for (w, now, open) in cases {
        let list: Vec<String> = w.iter().map(|s| s.to_string()).collect();
        let ws = Windows::parse(&list).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ws.is_open(*now),
            *open,
            "{w:?} at {}",
            local_text(now.unix, 0)
        );
    }
    let ws = Windows::parse(&evening).unwrap_or_else(|e| panic!("{e}"));
    // Monday 10:00: opens at 18:00; Monday 19:00: closes Tuesday 08:00.
    assert_eq!(ws.opens_in(at(2026, 11, 30, 10, 0, 0)), Some(8 * 3600));
    assert_eq!(ws.closes_in(at(2026, 11, 30, 19, 0, 0)), Some(13 * 3600));
    assert_eq!(ws.opens_in(at(2026, 11, 30, 19, 0, 0)), None);
}

#[test]
fn touching_windows_merge_and_always_open_never_closes() {
    let ws = Windows::parse(&["Mo-Fr 18:00-08:00".into(), "Sa-Su 00:00-24:00".into()])
        .unwrap_or_else(|e| panic!("{e}"));
    // Friday 20:00 to Monday 00:00 (Sunday evening is not in Mo-Fr): 52 h.
    assert_eq!(ws.closes_in(at(2026, 12, 4, 20, 0, 0)), Some(52 * 3600));
    let all = Windows::parse(&["* 00:00-24:00".into()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.closes_in(at(2026, 12, 4, 20, 0, 0)), None);
    assert!(all.is_open(at(2026, 12, 4, 20, 0, 0)));
}

#[test]
fn bad_windows_and_offsets_are_refused_with_the_syntax() {
    for w in [
        "Mo-Fr",
        "Xx 10:00-11:00",
        "Mo 25:00-26:00",
        "Mo 10:00",
        "Mo 24:00-01:00",
        "Mo 10:60-11:00",
        "Mo 9:00-10:00",
        "Mo 10:00-11:00 extra",
        "",
    ] {
        let e = Windows::parse(&[w.to_string()]).err();
        let e = e.unwrap_or_else(|| panic!("{w:?} parsed"));
        assert!(e.starts_with(&format!("window {w:?}")), "{e}");
    }
    for (s, v) in [
        ("+01:00", Some(3600)),
        ("-08:00", Some(-28_800)),
        ("+05:30", Some(19_800)),
        ("+02", Some(7200)),
        ("Z", Some(0)),
        ("UTC", Some(0)),
        ("01:00", None),
        ("+19:00", None),
        ("+1:00", None),
        ("+01:60", None),
    ] {
        assert_eq!(parse_offset(s).ok(), v, "{s}");
    }
}

#[test]
fn windows_are_local_time_at_the_offset() {
    let mut c = cfg();
    c.windows = vec!["Mo-Fr 18:00-08:00".into()];
    c.utc_offset = Some("+05:30".into());
    let mut b = budget(&c);
    // 2026-11-30 13:00Z is 18:30 at +05:30 (open) but 13:00 UTC (closed).
    let utc = at(2026, 11, 30, 13, 0, 0);
    assert!(b.check_dial(b.clock(utc.unix, 0)).is_ok());
    let mut c = cfg();
    c.windows = vec!["Mo-Fr 18:00-08:00".into()];
    let mut b = budget(&c);
    let r = b.check_dial(b.clock(utc.unix, 0)).err();
    let r = r.unwrap_or_else(|| panic!("open at 13:00 UTC"));
    assert_eq!(r.limit, Limit::Window);
    assert_eq!(r.reopens, Some(at(2026, 11, 30, 18, 0, 0).unix));
    assert_eq!(
        r.message,
        "Connection isp1 may not be dialled now: outside its dialling windows (Mo-Fr 18:00-08:00); \
         the next window opens 2026-11-30 18:00 (UTC+00:00)"
    );
    // A negative offset crossing midnight: 2026-12-01 03:00Z is Monday 19:00 at -08:00.
    let mut c = cfg();
    c.windows = vec!["Mo 18:00-20:00".into()];
    let mut b = budget(&c);
    assert!(b
        .check_dial(b.clock(at(2026, 12, 1, 3, 0, 0).unix, -28_800))
        .is_ok());
    assert!(b
        .check_dial(b.clock(at(2026, 12, 1, 3, 0, 0).unix, 0))
        .is_err());
}

#[test]
fn byte_quota_refuses_until_the_month_rolls_over() {
    let mut c = cfg();
    c.bytes = Some(1000);
    let mut b = budget(&c);
    let nov = at(2026, 11, 30, 23, 0, 3600);
    b.record(nov, 600, 400, 0);
    let r = b
        .check_dial(nov)
        .err()
        .unwrap_or_else(|| panic!("quota spent"));
    assert_eq!(r.limit, Limit::Bytes);
    assert_eq!(r.reopens, Some(at(2026, 12, 1, 0, 0, 3600).unix));
    assert_eq!(
        r.message,
        "Connection isp1 has used its monthly byte quota (1000 of 1000 bytes this month); it renews \
         2026-12-01 00:00 (UTC+01:00)"
    );
    // 23:30Z on Nov 30 is already December at +01:00.
    let dec = Clock {
        unix: at(2026, 11, 30, 23, 30, 0).unix,
        offset: 3600,
    };
    assert!(b.check_dial(dec).is_ok());
    assert_eq!(b.usage().bytes_in, 0);
    assert_eq!(b.usage().bytes_since, Some(days_from_civil(2026, 12, 1)));
    // December 31st rolls into the next year.
    b.record(at(2026, 12, 31, 23, 59, 3600), 0, 5, 0);
    assert_eq!(
        b.view(at(2026, 12, 31, 23, 59, 3600)).bytes_resets_at,
        at(2027, 1, 1, 0, 0, 3600).unix
    );
}

#[test]
fn count_direction_selects_the_bytes() {
    for (count, used) in [(Count::Both, 30), (Count::In, 10), (Count::Out, 20)] {
        let mut c = cfg();
        c.bytes = Some(1000);
        c.count = count;
        let mut b = budget(&c);
        let now = at(2026, 12, 2, 12, 0, 0);
        b.record(now, 10, 20, 0);
        assert_eq!(b.view(now).bytes_used, used, "{count}");
    }
}

#[test]
fn connect_time_is_daily_and_warns_then_hangs_up() {
    let mut c = cfg();
    c.connect_time_s = Some(3600);
    let mut b = budget(&c);
    let mut now = at(2026, 12, 2, 10, 0, 0);
    b.record(now, 0, 0, 3_290_000);
    assert_eq!(b.poll(now), None); // 310 s left: no warning yet
    now.unix += 10;
    b.record(now, 0, 0, 10_000);
    let n = b
        .poll(now)
        .unwrap_or_else(|| panic!("warning at 300 s left"));
    assert_eq!((n.limit, n.hang_up, n.remaining), (Limit::Time, false, 300));
    assert_eq!(
        n.message,
        "Connection isp1 will hang up in 5m00s: its daily connect time (1h00m00s) runs out"
    );
    assert_eq!(b.poll(now), None, "warned once");
    now.unix += 300;
    b.record(now, 0, 0, 300_000);
    let n = b.poll(now).unwrap_or_else(|| panic!("hang-up"));
    assert_eq!((n.limit, n.hang_up), (Limit::Time, true));
    let r = b.check_dial(now).err().unwrap_or_else(|| panic!("refused"));
    assert_eq!(r.reopens, Some(at(2026, 12, 3, 0, 0, 0).unix));
    // Next day: allowed again, and the warning may come again.
    let next = at(2026, 12, 3, 0, 0, 0);
    assert!(b.check_dial(next).is_ok());
    b.record(next, 0, 0, 3_400_000);
    assert!(b
        .poll(next)
        .is_some_and(|n| !n.hang_up && n.limit == Limit::Time));
}

#[test]
fn byte_quota_warns_at_the_fraction_then_hangs_up() {
    let mut c = cfg();
    c.bytes = Some(10_000);
    c.warn_at = 0.75;
    let mut b = budget(&c);
    let now = at(2026, 12, 2, 10, 0, 0);
    b.record(now, 7000, 0, 0);
    assert_eq!(b.poll(now), None);
    b.record(now, 0, 500, 0);
    let n = b.poll(now).unwrap_or_else(|| panic!("warning"));
    assert_eq!(
        (n.limit, n.hang_up, n.remaining),
        (Limit::Bytes, false, 2500)
    );
    assert_eq!(b.poll(now), None);
    b.record(now, 2500, 0, 0);
    let n = b.poll(now).unwrap_or_else(|| panic!("hang-up"));
    assert_eq!((n.limit, n.hang_up, n.remaining), (Limit::Bytes, true, 0));
}

#[test]
fn a_closing_window_warns_ahead_and_then_hangs_up() {
    let mut c = cfg();
    c.windows = vec!["Mo-Fr 18:00-08:00".into()];
    c.warn_before_s = 600;
    let mut b = budget(&c);
    assert_eq!(b.poll(at(2026, 12, 2, 7, 49, 0)), None);
    let n = b
        .poll(at(2026, 12, 2, 7, 50, 0))
        .unwrap_or_else(|| panic!("warning"));
    assert_eq!(
        (n.limit, n.hang_up, n.remaining),
        (Limit::Window, false, 600)
    );
    assert_eq!(
        n.message,
        "Connection isp1 will hang up in 10m00s: its dialling window closes 2026-12-02 08:00 (UTC+00:00)"
    );
    assert_eq!(b.poll(at(2026, 12, 2, 7, 55, 0)), None);
    let n = b
        .poll(at(2026, 12, 2, 8, 0, 0))
        .unwrap_or_else(|| panic!("hang-up"));
    assert!(n.hang_up && n.limit == Limit::Window);
    // The next evening's window warns again.
    assert!(b.poll(at(2026, 12, 2, 18, 0, 0)).is_none());
    assert!(b
        .poll(at(2026, 12, 3, 7, 51, 0))
        .is_some_and(|n| !n.hang_up));
}

#[test]
fn usage_text_round_trips_and_rejects_garbage() {
    let u = Usage {
        bytes_since: Some(days_from_civil(2026, 11, 1)),
        bytes_in: 12,
        bytes_out: 34,
        time_since: None,
        up_ms: 56_789,
    };
    let t = u.to_text();
    assert_eq!(
        t,
        "bytes_since 2026-11-01\nbytes_in 12\nbytes_out 34\ntime_since -\nup_ms 56789\n"
    );
    assert_eq!(Usage::parse(&t), Ok(u));
    for (bad, why) in [
        ("bytes_in 1\n", "missing key `bytes_since`"),
        ("bytes_in x", "line 1: bad number"),
        ("bytes_since 2026-13-01", "line 1: bad date"),
        ("nonsense", "line 1: expected `key value`"),
        ("colour blue", "line 1: unknown key"),
        ("up_ms 1\nup_ms 2", "line 2: repeated key"),
        ("bytes_in -1", "line 1: bad number"),
    ] {
        assert_eq!(Usage::parse(bad).err().as_deref(), Some(why), "{bad:?}");
    }
}

proptest::proptest! {
    #[test]
    /// Whatever text parses as a usage prints back to text that parses the same.
    fn what_the_usage_parser_takes_prints_back(s in ".{0,200}") {
        if let Ok(u) = Usage::parse(&s) {
            proptest::prop_assert_eq!(Usage::parse(&u.to_text()), Ok(u));
        }
    }

    #[test]
    fn usage_parser_survives_mutations(
        a in proptest::prelude::any::<u64>(),
        b in proptest::prelude::any::<u64>(),
        day in -100_000i64..2_900_000,
        cut in 0usize..120,
        flip in 0usize..120,
        byte in proptest::prelude::any::<u8>(),
    ) {
        let u = Usage { bytes_since: Some(day), bytes_in: a, bytes_out: b, time_since: None, up_ms: a ^ b };
        let t = u.to_text();
        if (1..=9999).contains(&civil_from_days(day).0) {
            proptest::prop_assert_eq!(Usage::parse(&t), Ok(u));
        }
        let mut bytes = t.into_bytes();
        if flip < bytes.len() { bytes[flip] = byte; }
        bytes.truncate(cut);
        let _ = Usage::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    /// Any window list that parses answers consistently: open now and no opening ahead,
    /// or closed now with an opening within the week and nothing to close; a closing, when
    /// there is one, is ahead of now.
    fn parsed_windows_answer_consistently(s in "[MoTuWeThFrSaSu*,0-9: -]{0,40}", h in 0i64..24) {
        if let Ok(w) = Windows::parse(&[s]) {
            let now = at(2026, 12, 2, h, 0, 0);
            if w.is_open(now) {
                proptest::prop_assert_eq!(w.opens_in(now), None);
                if let Some(c) = w.closes_in(now) {
                    proptest::prop_assert!(c > 0);
                }
            } else {
                proptest::prop_assert_eq!(w.closes_in(now), None);
                let o = w.opens_in(now);
                proptest::prop_assert!(o.is_some_and(|o| (0..7 * 86_400).contains(&o)), "{:?}", o);
            }
        }
    }
}

/// Central European time: CET (+1) and CEST (+2); summer time ends 2026-10-25 03:00 CEST.
fn cet() -> Zone {
    Zone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap_or_else(|| panic!("rule"))
}

/// Security finding N11: "renews" is local midnight at the end of the period, with the
/// offset in force then, not the one of now (a month that ends after the change to winter
/// time renews at 23:00Z, not 22:00Z).
#[test]
fn a_monthly_period_renews_at_local_midnight_across_the_dst_change() {
    let mut c = cfg();
    c.bytes = Some(1_000_000);
    let b = budget(&c).with_zone(cet());
    let unix = at(2026, 10, 20, 12, 0, 7200).unix;
    let mut b = b;
    let now = b.clock(unix, 0);
    assert_eq!(now.offset, 7200, "CEST on the 20th");
    let v = b.view(now);
    // 2026-11-01 00:00 CET = 2026-10-31T23:00Z.
    assert_eq!(
        v.bytes_resets_at,
        days_from_civil(2026, 10, 31) * DAY + 23 * 3600
    );
}

/// Across midnight of the day summer time ends: the day that starts in CEST ends at local
/// midnight in CET, 25 hours later; the next day's usage starts from zero.
#[test]
fn a_daily_period_across_midnight_and_the_dst_change() {
    let mut c = cfg();
    c.connect_time_s = Some(3600);
    let mut b = budget(&c).with_zone(cet());
    let before = b.clock(at(2026, 10, 24, 23, 30, 7200).unix, 0);
    b.record(before, 0, 0, 600_000);
    let v = b.view(before);
    // The 24th ends at 2026-10-25 00:00 CEST = 2026-10-24T22:00Z.
    assert_eq!(
        v.time_resets_at,
        days_from_civil(2026, 10, 24) * DAY + 22 * 3600
    );
    assert_eq!(v.time_used_s, 600);
    let after = b.clock(at(2026, 10, 25, 0, 30, 7200).unix, 0);
    let v = b.view(after);
    assert_eq!(v.time_used_s, 0, "a new day");
    // The 25th has 25 hours: it ends at 2026-10-26 00:00 CET = 2026-10-25T23:00Z.
    assert_eq!(
        v.time_resets_at,
        days_from_civil(2026, 10, 25) * DAY + 23 * 3600
    );
    assert_eq!(b.clock(v.time_resets_at - 1, 0).offset, 3600);
}

/// A fixed `utc_offset` wins over the zone.
#[test]
fn a_fixed_offset_ignores_the_zone() {
    let mut c = cfg();
    c.utc_offset = Some("+05:30".into());
    let b = budget(&c).with_zone(cet());
    assert_eq!(b.clock(1_780_000_000, 0).offset, 5 * 3600 + 1800);
}

/// Minutes on the monotonic clock, as [`Budget::observe`] takes it.
const MIN: u64 = 60_000;

/// A budget with a spent monthly quota of 1000 bytes, counted in December 2026 by a
/// clock that has run steadily for an hour.
fn spent_in_december() -> Budget {
    let mut c = cfg();
    c.bytes = Some(1000);
    let mut b = budget(&c);
    let dec = at(2026, 12, 8, 12, 0, 0);
    b.observe(0, dec.unix - 3600);
    b.observe(60 * MIN, dec.unix);
    b.record(dec, 700, 300, 0);
    assert!(b.check_dial(dec).is_err());
    b
}

/// Finding N11: a board without an RTC boots at 1970 (a backward step below the floor),
/// then NTP sets the clock. The usage is neither zeroed at boot nor when NTP lands in the
/// same month: the spent quota stays spent throughout.
#[test]
fn a_1970_boot_then_ntp_never_lowers_usage() {
    let saved = spent_in_december().usage().clone();
    // A restart: the usage from the file, the clock at 1970 (monotonic from 0 again).
    let mut c = cfg();
    c.bytes = Some(1000);
    let mut b = Budget::new(
        "isp1",
        c.policy().unwrap_or_else(|e| panic!("{e}")),
        saved.clone(),
    );
    let boot = Clock {
        unix: 12,
        offset: 0,
    };
    assert_eq!(b.observe(0, boot.unix), None);
    b.record(boot, 10, 0, 0);
    assert_eq!(b.usage().bytes_since, saved.bytes_since, "period kept");
    assert_eq!(b.usage().bytes_in, 710, "usage kept and counted on");
    assert!(b.check_dial(boot).is_err(), "still spent at 1970");
    assert!(b.take_note().is_some_and(|n| n.contains("before 2025")));
    // NTP: the clock steps forward 56 years, into the usage's month.
    let ntp = at(2026, 12, 8, 12, 5, 0);
    let step = b.observe(MIN, ntp.unix);
    assert!(step.is_some_and(|s| s.by_s > 50 * 365 * 86_400), "{step:?}");
    b.record(ntp, 5, 0, 0);
    assert_eq!(b.usage().bytes_in, 715);
    assert!(b.check_dial(ntp).is_err(), "still spent after NTP");
    assert!(b
        .take_note()
        .is_some_and(|n| n.contains("back in the usage's period")));
    // Nothing moves for hours of steady clock within the month.
    let later = at(2026, 12, 8, 18, 0, 0);
    b.observe(MIN + 6 * 60 * MIN - 5 * MIN, later.unix);
    assert!(b.check_dial(later).is_err());
}

/// A backward step across midnight (or a month end) while running: usage is not lowered and
/// keeps its period; the clock moving forward again finds it intact.
#[test]
fn a_backward_step_across_the_period_change_keeps_usage() {
    let mut b = spent_in_december();
    let back = at(2026, 11, 30, 23, 0, 0);
    assert!(b.observe(61 * MIN, back.unix).is_some_and(|s| s.by_s < 0));
    b.record(back, 1, 0, 0);
    assert_eq!(b.usage().bytes_since, Some(days_from_civil(2026, 12, 1)));
    assert_eq!(b.usage().bytes_in, 701);
    assert!(
        b.check_dial(back).is_err(),
        "a backward step reopens nothing"
    );
    assert!(b.take_note().is_some_and(|n| n.contains("backward step")));
    // Even settled, a clock behind the usage's period never resets it.
    let still_back = at(2026, 11, 30, 23, 30, 0);
    b.observe(61 * MIN + 30 * MIN, still_back.unix);
    assert!(b.check_dial(still_back).is_err());
    assert_eq!(b.usage().bytes_in, 701);
}

/// A forward step into a new period (a bogus RTC, a mistyped `date`) resets nothing until
/// the clock has run steadily for SETTLE_MS; what was counted meanwhile starts the new
/// period (nothing is lost when the change is believed).
#[test]
fn a_forward_step_resets_only_once_the_clock_has_settled() {
    let mut b = spent_in_december();
    let jump = at(2027, 3, 1, 10, 0, 0);
    assert!(b.observe(61 * MIN, jump.unix).is_some_and(|s| s.by_s > 0));
    b.record(jump, 40, 2, 0);
    assert!(b.check_dial(jump).is_err(), "not believed yet");
    assert_eq!(b.usage().bytes_since, Some(days_from_civil(2026, 12, 1)));
    assert!(b.take_note().is_some());
    let nine = jump.unix + 9 * 60;
    b.observe(70 * MIN, nine);
    assert!(b.check_dial(at(2027, 3, 1, 10, 9, 0)).is_err());
    // Ten steady minutes after the step: the new month is believed, with the 42 bytes
    // counted since the step.
    let ten = at(2027, 3, 1, 10, 11, 0);
    b.observe(72 * MIN, ten.unix);
    assert!(b.check_dial(ten).is_ok());
    assert_eq!(b.usage().bytes_since, Some(days_from_civil(2027, 3, 1)));
    assert_eq!((b.usage().bytes_in, b.usage().bytes_out), (40, 2));
    assert!(b
        .take_note()
        .is_some_and(|n| n.contains("new period believed")));
}

/// Midnight passing on a steady clock resets at once (the settle wait is only after start
/// or a step), across a month end too.
#[test]
fn a_steady_clock_rolls_over_at_midnight() {
    let mut c = cfg();
    c.bytes = Some(1000);
    c.bytes_period = Period::Day;
    let mut b = budget(&c);
    let eve = at(2026, 12, 31, 23, 50, 0);
    b.observe(0, eve.unix - 3600);
    b.observe(60 * MIN, eve.unix);
    b.record(eve, 1000, 0, 0);
    assert!(b.check_dial(eve).is_err());
    let new_year = at(2027, 1, 1, 0, 1, 0);
    assert_eq!(b.observe(71 * MIN, new_year.unix), None);
    assert!(b.check_dial(new_year).is_ok());
    assert_eq!(b.usage().bytes_since, Some(days_from_civil(2027, 1, 1)));
}

/// Windows follow local time across DST, both directions: when a window opens or closes is
/// computed in local time and converted with the offset in force *then* (an hour apart from
/// now's on the day of the change), and the message says that offset.
#[test]
fn windows_across_dst_in_both_directions() {
    let mut c = cfg();
    c.windows = vec!["* 01:00-04:00".into(), "Sa 22:00-00:30".into()];
    let mut b = budget(&c).with_zone(cet());
    // Spring forward, Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST. At 01:30 CET
    // (00:30Z) the window closes at 04:00 CEST = 02:00Z, 1h30 of wall time away.
    let spring = b.clock(at(2026, 3, 29, 1, 30, 3600).unix, 0);
    assert_eq!(spring.offset, 3600);
    let v = b.view(spring);
    assert!(v.window_open);
    assert_eq!(v.window_changes_at, Some(at(2026, 3, 29, 2, 0, 0).unix));
    // Fall back, Sunday 2026-10-25: 03:00 CEST goes back to 02:00 CET. At 01:30 CEST
    // (23:30Z the day before) it closes at 04:00 CET = 03:00Z, 3h30 away.
    let fall = b.clock(at(2026, 10, 25, 1, 30, 7200).unix, 0);
    assert_eq!(fall.offset, 7200);
    let v = b.view(fall);
    assert_eq!(v.window_changes_at, Some(at(2026, 10, 25, 3, 0, 0).unix));
    // Closed, opening across the change: Saturday 2026-03-28 00:45 CET... the next
    // opening is 01:00 the same night; and after 04:00 CEST on the 29th it is Monday's
    // 01:00 CEST.
    let after = b.clock(at(2026, 3, 29, 4, 30, 7200).unix, 0);
    let r = b
        .check_dial(after)
        .err()
        .unwrap_or_else(|| panic!("closed"));
    assert_eq!(r.reopens, Some(at(2026, 3, 30, 1, 0, 7200).unix));
    assert!(
        r.message.ends_with("opens 2026-03-30 01:00 (UTC+02:00)"),
        "{}",
        r.message
    );
    // The night before the fall-back change: closed at 00:45 CEST on the 25th (after the
    // Saturday window), it opens at 01:00 CEST, 15 minutes on.
    let sat = b.clock(at(2026, 10, 25, 0, 45, 7200).unix, 0);
    let r = b.check_dial(sat).err().unwrap_or_else(|| panic!("closed"));
    assert_eq!(r.reopens, Some(at(2026, 10, 25, 1, 0, 7200).unix));
    // A window across midnight: Saturday 22:00 to Sunday 00:30 is open at 23:59 and closes
    // at 00:30 local.
    let late = b.clock(at(2026, 10, 24, 23, 59, 7200).unix, 0);
    let v = b.view(late);
    assert!(v.window_open);
    assert_eq!(
        v.window_changes_at,
        Some(at(2026, 10, 25, 0, 30, 7200).unix)
    );
    // Spring forward on a closed window: at 00:30 CET on the 29th... it opens at 01:00
    // CET; at 23:00 CET on the 28th, after the Saturday window opened, it is open.
    let open_sat = b.clock(at(2026, 3, 28, 23, 0, 3600).unix, 0);
    assert!(b.view(open_sat).window_open);
    // Closed from 04:00 CEST on the 29th: at 03:30 CEST (01:30Z) still open, closing 30
    // minutes later.
    let v = b.view(b.clock(at(2026, 3, 29, 3, 30, 7200).unix, 0));
    assert_eq!(v.window_changes_at, Some(at(2026, 3, 29, 4, 0, 7200).unix));
}
