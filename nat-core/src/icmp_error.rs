//! ICMP errors the engine sends back (Dest-Unreachable, Frag-Needed, Time-Exceeded): one
//! builder that quotes the offending datagram as RFC 1812 asks. A leaf below [`crate::engine`]
//! and [`crate::mtu`]: it imports only [`crate::wire`].

use std::net::Ipv4Addr;

use crate::wire::{icmp, ipv4, proto};

/// Build an ICMP error (type/code) from `from` to the sender of `orig`, quoting the original
/// IP header and as much of its data as fits in 576 bytes (RFC 1812 4.3.2.3).
pub fn build_icmp_error(from: Ipv4Addr, orig: &[u8], ty: u8, code: u8) -> Vec<u8> {
    const HEADERS: usize = ipv4::HEADER_LEN + icmp::HEADER_LEN;
    let o = ipv4::Packet::new_unchecked(orig);
    let quote = orig.len().min(576 - HEADERS);
    let mut out = vec![0u8; HEADERS + quote];
    let repr = ipv4::Repr {
        src_addr: from,
        dst_addr: o.src_addr(),
        protocol: proto::ICMP,
        payload_len: icmp::HEADER_LEN + quote,
        ttl: 64,
    };
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    let mut m = icmp::Packet::new_unchecked(&mut out[ipv4::HEADER_LEN..]);
    m.set_msg_type(ty);
    m.set_msg_code(code);
    m.set_rest(0);
    m.data_mut().copy_from_slice(&orig[..quote]);
    m.fill_checksum();
    out
}
