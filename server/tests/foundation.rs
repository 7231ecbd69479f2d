//! The real `mserver` binary: starts on the example config, reloads on SIGHUP keeping
//! tokens of remaining users, stops cleanly on SIGTERM, reports bad configs with file and
//! line, and runs `--demo` with working printed credentials.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_client::AuthClient;
use masqdial_server::auth;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

const LIMIT: Duration = Duration::from_secs(20);

fn mserver() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mserver"));
    c.env("RUST_LOG", "warn").kill_on_drop(true);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Connect, retrying while the server starts (bounded by LIMIT).
async fn channel(addr: &str) -> Channel {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        // Every call on this channel is bounded too.
        let ep = Channel::from_shared(format!("http://{addr}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .timeout(LIMIT);
        match ep.connect().await {
            Ok(c) => return c,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("server at {addr} never came up: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn login(ch: &Channel, user: &str, pw: &str) -> Result<String, tonic::Status> {
    AuthClient::new(ch.clone())
        .login(pb::LoginRequest {
            user: user.into(),
            password: pw.into(),
        })
        .await
        .map(|r| r.into_inner().token)
}

async fn whoami(ch: &Channel, token: &str) -> Result<String, tonic::Status> {
    let mut r = tonic::Request::new(pb::WhoAmIRequest {});
    let v = format!("Bearer {token}")
        .parse()
        .unwrap_or_else(|e| panic!("{e:?}"));
    r.metadata_mut().insert("authorization", v);
    AuthClient::new(ch.clone())
        .who_am_i(r)
        .await
        .map(|r| r.into_inner().user)
}

fn signal(child: &Child, sig: Signal) {
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or_else(|| panic!("no pid"));
    kill(Pid::from_raw(pid), sig).unwrap_or_else(|e| panic!("kill: {e}"));
}

async fn wait_exit(mut child: Child) -> std::process::ExitStatus {
    tokio::time::timeout(LIMIT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("mserver did not exit"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `text` with its `[server]` keeping state (saved sessions) under `dir`, not in
/// /var/lib/masqdial.
fn with_state(text: String, dir: &Path) -> String {
    text.replacen(
        "[server]\n",
        &format!(
            "[server]\nstate_dir = {:?}\n",
            dir.join("state").display().to_string()
        ),
        1,
    )
}

fn config_text(users: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("[server]\nallow = [\"127.0.0.0/8\"]\n\n");
    for (name, pw, role) in users {
        // The same hash for the same user each time: a changed hash revokes the user's
        // tokens at reload.
        static HASHES: std::sync::OnceLock<
            std::sync::Mutex<std::collections::HashMap<String, String>>,
        > = std::sync::OnceLock::new();
        let h = HASHES
            .get_or_init(Default::default)
            .lock()
            .map(|mut m| {
                m.entry(format!("{name}:{pw}"))
                    .or_insert_with(|| {
                        auth::hash_password_with(pw, auth::fast_params()).unwrap_or_default()
                    })
                    .clone()
            })
            .unwrap_or_default();
        s.push_str(&format!(
            "[[users]]\nname = \"{name}\"\npassword_hash = \"{h}\"\nrole = \"{role}\"\n\n"
        ));
    }
    s
}

#[tokio::test]
async fn example_config_starts_and_sigterm_stops() {
    // The example with its placeholder replaced, as `mserver init` writes it.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let example = dir.path().join("mserver.toml");
    let h = auth::hash_password_with("admin-pw", auth::fast_params()).unwrap_or_default();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ipmasq.rules");
    let text = masqdial_server::setup::init_text(&h)
        .replace(
            "ruleset = \"ipmasq.rules\"",
            &format!("ruleset = {:?}", rules.display().to_string()),
        )
        .replace(
            "state_dir = \"/var/lib/masqdial\"",
            &format!(
                "state_dir = {:?}",
                dir.path().join("state").display().to_string()
            ),
        );
    std::fs::write(&example, text).unwrap_or_else(|e| panic!("{e}"));
    let addr = format!("127.0.0.1:{}", free_port());
    let child = mserver()
        .arg("--config")
        .arg(&example)
        .args(["--listen", &addr])
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let ch = channel(&addr).await;
    let token = login(&ch, "admin", "admin-pw")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(whoami(&ch, &token).await.ok().as_deref(), Some("admin"));
    signal(&child, Signal::SIGTERM);
    assert!(wait_exit(child).await.success());
}

#[tokio::test]
async fn sighup_reloads_users_and_keeps_remaining_tokens() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mserver.toml");
    std::fs::write(
        &path,
        with_state(
            config_text(&[("root", "root-pw", "admin"), ("alice", "alice-pw", "user")]),
            dir.path(),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = mserver()
        .arg("--config")
        .arg(&path)
        .args(["--listen", &addr])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // The server's log, line by line (the broken reload below is judged by its log line).
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let (log_tx, mut log) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if log_tx.send(l).is_err() {
                break;
            }
        }
    });
    let ch = channel(&addr).await;
    let root = login(&ch, "root", "root-pw")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let alice = login(&ch, "alice", "alice-pw")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(login(&ch, "bob", "bob-pw").await.is_err());

    std::fs::write(
        &path,
        with_state(
            config_text(&[("root", "root-pw", "admin"), ("bob", "bob-pw", "user")]),
            dir.path(),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    signal(&child, Signal::SIGHUP);
    // Wait (bounded) until the reload is visible: bob can log in.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while login(&ch, "bob", "bob-pw").await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reload never happened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        whoami(&ch, &root).await.ok().as_deref(),
        Some("root"),
        "root's token survives"
    );
    assert_eq!(
        whoami(&ch, &alice).await.err().map(|e| e.code()),
        Some(tonic::Code::Unauthenticated)
    );

    // A broken file on SIGHUP keeps the server running with the old config.
    std::fs::write(&path, "[server]\nnonsense = 1\n").unwrap_or_else(|e| panic!("{e}"));
    signal(&child, Signal::SIGHUP);
    // Wait (bounded) for the server to say it refused the file, so the check below runs
    // after the reload, not before it.
    let refused = tokio::time::timeout(LIMIT, async {
        while let Some(l) = log.recv().await {
            if l.contains("reload failed") {
                return Some(l);
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    assert!(
        refused.is_some_and(|l| l.contains("nonsense")),
        "no reload-failed line naming the bad key"
    );
    assert_eq!(whoami(&ch, &root).await.ok().as_deref(), Some("root"));

    signal(&child, Signal::SIGINT);
    assert!(wait_exit(child).await.success());
}

#[tokio::test]
async fn bad_config_exits_nonzero_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[nat]\nport_low = \"x\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = tokio::time::timeout(LIMIT, mserver().arg("--config").arg(&path).output())
        .await
        .unwrap_or_else(|_| panic!("timeout"))
        .unwrap_or_else(|e| panic!("{e}"));
    // 78 = EX_CONFIG: the unit's RestartPreventExitStatus= stops the restart loop.
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml: line 5"), "{err}");
    assert!(err.contains("nat.port_low"), "{err}");

    // `check-config` says the same, with the same status, and starts nothing.
    let out = tokio::time::timeout(
        LIMIT,
        mserver()
            .args(["check-config", "--config"])
            .arg(&path)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("timeout"))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml: line 5"), "{err}");
}

/// A saved state file that is refused at start (here: torn) exits 78, the status systemd
/// does not restart on (the unit's `RestartPreventExitStatus=78`), not 2 every 5 s forever.
#[tokio::test]
async fn a_refused_state_file_exits_78() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        state.join(masqdial_server::persist::RULES_FILE),
        "# masqdial state: rules\n:input ACCEPT\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mserver.toml");
    let text = config_text(&[("admin", "pw", "admin")]).replacen(
        "[server]\n",
        &format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\nstate_dir = {:?}\n",
            free_port(),
            state.display().to_string()
        ),
        1,
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let (code, _, err) = run_mserver(&["--config".as_ref(), path.as_os_str()]).await;
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("rules"), "{err}");
}

/// Runs `mserver ARGS` to completion (bounded), returning (status, stdout, stderr).
async fn run_mserver(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(LIMIT, mserver().args(args).output())
        .await
        .unwrap_or_else(|_| panic!("timeout"))
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn init_then_check_config_then_the_printed_password_logs_in() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mserver.toml");
    let p = path.as_os_str();
    // The shipped example is refused by check-config, saying how to make a hash.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mserver.example.toml");
    let (code, _, err) = run_mserver(&[
        "check-config".as_ref(),
        "--config".as_ref(),
        example.as_os_str(),
    ])
    .await;
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("mserver hash-password"), "{err}");

    let (code, out, err) = run_mserver(&["init".as_ref(), "--config".as_ref(), p]).await;
    assert_eq!(code, Some(0), "{err}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("admin password: "))
        .unwrap_or_else(|| panic!("no password in: {out}"))
        .to_string();
    assert_eq!(password.len(), 20, "{out}");
    // A second init refuses to overwrite.
    let (code, _, err) = run_mserver(&["init".as_ref(), "--config".as_ref(), p]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("already exists"), "{err}");
    let (code, out, err) = run_mserver(&["check-config".as_ref(), "--config".as_ref(), p]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(": OK (1 users"), "{out}");

    // The server starts on it (state in the temp dir) and the printed password works.
    let text = std::fs::read_to_string(&path).unwrap_or_default().replace(
        "state_dir = \"/var/lib/masqdial\"",
        &format!(
            "state_dir = {:?}",
            dir.path().join("state").display().to_string()
        ),
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let addr = format!("127.0.0.1:{}", free_port());
    let child = mserver()
        .arg("--config")
        .arg(&path)
        .args(["--listen", &addr])
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let ch = channel(&addr).await;
    let token = login(&ch, "admin", &password)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(whoami(&ch, &token).await.ok().as_deref(), Some("admin"));
    signal(&child, Signal::SIGTERM);
    assert!(wait_exit(child).await.success());
}

#[tokio::test]
async fn demo_prints_working_credentials() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = mserver()
        .args(["--demo", "--listen", &addr])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let read = async {
        while let Ok(Some(l)) = lines.next_line().await {
            let done = l.contains("Stop with Ctrl-C");
            banner.push(l);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(LIMIT, read)
        .await
        .unwrap_or_else(|_| panic!("no banner"));
    let password = |user: &str| {
        banner
            .iter()
            .find(|l| l.trim_start().starts_with(user) && l.contains("password:"))
            .and_then(|l| l.split("password:").nth(1))
            .map(|p| p.trim().to_string())
            .unwrap_or_else(|| panic!("no password for {user} in {banner:?}"))
    };
    assert!(banner.iter().any(|l| l.contains(&addr)), "{banner:?}");
    let ch = channel(&addr).await;
    let t = login(&ch, "demo", &password("demo"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(whoami(&ch, &t).await.ok().as_deref(), Some("demo"));
    assert!(login(&ch, "admin", &password("admin")).await.is_ok());
    signal(&child, Signal::SIGTERM);
    assert!(wait_exit(child).await.success());
}

/// As root the demo builds its LAN in namespaces: it finds its own LAN interface there (no
/// "cannot tell the LAN interface" warning, REJECT and hairpinning work as configured), and
/// it removes the namespaces a demo killed hard left behind.
#[tokio::test]
async fn the_root_demo_knows_its_lan_and_removes_namespaces_of_killed_runs() {
    const TEST: &str =
        "foundation::the_root_demo_knows_its_lan_and_removes_namespaces_of_killed_runs";
    if !masqdial_testkit::root_available(TEST, "the demo's LAN in network namespaces") {
        return;
    }
    // Namespaces as a demo killed with SIGKILL leaves them (pid 4194303 is never running:
    // it is above the largest pid_max).
    let stale = ["mqdemo-gw-4194303", "mqdemo-lan-4194303"];
    for ns in stale {
        // Left by an earlier run of this test that failed before its cleanup: start afresh.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", ns])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {ns}");
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = mserver()
        .args(["--demo", "--listen", &addr])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = BufReader::new(stderr).lines();
    let mut log = Vec::new();
    let read = async {
        while let Ok(Some(l)) = lines.next_line().await {
            let done =
                l.contains("LAN side for the NAT engine") || l.contains("cannot tell the LAN");
            log.push(l);
            if done {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LIMIT, read).await;
    // Keep reading its log until it exits (a closed pipe would end it early).
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // Serving (its signal handling in place) before it is asked to stop.
    let _ch = channel(&addr).await;
    signal(&child, Signal::SIGTERM);
    let status = wait_exit(child).await;
    assert!(status.success(), "{status:?}: {log:#?}");
    drain.abort();
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for ns in stale {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", ns])
            .status();
    }
    assert!(
        !log.iter()
            .any(|l| l.contains("cannot tell the LAN interface")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("LAN side for the NAT engine") && l.contains("lan_interface=gw0")),
        "{log:#?}"
    );
    for ns in stale {
        assert!(!listed.contains(ns), "{ns} left behind: {listed}");
        assert!(
            log.iter()
                .any(|l| l.contains("removed a namespace") && l.contains(ns)),
            "{log:#?}"
        );
    }
}

#[tokio::test]
async fn passwords_and_tokens_never_reach_the_log_even_at_trace() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mserver.toml");
    std::fs::write(
        &path,
        with_state(config_text(&[("alice", "Secret-Pw-1", "user")]), dir.path()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = mserver()
        .env("RUST_LOG", "trace")
        .arg("--config")
        .arg(&path)
        .args(["--listen", &addr])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Drain the (large, trace-level) log from the start so the server never blocks on it.
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let reader = tokio::spawn(async move {
        let mut log = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            log.push_str(&l);
            log.push('\n');
        }
        log
    });
    let token = tokio::time::timeout(LIMIT, async {
        let ch = channel(&addr).await;
        let token = login(&ch, "alice", "Secret-Pw-1")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(whoami(&ch, &token).await.is_ok());
        assert!(login(&ch, "alice", "Wrong-Pw-2").await.is_err());
        assert!(login(&ch, "Typed-Pw-3", "x").await.is_err());
        token
    })
    .await
    .unwrap_or_else(|_| panic!("server did not answer"));
    signal(&child, Signal::SIGTERM);
    assert!(wait_exit(child).await.success());
    let log = tokio::time::timeout(LIMIT, reader)
        .await
        .unwrap_or_else(|_| panic!("log not closed"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(log.contains("login"), "log is empty?\n{log}");
    for secret in ["Secret-Pw-1", "Wrong-Pw-2", "Typed-Pw-3", token.as_str()] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
}

/// `GET /metrics` over a plain TCP connection; returns the body.
async fn scrape(addr: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(mut s) => {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut out = String::new();
                tokio::time::timeout(
                    LIMIT,
                    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut out),
                )
                .await
                .unwrap_or_else(|_| panic!("scrape timed out"))
                .unwrap_or_else(|e| panic!("{e}"));
                assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
                return out
                    .split_once("\r\n\r\n")
                    .map(|(_, b)| b.to_string())
                    .unwrap_or_default();
            }
            Err(e) if tokio::time::Instant::now() > deadline => panic!("metrics at {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn metrics_endpoint_serves_documented_names_and_plaintext_is_warned() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mserver.toml");
    let h = auth::hash_password_with("admin-pw", auth::fast_params()).unwrap_or_default();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ipmasq.rules");
    let mport = free_port();
    let text = masqdial_server::setup::init_text(&h)
        .replace(
            "ruleset = \"ipmasq.rules\"",
            &format!("ruleset = {:?}", rules.display().to_string()),
        )
        .replace(
            "state_dir = \"/var/lib/masqdial\"",
            &format!(
                "state_dir = {:?}",
                dir.path().join("state").display().to_string()
            ),
        )
        .replace(
            "token_ttl_s = 43200\n",
            &format!("token_ttl_s = 43200\nmetrics_listen = \"127.0.0.1:{mport}\"\n"),
        );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let port = free_port();
    // A wildcard listen address without TLS: the server must say it serves plaintext.
    let mut child = mserver()
        .arg("--config")
        .arg(&path)
        .args(["--listen", &format!("0.0.0.0:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = BufReader::new(stderr).lines();
    let warned = tokio::time::timeout(LIMIT, async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains("WARN") && l.contains("serving plaintext on a non-loopback address") {
                return Some(l);
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    assert!(warned.is_some(), "no plaintext warning");

    // One refused login, one refused token and one good call, through the metrics layer.
    let ch = channel(&format!("127.0.0.1:{port}")).await;
    let e = login(&ch, "admin", "wrong")
        .await
        .expect_err("bad password");
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let e = whoami(&ch, "no-such-token").await.expect_err("bad token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let tok = login(&ch, "admin", "admin-pw")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    whoami(&ch, &tok).await.unwrap_or_else(|e| panic!("{e}"));

    let body = scrape(&format!("127.0.0.1:{mport}")).await;
    for line in [
        "masqdial_auth_failures_total{reason=\"bad_credentials\"} 1".to_string(),
        "masqdial_auth_failures_total{reason=\"bad_token\"} 1".to_string(),
        "masqdial_rpc_duration_seconds_count{method=\"Auth/Login\",code=\"Unauthenticated\"} 1"
            .to_string(),
        "masqdial_rpc_duration_seconds_count{method=\"Auth/Login\",code=\"Ok\"} 1".to_string(),
        "masqdial_rpc_duration_seconds_count{method=\"Auth/WhoAmI\",code=\"Ok\"} 1".to_string(),
        format!(
            "masqdial_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        "# TYPE masqdial_link_up gauge".to_string(),
        "masqdial_link_up{connection=\"isp1\"} 0".to_string(),
        "masqdial_link_state{connection=\"isp1\",state=\"idle\"} 1".to_string(),
        "masqdial_link_bytes_total{connection=\"isp1\",direction=\"rx\"} 0".to_string(),
        "masqdial_masq_entries{protocol=\"udp\"} 0".to_string(),
        "masqdial_masq_free_ports{protocol=\"tcp\"} 40960".to_string(),
        "masqdial_masq_ports{protocol=\"icmp\"} 40960".to_string(),
        "# TYPE masqdial_drops counter".to_string(),
        "masqdial_drops_total{reason=\"forward_deny\"} 0".to_string(),
        "masqdial_chain_packets_total{chain=\"forward\",rule=\"1\"} 0".to_string(),
        "masqdial_chain_bytes_total{chain=\"forward\",rule=\"policy\"} 0".to_string(),
        "# TYPE masqdial_dial_attempts counter".to_string(),
        "# TYPE masqdial_rpc_duration_seconds histogram".to_string(),
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in:\n{body}"
        );
    }
    // Every family documented in deploy/METRICS.md, and every name served documented there.
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/METRICS.md"))
            .unwrap_or_default();
    for l in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = l.split(' ').next().unwrap_or_default();
        // OpenMetrics names a counter family without its samples' `_total`.
        assert!(
            doc.contains(&format!("`{name}`")) || doc.contains(&format!("`{name}_total`")),
            "{name} not in METRICS.md"
        );
    }
    signal(&child, Signal::SIGTERM);
    let st = wait_exit(child).await;
    assert!(st.success(), "mserver exit: {st:?}");
}
