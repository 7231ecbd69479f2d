//! The ipchains 1.3.9 command line: a getopt_long emulation and a faithful port of `main()`'s
//! option handling, legality table and error messages, producing an [`Invocation`]. Shared by
//! `mclient ipchains …` and the server. Must not touch a [`Firewall`](super::Firewall) (chain
//! existence is the kernel's business) nor resolve names itself: host and network names in
//! `-s`/`-d` go to the caller's [`Resolver`] ([`parse_command`] knows dotted quads only).

mod args;
mod getopt;

use std::net::Ipv4Addr;

use thiserror::Error;

use super::model::{
    CheckRequest, Rule, Target, TestPacket, IP_FW_INV_DSTIP, IP_FW_INV_FRAG, IP_FW_INV_PROTO,
    IP_FW_INV_SRCIP, MAX_LABEL_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP,
};

use args::*;
use getopt::*;

/// A command-line problem; the text is ipchains' own message (ipchains exits with status 2 and
/// "Try `ipchains -h' or 'ipchains --help' for more information.").
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Parameter problem with ipchains' wording, e.g. "no ports allowed without specific protocol".
    #[error("{0}")]
    Message(String),
}

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Message(msg.into()))
}

/// How a name in `-s`/`-d` becomes addresses, once, when the command line is parsed (as the
/// ipchains binary did with `getnetbyname` and `gethostbyname`; the kernel only ever saw
/// addresses). Called only for what is not a dotted quad.
pub trait Resolver {
    /// A network name (`/etc/networks`): its address.
    fn network(&self, name: &str) -> Option<Ipv4Addr>;
    /// A host name: every IPv4 address it has, in the resolver's order (`None` or empty: unknown).
    fn host(&self, name: &str) -> Option<Vec<Ipv4Addr>>;
}

/// The resolver that knows no names (dotted quads only): what the server uses, so that a rule
/// never waits on DNS there.
#[derive(Clone, Copy, Debug, Default)]
pub struct NumericOnly;

impl Resolver for NumericOnly {
    fn network(&self, _: &str) -> Option<Ipv4Addr> {
        None
    }
    fn host(&self, _: &str) -> Option<Vec<Ipv4Addr>> {
        None
    }
}

/// A parsed rule specification: one rule, the addresses its `-s`/`-d` resolved to, and whether
/// `-b` asked for the reversed rule too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    /// The rule as written (with the first source and destination address).
    pub rule: Rule,
    /// `-b`: also install the rule with source and destination swapped.
    pub bidirectional: bool,
    /// Every source address (masked, without duplicates); one unless a name resolved to several.
    pub sources: Vec<Ipv4Addr>,
    /// Every destination address, likewise.
    pub destinations: Vec<Ipv4Addr>,
    /// Whether `-s` or `-d` named a host or network (resolved through the [`Resolver`]).
    pub named: bool,
}

impl RuleSpec {
    /// The rules ipchains would install, in its order: one per source × destination address,
    /// then (with `-b`) the swapped ones.
    pub fn expand(&self) -> Vec<Rule> {
        let one = |v: &[Ipv4Addr], d: Ipv4Addr| if v.is_empty() { vec![d] } else { v.to_vec() };
        let (srcs, dsts) = (
            one(&self.sources, self.rule.src),
            one(&self.destinations, self.rule.dst),
        );
        let mut out = Vec::with_capacity(srcs.len() * dsts.len() * 2);
        for s in &srcs {
            for d in &dsts {
                let mut r = self.rule.clone();
                r.src = *s;
                r.dst = *d;
                out.push(r);
            }
        }
        if self.bidirectional {
            let swapped = self.rule.swapped();
            for d in &dsts {
                for s in &srcs {
                    let mut r = swapped.clone();
                    r.src = *d;
                    r.dst = *s;
                    out.push(r);
                }
            }
        }
        out
    }
}

