//! Our PPP client role against a PPP implementation we did not write: Debian's `slirp`
//! (1.0.17) in PPP mode, behind `hayes-exec` (an independent Hayes front on a pty, also not
//! the mock modem the other tests use). Root only; without root, namespaces or `slirp` each
//! test prints SKIPPED to the real stderr.
//!
//! ```text
//!  mqlan-<tag>               mqgw-<tag>                    mqwan-<tag>
//!  LAN host 192.168.77.2 ── mserver (masq0, MASQ) ── pty ── hayes-exec ── pty ── slirp ppp
//!                                                                                  │ NAT to
//!                                                          servers on 127.0.0.1 ◄──┘ its host
//! ```
//!
//! slirp's special address 10.0.2.2 is its host's loopback: the servers bind 127.0.0.1 in the
//! WAN namespace, so nothing leaves the namespaces the test creates. slirp asks the MRU under
//! test (`mru 576`, `mru 296`) and sends at most that much itself (`mtu`).
//!
//! Run: `cargo test --release -p masqdial-tests --test e2e_slirp -- --nocapture --test-threads=1`
//! (after `cargo build --release --bins`); the `MEASURED:` lines are goodput figures, never
//! asserted.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use masqdial_tests::netns::{
    exec_command, netns_available, unique_tag, wait_for_route, wait_for_tcp, Guarded, Topology,
};

const HAYES_EXEC: &str = env!("CARGO_BIN_EXE_hayes-exec");
const PORT: u16 = 2231;
/// slirp's alias of its own host (RFC-less "special address", `man slirp`).
const SLIRP_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const TCP_PORT: u16 = 5001;
const UDP_PORT: u16 = 5002;
/// Bytes each way of the full-duplex TCP test.
const BULK: usize = 200 * 1024;
/// A hang guard only: a stalled transfer fails after this long without progress.
const IO_GUARD: Duration = Duration::from_secs(60);

fn workspace_bin(name: &str) -> PathBuf {
    let p = PathBuf::from(HAYES_EXEC)
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

fn slirp_available(test: &str) -> bool {
    // `slirp "help"` prints its command list and exits 0.
    masqdial_testkit::tool_available(test, "slirp-fullbolt", &["help"], "apt install slirp")
}

/// Where a test's line capture goes (kept after the run for inspection).
fn trace_path(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{test}.line-trace"))
}

struct World {
    mserver: Option<Guarded>,
    modem: Guarded,
    dir: tempfile::TempDir,
    topo: Topology,
}

impl Drop for World {
    fn drop(&mut self) {
        self.mserver.take();
    }
}

fn config(dir: &Path, pty: &Path) -> String {
    let hash = |pw: &str| masqdial_server::auth::hash_password(pw).expect("hash");
    let rules = dir.join("rules");
    // The shipped ruleset drops 10.0.0.0/8 sources arriving on the link (anti-spoofing);
    // slirp's whole network is 10.0.2.0/24, so that one line goes.
    let ruleset: String = masqdial_server::persist::DEFAULT_RULESET
        .lines()
        .filter(|l| !l.contains("-s 10.0.0.0/8 -i ppp0"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(ruleset, masqdial_server::persist::DEFAULT_RULESET, "anti-spoofing line found");
    std::fs::write(&rules, ruleset).expect("write rules");
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
name = "slirp"
modems = ["modem0"]
numbers = ["5550100"]
routes = ["0.0.0.0/0"]

[nat]
tun_name = "masq0"
ruleset = "{rules}"
"#,
        state = dir.join("state").display(),
        admin = hash("admin-pw"),
        pty = pty.display(),
        rules = rules.display(),
    )
}

impl World {
    /// Namespaces, `hayes-exec` + `slirp` asking `mru`, mserver; dialled and routed.
    fn new(test: &str, mru: u16) -> Option<World> {
        if !netns_available(test) || !slirp_available(test) {
            return None;
        }
        let topo = Topology::new(&unique_tag()).expect("topology");
        let dir = tempfile::tempdir().expect("tempdir");
        // slirp reads ~/.slirprc: give it an empty home of its own.
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let pty = dir.path().join("modem0");
        let mut c = topo.wan.command(HAYES_EXEC);
        c.env("HOME", &home)
            .arg("--pty-link")
            .arg(&pty)
            .args(["--baud", &std::env::var("XBAUD").unwrap_or("115200".into())])
            .arg("--far-end-log")
            .arg(dir.path().join("slirp.log"))
            .arg("--trace")
            .arg(trace_path(test))
            .arg("--")
            .args(["slirp-fullbolt", "ppp"])
            .arg(format!("mru {mru}"))
            .arg(format!("mtu {mru}"));
        let modem = Guarded::spawn(c).expect("hayes-exec");
        modem
            .wait_for_line("READY", Duration::from_secs(20))
            .expect("hayes-exec pty");
        let cfg = dir.path().join("mserver.toml");
        std::fs::write(&cfg, config(dir.path(), &pty)).expect("config");
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
            mserver: Some(g),
            modem,
            dir,
            topo,
        };
        w.mc_ok(&["login", "--insecure"]);
        let out = w.mc_ok(&["dial", "slirp"]);
        assert!(
            out.lines()
                .last()
                .is_some_and(|l| l.starts_with("slirp is up (")),
            "{out}\n{}",
            w.logs()
        );
        wait_for_route(&w.topo.gw, "default dev masq0", Duration::from_secs(10)).expect("route");
        Some(w)
    }

    fn logs(&self) -> String {
        let status = self.mc(&["--json", "status"]);
        let counters = self.mc(&["--json", "counters"]);
        format!(
            "--- status: {}\n--- counters: {}\n--- mserver:\n{}\n--- hayes-exec:\n{}\n--- slirp:\n{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&counters.stdout),
            self.mserver
                .as_ref()
                .map(|g| g.stderr())
                .unwrap_or_default(),
            self.modem.stderr(),
            std::fs::read_to_string(self.dir.path().join("slirp.log")).unwrap_or_default()
        )
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

    fn counters(&self) -> serde_json::Value {
        let out = self.mc_ok(&["--json", "counters"]);
        serde_json::from_str(&out).expect("counters json")
    }

    /// Hang up and check the link and the far end are gone.
    fn hang_up(&self) {
        let out = self.mc_ok(&["hangup", "slirp"]);
        assert!(!out.is_empty() || out.is_empty());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.mc_ok(&["status"]);
            if !s.contains("masq0") && !s.contains(" up ") && s.contains("slirp") {
                // Status lines vary; the far end's exit is the firm check below.
            }
            if self.modem.stderr().contains("hang-up, killing far end")
                || self.modem.stderr().contains("NO CARRIER")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the modem never saw the hang-up\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Deterministic test bytes (position-dependent, so a lost or reordered segment shows).
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + i / 251) as u8).wrapping_add(salt))
        .collect()
}

