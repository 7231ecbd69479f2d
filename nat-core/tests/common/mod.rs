//! Shared by nat-core's integration tests: packet builders and checks written without
//! `nat_core::wire` (raw RFC 791/793/768/792 offsets, RFC 1071 sums from the definition), so
//! that they verify the engine's output independently of its own views and checksum code.
#![allow(dead_code)]

use nat_core::masq::MasqConfig;
use nat_core::{Engine, EngineConfig};
use std::net::Ipv4Addr;

pub const LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
pub const GW_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
pub const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

pub const ICMP: u8 = 1;
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// The engine the tests use: forward policy MASQ, masquerade address [`MASQ`].
pub fn engine_with(masq: MasqConfig) -> Engine {
    let mut e = Engine::new(EngineConfig {
        masq,
        lan_iface: "eth0".into(),
        link_iface: "ppp0".into(),
        local_addrs: vec![GW_LAN],
        ..EngineConfig::default()
    });
    e.firewall_mut()
        .set_policy("forward", "MASQ")
        .expect("MASQ is a legal forward policy");
    e.set_masq_address(Some(MASQ));
    e
}

/// RFC 1071 over several byte strings taken as one, odd tail padded with a zero byte, folded.
pub fn sum16(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut sum: u64 = 0;
    for pair in bytes.chunks(2) {
        let hi = u64::from(pair[0]);
        let lo = pair.get(1).map_or(0, |&b| u64::from(b));
        sum += (hi << 8) | lo;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// The checksum to store for `parts` (checksum field zero): the complement of the sum.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    !sum16(parts)
}

/// The TCP/UDP pseudo header.
pub fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = proto;
    p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    p
}

pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// IPv4 header length from the IHL field.
pub fn ihl(b: &[u8]) -> usize {
    usize::from(b[0] & 0x0F) * 4
}

