//! Network-namespace harness for the end-to-end tests: creates and always deletes namespaces, veth pairs,
//! addresses and routes, runs bounded commands and guarded child processes inside them. It must not start
//! `mserver` or the mock modem itself (the scenarios do) and never touches the host's own namespace.
//!
//! # The fixed test topology
//!
//! ```text
//!  mqlan-<tag>                    mqgw-<tag>                              mqwan-<tag>
//!  LAN host                       gateway (mserver runs here)             "internet" (mock modem + mock ISP)
//!  lan0 192.168.77.2/24 ──veth── gw0 192.168.77.1/24                     wan0 (TUN) 203.0.113.1/24
//!  default via 192.168.77.1       ip_forward=1                            route 10.64.0.0/24 dev wan0
//!                                 masq0 (TUN, created by mserver;         real servers bind 203.0.113.1
//!                                 default route via masq0 when up)
//!                                 modem ── pseudo-terminal (a path, so it crosses namespaces) ── mock modem
//! ```
//!
//! - `<tag>` is short and unique per test ([`unique_tag`]: pid and a counter) so tests run in parallel.
//!   Interface names are fixed and live in different namespaces, so they never collide.
//! - [`Topology::new`] builds the three namespaces, the LAN veth, addresses, routes and forwarding; it does
//!   not start `mserver` or the mock modem/ISP. [`Topology::add_direct_wan_link`] adds a plain veth
//!   gateway⇄WAN (no modem, no NAT) for the harness's own tests only.
//! - Everything is torn down on `Drop`, also on panic: guarded children are killed by process group and
//!   reaped, then each namespace's remaining processes are killed by PID and the namespace deleted.
//! - Without root or without `ip netns`, [`netns_available`] prints `SKIPPED: …` and tests return early.
//!
//! # A scenario's skeleton
//!
//! ```no_run
//! use std::time::Duration;
//! use masqdial_tests::netns::{self, netns_available, unique_tag, Topology, WAN_SERVER_ADDR};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! if !netns_available("my_scenario") {
//!     return Ok(());
//! }
//! let topo = Topology::new(&unique_tag())?;
//! // The integrator starts the mock modem/ISP in topo.wan and mserver in topo.gw, e.g.
//! // let isp = topo.wan.spawn(&[MOCK_MODEM, "--pty", &path, ...])?;
//! // let server = netns::Guarded::spawn({ let mut c = topo.gw.command(MSERVER); c.arg("--config").arg(&cfg); c })?;
//! // ... dial, then:
//! netns::wait_for_route(&topo.gw, "default dev masq0", Duration::from_secs(30))?;
//! let _servers = topo.start_wan_servers("/path/to/wan-servers", &["--ftp-file-size", "300000"])?;
//! assert!(topo.lan.ping(WAN_SERVER_ADDR, 2)?);
//! let ok = topo.lan.run(
//!     "/path/to/lan-client",
//!     &["tcp-fetch", "203.0.113.1:8081", "--bytes", "204800"],
//!     Duration::from_secs(60),
//! )?;
//! assert!(ok.starts_with("OK tcp-fetch"));
//! # Ok(())
//! # }
//! // Dropping `topo` (and the guards, declared later so dropped first) removes everything.
//! ```

mod guarded;

pub use guarded::Guarded;

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// Namespace name prefix of the LAN host.
pub const LAN_NS_PREFIX: &str = "mqlan";
/// Namespace name prefix of the gateway (where `mserver` runs).
pub const GW_NS_PREFIX: &str = "mqgw";
/// Namespace name prefix of the "internet" (mock modem, mock ISP, real servers).
pub const WAN_NS_PREFIX: &str = "mqwan";

/// LAN host's veth interface (in the LAN namespace).
pub const LAN_IF: &str = "lan0";
/// Gateway's LAN-side veth interface (in the gateway namespace).
pub const GW_LAN_IF: &str = "gw0";
/// TUN interface that `mserver` creates in the gateway namespace.
pub const GW_TUN_IF: &str = "masq0";
/// TUN interface that the mock ISP creates in the WAN namespace.
pub const WAN_TUN_IF: &str = "wan0";

