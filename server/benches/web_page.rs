//! Figures of the web page (issue 28), printed, never asserted:
//! - 50 open pages (server-sent event clients) watching a 10,000-entry masquerade table with
//!   100 new flows a second: server CPU (the server runtime's threads only) and process RSS,
//!   events and bytes per second per page.
//!
//! The first view in headless Chromium (time to interactive, bytes) is printed by
//! `server/tests/web_browser.rs`.
//!
//! `cargo bench -p masqdial-server --bench web_page`

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use masqdial_server::auth::{self, Auth};
use masqdial_server::config::{Config, ConnectionConfig, UserConfig, UserRole};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::manager::LinkManager;
use masqdial_server::nat_control::{self, NatControl};
use masqdial_server::rpc::{ControlPlane, Limits, ServerState};
use masqdial_server::shutdown::Shutdown;
use masqdial_server::web::{self, Web};
use nat_core::masq::{MasqConfig, PortRange};
use nat_core::wire::{ipv4, proto, tcp};
use nat_core::{Engine, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ENTRIES: u32 = 10_000;
const PAGES: usize = 50;
const WINDOW: Duration = Duration::from_secs(20);
const NEW_FLOWS_PER_TICK: u32 = 10;
const TICK: Duration = Duration::from_millis(100);

fn syn(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16) -> Vec<u8> {
    let mut b = vec![0u8; 40];
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto::TCP,
        payload_len: 20,
        ttl: 64,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
    t.set_src_port(sp);
    t.set_dst_port(dp);
    t.set_seq_number(1);
    t.set_header_len_and_flags(20, 0x002);
    t.set_window_len(65535);
    t.fill_checksum(src, dst);
    b
}

fn flow(nat: &NatHandle, i: u32) {
    let remote = Ipv4Addr::new(198, 51, 100, (i % 16) as u8 + 1);
    let host = Ipv4Addr::new(10, (i / 250 / 250) as u8, (i / 250 % 250) as u8, 1);
    let mut p = syn(host, 10_000 + (i % 250) as u16, remote, 80);
    let now = nat.now();
    let _ = nat.lock().process_from_lan(now, &mut p);
}

fn config() -> Config {
    let mut c = Config::default();
    c.server.allow = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    let h = |pw: &str| auth::hash_password_with(pw, auth::fast_params()).unwrap_or_default();
    for (name, role) in [("alice", UserRole::User), ("root", UserRole::Admin)] {
        c.users.push(UserConfig {
            name: name.into(),
            password_hash: h(&format!("{name}-pw")),
            role,
            connections: vec!["isp1".into()],
        });
    }
    let cc: ConnectionConfig =
        toml::from_str("name = \"isp1\"\nnumbers = [\"555\"]").unwrap_or_else(|e| panic!("{e}"));
    c.connections.push(cc);
    c
}

/// CPU seconds of this process's threads named `web-srv*`, and the process RSS in KiB.
fn server_cpu_and_rss() -> (f64, u64) {
    let tick = 100.0; // USER_HZ on Linux
    let mut cpu = 0.0;
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for t in rd.flatten() {
            let p = t.path();
            let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            if !comm.starts_with("web-srv") {
                continue;
            }
            let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
            // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ut: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0);
                let st: f64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
                cpu += (ut + st) / tick;
            }
        }
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    (cpu, rss)
}

/// One page's event stream: counts events and bytes until `until`.
async fn page(addr: std::net::SocketAddr, cookie: String, until: Instant) -> (u64, u64) {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return (0, 0);
    };
    let req = format!("GET /events HTTP/1.1\r\nHost: b\r\nCookie: {cookie}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, 0);
    }
    let (mut events, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                bytes += n as u64;
                tail.extend_from_slice(&buf[..n]);
                events += tail.windows(7).filter(|w| *w == b"event: ").count() as u64;
                let keep = tail.len().saturating_sub(6);
                tail.drain(..keep);
            }
            _ => break,
        }
    }
    (events, bytes)
}

