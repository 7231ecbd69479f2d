//! Mock Hayes-style modem (sans-IO) with scripted call outcomes, fault injection and baud-rate
//! throttling, plus [`pty`], a driver that puts it on a pseudo-terminal. The state machine never
//! reads the clock or touches a file descriptor; the far end of a call is an [`Answerer`].
//!
//! Supported commands (chained on one line, spaces ignored): `Z`, `&F`, `E0/1`, `V0/1`, `Q0/1`,
//! `S<n>=<v>`, `S<n>?`, `I[n]`, `D[T|P]<number>`, `H[0]`, `O[0]`, `A` (ERROR: we never answer),
//! `&C`, `&D`, `&K`, `X`, `L`, `M` (accepted, ignored), `+CGDCONT=…`/`+CGDCONT?`, `+FCLASS=…`,
//! `+CREG?`, `+CGATT…`. `+++` escape with guard time S12 (fiftieths of a second, V.250 / Hayes).
//!
//! Hardware quirks, chosen per test in [`MockModemConfig`] (the behaviour matrix):
//! - extra result codes after `ATH`/`ATZ` ([`ExtraCodes`]: `NO CARRIER` then `OK`, `OK` `OK`, or
//!   a second `OK` after a delay), as many real modems print them;
//! - the escape guard timed **on the line** ([`MockModemConfig::guard_on_line`]): each DTE byte
//!   occupies the DTE→modem line for 10 bits at `baud` from when it arrives or the line frees,
//!   and the guard silence is measured between the bytes as they leave that line, so bytes still
//!   queued count against it (a DTE that writes `+++` right after a burst is not escaped);
//! - the stored profile `ATZ` restores: echo (`E`), verbose or numeric results (`V`), `&D`;
//! - `&D0` (ignore DTR), `&D1` (DTR drop = escape to online command state), `&D2` (hang up);
//! - a modem that goes silent mid-call ([`MockModemConfig::silent_after`]: nothing in, nothing
//!   out, commands and data alike) and one left online by a previous run
//!   ([`MockModemConfig::online_at_start`]: it starts in data state with a call up).

mod config;
pub mod pty;

pub use config::{
    Answerer, AnswererFactory, CallResult, CellState, EchoAnswerer, ExtraCodes, MockModemConfig,
    MockModemStats, Noise, NullAnswerer, Outcome, OutcomeParseError,
};

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use masqdial_at::result::{numeric_connect_code, ResultCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    /// Dialling; the outcome fires at `at`.
    Dialing {
        at: Instant,
    },
    Data,
    /// Escaped with `+++`; the call is still up (`ATO` returns to it).
    OnlineCommand,
}

/// Small deterministic PRNG (xorshift64*), enough for noise patterns.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction of the line at a fixed rate: bytes queued, released at 10 bits per byte.
#[derive(Debug)]
struct Throttle {
    queue: VecDeque<u8>,
    /// When the byte on the wire (or the last one) finishes; `None` before the first byte.
    free_at: Option<Instant>,
    /// The queue ran empty at the last release: the line idled since `free_at`.
    was_idle: bool,
}

/// Bytes released per timer wake-up at most (keeps a driver from waking every 87 µs).
const BATCH: usize = 64;

impl Throttle {
    fn new() -> Self {
        Throttle {
            queue: VecDeque::new(),
            free_at: None,
            was_idle: true,
        }
    }

    fn byte_time(baud: u32) -> Duration {
        Duration::from_nanos(10_000_000_000 / u64::from(baud.max(1)))
    }

    /// Moves the bytes whose transmission has finished by `now` into `out`. Callers release
    /// right after every enqueue, so an idle line restarts at the enqueue time (no banked credit).
    fn release(&mut self, now: Instant, baud: u32, out: &mut Vec<u8>) {
        if baud == 0 {
            out.extend(self.queue.drain(..));
            return;
        }
        if self.queue.is_empty() {
            return;
        }
        let bt = Self::byte_time(baud);
        let mut free = match self.free_at {
            // Busy line: late wake-ups catch up byte by byte.
            Some(f) if !self.was_idle => f,
            // Idle line: these bytes were queued at `now`; the wire starts on them then.
            Some(f) => f.max(now),
            None => now,
        };
        while !self.queue.is_empty() && free + bt <= now {
            if let Some(b) = self.queue.pop_front() {
                out.push(b);
            }
            free += bt;
        }
        self.free_at = Some(free);
        self.was_idle = self.queue.is_empty();
    }