/// LAN host address (`lan0`).
pub const LAN_HOST_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
/// Gateway's LAN address (`gw0`), the LAN host's default route.
pub const LAN_GW_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// Prefix length of the LAN.
pub const LAN_PREFIX_LEN: u8 = 24;
/// LAN network in CIDR form.
pub const LAN_NET: &str = "192.168.77.0/24";
/// Address of the "internet" servers in the WAN namespace (`wan0`).
pub const WAN_SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// Prefix length of the WAN server network.
pub const WAN_PREFIX_LEN: u8 = 24;
/// The mock ISP's address pool, routed via `wan0` in the WAN namespace.
pub const ISP_POOL: &str = "10.64.0.0/24";
/// Gateway-side address of the harness-only direct veth to the WAN namespace.
pub const DIRECT_WAN_GW_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
/// Gateway-side interface of the harness-only direct veth.
pub const DIRECT_WAN_GW_IF: &str = "gwwan0";

/// Default timeout of the small `ip`/`sysctl` commands the harness runs.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(10);

/// Grace period between SIGTERM and SIGKILL when a guarded child is stopped.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Poll interval of the bounded wait loops.
const POLL: Duration = Duration::from_millis(20);

/// Errors of the harness operations.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The program could not be started at all.
    #[error("cannot start `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The command ran and exited unsuccessfully.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: String,
        /// Its standard error (trimmed).
        stderr: String,
    },
    /// The command did not finish in time and was killed.
    #[error("`{cmd}` timed out after {after:?}; stdout: {stdout:?}; stderr: {stderr:?}")]
    Timeout {
        /// The command line.
        cmd: String,
        /// The timeout that expired.
        after: Duration,
        /// What it printed on stdout before it was killed.
        stdout: String,
        /// What it printed on stderr before it was killed.
        stderr: String,
    },
    /// A bounded wait for a condition expired.
    #[error("timed out after {after:?} waiting for {what}")]
    WaitTimeout {
        /// What was awaited.
        what: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// A guarded child exited while we waited for its output.
    #[error("`{cmd}` exited while waiting for {what}; stdout: {stdout:?}; stderr: {stderr:?}")]
    ChildExited {
        /// The command line.
        cmd: String,
        /// What was awaited.
        what: String,
        /// Its stdout so far.
        stdout: String,
        /// Its stderr so far.
        stderr: String,
    },
    /// Entering a namespace from a thread failed.
    #[error("cannot enter namespace {ns}: {reason}")]
    Enter {
        /// The namespace.
        ns: String,
        /// Why.
        reason: String,
    },
    /// A thread running inside a namespace panicked.
    #[error("thread inside namespace {0} panicked")]
    ThreadPanicked(String),
}

/// Result type of this module.
pub type Result<T, E = NetnsError> = std::result::Result<T, E>;

