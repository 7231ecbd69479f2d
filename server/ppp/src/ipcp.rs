//! IPCP option negotiation (RFC 1332, RFC 1877 DNS): IP-Address, primary/secondary DNS; VJ
//! compression and everything else rejected. Owns option values, the address policy (which
//! address each end gets, [`DEFAULT_PEER_ADDRESS`] when nobody says) and the check of the final
//! addresses ([`check_address`]); the automaton is [`super::fsm`].
//!
//! Addressing in both roles (RFC 1332 §3.3, as pppd's `ipcp_reqci`/`ipcp_nakci` do it):
//! - the peer asks 0.0.0.0 ("tell me my address"): Nak with the configured peer address or,
//!   if none, [`DEFAULT_PEER_ADDRESS`] (pppd's fallback when it "could not determine the remote
//!   IP address");
//! - the peer asks a non-zero address: accepted unless we were configured with another one
//!   and `accept_remote` is off (then Nak'd with ours);
//! - the peer sends no IP-Address option: it gets the same address locally, without asking;
//! - our request: the configured local address (0.0.0.0 = "assign me one"); a Nak's address is
//!   taken when we asked 0.0.0.0 or `accept_local` is on, otherwise negotiation stops with a
//!   typed [`IpcpFailure`]; a Reject of IP-Address while we have no address stops it at once;
//!   a Nak or Reject of a DNS option only changes or drops that option (RFC 1877 §1).

use std::fmt;
use std::net::Ipv4Addr;

use super::fsm::Negotiator;
use super::options::{be32, parse, put, ConfigReply, Verdict};

/// IPCP protocol number.
pub const PROTOCOL: u16 = 0x8021;
/// IPv4 datagram protocol number.
pub const IPV4: u16 = 0x0021;

/// IP-Address option (RFC 1332 §3.3).
pub const OPT_ADDRESS: u8 = 3;
/// IP-Compression-Protocol option (RFC 1332 §3.2, Van Jacobson): always rejected.
pub const OPT_COMPRESSION: u8 = 2;
/// Primary-DNS-Server-Address option (RFC 1877 §1.1).
pub const OPT_DNS1: u8 = 129;
/// Secondary-DNS-Server-Address option (RFC 1877 §1.3).
pub const OPT_DNS2: u8 = 131;

/// The peer's address when neither the configuration nor the peer names one: pppd's fallback
/// (`10.64.64.64` + unit number, unit 0), which cellular and emulator peers expect.
pub const DEFAULT_PEER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 64, 64, 64);

/// Human name of an IPCP option type, for messages.
#[must_use]
pub fn option_name(ty: u8) -> &'static str {
    match ty {
        1 => "IP-Addresses",
        OPT_COMPRESSION => "IP-Compression-Protocol",
        OPT_ADDRESS => "IP-Address",
        4 => "Mobile-IPv4",
        OPT_DNS1 => "Primary-DNS",
        130 => "Primary-NBNS",
        OPT_DNS2 => "Secondary-DNS",
        132 => "Secondary-NBNS",
        _ => "unknown",
    }
}

/// An IPv4 network (address and prefix length), std-only so the crate stays free of ipnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Network {
    /// Network address (host bits are ignored).
    pub addr: Ipv4Addr,
    /// Prefix length, 0-32 (larger values act as 32).
    pub prefix: u8,
}

impl Ipv4Network {
    /// `addr/prefix`.
    #[must_use]
    pub const fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Self { addr, prefix }
    }

    /// True if `a` lies inside this network.
    #[must_use]
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let p = u32::from(self.prefix.min(32));
        let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
        u32::from(a) & mask == u32::from(self.addr) & mask
    }
}

impl fmt::Display for Ipv4Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a negotiated address cannot be used on the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressProblem {
    /// 0.0.0.0: nobody assigned an address.
    Unspecified,
    /// 127.0.0.0/8.
    Loopback,
    /// 224.0.0.0/4.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240.0.0.0/4 (reserved, RFC 1112 class E).
    Reserved,
    /// Both ends would have the same address.
    SameAsOtherEnd,
    /// Inside a network the server routes elsewhere (its LAN, an allow-list network): using it
    /// would hijack those hosts' routes.
    InRefusedNetwork(Ipv4Network),
}

