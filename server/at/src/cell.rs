//! Cellular modem status over AT (3GPP TS 27.007): identity (`ATI`, `+CGMI`, `+CGMM`,
//! `+CGSN`), SIM state (`+CPIN`, entering a PIN), signal (`+CSQ`), registration (`+CREG`,
//! `+CGREG`, `+CEREG`) and operator (`+COPS`). Pure line parsers plus [`CellPoll`], a
//! sans-IO query that runs the commands one by one on an idle command-mode line.
//!
//! Never run it while the line carries PPP: the caller polls only a modem no session uses.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::result::ResultCode;

/// `+CSQ` signal quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// `<rssi>`: 0..=31, 99 = not known.
    pub rssi: u8,
    /// `<ber>`: 0..=7, 99 = not known.
    pub ber: u8,
}

impl Signal {
    /// Received signal strength in dBm (27.007 8.5: 0 = -113 or less, 1 = -111,
    /// 2..30 = -109..-53, 31 = -51 or more), `None` when not known.
    pub fn dbm(self) -> Option<i32> {
        (self.rssi <= 31).then(|| -113 + 2 * i32::from(self.rssi))
    }

    /// Bars 0..=4 from the usual marginal / ok / good / excellent bands (rssi 2-9, 10-14,
    /// 15-19, 20-31); 0 for no signal or unknown.
    pub fn bars(self) -> u8 {
        match self.rssi {
            2..=9 => 1,
            10..=14 => 2,
            15..=19 => 3,
            20..=31 => 4,
            _ => 0,
        }
    }
}

/// `<stat>` of `+CREG`/`+CGREG`/`+CEREG`/`+C5GREG` (27.007 7.2, 10.1.20, 10.1.22, 10.1.68).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown (e.g. out of coverage).
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// 6: registered for "SMS only", home network.
    HomeSmsOnly,
    /// 7: registered for "SMS only", roaming.
    RoamingSmsOnly,
    /// 8: attached for emergency bearer services only.
    Emergency,
    /// 9: registered for "CSFB not preferred", home network.
    HomeCsfbNotPreferred,
    /// 10: registered for "CSFB not preferred", roaming.
    RoamingCsfbNotPreferred,
    /// 11: attached for access to RLOS (restricted local operator services) only.
    Rlos,
}

impl RegStatus {
    /// From `<stat>`.
    pub fn from_code(n: u8) -> Option<Self> {
        Some(match n {
            0 => Self::NotRegistered,
            1 => Self::Home,
            2 => Self::Searching,
            3 => Self::Denied,
            4 => Self::Unknown,
            5 => Self::Roaming,
            6 => Self::HomeSmsOnly,
            7 => Self::RoamingSmsOnly,
            8 => Self::Emergency,
            9 => Self::HomeCsfbNotPreferred,
            10 => Self::RoamingCsfbNotPreferred,
            11 => Self::Rlos,
            _ => return None,
        })
    }

    /// `<stat>` of this status.
    pub fn code(self) -> u8 {
        match self {
            Self::NotRegistered => 0,
            Self::Home => 1,
            Self::Searching => 2,
            Self::Denied => 3,
            Self::Unknown => 4,
            Self::Roaming => 5,
            Self::HomeSmsOnly => 6,
            Self::RoamingSmsOnly => 7,
            Self::Emergency => 8,
            Self::HomeCsfbNotPreferred => 9,
            Self::RoamingCsfbNotPreferred => 10,
            Self::Rlos => 11,
        }
    }

    /// Registered (home or roaming, including the SMS-only and CSFB-not-preferred variants);
    /// emergency-only and RLOS-only attachments are not.
    pub fn registered(self) -> bool {
        matches!(
            self,
            Self::Home
                | Self::Roaming
                | Self::HomeSmsOnly
                | Self::RoamingSmsOnly
                | Self::HomeCsfbNotPreferred
                | Self::RoamingCsfbNotPreferred
        )
    }

    /// Registered on a visited network.
    pub fn roaming(self) -> bool {
        matches!(
            self,
            Self::Roaming | Self::RoamingSmsOnly | Self::RoamingCsfbNotPreferred
        )
    }

