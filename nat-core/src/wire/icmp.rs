//! ICMPv4 message view (RFC 792). Parsing and field access only.

use super::{checksum, WireError};

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// The 4 rest-of-header bytes.
    pub const REST: Range<usize> = 4..8;
    /// Query messages: identifier and sequence number (inside `REST`).
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Destination unreachable, code 4 (RFC 1191): next-hop MTU (inside `REST`).
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
}

/// ICMP header length (type, code, checksum, 4 bytes rest-of-header).
pub const HEADER_LEN: usize = 8;

/// Message types used by the engine.
pub mod types {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Source quench.
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
    /// Timestamp request.
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp reply.
    pub const TIMESTAMP_REPLY: u8 = 14;
    /// Information request.
    pub const INFO_REQUEST: u8 = 15;
    /// Information reply.
    pub const INFO_REPLY: u8 = 16;
    /// Address mask request.
    pub const ADDR_MASK: u8 = 17;
    /// Address mask reply.
    pub const ADDR_MASK_REPLY: u8 = 18;
}

/// True for the query (request) types masqueraded by id.
pub fn is_query_request(t: u8) -> bool {
    matches!(
        t,
        types::ECHO_REQUEST | types::TIMESTAMP | types::INFO_REQUEST | types::ADDR_MASK
    )
}

/// Map a reply type to its request type (reply → request), if it is a query reply.
pub fn reply_to_request(t: u8) -> Option<u8> {
    match t {
        types::ECHO_REPLY => Some(types::ECHO_REQUEST),
        types::TIMESTAMP_REPLY => Some(types::TIMESTAMP),
        types::INFO_REPLY => Some(types::INFO_REQUEST),
        types::ADDR_MASK_REPLY => Some(types::ADDR_MASK),
        _ => None,
    }
}

/// True for error types translated by masquerading (2.2: unreachable, source quench, time
/// exceeded; parameter problem as well, as RFC 5508 REQ-3 asks).
pub fn is_error(t: u8) -> bool {
    matches!(
        t,
        types::DST_UNREACHABLE | types::SOURCE_QUENCH | types::TIME_EXCEEDED | types::PARAM_PROBLEM
    )
}

