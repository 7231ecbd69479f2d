//! Hanging up a modem the way real modems need it: drop DTR (where the device has the line), then
//! `+++` framed by guard time, then `ATH`, then `ATZ`. Every step runs after every failure: a
//! modem we believe is in command state ignores a bare `+++` (no `AT` prefix), and one we only
//! *believed* was there (a `NO CARRIER` that was really payload) would otherwise stay in data
//! state and fail the next dial at `ATZ`. Owns only this blocking procedure; the caller supplies
//! reads (so the session driver can feed it from its reader thread) and bounds it by settings.

use std::time::{Duration, Instant};

use super::{
    note_no_status_lines, write_all_bounded, ModemSettings, ModemStatusError, SerialError,
    SerialLine,
};

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
}

/// Source of bytes from the modem: returns what arrived before `deadline` (`None` at the deadline).
pub type ReadFn<'a> = dyn FnMut(Instant) -> Result<Option<Vec<u8>>, SerialError> + 'a;

/// Line-oriented scan of what the modem said during the hang-up.
struct Seen {
    text: String,
}

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
    fn has_line(&self, want: &[&str]) -> bool {
        self.text
            .split_inclusive(['\r', '\n'])
            .any(|l| l.ends_with(['\r', '\n']) && want.contains(&l.trim()))
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

/// Hangs up: DTR drop, `+++`, `ATH`, `ATZ`, always all of them. `command_state` is true when
/// the modem is believed to have left data state already (it said NO CARRIER); it only shortens
/// the wait for an answer to `+++` (none is expected), since the belief may be wrong. Bounded
/// by `dtr_drop_time + 2 × guard_time + 3 × command_timeout`.
pub fn hang_up(
    line: &mut dyn SerialLine,
    settings: &ModemSettings,
    command_state: bool,
    read: &mut ReadFn<'_>,
) -> Result<HangupReport, SerialError> {
    let mut report = HangupReport::default();
    let mut seen = Seen {
        text: String::new(),
    };
    // 1. DTR drop: with AT&D2 the modem hangs up and returns to command state.
    match line.set_dtr(false) {
        Ok(()) => {
            report.dtr_dropped = true;
            wait(
                read,
                &mut seen,
                Instant::now() + settings.dtr_drop_time,
                &[],
            )?;
            if let Err(e) = line.set_dtr(true) {
                tracing::debug!(error = %e, "raising DTR again failed");
            }
        }
        Err(ModemStatusError::Unsupported) => note_no_status_lines(&line.name()),
        Err(e) => tracing::warn!(device = %line.name(), error = %e, "cannot drop DTR"),
    }
    let known_command_state =
        command_state || report.dtr_dropped || seen.has_line(&["NO CARRIER", "3"]);
    // 2. Escape: guard time of silence, `+++`, guard time, then a modem in data state says OK.
    wait(read, &mut seen, Instant::now() + settings.guard_time, &[])?;
    seen.clear();
    write_all_bounded(line, b"+++", settings.command_timeout)?;
    report.escape_sent = true;
    let answer = if known_command_state {
        // Nothing is expected; wait out the guard time so `ATH` is not taken as part of it.
        settings.guard_time
    } else {
        settings.guard_time + settings.command_timeout
    };
    report.escape_ok = wait(
        read,
        &mut seen,
        Instant::now() + answer,
        &["OK", "0", "NO CARRIER", "3"],
    )?;
    // 3. ATH. The CR before it ends any half line the modem may hold.
    seen.clear();
    write_all_bounded(line, b"\rATH\r", settings.command_timeout)?;
    let deadline = Instant::now() + settings.command_timeout;
    report.ath_ok = wait(read, &mut seen, deadline, &["OK", "0", "NO CARRIER", "3"])?;
    // 4. ATZ: the stored profile again, so the next dial starts from a known state.
    seen.clear();
    write_all_bounded(line, b"ATZ\r", settings.command_timeout)?;
    let deadline = Instant::now() + settings.command_timeout;
    report.atz_ok = wait(read, &mut seen, deadline, &["OK", "0"])?;
    Ok(report)
}

/// A read function over a line that has no reader thread (tests, probes).
pub fn direct_reader(
    line: &mut dyn SerialLine,
) -> impl FnMut(Instant) -> Result<Option<Vec<u8>>, SerialError> + '_ {
    move |deadline: Instant| {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
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
