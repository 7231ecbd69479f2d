//! Printing a [`Rule`] back as a canonical ipchains spec (`-p tcp -s 10.0.0.0/8 1024:65535 -j ACCEPT`)
//! that parses to the same rule. Must not render listings (see `render`).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::model::{
    PortRange, Rule, Target, IP_FW_INV_DSTIP, IP_FW_INV_DSTPT, IP_FW_INV_FRAG, IP_FW_INV_PROTO,
    IP_FW_INV_SRCIP, IP_FW_INV_SRCPT, IP_FW_INV_SYN, IP_FW_INV_VIA, PROTO_ICMP, PROTO_TCP,
    PROTO_UDP,
};

/// `addr/bits`, or `addr/dotted-mask` for a non-contiguous mask.
pub(crate) fn addr_mask(addr: Ipv4Addr, mask: Ipv4Addr) -> String {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    if m.count_ones() == ones {
        format!("{addr}/{ones}")
    } else {
        format!("{addr}/{mask}")
    }
}

fn ports(r: PortRange) -> String {
    if r.lo == r.hi {
        r.lo.to_string()
    } else {
        format!("{}:{}", r.lo, r.hi)
    }
}

fn proto_name(p: u8) -> String {
    match p {
        0 => "all".into(),
        PROTO_TCP => "tcp".into(),
        PROTO_UDP => "udp".into(),
        PROTO_ICMP => "icmp".into(),
        n => n.to_string(),
    }
}

impl Rule {
    /// The canonical ipchains spec of this rule (without `-A chain`); parses back to an equal rule.
    pub fn to_spec(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let bang = |b: bool| if b { "! " } else { "" };
        if self.proto != 0 || self.inv(IP_FW_INV_PROTO) {
            out.push(format!(
                "-p {}{}",
                bang(self.inv(IP_FW_INV_PROTO)),
                proto_name(self.proto)
            ));
        }
        for (flag, addr, mask, pr, pinv, inv) in [
            (
                "-s",
                self.src,
                self.src_mask,
                self.src_ports,
                IP_FW_INV_SRCPT,
                IP_FW_INV_SRCIP,
            ),
            (
                "-d",
                self.dst,
                self.dst_mask,
                self.dst_ports,
                IP_FW_INV_DSTPT,
                IP_FW_INV_DSTIP,
            ),
        ] {
            let has_ports = !pr.is_any() || self.inv(pinv);
            if !mask.is_unspecified() || self.inv(inv) || has_ports {
                let mut s = format!("{flag} {}{}", bang(self.inv(inv)), addr_mask(addr, mask));
                if has_ports {
                    // ipchains `parse_ports` only checks the protocol ("can only specify ports
                    // for icmp, tcp or udp") for a bound that is written out, so `-p 2 ! --sport :`
                    // is accepted and keeps an inverted full range; print it the same way, since
                    // `! 0:65535` would not parse back for such a protocol.
                    let text = if pr.is_any()
                        && !matches!(self.proto, PROTO_TCP | PROTO_UDP | PROTO_ICMP)
                    {
                        ":".to_string()
                    } else {
                        ports(pr)
                    };
                    let _ = write!(s, " {}{text}", bang(self.inv(pinv)));
                }
                out.push(s);
            }
        }
        if !self.iface.is_empty() || self.inv(IP_FW_INV_VIA) {
            let plus = if self.iface_wildcard { "+" } else { "" };
            out.push(format!(
                "-i {}{}{}",
                bang(self.inv(IP_FW_INV_VIA)),
                self.iface,
                plus
            ));
        }
        if self.fragment {
            out.push(format!("{}-f", bang(self.inv(IP_FW_INV_FRAG))));
        }
        if self.syn {
            out.push(format!("{}-y", bang(self.inv(IP_FW_INV_SYN))));
        }
        if self.log {
            out.push("-l".into());
        }
        match self.netlink {
            Some(65535) => out.push("-o".into()),
            Some(n) => out.push(format!("-o {n}")),
            None => {}
        }
        if self.mark_absolute {
            out.push(format!("-m {}", self.mark));
        } else if self.mark != 0 {
            let v = self.mark as i32;
            if v < 0 {
                out.push(format!("-m -{}", v.unsigned_abs()));
            } else {
                out.push(format!("-m +{v}"));
            }
        }
        if self.tos_and != 0xFF || self.tos_xor != 0 {
            out.push(format!("-t 0x{:02x} 0x{:02x}", self.tos_and, self.tos_xor));
        }
        match &self.target {
            Target::None => {}
            Target::Redirect if self.redirect_port != 0 => {
                out.push(format!("-j REDIRECT {}", self.redirect_port));
            }
            t => out.push(format!("-j {}", t.label())),
        }
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use crate::chains::parse_rule;

    /// Found by the `rule_spec` fuzz target: `-p2 ! --sp=:` parsed, but printed as
    /// `-p 2 -s 0.0.0.0/0 ! 0:65535`, which does not parse back.
    #[test]
    fn inverted_full_port_range_round_trips_for_a_portless_protocol() {
        let spec = parse_rule("-p2 ! --sp=:")
            .expect("ipchains accepts an empty port range for any protocol");
        let printed = spec.rule.to_spec();
        assert_eq!(printed, "-p 2 -s 0.0.0.0/0 ! :");
        let again = parse_rule(&printed).expect("printed spec parses");
        assert_eq!(again.rule, spec.rule);
    }

    /// TCP keeps the explicit form.
    #[test]
    fn inverted_full_port_range_for_tcp_prints_numbers() {
        let spec = parse_rule("-p tcp -d 0/0 ! :").expect("valid spec");
        let printed = spec.rule.to_spec();
        assert_eq!(printed, "-p tcp -d 0.0.0.0/0 ! 0:65535");
        assert_eq!(parse_rule(&printed).expect("parses").rule, spec.rule);
    }
}
