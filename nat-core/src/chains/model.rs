//! The chain/rule data model and the ipchains operations on it (`-A -I -R -D -F -Z -N -X -P`), with the
//! kernel's reference counts and errors; what the rules look at ([`PacketInfo`], `-C`'s
//! [`TestPacket`]) and a rule's compiled match fields. Must not parse command lines, render text or
//! walk chains (see `syntax`, `render`, `matching`: they depend on this module, never the reverse)
//! and must not see packet bytes.

mod firewall;

pub use firewall::Firewall;

use std::fmt;
use std::net::Ipv4Addr;

use thiserror::Error;

/// `fw_flg` bit: log matching packets (`-l`).
pub const IP_FW_F_PRN: u16 = 0x01;
/// `fw_flg` bit: TCP SYN-only (`-y`).
pub const IP_FW_F_TCPSYN: u16 = 0x02;
/// `fw_flg` bit: second and further fragments only (`-f`).
pub const IP_FW_F_FRAG: u16 = 0x04;
/// `fw_flg` bit: the mark is absolute, not added (`-m N` rather than `-m +N`).
pub const IP_FW_F_MARKABS: u16 = 0x08;
/// `fw_flg` bit: the interface name is a prefix (`ppp+`) or empty (any).
pub const IP_FW_F_WILDIF: u16 = 0x10;
/// `fw_flg` bit: copy matching packets to netlink (`-o`).
pub const IP_FW_F_NETLINK: u16 = 0x20;

/// `fw_invflg` bit: source address inverted.
pub const IP_FW_INV_SRCIP: u8 = 0x01;
/// `fw_invflg` bit: destination address inverted.
pub const IP_FW_INV_DSTIP: u8 = 0x02;
/// `fw_invflg` bit: protocol inverted.
pub const IP_FW_INV_PROTO: u8 = 0x04;
/// `fw_invflg` bit: source port inverted.
pub const IP_FW_INV_SRCPT: u8 = 0x08;
/// `fw_invflg` bit: destination port inverted.
pub const IP_FW_INV_DSTPT: u8 = 0x10;
/// `fw_invflg` bit: interface inverted.
pub const IP_FW_INV_VIA: u8 = 0x20;
/// `fw_invflg` bit: SYN test inverted.
pub const IP_FW_INV_SYN: u8 = 0x40;
/// `fw_invflg` bit: fragment test inverted.
pub const IP_FW_INV_FRAG: u8 = 0x80;

/// Longest chain label (`IP_FW_MAX_LABEL_LENGTH`).
pub const MAX_LABEL_LEN: usize = 8;
/// Longest interface name (`IFNAMSIZ`).
pub const IFNAMSIZ: usize = 16;

/// IP protocol numbers used by the rules.
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;

/// What the rules look at; the engine fills it from the parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo<'a> {
    /// IP protocol number.
    pub proto: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// TCP/UDP source port; ICMP: type (as ipchains).
    pub sport: u16,
    /// TCP/UDP destination port; ICMP: code.
    pub dport: u16,
    /// Interface name the rule's `-i` is compared with.
    pub iface: &'a str,
    /// Other names of the same interface (e.g. the link's connection name besides its
    /// `ppp0` alias): a rule naming any of them matches.
    pub iface_aliases: &'a [String],
    /// Not the first fragment (offset != 0) (`-f`).
    pub fragment: bool,
    /// TCP with SYN set and ACK, RST clear (`-y`).
    pub syn: bool,
    /// IP TOS byte.
    pub tos: u8,
    /// IP total length, for byte counters.
    pub len: u32,
}

/// The three built-in chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuiltinChain {
    /// `input`: packets received on an interface.
    Input,
    /// `forward`: packets routed through the gateway.
    Forward,
    /// `output`: packets about to leave on an interface.
    Output,
}

impl BuiltinChain {
    /// The chain's ipchains label.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinChain::Input => "input",
            BuiltinChain::Forward => "forward",
            BuiltinChain::Output => "output",
        }
    }

    /// Index of the chain inside a [`Firewall`] (built-ins come first, in this order).
    pub(crate) fn index(self) -> usize {
        match self {
            BuiltinChain::Input => 0,
            BuiltinChain::Forward => 1,
            BuiltinChain::Output => 2,
        }
    }
}

