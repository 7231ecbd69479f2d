//! mserver lifecycle: bind, serve, reload on SIGHUP, stop on SIGINT/SIGTERM.
//!
//! Owns process-level concerns only (signals, the reload task); the gRPC surface is in
//! [`crate::rpc`] and the configuration in [`crate::config`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::config::Config;
use crate::rpc::{self, ControlPlane, ServeError, ServerState};
use crate::shutdown::Shutdown;

/// Build the shared state for a config and the control plane; the rpc layer stops with
/// `shutdown` (and fires it when it stops on its own).
pub fn state(
    config: Config,
    control: Option<ControlPlane>,
    shutdown: &Shutdown,
) -> anyhow::Result<ServerState> {
    let auth = Auth::new(&config)?;
    Ok(ServerState::with_shutdown(
        config,
        auth,
        control,
        shutdown.clone(),
    ))
}

/// [`state`] with the sessions kept in the config's `state_dir` across restarts (see
/// [`Auth::persistent`]): what mserver itself runs with.
pub fn persistent_state(
    config: Config,
    control: Option<ControlPlane>,
    shutdown: &Shutdown,
) -> anyhow::Result<ServerState> {
    let auth = Auth::persistent(&config)?;
    Ok(ServerState::with_shutdown(
        config,
        auth,
        control,
        shutdown.clone(),
    ))
}

/// Bind the listen address (a clear error when the port needs privileges).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied && addr.port() < 1024 {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
    })
}

/// Resolves on the first SIGINT or SIGTERM (or Ctrl-C where there are no Unix signals).
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// SIGTERM that arrives while the server is still starting its listeners is then a clean
/// shutdown, not the default action (death by the signal).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match handlers {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            (term, int) => {
                if let Some(e) = term.as_ref().err().or(int.as_ref().err()) {
                    tracing::warn!("cannot watch SIGTERM or SIGINT ({e}); waiting for Ctrl-C");
                }
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}

/// Re-read `path` and apply users, allow-list, token lifetime and `[[lan_hosts]]`. Errors
/// leave the running configuration untouched.
pub fn reload(state: &ServerState, path: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    crate::daemon::reload(state, &config)?;
    tracing::info!(path = %path.display(), users = config.users.len(), "configuration reloaded");
    Ok(())
}

/// Reload on every SIGHUP until the server shuts down.
#[cfg(unix)]
fn spawn_reloader(state: ServerState, path: PathBuf) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch SIGHUP ({e}); reload disabled");
            return None;
        }
    };
    let stop = state.shutdown_token();
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                got = hup.recv() => {
                    if got.is_none() {
                        break;
                    }
                    if let Err(e) = reload(&state, &path) {
                        tracing::error!("reload failed, keeping the running configuration: {e:#}");
                    }
                }
            }
        }
    }))
}

#[cfg(not(unix))]
fn spawn_reloader(_: ServerState, _: PathBuf) -> Option<tokio::task::JoinHandle<()>> {
    None
}

/// Serve until `shutdown` resolves. With `config_path`, SIGHUP reloads users, the
/// allow-list and `[[lan_hosts]]` from it without dropping connections or tokens of remaining users.
pub async fn run(
    listener: TcpListener,
    state: ServerState,
    config_path: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if let Ok(addr) = listener.local_addr() {
        let tls = if state.config().tls().is_some() {
            "TLS"
        } else {
            "plaintext"
        };
        tracing::info!(%addr, tls, "mserver listening");
    }
    let reloader = config_path.and_then(|p| spawn_reloader(state.clone(), p));
    let res = rpc::serve(listener, state.clone(), shutdown).await;
    state.shutdown_token().cancel();
    if let Some(r) = reloader {
        // It ends on the token; join it so nothing outlives `run`.
        let _ = r.await;
    }
    tracing::info!("mserver stopped");
    res
}
