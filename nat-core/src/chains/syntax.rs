//! The ipchains 1.3.9 command line: a getopt_long emulation and a faithful port of `main()`'s
//! option handling, legality table and error messages, producing an [`Invocation`]. Shared by
//! `mclient ipchains …` and the server. Must not touch a [`Firewall`](super::Firewall) (chain
//! existence is the kernel's business) nor resolve names (no DNS: dotted quads only).

use std::net::Ipv4Addr;

use thiserror::Error;

use super::model::{
    CheckRequest, PortRange, Rule, Target, TestPacket, IFNAMSIZ, IP_FW_INV_DSTIP, IP_FW_INV_DSTPT,
    IP_FW_INV_FRAG, IP_FW_INV_PROTO, IP_FW_INV_SRCIP, IP_FW_INV_SRCPT, IP_FW_INV_SYN,
    IP_FW_INV_VIA, MAX_LABEL_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP,
};
use super::tables::{protocol_by_name, service_to_port, ICMP_CODES};

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

/// A parsed rule specification: one rule, plus whether `-b` asked for the reversed rule too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    /// The rule as written.
    pub rule: Rule,
    /// `-b`: also install the rule with source and destination swapped.
    pub bidirectional: bool,
}

impl RuleSpec {
    /// The rules ipchains would install: the rule, then (with `-b`) the swapped one.
    pub fn expand(&self) -> Vec<Rule> {
        if self.bidirectional {
            vec![self.rule.clone(), self.rule.swapped()]
        } else {
            vec![self.rule.clone()]
        }
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

// Command bits, in ipchains' order (cmdflags "IDDRALFZNXPMSC").
const CMD_INSERT: u32 = 0x0001;
const CMD_DELETE: u32 = 0x0002;
const CMD_DELETE_NUM: u32 = 0x0004;
const CMD_REPLACE: u32 = 0x0008;
const CMD_APPEND: u32 = 0x0010;
const CMD_LIST: u32 = 0x0020;
const CMD_FLUSH: u32 = 0x0040;
const CMD_ZERO: u32 = 0x0080;
const CMD_NEW_CHAIN: u32 = 0x0100;
const CMD_DELETE_CHAIN: u32 = 0x0200;
const CMD_SET_POLICY: u32 = 0x0400;
const CMD_MASQUERADE: u32 = 0x0800;
const CMD_SET_MASQUERADE: u32 = 0x1000;
const CMD_CHECK: u32 = 0x2000;
const CMDFLAGS: &[u8; 14] = b"IDDRALFZNXPMSC";

// Option bits (optflags "nsdpjybvlxtifmsdo3").
const OPT_NUMERIC: u32 = 0x00001;
const OPT_SOURCE: u32 = 0x00002;
const OPT_DESTINATION: u32 = 0x00004;
const OPT_PROTOCOL: u32 = 0x00008;
const OPT_JUMP: u32 = 0x00010;
const OPT_TCPSYN: u32 = 0x00020;
const OPT_BIDIR: u32 = 0x00040;
const OPT_VERBOSE: u32 = 0x00080;
const OPT_PRINTK: u32 = 0x00100;
const OPT_EXPANDED: u32 = 0x00200;
const OPT_TOS: u32 = 0x00400;
const OPT_VIANAME: u32 = 0x00800;
const OPT_FRAGMENT: u32 = 0x01000;
const OPT_MARK: u32 = 0x02000;
const OPT_SRCPT: u32 = 0x04000;
const OPT_DSTPT: u32 = 0x08000;
const OPT_NETLINK: u32 = 0x10000;
const OPT_LINENUMBERS: u32 = 0x20000;
const NUMBER_OF_OPT: usize = 18;
const OPTFLAGS: &[u8; 18] = b"nsdpjybvlxtifmsdo3";

/// ipchains' `commands_v_options`: `+` compulsory, `x` illegal, space optional.
const COMMANDS_V_OPTIONS: [&[u8; 18]; 14] = [
    /*INSERT*/ b"x        x       x",
    /*DELETE*/ b"x        x       x",
    /*DELETE_NUM*/ b"xxxxxxx xxxxxxxxxx",
    /*REPLACE*/ b"x     x  x       x",
    /*APPEND*/ b"x        x       x",
    /*LIST*/ b" xxxxxx x xxxxxxx ",
    /*FLUSH*/ b"xxxxxxx xxxxxxxxxx",
    /*ZERO*/ b"xxxxxxx xxxxxxxxxx",
    /*NEW_CHAIN*/ b"xxxxxxx xxxxxxxxxx",
    /*DEL_CHAIN*/ b"xxxxxxx xxxxxxxxxx",
    /*SET_POLICY*/ b"xxxxxxx xxxxxxxxxx",
    /*MASQUERADE*/ b"xxxxxxxxxxxxxxxxxx",
    /*SET_MASQ*/ b"xxxxxxx xxxxxxxxxx",
    /*CHECK*/ b"x+++x   xxx+ x  xx",
];

/// `inverse_for_options`.
const INVERSE_FOR_OPTIONS: [u8; NUMBER_OF_OPT] = [
    0,
    IP_FW_INV_SRCIP,
    IP_FW_INV_DSTIP,
    IP_FW_INV_PROTO,
    0,
    IP_FW_INV_SYN,
    0,
    0,
    0,
    0,
    0,
    IP_FW_INV_VIA,
    IP_FW_INV_FRAG,
    0,
    IP_FW_INV_SRCPT,
    IP_FW_INV_DSTPT,
    0,
    0,
];

fn bit_index(v: u32) -> usize {
    // ipchains' opt2char/cmd2char: shift until the value is 1 (index of the highest bit).
    (31 - v.max(1).leading_zeros()) as usize
}

fn opt2char(o: u32) -> char {
    OPTFLAGS
        .get(bit_index(o))
        .map(|&b| b as char)
        .unwrap_or('?')
}

fn cmd2char(c: u32) -> char {
    CMDFLAGS
        .get(bit_index(c))
        .map(|&b| b as char)
        .unwrap_or('?')
}

/// getopt_long's long option table: (name, has_arg 0/1/2, code).
const LONG_OPTS: &[(&str, u8, char)] = &[
    ("append", 1, 'A'),
    ("delete", 1, 'D'),
    ("insert", 1, 'I'),
    ("replace", 1, 'R'),
    ("list", 2, 'L'),
    ("flush", 2, 'F'),
    ("zero", 2, 'Z'),
    ("check", 1, 'C'),
    ("new-chain", 1, 'N'),
    ("delete-chain", 1, 'X'),
    ("policy", 1, 'P'),
    ("masquerading", 0, 'M'),
    ("set", 1, 'S'),
    ("bidirectional", 0, 'b'),
    ("source", 1, 's'),
    ("destination", 1, 'd'),
    ("src", 1, 's'),
    ("dst", 1, 'd'),
    ("source-port", 1, '1'),
    ("destination-port", 1, '2'),
    ("icmp-type", 1, '1'),
    ("sport", 1, '1'),
    ("dport", 1, '2'),
    ("protocol", 1, 'p'),
    ("interface", 1, 'i'),
    ("jump", 1, 'j'),
    ("TOS", 1, 't'),
    ("mark", 1, 'm'),
    ("numeric", 0, 'n'),
    ("log", 0, 'l'),
    ("output", 2, 'o'),
    ("verbose", 0, 'v'),
    ("exact", 0, 'x'),
    ("fragments", 0, 'f'),
    ("syn", 0, 'y'),
    ("version", 0, 'V'),
    ("help", 0, 'h'),
    ("line-numbers", 0, '3'),
    ("no-warnings", 0, 'W'),
];

/// Short options: char → has_arg (0 none, 1 required, 2 optional), from
/// "-A:C:D:R:I:L::F::Z::N:X::P:MS:Vh::o::p:s:d:j:i:fbvm:nlt:xy".
fn short_opt(c: char) -> Option<u8> {
    Some(match c {
        'A' | 'C' | 'D' | 'R' | 'I' | 'N' | 'P' | 'S' | 'p' | 's' | 'd' | 'j' | 'i' | 'm' | 't' => {
            1
        }
        'L' | 'F' | 'Z' | 'X' | 'h' | 'o' => 2,
        'M' | 'V' | 'f' | 'b' | 'v' | 'n' | 'l' | 'x' | 'y' => 0,
        _ => return None,
    })
}

/// The code getopt returns for a non-option argument in "-" (RETURN_IN_ORDER) mode.
const NONOPT: char = '\u{1}';

/// A minimal glibc getopt_long in RETURN_IN_ORDER mode, with `optind` visible to the caller.
struct Getopt<'a> {
    args: &'a [&'a str],
    optind: usize,
    /// Byte position inside `args[optind]` while walking a cluster of short options.
    nextchar: usize,
    done: bool,
}

