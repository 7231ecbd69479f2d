//! Modem driver: the only code that opens a serial port. Owns port settings, the [`SerialLine`]
//! abstraction (real tty, pseudo-terminal, test pipe), probing with backoff and the chat → PPP
//! session driver ([`session`]). Must not contain protocol logic: chat and PPP are sans-IO
//! machines in [`masqdial_at`] and [`masqdial_ppp`].
//!
//! Pseudo-terminals have no modem-status lines: `TIOCMGET`/`TIOCMBIS` fail with `ENOTTY`. DTR and
//! DCD calls then return [`ModemStatusError::Unsupported`]; callers fall back (hang up with
//! `+++`/`ATH`, detect carrier loss from the modem's `NO CARRIER`) and log it once.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serialport::{ClearBuffer, SerialPort, TTYPort};

pub mod carrier;
pub mod cell;
pub mod hangup;
pub mod lock;
pub mod session;

/// Serial data bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataBits {
    /// 5 bits.
    Five,
    /// 6 bits.
    Six,
    /// 7 bits.
    Seven,
    /// 8 bits (what PPP needs).
    Eight,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// None.
    None,
    /// Odd.
    Odd,
    /// Even.
    Even,
}

/// Serial stop bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopBits {
    /// One.
    One,
    /// Two.
    Two,
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowControl {
    /// None.
    None,
    /// RTS/CTS hardware flow control.
    RtsCts,
}

/// Settings of one modem port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemSettings {
    /// Device path (`/dev/ttyS0`, `/dev/ttyUSB0`, a pty slave).
    pub device: PathBuf,
    /// DTE speed.
    pub baud: u32,
    /// Data bits.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Flow control.
    pub flow: FlowControl,
    /// Escape guard time: silence before and after `+++` (Hayes S12 default 1 s).
    pub guard_time: Duration,
    /// How long DTR is held low to hang up (must exceed the modem's S25).
    pub dtr_drop_time: Duration,
    /// Longest wait for the modem's answer to `+++` and to `ATH`.
    pub command_timeout: Duration,
    /// Directory of UUCP lock files (`LCK..ttyS0`); `None` = no lock file (the exclusive open
    /// still applies). Default `/var/lock`; if it is missing or not writable the port is opened
    /// without a lock file, with a warning.
    pub lock_dir: Option<PathBuf>,
}

/// Margin on the escape guard time: `guard + guard / 5 + GUARD_MARGIN` (S12 = 50 → 1.3 s). A
/// modem times the guard itself, on its own clock and on the line; exactly S12 of silence is
/// too little on some.
pub const GUARD_MARGIN: Duration = Duration::from_millis(100);

impl ModemSettings {
    /// The silence kept before and after `+++`: the guard time plus 20 % plus
    /// [`GUARD_MARGIN`].
    #[must_use]
    pub fn escape_guard(&self) -> Duration {
        self.guard_time + self.guard_time / 5 + GUARD_MARGIN
    }

    /// How long `bytes` take to cross the line at the DTE speed (10 bits a byte: 8N1).
    #[must_use]
    pub fn line_time(&self, bytes: u64) -> Duration {
        let bits = bytes.saturating_mul(10);
        Duration::from_micros(bits.saturating_mul(1_000_000) / u64::from(self.baud.max(1)))
    }

    /// 115200 8N1, RTS/CTS, 1 s guard time.
    #[must_use]
    pub fn new(device: impl Into<PathBuf>) -> Self {
        ModemSettings {
            device: device.into(),
            baud: 115_200,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow: FlowControl::RtsCts,
            guard_time: Duration::from_secs(1),
            dtr_drop_time: Duration::from_millis(500),
            command_timeout: Duration::from_secs(2),
            lock_dir: Some(PathBuf::from(lock::DEFAULT_LOCK_DIR)),
        }
    }
}

