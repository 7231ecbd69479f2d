//! Dataplane: moves IPv4 packets between the LAN side (the TUN device, or an in-memory
//! port in tests and benchmarks), nat-core and the active PPP link. It is the only place
//! where those meet. It owns the packet pump task and its counters, and ([`uplink`]) what
//! happens to packets, addresses and routes when the link manager announces a link up or
//! down; it must not make link decisions (when to dial or hang up).

pub mod demand;
pub mod forwarding;
pub mod local;
pub mod netcfg;
pub mod tun;
pub mod uplink;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use masqdial_sched::Class;
use nat_core::{Action, Engine};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::linkq::{Classifier, Ingress, LanSide, QueueSnapshot};
use crate::shutdown::Shutdown;

/// How many `-l` lines a slow watcher may fall behind before it misses some.
pub const PACKET_LOG_BACKLOG: usize = 64;

/// Largest packet read from the LAN side (bytes).
const MAX_PACKET: usize = 65_535;

/// The engine shared by the pump (packet path) and the rpc layer (views, rules).
///
/// A `std::sync::Mutex`: every critical section is one packet or one snapshot, never held
/// across an `.await`, so a blocking mutex is cheaper than an async one here.
#[derive(Clone)]
pub struct NatHandle {
    inner: Arc<Mutex<Engine>>,
    clock: NatClock,
    /// `-l` lines for watchers (mtui's event log), besides the server log.
    packet_log: tokio::sync::broadcast::Sender<String>,
}

impl std::fmt::Debug for NatHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatHandle").finish_non_exhaustive()
    }
}

/// Where the engine's time comes from: every nat-core call of the data plane, the control
/// plane and the feeds reads [`NatHandle::now`], so this is the one place NAT time is made.
#[derive(Clone, Debug)]
enum NatClock {
    /// Monotonic time since the handle was made (what mserver runs on).
    Monotonic(crate::clock::Epoch),
    /// Milliseconds that move only when a [`ManualClock`] says so (tests: expiry and
    /// re-arming checked without sleeping on a loaded machine).
    Manual(Arc<AtomicU64>),
}

