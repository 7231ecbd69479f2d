//! The packet walk: the kernel's `ip_rule_match` and `ip_fw_check` (2.2 `ip_fw.c`), used by
//! [`Firewall::evaluate`] (counters updated, no allocation) and by the `-C` check (no counters).
//! Must not parse packets (the engine fills [`PacketInfo`]) nor command lines (`syntax` turns a
//! `-C` spec into a [`CheckRequest`]), and must not change rules.

use std::fmt;

use super::model::{
    Action, BuiltinChain, Chain, ChainError, ChainStats, CheckRequest, Entry, Firewall, Frame,
    Matcher, PacketInfo, Policy, Rule, Target, Verdict, IP_FW_INV_DSTIP, IP_FW_INV_DSTPT,
    IP_FW_INV_FRAG, IP_FW_INV_PROTO, IP_FW_INV_SRCIP, IP_FW_INV_SRCPT, IP_FW_INV_SYN,
    IP_FW_INV_VIA, PROTO_ICMP, PROTO_TCP, PROTO_UDP,
};

/// Raw outcome of a walk (the kernel's FW_* codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Accept,
    Deny,
    Reject,
    Masq,
    Redirect(u16),
    /// `FW_SKIP+1` while testing: a loop.
    Loop,
    /// `FW_SKIP`: fell off a user chain that was the starting point (only from `-C`).
    PassedThrough,
}

/// The `-C` verdict, mapped from the kernel's errno as libipfwc does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckVerdict {
    /// 0: accepted.
    Accepted,
    /// ECONNRESET: masqueraded.
    Masqueraded,
    /// ETIMEDOUT: denied.
    Denied,
    /// ECONNREFUSED: rejected.
    Rejected,
    /// ECONNABORTED: redirected.
    Redirected,
    /// ELOOP: caught in a loop.
    Loop,
    /// ENFILE: passed through a user chain without a verdict.
    PassedThrough,
}

impl CheckVerdict {
    /// The classic verdict text, e.g. `accepted`, `caught in a loop`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckVerdict::Accepted => "accepted",
            CheckVerdict::Masqueraded => "masqueraded",
            CheckVerdict::Denied => "denied",
            CheckVerdict::Rejected => "rejected",
            CheckVerdict::Redirected => "redirected",
            CheckVerdict::Loop => "caught in a loop",
            CheckVerdict::PassedThrough => "passed through chain",
        }
    }

    /// The line ipchains prints, e.g. `packet accepted`.
    pub fn line(self) -> String {
        format!("packet {}", self.as_str())
    }
}

impl fmt::Display for CheckVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Matcher {
    /// `ip_rule_match` (the conditions are a pure conjunction, so their order is free).
    #[inline]
    pub(crate) fn matches(&self, p: &PacketInfo<'_>) -> bool {
        let inv = |flag: u8| self.inv & flag != 0;
        if ((u32::from(p.src) & self.smsk) != self.src) ^ inv(IP_FW_INV_SRCIP)
            || ((u32::from(p.dst) & self.dmsk) != self.dst) ^ inv(IP_FW_INV_DSTIP)
        {
            return false;
        }
        let name = &self.iface[..usize::from(self.iface_len)];
        let one = |pi: &[u8]| {
            if self.wild {
                pi.starts_with(name)
            } else {
                pi == name
            }
        };
        let if_mismatch =
            !(one(p.iface.as_bytes()) || p.iface_aliases.iter().any(|a| one(a.as_bytes())));
        if if_mismatch ^ inv(IP_FW_INV_VIA) {
            return false;
        }
        rest_matches(
            self.frag, self.syn, self.proto, self.sp, self.dp, self.inv, p,
        )
    }
}