fn main() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("web-srv")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("web-cli")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));

    let cfg = config();
    let engine_cfg = EngineConfig {
        masq: MasqConfig {
            ports: [PortRange {
                lo: 1024,
                hi: 65535,
            }; 3],
            ..MasqConfig::linux22()
        },
        ..EngineConfig::default()
    };
    let mut e = Engine::new(engine_cfg);
    let _ = e.firewall_mut().set_policy("forward", "MASQ");
    e.set_masq_address(Some(Ipv4Addr::new(203, 0, 113, 5)));
    let nat = NatHandle::new(e);
    for i in 0..ENTRIES {
        flow(&nat, i);
    }
    let entries = nat.lock().masq().len();

    let (addr, state, shutdown) = server_rt.block_on(async {
        let shutdown = Shutdown::new();
        let control = ControlPlane {
            links: LinkManager::start(&cfg, Uplink::new(nat.clone(), None, None), &shutdown),
            nat: NatControl::new(Arc::new(cfg.clone()), nat.clone(), None),
        };
        shutdown.spawn(nat_control::feed::run(
            control.nat.clone(),
            shutdown.token(),
        ));
        let auth = Auth::new(&cfg).unwrap_or_else(|e| panic!("{e}"));
        let limits = Limits {
            streams_per_user: 64,
            ..Limits::default()
        };
        let state =
            ServerState::with_limits(cfg.clone(), auth, Some(control), shutdown.clone(), limits);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let w = Web::new(state.clone(), false).unwrap_or_else(|e| panic!("{e}"));
        let lim = Limits {
            max_per_ip: 128,
            ..web::web_limits()
        };
        tokio::spawn(web::serve_router(
            l,
            state.clone(),
            web::router(w),
            None,
            lim,
        ));
        (addr, state, shutdown)
    });
    // Churn: new flows every tick (the feed turns them into deltas).
    let churn_nat = nat.clone();
    server_rt.spawn(async move {
        let mut i = ENTRIES;
        loop {
            tokio::time::sleep(TICK).await;
            for _ in 0..NEW_FLOWS_PER_TICK {
                flow(&churn_nat, i);
                i += 1;
            }
        }
    });

    let cookies: Vec<String> = (0..PAGES)
        .map(|i| {
            let user = if i % 2 == 0 { "alice" } else { "root" };
            let t = state
                .auth()
                .issue_token(user, SystemTime::now())
                .unwrap_or_else(|e| panic!("{e}"));
            format!("{}={}", web::SESSION_COOKIE, t.token)
        })
        .collect();

    let (cpu0, rss0) = server_cpu_and_rss();
    let t0 = Instant::now();
    let until = t0 + WINDOW;
    let results: Vec<(u64, u64)> = client_rt.block_on(async {
        let tasks: Vec<_> = cookies
            .into_iter()
            .map(|c| tokio::spawn(page(addr, c, until)))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or((0, 0)));
        }
        out
    });
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss1) = server_cpu_and_rss();
    let ev: u64 = results.iter().map(|r| r.0).sum();
    let by: u64 = results.iter().map(|r| r.1).sum();
    let live = results.iter().filter(|r| r.0 > 0).count();
    println!("web_page: {PAGES} pages ({live} got events) watching {entries} masq entries, +{} flows/s, {secs:.1} s",
        NEW_FLOWS_PER_TICK * 10);
    println!(
        "  server CPU (server runtime threads): {:.1} % of one core ({:.2} s)",
        100.0 * (cpu1 - cpu0) / secs,
        cpu1 - cpu0
    );
    println!("  process RSS: {rss0} KiB before the pages, {rss1} KiB with them open");
    println!(
        "  per page: {:.1} events/s, {:.0} KiB/s (first snapshot included: {:.0} KiB total per page)",
        ev as f64 / PAGES as f64 / secs,
        by as f64 / PAGES as f64 / secs / 1024.0,
        by as f64 / PAGES as f64 / 1024.0
    );
    server_rt.block_on(async { shutdown.token().cancel() });
    drop(state);
    // The first view (time to interactive, bytes) is measured in a real browser by
    // server/tests/web_browser.rs, which prints it.
}
