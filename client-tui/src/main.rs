//! `mtui` binary: command line, the stored token (shared with mclient), terminal setup and the
//! single event loop (keys, mouse, ticks, server updates, signals). Logging in happens inside
//! the dashboard (the app's login form, the network task's Login).
//!
//! It owns the terminal and always restores it: on normal exit, on error (a drop guard), on
//! panic (ratatui's hook) and on SIGTERM/SIGINT/SIGHUP (handled in the loop). It holds no
//! dashboard logic: that is `app`, drawing is `ui`, the gRPC side is `net`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::Parser;
use crossterm::event::{self as ct, DisableMouseCapture, EnableMouseCapture};
use masqdial_cli::config::{Overrides, Settings};
use masqdial_cli::store::TokenStore;
use masqdial_tui::app::App;
use masqdial_tui::cli::Args;
use masqdial_tui::event::{Command, Event, Secret};
use masqdial_tui::{net, ui};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Restores the terminal when dropped (error paths included): mouse reporting off, then
/// ratatui's restore (raw mode off, main screen back).
struct TermGuard;

fn restore_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The token worth trying for this server, and the user name to offer at login.
///
/// A stored token is used unless `--login` asks for a password, it has expired, or `--user`
/// names someone else. The network task checks it with the server and asks the app for a
/// login when the server does not accept it.
fn initial_login(args: &Args, settings: &Settings, store: &TokenStore) -> (Option<String>, String) {
    let stored = match store.get_user(&settings.server, settings.user.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("token store unreadable: {e:#}");
            None
        }
    };
    let user = settings
        .user
        .clone()
        .or_else(|| stored.as_ref().map(|s| s.user.clone()))
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
        .unwrap_or_default();
    let token = stored
        .filter(|t| !args.login && !t.expired(SystemTime::now()))
        .filter(|t| settings.user.as_ref().is_none_or(|u| *u == t.user))
        .map(|t| t.token);
    (token, user)
}

/// Terminal input on a plain thread (crossterm's blocking reader), bounded by `stop`.
fn spawn_input(tx: mpsc::UnboundedSender<Event>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match ct::poll(Duration::from_millis(100)) {
                Ok(true) => {
                    let ev = match ct::read() {
                        Ok(ct::Event::Key(k)) => Event::Key(k),
                        Ok(ct::Event::Mouse(m)) => Event::Mouse(m),
                        Ok(ct::Event::Resize(width, height)) => Event::Resize { width, height },
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
    let settings = Settings::resolve(&Overrides {
        server: args.server.clone(),
        user: args.user.clone(),
        ca: args.ca.clone(),
        token_file: args.token_store.clone(),
        timeout_secs: None,
    })?;
    for w in &settings.warnings {
        eprintln!("mtui: {w}");
    }
    let store = settings.store();
    let (token, user) = initial_login(&args, &settings, &store);
    let color = !args.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;

    // try_init also installs ratatui's panic hook, which restores the terminal first.
    let mut terminal = ratatui::try_init().context("terminal setup")?;
    let _guard = TermGuard;
    // Mouse reporting must be switched off again on a panic too, before ratatui's hook.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        hook(info);
    }));
    crossterm::execute!(std::io::stdout(), EnableMouseCapture).context("terminal setup")?;
    let size = terminal.size().context("terminal size")?;

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(ev_tx.clone(), stop.clone());
    let net_task = net::spawn(
        net::NetConfig {
            server: settings.connect_url.clone(),
            store_key: settings.server.clone(),
            token,
            user,
            ca: settings.ca.clone(),
            masq_period_ms: 500,
            store: Some(store),
            // Tried once when no stored token works (scripts, kiosks); the form otherwise.
            password: std::env::var("MASQDIAL_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            insecure: args.insecure,
        },
        ev_tx,
        cmd_rx,
    );

    let mut app = App::new(
        &settings.server,
        Instant::now(),
        SystemTime::now(),
        color,
        ui::GEOMETRY,
    );
    app.handle_event(Event::Resize {
        width: size.width,
        height: size.height,
    });
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
