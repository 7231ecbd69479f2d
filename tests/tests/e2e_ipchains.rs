//! End-to-end checks of ipchains verdicts as 2.2 carried them out (issue 12), over real
//! network namespaces (root only; elsewhere each test prints SKIPPED): the gateway's own
//! traffic, REDIRECT to a local listener, `-l` log lines, REJECT from the LAN address, the
//! link's interface names, and portfw from the WAN side across a redial. Same topology as
//! `e2e.rs` (see `tests/src/netns.rs`).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use masqdial_tests::netns::{
    exec_command, netns_available, unique_tag, wait_for_route, wait_for_tcp, Guarded, Netns,
    Topology, LAN_GW_ADDR, LAN_HOST_ADDR, WAN_SERVER_ADDR,
};

const MOCK_MODEM: &str = env!("CARGO_BIN_EXE_mock-modem");
const WAN_SERVERS: &str = env!("CARGO_BIN_EXE_wan-servers");
const LAN_CLIENT: &str = env!("CARGO_BIN_EXE_lan-client");
const PORT: u16 = 2224;

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

fn config(dir: &Path, pty: &Path, profile: &str) -> String {
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

[nat]
tun_name = "masq0"
ruleset = "{rules}"
rfc_profile = "{profile}"
"#,
        state = dir.join("state").display(),
        admin = hash("admin-pw"),
        pty = pty.display(),
        rules = rules.display(),
    )
}

impl World {
    fn new(test: &str) -> Option<World> {
        World::with_profile(test, "linux22")
    }

    /// The world with `[nat] rfc_profile = profile`.
    fn with_profile(test: &str, profile: &str) -> Option<World> {
        if !netns_available(test) {
            return None;
        }
        let topo = Topology::new(&unique_tag()).expect("topology");
        let dir = tempfile::tempdir().expect("tempdir");
        let pty = dir.path().join("modem0");
        let mut c = topo.wan.command(MOCK_MODEM);
        c.args(["--pty-link"])
            .arg(&pty)
            .args(["--baud", "0", "--user", "demo:secret", "--auth", "chap"])
            .args(["--tun", "wan0", "--tun-addr", "203.0.113.1/24"]);
        let modem = Guarded::spawn(c).expect("mock modem");
        modem
            .wait_for_line("->", Duration::from_secs(20))
            .expect("mock modem pty");
        let servers = topo
            .start_wan_servers(WAN_SERVERS, &["--ftp-file-size", "300000"])
            .expect("wan servers");
        std::fs::write(
            dir.path().join("mserver.toml"),
            config(dir.path(), &pty, profile),
        )
        .expect("config");
        let mut w = World {
            _servers: servers,
            mserver: None,
            modem,
            dir,
            topo,
        };
        let cfg = w.dir.path().join("mserver.toml");
        let mut c = w.topo.gw.command(workspace_bin("mserver"));
        c.arg("--config").arg(&cfg).env("RUST_LOG", "info");
        let g = Guarded::spawn(c).expect("mserver");
        wait_for_tcp(
            &w.topo.gw,
            SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("mserver did not listen: {e}\n{}", g.stderr()));
        w.mserver = Some(g);
        w.mc_ok(&["login", "--insecure"]);
        w.mc_ok(&["dial", "isp1"]);
        wait_for_route(&w.topo.gw, "default dev masq0", Duration::from_secs(20)).expect("route");
        Some(w)
    }

    fn log(&self) -> String {
        self.mserver
            .as_ref()
            .map(|g| g.stderr())
            .unwrap_or_default()
    }

    /// `mclient --user admin ARGS` in the gateway namespace, as a command.
    fn mc_command(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.topo.gw.command(workspace_bin("mclient"));
        c.env("MASQDIAL_SERVER", format!("http://127.0.0.1:{PORT}"))
            .env(
                "MCLIENT_TOKEN_FILE",
                self.dir.path().join("tokens-admin.toml"),
            )
            .env("MCLIENT_PASSWORD", "admin-pw")
            .args(["--user", "admin"])
            .args(args);
        c
    }

    fn mc(&self, args: &[&str]) -> Output {
        exec_command(self.mc_command(args), Duration::from_secs(60)).expect("mclient ran")
    }