    /// Lower-case name (`home`, `roaming`, `searching`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::NotRegistered => "not-registered",
            Self::Home => "home",
            Self::Searching => "searching",
            Self::Denied => "denied",
            Self::Unknown => "unknown",
            Self::Roaming => "roaming",
            Self::HomeSmsOnly => "home-sms-only",
            Self::RoamingSmsOnly => "roaming-sms-only",
            Self::Emergency => "emergency-only",
            Self::HomeCsfbNotPreferred => "home-csfb-not-preferred",
            Self::RoamingCsfbNotPreferred => "roaming-csfb-not-preferred",
            Self::Rlos => "rlos-only",
        }
    }
}

/// Which registration a line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegKind {
    /// `+CREG`: circuit switched.
    Creg,
    /// `+CGREG`: GPRS (2G/3G packet switched).
    Cgreg,
    /// `+CEREG`: EPS (LTE).
    Cereg,
    /// `+C5GREG`: 5GS (NR).
    C5greg,
}

impl RegKind {
    /// All kinds.
    pub const ALL: [RegKind; 4] = [
        RegKind::Creg,
        RegKind::Cgreg,
        RegKind::Cereg,
        RegKind::C5greg,
    ];

    /// The line prefix without the colon (`+CEREG`).
    pub fn prefix(self) -> &'static str {
        match self {
            RegKind::Creg => "+CREG",
            RegKind::Cgreg => "+CGREG",
            RegKind::Cereg => "+CEREG",
            RegKind::C5greg => "+C5GREG",
        }
    }

    /// True for the packet-switched registrations (the ones a data call needs).
    pub fn packet(self) -> bool {
        !matches!(self, RegKind::Creg)
    }
}

/// One registration answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Status.
    pub status: RegStatus,
    /// `<n>` when the line was a read answer (`<n>,<stat>,…`); `None` for an unsolicited
    /// line (`<stat>,…`).
    pub mode: Option<u8>,
    /// Location / tracking area code (hex text as sent, spaces removed), if given.
    pub area: Option<String>,
    /// Cell id (hex text as sent), if given.
    pub cell: Option<String>,
    /// Access technology `<AcT>` (0 GSM, 2 UTRAN, 7 E-UTRAN, 11 NR…), if given.
    pub act: Option<u8>,
    /// Routing area code (`+CGREG`, or a vendor's `<tac>,<rac>,<ci>` layout), if given.
    pub rac: Option<String>,
    /// `<cause_type>,<reject_cause>` (`<n>`=3 and up), if given.
    pub reject: Option<(u8, u16)>,
}

/// `+COPS?`: the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// `<mode>`: 0 automatic, 1 manual, 2 deregistered, 3 format only, 4 manual/automatic.
    pub mode: u8,
    /// Operator name or numeric code, when registered.
    pub name: Option<String>,
    /// Access technology, if given.
    pub act: Option<u8>,
}

/// `+CPIN?`: the SIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimState {
    /// `READY`.
    Ready,
    /// `SIM PIN`: a PIN is needed.
    PinRequired,
    /// `SIM PUK`: blocked, a PUK is needed (never sent automatically).
    PukRequired,
    /// Anything else (`SIM PIN2`, `PH-SIM PIN`...), as sent.
    Other(String),
}

impl SimState {
    /// The `<code>` as the modem sent it (`READY`, `SIM PIN`, `SIM PUK2`…).
    pub fn code(&self) -> &str {
        match self {
            SimState::Ready => "READY",
            SimState::PinRequired => "SIM PIN",
            SimState::PukRequired => "SIM PUK",
            SimState::Other(t) => t,
        }
    }

