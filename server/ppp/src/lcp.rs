//! LCP option negotiation (RFC 1661 §6, RFC 1570 FCS-Alternatives): MRU, ACCM, Auth-Protocol,
//! Magic-Number with loop-back detection, PFC, ACFC. Owns the option values only; the automaton is
//! [`super::fsm`], and Echo/Discard/Protocol-Reject handling lives in [`super::Ppp`].

use super::fsm::Negotiator;
use super::options::{be16, be32, parse, put, ConfigReply, Verdict};
use super::AuthProtocol;

/// LCP protocol number.
pub const PROTOCOL: u16 = 0xC021;
/// Protocol-Reject code.
pub const PROTOCOL_REJECT: u8 = 8;
/// Echo-Request code.
pub const ECHO_REQUEST: u8 = 9;
/// Echo-Reply code.
pub const ECHO_REPLY: u8 = 10;
/// Discard-Request code.
pub const DISCARD_REQUEST: u8 = 11;
/// Identification code (RFC 1570 §2.1).
pub const IDENTIFICATION: u8 = 12;
/// Time-Remaining code (RFC 1570 §2.2).
pub const TIME_REMAINING: u8 = 13;

const OPT_MRU: u8 = 1;
const OPT_ACCM: u8 = 2;
const OPT_AUTH: u8 = 3;
const OPT_MAGIC: u8 = 5;
const OPT_PFC: u8 = 7;
const OPT_ACFC: u8 = 8;
const OPT_FCS_ALT: u8 = 9;
const CHAP_MD5: u8 = 5;
const FCS_ALT_16: u8 = 2;
const FCS_ALT_32: u8 = 4;

/// Smallest MRU we accept from a peer.
pub const MIN_MRU: u16 = 128;

/// What LCP asks for and accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LcpConfig {
    /// Our MRU (requested when not 1500).
    pub mru: u16,
    /// Our receive ACCM (requested when not 0xFFFFFFFF).
    pub accm: u32,
    /// Request and accept Protocol-Field-Compression.
    pub pfc: bool,
    /// Request and accept Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// Request and accept FCS-32 (RFC 1570).
    pub fcs32: bool,
    /// Send a Magic-Number.
    pub magic: bool,
    /// Protocols we require the peer to authenticate with, in preference order (authenticator).
    pub require_auth: Vec<AuthProtocol>,
    /// Protocols we agree to authenticate ourselves with (authenticatee); empty = refuse.
    /// With both CHAP-MD5 and PAP listed, a peer asking PAP is Nak'd towards CHAP-MD5 first
    /// (pppd `refuse-pap`), and PAP is taken only as [`LcpConfig::pap_fallback`] allows.
    pub accept_auth: Vec<AuthProtocol>,
    /// Authenticatee: take PAP when the peer asks it again after our Nak proposing CHAP-MD5
    /// (it insists). Off: keep Nak'ing until Max-Failure, then give up ([`Lcp::pap_refused`]).
    pub pap_fallback: bool,
    /// Authenticator: ignore a Nak of our Auth-Protocol and ask the same protocol again (an
    /// imitation of access servers that insist on PAP; test peers only).
    pub insist_auth: bool,
}

/// Options one direction agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirOpts {
    /// Maximum receive unit of the requesting side.
    pub mru: u16,
    /// Async control character map of the requesting side.
    pub accm: u32,
    /// Magic number of the requesting side (0 = none).
    pub magic: u32,
    /// Requesting side receives compressed protocol fields.
    pub pfc: bool,
    /// Requesting side receives compressed address/control fields.
    pub acfc: bool,
    /// Requesting side wants to receive FCS-32.
    pub fcs32: bool,
    /// Authentication the requesting side demands of the other.
    pub auth: Option<AuthProtocol>,
}

impl Default for DirOpts {
    fn default() -> Self {
        Self {
            mru: 1500,
            accm: 0xFFFF_FFFF,
            magic: 0,
            pfc: false,
            acfc: false,
            fcs32: false,
            auth: None,
        }
    }
}