    fn mc_ok(&self, args: &[&str]) -> String {
        let o = self.mc(args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "mclient {args:?} failed: {}\n{out}\n{}\nmserver:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        out
    }

    fn ipchains(&self, spec: &str) -> String {
        let mut args = vec!["ipchains"];
        args.extend(spec.split_whitespace());
        self.mc_ok(&args)
    }

    /// `lan-client ARGS` in namespace `ns`; (exit ok, stdout + stderr).
    fn client_in(&self, ns: &masqdial_tests::netns::Netns, args: &[&str]) -> (bool, String) {
        let mut c = ns.command(LAN_CLIENT);
        c.args(["--timeout", "20"]).args(args);
        let o = exec_command(c, Duration::from_secs(60)).expect("lan-client ran");
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    fn lan_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.client_in(&self.topo.lan, args);
        assert!(ok, "lan-client {args:?}: {out}\nmserver:\n{}", self.log());
        out
    }

    fn local_address(&self) -> Ipv4Addr {
        let out = self.mc_ok(&["--json", "status", "isp1"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("status json");
        v.get("links")
            .and_then(|l| l.as_array())
            .and_then(|l| l.first())
            .and_then(|l| l.get("local_address"))
            .and_then(|a| a.as_str())
            .and_then(|a| a.parse().ok())
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.mserver.take();
    }
}

/// `seen=A:P local=B:Q` of a whoami line.
fn whoami(line: &str) -> (SocketAddr, SocketAddr) {
    let field = |k: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line:?}"))
    };
    (field("seen="), field("local="))
}

#[test]
fn gateway_own_traffic_skips_forward_and_is_not_masqueraded() {
    let Some(w) = World::new("e2e_own_traffic") else {
        return;
    };
    // The shipped ruleset has `:forward DENY` and MASQ only for the LAN.
    let fwd = w.ipchains("-L forward -n");
    assert!(fwd.contains("Chain forward (policy DENY)"), "{fwd}");
    let local = w.local_address();
    assert!(
        w.topo.gw.ping(WAN_SERVER_ADDR, 2).expect("ping ran"),
        "gateway ping\n{}",
        w.log()
    );
    let (ok, out) = w.client_in(&w.topo.gw, &["tcp-whoami", "203.0.113.1:8081"]);
    assert!(ok, "gateway TCP: {out}\n{}", w.log());
    let (seen, me) = whoami(out.trim());
    assert_eq!(seen, me, "not masqueraded: {out}");
    assert_eq!(seen.ip(), std::net::IpAddr::V4(local));
    let (ok, out) = w.client_in(
        &w.topo.gw,
        &["tcp-fetch", "203.0.113.1:8081", "--bytes", "100000"],
    );
    assert!(ok && out.contains("OK tcp-fetch bytes=100000"), "{out}");
    // Nothing of it entered the masquerade table.
    let m = w.mc_ok(&["masq", "-n"]);
    assert!(!m.contains(&local.to_string()), "{m}");
    // LAN traffic is still masqueraded.
    let out = w.lan_ok(&["tcp-whoami", "203.0.113.1:8081"]);
    let (seen, _) = whoami(out.trim());
    assert_eq!(seen.ip(), std::net::IpAddr::V4(local));
    assert!(seen.port() >= 61000, "{out}");
}

#[test]
fn redirect_reaches_a_listener_on_the_gateway() {
    let Some(w) = World::new("e2e_redirect") else {
        return;
    };
    // A "proxy" on the gateway: the blob server on port 3128, any address.
    let mut c = w.topo.gw.command(WAN_SERVERS);
    c.args([
        "--bind",
        "0.0.0.0",
        "--echo-port",
        "3127",
        "--blob-port",
        "3128",
    ])
    .args(["--ftp-port", "3121"]);
    let proxy = Guarded::spawn(c).expect("local listener");
    proxy
        .wait_for_line("READY", Duration::from_secs(20))
        .expect("listener ready");
    // Nothing listens on 203.0.113.1:3000; the rule sends it to the gateway's port 3128.
    w.ipchains("-I input 1 -p tcp -s 192.168.77.0/24 -d 203.0.113.1 3000 -j REDIRECT 3128");
    let rules = w.ipchains("-L input -n");
    assert!(
        rules.contains("REDIRECT") && rules.contains("=> 3128"),
        "{rules}"
    );
    let out = w.lan_ok(&["tcp-fetch", "203.0.113.1:3000", "--bytes", "150000"]);
    assert!(out.contains("OK tcp-fetch bytes=150000"), "{out}");
    let out = w.lan_ok(&["tcp-whoami", "203.0.113.1:3000"]);
    let (seen, local) = whoami(out.trim());
    // The client believes it talks to the address it dialled.
    assert_eq!(local.ip(), std::net::IpAddr::V4(LAN_HOST_ADDR), "{out}");
    assert_ne!(seen.ip(), std::net::IpAddr::V4(LAN_HOST_ADDR), "{out}");
    let v = w.ipchains("-L input -n -v -x");
    let line = v
        .lines()
        .find(|l| l.contains("REDIRECT"))
        .unwrap_or_default();
    let pkts: u64 = line
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(pkts > 10, "REDIRECT rule counted: {v}");
}

#[test]
fn log_rule_writes_the_packet_log_line() {
    let Some(w) = World::new("e2e_log") else {
        return;
    };
    w.ipchains("-I input 1 -p udp -s 192.168.77.0/24 -d 203.0.113.1 7 -l");
    // A watcher (what mtui's event log reads) gets the lines too.
    let watch = Guarded::spawn(w.mc_command(&["--json", "watch"])).expect("mclient watch");
    watch
        .wait_for_line("\"event\":\"link\"", Duration::from_secs(20))
        .expect("watch started");
    // 30 datagrams in well under 5 s: the kernel's limit lets 10 lines through.
    w.lan_ok(&[
        "udp-echo",
        "203.0.113.1:7",
        "--count",
        "30",
        "--interval-ms",
        "10",
    ]);
    let start = Instant::now();
    let want = format!("Packet log: input - gw0 PROTO=17 {LAN_HOST_ADDR}:");
    let mut log = w.log();
    while !log.contains(&want) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        log = w.log();
    }
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&want)).collect();
    assert!(!lines.is_empty(), "no Packet log line:\n{log}");
    assert!(
        lines.iter().all(|l| l.contains("masqdial::packet_log")
            && l.contains(" 203.0.113.1:7 L=")
            && l.contains(" (#1)")),
        "{lines:?}"
    );
    let counters = w.mc_ok(&["counters"]);
    let get = |k: &str| -> u64 {
        counters
            .lines()
            .find(|l| l.split_whitespace().next() == Some(k))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {counters}"))
    };
    let seen = watch
        .wait_for_line("\"event\":\"packet_log\"", Duration::from_secs(5))
        .expect("a packet_log event");
    let v: serde_json::Value = serde_json::from_str(&seen).expect("watch json");
    let line = v.get("line").and_then(|l| l.as_str()).unwrap_or_default();
    assert!(
        line.starts_with(&want) && lines[0].ends_with(line),
        "{seen}\n{lines:?}"
    );
    drop(watch);
    let (logged, suppressed) = (get("log.lines"), get("log.suppressed"));
    assert_eq!(logged as usize, lines.len(), "{counters}");
    assert!(logged >= 10, "{counters}");
    assert!(logged + suppressed >= 30, "{counters}");
}

