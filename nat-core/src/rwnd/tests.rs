use super::*;
use crate::wire::{ipv4, tcp};
use proptest::prelude::*;

const LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const LAN2: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);
const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

const F_SYN: u16 = 0x002;
const F_ACK: u16 = 0x010;
const F_SYN_ACK: u16 = 0x012;
const F_RST: u16 = 0x004;

/// A TCP segment with valid checksums: `options` padded to a multiple of 4 by the caller.
#[allow(clippy::too_many_arguments)]
fn segment(
    src: Ipv4Addr,
    sp: u16,
    dst: Ipv4Addr,
    dp: u16,
    flags: u16,
    window: u16,
    options: &[u8],
    payload: usize,
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let tcp_len = 20 + options.len() + payload;
    let mut b = vec![0u8; 20 + tcp_len];
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto::TCP,
        payload_len: tcp_len,
        ttl: 64,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    let mut t = tcp::Packet::new_unchecked(&mut b[20..]);
    t.set_src_port(sp);
    t.set_dst_port(dp);
    t.set_seq_number(0x1234_5678);
    t.set_ack_number(0x0abc_def0);
    t.set_header_len_and_flags(20 + options.len(), flags);
    t.set_window_len(window);
    b[40..40 + options.len()].copy_from_slice(options);
    for (i, x) in b[40 + options.len()..].iter_mut().enumerate() {
        *x = i as u8;
    }
    tcp::Packet::new_unchecked(&mut b[20..]).fill_checksum(src, dst);
    b
}

/// Outbound (after masquerading) from MASQ:61000 to REMOTE:80.
fn out(flags: u16, window: u16, options: &[u8]) -> Vec<u8> {
    segment(MASQ, 61000, REMOTE, 80, flags, window, options, 0)
}

/// Inbound (before demasquerading) from REMOTE:80 to MASQ:61000.
fn inb(flags: u16, options: &[u8], payload: usize) -> Vec<u8> {
    segment(REMOTE, 80, MASQ, 61000, flags, 65535, options, payload)
}

