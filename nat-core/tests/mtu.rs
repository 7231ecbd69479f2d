//! Datagrams larger than the link MTU: RFC 791 fragmentation and RFC 1191 Frag-Needed, checked
//! with the independent builders and RFC 1071 sums of `common` (not `nat_core::wire`), and
//! against nat-core's own reassembler as a second, separately written, inverse.

mod common;

use common::*;
use nat_core::frag::{FragLimits, Reassembler, Reassembly};
use nat_core::masq::MasqConfig;
use nat_core::mtu::{self, Fit, FragmentError};
use nat_core::{Action, DropReason, Instant};
use proptest::prelude::*;

/// A UDP datagram of `len` bytes total, DF as given, IP options `opts`.
fn datagram(len: usize, df: bool, opts: &[u8], fill: u8) -> Vec<u8> {
    let olen = opts.len().div_ceil(4) * 4;
    let body: Vec<u8> = (0..len - 20 - olen - 8)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(fill))
        .collect();
    let mut d = udp(LAN, 40000, REMOTE, 9, &body, false);
    if !opts.is_empty() {
        // Rebuild with options: header from the builder, UDP part unchanged.
        let mut h = ip_header(LAN, REMOTE, UDP, opts, d.len() - 20);
        h.truncate(20 + olen);
        h.extend_from_slice(&d[20..]);
        d = h;
    }
    if !df {
        d[6] &= !0x40;
        d[10] = 0;
        d[11] = 0;
        let c = checksum(&[&d[..ihl(&d)]]);
        d[10..12].copy_from_slice(&c.to_be_bytes());
    }
    assert_eq!(d.len(), len);
    d
}

