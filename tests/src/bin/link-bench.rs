//! `link-bench`: latency under load and fairness on the dial-up link, measured end to end on the
//! real binaries. A benchmark, not a test: it prints figures and never fails on them.
//!
//! Needs root (network namespaces, TUN). Build and run with one command:
//!
//! ```text
//! cargo build --release --workspace --bins && sudo target/release/link-bench [--scheduler fifo]
//! ```
//!
//! World: the harness topology of `masqdial_tests::netns` (LAN host namespace, gateway namespace
//! running `mserver`, WAN namespace running `mock-modem --baud 115200 --tun wan0`), plus a second
//! LAN address 192.168.77.3 on the LAN host so two "hosts" can compete. The servers in the WAN
//! namespace (TCP sinks, a TCP source, a UDP echo) and the LAN clients are threads of this
//! process whose sockets were opened inside the namespaces.
//!
//! Phases, each measured for `--phase-secs` after `--warmup-secs`:
//! 1. idle: UDP echo round trips (one 64-byte datagram every 200 ms; there is no `ping` binary in
//!    every test image, and a UDP echo is queued like an ICMP echo);
//! 2. one bulk TCP upload; 3. one bulk TCP download; 4. both at once — round trips during each,
//!    and each transfer's goodput as a percentage of the line rate (baud / 10 bytes per second);
//! 5. two LAN hosts uploading, 192.168.77.2 with one flow and 192.168.77.3 with eight: their
//!    shares of the upload goodput;
//! 6. `dshares` (not in the default list): the same two hosts *downloading* (one flow against
//!    eight): their shares of the download goodput (the download window clamp splits its budget
//!    per host, then per flow);
//! 7. `starts` (not in the default list): a new download every 10 s (`--starts` of them, each
//!    stopped when the next begins) while the probes run: each download's RTT p95 over its
//!    first 5 s and over its 10 s, and a per-second series of its first 10 s (RTT max, bytes
//!    received, ISP queue) on stdout, as `start` lines.
//!
//! Output: a human table on stdout, then one JSON line starting `RESULT ` (for scripts).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use masqdial_tests::netns::{
    exec_command, netns_available, unique_tag, wait_for_route, wait_for_tcp, Guarded, Netns,
    Topology,
};

const WAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const HOST_A: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
const HOST_B: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 3);
const ECHO_PORT: u16 = 7007;
const SINK_A: u16 = 9001;
const SINK_B: u16 = 9002;
const SOURCE: u16 = 9003;
const RPC_PORT: u16 = 2225;

/// Measures latency under load and fairness over the mock modem link.
#[derive(Debug, Parser)]
#[command(name = "link-bench", version)]
struct Args {
    /// Line rate of the mock modem (bit/s, 10 bits per byte).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// `[link] scheduler` for mserver: `fair` (the default) or `fifo` (the old FIFO path).
    #[arg(long)]
    scheduler: Option<String>,
    /// `[link] ingress_shaping` for mserver (fraction of the line rate; off when absent).
    #[arg(long)]
    ingress_shaping: Option<f64>,
    /// Seconds measured per phase.
    #[arg(long, default_value_t = 20)]
    phase_secs: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 6)]
    warmup_secs: u64,
    /// Seconds to let queues drain between phases.
    #[arg(long, default_value_t = 6)]
    settle_secs: u64,
    /// Only these phases (comma-separated: idle,up,down,both,shares,dshares,starts).
    #[arg(long, default_value = "idle,up,down,both,shares")]
    phases: String,
    /// The mock ISP's downstream buffer in bytes (`mock-modem --down-buffer`; default unbounded).
    #[arg(long)]
    down_buffer: Option<usize>,
    /// Print a per-second time series of each phase (RTT max, ISP queue) on stderr.
    #[arg(long)]
    series: bool,
    /// Milliseconds between UDP echo probes; 0 sends none (goodput without the probes'
    /// 485 B/s each way on the line).
    #[arg(long, default_value_t = 200)]
    probe_ms: u64,
    /// `[link] download_window` for mserver (`true`/`false`; default: mserver's, on).
    #[arg(long)]
    download_window: Option<bool>,
    /// `[link] download_window_packets` for mserver (default: mserver's).
    #[arg(long)]
    window_packets: Option<u16>,
    /// Downloads the `starts` phase begins, one every 10 s (each runs its 10 s, then stops).
    #[arg(long, default_value_t = 6)]
    starts: usize,
    /// TCP congestion control of the bulk senders (`net.ipv4.tcp_congestion_control` in the
    /// LAN and WAN namespaces, e.g. cubic or bbr); default: the host's.
    #[arg(long)]
    cc: Option<String>,
}

