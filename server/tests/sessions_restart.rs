//! The real `mserver` binary, restarted on the same config and state_dir: a login survives
//! the restart (the session table is saved in state_dir, keyed digests only, never the
//! token), and a password or role changed while mserver was down revokes it at the next
//! start, as a change at reload (SIGHUP) does.

use std::path::Path;
use std::time::Duration;

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_client::AuthClient;
use masqdial_server::auth;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

/// Hang guard (a loaded 2-core box: generous).
const LIMIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A running mserver, killed if the test fails before stopping it.
struct Server {
    child: Option<Child>,
    addr: String,
}

impl Server {
    fn start(config: &Path, addr: &str) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_mserver"))
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(config)
            .args(["--listen", addr])
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn mserver: {e}"));
        Server {
            child: Some(child),
            addr: addr.to_string(),
        }
    }

    /// SIGTERM and wait for a clean exit.
    async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or_else(|| panic!("no pid"));
        kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap_or_else(|e| panic!("kill: {e}"));
        let st = tokio::time::timeout(LIMIT, child.wait())
            .await
            .unwrap_or_else(|_| panic!("mserver did not exit"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(st.success(), "mserver exited with {st}");
    }

    /// A channel, retrying while the server starts (bounded).
    async fn channel(&self) -> Channel {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let ep = Channel::from_shared(format!("http://{}", self.addr))
                .unwrap_or_else(|e| panic!("{e}"))
                .timeout(LIMIT);
            match ep.connect().await {
                Ok(c) => return c,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    panic!("server at {} never came up: {e}", self.addr)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

async fn login(ch: &Channel, user: &str, pw: &str) -> String {
    AuthClient::new(ch.clone())
        .login(pb::LoginRequest {
            user: user.into(),
            password: pw.into(),
        })
        .await
        .map(|r| r.into_inner().token)
        .unwrap_or_else(|e| panic!("login {user}: {e}"))
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

/// A config with these users (name, password hash, role), state in `state`.
fn config(path: &Path, state: &Path, users: &[(&str, &str, &str)]) {
    let mut s = format!(
        "[server]\nallow = [\"127.0.0.0/8\"]\nstate_dir = {:?}\n\n",
        state.display().to_string()
    );
    for (name, hash, role) in users {
        s.push_str(&format!(
            "[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\nrole = \"{role}\"\n\n"
        ));
    }
    std::fs::write(path, s).unwrap_or_else(|e| panic!("{e}"));
}

fn hash(pw: &str) -> String {
    auth::hash_password_with(pw, auth::fast_params()).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_restart_keeps_sessions_and_a_changed_password_or_role_revokes_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mserver.toml");
    let state = dir.path().join("state");
    let (alice_h, bob_h, carol_h) = (hash("alice-pw"), hash("bob-pw"), hash("carol-pw"));
    config(
        &path,
        &state,
        &[
            ("alice", &alice_h, "user"),
            ("bob", &bob_h, "user"),
            ("carol", &carol_h, "user"),
        ],
    );
    let addr = format!("127.0.0.1:{}", free_port());

    let first = Server::start(&path, &addr);
    let ch = first.channel().await;
    let alice = login(&ch, "alice", "alice-pw").await;
    let bob = login(&ch, "bob", "bob-pw").await;
    let carol = login(&ch, "carol", "carol-pw").await;
    assert_eq!(whoami(&ch, &alice).await.ok().as_deref(), Some("alice"));
    first.stop().await;

    // Only digests were written: no token appears in the state directory.
    let saved = std::fs::read_to_string(state.join(masqdial_server::persist::SESSIONS_FILE))
        .unwrap_or_else(|e| panic!("sessions file: {e}"));
    assert!(
        saved.starts_with("# masqdial-state v1 sessions\n"),
        "{saved}"
    );
    assert_eq!(saved.matches("\nsession ").count(), 3, "{saved}");
    for t in [&alice, &bob, &carol] {
        assert!(!saved.contains(t.as_str()), "a token was written");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(state.join("sessions"))
            .unwrap_or_else(|e| panic!("{e}"))
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "sessions file mode {mode:o}");

    // Restarted on the same config: every session is still good.
    let second = Server::start(&path, &addr);
    let ch = second.channel().await;
    for (t, u) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        assert_eq!(
            whoami(&ch, t).await.ok().as_deref(),
            Some(u),
            "{u} after a restart"
        );
    }
    second.stop().await;

    // While mserver is down, bob's password and carol's role change: their sessions end at
    // the next start, alice's stays.
    config(
        &path,
        &state,
        &[
            ("alice", &alice_h, "user"),
            ("bob", &hash("bob-new-pw"), "user"),
            ("carol", &carol_h, "admin"),
        ],
    );
    let third = Server::start(&path, &addr);
    let ch = third.channel().await;
    assert_eq!(whoami(&ch, &alice).await.ok().as_deref(), Some("alice"));
    for (t, u) in [(&bob, "bob"), (&carol, "carol")] {
        let e = whoami(&ch, t)
            .await
            .err()
            .unwrap_or_else(|| panic!("{u}'s session survived a changed password or role"));
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{u}: {e}");
    }
    // A logout is written too: alice's token is gone after the next restart.
    let mut r = tonic::Request::new(pb::LogoutRequest {});
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {alice}")
            .parse()
            .unwrap_or_else(|e| panic!("{e:?}")),
    );
    AuthClient::new(ch.clone())
        .logout(r)
        .await
        .unwrap_or_else(|e| panic!("logout: {e}"));
    third.stop().await;
    let fourth = Server::start(&path, &addr);
    let ch = fourth.channel().await;
    assert!(
        whoami(&ch, &alice).await.is_err(),
        "a logout survived a restart"
    );
    fourth.stop().await;
}
