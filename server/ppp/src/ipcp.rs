//! IPCP option negotiation (RFC 1332, RFC 1877 DNS): IP-Address, primary/secondary DNS; VJ
//! compression and everything else rejected. Owns option values only; the automaton is [`super::fsm`].

use std::net::Ipv4Addr;

use super::fsm::Negotiator;
use super::options::{be32, parse, put, ConfigReply, Verdict};

/// IPCP protocol number.
pub const PROTOCOL: u16 = 0x8021;
/// IPv4 datagram protocol number.
pub const IPV4: u16 = 0x0021;

const OPT_ADDRESS: u8 = 3;
const OPT_DNS1: u8 = 129;
const OPT_DNS2: u8 = 131;

/// What IPCP asks for and offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpcpConfig {
    /// Our address; 0.0.0.0 asks the peer to assign one (RFC 1332 §3.3).
    pub local: Ipv4Addr,
    /// Address we assign to the peer (access server), if any.
    pub assign: Option<Ipv4Addr>,
    /// Ask the peer for primary and secondary DNS (RFC 1877).
    pub request_dns: bool,
    /// DNS servers we hand out (access server), at most two are used.
    pub dns: Vec<Ipv4Addr>,
}

/// IPCP's [`Negotiator`].
#[derive(Debug)]
pub struct Ipcp {
    cfg: IpcpConfig,
    want_addr: Option<Ipv4Addr>,
    want_dns: [Option<Ipv4Addr>; 2],
    last_request: Vec<u8>,
    /// Our address as acked by the peer.
    pub local: Ipv4Addr,
    /// The peer's address from its acked request (or the one we assigned).
    pub peer: Ipv4Addr,
    /// DNS servers the peer acked for us.
    pub dns: Vec<Ipv4Addr>,
    /// Why negotiation gave up, if it did.
    pub failure: Option<String>,
}

fn addr(d: &[u8]) -> Option<Ipv4Addr> {
    be32(d).map(Ipv4Addr::from)
}

impl Ipcp {
    /// New negotiator.
    #[must_use]
    pub fn new(cfg: IpcpConfig) -> Self {
        let mut s = Self {
            cfg,
            want_addr: None,
            want_dns: [None, None],
            last_request: Vec::new(),
            local: Ipv4Addr::UNSPECIFIED,
            peer: Ipv4Addr::UNSPECIFIED,
            dns: Vec::new(),
            failure: None,
        };
        s.reset();
        s
    }
}

impl Negotiator for Ipcp {
    fn reset(&mut self) {
        self.want_addr = Some(self.cfg.local);
        let d = if self.cfg.request_dns {
            Some(Ipv4Addr::UNSPECIFIED)
        } else {
            None
        };
        self.want_dns = [d, d];
        self.local = Ipv4Addr::UNSPECIFIED;
        self.peer = self.cfg.assign.unwrap_or(Ipv4Addr::UNSPECIFIED);
        self.dns.clear();
        self.failure = None;
    }

    fn request(&mut self, out: &mut Vec<u8>) {
        if let Some(a) = self.want_addr {
            put(out, OPT_ADDRESS, &a.octets());
        }
        if let Some(d) = self.want_dns[0] {
            put(out, OPT_DNS1, &d.octets());
        }
        if let Some(d) = self.want_dns[1] {
            put(out, OPT_DNS2, &d.octets());
        }
        self.last_request = out.clone();
    }

    fn handle_request(&mut self, options: &[u8], nak_allowed: bool) -> ConfigReply {
        let Some(opts) = parse(options) else {
            return ConfigReply::Reject(options.to_vec());
        };
        let mut v = Verdict::default();
        let mut nak_orig = Vec::new();
        let mut peer = self.cfg.assign.unwrap_or(Ipv4Addr::UNSPECIFIED);
        for (ty, d) in opts {
            match (ty, addr(d)) {
                (OPT_ADDRESS, Some(a)) => match self.cfg.assign {
                    Some(p) if p == a => peer = a,
                    // RFC 1332 §3.3: Nak with the address we want the peer to use.
                    Some(p) => {
                        v.nak(ty, &p.octets());
                        put(&mut nak_orig, ty, d);
                    }
                    None if !a.is_unspecified() => peer = a,
                    None => v.reject(ty, d),
                },
                (OPT_DNS1 | OPT_DNS2, Some(a)) => {
                    let i = usize::from(ty == OPT_DNS2);
                    match self.cfg.dns.get(i) {
                        Some(&ours) if ours == a => {}
                        // RFC 1877 §1.1: Nak with the DNS address the peer should use.
                        Some(&ours) => {
                            v.nak(ty, &ours.octets());
                            put(&mut nak_orig, ty, d);
                        }
                        None => v.reject(ty, d),
                    }
                }
                // IP-Compression-Protocol (2, Van Jacobson), IP-Addresses (1), NBNS (130/132), …
                _ => v.reject(ty, d),
            }
        }
        let reply = v.reply(nak_allowed, nak_orig);
        if reply == ConfigReply::Ack {
            self.peer = peer;
        }
        reply
    }