/// The hand on a [`NatHandle`] made by [`NatHandle::with_manual_clock`].
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// Move the NAT's time forward by `d` (whole milliseconds).
    pub fn advance(&self, d: std::time::Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl NatHandle {
    /// Wrap an engine; its clock starts now.
    pub fn new(engine: Engine) -> Self {
        Self::with_clock(engine, NatClock::Monotonic(crate::clock::Epoch::now()))
    }

    /// Wrap an engine on a clock that stands still until the returned hand advances it.
    pub fn with_manual_clock(engine: Engine) -> (Self, ManualClock) {
        let ms = Arc::new(AtomicU64::new(0));
        (
            Self::with_clock(engine, NatClock::Manual(ms.clone())),
            ManualClock(ms),
        )
    }

    fn with_clock(engine: Engine, clock: NatClock) -> Self {
        Self {
            inner: Arc::new(Mutex::new(engine)),
            clock,
            packet_log: tokio::sync::broadcast::channel(PACKET_LOG_BACKLOG).0,
        }
    }

    /// The `-l` lines written from now on (already rate-limited by the engine); a watcher
    /// that falls more than [`PACKET_LOG_BACKLOG`] lines behind misses some.
    pub fn watch_packet_log(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.packet_log.subscribe()
    }

    /// Write the engine's queued `-l` lines to the log and to watchers.
    pub fn emit_packet_log(&self, engine: &mut Engine) {
        local::emit_packet_log(engine, &self.packet_log);
    }

    /// nat-core's notion of now (milliseconds since this handle was made, or the manual
    /// clock's reading).
    pub fn now(&self) -> nat_core::Instant {
        match &self.clock {
            NatClock::Monotonic(epoch) => epoch.nat_now(),
            NatClock::Manual(ms) => crate::clock::nat_millis(ms.load(Ordering::SeqCst)),
        }
    }

    /// Lock the engine. A poisoned lock is taken over: nat-core never panics on input, and
    /// each critical section is a single engine call.
    pub fn lock(&self) -> MutexGuard<'_, Engine> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Packet counters of the pump, readable at any time.
#[derive(Debug, Default)]
pub struct PumpCounters {
    /// Packets read from the LAN side.
    pub lan_in: AtomicU64,
    /// Packets sent to the link.
    pub to_link: AtomicU64,
    /// Packets received from the link.
    pub link_in: AtomicU64,
    /// Packets written to the LAN side (forwarded or local delivery).
    pub to_lan: AtomicU64,
    /// Packets dropped by nat-core.
    pub nat_drops: AtomicU64,
    /// Packets dropped because no link was attached or its queue was full.
    pub link_drops: AtomicU64,
    /// ICMP errors generated (REJECT).
    pub replies: AtomicU64,
    /// The dial-on-demand path's counters.
    pub demand: Arc<demand::DemandCounters>,
}

impl PumpCounters {
    fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A plain copy of the counters as (name, value).
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![
            ("dataplane.lan_in", self.lan_in.load(Ordering::Relaxed)),
            ("dataplane.to_link", self.to_link.load(Ordering::Relaxed)),
            ("dataplane.link_in", self.link_in.load(Ordering::Relaxed)),
            ("dataplane.to_lan", self.to_lan.load(Ordering::Relaxed)),
            (
                "dataplane.nat_drops",
                self.nat_drops.load(Ordering::Relaxed),
            ),
            (
                "dataplane.link_drops",
                self.link_drops.load(Ordering::Relaxed),
            ),
            ("dataplane.replies", self.replies.load(Ordering::Relaxed)),
        ];
        v.extend(self.demand.snapshot());
        v
    }
}

/// The LAN side of the pump.
#[derive(Debug)]
pub enum LanPort {
    /// The TUN device (production).
    Tun(tun::Tun),
    /// In-memory channels (tests and benchmarks): packets the "LAN" sends, packets it gets.
    Memory {
        /// Packets from LAN hosts.
        rx: mpsc::Receiver<Vec<u8>>,
        /// Packets to LAN hosts (and to the gateway's own stack).
        tx: mpsc::Sender<Vec<u8>>,
    },
}

/// Where the pump sends packets for the link.
#[derive(Debug, Clone)]
pub enum LinkTx {
    /// Straight into a modem session's PPP driver (never blocks; full means dropped).
    Session(std::sync::Arc<dyn crate::linkq::LinkSink>),
    /// An in-memory queue (tests and benchmarks).
    Channel(mpsc::Sender<Vec<u8>>),
}

impl LinkTx {
    /// Queue one datagram of `class` without waiting; false when it was dropped.
    fn try_send(&self, packet: Vec<u8>, class: Class) -> bool {
        match self {
            LinkTx::Session(s) => s.try_send_classified(packet, class),
            LinkTx::Channel(c) => c.try_send(packet).is_ok(),
        }
    }
}

/// The active link as the pump sees it: where to send towards PPP and a queue from it.
#[derive(Debug)]
pub struct LinkPort {
    /// IPv4 datagrams to send over the link.
    pub tx: LinkTx,
    /// IPv4 datagrams received from the link.
    pub rx: mpsc::Receiver<Vec<u8>>,
}

enum Ctl {
    Attach(LinkPort),
    Detach,
    Ingress(Option<Box<Ingress>>),
    Demand(Option<Box<demand::DemandPort>>),
    Active(Option<String>),
    DemandPolicy(Box<demand::DemandPolicy>),
}

impl std::fmt::Debug for Ctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ctl::Attach(_) => f.write_str("Attach"),
            Ctl::Detach => f.write_str("Detach"),
            Ctl::Ingress(i) => write!(f, "Ingress({})", i.is_some()),
            Ctl::Demand(d) => write!(f, "Demand({})", d.is_some()),
            Ctl::Active(a) => write!(f, "Active({a:?})"),
            Ctl::DemandPolicy(_) => f.write_str("DemandPolicy"),
        }
    }
}

/// Control handle of a running pump.
#[derive(Debug, Clone)]
pub struct Dataplane {
    ctl: mpsc::Sender<Ctl>,
    counters: Arc<PumpCounters>,
    ingress: Arc<Mutex<Option<QueueSnapshot>>>,
}

impl Dataplane {
    /// Start the pump task between `lan` and (once attached) a link. It ends when
    /// `shutdown` fires or every handle is dropped.
    pub fn spawn(nat: NatHandle, lan: LanPort, shutdown: &Shutdown) -> Self {
        if let LanPort::Tun(t) = &lan {
            local::prepare_tun(t.name());
        }
        let (ctl, ctl_rx) = mpsc::channel(8);
        let counters = Arc::new(PumpCounters::default());
        let ingress = Arc::new(Mutex::new(None));
        shutdown.spawn(pump(
            nat,
            lan,
            ctl_rx,
            Arc::clone(&counters),
            Arc::clone(&ingress),
            shutdown.token(),
        ));
        Self {
            ctl,
            counters,
            ingress,
        }
    }

    /// Shape the download direction through `queue` (CAKE's ingress mode), or stop shaping
    /// (`None`). Detaching the link stops it too.
    pub async fn set_ingress(&self, queue: Option<Ingress>) {
        let _ = self.ctl.send(Ctl::Ingress(queue.map(Box::new))).await;
    }

