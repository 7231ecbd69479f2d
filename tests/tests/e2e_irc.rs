//! End-to-end of the IRC DCC helper (2.2 `ip_masq_irc`) over real network namespaces (root
//! only; elsewhere each test prints SKIPPED): the LAN host behind `mserver` and a dialed link
//! (same topology as `e2e.rs`, see `tests/src/netns.rs`) talks IRC to the `irc-fixture`
//! server on the WAN side, and offers a DCC SEND and a DCC CHAT to a WAN peer registered on
//! that server. The peer connects where the offer says, so it only reaches the LAN host if
//! the helper rewrote the offer to the link's address and a masquerade port and made the
//! listening entry: without the helper the offer names 192.168.77.2, which the WAN cannot
//! route to.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use masqdial_tests::netns::{
    exec_command, netns_available, unique_tag, wait_for_route, wait_for_tcp, Guarded, Topology,
    LAN_HOST_ADDR, WAN_SERVER_ADDR,
};

const MOCK_MODEM: &str = env!("CARGO_BIN_EXE_mock-modem");
const IRC_FIXTURE: &str = env!("CARGO_BIN_EXE_irc-fixture");
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
    irc: Vec<Guarded>,
    mserver: Option<Guarded>,
    _modem: Guarded,
    dir: tempfile::TempDir,
    topo: Topology,
}

fn config(dir: &Path, pty: &Path, nat_extra: &str) -> String {
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
{nat_extra}
"#,
        state = dir.join("state").display(),
        admin = hash("admin-pw"),
        pty = pty.display(),
        rules = rules.display(),
    )
}

impl World {
    /// Dialed world; `nat_extra` goes into `[nat]`.
    fn new(test: &str, nat_extra: &str) -> Option<World> {
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
        std::fs::write(
            dir.path().join("mserver.toml"),
            config(dir.path(), &pty, nat_extra),
        )
        .expect("config");
        let mut w = World {
            irc: Vec::new(),
            mserver: None,
            _modem: modem,
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
        let mut s = self
            .mserver
            .as_ref()
            .map(|g| g.stderr())
            .unwrap_or_default();
        for g in &self.irc {
            s.push_str("\n--- irc fixture:\n");
            s.push_str(&g.stdout());
            s.push_str(&g.stderr());
        }
        s
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
            "mclient {args:?} failed: {}\n{out}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
        );
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

    /// The IRC server on WAN_SERVER_ADDR:`port` and a peer (`bob`) answering `offers` offers.
    fn start_irc(&mut self, port: u16, offers: u32) {
        let server = format!("{WAN_SERVER_ADDR}:{port}");
        let mut c = self.topo.wan.command(IRC_FIXTURE);
        c.args(["--timeout", "600", "server", &server]);
        let g = Guarded::spawn(c).expect("irc server");
        g.wait_for_line("READY", Duration::from_secs(20))
            .expect("irc server ready");
        self.irc.push(g);
        let mut c = self.topo.wan.command(IRC_FIXTURE);
        c.args(["--timeout", "300", "peer", &server, "--count"])
            .arg(offers.to_string());
        let g = Guarded::spawn(c).expect("irc peer");
        g.wait_for_line("READY", Duration::from_secs(20))
            .expect("irc peer registered");
        self.irc.push(g);
    }

    /// `irc-fixture offer` on the LAN host; (exit ok, stdout + stderr).
    fn offer(&self, port: u16, timeout_s: u32, args: &[&str]) -> (bool, String) {
        let server = format!("{WAN_SERVER_ADDR}:{port}");
        let mut c = self.topo.lan.command(IRC_FIXTURE);
        c.arg("--timeout")
            .arg(timeout_s.to_string())
            .args(["offer", &server])
            .args(args);
        let o = exec_command(c, Duration::from_secs(90)).expect("irc-fixture offer ran");
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.irc.clear();
        self.mserver.take();
    }
}

/// `key=value` of an `OK irc-offer …` line.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with("OK irc-offer"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        })
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

#[test]
fn dcc_send_and_chat_from_the_lan_through_the_masquerade() {
    let Some(mut w) = World::new("e2e_irc_dcc", "") else {
        return;
    };
    let link = w.local_address();
    assert!(link.to_string().starts_with("10.64.0."), "{link}");
    // The default [nat] irc_ports = [6667] loads the helper, shown as 2.2 did.
    let app = w.mc_ok(&["proc", "ip_masq/app"]);
    assert!(
        app.lines()
            .any(|l| l.starts_with("TCP  6667 ") && l.trim_end().ends_with("irc")),
        "{app}"
    );
    w.start_irc(6667, 5);
    // A real client's offers, one line per write: SEND (200 kB, name with a space) then CHAT.
    let (ok, out) = w.offer(6667, 60, &["--bytes", "200000", "--chat"]);
    assert!(ok, "{out}\n{}", w.log());
    assert_eq!(field(&out, "offered"), LAN_HOST_ADDR.to_string());
    for via in [field(&out, "send_via"), field(&out, "chat_via")] {
        let via: SocketAddr = via.parse().expect("via addr");
        assert_eq!(via.ip(), link, "the peer connected to the link's address");
        assert!(via.port() >= 61000, "a masquerade port: {via}");
    }
    let peer: SocketAddr = field(&out, "send_peer").parse().expect("peer");
    assert_eq!(peer.ip(), WAN_SERVER_ADDR, "the LAN host sees the WAN peer");
    // Both offers in one segment: both rewritten.
    let (ok, out) = w.offer(
        6667,
        60,
        &[
            "--nick",
            "carol",
            "--name",
            "two.bin",
            "--bytes",
            "50000",
            "--chat",
            "--together",
        ],
    );
    assert!(ok, "{out}\n{}", w.log());
    assert_eq!(
        field(&out, "chat_via")
            .parse::<SocketAddr>()
            .expect("chat via")
            .ip(),
        link
    );
    // The SEND offer written in two pieces, cut inside its address (two segments): joined.
    let (ok, out) = w.offer(
        6667,
        60,
        &[
            "--nick",
            "dave",
            "--name",
            "split.bin",
            "--bytes",
            "40000",
            "--split",
        ],
    );
    assert!(ok, "{out}\n{}", w.log());
    assert_eq!(
        field(&out, "send_via")
            .parse::<SocketAddr>()
            .expect("send via")
            .ip(),
        link
    );
}

#[test]
fn irc_ports_setting_moves_the_helper_and_an_empty_list_unloads_it() {
    let Some(mut w) = World::new("e2e_irc_ports", "irc_ports = [6697]") else {
        return;
    };
    let app = w.mc_ok(&["proc", "ip_masq/app"]);
    assert!(
        app.lines().any(|l| l.starts_with("TCP  6697 ")) && !app.contains("6667"),
        "{app}"
    );
    w.start_irc(6697, 1);
    let (ok, out) = w.offer(6697, 60, &["--bytes", "30000"]);
    assert!(ok, "{out}\n{}", w.log());
    assert_eq!(
        field(&out, "send_via")
            .parse::<SocketAddr>()
            .expect("via")
            .ip(),
        w.local_address()
    );
    drop(w);
    // Without the helper, the offer names the LAN address and the peer cannot reach it.
    let Some(mut w) = World::new("e2e_irc_unloaded", "irc_ports = []") else {
        return;
    };
    let app = w.mc_ok(&["proc", "ip_masq/app"]);
    assert!(!app.contains("irc"), "{app}");
    w.start_irc(6667, 1);
    let (ok, out) = w.offer(6667, 15, &["--bytes", "30000"]);
    assert!(!ok, "the transfer cannot work without the helper: {out}");
}
