//! Owned structured views of the chains for the gRPC API (mirrors `masqdial.v1.Chain` / `Rule`).
//! Must not be used on the packet path.

use super::model::{
    ChainError, Firewall, PortRange, Rule, Target, IP_FW_INV_DSTIP, IP_FW_INV_DSTPT,
    IP_FW_INV_PROTO, IP_FW_INV_SRCIP, IP_FW_INV_SRCPT, IP_FW_INV_VIA,
};
use super::print::addr_mask;

/// One rule, structured and as ipchains would print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSnapshot {
    /// 1-based position in its chain.
    pub number: u32,
    /// Canonical spec (`ipchains -A <chain> <spec>`).
    pub spec: String,
    /// Target label; "" for a counting rule.
    pub target: String,
    /// "all", "tcp", "udp", "icmp" or a number, "!" prefix when inverted.
    pub protocol: String,
    /// "addr/bits", "!" prefix when inverted.
    pub source: String,
    /// "addr/bits", "!" prefix when inverted.
    pub destination: String,
    /// "lo:hi" (or "p"), "!" prefix when inverted, "" for any.
    pub source_ports: String,
    /// Same for the destination (ICMP: code).
    pub destination_ports: String,
    /// Interface ("ppp+" for a wildcard, "!" prefix when inverted), "" for any.
    pub interface: String,
    /// The `-L` opt column, e.g. "----l-".
    pub options: String,
    /// REDIRECT port, 0 = same.
    pub redirect_port: u32,
    /// Matched packets.
    pub packets: u64,
    /// Matched bytes.
    pub bytes: u64,
    /// `-l`.
    pub log: bool,
    /// TOS AND mask.
    pub tos_and: u32,
    /// TOS XOR mask.
    pub tos_xor: u32,
    /// Mark.
    pub mark: u32,
}

/// One chain with its rules and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSnapshot {
    /// Label.
    pub name: String,
    /// "ACCEPT", "DENY", "REJECT", "MASQ" for built-ins; "" for user chains.
    pub policy: String,
    /// Built-in chain.
    pub builtin: bool,
    /// Reference count (rules jumping here; built-ins: 1).
    pub references: u32,
    /// Rules in order.
    pub rules: Vec<RuleSnapshot>,
    /// Packets that fell through to the policy.
    pub policy_packets: u64,
    /// Bytes that fell through to the policy.
    pub policy_bytes: u64,
}

fn bang(b: bool) -> &'static str {
    if b {
        "!"
    } else {
        ""
    }
}

fn ports(r: PortRange, inv: bool) -> String {
    if r.is_any() && !inv {
        String::new()
    } else if r.lo == r.hi {
        format!("{}{}", bang(inv), r.lo)
    } else {
        format!("{}{}:{}", bang(inv), r.lo, r.hi)
    }
}

fn rule_snapshot(number: usize, r: &Rule, packets: u64, bytes: u64) -> RuleSnapshot {
    let protocol = match r.proto {
        0 => "all".to_string(),
        1 => "icmp".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        n => n.to_string(),
    };
    let iface = if r.iface.is_empty() && !r.inv(IP_FW_INV_VIA) {
        String::new()
    } else {
        format!(
            "{}{}{}",
            bang(r.inv(IP_FW_INV_VIA)),
            r.iface,
            if r.iface_wildcard { "+" } else { "" }
        )
    };
    let mut options = String::new();
    options.push(if r.inv(super::model::IP_FW_INV_SYN) {
        '!'
    } else {
        '-'
    });
    options.push(if r.syn { 'y' } else { '-' });
    options.push(if r.inv(super::model::IP_FW_INV_FRAG) {
        '!'
    } else {
        '-'
    });
    options.push(if r.fragment { 'f' } else { '-' });
    options.push(if r.log { 'l' } else { '-' });
    options.push(if r.netlink.is_some() { 'o' } else { '-' });
    RuleSnapshot {
        number: number as u32,
        spec: r.to_spec(),
        target: if r.target == Target::None {
            String::new()
        } else {
            r.target.label().to_string()
        },
        protocol: format!("{}{}", bang(r.inv(IP_FW_INV_PROTO)), protocol),
        source: format!(
            "{}{}",
            bang(r.inv(IP_FW_INV_SRCIP)),
            addr_mask(r.src, r.src_mask)
        ),
        destination: format!(
            "{}{}",
            bang(r.inv(IP_FW_INV_DSTIP)),
            addr_mask(r.dst, r.dst_mask)
        ),
        source_ports: ports(r.src_ports, r.inv(IP_FW_INV_SRCPT)),
        destination_ports: ports(r.dst_ports, r.inv(IP_FW_INV_DSTPT)),
        interface: iface,
        options,
        redirect_port: u32::from(r.redirect_port),
        packets,
        bytes,
        log: r.log,
        tos_and: u32::from(r.tos_and),
        tos_xor: u32::from(r.tos_xor),
        mark: r.mark,
    }
}

impl Firewall {
    /// Structured snapshots of one chain (`Some(name)`) or all chains in kernel order.
    pub fn snapshot(&self, chain: Option<&str>) -> Result<Vec<ChainSnapshot>, ChainError> {
        let mut out = Vec::new();
        for (ci, c) in self.chains.iter().enumerate() {
            if chain.is_some_and(|n| n != c.name) {
                continue;
            }
            let st = &self.stats[ci];
            out.push(ChainSnapshot {
                name: c.name.clone(),
                policy: c.policy.map_or(String::new(), |p| p.label().to_string()),
                builtin: ci < 3,
                references: c.refcount,
                rules: c
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        rule_snapshot(i + 1, &e.rule, st.rules[i].packets, st.rules[i].bytes)
                    })
                    .collect(),
                policy_packets: st.policy.packets,
                policy_bytes: st.policy.bytes,
            });
        }
        if chain.is_some() && out.is_empty() {
            return Err(ChainError::NoChain);
        }
        Ok(out)
    }
}