/// Error opening a serial port.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No such device (unplugged USB modem, wrong path).
    #[error("serial device {0} not found")]
    NotFound(PathBuf),
    /// No permission (add the service user to group `dialout`).
    #[error("no permission to open {0} (is the service user in group dialout?)")]
    PermissionDenied(PathBuf),
    /// Another process holds the port.
    #[error("serial device {0} is busy (in use by another program?)")]
    Busy(PathBuf),
    /// Another live process holds the port's UUCP lock file (its pid and program are named).
    #[error(transparent)]
    Locked(lock::LockError),
    /// The settings were refused (unsupported baud rate, …).
    #[error("serial device {path}: settings refused: {message}")]
    Settings {
        /// Device.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// Any other failure.
    #[error("cannot open serial device {path}: {message}")]
    Other {
        /// Device.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
}

/// Error of a running serial line: ends the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    /// The device went away (EIO, hang-up, unplugged USB modem, pty master closed).
    #[error("serial device gone: {0}")]
    DeviceGone(String),
    /// Writes stalled longer than allowed (flow control held off?).
    #[error("serial write stalled for {0:?} (CTS low?)")]
    WriteStalled(Duration),
    /// Any other I/O error.
    #[error("serial I/O error: {0}")]
    Io(String),
}

impl SerialError {
    /// Classifies an I/O error of a serial read/write (not `TimedOut`, which is not an error).
    #[must_use]
    pub fn from_io(e: &io::Error) -> Self {
        let gone = matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
        ) || matches!(
            e.raw_os_error(),
            Some(libc::EIO | libc::ENXIO | libc::ENODEV | libc::EBADF)
        ) || e.to_string().contains("Input/output error");
        if gone {
            SerialError::DeviceGone(e.to_string())
        } else {
            SerialError::Io(e.to_string())
        }
    }
}

/// Error of a modem-status line operation (DTR, DCD).
#[derive(Debug, thiserror::Error)]
pub enum ModemStatusError {
    /// The device has no modem-status lines (a pseudo-terminal: ENOTTY).
    #[error("device has no modem-status lines")]
    Unsupported,
    /// The ioctl failed otherwise.
    #[error("modem-status ioctl failed: {0}")]
    Io(String),
}

/// A serial line: a real tty, a pseudo-terminal, or a test double.
pub trait SerialLine: Read + Write + Send {
    /// A second handle on the same line (the driver reads on one thread, writes on another).
    fn try_clone_line(&self) -> io::Result<Box<dyn SerialLine>>;
    /// Bounds how long `read` blocks; `read` then fails with `TimedOut`.
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()>;
    /// Sets DTR.
    fn set_dtr(&mut self, level: bool) -> Result<(), ModemStatusError>;
    /// Reads DCD.
    fn carrier_detect(&mut self) -> Result<bool, ModemStatusError>;
    /// Name for logs.
    fn name(&self) -> String;
    /// Bytes written but not yet sent by the serial driver (`TIOCOUTQ`), where the line can
    /// tell. A pseudo-terminal always reports 0; the session's pacer then relies on its own
    /// estimate.
    fn output_queue(&mut self) -> Option<u64> {
        None
    }
    /// Discards what the line received and nobody read yet (`tcflush(TCIFLUSH)`): stale result
    /// codes of an earlier command must never be taken as the next one's answer.
    fn flush_input(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Waits until what was written has left the serial driver (`TIOCOUTQ` polled, then
    /// `tcdrain`), at most `limit`; what is still queued then is discarded (`TCOFLUSH`). Where
    /// the queue is invisible (ptys, some USB adapters) this returns at once: the caller also
    /// waits out the line time of what it wrote.
    fn drain_output(&mut self, limit: Duration) -> io::Result<()> {
        let _ = limit;
        Ok(())
    }
}

/// A serial port opened with `serialport` (tty or pty).
pub struct TtyLine {
    port: TTYPort,
    name: String,
    /// The UUCP lock, shared by clones; its file goes when the last clone drops.
    lock: Option<Arc<lock::LineLock>>,
}

impl fmt::Debug for TtyLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtyLine").field("name", &self.name).finish()
    }
}

impl TtyLine {
    /// Wraps an already-open port (e.g. one end of `TTYPort::pair`).
    #[must_use]
    pub fn from_port(port: TTYPort, name: impl Into<String>) -> Self {
        TtyLine {
            port,
            name: name.into(),
            lock: None,
        }
    }
}