/// A read/write view of an ICMP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }
    /// Wrap and validate: at least 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }
    /// Consume the view.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    #[inline(always)]
    fn be16(&self, r: std::ops::Range<usize>) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[r.start], d[r.start + 1]])
    }
    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }
    /// Identifier (query messages).
    pub fn echo_ident(&self) -> u16 {
        self.be16(field::ECHO_IDENT)
    }
    /// Sequence number (query messages).
    pub fn echo_seq_no(&self) -> u16 {
        self.be16(field::ECHO_SEQNO)
    }
    /// The 4 rest-of-header bytes as one word (zero for most errors; the pointer of a parameter
    /// problem; unused + next-hop MTU for fragmentation needed).
    pub fn rest(&self) -> u32 {
        let d = self.buffer.as_ref();
        let r = field::REST;
        u32::from_be_bytes([d[r.start], d[r.start + 1], d[r.start + 2], d[r.start + 3]])
    }
    /// Next-hop MTU of a "fragmentation needed" unreachable (RFC 1191; 0 from pre-1191 routers).
    pub fn next_hop_mtu(&self) -> u16 {
        self.be16(field::NEXT_HOP_MTU)
    }
    /// Bytes after the 8-byte header (for errors: the embedded IP header + 8 bytes).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// Verify the checksum over the whole message.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }
    /// Set code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }
    /// Set checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Set identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::ECHO_IDENT].copy_from_slice(&v.to_be_bytes());
    }
    /// Set sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.buffer.as_mut()[field::ECHO_SEQNO].copy_from_slice(&v.to_be_bytes());
    }
    /// Set the 4 rest-of-header bytes (e.g. zero for unreachable, MTU for frag-needed).
    pub fn set_rest(&mut self, v: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&v.to_be_bytes());
    }
    /// Mutable data after the header.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
    /// Recompute the checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = !checksum::data(self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Rewrite the identifier with an RFC 1624 checksum update.
    ///
    /// ICMP has no pseudo-header, so an echo reply with identifier, sequence and payload all
    /// zero is legal; its only valid checksum is 0xFFFF (the complement of +0). Eqn. 3 yields
    /// the other zero, 0x0000, which receivers reject, so that one case is mended here. Any
    /// other message whose update yields 0x0000 is right as it is (its words sum to -0).
    pub fn rewrite_echo_ident(&mut self, v: u16) {
        let mut c = checksum::update_u16(self.checksum(), self.echo_ident(), v);
        self.set_echo_ident(v);
        if c == 0 {
            let d = self.buffer.as_ref();
            if d[..field::CHECKSUM.start].iter().all(|&b| b == 0)
                && d[field::CHECKSUM.end..].iter().all(|&b| b == 0)
            {
                c = 0xFFFF;
            }
        }
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request id 0x1234 seq 0xabcd, payload "ping", valid checksum (smoltcp-like vector).
    static ECHO: [u8; 12] = [
        0x08, 0x00, 0x8e, 0xfe, 0x12, 0x34, 0xab, 0xcd, 0xaa, 0x00, 0x00, 0xff,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&ECHO[..]).expect("valid");
        assert_eq!(p.msg_type(), types::ECHO_REQUEST);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 0xabcd);
        assert_eq!(p.data(), &[0xaa, 0x00, 0x00, 0xff]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(types::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(0xabcd);
        p.data_mut().copy_from_slice(&[0xaa, 0x00, 0x00, 0xff]);
        p.fill_checksum();
        assert_eq!(&buf[..], &ECHO[..]);
    }

    #[test]
    fn incremental_ident() {
        let mut buf = ECHO;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.rewrite_echo_ident(61000);
        assert!(p.verify_checksum());
    }

    /// Found by the `engine` fuzz target: an echo reply to masquerade port 61000 whose
    /// identifier goes back to 0, with sequence and payload zero, must carry 0xFFFF, not 0x0000.
    #[test]
    fn rewrite_to_an_all_zero_echo_reply_keeps_a_valid_checksum() {
        let mut buf = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_echo_ident(61000);
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.rewrite_echo_ident(0);
        assert_eq!(p.checksum(), 0xFFFF);
        assert!(p.verify_checksum());
    }

    #[test]
    fn classification() {
        assert!(is_query_request(8) && !is_query_request(0));
        assert_eq!(reply_to_request(0), Some(8));
        assert_eq!(reply_to_request(14), Some(13));
        assert!(is_error(3) && is_error(11) && !is_error(8));
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest::proptest! {
        /// A valid echo message stays valid whatever identifier it is rewritten to (small
        /// alphabets so that all-zero messages come up often).
        #[test]
        fn rewritten_echo_ident_always_verifies(
            data in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0xff]), 8..24),
            from in proptest::sample::select(vec![0u16, 1, 61000, 0xffff]),
            to in proptest::sample::select(vec![0u16, 1, 61000, 0xffff]),
        ) {
            let mut buf = data;
            let mut p = Packet::new_unchecked(&mut buf[..]);
            p.set_echo_ident(from);
            p.fill_checksum();
            p.rewrite_echo_ident(to);
            proptest::prop_assert_eq!(p.echo_ident(), to);
            proptest::prop_assert!(p.verify_checksum());
        }

        /// Whatever parses prints back to the same bytes, and a filled checksum verifies.
        #[test]
        fn any_bytes_parse_print_round_trip(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let mut out = vec![0u8; data.len()];
                let mut q = Packet::new_unchecked(&mut out[..]);
                q.set_msg_type(p.msg_type());
                q.set_msg_code(p.msg_code());
                q.set_checksum(p.checksum());
                q.set_rest(p.rest());
                q.data_mut().copy_from_slice(p.data());
                proptest::prop_assert_eq!(&out, &data);
                proptest::prop_assert_eq!(p.rest() >> 16, u32::from(p.echo_ident()));
                proptest::prop_assert_eq!(p.next_hop_mtu(), p.echo_seq_no());
                let mut q = Packet::new_unchecked(&mut out[..]);
                q.fill_checksum();
                proptest::prop_assert!(q.verify_checksum());
            }
        }
    }
}
