//! TCP MSS clamping for SYNs crossing the dial-up link. Owns the option walk and the in-place
//! rewrite; must not decide when to clamp (the engine does, from the link's negotiated MTU/MRU).
//!
//! A peer that advertises an MSS larger than the link can carry makes the other side send
//! segments that must be fragmented or, with DF set and ICMP filtered somewhere, vanish (a PMTU
//! black hole). Like FreeBSD ppp's `mssfixup` and Linux's `TCPMSS --clamp-mss-to-pmtu`, a SYN's
//! MSS option is lowered to the link MTU minus 40 (RFC 879 / RFC 9293 §3.7.1: MSS counts the data
//! only, without the 20-byte IP and 20-byte TCP headers). The TCP checksum is updated
//! incrementally (RFC 1624), never recomputed, so a SYN with a bad checksum stays bad.

use crate::wire::{checksum, proto};

/// TCP option kinds (RFC 9293 §3.2).
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;

/// The MSS that fits a link MTU: MTU − 20 (IPv4 header) − 20 (TCP header), at least 1.
pub fn mss_for_mtu(mtu: u16) -> u16 {
    mtu.saturating_sub(40).max(1)
}

/// If `ip` is an IPv4 datagram carrying a TCP SYN (or SYN-ACK) whose MSS option exceeds
/// `max_mss`, lower it to `max_mss` and update the TCP checksum incrementally. Returns the old
/// MSS when it was lowered. Anything else — not IPv4/TCP, a non-first fragment, no SYN, no MSS
/// option, a malformed header or option list — is left untouched.
pub fn clamp_mss(ip: &mut [u8], max_mss: u16) -> Option<u16> {
    // IPv4 header: version/IHL, protocol, fragment offset.
    let first = *ip.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || ip.len() < ihl + 20 || ip[9] != proto::TCP {
        return None;
    }
    let frag_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    if frag_offset != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let end = total.min(ip.len());
    let tcp = ip.get_mut(ihl..end)?;
    if tcp.len() < 20 {
        return None;
    }
    let flags = tcp[13];
    if flags & 0x02 == 0 {
        return None;
    }
    let data_off = usize::from(tcp[12] >> 4) * 4;
    if data_off < 20 || data_off > tcp.len() {
        return None;
    }
    let mut i = 20;
    while i < data_off {
        match tcp[i] {
            OPT_END => return None,
            OPT_NOP => i += 1,
            kind => {
                let len = usize::from(*tcp.get(i + 1)?);
                if len < 2 || i + len > data_off {
                    return None;
                }
                if kind == OPT_MSS {
                    if len != 4 {
                        return None;
                    }
                    let old = u16::from_be_bytes([tcp[i + 2], tcp[i + 3]]);
                    if old <= max_mss {
                        return None;
                    }
                    let before = word_pair(tcp, i + 2);
                    tcp[i + 2..i + 4].copy_from_slice(&max_mss.to_be_bytes());
                    let after = word_pair(tcp, i + 2);
                    let mut hc = u16::from_be_bytes([tcp[16], tcp[17]]);
                    for (o, n) in before.iter().zip(after.iter()) {
                        hc = checksum::update_u16(hc, *o, *n);
                    }
                    tcp[16..18].copy_from_slice(&hc.to_be_bytes());
                    return Some(old);
                }
                i += len;
            }
        }
    }
    None
}