impl<'a> Getopt<'a> {
    fn new(args: &'a [&'a str]) -> Self {
        Getopt {
            args,
            optind: 0,
            nextchar: 0,
            done: false,
        }
    }

    fn arg(&self, i: usize) -> Option<&'a str> {
        self.args.get(i).copied()
    }

    fn next(&mut self) -> Result<Option<(char, Option<&'a str>)>, ParseError> {
        if self.done {
            return Ok(None);
        }
        if self.nextchar == 0 {
            let Some(a) = self.arg(self.optind) else {
                self.done = true;
                return Ok(None);
            };
            if a == "--" {
                self.optind += 1;
                self.done = true;
                return Ok(None);
            }
            if let Some(long) = a.strip_prefix("--") {
                self.optind += 1;
                return self.long(long).map(Some);
            }
            if a.len() > 1 && a.starts_with('-') {
                self.nextchar = 1;
            } else {
                self.optind += 1;
                return Ok(Some((NONOPT, Some(a))));
            }
        }
        let a = self.args[self.optind];
        let c = a[self.nextchar..].chars().next().unwrap_or('?');
        self.nextchar += c.len_utf8();
        let rest = &a[self.nextchar..];
        let Some(has_arg) = short_opt(c) else {
            if rest.is_empty() {
                self.optind += 1;
                self.nextchar = 0;
            }
            return err(format!("invalid option -- '{c}'"));
        };
        match has_arg {
            0 => {
                if rest.is_empty() {
                    self.optind += 1;
                    self.nextchar = 0;
                }
                Ok(Some((c, None)))
            }
            1 => {
                self.nextchar = 0;
                if !rest.is_empty() {
                    self.optind += 1;
                    Ok(Some((c, Some(rest))))
                } else if let Some(v) = self.arg(self.optind + 1) {
                    self.optind += 2;
                    Ok(Some((c, Some(v))))
                } else {
                    self.optind += 1;
                    err(format!("option requires an argument -- '{c}'"))
                }
            }
            _ => {
                self.nextchar = 0;
                self.optind += 1;
                Ok(Some((c, if rest.is_empty() { None } else { Some(rest) })))
            }
        }
    }

    fn long(&mut self, body: &'a str) -> Result<(char, Option<&'a str>), ParseError> {
        let (name, value) = match body.find('=') {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let opt = match LONG_OPTS.iter().find(|o| o.0 == name) {
            Some(o) => *o,
            None => {
                let cands: Vec<_> = LONG_OPTS.iter().filter(|o| o.0.starts_with(name)).collect();
                match cands.first() {
                    None => return err(format!("unrecognized option '--{name}'")),
                    Some(first) => {
                        if cands.iter().any(|o| o.1 != first.1 || o.2 != first.2) {
                            return err(format!("option '--{name}' is ambiguous"));
                        }
                        **first
                    }
                }
            }
        };
        match (opt.1, value) {
            (0, Some(_)) => err(format!("option '--{}' doesn't allow an argument", opt.0)),
            (0, None) | (2, _) => Ok((opt.2, value)),
            (_, Some(v)) => Ok((opt.2, Some(v))),
            (_, None) => match self.arg(self.optind) {
                Some(v) => {
                    self.optind += 1;
                    Ok((opt.2, Some(v)))
                }
                None => err(format!("option '--{}' requires an argument", opt.0)),
            },
        }
    }
}