/// Result of running a packet through a built-in chain (counters updated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the packet through.
    Accept,
    /// Drop silently (`DENY`; also a run-time loop).
    Deny,
    /// Drop and answer with an ICMP error (`REJECT`).
    Reject,
    /// Masquerade (only returned for the `forward` chain; `MASQ` reached from input/output is `Accept`).
    Masq,
    /// Redirect to a local port (`REDIRECT [port]`).
    Redirect {
        /// Local port; 0 = keep the packet's destination port.
        port: u16,
    },
}

/// One test packet of a `-C` check: the fake packet ipchains builds from a single-valued rule
/// specification (`-p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80 -i eth0 [-y] [-f]`). `syntax` produces
/// it, the walk in `matching` runs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TestPacket {
    /// IP protocol number.
    pub proto: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// TCP/UDP source port; ICMP: type.
    pub sport: u16,
    /// TCP/UDP destination port; ICMP: code.
    pub dport: u16,
    /// Receiving interface.
    pub iface: String,
    /// `-f`: not the first fragment.
    pub fragment: bool,
    /// `-y`: a SYN.
    pub syn: bool,
}

impl TestPacket {
    /// The packet ipchains builds from a single-valued rule (the low end of each port range).
    pub fn from_rule(r: &Rule) -> TestPacket {
        TestPacket {
            proto: r.proto,
            src: r.src,
            dst: r.dst,
            sport: r.src_ports.lo,
            dport: r.dst_ports.lo,
            iface: r.iface.clone(),
            fragment: r.fragment,
            syn: r.syn,
        }
    }

    /// What the rules look at (TOS 0, length 40, as ipchains' fake packet).
    pub fn info(&self) -> PacketInfo<'_> {
        PacketInfo {
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            iface: &self.iface,
            iface_aliases: &[],
            fragment: self.fragment,
            syn: self.syn,
            tos: 0,
            len: 40,
        }
    }
}

/// A parsed `-C chain spec`: the chain to start from and the packets to run (two with `-b`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckRequest {
    /// Chain label.
    pub chain: String,
    /// Test packets, in ipchains' order.
    pub packets: Vec<TestPacket>,
}

/// An inclusive port range (for ICMP: type range or code range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// Lowest port.
    pub lo: u16,
    /// Highest port.
    pub hi: u16,
}

impl PortRange {
    /// `0:65535`, the range that matches anything.
    pub const ANY: PortRange = PortRange { lo: 0, hi: 0xFFFF };

    /// A single port.
    pub fn single(p: u16) -> Self {
        PortRange { lo: p, hi: p }
    }

    /// Whether this is the full `0:65535` range.
    pub fn is_any(self) -> bool {
        self == Self::ANY
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self::ANY
    }
}

/// Where a matching rule sends the packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Target {
    /// No `-j`: the rule only counts (kernel `FW_SKIP`).
    #[default]
    None,
    /// `ACCEPT`.
    Accept,
    /// `DENY` (drop).
    Deny,
    /// `REJECT` (drop + ICMP error).
    Reject,
    /// `MASQ`.
    Masq,
    /// `REDIRECT` (the port lives in [`Rule::redirect_port`]).
    Redirect,
    /// `RETURN`.
    Return,
    /// Jump to a user chain.
    Chain(String),
}

impl Target {
    /// Parse a target label as the kernel's `find_special` does (case-sensitive); anything else is a chain.
    pub fn from_label(label: &str) -> Target {
        match label {
            "" => Target::None,
            "ACCEPT" => Target::Accept,
            "DENY" => Target::Deny,
            "REJECT" => Target::Reject,
            "MASQ" => Target::Masq,
            "REDIRECT" => Target::Redirect,
            "RETURN" => Target::Return,
            other => Target::Chain(other.to_string()),
        }
    }

