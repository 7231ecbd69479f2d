//! `mtui` binary: command line, login through the shared token store, terminal setup and the
//! single event loop (keys, ticks, server updates, signals).
//!
//! It owns the terminal and always restores it: on normal exit, on error (a drop guard), on
//! panic (ratatui's hook) and on SIGTERM/SIGINT/SIGHUP (handled in the loop). It holds no
//! dashboard logic: that is `app`, drawing is `ui`, the gRPC side is `net`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use clap::Parser;
use crossterm::event::{self as ct, KeyCode, KeyEventKind, KeyModifiers};
use masqdial_cli::conn::{self, Clients};
use masqdial_cli::store::{StoredToken, TokenStore};
use masqdial_proto::v1::{LoginRequest, WhoAmIRequest};
use masqdial_tui::app::App;
use masqdial_tui::event::{Command, Event};
use masqdial_tui::{net, ui};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Live dashboard of masqdial links and masqueraded sessions.
#[derive(Parser, Debug)]
#[command(name = "mtui", version)]
struct Args {
    /// Server URL.
    #[arg(long, env = "MASQDIAL_SERVER", default_value = conn::DEFAULT_SERVER)]
    server: String,
    /// User to log in as when no token is stored for this server.
    #[arg(long, env = "MASQDIAL_USER")]
    user: Option<String>,
    /// Draw without colours (also when NO_COLOR is set).
    #[arg(long)]
    no_color: bool,
    /// Redraw period for countdowns and lights, milliseconds (50..=5000).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(50..=5000))]
    tick_ms: u64,
    /// Token store file instead of the default one.
    #[arg(long)]
    token_store: Option<PathBuf>,
    /// CA certificate (PEM) for an https server.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Ask for the password even if a token is stored.
    #[arg(long)]
    login: bool,
}

/// Restores the terminal when dropped (error paths included).
struct TermGuard;

impl Drop for TermGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Read a password from the terminal without echo.
fn prompt_password(prompt: &str) -> anyhow::Result<String> {
    struct Raw;
    impl Drop for Raw {
        fn drop(&mut self) {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
    let mut out = std::io::stderr();
    write!(out, "{prompt}")?;
    out.flush()?;
    crossterm::terminal::enable_raw_mode().context("terminal")?;
    let raw = Raw;
    let mut pw = String::new();
    loop {
        if let ct::Event::Key(k) = ct::read()? {
            if k.kind == KeyEventKind::Release {
                continue;
            }
            match k.code {
                KeyCode::Enter => break,
                KeyCode::Backspace => {
                    pw.pop();
                }
                KeyCode::Esc => bail!("cancelled"),
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    bail!("cancelled")
                }
                KeyCode::Char(c) => pw.push(c),
                _ => {}
            }
        }
    }
    drop(raw);
    writeln!(out)?;
    Ok(pw)
}

/// A valid token for the server: the stored one if WhoAmI accepts it, else a fresh login.
async fn obtain_token(args: &Args, store: &TokenStore) -> anyhow::Result<String> {
    let stored = store.get(&args.server)?;
    let usable = stored
        .as_ref()
        .filter(|t| !args.login && !t.expired(SystemTime::now()));
    if let Some(t) = usable {
        // Check it; if the server is unreachable, go on with it (the dashboard reconnects).
        match conn::connect(&args.server, args.ca.as_deref()).await {
            Err(_) => return Ok(t.token.clone()),
            Ok(ch) => {
                let mut c = Clients::new(ch, Some(&t.token))?;
                match c.auth.who_am_i(WhoAmIRequest {}).await {
                    Err(s) if s.code() == tonic::Code::Unauthenticated => {
                        eprintln!(
                            "stored token for {} was rejected; please log in",
                            args.server
                        );
                    }
                    _ => return Ok(t.token.clone()),
                }
            }
        }
    }
    let user = match args.user.clone().or_else(|| stored.map(|s| s.user)) {
        Some(u) => u,
        None => bail!("no token stored for {}: give --user to log in", args.server),
    };
    let password = prompt_password(&format!("password for {user} on {}: ", args.server))?;
    let ch = conn::connect(&args.server, args.ca.as_deref())
        .await
        .with_context(|| format!("cannot reach {} to log in", args.server))?;
    let mut c = Clients::new(ch, None)?;
    let resp = c
        .auth
        .login(LoginRequest {
            user: user.clone(),
            password,
        })
        .await
        .map_err(|s| anyhow::anyhow!("login failed: {}", s.message()))?
        .into_inner();
    let expires_at = resp.expires_at.as_ref().and_then(|t| {
        u64::try_from(t.seconds)
            .ok()
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
    });
    store.put(StoredToken {
        server: args.server.clone(),
        user,
        token: resp.token.clone(),
        expires_at,
        role: resp.role,
    })?;
    Ok(resp.token)
}

/// Terminal input on a plain thread (crossterm's blocking reader), bounded by `stop`.
fn spawn_input(tx: mpsc::UnboundedSender<Event>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match ct::poll(Duration::from_millis(100)) {
                Ok(true) => {
                    let ev = match ct::read() {
                        Ok(ct::Event::Key(k)) => Event::Key(k),
                        Ok(ct::Event::Resize(..)) => Event::Resize,
                        Ok(_) => continue,
                        Err(_) => break,
                    };
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
                Ok(false) => {}
                Err(_) => break,
            }
        }
    });
}

async fn run(args: Args) -> anyhow::Result<()> {
    let store = match &args.token_store {
        Some(p) => TokenStore::at(p.clone()),
        None => TokenStore::open_default()?,
    };
    let token = obtain_token(&args, &store).await?;
    let color = !args.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;

    // try_init also installs ratatui's panic hook, which restores the terminal first.
    let mut terminal = ratatui::try_init().context("terminal setup")?;
    let _guard = TermGuard;

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(ev_tx.clone(), stop.clone());
    let net_task = net::spawn(
        net::NetConfig {
            server: args.server.clone(),
            token,
            ca: args.ca.clone(),
            masq_period_ms: 500,
        },
        ev_tx,
        cmd_rx,
    );

    let mut app = App::new(&args.server, Instant::now(), SystemTime::now(), color);
    let mut tick = tokio::time::interval(Duration::from_millis(args.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut quit = false;
    while !quit {
        if app.dirty {
            terminal.draw(|f| ui::render(f, &app))?;
            app.dirty = false;
        }
        let first = tokio::select! {
            ev = ev_rx.recv() => match ev {
                Some(ev) => Some(ev),
                None => break,
            },
            // Ticks only redraw when something on screen moves: idle costs nothing.
            _ = tick.tick() => if app.animated() { Some(Event::Tick) } else { None },
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => break,
        };
        let Some(first) = first else { continue };
        // Apply everything already queued before drawing once.
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match ev_rx.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        for ev in batch {
            app.set_clock(Instant::now(), SystemTime::now());
            for cmd in app.handle_event(ev) {
                match cmd {
                    Command::Quit => quit = true,
                    other => {
                        let _ = cmd_tx.send(other);
                    }
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(cmd_tx);
    net_task.abort();
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mtui: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(run(args));
    // Do not wait for the input thread or stream tasks: they hold no state worth flushing.
    rt.shutdown_timeout(Duration::from_millis(200));
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mtui: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