impl fmt::Display for AddressProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressProblem::Unspecified => f.write_str("is 0.0.0.0 (no address was assigned)"),
            AddressProblem::Loopback => f.write_str("is a loopback address"),
            AddressProblem::Multicast => f.write_str("is a multicast address"),
            AddressProblem::Broadcast => f.write_str("is the broadcast address"),
            AddressProblem::Reserved => f.write_str("is in the reserved 240.0.0.0/4"),
            AddressProblem::SameAsOtherEnd => f.write_str("equals the other end's address"),
            AddressProblem::InRefusedNetwork(n) => {
                write!(f, "lies in {n}, a network the server routes elsewhere")
            }
        }
    }
}

/// Checks one negotiated address against the fixed rules and the refused networks.
pub fn check_address(a: Ipv4Addr, refused: &[Ipv4Network]) -> Result<(), AddressProblem> {
    if a.is_unspecified() {
        return Err(AddressProblem::Unspecified);
    }
    if a.is_loopback() {
        return Err(AddressProblem::Loopback);
    }
    if a.is_multicast() {
        return Err(AddressProblem::Multicast);
    }
    if a.is_broadcast() {
        return Err(AddressProblem::Broadcast);
    }
    if a.octets()[0] >= 240 {
        return Err(AddressProblem::Reserved);
    }
    match refused.iter().find(|n| n.contains(a)) {
        Some(n) => Err(AddressProblem::InRefusedNetwork(*n)),
        None => Ok(()),
    }
}

/// Which end of the link an address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Our address.
    Local,
    /// The peer's address.
    Peer,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::Local => "local",
            Endpoint::Peer => "peer",
        })
    }
}

/// Why IPCP could not bring IPv4 up. Each variant names the option or packet that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpcpFailure {
    /// The peer Configure-Rejected IP-Address (3) while we had no address of our own: it will
    /// not assign one.
    AddressRejected,
    /// The peer Configure-Nak'd IP-Address (3) with 0.0.0.0: it has no address to give us.
    NoAddressOffered,
    /// The peer Configure-Nak'd our fixed IP-Address (3) with another one, and `accept_local`
    /// is off.
    LocalAddressRefused {
        /// The address we are configured with.
        ours: Ipv4Addr,
        /// The address the peer wants us to use.
        suggested: Ipv4Addr,
    },
    /// A negotiated IP-Address failed the post-negotiation check.
    BadAddress {
        /// Whose address.
        endpoint: Endpoint,
        /// The address.
        addr: Ipv4Addr,
        /// What is wrong with it.
        problem: AddressProblem,
    },
    /// The peer sent an IPCP Terminate-Request (its data as text).
    PeerTerminated(String),
    /// The peer Protocol-Rejected IPCP (0x8021): it does not speak IPv4.
    ProtocolRejected,
    /// The restart counter ran out without agreement (peer silent or looping).
    NotConverged,
}

impl fmt::Display for IpcpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpcpFailure::AddressRejected => f.write_str(
                "IPCP: the peer rejected option IP-Address (3) and we have no address of our own",
            ),
            IpcpFailure::NoAddressOffered => {
                f.write_str("IPCP: the peer Nak'd option IP-Address (3) with 0.0.0.0: it has no address for us")
            }
            IpcpFailure::LocalAddressRefused { ours, suggested } => write!(
                f,
                "IPCP: the peer Nak'd option IP-Address (3) {ours} with {suggested} (local_address is fixed; set accept_local)"
            ),
            IpcpFailure::BadAddress {
                endpoint,
                addr,
                problem,
            } => write!(f, "IPCP: {endpoint} IP-Address (3) {addr} refused: it {problem}"),
            IpcpFailure::PeerTerminated(t) if t.is_empty() => {
                f.write_str("IPCP: the peer sent Terminate-Request")
            }
            IpcpFailure::PeerTerminated(t) => {
                write!(f, "IPCP: the peer sent Terminate-Request ({t})")
            }
            IpcpFailure::ProtocolRejected => {
                f.write_str("IPCP: the peer Protocol-Rejected IPCP (0x8021)")
            }
            IpcpFailure::NotConverged => f.write_str("IPCP did not converge"),
        }
    }
}

