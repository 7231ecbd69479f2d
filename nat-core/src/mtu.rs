//! Datagrams larger than the link's MTU (the peer's negotiated MRU): what a router does with
//! them. Pure functions and a sans-IO rate limiter; the engine and the PPP session call them.
//!
//! - [`decide`]: fits, must be fragmented (RFC 791), or must be refused with ICMP
//!   "fragmentation needed and DF set" (RFC 792 type 3 code 4).
//! - [`fragment`]: RFC 791 fragmentation: 8-byte aligned offsets, MF on all but the last
//!   piece (the last keeps the original MF, so a fragment can be fragmented again), only the
//!   options with the copied flag repeated after the first piece, fresh header checksums.
//! - [`frag_needed`]: the ICMP error carrying the next-hop MTU (RFC 1191 section 4).
//! - [`RateLimit`]: a token bucket per destination, as Linux rate-limits its ICMP errors
//!   (`icmp_ratelimit`: one per second after a burst of six).

use std::net::Ipv4Addr;

use crate::time::{Duration, Instant};
use crate::wire::{icmp, ipv4, WireError};

/// Smallest MTU every IPv4 link must carry (RFC 791: 68 octets).
pub const MIN_MTU: u16 = 68;

/// What to do with a datagram about to go out on a link with a given MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// It fits: send it as it is.
    Fits,
    /// Too big, DF clear: send it in fragments ([`fragment`]).
    Fragment,
    /// Too big, DF set: drop it and tell the sender ([`frag_needed`]).
    FragNeeded,
}

/// Why a datagram could not be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    /// Not a well-formed IPv4 datagram.
    #[error("malformed datagram: {0}")]
    Wire(#[from] WireError),
    /// DF is set: the sender asked not to fragment it.
    #[error("datagram too big and DF set")]
    DontFragment,
    /// The MTU leaves no room for 8 data bytes after the header.
    #[error("MTU {0} too small to fragment into")]
    MtuTooSmall(u16),
}

/// Decide what to do with `pkt` on a link carrying datagrams of at most `mtu` bytes. Only
/// the header is read (the total length field, DF); a malformed datagram "fits" (it is the
/// caller's to drop).
pub fn decide(pkt: &[u8], mtu: u16) -> Fit {
    let Ok(ip) = ipv4::Packet::new_checked(pkt) else {
        return Fit::Fits;
    };
    if ip.total_len() <= mtu {
        Fit::Fits
    } else if ip.dont_frag() {
        Fit::FragNeeded
    } else {
        Fit::Fragment
    }
}

/// The options of a header that every fragment after the first repeats: those with the
/// copied flag (RFC 791 "copied flag"), padded with End-of-Options to a multiple of 4. A
/// malformed option ends the list (nothing after it is copied).
fn copied_options(opts: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        match t {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else { break };
                let len = usize::from(len);
                if len < 2 || i + len > opts.len() {
                    break;
                }
                if t & 0x80 != 0 {
                    out.extend_from_slice(&opts[i..i + len]);
                }
                i += len;
            }
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out
}

