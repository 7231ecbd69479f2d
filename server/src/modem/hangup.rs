//! Hanging up a modem the way real modems need it: drop DTR (where the device has the line), then
//! the escape (`+++` framed by guard time), then `ATH`, then `ATZ`. Every step runs after every
//! failure: a modem we believe is in command state ignores a bare `+++` (no `AT` prefix), and one
//! we only *believed* was there (a `NO CARRIER` that was really payload) would otherwise stay in
//! data state and fail the next dial at `ATZ`. Owns only this blocking procedure; the caller
//! supplies reads (so the session driver can feed it from its reader thread) and one deadline.
//!
//! Line discipline:
//! - **The escape done right.** Before `+++` the output is drained (`TIOCOUTQ`, `tcdrain`) and,
//!   where that queue is invisible (ptys, USB adapters), the line time of what was written is
//!   waited out (the caller passes when the line frees); then [`ModemSettings::escape_guard`]
//!   (S12 + 20 % + 100 ms) of silence, `+++` and nothing after it until the modem's `OK` or
//!   the guard again.
//! - **Every result line read.** Before each command, stale input is discarded (`TCIFLUSH` and
//!   what the reader already holds). After a command's final result the procedure keeps reading
//!   until the line has been quiet for [`SETTLE`] (at most [`SETTLE_MAX`]), so the extra result
//!   codes many modems print (`NO CARRIER` then `OK`, `OK` `OK`) are consumed here and never
//!   taken as the next command's answer.
//! - **One deadline** bounds everything; [`bound`] is the longest the procedure can take.

use std::time::{Duration, Instant};

use super::{
    note_no_status_lines, write_all_bounded, ModemSettings, ModemStatusError, SerialError,
    SerialLine,
};

/// Quiet time after a final result in which extra result codes are still awaited.
pub const SETTLE: Duration = Duration::from_millis(250);
/// Longest settle after one command (extra codes keep arriving).
pub const SETTLE_MAX: Duration = Duration::from_secs(1);
/// Longest wait for the serial driver's output queue to empty before it is discarded.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// Longest wait for the line time of bytes written before the escape: at least this, or the
/// line time of [`LINE_WAIT_BYTES`] at the DTE speed on slow lines ([`line_wait_max`]).
pub const LINE_WAIT_MAX: Duration = Duration::from_secs(2);
/// Bytes whose line time the escape waits out at most (the link queue keeps about one
/// datagram below the writer; this is two and a half of 1500 bytes).
pub const LINE_WAIT_BYTES: u64 = 4096;

/// Longest wait for the line time of what was written before the escape, with these settings.
#[must_use]
pub fn line_wait_max(settings: &ModemSettings) -> Duration {
    LINE_WAIT_MAX.max(settings.line_time(LINE_WAIT_BYTES))
}

/// Longest time [`hang_up`] takes with these settings (its own steps, each bounded): DTR drop,
/// output drain, line time ([`line_wait_max`]), twice the escape guard, three command timeouts (`+++`, `ATH`,
/// `ATZ`) and two settles. With the defaults (S12 1 s, commands 2 s): 14.1 s.
#[must_use]
pub fn bound(settings: &ModemSettings) -> Duration {
    settings.dtr_drop_time
        + DRAIN_LIMIT
        + line_wait_max(settings)
        + settings.escape_guard() * 2
        + settings.command_timeout * 3
        + SETTLE_MAX * 2
}

/// What the hang-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HangupReport {
    /// DTR was dropped (false on ptys).
    pub dtr_dropped: bool,
    /// `+++` was sent.
    pub escape_sent: bool,
    /// The modem answered `+++` with OK.
    pub escape_ok: bool,
    /// The modem answered `ATH` with OK (or NO CARRIER).
    pub ath_ok: bool,
    /// The modem answered `ATZ` with OK.
    pub atz_ok: bool,
    /// Result lines read after a final result (extra codes consumed).
    pub extra_lines: u32,
    /// Stale bytes discarded before commands (besides the kernel's `TCIFLUSH`).
    pub stale_bytes: u64,
    /// The deadline cut the procedure short.
    pub deadline_hit: bool,
}

/// Source of bytes from the modem: returns what arrived before `deadline` (`None` at the
/// deadline). Called with a deadline already past, it returns what is buffered without waiting
/// (`None` when nothing is).
pub type ReadFn<'a> = dyn FnMut(Instant) -> Result<Option<Vec<u8>>, SerialError> + 'a;

/// Line-oriented scan of what the modem said during the hang-up.
struct Seen {
    text: String,
}

/// Final results of `ATH` (verbose and numeric): OK, NO CARRIER, ERROR.
const ATH_FINAL: &[&str] = &["OK", "0", "NO CARRIER", "3", "ERROR", "4"];
/// Final results of `ATZ`.
const ATZ_FINAL: &[&str] = &["OK", "0", "ERROR", "4"];
const OK: &[&str] = &["OK", "0"];
const ATH_OK: &[&str] = &["OK", "0", "NO CARRIER", "3"];