/// LCP's [`Negotiator`].
#[derive(Debug)]
pub struct Lcp {
    cfg: LcpConfig,
    /// What we currently request.
    want: DirOpts,
    /// Our options as acked by the peer.
    pub local: DirOpts,
    /// The peer's options as acked by us.
    pub peer: DirOpts,
    last_request: Vec<u8>,
    rng: u64,
    auth_tried: Vec<AuthProtocol>,
    /// Times the peer's Magic-Number equalled ours (loop-back suspicion, RFC 1661 §6.4).
    pub loopback_hits: u32,
    /// Why negotiation gave up, if it did.
    pub failure: Option<String>,
    /// Configure-Requests asking PAP that we Nak'd towards CHAP-MD5 in this negotiation.
    pub pap_naks: u32,
    /// The peer insisted on PAP after our Nak and we took it ([`LcpConfig::pap_fallback`]).
    pub pap_fallback_used: bool,
    /// The peer still asked PAP once Max-Failure Naks were spent, without fallback allowed: the
    /// option was Configure-Rejected and the link must not go on (the driver closes it).
    pub pap_refused: bool,
}

fn auth_bytes(a: AuthProtocol) -> Vec<u8> {
    match a {
        AuthProtocol::Pap => vec![0xC0, 0x23],
        AuthProtocol::Chap => vec![0xC2, 0x23, CHAP_MD5],
    }
}

impl Lcp {
    /// New negotiator; `seed` feeds the magic-number generator.
    #[must_use]
    pub fn new(cfg: LcpConfig, seed: u64) -> Self {
        let mut s = Self {
            cfg,
            want: DirOpts::default(),
            local: DirOpts::default(),
            peer: DirOpts::default(),
            last_request: Vec::new(),
            rng: seed | 1,
            auth_tried: Vec::new(),
            loopback_hits: 0,
            failure: None,
            pap_naks: 0,
            pap_fallback_used: false,
            pap_refused: false,
        };
        s.reset();
        s
    }

    /// Next pseudo-random u32 (xorshift64*), never 0.
    pub fn random(&mut self) -> u32 {
        loop {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let v = (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32;
            if v != 0 {
                return v;
            }
        }
    }

    /// PAP is acceptable only as a fallback: CHAP-MD5 is acceptable too, and preferred.
    fn pap_guarded(&self) -> bool {
        self.cfg.accept_auth.contains(&AuthProtocol::Chap)
            && self.cfg.accept_auth.contains(&AuthProtocol::Pap)
    }

    /// Our magic number as currently requested (0 = none).
    #[must_use]
    pub fn magic(&self) -> u32 {
        self.want.magic
    }
}

impl Negotiator for Lcp {
    fn reset(&mut self) {
        let magic = if self.cfg.magic { self.random() } else { 0 };
        self.want = DirOpts {
            mru: self.cfg.mru,
            accm: self.cfg.accm,
            magic,
            pfc: self.cfg.pfc,
            acfc: self.cfg.acfc,
            fcs32: self.cfg.fcs32,
            auth: self.cfg.require_auth.first().copied(),
        };
        self.auth_tried = self.want.auth.into_iter().collect();
        self.local = DirOpts::default();
        self.peer = DirOpts::default();
        self.failure = None;
        self.pap_naks = 0;
        self.pap_fallback_used = false;
        self.pap_refused = false;
    }

    fn request(&mut self, out: &mut Vec<u8>) {
        let w = self.want;
        if w.mru != 1500 {
            put(out, OPT_MRU, &w.mru.to_be_bytes());
        }
        if w.accm != 0xFFFF_FFFF {
            put(out, OPT_ACCM, &w.accm.to_be_bytes());
        }
        if let Some(a) = w.auth {
            put(out, OPT_AUTH, &auth_bytes(a));
        }
        if w.magic != 0 {
            put(out, OPT_MAGIC, &w.magic.to_be_bytes());
        }
        if w.pfc {
            put(out, OPT_PFC, &[]);
        }
        if w.acfc {
            put(out, OPT_ACFC, &[]);
        }
        if w.fcs32 {
            put(out, OPT_FCS_ALT, &[FCS_ALT_32]);
        }
        self.last_request = out.clone();
    }

