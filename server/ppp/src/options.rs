//! Configuration-option lists (type, length, data) shared by LCP and IPCP (RFC 1661 §6).
//! Owns only the TLV syntax and the shape of a verdict ([`ConfigReply`]); it must not judge
//! option values. The automaton ([`crate::fsm`]) uses this module, never the reverse.

/// Parses an option list into `(type, data)` pairs; `None` if any length field is below 2 or
/// runs past the end (RFC 1661 §6: "Length ... includes the Type, Length and Data fields").
#[must_use]
pub fn parse(mut data: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut v = Vec::new();
    while !data.is_empty() {
        if data.len() < 2 {
            return None;
        }
        let len = usize::from(data[1]);
        if len < 2 || len > data.len() {
            return None;
        }
        v.push((data[0], &data[2..len]));
        data = &data[len..];
    }
    Some(v)
}

/// One option refused in a negotiation: Configure-Nak'd or Configure-Rejected, by the peer
/// (one of our options) or by us (one of the peer's). Kept for `cinfo` and dial progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Option type (LCP: 1 MRU, 2 ACCM, 3 auth...; IPCP: 3 address, 129 DNS...).
    pub option: u8,
    /// The peer refused one of our options (else we refused one of the peer's).
    pub by_peer: bool,
    /// Configure-Reject (else Configure-Nak).
    pub reject: bool,
    /// The option's data as carried in the Nak (the value suggested) or Reject (the value
    /// refused), at most [`REFUSAL_DATA_MAX`] bytes.
    pub data: Vec<u8>,
}

/// Which control protocol an option belongs to (option types overlap between them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ncp {
    /// LCP (RFC 1661, 1570, 1990).
    Lcp,
    /// IPCP (RFC 1332, 1877).
    Ipcp,
}

/// The registered name of an option type (IANA PPP numbers), `None` if unknown.
#[must_use]
pub fn option_name(ncp: Ncp, ty: u8) -> Option<&'static str> {
    Some(match (ncp, ty) {
        (Ncp::Lcp, 1) => "MRU",
        (Ncp::Lcp, 2) => "ACCM",
        (Ncp::Lcp, 3) => "Auth-Protocol",
        (Ncp::Lcp, 4) => "Quality-Protocol",
        (Ncp::Lcp, 5) => "Magic-Number",
        (Ncp::Lcp, 7) => "PFC",
        (Ncp::Lcp, 8) => "ACFC",
        (Ncp::Lcp, 9) => "FCS-Alternatives",
        (Ncp::Lcp, 13) => "Callback",
        (Ncp::Lcp, 17) => "MRRU",
        (Ncp::Lcp, 18) => "Short-Sequence",
        (Ncp::Lcp, 19) => "Endpoint-Discriminator",
        (Ncp::Ipcp, 1) => "IP-Addresses",
        (Ncp::Ipcp, 2) => "IP-Compression-Protocol",
        (Ncp::Ipcp, 3) => "IP-Address",
        (Ncp::Ipcp, 4) => "Mobile-IPv4",
        (Ncp::Ipcp, 129) => "Primary-DNS",
        (Ncp::Ipcp, 130) => "Primary-NBNS",
        (Ncp::Ipcp, 131) => "Secondary-DNS",
        (Ncp::Ipcp, 132) => "Secondary-NBNS",
        _ => return None,
    })
}

impl Refusal {
    /// The option's name and type, `MRU (1)`, or `option 42` when unknown.
    #[must_use]
    pub fn name(&self, ncp: Ncp) -> String {
        match option_name(ncp, self.option) {
            Some(n) => format!("{n} ({})", self.option),
            None => format!("option {}", self.option),
        }
    }

