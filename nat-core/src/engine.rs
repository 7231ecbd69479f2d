//! The engine: glue between wire parsing, reassembly, firewall chains and the masquerade table,
//! in the Linux 2.2 order (input → forward → MASQ → output for LAN → link; input →
//! demasquerade (forward skipped) → output for link → LAN). Owns packet-path decisions and
//! counters; must not do I/O or read a clock (callers pass `now`).

use crate::chains::{BuiltinChain, Firewall, PacketInfo, Verdict};
use crate::frag::{FragLimits, FragStats, Reassembler, Reassembly};
use crate::masq::translate::{Demasq, TranslateError};
use crate::masq::{
    ChangeFeed, EntryId, EntrySnapshot, FreePorts, MasqConfig, MasqError, MasqTable, Timeouts,
};
use crate::time::{Duration, Instant};
use crate::views::{self, MasqListOptions};
use crate::wire::{self, icmp, ipv4, proto, tcp};
use std::net::Ipv4Addr;

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Masquerading behaviour (ports, timeouts, mapping profile).
    pub masq: MasqConfig,
    /// Name the LAN interface has for `-i` matching (e.g. `eth0`).
    pub lan_iface: String,
    /// Name the link interface has for `-i` matching (e.g. `ppp0`).
    pub link_iface: String,
    /// The gateway's own LAN-side addresses: packets to them are delivered locally, and the
    /// first one is the source of ICMP errors sent to the LAN.
    pub local_addrs: Vec<Ipv4Addr>,
    /// Reassembly bounds (always-defragment before rules and masquerading).
    pub frag: FragLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            masq: MasqConfig::linux22(),
            lan_iface: "eth0".into(),
            link_iface: "ppp0".into(),
            local_addrs: Vec::new(),
            frag: FragLimits::default(),
        }
    }
}

/// Why a packet was dropped (each has a counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Not a valid IPv4 datagram (or bad transport header).
    Malformed,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// TCP/UDP/ICMP checksum wrong.
    BadChecksum,
    /// Denied by the input chain.
    InputDeny,
    /// Denied by the forward chain.
    ForwardDeny,
    /// Denied by the output chain.
    OutputDeny,
    /// MASQ verdict but no masquerade address (link down).
    NoMasqAddress,
    /// No free masquerade port.
    PortsExhausted,
    /// Masquerade table full.
    TableFull,
    /// Protocol that cannot be masqueraded.
    NotMasqueradable,
    /// ICMP error without a matching entry.
    IcmpNoMapping,
    /// Fragment that could not be reassembled (malformed, overlapping, over limits).
    Fragment,
}

impl DropReason {
    /// All reasons, in counter order.
    pub const ALL: [DropReason; 12] = [
        DropReason::Malformed,
        DropReason::BadIpChecksum,
        DropReason::BadChecksum,
        DropReason::InputDeny,
        DropReason::ForwardDeny,
        DropReason::OutputDeny,
        DropReason::NoMasqAddress,
        DropReason::PortsExhausted,
        DropReason::TableFull,
        DropReason::NotMasqueradable,
        DropReason::IcmpNoMapping,
        DropReason::Fragment,
    ];
    /// Stable snake_case name used in counters.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::InputDeny => "input_deny",
            DropReason::ForwardDeny => "forward_deny",
            DropReason::OutputDeny => "output_deny",
            DropReason::NoMasqAddress => "no_masq_address",
            DropReason::PortsExhausted => "ports_exhausted",
            DropReason::TableFull => "table_full",
            DropReason::NotMasqueradable => "not_masqueradable",
            DropReason::IcmpNoMapping => "icmp_no_mapping",
            DropReason::Fragment => "fragment",
        }
    }
}

