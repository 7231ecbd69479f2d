//! Zero-copy wire views (smoltcp style) for IPv4, TCP, UDP and ICMP, plus checksums. Owns parsing
//! and field access only; must not keep state or decide anything about packets.
//!
//! Every `Packet::new_checked` validates lengths once; after it succeeds no accessor panics.

pub mod checksum;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;

/// Why a byte sequence was rejected by a wire view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header (or the length a header field claims).
    #[error("truncated packet")]
    Truncated,
    /// A header field has an impossible value (bad version, header length below minimum, …).
    #[error("malformed header")]
    Malformed,
}

/// The port pair at the start of a TCP or UDP header (both put the source then the destination
/// port in their first 4 bytes), read from as little as those 4 bytes, e.g. the 8 bytes an ICMP
/// error quotes. `None` for another protocol or fewer than 4 bytes.
#[inline]
pub fn ports(protocol: u8, transport: &[u8]) -> Option<(u16, u16)> {
    if transport.len() < 4 {
        return None;
    }
    match protocol {
        proto::TCP => {
            let t = tcp::Packet::new_unchecked(transport);
            Some((t.src_port(), t.dst_port()))
        }
        proto::UDP => {
            let u = udp::Packet::new_unchecked(transport);
            Some((u.src_port(), u.dst_port()))
        }
        _ => None,
    }
}

/// IP protocol numbers used by the engine.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}
