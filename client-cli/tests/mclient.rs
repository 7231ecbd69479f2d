//! The real `mclient` binary against an in-process mserver on 127.0.0.1:0: login, token
//! file mode, whoami, exit codes, logout, and the shell reading a script from stdin.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use masqdial_server::auth;
use masqdial_server::config::{Config, ConnectionConfig, UserConfig, UserRole};
use masqdial_server::rpc::ServerState;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(30);

fn config() -> Config {
    let mut c = Config::default();
    c.server.allow = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    let h = |pw: &str| auth::hash_password_with(pw, auth::fast_params()).unwrap_or_default();
    c.users.push(UserConfig {
        name: "alice".into(),
        password_hash: h("alice-pw"),
        role: UserRole::User,
        connections: vec!["isp1".into()],
    });
    c.users.push(UserConfig {
        name: "root".into(),
        password_hash: h("root-pw"),
        role: UserRole::Admin,
        connections: vec![],
    });
    for n in ["isp1", "isp2"] {
        let cc: ConnectionConfig = toml::from_str(&format!("name = \"{n}\"\nnumbers = [\"555\"]"))
            .unwrap_or_else(|e| panic!("{e}"));
        c.connections.push(cc);
    }
    c
}

async fn start() -> (String, tokio::sync::oneshot::Sender<()>) {
    let state = ServerState::new(config(), None).unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(masqdial_server::server::run(
        listener,
        state,
        None,
        async move {
            let _ = rx.await;
        },
    ));
    (format!("http://{addr}"), tx)
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn mclient(
    server: &str,
    tokens: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mclient"));
    cmd.args(args)
        .env("MASQDIAL_SERVER", server)
        .env("MCLIENT_TOKEN_FILE", tokens)
        .env(
            "XDG_DATA_HOME",
            tokens.parent().unwrap_or(Path::new("/tmp")),
        )
        .env_remove("MCLIENT_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn mclient: {e}"));
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes()).await;
    }
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("mclient {args:?} did not finish"))
        .unwrap_or_else(|e| panic!("{e}"));
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn login_whoami_exit_codes_logout_and_shell() {
    let (server, stop) = start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tokens = dir.path().join("cfg").join("tokens.toml");

    // Not logged in: exit 3 and a hint.
    let o = mclient(&server, &tokens, &["whoami"], &[], "").await;
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("mclient login"), "{}", o.stderr);

    // Wrong password: exit 3.
    let o = mclient(
        &server,
        &tokens,
        &["--user", "alice", "login"],
        &[("MCLIENT_PASSWORD", "nope")],
        "",
    )
    .await;
    assert_eq!(o.code, 3, "{}", o.stderr);

    // Password from stdin (not a terminal).
    let o = mclient(
        &server,
        &tokens,
        &["--user", "alice", "login"],
        &[],
        "alice-pw\n",
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("logged in"), "{}", o.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tokens)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
    }
    // The password never lands in the token file.
    let stored = std::fs::read_to_string(&tokens).unwrap_or_default();
    assert!(!stored.contains("alice-pw"));

    let o = mclient(&server, &tokens, &["--json", "whoami"], &[], "").await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value =
        serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.stdout));
    assert_eq!(v["user"], "alice");
    assert_eq!(v["role"], "user");
    assert_eq!(v["allowed_connections"][0], "isp1");

    // Exit codes from gRPC status codes.
    assert_eq!(mclient(&server, &tokens, &["list"], &[], "").await.code, 9);
    assert_eq!(
        mclient(&server, &tokens, &["dial", "isp2"], &[], "")
            .await
            .code,
        4
    );
    assert_eq!(
        mclient(&server, &tokens, &["dial", "isp1"], &[], "")
            .await
            .code,
        9
    );
    assert_eq!(
        mclient(
            &server,
            &tokens,
            &["ipchains", "-A", "forward", "-j", "MASQ"],
            &[],
            ""
        )
        .await
        .code,
        4
    );
    assert_eq!(
        mclient(&server, &tokens, &["ipchains", "-A"], &[], "")
            .await
            .code,
        6
    );
    assert_eq!(
        mclient(&server, &tokens, &["hangup", "isp1", "--force"], &[], "")
            .await
            .code,
        4
    );
    assert_eq!(
        mclient(&server, &tokens, &["frobnicate"], &[], "")
            .await
            .code,
        2
    );

    // The shell runs the same grammar from a script on stdin.
    let o = mclient(
        &server,
        &tokens,
        &["shell"],
        &[],
        "whoami\nbogus\ndial isp2\nexit\nwhoami\n",
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout.matches("alice (user)").count(),
        1,
        "stops at exit: {}",
        o.stdout
    );
    assert!(
        o.stderr.contains("may not use connection `isp2`"),
        "{}",
        o.stderr
    );

    let o = mclient(&server, &tokens, &["logout"], &[], "").await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        mclient(&server, &tokens, &["whoami"], &[], "").await.code,
        3
    );

    // Unreachable server: exit 8.
    let o = mclient(
        "http://127.0.0.1:1",
        &tokens,
        &["--user", "alice", "login"],
        &[("MCLIENT_PASSWORD", "x")],
        "",
    )
    .await;
    assert_eq!(o.code, 8, "{}", o.stderr);
    let _ = stop.send(());
}

#[tokio::test]
async fn help_documents_exit_codes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let o = mclient(
        "http://127.0.0.1:1",
        &dir.path().join("t"),
        &["--help"],
        &[],
        "",
    )
    .await;
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("Exit codes:"), "{}", o.stdout);
    assert!(o.stdout.contains("UNAUTHENTICATED"), "{}", o.stdout);
}
