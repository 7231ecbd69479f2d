//! Guarded child processes of the harness: always stopped and reaped on drop (SIGTERM to the
//! process group, a bounded wait, SIGKILL), stdout and stderr collected line by line. Must not
//! create namespaces or interfaces (`netns`).

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::*;

/// Output collected from a guarded child's stdout or stderr, line by line.
#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    eof: bool,
}

type SharedLines = Arc<(Mutex<Lines>, Condvar)>;

/// Wait until the reader of `shared` saw end of file, at most `limit`.
fn wait_eof(shared: &SharedLines, limit: Duration) {
    let deadline = Instant::now() + limit;
    let (lock, cv) = &**shared;
    let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
    while !g.eof {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        g = cv
            .wait_timeout(g, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

fn line_reader<R: Read + Send + 'static>(r: R, shared: SharedLines) {
    thread::spawn(move || {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).unwrap_or(0);
            let (lock, cv) = &*shared;
            // A poisoned lock only means a reader of the lines panicked; the data is still valid.
            let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
            if n == 0 {
                g.eof = true;
                cv.notify_all();
                return;
            }
            let line = String::from_utf8_lossy(&buf);
            g.lines.push(line.trim_end_matches(['\n', '\r']).to_owned());
            cv.notify_all();
        }
    });
}

/// A child process that is always stopped and reaped on drop: SIGTERM to its process group, a bounded
/// wait, then SIGKILL. Its stdout and stderr are collected line by line.
pub struct Guarded {
    child: Child,
    desc: String,
    stdout: SharedLines,
    stderr: SharedLines,
    status: Option<ExitStatus>,
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guarded(pid {}, {})", self.child.id(), self.desc)
    }
}

impl Guarded {
    /// Starts `cmd` in its own process group with stdin closed and stdout/stderr captured.
    pub fn spawn(mut cmd: Command) -> Result<Guarded> {
        let desc = describe(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|source| NetnsError::Spawn {
            cmd: desc.clone(),
            source,
        })?;
        let stdout: SharedLines = Arc::default();
        let stderr: SharedLines = Arc::default();
        if let Some(o) = child.stdout.take() {
            line_reader(o, stdout.clone());
        }
        if let Some(e) = child.stderr.take() {
            line_reader(e, stderr.clone());
        }
        Ok(Guarded {
            child,
            desc,
            stdout,
            stderr,
            status: None,
        })
    }

    /// The child's PID (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a stdout line contains `needle` and returns that line. Fails when the timeout expires
    /// or the child closes its stdout first.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Result<String> {
        let what = format!("stdout line containing {needle:?}");
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.stdout;
        let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(l) = g.lines.iter().find(|l| l.contains(needle)) {
                return Ok(l.clone());
            }
            if g.eof {
                drop(g);
                // stderr is read by its own thread: let it catch up (bounded) so the error
                // carries what the child said before exiting.
                wait_eof(&self.stderr, Duration::from_secs(2));
                return Err(NetnsError::ChildExited {
                    cmd: self.desc.clone(),
                    what,
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(g);
                return Err(NetnsError::Timeout {
                    cmd: self.desc.clone(),
                    after: timeout,
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                });
            }
            g = cv
                .wait_timeout(g, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Everything the child printed on stdout so far.
    pub fn stdout(&self) -> String {
        collected(&self.stdout)
    }

    /// Everything the child printed on stderr so far.
    pub fn stderr(&self) -> String {
        collected(&self.stderr)
    }

    /// The exit status if the child has exited (reaps it), else `None`.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits for the child to exit on its own, at most `timeout` (it is left running on timeout).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(NetnsError::WaitTimeout {
                    what: format!("exit of `{}`", self.desc),
                    after: timeout,
                });
            }
            thread::sleep(POLL);
        }
    }

    /// Sends `sig` to the child's process group (e.g. SIGHUP to reload, SIGTERM to test shutdown).
    pub fn signal(&self, sig: Signal) {
        if self.status.is_none() {
            if let Ok(p) = i32::try_from(self.child.id()) {
                let _ = signal::killpg(Pid::from_raw(p), sig);
            }
        }
    }

    /// Stops the child: SIGTERM to its group, up to 3 s grace, then SIGKILL; always reaps it. Returns
    /// its exit status when it could be reaped.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(s) = self.try_status() {
            return Some(s);
        }
        self.signal(Signal::SIGTERM);
        match self.wait_timeout(STOP_GRACE) {
            Ok(s) => Some(s),
            Err(_) => {
                // Killed before it is reaped, so the group id cannot have been reused yet.
                kill_group(self.child.id());
                self.status = self.child.wait().ok();
                self.status
            }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

fn collected(shared: &SharedLines) -> String {
    let g = shared.0.lock().unwrap_or_else(|p| p.into_inner());
    let mut s = g.lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}
