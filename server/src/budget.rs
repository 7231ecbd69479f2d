//! Budgets per connection (sans-IO): a byte quota per day or month, a connect-time budget
//! per day or month, and the weekly time windows in which the connection may be dialled.
//!
//! Value types and pure logic, below config, persist and the link manager (which all import
//! it; it imports none of them). The link manager feeds a [`Budget`] the link's byte counters and up time, and passes the
//! wall clock in as a [`Clock`] (seconds since the Unix epoch plus the local UTC offset in
//! force at that moment); nothing here reads a clock, a file or a socket. It answers
//! whether a dial may start now ([`Budget::check_dial`]), and, while the link is up, when
//! to warn its holders and when to hang up ([`Budget::poll`]).
//!
//! Windows syntax, one string per window: `DAYS HH:MM-HH:MM`, in local time.
//! - `DAYS`: `Mo Tu We Th Fr Sa Su`, a range `Mo-Fr` (wrapping: `Fr-Mo`), a list of those
//!   separated by commas (`Mo,We,Fr-Su`), or `*` for every day.
//! - times: `00:00` to `24:00`; an end at or before the start crosses midnight, so
//!   `Mo-Fr 18:00-08:00` opens Monday to Friday at 18:00 and closes the next morning at
//!   08:00. The day named is the day the window opens. `00:00-24:00` is the whole day.
//!
//! Windows that touch or overlap merge (`Sa-Su 00:00-24:00` with `Fr 18:00-08:00` is open
//! from Friday 18:00 to Monday 00:00). No windows: the connection may be dialled any time.
//!
//! Periods: a day starts at local midnight, a month at local midnight of its first day.
//! Usage of an earlier period is dropped when the period changes (at the next feed or check).
//!
//! The wall clock is not trusted blindly (finding N11: a board without an RTC boots at 1970,
//! then NTP steps the clock). Monotonic plus wall: the caller reports both
//! ([`Budget::observe`]) and the budget never *lowers* usage because of the wall clock —
//!
//! - a clock that reads an *earlier* period than the usage's (a backward step) keeps the
//!   usage and its period, and counts on into it;
//! - a *later* period resets the usage only when the clock is trusted: it reads at least
//!   [`CLOCK_FLOOR`] (2025-01-01, before which it was never set) and has run in step with the
//!   monotonic clock for [`SETTLE_MS`] (since start, or since the last step of more than
//!   [`STEP_TOLERANCE_S`]). Until then usage counts on into the old period (so a spent
//!   quota stays spent) and is also kept aside; the new period starts from what was kept.
//!
//! Without any [`Budget::observe`] (no monotonic source) only the floor applies.

use std::fmt;

use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;
const DAY_NAMES: [&str; 7] = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];

/// Budget period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// From local midnight to the next.
    Day,
    /// From local midnight of the 1st to that of the next month's 1st.
    #[default]
    Month,
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Period::Day => "day",
            Period::Month => "month",
        })
    }
}

/// Which bytes count against the byte quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Count {
    /// Received plus sent.
    #[default]
    Both,
    /// Received only.
    In,
    /// Sent only.
    Out,
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Count::Both => "both",
            Count::In => "in",
            Count::Out => "out",
        })
    }
}

/// The wall clock as the budget sees it: Unix seconds and the UTC offset (seconds east)
/// of local time at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    /// Local time minus UTC, seconds.
    pub offset: i32,
}

impl Clock {
    fn local(self) -> i64 {
        self.unix + i64::from(self.offset)
    }

    /// Local day number (days since 1970-01-01 local).
    fn day(self) -> i64 {
        self.local().div_euclid(DAY)
    }

    /// Seconds since Monday 00:00 local.
    fn week_second(self) -> i64 {
        // 1970-01-01 was a Thursday (Monday-based index 3).
        (self.local() + 3 * DAY).rem_euclid(WEEK)
    }
}

/// The local day numbers `[start, end)` of the period containing local day `day`.
fn period_days(p: Period, day: i64) -> (i64, i64) {
    match p {
        Period::Day => (day, day + 1),
        Period::Month => {
            let (y, m, _) = civil_from_days(day);
            let start = days_from_civil(y, m, 1).unwrap_or(day);
            let end = if m == 12 {
                days_from_civil(y + 1, 1, 1)
            } else {
                days_from_civil(y, m + 1, 1)
            };
            (start, end.unwrap_or(start + 31))
        }
    }
}

