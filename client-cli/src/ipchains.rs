//! `mclient ipchains ARGS…`: the ipchains 1.3.9 command line mapped onto the Nat rpcs.
//!
//! The command line goes through nat-core's faithful port of ipchains' `main()` (its getopt,
//! legality table and messages), so `mclient ipchains` refuses exactly what ipchains refused,
//! with its words, and answers `-h`, `-h icmp` and `-V` itself. Host and network names in
//! `-s`/`-d` are resolved here, once, as the ipchains binary resolved them before it handed
//! addresses to the kernel: the server (the kernel's part) only ever sees addresses, and a name
//! with several addresses becomes one rule per address. Parsing is pure given a [`Resolver`];
//! [`SystemResolver`] is the one that reads /etc/networks and asks the system for hosts.

use std::net::{Ipv4Addr, ToSocketAddrs};

use nat_core::chains::{self, Command, Resolver, Rule};

/// An ipchains invocation, as rpcs to make (or text to print).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `-A chain spec`: the rules to append, in order (one per address pair, `-b` expanded).
    Append { chain: String, rules: Vec<Rule> },
    /// `-I chain [num] spec` (num 1-based, default 1): each rule is inserted at `number`, as
    /// ipchains did.
    Insert {
        chain: String,
        number: u32,
        rules: Vec<Rule>,
    },
    /// `-R chain num spec` (a single address pair).
    Replace {
        chain: String,
        number: u32,
        rule: Rule,
    },
    /// `-D chain num`.
    DeleteNumber { chain: String, number: u32 },
    /// `-D chain spec`: every rule of the spec is deleted.
    DeleteSpec { chain: String, rules: Vec<Rule> },
    /// `-F [chain]` (empty: all).
    Flush { chain: String },
    /// `-Z [chain]` (empty: all).
    Zero { chain: String },
    /// `-N chain`.
    NewChain { chain: String },
    /// `-X [chain]` (empty: every user chain).
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
    /// `-C chain spec`: one test packet per address pair (two with `-b`).
    Check { chain: String, packets: Vec<Rule> },
    /// `-M -L [-n] [-v]`.
    MasqList { numeric: bool, verbose: bool },
    /// `-M -S tcp tcpfin udp` (seconds, 0 = unchanged).
    MasqSet { tcp: u32, tcpfin: u32, udp: u32 },
    /// `-h`, `-h icmp`, `-V`: ipchains' own text, printed without asking the server.
    Text(String),
}

/// A parsed command line: the operation, `-v`, and the TOS warnings ipchains printed first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// What to do.
    pub op: Op,
    /// `-v`: echo each rule (ipchains' FMT_PRINT_RULE line) before it is sent.
    pub verbose: bool,
    /// Warnings for stdout (ipchains' TOS checks), unless `--no-warnings`.
    pub warnings: Vec<String>,
}

/// A command-line problem: ipchains' own message (it exited 2 with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IpchainsError(pub String);