    /// The download shaper's state (refreshed every 100 ms), when shaping.
    pub fn ingress_queue(&self) -> Option<QueueSnapshot> {
        self.ingress.lock().ok().and_then(|q| q.clone())
    }

    /// Route LAN traffic over this link from now on.
    pub async fn attach(&self, link: LinkPort) {
        let _ = self.ctl.send(Ctl::Attach(link)).await;
    }

    /// No link: outbound packets are dropped (and counted) until the next attach.
    pub async fn detach(&self) {
        let _ = self.ctl.send(Ctl::Detach).await;
    }

    /// Dial on demand through `port` from now on (`None`: off). Without waiting: false
    /// when the control queue is full.
    pub fn set_demand(&self, port: Option<demand::DemandPort>) -> bool {
        self.ctl.try_send(Ctl::Demand(port.map(Box::new))).is_ok()
    }

    /// Replace the dial-on-demand policy (configuration reload); a no-op while dial on
    /// demand is off. Without waiting: false when the control queue is full.
    pub fn set_demand_policy(&self, policy: demand::DemandPolicy) -> bool {
        self.ctl
            .try_send(Ctl::DemandPolicy(Box::new(policy)))
            .is_ok()
    }

    /// The connection whose link the next [`Dataplane::attach`] carries (activity filter).
    pub async fn set_active(&self, connection: Option<String>) {
        let _ = self.ctl.send(Ctl::Active(connection)).await;
    }

    /// The pump's counters.
    pub fn counters(&self) -> &Arc<PumpCounters> {
        &self.counters
    }
}

/// Receive from the LAN side; `None` when it is gone.
async fn lan_recv(lan: &mut LanPort, buf: &mut [u8]) -> Option<Vec<u8>> {
    match lan {
        LanPort::Tun(t) => match t.recv(buf).await {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(e) => {
                tracing::warn!(error = %e, "TUN read failed; dataplane stops");
                None
            }
        },
        LanPort::Memory { rx, .. } => rx.recv().await,
    }
}

async fn lan_send(lan: &LanPort, packet: &[u8]) {
    match lan {
        LanPort::Tun(t) => {
            if let Err(e) = t.send(packet).await {
                tracing::debug!(error = %e, "TUN write failed");
            }
        }
        LanPort::Memory { tx, .. } => {
            let _ = tx.send(packet.to_vec()).await;
        }
    }
}

fn to_link(link: &Option<LinkPort>, packet: Vec<u8>, class: Class, c: &PumpCounters) {
    match link {
        Some(l) => {
            if l.tx.try_send(packet, class) {
                PumpCounters::inc(&c.to_link);
            } else {
                PumpCounters::inc(&c.link_drops);
            }
        }
        None => PumpCounters::inc(&c.link_drops),
    }
}

