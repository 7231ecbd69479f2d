//! `hayes-exec`: an independent Hayes modem on a pseudo-terminal whose far end is a program
//! (everything after `--`), started on its own pseudo-terminal when the modem dials and killed
//! (by PID) when it hangs up. With `slirp ppp …` as the program, `mserver` dials an access
//! server and an internet that we did not write.
//!
//! Prints `READY <pty>` when the line is open; runs until SIGTERM/SIGINT (the test's guard
//! kills its process group, the far end included) or `--run-for` seconds.
//! The command interpreter is [`masqdial_tests::hayes`]; this file only moves bytes.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use masqdial_tests::hayes::{Action, HayesFront};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};

/// An independent Hayes modem whose far end is a program on a pseudo-terminal.
#[derive(Debug, Parser)]
#[command(name = "hayes-exec")]
struct Args {
    /// Create (or replace) this symlink to the line's pty slave.
    #[arg(long)]
    pty_link: Option<PathBuf>,
    /// Rate reported in `CONNECT <rate>`.
    #[arg(long, default_value_t = 115_200)]
    rate: u32,
    /// Throttle each direction to this many bit/s at 10 bits per byte (0 = unthrottled).
    #[arg(long, default_value_t = 0)]
    baud: u32,
    /// The far end's stderr goes to this file (default: ours).
    #[arg(long)]
    far_end_log: Option<PathBuf>,
    /// Log every chunk of both directions (time, direction, hex) to this file: the line
    /// capture of a run (decode it with `masqdial_tests::hayes::frames_of`).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Stop after this many seconds (a hang guard for manual runs).
    #[arg(long)]
    run_for: Option<u64>,
    /// The far end program and its arguments.
    #[arg(last = true, required = true)]
    far_end: Vec<String>,
}

enum Event {
    Line(Vec<u8>),
    Far(u64, Vec<u8>),
    FarEof(u64),
}

/// Raw mode on a terminal fd.
fn make_raw(fd: &OwnedFd) -> Result<()> {
    let mut t = tcgetattr(fd).context("tcgetattr")?;
    cfmakeraw(&mut t);
    tcsetattr(fd, SetArg::TCSANOW, &t).context("tcsetattr")?;
    Ok(())
}

fn reader(
    mut f: File,
    tx: mpsc::Sender<Event>,
    wrap: impl Fn(Vec<u8>) -> Event + Send + 'static,
    eof: Option<Event>,
) {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(wrap(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
        if let Some(e) = eof {
            let _ = tx.send(e);
        }
    });
}

/// The running far end: its process and the master side of its pty.
struct FarEnd {
    id: u64,
    child: Child,
    master: File,
    /// Our copy of the slave: slirp closes its stdio and reopens the tty by name, and the
    /// master would read EIO in between. The child's exit is seen by `try_wait` instead.
    _slave: OwnedFd,
}

impl FarEnd {
    fn kill(mut self) {
        // By PID, never by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A byte pacer: `rate` bytes per second, bursts of up to 64 bytes.
struct Pacer {
    bytes_per_s: f64,
    credit: f64,
    at: Instant,
}

impl Pacer {
    fn new(baud: u32) -> Pacer {
        Pacer {
            bytes_per_s: f64::from(baud) / 10.0,
            credit: 0.0,
            at: Instant::now(),
        }
    }

    /// Writes `data` at the paced rate (blocking the caller).
    fn write(&mut self, out: &mut File, data: &[u8]) -> std::io::Result<()> {
        if self.bytes_per_s <= 0.0 {
            return out.write_all(data);
        }
        for chunk in data.chunks(64) {
            let now = Instant::now();
            self.credit = (self.credit
                + now.duration_since(self.at).as_secs_f64() * self.bytes_per_s)
                .min(64.0);
            self.at = now;
            let need = chunk.len() as f64 - self.credit;
            if need > 0.0 {
                thread::sleep(Duration::from_secs_f64(need / self.bytes_per_s));
                self.credit = 0.0;
                self.at = Instant::now();
            } else {
                self.credit -= chunk.len() as f64;
            }
            out.write_all(chunk)?;
        }
        Ok(())
    }
}

/// A paced writer thread (so one slow direction never blocks the other or the interpreter).
fn writer(mut f: File, baud: u32) -> mpsc::Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    thread::spawn(move || {
        let mut p = Pacer::new(baud);
        while let Ok(d) = rx.recv() {
            if p.write(&mut f, &d).is_err() {
                // The reader side is gone; keep draining so senders never block.
                continue;
            }
        }
    });
    tx
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _ = started_at();
    let line = openpty(None, None).context("openpty (line)")?;
    make_raw(&line.slave)?;
    let slave_path = nix::unistd::ttyname(&line.slave).context("ttyname")?;
    if let Some(link) = &args.pty_link {
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&slave_path, link)
            .with_context(|| format!("symlink {}", link.display()))?;
    }
    // Our own slave fd stays open so the master never reads EIO between mserver's opens.
    let _keep_slave = line.slave;
    let line_master = File::from(line.master);
    let (tx, rx) = mpsc::channel();
    reader(
        line_master.try_clone().context("dup line master")?,
        tx.clone(),
        Event::Line,
        None,
    );
    let to_line = writer(line_master, args.baud);
    println!("READY {}", slave_path.display());
    let _ = std::io::stdout().flush();

