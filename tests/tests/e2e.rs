//! End-to-end over real network namespaces (root only; elsewhere each test prints SKIPPED):
//! a LAN host behind `mserver` (TUN `masq0` in the gateway namespace), the mock modem on a
//! pseudo-terminal, the mock ISP bridged to TUN `wan0` in a WAN namespace where real servers
//! run. Everything the LAN host does crosses our PPP link and nat-core.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use masqdial_tests::netns::{
    exec_command, netns_available, unique_tag, wait_for_route, wait_for_tcp, Guarded, Topology,
};

const MOCK_MODEM: &str = env!("CARGO_BIN_EXE_mock-modem");
const WAN_SERVERS: &str = env!("CARGO_BIN_EXE_wan-servers");
const LAN_CLIENT: &str = env!("CARGO_BIN_EXE_lan-client");
const PORT: u16 = 2224;

/// `mserver` and `mclient` are other packages' binaries: `cargo test --workspace` builds
/// them next to ours (target/<profile>/), where this finds them.
fn workspace_bin(name: &str) -> PathBuf {
    let here = PathBuf::from(MOCK_MODEM);
    let dir = here.parent().map(Path::to_path_buf).unwrap_or_default();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run the tests with `cargo test --workspace` (or build --bins first)",
        p.display()
    );
    p
}

struct World {
    // Field order is drop order: processes before namespaces.
    _servers: Guarded,
    mserver: Option<Guarded>,
    modem: Guarded,
    dir: tempfile::TempDir,
    topo: Topology,
}

/// Dial on demand for isp1: demo's LAN host (192.168.77.2) may dial it, 4 s idle timer,
/// UDP to port 8081 ignored by the activity filter.
const DEMAND_ISP1: &str = r#"demand = true
idle_timeout_s = 4
activity_filter = ["-p udp -d 0.0.0.0/0 8081 -j DENY"]
"#;
const DEMAND_HOSTS: &str = r#"
[[lan_hosts]]
host = "192.168.77.2"
user = "demo"
"#;

fn config(dir: &Path, pty: &Path, demand: bool) -> String {
    let hash = |pw: &str| masqdial_server::auth::hash_password(pw).expect("hash");
    let rules = dir.join("rules");
    std::fs::write(&rules, masqdial_server::persist::DEFAULT_RULESET).expect("write rules");
    format!(
        r#"
[server]
listen = "0.0.0.0:{PORT}"
state_dir = "{state}"
allow = ["127.0.0.0/8"]

[[users]]
name = "demo"
password_hash = "{demo}"
role = "user"
connections = ["isp1"]

[[users]]
name = "alice"
password_hash = "{alice}"
role = "user"
connections = ["isp1"]

[[users]]
name = "admin"
password_hash = "{admin}"
role = "admin"

[[modems]]
name = "modem0"
device = "{pty}"
baud = 115200
flow_control = "none"
init = ["ATZ"]

[[connections]]
name = "isp1"
modems = ["modem0"]
numbers = ["5550100"]
username = "demo"
password = "secret"
auth = "chap"
redial_attempts = 2
redial_delay_s = 1
redial_on_loss = true
routes = ["0.0.0.0/0"]
{isp1_extra}
[[connections]]
name = "isp2"
modems = ["modem0"]
numbers = ["5550200"]
username = "demo"
password = "secret"

[nat]
tun_name = "masq0"
ruleset = "{rules}"
{tail}"#,
        state = dir.join("state").display(),
        demo = hash("demo-pw"),
        alice = hash("alice-pw"),
        admin = hash("admin-pw"),
        pty = pty.display(),
        rules = rules.display(),
        isp1_extra = if demand { DEMAND_ISP1 } else { "" },
        tail = if demand { DEMAND_HOSTS } else { "" },
    )
}

impl World {
    fn new(test: &str) -> Option<World> {
        Self::with(test, false)
    }

    fn with(test: &str, demand: bool) -> Option<World> {
        Self::with_modem(test, demand, &["--baud", "0"])
    }

