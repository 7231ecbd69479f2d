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
