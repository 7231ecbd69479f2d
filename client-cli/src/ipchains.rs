//! `mclient ipchains ARGS…`: ipchains 1.3 command-line syntax mapped onto the Nat rpcs.
//!
//! Parsing only (pure): the rule spec itself is passed through as text for the server's
//! nat-core to parse, exactly as `ipchains` would hand it to the kernel.

/// An ipchains invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `-A chain spec`.
    Append { chain: String, spec: String },
    /// `-I chain [num] spec` (num 1-based, default 1).
    Insert {
        chain: String,
        number: u32,
        spec: String,
    },
    /// `-R chain num spec`.
    Replace {
        chain: String,
        number: u32,
        spec: String,
    },
    /// `-D chain num`.
    DeleteNumber { chain: String, number: u32 },
    /// `-D chain spec`.
    DeleteSpec { chain: String, spec: String },
    /// `-F [chain]`.
    Flush { chain: String },
    /// `-Z [chain]`.
    Zero { chain: String },
    /// `-N chain`.
    NewChain { chain: String },
    /// `-X [chain]`.
    DeleteChain { chain: String },
    /// `-P chain target`.
    Policy { chain: String, target: String },
    /// `-L [chain] [-n] [-v] [-x] [--line-numbers] [-Z]`.
    List {
        chain: String,
        numeric: bool,
        verbose: bool,
        exact: bool,
        line_numbers: bool,
        zero: bool,
    },
    /// `-C chain spec`.
    Check { chain: String, spec: String },
    /// `-M -L [-n] [-v]`.
    MasqList { numeric: bool, verbose: bool },
    /// `-M -S tcp tcpfin udp` (seconds, 0 = unchanged).
    MasqSet { tcp: u32, tcpfin: u32, udp: u32 },
}

/// Error in ipchains arguments (ipchains itself exits 2 with such messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpchainsError {
    /// No command option given.
    #[error("no command specified (one of -A -I -R -D -F -Z -N -X -P -L -C -M)")]
    NoCommand,
    /// Two incompatible commands.
    #[error("cannot use {0} with {1}")]
    TwoCommands(String, String),
    /// A required argument is missing.
    #[error("{0} requires {1}")]
    Missing(&'static str, &'static str),
    /// A number was expected.
    #[error("invalid number {0:?}")]
    BadNumber(String),
    /// Arguments that this command does not take.
    #[error("unexpected argument(s) for {0}: {1}")]
    Unexpected(&'static str, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    A,
    I,
    R,
    D,
    F,
    Z,
    N,
    X,
    P,
    L,
    C,
    M,
    S,
}

fn command(tok: &str) -> Option<Cmd> {
    Some(match tok {
        "-A" | "--append" => Cmd::A,
        "-I" | "--insert" => Cmd::I,
        "-R" | "--replace" => Cmd::R,
        "-D" | "--delete" => Cmd::D,
        "-F" | "--flush" => Cmd::F,
        "-Z" | "--zero" => Cmd::Z,
        "-N" | "--new-chain" => Cmd::N,
        "-X" | "--delete-chain" => Cmd::X,
        "-P" | "--policy" => Cmd::P,
        "-L" | "--list" => Cmd::L,
        "-C" | "--check" => Cmd::C,
        "-M" | "--masquerading" => Cmd::M,
        "-S" | "--set" => Cmd::S,
        _ => return None,
    })
}

