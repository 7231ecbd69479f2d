//! The chat plan: what the caller asks the chat to do (init strings, numbers, redial policy,
//! cellular steps, login script). Owns these value types; must not run anything.

use std::time::Duration;

/// One expect/send pair of a login script (chat(8) style) run after CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStep {
    /// Text to wait for (substring of what the far end sends, e.g. `ogin:`); empty = do not wait.
    pub expect: String,
    /// Text to send after it (a CR is appended).
    pub send: String,
    /// True for passwords: the transcript shows `********` instead.
    pub secret: bool,
    /// How long to wait for `expect`.
    pub timeout: Duration,
}

/// Redial policy of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedialPolicy {
    /// Rounds through the number list (1 = each number once; 0 = forever, until the caller stops).
    pub attempts: u32,
    /// Delay before dialling the next number of a round (after BUSY / NO ANSWER / NO CARRIER).
    pub next_number_delay: Duration,
    /// Delay before starting the next round.
    pub round_delay: Duration,
}

impl Default for RedialPolicy {
    fn default() -> Self {
        RedialPolicy {
            attempts: 1,
            next_number_delay: Duration::from_secs(3),
            round_delay: Duration::from_secs(30),
        }
    }
}

/// Cellular steps of a dial plan (3GPP TS 27.007): SIM check, registration wait, attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellularDial {
    /// SIM PIN, entered once when `+CPIN?` says `SIM PIN`. Never sent for a PUK, never sent
    /// again after the SIM refused it (a second wrong PIN would use up another try).
    pub sim_pin: Option<String>,
    /// Longest wait for registration (home or roaming) before dialling; zero = no wait.
    pub registration_wait: Duration,
    /// Time between two registration polls (`+CREG?`, `+CGREG?`, `+CEREG?`, `+CSQ`, `+COPS?`).
    pub poll_interval: Duration,
}

impl Default for CellularDial {
    fn default() -> Self {
        CellularDial {
            sim_pin: None,
            registration_wait: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// Everything the chat needs: the modem's init strings and the connection's dial plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatConfig {
    /// Per modem: init commands, each expecting `OK` (e.g. `ATZ`, `AT&F E0 V1`).
    pub init: Vec<String>,
    /// Per connection, cellular: the APN; sends `AT+CGDCONT=1,"IP","<apn>"` after init.
    pub apn: Option<String>,
    /// Cellular checks before dialling (SIM, registration wait, attach); `None` for a plain
    /// dial-up modem.
    pub cellular: Option<CellularDial>,
    /// Dial command prefix: `ATDT`, `ATDP` or `ATD`.
    pub dial_prefix: String,
    /// Numbers to try in order (e.g. `5551234`, or `*99#` for cellular).
    pub numbers: Vec<String>,
    /// Optional expect/send login script after CONNECT.
    pub login: Vec<LoginStep>,
    /// Timeout for each init command.
    pub command_timeout: Duration,
    /// Timeout from sending the dial command to CONNECT.
    pub dial_timeout: Duration,
    /// After a command's final result, how long further result codes (a second `OK` after
    /// `ATZ`, `NO CARRIER` then `OK` after `ATH`) are read and set aside before the next
    /// command goes out. Zero: the next command goes out at once.
    pub settle: Duration,
    /// Redial policy.
    pub redial: RedialPolicy,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            init: vec!["ATZ".into(), "AT&F E0 V1".into()],
            apn: None,
            cellular: None,
            dial_prefix: "ATDT".into(),
            numbers: Vec::new(),
            login: Vec::new(),
            command_timeout: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(60),
            settle: Duration::from_millis(150),
            redial: RedialPolicy::default(),
        }
    }
}

impl ChatConfig {
    /// A plain dial-up plan: default init, `ATDT`, these numbers.
    #[must_use]
    pub fn dialup(numbers: &[&str]) -> Self {
        ChatConfig {
            numbers: numbers.iter().map(|s| (*s).to_string()).collect(),
            ..ChatConfig::default()
        }
    }

    /// A cellular plan: SIM check, `AT+CGDCONT=1,"IP","<apn>"`, wait for registration
    /// (60 s at most), then `ATD*99#`.
    #[must_use]
    pub fn cellular(apn: &str) -> Self {
        ChatConfig {
            apn: Some(apn.to_string()),
            cellular: Some(CellularDial::default()),
            dial_prefix: "ATD".into(),
            numbers: vec!["*99#".into()],
            ..ChatConfig::default()
        }
    }
}
