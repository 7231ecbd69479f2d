//! Text views of the chains, byte for byte as ipchains 1.3.9 and the 2.2 kernel print them:
//! `ipchains -L [chain] [-n] [-v] [-x] [--line-numbers]` (`list_entries` / `print_firewall`),
//! the `-v` rule echo, `/proc/net/ip_fwchains` (`dump_rule`) and `/proc/net/ip_fwnames`.
//! No DNS: non-numeric mode prints `anywhere` for /0 and dotted addresses otherwise.
//! Must not change any state (except `list_and_zero`, which is `-L -Z`).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::model::{
    ChainError, Counter, Firewall, Rule, Target, IP_FW_INV_DSTIP, IP_FW_INV_DSTPT, IP_FW_INV_FRAG,
    IP_FW_INV_PROTO, IP_FW_INV_SRCIP, IP_FW_INV_SRCPT, IP_FW_INV_SYN, IP_FW_INV_VIA, PROTO_ICMP,
    PROTO_TCP, PROTO_UDP,
};
use super::tables::{port_to_service, proto_to_name, ICMP_CODES};

/// Listing modifiers of `ipchains -L`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `-n`: numeric addresses and ports.
    pub numeric: bool,
    /// `-v`: counters, TOS, interface, mark, outsize.
    pub verbose: bool,
    /// `-x`: exact counters instead of K/M/G.
    pub exact: bool,
    /// `--line-numbers`.
    pub line_numbers: bool,
}

#[derive(Clone, Copy)]
struct Fmt {
    numeric: bool,
    nocounts: bool,
    kmg: bool,
    options: bool,
    notable: bool,
    header: bool,
    tos: bool,
    via: bool,
    mark: bool,
    netlink: bool,
    linenumbers: bool,
}

impl Fmt {
    fn list(o: ListOptions) -> Fmt {
        Fmt {
            numeric: o.numeric,
            nocounts: !o.verbose,
            kmg: !o.exact,
            options: true,
            notable: false,
            header: true,
            tos: o.verbose,
            via: o.verbose,
            mark: o.verbose,
            netlink: o.verbose,
            linenumbers: o.line_numbers,
        }
    }

    /// `FMT_PRINT_RULE`, used for the `-v` echo of a rule.
    fn print_rule() -> Fmt {
        Fmt {
            numeric: true,
            nocounts: true,
            kmg: false,
            options: true,
            notable: true,
            header: false,
            tos: true,
            via: true,
            mark: true,
            netlink: true,
            linenumbers: false,
        }
    }
}

fn dotted(a: Ipv4Addr) -> String {
    a.to_string()
}

/// ipchains' `mask_to_dotted`: "" for /32, `/bits`, or `/a.b.c.d` for odd masks.
fn mask_to_dotted(mask: Ipv4Addr) -> String {
    let m = u32::from(mask);
    if m == u32::MAX {
        return String::new();
    }
    let ones = m.leading_ones();
    if m.count_ones() == ones {
        format!("/{ones}")
    } else {
        format!("/{mask}")
    }
}

fn port_text(out: &mut String, numeric: bool, port: u16, proto: u8) {
    match (numeric, port_to_service(port, proto)) {
        (false, Some(name)) => out.push_str(name),
        _ => {
            let _ = write!(out, "{port}");
        }
    }
}

fn count(out: &mut String, f: Fmt, cnt: u64, exact_width: usize) {
    if f.kmg {
        if cnt > 99999 {
            let kb = (cnt + 500) / 1000;
            if kb > 9999 {
                let mb = (cnt + 500_000) / 1_000_000;
                if mb > 9999 {
                    let gb = (mb + 500) / 1000;
                    if f.notable {
                        let _ = write!(out, "{gb}G ");
                    } else {
                        let _ = write!(out, "{gb:4}G ");
                    }
                } else if f.notable {
                    let _ = write!(out, "{mb}M ");
                } else {
                    let _ = write!(out, "{mb:4}M ");
                }
            } else if f.notable {
                let _ = write!(out, "{kb}K ");
            } else {
                let _ = write!(out, "{kb:4}K ");
            }
        } else if f.notable {
            let _ = write!(out, "{cnt} ");
        } else {
            let _ = write!(out, "{cnt:5} ");
        }
    } else if f.notable {
        let _ = write!(out, "{cnt} ");
    } else {
        let _ = write!(out, "{cnt:>exact_width$} ");
    }
}

