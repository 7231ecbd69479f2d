//! Internet checksum (RFC 1071) and its incremental update (RFC 1624). Pure arithmetic: no packet
//! parsing here.

use std::net::Ipv4Addr;

/// Ones-complement sum of `data` added to `acc` (not inverted; folded to at most 17 bits, so
/// that callers can add a few 16-bit values before folding).
///
/// The data is summed as native little-endian 32-bit words into a 64-bit accumulator, without
/// swapping each word: RFC 1071 §2(B), the ones-complement sum is byte-order independent, so
/// the sum of the little-endian 16-bit words is the byte swap of the big-endian sum (and both
/// are zero only for all-zero data, so the swapped result is the same value the big-endian
/// loop gives, not only the same ones-complement class). No carry is lost below 2^32 words
/// (16 GiB, far beyond an IPv4 datagram); the adds are written wrapping because they cannot
/// overflow, so the release build's `overflow-checks` add no check per word.
#[inline]
fn sum_words(acc: u32, data: &[u8]) -> u32 {
    let mut s = 0u64;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        s = s.wrapping_add(u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
    }
    // The tail: a little-endian 16-bit word, then a lone last byte, which is the high byte
    // of a zero-padded big-endian word, i.e. the low byte of a little-endian one.
    match *chunks.remainder() {
        [a, b, c] => {
            s = s.wrapping_add(u64::from(u16::from_le_bytes([a, b])) + u64::from(c));
        }
        [a, b] => s = s.wrapping_add(u64::from(u16::from_le_bytes([a, b]))),
        [a] => s = s.wrapping_add(u64::from(a)),
        _ => {}
    }
    // Fold 64 → 32 → 16 bits keeping the ones-complement value (end-around carries).
    let s = (s & 0xFFFF_FFFF).wrapping_add(s >> 32);
    let s = (s & 0xFFFF_FFFF).wrapping_add(s >> 32);
    let le = fold(s as u32);
    u32::from(le.swap_bytes()).wrapping_add(u32::from(fold(acc)))
}

/// Fold a 32-bit accumulator into a 16-bit ones-complement sum (end-around carries). Two
/// steps always suffice: the first leaves at most 0x1FFFE, the second at most 0xFFFF.
#[inline]
pub fn fold(acc: u32) -> u16 {
    let a = (acc & 0xFFFF).wrapping_add(acc >> 16);
    let a = (a & 0xFFFF).wrapping_add(a >> 16);
    a as u16
}

/// Ones-complement sum of `data`, folded (RFC 1071), *not* inverted.
#[inline]
pub fn data(data: &[u8]) -> u16 {
    fold(sum_words(0, data))
}

/// Combine several ones-complement partial sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    // Terms below 2^16 in a u64: no overflow below 2^48 terms (wrapping adds, no checks);
    // then folded to 32 bits keeping the ones-complement value.
    let a = sums.iter().fold(0u64, |a, &s| a.wrapping_add(u64::from(s)));
    let a = (a & 0xFFFF_FFFF).wrapping_add(a >> 32);
    let a = (a & 0xFFFF_FFFF).wrapping_add(a >> 32);
    fold(a as u32)
}

/// Ones-complement sum of the TCP/UDP pseudo header (RFC 793 §3.1, RFC 768).
#[inline]
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u32) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    // Seven terms below 2^16 each: the sum stays below 2^19 (wrapping adds, no checks).
    let acc = u32::from(u16::from_be_bytes([s[0], s[1]]))
        .wrapping_add(u32::from(u16::from_be_bytes([s[2], s[3]])))
        .wrapping_add(u32::from(u16::from_be_bytes([d[0], d[1]])))
        .wrapping_add(u32::from(u16::from_be_bytes([d[2], d[3]])))
        .wrapping_add(u32::from(proto))
        .wrapping_add(len & 0xFFFF)
        .wrapping_add(len >> 16);
    fold(acc)
}

