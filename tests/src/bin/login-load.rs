//! login-load: a load benchmark for issue 10 item 2 (not a timed test).
//!
//! `login-load flood` starts a server child (`login-load serve`: the real `server::run` and
//! `Auth` with the crate's default argon2id parameters, no control plane), measures its idle
//! RSS, then opens N concurrent bogus logins, each from its own 127.x.y.z source address
//! (so the per-address budget does not hide the global bound), while an allowed user calls
//! WhoAmI every 20 ms on an already-open connection. Prints the child's peak RSS and the
//! WhoAmI latencies.
//!
//! `login-load guess` does the same with N parallel wrong passwords for one user, each from
//! its own address, and prints how many were actually checked (UNAUTHENTICATED) and how many
//! were refused (RESOURCE_EXHAUSTED).
//!
//! Both modes also make 8 legitimate logins (right password, from 127.0.0.1, where the user
//! logged in before) spread over the load, and print how many got in (security N3: the
//! review saw 5 of 8 fail with "server busy" under a flood from 200 addresses).
//!
//! Run as: `ulimit -n 16384; target/release/login-load flood --n 1000` and
//! `target/release/login-load guess --n 400`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use hyper_util::rt::TokioIo;
use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_client::AuthClient;
use masqdial_server::auth;
use masqdial_server::config::{Config, UserConfig, UserRole};
use masqdial_server::server;
use masqdial_server::shutdown::Shutdown;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpSocket};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

const USER: &str = "alice";
const PASSWORD: &str = "alice-load-pw";
/// Bound on the whole run.
const RUN_BOUND: Duration = Duration::from_secs(300);

#[derive(Debug, Parser)]
#[command(name = "login-load", about = "Login load benchmark (issue 10 item 2)")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Serve on 127.0.0.1:0 (prints the port); used as the child.
    Serve,
    /// N concurrent logins with unknown names, each from its own address.
    Flood {
        #[arg(long, default_value_t = 1000)]
        n: usize,
    },
    /// N parallel wrong passwords for one user, each from its own address.
    Guess {
        #[arg(long, default_value_t = 400)]
        n: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.mode {
        Mode::Serve => rt.block_on(serve()),
        Mode::Flood { n } => rt.block_on(bounded(drive(n, false))),
        Mode::Guess { n } => rt.block_on(bounded(drive(n, true))),
    }
}

async fn bounded(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::time::timeout(RUN_BOUND, f)
        .await
        .map_err(|_| anyhow!("run exceeded {RUN_BOUND:?}"))?
}

async fn serve() -> anyhow::Result<()> {
    // As mserver does at start (see masqdial_server::memory).
    masqdial_server::memory::tune_allocator();
    let mut config = Config::default();
    config.server.allow = vec!["127.0.0.0/8".parse()?];
    config.users.push(UserConfig {
        name: USER.into(),
        // The crate's default (OWASP) parameters, as `mserver hash-password` makes.
        password_hash: auth::hash_password(PASSWORD)?,
        role: UserRole::User,
        connections: vec![],
    });
    let shutdown = Shutdown::new();
    let state = server::state(config, None, &shutdown)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    // Ends when the parent closes our stdin.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
    let stop = async move {
        let _ = rx.await;
    };
    server::run(listener, state, None, stop).await?;
    Ok(())
}

/// RSS and peak RSS (VmHWM) of `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// A channel whose TCP connection comes from `src`.
async fn channel_from(addr: SocketAddr, src: IpAddr) -> anyhow::Result<Channel> {
    let connector = tower::service_fn(move |_uri: tonic::transport::Uri| async move {
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(src, 0))?;
        let s = sock.connect(addr).await?;
        Ok::<_, std::io::Error>(TokioIo::new(s))
    });
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .timeout(Duration::from_secs(120))
        .connect_with_connector(connector)
        .await?)
}

fn source(i: usize) -> IpAddr {
    // 127.10.0.1 .. : one address per attempt.
    let i = i as u32 + 1;
    IpAddr::V4(Ipv4Addr::new(127, 10, (i >> 8) as u8, (i & 0xff) as u8))
}

