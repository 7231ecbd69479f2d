//! TCP header view (RFC 793). Parsing and field access only; no connection state.

use super::{checksum, WireError};
use std::net::Ipv4Addr;

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const FLAGS: Range<usize> = 12..14;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Bytes up to the end of the checksum field (an ICMP error's quote may be shorter).
pub const CHECKSUM_END: usize = field::CHECKSUM.end;

/// Bytes up to the end of the flags field.
pub const FLAGS_END: usize = field::FLAGS.end;

/// Minimum TCP header length.
pub const HEADER_LEN: usize = 20;

/// FIN flag bit.
pub const FLG_FIN: u16 = 0x001;
/// SYN flag bit.
pub const FLG_SYN: u16 = 0x002;
/// RST flag bit.
pub const FLG_RST: u16 = 0x004;
/// PSH flag bit.
pub const FLG_PSH: u16 = 0x008;
/// ACK flag bit.
pub const FLG_ACK: u16 = 0x010;

/// A read/write view of a TCP segment.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline(always)]
fn be16(d: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([d[r.start], d[r.start + 1]])
}
#[inline(always)]
fn be32(d: &[u8], r: std::ops::Range<usize>) -> u32 {
    u32::from_be_bytes([d[r.start], d[r.start + 1], d[r.start + 2], d[r.start + 3]])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }
    /// Wrap and validate: ≥ 20 bytes, data offset ≥ 5 and within the buffer.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = p.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if hl > len {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }
    /// Consume the view.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }
    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ_NUM)
    }
    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK_NUM)
    }
    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }
    /// The 9 flag bits (FIN = bit 0 … NS = bit 8).
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS) & 0x01FF
    }
    /// FIN set.
    pub fn fin(&self) -> bool {
        self.flags() & FLG_FIN != 0
    }
    /// SYN set.
    pub fn syn(&self) -> bool {
        self.flags() & FLG_SYN != 0
    }
    /// RST set.
    pub fn rst(&self) -> bool {
        self.flags() & FLG_RST != 0
    }
    /// ACK set.
    pub fn ack(&self) -> bool {
        self.flags() & FLG_ACK != 0
    }
    /// Window size.
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WIN_SIZE)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT)
    }
    /// Payload after the header (to the end of the buffer).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Verify the checksum with the IPv4 pseudo header (the buffer is the whole segment).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let d = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, super::proto::TCP, d.len() as u32);
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
    /// Set sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Set acknowledgment number.
    pub fn set_ack_number(&mut self, v: u32) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Set header length (bytes) and flags.
    pub fn set_header_len_and_flags(&mut self, header_len: usize, flags: u16) {
        let v = (((header_len / 4) as u16) << 12) | (flags & 0x01FF);
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&v.to_be_bytes());
    }
    /// Set window.
    pub fn set_window_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::WIN_SIZE].copy_from_slice(&v.to_be_bytes());
    }
    /// Set checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Set urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&v.to_be_bytes());
    }
    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
    /// Recompute the checksum from scratch.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let d = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, super::proto::TCP, d.len() as u32);
        let c = checksum::finish(ph, d);
        self.set_checksum(c);
    }
    /// Rewrite source port with an RFC 1624 checksum update.
    pub fn rewrite_src_port(&mut self, v: u16) {
        let c = checksum::update_u16(self.checksum(), self.src_port(), v);
        self.set_src_port(v);
        self.set_checksum(c);
    }
    /// Rewrite destination port with an RFC 1624 checksum update.
    pub fn rewrite_dst_port(&mut self, v: u16) {
        let c = checksum::update_u16(self.checksum(), self.dst_port(), v);
        self.set_dst_port(v);
        self.set_checksum(c);
    }
    /// Rewrite sequence number with an RFC 1624 checksum update.
    pub fn rewrite_seq_number(&mut self, v: u32) {
        let c = checksum::update_u32(self.checksum(), self.seq_number(), v);
        self.set_seq_number(v);
        self.set_checksum(c);
    }
    /// Rewrite acknowledgment number with an RFC 1624 checksum update.
    pub fn rewrite_ack_number(&mut self, v: u32) {
        let c = checksum::update_u32(self.checksum(), self.ack_number(), v);
        self.set_ack_number(v);
        self.set_checksum(c);
    }
    /// Account for a pseudo-header address change (RFC 1624 update).
    pub fn update_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update_addr(self.checksum(), old, new);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

    // smoltcp's tcp.rs vector (ports 48896 -> 80, seq 0x01234567, ack 0x89abcdef, flags
    // FIN|RST|ACK|URG = 0x35, window 0x0123, checksum 0x01b6, urgent 0x0201, window-scale option
    // 03 03 0c 01, payload aa 00 00 ff), exactly as smoltcp has it.
    static SMOLTCP_PACKET: [u8; 28] = [
        0xbf, 0x00, 0x00, 0x50, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x60, 0x35, 0x01,
        0x23, 0x01, 0xb6, 0x02, 0x01, 0x03, 0x03, 0x0c, 0x01, 0xaa, 0x00, 0x00, 0xff,
    ];

    // The same segment without the option (data offset 5): its checksum is 0x20be (0x01b6 with
    // the option words, the data offset and the pseudo-header length taken out).
    static PACKET: [u8; 24] = [
        0xbf, 0x00, 0x00, 0x50, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x50, 0x35, 0x01,
        0x23, 0x20, 0xbe, 0x02, 0x01, 0xaa, 0x00, 0x00, 0xff,
    ];

    #[test]
    fn smoltcp_vector_verifies_as_given() {
        let p = Packet::new_checked(&SMOLTCP_PACKET[..]).expect("valid");
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.checksum(), 0x01b6);
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(p.payload(), &[0xaa, 0x00, 0x00, 0xff]);
        // Filling recomputes the same value.
        let mut buf = SMOLTCP_PACKET;
        Packet::new_unchecked(&mut buf[..]).fill_checksum(SRC, DST);
        assert_eq!(buf, SMOLTCP_PACKET);
        // A wrong address fails.
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(192, 168, 1, 3)));
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).expect("valid");
        // The vector's own checksum verifies before anything is filled in.
        assert_eq!(p.checksum(), 0x20be);
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(p.src_port(), 48896);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x0123_4567);
        assert_eq!(p.ack_number(), 0x89ab_cdef);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.flags(), FLG_FIN | FLG_RST | FLG_ACK | 0x20);
        assert!(p.fin() && !p.syn() && p.rst() && p.ack());
        assert_eq!(p.window_len(), 0x0123);
        assert_eq!(p.urgent_at(), 0x0201);
        assert_eq!(p.payload(), &[0xaa, 0x00, 0x00, 0xff]);
        // One flipped payload bit breaks it.
        let mut bad = PACKET;
        bad[23] ^= 0x01;
        assert!(!Packet::new_checked(&bad[..])
            .expect("valid")
            .verify_checksum(SRC, DST));
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 24];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(48896);
        p.set_dst_port(80);
        p.set_seq_number(0x0123_4567);
        p.set_ack_number(0x89ab_cdef);
        p.set_header_len_and_flags(20, FLG_FIN | FLG_RST | FLG_ACK | 0x20);
        p.set_window_len(0x0123);
        p.set_urgent_at(0x0201);
        p.payload_mut().copy_from_slice(&[0xaa, 0x00, 0x00, 0xff]);
        p.fill_checksum(SRC, DST);
        assert_eq!(&buf[..], &PACKET[..]);
    }

    #[test]
    fn incremental_rewrites_match_full() {
        let mut buf = PACKET;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.fill_checksum(SRC, DST);
        p.rewrite_src_port(61000);
        p.rewrite_seq_number(0xdead_beef);
        p.rewrite_ack_number(7);
        p.update_for_addr(SRC, Ipv4Addr::new(203, 0, 113, 5));
        assert!(p.verify_checksum(Ipv4Addr::new(203, 0, 113, 5), DST));
        let inc = p.checksum();
        p.fill_checksum(Ipv4Addr::new(203, 0, 113, 5), DST);
        assert_eq!(inc, p.checksum());
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&PACKET[..10]).err(),
            Some(WireError::Truncated)
        );
        let mut b = PACKET;
        b[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        b[12] = 0xf0;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest::proptest! {
        /// Whatever parses prints back to the same bytes (options copied as they are), and a
        /// filled checksum verifies.
        #[test]
        fn any_bytes_parse_print_round_trip(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let hl = p.header_len();
                let mut out = vec![0u8; data.len()];
                let mut q = Packet::new_unchecked(&mut out[..]);
                q.set_src_port(p.src_port());
                q.set_dst_port(p.dst_port());
                q.set_seq_number(p.seq_number());
                q.set_ack_number(p.ack_number());
                q.set_header_len_and_flags(hl, p.flags());
                q.set_window_len(p.window_len());
                q.set_checksum(p.checksum());
                q.set_urgent_at(p.urgent_at());
                q.payload_mut().copy_from_slice(p.payload());
                out[HEADER_LEN..hl].copy_from_slice(&data[HEADER_LEN..hl]);
                let mut expect = data.clone();
                expect[12] &= 0xF1; // the reserved bits have no accessor
                proptest::prop_assert_eq!(&out, &expect);
                let mut q = Packet::new_unchecked(&mut out[..]);
                q.fill_checksum(SRC, DST);
                proptest::prop_assert!(q.verify_checksum(SRC, DST));
            }
        }
    }
}
