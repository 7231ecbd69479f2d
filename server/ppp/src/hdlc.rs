//! HDLC-like framing for PPP over async serial lines (RFC 1662): flags, control escapes by ACCM,
//! FCS-16/FCS-32, and a byte-wise decoder that accepts any chunking. Owns only framing: it must not
//! interpret PPP protocols (the caller strips address/control/protocol fields).

/// Flag sequence that opens and closes every frame (RFC 1662 §4.1).
pub const FLAG: u8 = 0x7E;
/// Control escape octet (RFC 1662 §4.2).
pub const ESCAPE: u8 = 0x7D;
/// FCS-16 initial value.
pub const FCS16_INIT: u16 = 0xFFFF;
/// FCS-16 value computed over a frame including its FCS when the frame is intact (RFC 1662 App. C.2).
pub const FCS16_GOOD: u16 = 0xF0B8;
/// FCS-32 initial value.
pub const FCS32_INIT: u32 = 0xFFFF_FFFF;
/// FCS-32 value computed over a frame including its FCS when the frame is intact (RFC 1662 App. C.3).
pub const FCS32_GOOD: u32 = 0xDEBB_20E3;

const fn fcs16_tables() -> [[u16; 256]; 16] {
    let mut t = [[0u16; 256]; 16];
    let mut i = 0;
    while i < 256 {
        let mut v = i as u16;
        let mut k = 0;
        while k < 8 {
            v = if v & 1 != 0 {
                (v >> 1) ^ 0x8408
            } else {
                v >> 1
            };
            k += 1;
        }
        t[0][i] = v;
        i += 1;
    }
    let mut s = 1;
    while s < 16 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

const fn fcs32_tables() -> [[u32; 256]; 16] {
    let mut t = [[0u32; 256]; 16];
    let mut i = 0;
    while i < 256 {
        let mut v = i as u32;
        let mut k = 0;
        while k < 8 {
            v = if v & 1 != 0 {
                (v >> 1) ^ 0xEDB8_8320
            } else {
                v >> 1
            };
            k += 1;
        }
        t[0][i] = v;
        i += 1;
    }
    let mut s = 1;
    while s < 16 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static FCS16_TABLES: [[u16; 256]; 16] = fcs16_tables();
static FCS32_TABLES: [[u32; 256]; 16] = fcs32_tables();

/// Updates a running FCS-16 over `data` (table-driven, slicing-by-16).
#[must_use]
pub fn fcs16(mut fcs: u16, data: &[u8]) -> u16 {
    let t = &FCS16_TABLES;
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        let a = (word(&c[..8]) ^ u64::from(fcs)).to_le_bytes();
        let b = word(&c[8..]).to_le_bytes();
        fcs = t[15][a[0] as usize]
            ^ t[14][a[1] as usize]
            ^ t[13][a[2] as usize]
            ^ t[12][a[3] as usize]
            ^ t[11][a[4] as usize]
            ^ t[10][a[5] as usize]
            ^ t[9][a[6] as usize]
            ^ t[8][a[7] as usize]
            ^ t[7][b[0] as usize]
            ^ t[6][b[1] as usize]
            ^ t[5][b[2] as usize]
            ^ t[4][b[3] as usize]
            ^ t[3][b[4] as usize]
            ^ t[2][b[5] as usize]
            ^ t[1][b[6] as usize]
            ^ t[0][b[7] as usize];
    }
    for &b in chunks.remainder() {
        fcs = (fcs >> 8) ^ t[0][((fcs ^ u16::from(b)) & 0xFF) as usize];
    }
    fcs
}

/// Updates a running FCS-32 over `data` (table-driven, slicing-by-16).
#[must_use]
pub fn fcs32(mut fcs: u32, data: &[u8]) -> u32 {
    let t = &FCS32_TABLES;
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        let a = (word(&c[..8]) ^ u64::from(fcs)).to_le_bytes();
        let b = word(&c[8..]).to_le_bytes();
        fcs = t[15][a[0] as usize]
            ^ t[14][a[1] as usize]
            ^ t[13][a[2] as usize]
            ^ t[12][a[3] as usize]
            ^ t[11][a[4] as usize]
            ^ t[10][a[5] as usize]
            ^ t[9][a[6] as usize]
            ^ t[8][a[7] as usize]
            ^ t[7][b[0] as usize]
            ^ t[6][b[1] as usize]
            ^ t[5][b[2] as usize]
            ^ t[4][b[3] as usize]
            ^ t[3][b[4] as usize]
            ^ t[2][b[5] as usize]
            ^ t[1][b[6] as usize]
            ^ t[0][b[7] as usize];
    }
    for &b in chunks.remainder() {
        fcs = (fcs >> 8) ^ t[0][((fcs ^ u32::from(b)) & 0xFF) as usize];
    }
    fcs
}