#[test]
fn reject_from_the_lan_answers_port_unreachable_from_the_lan_address() {
    let Some(w) = World::new("e2e_reject") else {
        return;
    };
    w.ipchains("-I input 1 -p tcp -s 192.168.77.0/24 -d 203.0.113.1 7777 -j REJECT");
    // A raw ICMP socket in the LAN namespace sees who sent the error.
    let rx = w
        .topo
        .lan
        .run_in(|| {
            use nix::sys::socket::{
                recvfrom, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockProtocol,
                SockType, SockaddrIn,
            };
            use std::os::fd::AsRawFd;
            let fd = socket(
                AddressFamily::Inet,
                SockType::Raw,
                SockFlag::empty(),
                SockProtocol::Icmp,
            )
            .expect("raw socket");
            setsockopt(
                &fd,
                sockopt::ReceiveTimeout,
                &nix::sys::time::TimeVal::new(0, 200_000),
            )
            .expect("timeout");
            let t0 = Instant::now();
            let conn = std::net::TcpStream::connect_timeout(
                &SocketAddr::from((WAN_SERVER_ADDR, 7777)),
                Duration::from_secs(10),
            );
            let took = t0.elapsed();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1500];
            for _ in 0..10 {
                if let Ok((n, Some(from))) = recvfrom::<SockaddrIn>(fd.as_raw_fd(), &mut buf) {
                    // IP header (20) then ICMP type, code.
                    if n >= 22 {
                        seen.push((from.ip(), buf[20], buf[21]));
                    }
                }
            }
            (conn.map(|_| ()).map_err(|e| e.kind()), took, seen)
        })
        .expect("in LAN namespace");
    let (conn, took, seen) = rx;
    assert_eq!(
        conn,
        Err(std::io::ErrorKind::ConnectionRefused),
        "{}",
        w.log()
    );
    assert!(
        took < Duration::from_secs(3),
        "refused at once, took {took:?}"
    );
    assert!(
        seen.contains(&(LAN_GW_ADDR, 3, 3)),
        "port unreachable from {LAN_GW_ADDR}: {seen:?}"
    );
}

