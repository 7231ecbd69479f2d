//! Runs the real `mtui` binary inside tmux against an in-process gRPC fixture server and reads
//! the screen with `tmux capture-pane -p`: the sessions must show, and an expire countdown must
//! decrease between two captures; after a server restart that forgets the token, mtui asks for
//! the password inside the dashboard and carries on. Skips loudly when tmux is not installed.
//!
//! Everything below `mod fixture` is a TEST FIXTURE (a canned server), not product code.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use masqdial_cli::store::{StoredToken, TokenStore};
use masqdial_proto::v1::{
    auth_server::AuthServer, dialer_server::DialerServer, nat_server::NatServer, Role,
};
use tokio_stream::wrappers::TcpListenerStream;

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The token a restarted fixture hands out (the old one is unknown to it).
const TOKEN2: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

mod fixture {
    //! Canned Auth/Dialer/Nat services: one user, one up link, three masquerade sessions.
    use std::pin::Pin;
    use std::time::Duration;

    use masqdial_proto::v1::*;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;
    use tokio_stream::Stream;
    use tonic::{Request, Response, Status};

    type Res<T> = Result<Response<T>, Status>;
    type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

    fn check<T>(fx: &Fixture, req: &Request<T>) -> Result<(), Status> {
        let want = format!("Bearer {}", fx.token);
        match req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        {
            Some(v) if v == want => Ok(()),
            _ => Err(Status::unauthenticated("bad token")),
        }
    }

    fn no<T>() -> Res<T> {
        Err(Status::unimplemented("fixture"))
    }