/// How often the mock modem logs its downstream queue (bytes waiting in the ISP → pty line).
const MODEM_STATS_EVERY: Duration = Duration::from_millis(500);

/// `down_queued` of each `line stats` line the mock modem logged, in order.
fn modem_queue_samples(stderr: &str) -> Vec<u64> {
    strip_ansi(stderr)
        .lines()
        .filter(|l| l.contains("line stats"))
        .filter_map(|l| {
            let v = l.split("down_queued=").nth(1)?;
            v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect()
}

/// Binaries of other packages, built next to this one.
fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("current_exe")?;
    let p = me.parent().map(|d| d.join(name)).context("no parent dir")?;
    if !p.exists() {
        bail!(
            "{} not built: cargo build --release --workspace --bins",
            p.display()
        );
    }
    Ok(p)
}

fn mserver_config(dir: &Path, pty: &Path, args: &Args) -> Result<String> {
    let hash = masqdial_server::auth::hash_password("bench-pw").context("hash")?;
    let rules = dir.join("rules");
    std::fs::write(&rules, masqdial_server::persist::DEFAULT_RULESET)?;
    let mut link = String::new();
    if let Some(s) = &args.scheduler {
        link.push_str(&format!("scheduler = \"{s}\"\n"));
    }
    if let Some(f) = args.ingress_shaping {
        link.push_str(&format!("ingress_shaping = {f}\n"));
    }
    if let Some(w) = args.download_window {
        link.push_str(&format!("download_window = {w}\n"));
    }
    if let Some(n) = args.window_packets {
        link.push_str(&format!("download_window_packets = {n}\n"));
    }
    if !link.is_empty() {
        link = format!("\n[link]\n{link}");
    }
    Ok(format!(
        r#"
[server]
listen = "127.0.0.1:{RPC_PORT}"
state_dir = "{state}"
allow = ["127.0.0.0/8"]

[[users]]
name = "bench"
password_hash = "{hash}"
role = "admin"

[[modems]]
name = "modem0"
device = "{pty}"
baud = {baud}
flow_control = "none"
init = ["ATZ"]

[[connections]]
name = "isp1"
modems = ["modem0"]
numbers = ["5550100"]
username = "demo"
password = "secret"
auth = "chap"
routes = ["0.0.0.0/0"]

[nat]
tun_name = "masq0"
ruleset = "{rules}"
{link}"#,
        state = dir.join("state").display(),
        pty = pty.display(),
        baud = args.baud,
        rules = rules.display(),
    ))
}

/// Runs `mclient` in the gateway namespace; returns stdout, failing on a non-zero exit.
fn mclient(gw: &Netns, dir: &Path, args: &[&str]) -> Result<String> {
    let mut c = gw.command(sibling("mclient")?);
    c.env("MASQDIAL_SERVER", format!("http://127.0.0.1:{RPC_PORT}"))
        .env("MCLIENT_TOKEN_FILE", dir.join("tokens.toml"))
        .env("MCLIENT_PASSWORD", "bench-pw")
        .args(["--user", "bench"])
        .args(args);
    let o = exec_command(c, Duration::from_secs(90))?;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    if !o.status.success() {
        bail!(
            "mclient {args:?}: {}\n{out}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(out)
}

/// A TCP stream from `src` (any port) to `dst`, opened inside `ns`.
fn connect_from(ns: &Netns, src: Ipv4Addr, dst: SocketAddrV4) -> Result<TcpStream> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd: OwnedFd = ns
        .run_in(move || -> nix::Result<OwnedFd> {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )?;
            bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::from(SocketAddrV4::new(src, 0)),
            )?;
            connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(dst))?;
            Ok(fd)
        })?
        .with_context(|| format!("connect {src} -> {dst}"))?;
    Ok(TcpStream::from(fd))
}

/// Byte counters of the WAN servers, by port.
#[derive(Default)]
struct Counters {
    sink_a: AtomicU64,
    sink_b: AtomicU64,
}