/// `YYYY-MM-DD` of a local day number.
fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    days_from_civil(y, m, d)
}

/// Local time of a Unix instant as `YYYY-MM-DD HH:MM` (the offset is the caller's).
pub fn local_text(unix: i64, offset: i32) -> String {
    let l = unix + i64::from(offset);
    let s = l.rem_euclid(DAY);
    format!(
        "{} {:02}:{:02}",
        date(l.div_euclid(DAY)),
        s / 3600,
        (s % 3600) / 60
    )
}

/// `+HH:MM` / `-HH:MM`.
pub fn offset_text(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

/// Parse a UTC offset `+HH:MM`, `-HH:MM`, `+HH`, `Z` or `UTC` (at most ±18:00).
pub fn parse_offset(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let bad = || format!("{s:?} is not a UTC offset (write +HH:MM or -HH:MM, e.g. \"+01:00\")");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "00"));
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if h > 18 || m > 59 || (h == 18 && m > 0) {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

/// One weekly interval: opens at `start` seconds after Monday 00:00, lasts `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: i64,
    len: i64,
}

/// Weekly dialling windows (empty: always open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows {
    spans: Vec<Span>,
    text: Vec<String>,
}

fn parse_day(s: &str) -> Option<usize> {
    DAY_NAMES.iter().position(|d| d.eq_ignore_ascii_case(s))
}

fn parse_hm(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i64 = h.parse().ok()?;
    let m: i64 = m.parse().ok()?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 3600 + m * 60)
}

/// Parse one window, `Mo-Fr 18:00-08:00`; the error says what is wrong and the syntax.
fn parse_window(w: &str) -> Result<Vec<Span>, String> {
    const SYNTAX: &str = "write DAYS HH:MM-HH:MM, e.g. \"Mo-Fr 18:00-08:00\" (days Mo Tu We Th Fr Sa Su, ranges Mo-Fr, lists Mo,We,Fr, or *)";
    let mut parts = w.split_whitespace();
    let (Some(days), Some(times), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("window {w:?}: {SYNTAX}"));
    };
    let mut set = [false; 7];
    if days == "*" {
        set = [true; 7];
    } else {
        for item in days.split(',') {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let (Some(a), Some(b)) = (parse_day(a), parse_day(b)) else {
                return Err(format!("window {w:?}: unknown day in {item:?}; {SYNTAX}"));
            };
            let mut d = a;
            loop {
                set[d] = true;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
    }
    let bad_time =
        || format!("window {w:?}: times must be HH:MM-HH:MM between 00:00 and 24:00; {SYNTAX}");
    let (a, b) = times.split_once('-').ok_or_else(bad_time)?;
    let (Some(a), Some(b)) = (parse_hm(a), parse_hm(b)) else {
        return Err(bad_time());
    };
    if a == DAY {
        return Err(format!(
            "window {w:?}: a window cannot open at 24:00 (use 00:00 of the next day)"
        ));
    }
    let len = if b > a { b - a } else { b + DAY - a };
    Ok(set
        .iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .map(|(d, _)| Span {
            start: i64::try_from(d).unwrap_or(0) * DAY + a,
            len,
        })
        .collect())
}

impl Windows {
    /// Parse the configured windows; the error names the bad one and the syntax.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let mut spans = Vec::new();
        for w in list {
            spans.extend(parse_window(w)?);
        }
        Ok(Self {
            spans,
            text: list.to_vec(),
        })
    }

    /// The windows as configured.
    pub fn text(&self) -> &[String] {
        &self.text
    }

    /// Whether there are none (always open).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The latest end of a span containing week-second `t` (seconds from `t`), if any.
    fn reach(&self, t: i64) -> Option<i64> {
        self.spans
            .iter()
            .filter_map(|s| {
                let into = (t - s.start).rem_euclid(WEEK);
                (into < s.len).then_some(s.len - into)
            })
            .max()
    }

    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: Clock) -> bool {
        self.is_empty() || self.reach(now.week_second()).is_some()
    }

    /// Seconds until the open window closes (`None`: closed now, or never closes).
    pub fn closes_in(&self, now: Clock) -> Option<i64> {
        if self.is_empty() {
            return None;
        }
        let t0 = now.week_second();
        let mut ahead = self.reach(t0)?;
        // Follow touching/overlapping spans; past a week it is always open.
        while ahead <= WEEK {
            match self.reach(t0 + ahead) {
                Some(more) => ahead += more,
                None => return Some(ahead),
            }
        }
        None
    }

    /// Seconds until a closed window opens (`None`: open now).
    pub fn opens_in(&self, now: Clock) -> Option<i64> {
        if self.is_open(now) {
            return None;
        }
        let t = now.week_second();
        self.spans
            .iter()
            .map(|s| (s.start - t).rem_euclid(WEEK))
            .min()
    }
}