/// RFC 1071 over pseudo-header and segment, written independently of `wire::checksum`.
fn tcp_sum_ok(ip: &[u8]) -> bool {
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
        sum += (u64::from(c[0]) << 8) | c.get(1).map_or(0, |&x| u64::from(x));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

fn window(ip: &[u8]) -> u16 {
    u16::from_be_bytes([ip[34], ip[35]])
}

/// 115200 baud: 11 520 B/s; budget 1152 + 2 × 1460 = 4072 bytes, floor 2920.
fn clamp() -> WindowClamp {
    WindowClamp::new(WindowConfig::for_rate(11_520))
}

const T0: Instant = Instant::from_secs(10);
/// NOP, window scale `shift`.
fn ws(shift: u8) -> [u8; 4] {
    [1, 3, 3, shift]
}

/// Handshake: LAN SYN with `lan` shift, remote SYN-ACK with `remote` shift.
fn handshake(c: &mut WindowClamp, lan: Option<u8>, remote: Option<u8>) {
    let lo = lan.map(ws);
    let mut syn = out(F_SYN, 64240, lo.as_ref().map_or(&[][..], |o| &o[..]));
    c.clamp_outbound(T0, LAN, &mut syn);
    let ro = remote.map(ws);
    c.observe_inbound(
        T0,
        &inb(F_SYN_ACK, ro.as_ref().map_or(&[][..], |o| &o[..]), 0),
    );
}

#[test]
fn budget_is_bdp_plus_packets() {
    let c = WindowConfig::for_rate(11_520);
    assert_eq!(c.budget(), 1152 + 2 * 1460);
    assert_eq!(c.floor(), 2920);
}

#[test]
fn syn_window_is_clamped_unscaled() {
    let mut c = clamp();
    let mut syn = out(F_SYN, 64240, &ws(7));
    let r = c.clamp_outbound(T0, LAN, &mut syn);
    assert_eq!(
        r,
        Some(Clamped {
            old: 64240,
            new: 4072
        })
    );
    assert_eq!(window(&syn), 4072);
    assert!(tcp_sum_ok(&syn));
}

#[test]
fn ack_window_respects_the_lan_hosts_shift() {
    let mut c = clamp();
    handshake(&mut c, Some(7), Some(8));
    // 4072 bytes in units of 128 bytes, rounded up: 32 (4096 bytes).
    let mut ack = out(F_ACK, 502, &[]);
    assert_eq!(c.clamp_outbound(T0, LAN, &mut ack).map(|r| r.new), Some(32));
    assert_eq!(window(&ack), 32);
    assert!(tcp_sum_ok(&ack));
    // A window already below is left alone.
    let mut ack = out(F_ACK, 20, &[]);
    let before = ack.clone();
    assert_eq!(c.clamp_outbound(T0, LAN, &mut ack), None);
    assert_eq!(ack, before);
}

#[test]
fn no_scaling_unless_both_syns_carry_the_option() {
    let mut c = clamp();
    handshake(&mut c, Some(7), None);
    let mut ack = out(F_ACK, 64240, &[]);
    assert_eq!(
        c.clamp_outbound(T0, LAN, &mut ack).map(|r| r.new),
        Some(4072)
    );
    let mut c = clamp();
    handshake(&mut c, None, Some(7));
    let mut ack = out(F_ACK, 64240, &[]);
    assert_eq!(
        c.clamp_outbound(T0, LAN, &mut ack).map(|r| r.new),
        Some(4072)
    );
}

#[test]
fn connections_whose_syn_was_not_seen_are_left_alone() {
    let mut c = clamp();
    let mut ack = out(F_ACK, 64240, &[]);
    let before = ack.clone();
    assert_eq!(c.clamp_outbound(T0, LAN, &mut ack), None);
    assert_eq!(ack, before);
}

#[test]
fn rst_non_tcp_and_fragments_are_left_alone() {
    let mut c = clamp();
    handshake(&mut c, Some(7), Some(7));
    let mut rst = out(F_RST | F_ACK, 500, &[]);
    let before = rst.clone();
    assert_eq!(c.clamp_outbound(T0, LAN, &mut rst), None);
    assert_eq!(rst, before);
    // UDP with the same bytes otherwise.
    let mut udp = out(F_ACK, 500, &[]);
    udp[9] = proto::UDP;
    let before = udp.clone();
    assert_eq!(c.clamp_outbound(T0, LAN, &mut udp), None);
    assert_eq!(udp, before);
    // A first fragment (MF set).
    let mut frag = out(F_ACK, 500, &[]);
    frag[6] = 0x20;
    let before = frag.clone();
    assert_eq!(c.clamp_outbound(T0, LAN, &mut frag), None);
    assert_eq!(frag, before);
}

#[test]
fn budget_is_split_per_host_then_per_flow_with_a_floor() {
    let cfg = WindowConfig {
        rate: 11_520,
        rtt_ms: 100,
        packets: 10,
        mss: 1000,
        min_packets: 1,
    };
    assert_eq!(cfg.budget(), 11_152);
    let mut c = WindowClamp::new(cfg);
    // Three connections: two of LAN (ports 61000, 61001), one of LAN2 (61002), all downloading.
    for (host, mport) in [(LAN, 61000), (LAN, 61001), (LAN2, 61002)] {
        let mut syn = segment(MASQ, mport, REMOTE, 80, F_SYN, 64240, &[], 0);
        c.clamp_outbound(T0, host, &mut syn);
        c.observe_inbound(
            T0,
            &segment(REMOTE, 80, MASQ, mport, F_SYN_ACK, 65535, &[], 0),
        );
        c.observe_inbound(
            T0,
            &segment(REMOTE, 80, MASQ, mport, F_ACK, 65535, &[], 100),
        );
    }
    assert_eq!(c.active_downloads(T0), 3);
    let w = |c: &mut WindowClamp, host, mport| {
        let mut a = segment(MASQ, mport, REMOTE, 80, F_ACK, 65535, &[], 0);
        c.clamp_outbound(T0, host, &mut a);
        window(&a)
    };
    // Two hosts: half each; LAN's half split between its two flows.
    assert_eq!(w(&mut c, LAN, 61000), 11_152 / 2 / 2);
    assert_eq!(w(&mut c, LAN, 61001), 11_152 / 2 / 2);
    assert_eq!(w(&mut c, LAN2, 61002), 11_152 / 2);
    // A second later nothing is active: the whole budget (a new burst is bounded too).
    let later = Instant::from_secs(12);
    assert_eq!(c.active_downloads(later), 0);
    let mut a = segment(MASQ, 61000, REMOTE, 80, F_ACK, 65535, &[], 0);
    c.clamp_outbound(later, LAN, &mut a);
    assert_eq!(window(&a), 11_152);
    // The floor is per host: ten downloads of one host split it (20 packets of 1000 bytes
    // against a budget of 11 152), at least MIN_FLOW_WINDOW each.
    let mut c = WindowClamp::new(WindowConfig {
        min_packets: 20,
        ..cfg
    });
    for mport in 61000..61010 {
        let mut syn = segment(MASQ, mport, REMOTE, 80, F_SYN, 64240, &[], 0);
        c.clamp_outbound(T0, LAN, &mut syn);
        c.observe_inbound(T0, &segment(REMOTE, 80, MASQ, mport, F_ACK, 65535, &[], 10));
    }
    assert_eq!(w(&mut c, LAN, 61000), 2000);
    for mport in 61010..61200 {
        let mut syn = segment(MASQ, mport, REMOTE, 80, F_SYN, 64240, &[], 0);
        c.clamp_outbound(T0, LAN, &mut syn);
        c.observe_inbound(T0, &segment(REMOTE, 80, MASQ, mport, F_ACK, 65535, &[], 10));
    }
    assert_eq!(u32::from(w(&mut c, LAN, 61000)), MIN_FLOW_WINDOW);
}

#[test]
fn a_host_with_eight_downloads_gets_the_window_of_a_host_with_one() {
    // link-bench `dshares` at 115200 baud with the shipped sizing: LAN downloads on one
    // connection, LAN2 on eight. The ISP's queue serves bytes in the order they were sent, so
    // the hosts' shares follow their windows' sums: those must be equal (they were 2 920
    // against 8 × 2 920 with a floor per flow).
    let mut c = WindowClamp::new(WindowConfig::for_rate(11_520));
    let conns: Vec<(Ipv4Addr, u16)> = std::iter::once((LAN, 61000))
        .chain((61001..61009).map(|p| (LAN2, p)))
        .collect();
    for &(host, mport) in &conns {
        let mut syn = segment(MASQ, mport, REMOTE, 80, F_SYN, 64240, &[], 0);
        c.clamp_outbound(T0, host, &mut syn);
        c.observe_inbound(
            T0,
            &segment(REMOTE, 80, MASQ, mport, F_ACK, 65535, &[], 1000),
        );
    }
    let mut sums = [0u32; 2];
    for &(host, mport) in &conns {
        let mut a = segment(MASQ, mport, REMOTE, 80, F_ACK, 65535, &[], 0);
        c.clamp_outbound(T0, host, &mut a);
        sums[usize::from(host == LAN2)] += u32::from(window(&a));
    }
    assert_eq!(sums[0], 2920);
    // 2920 / 8 = 365 each (window fields are in bytes here: no scaling without SYN options).
    assert_eq!(sums[1], 8 * 365);
    // Together 5 840 bytes in flight, two floors; not the 26 KB of nine floors.
    assert!(sums[0] + sums[1] <= 2 * WindowConfig::for_rate(11_520).floor());
}

#[test]
fn a_port_forwarded_connection_learns_its_shift_from_the_lan_syn_ack() {
    let mut c = clamp();
    // Remote SYN with shift 6, LAN SYN-ACK with shift 5: the LAN's windows scale by 32.
    c.observe_inbound(T0, &inb(F_SYN, &ws(6), 0));
    let mut sa = out(F_SYN_ACK, 65535, &ws(5));
    assert_eq!(
        c.clamp_outbound(T0, LAN, &mut sa).map(|r| r.new),
        Some(4072)
    );
    let mut ack = out(F_ACK, 2000, &[]);
    assert_eq!(
        c.clamp_outbound(T0, LAN, &mut ack).map(|r| r.new),
        Some(128)
    );
}

/// Outbound segments with any options layout, shifts, windows and flags.
fn any_segment() -> impl Strategy<Value = (Vec<u8>, u16)> {
    (
        proptest::collection::vec(any::<u8>(), 0..40),
        any::<u16>(),
        any::<u16>(),
        0usize..64,
    )
        .prop_map(|(mut opts, flags, window, payload)| {
            opts.truncate(opts.len() / 4 * 4);
            let flags = flags & 0x1ff;
            (out_with(flags, window, &opts, payload), window)
        })
}

fn out_with(flags: u16, window: u16, opts: &[u8], payload: usize) -> Vec<u8> {
    segment(MASQ, 61000, REMOTE, 80, flags, window, opts, payload)
}

proptest! {
    /// Whatever the handshake and segment: the window never grows, only the window and
    /// checksum bytes change, the checksum stays valid (the incremental update equals a full
    /// recompute), and a lowered window is exactly the share in units of the LAN's shift.
    #[test]
    fn clamp_never_raises_and_keeps_the_checksum(
        lan in proptest::option::of(0u8..20),
        remote in proptest::option::of(0u8..20),
        (seg, win) in any_segment(),
        rate in 1u64..1_000_000,
    ) {
        let mut c = WindowClamp::new(WindowConfig::for_rate(rate));
        handshake(&mut c, lan, remote);
        let mut p = seg.clone();
        let r = c.clamp_outbound(T0, LAN, &mut p);
        prop_assert!(window(&p) <= win);
        prop_assert!(tcp_sum_ok(&p));
        for (i, (a, b)) in seg.iter().zip(p.iter()).enumerate() {
            if !(34..38).contains(&i) {
                prop_assert_eq!(a, b, "byte {} changed", i);
            }
        }
        // Full recompute of the clamped segment equals the incremental result.
        let mut full = p.clone();
        tcp::Packet::new_unchecked(&mut full[20..]).fill_checksum(MASQ, REMOTE);
        prop_assert_eq!(&full, &p);
        match r {
            Some(Clamped { old, new }) => {
                prop_assert_eq!(old, win);
                prop_assert!(new < old);
                prop_assert_eq!(new, window(&p));
            }
            None => prop_assert_eq!(&p, &seg),
        }
        // The expected limit for a plain ACK after the handshake.
        let flags = u16::from_be_bytes([seg[32], seg[33]]) & 0x1ff;
        if flags & (F_SYN | F_RST) == 0 && flags & F_ACK != 0 {
            let shift = match (lan, remote) {
                (Some(l), Some(_)) => u32::from(l.min(14)),
                _ => 0,
            };
            let share = c.config().budget().max(c.config().floor());
            let limit = share.div_ceil(1 << shift).clamp(1, 0xffff) as u16;
            prop_assert_eq!(window(&p), win.min(limit));
        }
    }

    /// Anything that is not a TCP segment (any protocol byte but 6, random contents) passes
    /// unchanged, and random bytes never panic.
    #[test]
    fn non_tcp_and_garbage_untouched(mut bytes in proptest::collection::vec(any::<u8>(), 0..80), p in any::<u8>()) {
        let mut c = clamp();
        if bytes.len() > 9 && p != proto::TCP {
            bytes[9] = p;
            let before = bytes.clone();
            c.observe_inbound(T0, &bytes);
            prop_assert_eq!(c.clamp_outbound(T0, LAN, &mut bytes), None);
            prop_assert_eq!(&bytes, &before);
        } else {
            c.observe_inbound(T0, &bytes);
            let _ = c.clamp_outbound(T0, LAN, &mut bytes);
        }
    }
}

#[test]
fn engine_clamps_lan_acks_after_masquerading_once_on() {
    use crate::{Action, Engine, EngineConfig};
    let mut e = Engine::new(EngineConfig::default());
    e.firewall_mut()
        .set_policy("forward", "MASQ")
        .expect("legal policy");
    e.set_masq_address(Some(MASQ));
    e.set_download_window(Some(WindowConfig::for_rate(11_520)));
    // LAN SYN with shift 7: its window (unscaled) is clamped after masquerading.
    let mut syn = segment(LAN, 40000, REMOTE, 80, F_SYN, 64240, &ws(7), 0);
    assert_eq!(e.process_from_lan(T0, &mut syn), Action::ToLink);
    assert_eq!(&syn[12..16], &MASQ.octets());
    assert_eq!(window(&syn), 4072);
    assert!(tcp_sum_ok(&syn));
    let mport = u16::from_be_bytes([syn[20], syn[21]]);
    // The remote's SYN-ACK with shift 8 goes through untouched (only observed).
    let mut sa = segment(REMOTE, 80, MASQ, mport, F_SYN_ACK, 65535, &ws(8), 0);
    assert_eq!(e.process_from_link(T0, &mut sa), Action::ToLan);
    assert_eq!(window(&sa), 65535);
    // The LAN host's ACKs: 4072 bytes in units of 128.
    let mut ack = segment(LAN, 40000, REMOTE, 80, F_ACK, 502, &[], 0);
    assert_eq!(e.process_from_lan(T0, &mut ack), Action::ToLink);
    assert_eq!(window(&ack), 32);
    assert!(tcp_sum_ok(&ack));
    // Off: untouched.
    e.set_download_window(None);
    let mut ack = segment(LAN, 40000, REMOTE, 80, F_ACK, 502, &[], 0);
    assert_eq!(e.process_from_lan(T0, &mut ack), Action::ToLink);
    assert_eq!(window(&ack), 502);
}