/// Split `pkt` into fragments of at most `mtu` bytes (RFC 791, "An Example Fragmentation
/// Procedure"). A datagram that fits comes back whole (one element, trimmed to its total
/// length). DF set and too big is an error: the caller sends [`frag_needed`] instead.
pub fn fragment(pkt: &[u8], mtu: u16) -> Result<Vec<Vec<u8>>, FragmentError> {
    let ip = ipv4::Packet::new_checked(pkt)?;
    let total = usize::from(ip.total_len());
    if total <= usize::from(mtu) {
        return Ok(vec![pkt[..total].to_vec()]);
    }
    if ip.dont_frag() {
        return Err(FragmentError::DontFragment);
    }
    let hl = ip.header_len();
    let first_hdr = &pkt[..hl];
    let later_opts = copied_options(ip.options());
    let later_hl = ipv4::HEADER_LEN + later_opts.len();
    // Every piece but the last carries a multiple of 8 data bytes; the first header is the
    // longest, so checking it covers the rest.
    let room = |h: usize| (usize::from(mtu).saturating_sub(h)) & !7;
    if usize::from(mtu) < usize::from(MIN_MTU) || room(hl) == 0 {
        return Err(FragmentError::MtuTooSmall(mtu));
    }
    let data = &pkt[hl..total];
    let base = usize::from(ip.frag_offset());
    let last_mf = ip.more_frags();
    let mut out = Vec::with_capacity(data.len() / room(later_hl) + 2);
    let mut off = 0usize;
    while off < data.len() {
        let h = if off == 0 { hl } else { later_hl };
        let left = data.len() - off;
        let (n, last) = if left + h <= usize::from(mtu) {
            (left, true)
        } else {
            (room(h), false)
        };
        let mut f = Vec::with_capacity(h + n);
        if off == 0 {
            f.extend_from_slice(first_hdr);
        } else {
            f.extend_from_slice(&first_hdr[..ipv4::HEADER_LEN]);
            f.extend_from_slice(&later_opts);
        }
        f.extend_from_slice(&data[off..off + n]);
        let frag_off = base + off;
        // 13 bits of 8-byte units: a datagram's data ends below 65 536, so this fits.
        let frag_off = u16::try_from(frag_off).map_err(|_| WireError::Malformed)?;
        let len = u16::try_from(f.len()).map_err(|_| WireError::Malformed)?;
        let mut p = ipv4::Packet::new_unchecked(&mut f[..]);
        p.set_version_and_header_len(h);
        p.set_total_len(len);
        p.set_flags_and_offset(false, !last || last_mf, frag_off);
        p.fill_checksum();
        out.push(f);
        off += n;
    }
    Ok(out)
}

/// ICMP "fragmentation needed and DF set" (type 3 code 4) from `from` (the gateway's address
/// on the sender's side) to the sender of `orig`, carrying `next_hop_mtu` in the low 16 bits
/// of the rest-of-header word (RFC 1191 section 4) and quoting `orig`'s header and as much of
/// its data as fits in 576 bytes (RFC 1812 4.3.2.3).
pub fn frag_needed(from: Ipv4Addr, orig: &[u8], next_hop_mtu: u16) -> Vec<u8> {
    let mut out = crate::icmp_error::build_icmp_error(from, orig, icmp::types::DST_UNREACHABLE, 4);
    let mut m = icmp::Packet::new_unchecked(&mut out[ipv4::HEADER_LEN..]);
    m.set_rest(u32::from(next_hop_mtu));
    m.fill_checksum();
    out
}

/// Linux's defaults for ICMP errors (`net.ipv4.icmp_ratelimit` = 1000 ms per token, burst
/// `XRLIM_BURST_FACTOR` = 6).
const TOKEN: Duration = Duration::from_millis(1000);
const BURST: u32 = 6;
/// Destinations remembered; the least recently used is forgotten beyond this.
const MAX_PEERS: usize = 256;

/// A token bucket per destination for ICMP errors: six at once, then one per second.
#[derive(Debug, Clone, Default)]
pub struct RateLimit {
    /// (destination, tokens, last refill).
    peers: Vec<(Ipv4Addr, u32, Instant)>,
    /// Errors sent and refused so far.
    sent: u64,
    limited: u64,
}

