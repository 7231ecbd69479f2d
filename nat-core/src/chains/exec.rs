//! Running a parsed ipchains [`Invocation`] against a [`Firewall`] and producing exactly what
//! ipchains 1.3.9 prints on stdout (listings, `-v` echoes, `-C` verdict lines, help, version).
//! Masquerading commands (`-M -L`, `-M -S`) belong to the engine and are handed back.
//! Also [`Firewall::check`], `-C` from text: the one place that joins `syntax` and `matching`.
//! Must not print or log anything itself.

use std::fmt::Write as _;

use thiserror::Error;

use super::matching::CheckVerdict;
use super::model::{ChainError, Firewall, Rule, TestPacket};
use super::render::ListOptions;
use super::syntax::{self, Command, Invocation, ParseError};
use super::tables::ICMP_CODES;

/// ipchains' version line.
pub const PACKAGE_VERSION: &str = "ipchains 1.3.9, 17-Mar-1999";

/// Errors of [`Firewall::check`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CheckError {
    /// The packet description does not parse (ipchains message).
    #[error("{0}")]
    Parse(ParseError),
    /// The chain does not exist.
    #[error("{0}")]
    Chain(ChainError),
}

/// Why an invocation did not run.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ExecError {
    /// The kernel refused (ipchains prints `ipchains: <message>` and exits 1).
    #[error("{0}")]
    Chain(#[from] ChainError),
    /// `-M -L` / `-M -S`: not a chains command; the caller runs it against the masquerading table.
    #[error("masquerading command: handled by the engine")]
    Masquerading,
}