    /// The carried value in the option's own notation: `296` (MRU), `0x000a0000` (ACCM),
    /// `PAP`/`CHAP-MD5` (auth), a dotted quad (addresses, DNS), else hex bytes; `""` if none.
    #[must_use]
    pub fn value(&self, ncp: Ncp) -> String {
        let d = self.data.as_slice();
        match (ncp, self.option, d.len()) {
            (Ncp::Lcp, 1, 2) => be16(d).map(|v| v.to_string()).unwrap_or_default(),
            (Ncp::Lcp, 2, 4) => be32(d).map(|v| format!("{v:#010x}")).unwrap_or_default(),
            (Ncp::Lcp, 3, _) if d.starts_with(&[0xC0, 0x23]) => "PAP".into(),
            (Ncp::Lcp, 3, 3) if d == [0xC2, 0x23, 5] => "CHAP-MD5".into(),
            (Ncp::Ipcp, 3 | 129..=132, 4) => be32(d)
                .map(|v| std::net::Ipv4Addr::from(v).to_string())
                .unwrap_or_default(),
            _ => d.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// One line: `peer Nak'd our MRU (1): 296`, `we Rejected the peer's IP-Compression-Protocol (2)`.
    #[must_use]
    pub fn describe(&self, ncp: Ncp) -> String {
        let verdict = if self.reject { "Rejected" } else { "Nak'd" };
        let whose = if self.by_peer {
            format!("peer {verdict} our")
        } else {
            format!("we {verdict} the peer's")
        };
        let value = self.value(ncp);
        if value.is_empty() {
            format!("{whose} {}", self.name(ncp))
        } else {
            format!("{whose} {}: {value}", self.name(ncp))
        }
    }
}

/// Bytes of option data kept per [`Refusal`].
pub const REFUSAL_DATA_MAX: usize = 8;
/// Refusals kept per negotiation (one per option, direction and verdict).
pub const REFUSALS_MAX: usize = 32;

/// Records every option of a Nak/Reject `options` list in `log`: one entry per (option,
/// direction, verdict), the latest value kept, at most [`REFUSALS_MAX`] entries.
pub fn note_refusals(log: &mut Vec<Refusal>, options: &[u8], by_peer: bool, reject: bool) {
    let Some(opts) = parse(options) else { return };
    for (ty, d) in opts {
        let data = d[..d.len().min(REFUSAL_DATA_MAX)].to_vec();
        if let Some(r) = log
            .iter_mut()
            .find(|r| r.option == ty && r.by_peer == by_peer && r.reject == reject)
        {
            r.data = data;
        } else if log.len() < REFUSALS_MAX {
            log.push(Refusal {
                option: ty,
                by_peer,
                reject,
                data,
            });
        }
    }
}

/// Appends one option.
pub fn put(out: &mut Vec<u8>, ty: u8, data: &[u8]) {
    out.push(ty);
    out.push((data.len() + 2).min(255) as u8);
    out.extend_from_slice(&data[..data.len().min(253)]);
}

/// Reads a big-endian u16 option value of exactly 2 bytes.
#[must_use]
pub fn be16(d: &[u8]) -> Option<u16> {
    <[u8; 2]>::try_from(d).ok().map(u16::from_be_bytes)
}

/// Reads a big-endian u32 option value of exactly 4 bytes.
#[must_use]
pub fn be32(d: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(d).ok().map(u32::from_be_bytes)
}

/// Verdict on a peer's Configure-Request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigReply {
    /// Every option acceptable (RCR+).
    Ack,
    /// Some values unacceptable: Configure-Nak with these options (RCR-).
    Nak(Vec<u8>),
    /// Some options unrecognised or not negotiable: Configure-Reject with these options (RCR-).
    Reject(Vec<u8>),
}

/// Collects the verdict on a peer's Configure-Request: RFC 1661 §5.3/5.4 — if any option is
/// rejected, send only the Configure-Reject; otherwise Nak if any value is unacceptable.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Options to Configure-Nak (with our suggested values).
    pub nak: Vec<u8>,
    /// Options to Configure-Reject (verbatim).
    pub reject: Vec<u8>,
}

impl Verdict {
    /// Rejects an option verbatim.
    pub fn reject(&mut self, ty: u8, data: &[u8]) {
        put(&mut self.reject, ty, data);
    }
    /// Naks an option, suggesting `data`.
    pub fn nak(&mut self, ty: u8, data: &[u8]) {
        put(&mut self.nak, ty, data);
    }
    /// The reply this verdict calls for (`nak_allowed` false turns Naks into Rejects of `original`).
    #[must_use]
    pub fn reply(self, nak_allowed: bool, nak_originals: Vec<u8>) -> ConfigReply {
        if !self.reject.is_empty() {
            let mut r = self.reject;
            if !nak_allowed {
                r.extend_from_slice(&nak_originals);
            }
            ConfigReply::Reject(r)
        } else if !self.nak.is_empty() {
            if nak_allowed {
                ConfigReply::Nak(self.nak)
            } else {
                ConfigReply::Reject(nak_originals)
            }
        } else {
            ConfigReply::Ack
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_bad_lengths() {
        assert_eq!(
            parse(&[1, 4, 5, 220, 7, 2]),
            Some(vec![(1, &[5u8, 220][..]), (7, &[][..])])
        );
        assert_eq!(parse(&[1, 1]), None);
        assert_eq!(parse(&[1, 5, 0, 0]), None);
        assert_eq!(parse(&[1]), None);
        assert_eq!(parse(&[]), Some(vec![]));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Some(v) = parse(&d) {
                let total: usize = v.iter().map(|(_, x)| x.len() + 2).sum();
                proptest::prop_assert_eq!(total, d.len());
            }
        }
    }
}