    /// The kernel's `branchname`: label as shown in `/proc` (`-` for none).
    pub fn label(&self) -> &str {
        match self {
            Target::None => "-",
            Target::Accept => "ACCEPT",
            Target::Deny => "DENY",
            Target::Reject => "REJECT",
            Target::Masq => "MASQ",
            Target::Redirect => "REDIRECT",
            Target::Return => "RETURN",
            Target::Chain(c) => c,
        }
    }
}

/// A built-in chain's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// `ACCEPT` (the default).
    Accept,
    /// `DENY`.
    Deny,
    /// `REJECT`.
    Reject,
    /// `MASQ` (forward only).
    Masq,
}

impl Policy {
    /// The policy's label.
    pub fn label(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Deny => "DENY",
            Policy::Reject => "REJECT",
            Policy::Masq => "MASQ",
        }
    }

    /// Parse an exact (case-sensitive) policy label.
    pub fn from_label(s: &str) -> Option<Policy> {
        match s {
            "ACCEPT" => Some(Policy::Accept),
            "DENY" => Some(Policy::Deny),
            "REJECT" => Some(Policy::Reject),
            "MASQ" => Some(Policy::Masq),
            _ => None,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One ipchains rule: the kernel's `struct ip_fw` plus its target label.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Source address (already masked).
    pub src: Ipv4Addr,
    /// Source mask.
    pub src_mask: Ipv4Addr,
    /// Destination address (already masked).
    pub dst: Ipv4Addr,
    /// Destination mask.
    pub dst_mask: Ipv4Addr,
    /// Interface name without the trailing `+`; empty = any.
    pub iface: String,
    /// The interface name is a prefix (`ppp+`); always true for an empty name.
    pub iface_wildcard: bool,
    /// IP protocol, 0 = all.
    pub proto: u8,
    /// Source ports (ICMP: type).
    pub src_ports: PortRange,
    /// Destination ports (ICMP: code).
    pub dst_ports: PortRange,
    /// `-y`: SYN-only.
    pub syn: bool,
    /// `-f`: second and further fragments only.
    pub fragment: bool,
    /// `-l`: log matches.
    pub log: bool,
    /// `-o [size]`: netlink copy of at most this many bytes.
    pub netlink: Option<u16>,
    /// `-m`: mark value (relative marks are stored as the 32-bit two's complement addend).
    pub mark: u32,
    /// The mark is absolute (`-m N`) rather than added (`-m +N`/`-m -N`).
    pub mark_absolute: bool,
    /// `-t and xor`: TOS AND mask (0xFF = unchanged).
    pub tos_and: u8,
    /// `-t and xor`: TOS XOR mask.
    pub tos_xor: u8,
    /// Inversion flags (`IP_FW_INV_*`).
    pub invflags: u8,
    /// Target.
    pub target: Target,
    /// REDIRECT port, 0 = keep the destination port.
    pub redirect_port: u16,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            src: Ipv4Addr::UNSPECIFIED,
            src_mask: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            dst_mask: Ipv4Addr::UNSPECIFIED,
            iface: String::new(),
            iface_wildcard: true,
            proto: 0,
            src_ports: PortRange::ANY,
            dst_ports: PortRange::ANY,
            syn: false,
            fragment: false,
            log: false,
            netlink: None,
            mark: 0,
            mark_absolute: false,
            tos_and: 0xFF,
            tos_xor: 0,
            invflags: 0,
            target: Target::None,
            redirect_port: 0,
        }
    }
}

impl Rule {
    /// Whether an inversion flag (`IP_FW_INV_*`) is set.
    pub fn inv(&self, flag: u8) -> bool {
        self.invflags & flag != 0
    }

    /// The kernel's `fw_flg` word (`IP_FW_F_*`).
    pub fn fw_flags(&self) -> u16 {
        let mut f = 0;
        if self.log {
            f |= IP_FW_F_PRN;
        }
        if self.syn {
            f |= IP_FW_F_TCPSYN;
        }
        if self.fragment {
            f |= IP_FW_F_FRAG;
        }
        if self.mark_absolute {
            f |= IP_FW_F_MARKABS;
        }
        if self.iface_wildcard || self.iface.is_empty() {
            f |= IP_FW_F_WILDIF;
        }
        if self.netlink.is_some() {
            f |= IP_FW_F_NETLINK;
        }
        f
    }