    /// As [`World::with`], with these extra `mock-modem` arguments (line rate, ISP mode).
    fn with_modem(test: &str, demand: bool, modem_args: &[&str]) -> Option<World> {
        if !netns_available(test) {
            return None;
        }
        let topo = Topology::new(&unique_tag()).expect("topology");
        let dir = tempfile::tempdir().expect("tempdir");
        let pty = dir.path().join("modem0");
        let mut c = topo.wan.command(MOCK_MODEM);
        c.args(["--pty-link"])
            .arg(&pty)
            .args(modem_args)
            .args(["--user", "demo:secret", "--auth", "chap"])
            .args(["--tun", "wan0", "--tun-addr", "203.0.113.1/24"]);
        let modem = Guarded::spawn(c).expect("mock modem");
        modem
            .wait_for_line("->", Duration::from_secs(20))
            .expect("mock modem pty");
        let servers = topo
            .start_wan_servers(WAN_SERVERS, &["--ftp-file-size", "300000"])
            .expect("wan servers");
        let cfg = dir.path().join("mserver.toml");
        std::fs::write(&cfg, config(dir.path(), &pty, demand)).expect("config");
        let mut w = World {
            _servers: servers,
            mserver: None,
            modem,
            dir,
            topo,
        };
        w.start_server();
        Some(w)
    }

    fn start_server(&mut self) {
        let cfg = self.dir.path().join("mserver.toml");
        let mut c = self.topo.gw.command(workspace_bin("mserver"));
        c.arg("--config").arg(&cfg).env("RUST_LOG", "info");
        let g = Guarded::spawn(c).expect("mserver");
        wait_for_tcp(
            &self.topo.gw,
            SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("mserver did not listen: {e}\n{}", g.stderr()));
        self.mserver = Some(g);
    }

    fn stop_server(&mut self) {
        if let Some(mut g) = self.mserver.take() {
            g.signal(nix::sys::signal::Signal::SIGTERM);
            let st = g.wait_timeout(Duration::from_secs(20));
            assert!(st.is_ok(), "mserver did not stop on SIGTERM");
        }
    }

    /// Open file descriptors of the mserver process.
    fn server_fds(&self) -> usize {
        let pid = self.mserver.as_ref().map(|g| g.pid()).unwrap_or(0);
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn tokens(&self, user: &str) -> PathBuf {
        self.dir.path().join(format!("tokens-{user}.toml"))
    }

    /// Run mclient as `user` inside the gateway namespace.
    fn mc(&self, user: &str, args: &[&str]) -> Output {
        self.mc_in(&self.topo.gw, "127.0.0.1", user, args)
    }

    fn mc_in(
        &self,
        ns: &masqdial_tests::netns::Netns,
        host: &str,
        user: &str,
        args: &[&str],
    ) -> Output {
        let mut c = ns.command(workspace_bin("mclient"));
        c.env("MASQDIAL_SERVER", format!("http://{host}:{PORT}"))
            .env("MCLIENT_TOKEN_FILE", self.tokens(user))
            .env("MCLIENT_PASSWORD", format!("{user}-pw"))
            .args(["--user", user])
            .args(args);
        exec_command(c, Duration::from_secs(60)).expect("mclient ran")
    }

    fn mc_ok(&self, user: &str, args: &[&str]) -> String {
        let o = self.mc(user, args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "mclient {args:?} as {user} failed: {}\n{out}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    fn lan(&self, args: &[&str]) -> String {
        let mut c = self.topo.lan.command(LAN_CLIENT);
        c.args(["--timeout", "60"]).args(args);
        let o = exec_command(c, Duration::from_secs(90)).expect("lan-client ran");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "lan-client {args:?} failed: {out}\n{}\nmserver:\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.mserver
                .as_ref()
                .map(|g| g.stderr())
                .unwrap_or_default()
        );
        out
    }

    /// The state of isp1 from `mclient --json status isp1` (parsed, not searched).
    fn link_state(&self) -> String {
        let o = self.mc("admin", &["--json", "status", "isp1"]);
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        v.get("links")
            .and_then(|l| l.as_array())
            .and_then(|l| l.first())
            .and_then(|l| l.get("state"))
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string()
    }

    fn wait_for(&self, what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "timed out waiting for {what}\nmserver:\n{}\nmodem:\n{}",
            self.mserver
                .as_ref()
                .map(|g| g.stderr())
                .unwrap_or_default(),
            self.modem.stderr()
        );
    }

