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

use masqdial_tests::linetrace::{self, Dir, Frame};
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
    assert_ne!(
        ruleset,
        masqdial_server::persist::DEFAULT_RULESET,
        "anti-spoofing line found"
    );
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
            // Both directions at the line rate of a real 115200 bit/s modem link, so the
            // download queues where it would (the modem and access server), not nowhere.
            .args(["--baud", "115200"])
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

    /// Hang up: the modem must see it (escape + ATH) and kill the far end.
    fn hang_up(&self) {
        let t = Instant::now();
        self.mc_ok(&["hangup", "slirp"]);
        let deadline = t + Duration::from_secs(30);
        while !self.modem.stderr().contains("hang-up, killing far end") {
            assert!(
                Instant::now() < deadline,
                "the modem never saw the hang-up\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(100));
        }
        measured(&format!(
            "slirp hang-up took {:.2} s",
            t.elapsed().as_secs_f64()
        ));
    }

    /// The PPP frames on the line so far, (sent by us, sent by slirp).
    fn capture(&self, test: &str) -> (Vec<Frame>, Vec<Frame>) {
        let text = std::fs::read_to_string(trace_path(test)).expect("line trace");
        let (out, so) = linetrace::frames(&text, Dir::Out);
        let (inn, si) = linetrace::frames(&text, Dir::In);
        assert_eq!(
            (so.bad, si.bad),
            (0, 0),
            "frames with a bad FCS on the line"
        );
        (out, inn)
    }
}

/// Deterministic test bytes (position-dependent, so a lost or reordered segment shows).
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + i / 251) as u8).wrapping_add(salt))
        .collect()
}

/// Goodput in KB/s of `bytes` over `d`.
fn kbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-6) / 1e3
}

fn measured(line: &str) {
    let _ = std::io::stderr().write_all(format!("MEASURED: {line}\n").as_bytes());
}

/// `BULK` bytes each way at the same time: LAN host ⇄ server on slirp's host loopback. Both
/// must arrive whole and in order. Returns the time until the last byte was received at
/// the server (upload) and at the LAN host (download), from the connection's start.
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
    let t0 = Instant::now();
    let server = thread::spawn(move || -> Result<Duration, String> {
        // Bounded: a client that never connects must not hang the test.
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if t0.elapsed() > IO_GUARD {
                        return Err("no connection came".into());
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        s.set_nonblocking(false).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(IO_GUARD)).ok();
        s.set_write_timeout(Some(IO_GUARD)).ok();
        let mut wr = s.try_clone().map_err(|e| e.to_string())?;
        let writer = thread::spawn(move || wr.write_all(&down2));
        let mut r = s;
        let mut got = vec![0u8; BULK];
        r.read_exact(&mut got)
            .map_err(|e| format!("server read (upload stalled?): {e}"))?;
        let up_done = t0.elapsed();
        if got != *up2 {
            return Err("upload data differs".into());
        }
        writer
            .join()
            .map_err(|_| "server writer panicked".to_string())?
            .map_err(|e| format!("server write (download stalled?): {e}"))?;
        // Wait for the client's close so the download is surely all delivered.
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        Ok(up_done)
    });
    let client = w
        .topo
        .lan
        .run_in(move || -> Result<Duration, String> {
            let s = TcpStream::connect_timeout(
                &SocketAddr::from((SLIRP_HOST, TCP_PORT)),
                Duration::from_secs(20),
            )
            .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(IO_GUARD)).ok();
            s.set_write_timeout(Some(IO_GUARD)).ok();
            let mut wr = s.try_clone().map_err(|e| e.to_string())?;
            let up = Arc::clone(&up_data);
            let writer = thread::spawn(move || wr.write_all(&up));
            let mut r = s;
            let mut got = vec![0u8; BULK];
            r.read_exact(&mut got)
                .map_err(|e| format!("client read (download stalled?): {e}"))?;
            let down_done = t0.elapsed();
            if got != *down_data {
                return Err("download data differs".into());
            }
            writer
                .join()
                .map_err(|_| "client writer panicked".to_string())?
                .map_err(|e| format!("client write (upload stalled?): {e}"))?;
            let _ = r.shutdown(std::net::Shutdown::Both);
            Ok(down_done)
        })
        .expect("enter lan");
    let srv = server.join().expect("server thread");
    let down = client.unwrap_or_else(|e| panic!("{e}\n{}", w.logs()));
    let up = srv.unwrap_or_else(|e| panic!("{e}\n{}", w.logs()));
    (up, down)
}

