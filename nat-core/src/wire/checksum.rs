//! Internet checksum (RFC 1071) and its incremental update (RFC 1624). Pure arithmetic: no packet
//! parsing here.

use std::net::Ipv4Addr;

/// Ones-complement sum of `data` added to `acc` (not inverted, not folded). Eight bytes per
/// step into a 64-bit accumulator (two 32-bit halves each; no carry can be lost below 2^31
/// steps, i.e. 16 GiB of data, far beyond an IPv4 datagram), then 16-bit words for the tail.
/// The additions are written wrapping: they cannot overflow (above), and an overflow check
/// per step would keep the loop from being unrolled in the release build (which keeps
/// `overflow-checks` on).
fn sum_words(acc: u32, data: &[u8]) -> u32 {
    let mut acc64 = u64::from(acc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc64 = acc64.wrapping_add((v >> 32).wrapping_add(v & 0xFFFF_FFFF));
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc64 = acc64.wrapping_add(u64::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [last] = words.remainder() {
        acc64 = acc64.wrapping_add(u64::from(*last) << 8);
    }
    // Fold 64 → 32 bits keeping the ones-complement value.
    let mut a = (acc64 & 0xFFFF_FFFF) + (acc64 >> 32);
    a = (a & 0xFFFF_FFFF) + (a >> 32);
    let a = a as u32;
    // Fold once more to leave headroom for callers adding a few 16-bit values.
    (a & 0xFFFF) + (a >> 16)
}

/// Fold a 32-bit accumulator into a 16-bit ones-complement sum.
#[inline]
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        // At most 0xFFFF + 0xFFFF: no overflow.
        acc = (acc & 0xFFFF).wrapping_add(acc >> 16);
    }
    acc as u16
}

/// Ones-complement sum of `data`, folded (RFC 1071), *not* inverted.
pub fn data(data: &[u8]) -> u16 {
    fold(sum_words(0, data))
}

/// Combine several ones-complement partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    // Terms below 2^16 in a u64: no overflow below 2^48 terms (wrapping adds, no checks);
    // then folded to 32 bits keeping the ones-complement value.
    let a = sums
        .iter()
        .fold(0u64, |a, &s| a.wrapping_add(u64::from(s)));
    let a = (a & 0xFFFF_FFFF).wrapping_add(a >> 32);
    let a = (a & 0xFFFF_FFFF).wrapping_add(a >> 32);
    fold(a as u32)
}

/// Ones-complement sum of the TCP/UDP pseudo header (RFC 793 §3.1, RFC 768).
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

    proptest::proptest! {
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