#[test]
fn rules_name_the_real_lan_interface_and_the_link() {
    let Some(w) = World::new("e2e_ifnames") else {
        return;
    };
    // Counting rules: LAN side by its real name, the link by `ppp0`, by connection, by TUN.
    for spec in [
        "-A input -i gw0 -p udp -d 203.0.113.1 7",
        "-A input -i ppp0 -p udp -s 203.0.113.1 7",
        "-A input -i isp1 -p udp -s 203.0.113.1 7",
        "-A input -i masq+ -p udp -s 203.0.113.1 7",
        "-A input -i eth0 -p udp -d 203.0.113.1 7",
    ] {
        w.ipchains(spec);
    }
    w.lan_ok(&["udp-echo", "203.0.113.1:7", "--count", "5"]);
    let v = w.ipchains("-L input -n -v -x");
    let count = |name: &str| -> u64 {
        v.lines()
            .find(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(2) == Some(&"-") && f.contains(&name)
            })
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no rule for {name}: {v}"))
    };
    // 5 each way (more only if a datagram was resent).
    assert!(count("gw0") >= 5, "{v}");
    let link = count("ppp0");
    assert!(link >= 5, "{v}");
    assert_eq!(count("isp1"), link, "{v}");
    assert_eq!(count("masq+"), link, "{v}");
    assert_eq!(count("eth0"), 0, "{v}");
}