impl std::error::Error for IpcpFailure {}

/// What IPCP asks for and offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpcpConfig {
    /// Our address; 0.0.0.0 asks the peer to assign one (RFC 1332 §3.3).
    pub local: Ipv4Addr,
    /// The peer's address as configured (access server: the address we assign), if any.
    pub assign: Option<Ipv4Addr>,
    /// Take the address a peer Naks for us even though `local` is set (pppd `ipcp-accept-local`).
    pub accept_local: bool,
    /// Let the peer use the non-zero address it asks even though `assign` is set
    /// (pppd `ipcp-accept-remote`).
    pub accept_remote: bool,
    /// Ask the peer for primary and secondary DNS (RFC 1877).
    pub request_dns: bool,
    /// Send our IP-Address option (off: an access server that never names its address).
    pub request_address: bool,
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
    /// The peer's address came from our configuration or [`DEFAULT_PEER_ADDRESS`] because its
    /// request had no IP-Address option.
    pub peer_address_implied: bool,
    /// DNS servers the peer acked for us.
    pub dns: Vec<Ipv4Addr>,
    /// Option types of ours the peer Configure-Rejected in this negotiation.
    pub rejected_by_peer: Vec<u8>,
    /// Option types of the peer's that we Configure-Rejected in this negotiation.
    pub rejected_of_peer: Vec<u8>,
    /// Why negotiation gave up, if it did.
    pub failure: Option<IpcpFailure>,
}

fn addr(d: &[u8]) -> Option<Ipv4Addr> {
    be32(d).map(Ipv4Addr::from)
}

fn note(list: &mut Vec<u8>, ty: u8) {
    if !list.contains(&ty) {
        list.push(ty);
    }
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
            peer_address_implied: false,
            dns: Vec::new(),
            rejected_by_peer: Vec::new(),
            rejected_of_peer: Vec::new(),
            failure: None,
        };
        s.reset();
        s
    }

    /// The address the peer gets when it asks 0.0.0.0 or names none.
    fn peer_default(&self) -> Ipv4Addr {
        self.cfg.assign.unwrap_or(DEFAULT_PEER_ADDRESS)
    }
}