    let mut trace = match &args.trace {
        Some(p) => Some(std::io::BufWriter::new(
            File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None => None,
    };
    let mut log = |dir: &str, d: &[u8]| {
        if let Some(t) = trace.as_mut() {
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(t, "{:.6} {dir} {hex}", started_at().elapsed().as_secs_f64());
            let _ = t.flush();
        }
    };
    let mut modem = HayesFront::new(args.rate);
    let mut far: Option<FarEnd> = None;
    let mut to_far: Option<mpsc::Sender<Vec<u8>>> = None;
    let mut next_id = 0u64;
    let started = Instant::now();
    loop {
        if let Some(limit) = args.run_for {
            if started.elapsed() >= Duration::from_secs(limit) {
                break;
            }
        }
        let ev = rx.recv_timeout(Duration::from_millis(20));
        let now = Instant::now();
        let mut actions = match ev {
            Ok(Event::Line(d)) => {
                log(">", &d);
                modem.from_line(now, &d)
            }
            Ok(Event::Far(id, d)) => {
                if far.as_ref().is_some_and(|f| f.id == id) && modem.online() {
                    log("<", &d);
                    let _ = to_line.send(d);
                }
                Vec::new()
            }
            Ok(Event::FarEof(id)) => {
                if far.as_ref().is_some_and(|f| f.id == id) {
                    if let Some(f) = far.take() {
                        f.kill();
                    }
                    to_far = None;
                    modem.far_end_gone()
                } else {
                    Vec::new()
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("event channel closed"),
        };
        actions.extend(modem.tick(now));
        // Child exit without EOF on its pty (its pty slave may be held by a grandchild).
        if let Some(f) = far.as_mut() {
            if let Ok(Some(status)) = f.child.try_wait() {
                eprintln!("hayes-exec: far end exited ({status}): NO CARRIER");
                far = None;
                to_far = None;
                actions.extend(modem.far_end_gone());
            }
        }
        let mut i = 0;
        while i < actions.len() {
            match actions[i].clone() {
                Action::ToLine(b) => {
                    log("<", &b);
                    let _ = to_line.send(b);
                }
                Action::ToFarEnd(b) => {
                    if let Some(t) = &to_far {
                        let _ = t.send(b);
                    }
                }
                Action::HangUp => {
                    if let Some(f) = far.take() {
                        eprintln!("hayes-exec: hang-up, killing far end pid {}", f.child.id());
                        f.kill();
                    }
                    to_far = None;
                }
                Action::Dial(number) => {
                    next_id += 1;
                    match start_far_end(&args, next_id, &tx) {
                        Ok(f) => {
                            eprintln!(
                                "hayes-exec: dialled {number:?}, far end pid {}",
                                f.child.id()
                            );
                            to_far = Some(writer(
                                f.master.try_clone().context("dup far master")?,
                                args.baud,
                            ));
                            far = Some(f);
                            actions.extend(modem.connected(Instant::now()));
                        }
                        Err(e) => {
                            eprintln!("hayes-exec: cannot start the far end: {e:#}");
                            actions.extend(modem.far_end_gone());
                        }
                    }
                }
            }
            i += 1;
        }
    }
    if let Some(f) = far.take() {
        f.kill();
    }
    Ok(())
}

/// The program's start, the time base of the trace.
fn started_at() -> Instant {
    static T: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T.get_or_init(Instant::now)
}

fn start_far_end(args: &Args, id: u64, tx: &mpsc::Sender<Event>) -> Result<FarEnd> {
    let pty = openpty(None, None).context("openpty (far end)")?;
    make_raw(&pty.slave)?;
    let Some((prog, rest)) = args.far_end.split_first() else {
        bail!("no far end program");
    };
    let stdin = Stdio::from(pty.slave.try_clone().context("dup slave")?);
    let stdout = Stdio::from(pty.slave.try_clone().context("dup slave")?);
    let stderr = match &args.far_end_log {
        Some(p) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("open {}", p.display()))?,
        ),
        None => Stdio::inherit(),
    };
    let child = Command::new(prog)
        .args(rest)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("spawn {prog}"))?;
    let master = File::from(pty.master);
    reader(
        master.try_clone().context("dup far master")?,
        tx.clone(),
        move |d| Event::Far(id, d),
        Some(Event::FarEof(id)),
    );
    Ok(FarEnd {
        id,
        child,
        master,
        _slave: pty.slave,
    })
}