impl RateLimit {
    /// True when an error may be sent to `dst` at `now` (and takes a token).
    pub fn allow(&mut self, now: Instant, dst: Ipv4Addr) -> bool {
        let i = match self.peers.iter().position(|p| p.0 == dst) {
            Some(i) => i,
            None => {
                if self.peers.len() >= MAX_PEERS {
                    // Forget the one refilled longest ago.
                    if let Some(old) = self
                        .peers
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, p)| p.2)
                        .map(|(i, _)| i)
                    {
                        self.peers.swap_remove(old);
                    }
                }
                self.peers.push((dst, BURST, now));
                self.peers.len() - 1
            }
        };
        let p = &mut self.peers[i];
        let gained = now.saturating_duration_since(p.2).as_millis() / TOKEN.as_millis();
        if gained > 0 {
            p.1 =
                p.1.saturating_add(u32::try_from(gained).unwrap_or(u32::MAX))
                    .min(BURST);
            p.2 = now;
        }
        if p.1 > 0 {
            p.1 -= 1;
            self.sent += 1;
            true
        } else {
            self.limited += 1;
            false
        }
    }

    /// (errors allowed, errors refused) so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.sent, self.limited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(len: usize, df: bool, opts: &[u8]) -> Vec<u8> {
        let hl = ipv4::HEADER_LEN + opts.len();
        let mut p = vec![0u8; len];
        p[0] = 0x40 | (hl / 4) as u8;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6] = if df { 0x40 } else { 0 };
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[192, 168, 77, 2]);
        p[16..20].copy_from_slice(&[203, 0, 113, 1]);
        p[20..hl].copy_from_slice(opts);
        for (i, b) in p[hl..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut v = ipv4::Packet::new_unchecked(&mut p[..]);
        v.fill_checksum();
        p
    }

    #[test]
    fn decide_by_length_and_df() {
        assert_eq!(decide(&datagram(576, true, &[]), 576), Fit::Fits);
        assert_eq!(decide(&datagram(577, true, &[]), 576), Fit::FragNeeded);
        assert_eq!(decide(&datagram(577, false, &[]), 576), Fit::Fragment);
        assert_eq!(decide(&[0x45, 0], 576), Fit::Fits);
    }

    /// 1400 bytes at MTU 576: 1380 data bytes in pieces of 552 (69 units of 8), 552 and 276.
    #[test]
    fn offsets_and_flags_of_a_1400_byte_datagram_at_576() {
        let f = fragment(&datagram(1400, false, &[]), 576).unwrap_or_default();
        let fields: Vec<(usize, bool, u16)> = f
            .iter()
            .map(|f| {
                let p = ipv4::Packet::new_unchecked(&f[..]);
                assert!(p.verify_checksum());
                assert_eq!(p.ident(), 0x1234);
                assert!(!p.dont_frag());
                (f.len(), p.more_frags(), p.frag_offset())
            })
            .collect();
        assert_eq!(
            fields,
            [(572, true, 0), (572, true, 552), (296, false, 1104)]
        );
    }

    #[test]
    fn only_copied_options_repeat() {
        // Security (130, copied, 11 bytes) + record route (7, not copied, 7 bytes) + EOL + pad.
        let mut opts = vec![130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        opts.extend_from_slice(&[7, 7, 4, 0, 0, 0, 0]);
        opts.extend_from_slice(&[0, 0]);
        assert_eq!(opts.len(), 20);
        let f = fragment(&datagram(600, false, &opts), 300).unwrap_or_default();
        assert_eq!(f.len(), 3);
        assert_eq!(ipv4::Packet::new_unchecked(&f[0][..]).header_len(), 40);
        for later in &f[1..] {
            let p = ipv4::Packet::new_unchecked(&later[..]);
            assert_eq!(p.header_len(), 32);
            assert_eq!(&p.options()[..12], &[130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            fragment(&datagram(1400, true, &[]), 576),
            Err(FragmentError::DontFragment)
        );
        assert_eq!(
            fragment(&datagram(1400, false, &[]), 27),
            Err(FragmentError::MtuTooSmall(27))
        );
        assert!(matches!(
            fragment(&[0x45, 0, 0], 576),
            Err(FragmentError::Wire(_))
        ));
        let whole = datagram(500, true, &[]);
        assert_eq!(fragment(&whole, 576), Ok(vec![whole]));
    }

    #[test]
    fn frag_needed_carries_the_mtu() {
        let orig = datagram(1400, true, &[]);
        let e = frag_needed(Ipv4Addr::new(192, 168, 77, 1), &orig, 576);
        let ip = ipv4::Packet::new_unchecked(&e[..]);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 168, 77, 1));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(192, 168, 77, 2));
        assert!(ip.verify_checksum());
        assert_eq!(e.len(), 576);
        assert_eq!(&e[20..22], &[3, 4]);
        assert_eq!(&e[24..28], &[0, 0, 0x02, 0x40]);
        assert_eq!(&e[28..48], &orig[..20]);
    }

    #[test]
    fn rate_limit_bursts_then_one_per_second_per_destination() {
        let mut r = RateLimit::default();
        let a = Ipv4Addr::new(192, 168, 77, 2);
        let b = Ipv4Addr::new(192, 168, 77, 3);
        let t0 = Instant::from_millis(10_000);
        let burst: Vec<bool> = (0..8).map(|_| r.allow(t0, a)).collect();
        assert_eq!(burst, [true, true, true, true, true, true, false, false]);
        assert!(r.allow(t0, b), "another destination has its own bucket");
        assert!(!r.allow(t0 + Duration::from_millis(999), a));
        assert!(r.allow(t0 + Duration::from_millis(1000), a));
        assert!(!r.allow(t0 + Duration::from_millis(1500), a));
        assert_eq!(r.counts(), (8, 4));
    }
}