/// Parse ipchains arguments (without the leading `ipchains`), resolving names with `resolver`.
pub fn parse(args: &[String], resolver: &dyn Resolver) -> Result<Parsed, IpchainsError> {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let inv = chains::parse_command_with(&argv, resolver)
        .map_err(|e| IpchainsError(e.to_string().trim_end().to_string()))?;
    let chain = |c: Option<String>| c.unwrap_or_default();
    let number = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let op = match inv.command {
        Command::Append { chain, spec } => Op::Append {
            chain,
            rules: spec.expand(),
        },
        Command::Insert { chain, num, spec } => Op::Insert {
            chain,
            number: number(num),
            rules: spec.expand(),
        },
        Command::Replace { chain, num, spec } => Op::Replace {
            chain,
            number: number(num),
            rule: spec.rule,
        },
        Command::Delete { chain, spec } => Op::DeleteSpec {
            chain,
            rules: spec.expand(),
        },
        Command::DeleteNum { chain, num } => Op::DeleteNumber {
            chain,
            number: number(num),
        },
        Command::Check { chain, spec } => Op::Check {
            chain,
            packets: spec.expand(),
        },
        Command::List { chain: c, zero } => Op::List {
            chain: chain(c),
            numeric: inv.numeric,
            verbose: inv.verbose,
            exact: inv.exact,
            line_numbers: inv.line_numbers,
            zero,
        },
        Command::Flush { chain: c } => Op::Flush { chain: chain(c) },
        Command::Zero { chain: c } => Op::Zero { chain: chain(c) },
        Command::NewChain { chain } => Op::NewChain { chain },
        Command::DeleteChain { chain: c } => Op::DeleteChain { chain: chain(c) },
        Command::SetPolicy { chain, policy } => Op::Policy {
            chain,
            target: policy,
        },
        Command::MasqList => Op::MasqList {
            numeric: inv.numeric,
            verbose: inv.verbose,
        },
        Command::MasqSetTimeouts { tcp, tcpfin, udp } => Op::MasqSet { tcp, tcpfin, udp },
        Command::Help { icmp: true } => Op::Text(chains::icmp_help()),
        Command::Help { icmp: false } => Op::Text(chains::help()),
        Command::Version => Op::Text(format!("{}\n", chains::PACKAGE_VERSION)),
    };
    Ok(Parsed {
        op,
        verbose: inv.verbose,
        warnings: inv.warnings,
    })
}

/// The spec of one rule as the server's parser takes it (`Rule::to_spec`, which parses back to
/// the same rule).
pub fn rule_spec(r: &Rule) -> String {
    r.to_spec()
}

/// The `-C` description of one test packet, with the options `-C` requires (`-p -s -d -i`)
/// always written out.
pub fn check_spec(r: &Rule) -> String {
    // TCP, UDP and ICMP carry ports (ICMP: type and code) in a test packet.
    let ported = matches!(r.proto, 1 | 6 | 17) && !r.fragment;
    let side = |flag: &str, a: Ipv4Addr, m: Ipv4Addr, p: chains::PortRange| {
        let mut s = format!("{flag} {a}/{m}");
        if ported {
            s.push_str(&format!(" {}", p.lo));
        }
        s
    };
    let mut out = vec![
        format!("-p {}", r.proto),
        side("-s", r.src, r.src_mask, r.src_ports),
        side("-d", r.dst, r.dst_mask, r.dst_ports),
        format!("-i {}{}", r.iface, if r.iface_wildcard { "+" } else { "" }),
    ];
    if r.syn {
        out.push("-y".into());
    }
    if r.fragment {
        out.push("-f".into());
    }
    out.join(" ")
}

