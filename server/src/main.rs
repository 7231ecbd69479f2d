//! `mserver`: thin entry point; everything lives in the library.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
#[cfg(feature = "demo")]
use masqdial_server::demo;
use masqdial_server::shutdown::Shutdown;
use masqdial_server::{auth, config::Config, daemon, server};

/// How long the link actors (each bounded by its own hang-up limit) and the other tasks
/// get to end after the signal.
const STOP_BOUND: std::time::Duration = std::time::Duration::from_secs(12);

/// masqdial gateway server.
#[derive(Debug, Parser)]
#[command(name = "mserver", version, about)]
struct Cli {
    /// Configuration file.
    #[arg(long, short, default_value = "/etc/masqdial/mserver.toml")]
    config: PathBuf,
    /// Listen address, overriding `[server] listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Run the built-in demo on loopback (ignores --config).
    #[arg(long)]
    demo: bool,
    /// Move the saved rules and timeouts of `state_dir` aside (kept as `*.rejected-TIME`) and
    /// start from the configured `[nat] ruleset`; needed when a saved file is refused.
    #[arg(long)]
    reset_state: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read a password (no echo on a terminal, else one line of stdin) and print its
    /// argon2id PHC string for `password_hash`.
    HashPassword,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::HashPassword) = cli.command {
        return match hash_password() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mserver: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mserver: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mserver: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    if cli.demo {
        return serve_demo(cli, shutdown).await;
    }
    let config = Config::load(&cli.config)?;
    if cli.reset_state {
        for moved in masqdial_server::persist::reset_state(&config)? {
            tracing::warn!(file = %moved.display(), "saved state moved aside (--reset-state)");
        }
    }
    let addr = cli.listen.unwrap_or(config.server.listen);
    let listener = server::bind(addr).await?;
    let running = daemon::start(Arc::new(config.clone()), daemon::LanSide::Tun, &shutdown)?;
    let state = server::state(config, Some(running.control), &shutdown)?;
    server::run(listener, state, Some(cli.config), server::shutdown_signal()).await?;
    stop(&shutdown).await;
    Ok(())
}

/// `mserver --demo`: the built-in configuration and its simulated world.
#[cfg(feature = "demo")]
async fn serve_demo(cli: Cli, shutdown: Shutdown) -> anyhow::Result<()> {
    use anyhow::Context;

    let (config, users) = demo::config()?;
    let listener = match cli.listen {
        Some(a) => server::bind(a).await?,
        None => demo::bind()
            .await
            .context("cannot bind a loopback port for the demo")?,
    };
    let addr = listener.local_addr()?;
    let mut config = config;
    let (world, lan) = demo::world(&mut config)?;
    let running = daemon::start(Arc::new(config.clone()), lan, &shutdown)?;
    let state = server::state(config, Some(running.control.clone()), &shutdown)?;
    println!("{}", demo::banner(addr, &users));
    if world.lan.is_some() {
        println!(
            "Demo LAN: namespace {} (192.168.77.2) sends traffic through the gateway once isp1 is up.\n",
            world.lan.as_ref().map(|l| l.lan_ns()).unwrap_or_default()
        );
    } else if !running.dataplane_on {
        println!(
            "Not root: the dataplane is off (links come up, no LAN traffic is masqueraded).\n"
        );
    }
    server::run(listener, state, None, server::shutdown_signal()).await?;
    stop(&shutdown).await;
    drop(world);
    Ok(())
}

/// This mserver was built without the simulator.
#[cfg(not(feature = "demo"))]
async fn serve_demo(_cli: Cli, _shutdown: Shutdown) -> anyhow::Result<()> {
    anyhow::bail!(
        "this mserver was built without the demo (cargo feature `demo` of masqdial-server)"
    )
}

/// Stop every task (link actors hang up, each within its own limit) and join them.
async fn stop(shutdown: &Shutdown) {
    if !shutdown.stop(STOP_BOUND).await {
        tracing::warn!("some tasks did not stop within {STOP_BOUND:?}; exiting anyway");
    }
}

fn hash_password() -> anyhow::Result<()> {
    let password = if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("Password: ")?;
        let b = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(a == b, "passwords differ");
        a
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    anyhow::ensure!(!password.is_empty(), "empty password");
    println!("{}", auth::hash_password(&password)?);
    Ok(())
}