async fn link_recv(link: &mut Option<LinkPort>) -> Option<Vec<u8>> {
    match link {
        Some(l) => l.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleep until `at`, or forever.
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// Held demand packets after the link attached: through nat-core (masqueraded with the new
/// address) and onto the link, oldest first.
async fn release_held(
    nat: &NatHandle,
    lan: &LanPort,
    link: &Option<LinkPort>,
    classifier: &Classifier,
    held: Vec<Vec<u8>>,
    c: &PumpCounters,
) {
    for mut pkt in held {
        let class = classifier.classify(&pkt, LanSide::Source);
        let action = {
            let now = nat.now();
            nat.lock().process_from_lan(now, &mut pkt)
        };
        match action {
            Action::ToLink => to_link(link, pkt, class, c),
            Action::ToLan | Action::Local => {
                PumpCounters::inc(&c.to_lan);
                lan_send(lan, &pkt).await;
            }
            Action::Reply(icmp) => {
                PumpCounters::inc(&c.replies);
                lan_send(lan, &icmp).await;
            }
            Action::Held => {}
            Action::Redirect { .. } | Action::Drop(_) => PumpCounters::inc(&c.nat_drops),
        }
    }
}

async fn pump(
    nat: NatHandle,
    mut lan: LanPort,
    mut ctl: mpsc::Receiver<Ctl>,
    c: Arc<PumpCounters>,
    ingress_view: Arc<Mutex<Option<QueueSnapshot>>>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_PACKET];
    let mut link: Option<LinkPort> = None;
    // Datagrams are classified by their LAN host: the source before masquerading on the way
    // out, the destination after de-masquerading on the way in.
    let classifier = Classifier::new();
    let mut ingress: Option<Ingress> = None;
    let mut demand: Option<demand::DemandPort> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let shaper_wake = ingress.as_ref().and_then(Ingress::wake_at);
        // Biased: shutdown, then control (an attach takes effect before the next
        // packet), then packets.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            cmd = ctl.recv() => match cmd {
                Some(Ctl::Attach(l)) => {
                    link = Some(l);
                    if let Some(d) = demand.as_mut() {
                        let held = d.state().release(std::time::Instant::now());
                        release_held(&nat, &lan, &link, &classifier, held, &c).await;
                    }
                }
                Some(Ctl::Detach) => {
                    link = None;
                    ingress = None;
                    if let Some(d) = demand.as_mut() {
                        d.state().set_active(None);
                    }
                }
                Some(Ctl::Ingress(i)) => ingress = i.map(|b| *b),
                Some(Ctl::Demand(d)) => demand = d.map(|b| *b),
                Some(Ctl::Active(a)) => {
                    if let Some(d) = demand.as_mut() {
                        d.state().set_active(a);
                    }
                }
                Some(Ctl::DemandPolicy(p)) => {
                    if let Some(d) = demand.as_mut() {
                        d.state().set_policy(*p);
                    }
                }
                None => break,
            },
            () = sleep_until(shaper_wake) => {
                while let Some(p) = ingress.as_mut().and_then(Ingress::dequeue) {
                    PumpCounters::inc(&c.to_lan);
                    lan_send(&lan, &p).await;
                }
            }
            pkt = lan_recv(&mut lan, &mut buf) => {
                let Some(mut pkt) = pkt else { break };
                PumpCounters::inc(&c.lan_in);
                if let Some(d) = demand.as_mut() {
                    match d.on_lan(std::time::Instant::now(), pkt, link.is_some()) {
                        demand::LanVerdict::Continue(p) => pkt = p,
                        demand::LanVerdict::Consumed => continue,
                        demand::LanVerdict::Reply(icmp) => {
                            PumpCounters::inc(&c.replies);
                            lan_send(&lan, &icmp).await;
                            continue;
                        }
                    }
                }
                let class = classifier.classify(&pkt, LanSide::Source);
                let action = {
                    let now = nat.now();
                    let mut e = nat.lock();
                    let a = e.process_from_lan(now, &mut pkt);
                    nat.emit_packet_log(&mut e);
                    a
                };
                match action {
                    Action::ToLink => to_link(&link, pkt, class, &c),
                    Action::ToLan | Action::Local => {
                        PumpCounters::inc(&c.to_lan);
                        lan_send(&lan, &pkt).await;
                    }
                    Action::Reply(icmp) => {
                        PumpCounters::inc(&c.replies);
                        lan_send(&lan, &icmp).await;
                    }
                    Action::Held => {}
                    Action::Redirect { .. } | Action::Drop(_) => PumpCounters::inc(&c.nat_drops),
                }
            }
            pkt = link_recv(&mut link) => {
                let Some(mut pkt) = pkt else {
                    // The link's session ended; wait for the next attach.
                    link = None;
                    continue;
                };
                PumpCounters::inc(&c.link_in);
                let action = {
                    let now = nat.now();
                    let mut e = nat.lock();
                    let a = e.process_from_link(now, &mut pkt);
                    nat.emit_packet_log(&mut e);
                    a
                };
                if let (Action::ToLan, Some(d)) = (&action, demand.as_mut()) {
                    d.state().from_link(&pkt);
                }
                match action {
                    Action::ToLan => match ingress.as_mut() {
                        Some(q) => {
                            let class = classifier.classify(&pkt, LanSide::Destination);
                            q.enqueue(pkt, class);
                        }
                        None => {
                            PumpCounters::inc(&c.to_lan);
                            lan_send(&lan, &pkt).await;
                        }
                    },
                    Action::Local => {
                        PumpCounters::inc(&c.to_lan);
                        lan_send(&lan, &pkt).await;
                    }
                    Action::Reply(icmp) => {
                        PumpCounters::inc(&c.replies);
                        let class = classifier.classify(&icmp, LanSide::Source);
                        to_link(&link, icmp, class, &c);
                    }
                    Action::ToLink => {
                        let class = classifier.classify(&pkt, LanSide::Source);
                        to_link(&link, pkt, class, &c);
                    }
                    Action::Held => {}
                    Action::Redirect { .. } | Action::Drop(_) => PumpCounters::inc(&c.nat_drops),
                }
            }
            _ = tick.tick() => {
                if let Ok(mut v) = ingress_view.lock() {
                    *v = ingress.as_ref().map(Ingress::snapshot);
                }
                if let Some(d) = demand.as_mut() {
                    d.state().handle_timeout(std::time::Instant::now());
                }
                let now = nat.now();
                let mut e = nat.lock();
                if e.poll_timeout().is_some_and(|t| t <= now) {
                    e.handle_timeout(now);
                }
            }
        }
    }
}
