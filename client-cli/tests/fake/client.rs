//! The client side of the fake's tests: the real `mclient` binary as a child process with
//! a private HOME/XDG tree, bounded in time, and a TCP relay that can vanish mid-call.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::LIMIT;

/// A TCP relay to `target` on 127.0.0.1:0. Aborting the returned task drops every relayed
/// connection at once (the client sees the server vanish) and stops accepting.
pub async fn relay(target: &str) -> (String, tokio::task::JoinHandle<()>) {
    let target = target.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            conns.spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (format!("http://{addr}"), task)
}

/// Output of one mclient run.
#[derive(Debug)]
pub struct Out {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

/// A private client environment: token store, config file, data dir.
pub struct ClientEnv {
    /// Temp dir owning everything.
    pub dir: tempfile::TempDir,
    /// Server URL (MASQDIAL_SERVER).
    pub server: String,
}

impl ClientEnv {
    /// New environment for `server`.
    pub fn new(server: &str) -> ClientEnv {
        ClientEnv {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            server: server.to_string(),
        }
    }

    /// The token store path.
    pub fn tokens(&self) -> PathBuf {
        self.dir
            .path()
            .join("cfg")
            .join("masqdial")
            .join("tokens.toml")
    }

    /// The client config path.
    pub fn config(&self) -> PathBuf {
        self.dir
            .path()
            .join("cfg")
            .join("masqdial")
            .join("client.toml")
    }

    /// Run mclient with `args`, extra `env`, and `stdin`.
    pub async fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Out {
        run_mclient(self.dir.path(), &self.server, args, env, stdin).await
    }

    /// Log in as alice and root (root last: the default).
    pub async fn login_both(&self) {
        for (u, pw) in [("alice", "alice-pw"), ("root", "root-pw")] {
            let o = self
                .run(&["-u", u, "login"], &[("MASQDIAL_PASSWORD", pw)], "")
                .await;
            assert_eq!(o.code, 0, "login {u}: {}", o.stderr);
        }
    }
}

/// Run the real mclient with a private HOME/XDG tree under `dir`.
pub async fn run_mclient(
    dir: &Path,
    server: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mclient"));
    cmd.args(args)
        .env("MASQDIAL_SERVER", server)
        .env("XDG_CONFIG_HOME", dir.join("cfg"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("HOME", dir)
        .env("USER", "alice")
        .env_remove("MASQDIAL_USER")
        .env_remove("MASQDIAL_PASSWORD")
        .env_remove("MASQDIAL_TOKEN_FILE")
        .env_remove("MASQDIAL_CONFIG")
        .env_remove("MASQDIAL_TIMEOUT")
        .env_remove("MASQDIAL_CA")
        .env_remove("MCLIENT_PASSWORD")
        .env_remove("MCLIENT_TOKEN_FILE")
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