const LO: u64 = 0x0101_0101_0101_0101;
const LO7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// 0x80 in exactly the bytes of `v` that are zero (no false positives, unlike the short form).
#[inline(always)]
fn zero_mask(v: u64) -> u64 {
    !(((v & LO7).wrapping_add(LO7)) | v | LO7)
}

/// 0x80 in the bytes of `w` that are a flag or escape octet, or below 0x20 when `ctl` is set.
#[inline(always)]
fn special_mask(w: u64, ctl: bool) -> u64 {
    let m = zero_mask(w ^ (LO * u64::from(FLAG))) | zero_mask(w ^ (LO * u64::from(ESCAPE)));
    if ctl {
        m | zero_mask(w & (LO * 0xE0))
    } else {
        m
    }
}

/// Index of the first flag or escape octet (or control character when `ctl`) in `data`, or
/// `data.len()`: a word-at-a-time scan, 16 bytes per step.
#[inline]
fn find_special(data: &[u8], ctl: bool) -> usize {
    let mut i = 0;
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        let m0 = special_mask(word(&c[..8]), ctl);
        let m1 = special_mask(word(&c[8..]), ctl);
        if m0 | m1 != 0 {
            let off = if m0 != 0 {
                m0.trailing_zeros()
            } else {
                64 + m1.trailing_zeros()
            };
            return i + (off / 8) as usize;
        }
        i += 16;
    }
    for &b in chunks.remainder() {
        if b == FLAG || b == ESCAPE || (ctl && b < 0x20) {
            return i;
        }
        i += 1;
    }
    i
}

#[inline(always)]
fn word(c: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(c);
    u64::from_le_bytes(w)
}

/// Frame writer: escapes by the peer's ACCM and appends the FCS.
#[derive(Clone, Debug)]
pub struct Encoder {
    escape: [bool; 256],
    ctl: bool,
    accm: u32,
    fcs32: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new(0xFFFF_FFFF, false)
    }
}

impl Encoder {
    /// Encoder escaping control characters set in `accm` (the peer's receive ACCM), using FCS-32 if `fcs32`.
    #[must_use]
    pub fn new(accm: u32, fcs32: bool) -> Self {
        let mut escape = [false; 256];
        for (c, e) in escape.iter_mut().enumerate().take(32) {
            *e = accm & (1 << c) != 0;
        }
        // RFC 1662 §7.1: "the octets 0x7d and 0x7e are always escaped".
        escape[usize::from(FLAG)] = true;
        escape[usize::from(ESCAPE)] = true;
        Self {
            escape,
            ctl: accm != 0,
            accm,
            fcs32,
        }
    }

    /// The ACCM this encoder escapes by.
    #[must_use]
    pub fn accm(&self) -> u32 {
        self.accm
    }

    /// Whether frames carry FCS-32 instead of FCS-16.
    #[must_use]
    pub fn fcs32(&self) -> bool {
        self.fcs32
    }

    /// Appends one complete frame (`FLAG header payload FCS FLAG`) to `out`.
    /// `header` holds the (possibly compressed) address/control and protocol fields.
    pub fn encode(&self, header: &[u8], payload: &[u8], out: &mut Vec<u8>) {
        out.reserve(header.len() + payload.len() + payload.len() / 16 + 16);
        out.push(FLAG);
        self.escape_into(header, out);
        self.escape_into(payload, out);
        if self.fcs32 {
            let fcs = !fcs32(fcs32(FCS32_INIT, header), payload);
            self.escape_into(&fcs.to_le_bytes(), out);
        } else {
            let fcs = !fcs16(fcs16(FCS16_INIT, header), payload);
            self.escape_into(&fcs.to_le_bytes(), out);
        }
        out.push(FLAG);
    }

