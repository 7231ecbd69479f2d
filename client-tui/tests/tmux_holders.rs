//! mtui follows a link's holders live (issue 29, high): the real `mtui` in tmux against a REAL
//! in-process mserver (rpc layer and link manager) dialling the mock modem on a
//! pseudo-terminal. alice dials isp1 with mclient's own command runner, root joins it; mtui's
//! details show both holders. alice releases; mtui shows root alone, and its forced hang-up
//! (`H`) asks about exactly root. Skips loudly when tmux is not installed.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use masqdial_cli::cli::Command as Cmd;
use masqdial_cli::config::{Overrides, Settings};
use masqdial_cli::run::Session;
use masqdial_cli::store::{StoredToken, TokenStore};
use masqdial_ppp::AuthProtocol;
use masqdial_proto::v1 as pb;
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
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::MockModemConfig;

/// Hang guard for one wait (a loaded 2-core box: generous).
const LIMIT: Duration = Duration::from_secs(40);

fn config(device: &Path, state: &Path) -> Config {
    let mut c = Config::default();
    c.server.allow = vec!["127.0.0.0/8".parse().expect("net")];
    c.server.state_dir = state.to_path_buf();
    let h = |pw: &str| auth::hash_password_with(pw, auth::fast_params()).expect("hash");
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
    c.modems.push(ModemConfig {
        name: "modem0".into(),
        device: device.to_path_buf(),
        baud: 115_200,
        data_bits: 8,
        parity: Default::default(),
        stop_bits: 1,
        flow_control: FlowControl::None,
        init: vec!["ATZ".into()],
        cellular: None,
    });
    let mut cc: ConnectionConfig =
        toml::from_str("name = \"isp1\"\nnumbers = [\"5550100\"]\nmodems = [\"modem0\"]")
            .expect("connection");
    cc.username = "demo".into();
    cc.password = "secret".into();
    cc.routes = vec![];
    c.connections.push(cc);
    c
}

/// Kills the private tmux server when dropped (also when the test fails).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::io::Result<Output> {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
    }

    fn capture(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "mtui"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "mtui"];
        args.extend_from_slice(keys);
        self.cmd(&args).expect("send-keys");
    }

    /// Poll the screen until `pred` holds; fails the test (with the screen) after LIMIT.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            assert!(start.elapsed() < LIMIT, "waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The `Holders (N)` section of the details view: the holder names listed under it.
fn holders_shown(screen: &str) -> Option<Vec<String>> {
    let mut lines = screen.lines().skip_while(|l| !l.contains("Holders ("));
    let head = lines.next()?;
    let n: usize = head
        .split("Holders (")
        .nth(1)?
        .split(')')
        .next()?
        .parse()
        .ok()?;
    let names: Vec<String> = lines
        .take(n)
        .filter_map(|l| {
            l.split(|c: char| c.is_whitespace() || c == '│')
                .find(|t| t.contains('@'))
                .map(str::to_string)
        })
        .collect();
    (names.len() == n).then_some(names)
}