impl Seen {
    fn push(&mut self, bytes: &[u8]) {
        self.text.push_str(&String::from_utf8_lossy(bytes));
        if self.text.len() > 4096 {
            let cut = self.text.len() - 1024;
            let cut = (cut..self.text.len())
                .find(|i| self.text.is_char_boundary(*i))
                .unwrap_or(self.text.len());
            self.text.drain(..cut);
        }
    }
    fn lines(&self) -> impl Iterator<Item = &str> {
        self.text
            .split_inclusive(['\r', '\n'])
            .filter(|l| l.ends_with(['\r', '\n']))
            .map(str::trim)
            .filter(|l| !l.is_empty())
    }
    fn has_line(&self, want: &[&str]) -> bool {
        self.lines().any(|l| want.contains(&l))
    }
    fn count(&self, want: &[&str]) -> usize {
        self.lines().filter(|l| want.contains(l)).count()
    }
    fn clear(&mut self) {
        self.text.clear();
    }
}

/// Waits until `deadline`, collecting bytes; stops early when `want` is seen as a line.
fn wait(
    read: &mut ReadFn<'_>,
    seen: &mut Seen,
    deadline: Instant,
    want: &[&str],
) -> Result<bool, SerialError> {
    loop {
        if !want.is_empty() && seen.has_line(want) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        match read(deadline)? {
            Some(b) => seen.push(&b),
            None => return Ok(!want.is_empty() && seen.has_line(want)),
        }
    }
}

/// After a final result: reads on until the line was quiet for [`SETTLE`] (at most
/// [`SETTLE_MAX`], and `deadline`). Returns how many more final-result lines came.
fn settle(
    read: &mut ReadFn<'_>,
    seen: &mut Seen,
    finals: &[&str],
    deadline: Instant,
) -> Result<u32, SerialError> {
    let before = seen.count(finals);
    let cap = (Instant::now() + SETTLE_MAX).min(deadline);
    let mut quiet_until = (Instant::now() + SETTLE).min(cap);
    loop {
        if Instant::now() >= quiet_until {
            break;
        }
        match read(quiet_until)? {
            Some(b) if !b.is_empty() => {
                seen.push(&b);
                quiet_until = (Instant::now() + SETTLE).min(cap);
            }
            Some(_) => {}
            None => break,
        }
    }
    let extra = seen.count(finals).saturating_sub(before);
    Ok(u32::try_from(extra).unwrap_or(u32::MAX))
}

/// Discards stale input before a command: the kernel's input queue and what the reader holds.
fn discard_stale(
    line: &mut dyn SerialLine,
    read: &mut ReadFn<'_>,
    report: &mut HangupReport,
) -> Result<(), SerialError> {
    if let Err(e) = line.flush_input() {
        tracing::debug!(device = %line.name(), error = %e, "flushing input failed");
    }
    // Bounded: a line that streams (the far end still sending) must not hold us here.
    for _ in 0..64 {
        match read(Instant::now())? {
            Some(b) if !b.is_empty() => report.stale_bytes += b.len() as u64,
            _ => break,
        }
    }
    Ok(())
}

/// Sends one command and reads its final result plus any extra result codes. True when the
/// final result was one of `ok`.
#[allow(clippy::too_many_arguments)]
fn command(
    line: &mut dyn SerialLine,
    settings: &ModemSettings,
    read: &mut ReadFn<'_>,
    report: &mut HangupReport,
    bytes: &[u8],
    finals: &[&str],
    ok: &[&str],
    deadline: Instant,
) -> Result<bool, SerialError> {
    discard_stale(line, read, report)?;
    let mut seen = Seen {
        text: String::new(),
    };
    let write_limit = settings
        .command_timeout
        .min(deadline.saturating_duration_since(Instant::now()))
        .max(Duration::from_millis(50));
    write_all_bounded(line, bytes, write_limit)?;
    let answer_by = (Instant::now() + settings.command_timeout).min(deadline);
    if !wait(read, &mut seen, answer_by, finals)? {
        return Ok(false);
    }
    let answered_ok = seen
        .lines()
        .find(|l| finals.contains(l))
        .is_some_and(|l| ok.contains(&l));
    report.extra_lines += settle(read, &mut seen, finals, deadline)?;
    Ok(answered_ok)
}

