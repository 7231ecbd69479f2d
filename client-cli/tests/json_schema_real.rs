//! Every mclient command's `--json` output against a REAL in-process mserver (the real rpc
//! layer, link manager, NAT control and data plane), checked key for key against the schema
//! in `client-cli/JSON.md`. The server dials a mock modem on a pseudo-terminal with a mock
//! ISP behind it; a LAN host's datagrams go through the real data plane, so the masquerade
//! listing has live entries. `json_schema.rs` runs the same checker against the fake server,
//! which fills the fields this setup cannot reach (cellular details, every event kind).

mod fake;
mod schema;

use fake::run_mclient as mclient;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use masqdial_ppp::AuthProtocol;
use masqdial_server::auth;
use masqdial_server::config::{
    Config, ConnectionConfig, FlowControl, ModemConfig, UserConfig, UserRole,
};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::{Dataplane, LanPort, NatHandle};
use masqdial_server::link::manager::LinkManager;
use masqdial_server::nat_control::NatControl;
use masqdial_server::rpc::{ControlPlane, ServerState};
use masqdial_server::shutdown::Shutdown;
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::{CallResult, MockModemConfig, Outcome};
use nat_core::chains::syntax::parse_rule;
use schema::{check, check_output, schema};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Hang guard for one wait on the server or the watcher (a loaded 2-core box: generous).
const LIMIT: Duration = Duration::from_secs(60);
const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 10);