    fn handle_request(&mut self, options: &[u8], nak_allowed: bool) -> ConfigReply {
        let Some(opts) = parse(options) else {
            return ConfigReply::Reject(options.to_vec());
        };
        let mut v = Verdict::default();
        let mut nak_orig = Vec::new();
        let mut peer = DirOpts::default();
        let mut pap_nak = false;
        let mut pap_fallback = false;
        for (ty, d) in opts {
            match ty {
                OPT_MRU => match be16(d) {
                    Some(m) if m >= MIN_MRU => peer.mru = m,
                    Some(_) => {
                        v.nak(ty, &MIN_MRU.to_be_bytes());
                        put(&mut nak_orig, ty, d);
                    }
                    None => v.reject(ty, d),
                },
                OPT_ACCM => match be32(d) {
                    Some(a) => peer.accm = a,
                    None => v.reject(ty, d),
                },
                OPT_AUTH => {
                    let asked = match d {
                        [0xC0, 0x23, ..] => Some(AuthProtocol::Pap),
                        [0xC2, 0x23, CHAP_MD5] => Some(AuthProtocol::Chap),
                        _ => None,
                    };
                    match asked {
                        // CHAP preferred (pppd `refuse-pap`): a request for PAP is Nak'd with
                        // CHAP-MD5; PAP is taken only if the peer asks it again and fallback is
                        // allowed. Without fallback the Naks run out at Max-Failure (RFC 1661
                        // §4.6), the option is Rejected and the driver ends the link.
                        Some(AuthProtocol::Pap) if self.pap_guarded() => {
                            if self.pap_naks > 0 && self.cfg.pap_fallback {
                                peer.auth = Some(AuthProtocol::Pap);
                                pap_fallback = true;
                            } else {
                                v.nak(ty, &auth_bytes(AuthProtocol::Chap));
                                put(&mut nak_orig, ty, d);
                                pap_nak = true;
                            }
                        }
                        Some(a) if self.cfg.accept_auth.contains(&a) => peer.auth = Some(a),
                        _ => match self.cfg.accept_auth.first() {
                            // RFC 1661 §6.2: Nak with the protocol we prefer.
                            Some(&pref) => {
                                v.nak(ty, &auth_bytes(pref));
                                put(&mut nak_orig, ty, d);
                            }
                            None => v.reject(ty, d),
                        },
                    }
                }
                OPT_MAGIC => match be32(d) {
                    Some(0) => {
                        let m = self.random();
                        v.nak(ty, &m.to_be_bytes());
                        put(&mut nak_orig, ty, d);
                    }
                    Some(m) if self.want.magic != 0 && m == self.want.magic => {
                        // RFC 1661 §6.4: "the link is probably looped-back ... a Configure-Nak MUST be
                        // sent specifying a different Magic-Number value" — and we choose a new one too.
                        self.loopback_hits += 1;
                        let ours = self.random();
                        self.want.magic = ours;
                        let theirs = self.random();
                        v.nak(ty, &theirs.to_be_bytes());
                        put(&mut nak_orig, ty, d);
                    }
                    Some(m) => peer.magic = m,
                    None => v.reject(ty, d),
                },
                OPT_PFC if d.is_empty() && self.cfg.pfc => peer.pfc = true,
                OPT_ACFC if d.is_empty() && self.cfg.acfc => peer.acfc = true,
                OPT_FCS_ALT => match d {
                    [FCS_ALT_16] => {}
                    [FCS_ALT_32] if self.cfg.fcs32 => peer.fcs32 = true,
                    [x] if x & FCS_ALT_32 != 0 && self.cfg.fcs32 => {
                        v.nak(ty, &[FCS_ALT_32]);
                        put(&mut nak_orig, ty, d);
                    }
                    [x] if x & FCS_ALT_16 != 0 => {
                        v.nak(ty, &[FCS_ALT_16]);
                        put(&mut nak_orig, ty, d);
                    }
                    _ => v.reject(ty, d),
                },
                _ => v.reject(ty, d),
            }
        }
        let reply = v.reply(nak_allowed, nak_orig);
        match &reply {
            ConfigReply::Ack => {
                self.peer = peer;
                self.pap_fallback_used = pap_fallback;
            }
            ConfigReply::Nak(_) if pap_nak => self.pap_naks += 1,
            ConfigReply::Reject(_) if pap_nak && !nak_allowed => self.pap_refused = true,
            _ => {}
        }
        reply
    }

