//! The engine: glue between wire parsing, reassembly, firewall chains and the masquerade table,
//! in the Linux 2.2 order (input → forward → MASQ → output for LAN → link; input →
//! demasquerade (forward skipped) → output for link → LAN). Owns packet-path decisions and
//! counters; must not do I/O or read a clock (callers pass `now`).

use crate::chains::{log_line, LogHeader};
use crate::chains::{BuiltinChain, Firewall, PacketInfo, Verdict};
use crate::frag::{FragLimits, Reassembler, Reassembly};
use crate::masq::translate::{Demasq, TranslateError};
use crate::masq::{MasqConfig, MasqError, MasqTable};
use crate::pktlog::PacketLog;
use crate::portfw::PortFwTable;
use crate::redirect::{Kind, Redirects, Tuple};
use crate::time::Instant;
use crate::wire::{self, icmp, ipv4, proto, tcp};
use std::net::Ipv4Addr;

pub use crate::icmp_error::build_icmp_error;

mod admin;
mod redirects;

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Masquerading behaviour (ports, timeouts, mapping profile).
    pub masq: MasqConfig,
    /// Name the LAN interface has for `-i` matching (e.g. `eth0`).
    pub lan_iface: String,
    /// Name the link interface has for `-i` matching (e.g. `ppp0`).
    pub link_iface: String,
    /// Other names a rule's `-i` may give the link (the active connection's name, the TUN
    /// device): a packet on the link matches a rule naming any of them.
    pub link_aliases: Vec<String>,
    /// The gateway's own LAN-side addresses: packets to them are delivered locally, and the
    /// first one is the source of ICMP errors sent to the LAN.
    pub local_addrs: Vec<Ipv4Addr>,
    /// Reassembly bounds (always-defragment before rules and masquerading).
    pub frag: FragLimits,
    /// 2.2's `ip_dynaddr` sysctl: 0 = entries made on an old link address die with it; 1 =
    /// entries that never saw a reply are re-keyed to the new address; 2 = as 1, and the
    /// caller logs each change (see [`Engine::set_masq_address`]).
    pub dynaddr: u8,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            masq: MasqConfig::linux22(),
            lan_iface: "eth0".into(),
            link_iface: "ppp0".into(),
            link_aliases: Vec::new(),
            local_addrs: Vec::new(),
            frag: FragLimits::default(),
            dynaddr: 1,
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
    /// An IPv6 datagram: the engine masquerades IPv4 only (counted apart from garbage).
    Ipv6,
    /// The LAN host holds its quota of masquerade entries (`MasqConfig::max_per_host`).
    HostQuota,
    /// Larger than the link's MTU with DF set (answered with ICMP Frag-Needed unless
    /// rate-limited or no LAN address is known).
    TooBig,
}

impl DropReason {
    /// All reasons, in counter order.
    pub const ALL: [DropReason; 15] = [
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
        DropReason::Ipv6,
        DropReason::HostQuota,
        DropReason::TooBig,
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
            DropReason::Ipv6 => "ipv6",
            DropReason::HostQuota => "host_quota",
            DropReason::TooBig => "too_big",
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
    local_out: u64,
    portfw: u64,
    held: u64,
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
    /// The latest `now` a packet was processed with (for `-l` rate limiting).
    last_now: Instant,
    /// The link's peer address (the source REDIRECTed LAN connections get, so the local
    /// stack's replies come back through the TUN).
    peer: Option<Ipv4Addr>,
    redirects: Redirects,
    portfw: PortFwTable,
    /// Which portfw entry each forwarded connection came from (for its counters).
    portfw_conn: std::collections::HashMap<Tuple, usize>,
    log: PacketLog,
    /// The link's MTU (the peer's MRU) for DF datagrams from the LAN; `None` = unknown.
    path_mtu: Option<u16>,
    /// Rate limit of the Frag-Needed errors sent to LAN hosts.
    frag_needed: crate::mtu::RateLimit,
    /// Receive-window clamp of TCP segments to the link (`None`: off).
    rwnd: Option<Box<crate::rwnd::WindowClamp>>,
}

/// MSS limits for TCP SYNs crossing the link (from the negotiated MTU and MRU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MssClamp {
    /// For SYNs going out (what the remote may send us: our MRU − 40).
    to_link: u16,
    /// For SYNs coming in (what LAN hosts may send: the peer's MRU, our MTU, − 40).
    to_lan: u16,
}