/// Hangs up: DTR drop, drain, escape, `ATH`, `ATZ`, always all of them, all before `deadline`.
/// `command_state` is true when the modem is believed to have left data state already (it said
/// NO CARRIER); it only shortens the wait for an answer to `+++` (none is expected), since the
/// belief may be wrong. `line_free_at` is when the bytes written before the hang-up finish
/// crossing the line at the DTE speed (the caller's estimate; `None`: nothing written lately).
/// Takes at most [`bound`] and never past `deadline`.
pub fn hang_up(
    line: &mut dyn SerialLine,
    settings: &ModemSettings,
    command_state: bool,
    line_free_at: Option<Instant>,
    deadline: Instant,
    read: &mut ReadFn<'_>,
) -> Result<HangupReport, SerialError> {
    let mut report = HangupReport::default();
    let mut seen = Seen {
        text: String::new(),
    };
    let by = |d: Duration| (Instant::now() + d).min(deadline);
    // 1. DTR drop: with AT&D2 the modem hangs up and returns to command state.
    match line.set_dtr(false) {
        Ok(()) => {
            report.dtr_dropped = true;
            wait(read, &mut seen, by(settings.dtr_drop_time), &[])?;
            if let Err(e) = line.set_dtr(true) {
                tracing::debug!(error = %e, "raising DTR again failed");
            }
        }
        Err(ModemStatusError::Unsupported) => note_no_status_lines(&line.name()),
        Err(e) => tracing::warn!(device = %line.name(), error = %e, "cannot drop DTR"),
    }
    let known_command_state =
        command_state || report.dtr_dropped || seen.has_line(&["NO CARRIER", "3"]);
    // 2. Drain: nothing we wrote may still be on its way when the guard silence starts.
    if let Err(e) =
        line.drain_output(DRAIN_LIMIT.min(deadline.saturating_duration_since(Instant::now())))
    {
        tracing::debug!(device = %line.name(), error = %e, "draining output failed");
    }
    if let Some(free) = line_free_at {
        let until = free.min(by(line_wait_max(settings)));
        wait(read, &mut seen, until, &[])?;
    }
    // 3. Escape: guard of silence, `+++` and nothing after it; a modem in data state says OK
    //    once it has timed its own guard after the last `+`.
    let guard = settings.escape_guard();
    wait(read, &mut seen, by(guard), &[])?;
    if Instant::now() >= deadline {
        report.deadline_hit = true;
        return Ok(report);
    }
    seen.clear();
    write_all_bounded(line, b"+++", settings.command_timeout)?;
    report.escape_sent = true;
    let sent = Instant::now();
    let answer = if known_command_state {
        guard
    } else {
        guard + settings.command_timeout
    };
    report.escape_ok = wait(read, &mut seen, by(answer), &["OK", "0", "NO CARRIER", "3"])?;
    if !report.escape_ok {
        // Whatever the modem's state, it must not see a byte before the guard after `+++`.
        wait(read, &mut seen, (sent + guard).min(deadline), &[])?;
    }
    // 4. ATH. The CR before it ends any half line the modem may hold.
    if Instant::now() >= deadline {
        report.deadline_hit = true;
        return Ok(report);
    }
    report.ath_ok = command(
        line,
        settings,
        read,
        &mut report,
        b"\rATH\r",
        ATH_FINAL,
        ATH_OK,
        deadline,
    )?;
    // 5. ATZ: the stored profile again, so the next dial starts from a known state.
    if Instant::now() >= deadline {
        report.deadline_hit = true;
        return Ok(report);
    }
    report.atz_ok = command(
        line,
        settings,
        read,
        &mut report,
        b"ATZ\r",
        ATZ_FINAL,
        OK,
        deadline,
    )?;
    Ok(report)
}

/// A read function over a line that has no reader thread (tests, probes).
pub fn direct_reader(
    line: &mut dyn SerialLine,
) -> impl FnMut(Instant) -> Result<Option<Vec<u8>>, SerialError> + '_ {
    move |deadline: Instant| {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Stale input is flushed by the kernel (`TCIFLUSH`); nothing is held here.
            return Ok(None);
        }
        let _ = line.set_read_timeout(left.min(Duration::from_millis(100)));
        let mut buf = [0u8; 1024];
        match line.read(&mut buf) {
            Ok(n) => Ok(Some(buf[..n].to_vec())),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(Some(Vec::new())),
            Err(e) => Err(SerialError::from_io(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_margin_line_time_and_bounds() {
        let s = ModemSettings::new("/dev/null");
        assert_eq!(s.escape_guard(), Duration::from_millis(1300));
        let s19200 = ModemSettings {
            baud: 19_200,
            ..ModemSettings::new("/dev/null")
        };
        assert_eq!(s19200.line_time(1920), Duration::from_secs(1));
        assert_eq!(bound(&s), Duration::from_millis(14_100));
        assert_eq!(
            crate::modem::session::hangup_bound(&s),
            Duration::from_millis(17_600)
        );
    }

    #[test]
    fn seen_counts_lines_not_fragments() {
        let mut seen = Seen {
            text: String::new(),
        };
        seen.push(b"ATH\r\r\nNO CARRIER\r\n\r\nO");
        assert!(seen.has_line(ATH_FINAL));
        assert_eq!(seen.count(ATH_FINAL), 1);
        seen.push(b"K\r\n");
        assert_eq!(seen.count(ATH_FINAL), 2);
        seen.clear();
        seen.push(b"0\r3\r");
        assert_eq!(seen.count(ATH_OK), 2);
    }
}