    fn next_release(&self, baud: u32) -> Option<Instant> {
        if self.queue.is_empty() || baud == 0 {
            return None;
        }
        let bt = Self::byte_time(baud);
        let n = u32::try_from(self.queue.len().min(BATCH)).unwrap_or(1);
        self.free_at.map(|f| f + bt * n)
    }
}

/// The mock modem (sans-IO).
pub struct MockModem {
    config: MockModemConfig,
    factory: AnswererFactory,
    mode: Mode,
    echo: bool,
    verbose: bool,
    quiet: bool,
    silent: bool,
    s: [u8; 256],
    line: Vec<u8>,
    pending_outcome: Option<(String, Outcome)>,
    answerer: Option<Box<dyn Answerer>>,
    connect_speed: u32,
    carrier_loss_at: Option<Instant>,
    /// Out to the DTE, unthrottled (command responses).
    out: VecDeque<Vec<u8>>,
    up: Throttle,
    down: Throttle,
    last_rx: Option<Instant>,
    plus_held: usize,
    escape_at: Option<Instant>,
    rng: XorShift,
    stats: MockModemStats,
    pdp: Option<String>,
    cell_step: usize,
    cell_started: bool,
    sim_unlocked: bool,
    /// `&D` setting now.
    dtr_mode: u8,
    /// When the last DTE byte finishes crossing the DTE→modem line (guard on the line).
    wire_free: Option<Instant>,
    /// The command line being executed holds `H` or `Z` (extra result codes follow).
    extra_due: bool,
    /// A late extra `OK` is due.
    late_ok_at: Option<Instant>,
    /// Going silent at this time (mid-call).
    silent_at: Option<Instant>,
}