/// Count one event. Counters wrap (after 2^64 events) instead of taking an overflow check on
/// every packet: the release profile keeps `overflow-checks` on for lengths and indexes.
#[inline(always)]
fn bump(c: &mut u64) {
    *c = c.wrapping_add(1);
}

#[inline]
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
            last_now: Instant::ZERO,
            peer: None,
            redirects: Redirects::default(),
            portfw: PortFwTable::default(),
            portfw_conn: std::collections::HashMap::new(),
            log: PacketLog::default(),
            path_mtu: None,
            frag_needed: crate::mtu::RateLimit::default(),
            rwnd: None,
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
    /// entries that never saw a reply are re-keyed to the new address when `ip_dynaddr` is
    /// on ([`EngineConfig::dynaddr`] ≥ 1) and the others are dropped (they cannot work on the
    /// new address). Returns (re-keyed, dropped).
    pub fn set_masq_address(&mut self, addr: Option<Ipv4Addr>) -> (usize, usize) {
        if addr != self.masq.masq_addr() {
            // REDIRECTed and port-forwarded connections were made on the old address.
            self.redirects.clear();
            self.portfw_conn.clear();
            if self.cfg.dynaddr == 0 && self.masq.masq_addr().is_some() && addr.is_some() {
                // Without ip_dynaddr nothing follows the new address.
                let n = self.masq.len();
                self.masq.flush();
                let _ = self.masq.set_masq_addr(addr);
                return (0, n);
            }
        }
        self.masq.set_masq_addr(addr)
    }

    /// The link's peer address (`None` when the link is down): REDIRECTed LAN connections
    /// reach the local stack from it.
    pub fn set_link_peer(&mut self, peer: Option<Ipv4Addr>) {
        self.peer = peer;
    }

    /// The gateway's own LAN-side addresses (the first one is the source of ICMP errors
    /// sent to the LAN, e.g. REJECT's port-unreachable).
    pub fn set_local_addrs(&mut self, addrs: Vec<Ipv4Addr>) {
        self.cfg.local_addrs = addrs;
    }

    /// `ip_dynaddr` (0, 1 or 2; see [`EngineConfig::dynaddr`]).
    pub fn set_dynaddr(&mut self, v: u8) {
        self.cfg.dynaddr = v.min(2);
    }

    /// The LAN interface's name for `-i` matching.
    pub fn set_lan_iface(&mut self, name: &str) {
        self.cfg.lan_iface = name.to_string();
    }

    /// Other names `-i` may give the link (see [`EngineConfig::link_aliases`]).
    pub fn set_link_aliases(&mut self, names: Vec<String>) {
        self.cfg.link_aliases = names;
    }

    fn drop(&mut self, r: DropReason) -> Action {
        bump(&mut self.counters.drops[r as usize]);
        Action::Drop(r)
    }

    fn is_local(&self, a: Ipv4Addr) -> bool {
        self.cfg.local_addrs.contains(&a)
    }

    /// Parse and validate the IPv4 header; reassemble fragments.
    fn ingress(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<(), Action> {
        let ip = match ipv4::Packet::new_checked(&buf[..]) {
            Ok(p) => p,
            Err(_) if buf.first().is_some_and(|b| b >> 4 == 6) => {
                return Err(self.drop(DropReason::Ipv6))
            }
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
                bump(&mut self.counters.held);
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
            iface_aliases: &[],
            fragment: false,
            syn,
            tos: ip.tos(),
            len: tl as u32,
        }
    }

    fn run_chain(&mut self, chain: BuiltinChain, buf: &mut [u8], dir_out: bool) -> Verdict {
        self.run_chain_at(None, chain, buf, dir_out)
    }

    /// Run `chain` (`-i` = the link's names when `dir_out`, else the LAN's), applying the
    /// matching rules' side effects: `-t` TOS rewrite (IP checksum fixed) and `-l` lines
    /// (queued, rate-limited; `now` None = the last time seen).
    fn run_chain_at(
        &mut self,
        now: Option<Instant>,
        chain: BuiltinChain,
        buf: &mut [u8],
        dir_out: bool,
    ) -> Verdict {
        // A chain without rules needs no packet summary: its policy, counted.
        let len = buf
            .get(2..4)
            .map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]])));
        if let Some(v) = self.firewall.evaluate_policy_only(chain, len) {
            return v;
        }
        let now = now.unwrap_or(self.last_now);
        let (iface, aliases): (&str, &[String]) = if dir_out {
            (&self.cfg.link_iface, &self.cfg.link_aliases)
        } else {
            (&self.cfg.lan_iface, &[])
        };
        let mut info = Self::info(buf, iface);
        info.iface_aliases = aliases;
        let log = &mut self.log;
        let hdr_src: &[u8] = buf;
        let (v, fx) = self.firewall.evaluate_with(chain, &info, 0, &mut |rec| {
            if log.admit(now) {
                let ip = ipv4::Packet::new_unchecked(hdr_src);
                let hl = ip.header_len().clamp(ipv4::HEADER_LEN, hdr_src.len());
                let hdr = LogHeader {
                    ident: ip.ident(),
                    frag_word: u16::from_be_bytes([hdr_src[6], hdr_src[7]]),
                    ttl: ip.ttl(),
                    options: &hdr_src[ipv4::HEADER_LEN..hl],
                };
                log.push(log_line(rec, &info, &hdr));
            }
        });
        let tos = info.tos;
        if fx.tos != tos {
            let mut ip = ipv4::Packet::new_unchecked(&mut buf[..]);
            ip.set_tos(fx.tos);
            ip.fill_checksum();
        }
        v
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

    /// The link's MTU (the peer's negotiated MRU) for datagrams from the LAN: one with DF
    /// set that is larger and would go to the link is dropped and answered with ICMP
    /// "fragmentation needed" carrying this MTU (RFC 1191), from the first of
    /// [`EngineConfig::local_addrs`], rate-limited per LAN host. Larger ones without DF are
    /// the caller's to fragment ([`crate::mtu::fragment`]). `None` (link down or unknown)
    /// turns the check off. Independent of MSS clamping ([`Engine::set_link_mtu`]).
    pub fn set_path_mtu(&mut self, mtu: Option<u16>) {
        self.path_mtu = mtu.map(|m| m.max(crate::mtu::MIN_MTU));
    }

    /// Clamp the receive window LAN hosts advertise in TCP segments to the link (see
    /// [`crate::rwnd`]), sized by `cfg` (the line rate and the allowance), or turn it off
    /// (`None`, e.g. link down: connection state is forgotten). Resizing keeps the state.
    pub fn set_download_window(&mut self, cfg: Option<crate::rwnd::WindowConfig>) {
        match (cfg, self.rwnd.as_mut()) {
            (None, _) => self.rwnd = None,
            (Some(c), Some(w)) => w.set_config(c),
            (Some(c), None) => self.rwnd = Some(Box::new(crate::rwnd::WindowClamp::new(c))),
        }
    }

    /// The receive-window clamp, when on.
    pub fn download_window(&self) -> Option<&crate::rwnd::WindowClamp> {
        self.rwnd.as_deref()
    }

    /// The link MTU set by [`Engine::set_path_mtu`].
    pub fn path_mtu(&self) -> Option<u16> {
        self.path_mtu
    }

    /// Process a packet received from the LAN, in place. `buf` holds one IPv4 datagram.
    pub fn process_from_lan(&mut self, now: Instant, buf: &mut Vec<u8>) -> Action {
        self.last_now = now;
        // The quote of an oversize DF datagram is taken before masquerading: the LAN host
        // must recognise its own datagram in the error (rare path, so the copy is cheap).
        let too_big = match self.path_mtu {
            Some(m) if crate::mtu::decide(buf, m) == crate::mtu::Fit::FragNeeded => {
                Some((m, buf[..buf.len().min(576 - 28)].to_vec()))
            }
            _ => None,
        };
        // The LAN host, before masquerading, for the window clamp's per-host split.
        let host = match (&self.rwnd, buf.get(12..16)) {
            (Some(_), Some(s)) => Some(Ipv4Addr::new(s[0], s[1], s[2], s[3])),
            _ => None,
        };
        let a = self.route_from_lan(now, buf);
        if let (Action::ToLink, Some((mtu, quote))) = (&a, too_big) {
            return self.frag_needed(now, &quote, mtu);
        }
        if let (Action::ToLink, Some(m)) = (&a, self.mss) {
            let _ = crate::mss::clamp_mss(buf, m.to_link);
        }
        if let (Action::ToLink, Some(w), Some(h)) = (&a, self.rwnd.as_mut(), host) {
            let _ = w.clamp_outbound(now, h, buf);
        }
        a
    }

    fn route_from_lan(&mut self, now: Instant, buf: &mut Vec<u8>) -> Action {
        if let Err(a) = self.ingress(now, buf) {
            return a;
        }
        let (p, src) = {
            let ip = ipv4::Packet::new_unchecked(&buf[..]);
            (ip.protocol(), ip.src_addr())
        };
        // The gateway's own traffic reaches us through the TUN with one of its addresses as
        // source: 2.2 runs locally generated packets through output only, unmasqueraded.
        if Some(src) == self.masq.masq_addr() || self.is_local(src) {
            return self.local_out(now, buf, src);
        }
        bump(&mut self.counters.in_lan[pslot(p)]);
        // A LAN host answering a port-forwarded connection.
        if !self.redirects.is_empty() {
            if let Some(kind) = self.redirects.translate_reply(now, buf) {
                return match kind {
                    Kind::PortFw => self.output(buf, Dir::FromLan),
                    Kind::RedirectLan | Kind::RedirectLink => self.drop(DropReason::Malformed),
                };
            }
        }
        // input chain: -i is the receiving interface.
        match self.run_chain_at(Some(now), BuiltinChain::Input, buf, false) {
            Verdict::Accept | Verdict::Masq => {}
            Verdict::Deny => return self.drop(DropReason::InputDeny),
            Verdict::Reject => return self.reject(buf, BuiltinChain::Input, Dir::FromLan),
            Verdict::Redirect { port } => return self.redirect_from_lan(now, buf, port),
        }
        let dst = ipv4::Packet::new_unchecked(&buf[..]).dst_addr();
        if Some(dst) == self.masq.masq_addr()
            && self.cfg.masq.hairpin
            && (p == proto::TCP || p == proto::UDP)
        {
            return self.hairpin(now, buf, p);
        }
        if self.is_local(dst) || Some(dst) == self.masq.masq_addr() {
            bump(&mut self.counters.local);
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
                bump(&mut self.counters.masqueraded[pslot(p)]);
                self.output(buf, Dir::FromLan)
            }
            Err(e) => {
                let r = translate_drop(e);
                let from = self.cfg.local_addrs.first().copied();
                match from {
                    Some(from)
                        if matches!(r, DropReason::PortsExhausted | DropReason::HostQuota)
                            && self.cfg.masq.icmp_on_exhaustion =>
                    {
                        // RFC 5508 REQ-8: "the NAT SHOULD send an ICMP Destination
                        // Unreachable message, with a code of 13".
                        bump(&mut self.counters.drops[r as usize]);
                        bump(&mut self.counters.rejects_sent);
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

    /// A packet the gateway itself sent toward the link (source = one of its addresses): the
    /// reply side of a REDIRECTed connection goes back to its client; anything else passes the
    /// output chain only and is not masqueraded when it already has the link's address.
    fn local_out(&mut self, now: Instant, buf: &mut Vec<u8>, src: Ipv4Addr) -> Action {
        bump(&mut self.counters.local_out);
        if !self.redirects.is_empty() {
            if let Some(kind) = self.redirects.translate_reply(now, buf) {
                return match kind {
                    Kind::RedirectLan => {
                        bump(&mut self.counters.to_lan);
                        Action::ToLan
                    }
                    Kind::RedirectLink | Kind::PortFw => {
                        bump(&mut self.counters.to_link);
                        Action::ToLink
                    }
                };
            }
        }
        match self.run_chain_at(Some(now), BuiltinChain::Output, buf, true) {
            Verdict::Accept | Verdict::Masq | Verdict::Redirect { .. } => {}
            Verdict::Deny => return self.drop(DropReason::OutputDeny),
            Verdict::Reject => return self.reject(buf, BuiltinChain::Output, Dir::FromLan),
        }
        if Some(src) != self.masq.masq_addr() {
            // Sent from another of the gateway's addresses (e.g. an application bound to
            // the LAN address): replies could not come back unmasqueraded.
            if let Err(e) = self.masq.masquerade(now, buf) {
                let r = translate_drop(e);
                return self.drop(r);
            }
        }
        bump(&mut self.counters.to_link);
        Action::ToLink
    }

    /// Process a packet received from the link, in place.
    pub fn process_from_link(&mut self, now: Instant, buf: &mut Vec<u8>) -> Action {
        self.last_now = now;
        if let Some(w) = self.rwnd.as_mut() {
            w.observe_inbound(now, buf);
        }
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
        bump(&mut self.counters.in_link[pslot(p)]);
        match self.run_chain_at(Some(now), BuiltinChain::Input, buf, true) {
            Verdict::Accept | Verdict::Masq => {}
            Verdict::Deny => return self.drop(DropReason::InputDeny),
            Verdict::Reject => return self.reject(buf, BuiltinChain::Input, Dir::FromLink),
            Verdict::Redirect { port } => return self.redirect_from_link(now, buf, port),
        }
        let dst = ipv4::Packet::new_unchecked(&buf[..]).dst_addr();
        if Some(dst) == self.masq.masq_addr() {
            return match self.masq.demasquerade(now, buf) {
                Ok(Demasq::Translated) => {
                    bump(&mut self.counters.demasqueraded[pslot(p)]);
                    // Demasqueraded packets skip forward but pass output (2.2).
                    self.output(buf, Dir::FromLink)
                }
                Ok(Demasq::NotOurs) => {
                    if let Some(a) = self.portfw_in(now, buf) {
                        return a;
                    }
                    bump(&mut self.counters.local);
                    Action::Local
                }
                Err(TranslateError::NoMapping) if self.own_flow_error(buf) => {
                    // An ICMP error about the gateway's own connection (its ports are below
                    // the masquerade range): its stack wants it (path-MTU discovery).
                    bump(&mut self.counters.local);
                    Action::Local
                }
                Err(e) => {
                    let r = translate_drop(e);
                    self.drop(r)
                }
            };
        }
        if self.is_local(dst) {
            bump(&mut self.counters.local);
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

    /// Whether an ICMP error quotes a datagram the gateway sent itself: source port (or echo
    /// id) outside every masquerade port range.
    fn own_flow_error(&self, buf: &[u8]) -> bool {
        let ip = ipv4::Packet::new_unchecked(buf);
        let inner = ip.header_len() + icmp::HEADER_LEN;
        let Some(emb) = buf.get(inner..) else {
            return false;
        };
        // The quote is cut short (RFC 792: header + 8 bytes): read the header by hand.
        if emb.len() < ipv4::HEADER_LEN {
            return false;
        }
        let e = ipv4::Packet::new_unchecked(emb);
        let ehl = e.header_len();
        let Some(port) = emb
            .get(ehl..ehl + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
        else {
            return false;
        };
        let port = if e.protocol() == proto::ICMP {
            match emb.get(ehl + 4..ehl + 6) {
                Some(b) => u16::from_be_bytes([b[0], b[1]]),
                None => return false,
            }
        } else {
            port
        };
        !self
            .cfg
            .masq
            .ports
            .iter()
            .any(|r| (r.lo..=r.hi).contains(&port))
    }

    fn output(&mut self, buf: &mut [u8], dir: Dir) -> Action {
        let to_link = dir == Dir::FromLan;
        match self.run_chain(BuiltinChain::Output, buf, to_link) {
            // MASQ reached from output acts like ACCEPT.
            Verdict::Accept | Verdict::Masq | Verdict::Redirect { .. } => {
                if to_link {
                    bump(&mut self.counters.to_link);
                    Action::ToLink
                } else {
                    bump(&mut self.counters.to_lan);
                    Action::ToLan
                }
            }
            Verdict::Deny => self.drop(DropReason::OutputDeny),
            Verdict::Reject => self.reject(buf, BuiltinChain::Output, dir),
        }
    }

    /// A DF datagram too big for the link: Frag-Needed to its sender, or a plain drop when
    /// rate-limited or no LAN address is known.
    fn frag_needed(&mut self, now: Instant, quote: &[u8], mtu: u16) -> Action {
        let sender = ipv4::Packet::new_unchecked(quote).src_addr();
        match self.cfg.local_addrs.first().copied() {
            Some(from) if self.frag_needed.allow(now, sender) => {
                bump(&mut self.counters.drops[DropReason::TooBig as usize]);
                Action::Reply(crate::mtu::frag_needed(from, quote, mtu))
            }
            _ => self.drop(DropReason::TooBig),
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
        bump(&mut self.counters.drops[reason as usize]);
        bump(&mut self.counters.rejects_sent);
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
        TranslateError::Masq(MasqError::HostQuota) => DropReason::HostQuota,
    }
}
