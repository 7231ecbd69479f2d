//! ipchains firewall chains (Linux 2.2 `ip_fw.c` semantics): rule model, matching, the ipchains 1.3
//! command-line syntax, `-L` / `/proc` rendering, ipchains-save text and structured snapshots.
//! Owns the rules and their counters; must not touch packets' bytes, the masquerade table, I/O or clocks.
//!
//! Layout:
//! - [`model`]: [`Rule`], [`Target`], [`Firewall`] and its operations (`-A -I -R -D -F -Z -N -X -P`).
//! - `matching`: the kernel's `ip_rule_match` / `ip_fw_check` walk ([`Firewall::evaluate`], `-C`).
//! - [`syntax`]: the ipchains 1.3.9 command-line parser (getopt emulation, every error message).
//! - `print`: [`Rule::to_spec`], the canonical spec that parses back to the same rule.
//! - `render`: `ipchains -L [-n] [-v] [-x] [--line-numbers]`, `/proc/net/ip_fwchains`, `ip_fwnames`.
//! - `save`: ipchains-save text and atomic restore.
//! - [`snapshot`]: owned structured views for the gRPC API.
//! - `exec`: [`Firewall::execute`] runs a parsed command line and returns ipchains' stdout text.

mod exec;
mod matching;
pub mod model;
mod print;
mod render;
mod save;
pub mod snapshot;
pub mod syntax;
mod tables;

use std::net::Ipv4Addr;

pub use exec::{help, icmp_help, ExecError, PACKAGE_VERSION};
pub use matching::{log_line, CheckError, CheckVerdict, Effects, LogHeader, LogRecord};
pub use model::{ChainError, Counter, Firewall, Policy, PortRange, Rule, Target};
pub use render::ListOptions;
pub use save::RestoreError;
pub use snapshot::{ChainSnapshot, RuleSnapshot};
pub use syntax::{
    parse_args, parse_command, parse_rule, Command, Invocation, ParseError, RuleSpec,
};

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

#[cfg(test)]
mod tests;