/// The 16-bit words (aligned to the TCP header start, as the checksum sums them) that cover the
/// two bytes at `at` and `at + 1`: one word when `at` is even, two when odd.
fn word_pair(tcp: &[u8], at: usize) -> Vec<u16> {
    let start = at & !1;
    let stop = (at + 2).div_ceil(2) * 2;
    (start..stop)
        .step_by(2)
        .map(|k| u16::from_be_bytes([tcp[k], tcp.get(k + 1).copied().unwrap_or(0)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ipv4, tcp};
    use std::net::Ipv4Addr;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    /// A TCP segment with `options` (padded by the caller to a multiple of 4), valid checksums.
    fn segment(flags: u16, options: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let tcp_len = 20 + options.len();
        let mut b = vec![0u8; 20 + tcp_len];
        ipv4::Repr {
            src_addr: SRC,
            dst_addr: DST,
            protocol: proto::TCP,
            payload_len: tcp_len,
            ttl: 64,
        }
        .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
        let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
        t.set_src_port(40000);
        t.set_dst_port(80);
        t.set_seq_number(0x1234_5678);
        t.set_header_len_and_flags(tcp_len, flags);
        t.set_window_len(64240);
        b[40..40 + options.len()].copy_from_slice(options);
        let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
        t.fill_checksum(SRC, DST);
        b
    }

    /// RFC 1071 over pseudo-header and segment, written independently of `wire::checksum`.
    fn reference_tcp_sum_ok(ip: &[u8]) -> bool {
        let seg = &ip[20..];
        let mut sum: u64 = 0;
        for w in [
            &ip[12..14],
            &ip[14..16],
            &ip[16..18],
            &ip[18..20],
            &[0, 6][..],
            &(seg.len() as u16).to_be_bytes()[..],
        ] {
            sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        for c in seg.chunks(2) {
            let hi = u64::from(c[0]) << 8;
            let lo = c.get(1).map_or(0, |&x| u64::from(x));
            sum += hi | lo;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    const SYN: u16 = 0x002;
    const SYN_ACK: u16 = 0x012;
    const ACK: u16 = 0x010;

    #[test]
    fn clamps_an_aligned_mss_and_keeps_the_checksum_valid() {
        // MSS 1460, then SACK-permitted, NOP, NOP (Linux-like, MSS at an even offset).
        let mut p = segment(SYN, &[2, 4, 0x05, 0xb4, 4, 2, 1, 1]);
        assert!(reference_tcp_sum_ok(&p));
        assert_eq!(clamp_mss(&mut p, 1460 - 40), Some(1460));
        assert_eq!(&p[42..44], &1420u16.to_be_bytes());
        assert!(reference_tcp_sum_ok(&p));
        let t = tcp::Packet::new_checked(&p[20..]).expect("tcp");
        assert!(t.verify_checksum(SRC, DST));
    }

    #[test]
    fn clamps_an_odd_offset_mss_in_a_syn_ack() {
        // NOP, then MSS 1460 at an odd offset (straddles two checksum words), then padding.
        let mut p = segment(SYN_ACK, &[1, 2, 4, 0x05, 0xb4, 1, 1, 0]);
        assert!(reference_tcp_sum_ok(&p));
        assert_eq!(clamp_mss(&mut p, 536), Some(1460));
        assert_eq!(&p[43..45], &536u16.to_be_bytes());
        assert!(reference_tcp_sum_ok(&p));
    }

    #[test]
    fn leaves_small_mss_non_syn_and_optionless_segments_alone() {
        let mut p = segment(SYN, &[2, 4, 0x02, 0x18, 1, 1, 1, 0]); // MSS 536
        let before = p.clone();
        assert_eq!(clamp_mss(&mut p, 1460), None);
        assert_eq!(p, before);
        let mut p = segment(ACK, &[2, 4, 0x05, 0xb4]);
        let before = p.clone();
        assert_eq!(clamp_mss(&mut p, 536), None);
        assert_eq!(p, before);
        let mut p = segment(SYN, &[]);
        assert_eq!(clamp_mss(&mut p, 536), None);
        // MSS after an end-of-list option is not an option.
        let mut p = segment(SYN, &[0, 2, 4, 0x05, 0xb4, 0, 0, 0]);
        assert_eq!(clamp_mss(&mut p, 536), None);
    }

    #[test]
    fn malformed_options_and_headers_are_left_alone() {
        // Option length running past the header; zero length; truncated packets.
        for opts in [&[2, 9, 0x05, 0xb4][..], &[8, 0, 0, 0], &[2, 3, 0x05, 0xb4]] {
            let mut p = segment(SYN, opts);
            let before = p.clone();
            assert_eq!(clamp_mss(&mut p, 536), None, "{opts:?}");
            assert_eq!(p, before);
        }
        let p = segment(SYN, &[2, 4, 0x05, 0xb4]);
        for n in 0..p.len() {
            let mut short = p[..n].to_vec();
            let _ = clamp_mss(&mut short, 536);
        }
        // A non-first fragment.
        let mut p = segment(SYN, &[2, 4, 0x05, 0xb4]);
        p[6] = 0x00;
        p[7] = 0x10;
        assert_eq!(clamp_mss(&mut p, 536), None);
    }

    proptest::proptest! {
        /// Any placement of the MSS option among NOPs and other options, any MSS and limit:
        /// afterwards the MSS is min(old, limit) and the checksum still verifies (independent
        /// RFC 1071 sum).
        #[test]
        fn clamp_keeps_checksum_valid(
            nops in 0usize..7,
            sack in proptest::bool::ANY,
            old in 1u16..=u16::MAX,
            max in 1u16..=u16::MAX,
            syn_ack in proptest::bool::ANY,
        ) {
            let mut opts = vec![1u8; nops];
            if sack {
                opts.extend_from_slice(&[4, 2]);
            }
            opts.extend_from_slice(&[2, 4]);
            opts.extend_from_slice(&old.to_be_bytes());
            while opts.len() % 4 != 0 {
                opts.push(0);
            }
            let at = 40 + nops + if sack { 2 } else { 0 } + 2;
            let mut p = segment(if syn_ack { SYN_ACK } else { SYN }, &opts);
            let r = clamp_mss(&mut p, max);
            proptest::prop_assert_eq!(r, (old > max).then_some(old));
            proptest::prop_assert_eq!(u16::from_be_bytes([p[at], p[at + 1]]), old.min(max));
            proptest::prop_assert!(reference_tcp_sum_ok(&p));
        }
    }

    #[test]
    fn engine_clamps_syns_both_ways_once_the_link_mtu_is_known() {
        use crate::{Action, Engine, EngineConfig, Instant};
        let masq = Ipv4Addr::new(203, 0, 113, 5);
        let mut e = Engine::new(EngineConfig::default());
        e.firewall_mut()
            .set_policy("forward", "MASQ")
            .expect("legal policy");
        e.set_masq_address(Some(masq));
        let now = Instant::from_secs(1);
        // Link down or not negotiated: no clamping.
        let mut p = segment(SYN, &[2, 4, 0x05, 0xb4]);
        assert_eq!(e.process_from_lan(now, &mut p), Action::ToLink);
        assert_eq!(&p[42..44], &1460u16.to_be_bytes());
        // Peer MRU 576 (our MTU), our MRU 1006: outgoing SYNs to 966, incoming to 536.
        e.set_link_mtu(Some((576, 1006)));
        let mut p = segment(SYN, &[2, 4, 0x05, 0xb4]);
        assert_eq!(e.process_from_lan(now, &mut p), Action::ToLink);
        assert_eq!(&p[42..44], &966u16.to_be_bytes());
        assert!(reference_tcp_sum_ok(&p));
        let mport = u16::from_be_bytes([p[20], p[21]]);
        // The SYN-ACK back to the masqueraded port.
        let mut r = vec![0u8; 44];
        ipv4::Repr {
            src_addr: DST,
            dst_addr: masq,
            protocol: proto::TCP,
            payload_len: 24,
            ttl: 60,
        }
        .emit(&mut ipv4::Packet::new_unchecked(&mut r[..]));
        let mut t = tcp::Packet::new_unchecked(&mut r[20..]);
        t.set_src_port(80);
        t.set_dst_port(mport);
        t.set_seq_number(7);
        t.set_ack_number(0x1234_5679);
        t.set_header_len_and_flags(24, SYN_ACK);
        t.set_window_len(8192);
        r[40..44].copy_from_slice(&[2, 4, 0x05, 0xb4]);
        tcp::Packet::new_unchecked(&mut r[20..]).fill_checksum(DST, masq);
        assert_eq!(e.process_from_link(now, &mut r), Action::ToLan);
        assert_eq!(&r[16..20], &SRC.octets());
        assert_eq!(&r[42..44], &536u16.to_be_bytes());
        assert!(reference_tcp_sum_ok(&r));
    }

    #[test]
    fn mss_for_mtu_subtracts_headers() {
        assert_eq!(mss_for_mtu(1500), 1460);
        assert_eq!(mss_for_mtu(576), 536);
        assert_eq!(mss_for_mtu(10), 1);
    }
}