impl Drop for TtyLine {
    fn drop(&mut self) {
        // TIOCEXCL outlives our fd while anyone else holds the tty open; clear it so the next
        // open (the next dial) is not refused with EBUSY.
        if self.port.exclusive() {
            let _ = self.port.set_exclusive(false);
        }
    }
}

impl Read for TtyLine {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.port.read(buf)
    }
}

impl Write for TtyLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.port.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.port.flush()
    }
}

fn status_error(e: &serialport::Error) -> ModemStatusError {
    let text = e.to_string();
    if text.contains("Not a typewriter")
        || text.contains("Inappropriate ioctl")
        || text.contains("ENOTTY")
    {
        ModemStatusError::Unsupported
    } else {
        ModemStatusError::Io(text)
    }
}

impl SerialLine for TtyLine {
    fn try_clone_line(&self) -> io::Result<Box<dyn SerialLine>> {
        let port = self
            .port
            .try_clone_native()
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Box::new(TtyLine {
            port,
            name: self.name.clone(),
            lock: self.lock.clone(),
        }))
    }
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.port
            .set_timeout(timeout)
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn set_dtr(&mut self, level: bool) -> Result<(), ModemStatusError> {
        self.port
            .write_data_terminal_ready(level)
            .map_err(|e| status_error(&e))
    }
    fn carrier_detect(&mut self) -> Result<bool, ModemStatusError> {
        self.port
            .read_carrier_detect()
            .map_err(|e| status_error(&e))
    }
    fn output_queue(&mut self) -> Option<u64> {
        self.port.bytes_to_write().ok().map(u64::from)
    }
    fn flush_input(&mut self) -> io::Result<()> {
        self.port
            .clear(ClearBuffer::Input)
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn drain_output(&mut self, limit: Duration) -> io::Result<()> {
        let give_up = Instant::now() + limit;
        // TIOCOUTQ first: `tcdrain` itself has no timeout, and CTS held low would block it.
        while let Ok(n) = self.port.bytes_to_write() {
            if n == 0 {
                break;
            }
            if Instant::now() >= give_up {
                tracing::warn!(device = %self.name, queued = n, "output did not drain (CTS low?); discarding it before the escape");
                self.port
                    .clear(ClearBuffer::Output)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The driver queue is empty: `tcdrain` now waits only for the UART's own FIFO.
        self.port.flush()
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Opens the configured device (exclusive, raw, CLOCAL) with the given line settings.
pub fn open(settings: &ModemSettings) -> Result<TtyLine, OpenError> {
    let path = settings.device.clone();
    let name = path.to_string_lossy().into_owned();
    // UUCP lock first (as pppd does), then the exclusive open.
    let lock = match &settings.lock_dir {
        None => None,
        Some(dir) => match lock::acquire(dir, &path) {
            Ok(l) => Some(Arc::new(l)),
            Err(lock::LockError::Io {
                unavailable: true,
                lock,
                message,
            }) => {
                tracing::warn!(device = %name, lock = %lock.display(), %message, "no UUCP lock file (directory missing or not writable); relying on the exclusive open");
                None
            }
            Err(e) => return Err(OpenError::Locked(e)),
        },
    };
    let builder = serialport::new(name.clone(), settings.baud)
        .data_bits(match settings.data_bits {
            DataBits::Five => serialport::DataBits::Five,
            DataBits::Six => serialport::DataBits::Six,
            DataBits::Seven => serialport::DataBits::Seven,
            DataBits::Eight => serialport::DataBits::Eight,
        })
        .parity(match settings.parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        })
        .stop_bits(match settings.stop_bits {
            StopBits::One => serialport::StopBits::One,
            StopBits::Two => serialport::StopBits::Two,
        })
        .flow_control(match settings.flow {
            FlowControl::None => serialport::FlowControl::None,
            FlowControl::RtsCts => serialport::FlowControl::Hardware,
        })
        .timeout(Duration::from_millis(100));
    let port = builder.open_native().map_err(|e| {
        let message = e.to_string();
        // serialport reports EBUSY (TIOCEXCL held) and a held flock as `NoDevice`; tell them
        // apart from a missing device by the message.
        let busy = message.contains("busy") || message.contains("lock on serial port");
        match e.kind() {
            _ if busy => OpenError::Busy(path.clone()),
            serialport::ErrorKind::Io(io::ErrorKind::NotFound)
            | serialport::ErrorKind::NoDevice => OpenError::NotFound(path.clone()),
            serialport::ErrorKind::InvalidInput => OpenError::Settings {
                path: path.clone(),
                message,
            },
            serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
                OpenError::PermissionDenied(path.clone())
            }
            _ if message.contains("No such") => OpenError::NotFound(path.clone()),
            _ => OpenError::Other {
                path: path.clone(),
                message,
            },
        }
    })?;
    let mut line = TtyLine::from_port(port, name);
    line.lock = lock;
    // Whatever the modem said before we opened (a late extra `OK` of the last hang-up) is stale.
    if let Err(e) = line.flush_input() {
        tracing::debug!(device = %line.name, error = %e, "flushing input at open failed");
    }
    Ok(line)
}

static STATUS_WARNED: AtomicBool = AtomicBool::new(false);

/// Logs (once per process) that a device has no modem-status lines.
pub fn note_no_status_lines(device: &str) {
    if !STATUS_WARNED.swap(true, Ordering::Relaxed) {
        tracing::info!(
            device,
            "device has no modem-status lines (pseudo-terminal?): DTR hang-up and DCD carrier \
             detection off; using +++/ATH and the modem's NO CARRIER instead"
        );
    }
}

/// Writes all of `bytes`, retrying read-timeouts until `limit` passes.
pub fn write_all_bounded(
    line: &mut dyn SerialLine,
    mut bytes: &[u8],
    limit: Duration,
) -> Result<(), SerialError> {
    let start = Instant::now();
    while !bytes.is_empty() {
        match line.write(bytes) {
            Ok(0) => return Err(SerialError::DeviceGone("write returned 0".into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                if start.elapsed() > limit {
                    return Err(SerialError::WriteStalled(limit));
                }
            }
            Err(e) => return Err(SerialError::from_io(&e)),
        }
    }
    Ok(())
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    /// Device probed.
    pub device: PathBuf,
    /// Whether DCD could be read (false on ptys).
    pub has_status_lines: bool,
}

/// Error of [`probe`].
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The port did not open.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// I/O failed while talking to it.
    #[error(transparent)]
    Serial(#[from] SerialError),
    /// It did not answer `AT` with `OK` in time.
    #[error("no answer to AT from {0} within {1:?}")]
    NoAnswer(PathBuf, Duration),
}

/// Opens the device, sends `AT`, waits up to `timeout` for `OK`. Blocking: call from
/// `spawn_blocking`. The link manager re-probes an absent modem with [`Backoff`].
pub fn probe(settings: &ModemSettings, timeout: Duration) -> Result<ProbeInfo, ProbeError> {
    let mut line = open(settings)?;
    let has_status_lines = line.carrier_detect().is_ok();
    write_all_bounded(&mut line, b"AT\r", timeout)?;
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while start.elapsed() < timeout {
        let left = timeout.saturating_sub(start.elapsed());
        let _ = line.set_read_timeout(left.max(Duration::from_millis(1)));
        match line.read(&mut buf) {
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if text
                    .split(['\r', '\n'])
                    .any(|l| l.trim() == "OK" || l.trim() == "0")
                {
                    return Ok(ProbeInfo {
                        device: settings.device.clone(),
                        has_status_lines,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(e) => return Err(SerialError::from_io(&e).into()),
        }
    }
    Err(ProbeError::NoAnswer(settings.device.clone(), timeout))
}

/// Exponential backoff for re-probing an absent modem: `initial`, doubled each step, capped.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubles up to `max`.
    #[must_use]
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { next: initial, max }
    }
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s … 60 s.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        Some(d)
    }
}
