//! A minimal, independent Hayes modem front (sans-IO): the command interpreter of the
//! `hayes-exec` test program, which puts a program we did not write (Debian's `slirp` in PPP
//! mode) behind a pseudo-terminal that `mserver` dials like a modem.
//!
//! Deliberately written apart from `masqdial-sim`'s mock modem: it shares no code with the
//! modem driver it tests. It knows only what a plain V.250 modem does:
//!
//! - command mode: lines `AT…` ended by CR; `E0`/`E1` echo, `V0`/`V1` verbose or numeric
//!   results, `Z`, `&F`, `S<n>=<v>` and any other command are answered `OK`; `D…` dials
//!   (the driver starts the far end and then reports [`HayesFront::connected`], which
//!   says `CONNECT <rate>`); `H` hangs up (`OK`); `O` returns online;
//! - online: every byte goes to the far end; the escape is `+++` with at least the S12 guard
//!   time of silence before and after (answered `OK`, back to command mode, call kept);
//! - the far end ending the call says `NO CARRIER`.
//!
//! Fed bytes and `now`, returns [`Action`]s; the program owns the ptys and the child.

use std::time::{Duration, Instant};

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the line (towards the DTE, i.e. `mserver`).
    ToLine(Vec<u8>),
    /// Write these bytes to the far end (the child program).
    ToFarEnd(Vec<u8>),
    /// Start the far end for this dial string, then call [`HayesFront::connected`] (or
    /// [`HayesFront::far_end_gone`] when it cannot start).
    Dial(String),
    /// Stop the far end (hang-up).
    HangUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    /// Dial in progress: waiting for the driver's `connected`.
    Dialling,
    Online,
}

/// Longest command line kept (V.250 requires at least 40 characters).
const MAX_LINE: usize = 256;

/// The modem's state machine.
#[derive(Debug)]
pub struct HayesFront {
    mode: Mode,
    echo: bool,
    verbose: bool,
    /// Escape guard time (S12, fiftieths of a second).
    s12: u8,
    line: Vec<u8>,
    /// A call is up (online or escaped to command mode).
    in_call: bool,
    rate: u32,
    /// Time of the last byte received from the line while online (or of going online).
    last_rx: Option<Instant>,
    /// `+` characters of an escape seen so far, and when the last one came.
    plus: u8,
    plus_at: Option<Instant>,
}

impl HayesFront {
    /// A modem in command mode, echo and verbose results on, S12 = 50 (1 s), reporting
    /// `CONNECT <rate>`.
    pub fn new(rate: u32) -> HayesFront {
        HayesFront {
            mode: Mode::Command,
            echo: true,
            verbose: true,
            s12: 50,
            line: Vec::new(),
            in_call: false,
            rate,
            last_rx: None,
            plus: 0,
            plus_at: None,
        }
    }

    /// The escape guard time.
    pub fn guard(&self) -> Duration {
        Duration::from_millis(u64::from(self.s12) * 20)
    }

    /// True while data passes to the far end.
    pub fn online(&self) -> bool {
        self.mode == Mode::Online
    }

    /// True while a call is up (online or in command mode after an escape).
    pub fn in_call(&self) -> bool {
        self.in_call
    }

    fn result(&self, verbose: &str, code: u8) -> Action {
        if self.verbose {
            Action::ToLine(format!("\r\n{verbose}\r\n").into_bytes())
        } else {
            Action::ToLine(format!("{code}\r").into_bytes())
        }
    }

    /// Bytes from the line (the DTE) at `now`.
    pub fn from_line(&mut self, now: Instant, data: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        match self.mode {
            Mode::Online => self.online_bytes(now, data, &mut out),
            Mode::Dialling => {
                // Any character aborts a dial (V.250 6.3.1); we keep it simple and ignore it.
            }
            Mode::Command => {
                for (i, &b) in data.iter().enumerate() {
                    if self.mode != Mode::Command {
                        // A command switched modes (ATD, ATO): later bytes are for that mode.
                        if self.mode == Mode::Online {
                            self.online_bytes(now, &data[i..], &mut out);
                        }
                        break;
                    }
                    self.command_byte(b, &mut out);
                }
            }
        }
        out
    }

