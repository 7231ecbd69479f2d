//! `mserver`: thin entry point; everything lives in the library.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use masqdial_server::cli::{Cli, Command};
#[cfg(feature = "demo")]
use masqdial_server::demo;
use masqdial_server::shutdown::Shutdown;
use masqdial_server::{auth, daemon, metrics, notify, scrape, server, setup, web};

// How long the link actors (each bounded by its own hang-up limit) and the other tasks
// get to end after the signal (with the rpc grace, below the unit's TimeoutStopSec).
use masqdial_server::shutdown::STOP_BOUND;

/// Exit status for configuration errors (sysexits.h EX_CONFIG); the unit's
/// RestartPreventExitStatus= keeps systemd from restarting on it.
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = |r: anyhow::Result<()>| match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mserver: {e:#}");
            if is_config_error(&e) {
                ExitCode::from(EX_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    };
    match cli.command {
        Some(Command::HashPassword) => return done(hash_password()),
        Some(Command::Init) => return done(init(&cli.config)),
        Some(Command::CheckConfig) => return done(check_config(&cli.config)),
        Some(Command::GenCert {
            ref dir,
            ref names,
            days,
        }) => return done(gen_cert(dir, names, days)),
        None => {}
    }
    init_tracing();
    if !masqdial_server::memory::tune_allocator() {
        tracing::debug!("allocator settings not applied on this platform");
    }
    // Started as root: bind the listeners and become `[server] user` (default masqdial) with
    // CAP_NET_ADMIN and CAP_NET_RAW only, before the runtime starts any thread (N18).
    let prebound = if cli.demo {
        masqdial_server::privdrop::Prebound::default()
    } else {
        match drop_root(&cli) {
            Ok(p) => p,
            Err(e) => return done(Err(e)),
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mserver: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli, prebound)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mserver: {e:#}");
            if is_config_error(&e) {
                ExitCode::from(EX_CONFIG)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// Whether `e` is a configuration problem (exit 78) rather than a runtime failure. A saved
/// state file that is refused (torn, edited, or a ruleset that no longer loads) is one too:
/// restarting cannot fix it, so systemd (`RestartPreventExitStatus=78`) must not loop on it.
fn is_config_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<masqdial_server::config::ConfigError>()
            .is_some()
            || c.downcast_ref::<masqdial_server::persist::StateError>()
                .is_some()
            || c.downcast_ref::<setup::SetupError>()
                .is_some_and(setup::SetupError::is_config)
    })
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal; under journald (stderr is the journal stream) no timestamp
    // of our own either: the journal adds one.
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if stderr_is_journal() {
        fmt.without_time().init();
    } else {
        fmt.init();
    }
}

/// True when stderr is the stream systemd named in `$JOURNAL_STREAM` (`DEV:INODE`), so a
/// redirected stderr under systemd still gets timestamps.
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr()) {
        Ok(st) => {
            dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
        }
        Err(_) => false,
    }
}

/// Privileges dropped when running as root (see `masqdial_server::privdrop`), with the
/// listeners of the configuration bound first.
fn drop_root(cli: &Cli) -> anyhow::Result<masqdial_server::privdrop::Prebound> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(Default::default());
    }
    let config = setup::check_config(&cli.config)?;
    let mut addrs = vec![cli.listen.unwrap_or(config.server.listen)];
    addrs.extend(config.server.metrics_listen);
    addrs.extend(config.web.listen);
    masqdial_server::privdrop::before_runtime(config.server.user.as_deref(), &addrs)
}

async fn serve(cli: Cli, mut prebound: masqdial_server::privdrop::Prebound) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    if cli.demo {
        return serve_demo(cli, shutdown).await;
    }
    // SIGTERM/SIGINT are ours from here on (a stop during start-up is a clean stop).
    let stop_signal = server::shutdown_signal();
    // Everything `mserver check-config` checks: a bad file exits 78 (EX_CONFIG).
    let config = setup::check_config(&cli.config)?;
    if cli.reset_state {
        for moved in masqdial_server::persist::reset_state(&config)? {
            tracing::warn!(file = %moved.display(), "saved state moved aside (--reset-state)");
        }
    }
    let addr = cli.listen.unwrap_or(config.server.listen);
    let listener = prebound.take_or_bind(addr).await?;
    if config.tls().is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "serving plaintext on a non-loopback address: passwords and tokens cross the LAN \
             in clear; `mserver gen-cert` makes a certificate (then set tls_cert/tls_key)"
        );
    }
    let running = daemon::start(Arc::new(config.clone()), daemon::LanSide::Tun, &shutdown)?;
    let links = running.control.links.clone();
    let metrics_listen = config.server.metrics_listen;
    let web_listen = config.web.listen;
    let tls = config
        .tls()
        .map(|(c, k)| (c.to_path_buf(), k.to_path_buf()));
    let state = server::persistent_state(config, Some(running.control.clone()), &shutdown)?;
    if let Some(m) = metrics_listen {
        let l = prebound.take_or_bind(m).await?;
        let registry = metrics::global();
        registry.register("nat", scrape::nat_source(running.control.nat.nat().clone()));
        registry.register("links", scrape::link_source(links.clone()));
        tracing::info!(addr = %m, "metrics on http://{m}/metrics");
        // The allow-list in force applies, reloads included (finding N9).
        shutdown.spawn(metrics::serve(l, state.clone()));
    }
    if let Some(w) = web_listen {
        let l = prebound.take_or_bind(w).await?;
        let acceptor = match &tls {
            Some((c, k)) => Some(web::tls_acceptor(c, k)?),
            None => None,
        };
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        tracing::info!(addr = %w, "web page on {scheme}://{w}/");
        let face = web::Web::new(state.clone(), acceptor.is_some())?;
        shutdown.spawn(web::serve(l, face, acceptor));
    }
    // Type=notify: ready once the port is bound and the gateway runs; STATUS= follows the
    // links.
    let notifier = notify::Notifier::from_env();
    notifier.ready(&format!(
        "listening on {}; {}",
        listener.local_addr()?,
        scrape::link_summary(&links)
    ));
    if notifier.enabled() {
        let n = notifier.clone();
        let mut events = links.events();
        let stop = shutdown.token();
        shutdown.spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    ev = events.recv() => match ev {
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            n.status(&scrape::link_summary(&links));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
    }
    let on_stop = notifier.clone();
    let signal = async move {
        stop_signal.await;
        on_stop.stopping();
    };
    let served = server::run(listener, state, Some(cli.config), signal).await;
    stop(&shutdown).await;
    served?;
    Ok(())
}

