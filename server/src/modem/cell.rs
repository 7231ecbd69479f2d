//! Runs the sans-IO cellular status poll ([`masqdial_at::cell::CellPoll`]) over a serial
//! line in command mode. Blocking: call from `spawn_blocking`. The link manager calls it
//! only for a modem no session uses (or on the modem's second AT port), so it never talks
//! to a line carrying PPP. The PIN it may send is never logged.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use masqdial_at::cell::{CellPoll, CellStatus};

use super::{open, write_all_bounded, ModemSettings, ProbeError, SerialError, SerialLine};

/// Time allowed for each command's final result.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens `settings.device` and polls its status; `abort` (a dial wants the modem) ends the
/// poll early with what it has. Errors when the port fails or the modem answers nothing.
pub fn query(
    settings: &ModemSettings,
    pin: Option<String>,
    abort: &AtomicBool,
) -> Result<CellStatus, ProbeError> {
    let mut line = open(settings)?;
    query_on(&mut line, pin, abort)
}

/// [`query`] on an open line (a tty, a pty, a test double).
pub fn query_on(
    line: &mut dyn SerialLine,
    pin: Option<String>,
    abort: &AtomicBool,
) -> Result<CellStatus, ProbeError> {
    let mut p = CellPoll::new(Instant::now(), pin, COMMAND_TIMEOUT);
    let mut buf = [0u8; 512];
    while !p.is_done() && !abort.load(Ordering::Relaxed) {
        while let Some(b) = p.poll_transmit() {
            write_all_bounded(line, &b, COMMAND_TIMEOUT)?;
        }
        let _ = line.set_read_timeout(Duration::from_millis(100));
        match line.read(&mut buf) {
            Ok(n) => p.handle_input(Instant::now(), &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(SerialError::from_io(&e).into()),
        }
        p.handle_timeout(Instant::now());
    }
    if p.answered() == 0 {
        return Err(ProbeError::NoAnswer(line.name().into(), COMMAND_TIMEOUT));
    }
    Ok(p.status().clone())
}
