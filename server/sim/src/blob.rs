//! The deterministic byte stream every test transfer is checked against (blob server, FTP
//! `blob.bin`): SplitMix64 from a seed, any offset generated directly. A leaf: used by
//! [`crate::wan`] and [`crate::ftp`], imports neither.

/// SplitMix64's increment (the golden ratio in 64-bit fixed point).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The deterministic pseudo-random byte stream: the SplitMix64 sequence from `seed`, each 64-bit output
/// in little-endian order. Byte `i` depends only on the seed and `i`, so any offset can be generated.
#[derive(Debug, Clone)]
pub struct Blob {
    seed: u64,
    pos: u64,
}

impl Blob {
    /// The stream from its start.
    pub fn new(seed: u64) -> Blob {
        Blob { seed, pos: 0 }
    }

    /// The stream from byte `offset`.
    pub fn at(seed: u64, offset: u64) -> Blob {
        Blob { seed, pos: offset }
    }

    /// The 8-byte block number `k` (block `k` covers bytes `8k..8k+8`).
    fn block(&self, k: u64) -> [u8; 8] {
        mix(self
            .seed
            .wrapping_add(k.wrapping_add(1).wrapping_mul(GAMMA)))
        .to_le_bytes()
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut i = 0;
        while i < buf.len() {
            let block = self.block(self.pos / 8);
            let start = (self.pos % 8) as usize;
            let n = (8 - start).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&block[start..start + n]);
            i += n;
            self.pos += n as u64;
        }
    }

    /// The offset of the next byte.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

/// The first `len` bytes of the stream of `seed`.
pub fn blob_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    Blob::new(seed).fill(&mut v);
    v
}

/// Checks `data` against the stream of `seed` from byte 0; returns the offset of the first mismatch.
pub fn first_mismatch(seed: u64, data: &[u8]) -> Option<usize> {
    let mut gen = Blob::new(seed);
    let mut chunk = [0u8; 4096];
    for (ci, part) in data.chunks(chunk.len()).enumerate() {
        let want = &mut chunk[..part.len()];
        gen.fill(want);
        if let Some(j) = part.iter().zip(want.iter()).position(|(a, b)| a != b) {
            return Some(ci * 4096 + j);
        }
    }
    None
}
