//! Path MTU end to end (root only; elsewhere each test prints SKIPPED to the real stderr):
//! the mock ISP asks for an MRU below 1500 (576, 1492) and the LAN host's traffic must still
//! get through, by MSS clamping, by RFC 791 fragmentation or by path MTU discovery (RFC 1191)
//! on ICMP Frag-Needed, which comes from the gateway's kernel when the TUN MTU follows the
//! peer's MRU and from mserver itself (nat-core `mtu`) when it does not.
//!
//! Run: `cargo test --release -p masqdial-tests --test e2e_mtu -- --nocapture --test-threads=1`
//! (after `cargo build --release --bins`); the goodput lines are measurements, not asserts.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use masqdial_tests::netns::{
    exec_command, netns_available, unique_tag, wait_for_route, wait_for_tcp, Guarded, Topology,
    LAN_GW_ADDR,
};

const MOCK_MODEM: &str = env!("CARGO_BIN_EXE_mock-modem");
const WAN_SERVERS: &str = env!("CARGO_BIN_EXE_wan-servers");
const LAN_CLIENT: &str = env!("CARGO_BIN_EXE_lan-client");
const PORT: u16 = 2224;

fn workspace_bin(name: &str) -> PathBuf {
    let here = PathBuf::from(MOCK_MODEM);
    let p = here
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --release --bins` first",
        p.display()
    );
    p
}

/// How mserver treats the link's MTU in one scenario.
#[derive(Debug, Clone, Copy)]
struct Setup {
    mru: u16,
    mss_clamp: bool,
    tun_follows: bool,
}

struct World {
    _servers: Guarded,
    mserver: Option<Guarded>,
    _modem: Guarded,
    dir: tempfile::TempDir,
    topo: Topology,
}

impl Drop for World {
    fn drop(&mut self) {
        self.mserver.take();
    }
}

fn config(dir: &Path, pty: &Path, s: Setup) -> String {
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
routes = ["0.0.0.0/0"]

[nat]
tun_name = "masq0"
ruleset = "{rules}"
mss_clamp = {clamp}
tun_mtu_follows_mru = {follow}
"#,
        state = dir.join("state").display(),
        admin = hash("admin-pw"),
        pty = pty.display(),
        rules = rules.display(),
        clamp = s.mss_clamp,
        follow = s.tun_follows,
    )
}

impl World {
    fn new(test: &str, s: Setup) -> Option<World> {
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
            .args(["--mru", &s.mru.to_string()])
            .args(["--tun", "wan0", "--tun-addr", "203.0.113.1/24"]);
        let modem = Guarded::spawn(c).expect("mock modem");
        modem
            .wait_for_line("->", Duration::from_secs(20))
            .expect("mock modem pty");
        let servers = topo
            .start_wan_servers(WAN_SERVERS, &["--ftp-file-size", "1000"])
            .expect("wan servers");
        let cfg = dir.path().join("mserver.toml");
        std::fs::write(&cfg, config(dir.path(), &pty, s)).expect("config");
        let mut c = topo.gw.command(workspace_bin("mserver"));
        c.arg("--config").arg(&cfg).env("RUST_LOG", "info");
        let g = Guarded::spawn(c).expect("mserver");
        wait_for_tcp(
            &topo.gw,
            SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("mserver did not listen: {e}\n{}", g.stderr()));
        let w = World {
            _servers: servers,
            mserver: Some(g),
            _modem: modem,
            dir,
            topo,
        };
        w.mc_ok(&["login", "--insecure"]);
        let out = w.mc_ok(&["dial", "isp1"]);
        assert!(
            out.lines()
                .last()
                .is_some_and(|l| l.starts_with("isp1 is up (10.64.0.")),
            "{out}"
        );
        wait_for_route(&w.topo.gw, "default dev masq0", Duration::from_secs(10)).expect("route");
        Some(w)
    }

    fn mc(&self, args: &[&str]) -> Output {
        let mut c = self.topo.gw.command(workspace_bin("mclient"));
        c.env("MASQDIAL_SERVER", format!("http://127.0.0.1:{PORT}"))
            .env(
                "MCLIENT_TOKEN_FILE",
                self.dir.path().join("tokens-admin.toml"),
            )
            .env("MCLIENT_PASSWORD", "admin-pw")
            .args(["--user", "admin"])
            .args(args);
        exec_command(c, Duration::from_secs(60)).expect("mclient ran")
    }

    fn mc_ok(&self, args: &[&str]) -> String {
        let o = self.mc(args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "mclient {args:?}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    fn counter(&self, name: &str) -> u64 {
        let out = self.mc_ok(&["--json", "counters"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("counters json");
        v["counters"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name} in {out}"))
    }

    /// Runs lan-client in the LAN namespace; its one `OK …` line.
    fn lan(&self, args: &[&str]) -> String {
        let mut c = self.topo.lan.command(LAN_CLIENT);
        c.args(["--timeout", "60"]).args(args);
        let o = exec_command(c, Duration::from_secs(90)).expect("lan-client ran");
        let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert!(
            o.status.success(),
            "lan-client {args:?}: {out}\n{}\nmserver:\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.mserver
                .as_ref()
                .map(|g| g.stderr())
                .unwrap_or_default()
        );
        out
    }

    /// A command in a namespace; its stdout (any exit status).
    fn sh(&self, ns: &masqdial_tests::netns::Netns, prog: &str, args: &[&str]) -> (bool, String) {
        let mut c = ns.command(prog);
        c.args(args);
        let o = exec_command(c, Duration::from_secs(20)).expect("command ran");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }

    /// Forget what the LAN host learnt about path MTUs (RFC 1191 cache).
    fn flush_pmtu(&self) {
        let (ok, _) = self.sh(&self.topo.lan, "ip", &["route", "flush", "cache"]);
        assert!(ok, "ip route flush cache");
    }

    /// The TUN device's MTU as `ip -o link show` prints it.
    fn tun_mtu(&self) -> u32 {
        let (ok, out) = self.sh(&self.topo.gw, "ip", &["-o", "link", "show", "masq0"]);
        assert!(ok, "{out}");
        let f: Vec<&str> = out.split_whitespace().collect();
        f.iter()
            .position(|t| *t == "mtu")
            .and_then(|i| f.get(i + 1))
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("no mtu in {out}"))
    }

    /// iputils ping with DF set, `total` bytes of IP datagram, one probe: the lines it printed.
    fn df_ping(&self, total: u16) -> (bool, String) {
        let payload = (total - 28).to_string();
        self.sh(
            &self.topo.lan,
            "ping",
            &[
                "-n",
                "-M",
                "do",
                "-s",
                &payload,
                "-c",
                "1",
                "-W",
                "3",
                "203.0.113.1",
            ],
        )
    }

    /// A 1400-byte UDP datagram (1372 data + 8 + 20) with DF clear: the LAN host is told not
    /// to do PMTU discovery for the moment, so its kernel sends it whole without DF.
    fn udp_no_df_1400(&self) -> String {
        let sysctl = |v: &str| {
            let (ok, out) = self.sh(
                &self.topo.lan,
                "sysctl",
                &["-w", &format!("net.ipv4.ip_no_pmtu_disc={v}")],
            );
            assert!(ok, "sysctl: {out}");
        };
        self.flush_pmtu();
        sysctl("1");
        let out = self.lan(&[
            "udp-echo",
            "203.0.113.1:7",
            "--count",
            "3",
            "--size",
            "1372",
        ]);
        sysctl("0");
        out
    }

    /// TCP echo of `bytes` through the link; the OK line and the goodput (bytes each way per
    /// second of wall clock).
    fn tcp_echo(&self, bytes: usize) -> (String, f64) {
        let t = Instant::now();
        let out = self.lan(&["tcp-echo", "203.0.113.1:7", "--bytes", &bytes.to_string()]);
        (out, bytes as f64 / t.elapsed().as_secs_f64())
    }
}

fn report(what: &str, goodput: f64) {
    use std::io::Write;
    let line = format!(
        "MEASURED: {what}: TCP echo goodput {:.0} KB/s each way\n",
        goodput / 1e3
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Frag-Needed's line in iputils ping's output.
fn frag_needed_line(mtu: u16) -> String {
    format!("From {LAN_GW_ADDR} icmp_seq=1 Frag needed and DF set (mtu = {mtu})")
}

const BULK: usize = 300_000;

#[test]
fn mru_576_with_clamping_and_tun_mtu_following() {
    let s = Setup {
        mru: 576,
        mss_clamp: true,
        tun_follows: true,
    };
    let Some(w) = World::new("mru_576_with_clamping_and_tun_mtu_following", s) else {
        return;
    };
    assert_eq!(w.tun_mtu(), 576, "TUN MTU follows the peer's MRU");

    // Non-DF 1400-byte UDP: fragmented on the way (kernel into the TUN, then reassembled by
    // nat-core and fragmented again by the session), arrives whole: the echo server
    // answers the whole datagram and lan-client checks it byte for byte.
    let udp = w.udp_no_df_1400();
    assert!(udp.starts_with("OK udp-echo count=3 size=1372 "), "{udp}");
    assert!(
        w.mserver.as_ref().is_some(),
        "mserver still running after fragments"
    );

    // DF ping of 1400 bytes: the gateway (its kernel, the TUN being at 576) says Frag-Needed
    // with MTU 576 from its LAN address.
    w.flush_pmtu();
    let (ok, out) = w.df_ping(1400);
    assert!(!ok, "no echo reply for a DF 1400 over MTU 576: {out}");
    assert!(
        out.lines().any(|l| l == frag_needed_line(576)),
        "ping output: {out}"
    );
    // One that fits gets its reply.
    w.flush_pmtu();
    let (ok, out) = w.df_ping(576);
    assert!(ok, "DF 576 fits: {out}");

    let (out, goodput) = w.tcp_echo(BULK);
    assert!(
        out.starts_with(&format!("OK tcp-echo bytes={BULK} ")),
        "{out}"
    );
    report("MRU 576, MSS clamping on, TUN MTU 576", goodput);
}

#[test]
fn mru_576_without_clamping_mserver_sends_frag_needed() {
    let s = Setup {
        mru: 576,
        mss_clamp: false,
        tun_follows: false,
    };
    let Some(w) = World::new("mru_576_without_clamping_mserver_sends_frag_needed", s) else {
        return;
    };
    assert_eq!(w.tun_mtu(), 1500, "TUN left at 1500");

    // The kernel forwards the DF 1400 into the TUN; nat-core answers it (RFC 1191).
    w.flush_pmtu();
    let before = w.counter("frag_needed.sent");
    let (ok, out) = w.df_ping(1400);
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l == frag_needed_line(576)),
        "ping output: {out}"
    );
    assert_eq!(w.counter("frag_needed.sent"), before + 1);

    // Non-DF 1400 UDP: whole into the TUN, fragmented by the session before PPP.
    let udp = w.udp_no_df_1400();
    assert!(udp.starts_with("OK udp-echo count=3 size=1372 "), "{udp}");

    // TCP without clamping: the LAN host sends 1500-byte DF segments, gets Frag-Needed from
    // mserver, lowers its path MTU and completes.
    w.flush_pmtu();
    let sent = w.counter("frag_needed.sent");
    let (out, goodput) = w.tcp_echo(BULK);
    assert!(
        out.starts_with(&format!("OK tcp-echo bytes={BULK} ")),
        "{out}"
    );
    assert!(
        w.counter("frag_needed.sent") > sent,
        "PMTUD was driven by mserver's Frag-Needed"
    );
    report("MRU 576, MSS clamping off, TUN MTU 1500 (PMTUD)", goodput);
}

#[test]
fn mru_1492_without_clamping_kernel_pmtud() {
    let s = Setup {
        mru: 1492,
        mss_clamp: false,
        tun_follows: true,
    };
    let Some(w) = World::new("mru_1492_without_clamping_kernel_pmtud", s) else {
        return;
    };
    assert_eq!(w.tun_mtu(), 1492);
    w.flush_pmtu();
    let (ok, out) = w.df_ping(1500);
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l == frag_needed_line(1492)),
        "ping output: {out}"
    );
    w.flush_pmtu();
    let (ok, out) = w.df_ping(1400);
    assert!(ok, "DF 1400 fits in 1492: {out}");
    let udp = w.udp_no_df_1400();
    assert!(udp.starts_with("OK udp-echo count=3 size=1372 "), "{udp}");
    w.flush_pmtu();
    let (out, goodput) = w.tcp_echo(BULK);
    assert!(
        out.starts_with(&format!("OK tcp-echo bytes={BULK} ")),
        "{out}"
    );
    report("MRU 1492, MSS clamping off, TUN MTU 1492 (PMTUD)", goodput);
}