/// Serve forever (threads end with the process): TCP sinks on SINK_A/SINK_B, a TCP source on
/// SOURCE, a UDP echo on ECHO_PORT — all bound to WAN inside the WAN namespace.
fn start_wan_servers(wan: &Netns, c: &Arc<Counters>) -> Result<()> {
    let (la, lb, ls, echo) = wan
        .run_in(|| -> std::io::Result<_> {
            Ok((
                TcpListener::bind((WAN, SINK_A))?,
                TcpListener::bind((WAN, SINK_B))?,
                TcpListener::bind((WAN, SOURCE))?,
                UdpSocket::bind((WAN, ECHO_PORT))?,
            ))
        })?
        .context("bind WAN servers")?;
    for (l, which) in [(la, 0u8), (lb, 1u8)] {
        let c = Arc::clone(c);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let ctr = if which == 0 { &c.sink_a } else { &c.sink_b };
                        ctr.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
        });
    }
    std::thread::spawn(move || {
        for s in ls.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let buf = vec![0x5au8; 16384];
                while s.write_all(&buf).is_ok() {}
            });
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], from);
        }
    });
    Ok(())
}

/// UDP echo round trips from the LAN host every `every` until `stop`.
struct Pinger {
    rtts: Arc<Mutex<Vec<(Instant, Duration)>>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Pinger {
    fn start(lan: &Netns, every: Duration) -> Result<Pinger> {
        let sock = lan
            .run_in(|| -> std::io::Result<UdpSocket> {
                let s = UdpSocket::bind((HOST_A, 0))?;
                s.connect((WAN, ECHO_PORT))?;
                Ok(s)
            })?
            .context("pinger socket")?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let rx = sock.try_clone()?;
        let epoch = Instant::now();
        let rtts = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                let mut pkt = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    let t = epoch.elapsed().as_nanos() as u64;
                    pkt[..8].copy_from_slice(&t.to_le_bytes());
                    if sock.send(&pkt).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(every);
                }
            }));
        }
        {
            let (rtts, stop) = (Arc::clone(&rtts), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 128];
                // Keep listening 3 s after stop for late answers.
                let mut stop_at: Option<Instant> = None;
                loop {
                    if stop.load(Ordering::Relaxed) && stop_at.is_none() {
                        stop_at = Some(Instant::now() + Duration::from_secs(3));
                    }
                    if stop_at.is_some_and(|t| Instant::now() >= t) {
                        break;
                    }
                    if let Ok(n) = rx.recv(&mut buf) {
                        if n >= 8 {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(&buf[..8]);
                            let sent_at = epoch + Duration::from_nanos(u64::from_le_bytes(b));
                            let now = Instant::now();
                            if let Ok(mut v) = rtts.lock() {
                                v.push((sent_at, now - sent_at));
                            }
                        }
                    }
                }
            }));
        }
        Ok(Pinger {
            rtts,
            sent,
            stop,
            threads,
        })
    }

    /// Stop; send times and RTTs of probes sent in [from, to).
    fn finish(self, from: Instant, to: Instant) -> Vec<(Instant, Duration)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let _ = self.sent.load(Ordering::Relaxed);
        let v = self.rtts.lock().map(|v| v.clone()).unwrap_or_default();
        v.into_iter()
            .filter(|(s, _)| *s >= from && *s < to)
            .collect()
    }
}