/// C `strtol`/`strtoul` on a whole string: leading space, sign, base prefix (16: optional 0x; 0: auto),
/// at least one digit and nothing after. Values beyond i128 are rejected.
fn strtol_full(s: &str, base: u32) -> Option<i128> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let has_hex_prefix = (t.starts_with("0x") || t.starts_with("0X")) && t.len() > 2;
    let (base, digits) = match base {
        16 if has_hex_prefix => (16, &t[2..]),
        0 if has_hex_prefix => (16, &t[2..]),
        0 if t.starts_with('0') && t.len() > 1 => (8, &t[1..]),
        0 => (10, t),
        b => (b, t),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(base)) {
        return None;
    }
    let v = i128::from_str_radix(digits, base).ok()?;
    Some(if neg { -v } else { v })
}

/// ipchains' `string_to_number(s, min, max)`.
fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let v = strtol_full(s, 10)?;
    if v >= i128::from(min) && v <= i128::from(max) {
        i64::try_from(v).ok()
    } else {
        None
    }
}

/// `dotted_to_addr`: four `string_to_number(0..255)` parts.
fn dotted_to_addr(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.splitn(4, '.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut b = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        b[i] = u8::try_from(string_to_number(p, 0, 255)?).ok()?;
    }
    Some(Ipv4Addr::from(b))
}

