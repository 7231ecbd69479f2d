//! Reads the line capture `hayes-exec --trace` writes (one chunk per line: `SECONDS DIR HEX`,
//! `>` from the DTE to the far end, `<` towards the DTE) and decodes its PPP frames (RFC 1662
//! HDLC-like framing), independently of `masqdial-ppp`: a second opinion on what crossed the
//! line. Pure functions; no I/O.

/// Direction of a chunk on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the DTE (`mserver`) to the far end.
    Out,
    /// From the far end (or the modem) to the DTE.
    In,
}

/// One PPP frame with a good FCS.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Seconds since the trace started, at the chunk that closed the frame.
    pub at: f64,
    /// PPP protocol field.
    pub protocol: u16,
    /// The information field (no address/control, protocol or FCS).
    pub info: Vec<u8>,
    /// Unescaped length between the flags (address/control and protocol as sent, FCS).
    pub raw_len: usize,
}

/// Counts of what the decoder saw in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Frames with a good FCS.
    pub good: usize,
    /// Frames with a bad FCS (or too short).
    pub bad: usize,
}

/// FCS-16 of RFC 1662 (CRC-16/X-25 without the final complement).
fn fcs16(data: &[u8]) -> u16 {
    let mut fcs: u16 = 0xffff;
    for &b in data {
        fcs ^= u16::from(b);
        for _ in 0..8 {
            fcs = if fcs & 1 != 0 {
                (fcs >> 1) ^ 0x8408
            } else {
                fcs >> 1
            };
        }
    }
    fcs
}

/// The chunks of `dir` in the trace text, with their times. Malformed lines are skipped.
pub fn chunks(text: &str, dir: Dir) -> Vec<(f64, Vec<u8>)> {
    let want = match dir {
        Dir::Out => ">",
        Dir::In => "<",
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let t: f64 = f.next()?.parse().ok()?;
            if f.next()? != want {
                return None;
            }
            let hex = f.next()?;
            let bytes = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            Some((t, bytes))
        })
        .collect()
}

/// Decodes the PPP frames of `dir` (text before the first flag, e.g. modem results, is
/// skipped; frames with a bad FCS are counted, not returned).
pub fn frames(text: &str, dir: Dir) -> (Vec<Frame>, Decoded) {
    let mut out = Vec::new();
    let mut stats = Decoded::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut in_frame = false;
    let mut escaped = false;
    for (t, chunk) in chunks(text, dir) {
        for b in chunk {
            if b == 0x7e {
                if in_frame && !buf.is_empty() {
                    match parse(&buf) {
                        Some((protocol, info)) => {
                            stats.good += 1;
                            out.push(Frame {
                                at: t,
                                protocol,
                                info,
                                raw_len: buf.len(),
                            });
                        }
                        None => stats.bad += 1,
                    }
                }
                buf.clear();
                in_frame = true;
                escaped = false;
            } else if !in_frame {
            } else if b == 0x7d {
                escaped = true;
            } else if escaped {
                buf.push(b ^ 0x20);
                escaped = false;
            } else {
                buf.push(b);
            }
        }
    }
    (out, stats)
}

/// Protocol and information field of one unescaped frame, if its FCS is good.
fn parse(frame: &[u8]) -> Option<(u16, Vec<u8>)> {
    if frame.len() < 4 || fcs16(frame) != 0xf0b8 {
        return None;
    }
    let body = &frame[..frame.len() - 2];
    let body = body.strip_prefix(&[0xff, 0x03]).unwrap_or(body);
    let (&first, rest) = body.split_first()?;
    if first & 1 == 1 {
        // Protocol-Field-Compression: one octet.
        Some((u16::from(first), rest.to_vec()))
    } else {
        let (&second, rest) = rest.split_first()?;
        Some((u16::from_be_bytes([first, second]), rest.to_vec()))
    }
}

/// IPv4 datagrams (PPP protocol 0x0021) among `frames`.
pub fn ipv4(frames: &[Frame]) -> impl Iterator<Item = &Frame> {
    frames.iter().filter(|f| f.protocol == 0x0021)
}

/// An RFC 791 reassembly check over the IPv4 packets of a capture: for each (source,
/// identification) whose fragments are all there, the whole datagram's payload (after the
/// IP header). Datagrams that were not fragmented are included as they are.
pub fn reassembled(packets: &[&[u8]]) -> Vec<Vec<u8>> {
    reassemble(packets).0
}