    /// The same rule with source and destination swapped, as `-b` installs it (ipchains `swap_info`:
    /// masks and address inversions always; ports and port inversions unless ICMP).
    pub fn swapped(&self) -> Rule {
        let mut r = self.clone();
        r.src = self.dst;
        r.dst = self.src;
        r.src_mask = self.dst_mask;
        r.dst_mask = self.src_mask;
        r.invflags &= !(IP_FW_INV_SRCIP | IP_FW_INV_DSTIP);
        if self.inv(IP_FW_INV_SRCIP) {
            r.invflags |= IP_FW_INV_DSTIP;
        }
        if self.inv(IP_FW_INV_DSTIP) {
            r.invflags |= IP_FW_INV_SRCIP;
        }
        if self.proto != PROTO_ICMP {
            r.src_ports = self.dst_ports;
            r.dst_ports = self.src_ports;
            r.invflags &= !(IP_FW_INV_SRCPT | IP_FW_INV_DSTPT);
            if self.inv(IP_FW_INV_SRCPT) {
                r.invflags |= IP_FW_INV_DSTPT;
            }
            if self.inv(IP_FW_INV_DSTPT) {
                r.invflags |= IP_FW_INV_SRCPT;
            }
        }
        r
    }

    /// The kernel's `del_rule_from_chain` comparison: everything except counters, mark and TOS masks.
    pub fn kernel_eq(&self, other: &Rule) -> bool {
        self.src == other.src
            && self.dst == other.dst
            && self.src_mask == other.src_mask
            && self.dst_mask == other.dst_mask
            && (self.fw_flags() & !IP_FW_F_MARKABS) == (other.fw_flags() & !IP_FW_F_MARKABS)
            && self.invflags == other.invflags
            && self.proto == other.proto
            && self.redirect_port == other.redirect_port
            && self.src_ports == other.src_ports
            && self.dst_ports == other.dst_ports
            && self.netlink.unwrap_or(0) == other.netlink.unwrap_or(0)
            && self.iface == other.iface
            && self.target == other.target
    }
}

/// Errors of the chain operations. Display strings are ipchains 1.3.9's (userspace checks) or
/// libipfwc's `ipfwc_strerror` texts for the kernel's errno.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ChainError {
    /// ENOENT on a chain operation: the chain does not exist.
    #[error("No chain by that name")]
    NoChain,
    /// ENOENT on append/insert/replace: unknown target chain, or a jump to a built-in chain.
    #[error("No target by that name")]
    NoTarget,
    /// EEXIST from `-N`.
    #[error("Chain already exists")]
    ChainExists,
    /// ENOTEMPTY from `-X`.
    #[error("Chain is not empty")]
    ChainNotEmpty,
    /// EBUSY from `-X`: a built-in chain, or a chain still referenced by rules.
    #[error("Device or resource busy")]
    ChainBusy,
    /// EINVAL/ENOENT: no matching rule, or the rule number is out of range.
    #[error("bad rule (does a matching rule exist in that chain?)")]
    BadRule,
    /// EINVAL: malformed chain label (empty or too long for the kernel).
    #[error("Invalid argument")]
    InvalidLabel,
    /// ipchains: chain name longer than 8 characters.
    #[error("chain name `{0}' too long (must be under 8 chars)")]
    ChainNameTooLong(String),
    /// ipchains: MASQ target in input or output.
    #[error("masquerading not allowed for input and output chains")]
    MasqNotAllowed,
    /// ipchains: REDIRECT target in output or forward.
    #[error("redirect not allowed for output and forward chains")]
    RedirectNotAllowed,
    /// ipchains: REDIRECT with a protocol other than TCP or UDP.
    #[error("redirecting only allowed with TCP or UDP")]
    RedirectProto,
    /// ipchains: `-P` on a user chain.
    #[error("Can only set policy in built-in chains.")]
    PolicyNotBuiltin,
    /// ipchains: `-P forward MASQ` style policy on another chain.
    #[error("`-P MASQ' only valid for `forward' chain.")]
    MasqPolicy,
    /// ipchains: a policy other than ACCEPT/DENY/REJECT/MASQ.
    #[error("Invalid policy `{0}' for -P")]
    InvalidPolicy(String),
    /// A `-C` spec that is not a single concrete packet.
    #[error("{0}")]
    Check(String),
}