/// `ip_rule_match` for rules that do not compile (over-long interface names): the slow path.
pub(crate) fn rule_matches(r: &Rule, p: &PacketInfo<'_>) -> bool {
    if let Some(m) = Matcher::new(r) {
        return m.matches(p);
    }
    let inv = |flag: u8| r.invflags & flag != 0;
    if ((u32::from(p.src) & u32::from(r.src_mask)) != u32::from(r.src)) ^ inv(IP_FW_INV_SRCIP)
        || ((u32::from(p.dst) & u32::from(r.dst_mask)) != u32::from(r.dst)) ^ inv(IP_FW_INV_DSTIP)
    {
        return false;
    }
    let one = |pi: &str| {
        if r.iface_wildcard {
            pi.as_bytes().starts_with(r.iface.as_bytes())
        } else {
            pi == r.iface
        }
    };
    let if_mismatch = !(one(p.iface) || p.iface_aliases.iter().any(|a| one(a)));
    if if_mismatch ^ inv(IP_FW_INV_VIA) {
        return false;
    }
    let sp = (r.src_ports.lo, r.src_ports.hi);
    let dp = (r.dst_ports.lo, r.dst_ports.hi);
    rest_matches(r.fragment, r.syn, r.proto, sp, dp, r.invflags, p)
}

#[inline]
fn rest_matches(
    rfrag: bool,
    rsyn: bool,
    proto: u8,
    sp: (u16, u16),
    dp: (u16, u16),
    invf: u8,
    p: &PacketInfo<'_>,
) -> bool {
    let inv = |flag: u8| invf & flag != 0;
    let isfrag = p.fragment;
    // "If we have a fragment rule but the packet is not a fragment then we return zero".
    if (rfrag && !isfrag) ^ inv(IP_FW_INV_FRAG) {
        return false;
    }
    // "Fragment NEVER passes a SYN test, even an inverted one."
    if ((rsyn && !p.syn) ^ inv(IP_FW_INV_SYN)) || (isfrag && rsyn) {
        return false;
    }
    if proto != 0 {
        if (p.proto != proto) ^ inv(IP_FW_INV_PROTO) {
            return false;
        }
        let (sport, dport) = match p.proto {
            PROTO_TCP | PROTO_UDP | PROTO_ICMP => (p.sport, p.dport),
            _ => (0xFFFF, 0xFFFF),
        };
        let port_match = |(lo, hi): (u16, u16), port: u16, invert: bool| {
            if isfrag {
                // "Fragments fail ANY port test" unless the range is everything.
                lo == 0 && hi == 0xFFFF
            } else {
                (port >= lo && port <= hi) ^ invert
            }
        };
        if !port_match(sp, sport, inv(IP_FW_INV_SRCPT))
            || !port_match(dp, dport, inv(IP_FW_INV_DSTPT))
        {
            return false;
        }
    }
    true
}

/// Clear the return frames from `chain` back to the start (the kernel's `cleanup`).
fn cleanup(frames: &mut [Frame], mut chain: usize) {
    while let Some(f) = frames.get_mut(chain) {
        if !f.active() {
            break;
        }
        let prev = f.prev_chain as usize;
        *f = Frame::IDLE;
        chain = prev;
    }
}

/// `ip_fw_check`: walk from `start`; counters are updated when `stats` is given.
fn walk<H: FnMut(usize, usize, &Entry)>(
    chains: &[Chain],
    mut stats: Option<&mut [ChainStats]>,
    frames: &mut [Frame],
    start: usize,
    p: &PacketInfo<'_>,
    on_effects: &mut H,
) -> Outcome {
    let mut chain = start;
    let mut ri = 0usize;
    loop {
        let entries = &chains[chain].entries;
        let mut hit = None;
        while ri < entries.len() {
            let e = &entries[ri];
            let hit_now = match &e.matcher {
                Some(m) => m.matches(p),
                None => rule_matches(&e.rule, p),
            };
            if hit_now {
                if let Some(s) = stats.as_deref_mut() {
                    s[chain].rules[ri].add(p.len);
                    // ip_fw_domatch: log, TOS, mark (not when testing).
                    if e.effects {
                        on_effects(chain, ri, e);
                    }
                }
                hit = Some(e.action);
                break;
            }
            ri += 1;
        }
        let fall_off = match hit {
            Some(Action::Jump(t)) => {
                let t = t as usize;
                if frames[t].active() {
                    // "Loop detected at `<chain>'": drop (or ELOOP when testing).
                    cleanup(frames, chain);
                    return Outcome::Loop;
                }
                frames[t] = Frame {
                    prev_chain: chain as u32,
                    prev_rule: (ri + 1) as u32,
                };
                chain = t;
                ri = 0;
                false
            }
            Some(Action::Skip) => {
                ri += 1;
                false
            }
            Some(Action::Return) | None => true,
            Some(action) => {
                cleanup(frames, chain);
                return match action {
                    Action::Accept => Outcome::Accept,
                    Action::Deny => Outcome::Deny,
                    Action::Reject => Outcome::Reject,
                    Action::Masq => Outcome::Masq,
                    Action::Redirect(port) => Outcome::Redirect(port),
                    // Handled above; kept total without a panic path.
                    Action::Skip | Action::Return | Action::Jump(_) => Outcome::Deny,
                };
            }
        };
        if fall_off {
            let f = frames[chain];
            if f.active() {
                frames[chain] = Frame::IDLE;
                chain = f.prev_chain as usize;
                ri = f.prev_rule as usize;
            } else {
                return match chains[chain].policy {
                    Some(pol) => {
                        if let Some(s) = stats.as_deref_mut() {
                            s[chain].policy.add(p.len);
                        }
                        match pol {
                            Policy::Accept => Outcome::Accept,
                            Policy::Deny => Outcome::Deny,
                            Policy::Reject => Outcome::Reject,
                            Policy::Masq => Outcome::Masq,
                        }
                    }
                    None => Outcome::PassedThrough,
                };
            }
        }
    }
}