    /// Stream from a task that feeds `items` then keeps the stream open with `tick` messages.
    fn stream<T: Send + 'static>(items: Vec<T>, tick: Option<fn(u64) -> T>) -> BoxStream<T> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            for i in items {
                if tx.send(Ok(i)).await.is_err() {
                    return;
                }
            }
            let mut n = 0u64;
            // Bounded: the test finishes long before; the task also ends when the client goes.
            while n < 600 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                n += 1;
                let msg = match tick {
                    Some(f) => f(n),
                    None => {
                        if tx.is_closed() {
                            return;
                        }
                        continue;
                    }
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }

    #[allow(clippy::too_many_arguments)] // a fixture: one argument per column
    fn entry(
        id: u64,
        proto: Protocol,
        lan: &str,
        lport: u32,
        remote: &str,
        rport: u32,
        state: &str,
        expire: u64,
    ) -> MasqEntry {
        MasqEntry {
            id,
            protocol: proto as i32,
            lan_address: lan.into(),
            lan_port: lport,
            masq_address: "10.64.3.17".into(),
            masq_port: 61000 + id as u32,
            remote_address: remote.into(),
            remote_port: rport,
            expire_centis: expire,
            state: state.into(),
            ..Default::default()
        }
    }

    fn free() -> FreePortsResponse {
        FreePortsResponse {
            tcp: 4094,
            udp: 4095,
            icmp: 4096,
            tcp_total: 4096,
            udp_total: 4096,
            icmp_total: 4096,
            port_low: 61000,
            port_high: 65095,
        }
    }

    /// The services; `token` is the one bearer token this server instance knows.
    #[derive(Debug, Clone)]
    pub struct Fixture {
        pub token: &'static str,
    }

    #[tonic::async_trait]
    impl auth_server::Auth for Fixture {
        async fn login(&self, r: Request<LoginRequest>) -> Res<LoginResponse> {
            let r = r.into_inner();
            if r.user == "alice" && r.password == "secret" {
                Ok(Response::new(LoginResponse {
                    token: self.token.into(),
                    expires_at: None,
                    role: Role::Admin as i32,
                }))
            } else {
                Err(Status::unauthenticated("bad user or password"))
            }
        }
        async fn logout(&self, _r: Request<LogoutRequest>) -> Res<LogoutResponse> {
            no()
        }
        async fn list_sessions(
            &self,
            r: Request<masqdial_proto::v1::ListSessionsRequest>,
        ) -> Res<masqdial_proto::v1::ListSessionsResponse> {
            check(self, &r)?;
            Err(Status::unimplemented("not in this fixture"))
        }
        async fn revoke_session(
            &self,
            r: Request<masqdial_proto::v1::RevokeSessionRequest>,
        ) -> Res<masqdial_proto::v1::RevokeSessionResponse> {
            check(self, &r)?;
            Err(Status::unimplemented("not in this fixture"))
        }
        async fn who_am_i(&self, r: Request<WhoAmIRequest>) -> Res<WhoAmIResponse> {
            check(self, &r)?;
            Ok(Response::new(WhoAmIResponse {
                user: "alice".into(),
                role: Role::Admin as i32,
                allowed_connections: vec!["isp1".into()],
                peer: "127.0.0.1".into(),
                expires_at: None,
            }))
        }
    }

    #[tonic::async_trait]
    impl dialer_server::Dialer for Fixture {
        type DialStream = BoxStream<DialEvent>;
        type WatchLinksStream = BoxStream<LinkEvent>;
        async fn list_connections(
            &self,
            r: Request<ListConnectionsRequest>,
        ) -> Res<ListConnectionsResponse> {
            check(self, &r)?;
            Ok(Response::new(ListConnectionsResponse {
                connections: vec![Connection {
                    name: "isp1".into(),
                    allowed: true,
                    state: LinkState::Up as i32,
                    ..Default::default()
                }],
            }))
        }
        async fn get_connection(&self, _r: Request<GetConnectionRequest>) -> Res<ConnectionInfo> {
            no()
        }
        async fn dial(&self, r: Request<DialRequest>) -> Res<Self::DialStream> {
            check(self, &r)?;
            let ev = |e| DialEvent {
                at: None,
                event: Some(e),
            };
            let steps = vec![
                ev(dial_event::Event::Joined(Joined {
                    state: LinkState::Up as i32,
                    holders: vec!["alice@127.0.0.1".into()],
                })),
                ev(dial_event::Event::Info(
                    "already up, joined as holder".into(),
                )),
            ];
            // Dial streams end after their last event.
            Ok(Response::new(Box::pin(tokio_stream::iter(
                steps.into_iter().map(Ok),
            ))))
        }
        async fn hangup(&self, _r: Request<HangupRequest>) -> Res<HangupResponse> {
            no()
        }
        async fn status(&self, _r: Request<StatusRequest>) -> Res<StatusResponse> {
            no()
        }
        async fn who(&self, _r: Request<WhoRequest>) -> Res<WhoResponse> {
            no()
        }
        async fn watch_links(&self, r: Request<WatchLinksRequest>) -> Res<Self::WatchLinksStream> {
            check(self, &r)?;
            let up = LinkEvent {
                at: None,
                event: Some(link_event::Event::State(LinkStatus {
                    connection: "isp1".into(),
                    state: LinkState::Up as i32,
                    modem: "modem0".into(),
                    speed_bps: 33_600,
                    local_address: "10.64.3.17".into(),
                    peer_address: "10.64.0.1".into(),
                    ..Default::default()
                })),
            };
            fn sample(n: u64) -> LinkEvent {
                LinkEvent {
                    at: None,
                    event: Some(link_event::Event::Sample(TrafficSample {
                        connection: "isp1".into(),
                        bytes_in: 1000 + (n % 5) * 700,
                        bytes_out: 200 + (n % 3) * 90,
                        packets_in: 3,
                        packets_out: 2,
                        period_ms: 1000,
                    })),
                }
            }
            Ok(Response::new(stream(vec![up], Some(sample))))
        }
    }

    #[tonic::async_trait]
    impl nat_server::Nat for Fixture {
        type WatchMasqStream = BoxStream<MasqEvent>;
        async fn list_masq(&self, _r: Request<ListMasqRequest>) -> Res<ListMasqResponse> {
            no()
        }
        async fn watch_masq(&self, r: Request<WatchMasqRequest>) -> Res<Self::WatchMasqStream> {
            check(self, &r)?;
            let entries = vec![
                entry(
                    1,
                    Protocol::Tcp,
                    "192.168.1.10",
                    1034,
                    "198.51.100.80",
                    80,
                    "ESTABLISHED",
                    89_512,
                ),
                entry(
                    2,
                    Protocol::Udp,
                    "192.168.1.23",
                    1027,
                    "203.0.113.53",
                    53,
                    "UDP",
                    29_871,
                ),
                entry(
                    3,
                    Protocol::Tcp,
                    "192.168.1.23",
                    1100,
                    "192.0.2.21",
                    21,
                    "FIN_WAIT",
                    11_204,
                ),
            ];
            let items = vec![
                MasqEvent {
                    event: Some(masq_event::Event::Snapshot(MasqBatch { entries })),
                },
                MasqEvent {
                    event: Some(masq_event::Event::SnapshotDone(SnapshotDone {
                        total: 3,
                        free: Some(free()),
                    })),
                },
            ];
            Ok(Response::new(stream(items, None)))
        }
        async fn free_ports(&self, r: Request<FreePortsRequest>) -> Res<FreePortsResponse> {
            check(self, &r)?;
            Ok(Response::new(free()))
        }
        async fn get_timeouts(&self, _r: Request<GetTimeoutsRequest>) -> Res<Timeouts> {
            no()
        }
        async fn set_timeouts(&self, _r: Request<Timeouts>) -> Res<Timeouts> {
            no()
        }
        async fn list_chains(&self, r: Request<ListChainsRequest>) -> Res<ListChainsResponse> {
            check(self, &r)?;
            Ok(Response::new(ListChainsResponse {
                chains: vec![Chain {
                    name: "forward".into(),
                    policy: "DENY".into(),
                    builtin: true,
                    rules: vec![Rule {
                        number: 1,
                        target: "MASQ".into(),
                        protocol: "all".into(),
                        source: "192.168.1.0/24".into(),
                        destination: "0.0.0.0/0".into(),
                        packets: 1234,
                        bytes: 567_890,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }))
        }
        async fn append_rule(&self, _r: Request<AppendRuleRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn insert_rule(&self, _r: Request<InsertRuleRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn replace_rule(&self, _r: Request<ReplaceRuleRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn delete_rule(&self, _r: Request<DeleteRuleRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn flush_chain(&self, _r: Request<FlushChainRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn zero_counters(&self, _r: Request<ZeroCountersRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn new_chain(&self, _r: Request<NewChainRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn delete_chain(&self, _r: Request<DeleteChainRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn set_policy(&self, _r: Request<SetPolicyRequest>) -> Res<RuleChangeResponse> {
            no()
        }
        async fn check_packet(&self, _r: Request<CheckPacketRequest>) -> Res<CheckPacketResponse> {
            no()
        }
        async fn apply_ruleset(
            &self,
            _r: Request<ApplyRulesetRequest>,
        ) -> Res<ApplyRulesetResponse> {
            no()
        }
        async fn save_ruleset(&self, _r: Request<SaveRulesetRequest>) -> Res<SaveRulesetResponse> {
            no()
        }
        async fn render_view(&self, _r: Request<RenderViewRequest>) -> Res<RenderViewResponse> {
            no()
        }
        async fn get_counters(&self, _r: Request<GetCountersRequest>) -> Res<GetCountersResponse> {
            no()
        }
        async fn port_fw(
            &self,
            _r: Request<masqdial_proto::v1::PortFwRequest>,
        ) -> Res<masqdial_proto::v1::PortFwResponse> {
            no()
        }
        async fn delete_masq(
            &self,
            _r: Request<masqdial_proto::v1::DeleteMasqRequest>,
        ) -> Res<masqdial_proto::v1::DeleteMasqResponse> {
            no()
        }
    }
}

/// The fixture server on its own runtime thread: dropping it stops the runtime, which drops
/// every connection and stream at once (what a server restart looks like to mtui).
struct FixtureServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FixtureServer {
    fn start(listener: std::net::TcpListener, token: &'static str) -> FixtureServer {
        let fx = fixture::Fixture { token };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("fixture runtime");
            rt.block_on(async move {
                listener
                    .set_nonblocking(true)
                    .expect("nonblocking listener");
                let l = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let serve = tonic::transport::Server::builder()
                    .add_service(AuthServer::new(fx.clone()))
                    .add_service(DialerServer::new(fx.clone()))
                    .add_service(NatServer::new(fx))
                    .serve_with_incoming(TcpListenerStream::new(l));
                tokio::select! {
                    _ = serve => {}
                    _ = rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_millis(200));
        });
        FixtureServer {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Kills the private tmux server when dropped (also when the test fails).
struct Tmux {
    socket: String,
    /// The shell running mtui in the pane writes mtui's exit status here.
    exit_file: std::path::PathBuf,
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

    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", "mtui"])
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Poll the screen until `pred` holds or `limit` passes; returns the last capture.
    fn wait_screen(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> (bool, String) {
        let start = Instant::now();
        loop {
            let s = self.capture();
            if pred(&s) {
                return (true, s);
            }
            if start.elapsed() > limit {
                return (false, s);
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// SIGTERM mtui and check it exits 0 and leaves the alternate screen (the pane is kept
    /// after exit, so what remains on it is the normal screen, without the dashboard).
    fn terminate_and_check_restored(&self) {
        let _ = self.cmd(&["set-option", "-w", "-t", "mtui", "remain-on-exit", "on"]);
        let pid = mtui_pid(self).expect("mtui pid");
        let st = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
        let pane = |f: &str| {
            self.cmd(&["display", "-p", "-t", "mtui", f])
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let start = Instant::now();
        while pane("#{pane_dead}") != "1" && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(pane("#{pane_dead}"), "1", "mtui did not exit on SIGTERM");
        // The pane's shell wrote mtui's own exit status (tmux's pane_dead_status is not
        // always known by the time the pane is marked dead).
        let start = Instant::now();
        let mut status = String::new();
        while start.elapsed() < Duration::from_secs(5) {
            status = std::fs::read_to_string(&self.exit_file).unwrap_or_default();
            if !status.trim().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(status.trim(), "0", "mtui's exit status after SIGTERM");
        let screen = self.capture();
        assert!(
            !screen.contains("Masquerade") && !screen.contains("q quit"),
            "dashboard still shown after exit (terminal not restored):\n{screen}"
        );
    }

    /// Press q and wait (bounded) for mtui to exit, which closes the tmux session.
    fn quit(&self) -> bool {
        let _ = self.cmd(&["send-keys", "-t", "mtui", "q"]);
        let start = Instant::now();
        while self.alive() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        !self.alive()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// Pid of the mtui process in the pane (the pane's shell may have exec'd it or forked it).
fn mtui_pid(t: &Tmux) -> Option<u32> {
    let out = t
        .cmd(&["display", "-p", "-t", "mtui", "#{pane_pid}"])
        .ok()?;
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if comm.trim() == "mtui" {
        return Some(pid);
    }
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().find_map(|c| c.parse().ok())
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// True when tmux runs. Otherwise prints a loud `SKIPPED` line (masqdial-testkit) and
/// returns false; the test must then return early.
fn tmux_available(test: &str) -> bool {
    masqdial_testkit::tool_available(test, "tmux", &["-V"], "apt-get install -y tmux")
}

/// Hundredths left in the expire column of the row containing `needle` (`mm:ss.hh` at the end).
fn expire_of(screen: &str, needle: &str) -> Option<u64> {
    let line = screen.lines().find(|l| l.contains(needle))?;
    let tok = line
        .split(|c: char| c.is_whitespace() || c == '│')
        .rfind(|t| !t.is_empty())?;
    let (mm, rest) = tok.split_once(':')?;
    let (ss, hh) = rest.split_once('.')?;
    let (mm, ss, hh): (u64, u64, u64) = (mm.parse().ok()?, ss.parse().ok()?, hh.parse().ok()?);
    Some(mm * 6000 + ss * 100 + hh)
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Start mtui in a detached 100x30 tmux session with a temp token store, which holds the
/// token when `with_token` (otherwise mtui is told to log in as alice).
fn start_mtui(
    addr: std::net::SocketAddr,
    name: &str,
    with_token: bool,
) -> (Tmux, tempfile::TempDir) {
    start_mtui_env(addr, name, with_token, "")
}

/// [`start_mtui`] with `env` (e.g. `MASQDIAL_PASSWORD=x `) before the command.
fn start_mtui_env(
    addr: std::net::SocketAddr,
    name: &str,
    with_token: bool,
    env: &str,
) -> (Tmux, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("tokens.toml");
    let server_url = format!("http://{addr}");
    if with_token {
        TokenStore::at(store_path.clone())
            .put(StoredToken {
                server: server_url.clone(),
                user: "alice".into(),
                token: TOKEN.into(),
                expires_at: None,
                role: Role::Admin as i32,
            })
            .expect("write token store");
    }
    let bin = env!("CARGO_BIN_EXE_mtui");
    let user = if with_token { "" } else { " --user alice" };
    let exit_file = dir.path().join("exit-status");
    // Not a simple command, so the shell stays mtui's parent and records its exit status.
    let cmdline = format!(
        "{env}{bin} --server {server_url} --token-store {}{user} --no-color --tick-ms 100; echo $? > {}",
        shell_quote(&store_path),
        shell_quote(&exit_file)
    );
    let t = Tmux {
        socket: format!("mtui-{name}-{}", std::process::id()),
        exit_file,
    };
    let out = t
        .cmd(&[
            "new-session",
            "-d",
            "-s",
            "mtui",
            "-x",
            "100",
            "-y",
            "30",
            &cmdline,
        ])
        .expect("run tmux");
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (t, dir)
}

fn login_form_shown(s: &str) -> bool {
    s.contains("Log in to http://") && s.contains("user:     alice") && s.contains("password: ")
}

/// Type `text` into the pane, then Enter.
fn type_line(t: &Tmux, text: &str) {
    // -l: literal, so the password's letters are not read as key names.
    t.cmd(&["send-keys", "-t", "mtui", "-l", text])
        .expect("send-keys");
    t.cmd(&["send-keys", "-t", "mtui", "Enter"])
        .expect("send-keys");
}

fn stored_token(dir: &tempfile::TempDir, addr: std::net::SocketAddr) -> Option<String> {
    TokenStore::at(dir.path().join("tokens.toml"))
        .get(&format!("http://{addr}"))
        .expect("read token store")
        .map(|s| s.token)
}

/// Bind `addr` again after a server stopped (bounded retry while the port frees up).
fn rebind(addr: std::net::SocketAddr) -> std::net::TcpListener {
    let start = Instant::now();
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => return l,
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                eprintln!("rebind {addr}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}

fn sessions_shown(s: &str) -> bool {
    s.contains("192.168.1.10:1034") && s.contains("connected") && s.contains("4094/4096")
}

#[test]
fn mtui_in_tmux_shows_sessions_and_live_countdown() {
    if !tmux_available(masqdial_testkit::test_name!()) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let _server = FixtureServer::start(listener, TOKEN);
    let (t, _dir) = start_mtui(addr, "screen", true);

    let (ok, screen) = t.wait_screen(Duration::from_secs(20), sessions_shown);
    assert!(ok, "sessions never showed; screen:\n{screen}");
    for s in [
        "192.168.1.23:1027",
        "203.0.113.53:53",
        "FIN_WAIT",
        "isp1",
        "UP",
        "alice (admin)",
    ] {
        assert!(screen.contains(s), "missing {s:?} on screen:\n{screen}");
    }
    let first = expire_of(&screen, "192.168.1.10:1034").expect("expire column parses");
    assert!(first <= 89_512 && first > 80_000, "first expire {first}");

    // About 1.5 s later the countdown must be lower (bounded poll, no timed assertion).
    std::thread::sleep(Duration::from_millis(1500));
    let (ok, later) = t.wait_screen(Duration::from_secs(10), |s| {
        expire_of(s, "192.168.1.10:1034").is_some_and(|v| v < first)
    });
    assert!(
        ok,
        "countdown did not decrease from {first}; screen:\n{later}"
    );
    eprintln!("screen after the countdown moved:\n{later}");

    // Figure, not an assertion: CPU used by mtui over 5 s with a live countdown (100 ms tick)
    // and one traffic sample per second.
    if let Some(pid) = mtui_pid(&t) {
        if let Some(a) = cpu_ticks(pid) {
            std::thread::sleep(Duration::from_secs(5));
            if let Some(b) = cpu_ticks(pid) {
                eprintln!(
                    "FIGURE mtui CPU over 5 s at --tick-ms 100 (3 sessions, 1 sample/s): {} ticks = {:.1}% of one core",
                    b - a,
                    (b - a) as f64 / 5.0
                );
            }
        }
    }

    assert!(t.quit(), "mtui did not exit on q");
}

#[test]
fn mtui_shows_disconnected_and_reconnects_after_server_restart() {
    if !tmux_available(masqdial_testkit::test_name!()) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let server = FixtureServer::start(listener, TOKEN);
    let (t, _dir) = start_mtui(addr, "restart", true);
    let (ok, screen) = t.wait_screen(Duration::from_secs(20), sessions_shown);
    assert!(ok, "sessions never showed; screen:\n{screen}");

    drop(server);
    let (ok, screen) = t.wait_screen(Duration::from_secs(15), |s| {
        s.contains("lost the server")
            && !s.contains("192.168.1.10:1034")
            && !s.contains("4094/4096")
    });
    assert!(
        ok,
        "stale data or no 'lost the server' after the server stopped:\n{screen}"
    );
    eprintln!("while the server is down:\n{screen}");

    // Same port again (std sets SO_REUSEADDR on Unix).
    let _server = FixtureServer::start(rebind(addr), TOKEN);
    let (ok, screen) = t.wait_screen(Duration::from_secs(30), sessions_shown);
    assert!(ok, "mtui did not reconnect; screen:\n{screen}");
    assert!(
        screen.contains("lost the server: "),
        "event log keeps the disconnect:\n{screen}"
    );

    t.terminate_and_check_restored();
}

#[test]
fn mtui_logs_in_with_a_password_then_dials_from_the_picker() {
    if !tmux_available(masqdial_testkit::test_name!()) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let _server = FixtureServer::start(listener, TOKEN);
    let (t, dir) = start_mtui(addr, "login", false);

    let (ok, screen) = t.wait_screen(Duration::from_secs(20), login_form_shown);
    assert!(ok, "no login form in the dashboard:\n{screen}");
    type_line(&t, "secret");
    let (ok, screen) = t.wait_screen(Duration::from_secs(20), sessions_shown);
    assert!(ok, "login did not reach the dashboard:\n{screen}");
    assert!(!screen.contains("secret"), "password echoed:\n{screen}");
    let saved = TokenStore::at(dir.path().join("tokens.toml"))
        .get(&format!("http://{addr}"))
        .expect("read token store");
    assert_eq!(
        saved.map(|s| s.token),
        Some(TOKEN.to_string()),
        "token saved for next time"
    );

    t.cmd(&["send-keys", "-t", "mtui", "d"]).expect("send-keys");
    let (ok, screen) = t.wait_screen(Duration::from_secs(10), |s| {
        s.contains("Dial which connection?")
    });
    assert!(ok, "no dial picker:\n{screen}");
    t.cmd(&["send-keys", "-t", "mtui", "Enter"])
        .expect("send-keys");
    let (ok, screen) = t.wait_screen(Duration::from_secs(10), |s| {
        s.contains("isp1: joined (up; held by alice@127.0.0.1)")
            && !s.contains("Dial which connection?")
    });
    assert!(ok, "dial progress not in the event log:\n{screen}");

    assert!(t.quit(), "mtui did not exit on q");
}

#[test]
fn mtui_logs_in_again_inside_the_dashboard_after_a_server_restart() {
    if !tmux_available(masqdial_testkit::test_name!()) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let server = FixtureServer::start(listener, TOKEN);
    let (t, dir) = start_mtui(addr, "relogin", true);
    let (ok, screen) = t.wait_screen(Duration::from_secs(20), sessions_shown);
    assert!(ok, "sessions never showed; screen:\n{screen}");

    // The restarted server knows none of the old tokens.
    drop(server);
    let (ok, screen) = t.wait_screen(Duration::from_secs(15), |s| {
        s.contains("lost the server") && !s.contains("192.168.1.10:1034")
    });
    assert!(ok, "no plain 'lost the server' line:\n{screen}");
    assert!(
        !screen.contains("Watch") && !screen.contains("WhoAmI"),
        "rpc names on screen:\n{screen}"
    );
    let _server = FixtureServer::start(rebind(addr), TOKEN2);

    let (ok, screen) = t.wait_screen(Duration::from_secs(30), login_form_shown);
    assert!(ok, "no login form after the restart:\n{screen}");
    assert!(
        screen.contains("may have restarted"),
        "the form says why:\n{screen}"
    );
    assert!(
        !screen.contains("restart mtui"),
        "never asks to restart:\n{screen}"
    );
    eprintln!("login form after the server restart:\n{screen}");
    type_line(&t, "secret");
    let (ok, screen) = t.wait_screen(Duration::from_secs(20), sessions_shown);
    assert!(ok, "no dashboard after logging in again:\n{screen}");
    assert!(!screen.contains("secret"), "password echoed:\n{screen}");
    assert_eq!(
        stored_token(&dir, addr).as_deref(),
        Some(TOKEN2),
        "the new token is saved for mclient and the next start"
    );
    t.terminate_and_check_restored();
}

#[test]
fn mtui_asks_again_inside_the_dashboard_after_a_wrong_password() {
    if !tmux_available(masqdial_testkit::test_name!()) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let _server = FixtureServer::start(listener, TOKEN);
    let (t, dir) = start_mtui(addr, "wrongpw", false);
    let (ok, screen) = t.wait_screen(Duration::from_secs(20), login_form_shown);
    assert!(ok, "no login form:\n{screen}");
    type_line(&t, "not-the-password");
    let (ok, screen) = t.wait_screen(Duration::from_secs(20), |s| {
        login_form_shown(s) && s.contains("Wrong user name or password")
    });
    assert!(ok, "no second chance in the dashboard:\n{screen}");
    assert!(t.alive(), "mtui must not exit on a wrong password");
    assert_eq!(stored_token(&dir, addr), None);
    type_line(&t, "secret");
    let (ok, screen) = t.wait_screen(Duration::from_secs(20), sessions_shown);
    assert!(ok, "no dashboard after the right password:\n{screen}");
    assert_eq!(stored_token(&dir, addr).as_deref(), Some(TOKEN));
    assert!(t.quit(), "mtui did not exit on q");
}

#[test]
fn mtui_logs_in_with_masqdial_password_without_the_form() {
    if !tmux_available(masqdial_testkit::test_name!()) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let _server = FixtureServer::start(listener, TOKEN);
    let (t, dir) = start_mtui_env(addr, "envpw", false, "MASQDIAL_PASSWORD=secret ");
    let (ok, screen) = t.wait_screen(Duration::from_secs(20), sessions_shown);
    assert!(ok, "MASQDIAL_PASSWORD did not log in:\n{screen}");
    assert!(!screen.contains("Log in to"), "form shown:\n{screen}");
    assert_eq!(stored_token(&dir, addr).as_deref(), Some(TOKEN));
    assert!(t.quit(), "mtui did not exit on q");
}