fn config(device: &Path, state: &Path) -> Config {
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
    for (name, number, description) in [
        ("isp1", "5550100", "the ISP that answers"),
        ("isp2", "5550199", "always busy"),
    ] {
        let mut cc: ConnectionConfig = toml::from_str(&format!(
            "name = \"{name}\"\ndescription = \"{description}\"\nnumbers = [\"{number}\"]\nmodems = [\"modem0\"]"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        cc.username = "demo".into();
        cc.password = "secret".into();
        cc.redial_attempts = 1;
        cc.redial_delay_s = 1;
        cc.routes = vec![];
        c.connections.push(cc);
    }
    c
}

/// An IPv4/UDP datagram from the LAN host (checksums filled).
fn udp_packet(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    use nat_core::wire::{ipv4, udp};
    let mut b = vec![0u8; 28 + payload.len()];
    let total = b.len() as u16;
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut b[..]);
        ip.set_version_and_header_len(20);
        ip.set_total_len(total);
        ip.set_ttl(64);
        ip.set_protocol(17);
        ip.set_src_addr(LAN_HOST);
        ip.set_dst_addr(Ipv4Addr::new(203, 0, 113, 1));
        ip.fill_checksum();
    }
    {
        let mut u = udp::Packet::new_unchecked(&mut b[20..]);
        u.set_src_port(sport);
        u.set_dst_port(dport);
        u.set_len(8 + payload.len() as u16);
        u.payload_mut().copy_from_slice(payload);
        u.fill_checksum(LAN_HOST, Ipv4Addr::new(203, 0, 113, 1));
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_of_a_real_server_matches_the_written_schema() {
    let s = schema();
    // The mock modem: 5550100 reaches the mock ISP (CHAP demo/secret), 5550199 is BUSY.
    let mut isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    isp.udp_echo_port = Some(7);
    let modem_cfg = MockModemConfig {
        outcomes: HashMap::from([("5550199".to_string(), Outcome::now(CallResult::Busy))]),
        ..MockModemConfig::default()
    };
    let modem = spawn_pty(modem_cfg, isp.factory()).unwrap_or_else(|e| panic!("pty modem: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap_or_else(|e| panic!("{e}"));
    let cfg = config(modem.path(), &state_dir);

    // The real server core over a LAN side of in-memory channels.
    let mut engine =
        masqdial_server::persist::build_engine(&cfg).unwrap_or_else(|e| panic!("engine: {e}"));
    let rule = parse_rule("-s 192.168.77.0/24 -j MASQ").unwrap_or_else(|e| panic!("{e}"));
    engine
        .firewall_mut()
        .append("forward", &rule.rule)
        .unwrap_or_else(|e| panic!("{e}"));
    let nat = NatHandle::new(engine);
    let stop = Shutdown::new();
    let (lan_tx, lan_rx) = mpsc::channel(16);
    let (lan_out_tx, mut lan_out) = mpsc::channel(16);
    let dp = Dataplane::spawn(
        nat.clone(),
        LanPort::Memory {
            rx: lan_rx,
            tx: lan_out_tx,
        },
        &stop,
    );
    let control = ControlPlane {
        links: LinkManager::start(&cfg, Uplink::new(nat.clone(), Some(dp), None), &stop),
        nat: NatControl::new(Arc::new(cfg.clone()), nat.clone(), None),
    };
    let state = ServerState::new(cfg.clone(), Some(control)).unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let server = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(masqdial_server::server::run(
        listener,
        state,
        None,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let d = dir.path();
    let run = |args: Vec<&'static str>| {
        let server = server.clone();
        async move { mclient(d, &server, &args, &[], "").await }
    };

    let mut errs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (u, pw) in [("alice", "alice-pw"), ("root", "root-pw")] {
        let o = mclient(
            d,
            &server,
            &["--json", "-u", u, "login"],
            &[("MASQDIAL_PASSWORD", pw)],
            "",
        )
        .await;
        assert_eq!(o.code, 0, "login {u}: {}{}", o.stdout, o.stderr);
        errs.insert(format!("login {u}"), check_output("login", &o.stdout, &s));
    }

    // A watcher started before the dial sees its events.
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_mclient"));
    watch
        .args(["--json", "-u", "alice", "watch"])
        .env("MASQDIAL_SERVER", &server)
        .env("XDG_CONFIG_HOME", d.join("cfg"))
        .env("XDG_DATA_HOME", d.join("data"))
        .env("HOME", d)
        .env_remove("MASQDIAL_TOKEN_FILE")
        .env_remove("MASQDIAL_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut watcher = watch.spawn().unwrap_or_else(|e| panic!("watch: {e}"));
    let watch_out = watcher.stdout.take().unwrap_or_else(|| panic!("no stdout"));

    // Dial isp1 through to up (JSON lines), then traffic from the LAN host.
    let o = run(vec!["--json", "-u", "alice", "dial", "isp1"]).await;
    assert_eq!(o.code, 0, "dial isp1: {}{}", o.stdout, o.stderr);
    errs.insert("dial isp1".into(), check_output("dial", &o.stdout, &s));
    for sport in [40_007u16, 40_008] {
        lan_tx
            .send(udp_packet(sport, 7, b"schema"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = tokio::time::timeout(LIMIT, lan_out.recv()).await;
    }

    // (schema name, args) with the user who runs them.
    let cases: &[(&str, &[&str], &str)] = &[
        ("whoami", &["whoami"], "alice"),
        ("sessions", &["sessions"], "root"),
        ("list", &["list"], "alice"),
        ("cinfo", &["cinfo", "isp1"], "alice"),
        ("status", &["status"], "alice"),
        ("who", &["who"], "alice"),
        ("modems", &["modems"], "alice"),
        ("masq", &["masq"], "alice"),
        ("ports", &["ports"], "alice"),
        ("timeouts", &["timeouts"], "alice"),
        ("timeouts", &["timeouts", "set", "900", "0", "300"], "root"),
        ("ipchains -L", &["ipchains", "-L", "-n"], "alice"),
        (
            "ipchains -A",
            &["ipchains", "-A", "input", "-p", "tcp", "-j", "ACCEPT"],
            "root",
        ),
        (
            "ipchains -A",
            &["ipchains", "-D", "input", "-p", "tcp", "-j", "ACCEPT"],
            "root",
        ),
        (
            "ipchains -C",
            &[
                "ipchains",
                "-C",
                "forward",
                "-p",
                "udp",
                "-s",
                "192.168.77.10",
                "1025",
                "-d",
                "203.0.113.1",
                "7",
                "-i",
                "ppp0",
            ],
            "alice",
        ),
        ("ipchains -M -L", &["ipchains", "-M", "-L"], "alice"),
        (
            "ipchains -M -S",
            &["ipchains", "-M", "-S", "7200", "10", "160"],
            "root",
        ),
        ("save", &["save"], "alice"),
        ("counters", &["counters"], "alice"),
        ("hangup", &["hangup", "isp1"], "alice"),
    ];
    for (name, args, user) in cases {
        let mut a = vec!["--json", "-u", user];
        a.extend_from_slice(args);
        let o = mclient(d, &server, &a, &[], "").await;
        assert_eq!(o.code, 0, "{args:?}: {}{}", o.stdout, o.stderr);
        assert!(
            o.stderr.is_empty(),
            "{args:?} wrote to stderr: {}",
            o.stderr
        );
        errs.entry(format!("{name} {args:?}"))
            .or_default()
            .extend(check_output(name, &o.stdout, &s));
    }
    // The masquerade listing had live entries to check.
    let o = run(vec!["--json", "-u", "alice", "masq"]).await;
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap_or_default();
    assert!(
        v.to_string().contains("192.168.77.10"),
        "no live masquerade entry to check: {}",
        o.stdout
    );

    // A BUSY dial: JSON lines up to `failed`, then exit 12 with a JSON error last.
    let links_idle = async {
        for _ in 0..600 {
            let o = run(vec!["--json", "-u", "alice", "status"]).await;
            if !o.stdout.contains("\"up\"") && !o.stdout.contains("hanging") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("isp1 did not go idle after the hang-up");
    };
    links_idle.await;
    let o = run(vec!["--json", "-u", "alice", "dial", "isp2"]).await;
    assert_eq!(o.code, 12, "dial isp2 (busy): {}{}", o.stdout, o.stderr);
    let (events, last) = o.stdout.trim_end().rsplit_once('\n').unwrap_or_default();
    errs.insert("dial isp2".into(), check_output("dial", events, &s));
    errs.insert("dial isp2 error".into(), {
        let mut e = Vec::new();
        let v: Value = serde_json::from_str(last).unwrap_or_default();
        check(&v, &s["types"]["error"], &s["types"], "error", &mut e);
        e
    });

    // restore (dry run and real) from stdin, save to a file.
    for args in [
        vec!["--json", "-u", "root", "restore", "-", "--dry-run"],
        vec!["--json", "-u", "root", "restore", "-"],
    ] {
        let o = mclient(
            d,
            &server,
            &args,
            &[],
            ":input ACCEPT\n-A input -p tcp -j ACCEPT\n",
        )
        .await;
        assert_eq!(o.code, 0, "{args:?}: {}{}", o.stdout, o.stderr);
        errs.insert(format!("{args:?}"), check_output("restore", &o.stdout, &s));
    }
    let f = d.join("rules.save");
    let fs = f.display().to_string();
    let o = mclient(d, &server, &["--json", "-u", "root", "save", &fs], &[], "").await;
    assert_eq!(o.code, 0, "save FILE: {}", o.stderr);
    errs.insert("save FILE".into(), check_output("save", &o.stdout, &s));

    // The watcher's first lines (the dial's events came after it started).
    {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(watch_out).lines();
        let mut got = String::new();
        for _ in 0..5 {
            let l = tokio::time::timeout(LIMIT, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("watch printed nothing"))
                .unwrap_or_default()
                .unwrap_or_default();
            got.push_str(&l);
            got.push('\n');
        }
        let _ = watcher.start_kill();
        let _ = watcher.wait().await;
        errs.insert("watch".into(), check_output("watch", &got, &s));
    }

    // revoke by a real session id (alice's, from `sessions`), then by user, then logout.
    let o = run(vec!["--json", "-u", "root", "sessions"]).await;
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap_or_default();
    let id = v["sessions"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["user"] == "alice"))
        .and_then(|x| x["id"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(!id.is_empty(), "no session of alice in {}", o.stdout);
    let o = mclient(
        d,
        &server,
        &["--json", "-u", "root", "revoke", &id],
        &[],
        "",
    )
    .await;
    assert_eq!(o.code, 0, "revoke {id}: {}{}", o.stdout, o.stderr);
    errs.insert("revoke ID".into(), check_output("revoke", &o.stdout, &s));
    // (revoking a user with no session is "not found", exit 5: log alice in again first)
    let o = mclient(
        d,
        &server,
        &["-u", "alice", "login"],
        &[("MASQDIAL_PASSWORD", "alice-pw")],
        "",
    )
    .await;
    assert_eq!(o.code, 0, "login alice again: {}", o.stderr);
    let o = run(vec!["--json", "-u", "root", "revoke", "alice"]).await;
    assert_eq!(o.code, 0, "revoke alice: {}{}", o.stdout, o.stderr);
    errs.insert("revoke alice".into(), check_output("revoke", &o.stdout, &s));
    let o = mclient(
        d,
        &server,
        &["--json", "-u", "root", "login"],
        &[("MASQDIAL_PASSWORD", "root-pw")],
        "",
    )
    .await;
    assert_eq!(o.code, 0, "login again: {}", o.stderr);
    let o = run(vec!["--json", "-u", "root", "logout"]).await;
    assert_eq!(o.code, 0, "logout: {}", o.stderr);
    errs.insert("logout".into(), check_output("logout", &o.stdout, &s));

    // Errors are JSON on stdout, nothing on stderr.
    for (args, code) in [
        (vec!["--json", "-u", "nobody", "list"], 3),
        (vec!["--json", "frobnicate"], 2),
    ] {
        let o = run(args.clone()).await;
        assert_eq!(o.code, code, "{args:?}: {}{}", o.stdout, o.stderr);
        assert!(o.stderr.is_empty(), "{args:?}: {}", o.stderr);
        let v: Value = serde_json::from_str(o.stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", o.stdout));
        let mut e = Vec::new();
        check(&v, &s["types"]["error"], &s["types"], "error", &mut e);
        errs.insert(format!("error {args:?}"), e);
    }

    let _ = stop_tx.send(());
    stop.signal();
    let _ = tokio::time::timeout(LIMIT, task).await;
    let bad: Vec<String> = errs
        .into_iter()
        .flat_map(|(k, v)| v.into_iter().map(move |e| format!("{k}: {e}")))
        .collect();
    assert!(bad.is_empty(), "schema mismatches:\n{}", bad.join("\n"));
}