/// Bulk TCP senders or receivers until `stop`.
struct Bulk {
    stop: Arc<AtomicBool>,
    /// Bytes received by downloads from HOST_A.
    received: Arc<AtomicU64>,
    /// Bytes received by downloads from HOST_B (the `dshares` phase).
    received_b: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Bulk {
    fn new() -> Bulk {
        Bulk {
            stop: Arc::new(AtomicBool::new(false)),
            received: Arc::new(AtomicU64::new(0)),
            received_b: Arc::new(AtomicU64::new(0)),
            threads: Vec::new(),
        }
    }

    fn upload(&mut self, lan: &Netns, src: Ipv4Addr, port: u16) -> Result<()> {
        let mut s = connect_from(lan, src, SocketAddrV4::new(WAN, port))?;
        s.set_write_timeout(Some(Duration::from_millis(300)))?;
        let stop = Arc::clone(&self.stop);
        self.threads.push(std::thread::spawn(move || {
            let buf = vec![0xa5u8; 8192];
            while !stop.load(Ordering::Relaxed) {
                match s.write(&buf) {
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            abort(s);
        }));
        Ok(())
    }

    fn download(&mut self, lan: &Netns) -> Result<()> {
        self.download_from(lan, HOST_A)
    }

    /// A download to LAN address `src` (HOST_A counts in `received`, others in `received_b`).
    fn download_from(&mut self, lan: &Netns, src: Ipv4Addr) -> Result<()> {
        let mut s = connect_from(lan, src, SocketAddrV4::new(WAN, SOURCE))?;
        s.set_read_timeout(Some(Duration::from_millis(300)))?;
        let ctr = if src == HOST_A {
            &self.received
        } else {
            &self.received_b
        };
        let (stop, ctr) = (Arc::clone(&self.stop), Arc::clone(ctr));
        self.threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        ctr.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            abort(s);
        }));
        Ok(())
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// `s` without ANSI colour sequences (`ESC [ … m`), which the modem's log may carry.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Per-second series on stderr: largest RTT of probes sent in each second, and the ISP queue
/// samples logged in it (they come every `MODEM_STATS_EVERY`, counted from the phase start).
fn print_series(name: &str, from: Instant, rtts: &[(Instant, Duration)], queue: &[u64]) {
    let per_sec = (1000 / MODEM_STATS_EVERY.as_millis().max(1)) as usize;
    let secs = rtts
        .iter()
        .map(|(s, _)| (*s - from).as_secs() as usize + 1)
        .max()
        .unwrap_or(0)
        .max(queue.len().div_ceil(per_sec.max(1)));
    for i in 0..secs {
        let worst = rtts
            .iter()
            .filter(|(s, _)| (*s - from).as_secs() as usize == i)
            .map(|(_, r)| r.as_millis())
            .max();
        let q = queue
            .iter()
            .skip(i * per_sec)
            .take(per_sec)
            .max()
            .map_or("-".into(), u64::to_string);
        eprintln!(
            "series {name} t={i:>3}s rtt_max_ms={} isp_queue_bytes={q}",
            worst.map_or("-".into(), |w| w.to_string())
        );
    }
}

/// Close `s` with a reset, discarding what its send buffer still holds: a plain close would
/// let the kernel go on sending it (tens of KB, seconds of this link) into the next phase.
fn abort(s: TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &linger);
    drop(s);
}

fn quantile(v: &[Duration], q: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort();
    // Nearest rank.
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{}", d.as_millis()))
}

#[derive(Debug, Default, Clone)]
struct PhaseResult {
    name: String,
    probes: usize,
    p50: Option<Duration>,
    p95: Option<Duration>,
    up_pct: Option<f64>,
    down_pct: Option<f64>,
    share_a: Option<f64>,
    share_b: Option<f64>,
    /// The ISP's downstream queue (bytes) during the phase: mean and largest sample.
    isp_queue_mean: Option<f64>,
    isp_queue_max: Option<u64>,
}

impl PhaseResult {
    fn json(&self) -> String {
        let o = |v: Option<f64>| v.map_or("null".into(), |v| format!("{v:.1}"));
        let d = |v: Option<Duration>| v.map_or("null".into(), |v| v.as_millis().to_string());
        format!(
            r#"{{"phase":"{}","probes":{},"rtt_p50_ms":{},"rtt_p95_ms":{},"up_goodput_pct":{},"down_goodput_pct":{},"share_a_pct":{},"share_b_pct":{},"isp_queue_mean_bytes":{},"isp_queue_max_bytes":{}}}"#,
            self.name,
            self.probes,
            d(self.p50),
            d(self.p95),
            o(self.up_pct),
            o(self.down_pct),
            o(self.share_a),
            o(self.share_b),
            o(self.isp_queue_mean),
            self.isp_queue_max.map_or("null".into(), |v| v.to_string())
        )
    }
}

struct Bench<'a> {
    args: &'a Args,
    topo: &'a Topology,
    modem: &'a Guarded,
    counters: Arc<Counters>,
    line_rate: f64,
}