/// ipchains' `print_firewall`.
fn print_firewall(out: &mut String, r: &Rule, num: usize, c: Counter, f: Fmt) {
    let nt = f.notable;
    if f.header {
        if f.linenumbers {
            let _ = write!(out, "{:<4} ", "num");
        }
        if !f.nocounts {
            if f.kmg {
                let _ = write!(out, "{:>5} {:>5} ", "pkts", "bytes");
            } else {
                let _ = write!(out, "{:>8} {:>10} ", "pkts", "bytes");
            }
        }
        let _ = write!(out, "{:<9} ", "target");
        out.push_str(" prot ");
        if f.options {
            out.push_str("opt    ");
        }
        if f.tos {
            out.push_str("tosa tosx ");
        }
        if f.via {
            let _ = write!(out, " {:<10} ", "ifname");
        }
        if f.mark {
            let _ = write!(out, "{:<10} ", "mark");
        }
        if f.netlink {
            let _ = write!(out, "{:<7} ", "outsize");
        }
        let _ = write!(out, " {:<20} ", "source");
        let _ = write!(out, " {:<20} ", "destination");
        out.push_str(" ports\n");
    }
    if f.linenumbers {
        if nt {
            let _ = write!(out, "{num} ");
        } else {
            let _ = write!(out, "{num:<4} ");
        }
    }
    if !f.nocounts {
        count(out, f, c.packets, 8);
        count(out, f, c.bytes, 10);
    }
    let label = r.target.label();
    if nt {
        let _ = write!(out, "{label} ");
    } else {
        let _ = write!(out, "{label:<9} ");
    }
    out.push(if r.inv(IP_FW_INV_PROTO) { '!' } else { ' ' });
    match proto_to_name(r.proto) {
        Some(n) if nt => {
            let _ = write!(out, "{n} ");
        }
        Some(n) => {
            let _ = write!(out, "{n:<5}");
        }
        None if nt => {
            let _ = write!(out, "{} ", r.proto);
        }
        None => {
            let _ = write!(out, "{:<5}", r.proto);
        }
    }
    if f.options {
        if nt {
            out.push_str("opt    ");
        }
        out.push(if r.inv(IP_FW_INV_SYN) { '!' } else { '-' });
        out.push(if r.syn { 'y' } else { '-' });
        out.push(if r.inv(IP_FW_INV_FRAG) { '!' } else { '-' });
        out.push(if r.fragment { 'f' } else { '-' });
        out.push(if r.log { 'l' } else { '-' });
        out.push(if r.netlink.is_some() { 'o' } else { '-' });
        out.push(' ');
    }
    if f.tos {
        if nt {
            out.push_str("tos ");
        }
        let _ = write!(out, "0x{:02X} 0x{:02X} ", r.tos_and, r.tos_xor);
    }
    if f.via {
        out.push(if r.inv(IP_FW_INV_VIA) { '!' } else { ' ' });
        let name = if r.iface.is_empty() {
            if f.numeric {
                "*".to_string()
            } else {
                "any".to_string()
            }
        } else if r.iface_wildcard {
            format!("{}+", r.iface)
        } else {
            r.iface.clone()
        };
        let name: String = name.chars().take(16).collect();
        if nt {
            let _ = write!(out, "via {name} ");
        } else {
            let _ = write!(out, "{name:<10} ");
        }
    }
    if f.mark {
        if r.mark_absolute || r.mark != 0 {
            // "%+x" has no effect on an unsigned conversion: relative marks print like absolute ones.
            if nt {
                let _ = write!(out, "mark 0x{:x} ", r.mark);
            } else {
                let _ = write!(out, "0x{:<10x} ", r.mark);
            }
        } else if !nt {
            out.push_str("           ");
        }
    }
    if f.netlink {
        match r.netlink {
            Some(n) if n != 0xFFFF => {
                if nt {
                    let _ = write!(out, "outsize {n} ");
                } else {
                    let _ = write!(out, "{n:<7} ");
                }
            }
            _ => {
                if !nt {
                    out.push_str("        ");
                }
            }
        }
    }
    if nt {
        out.push_str("  ");
    }
    out.push(if r.inv(IP_FW_INV_SRCIP) { '!' } else { ' ' });
    let src = if r.src_mask.is_unspecified() && !f.numeric {
        "anywhere".to_string()
    } else {
        format!("{}{}", dotted(r.src), mask_to_dotted(r.src_mask))
    };
    if nt {
        let _ = write!(out, "{src} ");
    } else {
        let _ = write!(out, "{src:<20} ");
    }
    let dst = if r.dst_mask.is_unspecified() && !f.numeric {
        "anywhere".to_string()
    } else {
        format!("{}{}", dotted(r.dst), mask_to_dotted(r.dst_mask))
    };
    let dbang = if r.inv(IP_FW_INV_DSTIP) { "!" } else { "" };
    if nt {
        let _ = write!(out, "-> {dbang}{dst}");
    } else {
        let _ = write!(out, "{dbang}{dst:<20}");
    }
    if nt {
        out.push_str("  ");
    }
    if r.proto != PROTO_TCP && r.proto != PROTO_UDP && r.proto != PROTO_ICMP {
        out.push_str("  n/a\n");
        return;
    }
    if r.proto == PROTO_ICMP && !r.inv(IP_FW_INV_SRCPT) && !r.inv(IP_FW_INV_DSTPT) && !f.numeric {
        if let Some(c) = ICMP_CODES.iter().find(|c| {
            c.ty == r.src_ports.lo
                && c.ty == r.src_ports.hi
                && c.code_min == r.dst_ports.lo
                && c.code_max == r.dst_ports.hi
        }) {
            let _ = writeln!(out, "  {}", c.name);
            return;
        }
    }
    let side = |out: &mut String, inv: bool, lo: u16, hi: u16| {
        out.push_str(if inv { " !" } else { "  " });
        if lo == 0 && hi == 0xFFFF {
            out.push_str(if f.numeric { "*" } else { "any" });
        } else if lo == hi {
            port_text(out, f.numeric, lo, r.proto);
        } else {
            port_text(out, f.numeric, lo, r.proto);
            out.push(':');
            port_text(out, f.numeric, hi, r.proto);
        }
    };
    side(out, r.inv(IP_FW_INV_SRCPT), r.src_ports.lo, r.src_ports.hi);
    out.push_str(" -> ");
    side(out, r.inv(IP_FW_INV_DSTPT), r.dst_ports.lo, r.dst_ports.hi);
    if r.target == Target::Redirect {
        if !nt {
            out.push_str(" => ");
        }
        if r.redirect_port == 0 {
            out.push_str(if f.numeric { " *" } else { " any" });
        } else {
            port_text(out, f.numeric, r.redirect_port, r.proto);
        }
    }
    out.push('\n');
}