/// An IPv4 header (`opts` appended, padded to 4 bytes) for `payload` bytes, checksum filled.
pub fn ip_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, opts: &[u8], payload: usize) -> Vec<u8> {
    let olen = opts.len().div_ceil(4) * 4;
    let hl = 20 + olen;
    let mut b = vec![0u8; hl + payload];
    b[0] = 0x40 | (hl / 4) as u8;
    b[2..4].copy_from_slice(&((hl + payload) as u16).to_be_bytes());
    b[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    b[6] = 0x40; // DF
    b[8] = 64;
    b[9] = proto;
    b[12..16].copy_from_slice(&src.octets());
    b[16..20].copy_from_slice(&dst.octets());
    b[20..20 + opts.len()].copy_from_slice(opts);
    let c = checksum(&[&b[..hl]]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    b
}

/// A UDP datagram; `zero_csum` sends it without a checksum (RFC 768).
pub fn udp(
    src: Ipv4Addr,
    sp: u16,
    dst: Ipv4Addr,
    dp: u16,
    data: &[u8],
    zero_csum: bool,
) -> Vec<u8> {
    let mut b = ip_header(src, dst, UDP, &[], 8 + data.len());
    let u = &mut b[20..];
    u[0..2].copy_from_slice(&sp.to_be_bytes());
    u[2..4].copy_from_slice(&dp.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u[8..].copy_from_slice(data);
    if !zero_csum {
        let c = checksum(&[&pseudo(src, dst, UDP, u.len()), u]);
        u[6..8].copy_from_slice(&(if c == 0 { 0xFFFF } else { c }).to_be_bytes());
    }
    b
}

/// A TCP segment with `opts` (padded to 4 bytes) after the fixed header.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: Ipv4Addr,
    sp: u16,
    dst: Ipv4Addr,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    opts: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let olen = opts.len().div_ceil(4) * 4;
    let thl = 20 + olen;
    let mut b = ip_header(src, dst, TCP, &[], thl + data.len());
    let t = &mut b[20..];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12..14].copy_from_slice(&((((thl / 4) as u16) << 12) | (flags & 0x1FF)).to_be_bytes());
    t[14..16].copy_from_slice(&8192u16.to_be_bytes());
    t[20..20 + opts.len()].copy_from_slice(opts);
    t[thl..].copy_from_slice(data);
    let c = checksum(&[&pseudo(src, dst, TCP, t.len()), t]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    b
}

/// An ICMP query (echo request 8, timestamp 13, …) or reply with identifier and sequence.
pub fn icmp_query(src: Ipv4Addr, dst: Ipv4Addr, ty: u8, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut b = ip_header(src, dst, ICMP, &[], 8 + data.len());
    let m = &mut b[20..];
    m[0] = ty;
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    m[8..].copy_from_slice(data);
    let c = checksum(&[m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    b
}

/// An ICMP error `ty`/`code` with rest-of-header word `rest`, quoting `quote`.
pub fn icmp_error(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ty: u8,
    code: u8,
    rest: u32,
    quote: &[u8],
) -> Vec<u8> {
    let mut b = ip_header(src, dst, ICMP, &[], 8 + quote.len());
    let m = &mut b[20..];
    m[0] = ty;
    m[1] = code;
    m[4..8].copy_from_slice(&rest.to_be_bytes());
    m[8..].copy_from_slice(quote);
    let c = checksum(&[m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    b
}

/// Header checksum of the IPv4 header at the start of `b` is valid.
pub fn ip_header_ok(b: &[u8]) -> bool {
    b.len() >= 20 && b.len() >= ihl(b) && sum16(&[&b[..ihl(b)]]) == 0xFFFF
}

/// The TCP/UDP/ICMP checksum of a complete transport payload `t` is valid (UDP 0 = none).
pub fn transport_ok(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, t: &[u8]) -> bool {
    match proto {
        UDP if t.len() >= 8 && be16(t, 6) == 0 => true,
        UDP | TCP => sum16(&[&pseudo(src, dst, proto, t.len()), t]) == 0xFFFF,
        ICMP => sum16(&[t]) == 0xFFFF,
        _ => true,
    }
}

/// Every checksum of a whole datagram, and for an ICMP error also of the quoted datagram's IP
/// header and (when the quote holds all of it) its transport checksum. `Err` names the first
/// bad one.
pub fn all_checksums_ok(b: &[u8]) -> Result<(), String> {
    if b.len() < 20 || b[0] >> 4 != 4 || ihl(b) < 20 {
        return Err("not an IPv4 datagram".into());
    }
    let hl = ihl(b);
    let tl = usize::from(be16(b, 2));
    if tl < hl || tl > b.len() {
        return Err("bad IPv4 lengths".into());
    }
    if !ip_header_ok(b) {
        return Err("outer IP header checksum".into());
    }
    let (src, dst, proto) = (addr(b, 12), addr(b, 16), b[9]);
    if be16(b, 6) & 0x3FFF != 0 {
        return Err("a fragment: transport checksum not checkable".into());
    }
    if (proto == UDP && (hl + 8 > tl || hl + usize::from(be16(b, hl + 4)) != tl))
        || (proto == TCP && hl + 20 > tl)
        || (proto == ICMP && hl + 8 > tl)
    {
        return Err("truncated transport header".into());
    }
    let t = &b[hl..tl];
    if !transport_ok(src, dst, proto, t) {
        return Err(format!("protocol {proto} checksum"));
    }
    if proto == ICMP && matches!(t[0], 3 | 4 | 11 | 12) && t.len() >= 8 + 20 {
        let q = &t[8..];
        if q[0] >> 4 != 4 || ihl(q) < 20 || ihl(q) > q.len() {
            return Err("quoted datagram is not IPv4".into());
        }
        if !ip_header_ok(q) {
            return Err("quoted IP header checksum".into());
        }
        let qhl = ihl(q);
        let qtl = usize::from(be16(q, 2));
        let qp = q[9];
        let whole = qtl <= q.len()
            && qhl <= qtl
            && be16(q, 6) & 0x3FFF == 0
            && match qp {
                UDP => qhl + 8 <= qtl && qhl + usize::from(be16(q, qhl + 4)) == qtl,
                TCP => qhl + 20 <= qtl,
                ICMP => qhl + 8 <= qtl,
                _ => false,
            };
        if whole {
            let (qs, qd, qp) = (addr(q, 12), addr(q, 16), q[9]);
            if !transport_ok(qs, qd, qp, &q[qhl..qtl]) {
                return Err(format!("quoted protocol {qp} checksum"));
            }
        }
    }
    Ok(())
}

/// (source, destination, source port or ICMP id, destination port or 0) of a datagram.
pub fn endpoints(b: &[u8]) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    let hl = ihl(b);
    let t = &b[hl..];
    let (sp, dp) = match b[9] {
        TCP | UDP => (be16(t, 0), be16(t, 2)),
        _ => (be16(t, 4), 0),
    };
    (addr(b, 12), addr(b, 16), sp, dp)
}
