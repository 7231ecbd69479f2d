//! `mock-modem`: a Hayes modem on a pseudo-terminal whose far end is the mock ISP, so a person
//! can point `mserver` at it. Prints the pty path, optionally links it, runs until SIGINT/SIGTERM.
//! Fault injection at run time: SIGUSR1 drops the carrier, SIGUSR2 toggles silence.
//! `--tun` bridges the ISP to a TUN device instead of its simulated internet (the WAN of the
//! end-to-end tests).
//! Owns only argument parsing and process lifetime; the modem and ISP live in `masqdial_sim`.

// The field docs are clap help text (`[speed][/extras]` is usage syntax, not a doc link).
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use masqdial_ppp::AuthProtocol;
use masqdial_sim::internet::TunInternet;
use masqdial_sim::isp::{IspConfig, IspMode};
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::{
    Answerer, AnswererFactory, EchoAnswerer, MockModemConfig, Noise, Outcome,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Auth {
    /// No authentication.
    None,
    /// PAP (RFC 1334) first; CHAP-MD5 when the caller Naks PAP towards it (most ISPs).
    Pap,
    /// PAP and nothing else: asks PAP again after the caller's Nak (insists).
    PapOnly,
    /// CHAP-MD5 (RFC 1994).
    Chap,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum IpcpMode {
    /// Names its own address, assigns the caller's by Nak, gives DNS.
    Standard,
    /// Asks 0.0.0.0 for its own address (expects to be told one).
    AsksZero,
    /// Sends no IP-Address option at all.
    NoAddress,
    /// Configure-Rejects the DNS options.
    RejectsDns,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FarEnd {
    /// The mock ISP (PPP access server + simulated internet).
    Isp,
    /// A loopback plug: echoes every byte (for testing terminals and chat scripts).
    Echo,
}

/// A Hayes-compatible mock modem on a pseudo-terminal.
#[derive(Debug, Parser)]
#[command(name = "mock-modem", version)]
struct Args {
    /// Create (or replace) this symlink to the pty slave, e.g. /tmp/modem0.
    #[arg(long)]
    pty_link: Option<PathBuf>,
    /// Line rate for throttling data, bit/s at 10 bits per byte (0 = unthrottled).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Outcome per number: NUMBER=OUTCOME[@DELAY], e.g. 5551234=BUSY@2s, 5550000="CONNECT 33600".
    /// OUTCOME is CONNECT [speed][/extras], BUSY, NO CARRIER, NO DIALTONE, NO ANSWER or SILENT.
    #[arg(long = "script", value_name = "NUMBER=OUTCOME")]
    script: Vec<String>,
    /// Outcome for numbers not scripted.
    #[arg(long, default_value = "CONNECT 115200")]
    default_outcome: String,
    /// Corrupt data bytes with this probability (0.0-1.0), both directions.
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Seed of the noise pattern.
    #[arg(long, default_value_t = 1)]
    noise_seed: u64,
    /// Drop carrier this many seconds after each CONNECT.
    #[arg(long)]
    carrier_loss_after: Option<f64>,
    /// Escape guard time, S12 in fiftieths of a second.
    #[arg(long, default_value_t = 50)]
    s12: u8,
    /// Start silent (the modem answers nothing).
    #[arg(long)]
    silent: bool,
    /// ISP account NAME:SECRET (repeatable; default demo:demo).
    #[arg(long = "user", value_name = "NAME:SECRET")]
    users: Vec<String>,
    /// Authentication the ISP demands.
    #[arg(long, value_enum, default_value_t = Auth::Chap)]
    auth: Auth,
    /// MRU the ISP's access server asks for (LCP), e.g. 576 or 1492.
    #[arg(long, default_value_t = 1500)]
    mru: u16,
    /// What answers calls.
    #[arg(long, value_enum, default_value_t = FarEnd::Isp)]
    far_end: FarEnd,
    /// IPCP behaviour of the ISP: imitations of independent access servers.
    #[arg(long, value_enum, default_value_t = IpcpMode::Standard)]
    isp_mode: IpcpMode,
    /// Bridge the ISP to this TUN device instead of its simulated internet (needs
    /// CAP_NET_ADMIN): unanswered packets go out of it, packets routed into it come back.
    #[arg(long)]
    tun: Option<String>,
    /// Address of the TUN device, ADDR/PREFIX.
    #[arg(long, default_value = "203.0.113.1/24")]
    tun_addr: String,
    /// Route added via the TUN device towards the ISP's callers (the address pool).
    #[arg(long, default_value = "10.64.0.0/24")]
    tun_route: String,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    run_for: Option<f64>,
    /// Cellular state `RSSI,STAT[,OPERATOR[,ACT]]` answered to AT+CSQ / +CREG? / +COPS?;
    /// repeat for a script (each AT+CSQ moves to the next).
    #[arg(long = "cell", value_name = "RSSI,STAT[,OPERATOR[,ACT]]")]
    cell: Vec<String>,
    /// The SIM asks for this PIN until AT+CPIN="PIN" is sent.
    #[arg(long)]
    sim_pin: Option<String>,
    /// Bytes the far end may queue towards the pty waiting for the wire (the access server's
    /// output buffer); frames that do not fit are dropped. Default: unbounded.
    #[arg(long)]
    down_buffer: Option<usize>,
    /// Log the line's downstream queue (`line stats down_queued=… down_dropped=…`) this often,
    /// in seconds (for benchmarks).
    #[arg(long)]
    stats_every: Option<f64>,
}

fn secs(v: f64, what: &str) -> Result<Duration> {
    if !(v.is_finite() && (0.0..1e7).contains(&v)) {
        bail!("{what}: {v} is not a number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

fn modem_config(args: &Args) -> Result<MockModemConfig> {
    let mut cfg = MockModemConfig {
        baud: args.baud,
        s12: args.s12,
        silent: args.silent,
        default_outcome: args
            .default_outcome
            .parse::<Outcome>()
            .context("--default-outcome")?,
        ..MockModemConfig::default()
    };
    for s in &args.script {
        let (number, outcome) = s
            .split_once('=')
            .with_context(|| format!("--script {s}: want NUMBER=OUTCOME"))?;
        let outcome: Outcome = outcome.parse().with_context(|| format!("--script {s}"))?;
        cfg.outcomes.insert(number.trim().to_string(), outcome);
    }
    if args.noise != 0.0 {
        if !(0.0..=1.0).contains(&args.noise) {
            bail!("--noise {}: want a probability between 0 and 1", args.noise);
        }
        cfg.noise = Some(Noise {
            rate: args.noise,
            seed: args.noise_seed,
        });
    }
    if let Some(v) = args.carrier_loss_after {
        cfg.carrier_loss_after = Some(secs(v, "--carrier-loss-after")?);
    }
    for c in &args.cell {
        cfg.cell.push(
            c.parse()
                .map_err(|e: String| anyhow::anyhow!("--cell {e}"))?,
        );
    }
    cfg.sim_pin.clone_from(&args.sim_pin);
    cfg.down_buffer = args.down_buffer;
    Ok(cfg)
}

fn far_end(args: &Args) -> Result<AnswererFactory> {
    Ok(match args.far_end {
        FarEnd::Echo => Box::new(|_: &str| Box::new(EchoAnswerer::default()) as Box<dyn Answerer>),
        FarEnd::Isp => {
            let mut users = Vec::new();
            for u in &args.users {
                let (n, s) = u
                    .split_once(':')
                    .with_context(|| format!("--user {u}: want NAME:SECRET"))?;
                users.push((n.to_string(), s.to_string()));
            }
            if users.is_empty() {
                users.push(("demo".to_string(), "demo".to_string()));
            }
            let auth = match args.auth {
                Auth::None => None,
                Auth::Pap | Auth::PapOnly => Some(AuthProtocol::Pap),
                Auth::Chap => Some(AuthProtocol::Chap),
            };
            let mut isp = IspConfig::new(users, auth);
            isp.insist_on_auth = matches!(args.auth, Auth::PapOnly);
            isp.mru = args.mru;
            isp.mode = match args.isp_mode {
                IpcpMode::Standard => IspMode::Standard,
                IpcpMode::AsksZero => IspMode::AsksZero,
                IpcpMode::NoAddress => IspMode::NoAddress,
                IpcpMode::RejectsDns => IspMode::RejectsDns,
            };
            match &args.tun {
                None => isp.factory(),
                Some(name) => {
                    let (addr, prefix) = args
                        .tun_addr
                        .split_once('/')
                        .context("--tun-addr: want ADDR/PREFIX")?;
                    let addr: std::net::Ipv4Addr = addr.parse().context("--tun-addr address")?;
                    let prefix: u8 = prefix.parse().context("--tun-addr prefix")?;
                    let net = TunInternet::open(name, addr, prefix)?;
                    let out = std::process::Command::new("ip")
                        .args(["route", "replace", &args.tun_route, "dev", name])
                        .output()
                        .context("running ip route")?;
                    if !out.status.success() {
                        bail!(
                            "ip route replace {} dev {name}: {}",
                            args.tun_route,
                            String::from_utf8_lossy(&out.stderr).trim()
                        );
                    }
                    net.factory(isp)
                }
            }
        }
    })
}

fn link(target: &std::path::Path, link: &std::path::Path) -> Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::remove_file(link)
                .with_context(|| format!("removing old {}", link.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a symlink; not replacing it",
            link.display()
        ),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} -> {}", link.display(), target.display()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = modem_config(&args)?;
    let factory = far_end(&args)?;
    let run_for = args.run_for.map(|v| secs(v, "--run-for")).transpose()?;
    let modem = spawn_pty(cfg, factory).context("creating the pseudo-terminal")?;
    let path = modem.path().to_path_buf();
    if let Some(l) = &args.pty_link {
        link(&path, l)?;
        println!("{} -> {}", l.display(), path.display());
    } else {
        println!("{}", path.display());
    }
    let started = Instant::now();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    let until = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .context("installing SIGUSR1 handler")?;
    let mut usr2 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())
        .context("installing SIGUSR2 handler")?;
    tokio::pin!(until);
    let stats_every = args
        .stats_every
        .map(|v| secs(v, "--stats-every"))
        .transpose()?
        .filter(|d| !d.is_zero());
    let mut stats_tick = tokio::time::interval(stats_every.unwrap_or(Duration::from_secs(3600)));
    let mut silent = args.silent;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT"); break; }
            _ = term.recv() => { tracing::info!("SIGTERM"); break; }
            () = &mut until => break,
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: dropping carrier");
                modem.inject_carrier_loss();
            }
            _ = stats_tick.tick(), if stats_every.is_some() => {
                let s = modem.stats();
                tracing::info!(
                    down_queued = s.down_queued,
                    down_queue_peak = s.down_queue_peak,
                    down_dropped = s.down_dropped,
                    "line stats"
                );
            }
            _ = usr2.recv() => {
                silent = !silent;
                tracing::info!(silent, "SIGUSR2: toggling silence");
                modem.set_silent(silent);
            }
        }
    }
    let stats = modem.stats();
    modem.stop();
    if let Some(l) = &args.pty_link {
        let _ = std::fs::remove_file(l);
    }
    tracing::info!(
        up_for = ?started.elapsed(),
        calls = stats.calls,
        connects = stats.connects,
        bytes_up = stats.bytes_up,
        bytes_down = stats.bytes_down,
        corrupted = stats.corrupted,
        "mock modem stopped"
    );
    Ok(())
}