    fn handle_ack(&mut self, options: &[u8]) -> bool {
        if options != self.last_request.as_slice() {
            return false;
        }
        self.local = self.want_addr.unwrap_or(self.cfg.local);
        self.dns = self
            .want_dns
            .iter()
            .flatten()
            .copied()
            .filter(|a| !a.is_unspecified())
            .collect();
        true
    }

    fn handle_nak(&mut self, options: &[u8], reject: bool) -> bool {
        let Some(opts) = parse(options) else {
            return true;
        };
        for (ty, d) in opts {
            match (ty, reject) {
                (OPT_ADDRESS, false) => {
                    if let Some(a) = addr(d) {
                        self.want_addr = Some(a);
                    }
                }
                (OPT_ADDRESS, true) => {
                    if self.cfg.local.is_unspecified() {
                        self.failure = Some("peer refused to assign an IP address".into());
                        return false;
                    }
                    self.want_addr = None;
                }
                (OPT_DNS1 | OPT_DNS2, false) => {
                    let i = usize::from(ty == OPT_DNS2);
                    if self.want_dns[i].is_some() {
                        self.want_dns[i] = addr(d);
                    }
                }
                (OPT_DNS1 | OPT_DNS2, true) => self.want_dns[usize::from(ty == OPT_DNS2)] = None,
                _ => {}
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Ipcp {
        Ipcp::new(IpcpConfig {
            local: Ipv4Addr::UNSPECIFIED,
            assign: None,
            request_dns: true,
            dns: vec![],
        })
    }

    #[test]
    fn client_takes_naked_address_and_dns() {
        let mut c = client();
        let mut out = Vec::new();
        c.request(&mut out);
        assert_eq!(
            out,
            vec![3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0]
        );
        assert!(c.handle_nak(
            &[3, 6, 10, 64, 0, 2, 129, 6, 8, 8, 8, 8, 131, 6, 1, 1, 1, 1],
            false
        ));
        let mut out = Vec::new();
        c.request(&mut out);
        assert!(c.handle_ack(&out));
        assert_eq!(c.local, Ipv4Addr::new(10, 64, 0, 2));
        assert_eq!(
            c.dns,
            vec![Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(1, 1, 1, 1)]
        );
    }

    #[test]
    fn server_assigns_and_rejects_vj() {
        let mut s = Ipcp::new(IpcpConfig {
            local: Ipv4Addr::new(10, 64, 0, 1),
            assign: Some(Ipv4Addr::new(10, 64, 0, 2)),
            request_dns: false,
            dns: vec![Ipv4Addr::new(10, 64, 0, 53)],
        });
        // VJ compression (2, 0x002d, max-slot 15, comp-slot 1) is rejected verbatim.
        let req = [2, 6, 0x00, 0x2d, 0x0f, 0x01, 3, 6, 0, 0, 0, 0];
        assert_eq!(
            s.handle_request(&req, true),
            ConfigReply::Reject(vec![2, 6, 0x00, 0x2d, 0x0f, 0x01])
        );
        assert_eq!(
            s.handle_request(&[3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0], true),
            ConfigReply::Nak(vec![3, 6, 10, 64, 0, 2, 129, 6, 10, 64, 0, 53])
        );
        assert_eq!(
            s.handle_request(&[131, 6, 0, 0, 0, 0], true),
            ConfigReply::Reject(vec![131, 6, 0, 0, 0, 0])
        );
        assert_eq!(
            s.handle_request(&[3, 6, 10, 64, 0, 2, 129, 6, 10, 64, 0, 53], true),
            ConfigReply::Ack
        );
        assert_eq!(s.peer, Ipv4Addr::new(10, 64, 0, 2));
    }

    proptest::proptest! {
        #[test]
        fn option_handlers_never_panic(d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), nak in proptest::prelude::any::<bool>()) {
            let mut c = client();
            let _ = c.handle_request(&d, nak);
            let _ = c.handle_ack(&d);
            let _ = c.handle_nak(&d, nak);
        }
    }
}