/// Expand bundled short options made only of command/listing letters (`-nvL` → `-n -v -L`).
fn expand(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        let bundled = a.len() > 2
            && a.starts_with('-')
            && !a.starts_with("--")
            && a[1..].chars().all(|c| "AIRDFZNXPLCMSnvx".contains(c));
        if bundled {
            out.extend(a[1..].chars().map(|c| format!("-{c}")));
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// Whether `-v`/`--verbose` is among the arguments (also bundled, as in `-vA`).
pub fn verbose(args: &[String]) -> bool {
    expand(args).iter().any(|a| a == "-v" || a == "--verbose")
}

fn number(s: &str) -> Result<u32, IpchainsError> {
    s.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| IpchainsError::BadNumber(s.to_string()))
}

fn is_positional(s: Option<&String>) -> bool {
    s.is_some_and(|s| !s.starts_with('-') && s != "!")
}

/// Parse ipchains arguments (without the leading `ipchains`).
pub fn parse(args: &[String]) -> Result<Op, IpchainsError> {
    let args = expand(args);
    let (mut numeric, mut verbose, mut exact, mut line_numbers) = (false, false, false, false);
    let mut cmds: Vec<Cmd> = Vec::new();
    let mut positional: Vec<String> = Vec::new();
    let mut spec: Vec<String> = Vec::new();
    let mut it = args.iter().peekable();
    while let Some(tok) = it.next() {
        match tok.as_str() {
            "-n" | "--numeric" => numeric = true,
            "-v" | "--verbose" => verbose = true,
            "-x" | "--exact" => exact = true,
            "--line-numbers" => line_numbers = true,
            t => match command(t) {
                Some(c) => {
                    cmds.push(c);
                    // Positional arguments right after the command belong to it.
                    let wanted = match c {
                        Cmd::A | Cmd::C | Cmd::N | Cmd::F | Cmd::Z | Cmd::X | Cmd::L => 1,
                        Cmd::I | Cmd::R | Cmd::D | Cmd::P => 2,
                        Cmd::S => 3,
                        Cmd::M => 0,
                    };
                    for _ in 0..wanted {
                        if is_positional(it.peek().copied()) || (c == Cmd::S && it.peek().is_some())
                        {
                            if let Some(p) = it.next() {
                                positional.push(p.clone());
                            }
                        }
                    }
                }
                None => spec.push(tok.clone()),
            },
        }
    }
    let spec_text = spec.join(" ");
    let no_spec = |name: &'static str| {
        if spec.is_empty() {
            Ok(())
        } else {
            Err(IpchainsError::Unexpected(name, spec_text.clone()))
        }
    };
    let chain = |i: usize| positional.get(i).cloned().unwrap_or_default();
    let need_chain = |name: &'static str| {
        positional
            .first()
            .cloned()
            .ok_or(IpchainsError::Missing(name, "a chain name"))
    };
    let name = |c: Cmd| format!("-{c:?}");
    match cmds.as_slice() {
        [] => Err(IpchainsError::NoCommand),
        [Cmd::M, Cmd::L] | [Cmd::L, Cmd::M] => {
            no_spec("-M -L")?;
            Ok(Op::MasqList { numeric, verbose })
        }
        [Cmd::M, Cmd::S] | [Cmd::S, Cmd::M] | [Cmd::S] => {
            no_spec("-M -S")?;
            match positional.as_slice() {
                [a, b, c] => Ok(Op::MasqSet {
                    tcp: seconds(a)?,
                    tcpfin: seconds(b)?,
                    udp: seconds(c)?,
                }),
                _ => Err(IpchainsError::Missing("-S", "3 timeout values")),
            }
        }
        [Cmd::L, Cmd::Z] | [Cmd::Z, Cmd::L] => {
            no_spec("-L -Z")?;
            Ok(Op::List {
                chain: String::new(),
                numeric,
                verbose,
                exact,
                line_numbers,
                zero: true,
            })
        }
        [Cmd::M] => Err(IpchainsError::Missing("-M", "-L or -S")),
        [a, b, ..] => Err(IpchainsError::TwoCommands(name(*a), name(*b))),
        [Cmd::A] => {
            let chain = need_chain("-A")?;
            Ok(Op::Append {
                chain,
                spec: spec_text,
            })
        }
        [Cmd::C] => {
            let chain = need_chain("-C")?;
            Ok(Op::Check {
                chain,
                spec: spec_text,
            })
        }
        [Cmd::I] => {
            let chain = need_chain("-I")?;
            let number = positional
                .get(1)
                .map(|n| number(n))
                .transpose()?
                .unwrap_or(1);
            Ok(Op::Insert {
                chain,
                number,
                spec: spec_text,
            })
        }
        [Cmd::R] => {
            let chain = need_chain("-R")?;
            let n = positional
                .get(1)
                .ok_or(IpchainsError::Missing("-R", "a rule number"))?;
            Ok(Op::Replace {
                chain,
                number: number(n)?,
                spec: spec_text,
            })
        }
        [Cmd::D] => {
            let chain = need_chain("-D")?;
            match positional.get(1) {
                Some(n) => {
                    no_spec("-D chain num")?;
                    Ok(Op::DeleteNumber {
                        chain,
                        number: number(n)?,
                    })
                }
                None if spec.is_empty() => {
                    Err(IpchainsError::Missing("-D", "a rule number or spec"))
                }
                None => Ok(Op::DeleteSpec {
                    chain,
                    spec: spec_text,
                }),
            }
        }
        [Cmd::F] => no_spec("-F").map(|_| Op::Flush { chain: chain(0) }),
        [Cmd::Z] => no_spec("-Z").map(|_| Op::Zero { chain: chain(0) }),
        [Cmd::X] => no_spec("-X").map(|_| Op::DeleteChain { chain: chain(0) }),
        [Cmd::N] => {
            no_spec("-N")?;
            Ok(Op::NewChain {
                chain: need_chain("-N")?,
            })
        }
        [Cmd::P] => {
            no_spec("-P")?;
            let chain = need_chain("-P")?;
            let target = positional
                .get(1)
                .cloned()
                .ok_or(IpchainsError::Missing("-P", "a target"))?;
            Ok(Op::Policy { chain, target })
        }
        [Cmd::L] => {
            no_spec("-L")?;
            Ok(Op::List {
                chain: chain(0),
                numeric,
                verbose,
                exact,
                line_numbers,
                zero: false,
            })
        }
    }
}

