//! Issue 29, the views an admin watches all day, with the real `mclient` against a REAL
//! in-process mserver (rpc layer and link manager) dialling mock modems on pseudo-terminals:
//! - a BUSY dial with a redial prints each step once, says BUSY, counts its attempts on, and
//!   gives its reason once (exit 12); `cinfo -t` and `--json` show the transcript's times;
//! - `mclient watch` follows holders joining and releasing an up link;
//! - a port answered by something other than mserver is named (exit 8): a plain TCP
//!   service, an HTTP/1 server, a gRPC server without masqdial (health only).

mod fake;

use fake::run_mclient as mclient;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use masqdial_ppp::AuthProtocol;
use masqdial_server::auth;
use masqdial_server::config::{
    Config, ConnectionConfig, FlowControl, ModemConfig, UserConfig, UserRole,
};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::manager::LinkManager;
use masqdial_server::nat_control::NatControl;
use masqdial_server::rpc::{ControlPlane, ServerState};
use masqdial_server::shutdown::Shutdown;
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::{spawn_pty, PtyModem};
use masqdial_sim::modem::{CallResult, MockModemConfig, Outcome};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Hang guard for one wait (a loaded 2-core box: generous).
const LIMIT: Duration = Duration::from_secs(60);

fn modem(name: &str, device: &Path) -> ModemConfig {
    ModemConfig {
        name: name.into(),
        device: device.to_path_buf(),
        baud: 115_200,
        data_bits: 8,
        parity: Default::default(),
        stop_bits: 1,
        flow_control: FlowControl::None,
        init: vec!["ATZ".into()],
        cellular: None,
    }
}

