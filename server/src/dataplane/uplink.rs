//! The data plane's side of "the active link": the link manager announces "up: address A,
//! session S" or "down", and this handle does the data plane's part — the masquerade
//! address (straight to the nat handle), the TUN address and routes, and attaching S's
//! packet channels to the pump (or detaching them). It holds the one record of which link
//! is active. It must not make link decisions (when to dial or hang up) nor parse packets.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;

use super::netcfg::{NetCfg, NetCfgError, RouteSpec};
use super::{Dataplane, LinkPort, LinkTx, NatHandle};
use crate::config::LinkConfig;
use crate::linkq::{Ingress, QueueSnapshot, SessionLink};

/// A link that came up, as the link manager announces it.
#[derive(Debug, Clone)]
pub struct LinkUp {
    /// Connection name.
    pub connection: String,
    /// Our address (the masquerade address).
    pub local: Ipv4Addr,
    /// Peer address.
    pub peer: Ipv4Addr,
    /// Routes to send over the link (IPv6 entries are skipped).
    pub routes: Vec<IpNet>,
    /// Replace an existing default route with one over the link.
    pub replace_default_route: bool,
}

/// Something the data plane wants the link's transcript (and dial watchers) to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkNote {
    /// For information.
    Info(String),
    /// Something failed (the link stays up).
    Error(String),
}

/// The active link: its name and the routes installed for it.
#[derive(Debug)]
struct Active {
    connection: String,
    routes: Vec<RouteSpec>,
}

/// Cheap `Clone` handle; the link manager calls [`Uplink::up`] and [`Uplink::down`].
#[derive(Debug, Clone)]
pub struct Uplink {
    nat: NatHandle,
    pump: Option<Dataplane>,
    netcfg: Option<NetCfg>,
    active: Arc<Mutex<Option<Active>>>,
    queue: LinkConfig,
    /// Routes kept on the TUN device while no link is up (dial on demand), and whether
    /// they may replace another default route.
    demand: Option<(Vec<IpNet>, bool)>,
    /// Set the TUN MTU to the peer's MRU on link-up (back to [`TUN_MTU`] on down).
    follow_mtu: bool,
    /// Clamp TCP MSS to the link's MTU.
    mss_clamp: bool,
    /// The LAN interface, when the engine hairpins (`rfc` profile): LAN packets to the
    /// link's address are routed into the TUN while a link is up ([`NetCfg::hairpin_on`]).
    hairpin_lan: Option<String>,
    /// Serialises the policy-rule changes; true once rules left by an earlier run (a crash)
    /// were removed.
    rules_checked: Arc<tokio::sync::Mutex<bool>>,
}