/// Reassembly written from RFC 791 directly: order by offset, check contiguity, splice.
fn reassemble(frags: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut parts: Vec<(usize, bool, &[u8])> = frags
        .iter()
        .map(|f| {
            let off = usize::from(be16(f, 6) & 0x1FFF) * 8;
            let mf = be16(f, 6) & 0x2000 != 0;
            (off, mf, &f[ihl(f)..usize::from(be16(f, 2))])
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let mut data = Vec::new();
    for (i, (off, mf, d)) in parts.iter().enumerate() {
        if *off != data.len() {
            return Err(format!("gap or overlap at {off}"));
        }
        if *mf != (i + 1 < parts.len()) {
            return Err(format!("MF wrong on fragment at {off}"));
        }
        data.extend_from_slice(d);
    }
    let first = &frags
        .iter()
        .find(|f| be16(f, 6) & 0x1FFF == 0)
        .ok_or("no first fragment")?;
    let mut out = first[..ihl(first)].to_vec();
    out.extend_from_slice(&data);
    let tl = out.len() as u16;
    out[2..4].copy_from_slice(&tl.to_be_bytes());
    out[6] = 0;
    out[7] = 0;
    out[10] = 0;
    out[11] = 0;
    let c = checksum(&[&out[..ihl(&out)]]);
    out[10..12].copy_from_slice(&c.to_be_bytes());
    Ok(out)
}

/// `orig` with DF cleared and its checksum refreshed (what reassembly gives back).
fn without_df(orig: &[u8]) -> Vec<u8> {
    let mut o = orig.to_vec();
    o[6] &= !0x40;
    o[10] = 0;
    o[11] = 0;
    let c = checksum(&[&o[..ihl(&o)]]);
    o[10..12].copy_from_slice(&c.to_be_bytes());
    o
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every fragment fits, has a valid header checksum, an 8-byte aligned offset and the
    /// original identification; together they reassemble to the original datagram, by the
    /// RFC 791 splice above and by nat-core's reassembler; the transport checksum of the
    /// reassembled datagram is still valid.
    #[test]
    fn fragments_reassemble_to_the_original(
        len in 29usize..4000,
        mtu in 68u16..1600,
        fill in any::<u8>(),
        with_opts in any::<bool>(),
    ) {
        // Security (copied) + record route (not copied): exercises option copying.
        let opts: &[u8] = if with_opts {
            &[130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0, 0]
        } else {
            &[]
        };
        let len = len.max(20 + opts.len() + 8 + 1);
        let orig = datagram(len, false, opts, fill);
        let hl = ihl(&orig);
        let frags = match mtu::fragment(&orig, mtu) {
            Ok(f) => f,
            Err(FragmentError::MtuTooSmall(_)) => {
                prop_assert!(usize::from(mtu) < hl + 8 && orig.len() > usize::from(mtu));
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        if orig.len() <= usize::from(mtu) {
            prop_assert_eq!(&frags, &vec![orig.clone()]);
            return Ok(());
        }
        prop_assert!(frags.len() >= 2);
        for f in &frags {
            prop_assert!(f.len() <= usize::from(mtu), "{} > {}", f.len(), mtu);
            prop_assert!(ip_header_ok(f));
            prop_assert_eq!(be16(f, 4), be16(&orig, 4));
            prop_assert_eq!(be16(f, 6) & 0x4000, 0, "DF clear");
            prop_assert_eq!(&f[12..20], &orig[12..20]);
            prop_assert_eq!(f[9], orig[9]);
        }
        // All but the last carry a multiple of 8 data bytes.
        for f in &frags[..frags.len() - 1] {
            prop_assert_eq!((usize::from(be16(f, 2)) - ihl(f)) % 8, 0);
        }
        let whole = reassemble(&frags).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&whole, &without_df(&orig));
        prop_assert_eq!(all_checksums_ok(&whole), Ok(()));

        let mut r = Reassembler::new(FragLimits::default());
        let mut done = None;
        for f in frags.iter().rev() {
            if let Ok(Reassembly::Complete(d)) = r.handle_fragment(Instant::ZERO, f) {
                done = Some(d);
            }
        }
        prop_assert_eq!(done.as_deref().map(|d| &d[hl..]), Some(&orig[hl..]));
    }

    /// Fragmenting a fragment keeps the offsets absolute and the last piece's MF.
    #[test]
    fn refragmenting_keeps_offsets_and_mf(len in 600usize..3000, mtu1 in 500u16..1500, mtu2 in 68u16..500) {
        let orig = datagram(len, false, &[], 7);
        let first = mtu::fragment(&orig, mtu1).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut all = Vec::new();
        for f in &first {
            all.extend(mtu::fragment(f, mtu2).map_err(|e| TestCaseError::fail(e.to_string()))?);
        }
        let whole = reassemble(&all).map_err(TestCaseError::fail)?;
        prop_assert_eq!(whole, without_df(&orig));
    }

    /// Frag-Needed: valid checksums (outer and quoted), type 3 code 4, the MTU in the low 16
    /// bits of the rest-of-header (RFC 1191), addressed to the sender from the given address.
    #[test]
    fn frag_needed_is_well_formed(len in 100usize..3000, mtu in 68u16..1500) {
        let orig = datagram(len, true, &[], 3);
        let e = mtu::frag_needed(GW_LAN, &orig, mtu);
        prop_assert_eq!(all_checksums_ok(&e), Ok(()));
        prop_assert_eq!(checksum(&[&e[20..]]), 0, "ICMP checksum by RFC 1071");
        prop_assert_eq!((addr(&e, 12), addr(&e, 16)), (GW_LAN, LAN));
        prop_assert_eq!((e[20], e[21]), (3, 4));
        prop_assert_eq!(be16(&e, 24), 0);
        prop_assert_eq!(be16(&e, 26), mtu);
        prop_assert!(e.len() <= 576);
        prop_assert_eq!(&e[28..48], &orig[..20]);
    }
}

#[test]
fn decide_matches_length_and_df() {
    assert_eq!(mtu::decide(&datagram(1400, true, &[], 0), 1492), Fit::Fits);
    assert_eq!(
        mtu::decide(&datagram(1500, true, &[], 0), 1492),
        Fit::FragNeeded
    );
    assert_eq!(
        mtu::decide(&datagram(1500, false, &[], 0), 1492),
        Fit::Fragment
    );
}

/// The engine answers an oversize DF datagram from the LAN with Frag-Needed quoting the
/// datagram as the LAN host sent it (not masqueraded), from the gateway's LAN address;
/// lets a fitting one through; and rate-limits the errors per host.
#[test]
fn engine_sends_frag_needed_for_oversize_df_and_rate_limits() {
    let mut e = engine_with(MasqConfig::linux22());
    e.set_path_mtu(Some(576));
    let big = datagram(1400, true, &[], 1);
    let mut b = big.clone();
    let a = e.process_from_lan(Instant::from_secs(10), &mut b);
    let Action::Reply(icmp) = a else {
        panic!("expected Frag-Needed, got {a:?}");
    };
    assert_eq!(all_checksums_ok(&icmp), Ok(()));
    assert_eq!((addr(&icmp, 12), addr(&icmp, 16)), (GW_LAN, LAN));
    assert_eq!((icmp[20], icmp[21], be16(&icmp, 26)), (3, 4, 576));
    assert_eq!(
        &icmp[28..28 + 40],
        &big[..40],
        "quotes the LAN host's own datagram"
    );
    assert_eq!(e.drops(DropReason::TooBig), 1);

    // Without DF it goes to the link whole (the session fragments it), masqueraded.
    let mut b = datagram(1400, false, &[], 1);
    assert_eq!(
        e.process_from_lan(Instant::from_secs(10), &mut b),
        Action::ToLink
    );
    assert_eq!(addr(&b, 12), MASQ);
    // A DF datagram that fits passes.
    let mut b = datagram(576, true, &[], 1);
    assert_eq!(
        e.process_from_lan(Instant::from_secs(10), &mut b),
        Action::ToLink
    );

    // Burst of 6 per host (one was sent above), then dropped silently until a second passes.
    let replies = (0..7)
        .filter(|_| {
            let mut b = big.clone();
            matches!(
                e.process_from_lan(Instant::from_secs(10), &mut b),
                Action::Reply(_)
            )
        })
        .count();
    assert_eq!(replies, 5);
    assert_eq!(e.drops(DropReason::TooBig), 8);
    let mut b = big.clone();
    assert!(matches!(
        e.process_from_lan(Instant::from_secs(11), &mut b),
        Action::Reply(_)
    ));
    let c: std::collections::HashMap<String, u64> = e.counters().into_iter().collect();
    assert_eq!((c["frag_needed.sent"], c["frag_needed.limited"]), (7, 2));

    // Link down: no check.
    e.set_path_mtu(None);
    let mut b = big.clone();
    assert_eq!(
        e.process_from_lan(Instant::from_secs(12), &mut b),
        Action::ToLink
    );
}

/// A DF datagram the forward chain denies gets no Frag-Needed (the rules come first).
#[test]
fn denied_oversize_df_gets_no_frag_needed() {
    let mut e = engine_with(MasqConfig::linux22());
    e.firewall_mut()
        .set_policy("forward", "DENY")
        .unwrap_or_else(|err| panic!("{err}"));
    e.set_path_mtu(Some(576));
    let mut b = datagram(1400, true, &[], 1);
    assert_eq!(
        e.process_from_lan(Instant::from_secs(1), &mut b),
        Action::Drop(DropReason::ForwardDeny)
    );
}

/// An inbound Frag-Needed from a router on the internet about a masqueraded datagram goes
/// back to the LAN host with the inner addresses and ports demasqueraded, the MTU kept and
/// both checksums valid.
#[test]
fn inbound_frag_needed_is_translated_to_the_lan_host() {
    let mut e = engine_with(MasqConfig::linux22());
    let mut out = datagram(1400, true, &[], 9);
    assert_eq!(
        e.process_from_lan(Instant::from_secs(1), &mut out),
        Action::ToLink
    );
    let masq_port = be16(&out, 20);
    let err = mtu::frag_needed(ROUTER, &out, 1000);
    // frag_needed addresses the error to the quoted source: the masquerade address.
    assert_eq!(addr(&err, 16), MASQ);
    let mut inb = err.clone();
    assert_eq!(
        e.process_from_link(Instant::from_secs(1), &mut inb),
        Action::ToLan
    );
    assert_eq!(all_checksums_ok(&inb), Ok(()));
    assert_eq!(addr(&inb, 16), LAN);
    assert_eq!((inb[20], inb[21], be16(&inb, 26)), (3, 4, 1000));
    let q = &inb[28..];
    assert_eq!((addr(q, 12), addr(q, 16)), (LAN, REMOTE));
    assert_eq!((be16(q, 20), be16(q, 22)), (40000, 9));
    assert_ne!(masq_port, 40000);
}