impl Bench<'_> {
    /// A phase: `up` uploads and/or one download from HOST_A, or (`shares`) two hosts uploading,
    /// or (`dshares`) two hosts downloading, one flow against eight.
    fn phase(
        &self,
        name: &str,
        up: usize,
        down: bool,
        shares: bool,
        dshares: bool,
    ) -> Result<PhaseResult> {
        eprintln!("phase {name} …");
        let mut bulk = Bulk::new();
        if dshares {
            bulk.download_from(&self.topo.lan, HOST_A)?;
            for _ in 0..8 {
                bulk.download_from(&self.topo.lan, HOST_B)?;
            }
        } else if shares {
            bulk.upload(&self.topo.lan, HOST_A, SINK_A)?;
            for _ in 0..8 {
                bulk.upload(&self.topo.lan, HOST_B, SINK_B)?;
            }
        } else {
            for _ in 0..up {
                bulk.upload(&self.topo.lan, HOST_A, SINK_A)?;
            }
        }
        if down {
            bulk.download(&self.topo.lan)?;
        }
        let pinger = (self.args.probe_ms > 0)
            .then(|| Pinger::start(&self.topo.lan, Duration::from_millis(self.args.probe_ms)))
            .transpose()?;
        std::thread::sleep(Duration::from_secs(self.args.warmup_secs));
        let from = Instant::now();
        let q0 = modem_queue_samples(&self.modem.stderr()).len();
        let (a0, b0, d0, e0) = (
            self.counters.sink_a.load(Ordering::Relaxed),
            self.counters.sink_b.load(Ordering::Relaxed),
            bulk.received.load(Ordering::Relaxed),
            bulk.received_b.load(Ordering::Relaxed),
        );
        std::thread::sleep(Duration::from_secs(self.args.phase_secs));
        let to = Instant::now();
        let queue: Vec<u64> = modem_queue_samples(&self.modem.stderr())
            .into_iter()
            .skip(q0)
            .collect();
        let (a1, b1, d1, e1) = (
            self.counters.sink_a.load(Ordering::Relaxed),
            self.counters.sink_b.load(Ordering::Relaxed),
            bulk.received.load(Ordering::Relaxed),
            bulk.received_b.load(Ordering::Relaxed),
        );
        let secs = (to - from).as_secs_f64();
        bulk.stop();
        let timed = pinger.map(|p| p.finish(from, to)).unwrap_or_default();
        if self.args.series {
            print_series(name, from, &timed, &queue);
        }
        let rtts: Vec<Duration> = timed.iter().map(|(_, r)| *r).collect();
        let pct = |bytes: u64| 100.0 * bytes as f64 / secs / self.line_rate;
        let mut r = PhaseResult {
            name: name.into(),
            probes: rtts.len(),
            p50: quantile(&rtts, 0.5),
            p95: quantile(&rtts, 0.95),
            isp_queue_mean: (!queue.is_empty())
                .then(|| queue.iter().sum::<u64>() as f64 / queue.len() as f64),
            isp_queue_max: queue.iter().copied().max(),
            ..PhaseResult::default()
        };
        if up > 0 || shares {
            r.up_pct = Some(pct((a1 - a0) + (b1 - b0)));
        }
        if down || dshares {
            r.down_pct = Some(pct((d1 - d0) + (e1 - e0)));
        }
        if shares || dshares {
            let (a, b) = if dshares {
                ((d1 - d0) as f64, (e1 - e0) as f64)
            } else {
                ((a1 - a0) as f64, (b1 - b0) as f64)
            };
            if a + b > 0.0 {
                r.share_a = Some(100.0 * a / (a + b));
                r.share_b = Some(100.0 * b / (a + b));
            }
        }
        std::thread::sleep(Duration::from_secs(self.args.settle_secs));
        Ok(r)
    }
}

/// One download of the `starts` phase.
struct Start {
    from: Instant,
    /// Bytes received in each of its seconds.
    bytes: Vec<u64>,
    /// ISP queue samples from its start.
    queue: Vec<u64>,
}