    fn online_bytes(&mut self, now: Instant, data: &[u8], out: &mut Vec<Action>) {
        let guard = self.guard();
        for &b in data {
            let silent_before = self
                .last_rx
                .is_none_or(|t| now.saturating_duration_since(t) >= guard);
            if b == b'+'
                && ((self.plus == 0 && silent_before)
                    || (self.plus > 0
                        && self
                            .plus_at
                            .is_some_and(|t| now.saturating_duration_since(t) < guard)))
            {
                self.plus += 1;
                self.plus_at = Some(now);
            } else {
                self.plus = 0;
                self.plus_at = None;
            }
            if self.plus > 3 {
                self.plus = 0;
                self.plus_at = None;
            }
            self.last_rx = Some(now);
        }
        if !data.is_empty() {
            out.push(Action::ToFarEnd(data.to_vec()));
        }
    }

    /// Time passes: completes an escape after the trailing guard time.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.mode == Mode::Online && self.plus == 3 {
            if let Some(t) = self.plus_at {
                if now.saturating_duration_since(t) >= self.guard() {
                    self.plus = 0;
                    self.plus_at = None;
                    self.mode = Mode::Command;
                    self.line.clear();
                    out.push(self.result("OK", 0));
                }
            }
        }
        out
    }

    /// The far end is running: the call is up.
    pub fn connected(&mut self, now: Instant) -> Vec<Action> {
        if self.mode != Mode::Dialling {
            return Vec::new();
        }
        self.mode = Mode::Online;
        self.in_call = true;
        self.last_rx = Some(now);
        let r = if self.verbose {
            Action::ToLine(format!("\r\nCONNECT {}\r\n", self.rate).into_bytes())
        } else {
            Action::ToLine(b"1\r".to_vec())
        };
        vec![r]
    }

    /// The far end ended (or could not start): `NO CARRIER`.
    pub fn far_end_gone(&mut self) -> Vec<Action> {
        if !self.in_call && self.mode != Mode::Dialling {
            return Vec::new();
        }
        self.in_call = false;
        self.mode = Mode::Command;
        self.line.clear();
        self.plus = 0;
        vec![self.result("NO CARRIER", 3)]
    }

    fn command_byte(&mut self, b: u8, out: &mut Vec<Action>) {
        if self.echo {
            out.push(Action::ToLine(vec![b]));
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.line);
                let text = String::from_utf8_lossy(&line).trim().to_string();
                if text.len() >= 2 && text[..2].eq_ignore_ascii_case("AT") {
                    self.execute(&text[2..], out);
                }
            }
            b'\n' => {}
            8 | 127 => {
                self.line.pop();
            }
            _ if self.line.len() < MAX_LINE => self.line.push(b),
            _ => {}
        }
    }

    /// Executes the commands after `AT`.
    fn execute(&mut self, cmds: &str, out: &mut Vec<Action>) {
        let c: Vec<char> = cmds.chars().collect();
        let mut i = 0;
        let num = |i: &mut usize| -> u32 {
            let mut v = 0u32;
            while *i < c.len() && c[*i].is_ascii_digit() {
                v = v
                    .saturating_mul(10)
                    .saturating_add(c[*i] as u32 - '0' as u32);
                *i += 1;
            }
            v
        };
        while i < c.len() {
            let ch = c[i].to_ascii_uppercase();
            i += 1;
            match ch {
                ' ' => {}
                'D' => {
                    let number: String = c[i..].iter().collect();
                    if self.in_call {
                        out.push(self.result("ERROR", 4));
                        return;
                    }
                    self.mode = Mode::Dialling;
                    out.push(Action::Dial(number.trim().to_string()));
                    return;
                }
                'H' => {
                    let _ = num(&mut i);
                    if self.in_call {
                        self.in_call = false;
                        out.push(Action::HangUp);
                    }
                }
                'O' => {
                    let _ = num(&mut i);
                    if self.in_call {
                        self.mode = Mode::Online;
                        out.push(if self.verbose {
                            Action::ToLine(format!("\r\nCONNECT {}\r\n", self.rate).into_bytes())
                        } else {
                            Action::ToLine(b"1\r".to_vec())
                        });
                    } else {
                        out.push(self.result("NO CARRIER", 3));
                    }
                    return;
                }
                'E' => self.echo = num(&mut i) != 0,
                'V' => self.verbose = num(&mut i) != 0,
                'Z' => {
                    let _ = num(&mut i);
                    self.reset(out);
                }
                '&' => {
                    let sub = c.get(i).map(|x| x.to_ascii_uppercase());
                    i += 1;
                    let _ = num(&mut i);
                    if sub == Some('F') {
                        self.reset(out);
                    }
                }
                'S' => {
                    let reg = num(&mut i);
                    if c.get(i) == Some(&'=') {
                        i += 1;
                        let v = num(&mut i);
                        if reg == 12 {
                            self.s12 = u8::try_from(v).unwrap_or(u8::MAX);
                        }
                    } else if c.get(i) == Some(&'?') {
                        i += 1;
                        let v = if reg == 12 { u32::from(self.s12) } else { 0 };
                        out.push(Action::ToLine(format!("\r\n{v:03}\r\n").into_bytes()));
                    }
                }
                '+' => {
                    // Extended commands (AT+…) are accepted and ignored up to the next `;`.
                    while i < c.len() && c[i] != ';' {
                        i += 1;
                    }
                    i += 1;
                }
                _ => {
                    // Any other basic command with its number: accepted.
                    let _ = num(&mut i);
                }
            }
        }
        out.push(self.result("OK", 0));
    }

    fn reset(&mut self, out: &mut Vec<Action>) {
        if self.in_call {
            self.in_call = false;
            out.push(Action::HangUp);
        }
        self.echo = true;
        self.verbose = true;
        self.s12 = 50;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_text(actions: &[Action]) -> String {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::ToLine(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn echo_and_ok_then_e0_v0() {
        let mut m = HayesFront::new(115_200);
        let t = Instant::now();
        let a = m.from_line(t, b"ATZ\r");
        assert_eq!(line_text(&a), "ATZ\r\r\nOK\r\n");
        let a = m.from_line(t, b"ATE0V0\r");
        // Echo goes off while the line is executed: the line itself was echoed.
        assert_eq!(line_text(&a), "ATE0V0\r0\r");
        let a = m.from_line(t, b"AT&F\r");
        assert_eq!(line_text(&a), "\r\nOK\r\n");
    }

    #[test]
    fn dial_connect_data_escape_hangup() {
        let mut m = HayesFront::new(115_200);
        let t = Instant::now();
        m.from_line(t, b"ATE0\r");
        let a = m.from_line(t, b"ATDT5550100\r");
        assert_eq!(a, vec![Action::Dial("T5550100".into())]);
        let a = m.connected(t);
        assert_eq!(line_text(&a), "\r\nCONNECT 115200\r\n");
        assert!(m.online());
        let a = m.from_line(t, b"~\x7e+++data");
        assert_eq!(a, vec![Action::ToFarEnd(b"~\x7e+++data".to_vec())]);
        assert!(m.tick(t + Duration::from_secs(5)).is_empty(), "no guard");
        // Guard, +++, guard: OK, command mode, call kept.
        let t2 = t + Duration::from_secs(10);
        m.from_line(t2, b"+++");
        assert!(m.tick(t2 + Duration::from_millis(500)).is_empty());
        let a = m.tick(t2 + Duration::from_millis(1000));
        assert_eq!(line_text(&a), "\r\nOK\r\n");
        assert!(!m.online() && m.in_call());
        let a = m.from_line(t2, b"ATH\r");
        assert_eq!(a[0], Action::HangUp);
        assert_eq!(line_text(&a), "\r\nOK\r\n");
        assert!(!m.in_call());
        assert!(
            m.far_end_gone().is_empty(),
            "no NO CARRIER after our own ATH"
        );
    }

    #[test]
    fn plus_with_data_after_is_not_an_escape() {
        let mut m = HayesFront::new(9600);
        let t = Instant::now();
        m.from_line(t, b"ATD1\r");
        m.connected(t);
        let t2 = t + Duration::from_secs(2);
        m.from_line(t2, b"+++");
        m.from_line(t2 + Duration::from_millis(100), b"x");
        assert!(m.tick(t2 + Duration::from_secs(3)).is_empty());
        assert!(m.online());
    }

    #[test]
    fn far_end_exit_says_no_carrier() {
        let mut m = HayesFront::new(9600);
        let t = Instant::now();
        m.from_line(t, b"ATD1\r");
        m.connected(t);
        assert_eq!(line_text(&m.far_end_gone()), "\r\nNO CARRIER\r\n");
        assert!(!m.online());
        let a = m.from_line(t, b"AT\r");
        assert_eq!(line_text(&a), "AT\r\r\nOK\r\n");
    }
}
