//! IPv4 header view (RFC 791), options included. Parsing and field access only.

use super::{checksum, WireError};
use std::net::Ipv4Addr;

mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

#[inline(always)]
fn addr(d: &[u8], r: std::ops::Range<usize>) -> Ipv4Addr {
    Ipv4Addr::new(d[r.start], d[r.start + 1], d[r.start + 2], d[r.start + 3])
}

/// Minimum IPv4 header length.
pub const HEADER_LEN: usize = 20;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking; accessors may panic on short buffers.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap and validate: version 4, IHL ≥ 5, header and total length within the buffer.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Validate lengths and version (see [`Packet::new_checked`]).
    pub fn check_len(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 {
            return Err(WireError::Malformed);
        }
        let hl = self.header_len();
        let tl = usize::from(self.total_len());
        if hl < HEADER_LEN || tl < hl {
            return Err(WireError::Malformed);
        }
        if data.len() < tl {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0F) * 4
    }
    /// Type of service byte.
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    /// Total length field.
    pub fn total_len(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::LENGTH.start], d[field::LENGTH.start + 1]])
    }
    /// Identification field.
    pub fn ident(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::IDENT.start], d[field::IDENT.start + 1]])
    }
    fn flg_off(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::FLG_OFF.start], d[field::FLG_OFF.start + 1]])
    }
    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flg_off() & 0x4000 != 0
    }
    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flg_off() & 0x2000 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flg_off() & 0x1FFF) << 3
    }
    /// True if this is a fragment (MF set or offset ≠ 0).
    pub fn is_fragment(&self) -> bool {
        self.flg_off() & 0x3FFF != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Protocol field.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::CHECKSUM.start], d[field::CHECKSUM.start + 1]])
    }
    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::SRC_ADDR)
    }
    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::DST_ADDR)
    }
    /// Options bytes (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// True if the header checksum is valid.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.buffer.as_ref()[..self.header_len()]) == 0xFFFF
    }
    /// Payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set version 4 and header length (bytes, multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0F);
    }
    /// Set TOS.
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }
    /// Set total length.
    pub fn set_total_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
    /// Set identification.
    pub fn set_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&v.to_be_bytes());
    }
    /// Set flags (DF, MF) and fragment offset in bytes (multiple of 8).
    pub fn set_flags_and_offset(&mut self, df: bool, mf: bool, offset: u16) {
        let v = (u16::from(df) << 14) | (u16::from(mf) << 13) | ((offset >> 3) & 0x1FFF);
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }
    /// Set TTL.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    /// Set protocol.
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }
    /// Set checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Set source address (checksum untouched).
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }
    /// Set destination address (checksum untouched).
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }
    /// Recompute the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = !checksum::data(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
    /// Rewrite the source address and update the header checksum incrementally (RFC 1624).
    pub fn rewrite_src_addr(&mut self, a: Ipv4Addr) {
        let old = self.src_addr();
        let c = checksum::update_addr(self.checksum(), old, a);
        self.set_src_addr(a);
        self.set_checksum(c);
    }
    /// Rewrite the destination address and update the header checksum incrementally.
    pub fn rewrite_dst_addr(&mut self, a: Ipv4Addr) {
        let old = self.dst_addr();
        let c = checksum::update_addr(self.checksum(), old, a);
        self.set_dst_addr(a);
        self.set_checksum(c);
    }
    /// Mutable payload (header end .. total length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let tl = usize::from(self.total_len());
        &mut self.buffer.as_mut()[hl..tl]
    }
}

/// Owned summary of an IPv4 header without options, for building packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol.
    pub protocol: u8,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
}