/// The limit a refusal or notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Outside the dialling windows.
    Window,
    /// The byte quota.
    Bytes,
    /// The connect-time budget.
    Time,
}

impl Limit {
    /// Stable machine name.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Window => "window",
            Limit::Bytes => "bytes",
            Limit::Time => "time",
        }
    }
}

/// A dial the budget does not allow now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Which limit.
    pub limit: Limit,
    /// When it reopens (Unix seconds), if it will.
    pub reopens: Option<i64>,
    /// One plain sentence naming the limit and when it reopens.
    pub message: String,
}

/// What the budget asks of an up link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Which limit.
    pub limit: Limit,
    /// True: hang up now. False: a warning ahead of the hang-up.
    pub hang_up: bool,
    /// Seconds (time, window) or bytes (quota) left when warned; 0 on hang-up.
    pub remaining: u64,
    /// One plain sentence for holders and the log.
    pub message: String,
}

/// A connection's budget settings (from `[[budgets]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Byte quota per `bytes_period`.
    pub bytes: Option<u64>,
    /// Its period.
    pub bytes_period: Period,
    /// Which direction counts.
    pub count: Count,
    /// Connect-time budget per `time_period`, seconds.
    pub time_s: Option<u64>,
    /// Its period.
    pub time_period: Period,
    /// Dialling windows.
    pub windows: Windows,
    /// A fixed UTC offset for local time (default: the server's local time zone).
    pub offset: Option<i32>,
    /// Warn this many seconds before a time or window hang-up.
    pub warn_before_s: u64,
    /// Warn when this fraction of the byte quota is used.
    pub warn_at: f64,
}

/// Usage counted so far (what is persisted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Local day number the byte period started (`None`: nothing counted yet).
    pub bytes_since: Option<i64>,
    /// Bytes received in the byte period.
    pub bytes_in: u64,
    /// Bytes sent in the byte period.
    pub bytes_out: u64,
    /// Local day number the time period started.
    pub time_since: Option<i64>,
    /// Milliseconds up in the time period.
    pub up_ms: u64,
}

/// Keys of the persisted usage, in order.
const KEYS: [&str; 5] = [
    "bytes_since",
    "bytes_in",
    "bytes_out",
    "time_since",
    "up_ms",
];

impl Usage {
    /// The text persisted (one `key value` per line).
    pub fn to_text(&self) -> String {
        let d = |v: Option<i64>| v.map_or_else(|| "-".to_string(), date);
        format!(
            "bytes_since {}\nbytes_in {}\nbytes_out {}\ntime_since {}\nup_ms {}\n",
            d(self.bytes_since),
            self.bytes_in,
            self.bytes_out,
            d(self.time_since),
            self.up_ms
        )
    }

    /// Parse [`Usage::to_text`]; any other text is an error naming the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut u = Usage::default();
        let mut seen = [false; 5];
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", n + 1);
            let (k, v) = line
                .split_once(' ')
                .ok_or_else(|| bad("expected `key value`"))?;
            let i = KEYS
                .iter()
                .position(|x| *x == k)
                .ok_or_else(|| bad("unknown key"))?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(bad("repeated key"));
            }
            let day = |v: &str| -> Result<Option<i64>, String> {
                if v == "-" {
                    Ok(None)
                } else {
                    parse_date(v).map(Some).ok_or_else(|| bad("bad date"))
                }
            };
            let num = |v: &str| v.parse::<u64>().map_err(|_| bad("bad number"));
            match i {
                0 => u.bytes_since = day(v)?,
                1 => u.bytes_in = num(v)?,
                2 => u.bytes_out = num(v)?,
                3 => u.time_since = day(v)?,
                _ => u.up_ms = num(v)?,
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(format!("missing key `{}`", KEYS[i]));
        }
        Ok(u)
    }
}

