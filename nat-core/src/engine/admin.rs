//! The engine's administrative face: packet log, portfw list, timers, timeouts, masquerade
//! table views and listings, counters. Moved out of `engine.rs` as it was (no change).

use super::{DropReason, Engine};
use crate::frag::FragStats;
use crate::masq::{ChangeFeed, EntryId, EntrySnapshot, FreePorts, Timeouts};
use crate::portfw::{PortFw, PortFwTable};
use crate::time::{Duration, Instant};
use crate::views::{self, MasqListOptions};
use std::net::Ipv4Addr;

impl Engine {
    /// Take the queued `Packet log:` lines of `-l` rules (rate-limited as the kernel's
    /// `net_ratelimit`; see [`crate::pktlog`]).
    pub fn drain_packet_log(&mut self) -> Vec<String> {
        if self.log.pending() {
            self.log.drain()
        } else {
            Vec::new()
        }
    }

    /// Whether `Packet log:` lines wait to be drained.
    pub fn packet_log_pending(&self) -> bool {
        self.log.pending()
    }

    /// The portfw list.
    pub fn portfw(&self) -> &PortFwTable {
        &self.portfw
    }

    /// `ipmasqadm portfw -a`.
    pub fn portfw_add(&mut self, e: PortFw) -> Result<(), crate::portfw::PortFwError> {
        self.portfw.add(e)
    }

    /// `ipmasqadm portfw -d`; returns the entries removed.
    pub fn portfw_delete(
        &mut self,
        proto: u8,
        laddr: Option<Ipv4Addr>,
        lport: u16,
        remote: Option<(Ipv4Addr, u16)>,
    ) -> Result<usize, crate::portfw::PortFwError> {
        self.portfw_conn.clear();
        self.portfw.delete(proto, laddr, lport, remote)
    }

    /// `ipmasqadm portfw -f`; returns the entries removed.
    pub fn portfw_flush(&mut self) -> usize {
        self.portfw_conn.clear();
        self.portfw.flush()
    }

    /// Replace the portfw list (restore at start).
    pub fn set_portfw(&mut self, t: PortFwTable) {
        self.portfw_conn.clear();
        self.portfw = t;
    }

    /// REDIRECT and portfw connections alive.
    pub fn redirect_connections(&self) -> usize {
        self.redirects.len()
    }

    /// The REDIRECT and portfw connections (for the listings).
    pub fn redirects(&self) -> &crate::redirect::Redirects {
        &self.redirects
    }

    /// Current masquerade address.
    pub fn masq_address(&self) -> Option<Ipv4Addr> {
        self.masq.masq_addr()
    }