    fn local_address(&self) -> String {
        let out = self.mc_ok("admin", &["--json", "status", "isp1"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("status json");
        v.get("links")
            .and_then(|l| l.as_array())
            .and_then(|l| l.first())
            .and_then(|l| l.get("local_address"))
            .and_then(|a| a.as_str())
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Processes first (mserver hangs up), then the modem, then namespaces (Topology).
        self.mserver.take();
    }
}

#[test]
fn lan_traffic_ftp_expiry_and_authorization_through_the_dialed_link() {
    let Some(w) = World::new("e2e_traffic") else {
        return;
    };
    for u in ["demo", "alice", "admin"] {
        w.mc_ok(u, &["login", "--insecure"]);
    }
    // A user not allowed on isp2 is refused before anything happens.
    let o = w.mc("demo", &["dial", "isp2"]);
    assert_eq!(o.status.code(), Some(4), "PERMISSION_DENIED exit code");
    // A client outside the allow-list (the LAN host itself) is closed at accept: to it the
    // server is unreachable (rc 8).
    let o = w.mc_in(
        &w.topo.lan,
        "192.168.77.1",
        "demo",
        &["login", "--insecure"],
    );
    assert_eq!(
        o.status.code(),
        Some(8),
        "LAN host outside allow-list: {:?}",
        o
    );

    let fds_idle = w.server_fds();
    assert!(fds_idle > 0, "cannot read mserver's fds");
    let out = w.mc_ok("demo", &["dial", "isp1"]);
    wait_for_route(&w.topo.gw, "default dev masq0", Duration::from_secs(10)).expect("route");
    let local = w.local_address();
    assert!(local.starts_with("10.64.0."), "IPCP address {local}");
    assert_eq!(
        out.lines().last(),
        Some(format!("isp1 is up ({local})").as_str()),
        "dial output: {out}"
    );
    // Short UDP timeout for the expiry check below (tcp/tcpfin: 0 = unchanged).
    let t = timeouts_of(&w.mc_ok("admin", &["--json", "timeouts", "set", "0", "0", "4"]));
    assert_eq!(
        (t[0], t[1], t[2]),
        (900, 120, 4),
        "ip_masq defaults but udp"
    );

    // ping, UDP echo, a 200 KB TCP transfer checked by hash, and what the server sees.
    assert!(w
        .topo
        .lan
        .ping(Ipv4Addr::new(203, 0, 113, 1), 3)
        .expect("ping ran"));
    let echo = w.lan(&["udp-echo", "203.0.113.1:7", "--count", "20"]);
    assert!(echo.starts_with("OK udp-echo count=20 "), "{echo}");
    let fetch = w.lan(&["tcp-fetch", "203.0.113.1:8081", "--bytes", "200000"]);
    assert!(fetch.contains("OK tcp-fetch bytes=200000"), "{fetch}");
    let seen = w.lan(&["udp-whoami", "203.0.113.1:8081"]);
    assert!(
        seen.contains(&format!("seen={local}:6")),
        "masqueraded source: {seen}"
    );

    // FTP through the helper, passive and active (the server refuses an unrewritten PORT).
    for mode in [
        &["--passive"][..],
        &["--passive", "--epsv"],
        &["--active"],
        &["--active", "--eprt"],
    ] {
        let mut args = vec!["ftp-get", "203.0.113.1", "--bytes", "300000"];
        args.extend_from_slice(mode);
        let out = w.lan(&args);
        assert!(out.contains("OK ftp-get bytes=300000"), "{mode:?}: {out}");
    }

    // The masquerade table shows the entries with the link's address and masq ports.
    let masq = w.mc_ok("demo", &["masq", "-n"]);
    assert!(masq.contains("192.168.77.2"), "{masq}");
    assert!(masq.contains("(61"), "masq ports: {masq}");
    let proc_view = w.mc_ok("demo", &["ipchains", "-M", "-L", "-n", "-v"]);
    assert!(proc_view.contains("IP masquerading entries"), "{proc_view}");

    // UDP entries (4 s timeout, set before any traffic) expire once traffic stops.
    w.lan(&["udp-echo", "203.0.113.1:7", "--count", "2"]);
    let m = w.mc_ok("demo", &["masq", "-n"]);
    assert!(
        m.lines().any(|l| l.starts_with("UDP")),
        "fresh UDP entry: {m}"
    );
    w.wait_for("UDP entries to expire", Duration::from_secs(30), || {
        let m = w.mc_ok("demo", &["masq", "-n"]);
        !m.lines().any(|l| l.starts_with("UDP"))
    });

    // Two holders: one hangs up and the link stays; the other hangs up and it drops.
    let joined = w.mc_ok("alice", &["dial", "isp1"]);
    let holders = joined
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("joined (up; held by "))
        .and_then(|l| l.strip_suffix(')'))
        .map(|h| {
            let mut h: Vec<&str> = h.split(", ").collect();
            h.sort_unstable();
            h
        });
    assert_eq!(holders, Some(vec!["alice", "demo"]), "{joined}");
    w.mc_ok("demo", &["hangup", "isp1"]);
    assert_eq!(w.link_state(), "up", "link stays up for alice");
    w.mc_ok("alice", &["hangup", "isp1"]);
    w.wait_for("link idle", Duration::from_secs(20), || {
        w.link_state() == "idle"
    });
    // Nothing leaked across a whole dial / traffic / hang-up cycle (serial port, pty,
    // sockets of finished rpcs and streams).
    w.wait_for(
        "fds back to the idle count",
        Duration::from_secs(10),
        || w.server_fds() <= fds_idle + 2,
    );
}

#[test]
fn carrier_loss_redials_with_a_new_address_and_restart_restores_rules() {
    let Some(mut w) = World::new("e2e_redial") else {
        return;
    };
    for u in ["demo", "admin"] {
        w.mc_ok(u, &["login", "--insecure"]);
    }
    w.mc_ok("demo", &["dial", "isp1"]);
    let first = w.local_address();
    assert!(first.starts_with("10.64.0."), "{first}");
    let echo = w.lan(&["udp-echo", "203.0.113.1:7", "--count", "3"]);
    assert!(echo.starts_with("OK udp-echo count=3 "), "{echo}");

    // Carrier loss while up: link goes down, redial_on_loss brings it back with a new address.
    let mut watch = {
        let mut c = w.topo.gw.command(workspace_bin("mclient"));
        c.env("MASQDIAL_SERVER", format!("http://127.0.0.1:{PORT}"))
            .env("MCLIENT_TOKEN_FILE", w.tokens("demo"))
            .arg("watch");
        Guarded::spawn(c).expect("mclient watch")
    };
    std::thread::sleep(Duration::from_millis(500));
    w.modem.signal(nix::sys::signal::Signal::SIGUSR1);
    w.wait_for(
        "a new address after carrier loss",
        Duration::from_secs(40),
        || {
            let a = w.local_address();
            !a.is_empty() && a != first
        },
    );
    let second = w.local_address();
    let seen = w.lan(&["udp-whoami", "203.0.113.1:8081"]);
    assert!(
        seen.contains(&format!("seen={second}:")),
        "new traffic uses {second}: {seen}"
    );
    // Holders were told on the stream.
    let text = watch.stdout();
    assert!(
        text.to_lowercase().contains("carrier") || text.to_lowercase().contains("dialing"),
        "watch stream did not show the loss: {text}"
    );
    watch.stop();

    // Rules and timeouts survive a restart.
    w.mc_ok(
        "admin",
        &[
            "ipchains",
            "-A",
            "input",
            "-p",
            "tcp",
            "-s",
            "198.51.100.0/24",
            "-j",
            "DENY",
        ],
    );
    w.mc_ok("admin", &["timeouts", "set", "1000", "100", "200"]);
    w.stop_server();
    w.start_server();
    w.mc_ok("admin", &["login", "--insecure"]);
    let rules = w.mc_ok("admin", &["--json", "ipchains", "-L", "input", "-n"]);
    let v: serde_json::Value = serde_json::from_str(rules.trim()).expect("ipchains json");
    let chain = v["chains"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["chain"] == "input"))
        .unwrap_or_else(|| panic!("no input chain: {rules}"));
    let restored: Vec<(&str, &str, &str)> = chain["rules"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| {
                    (
                        r["target"].as_str().unwrap_or_default(),
                        r["protocol"].as_str().unwrap_or_default(),
                        r["source"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        restored.contains(&("DENY", "tcp", "198.51.100.0/24")),
        "{rules}"
    );
    let t = timeouts_of(&w.mc_ok("admin", &["--json", "timeouts"]));
    assert_eq!((t[0], t[1], t[2]), (1000, 100, 200));
}

/// `[tcp, tcpfin, udp, icmp]` seconds from `mclient --json timeouts`.
fn timeouts_of(out: &str) -> [u64; 4] {
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("timeouts json");
    [
        "tcp_seconds",
        "tcpfin_seconds",
        "udp_seconds",
        "icmp_seconds",
    ]
    .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {out}")))
}

/// One counter of `mclient counters --json`.
fn counter(w: &World, name: &str) -> u64 {
    let out = w.mc_ok("admin", &["--json", "counters"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("counters json");
    v.get("counters")
        .and_then(|c| c.get(name))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no counter {name} in {out}"))
}

fn link_json(w: &World) -> serde_json::Value {
    let out = w.mc_ok("admin", &["--json", "status", "isp1"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("status json");
    v.get("links")
        .and_then(|l| l.get(0))
        .cloned()
        .unwrap_or_default()
}

/// From `src` in the LAN namespace: one UDP datagram to `to` (sent once, never resent) and
/// the wait for its echo; the time from send to echo.
fn udp_once(w: &World, src: Ipv4Addr, to: SocketAddr, wait: Duration) -> std::io::Result<Duration> {
    w.topo
        .lan
        .run_in(move || -> std::io::Result<Duration> {
            let s = std::net::UdpSocket::bind((src, 0))?;
            // Linux reports a non-fatal ICMP error (host unreachable) on a UDP socket only
            // with IP_RECVERR.
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
                .map_err(std::io::Error::from)?;
            s.connect(to)?;
            s.set_read_timeout(Some(wait))?;
            let payload = b"dial-on-demand probe";
            let t = Instant::now();
            s.send(payload)?;
            let mut buf = [0u8; 256];
            let n = s.recv(&mut buf)?;
            let took = t.elapsed();
            if &buf[..n] != payload {
                return Err(std::io::Error::other("echo differs"));
            }
            Ok(took)
        })
        .expect("enter LAN namespace")
}

#[test]
fn dial_on_demand_for_authorized_hosts_idle_filters_and_refusals() {
    let Some(w) = World::with("e2e_demand", true) else {
        return;
    };
    w.mc_ok("admin", &["login", "--insecure"]);
    // While idle the TUN device carries the demand routes (placeholder address).
    wait_for_route(&w.topo.gw, "default dev masq0", Duration::from_secs(15))
        .expect("demand route armed");
    let echo = SocketAddr::from(([203, 0, 113, 1], 7));

    // A host that maps to no user: ICMP host-unreachable, nothing dialled.
    w.topo
        .lan
        .ip(&["addr", "add", "192.168.77.3/24", "dev", "lan0"])
        .expect("second LAN address");
    let refused = udp_once(
        &w,
        Ipv4Addr::new(192, 168, 77, 3),
        echo,
        Duration::from_secs(5),
    );
    assert_eq!(
        refused.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::HostUnreachable),
        "unauthorized host: {refused:?}\n{}\n{}\n{}",
        w.mc_ok("admin", &["counters"]),
        w.topo.gw.ip(&["route"]).unwrap_or_default(),
        w.mserver.as_ref().map(|g| g.stderr()).unwrap_or_default()
    );
    assert_eq!(counter(&w, "dataplane.demand_refused"), 1);
    assert_eq!(counter(&w, "dataplane.demand_triggered"), 0);
    let l = link_json(&w);
    assert_eq!(l["state"], "idle", "{l}");

    // demo's host: its first (and only) UDP datagram dials the link and gets its echo.
    let took = udp_once(
        &w,
        Ipv4Addr::new(192, 168, 77, 2),
        echo,
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| {
        panic!(
            "first packet through an on-demand dial: {e}\n{}",
            w.mserver.as_ref().map(|g| g.stderr()).unwrap_or_default()
        )
    });
    eprintln!(
        "FIGURE demand: first LAN packet to its echo through an on-demand dial: {} ms",
        took.as_millis()
    );
    let l = link_json(&w);
    assert_eq!(l["state"], "up", "{l}");
    assert_eq!(
        l["holders"][0]["user"], "demo",
        "credited to the host's user: {l}"
    );
    assert_eq!(l["holders"][0]["host"], "192.168.77.2", "{l}");
    let who = w.mc_ok("admin", &["who"]);
    assert!(
        who.contains("demo") && who.contains("192.168.77.2"),
        "{who}"
    );
    assert_eq!(counter(&w, "dataplane.demand_triggered"), 1);
    assert_eq!(counter(&w, "dataplane.demand_hold_dropped"), 0);

    // Filtered traffic (UDP to 8081, every 300 ms) does not keep the link up: the idle
    // timer (4 s) hangs up while it flows, and it dials nothing afterwards.
    let whoami = SocketAddr::from(([203, 0, 113, 1], 8081));
    let end = Instant::now() + Duration::from_secs(30);
    let mut sent = 0u32;
    let mut down_at = None;
    while Instant::now() < end {
        let _ = udp_once(
            &w,
            Ipv4Addr::new(192, 168, 77, 2),
            whoami,
            Duration::from_millis(300),
        );
        sent += 1;
        let st = link_json(&w)["state"].clone();
        if st == "idle" || st == "failed" {
            down_at.get_or_insert(sent);
            if sent >= down_at.unwrap_or(sent) + 5 {
                break;
            }
        }
    }
    assert!(
        down_at.is_some(),
        "the link stayed up under filtered traffic"
    );
    let l = link_json(&w);
    assert_eq!(l["last_failure"]["kind"], "idle_timeout", "{l}");
    assert_ne!(l["state"], "up", "filtered packets redialled: {l}");
    assert!(counter(&w, "dataplane.demand_ignored") >= 5);
    assert_eq!(counter(&w, "dataplane.demand_triggered"), 1);

    // TCP: the SYN dials again (held, not dropped) and the transfer completes.
    let fetch = w.lan(&["tcp-fetch", "203.0.113.1:8081", "--bytes", "20000"]);
    assert!(fetch.contains("OK tcp-fetch bytes=20000"), "{fetch}");
    assert_eq!(counter(&w, "dataplane.demand_triggered"), 2);
    assert_eq!(counter(&w, "dataplane.demand_hold_dropped"), 0);
    assert!(counter(&w, "dataplane.demand_released") >= 2);
}

/// Manual debugging aid: builds the world, dials isp1 and waits (run with --ignored).
#[test]
#[ignore]
fn debug_world_stays_up() {
    let Some(w) = World::new("e2e_debug") else {
        return;
    };
    w.mc_ok("demo", &["login", "--insecure"]);
    w.mc_ok("demo", &["dial", "isp1"]);
    println!("LAN ns: {}  GW ns: {}", w.topo.lan.name(), w.topo.gw.name());
    std::thread::sleep(Duration::from_secs(
        std::env::var("E2E_DEBUG_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    ));
}

/// From `src` in the LAN namespace: one UDP datagram with `payload` to an echo server, and
/// the echo back (the payload crosses the link both ways).
fn udp_payload_echo(w: &World, to: SocketAddr, payload: &'static [u8]) -> std::io::Result<Vec<u8>> {
    w.topo
        .lan
        .run_in(move || -> std::io::Result<Vec<u8>> {
            let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            s.connect(to)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.send(payload)?;
            let mut buf = [0u8; 512];
            let n = s.recv(&mut buf)?;
            Ok(buf[..n].to_vec())
        })
        .expect("enter LAN namespace")
}

/// Issue 15 against an access server that asks 0.0.0.0 for itself (mock-modem --isp-mode
/// asks-zero), paced at 115200: the link comes up with the peer given 10.64.64.64 and a LAN
/// host's UDP, TCP and ICMP pass; the modem's `NO CARRIER` text as UDP payload through the
/// link leaves it up; SIGUSR1 (a real carrier drop) is seen as carrier loss (the measured
/// time is printed; asserted only against a generous bound) and three dials then work.
#[test]
fn independent_isp_comes_up_and_only_a_real_carrier_drop_ends_the_link() {
    let Some(w) = World::with_modem(
        "e2e_independent_isp",
        false,
        &["--baud", "115200", "--isp-mode", "asks-zero"],
    ) else {
        return;
    };
    for u in ["demo", "admin"] {
        w.mc_ok(u, &["login", "--insecure"]);
    }
    let t = Instant::now();
    w.mc_ok("demo", &["dial", "isp1"]);
    eprintln!(
        "e2e asks-zero ISP at 115200: mclient dial -> up {} ms",
        t.elapsed().as_millis()
    );
    let l = link_json(&w);
    assert_eq!(l["state"], "up", "{l}");
    assert_eq!(l["peer_address"], "10.64.64.64", "{l}");
    let first = w.local_address();
    assert!(first.starts_with("10.64.0."), "{first}");
    assert!(w
        .lan(&["udp-echo", "203.0.113.1:7", "--count", "3"])
        .contains("OK"));
    assert!(w
        .lan(&["tcp-echo", "203.0.113.1:7", "--bytes", "20000"])
        .contains("OK"));
    let mut ping = w.topo.lan.command("ping");
    ping.args(["-c", "2", "-W", "5", "203.0.113.1"]);
    let o = exec_command(ping, Duration::from_secs(20)).expect("ping ran");
    assert!(
        o.status.success(),
        "ping failed: {}",
        String::from_utf8_lossy(&o.stdout)
    );

    // The modem's result text as payload, both ways through the link: nothing happens.
    let text: &[u8] = b"\r\nNO CARRIER\r\n\r\nNO CARRIER\r\n";
    for _ in 0..3 {
        let echo = udp_payload_echo(&w, SocketAddr::from(([203, 0, 113, 1], 7)), text)
            .expect("echo of the NO CARRIER payload");
        assert_eq!(echo, text);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let l = link_json(&w);
    assert_eq!(l["state"], "up", "payload text dropped the link: {l}");
    assert_eq!(w.local_address(), first);

    // A real carrier drop: seen as loss (the link leaves `up`). One status poll's own cost
    // first, so the figure can be read.
    let t = Instant::now();
    let _ = link_json(&w);
    eprintln!(
        "e2e one mclient status poll: {} ms",
        t.elapsed().as_millis()
    );
    let t = Instant::now();
    w.modem.signal(nix::sys::signal::Signal::SIGUSR1);
    let mut seen = None;
    while t.elapsed() < Duration::from_secs(10) {
        if link_json(&w)["state"] != "up" {
            seen = Some(t.elapsed());
            break;
        }
    }
    let seen = seen.expect("carrier loss seen within 10 s");
    eprintln!(
        "e2e SIGUSR1 -> link not up (polled with mclient status) {} ms",
        seen.as_millis()
    );
    assert!(seen < Duration::from_secs(5), "{seen:?}");

    // redial_on_loss brings it back; then three dials, each after a hang-up, all work.
    w.wait_for("the redial after the loss", Duration::from_secs(40), || {
        link_json(&w)["state"] == "up"
    });
    for i in 0..3 {
        w.mc_ok("admin", &["hangup", "isp1", "--force"]);
        w.wait_for("idle after hang-up", Duration::from_secs(30), || {
            let st = link_json(&w)["state"].clone();
            st == "idle" || st == "failed"
        });
        let t = Instant::now();
        w.mc_ok("demo", &["dial", "isp1"]);
        eprintln!(
            "e2e dial {} after the loss: {} ms",
            i + 1,
            t.elapsed().as_millis()
        );
        assert!(w
            .lan(&["udp-echo", "203.0.113.1:7", "--count", "2"])
            .contains("OK"));
    }
}