/// Datagrams of which some fragments crossed but not all (they can never be reassembled).
pub fn incomplete(packets: &[&[u8]]) -> usize {
    reassemble(packets).1
}

fn reassemble(packets: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
    use std::collections::BTreeMap;
    /// (source, identification, protocol): RFC 791's reassembly key.
    type Key = ([u8; 4], u16, u8);
    /// (offset, more fragments, data).
    type Piece = (usize, bool, Vec<u8>);
    let mut groups: BTreeMap<Key, Vec<Piece>> = BTreeMap::new();
    for p in packets {
        if p.len() < 20 || p[0] >> 4 != 4 {
            continue;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        if ihl < 20 || total < ihl || total > p.len() {
            continue;
        }
        let id = u16::from_be_bytes([p[4], p[5]]);
        let ff = u16::from_be_bytes([p[6], p[7]]);
        let offset = usize::from(ff & 0x1fff) * 8;
        let more = ff & 0x2000 != 0;
        let src = [p[12], p[13], p[14], p[15]];
        groups
            .entry((src, id, p[9]))
            .or_default()
            .push((offset, more, p[ihl..total].to_vec()));
    }
    let mut out = Vec::new();
    let mut broken = 0;
    for (_, mut parts) in groups {
        parts.sort_by_key(|x| x.0);
        let mut data = Vec::new();
        let mut complete = false;
        for (offset, more, d) in &parts {
            if *offset != data.len() {
                break;
            }
            data.extend_from_slice(d);
            if !more {
                complete = true;
                break;
            }
        }
        if complete {
            out.push(data);
        } else {
            broken += 1;
        }
    }
    (out, broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let fcs = !fcs16(body);
        let mut all = body.to_vec();
        all.extend_from_slice(&fcs.to_le_bytes());
        let mut out = vec![0x7e];
        for b in all {
            if b < 0x20 || b == 0x7e || b == 0x7d {
                out.extend_from_slice(&[0x7d, b ^ 0x20]);
            } else {
                out.push(b);
            }
        }
        out.push(0x7e);
        out
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn decodes_frames_split_across_chunks_and_compression() {
        let f1 = frame(&[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]);
        let f2 = frame(&[0x21, 0x45, 0x7e, 0x7d, 0x00]); // ACFC + PFC, escapes in the data
        let mut bad = frame(&[0xff, 0x03, 0x00, 0x21, 9]);
        bad[3] ^= 1;
        let text = format!(
            "0.1 < {}\n0.2 > 41540d\n0.3 < {}\n0.4 < {}{}\n0.5 < {}\n",
            hex(b"\r\nCONNECT 9600\r\n"),
            hex(&f1[..5]),
            hex(&f1[5..]),
            hex(&bad),
            hex(&f2)
        );
        let (fr, st) = frames(&text, Dir::In);
        assert_eq!(st, Decoded { good: 2, bad: 1 });
        assert_eq!(fr[0].protocol, 0xc021);
        assert_eq!(fr[0].info, vec![1, 1, 0, 4]);
        assert_eq!(fr[0].at, 0.4);
        assert_eq!(fr[1].protocol, 0x21);
        assert_eq!(fr[1].info, vec![0x45, 0x7e, 0x7d, 0x00]);
        let (out, _) = frames(&text, Dir::Out);
        assert!(out.is_empty());
    }

    fn ip(id: u16, offset8: u16, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2,
        ];
        let total = (20 + payload.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&id.to_be_bytes());
        let ff = offset8 | if more { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&ff.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn reassembles_only_complete_datagrams() {
        let a1 = ip(1, 0, true, &[1; 16]);
        let a2 = ip(1, 2, false, &[2; 5]);
        let b1 = ip(2, 0, true, &[3; 16]); // its last fragment never came
        let c = ip(3, 0, false, &[4; 7]);
        let got = reassembled(&[&a2, &b1, &a1, &c]);
        let mut want_a = vec![1u8; 16];
        want_a.extend_from_slice(&[2; 5]);
        assert_eq!(got, vec![want_a, vec![4; 7]]);
        assert_eq!(incomplete(&[&a2, &b1, &a1, &c]), 1);
    }
}