impl fmt::Debug for MockModem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockModem")
            .field("mode", &self.mode)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl MockModem {
    /// A modem in command state with factory settings (E1 V1 Q0).
    #[must_use]
    pub fn new(config: MockModemConfig, factory: AnswererFactory) -> Self {
        let seed = config.noise.map_or(1, |n| n.seed.max(1));
        let silent = config.silent;
        let mut m = MockModem {
            config,
            factory,
            mode: Mode::Command,
            echo: true,
            verbose: true,
            quiet: false,
            silent,
            s: [0; 256],
            line: Vec::new(),
            pending_outcome: None,
            answerer: None,
            connect_speed: 0,
            carrier_loss_at: None,
            out: VecDeque::new(),
            up: Throttle::new(),
            down: Throttle::new(),
            last_rx: None,
            plus_held: 0,
            escape_at: None,
            rng: XorShift(seed),
            stats: MockModemStats::default(),
            pdp: None,
            cell_step: 0,
            cell_started: false,
            sim_unlocked: false,
            dtr_mode: 2,
            wire_free: None,
            extra_due: false,
            late_ok_at: None,
            silent_at: None,
        };
        m.stored_profile();
        if m.config.online_at_start {
            // Left online by a previous run: a call is up, the far end is fresh, and the line
            // has been quiet for long.
            m.stats.connects += 1;
            m.connect_speed = if m.config.baud == 0 {
                115_200
            } else {
                m.config.baud
            };
            m.answerer = Some((m.factory)(""));
            m.mode = Mode::Data;
        }
        m
    }

    /// `ATZ` (and power-on): the stored profile from the config.
    fn stored_profile(&mut self) {
        self.factory_defaults();
        self.echo = self.config.echo;
        self.verbose = self.config.verbose;
        self.dtr_mode = self.config.dtr_mode;
    }

    fn factory_defaults(&mut self) {
        self.echo = true;
        self.verbose = true;
        self.dtr_mode = 2;
        self.quiet = false;
        self.s = [0; 256];
        self.s[2] = b'+';
        self.s[3] = b'\r';
        self.s[4] = b'\n';
        self.s[5] = 8;
        self.s[7] = 50;
        self.s[12] = self.config.s12;
    }

    fn guard(&self) -> Duration {
        Duration::from_millis(u64::from(self.s[12]) * 20)
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> MockModemStats {
        self.stats
    }

    /// True while a call is up (data or escaped-online state).
    #[must_use]
    pub fn in_call(&self) -> bool {
        matches!(self.mode, Mode::Data | Mode::OnlineCommand)
    }

    /// The PDP context set by `AT+CGDCONT`, if any.
    #[must_use]
    pub fn pdp_context(&self) -> Option<&str> {
        self.pdp.as_deref()
    }

    /// Makes the modem stop (or resume) answering anything.
    pub fn set_silent(&mut self, silent: bool) {
        self.silent = silent;
    }

    /// Drops the carrier now: the far end is gone, the modem says NO CARRIER.
    pub fn inject_carrier_loss(&mut self, now: Instant) {
        if self.in_call() {
            self.end_call(now, true);
        }
    }

    /// The DTE dropped DTR: `&D0` ignores it, `&D1` escapes to online command state (`OK`),
    /// `&D2` hangs up and returns to command state.
    pub fn dtr_drop(&mut self, now: Instant) {
        match self.dtr_mode {
            0 => {}
            1 => {
                if self.mode == Mode::Data {
                    self.plus_held = 0;
                    self.escape_at = None;
                    self.mode = Mode::OnlineCommand;
                    self.result(&ResultCode::Ok);
                }
            }
            _ => {
                if self.in_call() || matches!(self.mode, Mode::Dialing { .. }) {
                    self.end_call(now, true);
                }
            }
        }
    }

    /// When a DTE byte arriving at `now` starts and ends crossing the DTE→modem line.
    fn on_wire(&mut self, now: Instant) -> (Instant, Instant) {
        if !self.config.guard_on_line || self.config.baud == 0 {
            return (now, now);
        }
        let start = self.wire_free.map_or(now, |f| f.max(now));
        let end = start + Throttle::byte_time(self.config.baud);
        self.wire_free = Some(end);
        (start, end)
    }

    /// Bytes from the DTE.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.silent {
            self.stats.ignored_silent += bytes.len() as u64;
            return;
        }
        // A due escape is recognised before later bytes can cancel it.
        if self.escape_at.is_some_and(|t| now >= t) {
            self.handle_timeout(now);
        }
        for &b in bytes {
            let (start, end) = self.on_wire(now);
            match self.mode {
                Mode::Data => self.data_byte(start, end, b),
                Mode::Dialing { .. } => {
                    // V.250 6.3.1: any character aborts the dial.
                    self.pending_outcome = None;
                    self.mode = Mode::Command;
                    self.result(&ResultCode::NoCarrier);
                }
                Mode::Command | Mode::OnlineCommand => self.command_byte(now, b),
            }
            self.last_rx = Some(end);
        }
        self.pump(now);
    }

    /// Next bytes for the DTE.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let out = self.out.pop_front()?;
        if self.silent {
            self.out.clear();
            return None;
        }
        Some(out)
    }

    /// Next timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if let Mode::Dialing { at } = self.mode {
            add(Some(at));
        }
        add(self.carrier_loss_at);
        add(self.escape_at);
        add(self.late_ok_at);
        add(self.silent_at);
        add(self.up.next_release(self.config.baud));
        if self.mode == Mode::Data {
            add(self.down.next_release(self.config.baud));
        }
        if let Some(a) = &self.answerer {
            add(a.poll_timeout());
        }
        t
    }

    /// Acts on timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Mode::Dialing { at } = self.mode {
            if now >= at {
                self.finish_dial(now);
            }
        }
        if self.carrier_loss_at.is_some_and(|t| now >= t) {
            self.carrier_loss_at = None;
            self.inject_carrier_loss(now);
        }
        if self.late_ok_at.is_some_and(|t| now >= t) {
            self.late_ok_at = None;
            self.stats.extra_codes += 1;
            self.result(&ResultCode::Ok);
        }
        if self.silent_at.is_some_and(|t| now >= t) {
            self.silent_at = None;
            self.silent = true;
        }
        if self.escape_at.is_some_and(|t| now >= t) {
            self.escape_at = None;
            if self.plus_held == 3 && self.mode == Mode::Data {
                self.plus_held = 0;
                self.mode = Mode::OnlineCommand;
                self.stats.escapes += 1;
                self.result(&ResultCode::Ok);
            }
        }
        if let Some(a) = &mut self.answerer {
            if a.poll_timeout().is_some_and(|t| now >= t) {
                a.handle_timeout(now);
            }
        }
        self.pump(now);
    }

    /// A data byte that crosses the line from `start` to `end` (both `now` unless the guard is
    /// timed on the line). The guard before `+++` is the silence between the previous byte's
    /// end and the first `+`'s start; the guard after runs from the third `+`'s end.
    fn data_byte(&mut self, start: Instant, end: Instant, b: u8) {
        let plus = self.s[2];
        let guard = self.guard();
        if b == plus && plus < 128 {
            let quiet_before = self
                .last_rx
                .is_none_or(|t| start.saturating_duration_since(t) >= guard);
            if (self.plus_held == 0 && quiet_before) || (1..3).contains(&self.plus_held) {
                self.plus_held += 1;
                if self.plus_held == 3 {
                    self.escape_at = Some(end + guard);
                }
                return;
            }
            if self.plus_held == 0 && self.config.guard_on_line {
                tracing::debug!("mock modem: `+` without the guard silence before it");
            }
        }
        self.flush_plus();
        self.up.queue.push_back(b);
    }

    fn flush_plus(&mut self) {
        if self.plus_held == 3 {
            self.stats.escapes_missed += 1;
        }
        let plus = self.s[2];
        for _ in 0..self.plus_held {
            self.up.queue.push_back(plus);
        }
        self.plus_held = 0;
        self.escape_at = None;
    }

    fn command_byte(&mut self, now: Instant, b: u8) {
        if self.echo {
            self.out.push_back(vec![b]);
        }
        if b == self.s[3] {
            let line = std::mem::take(&mut self.line);
            self.execute_line(now, &line);
        } else if b == self.s[5] {
            self.line.pop();
        } else if b == b'\n' || (b == b' ' && self.line.is_empty()) {
        } else if self.line.len() < 256 {
            self.line.push(b);
        } else {
            self.line.clear();
            self.result(&ResultCode::Error);
        }
    }

    fn result(&mut self, code: &ResultCode) {
        if self.quiet {
            return;
        }
        self.text_result(code);
    }

    fn text_result(&mut self, code: &ResultCode) {
        let bytes = if self.verbose {
            format!("\r\n{code}\r\n").into_bytes()
        } else {
            match code.numeric() {
                Some(n) => format!("{n}\r").into_bytes(),
                None => format!("{code}\r").into_bytes(),
            }
        };
        self.out.push_back(bytes);
    }

    fn info(&mut self, text: &str) {
        let bytes = if self.verbose {
            format!("\r\n{text}\r\n")
        } else {
            format!("{text}\r\n")
        };
        self.out.push_back(bytes.into_bytes());
    }

    fn execute_line(&mut self, now: Instant, line: &[u8]) {
        // Spaces are ignored and letters are case-insensitive, except inside quoted strings.
        let mut upper = String::new();
        let mut quoted = false;
        for c in String::from_utf8_lossy(line).chars() {
            if c == '"' {
                quoted = !quoted;
            }
            if quoted || c == '"' {
                upper.push(c);
            } else if !c.is_whitespace() {
                upper.push(c.to_ascii_uppercase());
            }
        }
        if upper.is_empty() {
            return;
        }
        // Modems look for the `AT` prefix and ignore what precedes it (e.g. a stray `+++`).
        let Some(pos) = upper.find("AT") else {
            // Not a command line: real modems ignore it.
            return;
        };
        let cmds = &upper[pos + 2..];
        let mut rest = cmds;
        self.extra_due = false;
        while !rest.is_empty() {
            match self.one_command(now, rest) {
                Ok(Some(next)) => rest = next,
                Ok(None) => return, // the command produced its own final result (D, O)
                Err(()) => {
                    self.result(&ResultCode::Error);
                    return;
                }
            }
        }
        let extra = std::mem::take(&mut self.extra_due);
        if extra && self.config.extra_codes == ExtraCodes::NoCarrierThenOk {
            self.stats.extra_codes += 1;
            self.result(&ResultCode::NoCarrier);
        }
        self.result(&ResultCode::Ok);
        if extra {
            match self.config.extra_codes {
                ExtraCodes::DoubleOk => {
                    self.stats.extra_codes += 1;
                    self.result(&ResultCode::Ok);
                }
                ExtraCodes::LateOk(d) => self.late_ok_at = Some(now + d),
                ExtraCodes::None | ExtraCodes::NoCarrierThenOk => {}
            }
        }
    }

    /// Executes the first command of `s`; returns the rest, `None` if a final result is pending.
    fn one_command<'a>(&mut self, now: Instant, s: &'a str) -> Result<Option<&'a str>, ()> {
        let mut chars = s.char_indices();
        let (_, c) = chars.next().ok_or(())?;
        let after = &s[c.len_utf8()..];
        let (num, rest) = split_number(after);
        match c {
            'Z' => {
                if self.in_call() {
                    self.end_call(now, false);
                }
                self.stored_profile();
                self.extra_due = true;
                Ok(Some(rest))
            }
            'E' => {
                self.echo = num.unwrap_or(0) != 0;
                Ok(Some(rest))
            }
            'V' => {
                self.verbose = num.unwrap_or(0) != 0;
                Ok(Some(rest))
            }
            'Q' => {
                self.quiet = num.unwrap_or(0) != 0;
                Ok(Some(rest))
            }
            'X' | 'L' | 'M' => Ok(Some(rest)),
            'I' => {
                let text = match num.unwrap_or(0) {
                    0 => self.config.ident.clone(),
                    3 => "masqdial-sim".to_string(),
                    _ => "OK".to_string(),
                };
                self.info(&text);
                Ok(Some(rest))
            }
            'S' => {
                let n = usize::try_from(num.ok_or(())?).map_err(|_| ())?;
                if n > 255 {
                    return Err(());
                }
                if let Some(r) = rest.strip_prefix('?') {
                    let v = self.s[n];
                    self.info(&format!("{v:03}"));
                    Ok(Some(r))
                } else if let Some(r) = rest.strip_prefix('=') {
                    let (v, r) = split_number(r);
                    self.s[n] = u8::try_from(v.unwrap_or(0)).map_err(|_| ())?;
                    Ok(Some(r))
                } else {
                    Err(())
                }
            }
            'H' => {
                self.stats.ath_commands += 1;
                if self.in_call() {
                    self.end_call(now, false);
                }
                self.extra_due = true;
                Ok(Some(rest))
            }
            'O' => {
                if self.mode == Mode::OnlineCommand {
                    self.mode = Mode::Data;
                    self.last_rx = Some(now);
                    let speed = self.connect_speed;
                    self.connect_result(speed, None);
                    Ok(None)
                } else {
                    Err(())
                }
            }
            'A' => Err(()),
            'D' => {
                if self.in_call() {
                    return Err(());
                }
                let number: String = after
                    .trim_start_matches(['T', 'P'])
                    .trim_end_matches(';')
                    .to_string();
                if number.is_empty() {
                    return Err(());
                }
                let outcome = self
                    .config
                    .outcomes
                    .get(&number)
                    .cloned()
                    .unwrap_or_else(|| self.config.default_outcome.clone());
                self.stats.calls += 1;
                self.mode = Mode::Dialing {
                    at: now + outcome.delay,
                };
                self.pending_outcome = Some((number, outcome));
                if self.mode == (Mode::Dialing { at: now }) {
                    self.finish_dial(now);
                }
                Ok(None)
            }
            '&' => {
                let mut it = after.chars();
                let sub = it.next().ok_or(())?;
                let (n, r) = split_number(&after[sub.len_utf8()..]);
                match sub {
                    'F' => {
                        self.factory_defaults();
                        Ok(Some(r))
                    }
                    'D' => {
                        let n = n.unwrap_or(0);
                        if n > 2 {
                            return Err(());
                        }
                        self.dtr_mode = u8::try_from(n).map_err(|_| ())?;
                        Ok(Some(r))
                    }
                    'C' | 'K' | 'W' | 'V' | 'S' | 'R' => {
                        let _ = n;
                        Ok(Some(r))
                    }
                    _ => Err(()),
                }
            }
            '+' => {
                // Extended syntax: the command runs to the next ';' (V.250 5.4.1).
                let (cmd, r) = match after.split_once(';') {
                    Some((c, r)) => (c, r),
                    None => (after, ""),
                };
                if let Some(v) = cmd.strip_prefix("CGDCONT=") {
                    self.pdp = Some(v.to_string());
                } else if cmd == "CGDCONT?" {
                    let v = self.pdp.clone().unwrap_or_default();
                    self.info(&format!("+CGDCONT: {v}"));
                } else if let Some(done) = self.cell_command(cmd) {
                    if done {
                        return Ok(None);
                    }
                } else if !(cmd.starts_with("FCLASS") || cmd.starts_with("CGATT")) {
                    return Err(());
                }
                Ok(Some(r))
            }
            _ => Err(()),
        }
    }

    /// The current scripted cellular state.
    fn cell_state(&self) -> CellState {
        let i = self.cell_step.min(self.config.cell.len().saturating_sub(1));
        self.config.cell.get(i).cloned().unwrap_or_default()
    }

    /// Cellular status commands (27.007). `None`: not one of them; `Some(true)`: the
    /// command wrote its own final result.
    fn cell_command(&mut self, cmd: &str) -> Option<bool> {
        let locked = self.config.sim_pin.is_some() && !self.sim_unlocked;
        let st = self.cell_state();
        let stat = if locked { 0 } else { st.stat };
        match cmd {
            "CGMI" => self.info("masqdial"),
            "CGMM" => self.info("mock-cellular"),
            "CGSN" => self.info("001010123456789"),
            "CPIN?" => self.info(if locked {
                "+CPIN: SIM PIN"
            } else {
                "+CPIN: READY"
            }),
            "CSQ" => {
                // Each poll's AT+CSQ moves the script on; the first one starts it.
                if self.cell_started {
                    self.cell_step = self.cell_step.saturating_add(1);
                }
                self.cell_started = true;
                let st = self.cell_state();
                self.info(&format!("+CSQ: {},99", st.rssi));
            }
            "CREG?" => self.info(&format!("+CREG: 0,{stat}")),
            "CGREG?" => self.info(&format!("+CGREG: 0,{stat}")),
            "CEREG?" => self.info(&format!("+CEREG: 0,{stat}")),
            "COPS?" => {
                if matches!(stat, 1 | 5) {
                    self.info(&format!("+COPS: 0,0,\"{}\",{}", st.operator, st.act));
                } else {
                    self.info("+COPS: 0");
                }
            }
            _ => {
                let pin = cmd.strip_prefix("CPIN=")?;
                let pin = pin.trim_matches('"');
                if self.config.sim_pin.as_deref().is_some_and(|p| p == pin) {
                    self.sim_unlocked = true;
                } else {
                    // 27.007 9.2: 16 = incorrect password.
                    self.info("+CME ERROR: 16");
                    return Some(true);
                }
            }
        }
        Some(false)
    }

    fn connect_result(&mut self, speed: u32, extras: Option<String>) {
        if self.quiet {
            return;
        }
        if self.verbose {
            let code = ResultCode::Connect {
                speed: Some(speed),
                extras,
            };
            self.out.push_back(format!("\r\n{code}\r\n").into_bytes());
        } else {
            self.out
                .push_back(format!("{}\r", numeric_connect_code(speed)).into_bytes());
        }
    }

    fn finish_dial(&mut self, now: Instant) {
        let Some((number, outcome)) = self.pending_outcome.take() else {
            self.mode = Mode::Command;
            return;
        };
        match outcome.result {
            CallResult::Connect { speed, extras } => {
                self.stats.connects += 1;
                self.connect_speed = speed;
                self.connect_result(speed, extras);
                self.answerer = Some((self.factory)(&number));
                self.mode = Mode::Data;
                self.last_rx = Some(now);
                self.plus_held = 0;
                self.up = Throttle::new();
                self.down = Throttle::new();
                self.carrier_loss_at = self.config.carrier_loss_after.map(|d| now + d);
                self.silent_at = self.config.silent_after.map(|d| now + d);
            }
            CallResult::Silent => {
                // Keep "dialling" until the DTE aborts.
                self.pending_outcome = Some((number, outcome));
                self.mode = Mode::Dialing {
                    at: now + Duration::from_secs(86_400),
                };
            }
            r => {
                self.mode = Mode::Command;
                let code = match r {
                    CallResult::Busy => ResultCode::Busy,
                    CallResult::NoDialtone => ResultCode::NoDialtone,
                    CallResult::NoAnswer => ResultCode::NoAnswer,
                    _ => ResultCode::NoCarrier,
                };
                self.result(&code);
            }
        }
    }

    fn end_call(&mut self, _now: Instant, report: bool) {
        self.answerer = None;
        self.carrier_loss_at = None;
        self.silent_at = None;
        self.escape_at = None;
        self.plus_held = 0;
        self.pending_outcome = None;
        self.up.queue.clear();
        self.down.queue.clear();
        self.stats.down_queued = 0;
        self.mode = Mode::Command;
        if report {
            self.result(&ResultCode::NoCarrier);
        }
    }

    fn corrupt(&mut self, bytes: &mut [u8]) {
        let Some(noise) = self.config.noise else {
            return;
        };
        for b in bytes {
            if self.rng.unit() < noise.rate {
                let x = (self.rng.next() as u8) | 1;
                *b ^= x;
                self.stats.corrupted += 1;
            }
        }
    }

    /// Moves data through the throttles and the answerer.
    fn pump(&mut self, now: Instant) {
        if self.answerer.is_none() {
            return;
        }
        let baud = self.config.baud;
        let mut upb = Vec::new();
        self.up.release(now, baud, &mut upb);
        if !upb.is_empty() {
            self.corrupt(&mut upb);
            self.stats.bytes_up += upb.len() as u64;
            if let Some(a) = &mut self.answerer {
                a.handle_input(now, &upb);
            }
        }
        if let Some(a) = &mut self.answerer {
            while let Some(o) = a.poll_output() {
                if self
                    .config
                    .down_buffer
                    .is_some_and(|cap| self.down.queue.len() + o.len() > cap)
                {
                    self.stats.down_dropped += 1;
                    continue;
                }
                self.down.queue.extend(o);
            }
        }
        // While escaped to online-command state the far end's data waits in the queue.
        if self.mode == Mode::Data {
            let mut downb = Vec::new();
            self.down.release(now, baud, &mut downb);
            if !downb.is_empty() {
                self.corrupt(&mut downb);
                self.stats.bytes_down += downb.len() as u64;
                self.out.push_back(downb);
            }
        }
        self.stats.down_queued = self.down.queue.len() as u64;
        self.stats.down_queue_peak = self.stats.down_queue_peak.max(self.stats.down_queued);
        if self.answerer.as_ref().is_some_and(|a| a.is_closed()) && self.down.queue.is_empty() {
            self.end_call(now, true);
        }
    }
}

/// Splits leading decimal digits off `s`.
fn split_number(s: &str) -> (Option<u32>, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    (s[..n].parse().ok(), &s[n..])
}

#[cfg(test)]
mod tests;
