//! Fast non-cryptographic hashing of masquerade keys (folded multiply, wyhash/foldhash style).
//! Owns key hashing only; keys come from our own table, so HashDoS resistance is provided by a
//! per-table random-free seed mix of the 5-tuple, not by secrecy.

/// Hash two 64-bit words with a folded 128-bit multiply.
#[inline(always)]
pub fn hash2(a: u64, b: u64) -> u64 {
    const K1: u64 = 0x243f_6a88_85a3_08d3;
    const K2: u64 = 0x1319_8a2e_0370_7344;
    let p = u128::from(a ^ K1) * u128::from(b ^ K2);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Key of the outbound index: (proto, saddr, sport, daddr, dport).
#[inline(always)]
pub fn out_key(proto: u8, s: u32, sp: u16, d: u32, dp: u16) -> u64 {
    hash2(
        (u64::from(s) << 32) | u64::from(d),
        (u64::from(sp) << 32) | (u64::from(dp) << 16) | u64::from(proto),
    )
}

/// Key of the inbound index: (proto, mport, daddr, dport); the masquerade address is global.
#[inline(always)]
pub fn in_key(proto: u8, mp: u16, d: u32, dp: u16) -> u64 {
    hash2(
        u64::from(d) | (1 << 40),
        (u64::from(mp) << 32) | (u64::from(dp) << 16) | u64::from(proto),
    )
}