/// isp1 (5550100 on modem0, answers) and isp2 (5550199 on modem1, always BUSY, two rounds).
fn config(m0: &Path, m1: &Path, state: &Path) -> Config {
    let mut c = Config::default();
    c.server.allow = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    c.server.state_dir = state.to_path_buf();
    let h = |pw: &str| auth::hash_password_with(pw, auth::fast_params()).unwrap_or_default();
    c.users.push(UserConfig {
        name: "alice".into(),
        password_hash: h("alice-pw"),
        role: UserRole::User,
        connections: vec!["isp1".into(), "isp2".into()],
    });
    c.users.push(UserConfig {
        name: "root".into(),
        password_hash: h("root-pw"),
        role: UserRole::Admin,
        connections: vec![],
    });
    c.modems.push(modem("modem0", m0));
    c.modems.push(modem("modem1", m1));
    for (name, number, modem, attempts) in [
        ("isp1", "5550100", "modem0", 1),
        ("isp2", "5550199", "modem1", 2),
    ] {
        let mut cc: ConnectionConfig = toml::from_str(&format!(
            "name = \"{name}\"\nnumbers = [\"{number}\"]\nmodems = [\"{modem}\"]"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        cc.username = "demo".into();
        cc.password = "secret".into();
        cc.redial_attempts = attempts;
        cc.redial_delay_s = 1;
        cc.routes = vec![];
        c.connections.push(cc);
    }
    c
}

struct World {
    server: String,
    dir: tempfile::TempDir,
    _modems: (PtyModem, PtyModem),
    _stop: (tokio::sync::oneshot::Sender<()>, Shutdown),
    busy_device: String,
}

async fn world() -> World {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let m0 = spawn_pty(MockModemConfig::default(), isp.clone().factory())
        .unwrap_or_else(|e| panic!("{e}"));
    let m1 = spawn_pty(
        MockModemConfig {
            outcomes: HashMap::from([("5550199".to_string(), Outcome::now(CallResult::Busy))]),
            ..MockModemConfig::default()
        },
        isp.factory(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = config(m0.path(), m1.path(), &dir.path().join("state"));
    let nat = NatHandle::new(
        masqdial_server::persist::build_engine(&cfg).unwrap_or_else(|e| panic!("engine: {e}")),
    );
    let stop = Shutdown::new();
    let control = ControlPlane {
        links: LinkManager::start(&cfg, Uplink::new(nat.clone(), None, None), &stop),
        nat: NatControl::new(std::sync::Arc::new(cfg.clone()), nat, None),
    };
    let state = ServerState::new(cfg, Some(control)).unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let server = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(masqdial_server::server::run(
        listener,
        state,
        None,
        async move {
            let _ = rx.await;
        },
    ));
    let busy_device = m1.path().display().to_string();
    let w = World {
        server,
        dir,
        _modems: (m0, m1),
        _stop: (tx, stop),
        busy_device,
    };
    for (u, pw) in [("alice", "alice-pw"), ("root", "root-pw")] {
        let o = w
            .run(&["-u", u, "login"], &[("MASQDIAL_PASSWORD", pw)])
            .await;
        assert_eq!(o.code, 0, "login {u}: {}", o.stderr);
    }
    w
}

impl World {
    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> fake::Out {
        mclient(self.dir.path(), &self.server, args, env, "").await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_dial_with_a_redial_says_busy_counts_on_and_gives_its_reason_once() {
    let w = world().await;
    let o = w.run(&["-u", "alice", "dial", "isp2"], &[]).await;
    assert_eq!(o.code, 12, "{}{}", o.stdout, o.stderr);
    assert_eq!(
        o.stdout,
        format!(
            "initialising modem modem1 ({})\n\
             init 1/1: ATZ\n\
             dialing 5550199 (number 1 of 1, attempt 1 of 2)\n\
             BUSY from 5550199\n\
             redialing in 1 s (attempt 2)\n\
             dialing 5550199 (number 1 of 1, attempt 2 of 2)\n",
            w.busy_device
        )
    );
    assert_eq!(
        o.stderr,
        "mclient: Dialling isp2 failed: BUSY from 5550199; all 1 number(s) tried 2 time(s).\n\
         hint: `mclient cinfo isp2` shows the transcript of the attempt\n"
    );

    // The transcript: each line once; with -t, each line's time (UTC, milliseconds).
    let o = w.run(&["-u", "alice", "cinfo", "isp2"], &[]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let plain: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("  [")).collect();
    assert_eq!(
        plain,
        [
            "  [send] ATZ",
            "  [recv] OK",
            "  [info] dialling 5550199 (number 1 of 1, attempt 1 of 2)",
            "  [send] ATDT5550199",
            "  [recv] BUSY",
            "  [info] BUSY from 5550199; dialling 5550199 in 1000 ms",
            "  [info] dialling 5550199 (number 1 of 1, attempt 2 of 2)",
            "  [send] ATDT5550199",
            "  [recv] BUSY",
            "  [error] BUSY from 5550199; all 1 number(s) tried 2 time(s)",
        ],
        "{}",
        o.stdout
    );
    let o = w.run(&["-u", "alice", "cinfo", "-t", "isp2"], &[]).await;
    let timed: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" ["))
        .collect();
    assert_eq!(timed.len(), plain.len(), "{}", o.stdout);
    for (t, p) in timed.iter().zip(&plain) {
        // "  HH:MM:SS.mmm [kind] text"
        let (clock, rest) = t[2..].split_at(12);
        assert!(
            clock.len() == 12
                && clock.as_bytes()[2] == b':'
                && clock.as_bytes()[8] == b'.'
                && clock.bytes().filter(u8::is_ascii_digit).count() == 9,
            "{t}"
        );
        assert_eq!(format!("  {}", &rest[1..]), *p);
    }
    let o = w
        .run(&["--json", "-u", "alice", "cinfo", "isp2"], &[])
        .await;
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    let ats: Vec<&str> = v["transcript"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|l| l["at"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ats.len(), plain.len());
    let mut last = "";
    for a in ats {
        // 2026-12-08T01:02:03.456Z, never going back.
        assert!(
            a.len() == 24 && a.ends_with('Z') && &a[19..20] == ".",
            "{a}"
        );
        assert!(a >= last, "{a} < {last}");
        last = a;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_holders_joining_and_releasing_an_up_link() {
    let w = world().await;
    let d = w.dir.path();
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_mclient"));
    watch
        .args(["-u", "root", "watch"])
        .env("MASQDIAL_SERVER", &w.server)
        .env("XDG_CONFIG_HOME", d.join("cfg"))
        .env("XDG_DATA_HOME", d.join("data"))
        .env("HOME", d)
        .env_remove("MASQDIAL_TOKEN_FILE")
        .env_remove("MASQDIAL_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut watcher = watch.spawn().unwrap_or_else(|e| panic!("watch: {e}"));
    let mut lines =
        BufReader::new(watcher.stdout.take().unwrap_or_else(|| panic!("stdout"))).lines();
    let mut seen = Vec::new();
    // The watch has started once it shows the links' first states.
    wait_line(&mut lines, &mut seen, "isp2: idle").await;
    let o = w.run(&["-u", "alice", "dial", "isp1"], &[]).await;
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let o = w.run(&["-u", "root", "dial", "isp1"], &[]).await;
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    wait_line(
        &mut lines,
        &mut seen,
        "isp1: held by alice@127.0.0.1, root@127.0.0.1",
    )
    .await;
    let o = w.run(&["-u", "alice", "hangup", "isp1"], &[]).await;
    assert_eq!(
        o.stdout, "isp1: released; still held by root\n",
        "{}",
        o.stderr
    );
    wait_line(&mut lines, &mut seen, "isp1: held by root@127.0.0.1").await;
    // `who` agrees with what the watch said.
    let o = w.run(&["-u", "alice", "who"], &[]).await;
    let holders: Vec<&str> = o.stdout.lines().skip(1).collect();
    assert_eq!(holders.len(), 1, "{}", o.stdout);
    assert!(
        holders[0].starts_with("isp1") && holders[0].contains(" root "),
        "{}",
        o.stdout
    );
    let _ = w
        .run(&["-u", "root", "hangup", "--force", "isp1"], &[])
        .await;
    let _ = watcher.kill().await;
}

/// Read the watch's lines until `want` (bounded); fails naming what was seen.
async fn wait_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: &mut Vec<String>,
    want: &str,
) {
    let found = tokio::time::timeout(LIMIT, async {
        while let Ok(Some(l)) = lines.next_line().await {
            let hit = l == want;
            seen.push(l);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no line {want:?}; saw {seen:#?}");
}

/// Serve `answer` to every connection on a loopback port (after reading what comes first).
async fn banner_server(answer: &'static [u8]) -> String {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                let _ = s.write_all(answer).await;
                // Held open: what it said is judged, not its closing (a closed connection
                // tells nothing: mserver itself closes on addresses outside its allow-list).
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_answered_by_something_else_says_what_answered_with_exit_8() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let http = banner_server(
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let ssh = banner_server(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;

    // A gRPC server with only the standard health service (no masqdial).
    let (_reporter, health) = tonic_health::server::health_reporter();
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let grpc = format!(
        "http://{}",
        l.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    );

    for (server, what) in [
        (
            &http,
            "an HTTP server answered (status 400), not a gRPC server",
        ),
        (&ssh, "what answered there is not a gRPC server"),
        (
            &grpc,
            "a gRPC server answered, but not masqdial (it has no masqdial service)",
        ),
    ] {
        // Without a token (it used to say "not logged in") and with one that server never
        // issued (it used to say "does not support `list`, upgrade mserver").
        for (n, args) in [
            &["list"][..],
            &["whoami"][..],
            &["dial", "isp1"][..],
            &["list"][..],
        ]
        .into_iter()
        .enumerate()
        {
            if n == 3 {
                masqdial_cli::store::TokenStore::at(
                    dir.path().join("cfg").join("masqdial").join("tokens.toml"),
                )
                .put(masqdial_cli::store::StoredToken {
                    server: server.clone(),
                    user: "alice".into(),
                    token: "ab".repeat(32),
                    expires_at: None,
                    role: masqdial_proto::v1::Role::User as i32,
                })
                .unwrap_or_else(|e| panic!("{e}"));
            }
            let o = mclient(dir.path(), server, args, &[], "").await;
            assert_eq!(o.code, 8, "{server} {args:?}: {}", o.stderr);
            assert!(
                o.stderr
                    .starts_with(&format!("mclient: The server at {server} is not mserver: ")),
                "{server} {args:?}: {}",
                o.stderr
            );
            assert!(o.stderr.contains(what), "{server} {args:?}: {}", o.stderr);
            assert!(
                o.stderr.contains("\nhint: check the host and port"),
                "{}",
                o.stderr
            );
        }
        let o = mclient(dir.path(), server, &["--json", "list"], &[], "").await;
        assert_eq!(o.code, 8, "{}", o.stdout);
        let v: serde_json::Value =
            serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout));
        assert_eq!(v["error"]["kind"], "unreachable", "{v}");
    }
}