    fn escape_into(&self, data: &[u8], out: &mut Vec<u8>) {
        if self.accm == 0xFFFF_FFFF {
            // Default ACCM: about one byte in eight is special, so scanning for runs does not pay.
            // Branch-free table loop into a stack buffer: write the escape (or the byte) at `k`
            // and the byte at `k + e`; `e` is 1 for an escaped byte, else the second write
            // lands on the first.
            let mut tmp = [0u8; 256];
            for chunk in data.chunks(120) {
                let mut k = 0;
                for &b in chunk {
                    let e = usize::from(self.escape[usize::from(b)]);
                    tmp[k] = if e == 1 { ESCAPE } else { b };
                    tmp[k + e] = b ^ (0x20 * e as u8);
                    k += 1 + e;
                }
                out.extend_from_slice(&tmp[..k]);
            }
            return;
        }
        let mut i = 0;
        let n = data.len();
        while i < n {
            let j = i + find_special(&data[i..], self.ctl);
            out.extend_from_slice(&data[i..j]);
            let Some(&b) = data.get(j) else { break };
            if self.escape[usize::from(b)] {
                out.extend_from_slice(&[ESCAPE, b ^ 0x20]);
            } else {
                out.push(b);
            }
            i = j + 1;
        }
    }
}

/// Counters kept by the [`Decoder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames delivered with a good FCS.
    pub frames: u64,
    /// Line bytes consumed.
    pub bytes: u64,
    /// Frames dropped for a bad FCS.
    pub fcs_errors: u64,
    /// Frames dropped for exceeding the receive limit.
    pub too_long: u64,
    /// Frames shorter than an FCS (dropped).
    pub runts: u64,
    /// Frames aborted by `0x7D 0x7E` (RFC 1662 §4.2).
    pub aborts: u64,
    /// Bytes outside any frame or dropped by the receive ACCM.
    pub discarded_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RxState {
    /// Waiting for a flag; everything else is discarded.
    Hunt,
    /// Inside a frame.
    Data,
    /// Inside a frame, the previous octet was the control escape.
    Escape,
}

/// Frame reader: byte-wise, any chunking, bounded memory, never panics.
#[derive(Clone, Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    state: RxState,
    drop_ctl: [bool; 32],
    ctl: bool,
    max_len: usize,
    fcs32: bool,
    /// `buf` holds a delivered frame, to be cleared on the next call.
    delivered: bool,
    stats: DecoderStats,
}

impl Decoder {
    /// Decoder accepting unescaped frames up to `max_len` bytes (header + information + FCS).
    #[must_use]
    pub fn new(max_len: usize) -> Self {
        Self {
            buf: Vec::with_capacity(max_len + 8),
            state: RxState::Hunt,
            drop_ctl: [false; 32],
            ctl: false,
            max_len,
            fcs32: false,
            delivered: false,
            stats: DecoderStats::default(),
        }
    }

    /// Sets our receive ACCM: unescaped control characters flagged in it are dropped
    /// (RFC 1662 §7.1: they "may have been inserted by intervening data communications equipment").
    pub fn set_accm(&mut self, accm: u32) {
        for (c, d) in self.drop_ctl.iter_mut().enumerate() {
            *d = accm & (1 << c) != 0;
        }
        self.ctl = accm != 0;
    }

    /// Expect FCS-32 (true) or FCS-16 (false) on received frames.
    pub fn set_fcs32(&mut self, fcs32: bool) {
        self.fcs32 = fcs32;
    }