/// What a rule does when it matches, resolved to chain indices (`jump` is pre-resolved for speed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Counting rule: continue with the next rule.
    Skip,
    /// `RETURN`.
    Return,
    /// Jump to the chain at this index.
    Jump(u32),
    /// Final verdict.
    Accept,
    Deny,
    Reject,
    Masq,
    Redirect(u16),
}

/// 64-bit packet and byte counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes (sum of IP total lengths).
    pub bytes: u64,
}

impl Counter {
    #[inline]
    pub(crate) fn add(&mut self, len: u32) {
        self.packets = self.packets.wrapping_add(1);
        self.bytes = self.bytes.wrapping_add(u64::from(len));
    }
}

/// The kernel's per-chain `ip_reent`: where to resume when this chain returns (the walk in
/// `matching` reads and writes it; the model only keeps one per chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Calling chain index, `u32::MAX` when the chain is not on the call stack.
    pub(super) prev_chain: u32,
    /// Rule index to resume at in the calling chain.
    pub(super) prev_rule: u32,
}

impl Frame {
    pub(crate) const IDLE: Frame = Frame {
        prev_chain: u32::MAX,
        prev_rule: 0,
    };

    /// Whether the chain is on the walk's call stack.
    pub(super) fn active(self) -> bool {
        self.prev_chain != u32::MAX
    }
}

/// A rule compiled for the walk: the kernel's `struct ip_fw` match fields in 44 bytes, so the hot
/// loop touches neither the `Rule` (heap strings) nor `Ipv4Addr` conversions. Compiled here when a
/// rule is stored; `matching` decides whether a packet matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Matcher {
    pub(super) src: u32,
    pub(super) smsk: u32,
    pub(super) dst: u32,
    pub(super) dmsk: u32,
    pub(super) sp: (u16, u16),
    pub(super) dp: (u16, u16),
    pub(super) proto: u8,
    pub(super) inv: u8,
    pub(super) syn: bool,
    pub(super) frag: bool,
    pub(super) wild: bool,
    pub(super) iface_len: u8,
    pub(super) iface: [u8; IFNAMSIZ],
}

impl Matcher {
    /// Compile a rule; `None` if its interface name is longer than IFNAMSIZ (then the slow path runs).
    pub(crate) fn new(r: &Rule) -> Option<Matcher> {
        let name = r.iface.as_bytes();
        if name.len() > IFNAMSIZ {
            return None;
        }
        let mut iface = [0u8; IFNAMSIZ];
        iface[..name.len()].copy_from_slice(name);
        Some(Matcher {
            src: u32::from(r.src),
            smsk: u32::from(r.src_mask),
            dst: u32::from(r.dst),
            dmsk: u32::from(r.dst_mask),
            sp: (r.src_ports.lo, r.src_ports.hi),
            dp: (r.dst_ports.lo, r.dst_ports.hi),
            proto: r.proto,
            inv: r.invflags,
            syn: r.syn,
            frag: r.fragment,
            wild: r.iface_wildcard || name.is_empty(),
            iface_len: name.len() as u8,
            iface,
        })
    }
}

/// One rule in a chain, with its resolved action.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Compiled match fields (`None` only for over-long interface names).
    pub(crate) matcher: Option<Matcher>,
    pub(crate) action: Action,
    /// The rule logs, rewrites TOS or sets a mark (`ip_fw_domatch` work beyond counting).
    pub(crate) effects: bool,
    /// The rule as given (boxed: the walk only reads `matcher` and `action`).
    pub(crate) rule: Box<Rule>,
}

/// A chain: label, policy (built-ins only), rules, reference count.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub(crate) name: String,
    pub(crate) policy: Option<Policy>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) refcount: u32,
}

/// Counters of one chain, kept apart from the rules so the walk can read rules while counting.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChainStats {
    pub(crate) rules: Vec<Counter>,
    pub(crate) policy: Counter,
}