    /// What the SIM waits for, in words (27.007 8.3 `<code>` values).
    pub fn describe(&self) -> String {
        let what = match self.code().to_ascii_uppercase().as_str() {
            "READY" => "ready",
            "SIM PIN" => "SIM PIN required",
            "SIM PUK" => "SIM PUK required: the SIM is blocked after wrong PINs",
            "SIM PIN2" => "SIM PIN2 required",
            "SIM PUK2" => "SIM PUK2 required",
            "PH-SIM PIN" => "phone-to-SIM password required",
            "PH-FSIM PIN" => "phone-to-first-SIM password required",
            "PH-FSIM PUK" => "phone-to-first-SIM PUK required",
            "PH-NET PIN" => "network personalization password required",
            "PH-NET PUK" => "network personalization PUK required",
            "PH-NETSUB PIN" => "network subset personalization password required",
            "PH-NETSUB PUK" => "network subset personalization PUK required",
            "PH-SP PIN" => "service provider personalization password required",
            "PH-SP PUK" => "service provider personalization PUK required",
            "PH-CORP PIN" => "corporate personalization password required",
            "PH-CORP PUK" => "corporate personalization PUK required",
            _ => return format!("SIM state {}", self.code()),
        };
        what.to_string()
    }

    /// True when the SIM waits for a PUK of any kind: nothing is ever sent automatically.
    pub fn needs_puk(&self) -> bool {
        self.code().to_ascii_uppercase().contains("PUK")
    }
}

/// Name of an access technology `<AcT>`.
pub fn act_name(act: u8) -> &'static str {
    match act {
        0 | 1 | 3 => "GSM",
        2 => "UMTS",
        4..=6 => "HSPA",
        7 => "LTE",
        8 => "EC-GSM",
        9 => "NB-IoT",
        10 => "LTE",
        11 | 12 => "NR",
        13 => "NR+LTE",
        _ => "?",
    }
}

/// The body of an information line `+NAME: body`, if `line` is one.
fn body<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let t = line.trim();
    let rest = t
        .get(..name.len())
        .filter(|p| p.eq_ignore_ascii_case(name))
        .map(|_| &t[name.len()..])?;
    Some(rest.strip_prefix(':')?.trim())
}

/// Split a parameter list on commas outside quotes. Quotes are removed; outside quotes all
/// white space is dropped (`  0 5` is `05`), inside it is kept. The flag tells a quoted field.
fn fields(body: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for c in body.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                out.push((cur.trim().to_string(), was_quoted));
                cur.clear();
                was_quoted = false;
            }
            c if !quoted && c.is_whitespace() => {}
            c => cur.push(c),
        }
    }
    out.push((cur.trim().to_string(), was_quoted));
    out
}

fn num(f: Option<&(String, bool)>) -> Option<u8> {
    f.and_then(|(s, _)| s.parse().ok())
}

fn text(f: Option<&(String, bool)>) -> Option<String> {
    f.map(|(s, _)| s.clone()).filter(|s| !s.is_empty())
}

/// `+CSQ: <rssi>,<ber>`.
pub fn parse_csq(line: &str) -> Option<Signal> {
    let f = fields(body(line, "+CSQ")?);
    let rssi = num(f.first())?;
    let ber = num(f.get(1))?;
    ((rssi <= 31 || rssi == 99) && (ber <= 7 || ber == 99)).then_some(Signal { rssi, ber })
}

/// What a registration field may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    N,
    Stat,
    Area,
    Rac,
    Cell,
    Act,
}

/// The layouts a registration line may have: (slots, solicited, exactly this many fields).
/// Standard (27.007): `[<n>,]<stat>[,<lac>,<ci>[,<AcT>…]]`. Vendor (Novatel E362, and
/// others): `[<n>,]<stat>,<tac>,<rac>,<ci>,<AcT>`.
const LAYOUTS: [(&[Slot], bool, bool); 4] = [
    (
        &[Slot::N, Slot::Stat, Slot::Area, Slot::Cell, Slot::Act],
        true,
        false,
    ),
    (
        &[Slot::Stat, Slot::Area, Slot::Cell, Slot::Act],
        false,
        false,
    ),
    (
        &[
            Slot::N,
            Slot::Stat,
            Slot::Area,
            Slot::Rac,
            Slot::Cell,
            Slot::Act,
        ],
        true,
        true,
    ),
    (
        &[Slot::Stat, Slot::Area, Slot::Rac, Slot::Cell, Slot::Act],
        false,
        true,
    ),
];