/// One ipchains command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-A chain spec`.
    Append { chain: String, spec: RuleSpec },
    /// `-D chain spec`.
    Delete { chain: String, spec: RuleSpec },
    /// `-D chain rulenum`.
    DeleteNum { chain: String, num: usize },
    /// `-I chain [rulenum] spec` (default 1).
    Insert {
        chain: String,
        num: usize,
        spec: RuleSpec,
    },
    /// `-R chain rulenum spec`.
    Replace {
        chain: String,
        num: usize,
        spec: RuleSpec,
    },
    /// `-C chain spec`.
    Check { chain: String, spec: RuleSpec },
    /// `-L [chain]`, with `-Z` to zero atomically.
    List { chain: Option<String>, zero: bool },
    /// `-F [chain]`.
    Flush { chain: Option<String> },
    /// `-Z [chain]`.
    Zero { chain: Option<String> },
    /// `-N chain`.
    NewChain { chain: String },
    /// `-X [chain]`.
    DeleteChain { chain: Option<String> },
    /// `-P chain target`.
    SetPolicy { chain: String, policy: String },
    /// `-M -L`.
    MasqList,
    /// `-M -S tcp tcpfin udp` (seconds; 0 = leave unchanged).
    MasqSetTimeouts { tcp: u32, tcpfin: u32, udp: u32 },
    /// `-h [icmp]`.
    Help { icmp: bool },
    /// `-V`.
    Version,
}

/// A whole parsed command line: the command and its listing/verbosity modifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The command.
    pub command: Command,
    /// `-n`.
    pub numeric: bool,
    /// `-v`.
    pub verbose: bool,
    /// `-x`.
    pub exact: bool,
    /// `--line-numbers`.
    pub line_numbers: bool,
    /// Warnings ipchains would print to stdout (TOS checks), unless `--no-warnings`.
    pub warnings: Vec<String>,
}

/// Parser state mirroring ipchains' `main()` locals.
struct State<'a> {
    command: u32,
    options: u32,
    invert: bool,
    rule: Rule,
    chain: Option<&'a str>,
    jumpto: Option<String>,
    srcpts: Option<&'a str>,
    dstpts: Option<&'a str>,
    shost: Option<&'a str>,
    dhost: Option<&'a str>,
    rport: &'a str,
    policy: Option<String>,
    rulenum: usize,
    warnings: bool,
    timeouts: [u32; 3],
}

impl State<'_> {
    /// `set_option`.
    fn set_option(&mut self, option: u32) -> Result<(), ParseError> {
        if self.options & option != 0 {
            return err(format!("multiple -{} flags not allowed", opt2char(option)));
        }
        self.options |= option;
        if self.invert {
            let inv = INVERSE_FOR_OPTIONS[bit_index(option)];
            if inv == 0 {
                return err(format!("cannot have ! before -{}", opt2char(option)));
            }
            self.rule.invflags |= inv;
            self.invert = false;
        }
        Ok(())
    }

    /// `add_command`.
    fn add_command(&mut self, newcmd: u32, othercmds: u32) -> Result<(), ParseError> {
        if self.invert {
            return err("unexpected ! flag");
        }
        if self.command & !othercmds != 0 {
            return err(format!(
                "Can't use -{} with -{}",
                cmd2char(newcmd),
                cmd2char(self.command & !othercmds)
            ));
        }
        self.command |= newcmd;
        Ok(())
    }

    /// `check_inverse`.
    fn check_inverse(&mut self, s: Option<&str>) -> Result<bool, ParseError> {
        if s == Some("!") {
            if self.invert {
                return err("Multiple `!' flags not allowed");
            }
            self.invert = true;
            return Ok(true);
        }
        Ok(false)
    }
}

fn not_opt_like(s: Option<&str>) -> Option<&str> {
    s.filter(|a| !a.starts_with('-') && !a.starts_with('!'))
}

/// Parse a whole ipchains command line (without the program name), e.g.
/// `["-A", "forward", "-s", "192.168.1.0/24", "-j", "MASQ"]`; addresses must be dotted quads.
pub fn parse_command(args: &[&str]) -> Result<Invocation, ParseError> {
    parse_command_with(args, &NumericOnly)
}