    /// Sets the largest accepted unescaped frame (header + information + FCS).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Consumes bytes from `input` up to the end of at most one frame. Returns the number of bytes
    /// consumed and whether a good frame is ready (read it with [`Decoder::frame`] before the next call).
    pub fn decode(&mut self, input: &[u8]) -> (usize, bool) {
        if self.delivered {
            self.delivered = false;
            self.buf.clear();
        }
        let mut i = 0;
        let n = input.len();
        while i < n {
            match self.state {
                RxState::Hunt => match input[i..].iter().position(|&b| b == FLAG) {
                    Some(p) => {
                        self.stats.discarded_bytes += p as u64;
                        i += p + 1;
                        self.buf.clear();
                        self.state = RxState::Data;
                    }
                    None => {
                        self.stats.discarded_bytes += (n - i) as u64;
                        i = n;
                    }
                },
                RxState::Escape => {
                    let b = input[i];
                    i += 1;
                    if b == FLAG {
                        // RFC 1662 §4.2: "0x7d 0x7e ... aborts the frame".
                        if !self.buf.is_empty() {
                            self.stats.aborts += 1;
                        }
                        self.buf.clear();
                        self.state = RxState::Data;
                    } else if self.ctl && b < 0x20 && self.drop_ctl[usize::from(b)] {
                        self.stats.discarded_bytes += 1;
                    } else {
                        self.buf.push(b ^ 0x20);
                        self.state = RxState::Data;
                        if self.buf.len() > self.max_len {
                            self.too_long();
                        }
                    }
                }
                RxState::Data => {
                    // Fast path: copy the run of ordinary octets, never more than one byte
                    // beyond the limit whatever the input size.
                    let stop = n.min(i + (self.max_len + 1).saturating_sub(self.buf.len()));
                    if self.ctl {
                        // With a non-zero ACCM the peer escapes control characters, so escapes are
                        // frequent (1 in 8 random bytes for all-ones): unescape the common case in
                        // a tight loop into a stack buffer; anything unusual goes the general way.
                        let mut tmp = [0u8; 256];
                        let mut k = 0;
                        while i < stop && k < tmp.len() {
                            let b = input[i];
                            if b == ESCAPE {
                                match input.get(i + 1) {
                                    Some(&e) if e >= 0x20 && e != FLAG => {
                                        tmp[k] = e ^ 0x20;
                                        k += 1;
                                        i += 2;
                                        continue;
                                    }
                                    _ => break,
                                }
                            }
                            if b == FLAG || b < 0x20 {
                                break;
                            }
                            tmp[k] = b;
                            k += 1;
                            i += 1;
                        }
                        self.buf.extend_from_slice(&tmp[..k]);
                        if k == tmp.len() && self.buf.len() <= self.max_len {
                            continue;
                        }
                    }
                    let stop = stop.max(i).min(n);
                    let j = i + find_special(&input[i..stop], self.ctl);
                    self.buf.extend_from_slice(&input[i..j]);
                    i = j;
                    if self.buf.len() > self.max_len {
                        self.too_long();
                        continue;
                    }
                    if i >= stop {
                        continue;
                    }
                    let b = input[i];
                    i += 1;
                    if b == FLAG {
                        if self.finish_frame() {
                            self.stats.bytes += i as u64;
                            return (i, true);
                        }
                    } else if b == ESCAPE {
                        match input.get(i) {
                            // The escaped octet is here and ordinary: take it without a state trip.
                            Some(&e)
                                if e != FLAG
                                    && !(self.ctl && e < 0x20 && self.drop_ctl[usize::from(e)]) =>
                            {
                                self.buf.push(e ^ 0x20);
                                i += 1;
                                if self.buf.len() > self.max_len {
                                    self.too_long();
                                }
                            }
                            _ => self.state = RxState::Escape,
                        }
                    } else if self.drop_ctl[usize::from(b & 0x1F)] && b < 0x20 {
                        self.stats.discarded_bytes += 1;
                    } else {
                        self.buf.push(b);
                    }
                }
            }
        }
        self.stats.bytes += n as u64;
        (n, false)
    }

    fn too_long(&mut self) {
        self.stats.too_long += 1;
        self.buf.clear();
        self.state = RxState::Hunt;
    }

    /// Called on a closing flag; true if a good frame is now in `buf` (FCS stripped).
    fn finish_frame(&mut self) -> bool {
        self.state = RxState::Data;
        let len = self.buf.len();
        if len == 0 {
            return false; // back-to-back flags
        }
        let fcs_len = if self.fcs32 { 4 } else { 2 };
        if len < fcs_len + 1 {
            self.stats.runts += 1;
            self.buf.clear();
            return false;
        }
        let good = if self.fcs32 {
            fcs32(FCS32_INIT, &self.buf) == FCS32_GOOD
        } else {
            fcs16(FCS16_INIT, &self.buf) == FCS16_GOOD
        };
        // While FCS-32 is being switched on or off (RFC 1570), frames still in flight carry the
        // other FCS; try it too, only for frames that failed (costs nothing on the fast path).
        let (good, fcs_len) = if good || len < 5 {
            (good, fcs_len)
        } else if self.fcs32 {
            (fcs16(FCS16_INIT, &self.buf) == FCS16_GOOD, 2)
        } else {
            (fcs32(FCS32_INIT, &self.buf) == FCS32_GOOD, 4)
        };
        if good {
            self.buf.truncate(len - fcs_len);
            self.delivered = true;
            self.stats.frames += 1;
            self.state = RxState::Data;
            true
        } else {
            self.stats.fcs_errors += 1;
            self.buf.clear();
            false
        }
    }