/// A UDP datagram of `size` bytes numbered `seq`.
fn datagram(seq: u16, size: usize) -> Vec<u8> {
    let mut d = pattern(size, seq as u8);
    d[..2].copy_from_slice(&seq.to_be_bytes());
    d
}

/// Receives datagrams until `count` distinct good ones came or 5 s pass without one.
fn receive(sock: &UdpSocket, count: u16, size: usize) -> (usize, Option<SocketAddr>) {
    let mut seen = vec![false; usize::from(count)];
    let mut from = None;
    let mut buf = vec![0u8; 65536];
    while let Ok((n, f)) = sock.recv_from(&mut buf) {
        let seq = u16::from_be_bytes([buf[0], buf[1]]);
        if n == size && buf[..n] == datagram(seq, size)[..] {
            if let Some(s) = seen.get_mut(usize::from(seq)) {
                *s = true;
            }
        }
        from = Some(f);
        if seen.iter().all(|s| *s) {
            break;
        }
    }
    (seen.iter().filter(|s| **s).count(), from)
}

/// UDP through the link: `count` datagrams of `size` bytes up (LAN host → server), then
/// (if `down`) `count` down, each direction paced `gap` apart, no retries. Returns how many
/// arrived each way. A small datagram first tells the server the masqueraded address.
fn udp_each_way(w: &World, count: u16, size: usize, gap: Duration, down: bool) -> (usize, usize) {
    let server = w
        .topo
        .wan
        .run_in(|| UdpSocket::bind((Ipv4Addr::LOCALHOST, UDP_PORT)))
        .expect("enter wan")
        .expect("bind udp");
    server.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let client = w
        .topo
        .lan
        .run_in(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .expect("enter lan")
        .expect("bind udp");
    client.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let to = SocketAddr::from((SLIRP_HOST, UDP_PORT));
    client.send_to(b"hello", to).expect("send hello");
    let mut buf = [0u8; 64];
    let (_, peer) = server
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no small datagram through the link: {e}\n{}", w.logs()));
    for seq in 0..count {
        client.send_to(&datagram(seq, size), to).expect("send up");
        thread::sleep(gap);
    }
    let (up, _) = receive(&server, count, size);
    if !down {
        return (up, 0);
    }
    for seq in 0..count {
        server
            .send_to(&datagram(seq, size), peer)
            .expect("send down");
        thread::sleep(gap);
    }
    let (down, _) = receive(&client, count, size);
    (up, down)
}

/// The UDP datagrams of `size` bytes (UDP payload) from the LAN host that crossed the line
/// whole: their fragments, if any, all there and reassembling to the right bytes.
fn udp_on_line(out: &[Frame], size: usize) -> usize {
    let packets: Vec<&[u8]> = linetrace::ipv4(out).map(|f| f.info.as_slice()).collect();
    linetrace::reassembled(&packets)
        .iter()
        .filter(|d| {
            d.len() == 8 + size && {
                let seq = u16::from_be_bytes([d[8], d[9]]);
                d[8..] == datagram(seq, size)[..]
            }
        })
        .count()
}

/// The whole scenario at one MRU.
fn scenario(test: &str, mru: u16) {
    let Some(w) = World::new(test, mru) else {
        return;
    };

    // ICMP: slirp answers echo requests to its special addresses itself.
    let pinged = w.topo.lan.ping(SLIRP_HOST, 3).expect("ping ran");
    assert!(pinged, "no ICMP echo reply from {SLIRP_HOST}\n{}", w.logs());

    // UDP, 20 datagrams of 1031 bytes each way, no retries. One every 150 ms (7 KB/s) is
    // below what the line carries (11.5 KB/s, less the fragments' headers), so no queue has
    // a reason to drop one.
    //
    // A Linux LAN host sets DF on UDP (IP_PMTUDISC_WANT): its first datagram larger than the
    // link is answered with Frag-Needed by the gateway (RFC 1191) and lost, which is the "1
    // of 20 lost" seen at MRU 576. The host then knows the path MTU and fragments itself.
    // That is the protocol working; show it once, then send the 20 with PMTU known.
    let size = 1031;
    if usize::from(mru) < size + 28 {
        let (up1, _) = udp_each_way(&w, 1, size, Duration::ZERO, false);
        let o = w
            .topo
            .lan
            .exec(&["ip", "-4", "route", "get", &SLIRP_HOST.to_string()], CMD)
            .expect("ip route get");
        let route = String::from_utf8_lossy(&o.stdout).into_owned();
        // Linux keeps a learnt path MTU at least net.ipv4.route.min_pmtu (552) and then
        // sends without DF ("mtu lock"), leaving the rest to the gateway.
        let learnt = if mru < 552 {
            "mtu lock 552".to_string()
        } else {
            format!("mtu {mru}")
        };
        assert!(
            o.status.success() && route.contains(&learnt),
            "the LAN host learnt the path MTU from the gateway's Frag-Needed: {route}"
        );
        measured(&format!(
            "slirp MRU {mru}: first UDP {size}-byte datagram with DF: {up1}/1 delivered \
             (Frag-Needed expected)"
        ));
    }
    // Datagrams that fit the MRU: every one each way, whatever the peer's fragmentation.
    let fit = usize::from(mru) - 28;
    let (up, down) = udp_each_way(&w, 20, fit, Duration::from_millis(150), true);
    assert_eq!(
        (up, down),
        (20, 20),
        "UDP datagrams of {fit} bytes delivered (up, down) at MRU {mru}\n{}",
        w.logs()
    );
    // TCP: 200 KB each way at the same time.
    let (up_t, down_t) = full_duplex_tcp(&w);
    measured(&format!(
        "slirp MRU {mru}, 115200 bit/s, full duplex TCP {} KB each way: upload (LAN→slirp) \
         {:.1} KB/s, download (slirp→LAN) {:.1} KB/s",
        BULK / 1024,
        kbps(BULK, up_t),
        kbps(BULK, down_t)
    ));

    // Our frames fit the peer's MRU (the information field, RFC 1661 §6.1), and the LAN
    // host's TCP segments were clamped to it (MSS mru − 40 in the SYN-ACK it saw).
    let (out, _) = w.capture(test);
    let largest = linetrace::ipv4(&out)
        .map(|f| f.info.len())
        .max()
        .unwrap_or(0);
    assert!(
        largest <= usize::from(mru),
        "a frame of {largest} bytes to a peer with MRU {mru}"
    );
    let largest_tcp = linetrace::ipv4(&out)
        .filter(|f| f.info.len() >= 40 && f.info[9] == 6)
        .map(|f| {
            let p = &f.info;
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            let doff = p.get(ihl + 12).map_or(20, |b| usize::from(b >> 4) * 4);
            total.saturating_sub(ihl + doff)
        })
        .max()
        .unwrap_or(0);
    assert!(
        largest_tcp <= usize::from(mru) - 40,
        "a TCP segment of {largest_tcp} bytes at MRU {mru}"
    );

    let before = w.capture(test).0.len();
    // slirp 1.0.17 (amd64) cannot fragment: at MTU 576 it sent 576-byte truncated datagrams
    // without MF, then exited (the modem said NO CARRIER). So the big ones go down only
    // where they fit.
    let fits = usize::from(mru) >= size + 28;
    let (up, down) = udp_each_way(&w, 20, size, Duration::from_millis(150), fits);
    let (out, _) = w.capture(test);
    let whole_on_line = udp_on_line(&out[before..], size);
    let packets: Vec<&[u8]> = linetrace::ipv4(&out[before..])
        .map(|f| f.info.as_slice())
        .collect();
    let broken = linetrace::incomplete(&packets);
    let far_end_gone = w.modem.stderr().contains("far end exited");
    let received = if fits {
        format!("{down}/20 received from it")
    } else {
        "none sent down (slirp cannot fragment)".to_string()
    };
    measured(&format!(
        "slirp MRU {mru}: UDP {size} bytes: {whole_on_line}/20 crossed the line whole (as \
         fragments of at most {mru}), {up}/20 delivered by slirp, {received}"
    ));
    assert_eq!(
        broken,
        0,
        "a datagram crossed the line in part\n{}",
        w.logs()
    );
    // slirp may exit on our fragments (see below); every datagram sent until then is whole.
    assert!(
        whole_on_line == 20 || (far_end_gone && whole_on_line >= 1),
        "{whole_on_line}/20 datagrams crossed the line whole\n{}",
        w.logs()
    );
    if fits {
        assert_eq!(
            (up, down),
            (20, 20),
            "UDP datagrams delivered at MRU {mru}\n{}",
            w.logs()
        );
    }
    // Below that slirp 1.0.17 (amd64) gets our datagrams as fragments and never delivers
    // them (a 2000-byte datagram at MRU 1500 is lost the same way), and at MRU 576 it exits
    // right after the twentieth (the modem says NO CARRIER): this part comes last, and the
    // hang-up is checked only where no fragments went to slirp. The capture shows ours were
    // whole and right, so the delivered count is only shown.
    if fits {
        w.hang_up();
    }
}

/// Timeout of the small commands.
const CMD: Duration = Duration::from_secs(20);

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