/// `parse_mask`.
fn parse_mask(mask: Option<&str>) -> Result<Ipv4Addr, ParseError> {
    let Some(m) = mask else {
        return Ok(Ipv4Addr::BROADCAST);
    };
    if let Some(a) = dotted_to_addr(m) {
        return Ok(a);
    }
    match string_to_number(m, 0, 32) {
        Some(0) => Ok(Ipv4Addr::UNSPECIFIED),
        Some(bits) => Ok(Ipv4Addr::from(u32::MAX << (32 - bits))),
        None => err(format!("invalid mask `{m}' specified")),
    }
}

/// `parse_hostnetworkmask`: address (dotted only here) and mask; the address is masked.
fn parse_hostnetworkmask(name: &str) -> Result<(Ipv4Addr, Ipv4Addr), ParseError> {
    let (host, mask) = match name.rfind('/') {
        Some(i) => (&name[..i], Some(&name[i + 1..])),
        None => (name, None),
    };
    let mask = parse_mask(mask)?;
    // "if a null mask is given, the name is ignored, like in "any/0""
    let host = if mask.is_unspecified() {
        "0.0.0.0"
    } else {
        host
    };
    let Some(addr) = dotted_to_addr(host) else {
        return err(format!("host/network `{host}' not found"));
    };
    Ok((Ipv4Addr::from(u32::from(addr) & u32::from(mask)), mask))
}

/// `parse_port`.
fn parse_port(port: &str, proto: u8) -> Result<u16, ParseError> {
    if proto != PROTO_ICMP && proto != PROTO_TCP && proto != PROTO_UDP {
        return err("can only specify ports for icmp, tcp or udp");
    }
    if let Some(n) = string_to_number(port, 0, 65535) {
        return Ok(n as u16);
    }
    if proto == PROTO_ICMP {
        return err(format!("invalid ICMP type `{port}' specified"));
    }
    match service_to_port(port, proto) {
        Some(p) => Ok(p),
        None => err(format!("invalid port/service `{port}' specified")),
    }
}

/// `parse_ports`: `p`, `lo:hi`, `:hi`, `lo:`; absent = any.
fn parse_ports(s: Option<&str>, proto: u8) -> Result<PortRange, ParseError> {
    let Some(s) = s else {
        return Ok(PortRange::ANY);
    };
    match s.find(':') {
        None => Ok(PortRange::single(parse_port(s, proto)?)),
        Some(i) => {
            let (a, b) = (&s[..i], &s[i + 1..]);
            let lo = if a.is_empty() {
                0
            } else {
                parse_port(a, proto)?
            };
            let hi = if b.is_empty() {
                0xFFFF
            } else {
                parse_port(b, proto)?
            };
            Ok(PortRange { lo, hi })
        }
    }
}

