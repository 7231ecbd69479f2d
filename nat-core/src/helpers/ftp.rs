//! FTP helper text processing (`ip_masq_ftp`, libalias `alias_ftp`): find `PORT`/`EPRT` and
//! `PASV`/`EPSV` in client data, `227`/`229` in server replies, and format replacements. Owns
//! text parsing only; entry creation and sequence deltas live in [`crate::masq::translate`].

use super::HelperAction;
use std::net::Ipv4Addr;

/// Parse `h1,h2,h3,h4,p1,p2` at the start of `s`; returns (addr, port, bytes used).
fn parse_six(s: &[u8]) -> Option<(Ipv4Addr, u16, usize)> {
    let mut nums = [0u16; 6];
    let mut i = 0;
    for (k, n) in nums.iter_mut().enumerate() {
        let start = i;
        let mut v: u16 = 0;
        while i < s.len() && s[i].is_ascii_digit() && i - start < 3 {
            v = v * 10 + u16::from(s[i] - b'0');
            i += 1;
        }
        if i == start || v > 255 {
            return None;
        }
        *n = v;
        if k < 5 {
            if s.get(i) != Some(&b',') {
                return None;
            }
            i += 1;
        }
    }
    let addr = Ipv4Addr::new(nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8);
    Some((addr, (nums[4] << 8) | nums[5], i))
}

/// Scan client → server data for a command. Like 2.2 and libalias, only a command starting the
/// segment and ending in CR LF is handled (one command per segment).
pub fn scan_outbound(data: &[u8]) -> Option<HelperAction> {
    let line_end = data.windows(2).position(|w| w == b"\r\n")?;
    let line = &data[..line_end];
    if line.len() < 4 {
        return None;
    }
    let verb = line[..4].to_ascii_uppercase();
    match &verb[..] {
        b"PORT" if line.get(4) == Some(&b' ') => {
            let (addr, port, used) = parse_six(&line[5..])?;
            if 5 + used != line.len() {
                return None;
            }
            Some(HelperAction::Port {
                range: 5..5 + used,
                addr,
                port,
                eprt: false,
            })
        }
        b"EPRT" if line.get(4) == Some(&b' ') => {
            // RFC 2428: EPRT |1|132.235.1.2|6275|
            let arg = &line[5..];
            let d = *arg.first()?;
            let parts: Vec<&[u8]> = arg.split(|&b| b == d).collect();
            if parts.len() != 5 || !parts[0].is_empty() || !parts[4].is_empty() || parts[1] != b"1"
            {
                return None;
            }
            let addr: Ipv4Addr = std::str::from_utf8(parts[2]).ok()?.parse().ok()?;
            let port: u16 = std::str::from_utf8(parts[3]).ok()?.parse().ok()?;
            Some(HelperAction::Port {
                range: 5..line.len(),
                addr,
                port,
                eprt: true,
            })
        }
        b"PASV" | b"EPSV" => Some(HelperAction::Pasv),
        _ => None,
    }
}

/// Replacement argument text for `PORT` (`a,b,c,d,p1,p2`) or `EPRT` (`|1|a.b.c.d|port|`).
pub fn format_port(addr: Ipv4Addr, port: u16, eprt: bool) -> String {
    if eprt {
        format!("|1|{addr}|{port}|")
    } else {
        let o = addr.octets();
        format!(
            "{},{},{},{},{},{}",
            o[0],
            o[1],
            o[2],
            o[3],
            port >> 8,
            port & 0xFF
        )
    }
}