/// `mserver --demo`: the built-in configuration and its simulated world.
#[cfg(feature = "demo")]
async fn serve_demo(cli: Cli, shutdown: Shutdown) -> anyhow::Result<()> {
    use anyhow::Context;

    // Handlers first: a SIGTERM while the demo builds its namespaces is a clean stop that
    // removes them, not death by the signal that leaves them behind.
    let stop_signal = server::shutdown_signal();
    let demo_state = demo::DemoState::create_in(&std::env::temp_dir())
        .context("cannot create the demo's state directory")?;
    let (config, users) = demo::config(&demo_state)?;
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
    let state = server::persistent_state(config, Some(running.control.clone()), &shutdown)?;
    let (web_listener, fallback) = demo::bind_web()
        .await
        .context("cannot bind a loopback port for the demo's web page")?;
    let web_addr = web_listener.local_addr()?;
    shutdown.spawn(web::serve(
        web_listener,
        web::Web::new(state.clone(), false)?,
        None,
    ));
    println!("{}", demo::banner(addr, &users, &demo_state));
    if cli.listen.is_none() && addr.to_string() != demo::DEMO_ADDR {
        println!(
            "Note: {} was taken, so this demo listens on {addr}: use the MASQDIAL_SERVER line above.\n",
            demo::DEMO_ADDR
        );
    }
    println!("{}", demo::web_banner(web_addr, fallback));
    if world.lan.is_some() {
        println!(
            "Demo LAN: namespace {} (192.168.77.2) sends traffic through the gateway once isp1 is up.",
            world.lan.as_ref().map(|l| l.lan_ns()).unwrap_or_default()
        );
        if let Some(w) = &world.wan {
            println!(
                "Demo internet: TCP echo (port 7) and FTP (port 21) on {} in namespace {}; the LAN host\n\
                 fetches from them every 20 s (see `mclient masq` for TCP states and the FTP helper).\n",
                demo::wan::WAN_SERVER,
                w.ns()
            );
        } else {
            println!();
        }
    } else if !running.dataplane_on {
        println!(
            "Not root: the dataplane is off (links come up, no LAN traffic is masqueraded).\n"
        );
    }
    let served = server::run(listener, state, None, stop_signal).await;
    stop(&shutdown).await;
    drop(world);
    drop(demo_state);
    served?;
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

fn init(path: &std::path::Path) -> anyhow::Result<()> {
    let out = setup::init(path, |pw| {
        auth::hash_password(pw).map_err(|e| e.to_string())
    })?;
    println!(
        "wrote {} (mode 0640{})",
        out.config.display(),
        match out.group {
            Some(g) => format!(", group {g}"),
            None => String::new(),
        }
    );
    match &out.ruleset {
        Some(r) => println!("wrote {} (the default ruleset)", r.display()),
        None => println!("kept the existing ruleset next to it"),
    }
    println!(
        "\nadmin password: {}\n(shown once and stored only as a hash: note it now, or set a \
         new one with `mserver hash-password`)\n\nNext: edit modems and connections, then \
         `mserver check-config --config {}`.",
        out.admin_password,
        out.config.display()
    );
    Ok(())
}

fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let c = setup::check_config(path)?;
    println!(
        "{}: OK ({} users, {} modems, {} connections, {})",
        path.display(),
        c.users.len(),
        c.modems.len(),
        c.connections.len(),
        if c.tls().is_some() {
            "TLS"
        } else {
            "plaintext"
        }
    );
    Ok(())
}

fn gen_cert(dir: &std::path::Path, names: &[String], days: u32) -> anyhow::Result<()> {
    let names = if names.is_empty() {
        setup::default_cert_names()
    } else {
        names.to_vec()
    };
    let out = setup::gen_cert(dir, &names, days)?;
    let host = names
        .iter()
        .find(|n| {
            *n != "localhost"
                && !n
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
        .unwrap_or(&names[0]);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    println!(
        "wrote {ca} (CA certificate: give it to the clients)\n\
         wrote {cakey} (CA key, 0600: keep it offline to issue new server certificates)\n\
         wrote {cert} and {key} (the server's)\n\n\
         CA SHA-256 fingerprint: {fp}\n\
         server certificate valid for: {names}\n\n\
         In /etc/masqdial/mserver.toml, [server]:\n  \
         tls_cert = \"{cert}\"\n  tls_key  = \"{key}\"\n\n\
         On each client (compare the fingerprint with `openssl x509 -noout -fingerprint -sha256 -in ca.pem`):\n  \
         export MASQDIAL_SERVER=https://{host}:224\n  \
         export MASQDIAL_CA=/path/to/ca.pem",
        ca = out.ca_cert.display(),
        cakey = out.ca_key.display(),
        cert = out.cert.display(),
        key = out.key.display(),
        fp = out.ca_fingerprint,
        names = out.names.join(", "),
    );
    Ok(())
}