impl Firewall {
    /// The verdict of built-in `chain` when it holds no rules: its policy, counted (`len`
    /// bytes) exactly as [`Firewall::evaluate`] would count it. `None` when the chain has rules
    /// (evaluate it then). The engine's fast path: no packet summary is built for a chain that
    /// cannot look at it.
    #[inline]
    pub fn evaluate_policy_only(&mut self, chain: BuiltinChain, len: u32) -> Option<Verdict> {
        let i = chain.index();
        let c = self.chains.get(i)?;
        if !c.entries.is_empty() {
            return None;
        }
        let out = match c.policy? {
            Policy::Accept => Outcome::Accept,
            Policy::Deny => Outcome::Deny,
            Policy::Reject => Outcome::Reject,
            Policy::Masq => Outcome::Masq,
        };
        self.stats.get_mut(i)?.policy.add(len);
        Some(self.verdict(chain, out))
    }

    /// Run a packet through a built-in chain, updating rule and policy counters. Allocation-free.
    /// A run-time loop drops the packet (`Deny`) and is counted ([`Firewall::loops_detected`]);
    /// MASQ reached from `input` or `output` acts like ACCEPT, as in 2.2.
    pub fn evaluate(&mut self, chain: BuiltinChain, pkt: &PacketInfo<'_>) -> Verdict {
        let start = chain.index();
        let out = walk(
            &self.chains,
            Some(&mut self.stats),
            &mut self.frames,
            start,
            pkt,
            &mut |_, _, _| {},
        );
        self.verdict(chain, out)
    }

    fn verdict(&mut self, chain: BuiltinChain, out: Outcome) -> Verdict {
        match out {
            Outcome::Accept | Outcome::PassedThrough => Verdict::Accept,
            Outcome::Deny => Verdict::Deny,
            Outcome::Loop => {
                self.loops += 1;
                Verdict::Deny
            }
            Outcome::Reject => Verdict::Reject,
            Outcome::Masq => match chain {
                BuiltinChain::Forward => Verdict::Masq,
                BuiltinChain::Input | BuiltinChain::Output => Verdict::Accept,
            },
            Outcome::Redirect(port) => Verdict::Redirect { port },
        }
    }

    /// `-C chain` on an already-built packet: run it without touching counters.
    pub fn check_packet(
        &self,
        chain: &str,
        pkt: &PacketInfo<'_>,
    ) -> Result<CheckVerdict, ChainError> {
        let start = self.find(chain).ok_or(ChainError::NoChain)?;
        let mut frames = vec![Frame::IDLE; self.chains.len()];
        Ok(
            match walk(
                &self.chains,
                None,
                &mut frames,
                start,
                pkt,
                &mut |_, _, _| {},
            ) {
                Outcome::Accept => CheckVerdict::Accepted,
                Outcome::Deny => CheckVerdict::Denied,
                Outcome::Reject => CheckVerdict::Rejected,
                Outcome::Masq => CheckVerdict::Masqueraded,
                Outcome::Redirect(_) => CheckVerdict::Redirected,
                Outcome::Loop => CheckVerdict::Loop,
                Outcome::PassedThrough => CheckVerdict::PassedThrough,
            },
        )
    }