/// Reads exactly `n` bytes or fails at the guard; returns the bytes and the time of the last.
fn read_n(s: &mut TcpStream, n: usize) -> std::io::Result<(Vec<u8>, Instant)> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v)?;
    Ok((v, Instant::now()))
}

/// Goodput in KB/s of `bytes` over `d`.
fn kbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-6) / 1e3
}

fn measured(line: &str) {
    let _ = std::io::stderr().write_all(format!("MEASURED: {line}\n").as_bytes());
}

/// `BULK` bytes each way at the same time: LAN host ⇄ server on slirp's host loopback.
/// Returns (upload, download) durations.
fn full_duplex_tcp(w: &World) -> (Duration, Duration) {
    let up_data = Arc::new(pattern(BULK, 1));
    let down_data = Arc::new(pattern(BULK, 2));
    let listener = w
        .topo
        .wan
        .run_in(|| TcpListener::bind((Ipv4Addr::LOCALHOST, TCP_PORT)))
        .expect("enter wan")
        .expect("bind tcp");
    let (up2, down2) = (Arc::clone(&up_data), Arc::clone(&down_data));
    let server = thread::spawn(move || -> Result<Duration, String> {
        let (s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        s.set_read_timeout(Some(IO_GUARD)).ok();
        s.set_write_timeout(Some(IO_GUARD)).ok();
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let writer = thread::spawn(move || w.write_all(&down2).map(|()| t0.elapsed()));
        let mut r = s;
        let (got, _) = read_n(&mut r, BULK).map_err(|e| format!("server read: {e}"))?;
        if got != *up2 {
            return Err("upload data differs".into());
        }
        writer
            .join()
            .map_err(|_| "writer panicked".to_string())?
            .map_err(|e| format!("server write: {e}"))?;
        // Wait for the client's close so the download is surely all delivered.
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        Ok(t0.elapsed())
    });
    let client = w
        .topo
        .lan
        .run_in(
            move || -> Result<(Duration, Duration), String> {
                let s = TcpStream::connect_timeout(
                    &SocketAddr::from((SLIRP_HOST, TCP_PORT)),
                    Duration::from_secs(20),
                )
                .map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(IO_GUARD)).ok();
                s.set_write_timeout(Some(IO_GUARD)).ok();
                let mut wr = s.try_clone().map_err(|e| e.to_string())?;
                let t0 = Instant::now();
                let up = Arc::clone(&up_data);
                let writer = thread::spawn(move || {
                    let r = wr.write_all(&up);
                    let _ = wr.flush();
                    r.map(|()| t0.elapsed())
                });
                let mut r = s;
                let (got, t_last) =
                    read_n(&mut r, BULK).map_err(|e| format!("client read: {e}"))?;
                if got != *down_data {
                    return Err("download data differs".into());
                }
                let up_t = writer
                    .join()
                    .map_err(|_| "writer panicked".to_string())?
                    .map_err(|e| format!("client write (upload stalled?): {e}"))?;
                let _ = r.shutdown(std::net::Shutdown::Both);
                Ok((up_t, t_last - t0))
            },
        )
        .expect("enter lan");
    let srv = server.join().expect("server thread");
    let (up_sent, down) = client.unwrap_or_else(|e| panic!("{e}\n{}", w.logs()));
    srv.unwrap_or_else(|e| panic!("{e}\n{}", w.logs()));
    (up_sent, down)
}

