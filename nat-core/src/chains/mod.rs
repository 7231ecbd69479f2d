//! ipchains firewall chains (Linux 2.2 `ip_fw.c` semantics): rule model, matching, the ipchains 1.3
//! command-line syntax, `-L` / `/proc` rendering, ipchains-save text and structured snapshots.
//! Owns the rules and their counters; must not touch packets' bytes, the masquerade table, I/O or clocks.
//!
//! Layout (dependencies go one way: `model` <- `syntax`, `matching`, `print`, `render`, `save`,
//! `snapshot` <- `exec`; `model` depends on none of them):
//! - [`model`]: [`Rule`], [`Target`], [`Firewall`] and its operations (`-A -I -R -D -F -Z -N -X -P`),
//!   what the rules look at ([`PacketInfo`], `-C`'s [`TestPacket`]) and the compiled match fields.
//! - `matching`: the kernel's `ip_rule_match` / `ip_fw_check` walk ([`Firewall::evaluate`],
//!   [`Firewall::check_request`]).
//! - [`syntax`]: the ipchains 1.3.9 command-line parser (getopt emulation, every error message),
//!   including `-C` packet descriptions ([`parse_check`]).
//! - `print`: [`Rule::to_spec`], the canonical spec that parses back to the same rule.
//! - `render`: `ipchains -L [-n] [-v] [-x] [--line-numbers]`, `/proc/net/ip_fwchains`, `ip_fwnames`.
//! - `save`: ipchains-save text and atomic restore.
//! - [`snapshot`]: owned structured views for the gRPC API.
//! - `exec`: [`Firewall::execute`] runs a parsed command line and returns ipchains' stdout text;
//!   [`Firewall::check`] is `-C` from text (syntax then matching).

mod exec;
mod matching;
pub mod model;
mod print;
mod render;
mod save;
pub mod snapshot;
pub mod syntax;
mod tables;
pub use tables::port_to_service;

pub use exec::{help, icmp_help, CheckError, ExecError, PACKAGE_VERSION};
pub use matching::{log_line, CheckVerdict, Effects, LogHeader, LogRecord};
pub use model::{
    BuiltinChain, ChainError, CheckRequest, Counter, Firewall, PacketInfo, Policy, PortRange, Rule,
    Target, TestPacket, Verdict,
};
pub use render::ListOptions;
pub use save::RestoreError;
pub use snapshot::{ChainSnapshot, RuleSnapshot};
pub use syntax::{
    parse_args, parse_check, parse_command, parse_command_with, parse_rule, Command, Invocation,
    NumericOnly, ParseError, Resolver, RuleSpec,
};

#[cfg(test)]
mod tests;