/// Returns true when network namespaces can be used (root and a working `ip netns add`). Otherwise prints
/// `SKIPPED: <test_name> needs root and network namespaces (ip netns)` to stderr and returns false; the
/// caller must then return early.
pub fn netns_available(test_name: &str) -> bool {
    let skip = |why: &str| {
        // masqdial-testkit writes to the stderr handle, not with `eprintln!`, so the test
        // harness's output capture does not hide it: a skipped test must never look like a
        // silent pass.
        masqdial_testkit::skip(
            test_name,
            &format!("root and network namespaces (ip netns) [{why}]"),
        );
        false
    };
    if !nix::unistd::geteuid().is_root() {
        return skip("not root");
    }
    let probe = format!("mqprobe-{}", unique_tag());
    let added = exec_command(ip_command(&["netns", "add", &probe]), CMD_TIMEOUT);
    match added {
        Ok(out) if out.status.success() => {
            let _ = exec_command(ip_command(&["netns", "del", &probe]), CMD_TIMEOUT);
            true
        }
        Ok(out) => skip(&format!(
            "ip netns add failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => skip(&e.to_string()),
    }
}

/// A tag unique in this machine for the life of this process: `<pid>-<counter>`.
pub fn unique_tag() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes namespaces `mq*-<pid>-<n>` left behind by test processes that no longer exist (killed before
/// their `Drop` ran). Returns how many were deleted.
pub fn sweep_stale() -> usize {
    let Ok(out) = exec_command(ip_command(&["netns", "list"]), CMD_TIMEOUT) else {
        return 0;
    };
    let mut deleted = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = stale_owner_pid(name) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(o) = exec_command(ip_command(&["netns", "del", name]), CMD_TIMEOUT) {
            if o.status.success() {
                deleted += 1;
            }
        }
    }
    deleted
}

/// The owner pid encoded in a harness namespace name (`mqlan-123-0` → 123), if it is one of ours.
fn stale_owner_pid(name: &str) -> Option<u32> {
    let rest = [LAN_NS_PREFIX, GW_NS_PREFIX, WAN_NS_PREFIX, "mqprobe", "mqh"]
        .iter()
        .find_map(|p| name.strip_prefix(p).and_then(|r| r.strip_prefix('-')))?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// `ip ARGS…` as a command.
fn ip_command(args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(args);
    c
}

/// Renders a command line for messages.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with stdin closed, killing its process group after `timeout`. Returns its
/// output whatever the exit status.
pub fn exec_command(mut cmd: Command, timeout: Duration) -> Result<Output> {
    let desc = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| NetnsError::Spawn {
        cmd: desc.clone(),
        source,
    })?;
    let out_reader = child.stdout.take().map(read_all_thread);
    let err_reader = child.stderr.take().map(read_all_thread);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => break None,
        }
    };
    let status = match status {
        Some(s) => s,
        None => {
            kill_group(child.id());
            let _ = child.wait();
            return Err(NetnsError::Timeout {
                cmd: desc,
                after: timeout,
                stdout: join_reader(out_reader),
                stderr: join_reader(err_reader),
            });
        }
    };
    Ok(Output {
        status,
        stdout: join_reader(out_reader).into_bytes(),
        stderr: join_reader(err_reader).into_bytes(),
    })
}

/// Like [`exec_command`], but a non-zero exit is an error; returns stdout.
pub fn exec_command_ok(cmd: Command, timeout: Duration) -> Result<String> {
    let desc = describe(&cmd);
    let out = exec_command(cmd, timeout)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetnsError::Failed {
            cmd: desc,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Reads a pipe to its end on a thread; the result arrives on the returned channel.
fn read_all_thread<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// Collects a pipe reader's text, waiting at most 2 s (a grandchild may still hold the pipe open).
fn join_reader(rx: Option<mpsc::Receiver<String>>) -> String {
    rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(2)).ok())
        .unwrap_or_default()
}

/// Sends SIGKILL to the process group led by `pid` (ignoring "no such process").
fn kill_group(pid: u32) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = signal::killpg(Pid::from_raw(p), Signal::SIGKILL);
    }
}

/// Polls `cond` every `interval` until it is true or `timeout` expires (a bounded loop).
pub fn wait_until(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(NetnsError::WaitTimeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        thread::sleep(interval);
    }
}

/// A network namespace owned by the test; deleted on drop (its leftover processes are killed by PID).
pub struct Netns {
    name: String,
}

impl fmt::Debug for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Netns({})", self.name)
    }
}