/// Scan server → client data for `227 … (h1,h2,h3,h4,p1,p2)` or `229 … (|||port|)`; `server`
/// is the reply's source (the address a 229 data connection goes to).
pub fn scan_inbound(data: &[u8], server: Ipv4Addr) -> Option<(Ipv4Addr, u16)> {
    let line_end = data.windows(2).position(|w| w == b"\r\n")?;
    let line = &data[..line_end];
    if line.starts_with(b"227") {
        let open = line.iter().position(|&b| b == b'(')?;
        let (addr, port, used) = parse_six(&line[open + 1..])?;
        if line.get(open + 1 + used) != Some(&b')') {
            return None;
        }
        Some((addr, port))
    } else if line.starts_with(b"229") {
        let open = line.iter().position(|&b| b == b'(')?;
        let rest = &line[open + 1..];
        let d = *rest.first()?;
        if rest.len() < 4 || rest[1] != d || rest[2] != d {
            return None;
        }
        let tail = &rest[3..];
        let end = tail.iter().position(|&b| b == d)?;
        let port: u16 = std::str::from_utf8(&tail[..end]).ok()?.parse().ok()?;
        Some((server, port))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_and_eprt() {
        let a = scan_outbound(b"PORT 192,168,1,10,4,1\r\n");
        assert_eq!(
            a,
            Some(HelperAction::Port {
                range: 5..21,
                addr: Ipv4Addr::new(192, 168, 1, 10),
                port: 1025,
                eprt: false
            })
        );
        let a = scan_outbound(b"EPRT |1|10.0.0.2|6275|\r\n");
        assert_eq!(
            a,
            Some(HelperAction::Port {
                range: 5..22,
                addr: Ipv4Addr::new(10, 0, 0, 2),
                port: 6275,
                eprt: true
            })
        );
        assert_eq!(scan_outbound(b"pasv\r\n"), Some(HelperAction::Pasv));
        assert_eq!(scan_outbound(b"PORT 1,2,3\r\n"), None);
        assert_eq!(scan_outbound(b"PORT 1,2,3,4,5,6"), None);
        assert_eq!(scan_outbound(b"PORT 300,2,3,4,5,6\r\n"), None);
        assert_eq!(
            format_port(Ipv4Addr::new(203, 0, 113, 7), 61000, false),
            "203,0,113,7,238,72"
        );
        assert_eq!(
            format_port(Ipv4Addr::new(203, 0, 113, 7), 61000, true),
            "|1|203.0.113.7|61000|"
        );
    }

    #[test]
    fn pasv_replies() {
        let srv = Ipv4Addr::new(198, 51, 100, 1);
        assert_eq!(
            scan_inbound(b"227 Entering Passive Mode (198,51,100,1,195,80)\r\n", srv),
            Some((srv, 50000))
        );
        assert_eq!(
            scan_inbound(b"229 Entering Extended Passive Mode (|||6446|)\r\n", srv),
            Some((srv, 6446))
        );
        assert_eq!(scan_inbound(b"200 OK\r\n", srv), None);
    }

    /// Random bytes, or a `PORT`/`EPRT` command with random numbers and random surroundings.
    fn command() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let bytes = proptest::collection::vec(any::<u8>(), 0..64);
        let nums = proptest::collection::vec(0u16..300, 6);
        prop_oneof![
            bytes.clone(),
            (nums, any::<bool>(), bytes, any::<bool>()).prop_map(|(n, eprt, tail, crlf)| {
                let mut v = if eprt {
                    format!(
                        "EPRT |1|{}.{}.{}.{}|{}|",
                        n[0],
                        n[1],
                        n[2],
                        n[3],
                        n[4] * 200 + n[5]
                    )
                } else {
                    format!("PORT {},{},{},{},{},{}", n[0], n[1], n[2], n[3], n[4], n[5])
                }
                .into_bytes();
                if crlf {
                    v.extend_from_slice(b"\r\n");
                }
                v.extend_from_slice(&tail);
                v
            }),
        ]
    }

    proptest::proptest! {
        /// What `scan_outbound` finds, `format_port` prints in its place, and the result scans
        /// back to the same address and port over exactly the printed range.
        #[test]
        fn port_scan_print_round_trip(data in command()) {
            let _ = scan_inbound(&data, Ipv4Addr::LOCALHOST);
            if let Some(HelperAction::Port { range, addr, port, eprt }) = scan_outbound(&data) {
                proptest::prop_assert!(range.start < range.end && range.end <= data.len());
                let text = format_port(addr, port, eprt);
                let mut out = data[..range.start].to_vec();
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(&data[range.end..]);
                let again = scan_outbound(&out);
                proptest::prop_assert_eq!(again, Some(HelperAction::Port {
                    range: range.start..range.start + text.len(),
                    addr,
                    port,
                    eprt,
                }));
            }
        }
    }
}
