//! ipchains 1.3.9's value parsers (`strtol`, addresses and masks, ports, protocols, interfaces,
//! marks, ICMP names, targets, TOS checks) with its exact error wording. Must not see the option
//! tables' legality (`getopt`) or build an invocation.

use std::net::Ipv4Addr;

use crate::chains::model::{
    PortRange, IFNAMSIZ, IP_FW_INV_DSTPT, IP_FW_INV_SRCPT, MAX_LABEL_LEN, PROTO_ICMP, PROTO_TCP,
    PROTO_UDP,
};
use crate::chains::tables::{protocol_by_name, service_to_port, ICMP_CODES};

use super::*;

/// C `strtol`/`strtoul` on a whole string: leading space, sign, base prefix (16: optional 0x; 0: auto),
/// at least one digit and nothing after. Values beyond i128 are rejected.
pub(super) fn strtol_full(s: &str, base: u32) -> Option<i128> {
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
pub(super) fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let v = strtol_full(s, 10)?;
    if v >= i128::from(min) && v <= i128::from(max) {
        i64::try_from(v).ok()
    } else {
        None
    }
}

/// `dotted_to_addr`: four `string_to_number(0..255)` parts.
pub(super) fn dotted_to_addr(s: &str) -> Option<Ipv4Addr> {
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
pub(super) fn parse_mask(mask: Option<&str>) -> Result<Ipv4Addr, ParseError> {
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

/// `parse_hostnetworkmask`: the addresses and the mask; each address is masked and duplicates
/// (after masking) are dropped, first one kept, as ipchains did. A name that is not a dotted quad
/// goes to `resolver` (`parse_hostnetwork`: networks first, then every address of the host).
pub(super) fn parse_hostnetworkmask(
    name: &str,
    resolver: &dyn Resolver,
) -> Result<(Vec<Ipv4Addr>, Ipv4Addr), ParseError> {
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
    let found = match dotted_to_addr(host) {
        Some(a) => vec![a],
        None => match resolver.network(host) {
            Some(a) => vec![a],
            None => resolver.host(host).unwrap_or_default(),
        },
    };
    if found.is_empty() {
        return err(format!("host/network `{host}' not found"));
    }
    let mut addrs: Vec<Ipv4Addr> = Vec::with_capacity(found.len());
    for a in found {
        let a = Ipv4Addr::from(u32::from(a) & u32::from(mask));
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    Ok((addrs, mask))
}

/// `parse_port`.
pub(super) fn parse_port(port: &str, proto: u8) -> Result<u16, ParseError> {
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
pub(super) fn parse_ports(s: Option<&str>, proto: u8) -> Result<PortRange, ParseError> {
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
pub(super) fn parse_protocol(s: &str) -> Result<u8, ParseError> {
    if let Some(n) = string_to_number(s, 0, 255) {
        return Ok(n as u8);
    }
    protocol_by_name(s)
        .ok_or_else(|| ParseError::Message(format!("unknown protocol `{s}' specified")))
}

/// `parse_interface`: name and wildcard flag. A name with whitespace is refused (ipchains
/// 1.3.9 passes it to the kernel, but no Linux interface can have one, and such a rule could not
/// be printed back as a spec or saved as ipchains-save text).
pub(super) fn parse_interface(s: &str) -> Result<(String, bool), ParseError> {
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
pub(super) fn parse_mark(s: &str) -> Result<(u32, bool), ParseError> {
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
pub(super) fn parse_outputsize(s: Option<&str>) -> Result<u16, ParseError> {
    match s {
        None => Ok(65535),
        Some(v) => match string_to_number(v, 0, 65535) {
            Some(n) => Ok(n as u16),
            None => err(format!("-o argument must be 0-65535, not `{v}'")),
        },
    }
}

/// `parse_hexbyte`.
pub(super) fn parse_hexbyte(s: &str) -> Result<u8, ParseError> {
    match strtol_full(s, 16) {
        Some(n) if (0..=255).contains(&n) => Ok(n as u8),
        _ => err(format!("invalid hexbyte `{s}' specified")),
    }
}

/// `parse_target`.
pub(super) fn parse_target(s: &str) -> Result<String, ParseError> {
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
pub(super) fn parse_policy(chain: &str, policy: &str) -> Result<String, ParseError> {
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
pub(super) fn parse_rulenumber(s: &str) -> Result<usize, ParseError> {
    match string_to_number(s, 1, i64::from(i32::MAX)) {
        Some(n) => Ok(n as usize),
        None => err(format!("Invalid rule number `{s}'")),
    }
}

/// `parse_icmp`: type and code ranges from the source/destination port strings.
pub(super) fn parse_icmp(
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
pub(super) fn check_tos(
    and: u8,
    xor: u8,
    warnings: &mut Vec<String>,
    warn: bool,
) -> Result<(), ParseError> {
    pub(super) fn count(bits: u8) -> u32 {
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