async fn drive(n: usize, guess: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    // `LOGIN_LOAD_WRAP="heaptrack -o /tmp/ht"` runs the server child under a profiler.
    let wrap: Vec<String> = std::env::var("LOGIN_LOAD_WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut cmd = match wrap.split_first() {
        Some((prog, args)) => {
            let mut c = tokio::process::Command::new(prog);
            c.args(args).arg(&exe);
            c
        }
        None => tokio::process::Command::new(&exe),
    };
    let mut child = cmd
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("spawn server child")?;
    let pid = child.id().ok_or_else(|| anyhow!("child has no pid"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no child stdout"))?;
    // The first line that is a number is the port (a profiler may print before it).
    let mut lines = BufReader::new(stdout).lines();
    let port: u16 = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("server child ended before printing its port"))?;
        if let Ok(p) = line.trim().parse() {
            break p;
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // The allowed user logs in first and keeps its connection.
    let ch = channel_from(addr, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))).await?;
    let mut who = AuthClient::new(ch.clone());
    let token = who
        .login(pb::LoginRequest {
            user: USER.into(),
            password: PASSWORD.into(),
        })
        .await?
        .into_inner()
        .token;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, _) = rss_kib(pid)?;

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let done = done.clone();
        let mut who = AuthClient::new(ch);
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let mut req = tonic::Request::new(pb::WhoAmIRequest {});
                if let Ok(v) = format!("Bearer {token}").parse() {
                    req.metadata_mut().insert("authorization", v);
                }
                let t = Instant::now();
                let ok = who.who_am_i(req).await.is_ok();
                lat.push((t.elapsed(), ok));
                if let Ok((rss, _)) = rss_kib(pid) {
                    peak = peak.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (lat, peak)
        })
    };

    // Legitimate logins during the load, from the address the user logged in from.
    let legit = tokio::spawn(async move {
        let mut answers = Vec::new();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..8 {
            let r = match channel_from(addr, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))).await {
                Ok(ch) => AuthClient::new(ch)
                    .login(pb::LoginRequest {
                        user: USER.into(),
                        password: PASSWORD.into(),
                    })
                    .await
                    .map(|_| "Ok".to_string())
                    .unwrap_or_else(|s| format!("{:?}: {}", s.code(), s.message())),
                Err(e) => format!("client error: {e}"),
            };
            answers.push(r);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        answers
    });

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push(tokio::spawn(async move {
            let ch = channel_from(addr, source(i))
                .await
                .map_err(|e| e.to_string())?;
            let (user, password) = if guess {
                (USER.to_string(), format!("guess-{i}"))
            } else {
                (format!("bogus-{i}"), format!("pw-{i}"))
            };
            AuthClient::new(ch)
                .login(pb::LoginRequest { user, password })
                .await
                .map(|_| "Ok".to_string())
                .or_else(|s| {
                    Ok(if s.code() == Code::Unknown {
                        // Transport failures: say which.
                        let m: String = format!("{:?}", std::error::Error::source(&s))
                            .chars()
                            .take(160)
                            .collect();
                        format!("Unknown ({m})")
                    } else {
                        format!("{:?}", s.code())
                    })
                })
        }));
    }
    let mut codes: std::collections::BTreeMap<String, usize> = Default::default();
    for t in tasks {
        let c: Result<String, String> = t.await.unwrap_or_else(|e| Err(e.to_string()));
        let k = match c {
            Ok(c) => c,
            Err(e) => format!("client error: {e}"),
        };
        *codes.entry(k).or_default() += 1;
    }
    let took = start.elapsed();
    let legit = legit.await.unwrap_or_default();
    done.store(true, std::sync::atomic::Ordering::Release);
    let (mut lat, peak_sampled) = prober.await?;
    let (_, hwm) = rss_kib(pid)?;
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;

    let failed = lat.iter().filter(|(_, ok)| !ok).count();
    lat.sort();
    if lat.is_empty() {
        bail!("no WhoAmI sample");
    }
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1].0;
    println!(
        "mode={} n={n} took={:.2}s",
        if guess { "guess" } else { "flood" },
        took.as_secs_f64()
    );
    println!("answers: {codes:?}");
    let legit_ok = legit.iter().filter(|a| *a == "Ok").count();
    println!(
        "legitimate logins during the load: {legit_ok} of {} ok{}",
        legit.len(),
        if legit_ok == legit.len() {
            String::new()
        } else {
            format!(
                " (others: {:?})",
                legit.iter().filter(|a| *a != "Ok").collect::<Vec<_>>()
            )
        }
    );
    println!(
        "server RSS: idle {} MiB, peak sampled {} MiB, VmHWM {} MiB (delta over idle {} MiB)",
        idle / 1024,
        peak_sampled / 1024,
        hwm / 1024,
        hwm.saturating_sub(idle) / 1024
    );
    println!(
        "whoami during load: {} calls ({} failed), p50 {:?}, p99 {:?}, max {:?}",
        lat.len(),
        failed,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