/// A snapshot of a budget for status displays.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetView {
    /// Byte quota (None: none).
    pub bytes_quota: Option<u64>,
    /// Bytes counted against it this period.
    pub bytes_used: u64,
    /// Its period.
    pub bytes_period: Period,
    /// Which direction counts.
    pub count: Count,
    /// When the byte period ends (Unix seconds).
    pub bytes_resets_at: i64,
    /// Connect-time budget, seconds.
    pub time_budget_s: Option<u64>,
    /// Seconds up this period.
    pub time_used_s: u64,
    /// Its period.
    pub time_period: Period,
    /// When the time period ends (Unix seconds).
    pub time_resets_at: i64,
    /// Windows as configured.
    pub windows: Vec<String>,
    /// Whether a window is open now (true without windows).
    pub window_open: bool,
    /// When the window next opens or closes (Unix seconds), if it does.
    pub window_changes_at: Option<i64>,
    /// Why a dial would be refused now (`None`: allowed).
    pub refusal: Option<String>,
    /// UTC offset of the local time used.
    pub offset: i32,
}

/// Wall clocks before this (2025-01-01T00:00:00Z) were never set: an RTC-less board's
/// 1970, a dead RTC battery. They never reset usage.
pub const CLOCK_FLOOR: i64 = 1_735_689_600;

/// Wall and monotonic clocks may disagree by this much between two observations (slew, a
/// small NTP correction) before it counts as a step.
pub const STEP_TOLERANCE_S: i64 = 120;

/// How long the wall clock must have run in step with the monotonic clock (since start or
/// its last step) before a period change it reads is believed.
pub const SETTLE_MS: u64 = 10 * 60 * 1000;

/// A wall clock step seen by [`Budget::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockStep {
    /// Seconds the wall clock moved beyond (positive) or behind (negative) the monotonic one.
    pub by_s: i64,
    /// The wall clock after the step.
    pub unix: i64,
}

/// What the budget knows of the wall clock's agreement with the monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
struct WallTrack {
    /// The last observation: (monotonic ms, Unix s).
    last: Option<(u64, i64)>,
    /// Monotonic ms since which the wall clock has run in step (no step seen).
    steady_since: u64,
}

/// Usage counted while a period change is held back (the clock not yet trusted): the new
/// period starts from it when the change is believed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    bytes: Option<(u64, u64)>,
    up_ms: Option<u64>,
}

/// One connection's budget: policy, usage and which warnings were given.
#[derive(Debug, Clone)]
pub struct Budget {
    connection: String,
    policy: Policy,
    usage: Usage,
    warned: Vec<Limit>,
    dirty: bool,
    wall: WallTrack,
    held: Held,
    /// A line for the log when a period change starts or stops being held back.
    note: Option<String>,
    /// The zone local time follows when the policy has no fixed offset (`None`: the
    /// offset each [`Clock`] carries, for the whole period).
    zone: Option<Zone>,
}

impl Budget {
    /// A budget for `connection` starting from `usage` (persisted, or default).
    pub fn new(connection: &str, policy: Policy, usage: Usage) -> Self {
        Self {
            connection: connection.to_string(),
            policy,
            usage,
            warned: Vec::new(),
            dirty: false,
            wall: WallTrack::default(),
            held: Held::default(),
            note: None,
            zone: None,
        }
    }

    /// Report the monotonic clock (`mono_ms`, any fixed origin) and the wall clock (`unix`)
    /// read together; call before each record, check or view. Answers a step of the wall
    /// clock against the monotonic one since the last observation, if there was one.
    pub fn observe(&mut self, mono_ms: u64, unix: i64) -> Option<ClockStep> {
        let mut step = None;
        match self.wall.last {
            None => self.wall.steady_since = mono_ms,
            Some((m0, u0)) => {
                let elapsed = i64::try_from(mono_ms.saturating_sub(m0) / 1000).unwrap_or(i64::MAX);
                let by_s = unix.saturating_sub(u0.saturating_add(elapsed));
                if by_s.abs() > STEP_TOLERANCE_S {
                    self.wall.steady_since = mono_ms;
                    step = Some(ClockStep { by_s, unix });
                }
            }
        }
        self.wall.last = Some((mono_ms, unix));
        step
    }