#[test]
fn portfw_from_the_wan_side_before_and_after_a_redial() {
    let Some(w) = World::new("e2e_portfw") else {
        return;
    };
    // A server on the LAN host: the blob server on port 80.
    let mut c = w.topo.lan.command(WAN_SERVERS);
    c.args([
        "--bind",
        "192.168.77.2",
        "--blob-port",
        "80",
        "--echo-port",
        "7",
    ])
    .args(["--ftp-port", "21"]);
    let lan_server = Guarded::spawn(c).expect("LAN server");
    lan_server
        .wait_for_line("READY", Duration::from_secs(20))
        .expect("LAN server ready");
    // The shipped input chain refuses TCP connections from the link below 61000: open 8080.
    w.ipchains("-I input 1 -p tcp -i ppp0 -d 0.0.0.0/0 8080 -j ACCEPT");
    let list = w.mc_ok(&[
        "portfw",
        "-a",
        "-P",
        "tcp",
        "-L",
        "0.0.0.0",
        "8080",
        "-R",
        "192.168.77.2",
        "80",
        "-p",
        "10",
    ]);
    assert!(list.contains("192.168.77.2"), "{list}");
    let first = w.local_address();
    let target = format!("{first}:8080");
    let (ok, out) = w.client_in(&w.topo.wan, &["tcp-fetch", &target, "--bytes", "120000"]);
    assert!(
        ok && out.contains("OK tcp-fetch bytes=120000"),
        "{out}\n{}",
        w.log()
    );
    let (ok, out) = w.client_in(&w.topo.wan, &["tcp-whoami", &target]);
    assert!(ok, "{out}");
    let (seen, _) = whoami(out.trim());
    assert_eq!(
        seen.ip(),
        std::net::IpAddr::V4(WAN_SERVER_ADDR),
        "LAN host sees the WAN client"
    );
    // ipmasqadm's columns, then (-v) conns, pkts, bytes.
    let list = w.mc_ok(&["portfw", "-l", "-v"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("TCP"))
        .unwrap_or_else(|| panic!("{list}"));
    let pkts: u64 = row
        .split_whitespace()
        .nth(8)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(pkts > 10, "counted: {list}");
    let procfw = w.mc_ok(&["proc", "ip_masq/portfw"]);
    assert!(procfw.contains("C0A84D02"), "{procfw}");

    // Carrier loss: the link comes back with another address; the 0.0.0.0 entry follows.
    w.modem.signal(nix::sys::signal::Signal::SIGUSR1);
    let start = Instant::now();
    let mut second = w.local_address();
    while (second == first || second.is_unspecified()) && start.elapsed() < Duration::from_secs(40)
    {
        std::thread::sleep(Duration::from_millis(300));
        second = w.local_address();
    }
    assert_ne!(second, first, "a new address after the redial\n{}", w.log());
    wait_for_route(&w.topo.gw, "default dev masq0", Duration::from_secs(20)).expect("route");
    let target = format!("{second}:8080");
    let (ok, out) = w.client_in(&w.topo.wan, &["tcp-fetch", &target, "--bytes", "50000"]);
    assert!(
        ok && out.contains("OK tcp-fetch bytes=50000"),
        "{out}\n{}",
        w.log()
    );
    // Persisted: the state directory holds it.
    let saved = std::fs::read_to_string(w.dir.path().join("state").join("portfw")).expect("saved");
    assert!(
        saved.contains("-a -P tcp -L 0.0.0.0 8080 -R 192.168.77.2 80 -p 10"),
        "{saved}"
    );
    // Delete and flush.
    w.mc_ok(&["portfw", "-d", "-P", "tcp", "-L", "0.0.0.0", "8080"]);
    let list = w.mc_ok(&["portfw"]);
    assert!(!list.lines().any(|l| l.starts_with("TCP")), "{list}");
    w.mc_ok(&["portfw", "-f"]);
}

#[test]
fn proc_views_and_masq_names_through_mclient() {
    let Some(w) = World::new("e2e_proc") else {
        return;
    };
    w.lan_ok(&["tcp-fetch", "203.0.113.1:8081", "--bytes", "1000"]);
    w.lan_ok(&["udp-echo", "203.0.113.1:7", "--count", "2"]);
    let m = w.mc_ok(&["proc", "ip_masquerade"]);
    let first = m.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            "Prc FromIP   FPrt ToIP     TPrt Masq Init-seq  Delta PDelta Expires (free="
        ),
        "{m}"
    );
    assert!(m.lines().all(|l| l.len() == 127), "128-byte records: {m:?}");
    let tcp = w.mc_ok(&["proc", "ip_masq/tcp"]);
    assert!(
        tcp.starts_with("Prot SrcIP    SPrt DstIP    DPrt MAddr    MPrt State"),
        "{tcp}"
    );
    assert!(
        tcp.lines().skip(1).all(|l| l.starts_with("TCP  C0A84D02:")),
        "{tcp}"
    );
    let udp = w.mc_ok(&["proc", "ip_masq/udp"]);
    assert!(
        udp.lines()
            .skip(1)
            .any(|l| l.starts_with("UDP  C0A84D02:") && l.contains(":0007 ")),
        "{udp}"
    );
    let icmp = w.mc_ok(&["proc", "ip_masq/icmp"]);
    assert_eq!(icmp.lines().count(), 1, "{icmp}");
    let names = w.mc_ok(&["proc", "ip_fwnames"]);
    assert!(names.starts_with("input ACCEPT "), "{names}");
    let chains = w.mc_ok(&["proc", "ip_fwchains"]);
    assert!(
        chains
            .lines()
            .any(|l| l.trim_start().starts_with("forward C0A84D00/FFFFFF00->")),
        "{chains}"
    );
    let app = w.mc_ok(&["proc", "ip_masq/app"]);
    assert!(app.starts_with("prot port    n_attach name"), "{app}");
    assert_eq!(w.mc(&["proc", "ip_nonsense"]).status.code(), Some(2));
    // `masq` names services unless -n, from the same table as `ipchains -L`.
    let named = w.mc_ok(&["masq"]);
    assert!(named.contains("-> echo"), "{named}");
    let numeric = w.mc_ok(&["masq", "-n"]);
    assert!(
        numeric.contains("-> 7") && !numeric.contains("echo"),
        "{numeric}"
    );
}