/// [`parse_command`] with host and network names in `-s`/`-d` resolved by `resolver`, once;
/// a name with several addresses gives one rule per address ([`RuleSpec::expand`]).
pub fn parse_command_with(
    args: &[&str],
    resolver: &dyn Resolver,
) -> Result<Invocation, ParseError> {
    let mut g = Getopt::new(args);
    let mut st = State {
        command: 0,
        options: 0,
        invert: false,
        rule: Rule::default(),
        chain: None,
        jumpto: None,
        srcpts: None,
        dstpts: None,
        shost: None,
        dhost: None,
        rport: "0",
        policy: None,
        rulenum: 0,
        warnings: true,
        timeouts: [0; 3],
    };
    // Value of an option that may be preceded by "!" (`-p ! tcp`).
    fn inv_value<'a>(
        st: &mut State<'a>,
        g: &mut Getopt<'a>,
        optarg: Option<&'a str>,
    ) -> Result<&'a str, ParseError> {
        let a = optarg.unwrap_or("");
        if st.check_inverse(Some(a))? {
            let v = g
                .arg(g.optind)
                .ok_or_else(|| ParseError::Message("nothing appropriate following !".into()))?;
            g.optind += 1;
            Ok(v)
        } else {
            Ok(a)
        }
    }
    while let Some((c, optarg)) = g.next()? {
        match c {
            'A' => {
                st.add_command(CMD_APPEND, 0)?;
                st.chain = optarg;
            }
            'D' => {
                st.add_command(CMD_DELETE, 0)?;
                st.chain = optarg;
                if let Some(n) = not_opt_like(g.arg(g.optind)) {
                    g.optind += 1;
                    st.rulenum = parse_rulenumber(n)?;
                    st.command = CMD_DELETE_NUM;
                }
            }
            'C' => {
                st.add_command(CMD_CHECK, 0)?;
                st.chain = optarg;
            }
            'R' => {
                st.add_command(CMD_REPLACE, 0)?;
                st.chain = optarg;
                match not_opt_like(g.arg(g.optind)) {
                    Some(n) => {
                        g.optind += 1;
                        st.rulenum = parse_rulenumber(n)?;
                    }
                    None => {
                        return err(format!("-{} requires a rule number", cmd2char(CMD_REPLACE)))
                    }
                }
            }
            'I' => {
                st.add_command(CMD_INSERT, 0)?;
                st.chain = optarg;
                st.rulenum = match not_opt_like(g.arg(g.optind)) {
                    Some(n) => {
                        g.optind += 1;
                        parse_rulenumber(n)?
                    }
                    None => 1,
                };
            }
            'L' | 'F' | 'Z' | 'X' => {
                let (cmd, others) = match c {
                    'L' => (CMD_LIST, CMD_ZERO | CMD_MASQUERADE),
                    'F' => (CMD_FLUSH, 0),
                    'Z' => (CMD_ZERO, CMD_LIST),
                    _ => (CMD_DELETE_CHAIN, 0),
                };
                st.add_command(cmd, others)?;
                if optarg.is_some() {
                    st.chain = optarg;
                } else if let Some(n) = not_opt_like(g.arg(g.optind)) {
                    g.optind += 1;
                    st.chain = Some(n);
                }
                let other = if c == 'L' { CMD_ZERO } else { CMD_LIST };
                if (c == 'L' || c == 'Z') && st.command & other != 0 && st.chain.is_some() {
                    return err(format!(
                        "-{} with -{} does not allow chain to be specified",
                        cmd2char(CMD_LIST),
                        cmd2char(CMD_ZERO)
                    ));
                }
            }
            'N' => {
                st.add_command(CMD_NEW_CHAIN, 0)?;
                st.chain = optarg;
            }
            'P' => {
                st.add_command(CMD_SET_POLICY, 0)?;
                st.chain = optarg;
                match not_opt_like(g.arg(g.optind)) {
                    Some(p) => {
                        g.optind += 1;
                        st.policy = Some(parse_policy(optarg.unwrap_or(""), p)?);
                    }
                    None => {
                        return err(format!(
                            "-{} requires a chain and a policy",
                            cmd2char(CMD_SET_POLICY)
                        ))
                    }
                }
            }
            'M' => st.add_command(CMD_MASQUERADE, CMD_LIST | CMD_SET_MASQUERADE)?,
            'S' => {
                st.add_command(CMD_SET_MASQUERADE, CMD_MASQUERADE)?;
                let (Some(b), Some(c2)) = (
                    not_opt_like(g.arg(g.optind)),
                    not_opt_like(g.arg(g.optind + 1)),
                ) else {
                    return err(format!(
                        "-{} requires 3 timeout values",
                        cmd2char(CMD_SET_MASQUERADE)
                    ));
                };
                g.optind += 2;
                for (i, v) in [optarg.unwrap_or(""), b, c2].iter().enumerate() {
                    st.timeouts[i] = match string_to_number(v, 0, i64::from(i32::MAX)) {
                        Some(n) => n as u32,
                        None => return err(format!("invalid timeout value `{v}' specified")),
                    };
                }
            }
            'h' => {
                let icmp = optarg.is_some_and(|a| a.eq_ignore_ascii_case("icmp"))
                    || g.arg(g.optind)
                        .is_some_and(|a| a.eq_ignore_ascii_case("icmp"));
                return Ok(Invocation {
                    command: Command::Help { icmp },
                    numeric: false,
                    verbose: false,
                    exact: false,
                    line_numbers: false,
                    warnings: Vec::new(),
                });
            }
            'p' => {
                let v = inv_value(&mut st, &mut g, optarg)?;
                st.set_option(OPT_PROTOCOL)?;
                st.rule.proto = parse_protocol(v)?;
                if st.rule.proto == 0 && st.rule.inv(IP_FW_INV_PROTO) {
                    return err("rule would never match protocol");
                }
            }
            's' | 'd' => {
                let v = inv_value(&mut st, &mut g, optarg)?;
                let (opt, ptopt) = if c == 's' {
                    (OPT_SOURCE, OPT_SRCPT)
                } else {
                    (OPT_DESTINATION, OPT_DSTPT)
                };
                st.set_option(opt)?;
                if c == 's' {
                    st.shost = Some(v);
                } else {
                    st.dhost = Some(v);
                }
                st.check_inverse(g.arg(g.optind))?;
                let skip = usize::from(st.invert);
                if let Some(p) = not_opt_like(g.arg(g.optind + skip)) {
                    g.optind += skip + 1;
                    if c == 's' {
                        st.srcpts = Some(p);
                    } else {
                        st.dstpts = Some(p);
                    }
                    st.set_option(ptopt)?;
                }
            }
            '1' | '2' => {
                let v = inv_value(&mut st, &mut g, optarg)?;
                if c == '1' {
                    st.set_option(OPT_SRCPT)?;
                    st.srcpts = Some(v);
                } else {
                    st.set_option(OPT_DSTPT)?;
                    st.dstpts = Some(v);
                }
            }
            'j' => {
                st.set_option(OPT_JUMP)?;
                let t = parse_target(optarg.unwrap_or(""))?;
                if t == "REDIRECT" {
                    if let Some(p) = not_opt_like(g.arg(g.optind)) {
                        g.optind += 1;
                        st.rport = p;
                    }
                }
                st.jumpto = Some(t);
            }
            'i' => {
                let v = inv_value(&mut st, &mut g, optarg)?;
                st.set_option(OPT_VIANAME)?;
                let (name, wild) = parse_interface(v)?;
                st.rule.iface = name;
                st.rule.iface_wildcard = wild;
            }
            'f' => {
                st.set_option(OPT_FRAGMENT)?;
                st.rule.fragment = true;
            }
            'b' => st.set_option(OPT_BIDIR)?,
            'v' => st.set_option(OPT_VERBOSE)?,
            'm' => {
                st.set_option(OPT_MARK)?;
                let (v, abs) = parse_mark(optarg.unwrap_or(""))?;
                st.rule.mark = v;
                st.rule.mark_absolute = abs;
            }
            'n' => st.set_option(OPT_NUMERIC)?,
            'l' => {
                st.set_option(OPT_PRINTK)?;
                st.rule.log = true;
            }
            'o' => {
                st.set_option(OPT_NETLINK)?;
                let mut a = optarg;
                if a.is_none() {
                    if let Some(n) = not_opt_like(g.arg(g.optind)) {
                        g.optind += 1;
                        a = Some(n);
                    }
                }
                st.rule.netlink = Some(parse_outputsize(a)?);
            }
            't' => {
                st.set_option(OPT_TOS)?;
                match not_opt_like(g.arg(g.optind)) {
                    Some(x) => {
                        st.rule.tos_and = parse_hexbyte(optarg.unwrap_or(""))?;
                        g.optind += 1;
                        st.rule.tos_xor = parse_hexbyte(x)?;
                    }
                    None => {
                        return err(format!(
                            "-{} requires 2 hexbyte arguments",
                            opt2char(OPT_TOS)
                        ))
                    }
                }
            }
            'x' => st.set_option(OPT_EXPANDED)?,
            'y' => {
                st.set_option(OPT_TCPSYN)?;
                st.rule.syn = true;
            }
            'V' => {
                return Ok(Invocation {
                    command: Command::Version,
                    numeric: false,
                    verbose: false,
                    exact: false,
                    line_numbers: false,
                    warnings: Vec::new(),
                })
            }
            '3' => {
                if st.invert {
                    return err("cannot have ! before --line-numbers");
                }
                st.set_option(OPT_LINENUMBERS)?;
            }
            'W' => {
                if st.invert {
                    return err("cannot have ! before --no-warnings");
                }
                st.warnings = false;
            }
            _ => {
                // Non-option argument: only a lone "!" is meaningful.
                if optarg == Some("!") {
                    if st.invert {
                        return err("multiple consecutive ! not allowed");
                    }
                    st.invert = true;
                    continue;
                }
                return err("unknown arguments found on commandline");
            }
        }
        st.invert = false;
    }
    if g.optind < args.len() {
        return err("unknown arguments found on commandline");
    }
    if st.command == 0 {
        return err("no command specified");
    }
    if st.invert {
        return err("nothing appropriate following !");
    }
    finish(st, resolver)
}