    /// Why a period change the wall clock reads at `unix` is not believed (yet), if so.
    fn distrust(&self, unix: i64) -> Option<String> {
        if unix < CLOCK_FLOOR {
            return Some(format!(
                "the clock reads {} (before 2025: not set)",
                local_text(unix, 0)
            ));
        }
        let (m, _) = self.wall.last?;
        let steady = m.saturating_sub(self.wall.steady_since);
        (steady < SETTLE_MS).then(|| {
            format!(
                "the clock has run steadily for only {}s of the {}s needed after start or a step",
                steady / 1000,
                SETTLE_MS / 1000
            )
        })
    }

    /// A line for the log, once, when a period change starts or stops being held back.
    pub fn take_note(&mut self) -> Option<String> {
        self.note.take()
    }

    /// Follow `zone` (offsets and the start of each day, DST included) unless the policy
    /// has a fixed `utc_offset`.
    #[must_use]
    pub fn with_zone(mut self, zone: Zone) -> Self {
        if self.policy.offset.is_none() {
            self.zone = Some(zone);
        }
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Usage counted so far.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// True once usage changed since the last [`Budget::take_dirty`].
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The clock with the policy's fixed offset, if it has one, else the zone's offset (see
    /// [`Budget::with_zone`]), else `local_offset`.
    pub fn clock(&self, unix: i64, local_offset: i32) -> Clock {
        let offset = match (&self.policy.offset, &self.zone) {
            (Some(o), _) => *o,
            (None, Some(z)) => z.offset_at(unix),
            (None, None) => local_offset,
        };
        Clock { unix, offset }
    }

    /// Drop the usage of periods that have ended, when the clock is believed (see the
    /// module's documentation): never on a backward step, and on a forward one only once
    /// the clock is trusted; meanwhile usage is held for the new period.
    fn roll(&mut self, now: Clock) {
        let day = now.day();
        let (bs, _) = period_days(self.policy.bytes_period, day);
        let (ts, _) = period_days(self.policy.time_period, day);
        let bytes_change = self.usage.bytes_since.is_some_and(|s| s != bs);
        let time_change = self.usage.time_since.is_some_and(|s| s != ts);
        let behind = self.usage.bytes_since.is_some_and(|s| bs < s)
            || self.usage.time_since.is_some_and(|s| ts < s);
        let why = if now.unix < CLOCK_FLOOR {
            self.distrust(now.unix)
        } else if behind {
            Some(format!(
                "the clock ({}) reads a period before the usage's: a backward step",
                local_text(now.unix, now.offset)
            ))
        } else {
            self.distrust(now.unix)
        };
        let was_held = self.held != Held::default();
        if (bytes_change || time_change) && why.is_some() {
            if !was_held {
                self.held = Held {
                    bytes: bytes_change.then_some((0, 0)),
                    up_ms: time_change.then_some(0),
                };
                self.note = Some(format!(
                    "budget of {}: not starting a new period: {}; usage counts on into the current one",
                    self.connection,
                    why.unwrap_or_default()
                ));
            }
            return;
        }
        if !bytes_change && !time_change && was_held {
            // The clock came back into the usage's period: nothing was lost.
            self.held = Held::default();
            self.note = Some(format!(
                "budget of {}: the clock is back in the usage's period",
                self.connection
            ));
        }
        let held = std::mem::take(&mut self.held);
        if was_held && (bytes_change || time_change) {
            self.note = Some(format!(
                "budget of {}: new period believed (clock {}); usage counted meanwhile carried over",
                self.connection,
                local_text(now.unix, now.offset)
            ));
        }
        if self.usage.bytes_since != Some(bs) {
            if self.usage.bytes_since.is_some() {
                self.warned.retain(|l| *l != Limit::Bytes);
            }
            let (i, o) = held.bytes.unwrap_or((0, 0));
            self.usage.bytes_since = Some(bs);
            self.usage.bytes_in = i;
            self.usage.bytes_out = o;
            self.dirty = true;
        }
        if self.usage.time_since != Some(ts) {
            if self.usage.time_since.is_some() {
                self.warned.retain(|l| *l != Limit::Time);
            }
            self.usage.time_since = Some(ts);
            self.usage.up_ms = held.up_ms.unwrap_or(0);
            self.dirty = true;
        }
    }

    /// Count traffic and up time of the last feed period (at `now`, its end).
    pub fn record(&mut self, now: Clock, bytes_in: u64, bytes_out: u64, up_ms: u64) {
        self.roll(now);
        if bytes_in | bytes_out | up_ms != 0 {
            if let Some((i, o)) = &mut self.held.bytes {
                *i = i.saturating_add(bytes_in);
                *o = o.saturating_add(bytes_out);
            }
            if let Some(t) = &mut self.held.up_ms {
                *t = t.saturating_add(up_ms);
            }
            self.usage.bytes_in = self.usage.bytes_in.saturating_add(bytes_in);
            self.usage.bytes_out = self.usage.bytes_out.saturating_add(bytes_out);
            self.usage.up_ms = self.usage.up_ms.saturating_add(up_ms);
            self.dirty = true;
        }
    }

    fn bytes_used(&self) -> u64 {
        let u = &self.usage;
        match self.policy.count {
            Count::Both => u.bytes_in.saturating_add(u.bytes_out),
            Count::In => u.bytes_in,
            Count::Out => u.bytes_out,
        }
    }

    /// Unix second at which the period containing `now` ends.
    fn period_end(&self, p: Period, now: Clock) -> i64 {
        let (_, end) = period_days(p, now.day());
        match &self.zone {
            // Local midnight at the end, whose offset may differ from now's (DST).
            Some(z) => z.start_of_day(end),
            None => end * DAY - i64::from(now.offset),
        }
    }

    /// The Unix second at which local time reads `ahead` seconds (of local time) after
    /// `now`'s: across a DST change that is an hour more or less than `ahead` of wall time.
    fn local_ahead(&self, now: Clock, ahead: i64) -> i64 {
        match &self.zone {
            Some(z) => z.unix_of_local(now.local().saturating_add(ahead)),
            None => now.unix.saturating_add(ahead),
        }
    }

    /// `unix` as local time with the offset in force *then* (across a DST change it differs
    /// from now's).
    fn when(&self, unix: i64, now: Clock) -> String {
        let offset = self.clock(unix, now.offset).offset;
        format!("{} (UTC{})", local_text(unix, offset), offset_text(offset))
    }

    /// Whether a dial may start at `now`; the refusal names the limit and when it reopens.
    pub fn check_dial(&mut self, now: Clock) -> Result<(), Refusal> {
        self.roll(now);
        let name = &self.connection;
        if !self.policy.windows.is_open(now) {
            let reopens = self
                .policy
                .windows
                .opens_in(now)
                .map(|s| self.local_ahead(now, s));
            let next = reopens.map_or_else(String::new, |t| {
                format!("; the next window opens {}", self.when(t, now))
            });
            return Err(Refusal {
                limit: Limit::Window,
                reopens,
                message: format!(
                    "Connection {name} may not be dialled now: outside its dialling windows ({}){next}",
                    self.policy.windows.text().join(", ")
                ),
            });
        }
        if let Some(q) = self.policy.bytes {
            let used = self.bytes_used();
            if used >= q {
                let t = self.period_end(self.policy.bytes_period, now);
                return Err(Refusal {
                    limit: Limit::Bytes,
                    reopens: Some(t),
                    message: format!(
                        "Connection {name} has used its {} byte quota ({used} of {q} bytes this {}); it renews {}",
                        self.policy.bytes_period.adjective(),
                        self.policy.bytes_period,
                        self.when(t, now)
                    ),
                });
            }
        }
        if let Some(b) = self.policy.time_s {
            let used = self.usage.up_ms / 1000;
            if used >= b {
                let t = self.period_end(self.policy.time_period, now);
                return Err(Refusal {
                    limit: Limit::Time,
                    reopens: Some(t),
                    message: format!(
                        "Connection {name} has used its {} connect time ({} of {}); it renews {}",
                        self.policy.time_period.adjective(),
                        hms(used),
                        hms(b),
                        self.when(t, now)
                    ),
                });
            }
        }
        Ok(())
    }

    /// While the link is up: the next warning or hang-up due at `now` (each warning once
    /// per period; call after [`Budget::record`]). A hang-up comes before any warning.
    pub fn poll(&mut self, now: Clock) -> Option<Notice> {
        self.roll(now);
        if let Err(r) = self.check_dial(now) {
            return Some(Notice {
                limit: r.limit,
                hang_up: true,
                remaining: 0,
                message: format!("Hanging up. {}", r.message),
            });
        }
        let lead = i64::try_from(self.policy.warn_before_s).unwrap_or(i64::MAX);
        let name = self.connection.clone();
        let closes = self
            .policy
            .windows
            .closes_in(now)
            .map(|s| self.local_ahead(now, s) - now.unix);
        match closes {
            Some(left) if left <= lead => {
                if !self.warned.contains(&Limit::Window) {
                    self.warned.push(Limit::Window);
                    let secs = u64::try_from(left).unwrap_or(0);
                    return Some(Notice {
                        limit: Limit::Window,
                        hang_up: false,
                        remaining: secs,
                        message: format!(
                            "Connection {name} will hang up in {}: its dialling window closes {}",
                            hms(secs),
                            self.when(now.unix + left, now)
                        ),
                    });
                }
            }
            // Far from closing (or never): the next closing warns again.
            _ => self.warned.retain(|l| *l != Limit::Window),
        }
        if let Some(q) = self.policy.bytes {
            let used = self.bytes_used();
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_sign_loss,
                clippy::cast_possible_truncation
            )]
            let at = (q as f64 * self.policy.warn_at) as u64;
            if used >= at && !self.warned.contains(&Limit::Bytes) {
                self.warned.push(Limit::Bytes);
                let left = q.saturating_sub(used);
                return Some(Notice {
                    limit: Limit::Bytes,
                    hang_up: false,
                    remaining: left,
                    message: format!(
                        "Connection {name} has used {used} of its {q} byte {} quota; it hangs up when {left} more bytes have passed",
                        self.policy.bytes_period.adjective()
                    ),
                });
            }
        }
        if let Some(b) = self.policy.time_s {
            let left = b.saturating_sub(self.usage.up_ms / 1000);
            if left <= self.policy.warn_before_s && !self.warned.contains(&Limit::Time) {
                self.warned.push(Limit::Time);
                return Some(Notice {
                    limit: Limit::Time,
                    hang_up: false,
                    remaining: left,
                    message: format!(
                        "Connection {name} will hang up in {}: its {} connect time ({}) runs out",
                        hms(left),
                        self.policy.time_period.adjective(),
                        hms(b)
                    ),
                });
            }
        }
        None
    }