impl Bench<'_> {
    /// Phase `starts`: a new download every 10 s while the probes run.
    fn starts(&self) -> Result<PhaseResult> {
        eprintln!("phase starts …");
        let pinger = Pinger::start(
            &self.topo.lan,
            Duration::from_millis(self.args.probe_ms.max(1)),
        )?;
        std::thread::sleep(Duration::from_secs(2));
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..self.args.starts {
            let q0 = modem_queue_samples(&self.modem.stderr()).len();
            let mut bulk = Bulk::new();
            let from = Instant::now();
            bulk.download(&self.topo.lan)?;
            let mut bytes = Vec::new();
            let mut last = 0;
            for s in 1..=10u64 {
                let at = from + Duration::from_secs(s);
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                let r = bulk.received.load(Ordering::Relaxed);
                bytes.push(r - last);
                last = r;
            }
            bulk.stop();
            let queue = modem_queue_samples(&self.modem.stderr())
                .into_iter()
                .skip(q0)
                .collect();
            starts.push(Start { from, bytes, queue });
        }
        let t1 = Instant::now();
        let timed = pinger.finish(t0, t1);
        let per_sec = (1000 / MODEM_STATS_EVERY.as_millis().max(1)) as usize;
        let mut first5 = Vec::new();
        let mut all = Vec::new();
        let mut total = 0u64;
        for (k, st) in starts.iter().enumerate() {
            let within = |secs: u64| -> Vec<Duration> {
                timed
                    .iter()
                    .filter(|(s, _)| *s >= st.from && *s < st.from + Duration::from_secs(secs))
                    .map(|(_, r)| *r)
                    .collect()
            };
            let (f5, f10) = (within(5), within(10));
            println!(
                "start {k}: p95 first 5 s {} ms, p95 10 s {} ms, goodput {:.1} %",
                ms(quantile(&f5, 0.95)),
                ms(quantile(&f10, 0.95)),
                100.0 * st.bytes.iter().sum::<u64>() as f64 / 10.0 / self.line_rate
            );
            for i in 0..10usize {
                let worst = timed
                    .iter()
                    .filter(|(s, _)| *s >= st.from && (*s - st.from).as_secs() as usize == i)
                    .map(|(_, r)| r.as_millis())
                    .max();
                let q = st
                    .queue
                    .iter()
                    .skip(i * per_sec)
                    .take(per_sec)
                    .max()
                    .map_or("-".into(), u64::to_string);
                println!(
                    "start {k} t={i}s rtt_max_ms={} bytes={} isp_queue_bytes={q}",
                    worst.map_or("-".into(), |w| w.to_string()),
                    st.bytes.get(i).copied().unwrap_or(0)
                );
            }
            total += st.bytes.iter().sum::<u64>();
            first5.extend(f5);
            all.extend(f10);
        }
        let secs = 10.0 * starts.len().max(1) as f64;
        println!(
            "starts: p95 over first 5 s of each {} ms, over each whole 10 s {} ms",
            ms(quantile(&first5, 0.95)),
            ms(quantile(&all, 0.95))
        );
        std::thread::sleep(Duration::from_secs(self.args.settle_secs));
        Ok(PhaseResult {
            name: "starts".into(),
            probes: first5.len(),
            p50: quantile(&first5, 0.5),
            p95: quantile(&first5, 0.95),
            down_pct: Some(100.0 * total as f64 / secs / self.line_rate),
            ..PhaseResult::default()
        })
    }
}