impl Netns {
    /// Creates namespace `name` (`ip netns add`) and brings its `lo` up.
    pub fn create(name: &str) -> Result<Netns> {
        exec_command_ok(ip_command(&["netns", "add", name]), CMD_TIMEOUT)?;
        let ns = Netns {
            name: name.to_owned(),
        };
        ns.link_up("lo")?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program` as a command, for the caller to add arguments, env and run via
    /// [`exec_command`] or [`Guarded::spawn`].
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `args` inside the namespace with a timeout; returns the output whatever the exit status.
    pub fn exec(&self, args: &[&str], timeout: Duration) -> Result<Output> {
        let (prog, rest) = split_args(args);
        let mut c = self.command(prog);
        c.args(rest);
        exec_command(c, timeout)
    }

    /// Runs `args` inside the namespace ([`CMD_TIMEOUT`]); a non-zero exit is an error; returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> Result<String> {
        let (prog, rest) = split_args(args);
        let mut c = self.command(prog);
        c.args(rest);
        exec_command_ok(c, CMD_TIMEOUT)
    }

    /// Runs `ip -n NAME ARGS…`; returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut c = ip_command(&["-n", &self.name]);
        c.args(args);
        exec_command_ok(c, CMD_TIMEOUT)
    }

    /// Brings interface `dev` up.
    pub fn link_up(&self, dev: &str) -> Result<()> {
        self.ip(&["link", "set", dev, "up"]).map(drop)
    }

    /// Adds address `cidr` (e.g. `192.168.77.2/24`) to `dev`.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", dev]).map(drop)
    }

    /// Adds a route to `dest` (`default` or a CIDR) via a gateway and/or out of a device.
    pub fn add_route(&self, dest: &str, via: Option<Ipv4Addr>, dev: Option<&str>) -> Result<()> {
        let via = via.map(|v| v.to_string());
        let mut args = vec!["route", "add", dest];
        if let Some(v) = via.as_deref() {
            args.extend(["via", v]);
        }
        if let Some(d) = dev {
            args.extend(["dev", d]);
        }
        self.ip(&args).map(drop)
    }

    /// Sets a sysctl inside the namespace (e.g. `net.ipv4.ip_forward`, `1`).
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec_ok(&["sysctl", "-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// True when interface `dev` exists in the namespace.
    pub fn has_link(&self, dev: &str) -> bool {
        self.ip(&["link", "show", "dev", dev]).is_ok()
    }

    /// True when `addr` is assigned to some interface of the namespace.
    pub fn has_addr(&self, addr: Ipv4Addr) -> bool {
        self.ip(&["-o", "-4", "addr", "show"])
            .map(|s| s.contains(&format!(" {addr}/")))
            .unwrap_or(false)
    }

    /// Output of `ip -4 route show` (for assertions on routes the server installs).
    pub fn routes(&self) -> Result<String> {
        self.ip(&["-4", "route", "show"])
    }

    /// Starts `args` inside the namespace as a guarded child (killed and reaped on drop).
    pub fn spawn(&self, args: &[&str]) -> Result<Guarded> {
        let (prog, rest) = split_args(args);
        let mut c = self.command(prog);
        c.args(rest);
        Guarded::spawn(c)
    }

    /// Runs `f` on a fresh thread that has joined this namespace (setns affects only that thread);
    /// sockets created there stay in the namespace and may be returned.
    pub fn run_in<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        let name = self.name.clone();
        let handle = thread::spawn(move || -> Result<R> {
            let file = File::open(&path).map_err(|e| NetnsError::Enter {
                ns: name.clone(),
                reason: e.to_string(),
            })?;
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Enter {
                ns: name.clone(),
                reason: e.to_string(),
            })?;
            Ok(f())
        });
        handle
            .join()
            .map_err(|_| NetnsError::ThreadPanicked(self.name.clone()))?
    }

    /// Runs `program ARGS…` inside the namespace with a timeout; a non-zero exit is an error carrying its
    /// stderr; returns stdout (e.g. the `OK …` line of `lan-client`).
    pub fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<String> {
        let mut c = self.command(program);
        c.args(args);
        exec_command_ok(c, timeout)
    }

    /// Sends `count` ICMP echo requests to `addr` from inside the namespace (2 s reply wait each;
    /// a raw socket of our own, so no `ping` program is needed); true when at least one answer
    /// came back.
    pub fn ping(&self, addr: Ipv4Addr, count: u32) -> Result<bool> {
        let count = u16::try_from(count).unwrap_or(u16::MAX);
        let res =
            self.run_in(move || crate::lanclient::icmp_echo(addr, count, Duration::from_secs(2)))?;
        match res {
            Ok(_) => Ok(true),
            Err(crate::lanclient::ClientError::Timeout(_)) => Ok(false),
            Err(e) => Err(NetnsError::Enter {
                ns: self.name.clone(),
                reason: format!("ICMP echo: {e}"),
            }),
        }
    }

    /// PIDs of the processes currently in the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        exec_command_ok(ip_command(&["netns", "pids", &self.name]), CMD_TIMEOUT)
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Anything still running inside was started by this test: kill it by PID so the namespace can go.
        for _ in 0..3 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            thread::sleep(Duration::from_millis(50));
        }
        for attempt in 0..5 {
            match exec_command(ip_command(&["netns", "del", &self.name]), CMD_TIMEOUT) {
                Ok(o) if o.status.success() => return,
                _ => thread::sleep(Duration::from_millis(100 * (attempt + 1))),
            }
        }
        eprintln!("netns harness: could not delete namespace {}", self.name);
    }
}

fn split_args<'a>(args: &'a [&'a str]) -> (&'a str, &'a [&'a str]) {
    match args.split_first() {
        Some((p, rest)) => (p, rest),
        None => ("true", &[]),
    }
}

/// Creates a veth pair `a_if` (in `a`, address `a_cidr`) ⇄ `b_if` (in `b`, address `b_cidr`), both up.
/// The interfaces are created directly inside their namespaces, so names never clash in the host.
pub fn veth_pair(
    a: &Netns,
    a_if: &str,
    a_cidr: &str,
    b: &Netns,
    b_if: &str,
    b_cidr: &str,
) -> Result<()> {
    exec_command_ok(
        ip_command(&[
            "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
            &b.name,
        ]),
        CMD_TIMEOUT,
    )?;
    a.add_addr(a_if, a_cidr)?;
    b.add_addr(b_if, b_cidr)?;
    a.link_up(a_if)?;
    b.link_up(b_if)
}

/// Polls until a TCP connection to `addr` from inside `ns` succeeds, or `timeout` expires.
pub fn wait_for_tcp(ns: &Netns, addr: SocketAddr, timeout: Duration) -> Result<()> {
    let connected = ns.run_in(move || {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let attempt = left.min(Duration::from_secs(1));
            if TcpStream::connect_timeout(&addr, attempt).is_ok() {
                return true;
            }
            thread::sleep(Duration::from_millis(50).min(left));
        }
    })?;
    if connected {
        Ok(())
    } else {
        Err(NetnsError::WaitTimeout {
            what: format!("TCP {addr} in {}", ns.name),
            after: timeout,
        })
    }
}

/// Polls until `ip -4 route show` in `ns` contains `needle` (e.g. `default dev masq0` once the link is up).
pub fn wait_for_route(ns: &Netns, needle: &str, timeout: Duration) -> Result<()> {
    wait_until(
        &format!("route {needle:?} in {}", ns.name),
        timeout,
        Duration::from_millis(50),
        || ns.routes().map(|r| r.contains(needle)).unwrap_or(false),
    )
}

/// Polls until interface `dev` exists in `ns` (e.g. `masq0` created by `mserver`).
pub fn wait_for_link(ns: &Netns, dev: &str, timeout: Duration) -> Result<()> {
    wait_until(
        &format!("link {dev} in {}", ns.name),
        timeout,
        Duration::from_millis(50),
        || ns.has_link(dev),
    )
}

/// Polls until `addr` is assigned in `ns` (e.g. 203.0.113.1 on the mock ISP's `wan0`).
pub fn wait_for_addr(ns: &Netns, addr: Ipv4Addr, timeout: Duration) -> Result<()> {
    wait_until(
        &format!("address {addr} in {}", ns.name),
        timeout,
        Duration::from_millis(50),
        || ns.has_addr(addr),
    )
}

/// The three namespaces of the fixed topology (see the module docs), deleted on drop.
#[derive(Debug)]
pub struct Topology {
    tag: String,
    /// The LAN host namespace `mqlan-<tag>`.
    pub lan: Netns,
    /// The gateway namespace `mqgw-<tag>` (run `mserver` here).
    pub gw: Netns,
    /// The "internet" namespace `mqwan-<tag>` (mock modem/ISP and wan-servers run here).
    pub wan: Netns,
}

impl Topology {
    /// Builds the LAN, gateway and WAN namespaces: veth `lan0`⇄`gw0` with 192.168.77.2/24 and
    /// 192.168.77.1/24, the LAN host's default route via the gateway, and forwarding on in the gateway.
    /// The WAN namespace is left empty (lo up) for the mock ISP's `wan0`.
    pub fn new(tag: &str) -> Result<Topology> {
        sweep_stale();
        let lan = Netns::create(&format!("{LAN_NS_PREFIX}-{tag}"))?;
        let gw = Netns::create(&format!("{GW_NS_PREFIX}-{tag}"))?;
        let wan = Netns::create(&format!("{WAN_NS_PREFIX}-{tag}"))?;
        veth_pair(
            &lan,
            LAN_IF,
            &format!("{LAN_HOST_ADDR}/{LAN_PREFIX_LEN}"),
            &gw,
            GW_LAN_IF,
            &format!("{LAN_GW_ADDR}/{LAN_PREFIX_LEN}"),
        )?;
        lan.add_route("default", Some(LAN_GW_ADDR), None)?;
        gw.set_sysctl("net.ipv4.ip_forward", "1")?;
        Ok(Topology {
            tag: tag.to_owned(),
            lan,
            gw,
            wan,
        })
    }

    /// The tag this topology was built with.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Starts `wan-servers` (path `bin`, e.g. `env!("CARGO_BIN_EXE_wan-servers")`) in the WAN namespace
    /// bound to 203.0.113.1, waiting up to 20 s for the address to appear (the mock ISP's `wan0`) and for
    /// its `READY` line. `extra` is passed on (e.g. `["--ftp-file-size", "300000"]`).
    pub fn start_wan_servers(&self, bin: &str, extra: &[&str]) -> Result<Guarded> {
        let mut c = self.wan.command(bin);
        c.args([
            "--bind",
            &WAN_SERVER_ADDR.to_string(),
            "--bind-wait-secs",
            "20",
        ])
        .args(extra);
        let g = Guarded::spawn(c)?;
        g.wait_for_line("READY", Duration::from_secs(30))?;
        Ok(g)
    }

    /// Harness tests only: a plain veth gateway⇄WAN (`gwwan0` 203.0.113.254/24 ⇄ `wan0` 203.0.113.1/24),
    /// a route back to the LAN in the WAN namespace, and the gateway's default route via it. Routed, no
    /// modem and no NAT — the WAN servers then see the LAN host's own address.
    pub fn add_direct_wan_link(&self) -> Result<()> {
        veth_pair(
            &self.gw,
            DIRECT_WAN_GW_IF,
            &format!("{DIRECT_WAN_GW_ADDR}/{WAN_PREFIX_LEN}"),
            &self.wan,
            WAN_TUN_IF,
            &format!("{WAN_SERVER_ADDR}/{WAN_PREFIX_LEN}"),
        )?;
        self.wan
            .add_route(LAN_NET, Some(DIRECT_WAN_GW_ADDR), None)?;
        self.gw.add_route("default", Some(WAN_SERVER_ADDR), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_owner_pid_parses_only_harness_names() {
        assert_eq!(stale_owner_pid("mqlan-123-0"), Some(123));
        assert_eq!(stale_owner_pid("mqgw-7-12"), Some(7));
        assert_eq!(stale_owner_pid("mqwan-99-3"), Some(99));
        assert_eq!(stale_owner_pid("mqprobe-5-1"), Some(5));
        assert_eq!(stale_owner_pid("mqlan-abc-0"), None);
        assert_eq!(stale_owner_pid("mqlan-123"), None);
        assert_eq!(stale_owner_pid("other-123-0"), None);
        assert_eq!(stale_owner_pid("mqlanx-1-2"), None);
    }

    #[test]
    fn unique_tags_differ() {
        let a = unique_tag();
        let b = unique_tag();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{}-", std::process::id())));
    }

    #[test]
    fn exec_command_reports_status_and_output() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = exec_command(c, Duration::from_secs(10)).expect("sh runs");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    }

    #[test]
    fn exec_command_times_out_and_kills() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo started; sleep 30"]);
        // 5 s for `sh` to start and print on a loaded box; the sleep outlasts it by far.
        let err = exec_command(c, Duration::from_secs(5)).expect_err("must time out");
        match err {
            NetnsError::Timeout { stdout, .. } => assert_eq!(stdout, "started\n"),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn guarded_child_lines_and_stop() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo hello; echo READY now; sleep 30"]);
        let mut g = Guarded::spawn(c).expect("sh runs");
        let line = g
            .wait_for_line("READY", Duration::from_secs(10))
            .expect("READY printed");
        assert_eq!(line, "READY now");
        assert!(g.try_status().is_none());
        let status = g.stop().expect("reaped");
        assert!(!status.success());
        assert!(g.stdout().starts_with("hello\n"));
    }

    #[test]
    fn guarded_child_exit_ends_wait() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo oops >&2; exit 2"]);
        let g = Guarded::spawn(c).expect("sh runs");
        match g.wait_for_line("READY", Duration::from_secs(10)) {
            Err(NetnsError::ChildExited { stderr, .. }) => assert!(stderr.contains("oops")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
