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

/// `<stat>` of `+CREG`/`+CGREG`/`+CEREG` (27.007 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown.
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// 6, 9: registered, home, SMS only / CSFB not preferred.
    HomeLimited,
    /// 7, 10: registered, roaming, SMS only / CSFB not preferred.
    RoamingLimited,
    /// 8: emergency services only.
    Emergency,
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
            6 | 9 => Self::HomeLimited,
            7 | 10 => Self::RoamingLimited,
            8 => Self::Emergency,
            _ => return None,
        })
    }

    /// Registered (home or roaming).
    pub fn registered(self) -> bool {
        matches!(
            self,
            Self::Home | Self::Roaming | Self::HomeLimited | Self::RoamingLimited
        )
    }

    /// Registered on a visited network.
    pub fn roaming(self) -> bool {
        matches!(self, Self::Roaming | Self::RoamingLimited)
    }

    /// Lower-case name (`home`, `roaming`, `searching`).
    pub fn name(self) -> &'static str {
        match self {
            Self::NotRegistered => "not-registered",
            Self::Home => "home",
            Self::Searching => "searching",
            Self::Denied => "denied",
            Self::Unknown => "unknown",
            Self::Roaming => "roaming",
            Self::HomeLimited => "home-limited",
            Self::RoamingLimited => "roaming-limited",
            Self::Emergency => "emergency-only",
        }
    }
}

/// One registration answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Status.
    pub status: RegStatus,
    /// Location / tracking area code (hex text as sent), if given.
    pub area: Option<String>,
    /// Cell id (hex text as sent), if given.
    pub cell: Option<String>,
    /// Access technology `<AcT>` (0 GSM, 2 UTRAN, 7 E-UTRAN...), if given.
    pub act: Option<u8>,
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

/// Name of an access technology `<AcT>`.
pub fn act_name(act: u8) -> &'static str {
    match act {
        0 | 1 | 3 => "GSM",
        2 => "UMTS",
        4..=6 => "HSPA",
        7 => "LTE",
        8 => "EC-GSM",
        9 => "NB-IoT",
        11 | 12 => "NR",
        13 => "NR+LTE",
        _ => "?",
    }
}

/// The body of an information line `+NAME: body`, if `line` is one.
fn body<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.trim().strip_prefix(name)?;
    Some(rest.strip_prefix(':')?.trim())
}

/// Split a parameter list on commas outside quotes; quotes are removed.
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

/// `+CREG:`/`+CGREG:`/`+CEREG:` (`name` without the colon), as a read answer
/// (`<n>,<stat>[,<lac>,<ci>[,<AcT>]]`) or an unsolicited one (`<stat>[,<lac>,<ci>...]`).
pub fn parse_registration(name: &str, line: &str) -> Option<Registration> {
    let f = fields(body(line, name)?);
    // A read answer starts with <n> then a numeric <stat>; an unsolicited one has the
    // quoted area code second (or nothing).
    let read = f.len() >= 2 && !f[1].1 && f[1].0.parse::<u8>().is_ok();
    let off = usize::from(read);
    let status = RegStatus::from_code(num(f.get(off))?)?;
    if read && num(f.first()).is_none_or(|n| n > 5) {
        return None;
    }
    Some(Registration {
        status,
        area: text(f.get(off + 1)),
        cell: text(f.get(off + 2)),
        act: num(f.get(off + 3)),
    })
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
    let b = b.trim_matches('"');
    Some(match b {
        "READY" => SimState::Ready,
        "SIM PIN" => SimState::PinRequired,
        "SIM PUK" => SimState::PukRequired,
        "" => return None,
        other => SimState::Other(other.to_string()),
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
        let final_error = code == ResultCode::Error
            || line.starts_with("+CME ERROR")
            || line.starts_with("+CMS ERROR");
        if code == ResultCode::Ok || final_error {
            self.answered += 1;
            self.finish(step, !final_error);
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