/// Names as the ipchains binary looked them up: `getnetbyname` (here /etc/networks), then
/// every IPv4 address of the host from the system resolver (/etc/hosts, then DNS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn network(&self, name: &str) -> Option<Ipv4Addr> {
        let text = std::fs::read_to_string("/etc/networks").ok()?;
        network_in(&text, name)
    }

    fn host(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let mut out: Vec<Ipv4Addr> = Vec::new();
        for a in (name, 0u16).to_socket_addrs().ok()? {
            if let std::net::IpAddr::V4(v4) = a.ip() {
                if !out.contains(&v4) {
                    out.push(v4);
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// `getnetbyname` over /etc/networks text (`name number [aliases…]`, `#` comments); the
/// number as `inet_network` reads it (`192.168.1` is 0.192.168.1, `192.168.1.0` is itself).
pub fn network_in(text: &str, name: &str) -> Option<Ipv4Addr> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let (Some(n), Some(num)) = (words.next(), words.next()) else {
            continue;
        };
        if n != name && !words.any(|alias| alias == name) {
            continue;
        }
        let parts: Vec<&str> = num.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        let mut v: u32 = 0;
        for p in parts {
            v = (v << 8) | u32::from(p.parse::<u8>().ok()?);
        }
        return Some(Ipv4Addr::from(v));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use nat_core::chains::NumericOnly;

    fn p(s: &str) -> Result<Parsed, IpchainsError> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse(&v, &NumericOnly)
    }

    fn op(s: &str) -> Op {
        p(s).unwrap_or_else(|e| panic!("{s}: {e}")).op
    }

    fn specs(rules: &[Rule]) -> Vec<String> {
        rules.iter().map(rule_spec).collect()
    }

    #[test]
    fn rule_commands() {
        let Op::Append { chain, rules } = op("-A forward -s 192.168.1.0/24 -d 0.0.0.0/0 -j MASQ")
        else {
            panic!("not an append")
        };
        assert_eq!(chain, "forward");
        assert_eq!(specs(&rules), ["-s 192.168.1.0/24 -j MASQ"]);
        let Op::Insert {
            chain,
            number,
            rules,
        } = op("-I input 3 -p tcp -y -j DENY")
        else {
            panic!("not an insert")
        };
        assert_eq!((chain.as_str(), number), ("input", 3));
        assert_eq!(specs(&rules), ["-p tcp -y -j DENY"]);
        assert!(matches!(
            op("-I input -j ACCEPT"),
            Op::Insert { number: 1, .. }
        ));
        assert!(matches!(
            op("-R input 2 -j DENY"),
            Op::Replace { number: 2, .. }
        ));
        assert_eq!(
            op("-D forward 1"),
            Op::DeleteNumber {
                chain: "forward".into(),
                number: 1
            }
        );
        // -b: both directions, as separate rules.
        let Op::DeleteSpec { rules, .. } = op("-D forward -b -s 10.0.0.1 -d 10.0.0.2 -j MASQ")
        else {
            panic!("not a delete")
        };
        assert_eq!(
            specs(&rules),
            [
                "-s 10.0.0.1/32 -d 10.0.0.2/32 -j MASQ",
                "-s 10.0.0.2/32 -d 10.0.0.1/32 -j MASQ"
            ]
        );
        assert_eq!(
            op("-P forward DENY"),
            Op::Policy {
                chain: "forward".into(),
                target: "DENY".into()
            }
        );
        assert_eq!(op("-X"), Op::DeleteChain { chain: "".into() });
        assert_eq!(
            op("-F forward"),
            Op::Flush {
                chain: "forward".into()
            }
        );
        let Op::Check { chain, packets } =
            op("-C forward -p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80 -i eth0")
        else {
            panic!("not a check")
        };
        assert_eq!(chain, "forward");
        assert_eq!(
            packets.iter().map(check_spec).collect::<Vec<_>>(),
            ["-p 6 -s 1.2.3.4/255.255.255.255 1025 -d 5.6.7.8/255.255.255.255 80 -i eth0"]
        );
        // The check spec parses back to the same packet.
        let back = chains::parse_check("forward", &check_spec(&packets[0]))
            .unwrap_or_else(|e| panic!("{e}"));
        let again = chains::parse_check("forward", "-p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80 -i eth0")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, again);
    }

    #[test]
    fn listing_masq_help_and_version() {
        assert_eq!(
            op("-nvxL forward --line-numbers"),
            Op::List {
                chain: "forward".into(),
                numeric: true,
                verbose: true,
                exact: true,
                line_numbers: true,
                zero: false
            }
        );
        assert!(matches!(op("-L -Z"), Op::List { zero: true, .. }));
        assert_eq!(
            op("-M -L -n"),
            Op::MasqList {
                numeric: true,
                verbose: false
            }
        );
        assert_eq!(
            op("-S 0 0 60"),
            Op::MasqSet {
                tcp: 0,
                tcpfin: 0,
                udp: 60
            }
        );
        assert_eq!(op("-V"), Op::Text("ipchains 1.3.9, 17-Mar-1999\n".into()));
        let Op::Text(h) = op("-h") else {
            panic!("no help")
        };
        assert!(h.contains("Usage: ipchains -[ADC] chain rule-specification [options]"));
        let Op::Text(h) = op("-h icmp") else {
            panic!("no icmp help")
        };
        assert!(h.contains("Valid ICMP Types:"));
    }

    /// ipchains 1.3.9's own refusals (all exit 2 there), in its words.
    #[test]
    fn refusals_are_ipchains_own() {
        for (line, msg) in [
            ("", "no command specified"),
            ("-s 1.2.3.4", "no command specified"),
            (
                "-A input -j ACCEPT -x",
                "Illegal option `-x' with this command",
            ),
            (
                "-L -Z forward",
                "-L with -Z does not allow chain to be specified",
            ),
            (
                "-Z forward -L",
                "-L with -Z does not allow chain to be specified",
            ),
            ("-R input -j DENY", "-R requires a rule number"),
            ("-D input 0", "Invalid rule number `0'"),
            ("-A input -D input", "Can't use -D with -A"),
            ("-M -S 1 2", "-S requires 3 timeout values"),
            ("-L -j DENY", "Illegal option `-j' with this command"),
            (
                "-A input -s localhost",
                "host/network `localhost' not found",
            ),
        ] {
            assert_eq!(
                p(line).map(|_| ()),
                Err(IpchainsError(msg.into())),
                "{line:?}"
            );
        }
    }

    struct TwoHosts;
    impl Resolver for TwoHosts {
        fn network(&self, _: &str) -> Option<Ipv4Addr> {
            None
        }
        fn host(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
            (name == "mirror")
                .then(|| vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)])
        }
    }

    /// A name becomes one rule per address, sent as addresses.
    #[test]
    fn names_become_one_rule_per_address() {
        let args: Vec<String> = "-A output -p tcp -d mirror 21 -j DENY"
            .split(' ')
            .map(String::from)
            .collect();
        let Op::Append { rules, .. } = parse(&args, &TwoHosts)
            .map(|p| p.op)
            .unwrap_or_else(|e| panic!("{e}"))
        else {
            panic!("not an append")
        };
        assert_eq!(
            specs(&rules),
            [
                "-p tcp -d 192.0.2.1/32 21 -j DENY",
                "-p tcp -d 192.0.2.2/32 21 -j DENY"
            ]
        );
    }

    #[test]
    fn etc_networks() {
        let text = "# comment\nloopnet 127.0.0.0\nlan 192.168.1 home # the LAN\n";
        assert_eq!(
            network_in(text, "loopnet"),
            Some(Ipv4Addr::new(127, 0, 0, 0))
        );
        assert_eq!(network_in(text, "lan"), Some(Ipv4Addr::new(0, 192, 168, 1)));
        assert_eq!(
            network_in(text, "home"),
            Some(Ipv4Addr::new(0, 192, 168, 1))
        );
        assert_eq!(network_in(text, "comment"), None);
        assert_eq!(network_in(text, "nosuch"), None);
    }

    #[test]
    fn system_resolver_knows_localhost() {
        assert_eq!(
            SystemResolver
                .host("localhost")
                .map(|v| v.contains(&Ipv4Addr::LOCALHOST)),
            Some(true)
        );
    }

    proptest::proptest! {
        #[test]
        /// Whatever the arguments: a rule-changing operation's rules each print a spec that
        /// nat-core (the server's parser) reads back to the same rule.
        fn every_rule_sent_parses_back_on_the_server(args in proptest::collection::vec("(-[AIDRCpsdjiyfbl]|[a-z0-9./:!]{1,10}|tcp|udp|icmp|ACCEPT|DENY|MASQ|input|forward)", 0..10)) {
            let Ok(parsed) = parse(&args, &NumericOnly) else { return Ok(()) };
            let rules = match parsed.op {
                Op::Append { rules, .. } | Op::Insert { rules, .. } | Op::DeleteSpec { rules, .. } => rules,
                Op::Replace { rule, .. } => vec![rule],
                _ => return Ok(()),
            };
            for r in rules {
                let back = chains::parse_rule(&rule_spec(&r)).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                proptest::prop_assert_eq!(back.rule, r);
            }
        }
    }
}
