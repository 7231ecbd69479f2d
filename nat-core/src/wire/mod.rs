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

/// IP protocol numbers used by the engine.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}