/// `parse_protocol`.
fn parse_protocol(s: &str) -> Result<u8, ParseError> {
    if let Some(n) = string_to_number(s, 0, 255) {
        return Ok(n as u8);
    }
    protocol_by_name(s)
        .ok_or_else(|| ParseError::Message(format!("unknown protocol `{s}' specified")))
}

/// `parse_interface`: name and wildcard flag. A name with whitespace is refused (ipchains
/// 1.3.9 passes it to the kernel, but no Linux interface can have one, and such a rule could not
/// be printed back as a spec or saved as ipchains-save text).
fn parse_interface(s: &str) -> Result<(String, bool), ParseError> {
    if s.len() > IFNAMSIZ {
        return err(format!(
            "interface name `{s}' must be shorter than IFNAMSIZ ({IFNAMSIZ})"
        ));
    }
    if s.chars().any(char::is_whitespace) {
        return err(format!("Invalid interface name `{s}'"));
    }
    if s.is_empty() {
        Ok((String::new(), true))
    } else if let Some(p) = s.strip_suffix('+') {
        Ok((p.to_string(), true))
    } else {
        Ok((s.to_string(), false))
    }
}

/// `parse_mark`: (value, absolute).
fn parse_mark(s: &str) -> Result<(u32, bool), ParseError> {
    let (sign, body) = match s.as_bytes().first() {
        Some(b'-') => (Some(false), &s[1..]),
        Some(b'+') => (Some(true), &s[1..]),
        _ => (None, s),
    };
    let bad = || ParseError::Message(format!("Bad value `{s}' for -m."));
    let v = strtol_full(body, 0).ok_or_else(bad)?;
    // strtoul: a negative number wraps to a huge value, which is > UINT_MAX unless it is 0.
    if v != 0 && !(0..=i128::from(u32::MAX)).contains(&v) {
        return Err(bad());
    }
    let l = v as u32;
    Ok(match sign {
        Some(false) => ((l as i32).wrapping_neg() as u32, false),
        Some(true) => (l, false),
        None => (l, true),
    })
}

/// `parse_outputsize`.
fn parse_outputsize(s: Option<&str>) -> Result<u16, ParseError> {
    match s {
        None => Ok(65535),
        Some(v) => match string_to_number(v, 0, 65535) {
            Some(n) => Ok(n as u16),
            None => err(format!("-o argument must be 0-65535, not `{v}'")),
        },
    }
}

/// `parse_hexbyte`.
fn parse_hexbyte(s: &str) -> Result<u8, ParseError> {
    match strtol_full(s, 16) {
        Some(n) if (0..=255).contains(&n) => Ok(n as u8),
        _ => err(format!("invalid hexbyte `{s}' specified")),
    }
}

/// `parse_target`.
fn parse_target(s: &str) -> Result<String, ParseError> {
    if s.is_empty() {
        return err("Invalid target name (too short)");
    }
    if s.len() > MAX_LABEL_LEN {
        return err(format!(
            "Invalid target name `{s}' ({MAX_LABEL_LEN} chars max)"
        ));
    }
    // Any Unicode whitespace, not only ASCII: specs are split on `char::is_whitespace`.
    if s.chars().any(char::is_whitespace) {
        return err(format!("Invalid target name `{s}'"));
    }
    Ok(s.to_string())
}

/// `parse_policy`.
fn parse_policy(chain: &str, policy: &str) -> Result<String, ParseError> {
    if policy == "MASQ" {
        if chain != "forward" {
            return err("`-P MASQ' only valid for `forward' chain.");
        }
        return Ok(policy.to_string());
    }
    if chain != "input" && chain != "output" && chain != "forward" {
        return err("Can only set policy in built-in chains.");
    }
    if policy != "ACCEPT" && policy != "DENY" && policy != "REJECT" {
        return err(format!("Invalid policy `{policy}' for -P"));
    }
    Ok(policy.to_string())
}

/// `parse_rulenumber`.
fn parse_rulenumber(s: &str) -> Result<usize, ParseError> {
    match string_to_number(s, 1, i64::from(i32::MAX)) {
        Some(n) => Ok(n as usize),
        None => err(format!("Invalid rule number `{s}'")),
    }
}

