//! Fuzz the HDLC frame reader: any bytes, any chunking, any ACCM/FCS/limit — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masqdial_ppp::hdlc::Decoder;

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let accm = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let max = usize::from(u16::from_le_bytes([data[4], data[5]]));
    let chunk = usize::from(data[6] % 64) + 1;
    let mut d = Decoder::new(max);
    d.set_accm(accm);
    d.set_fcs32(data[6] & 0x80 != 0);
    for mut c in data[7..].chunks(chunk) {
        while !c.is_empty() {
            let (n, ready) = d.decode(c);
            assert!(n > 0 && n <= c.len());
            c = &c[n..];
            if ready {
                assert!(d.frame().len() <= max);
            }
        }
    }
});
