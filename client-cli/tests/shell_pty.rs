//! The mclient shell on a real pseudo-terminal (driven through tmux): prompt, completion of
//! commands and connection names, a command's output, Ctrl-C, `exit`, and the history file.
//! Prints SKIPPED when tmux is not installed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use masqdial_server::auth;
use masqdial_server::config::{Config, ConnectionConfig, UserConfig, UserRole};
use masqdial_server::rpc::ServerState;
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(20);

struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn alive(&self) -> bool {
        let st = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(["has-session", "-t", "s"])
            .output();
        st.map(|o| o.status.success()).unwrap_or(false)
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "s"])
    }

    /// Wait (bounded) until the screen shows `text` at least `n` times (e.g. the n-th prompt,
    /// so keys are only sent while rustyline is reading).
    async fn wait_count(&self, text: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let s = self.screen();
            if s.matches(text).count() >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never saw {text:?} x{n}; screen:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait (bounded) until the screen contains `text`.
    async fn wait_for(&self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never saw {text:?}; screen:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only the tmux server on our private socket.
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

fn config() -> Config {
    let mut c = Config::default();
    c.server.allow = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    let h = auth::hash_password_with("alice-pw", auth::fast_params()).unwrap_or_default();
    c.users.push(UserConfig {
        name: "alice".into(),
        password_hash: h,
        role: UserRole::User,
        connections: vec!["isp1".into()],
    });
    let cc: ConnectionConfig =
        toml::from_str("name = \"isp1\"\nnumbers = [\"555\"]").unwrap_or_else(|e| panic!("{e}"));
    c.connections.push(cc);
    c
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[tokio::test]
async fn shell_on_a_pty_completes_runs_and_keeps_history() {
    if !masqdial_testkit::tool_available(
        masqdial_testkit::test_name!(),
        "tmux",
        &["-V"],
        "apt-get install -y tmux",
    ) {
        return;
    }
    let state = ServerState::new(config(), None).unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let server = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(masqdial_server::server::run(
        listener,
        state,
        None,
        async move {
            let _ = stop_rx.await;
        },
    ));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tokens = dir.path().join("tokens.toml");
    let bin = Path::new(env!("CARGO_BIN_EXE_mclient"));
    let login = tokio::process::Command::new(bin)
        .args(["--server", &server, "--user", "alice", "login"])
        .env("MASQDIAL_PASSWORD", "alice-pw")
        .env("MASQDIAL_TOKEN_FILE", &tokens)
        .env("MASQDIAL_CONFIG", dir.path().join("client.toml"))
        .kill_on_drop(true)
        .output();
    let login = tokio::time::timeout(LIMIT, login)
        .await
        .unwrap_or_else(|_| panic!("login hung"));
    let login = login.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );

    let tmux = Tmux {
        socket: format!("mclient-test-{}", std::process::id()),
    };
    let cmd = format!(
        "env MASQDIAL_SERVER={server} MASQDIAL_TOKEN_FILE={} MASQDIAL_CONFIG={} XDG_DATA_HOME={} {} shell",
        q(&tokens),
        q(&dir.path().join("client.toml")),
        q(dir.path()),
        q(bin)
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "s",
        "-x",
        "120",
        "-y",
        "30",
        &cmd,
    ]);
    // The prompt names the user and the server.
    let prompt = format!("mclient alice@{}>", server.trim_start_matches("http://"));
    tmux.wait_count(&prompt, 1).await;

    // Command completion, then run it.
    tmux.run(&["send-keys", "-t", "s", "whoa", "Tab"]);
    tmux.wait_for("whoami").await;
    tmux.run(&["send-keys", "-t", "s", "Enter"]);
    tmux.wait_for(&format!("alice (user) at {server}, seen from 127.0.0.1"))
        .await;
    tmux.wait_count(&prompt, 2).await;

    // Connection-name completion (from the user's allowed connections), then Ctrl-C drops the line.
    tmux.run(&["send-keys", "-t", "s", "dial is", "Tab"]);
    tmux.wait_for("dial isp1").await;
    tmux.run(&["send-keys", "-t", "s", "C-c"]);
    tmux.wait_count(&prompt, 3).await;
    tmux.run(&["send-keys", "-t", "s", "exit", "Enter"]);

    // `exit` ends mclient, which closes the tmux session; then the history is complete.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while tmux.alive() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "shell did not exit; screen:\n{}",
            tmux.screen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let history = dir.path().join("masqdial").join("mclient_history");
    let h = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(h.contains("whoami"), "{h}");
    assert!(
        !h.contains("dial isp1"),
        "interrupted line is not history: {h}"
    );
    let _ = stop_tx.send(());
}