/// What the caller must do with the packet (the buffer may have been rewritten in place).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Send the (rewritten) buffer on the link.
    ToLink,
    /// Send the (rewritten) buffer to the LAN.
    ToLan,
    /// Deliver to the gateway's own stack (addressed to it, unmasqueraded).
    Local,
    /// `REDIRECT`: deliver locally to this port (0 = the packet's own destination port).
    Redirect {
        /// Local port.
        port: u16,
    },
    /// A fragment was taken for reassembly; nothing to send yet.
    Held,
    /// Drop the packet.
    Drop(DropReason),
    /// Drop the packet and send this ICMP error back out of the interface it came in on.
    Reply(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    FromLan,
    FromLink,
}

/// Per-protocol counter slots.
const P_TCP: usize = 0;
const P_UDP: usize = 1;
const P_ICMP: usize = 2;
const P_OTHER: usize = 3;

#[derive(Debug, Clone, Default)]
struct Counters {
    drops: [u64; DropReason::ALL.len()],
    in_lan: [u64; 4],
    in_link: [u64; 4],
    masqueraded: [u64; 4],
    demasqueraded: [u64; 4],
    to_link: u64,
    to_lan: u64,
    local: u64,
    rejects_sent: u64,
    redirects: u64,
    held: u64,
    created: u64,
}

/// The masquerading engine.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    firewall: Firewall,
    masq: MasqTable,
    frag: Reassembler,
    counters: Counters,
    mss: Option<MssClamp>,
}

/// MSS limits for TCP SYNs crossing the link (from the negotiated MTU and MRU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MssClamp {
    /// For SYNs going out (what the remote may send us: our MRU − 40).
    to_link: u16,
    /// For SYNs coming in (what LAN hosts may send: the peer's MRU, our MTU, − 40).
    to_lan: u16,
}

fn pslot(p: u8) -> usize {
    match p {
        proto::TCP => P_TCP,
        proto::UDP => P_UDP,
        proto::ICMP => P_ICMP,
        _ => P_OTHER,
    }
}

impl Engine {
    /// A new engine: chains with ACCEPT policies, empty masquerade table, no masquerade
    /// address (set it with [`Engine::set_masq_address`] when the link comes up).
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            masq: MasqTable::new(cfg.masq.clone()),
            firewall: Firewall::new(),
            frag: Reassembler::new(cfg.frag),
            counters: Counters::default(),
            mss: None,
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The firewall (rules, listings).
    pub fn firewall(&self) -> &Firewall {
        &self.firewall
    }

    /// The firewall, for ipchains commands.
    pub fn firewall_mut(&mut self) -> &mut Firewall {
        &mut self.firewall
    }

    /// Replace the whole firewall (atomic ruleset apply).
    pub fn set_firewall(&mut self, fw: Firewall) {
        self.firewall = fw;
    }

    /// The masquerade table.
    pub fn masq(&self) -> &MasqTable {
        &self.masq
    }

    /// The masquerade table (helpers registry, flush, reserve).
    pub fn masq_mut(&mut self) -> &mut MasqTable {
        &mut self.masq
    }

    /// Install (or clear, when the link goes down) the masquerade address. On a change,
    /// entries that never saw a reply are re-keyed to the new address (2.2 `ip_dynaddr`) and
    /// the others are dropped. Returns (re-keyed, dropped).
    pub fn set_masq_address(&mut self, addr: Option<Ipv4Addr>) -> (usize, usize) {
        self.masq.set_masq_addr(addr)
    }

    /// Current masquerade address.
    pub fn masq_address(&self) -> Option<Ipv4Addr> {
        self.masq.masq_addr()
    }