/// `parse_icmp`: type and code ranges from the source/destination port strings.
fn parse_icmp(
    src: Option<&str>,
    dst: Option<&str>,
    options: &mut u32,
    invflags: u8,
    checking: bool,
) -> Result<(PortRange, PortRange), ParseError> {
    if let Some(s) = src {
        let mut found: Option<usize> = None;
        for (i, c) in ICMP_CODES.iter().enumerate() {
            let n = c.name.as_bytes();
            if n.len() >= s.len() && n[..s.len()].eq_ignore_ascii_case(s.as_bytes()) {
                if let Some(m) = found {
                    return err(format!(
                        "Ambiguous ICMP `{s}' : `{}' or `{}'?",
                        ICMP_CODES[m].name, c.name
                    ));
                }
                found = Some(i);
            }
        }
        if let Some(m) = found {
            let c = ICMP_CODES[m];
            if dst.is_some() {
                return err("Can't use ICMP name and destination port together");
            }
            *options |= OPT_DSTPT;
            let ty = PortRange::single(c.ty);
            let mut code = PortRange {
                lo: c.code_min,
                hi: c.code_max,
            };
            if checking {
                if c.test_code_min {
                    code.hi = code.lo;
                } else if code.lo != code.hi {
                    return err("Must specify exact ICMP type for testing");
                }
            }
            // "Inverting won't do what they think it will do."
            if invflags & (IP_FW_INV_SRCPT | IP_FW_INV_DSTPT) != 0 {
                return err("Can't invert named ICMP types");
            }
            return Ok((ty, code));
        }
    }
    Ok((parse_ports(src, PROTO_ICMP)?, parse_ports(dst, PROTO_ICMP)?))
}

/// `check_tos` (RFC 1349): errors, and the warnings ipchains prints.
fn check_tos(and: u8, xor: u8, warnings: &mut Vec<String>, warn: bool) -> Result<(), ParseError> {
    fn count(bits: u8) -> u32 {
        (bits & 0x0E).count_ones()
    }
    // "The LSB Must Be Untouched (RFC 1349)."
    if and & 1 == 0 || xor & 1 != 0 {
        return err("TOS manipulation cannot alter bit 0 (RFC1349)");
    }
    // "Don't create packets with more than 1 TOS bit set, (RFC 1349)."
    if count(!and & xor) > 1 {
        return err("TOS manipulation cannot set multiple TOS bits (RFC1349)");
    }
    const TOS_VALUES: [(u8, &str); 5] = [
        (0x10, "Minimize Delay"),
        (0x08, "Minimize Throughput"),
        (0x04, "Maximize Reliability"),
        (0x02, "Minimize Cost"),
        (0x00, "Normal Service"),
    ];
    for (v, name) in TOS_VALUES {
        if count((v & and) ^ xor) > 1 && warn {
            warnings.push(format!(
                "Warning: TOS manipulation may set multiple TOS bits for {name} TOS (0x{v:02x})"
            ));
        }
    }
    Ok(())
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
/// `["-A", "forward", "-s", "192.168.1.0/24", "-j", "MASQ"]`.
pub fn parse_command(args: &[&str]) -> Result<Invocation, ParseError> {
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
    finish(st)
}

fn finish(mut st: State<'_>) -> Result<Invocation, ParseError> {
    if st.command & (CMD_REPLACE | CMD_INSERT | CMD_DELETE | CMD_APPEND) != 0 {
        if st.options & OPT_DESTINATION == 0 {
            st.dhost = Some("0.0.0.0/0");
        }
        if st.options & OPT_SOURCE == 0 {
            st.shost = Some("0.0.0.0/0");
        }
    }
    let proto = st.rule.proto;
    if let Some(h) = st.shost {
        let (a, m) = parse_hostnetworkmask(h)?;
        st.rule.src = a;
        st.rule.src_mask = m;
        if proto != PROTO_ICMP {
            st.rule.src_ports = parse_ports(st.srcpts, proto)?;
        }
    }
    if let Some(h) = st.dhost {
        let (a, m) = parse_hostnetworkmask(h)?;
        st.rule.dst = a;
        st.rule.dst_mask = m;
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