    fn handle_ack(&mut self, options: &[u8]) -> bool {
        // RFC 1661 §5.2: the Ack's options must match the request exactly.
        if options != self.last_request.as_slice() {
            return false;
        }
        self.local = self.want;
        true
    }

    fn handle_nak(&mut self, options: &[u8], reject: bool) -> bool {
        let Some(opts) = parse(options) else {
            return true;
        };
        for (ty, d) in opts {
            match (ty, reject) {
                (OPT_MRU, true) => self.want.mru = 1500,
                (OPT_MRU, false) => {
                    if let Some(m) = be16(d) {
                        self.want.mru = m.clamp(MIN_MRU, 16384);
                    }
                }
                (OPT_ACCM, true) => self.want.accm = 0xFFFF_FFFF,
                // RFC 1662 §7.1: the peer may ask us to escape more; keep our bits as well.
                (OPT_ACCM, false) => {
                    if let Some(a) = be32(d) {
                        self.want.accm |= a;
                    }
                }
                (OPT_AUTH, true) if self.want.auth.is_some() => {
                    self.failure = Some("peer refused to authenticate".into());
                    return false;
                }
                (OPT_AUTH, false) => {
                    if self.want.auth.is_none() || self.cfg.insist_auth {
                        continue;
                    }
                    let suggested = match d {
                        [0xC0, 0x23, ..] => Some(AuthProtocol::Pap),
                        [0xC2, 0x23, CHAP_MD5] => Some(AuthProtocol::Chap),
                        _ => None,
                    };
                    let next = match suggested {
                        Some(s)
                            if self.cfg.require_auth.contains(&s)
                                && !self.auth_tried.contains(&s) =>
                        {
                            Some(s)
                        }
                        _ => self
                            .cfg
                            .require_auth
                            .iter()
                            .copied()
                            .find(|a| !self.auth_tried.contains(a)),
                    };
                    match next {
                        Some(a) => {
                            self.auth_tried.push(a);
                            self.want.auth = Some(a);
                        }
                        None => {
                            self.failure =
                                Some("no authentication protocol acceptable to the peer".into());
                            return false;
                        }
                    }
                }
                (OPT_MAGIC, true) => self.want.magic = 0,
                (OPT_MAGIC, false) => {
                    // RFC 1661 §6.4: on a Nak of the Magic-Number, choose a new (random) one.
                    if be32(d) == Some(self.want.magic) {
                        self.loopback_hits += 1;
                    }
                    self.want.magic = self.random();
                }
                (OPT_PFC, true) => self.want.pfc = false,
                (OPT_ACFC, true) => self.want.acfc = false,
                (OPT_FCS_ALT, true) => self.want.fcs32 = false,
                (OPT_FCS_ALT, false) => self.want.fcs32 = d == [FCS_ALT_32] && self.cfg.fcs32,
                _ => {}
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LcpConfig {
        LcpConfig {
            mru: 1500,
            accm: 0,
            pfc: true,
            acfc: true,
            fcs32: false,
            magic: true,
            require_auth: vec![],
            accept_auth: vec![AuthProtocol::Chap, AuthProtocol::Pap],
            pap_fallback: false,
            insist_auth: false,
        }
    }

    const PAP: [u8; 4] = [3, 4, 0xC0, 0x23];
    /// Auth-Protocol CHAP with MD5 (RFC 1994 §3): type 3, length 5, 0xC223, algorithm 5.
    const CHAP_MD5_OPT: [u8; 5] = [3, 5, 0xC2, 0x23, 5];

    #[test]
    fn pap_is_naked_towards_chap_md5_and_refused_at_max_failure() {
        let mut l = Lcp::new(cfg(), 7);
        for n in 1..=4 {
            assert_eq!(
                l.handle_request(&PAP, true),
                ConfigReply::Nak(CHAP_MD5_OPT.to_vec())
            );
            assert_eq!((l.pap_naks, l.pap_refused), (n, false));
        }
        // Max-Failure reached (the automaton stops allowing Naks): Reject, and give up.
        assert_eq!(
            l.handle_request(&PAP, false),
            ConfigReply::Reject(PAP.to_vec())
        );
        assert!(l.pap_refused);
        assert_eq!(l.peer.auth, None);
        // A peer that switches after the Nak is taken with CHAP-MD5.
        let mut l = Lcp::new(cfg(), 7);
        assert!(matches!(l.handle_request(&PAP, true), ConfigReply::Nak(_)));
        assert_eq!(l.handle_request(&CHAP_MD5_OPT, true), ConfigReply::Ack);
        assert_eq!(l.peer.auth, Some(AuthProtocol::Chap));
        assert!(!l.pap_fallback_used && !l.pap_refused);
    }

    #[test]
    fn pap_fallback_takes_pap_when_the_peer_asks_again() {
        let mut l = Lcp::new(
            LcpConfig {
                pap_fallback: true,
                ..cfg()
            },
            7,
        );
        // Even with fallback allowed, CHAP-MD5 is proposed first.
        assert_eq!(
            l.handle_request(&PAP, true),
            ConfigReply::Nak(CHAP_MD5_OPT.to_vec())
        );
        assert_eq!(l.handle_request(&PAP, true), ConfigReply::Ack);
        assert_eq!(l.peer.auth, Some(AuthProtocol::Pap));
        assert!(l.pap_fallback_used);
        // A new negotiation starts over: CHAP-MD5 proposed again.
        l.reset();
        assert!(!l.pap_fallback_used);
        assert!(matches!(l.handle_request(&PAP, true), ConfigReply::Nak(_)));
    }

    #[test]
    fn explicit_pap_or_chap_is_unchanged() {
        // auth = "pap": PAP at once, no Nak.
        let mut l = Lcp::new(
            LcpConfig {
                accept_auth: vec![AuthProtocol::Pap],
                ..cfg()
            },
            7,
        );
        assert_eq!(l.handle_request(&PAP, true), ConfigReply::Ack);
        assert_eq!((l.peer.auth, l.pap_naks), (Some(AuthProtocol::Pap), 0));
        // auth = "chap": Nak towards CHAP-MD5, Reject at Max-Failure, no PAP bookkeeping.
        let mut l = Lcp::new(
            LcpConfig {
                accept_auth: vec![AuthProtocol::Chap],
                pap_fallback: true,
                ..cfg()
            },
            7,
        );
        for _ in 0..3 {
            assert_eq!(
                l.handle_request(&PAP, true),
                ConfigReply::Nak(CHAP_MD5_OPT.to_vec())
            );
        }
        assert_eq!(
            l.handle_request(&PAP, false),
            ConfigReply::Reject(PAP.to_vec())
        );
        assert_eq!((l.pap_naks, l.pap_refused), (0, false));
    }

    #[test]
    fn insisting_authenticator_ignores_a_nak_of_its_protocol() {
        let mut l = Lcp::new(
            LcpConfig {
                require_auth: vec![AuthProtocol::Pap],
                accept_auth: vec![],
                insist_auth: true,
                ..cfg()
            },
            7,
        );
        assert!(l.handle_nak(&CHAP_MD5_OPT, false));
        assert_eq!(l.want.auth, Some(AuthProtocol::Pap));
        // Without insisting, a Nak naming a protocol we do not offer ends the negotiation.
        let mut l = Lcp::new(
            LcpConfig {
                require_auth: vec![AuthProtocol::Pap],
                accept_auth: vec![],
                ..cfg()
            },
            7,
        );
        assert!(!l.handle_nak(&CHAP_MD5_OPT, false));
    }

    #[test]
    fn request_bytes() {
        let mut l = Lcp::new(cfg(), 7);
        let mut out = Vec::new();
        l.request(&mut out);
        let m = l.magic().to_be_bytes();
        assert_eq!(
            out,
            vec![2, 6, 0, 0, 0, 0, 5, 6, m[0], m[1], m[2], m[3], 7, 2, 8, 2]
        );
    }

    #[test]
    fn judges_peer_requests() {
        let mut l = Lcp::new(cfg(), 7);
        // pppd-style request: MRU 1400, ACCM 0, CHAP-MD5, magic, PFC, ACFC.
        let req = [
            1, 4, 0x05, 0x78, 2, 6, 0, 0, 0, 0, 3, 5, 0xC2, 0x23, 5, 5, 6, 1, 2, 3, 4, 7, 2, 8, 2,
        ];
        assert_eq!(l.handle_request(&req, true), ConfigReply::Ack);
        assert_eq!(l.peer.mru, 1400);
        assert_eq!(l.peer.auth, Some(AuthProtocol::Chap));
        assert_eq!(l.peer.magic, 0x0102_0304);
        // Unknown option 13 (callback) is rejected; CHAP with SHA1 (7) is Nak'd to CHAP-MD5.
        assert_eq!(
            l.handle_request(&[13, 3, 6], true),
            ConfigReply::Reject(vec![13, 3, 6])
        );
        assert_eq!(
            l.handle_request(&[3, 5, 0xC2, 0x23, 7], true),
            ConfigReply::Nak(vec![3, 5, 0xC2, 0x23, 5])
        );
        assert_eq!(
            l.handle_request(&[3, 5, 0xC2, 0x23, 7], false),
            ConfigReply::Reject(vec![3, 5, 0xC2, 0x23, 7])
        );
        // Our own magic coming back: loop-back suspicion.
        let m = l.magic().to_be_bytes();
        assert!(matches!(
            l.handle_request(&[5, 6, m[0], m[1], m[2], m[3]], true),
            ConfigReply::Nak(_)
        ));
        assert_eq!(l.loopback_hits, 1);
    }

    #[test]
    fn adapts_to_naks_and_rejects() {
        let mut l = Lcp::new(
            LcpConfig {
                require_auth: vec![AuthProtocol::Chap, AuthProtocol::Pap],
                ..cfg()
            },
            3,
        );
        assert!(l.handle_nak(&[1, 4, 0x05, 0xDC, 3, 4, 0xC0, 0x23], false));
        assert_eq!(l.want.auth, Some(AuthProtocol::Pap));
        assert!(l.handle_nak(&[8, 2, 7, 2], true));
        assert!(!l.want.acfc && !l.want.pfc);
        assert!(!l.handle_nak(&[3, 4, 0xC0, 0x23], true));
        assert!(l.failure.is_some());
    }

    proptest::proptest! {
        #[test]
        fn option_handlers_never_panic(d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), nak in proptest::prelude::any::<bool>()) {
            let mut l = Lcp::new(LcpConfig { require_auth: vec![AuthProtocol::Pap], ..cfg() }, 1);
            let _ = l.handle_request(&d, nak);
            let _ = l.handle_ack(&d);
            let _ = l.handle_nak(&d, nak);
            let mut out = Vec::new();
            l.request(&mut out);
            proptest::prop_assert!(parse(&out).is_some());
        }
    }
}