    /// When to call [`Engine::handle_timeout`] next (None: nothing pending).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.masq.poll_timeout(), self.frag.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expire masquerade entries (bounded work per call; see [`MasqTable::handle_timeout`])
    /// and incomplete datagrams. Returns the number of masquerade entries freed.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        if self.frag.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.frag.handle_timeout(now);
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
        v.push(("frag.held".into(), c.held));
        v.push(("masq.entries.created".into(), c.created));
        v.push(("masq.entries.live".into(), self.masq.len() as u64));
        v
    }

    /// Count of drops for one reason.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.counters.drops[r as usize]
    }

    fn drop(&mut self, r: DropReason) -> Action {
        self.counters.drops[r as usize] += 1;
        Action::Drop(r)
    }

    fn is_local(&self, a: Ipv4Addr) -> bool {
        self.cfg.local_addrs.contains(&a)
    }

    /// Parse and validate the IPv4 header; reassemble fragments.
    fn ingress(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<(), Action> {
        let ip = match ipv4::Packet::new_checked(&buf[..]) {
            Ok(p) => p,
            Err(_) => return Err(self.drop(DropReason::Malformed)),
        };
        if !ip.verify_checksum() {
            return Err(self.drop(DropReason::BadIpChecksum));
        }
        let tl = usize::from(ip.total_len());
        let frag = ip.is_fragment();
        buf.truncate(tl);
        if frag {
            return self.reassemble(now, buf);
        }
        Ok(())
    }

    /// Always defragment (2.2 `CONFIG_IP_ALWAYS_DEFRAG`, forced while masquerading).
    fn reassemble(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<(), Action> {
        match self.frag.handle_fragment(now, buf) {
            Ok(Reassembly::NotFragment) => Ok(()),
            Ok(Reassembly::Complete(whole)) => {
                *buf = whole;
                Ok(())
            }
            Ok(Reassembly::Incomplete) => {
                self.counters.held += 1;
                Err(Action::Held)
            }
            Err(_) => Err(self.drop(DropReason::Fragment)),
        }
    }

    fn info<'a>(buf: &[u8], iface: &'a str) -> PacketInfo<'a> {
        let ip = ipv4::Packet::new_unchecked(buf);
        let hl = ip.header_len();
        let tl = usize::from(ip.total_len());
        let t = &buf[hl..tl];
        let p = ip.protocol();
        let (sport, dport, syn) = match p {
            proto::TCP | proto::UDP if t.len() >= 4 => {
                let (sport, dport) = wire::ports(p, t).unwrap_or((0, 0));
                // `-y`: SYN set, ACK and RST clear (the flags end at byte 14).
                let syn = p == proto::TCP
                    && t.len() >= tcp::FLAGS_END
                    && tcp::Packet::new_unchecked(t).flags()
                        & (tcp::FLG_SYN | tcp::FLG_RST | tcp::FLG_ACK)
                        == tcp::FLG_SYN;
                (sport, dport, syn)
            }
            proto::ICMP if t.len() >= 2 => {
                let m = icmp::Packet::new_unchecked(t);
                (u16::from(m.msg_type()), u16::from(m.msg_code()), false)
            }
            _ => (0, 0, false),
        };
        PacketInfo {
            proto: p,
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            sport,
            dport,
            iface,
            fragment: false,
            syn,
            tos: ip.tos(),
            len: tl as u32,
        }
    }

    fn run_chain(&mut self, chain: BuiltinChain, buf: &[u8], dir_out: bool) -> Verdict {
        let iface = if dir_out {
            &self.cfg.link_iface
        } else {
            &self.cfg.lan_iface
        };
        let info = Self::info(buf, iface);
        self.firewall.evaluate(chain, &info)
    }

    /// Warm the caches for a packet about to be processed by [`Engine::process_from_lan`] (see
    /// [`MasqTable::warm`]); call it for a batch of packets before processing the batch.
    pub fn warm_from_lan(&self, buf: &[u8]) -> u64 {
        self.masq.warm(buf, true)
    }

    /// Warm the caches for a packet about to be processed by [`Engine::process_from_link`].
    pub fn warm_from_link(&self, buf: &[u8]) -> u64 {
        self.masq.warm(buf, false)
    }

    /// Clamp the MSS of TCP SYNs crossing the link (FreeBSD ppp `mssfixup`): outgoing SYNs to
    /// `mru − 40`, incoming SYNs to `mtu − 40`, with the link's negotiated MTU (the peer's MRU)
    /// and our MRU. `None` (link down) turns clamping off.
    pub fn set_link_mtu(&mut self, mtu_mru: Option<(u16, u16)>) {
        self.mss = mtu_mru.map(|(mtu, mru)| MssClamp {
            to_link: crate::mss::mss_for_mtu(mru),
            to_lan: crate::mss::mss_for_mtu(mtu),
        });
    }

    /// Process a packet received from the LAN, in place. `buf` holds one IPv4 datagram.
    pub fn process_from_lan(&mut self, now: Instant, buf: &mut Vec<u8>) -> Action {
        let a = self.route_from_lan(now, buf);
        if let (Action::ToLink, Some(m)) = (&a, self.mss) {
            let _ = crate::mss::clamp_mss(buf, m.to_link);
        }
        a
    }

    fn route_from_lan(&mut self, now: Instant, buf: &mut Vec<u8>) -> Action {
        if let Err(a) = self.ingress(now, buf) {
            return a;
        }
        let p = ipv4::Packet::new_unchecked(&buf[..]).protocol();
        self.counters.in_lan[pslot(p)] += 1;
        // input chain: -i is the receiving interface.
        match self.run_chain(BuiltinChain::Input, buf, false) {
            Verdict::Accept | Verdict::Masq => {}
            Verdict::Deny => return self.drop(DropReason::InputDeny),
            Verdict::Reject => return self.reject(buf, BuiltinChain::Input, Dir::FromLan),
            Verdict::Redirect { port } => {
                self.counters.redirects += 1;
                return Action::Redirect { port };
            }
        }
        let dst = ipv4::Packet::new_unchecked(&buf[..]).dst_addr();
        if Some(dst) == self.masq.masq_addr()
            && self.cfg.masq.hairpin
            && (p == proto::TCP || p == proto::UDP)
        {
            return self.hairpin(now, buf, p);
        }
        if self.is_local(dst) || Some(dst) == self.masq.masq_addr() {
            self.counters.local += 1;
            return Action::Local;
        }
        // An inside host's ICMP error about a demasqueraded packet: rewritten symmetrically,
        // bypassing the forward chain (2.2 ip_fw_masq_icmp).
        let icmp_err = p == proto::ICMP && {
            let hl = ipv4::Packet::new_unchecked(&buf[..]).header_len();
            buf.len() > hl && icmp::is_error(icmp::Packet::new_unchecked(&buf[hl..]).msg_type())
        };
        if !icmp_err || self.masq.masq_addr().is_none() {
            // forward chain: -i is the outgoing interface.
            match self.run_chain(BuiltinChain::Forward, buf, true) {
                Verdict::Masq => {}
                Verdict::Accept | Verdict::Redirect { .. } => {
                    return self.output(buf, Dir::FromLan)
                }
                Verdict::Deny => return self.drop(DropReason::ForwardDeny),
                Verdict::Reject => return self.reject(buf, BuiltinChain::Forward, Dir::FromLan),
            }
        }
        match self.masq.masquerade(now, buf) {
            Ok(_) => {
                self.counters.masqueraded[pslot(p)] += 1;
                self.output(buf, Dir::FromLan)
            }
            Err(e) => {
                let r = translate_drop(e);
                let from = self.cfg.local_addrs.first().copied();
                match from {
                    Some(from)
                        if r == DropReason::PortsExhausted && self.cfg.masq.icmp_on_exhaustion =>
                    {
                        // RFC 5508 REQ-8: "the NAT SHOULD send an ICMP Destination
                        // Unreachable message, with a code of 13".
                        self.counters.drops[r as usize] += 1;
                        self.counters.rejects_sent += 1;
                        Action::Reply(build_icmp_error(
                            from,
                            buf,
                            icmp::types::DST_UNREACHABLE,
                            13,
                        ))
                    }
                    _ => self.drop(r),
                }
            }
        }
    }

    /// RFC 4787 REQ-9 / RFC 5382 REQ-8: "A NAT MUST support hairpinning": an inside host
    /// sending to the masquerade address reaches the inside host behind that mapping, and sees
    /// the sender's external (mapped) address as source. Forward chain, then masquerade the
    /// source, then demasquerade the destination (filtering applies as for outside traffic).
    fn hairpin(&mut self, now: Instant, buf: &mut Vec<u8>, p: u8) -> Action {
        match self.run_chain(BuiltinChain::Forward, buf, false) {
            Verdict::Masq | Verdict::Accept | Verdict::Redirect { .. } => {}
            Verdict::Deny => return self.drop(DropReason::ForwardDeny),
            Verdict::Reject => return self.reject(buf, BuiltinChain::Forward, Dir::FromLan),
        }
        let mut probe = buf.clone();
        if let Err(e) = self.masq.masquerade(now, &mut probe) {
            let r = translate_drop(e);
            return self.drop(r);
        }
        match self.masq.demasquerade(now, &mut probe) {
            Ok(Demasq::Translated) => {
                *buf = probe;
                self.counters.masqueraded[pslot(p)] += 1;
                self.counters.demasqueraded[pslot(p)] += 1;
                self.output(buf, Dir::FromLink)
            }
            Ok(Demasq::NotOurs) => {
                self.counters.local += 1;
                Action::Local
            }
            Err(e) => {
                let r = translate_drop(e);
                self.drop(r)
            }
        }
    }

    /// Process a packet received from the link, in place.
    pub fn process_from_link(&mut self, now: Instant, buf: &mut Vec<u8>) -> Action {
        let a = self.route_from_link(now, buf);
        if let (Action::ToLan, Some(m)) = (&a, self.mss) {
            let _ = crate::mss::clamp_mss(buf, m.to_lan);
        }
        a
    }

    fn route_from_link(&mut self, now: Instant, buf: &mut Vec<u8>) -> Action {
        if let Err(a) = self.ingress(now, buf) {
            return a;
        }
        let p = ipv4::Packet::new_unchecked(&buf[..]).protocol();
        self.counters.in_link[pslot(p)] += 1;
        match self.run_chain(BuiltinChain::Input, buf, true) {
            Verdict::Accept | Verdict::Masq => {}
            Verdict::Deny => return self.drop(DropReason::InputDeny),
            Verdict::Reject => return self.reject(buf, BuiltinChain::Input, Dir::FromLink),
            Verdict::Redirect { port } => {
                self.counters.redirects += 1;
                return Action::Redirect { port };
            }
        }
        let dst = ipv4::Packet::new_unchecked(&buf[..]).dst_addr();
        if Some(dst) == self.masq.masq_addr() {
            return match self.masq.demasquerade(now, buf) {
                Ok(Demasq::Translated) => {
                    self.counters.demasqueraded[pslot(p)] += 1;
                    // Demasqueraded packets skip forward but pass output (2.2).
                    self.output(buf, Dir::FromLink)
                }
                Ok(Demasq::NotOurs) => {
                    self.counters.local += 1;
                    Action::Local
                }
                Err(e) => {
                    let r = translate_drop(e);
                    self.drop(r)
                }
            };
        }
        if self.is_local(dst) {
            self.counters.local += 1;
            return Action::Local;
        }
        match self.run_chain(BuiltinChain::Forward, buf, false) {
            Verdict::Accept | Verdict::Masq | Verdict::Redirect { .. } => {
                self.output(buf, Dir::FromLink)
            }
            Verdict::Deny => self.drop(DropReason::ForwardDeny),
            Verdict::Reject => self.reject(buf, BuiltinChain::Forward, Dir::FromLink),
        }
    }

    fn output(&mut self, buf: &[u8], dir: Dir) -> Action {
        let to_link = dir == Dir::FromLan;
        match self.run_chain(BuiltinChain::Output, buf, to_link) {
            // MASQ reached from output acts like ACCEPT.
            Verdict::Accept | Verdict::Masq | Verdict::Redirect { .. } => {
                if to_link {
                    self.counters.to_link += 1;
                    Action::ToLink
                } else {
                    self.counters.to_lan += 1;
                    Action::ToLan
                }
            }
            Verdict::Deny => self.drop(DropReason::OutputDeny),
            Verdict::Reject => self.reject(buf, BuiltinChain::Output, dir),
        }
    }

    /// REJECT: build the ICMP error (input: port unreachable; forward/output: host
    /// unreachable, as 2.2), sourced from the gateway's address on the receiving side. No
    /// error is generated about an ICMP error (RFC 1122 3.2.2).
    fn reject(&mut self, buf: &[u8], chain: BuiltinChain, dir: Dir) -> Action {
        let ip = ipv4::Packet::new_unchecked(buf);
        let hl = ip.header_len();
        let is_err = ip.protocol() == proto::ICMP && buf.len() > hl && {
            let ty = icmp::Packet::new_unchecked(&buf[hl..]).msg_type();
            !icmp::is_query_request(ty) && icmp::reply_to_request(ty).is_none()
        };
        let reason = match chain {
            BuiltinChain::Input => DropReason::InputDeny,
            BuiltinChain::Forward => DropReason::ForwardDeny,
            BuiltinChain::Output => DropReason::OutputDeny,
        };
        let from = match dir {
            Dir::FromLan => self.cfg.local_addrs.first().copied(),
            Dir::FromLink => self.masq.masq_addr(),
        };
        let (Some(from), false) = (from, is_err) else {
            return self.drop(reason);
        };
        let code = if chain == BuiltinChain::Input { 3 } else { 1 };
        let pkt = build_icmp_error(from, buf, icmp::types::DST_UNREACHABLE, code);
        self.counters.drops[reason as usize] += 1;
        self.counters.rejects_sent += 1;
        Action::Reply(pkt)
    }
}

