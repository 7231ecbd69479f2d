//! The mock modem's value types: the far end of a call ([`Answerer`]), scripted call outcomes,
//! line noise, the behaviour matrix ([`MockModemConfig`]), cellular state and counters. Must not
//! run the command interpreter or read the clock.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::time::{Duration, Instant};

use masqdial_at::result::ResultCode;

/// What answers a call after CONNECT: the far end of the line.
pub trait Answerer: Send {
    /// Bytes that arrived from the DTE (the gateway) over the line.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]);
    /// Bytes the far end sends towards the DTE, if any.
    fn poll_output(&mut self) -> Option<Vec<u8>>;
    /// When [`Answerer::handle_timeout`] must be called next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Acts on expired timers.
    fn handle_timeout(&mut self, now: Instant);
    /// True once the far end hung up (the modem then reports NO CARRIER).
    fn is_closed(&self) -> bool;
}

/// Creates the far end for each call; gets the dialled number.
pub type AnswererFactory = Box<dyn FnMut(&str) -> Box<dyn Answerer> + Send>;

/// A far end that accepts everything and never says anything.
#[derive(Debug, Default)]
pub struct NullAnswerer;

impl Answerer for NullAnswerer {
    fn handle_input(&mut self, _now: Instant, _bytes: &[u8]) {}
    fn poll_output(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn is_closed(&self) -> bool {
        false
    }
}

/// A far end that sends back every byte it receives (loopback plug); closes on the text `BYE\r`.
#[derive(Debug, Default)]
pub struct EchoAnswerer {
    out: VecDeque<Vec<u8>>,
    tail: Vec<u8>,
    closed: bool,
}

impl Answerer for EchoAnswerer {
    fn handle_input(&mut self, _now: Instant, bytes: &[u8]) {
        self.out.push_back(bytes.to_vec());
        self.tail.extend_from_slice(bytes);
        if self.tail.windows(4).any(|w| w == b"BYE\r") {
            self.closed = true;
        }
        let keep = self.tail.len().saturating_sub(3);
        self.tail.drain(..keep);
    }
    fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Result of dialling a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// `CONNECT <speed>[/extras]`, then the line belongs to the answerer.
    Connect {
        /// Reported speed.
        speed: u32,
        /// Extras (`V42BIS`).
        extras: Option<String>,
    },
    /// `BUSY`.
    Busy,
    /// `NO CARRIER` (no handshake).
    NoCarrier,
    /// `NO DIALTONE`.
    NoDialtone,
    /// `NO ANSWER`.
    NoAnswer,
    /// Nothing at all: the modem keeps "dialling" forever (the DTE must time out).
    Silent,
}

/// A scripted outcome: result after a delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What the modem reports.
    pub result: CallResult,
    /// After how long.
    pub delay: Duration,
}

impl Outcome {
    /// `CONNECT speed` with no delay.
    #[must_use]
    pub fn connect(speed: u32) -> Self {
        Outcome {
            result: CallResult::Connect {
                speed,
                extras: None,
            },
            delay: Duration::ZERO,
        }
    }

    /// `result` after no delay.
    #[must_use]
    pub fn now(result: CallResult) -> Self {
        Outcome {
            result,
            delay: Duration::ZERO,
        }
    }
}

/// Error parsing an outcome such as `CONNECT 115200@200ms`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutcomeParseError {
    /// The result text is not one we know.
    #[error("unknown outcome `{0}` (want CONNECT [speed], BUSY, NO CARRIER, NO DIALTONE, NO ANSWER, SILENT)")]
    UnknownResult(String),
    /// The delay after `@` is not `<n>ms` or `<n>s`.
    #[error("bad delay `{0}` (want e.g. 500ms or 2s)")]
    BadDelay(String),
}

impl FromStr for Outcome {
    type Err = OutcomeParseError;

    /// Parses `RESULT[@DELAY]`, e.g. `CONNECT 115200`, `BUSY@2s`, `NO ANSWER@500ms`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (res, delay) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        let delay = match delay {
            None => Duration::ZERO,
            Some(d) => {
                parse_delay(d.trim()).ok_or_else(|| OutcomeParseError::BadDelay(d.into()))?
            }
        };
        let upper = res.trim().to_ascii_uppercase();
        let result = match ResultCode::parse(&upper) {
            ResultCode::Connect { speed, extras } => CallResult::Connect {
                speed: speed.unwrap_or(115_200),
                extras,
            },
            ResultCode::Busy => CallResult::Busy,
            ResultCode::NoCarrier => CallResult::NoCarrier,
            ResultCode::NoDialtone => CallResult::NoDialtone,
            ResultCode::NoAnswer => CallResult::NoAnswer,
            _ if upper == "SILENT" => CallResult::Silent,
            _ => return Err(OutcomeParseError::UnknownResult(res.into())),
        };
        Ok(Outcome { result, delay })
    }
}

fn parse_delay(d: &str) -> Option<Duration> {
    if let Some(ms) = d.strip_suffix("ms") {
        return ms.parse::<u64>().ok().map(Duration::from_millis);
    }
    let s = d.strip_suffix('s')?;
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e6)
        .map(Duration::from_secs_f64)
}

/// Line noise: each data byte (both directions) is corrupted with probability `rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Probability per byte, 0.0..=1.0.
    pub rate: f64,
    /// PRNG seed (the corruption pattern is reproducible).
    pub seed: u64,
}

/// Result codes a modem prints after the final result of a line that holds `H` or `Z`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExtraCodes {
    /// One final result (`OK`).
    #[default]
    None,
    /// `NO CARRIER` then `OK`.
    NoCarrierThenOk,
    /// `OK` twice.
    DoubleOk,
    /// `OK`, then a second `OK` this long after.
    LateOk(Duration),
}