fn is_dec(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Zero-padded decimal (`001`): allowed (Iridium pads every integer) but less likely.
fn padded(s: &str) -> bool {
    s.len() > 1 && s.starts_with('0')
}

/// How badly `(text, quoted)` fits `slot`: `None` = impossible, else a penalty (0 = the
/// field has exactly the shape 27.007 gives it).
fn fit(slot: Slot, (s, quoted): &(String, bool)) -> Option<u32> {
    match slot {
        Slot::N | Slot::Stat => {
            let max = if slot == Slot::N { 5 } else { 11 };
            if *quoted || !is_dec(s) || s.parse::<u32>().ok()? > max {
                return None;
            }
            Some(u32::from(padded(s)))
        }
        Slot::Area | Slot::Rac | Slot::Cell => {
            if !is_hex(s) {
                return None;
            }
            // LAC and LTE TAC are 16 bits (4 hex digits), an NR TAC 24; a RAC is 8 bits;
            // an E-UTRAN cell id 28 bits, an NR cell id 36.
            let longest = match slot {
                Slot::Area => 6,
                Slot::Rac => 2,
                _ => 9,
            };
            let short_unquoted = slot == Slot::Area && !quoted && s.len() == 1;
            Some(2 * u32::from(s.len() > longest) + u32::from(short_unquoted))
        }
        Slot::Act => {
            if *quoted {
                return None;
            }
            if s.is_empty() {
                return Some(0);
            }
            match s.parse::<u8>() {
                Ok(a) if is_dec(s) && a <= 15 => Some(u32::from(padded(s))),
                _ => Some(2),
            }
        }
    }
}

/// How many of the fields after `<AcT>` do not have the shape the command gives them:
/// `+CREG`/`+CEREG`: `<cause_type>,<reject_cause>`; `+CGREG`: `<rac>,<cause_type>,
/// <reject_cause>`; `+C5GREG`: `<Allowed_NSSAI_length>,<Allowed_NSSAI>,<cause_type>,
/// <reject_cause>`. Vendors append other fields (Samsung), so this is a penalty, not a refusal.
fn extras_misfit(name: &str, extras: &[(String, bool)]) -> u32 {
    #[derive(Clone, Copy)]
    enum Want {
        CauseType,
        Dec,
        Rac,
        Any,
    }
    let wants: &[Want] = match name.to_ascii_uppercase().as_str() {
        "+CGREG" => &[Want::Rac, Want::CauseType, Want::Dec],
        "+C5GREG" => &[Want::Dec, Want::Any, Want::CauseType, Want::Dec],
        _ => &[Want::CauseType, Want::Dec],
    };
    let mut misfit = 0;
    for (i, (text, quoted)) in extras.iter().enumerate() {
        let fits = text.is_empty()
            || match wants.get(i) {
                None => false,
                Some(Want::Any) => true,
                Some(Want::Rac) => is_hex(text) && text.len() <= 2,
                Some(Want::Dec) => !quoted && is_dec(text),
                Some(Want::CauseType) => !quoted && (text == "0" || text == "1"),
            };
        misfit += u32::from(!fits);
    }
    misfit
}

/// `+CREG:`/`+CGREG:`/`+CEREG:`/`+C5GREG:` (`name` without the colon), as a read answer
/// (`<n>,<stat>[,<lac>,<ci>[,<AcT>…]]`) or an unsolicited one (`<stat>[,<lac>,<ci>…]`),
/// quoted or not. The two are told apart by the shape of every field, not by position
/// alone: `<n>`, `<stat>` and `<AcT>` are small unquoted decimals, the area and cell codes hex
/// strings of bounded length (4-6 and up to 9 digits). The layout whose fields all fit, with
/// the fewest unusual shapes (zero padding, over-long codes), wins; a tie goes to the read
/// answer. A vendor layout with a RAC between area and cell is recognised by the same rule.
pub fn parse_registration(name: &str, line: &str) -> Option<Registration> {
    let f = fields(body(line, name)?);
    let mut best: Option<(u32, usize)> = None;
    for (i, (slots, _, exact)) in LAYOUTS.iter().enumerate() {
        if *exact && f.len() != slots.len() {
            continue;
        }
        let stat_at = usize::from(slots[0] == Slot::N);
        if f.len() <= stat_at {
            continue;
        }
        // An area code comes with a cell id (a lone one is unusual, not impossible).
        let area_at = stat_at + 1;
        let cell_at = slots.iter().position(|s| *s == Slot::Cell).unwrap_or(0);
        let lone_area = f.len() > area_at && f.len() <= cell_at;
        if lone_area && !f[area_at].1 {
            continue;
        }
        let mut score = 2 * u32::from(lone_area);
        let mut ok = true;
        for (slot, field) in slots.iter().zip(&f) {
            match fit(*slot, field) {
                Some(p) => score += p,
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && !exact {
            score += extras_misfit(name, f.get(slots.len()..).unwrap_or_default());
        }
        if ok && best.is_none_or(|(b, _)| score < b) {
            best = Some((score, i));
        }
    }
    let (_, i) = best?;
    let (slots, solicited, _) = LAYOUTS[i];
    let at = |slot: Slot| slots.iter().position(|s| *s == slot).and_then(|p| f.get(p));
    let status = RegStatus::from_code(num(at(Slot::Stat))?)?;
    let act_text = at(Slot::Act);
    let act = num(act_text).filter(|a| *a <= 15 && act_text.is_some_and(|(s, _)| is_dec(s)));
    let mut reg = Registration {
        status,
        mode: if solicited { num(at(Slot::N)) } else { None },
        area: text(at(Slot::Area)),
        cell: text(at(Slot::Cell)),
        act,
        rac: text(at(Slot::Rac)),
        reject: None,
    };
    // Standard layouts: what follows <AcT> depends on the command.
    if i < 2 {
        let extra = &f[slots.len().min(f.len())..];
        let cause_at = match name.to_ascii_uppercase().as_str() {
            "+CGREG" => {
                reg.rac = text(extra.first()).filter(|r| is_hex(r) && r.len() <= 2);
                1
            }
            "+C5GREG" => 2,
            _ => 0,
        };
        if let (Some(t), Some((c, _))) = (num(extra.get(cause_at)), extra.get(cause_at + 1)) {
            if let Ok(c) = c.parse::<u16>() {
                reg.reject = Some((t, c));
            }
        }
    }
    Some(reg)
}

/// A registration line of any kind (`+CREG`, `+CGREG`, `+CEREG`, `+C5GREG`).
pub fn parse_any_registration(line: &str) -> Option<(RegKind, Registration)> {
    RegKind::ALL
        .iter()
        .find_map(|k| parse_registration(k.prefix(), line).map(|r| (*k, r)))
}

/// Renders a registration as a modem would (`+CEREG: 2,1,"1A2B","01C2D3E4",7`), for tests
/// and fuzzing: [`parse_registration`] of it gives it back.
pub fn render_registration(kind: RegKind, r: &Registration) -> String {
    let mut s = format!("{}: ", kind.prefix());
    if let Some(n) = r.mode {
        s.push_str(&format!("{n},"));
    }
    s.push_str(&r.status.code().to_string());
    if r.area.is_some() || r.cell.is_some() {
        s.push_str(&format!(
            ",\"{}\",\"{}\"",
            r.area.as_deref().unwrap_or_default(),
            r.cell.as_deref().unwrap_or_default()
        ));
        if let Some(a) = r.act {
            s.push_str(&format!(",{a}"));
        }
    }
    s
}

/// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]`.
pub fn parse_cops(line: &str) -> Option<Operator> {
    let f = fields(body(line, "+COPS")?);
    let mode = num(f.first()).filter(|m| *m <= 4)?;
    Some(Operator {
        mode,
        name: text(f.get(2)),
        act: num(f.get(3)),
    })
}

/// `+CPIN: <code>`.
pub fn parse_cpin(line: &str) -> Option<SimState> {
    let b = body(line, "+CPIN")?;
    let b = b.trim_matches('"').trim();
    Some(match b.to_ascii_uppercase().as_str() {
        "READY" => SimState::Ready,
        "SIM PIN" => SimState::PinRequired,
        "SIM PUK" => SimState::PukRequired,
        "" => return None,
        _ => SimState::Other(b.to_string()),
    })
}

/// Everything one poll learnt (`None`: not answered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellStatus {
    /// `ATI` lines.
    pub ident: Vec<String>,
    /// `+CGMI`.
    pub manufacturer: Option<String>,
    /// `+CGMM`.
    pub model: Option<String>,
    /// `+CGSN` (IMEI).
    pub imei: Option<String>,
    /// `+CPIN?` (after entering the PIN, if one was needed and configured).
    pub sim: Option<SimState>,
    /// Whether a PIN was sent, and whether the modem took it.
    pub pin: Option<bool>,
    /// `+CSQ`.
    pub signal: Option<Signal>,
    /// `+CREG?` (circuit switched).
    pub creg: Option<Registration>,
    /// `+CGREG?` (GPRS).
    pub cgreg: Option<Registration>,
    /// `+CEREG?` (EPS / LTE).
    pub cereg: Option<Registration>,
    /// `+COPS?`.
    pub operator: Option<Operator>,
    /// Commands that answered ERROR or nothing.
    pub unanswered: Vec<String>,
}

impl CellStatus {
    /// The most capable registration known (EPS, then GPRS, then CS).
    pub fn registration(&self) -> Option<&Registration> {
        fn reg(r: &Option<Registration>) -> Option<&Registration> {
            r.as_ref().filter(|r| r.status.registered())
        }
        reg(&self.cereg)
            .or_else(|| reg(&self.cgreg))
            .or_else(|| reg(&self.creg))
            .or(self.cereg.as_ref())
            .or(self.cgreg.as_ref())
            .or(self.creg.as_ref())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Ati,
    Cgmi,
    Cgmm,
    Cgsn,
    Cpin,
    EnterPin,
    CpinAgain,
    Csq,
    Creg,
    Cgreg,
    Cereg,
    Cops,
}

impl Step {
    fn command(self, pin: &str) -> String {
        match self {
            Step::Ati => "ATI".into(),
            Step::Cgmi => "AT+CGMI".into(),
            Step::Cgmm => "AT+CGMM".into(),
            Step::Cgsn => "AT+CGSN".into(),
            Step::Cpin | Step::CpinAgain => "AT+CPIN?".into(),
            Step::EnterPin => format!("AT+CPIN=\"{pin}\""),
            Step::Csq => "AT+CSQ".into(),
            Step::Creg => "AT+CREG?".into(),
            Step::Cgreg => "AT+CGREG?".into(),
            Step::Cereg => "AT+CEREG?".into(),
            Step::Cops => "AT+COPS?".into(),
        }
    }
}

const STEPS: [Step; 10] = [
    Step::Ati,
    Step::Cgmi,
    Step::Cgmm,
    Step::Cgsn,
    Step::Cpin,
    Step::Csq,
    Step::Creg,
    Step::Cgreg,
    Step::Cereg,
    Step::Cops,
];

/// Longest line kept (a modem spewing without line ends cannot grow memory).
const MAX_LINE: usize = 512;

/// A status query: sends the commands one at a time, each answered by a final result or
/// its timeout (then skipped); never enters data mode. Feed bytes and time; read
/// [`CellPoll::poll_transmit`] and, once [`CellPoll::is_done`], [`CellPoll::status`].
#[derive(Debug)]
pub struct CellPoll {
    pin: Option<String>,
    queue: VecDeque<Step>,
    current: Option<(Step, Instant)>,
    info: Vec<String>,
    line: Vec<u8>,
    out: VecDeque<Vec<u8>>,
    timeout: Duration,
    status: CellStatus,
    answered: usize,
}

impl CellPoll {
    /// A query starting now; `pin` is entered when the SIM asks for one.
    pub fn new(now: Instant, pin: Option<String>, command_timeout: Duration) -> Self {
        let mut p = Self {
            pin,
            queue: STEPS.iter().copied().collect(),
            current: None,
            info: Vec::new(),
            line: Vec::new(),
            out: VecDeque::new(),
            timeout: command_timeout,
            status: CellStatus::default(),
            answered: 0,
        };
        p.next(now);
        p
    }

    fn next(&mut self, now: Instant) {
        self.info.clear();
        self.current = self.queue.pop_front().map(|s| (s, now));
        if let Some((s, _)) = self.current {
            let pin = self.pin.as_deref().unwrap_or_default();
            self.out
                .push_back(format!("{}\r", s.command(pin)).into_bytes());
        }
    }

    /// Bytes from the modem.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if !self.line.is_empty() {
                    let line = String::from_utf8_lossy(&self.line).trim().to_string();
                    self.line.clear();
                    self.on_line(now, &line);
                }
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn on_line(&mut self, now: Instant, line: &str) {
        let Some((step, _)) = self.current else {
            return;
        };
        if line.is_empty() || line.to_ascii_uppercase().starts_with("AT") {
            return; // echo
        }
        let code = ResultCode::parse(line);
        if code.is_final() {
            self.answered += 1;
            self.finish(step, code == ResultCode::Ok);
            self.next(now);
        } else if !matches!(code, ResultCode::Ring) {
            self.info.push(line.to_string());
        }
    }

    fn finish(&mut self, step: Step, ok: bool) {
        let s = &mut self.status;
        let first = |info: &[String], name: &str| {
            info.iter()
                .find(|l| !l.is_empty())
                .map(|l| body(l, name).unwrap_or(l).trim_matches('"').to_string())
        };
        let find = |info: &[String], f: &dyn Fn(&str) -> bool| {
            info.iter().find(|l| f(l)).cloned().unwrap_or_default()
        };
        match step {
            Step::EnterPin => {
                s.pin = Some(ok);
                if ok {
                    self.queue.push_front(Step::CpinAgain);
                }
            }
            _ if !ok => {
                let pin = self.pin.as_deref().unwrap_or_default();
                let cmd = step.command(pin);
                s.unanswered.push(cmd);
            }
            Step::Ati => s.ident = self.info.clone(),
            Step::Cgmi => s.manufacturer = first(&self.info, "+CGMI"),
            Step::Cgmm => s.model = first(&self.info, "+CGMM"),
            Step::Cgsn => s.imei = first(&self.info, "+CGSN"),
            Step::Cpin | Step::CpinAgain => {
                s.sim = parse_cpin(&find(&self.info, &|l| l.starts_with("+CPIN")));
                if step == Step::Cpin && s.sim == Some(SimState::PinRequired) && self.pin.is_some()
                {
                    self.queue.push_front(Step::EnterPin);
                }
            }
            Step::Csq => s.signal = parse_csq(&find(&self.info, &|l| l.starts_with("+CSQ"))),
            Step::Creg => {
                s.creg = parse_registration("+CREG", &find(&self.info, &|l| l.starts_with("+CREG")))
            }
            Step::Cgreg => {
                s.cgreg =
                    parse_registration("+CGREG", &find(&self.info, &|l| l.starts_with("+CGREG")))
            }
            Step::Cereg => {
                s.cereg =
                    parse_registration("+CEREG", &find(&self.info, &|l| l.starts_with("+CEREG")))
            }
            Step::Cops => s.operator = parse_cops(&find(&self.info, &|l| l.starts_with("+COPS"))),
        }
    }

    /// Bytes to write to the modem.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When the current command times out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.map(|(_, at)| at + self.timeout)
    }

    /// A command that got no final result in time is skipped.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((step, at)) = self.current {
            if now >= at + self.timeout {
                self.finish(step, false);
                self.next(now);
            }
        }
    }

    /// All commands answered or skipped.
    pub fn is_done(&self) -> bool {
        self.current.is_none()
    }

    /// Commands that got a final result (0: the modem never answered).
    pub fn answered(&self) -> usize {
        self.answered
    }

    /// What was learnt so far.
    pub fn status(&self) -> &CellStatus {
        &self.status
    }
}

#[cfg(test)]
mod tests;
