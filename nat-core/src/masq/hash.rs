//! Fast non-cryptographic hashing of masquerade keys (folded multiply, wyhash/foldhash style).
//! Owns key hashing only. Keys are chosen by outside hosts (addresses and ports), so every key is
//! mixed with the table's secret seed ([`super::MasqConfig::hash_seed`], random in the server):
//! without it a host could compute flows that land in one index slot and flood the linear
//! probing.

/// Hash two 64-bit words with a folded 128-bit multiply.
#[inline(always)]
pub fn hash2(seed: u64, a: u64, b: u64) -> u64 {
    const K1: u64 = 0x243f_6a88_85a3_08d3;
    const K2: u64 = 0x1319_8a2e_0370_7344;
    let p = u128::from(a ^ K1 ^ seed) * u128::from(b ^ K2 ^ seed.rotate_left(32));
    (p as u64) ^ ((p >> 64) as u64)
}

/// Key of the outbound index: (proto, saddr, sport, daddr, dport).
#[inline(always)]
pub fn out_key(seed: u64, proto: u8, s: u32, sp: u16, d: u32, dp: u16) -> u64 {
    hash2(
        seed,
        (u64::from(s) << 32) | u64::from(d),
        (u64::from(sp) << 32) | (u64::from(dp) << 16) | u64::from(proto),
    )
}

/// Key of the inbound index: (proto, mport, daddr, dport); the masquerade address is global.
#[inline(always)]
pub fn in_key(seed: u64, proto: u8, mp: u16, d: u32, dp: u16) -> u64 {
    hash2(
        seed,
        u64::from(d) | (1 << 40),
        (u64::from(mp) << 32) | (u64::from(dp) << 16) | u64::from(proto),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_changes_every_key() {
        // Flows that share an index slot under one seed are spread under another: the slot
        // (low bits) of 1,000 tuples colliding under seed 0 mostly differs under seed 1.
        let slot = |seed: u64, sp: u16| out_key(seed, 17, 0xc0a8_0102, sp, 0x0a00_0001, 53) & 0xfff;
        let target = slot(0, 1024);
        let colliding: Vec<u16> = (1024..u16::MAX)
            .filter(|&sp| slot(0, sp) == target)
            .take(10)
            .collect();
        assert!(colliding.len() >= 2, "{colliding:?}");
        let moved = colliding
            .iter()
            .filter(|&&sp| {
                slot(0x9e37_79b9_7f4a_7c15, sp) != slot(0x9e37_79b9_7f4a_7c15, colliding[0])
            })
            .count();
        assert!(moved >= colliding.len() - 2, "{moved} of {colliding:?}");
        assert_ne!(in_key(1, 6, 61000, 1, 80), in_key(2, 6, 61000, 1, 80));
    }
}