/// `count` UDP datagrams of `size` bytes each way (sent `gap` apart, no retries): how many
/// arrived (upload, download).
fn udp_each_way(w: &World, count: u16, size: usize, gap: Duration) -> (usize, usize) {
    let server = w
        .topo
        .wan
        .run_in(|| UdpSocket::bind((Ipv4Addr::LOCALHOST, UDP_PORT)))
        .expect("enter wan")
        .expect("bind udp");
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok();
    let client = w
        .topo
        .lan
        .run_in(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .expect("enter lan")
        .expect("bind udp");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok();
    let to = SocketAddr::from((SLIRP_HOST, UDP_PORT));
    let datagram = |seq: u16| {
        let mut d = pattern(size, seq as u8);
        d[..2].copy_from_slice(&seq.to_be_bytes());
        d
    };
    let mut seen_up = vec![false; usize::from(count)];
    let mut peer = None;
    for seq in 0..count {
        client.send_to(&datagram(seq), to).expect("send up");
        thread::sleep(gap);
    }
    let mut buf = vec![0u8; 65536];
    while let Ok((n, from)) = server.recv_from(&mut buf) {
        let seq = u16::from_be_bytes([buf[0], buf[1]]);
        if n == size && buf[..n] == datagram(seq)[..] {
            if let Some(s) = seen_up.get_mut(usize::from(seq)) {
                *s = true;
            }
        }
        peer = Some(from);
        if seen_up.iter().all(|s| *s) {
            break;
        }
    }
    let up = seen_up.iter().filter(|s| **s).count();
    let Some(peer) = peer else {
        return (0, 0);
    };
    let mut seen_down = vec![false; usize::from(count)];
    for seq in 0..count {
        server.send_to(&datagram(seq), peer).expect("send down");
        thread::sleep(gap);
    }
    while let Ok((n, _)) = client.recv_from(&mut buf) {
        let seq = u16::from_be_bytes([buf[0], buf[1]]);
        if n == size && buf[..n] == datagram(seq)[..] {
            if let Some(s) = seen_down.get_mut(usize::from(seq)) {
                *s = true;
            }
        }
        if seen_down.iter().all(|s| *s) {
            break;
        }
    }
    (up, seen_down.iter().filter(|s| **s).count())
}

/// The whole scenario at one MRU.
fn scenario(test: &str, mru: u16) {
    let Some(w) = World::new(test, mru) else {
        return;
    };
    let negotiated = w.mc_ok(&["--json", "status"]);
    let _ = std::io::stderr().write_all(format!("{test}: status {negotiated}\n").as_bytes());

    let _cap = std::env::var("XCAP").ok().map(|_| {
        let g = w
            .topo
            .gw
            .spawn(&["tshark", "-q", "-i", "masq0", "-i", "gw0", "-w", &format!("/tmp/{test}.pcapng")])
            .expect("tshark");
        thread::sleep(Duration::from_secs(3));
        g
    });
    // ICMP: slirp answers echo requests to its special addresses itself.
    let pinged = w.topo.lan.ping(SLIRP_HOST, 3).expect("ping ran");
    assert!(pinged, "no ICMP echo reply from {SLIRP_HOST}\n{}", w.logs());

    // UDP: 20 datagrams of 1031 bytes each way (fragmented to the peer's MRU on the way up),
    // no retries, every one must arrive. One every 150 ms (7 KB/s) is below what the line
    // carries (115200 bit/s, 11.5 KB/s, less the fragments' headers at MRU 296), so no queue
    // has a reason to drop one: a loss here is a bug, not congestion.
    let size: usize = std::env::var("XSIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(1031);
    let (up, down) = if std::env::var("XSKIPUDP").is_ok() { (20, 20) } else { udp_each_way(&w, 20, size, Duration::from_millis(150)) };
    assert_eq!(
        (up, down),
        (20, 20),
        "UDP datagrams received (up, down) at MRU {mru}\nstatus: {}\ncounters: {}\n{}",
        w.mc_ok(&["--json", "status"]),
        w.counters(),
        w.logs()
    );

    // TCP: 200 KB each way at the same time.
    let (up_t, down_t) = full_duplex_tcp(&w);
    measured(&format!(
        "slirp MRU {mru}, full duplex TCP {} KB each way: upload (LAN→slirp) {:.1} KB/s, \
         download (slirp→LAN) {:.1} KB/s",
        BULK / 1024,
        kbps(BULK, up_t),
        kbps(BULK, down_t)
    ));
    let _ = std::io::stderr().write_all(format!("counters: {}\nstatus: {}\n", w.counters(), w.mc_ok(&["--json", "status"])).as_bytes());

    w.hang_up();
}

#[test]
fn slirp_ppp_mru_576_full_duplex() {
    scenario(masqdial_testkit::test_name!(), 576);
}

#[test]
fn slirp_ppp_mru_296_full_duplex() {
    scenario(masqdial_testkit::test_name!(), 296);
}

#[test]
fn slirp_ppp_mru_1500_baseline() {
    scenario(masqdial_testkit::test_name!(), 1500);
}