    /// [`Firewall::evaluate`] plus the rules' side effects, as the kernel's `ip_fw_domatch` applies
    /// them on every matching rule: TOS `(tos & and) ^ xor`, fwmark (absolute or added, starting
    /// from `mark`), and one [`LogRecord`] per matching `-l` rule (format it with [`log_line`]).
    pub fn evaluate_with(
        &mut self,
        chain: BuiltinChain,
        pkt: &PacketInfo<'_>,
        mark: u32,
        on_log: &mut dyn FnMut(&LogRecord<'_>),
    ) -> (Verdict, Effects) {
        let mut fx = Effects { tos: pkt.tos, mark };
        let chains = &self.chains;
        let mut hook = |c: usize, r: usize, e: &Entry| {
            let rule = &e.rule;
            if rule.log {
                on_log(&LogRecord {
                    chain: &chains[c].name,
                    target: rule.target.label(),
                    redirect_port: (rule.target == Target::Redirect).then_some(rule.redirect_port),
                    rule_number: r + 1,
                });
            }
            fx.tos = (fx.tos & rule.tos_and) ^ rule.tos_xor;
            fx.mark = if rule.mark_absolute {
                rule.mark
            } else {
                fx.mark.wrapping_add(rule.mark)
            };
        };
        let out = walk(
            chains,
            Some(&mut self.stats),
            &mut self.frames,
            chain.index(),
            pkt,
            &mut hook,
        );
        (self.verdict(chain, out), fx)
    }

    /// `-C`: run each test packet of a parsed request (see [`super::syntax::parse_check`]) from
    /// its chain without touching counters; one verdict per packet.
    pub fn check_request(&self, req: &CheckRequest) -> Result<Vec<CheckVerdict>, ChainError> {
        req.packets
            .iter()
            .map(|p| self.check_packet(&req.chain, &p.info()))
            .collect()
    }
}

/// Packet changes requested by the matching rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effects {
    /// The TOS byte after `-t and xor` rewrites (the caller fixes the IP checksum if it changed).
    pub tos: u8,
    /// The fwmark after `-m` rules.
    pub mark: u32,
}

/// A `-l` rule matched: what the kernel's "Packet log:" line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord<'a> {
    /// Chain label.
    pub chain: &'a str,
    /// Target label (`-` for a counting rule).
    pub target: &'a str,
    /// REDIRECT's port (printed after the target).
    pub redirect_port: Option<u16>,
    /// 1-based rule number in the chain.
    pub rule_number: usize,
}

/// The packet header fields the kernel's log line prints besides [`PacketInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHeader<'a> {
    /// IP identification.
    pub ident: u16,
    /// Raw flags + fragment offset word.
    pub frag_word: u16,
    /// TTL.
    pub ttl: u8,
    /// IP options bytes (printed as 32-bit words).
    pub options: &'a [u8],
}

/// The kernel's log line (2.2 `dump_packet`), without the syslog level:
/// `Packet log: input DENY eth0 PROTO=6 1.2.3.4:1025 5.6.7.8:80 L=60 S=0x00 I=1 F=0x4000 T=64 SYN (#3)`.
pub fn log_line(rec: &LogRecord<'_>, pkt: &PacketInfo<'_>, hdr: &LogHeader<'_>) -> String {
    let mut s = format!("Packet log: {} {} ", rec.chain, rec.target);
    if let Some(p) = rec.redirect_port {
        s.push_str(&format!("{p} "));
    }
    s.push_str(&format!(
        "{} PROTO={} {}:{} {}:{} L={} S=0x{:02X} I={} F=0x{:04X} T={}",
        pkt.iface,
        pkt.proto,
        pkt.src,
        pkt.sport,
        pkt.dst,
        pkt.dport,
        pkt.len,
        pkt.tos,
        hdr.ident,
        hdr.frag_word,
        hdr.ttl
    ));
    for w in hdr.options.chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        // The kernel prints each option word as a host-order (little-endian) u32.
        s.push_str(&format!(" O=0x{:08X}", u32::from_le_bytes(b)));
    }
    s.push_str(&format!(
        " {}(#{})",
        if pkt.syn { "SYN " } else { "" },
        rec.rule_number
    ));
    s
}