fn seconds(s: &str) -> Result<u32, IpchainsError> {
    s.parse::<u32>()
        .map_err(|_| IpchainsError::BadNumber(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Op, IpchainsError> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse(&v)
    }

    #[test]
    fn rule_commands() {
        assert_eq!(
            p("-A forward -s 192.168.1.0/24 -d 0.0.0.0/0 -j MASQ"),
            Ok(Op::Append {
                chain: "forward".into(),
                spec: "-s 192.168.1.0/24 -d 0.0.0.0/0 -j MASQ".into()
            })
        );
        assert_eq!(
            p("-I input 3 -p tcp -y -j DENY"),
            Ok(Op::Insert {
                chain: "input".into(),
                number: 3,
                spec: "-p tcp -y -j DENY".into()
            })
        );
        assert_eq!(
            p("-I input -j ACCEPT"),
            Ok(Op::Insert {
                chain: "input".into(),
                number: 1,
                spec: "-j ACCEPT".into()
            })
        );
        assert_eq!(
            p("-R input 2 -j DENY"),
            Ok(Op::Replace {
                chain: "input".into(),
                number: 2,
                spec: "-j DENY".into()
            })
        );
        assert_eq!(
            p("-D forward 1"),
            Ok(Op::DeleteNumber {
                chain: "forward".into(),
                number: 1
            })
        );
        assert_eq!(
            p("-D forward -j MASQ"),
            Ok(Op::DeleteSpec {
                chain: "forward".into(),
                spec: "-j MASQ".into()
            })
        );
        assert_eq!(
            p("-P forward DENY"),
            Ok(Op::Policy {
                chain: "forward".into(),
                target: "DENY".into()
            })
        );
        assert_eq!(
            p("-N mychain"),
            Ok(Op::NewChain {
                chain: "mychain".into()
            })
        );
        assert_eq!(
            p("-X"),
            Ok(Op::DeleteChain {
                chain: String::new()
            })
        );
        assert_eq!(
            p("-F forward"),
            Ok(Op::Flush {
                chain: "forward".into()
            })
        );
        assert_eq!(
            p("-Z"),
            Ok(Op::Zero {
                chain: String::new()
            })
        );
        assert_eq!(
            p("-C forward -p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80 -i eth0"),
            Ok(Op::Check {
                chain: "forward".into(),
                spec: "-p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80 -i eth0".into()
            })
        );
    }

    #[test]
    fn listing_and_masq() {
        assert_eq!(
            p("-L -n -v"),
            Ok(Op::List {
                chain: String::new(),
                numeric: true,
                verbose: true,
                exact: false,
                line_numbers: false,
                zero: false
            })
        );
        assert_eq!(
            p("-nvxL forward --line-numbers"),
            Ok(Op::List {
                chain: "forward".into(),
                numeric: true,
                verbose: true,
                exact: true,
                line_numbers: true,
                zero: false
            })
        );
        assert!(matches!(p("-L -Z"), Ok(Op::List { zero: true, .. })));
        assert_eq!(
            p("-M -L -n"),
            Ok(Op::MasqList {
                numeric: true,
                verbose: false
            })
        );
        assert_eq!(
            p("-M -S 7200 10 160"),
            Ok(Op::MasqSet {
                tcp: 7200,
                tcpfin: 10,
                udp: 160
            })
        );
        assert_eq!(
            p("-S 0 0 60"),
            Ok(Op::MasqSet {
                tcp: 0,
                tcpfin: 0,
                udp: 60
            })
        );
    }

    proptest::proptest! {
        #[test]
        /// Whatever the arguments: no command option, no operation; a named chain comes from
        /// the arguments (or is empty, meaning all); a rule spec holds only words the caller gave.
        fn any_arguments_give_an_operation_made_of_them(args in proptest::collection::vec("(-[A-Za-z]{1,4}|--[a-z-]{1,12}|[a-z0-9./:!]{0,10})", 0..10)) {
            let Ok(op) = parse(&args) else { return Ok(()) };
            let commands = "AIRDFZNXPLCM";
            proptest::prop_assert!(
                args.iter().any(|a| {
                    let flag = a.starts_with('-') && !a.starts_with("--");
                    (flag && a.chars().skip(1).any(|c| commands.contains(c)))
                        || ["--append", "--insert", "--replace", "--delete", "--flush", "--zero",
                            "--new-chain", "--delete-chain", "--policy", "--list", "--check", "--masquerading"]
                            .iter().any(|l| l.starts_with(a.as_str()) && a.len() > 2)
                }),
                "{:?} from {:?} without a command option", op, args
            );
            let (chain, spec) = match &op {
                Op::Append { chain, spec } | Op::Insert { chain, spec, .. } | Op::Replace { chain, spec, .. }
                | Op::DeleteSpec { chain, spec } | Op::Check { chain, spec } => (Some(chain), Some(spec)),
                Op::DeleteNumber { chain, .. } | Op::Flush { chain } | Op::Zero { chain }
                | Op::NewChain { chain } | Op::DeleteChain { chain } | Op::Policy { chain, .. }
                | Op::List { chain, .. } => (Some(chain), None),
                Op::MasqList { .. } | Op::MasqSet { .. } => (None, None),
            };
            if let Some(c) = chain.filter(|c| !c.is_empty()) {
                proptest::prop_assert!(args.iter().any(|a| a == c || a.ends_with(c.as_str())), "chain {:?} not among {:?}", c, args);
            }
            if let Some(spec) = spec {
                for w in spec.split_whitespace() {
                    proptest::prop_assert!(args.iter().any(|a| a.contains(w) || w.contains(a.trim_start_matches('-'))), "spec word {:?} not from {:?}", w, args);
                }
            }
        }
    }

    #[test]
    fn verbose_flag() {
        let v = |s: &str| verbose(&s.split_whitespace().map(String::from).collect::<Vec<_>>());
        assert!(v("-v -A forward -j MASQ"));
        assert!(v("-vA forward -j MASQ"));
        assert!(!v("-A forward -j MASQ"));
    }

    #[test]
    fn errors() {
        assert_eq!(p(""), Err(IpchainsError::NoCommand));
        assert_eq!(p("-s 1.2.3.4"), Err(IpchainsError::NoCommand));
        assert!(matches!(p("-A"), Err(IpchainsError::Missing(..))));
        assert!(matches!(
            p("-R input -j DENY"),
            Err(IpchainsError::Missing(..))
        ));
        assert!(matches!(
            p("-R input x -j DENY"),
            Err(IpchainsError::Missing(..)) | Err(IpchainsError::BadNumber(_))
        ));
        assert!(matches!(p("-D input 0"), Err(IpchainsError::BadNumber(_))));
        assert!(matches!(
            p("-A input -D input"),
            Err(IpchainsError::TwoCommands(..))
        ));
        assert!(matches!(p("-M -S 1 2"), Err(IpchainsError::Missing(..))));
        assert!(matches!(
            p("-L -j DENY"),
            Err(IpchainsError::Unexpected(..))
        ));
        assert!(matches!(p("-M"), Err(IpchainsError::Missing(..))));
    }
}