/// A private directory removed on drop (the config, rules, tokens and the pty link).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let p = std::env::temp_dir().join(format!("link-bench-{}", unique_tag()));
        std::fs::create_dir(&p).with_context(|| format!("mkdir {}", p.display()))?;
        Ok(TempDir(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &Args) -> Result<()> {
    if !netns_available("link-bench") {
        std::process::exit(2);
    }
    let topo = Topology::new(&unique_tag()).context("topology")?;
    if let Some(cc) = &args.cc {
        for ns in [&topo.lan, &topo.wan] {
            ns.set_sysctl("net.ipv4.tcp_congestion_control", cc)
                .with_context(|| format!("congestion control {cc}"))?;
        }
    }
    let cc = topo
        .wan
        .exec_ok(&["sysctl", "-n", "net.ipv4.tcp_congestion_control"])
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    topo.lan
        .add_addr("lan0", &format!("{HOST_B}/24"))
        .context("second LAN address")?;
    let dir = TempDir::new()?;
    let pty = dir.path().join("modem0");
    let mut c = topo.wan.command(sibling("mock-modem")?);
    c.arg("--pty-link")
        .arg(&pty)
        .args(["--baud", &args.baud.to_string()])
        .args(["--user", "demo:secret", "--auth", "chap"])
        .args(["--tun", "wan0", "--tun-addr", "203.0.113.1/24"])
        .args([
            "--stats-every",
            &MODEM_STATS_EVERY.as_secs_f64().to_string(),
        ]);
    if let Some(b) = args.down_buffer {
        c.args(["--down-buffer", &b.to_string()]);
    }
    let modem = Guarded::spawn(c)?;
    modem.wait_for_line("->", Duration::from_secs(20))?;
    let cfg = dir.path().join("mserver.toml");
    std::fs::write(&cfg, mserver_config(dir.path(), &pty, args)?)?;
    let mut c = topo.gw.command(sibling("mserver")?);
    c.arg("--config").arg(&cfg).env("RUST_LOG", "warn");
    let server = Guarded::spawn(c)?;
    if let Err(e) = wait_for_tcp(
        &topo.gw,
        SocketAddr::from((Ipv4Addr::LOCALHOST, RPC_PORT)),
        Duration::from_secs(30),
    ) {
        bail!("mserver did not listen: {e}\n{}", server.stderr());
    }
    mclient(&topo.gw, dir.path(), &["login"])?;
    mclient(&topo.gw, dir.path(), &["dial", "isp1"])?;
    wait_for_route(&topo.gw, "default dev masq0", Duration::from_secs(30))?;
    let counters = Arc::new(Counters::default());
    start_wan_servers(&topo.wan, &counters)?;
    let bench = Bench {
        args,
        topo: &topo,
        modem: &modem,
        counters,
        line_rate: f64::from(args.baud) / 10.0,
    };
    let want: Vec<&str> = args.phases.split(',').map(str::trim).collect();
    let mut results = Vec::new();
    for (name, up, down, shares, dshares) in [
        ("idle", 0, false, false, false),
        ("up", 1, false, false, false),
        ("down", 0, true, false, false),
        ("both", 1, true, false, false),
        ("shares", 0, false, true, false),
        ("dshares", 0, false, false, true),
    ] {
        if want.contains(&name) {
            results.push(bench.phase(name, up, down, shares, dshares)?);
        }
    }
    if want.contains(&"starts") {
        results.push(bench.starts()?);
    }
    let status = mclient(&topo.gw, dir.path(), &["--json", "status", "isp1"]).unwrap_or_default();
    let label = format!(
        "scheduler={} ingress_shaping={} download_window={} window_packets={} isp_down_buffer={} cc={cc} probe_ms={}",
        args.scheduler.as_deref().unwrap_or("(default)"),
        args.ingress_shaping
            .map_or("off".to_string(), |f| f.to_string()),
        args.download_window
            .map_or("(default)".to_string(), |f| f.to_string()),
        args.window_packets
            .map_or("(default)".to_string(), |f| f.to_string()),
        args.down_buffer
            .map_or("unbounded".to_string(), |b| b.to_string()),
        args.probe_ms
    );
    println!("link-bench: baud {} {label}", args.baud);
    println!(
        "{:<8} {:>6} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>11}",
        "phase",
        "probes",
        "p50 ms",
        "p95 ms",
        "up %",
        "down %",
        "host A %",
        "host B %",
        "ISP q avg/max B"
    );
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    for r in &results {
        println!(
            "{:<8} {:>6} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>11}",
            r.name,
            r.probes,
            ms(r.p50),
            ms(r.p95),
            f(r.up_pct),
            f(r.down_pct),
            f(r.share_a),
            f(r.share_b),
            format!(
                "{}/{}",
                r.isp_queue_mean.map_or("-".into(), |v| format!("{v:.0}")),
                r.isp_queue_max.map_or("-".into(), |v| v.to_string())
            )
        );
    }
    let phases: Vec<String> = results.iter().map(PhaseResult::json).collect();
    println!(
        "RESULT {{\"baud\":{},\"label\":\"{label}\",\"phases\":[{}]}}",
        args.baud,
        phases.join(",")
    );
    if !status.trim().is_empty() {
        println!("STATUS {}", status.trim());
    }
    drop(server);
    drop(modem);
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    run(&args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_queue_samples_with_or_without_colours() {
        let log = "2026-11-30T18:40:00Z  INFO mock_modem: line stats down_queued=1505 down_queue_peak=9000 down_dropped=0\n\
                   2026-11-30T18:40:00Z  INFO mock_modem: call up\n\
                   \u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mmock_modem\u{1b}[0m\u{1b}[2m:\u{1b}[0m line stats \u{1b}[3mdown_queued\u{1b}[0m\u{1b}[2m=\u{1b}[0m0 \u{1b}[3mdown_queue_peak\u{1b}[0m\u{1b}[2m=\u{1b}[0m9000\n";
        assert_eq!(modem_queue_samples(log), vec![1505, 0]);
    }
}