impl Repr {
    /// Parse the fixed fields of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
        }
    }
    /// Length of the header `emit` writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write a 20-byte header (ident 0, DF clear, TOS 0) with a valid checksum. `buf` must be at
    /// least 20 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_version_and_header_len(HEADER_LEN);
        p.set_tos(0);
        p.set_total_len((HEADER_LEN + self.payload_len).min(65535) as u16);
        p.set_ident(0);
        p.set_flags_and_offset(false, false, 0);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.0.0.2 -> 192.0.2.1, UDP, total 28, ident 0x1234, DF, TTL 64, valid checksum.
    static PACKET: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x5c, 0x9a, 0x0a, 0x00, 0x00,
        0x02, 0xc0, 0x00, 0x02, 0x01, 0xaa, 0xbb, 0xcc, 0xdd, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).expect("valid test vector");
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0]);
    }

    #[test]
    fn test_construct() {
        let mut buf = vec![0u8; 28];
        buf[20..24].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        let mut p = Packet::new_unchecked(&mut buf);
        p.set_version_and_header_len(20);
        p.set_tos(0);
        p.set_total_len(28);
        p.set_ident(0x1234);
        p.set_flags_and_offset(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(17);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.set_dst_addr(Ipv4Addr::new(192, 0, 2, 1));
        p.fill_checksum();
        assert_eq!(&buf[..], &PACKET[..]);
    }

    #[test]
    fn options_and_rewrite() {
        // Header with 4 bytes of options (NOP NOP NOP EOL).
        let mut buf = vec![
            0x46, 0, 0, 24, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 192, 0, 2, 1, 1, 1, 1, 0,
        ];
        let mut p = Packet::new_checked(&mut buf).expect("valid");
        p.fill_checksum();
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert!(p.payload().is_empty());
        p.rewrite_src_addr(Ipv4Addr::new(203, 0, 113, 9));
        assert!(p.verify_checksum());
        p.rewrite_dst_addr(Ipv4Addr::new(198, 51, 100, 77));
        assert!(p.verify_checksum());
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&[0x45u8; 10][..]).err(),
            Some(WireError::Truncated)
        );
        let mut bad = PACKET;
        bad[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::Malformed)
        );
        bad = PACKET;
        bad[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::Malformed)
        );
        bad = PACKET;
        bad[3] = 40;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::Truncated)
        );
        bad = PACKET;
        bad[0] = 0x4f;
        assert!(Packet::new_checked(&bad[..]).is_err());
    }

    /// RFC 1071 written out independently of `checksum`: the ones-complement sum of 16-bit words.
    fn rfc1071_ok(header: &[u8]) -> bool {
        let mut sum: u32 = header
            .chunks(2)
            .map(|w| u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0)))
            .sum();
        while sum > 0xFFFF {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        sum == 0xFFFF
    }

    proptest::proptest! {
        /// Whatever parses prints back (through the setters) to the same bytes, the checksum
        /// verdict agrees with an independent RFC 1071 sum, and a filled checksum verifies.
        #[test]
        fn any_bytes_parse_print_round_trip(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
                proptest::prop_assert_eq!(p.verify_checksum(), rfc1071_ok(&data[..hl]));
                let mut out = vec![0u8; tl];
                let mut q = Packet::new_unchecked(&mut out[..]);
                q.set_version_and_header_len(hl);
                q.set_tos(p.tos());
                q.set_total_len(p.total_len());
                q.set_ident(p.ident());
                q.set_flags_and_offset(p.dont_frag(), p.more_frags(), p.frag_offset());
                q.set_ttl(p.ttl());
                q.set_protocol(p.protocol());
                q.set_checksum(p.checksum());
                q.set_src_addr(p.src_addr());
                q.set_dst_addr(p.dst_addr());
                out[HEADER_LEN..hl].copy_from_slice(p.options());
                out[hl..tl].copy_from_slice(p.payload());
                let mut expect = data[..tl].to_vec();
                expect[6] &= 0x7F; // the reserved flag bit has no accessor
                proptest::prop_assert_eq!(&out, &expect);
                let mut q = Packet::new_checked(&mut out[..]).expect("printed packet parses");
                q.fill_checksum();
                proptest::prop_assert!(q.verify_checksum());
                proptest::prop_assert!(rfc1071_ok(&out[..hl]));
            }
        }
    }
}