    /// The frame made ready by the last [`Decoder::decode`] call (header + information, no FCS).
    #[must_use]
    pub fn frame(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the ready frame's buffer out (hand it back with [`Decoder::recycle`] to avoid allocation).
    pub fn take_frame(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Returns a buffer taken with [`Decoder::take_frame`] for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if self.buf.is_empty() && buf.capacity() > self.buf.capacity() {
            self.buf = buf;
        }
    }

    /// Forgets a partial frame; the next octets are discarded up to a flag.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.state = RxState::Hunt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut Decoder, mut input: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while !input.is_empty() {
            let (n, ready) = d.decode(input);
            input = &input[n..];
            if ready {
                frames.push(d.frame().to_vec());
            }
        }
        frames
    }

    #[test]
    fn fcs16_check_value() {
        // CRC-16/X-25 check value of "123456789" is 0x906E (= !fcs).
        assert_eq!(!fcs16(FCS16_INIT, b"123456789"), 0x906E);
        assert_eq!(!fcs32(FCS32_INIT, b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn fcs_sliced_matches_bytewise() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut a = FCS16_INIT;
        let mut b = FCS32_INIT;
        for &x in &data {
            a = fcs16(a, &[x]);
            b = fcs32(b, &[x]);
        }
        assert_eq!(a, fcs16(FCS16_INIT, &data));
        assert_eq!(b, fcs32(FCS32_INIT, &data));
    }

    #[test]
    fn encode_lcp_configure_request_real_bytes() {
        // An LCP Configure-Request with ACCM 0 and magic 0x12345678, all control chars escaped.
        let e = Encoder::new(0xFFFF_FFFF, false);
        let mut out = Vec::new();
        let payload = [1, 1, 0, 14, 2, 6, 0, 0, 0, 0, 5, 6, 0x12, 0x34, 0x56, 0x78];
        e.encode(&[0xFF, 0x03, 0xC0, 0x21], &payload, &mut out);
        assert_eq!(out[0], FLAG);
        assert_eq!(&out[1..5], &[0xFF, 0x7D, 0x23, 0xC0]);
        assert_eq!(*out.last().unwrap_or(&0), FLAG);
        assert!(out[1..out.len() - 1]
            .iter()
            .all(|&b| b >= 0x20 && b != FLAG));
        let mut d = Decoder::new(1600);
        let frames = decode_all(&mut d, &out);
        assert_eq!(frames.len(), 1);
        assert_eq!(&frames[0][..4], &[0xFF, 0x03, 0xC0, 0x21]);
        assert_eq!(&frames[0][4..], &payload);
    }

    #[test]
    fn roundtrip_any_chunking_and_fcs32() {
        for fcs32 in [false, true] {
            let e = Encoder::new(0x000A_0000, fcs32);
            let payload: Vec<u8> = (0..=255u8).cycle().take(700).collect();
            let mut line = Vec::new();
            e.encode(&[0x21], &payload, &mut line);
            e.encode(&[0x21], b"\x7e\x7d\x11\x13", &mut line);
            for chunk in [1, 2, 3, 7, 64, 5000] {
                let mut d = Decoder::new(1600);
                d.set_fcs32(fcs32);
                let mut frames = Vec::new();
                for c in line.chunks(chunk) {
                    frames.extend(decode_all(&mut d, c));
                }
                assert_eq!(frames.len(), 2, "chunk {chunk}");
                assert_eq!(&frames[0][1..], &payload[..]);
                assert_eq!(&frames[1][1..], b"\x7e\x7d\x11\x13");
            }
        }
    }

    #[test]
    fn clean_stream_has_no_fcs_errors() {
        let e = Encoder::new(0, false);
        let mut line = Vec::new();
        let mut x = 7u64;
        for _ in 0..64 {
            let p: Vec<u8> = (0..1500)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            e.encode(&[0x21], &p, &mut line);
        }
        let mut d = Decoder::new(1600);
        assert_eq!(decode_all(&mut d, &line).len(), 64);
        let s = d.stats();
        assert_eq!(
            (s.frames, s.fcs_errors, s.runts, s.aborts, s.too_long),
            (64, 0, 0, 0, 0)
        );
    }

    #[test]
    fn shared_flags_between_frames() {
        // pppd sends back-to-back frames with one flag between them (RFC 1662 §4.1 allows it).
        let e = Encoder::new(0, false);
        let mut line = Vec::new();
        e.encode(&[0x21], b"first", &mut line);
        line.pop();
        e.encode(&[0x21], b"second", &mut line);
        let mut d = Decoder::new(1600);
        assert_eq!(
            decode_all(&mut d, &line),
            vec![b"\x21first".to_vec(), b"\x21second".to_vec()]
        );
        assert_eq!(d.stats().fcs_errors, 0);
    }

    #[test]
    fn bad_fcs_counted_and_next_frame_survives() {
        let e = Encoder::new(0, false);
        let mut line = Vec::new();
        e.encode(&[0x21], b"hello world", &mut line);
        let flip = 5;
        line[flip] ^= 0x01;
        e.encode(&[0x21], b"second", &mut line);
        let mut d = Decoder::new(1600);
        let frames = decode_all(&mut d, &line);
        assert_eq!(frames, vec![b"\x21second".to_vec()]);
        assert_eq!(d.stats().fcs_errors, 1);
    }

    #[test]
    fn too_long_abort_runt_and_accm_drop() {
        let mut d = Decoder::new(10);
        let mut line = vec![FLAG];
        line.extend_from_slice(&[0x41; 40]);
        line.push(FLAG);
        line.extend_from_slice(&[0x41, 0x42, ESCAPE, FLAG]); // aborted
        line.extend_from_slice(&[0x41, FLAG]); // runt
        assert!(decode_all(&mut d, &line).is_empty());
        let s = d.stats();
        assert_eq!((s.too_long, s.aborts, s.runts), (1, 1, 1));

        // A raw XON (0x11) inside a frame is dropped when our ACCM flags it.
        let e = Encoder::new(0, false);
        let mut line = Vec::new();
        e.encode(&[0x21], b"abc", &mut line);
        line.insert(2, 0x11);
        let mut d = Decoder::new(1600);
        d.set_accm(1 << 0x11);
        assert_eq!(decode_all(&mut d, &line), vec![b"\x21abc".to_vec()]);
    }

    proptest::proptest! {
        #[test]
        fn find_special_matches_naive(d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100), ctl in proptest::prelude::any::<bool>()) {
            let naive = d.iter().position(|&b| b == FLAG || b == ESCAPE || (ctl && b < 0x20)).unwrap_or(d.len());
            proptest::prop_assert_eq!(find_special(&d, ctl), naive);
        }

        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
                                max in 0usize..2000, accm in proptest::prelude::any::<u32>(), f32 in proptest::prelude::any::<bool>()) {
            let mut d = Decoder::new(max);
            d.set_accm(accm);
            d.set_fcs32(f32);
            for f in decode_all(&mut d, &data) {
                proptest::prop_assert!(f.len() <= max);
            }
        }

        #[test]
        fn inserted_control_chars_are_dropped(payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
                                              inserts in proptest::collection::vec((0usize..700, 0u8..0x20), 0..20)) {
            // RFC 1662 §7.1: control characters flagged in our ACCM that arrive unescaped were
            // inserted by the line and are dropped.
            let e = Encoder::new(0xFFFF_FFFF, false);
            let mut line = Vec::new();
            e.encode(&[0x21], &payload, &mut line);
            for (pos, c) in inserts {
                let p = 1 + pos % (line.len() - 1);
                line.insert(p, c);
            }
            let mut d = Decoder::new(2000);
            d.set_accm(0xFFFF_FFFF);
            let frames = decode_all(&mut d, &line);
            proptest::prop_assert_eq!(frames.len(), 1);
            proptest::prop_assert_eq!(&frames[0][1..], &payload[..]);
        }

        #[test]
        fn roundtrip(payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
                     accm in proptest::prelude::any::<u32>(), f32 in proptest::prelude::any::<bool>()) {
            let e = Encoder::new(accm, f32);
            let mut line = Vec::new();
            e.encode(&[0xFF, 0x03, 0x00, 0x21], &payload, &mut line);
            for &b in &line[1..line.len() - 1] {
                proptest::prop_assert!(b != FLAG);
                proptest::prop_assert!(!(b < 0x20 && accm & (1 << b) != 0));
            }
            let mut d = Decoder::new(4000);
            d.set_fcs32(f32);
            d.set_accm(accm);
            let frames = decode_all(&mut d, &line);
            proptest::prop_assert_eq!(frames.len(), 1);
            proptest::prop_assert_eq!(&frames[0][4..], &payload[..]);
        }
    }
}