/// A second LAN host: namespace `mqh-<tag>` with 192.168.77.3 on the first host's LAN (a
/// bridge in the first host's namespace joins both hosts to the gateway's `gw0` veth).
fn second_lan_host(topo: &Topology) -> Netns {
    let b = Netns::create(&format!("mqh-{}", topo.tag())).expect("host B namespace");
    let lan = &topo.lan;
    let host = format!("{LAN_HOST_ADDR}/24");
    for args in [
        &[
            "link",
            "add",
            "hb0",
            "type",
            "veth",
            "peer",
            "name",
            "lan0",
            "netns",
            b.name(),
        ][..],
        &["link", "add", "br0", "type", "bridge"],
        &["addr", "del", &host, "dev", "lan0"],
        &["link", "set", "lan0", "master", "br0"],
        &["link", "set", "hb0", "master", "br0"],
        &["link", "set", "hb0", "up"],
        &["link", "set", "br0", "up"],
        &["addr", "add", &host, "dev", "br0"],
    ] {
        lan.ip(args)
            .unwrap_or_else(|e| panic!("ip {args:?} in the LAN namespace: {e}"));
    }
    lan.add_route("default", Some(LAN_GW_ADDR), None)
        .expect("LAN default route");
    b.add_addr("lan0", &format!("{HOST_B}/24"))
        .expect("B address");
    b.link_up("lan0").expect("B up");
    b.add_route("default", Some(LAN_GW_ADDR), None)
        .expect("B default route");
    b
}

/// Host B's address (see [`second_lan_host`]).
const HOST_B: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 3);
/// The UDP and TCP "who am I" server on the WAN side (the blob port).
const WHO: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(WAN_SERVER_ADDR),
    masqdial_sim::wan::BLOB_PORT,
);

/// A UDP socket bound to `port` in namespace `ns` (300 ms receive timeout).
fn udp_in(ns: &Netns, port: u16) -> UdpSocket {
    ns.run_in(move || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
        s.set_read_timeout(Some(Duration::from_millis(300)))?;
        Ok::<_, std::io::Error>(s)
    })
    .expect("in namespace")
    .expect("UDP bind")
}

/// The next datagram on `s` whose payload is `want`, within `within`: its source.
fn udp_wait(s: &UdpSocket, want: &[u8], within: Duration) -> Option<SocketAddr> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < within {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            if &buf[..n] == want {
                return Some(from);
            }
        }
    }
    None
}

/// STUN-like: the socket's external address:port, as the WAN "who" server sees it.
fn udp_external(s: &UdpSocket) -> SocketAddr {
    let mut buf = [0u8; 128];
    for _ in 0..10 {
        s.send_to(b"WHO\n", WHO).expect("send WHO");
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            if from == WHO {
                let text = String::from_utf8_lossy(&buf[..n]);
                return text.trim().parse().expect("WHO answer");
            }
        }
    }
    panic!("no UDP WHO answer");
}

/// A TCP socket bound to `port` in `ns` with SO_REUSEADDR (several connections and a
/// listener share the port, as in TCP hole punching).
fn tcp_socket_in(ns: &Netns, port: u16) -> socket2::Socket {
    ns.run_in(move || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
        Ok::<_, std::io::Error>(s)
    })
    .expect("in namespace")
    .expect("TCP socket")
}

/// The external address:port of TCP connections from `port` in `ns` (one connection to
/// the WAN "who" server; it creates the endpoint-independent mapping).
fn tcp_external(ns: &Netns, port: u16) -> SocketAddr {
    use std::io::{Read, Write};
    let s = tcp_socket_in(ns, port);
    s.connect_timeout(&WHO.into(), Duration::from_secs(5))
        .expect("connect to WHO");
    let mut s = std::net::TcpStream::from(s);
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"WHO\n").expect("send WHO");
    let mut got = String::new();
    s.read_to_string(&mut got).expect("WHO answer");
    got.trim().parse().expect("WHO address")
}

