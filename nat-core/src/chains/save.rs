//! ipchains-save text (`:chain POLICY` lines, then `-A chain spec` lines) and atomic restore: the
//! whole text is parsed into a fresh [`Firewall`] first and only then swapped in. Must not keep
//! counters across a restore nor touch anything but the chains.

use std::fmt::Write as _;

use thiserror::Error;

use super::model::{ChainError, Firewall};
use super::syntax::{parse_command, Command, ParseError};

/// A restore failure, naming the 1-based line; the current ruleset is left untouched.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RestoreError {
    /// A line that is neither `:chain policy`, `-A chain spec`, blank nor a `#` comment.
    #[error("line {line}: unrecognised line `{text}'")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A rule spec ipchains would refuse.
    #[error("line {line}: {error}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// ipchains' message.
        error: ParseError,
    },
    /// A chain operation the kernel would refuse (unknown target chain, bad policy...).
    #[error("line {line}: {error}")]
    Chain {
        /// 1-based line number.
        line: usize,
        /// The kernel's error.
        error: ChainError,
    },
}

impl Firewall {
    /// The whole ruleset as ipchains-save text: `:input ACCEPT` … `:mychain -` then `-A chain spec`.
    pub fn save(&self) -> String {
        let mut out = String::new();
        for c in &self.chains {
            let _ = writeln!(out, ":{} {}", c.name, c.policy.map_or("-", |p| p.label()));
        }
        for c in &self.chains {
            for e in &c.entries {
                let spec = e.rule.to_spec();
                if spec.is_empty() {
                    let _ = writeln!(out, "-A {}", c.name);
                } else {
                    let _ = writeln!(out, "-A {} {}", c.name, spec);
                }
            }
        }
        out
    }

    /// Parse ipchains-save text into a new firewall (all chains declared by `:` lines exist before
    /// any rule is added, so rules may jump to chains declared later).
    pub fn from_saved(text: &str) -> Result<Firewall, RestoreError> {
        let mut fw = Firewall::new();
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .collect();
        for &(line, l) in &lines {
            if let Some(decl) = l.strip_prefix(':') {
                let mut it = decl.split_whitespace();
                let (Some(name), policy, None) = (it.next(), it.next(), it.next()) else {
                    return Err(RestoreError::Syntax {
                        line,
                        text: l.to_string(),
                    });
                };
                let chain_err = |error| RestoreError::Chain { line, error };
                if fw.find(name).is_none() {
                    fw.new_chain(name).map_err(chain_err)?;
                }
                match policy {
                    None | Some("-") => {
                        if fw.policy(name).map_err(chain_err)?.is_some() && policy.is_some() {
                            return Err(chain_err(ChainError::InvalidPolicy("-".into())));
                        }
                    }
                    Some(p) => fw.set_policy(name, p).map_err(chain_err)?,
                }
            } else if !l.starts_with("-A") && !l.starts_with("--append") {
                return Err(RestoreError::Syntax {
                    line,
                    text: l.to_string(),
                });
            }
        }
        for &(line, l) in &lines {
            if l.starts_with(':') {
                continue;
            }
            let args: Vec<&str> = l.split_whitespace().collect();
            let inv = parse_command(&args).map_err(|error| RestoreError::Parse { line, error })?;
            let Command::Append { chain, spec } = inv.command else {
                return Err(RestoreError::Syntax {
                    line,
                    text: l.to_string(),
                });
            };
            for r in spec.expand() {
                fw.append(&chain, &r)
                    .map_err(|error| RestoreError::Chain { line, error })?;
            }
        }
        Ok(fw)
    }

    /// Replace the whole ruleset with `text` atomically: on error nothing changes.
    /// Returns (chains, rules) of the new ruleset.
    pub fn restore(&mut self, text: &str) -> Result<(usize, usize), RestoreError> {
        let fw = Firewall::from_saved(text)?;
        let counts = (fw.chains.len(), fw.rule_count());
        let loops = self.loops;
        *self = fw;
        self.loops = loops;
        Ok(counts)
    }
}