#[test]
fn mtui_follows_holders_joining_and_releasing_and_h_names_the_remaining_one() {
    if !masqdial_testkit::tool_available(
        "mtui_follows_holders_joining_and_releasing_and_h_names_the_remaining_one",
        "tmux",
        &["-V"],
        "apt-get install -y tmux",
    ) {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(modem.path(), &dir.path().join("state"));
    let stop = Shutdown::new();
    let (server, _stop_tx) = rt.block_on(async {
        let nat = NatHandle::new(masqdial_server::persist::build_engine(&cfg).expect("engine"));
        let control = ControlPlane {
            links: LinkManager::start(&cfg, Uplink::new(nat.clone(), None, None), &stop),
            nat: NatControl::new(std::sync::Arc::new(cfg.clone()), nat, None),
        };
        let state = ServerState::new(cfg.clone(), Some(control)).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let server = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(masqdial_server::server::run(
            listener,
            state,
            None,
            async move {
                let _ = rx.await;
            },
        ));
        (server, tx)
    });

    // Tokens for both users in one store (mtui runs as root, the admin).
    let store = dir.path().join("tokens.toml");
    rt.block_on(async {
        let ch = tonic::transport::Channel::from_shared(server.clone())
            .expect("url")
            .timeout(LIMIT)
            .connect()
            .await
            .expect("connect");
        for (u, pw, role) in [
            ("alice", "alice-pw", pb::Role::User),
            ("root", "root-pw", pb::Role::Admin),
        ] {
            let t = pb::auth_client::AuthClient::new(ch.clone())
                .login(pb::LoginRequest {
                    user: u.into(),
                    password: pw.into(),
                })
                .await
                .expect("login")
                .into_inner()
                .token;
            TokenStore::at(store.clone())
                .put(StoredToken {
                    server: server.clone(),
                    user: u.into(),
                    token: t,
                    expires_at: None,
                    role: role as i32,
                })
                .expect("token store");
        }
    });
    // mclient's command runner, as `mclient -u USER COMMAND` runs it.
    let mclient = |user: &str, cmd: Cmd| {
        let env: HashMap<String, String> = HashMap::from([(
            "MASQDIAL_CONFIG".to_string(),
            dir.path().join("client.toml").display().to_string(),
        )]);
        let settings = Settings::resolve_with(
            &Overrides {
                server: Some(server.clone()),
                user: Some(user.into()),
                ca: None,
                token_file: Some(store.clone()),
                timeout_secs: Some(30),
            },
            &env,
        )
        .expect("settings");
        let mut s = Session::new(settings);
        rt.block_on(s.run(&cmd))
            .unwrap_or_else(|f| panic!("mclient -u {user} {cmd:?}: {}", f.message));
    };

    let t = Tmux {
        socket: format!("mtui-holders-{}", std::process::id()),
    };
    let cmdline = format!(
        "{} --server {server} --token-store '{}' --user root --no-color --tick-ms 100",
        env!("CARGO_BIN_EXE_mtui"),
        store.display()
    );
    let out = t
        .cmd(&[
            "new-session",
            "-d",
            "-s",
            "mtui",
            "-x",
            "110",
            "-y",
            "40",
            &cmdline,
        ])
        .expect("run tmux");
    assert!(
        out.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.wait_for("the links panel", |s| s.contains("isp1"));

    // alice dials, root joins: the details follow, without reopening them.
    mclient(
        "alice",
        Cmd::Dial {
            name: "isp1".into(),
        },
    );
    t.wait_for("isp1 up", |s| s.contains("UP"));
    t.keys(&["1", "Enter"]);
    t.wait_for("alice holding", |s| {
        holders_shown(s).is_some_and(|h| h == ["alice@127.0.0.1"])
    });
    mclient(
        "root",
        Cmd::Dial {
            name: "isp1".into(),
        },
    );
    t.wait_for("alice and root holding", |s| {
        holders_shown(s).is_some_and(|h| h == ["alice@127.0.0.1", "root@127.0.0.1"])
    });

    // alice releases: root alone, and H asks about exactly root.
    mclient(
        "alice",
        Cmd::Hangup {
            name: Some("isp1".into()),
            force: false,
        },
    );
    t.wait_for("root alone", |s| {
        holders_shown(s).is_some_and(|h| h == ["root@127.0.0.1"])
    });
    t.keys(&["Escape"]);
    t.wait_for("details closed", |s| !s.contains("Holders ("));
    t.keys(&["H"]);
    // H first asks which link (one here), then the question about its holders.
    t.wait_for("the link picker", |s| {
        s.contains("Force hang-up of which link?")
    });
    t.keys(&["Enter"]);
    let s = t.wait_for("the forced hang-up question", |s| {
        s.contains("Force hang-up of isp1?")
    });
    let question: String = s
        .lines()
        .skip_while(|l| !l.contains("Force hang-up of isp1?"))
        .take(3)
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '│'))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        question.contains("every holder: root@127.0.0.1."),
        "{question}\n{s}"
    );
    assert!(!question.contains("alice"), "{question}\n{s}");
    t.keys(&["Escape"]);
    mclient(
        "root",
        Cmd::Hangup {
            name: Some("isp1".into()),
            force: true,
        },
    );
    drop(t);
    assert!(
        rt.block_on(stop.stop(Duration::from_secs(15))),
        "tasks ended"
    );
}