impl Firewall {
    /// Execute one ipchains command; returns the text ipchains prints on stdout (TOS warnings
    /// first). On error some changes may already be made, as with ipchains (e.g. the first half
    /// of a `-b` pair, or `-X` without a name).
    pub fn execute(&mut self, inv: &Invocation) -> Result<String, ExecError> {
        let mut out = String::new();
        for w in &inv.warnings {
            out.push_str(w);
            out.push('\n');
        }
        let v = inv.verbose;
        let echo = |out: &mut String, r: &Rule| {
            if v {
                out.push_str(&r.verbose_line());
            }
        };
        match &inv.command {
            Command::Append { chain, spec } => {
                for r in spec.expand() {
                    echo(&mut out, &r);
                    self.append(chain, &r)?;
                }
            }
            Command::Insert { chain, num, spec } => {
                for r in spec.expand() {
                    echo(&mut out, &r);
                    self.insert(chain, *num, &r)?;
                }
            }
            Command::Replace { chain, num, spec } => {
                echo(&mut out, &spec.rule);
                self.replace(chain, *num, &spec.rule)?;
            }
            Command::Delete { chain, spec } => {
                for r in spec.expand() {
                    echo(&mut out, &r);
                    self.delete_rule(chain, &r)?;
                }
            }
            Command::DeleteNum { chain, num } => self.delete_num(chain, *num)?,
            Command::Check { chain, spec } => {
                for r in spec.expand() {
                    echo(&mut out, &r);
                    let verdict: CheckVerdict = self.check_rule(chain, &r)?;
                    out.push_str(&verdict.line());
                    out.push('\n');
                }
            }
            Command::List { chain, zero } => {
                let opts = ListOptions {
                    numeric: inv.numeric,
                    verbose: inv.verbose,
                    exact: inv.exact,
                    line_numbers: inv.line_numbers,
                };
                if *zero {
                    out.push_str(&self.list_and_zero(opts)?);
                } else {
                    out.push_str(&self.list(chain.as_deref(), opts)?);
                }
            }
            Command::Flush { chain } | Command::Zero { chain } | Command::DeleteChain { chain } => {
                let (verb, user_only) = match inv.command {
                    Command::Flush { .. } => ("Flushing", false),
                    Command::Zero { .. } => ("Zeroing", false),
                    _ => ("Deleting", true),
                };
                if v {
                    let names: Vec<String> = match chain {
                        Some(c) => vec![c.clone()],
                        None => self
                            .chain_names()
                            .into_iter()
                            .skip(if user_only { 3 } else { 0 })
                            .collect(),
                    };
                    for n in names {
                        let _ = writeln!(out, "{verb} chain `{n}'");
                    }
                }
                match inv.command {
                    Command::Flush { .. } => self.flush(chain.as_deref())?,
                    Command::Zero { .. } => self.zero(chain.as_deref())?,
                    _ => self.delete_chain(chain.as_deref())?,
                }
            }
            Command::NewChain { chain } => self.new_chain(chain)?,
            Command::SetPolicy { chain, policy } => self.set_policy(chain, policy)?,
            Command::MasqList | Command::MasqSetTimeouts { .. } => {
                return Err(ExecError::Masquerading)
            }
            Command::Help { icmp: true } => out.push_str(&icmp_help()),
            Command::Help { icmp: false } => out.push_str(&help()),
            Command::Version => {
                out.push_str(PACKAGE_VERSION);
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// `-C` on a parsed single-packet rule.
    fn check_rule(&self, chain: &str, r: &Rule) -> Result<CheckVerdict, ChainError> {
        self.check_packet(chain, &TestPacket::from_rule(r).info())
    }

    /// `-C chain spec`: parse an ipchains packet description (`-p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80
    /// -i eth0 [-y] [-f] [-b]`) with ipchains' `-C` rules and return one verdict per packet (two
    /// with `-b`).
    pub fn check(&self, chain: &str, spec: &str) -> Result<Vec<CheckVerdict>, CheckError> {
        let req = syntax::parse_check(chain, spec).map_err(CheckError::Parse)?;
        self.check_request(&req).map_err(CheckError::Chain)
    }
}

/// `ipchains -h icmp`.
pub fn icmp_help() -> String {
    let mut s = format!("{PACKAGE_VERSION}\n\nValid ICMP Types:");
    for (i, c) in ICMP_CODES.iter().enumerate() {
        match i.checked_sub(1).map(|j| ICMP_CODES[j]) {
            Some(p) if p.ty == c.ty => {
                if p.code_min == c.code_min && p.code_max == c.code_max {
                    let _ = write!(s, " ({})", c.name);
                } else {
                    let _ = write!(s, "\n   {}", c.name);
                }
            }
            _ => {
                let _ = write!(s, "\n{}", c.name);
            }
        }
    }
    s.push('\n');
    s
}

/// `ipchains -h`.
pub fn help() -> String {
    let p = "ipchains";
    format!(
        "{PACKAGE_VERSION}\n\n\
Usage: {p} -[ADC] chain rule-specification [options]\n       \
{p} -[RI] chain rulenum rule-specification [options]\n       \
{p} -D chain rulenum [options]\n       \
{p} -[LFZNX] [chain] [options]\n       \
{p} -P chain target [options]\n       \
{p} -M [ -L | -S ] [options]\n       \
{p} -h [icmp] (print this help information, or ICMP list)\n\n\
Commands:\n\
Either long or short options are allowed.\n  \
--add     -A chain\t\tAppend to chain\n  \
--delete  -D chain\t\tDelete matching rule from chain\n  \
--delete  -D chain rulenum\n\t\t\t\tDelete rule rulenum (1 = first) from chain\n  \
--insert  -I chain [rulenum]\n\t\t\t\tInsert in chain as rulenum (default 1=first)\n  \
--replace -R chain rulenum\n\t\t\t\tReplace rule rulenum (1 = first) in chain\n  \
--list    -L [chain]\t\tList the rules in a chain or all chains\n  \
--flush   -F [chain]\t\tDelete all rules in  chain or all chains\n  \
--zero    -Z [chain]\t\tZero counters in chain or all chains\n  \
--check   -C chain\t\tTest this packet on chain\n  \
--new     -N chain\t\tCreate a new user-defined chain\n  \
--delete-chain\n            -X chain\t\tDelete a user-defined chain\n  \
--policy  -P chain target\n\t\t\t\tChange policy on chain to target\n  \
--masquerade -M -L\t\tList current masqerading connections\n  \
--set\t-M -S tcp tcpfin udp\n\t\t\t\tSet masquerading timeout values\n\n\
Options:\n  \
--bidirectional -b\t\tinsert two rules: one with -s & -d reversed\n  \
--proto\t-p [!] proto\tprotocol: by number or name, eg. `tcp'\n  \
--source\t-s [!] address[/mask] [!] [port[:port]]\n\t\t\t\tsource specification\n  \
--source-port [!] [port[:port]]\n\t\t\t\tsource port specification\n  \
--destination -d [!] address[/mask] [!] [port[:port]]\n\t\t\t\tdestination specification\n  \
--destination-port [!] [port[:port]]\n\t\t\t\tdestination port specification\n  \
--icmp-type [!] typename\tspecify ICMP type\n  \
--interface\t-i [!] name[+]\n\t\t\t\tnetwork interface name ([+] for wildcard)\n  \
--jump\t-j target [port]\n\t\t\t\ttarget for rule ([port] for REDIRECT)\n  \
--mark\t-m [+-]mark\tnumber to mark on matching packet\n  \
--numeric\t-n\t\tnumeric output of addresses and ports\n  \
--log\t\t-l\t\tturn on kernel logging for matching packets\n  \
--output\t-o [maxsize]\toutput matching packet to netlink device\n  \
--TOS\t\t-t and xor\tand/xor masks for TOS field\n  \
--verbose\t-v\t\tverbose mode\n  \
--exact\t-x\t\texpand numbers (display exact values)\n\
[!] --fragment\t-f\t\tmatch second or further fragments only\n\
[!] --syn\t-y\t\tmatch TCP packets only when SYN set\n\
[!] --version\t-V\t\tprint package version.\n"
    )
}