/// Mock modem settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MockModemConfig {
    /// Outcome per dialled number (exact match after stripping `T`/`P` and spaces).
    pub outcomes: HashMap<String, Outcome>,
    /// Outcome for numbers not in `outcomes`.
    pub default_outcome: Outcome,
    /// Line rate in bit/s for data-mode throttling (10 bits per byte); 0 = unthrottled.
    pub baud: u32,
    /// `ATI` text.
    pub ident: String,
    /// Guard time in fiftieths of a second (register S12; Hayes default 50 = 1 s).
    pub s12: u8,
    /// Drop carrier this long after each CONNECT.
    pub carrier_loss_after: Option<Duration>,
    /// Line noise in data mode.
    pub noise: Option<Noise>,
    /// Start silent (answers nothing).
    pub silent: bool,
    /// Cellular states answered to `+CSQ`, `+CREG?`/`+CGREG?`/`+CEREG?` and `+COPS?`; each
    /// `AT+CSQ` after the first (one per status poll) moves to the next, the last one stays. Empty: one
    /// registered, good-signal state.
    pub cell: Vec<CellState>,
    /// The SIM asks for this PIN (`+CPIN: SIM PIN`) until `AT+CPIN="<pin>"` is sent.
    pub sim_pin: Option<String>,
    /// Bytes the far end's side of the line may hold waiting for the wire (the access server's
    /// output buffer towards us); a frame that does not fit is dropped whole (drop-tail).
    /// `None`: unbounded.
    pub down_buffer: Option<usize>,
    /// Extra result codes after `ATH` and `ATZ`.
    pub extra_codes: ExtraCodes,
    /// Time the escape guard on the DTE→modem line at `baud` (see the module docs); `false`
    /// (or `baud` 0): from when bytes arrive.
    pub guard_on_line: bool,
    /// Stored profile: echo on (`E1`) after power-on and `ATZ`.
    pub echo: bool,
    /// Stored profile: verbose (`V1`) or numeric (`V0`) results after power-on and `ATZ`.
    pub verbose: bool,
    /// Stored profile: `&D` setting (0 ignore DTR, 1 escape on DTR drop, 2 hang up).
    pub dtr_mode: u8,
    /// Go silent this long after each CONNECT: no byte in or out until [`MockModem::set_silent`](super::MockModem::set_silent)
    /// (false).
    pub silent_after: Option<Duration>,
    /// Start in data state with a call up (a modem left online by a previous run).
    pub online_at_start: bool,
}

/// One scripted cellular state of the mock modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellState {
    /// `+CSQ` `<rssi>` (0..=31, 99 unknown).
    pub rssi: u8,
    /// `<stat>` of all three registrations (1 home, 5 roaming, 2 searching...).
    pub stat: u8,
    /// Operator name shown by `+COPS?` while registered.
    pub operator: String,
    /// `<AcT>` (7 = LTE).
    pub act: u8,
}

impl Default for CellState {
    fn default() -> Self {
        Self {
            rssi: 20,
            stat: 1,
            operator: "masqdial-sim".into(),
            act: 7,
        }
    }
}

impl FromStr for CellState {
    type Err = String;
    /// `RSSI,STAT[,OPERATOR[,ACT]]`, e.g. `17,5,Example Mobile,7`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.splitn(4, ',');
        let n = |v: Option<&str>, what: &str| {
            v.map(str::trim)
                .and_then(|v| v.parse::<u8>().ok())
                .ok_or_else(|| format!("`{s}`: bad {what} (want RSSI,STAT[,OPERATOR[,ACT]])"))
        };
        let rssi = n(it.next(), "rssi")?;
        let stat = n(it.next(), "stat")?;
        let operator = it
            .next()
            .map_or_else(|| "masqdial-sim".to_string(), |o| o.trim().to_string());
        let act = match it.next() {
            Some(a) => n(Some(a), "act")?,
            None => 7,
        };
        Ok(Self {
            rssi,
            stat,
            operator,
            act,
        })
    }
}

impl Default for MockModemConfig {
    fn default() -> Self {
        MockModemConfig {
            outcomes: HashMap::new(),
            default_outcome: Outcome::connect(115_200),
            baud: 0,
            ident: "masqdial mock modem 1.0".into(),
            s12: 50,
            carrier_loss_after: None,
            noise: None,
            silent: false,
            cell: Vec::new(),
            sim_pin: None,
            down_buffer: None,
            extra_codes: ExtraCodes::None,
            guard_on_line: false,
            echo: true,
            verbose: true,
            dtr_mode: 2,
            silent_after: None,
            online_at_start: false,
        }
    }
}

/// Counters of the mock modem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockModemStats {
    /// Calls placed (`ATD`).
    pub calls: u64,
    /// Calls that reached CONNECT.
    pub connects: u64,
    /// Data bytes DTE → far end.
    pub bytes_up: u64,
    /// Data bytes far end → DTE.
    pub bytes_down: u64,
    /// Bytes corrupted by the noise injector.
    pub corrupted: u64,
    /// `+++` escapes recognised.
    pub escapes: u64,
    /// `ATH` (hang-up) commands received, in or out of a call.
    pub ath_commands: u64,
    /// Bytes from the far end waiting for the wire now (the downstream queue).
    pub down_queued: u64,
    /// Most bytes the downstream queue ever held.
    pub down_queue_peak: u64,
    /// Far-end frames dropped because the downstream buffer was full.
    pub down_dropped: u64,
    /// `+++` seen that did not escape (guard silence before or after too short).
    pub escapes_missed: u64,
    /// Extra result codes printed (after `ATH`/`ATZ`).
    pub extra_codes: u64,
    /// Bytes ignored while silent.
    pub ignored_silent: u64,
}