impl Rule {
    /// The one-line echo `ipchains -v` prints for -A/-I/-D/-R/-C (`FMT_PRINT_RULE`), with newline.
    pub fn verbose_line(&self) -> String {
        let mut s = String::new();
        print_firewall(&mut s, self, 0, Counter::default(), Fmt::print_rule());
        s
    }
}

impl Firewall {
    /// `ipchains -L [chain]` output, byte for byte. Unknown chain: [`ChainError::NoChain`].
    pub fn list(&self, chain: Option<&str>, opts: ListOptions) -> Result<String, ChainError> {
        let mut out = String::new();
        let mut found = false;
        let mut f = Fmt::list(opts);
        for (ci, c) in self.chains.iter().enumerate() {
            if chain.is_some_and(|n| n != c.name) {
                continue;
            }
            found = true;
            let _ = write!(out, "Chain {} ", c.name);
            match c.policy {
                None => {
                    let _ = write!(out, "({} references):", c.refcount);
                }
                Some(p) => {
                    let _ = write!(out, "(policy {p}");
                    if !f.nocounts {
                        let pc = self.stats[ci].policy;
                        let _ = write!(out, ": {} packets, {} bytes", pc.packets, pc.bytes);
                    }
                    out.push_str("):");
                }
            }
            out.push('\n');
            f.header = true;
            for (i, e) in c.entries.iter().enumerate() {
                print_firewall(&mut out, &e.rule, i + 1, self.stats[ci].rules[i], f);
                f.header = false;
            }
        }
        if found {
            Ok(out)
        } else {
            Err(ChainError::NoChain)
        }
    }

    /// `ipchains -L -Z`: list all chains, then zero the rule counters.
    pub fn list_and_zero(&mut self, opts: ListOptions) -> Result<String, ChainError> {
        let s = self.list(None, opts)?;
        self.zero(None)?;
        Ok(s)
    }

    /// `/proc/net/ip_fwchains`: one 18-token line per rule (kernel `dump_rule`).
    pub fn proc_fwchains(&self) -> String {
        let mut out = String::new();
        for (ci, c) in self.chains.iter().enumerate() {
            for (i, e) in c.entries.iter().enumerate() {
                let r = &e.rule;
                let k = self.stats[ci].rules[i];
                let iface = if r.iface.is_empty() {
                    "-"
                } else {
                    r.iface.as_str()
                };
                let iface: String = iface.chars().take(16).collect();
                let _ = writeln!(
                    out,
                    "{:>9} {:08X}/{:08X}->{:08X}/{:08X} {} {:X} {:X} {} {:<9} {:<9} {:<9} {:<9} {}-{} {}-{} A{:02X} X{:02X} {:08X} {} {} {:>9}",
                    c.name,
                    u32::from(r.src),
                    u32::from(r.src_mask),
                    u32::from(r.dst),
                    u32::from(r.dst_mask),
                    iface,
                    r.fw_flags(),
                    r.invflags,
                    r.proto,
                    (k.packets >> 32) as u32,
                    k.packets as u32,
                    (k.bytes >> 32) as u32,
                    k.bytes as u32,
                    r.src_ports.lo,
                    r.src_ports.hi,
                    r.dst_ports.lo,
                    r.dst_ports.hi,
                    r.tos_and,
                    r.tos_xor,
                    r.redirect_port,
                    r.mark,
                    r.netlink.unwrap_or(0),
                    r.target.label(),
                );
            }
        }
        out
    }

    /// `/proc/net/ip_fwnames`: `label policy refcount pktsHi pktsLo bytesHi bytesLo` per chain.
    pub fn proc_fwnames(&self) -> String {
        let mut out = String::new();
        for (ci, c) in self.chains.iter().enumerate() {
            let p = self.stats[ci].policy;
            let _ = writeln!(
                out,
                "{} {} {} {} {} {} {}",
                c.name,
                c.policy.map_or("-", |p| p.label()),
                c.refcount,
                (p.packets >> 32) as u32,
                p.packets as u32,
                (p.bytes >> 32) as u32,
                p.bytes as u32
            );
        }
        out
    }
}