    /// When to call [`Engine::handle_timeout`] next (None: nothing pending).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.masq.poll_timeout(),
            self.frag.poll_timeout(),
            self.redirects.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Expire masquerade entries (bounded work per call; see [`MasqTable::handle_timeout`](crate::masq::MasqTable::handle_timeout))
    /// and incomplete datagrams. Returns the number of masquerade entries freed.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        if self.frag.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.frag.handle_timeout(now);
        }
        if self.redirects.handle_timeout(now) > 0 {
            let r = &self.redirects;
            self.portfw_conn.retain(|t, _| r.lookup_orig(t).is_some());
        }
        self.masq.handle_timeout(now)
    }

    /// Reassembly counters.
    pub fn frag_stats(&self) -> FragStats {
        self.frag.stats()
    }

    /// Current timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.masq.timeouts()
    }

    /// `ipchains -M -S tcp tcpfin udp` in seconds; 0 leaves that value unchanged.
    pub fn set_timeouts(&mut self, tcp_secs: u32, tcpfin_secs: u32, udp_secs: u32) {
        self.masq.set_timeouts(
            Duration::from_secs(u64::from(tcp_secs)),
            Duration::from_secs(u64::from(tcpfin_secs)),
            Duration::from_secs(u64::from(udp_secs)),
        );
    }

    /// Free and total ports per protocol.
    pub fn free_ports(&self) -> FreePorts {
        self.masq.free_ports()
    }

    /// Structured snapshot of all entries.
    pub fn masq_snapshot(&self, now: Instant) -> Vec<EntrySnapshot> {
        self.masq.snapshot(now)
    }

    /// Up to `max` masquerade entries from slab slot `from` on, and where to continue
    /// (`None` at the end); see [`MasqTable::snapshot_from`](crate::masq::MasqTable::snapshot_from).
    pub fn masq_snapshot_from(
        &self,
        now: Instant,
        from: u32,
        max: usize,
    ) -> (Vec<EntrySnapshot>, Option<u32>) {
        self.masq.snapshot_from(now, from, max)
    }

    /// One entry by id.
    pub fn masq_entry(&self, now: Instant, id: EntryId) -> Option<EntrySnapshot> {
        self.masq.get(now, id)
    }

    /// Changes since the last call, for WatchMasq deltas.
    pub fn drain_changes(&mut self) -> ChangeFeed {
        self.masq.drain_changes()
    }

    /// `ipchains -M -L [-n] [-v]` text.
    pub fn render_masq_list(&self, now: Instant, opts: MasqListOptions) -> String {
        views::render_masq_list(&self.masq.snapshot(now), opts)
    }

    /// `/proc/net/ip_masquerade` text.
    pub fn render_proc_ip_masquerade(&self, now: Instant) -> String {
        views::render_proc_ip_masquerade(&self.masq.snapshot(now), self.masq.free_ports())
    }

    /// `/proc/net/ip_masq/{tcp,udp,icmp}` text for protocol `p`.
    pub fn render_proc_ip_masq_proto(&self, now: Instant, p: u8) -> String {
        views::render_proc_ip_masq_proto(
            &self.masq.snapshot(now),
            self.masq.free_ports(),
            self.masq.masq_addr(),
            p,
            self.cfg.masq.mapping == crate::masq::Mapping::Linux22,
        )
    }

    /// `/proc/net/ip_masq/portfw` text.
    pub fn render_proc_ip_masq_portfw(&self) -> String {
        self.portfw.render_proc()
    }

    /// `/proc/net/ip_masq/app` text.
    pub fn render_proc_ip_masq_app(&self) -> String {
        views::render_proc_ip_masq_app(&self.masq.helpers, |h| self.masq.helper_attached(h))
    }

    /// All counters as (name, value), names stable (`drop.<reason>`, `rx.lan.tcp`, …).
    pub fn counters(&self) -> Vec<(String, u64)> {
        let c = &self.counters;
        let pn = ["tcp", "udp", "icmp", "other"];
        let mut v = Vec::new();
        for r in DropReason::ALL {
            v.push((format!("drop.{}", r.name()), c.drops[r as usize]));
        }
        for (k, n) in pn.iter().enumerate() {
            v.push((format!("rx.lan.{n}"), c.in_lan[k]));
            v.push((format!("rx.link.{n}"), c.in_link[k]));
            v.push((format!("masq.out.{n}"), c.masqueraded[k]));
            v.push((format!("masq.in.{n}"), c.demasqueraded[k]));
        }
        v.push(("tx.link".into(), c.to_link));
        v.push(("tx.lan".into(), c.to_lan));
        v.push(("local".into(), c.local));
        v.push(("reject.sent".into(), c.rejects_sent));
        v.push(("redirect".into(), c.redirects));
        v.push(("redirect.conns".into(), self.redirects.len() as u64));
        v.push(("local.out".into(), c.local_out));
        v.push(("portfw".into(), c.portfw));
        v.push(("log.lines".into(), self.log.logged()));
        v.push(("log.suppressed".into(), self.log.suppressed()));
        v.push(("frag.held".into(), c.held));
        v.push(("masq.entries.created".into(), self.masq.created()));
        v.push(("masq.entries.live".into(), self.masq.len() as u64));
        let (sent, limited) = self.frag_needed.counts();
        v.push(("frag_needed.sent".into(), sent));
        v.push(("frag_needed.limited".into(), limited));
        v
    }

    /// Count of drops for one reason.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.counters.drops[r as usize]
    }
}
