//! Fuzz the HDLC frame reader: any bytes, any chunking, any ACCM/FCS/limit. Properties: it
//! never panics, always makes progress, never delivers a frame over its limit, accounts for
//! every byte it consumed, and every frame it delivers re-encodes (any ACCM) to line bytes that
//! decode back to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masqdial_ppp::hdlc::{Decoder, Encoder};

/// Decode `line` whole with a fresh reader; the frames it delivers.
fn decode_all(line: &[u8], fcs32: bool) -> Vec<Vec<u8>> {
    let mut d = Decoder::new(1 << 16);
    d.set_accm(0);
    d.set_fcs32(fcs32);
    let mut out = Vec::new();
    let mut c = line;
    while !c.is_empty() {
        let (n, ready) = d.decode(c);
        c = &c[n..];
        if ready {
            out.push(d.frame().to_vec());
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let accm = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let max = usize::from(u16::from_le_bytes([data[4], data[5]]));
    let chunk = usize::from(data[6] % 64) + 1;
    let fcs32 = data[6] & 0x80 != 0;
    let mut d = Decoder::new(max);
    d.set_accm(accm);
    d.set_fcs32(fcs32);
    let mut consumed = 0u64;
    for mut c in data[7..].chunks(chunk) {
        while !c.is_empty() {
            let (n, ready) = d.decode(c);
            assert!(n > 0 && n <= c.len());
            consumed += n as u64;
            c = &c[n..];
            if ready {
                let frame = d.frame().to_vec();
                assert!(frame.len() <= max);
                // Re-encode with the reader's ACCM (and with the default) and read it back.
                for tx_accm in [accm, 0xFFFF_FFFF] {
                    let mut line = Vec::new();
                    Encoder::new(tx_accm, fcs32).encode(&[], &frame, &mut line);
                    assert_eq!(
                        decode_all(&line, fcs32),
                        vec![frame.clone()],
                        "a delivered frame does not survive encode/decode"
                    );
                }
            }
        }
    }
    assert_eq!(d.stats().bytes, consumed, "line bytes consumed are not all counted");
});
