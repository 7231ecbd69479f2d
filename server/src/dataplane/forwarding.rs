//! IPv4 forwarding on exactly the two interfaces the data plane routes between — the LAN
//! interface and the TUN device — while mserver runs, put back as it was at exit (finding
//! N6: the package ships no global `net.ipv4.ip_forward = 1`).
//!
//! Linux decides whether to forward an IPv4 packet by the switch of the interface it came
//! *in* on (`net.ipv4.conf.<if>.forwarding`; `ip_route_input_slow` checks
//! `IN_DEV_FORWARD(in_dev)` and answers "no route to host" otherwise). LAN → internet packets
//! come in on the LAN interface and are routed into the TUN; what the data plane writes to
//! the TUN (replies for the LAN) comes in on the TUN. So these two switches are enough, with
//! `net.ipv4.ip_forward` (= `conf/all/forwarding`) left off: other interfaces of a
//! multi-homed host still forward nothing. Caveat: writing `net.ipv4.ip_forward` or
//! `conf/all/forwarding` later (a `sysctl --system`, another daemon) overwrites every
//! interface's switch, ours included.
//!
//! The switches are set over rtnetlink ([`NetCfg::set_ipv4_forwarding`]), which works under
//! the unit's `ProtectKernelTunables=yes` (a read-only `/proc/sys`) and `ProcSubset=pid`.
//! A crash (SIGKILL) leaves them on until the next clean stop of a later run (which finds
//! them on and so leaves them on): documented in the man page and PACKAGING.md.

use tokio_util::sync::CancellationToken;

use super::netcfg::{NetCfg, NetCfgError};

/// How long the restore at drop (a start-up that failed, a runtime torn down) may take.
const DROP_RESTORE_BOUND: std::time::Duration = std::time::Duration::from_secs(6);

/// The interfaces whose forwarding mserver switched on, with each one's previous value.
/// [`Forwarding::restore`] puts them back; dropping it unrestored does the same (blocking, on
/// a thread of its own).
#[derive(Debug)]
pub struct Forwarding {
    changed: Vec<(NetCfg, bool)>,
}

impl Forwarding {
    /// Switch IPv4 forwarding on for each of `devs`, remembering the value each had. An
    /// interface whose switch cannot be read or set is reported and left alone.
    pub async fn enable(devs: Vec<NetCfg>) -> (Self, Vec<NetCfgError>) {
        let mut changed = Vec::new();
        let mut errors = Vec::new();
        for nc in devs {
            let before = match nc.ipv4_forwarding().await {
                Ok(b) => b,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if before {
                tracing::info!(dev = %nc.dev, "IPv4 forwarding already on");
                continue;
            }
            match nc.set_ipv4_forwarding(true).await {
                Ok(()) => {
                    tracing::info!(dev = %nc.dev, "IPv4 forwarding on (was off; switched off again at exit)");
                    changed.push((nc, before));
                }
                Err(e) => errors.push(e),
            }
        }
        (Self { changed }, errors)
    }

    /// The interfaces switched on by [`Forwarding::enable`] (names).
    pub fn changed(&self) -> Vec<String> {
        self.changed.iter().map(|(nc, _)| nc.dev.clone()).collect()
    }

    /// Put every switch back as it was. An interface gone meanwhile (the TUN device ends with
    /// the process) has nothing to restore.
    pub async fn restore(&mut self) -> Vec<NetCfgError> {
        let mut errors = Vec::new();
        for (nc, before) in std::mem::take(&mut self.changed) {
            match nc.set_ipv4_forwarding(before).await {
                Ok(()) => tracing::info!(dev = %nc.dev, on = before, "IPv4 forwarding restored"),
                Err(NetCfgError::NoDevice { .. }) => {}
                Err(e) => errors.push(e),
            }
        }
        errors
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        if self.changed.is_empty() {
            return;
        }
        // Not through `restore`: a start-up that failed after `enable`, or the runtime torn
        // down. A thread of its own with its own runtime (this one may be shutting down).
        let mut me = Self {
            changed: std::mem::take(&mut self.changed),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("forwarding-restore".into())
            .spawn(move || {
                let errors = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(me.restore()),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot restore IPv4 forwarding: no runtime");
                        me.changed.clear();
                        Vec::new()
                    }
                };
                let _ = tx.send(errors);
            });
        match spawned {
            Ok(_) => match rx.recv_timeout(DROP_RESTORE_BOUND) {
                Ok(errors) => log_restore_errors(&errors),
                Err(_) => tracing::warn!("restoring IPv4 forwarding did not finish in time"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot restore IPv4 forwarding"),
        }
    }
}

fn log_restore_errors(errors: &[NetCfgError]) {
    for e in errors {
        tracing::warn!(error = %e, "restoring IPv4 forwarding");
    }
}

/// The task behind [`crate::daemon::start`]: forwarding on for the LAN interface (when
/// known) and the TUN device, held until `stop` fires, then restored.
pub async fn hold(tun: NetCfg, lan: Option<String>, stop: CancellationToken) {
    let mut devs = Vec::new();
    match &lan {
        Some(l) => devs.push(tun.other(l)),
        None => tracing::warn!(
            "IPv4 forwarding is not switched on for the LAN side: its interface is unknown (set [nat] lan_interface)"
        ),
    }
    devs.push(tun.clone());
    let (mut fwd, errors) = Forwarding::enable(devs).await;
    for e in &errors {
        tracing::warn!(error = %e, "cannot switch IPv4 forwarding on: LAN traffic will not pass");
    }
    stop.cancelled().await;
    let errors = fwd.restore().await;
    log_restore_errors(&errors);
}