/// Checksum field value for `data` plus a pseudo-header sum: `!(pseudo + data)`.
#[inline]
pub fn finish(pseudo: u16, payload: &[u8]) -> u16 {
    !fold(sum_words(u32::from(pseudo), payload))
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')` — update checksum field `hc` when a 16-bit word
/// changes from `old` to `new`.
#[inline]
pub fn update_u16(hc: u16, old: u16, new: u16) -> u16 {
    // Three terms below 2^16: no overflow (wrapping adds, no checks).
    let acc = u32::from(!hc)
        .wrapping_add(u32::from(!old))
        .wrapping_add(u32::from(new));
    !fold(acc)
}

/// RFC 1624 update for a 32-bit field (two 16-bit words), e.g. an IPv4 address or a TCP
/// sequence number.
#[inline]
pub fn update_u32(hc: u16, old: u32, new: u32) -> u16 {
    // Five terms below 2^16: no overflow (wrapping adds, no checks).
    let acc = u32::from(!hc)
        .wrapping_add(u32::from(!(old >> 16) as u16))
        .wrapping_add(u32::from(!(old as u16)))
        .wrapping_add(new >> 16)
        .wrapping_add(new & 0xFFFF);
    !fold(acc)
}

/// RFC 1624 update for an IPv4 address change.
#[inline]
pub fn update_addr(hc: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_u32(hc, u32::from(old), u32::from(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length() {
        assert_eq!(data(&[0x01]), 0x0100);
        assert_eq!(data(&[0x01, 0x02, 0x03]), 0x0402);
    }

    /// RFC 1071 written the plain way: big-endian 16-bit words, the odd byte padded, the carry
    /// folded back after every add.
    fn reference(acc: u32, data: &[u8]) -> u16 {
        let mut s = acc;
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        for w in data.chunks(2) {
            s += u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
            if s > 0xFFFF {
                s = (s & 0xFFFF) + (s >> 16);
            }
        }
        s as u16
    }

    #[test]
    fn fold_takes_every_carry() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xFFFF), 0xFFFF);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0x1_FFFE), 0xFFFF);
        assert_eq!(fold(0xFFFF_FFFF), 0xFFFF);
        assert_eq!(fold(0x8000_7FFF), 0xFFFF);
    }

    proptest::proptest! {
        /// The word-at-a-time sum gives exactly what the plain RFC 1071 loop gives, for every
        /// length (every tail of 0–3 bytes) and starting value, not only the same
        /// ones-complement class (0x0000 and 0xFFFF are told apart).
        #[test]
        fn sum_equals_the_plain_loop(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                                     acc in 0u32..0x2_0000, zeros in proptest::prelude::any::<bool>()) {
            let data = if zeros { vec![0u8; data.len()] } else { data };
            proptest::prop_assert_eq!(fold(sum_words(acc, &data)), reference(acc, &data));
            proptest::prop_assert_eq!(super::data(&data), reference(0, &data));
        }

        #[test]
        fn incremental_equals_full(mut buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 2..64),
                                   pos in 0usize..32, new in proptest::prelude::any::<u16>()) {
            if buf.len() % 2 == 1 { buf.push(0); }
            let pos = (pos * 2) % buf.len();
            let hc = !data(&buf);
            let old = u16::from_be_bytes([buf[pos], buf[pos + 1]]);
            buf[pos..pos + 2].copy_from_slice(&new.to_be_bytes());
            let full = !data(&buf);
            let inc = update_u16(hc, old, new);
            // 0x0000 and 0xFFFF are the same ones-complement value; compare modulo that.
            proptest::prop_assert!(inc == full || (inc ^ full) == 0xFFFF && (inc == 0 || full == 0));
        }

        #[test]
        fn incremental_u32_equals_full(mut buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 4..64),
                                       pos in 0usize..32, new in proptest::prelude::any::<u32>()) {
            if buf.len() % 2 == 1 { buf.push(0); }
            let pos = (pos * 2) % (buf.len() - 2);
            if pos + 4 > buf.len() { return Ok(()); }
            let hc = !data(&buf);
            let old = u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]);
            buf[pos..pos + 4].copy_from_slice(&new.to_be_bytes());
            let full = !data(&buf);
            let inc = update_u32(hc, old, new);
            proptest::prop_assert!(inc == full || (inc ^ full) == 0xFFFF && (inc == 0 || full == 0));
        }
    }
}