fn finish(mut st: State<'_>, resolver: &dyn Resolver) -> Result<Invocation, ParseError> {
    if st.command & (CMD_REPLACE | CMD_INSERT | CMD_DELETE | CMD_APPEND) != 0 {
        if st.options & OPT_DESTINATION == 0 {
            st.dhost = Some("0.0.0.0/0");
        }
        if st.options & OPT_SOURCE == 0 {
            st.shost = Some("0.0.0.0/0");
        }
    }
    let proto = st.rule.proto;
    let named = |h: &str| {
        let host = h.rsplit_once('/').map_or(h, |(a, _)| a);
        dotted_to_addr(host).is_none()
    };
    let mut is_named = false;
    let (mut sources, mut destinations) = (Vec::new(), Vec::new());
    if let Some(h) = st.shost {
        let (a, m) = parse_hostnetworkmask(h, resolver)?;
        is_named |= !m.is_unspecified() && named(h);
        st.rule.src = a[0];
        st.rule.src_mask = m;
        sources = a;
        if proto != PROTO_ICMP {
            st.rule.src_ports = parse_ports(st.srcpts, proto)?;
        }
    }
    if let Some(h) = st.dhost {
        let (a, m) = parse_hostnetworkmask(h, resolver)?;
        is_named |= !m.is_unspecified() && named(h);
        st.rule.dst = a[0];
        st.rule.dst_mask = m;
        destinations = a;
        if proto != PROTO_ICMP {
            st.rule.dst_ports = parse_ports(st.dstpts, proto)?;
        }
    }
    if proto == PROTO_ICMP {
        let (t, c) = parse_icmp(
            st.srcpts,
            st.dstpts,
            &mut st.options,
            st.rule.invflags,
            st.command == CMD_CHECK,
        )?;
        st.rule.src_ports = t;
        st.rule.dst_ports = c;
    }
    let several = sources.len() > 1 || destinations.len() > 1;
    if several && st.rule.invflags & (IP_FW_INV_SRCIP | IP_FW_INV_DSTIP) != 0 {
        return err("! not allowed with multiple source or destination IP addresses");
    }
    if several && st.options & OPT_BIDIR != 0 {
        return err("-b not allowed with multiple source or destination IP addresses");
    }
    let inv_proto = st.rule.inv(IP_FW_INV_PROTO);
    let opts = st.options;
    if (proto == 0 || inv_proto) && opts & (OPT_SRCPT | OPT_DSTPT) != 0 {
        return err("no ports allowed without specific protocol");
    }
    if (proto != PROTO_TCP || inv_proto) && opts & OPT_TCPSYN != 0 {
        return err(format!(
            "-{} only allowed with TCP protocol",
            opt2char(OPT_TCPSYN)
        ));
    }
    let frag_plain = opts & OPT_FRAGMENT != 0 && !st.rule.inv(IP_FW_INV_FRAG);
    if frag_plain && opts & (OPT_SRCPT | OPT_DSTPT) != 0 {
        return err(format!("no ports allowed with -{}", opt2char(OPT_FRAGMENT)));
    }
    if frag_plain && opts & OPT_TCPSYN != 0 {
        return err(format!(
            "-{} not allowed with -{}",
            opt2char(OPT_TCPSYN),
            opt2char(OPT_FRAGMENT)
        ));
    }
    if st.command == CMD_CHECK
        && (proto == PROTO_TCP || proto == PROTO_UDP || proto == PROTO_ICMP)
        && opts & OPT_FRAGMENT == 0
        && (opts & OPT_SRCPT == 0
            || st.rule.src_ports.lo != st.rule.src_ports.hi
            || st.options & OPT_DSTPT == 0
            || st.rule.dst_ports.lo != st.rule.dst_ports.hi)
    {
        return err(format!(
            "one port required with source/destination address for -{}",
            cmd2char(CMD_CHECK)
        ));
    }
    if st.command == CMD_CHECK && st.rule.invflags != 0 {
        return err(format!("! not allowed with -{}", cmd2char(CMD_CHECK)));
    }
    let jump = st.jumpto.clone();
    if (proto != PROTO_TCP && proto != PROTO_UDP || inv_proto)
        && jump.as_deref() == Some("REDIRECT")
    {
        return err("redirecting only allowed with TCP or UDP");
    }
    if jump.as_deref() == Some("MASQ") && matches!(st.chain, Some("input") | Some("output")) {
        return err("masquerading not allowed for input and output chains");
    }
    if jump.as_deref() == Some("REDIRECT") && matches!(st.chain, Some("output") | Some("forward")) {
        return err("redirect not allowed for output and forward chains");
    }
    if st.command == CMD_REPLACE && (sources.len() != 1 || destinations.len() != 1) {
        return err("Replacement rule does not specify a unique address");
    }
    // "Allow lazy -S without -M"
    if st.command == CMD_SET_MASQUERADE {
        st.command |= CMD_MASQUERADE;
    }
    generic_opt_check(st.command, st.options)?;
    if let Some(c) = st.chain {
        if c.len() > MAX_LABEL_LEN {
            return err(format!(
                "chain name `{c}' too long (must be under {MAX_LABEL_LEN} chars)"
            ));
        }
    }
    if jump.as_deref() == Some("REDIRECT") {
        st.rule.redirect_port = parse_port(st.rport, proto)?;
    }
    if opts & OPT_TOS == 0 {
        st.rule.tos_and = 0xFF;
        st.rule.tos_xor = 0;
    }
    let mut warnings = Vec::new();
    check_tos(st.rule.tos_and, st.rule.tos_xor, &mut warnings, st.warnings)?;
    if let Some(j) = &jump {
        st.rule.target = Target::from_label(j);
    }
    if st.rule.iface.is_empty() {
        st.rule.iface_wildcard = true;
    }
    if st.command == CMD_MASQUERADE {
        return err("-M/--masquerading requires -L/--list or -S/--set");
    }
    let chain = st.chain.unwrap_or("").to_string();
    let spec = RuleSpec {
        rule: st.rule.clone(),
        bidirectional: opts & OPT_BIDIR != 0,
        sources,
        destinations,
        named: is_named,
    };
    let opt_chain = st.chain.map(str::to_string);
    let command = match st.command {
        CMD_APPEND => Command::Append { chain, spec },
        CMD_CHECK => Command::Check { chain, spec },
        CMD_DELETE => Command::Delete { chain, spec },
        CMD_DELETE_NUM => Command::DeleteNum {
            chain,
            num: st.rulenum,
        },
        CMD_REPLACE => Command::Replace {
            chain,
            num: st.rulenum,
            spec,
        },
        CMD_INSERT => Command::Insert {
            chain,
            num: st.rulenum,
            spec,
        },
        x if x == CMD_LIST | CMD_MASQUERADE => Command::MasqList,
        CMD_LIST => Command::List {
            chain: opt_chain,
            zero: false,
        },
        x if x == CMD_LIST | CMD_ZERO => Command::List {
            chain: opt_chain,
            zero: true,
        },
        CMD_FLUSH => Command::Flush { chain: opt_chain },
        CMD_ZERO => Command::Zero { chain: opt_chain },
        CMD_NEW_CHAIN => Command::NewChain { chain },
        CMD_DELETE_CHAIN => Command::DeleteChain { chain: opt_chain },
        x if x == CMD_MASQUERADE | CMD_SET_MASQUERADE => Command::MasqSetTimeouts {
            tcp: st.timeouts[0],
            tcpfin: st.timeouts[1],
            udp: st.timeouts[2],
        },
        CMD_SET_POLICY => Command::SetPolicy {
            chain,
            policy: st.policy.unwrap_or_default(),
        },
        _ => return err("unknown arguments found on commandline"),
    };
    Ok(Invocation {
        command,
        numeric: opts & OPT_NUMERIC != 0,
        verbose: opts & OPT_VERBOSE != 0,
        exact: opts & OPT_EXPANDED != 0,
        line_numbers: opts & OPT_LINENUMBERS != 0,
        warnings,
    })
}

