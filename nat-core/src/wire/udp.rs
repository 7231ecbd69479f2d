//! UDP header view (RFC 768). Parsing and field access only.

use super::{checksum, WireError};
use std::net::Ipv4Addr;

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// UDP header length.
pub const HEADER_LEN: usize = 8;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }
    /// Wrap and validate: ≥ 8 bytes, 8 ≤ length field ≤ buffer length.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let l = usize::from(p.len());
        if l < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if l > len {
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
    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.be16(field::SRC_PORT)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.be16(field::DST_PORT)
    }
    /// Length field (header + payload).
    pub fn len(&self) -> u16 {
        self.be16(field::LENGTH)
    }
    /// True if the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }
    /// Checksum field (0 = none, RFC 768).
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }
    /// Payload (to the length field).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
    /// Verify the checksum; a zero checksum means "not computed" and verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = &self.buffer.as_ref()[..usize::from(self.len())];
        let ph = checksum::pseudo_header(src, dst, super::proto::UDP, d.len() as u32);
        checksum::combine(&[ph, checksum::data(d)]) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set source port.
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }
    /// Set destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }
    /// Set length field.
    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
    /// Set checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..l]
    }
    /// Recompute the checksum; a computed 0 is sent as 0xFFFF (RFC 768).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let l = usize::from(self.len());
        let d = &self.buffer.as_ref()[..l];
        let ph = checksum::pseudo_header(src, dst, super::proto::UDP, l as u32);
        let c = checksum::finish(ph, d);
        self.set_checksum(if c == 0 { 0xFFFF } else { c });
    }
    #[inline(always)]
    fn adjust(&mut self, f: impl FnOnce(u16) -> u16) {
        // RFC 768: a zero checksum means "none" and must stay zero.
        let c = self.checksum();
        if c != 0 {
            let n = f(c);
            self.set_checksum(if n == 0 { 0xFFFF } else { n });
        }
    }
    /// Rewrite source port with an RFC 1624 update (zero checksum stays zero).
    pub fn rewrite_src_port(&mut self, v: u16) {
        let old = self.src_port();
        self.adjust(|c| checksum::update_u16(c, old, v));
        self.set_src_port(v);
    }
    /// Rewrite destination port with an RFC 1624 update.
    pub fn rewrite_dst_port(&mut self, v: u16) {
        let old = self.dst_port();
        self.adjust(|c| checksum::update_u16(c, old, v));
        self.set_dst_port(v);
    }
    /// Account for a pseudo-header address change.
    pub fn update_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.adjust(|c| checksum::update_addr(c, old, new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

    // smoltcp udp.rs vector: 48896 -> 53, len 12, checksum 0x124d, payload aa 00 00 ff.
    static PACKET: [u8; 12] = [
        0xbf, 0x00, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x4d, 0xaa, 0x00, 0x00, 0xff,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).expect("valid");
        assert_eq!(p.src_port(), 48896);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.checksum(), 0x124d);
        assert_eq!(p.payload(), &[0xaa, 0x00, 0x00, 0xff]);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(48896);
        p.set_dst_port(53);
        p.set_len(12);
        p.payload_mut().copy_from_slice(&[0xaa, 0x00, 0x00, 0xff]);
        p.fill_checksum(SRC, DST);
        assert_eq!(&buf[..], &PACKET[..]);
    }

    #[test]
    fn zero_checksum_stays_zero() {
        let mut buf = PACKET;
        buf[6] = 0;
        buf[7] = 0;
        let mut p = Packet::new_checked(&mut buf[..]).expect("valid");
        p.rewrite_src_port(61000);
        p.update_for_addr(SRC, DST);
        assert_eq!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn incremental_matches_full() {
        let mut buf = PACKET;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.rewrite_src_port(61001);
        p.update_for_addr(SRC, Ipv4Addr::new(203, 0, 113, 5));
        assert!(p.verify_checksum(Ipv4Addr::new(203, 0, 113, 5), DST));
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&PACKET[..4]).err(),
            Some(WireError::Truncated)
        );
        let mut b = PACKET;
        b[5] = 4;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        b[5] = 13;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest::proptest! {
        /// Whatever parses prints back to the same bytes, and a filled checksum verifies.
        #[test]
        fn any_bytes_parse_print_round_trip(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let l = usize::from(p.len());
                let mut out = vec![0u8; l];
                let mut q = Packet::new_unchecked(&mut out[..]);
                q.set_src_port(p.src_port());
                q.set_dst_port(p.dst_port());
                q.set_len(p.len());
                q.set_checksum(p.checksum());
                q.payload_mut().copy_from_slice(p.payload());
                proptest::prop_assert_eq!(&out[..], &data[..l]);
                let mut q = Packet::new_unchecked(&mut out[..]);
                q.fill_checksum(SRC, DST);
                proptest::prop_assert!(q.checksum() != 0 && q.verify_checksum(SRC, DST));
            }
        }
    }
}