#[test]
fn rfc_profile_hairpins_udp_and_tcp_between_two_lan_hosts() {
    use std::io::{Read, Write};
    let Some(w) = World::with_profile("e2e_hairpin", "rfc") else {
        return;
    };
    let b = second_lan_host(&w.topo);
    let link = w.local_address();
    // While the link is up, LAN packets to the link's address are routed into the TUN.
    let rules = w.topo.gw.ip(&["-4", "rule", "show"]).expect("ip rule");
    assert!(
        rules.contains(&format!(
            "0:\tfrom all to {link} iif gw0 lookup 4787 proto 77"
        )) && rules.contains("1:\tfrom all lookup local proto 77"),
        "{rules}"
    );

    // UDP (RFC 4787 REQ-9): B and A learn their mappings from the WAN side.
    let sb = udp_in(&b, 40001);
    let sa = udp_in(&w.topo.lan, 40002);
    let b_ext = udp_external(&sb);
    let a_ext = udp_external(&sa);
    assert_eq!(b_ext.ip(), std::net::IpAddr::V4(link));
    assert_eq!(a_ext.ip(), std::net::IpAddr::V4(link));
    // Address-dependent filtering (the rfc profile): B first sends toward A's mapping, which
    // lets the link's address through B's (A's filter still drops this one).
    sb.send_to(b"punch", a_ext).expect("B punches");
    let mut from_a = None;
    for _ in 0..5 {
        sa.send_to(b"hello B", b_ext).expect("A sends");
        from_a = udp_wait(&sb, b"hello B", Duration::from_millis(600));
        if from_a.is_some() {
            break;
        }
    }
    // REQ-9: the hairpinned datagram's source is A's external address:port.
    assert_eq!(from_a, Some(a_ext), "B got A's datagram\n{}", w.log());
    sb.send_to(b"hello A", a_ext).expect("B answers");
    assert_eq!(
        udp_wait(&sa, b"hello A", Duration::from_secs(2)),
        Some(b_ext),
        "A got B's answer from B's external address"
    );

    // TCP (RFC 5382 REQ-8 with REQ-1's endpoint-independent mapping): B's mapping made by an
    // outgoing connection from port 40011 reaches a listener on that port.
    let b_ext = tcp_external(&b, 40011);
    let a_ext = tcp_external(&w.topo.lan, 40012);
    assert_eq!(b_ext.ip(), std::net::IpAddr::V4(link));
    // B's SYN toward A's mapping opens B's filter for the link's address (it is refused:
    // A's filter does not let it through and nothing listens on the gateway).
    let punch = tcp_socket_in(&b, 40011);
    assert!(punch
        .connect_timeout(&a_ext.into(), Duration::from_secs(3))
        .is_err());
    drop(punch);
    let listener = tcp_socket_in(&b, 40011);
    listener.listen(4).expect("B listens");
    let listener = std::net::TcpListener::from(listener);
    let a = tcp_socket_in(&w.topo.lan, 40012);
    a.connect_timeout(&b_ext.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("A connects to B's external {b_ext}: {e}\n{}", w.log()));
    let mut a = std::net::TcpStream::from(a);
    let (mut at_b, peer) = listener.accept().expect("B accepts");
    assert_eq!(peer, a_ext, "B sees A's external address:port");
    for s in [&a, &at_b] {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
    }
    a.write_all(b"ping").expect("A writes");
    let mut buf = [0u8; 4];
    at_b.read_exact(&mut buf).expect("B reads");
    assert_eq!(&buf, b"ping");
    at_b.write_all(b"pong").expect("B writes");
    a.read_exact(&mut buf).expect("A reads");
    assert_eq!(&buf, b"pong");
    drop((a, at_b));

    // The gateway's own traffic still goes out unmasqueraded, and a LAN host still reaches
    // the gateway itself at the link's address (delivered through the engine).
    let (ok, out) = w.client_in(&w.topo.gw, &["tcp-whoami", "203.0.113.1:8081"]);
    assert!(ok, "gateway TCP: {out}\n{}", w.log());
    let (seen, me) = whoami(out.trim());
    assert_eq!(seen, me, "{out}");
    assert!(
        w.topo.lan.ping(link, 1).expect("ping ran"),
        "LAN pings {link}"
    );

    // Link down: the kernel's rules are back exactly.
    w.mc_ok(&["hangup", "isp1"]);
    let start = Instant::now();
    let want = "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n";
    let mut rules = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        rules = w.topo.gw.ip(&["-4", "rule", "show"]).expect("ip rule");
        if rules == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rules, want);
}

#[test]
fn linux22_profile_does_not_hairpin() {
    let Some(w) = World::new("e2e_no_hairpin") else {
        return;
    };
    let rules = w.topo.gw.ip(&["-4", "rule", "show"]).expect("ip rule");
    assert_eq!(
        rules,
        "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n"
    );
    // One host, two sockets: the second sends to the first one's mapping (2.2's loose UDP
    // would let it in), but 2.2 had no hairpinning: the gateway keeps it.
    let s1 = udp_in(&w.topo.lan, 40021);
    let s2 = udp_in(&w.topo.lan, 40022);
    let ext1 = udp_external(&s1);
    udp_external(&s2);
    for _ in 0..3 {
        s2.send_to(b"hairpin?", ext1).expect("send");
    }
    assert_eq!(udp_wait(&s1, b"hairpin?", Duration::from_secs(1)), None);
}