/// `generic_opt_check`: the command/option legality table.
fn generic_opt_check(command: u32, options: u32) -> Result<(), ParseError> {
    for i in 0..NUMBER_OF_OPT {
        let mut legal = 0i8;
        for (j, row) in COMMANDS_V_OPTIONS.iter().enumerate() {
            if command & (1 << j) == 0 {
                continue;
            }
            if options & (1 << i) == 0 {
                if row[i] == b'+' {
                    return err(format!(
                        "You need to supply the `-{}' option for this command",
                        OPTFLAGS[i] as char
                    ));
                }
            } else if row[i] != b'x' {
                legal = 1;
            } else if legal == 0 {
                legal = -1;
            }
        }
        if legal == -1 {
            return err(format!(
                "Illegal option `-{}' with this command",
                OPTFLAGS[i] as char
            ));
        }
    }
    Ok(())
}

/// Parse a rule specification given as separate arguments (as after `ipchains -A chain`), e.g.
/// `["-p", "tcp", "-s", "10.0.0.0/8", "-j", "ACCEPT"]`.
pub fn parse_args(args: &[&str]) -> Result<RuleSpec, ParseError> {
    let mut full: Vec<&str> = Vec::with_capacity(args.len() + 2);
    full.push("-A");
    full.push("-");
    full.extend_from_slice(args);
    // "-" is not a real chain: it only avoids chain-specific checks, which the Firewall repeats.
    match parse_command(&full)?.command {
        Command::Append { spec, .. } => Ok(spec),
        _ => err("unknown arguments found on commandline"),
    }
}

/// Parse a rule specification from one string split on whitespace, e.g.
/// `"-p tcp -s 192.168.1.0/24 -d 0.0.0.0/0 80 -j MASQ"`.
pub fn parse_rule(spec: &str) -> Result<RuleSpec, ParseError> {
    let args: Vec<&str> = spec.split_whitespace().collect();
    parse_args(&args)
}

/// Parse a `-C chain spec` packet description (`-p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80 -i eth0 [-y]
/// [-f] [-b]`) with ipchains' `-C` rules into the test packets to run (two with `-b`).
pub fn parse_check(chain: &str, spec: &str) -> Result<CheckRequest, ParseError> {
    let mut args: Vec<&str> = vec!["-C", chain];
    args.extend(spec.split_whitespace());
    let Command::Check { chain, spec } = parse_command(&args)?.command else {
        return err("unknown arguments found on commandline");
    };
    Ok(CheckRequest {
        chain,
        packets: spec.expand().iter().map(TestPacket::from_rule).collect(),
    })
}