fn translate_drop(e: TranslateError) -> DropReason {
    match e {
        TranslateError::Wire(_) => DropReason::Malformed,
        TranslateError::BadChecksum => DropReason::BadChecksum,
        TranslateError::Fragment => DropReason::Fragment,
        TranslateError::Unsupported => DropReason::NotMasqueradable,
        TranslateError::NoMapping => DropReason::IcmpNoMapping,
        TranslateError::Masq(MasqError::NoAddress) => DropReason::NoMasqAddress,
        TranslateError::Masq(MasqError::PortsExhausted | MasqError::AlreadyUsed) => {
            DropReason::PortsExhausted
        }
        TranslateError::Masq(MasqError::TableFull) => DropReason::TableFull,
    }
}

/// Build an ICMP error (type/code) from `from` to the sender of `orig`, quoting the original
/// IP header and as much of its data as fits in 576 bytes (RFC 1812 4.3.2.3).
pub fn build_icmp_error(from: Ipv4Addr, orig: &[u8], ty: u8, code: u8) -> Vec<u8> {
    const HEADERS: usize = ipv4::HEADER_LEN + icmp::HEADER_LEN;
    let o = ipv4::Packet::new_unchecked(orig);
    let quote = orig.len().min(576 - HEADERS);
    let mut out = vec![0u8; HEADERS + quote];
    let repr = ipv4::Repr {
        src_addr: from,
        dst_addr: o.src_addr(),
        protocol: proto::ICMP,
        payload_len: icmp::HEADER_LEN + quote,
        ttl: 64,
    };
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    let mut m = icmp::Packet::new_unchecked(&mut out[ipv4::HEADER_LEN..]);
    m.set_msg_type(ty);
    m.set_msg_code(code);
    m.set_rest(0);
    m.data_mut().copy_from_slice(&orig[..quote]);
    m.fill_checksum();
    out
}