/// The MTU the TUN device is opened with (and returns to while no link is up).
pub const TUN_MTU: u16 = 1500;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only plain data is written under this lock; a poisoned lock is taken over.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Uplink {
    /// The data plane's link handling. `pump`/`netcfg` are `None` when the dataplane is off
    /// (no CAP_NET_ADMIN): the masquerade address is still set, no packets flow.
    pub fn new(nat: NatHandle, pump: Option<Dataplane>, netcfg: Option<NetCfg>) -> Self {
        Self {
            nat,
            pump,
            netcfg,
            active: Arc::new(Mutex::new(None)),
            queue: LinkConfig::default(),
            demand: None,
            follow_mtu: true,
            mss_clamp: true,
            hairpin_lan: None,
            rules_checked: Arc::new(tokio::sync::Mutex::new(false)),
        }
    }

    /// Route LAN packets addressed to the link's address (interface `lan`) into the TUN
    /// while a link is up, so the engine can hairpin them (RFC 4787 REQ-9); `None` leaves
    /// the kernel's routing alone (the `linux22` profile, or no known LAN interface).
    #[must_use]
    pub fn with_hairpin(mut self, lan: Option<String>) -> Self {
        self.hairpin_lan = lan;
        self
    }

    /// Remove policy rules an earlier run left behind (it crashed while a link was up),
    /// putting the kernel's `lookup local` rule back; once per run, before any link-up adds
    /// rules. A no-op without a dataplane.
    pub async fn recover_rules(&self) {
        let Some(nc) = &self.netcfg else {
            return;
        };
        let mut checked = self.rules_checked.lock().await;
        if *checked {
            return;
        }
        match nc.hairpin_off().await {
            Ok(true) => tracing::warn!(
                "removed the hairpin policy rules of an earlier run; `lookup local` is back at preference 0"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "checking for hairpin policy rules of an earlier run"),
        }
        *checked = true;
    }

    /// `[nat] tun_mtu_follows_mru` and `mss_clamp` (both on by default).
    #[must_use]
    pub fn with_mtu_policy(mut self, follow_mtu: bool, mss_clamp: bool) -> Self {
        self.follow_mtu = follow_mtu;
        self.mss_clamp = mss_clamp;
        self
    }

    /// Keep `routes` on the TUN device (with a placeholder address) while no link is up,
    /// so LAN packets reach the pump and can dial on demand ([`Uplink::arm`]).
    #[must_use]
    pub fn with_demand(mut self, routes: Vec<IpNet>, replace_default_route: bool) -> Self {
        self.demand = (!routes.is_empty()).then_some((routes, replace_default_route));
        self
    }

    /// Replace the dial-on-demand policy in the data plane (configuration reload); false
    /// when the data plane's control queue is full.
    pub fn set_demand_policy(&self, policy: super::demand::DemandPolicy) -> bool {
        self.pump
            .as_ref()
            .is_none_or(|p| p.set_demand_policy(policy))
    }

    /// Packets the data plane counted as activity (dial-on-demand filters), if it is on.
    pub fn activity(&self) -> Option<u64> {
        self.pump.as_ref().map(|p| {
            p.counters()
                .demand
                .activity
                .load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// No link is up: give the TUN device the placeholder address and the demand routes
    /// (a no-op without demand connections or without a dataplane).
    pub async fn arm(&self) -> Vec<UplinkNote> {
        let mut notes = Vec::new();
        let (Some((routes, replace)), Some(nc)) = (&self.demand, &self.netcfg) else {
            return notes;
        };
        if lock(&self.active).is_some() {
            return notes;
        }
        if let Err(e) = nc
            .link_up(
                super::demand::PLACEHOLDER_LOCAL,
                super::demand::PLACEHOLDER_PEER,
            )
            .await
        {
            tracing::warn!(error = %e, "arming {} for dial on demand", nc.dev);
            notes.push(UplinkNote::Error(format!("interface: {e}")));
            return notes;
        }
        self.add_routes(nc, routes, *replace, &mut notes).await;
        tracing::info!(dev = %nc.dev, "waiting for LAN traffic to dial on demand");
        notes
    }

    async fn add_routes(
        &self,
        nc: &NetCfg,
        routes: &[IpNet],
        replace_default_route: bool,
        notes: &mut Vec<UplinkNote>,
    ) -> Vec<RouteSpec> {
        let mut installed = Vec::new();
        for r in routes {
            let spec = if r.prefix_len() == 0 {
                RouteSpec::Default
            } else {
                match r {
                    IpNet::V4(n) => RouteSpec::Net(*n),
                    IpNet::V6(_) => continue,
                }
            };
            if spec == RouteSpec::Default
                && !replace_default_route
                && nc.other_default_route_exists().await.unwrap_or(true)
            {
                notes.push(UplinkNote::Info(
                    "a default route exists already; not replacing it (set replace_default_route = true to do so)".into(),
                ));
                continue;
            }
            match nc.add_route(spec).await {
                Ok(()) => installed.push(spec),
                Err(e) => notes.push(UplinkNote::Error(format!("route {spec}: {e}"))),
            }
        }
        installed
    }

    /// Use `cfg` (`[link]`: scheduler, ingress shaping) for the links from now on.
    #[must_use]
    pub fn with_link_config(mut self, cfg: LinkConfig) -> Self {
        self.queue = cfg;
        self
    }

    /// The configured download shaping fraction.
    pub fn ingress_shaping(&self) -> Option<f64> {
        self.queue.ingress_shaping
    }

    /// The download shaper's state, when shaping.
    pub fn ingress_queue(&self) -> Option<QueueSnapshot> {
        self.pump.as_ref().and_then(Dataplane::ingress_queue)
    }

    /// The connection whose link the data plane carries now.
    pub fn active(&self) -> Option<String> {
        lock(&self.active).as_ref().map(|a| a.connection.clone())
    }

    /// `up` is the active link now: masquerade as its address, address the TUN device,
    /// add its routes and carry LAN traffic over `session`'s packet channels (the link manager
    /// took them from the modem session). Answers notes for the link's transcript.
    pub async fn up(&self, up: LinkUp, session: Option<SessionLink>) -> Vec<UplinkNote> {
        let LinkUp {
            connection,
            local,
            peer,
            ..
        } = &up;
        let (rekeyed, dropped) = {
            let mut e = self.nat.lock();
            e.set_link_peer(Some(*peer));
            // `-i` names for the link besides its `ppp0` alias: the connection and the TUN.
            let mut names = vec![connection.clone()];
            names.extend(self.netcfg.as_ref().map(|n| n.dev.clone()));
            e.set_link_aliases(names);
            e.set_masq_address(Some(*local))
        };
        tracing::info!(%connection, %local, %peer, rekeyed, dropped, "link up: masquerading as {local}");
        if rekeyed > 0 && self.nat.lock().config().dynaddr >= 2 {
            tracing::info!(%connection, rekeyed, "ip_dynaddr: {rekeyed} unanswered masquerade entries moved to {local}");
        }
        *lock(&self.active) = Some(Active {
            connection: connection.clone(),
            routes: Vec::new(),
        });
        let mut notes = Vec::new();
        let peer_mru = session.as_ref().and_then(|s| s.mrus).map(|(peer, _)| peer);
        if let Some(nc) = &self.netcfg {
            // The TUN carries what the link carries: the kernel, which routes LAN traffic
            // into it, then fragments (DF clear) or answers ICMP Frag-Needed (DF set) itself.
            if let (true, Some(mtu)) = (self.follow_mtu, peer_mru) {
                match nc.set_mtu(mtu).await {
                    Ok(()) => tracing::info!(dev = %nc.dev, mtu, "TUN MTU follows the peer's MRU"),
                    Err(e) => {
                        tracing::warn!(error = %e, "setting the MTU of {}", nc.dev);
                        notes.push(UplinkNote::Error(format!("interface MTU {mtu}: {e}")));
                    }
                }
            }
            if let Err(e) = nc.link_up(*local, *peer).await {
                tracing::warn!(error = %e, "configuring {}", nc.dev);
                notes.push(UplinkNote::Error(format!("interface: {e}")));
            }
            let installed = self
                .add_routes(nc, &up.routes, up.replace_default_route, &mut notes)
                .await;
            if let Some(a) = lock(&self.active).as_mut() {
                a.routes = installed;
            }
            if let Some(lan) = &self.hairpin_lan {
                self.recover_rules().await;
                let _serial = self.rules_checked.lock().await;
                match nc.hairpin_on(lan, *local).await {
                    Ok(()) => {
                        tracing::info!(%lan, %local, "hairpinning: LAN packets to {local} go through the NAT engine")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "routing hairpin traffic into {}", nc.dev);
                        notes.push(UplinkNote::Error(format!("hairpin routing: {e}")));
                    }
                }
            }
        }
        if let Some(s) = session.as_ref() {
            // TCP SYNs crossing the link get their MSS clamped to what it carries; DF
            // datagrams larger than it get Frag-Needed from the engine (when the kernel did
            // not already: TUN MTU not following, or reassembled fragments).
            if let Some((peer_mru, local_mru)) = s.mrus {
                let mut e = self.nat.lock();
                e.set_path_mtu(Some(peer_mru));
                if self.mss_clamp {
                    e.set_link_mtu(Some((peer_mru, local_mru)));
                }
            }
            // Downloads keep about the line's bandwidth-delay product in flight (nat-core
            // decides from the rate and the traffic; see `nat_core::rwnd`).
            if self.queue.download_window {
                let cfg = nat_core::rwnd::WindowConfig {
                    rate: s.link_rate.unwrap_or(11_520),
                    rtt_ms: self.queue.download_window_rtt_ms,
                    packets: self.queue.download_window_packets,
                    mss: s
                        .mrus
                        .map_or(1460, |(_, local)| nat_core::mss::mss_for_mtu(local)),
                    min_packets: 2,
                };
                self.nat.lock().set_download_window(Some(cfg));
            }
            s.sink.set_scheduler(self.queue.scheduler);
        }
        if let (Some(pump), Some(s)) = (&self.pump, session) {
            if let Some(f) = self.queue.ingress_shaping {
                let (rate, mtu) = (
                    s.link_rate.unwrap_or(11_520),
                    s.mrus.map_or(1500, |(_, local)| local),
                );
                match Ingress::new(rate, f, mtu) {
                    Ok(q) => pump.set_ingress(Some(q)).await,
                    Err(e) => notes.push(UplinkNote::Error(format!("ingress shaping: {e}"))),
                }
            }
            pump.set_active(Some(connection.clone())).await;
            pump.attach(LinkPort {
                tx: LinkTx::Session(s.sink),
                rx: s.inbound,
            })
            .await;
        }
        notes
    }

    /// `connection`'s link went down: if it is the active one, stop carrying traffic,
    /// remove its routes and take the TUN address down.
    pub async fn down(&self, connection: &str) {
        let routes = {
            let mut active = lock(&self.active);
            if active.as_ref().map(|a| a.connection.as_str()) != Some(connection) {
                return;
            }
            active.take().map(|a| a.routes).unwrap_or_default()
        };
        {
            let mut e = self.nat.lock();
            e.set_link_mtu(None);
            e.set_path_mtu(None);
            e.set_download_window(None);
            e.set_link_peer(None);
        }
        if let Some(pump) = &self.pump {
            pump.detach().await;
        }
        if let Some(nc) = &self.netcfg {
            if self.hairpin_lan.is_some() {
                let _serial = self.rules_checked.lock().await;
                if let Err(e) = nc.hairpin_off().await {
                    tracing::warn!(error = %e, "removing the hairpin policy rules");
                }
            }
            for r in routes {
                if let Err(e) = nc.del_route(r).await {
                    tracing::warn!(error = %e, "removing route {r}");
                }
            }
            // A device that is gone (the data plane closed the TUN at shutdown) has
            // nothing left to take down or restore.
            match nc.link_down().await {
                Err(NetCfgError::NoDevice { .. }) => {
                    tracing::debug!("{} is gone; nothing to take down", nc.dev);
                }
                down => {
                    if let Err(e) = down {
                        tracing::warn!(error = %e, "taking {} down", nc.dev);
                    }
                    if self.follow_mtu {
                        if let Err(e) = nc.set_mtu(TUN_MTU).await {
                            tracing::warn!(error = %e, "restoring the MTU of {}", nc.dev);
                        }
                    }
                }
            }
        }
        tracing::info!(%connection, "link down");
        for n in self.arm().await {
            if let UplinkNote::Error(e) = n {
                tracing::warn!("dial on demand: {e}");
            }
        }
    }
}
