//! The composition root: build the nat engine (from the state directory), the dataplane,
//! the link manager, NAT control and its masquerade feed, all under one [`Shutdown`], and
//! hand the rpc layer its [`ControlPlane`]. The one place that wires the server together,
//! and the owner of the running configuration: [`reload`] applies a re-read one (auth,
//! dial on demand, rpc streams) and puts it in force. Must not hold other state or make
//! other decisions after start.

use std::sync::Arc;

use crate::auth::AuthError;
use crate::config::{self, Config, ReloadRefused};
use crate::dataplane::demand::{Demand, DemandPolicy, DemandPort};
use crate::dataplane::netcfg::NetCfg;
use crate::dataplane::tun::Tun;
use crate::dataplane::uplink::{Uplink, UplinkNote};
use crate::dataplane::{Dataplane, LanPort, NatHandle};
use crate::link::manager::LinkManager;
use crate::nat_control::{self, NatControl};
use crate::persist::{self, StateError};
use crate::rpc::{ControlPlane, ServerState};
use crate::shutdown::Shutdown;

/// How the LAN side is wired.
#[derive(Debug)]
pub enum LanSide {
    /// Create the configured TUN device in this namespace; without CAP_NET_ADMIN the
    /// dataplane is off and the server says so.
    Tun,
    /// An already opened TUN device configured through this handle (the demo's namespaces).
    Prepared(Tun, NetCfg),
    /// No dataplane.
    Off,
}

/// A started server core: what the rpc layer serves, and whether packets flow.
#[derive(Debug, Clone)]
pub struct Running {
    /// The domain objects behind Dialer, Modems and Nat.
    pub control: ControlPlane,
    /// Whether the dataplane (TUN) is on.
    pub dataplane_on: bool,
}

/// Build the engine, the dataplane, the link manager and NAT control, and start their
/// tasks under `shutdown` ([`Shutdown::stop`] ends and joins them).
pub fn start(cfg: Arc<Config>, lan: LanSide, shutdown: &Shutdown) -> Result<Running, StateError> {
    let nat = NatHandle::new(persist::build_engine(&cfg)?);
    let (dataplane, netcfg) = match lan {
        LanSide::Off => (None, None),
        LanSide::Prepared(tun, nc) => (
            Some(Dataplane::spawn(nat.clone(), LanPort::Tun(tun), shutdown)),
            Some(nc),
        ),
        LanSide::Tun => match Tun::open(&cfg.nat.tun_name, 1500) {
            Ok(tun) => {
                let nc = NetCfg::new(tun.name());
                (
                    Some(Dataplane::spawn(nat.clone(), LanPort::Tun(tun), shutdown)),
                    Some(nc),
                )
            }
            Err(e) => {
                tracing::warn!("{e}");
                (None, None)
            }
        },
    };
    let dataplane_on = dataplane.is_some();
    let lan_iface = if dataplane_on {
        // The TUN's namespace (the demo's gateway namespace) is where the LAN side lives.
        crate::dataplane::local::configure_lan(
            &nat,
            cfg.nat.lan_interface.as_deref(),
            &cfg.nat.tun_name,
            netcfg.as_ref().and_then(|n| n.netns.as_deref()),
        )
    } else {
        None
    };
    // Hairpinning (the `rfc` profile) needs LAN packets to the link's address routed into
    // the TUN; 2.2 had none, so `linux22` leaves the kernel's routing as it is.
    // IPv4 forwarding on the LAN interface and the TUN only, while we run (finding N6: no
    // host-wide `ip_forward`); restored when `shutdown` stops.
    if let Some(nc) = &netcfg {
        shutdown.spawn(crate::dataplane::forwarding::hold(
            nc.clone(),
            lan_iface.clone(),
            shutdown.token(),
        ));
    }
    let hairpin_lan = lan_iface.filter(|_| nat.lock().config().masq.hairpin);
    if dataplane_on {
        tracing::info!(tun = %cfg.nat.tun_name, "dataplane on");
    } else {
        tracing::warn!("dataplane OFF: links come up but carry no LAN traffic");
    }
    let pump = dataplane.as_ref().map(|d| Arc::clone(d.counters()));
    let (dials, dial_requests) = tokio::sync::mpsc::channel(16);
    if let (Some(policy), Some(d)) = (DemandPolicy::from_config(&cfg), &dataplane) {
        let state = Demand::new(policy, Arc::clone(&d.counters().demand));
        if !d.set_demand(Some(DemandPort::new(state, dials))) {
            tracing::warn!("dial on demand could not be enabled (dataplane busy)");
        }
    }
    let (demand_routes, replace_default) = demand_routes(&cfg);
    let uplink = Uplink::new(nat.clone(), dataplane, netcfg)
        .with_link_config(cfg.link.clone())
        .with_mtu_policy(cfg.nat.tun_mtu_follows_mru, cfg.nat.mss_clamp)
        .with_demand(demand_routes, replace_default)
        .with_hairpin(hairpin_lan);
    let links = LinkManager::start(&cfg, uplink.clone(), shutdown);
    shutdown.spawn(links.clone().serve_demand(dial_requests, shutdown.token()));
    shutdown.spawn(async move {
        uplink.recover_rules().await;
        for n in uplink.arm().await {
            if let UplinkNote::Error(e) = n {
                tracing::warn!("dial on demand: {e}");
            }
        }
    });
    let nat = NatControl::new(cfg, nat, pump);
    shutdown.spawn(nat_control::feed::run(nat.clone(), shutdown.token()));
    Ok(Running {
        control: ControlPlane { links, nat },
        dataplane_on,
    })
}

/// The routes of every dial-on-demand connection (kept on the TUN device while no link is
/// up), and whether any of them may replace another default route.
fn demand_routes(cfg: &Config) -> (Vec<ipnet::IpNet>, bool) {
    let mut routes = Vec::new();
    let mut replace = false;
    for c in cfg.connections.iter().filter(|c| c.demand) {
        replace |= c.replace_default_route;
        for r in &c.routes {
            if !routes.contains(r) {
                routes.push(*r);
            }
        }
    }
    (routes, replace)
}

/// Why a reload was not applied (the running configuration stays as it was).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration needs a restart.
    #[error(transparent)]
    Refused(#[from] ReloadRefused),
    /// Its users could not be taken over.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Apply a re-read configuration: users, allow-list, token lifetime and `[[lan_hosts]]`
/// (with the users' connections, dial on demand's authorization) only
/// ([`config::reloaded`]). Sessions of users that still exist survive; streams and
/// connections no longer admitted end.
pub fn reload(state: &ServerState, new: &Config) -> Result<(), ReloadError> {
    let merged = config::reloaded(&state.config(), new)?;
    state.auth().reload(&merged)?;
    if let Ok(c) = state.control() {
        if !c.links.reload_demand(&merged) {
            tracing::warn!("dial on demand keeps its old [[lan_hosts]]: the data plane is busy; send SIGHUP again");
        }
    }
    state.running().replace(merged);
    state.recheck_after_reload();
    Ok(())
}