    /// The budget at `now`, for status.
    pub fn view(&mut self, now: Clock) -> BudgetView {
        let refusal = self.check_dial(now).err().map(|r| r.message);
        let w = &self.policy.windows;
        let open = w.is_open(now);
        let change = if open {
            w.closes_in(now)
        } else {
            w.opens_in(now)
        };
        BudgetView {
            bytes_quota: self.policy.bytes,
            bytes_used: self.bytes_used(),
            bytes_period: self.policy.bytes_period,
            count: self.policy.count,
            bytes_resets_at: self.period_end(self.policy.bytes_period, now),
            time_budget_s: self.policy.time_s,
            time_used_s: self.usage.up_ms / 1000,
            time_period: self.policy.time_period,
            time_resets_at: self.period_end(self.policy.time_period, now),
            windows: w.text().to_vec(),
            window_open: open,
            window_changes_at: change.map(|s| self.local_ahead(now, s)),
            refusal,
            offset: now.offset,
        }
    }
}

impl Period {
    fn adjective(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Month => "monthly",
        }
    }
}

/// `1h02m03s`-style duration.
fn hms(s: u64) -> String {
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

pub mod tz;

use tz::{civil_from_days, days_from_civil};
pub use tz::{local_offset, Zone};

#[cfg(test)]
mod tests;