impl Negotiator for Ipcp {
    fn reset(&mut self) {
        self.want_addr = self.cfg.request_address.then_some(self.cfg.local);
        let d = if self.cfg.request_dns {
            Some(Ipv4Addr::UNSPECIFIED)
        } else {
            None
        };
        self.want_dns = [d, d];
        self.local = Ipv4Addr::UNSPECIFIED;
        self.peer = Ipv4Addr::UNSPECIFIED;
        self.peer_address_implied = false;
        self.dns.clear();
        self.rejected_by_peer.clear();
        self.rejected_of_peer.clear();
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
        let mut peer = None;
        let mut rejected = Vec::new();
        for (ty, d) in opts {
            match (ty, addr(d)) {
                (OPT_ADDRESS, Some(a)) => {
                    let suggest = match self.cfg.assign {
                        // RFC 1332 §3.3: "If the peer ... has no address ... it may send 0.0.0.0
                        // ... the receiver SHOULD Nak with a valid IP address".
                        _ if a.is_unspecified() => Some(self.peer_default()),
                        Some(p) if p != a && !self.cfg.accept_remote => Some(p),
                        _ => None,
                    };
                    match suggest {
                        Some(s) => {
                            v.nak(ty, &s.octets());
                            put(&mut nak_orig, ty, d);
                        }
                        None => peer = Some(a),
                    }
                }
                (OPT_DNS1 | OPT_DNS2, Some(a)) => {
                    let i = usize::from(ty == OPT_DNS2);
                    match self.cfg.dns.get(i) {
                        Some(&ours) if ours == a => {}
                        // RFC 1877 §1.1: Nak with the DNS address the peer should use.
                        Some(&ours) => {
                            v.nak(ty, &ours.octets());
                            put(&mut nak_orig, ty, d);
                        }
                        None => {
                            v.reject(ty, d);
                            rejected.push(ty);
                        }
                    }
                }
                // IP-Compression-Protocol (2, Van Jacobson), IP-Addresses (1), NBNS (130/132), …
                _ => {
                    v.reject(ty, d);
                    rejected.push(ty);
                }
            }
        }
        let reply = v.reply(nak_allowed, nak_orig);
        match &reply {
            ConfigReply::Ack => {
                self.peer_address_implied = peer.is_none();
                self.peer = peer.unwrap_or_else(|| self.peer_default());
            }
            ConfigReply::Reject(_) => {
                for ty in rejected {
                    note(&mut self.rejected_of_peer, ty);
                }
            }
            ConfigReply::Nak(_) => {}
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
            if reject {
                note(&mut self.rejected_by_peer, ty);
            }
            match (ty, reject) {
                (OPT_ADDRESS, false) => {
                    let Some(a) = addr(d) else { continue };
                    if a.is_unspecified() {
                        // Asking again would loop (each Nak restarts our counter, RFC 1661 RCN).
                        self.failure = Some(if self.cfg.local.is_unspecified() {
                            IpcpFailure::NoAddressOffered
                        } else {
                            IpcpFailure::LocalAddressRefused {
                                ours: self.cfg.local,
                                suggested: a,
                            }
                        });
                        return false;
                    }
                    if self.cfg.local.is_unspecified() || self.cfg.accept_local {
                        self.want_addr = Some(a);
                    } else if a != self.cfg.local {
                        self.failure = Some(IpcpFailure::LocalAddressRefused {
                            ours: self.cfg.local,
                            suggested: a,
                        });
                        return false;
                    }
                }
                (OPT_ADDRESS, true) => {
                    if self.cfg.local.is_unspecified() {
                        self.failure = Some(IpcpFailure::AddressRejected);
                        return false;
                    }
                    self.want_addr = None;
                }
                (OPT_DNS1 | OPT_DNS2, false) => {
                    let i = usize::from(ty == OPT_DNS2);
                    if self.want_dns[i].is_some() {
                        if let Some(a) = addr(d) {
                            self.want_dns[i] = Some(a);
                        }
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
            accept_local: false,
            accept_remote: false,
            request_dns: true,
            request_address: true,
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
            accept_local: false,
            accept_remote: false,
            request_dns: false,
            request_address: true,
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
        /// Garbage is never Acked: an Ack goes only to a well-formed request of the address
        /// option (a client has no DNS to give); a Reject carries only what the peer sent,
        /// verbatim; our own request is Acked only when echoed byte for byte.
        fn option_handlers_ack_only_what_they_may(d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), nak in proptest::prelude::any::<bool>()) {
            let mut c = client();
            let mut ours = Vec::new();
            c.request(&mut ours);
            proptest::prop_assert_eq!(c.handle_ack(&d), d == ours);
            match c.handle_request(&d, nak) {
                ConfigReply::Ack => {
                    let opts = crate::options::parse(&d).unwrap_or_default();
                    proptest::prop_assert!(crate::options::parse(&d).is_some());
                    for (ty, v) in opts {
                        proptest::prop_assert!(ty == OPT_ADDRESS && v.len() == 4 && v != [0; 4], "Acked {} {:?}", ty, v);
                    }
                }
                ConfigReply::Reject(r) => match crate::options::parse(&d) {
                    None => proptest::prop_assert_eq!(&r, &d),
                    Some(sent) => {
                        let rej = crate::options::parse(&r).unwrap_or_default();
                        proptest::prop_assert!(!rej.is_empty());
                        for o in rej {
                            proptest::prop_assert!(sent.contains(&o));
                        }
                    }
                },
                ConfigReply::Nak(n) => {
                    proptest::prop_assert!(nak);
                    proptest::prop_assert!(crate::options::parse(&n).is_some_and(|o| !o.is_empty()));
                }
            }
            let _ = c.handle_nak(&d, nak);
        }
    }
}
