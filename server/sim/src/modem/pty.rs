//! Puts a [`MockModem`] on a pseudo-terminal: owns the pty master and one driver thread; the slave
//! path is what the gateway opens. Must not contain modem logic (that is [`MockModem`]).
//!
//! Driver choice: the pty master is driven by one dedicated OS thread with blocking, time-bounded
//! reads (`serialport`'s `TTYPort`, safe `ppoll` underneath), so it works identically from tokio
//! tests, plain tests and the `mock-modem` program. Control messages (stop, carrier loss, silence)
//! are seen within [`CONTROL_LATENCY`].

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

use super::{AnswererFactory, MockModem, MockModemConfig, MockModemStats};

/// Longest the driver thread sleeps before looking at control messages.
pub const CONTROL_LATENCY: Duration = Duration::from_millis(20);

/// Error creating the pseudo-terminal.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// `posix_openpt`/`grantpt`/`unlockpt`/opening the slave failed.
    #[error("cannot create pseudo-terminal: {0}")]
    Open(#[from] serialport::Error),
    /// The slave has no path name.
    #[error("pseudo-terminal slave has no path")]
    NoName,
    /// Spawning the driver thread failed.
    #[error("cannot spawn mock modem thread: {0}")]
    Thread(io::Error),
}

enum Control {
    Stop,
    CarrierLoss,
    Silent(bool),
    DtrDrop,
}

/// A running mock modem on a pty. Dropping it stops the thread and closes the pty.
pub struct PtyModem {
    path: PathBuf,
    ctl: mpsc::Sender<Control>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<MockModemStats>>,
}

impl std::fmt::Debug for PtyModem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyModem")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Creates a pty, starts the mock modem on its master end and returns the slave path + handle.
pub fn spawn_pty(config: MockModemConfig, factory: AnswererFactory) -> Result<PtyModem, PtyError> {
    let (master, slave) = TTYPort::pair()?;
    let path = slave.name().map(PathBuf::from).ok_or(PtyError::NoName)?;
    let (ctl, rx) = mpsc::channel();
    let stats = Arc::new(Mutex::new(MockModemStats::default()));
    let stats2 = Arc::clone(&stats);
    let modem = MockModem::new(config, factory);
    let thread = std::thread::Builder::new()
        .name("mock-modem".into())
        .spawn(move || run(master, slave, modem, rx, stats2))
        .map_err(PtyError::Thread)?;
    Ok(PtyModem {
        path,
        ctl,
        thread: Some(thread),
        stats,
    })
}

impl PtyModem {
    /// Path of the slave end (e.g. `/dev/pts/7`): what the gateway opens.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops the carrier now (the modem reports NO CARRIER).
    pub fn inject_carrier_loss(&self) {
        let _ = self.ctl.send(Control::CarrierLoss);
    }

    /// Makes the modem stop (or resume) answering.
    pub fn set_silent(&self, silent: bool) {
        let _ = self.ctl.send(Control::Silent(silent));
    }

    /// Simulates the DTE dropping DTR (a pty cannot carry it).
    pub fn dtr_drop(&self) {
        let _ = self.ctl.send(Control::DtrDrop);
    }

    /// Counters (as of the driver's last loop).
    #[must_use]
    pub fn stats(&self) -> MockModemStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Stops the modem and closes the pty master: the slave side then reads EIO / hang-up.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.ctl.send(Control::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PtyModem {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    mut master: TTYPort,
    slave: TTYPort,
    mut modem: MockModem,
    ctl: mpsc::Receiver<Control>,
    stats: Arc<Mutex<MockModemStats>>,
) {
    // Holding the slave open keeps the master from seeing a hang-up while no gateway has it open.
    let _slave = slave;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let now = Instant::now();
        loop {
            match ctl.try_recv() {
                Ok(Control::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Ok(Control::CarrierLoss) => modem.inject_carrier_loss(now),
                Ok(Control::Silent(s)) => modem.set_silent(s),
                Ok(Control::DtrDrop) => modem.dtr_drop(now),
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        if modem.poll_timeout().is_some_and(|t| t <= now) {
            modem.handle_timeout(now);
        }
        while let Some(b) = modem.poll_transmit() {
            pending.extend_from_slice(&b);
        }
        if !pending.is_empty() {
            let _ = master.set_timeout(Duration::from_millis(1));
            match master.write(&pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => {
                    tracing::warn!(error = %e, "mock modem: pty write failed; stopping");
                    return;
                }
            }
        }
        if let Ok(mut s) = stats.lock() {
            *s = modem.stats();
        }
        let now = Instant::now();
        let mut wait = CONTROL_LATENCY;
        if let Some(t) = modem.poll_timeout() {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if !pending.is_empty() {
            wait = wait.min(Duration::from_millis(1));
        }
        let _ = master.set_timeout(wait.max(Duration::from_micros(50)));
        match master.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => modem.handle_input(Instant::now(), &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(e) => {
                tracing::warn!(error = %e, "mock modem: pty read failed; stopping");
                return;
            }
        }
    }
}
