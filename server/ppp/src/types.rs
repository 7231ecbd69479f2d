//! The public value types of a link apart from the engine: sides, phases, events, why a link
//! went down, counters and the negotiated options. Owns their wording (`Display`); must not
//! hold link state.

use std::fmt;
use std::net::Ipv4Addr;

use crate::{ipcp, options};

/// Which end of the link we are (not called `Role`: that is a user's role in the server's
/// configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The gateway dialling out: authenticates itself, takes the address it is given.
    Client,
    /// The ISP's access server: authenticates the peer, assigns its address.
    AccessServer,
}

/// Authentication protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// Password Authentication Protocol (RFC 1334), 0xC023.
    Pap,
    /// Challenge-Handshake Authentication Protocol with MD5 (RFC 1994), 0xC223 algorithm 5.
    Chap,
}

impl fmt::Display for AuthProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthProtocol::Pap => "PAP",
            AuthProtocol::Chap => "CHAP-MD5",
        })
    }
}

/// Result of one authentication exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authenticated; the authenticator learns the peer's name.
    Ok {
        /// Name the peer gave (PAP peer-id / CHAP name), if known.
        peer_name: Option<String>,
    },
    /// Refused or timed out, with a human message.
    Failed(String),
}

/// PPP phases (RFC 1661 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No link.
    Dead,
    /// LCP negotiating.
    Establish,
    /// PAP/CHAP running.
    Authenticate,
    /// NCPs (IPCP) negotiating or open.
    Network,
    /// LCP terminating.
    Terminate,
}

/// Why a link finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We closed it ([`Ppp::close`](crate::Ppp::close)) with this reason.
    LocalClose(String),
    /// The peer sent Terminate-Request (with its data as text).
    PeerTerminated(String),
    /// No Echo-Reply to `echo_failures` Echo-Requests.
    EchoTimeout,
    /// LCP or IPCP did not converge, or the peer went silent during negotiation.
    NegotiationFailed(String),
    /// Authentication failed (either direction).
    AuthFailed(String),
    /// Our own magic number kept coming back: the line is looped back.
    LoopbackDetected,
    /// The lower layer (carrier) went away.
    LowerDown,
    /// IPCP could not bring IPv4 up (the option or packet that decided it is named).
    Ipcp(ipcp::IpcpFailure),
    /// The peer wants to authenticate us with PAP, which sends the password in clear, and
    /// would not take CHAP-MD5 instead; PAP fallback is not allowed
    /// ([`PppConfig::pap_fallback`](crate::PppConfig::pap_fallback)). No PAP packet was sent.
    PapRefused {
        /// Configure-Naks we sent proposing CHAP-MD5.
        naks: u32,
        /// How the peer answered the last of them.
        peer: PapRefusal,
    },
}

/// How a peer that asked PAP answered our Nak proposing CHAP-MD5 ([`DownReason::PapRefused`](crate::DownReason::PapRefused)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PapRefusal {
    /// It kept asking PAP until Max-Failure; we Configure-Rejected the option and closed.
    Insisted,
    /// It terminated the link instead (during negotiation, or after dropping authentication,
    /// as pppd with `require-pap` does: "peer refused to authenticate").
    Terminated,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::LocalClose(r) => write!(f, "closed locally: {r}"),
            DownReason::PeerTerminated(r) => write!(f, "terminated by peer: {r}"),
            DownReason::EchoTimeout => f.write_str("peer stopped answering LCP echo requests"),
            DownReason::NegotiationFailed(r) => write!(f, "negotiation failed: {r}"),
            DownReason::AuthFailed(r) => write!(f, "authentication failed: {r}"),
            DownReason::LoopbackDetected => {
                f.write_str("line is looped back (our magic number came back)")
            }
            DownReason::LowerDown => f.write_str("carrier lost"),
            DownReason::Ipcp(e) => write!(f, "negotiation failed: {e}"),
            DownReason::PapRefused { naks, peer } => {
                let how = match peer {
                    PapRefusal::Insisted => "kept asking PAP",
                    PapRefusal::Terminated => "terminated the link",
                };
                write!(
                    f,
                    "peer insists on PAP, which sends the password in clear: we proposed \
                     CHAP-MD5 {naks} time{} and it {how}; PAP fallback is not allowed",
                    if *naks == 1 { "" } else { "s" }
                )
            }
        }
    }
}

/// What the link reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PppEvent {
    /// LCP opened.
    LcpUp {
        /// The peer's MRU (largest packet we may send).
        peer_mru: u16,
        /// Authentication in use on this link (ours of the peer, or the peer's of us).
        auth: Option<AuthProtocol>,
    },
    /// Authentication finished successfully (or was not required).
    AuthOk {
        /// Protocol used, `None` if no authentication took place.
        protocol: Option<AuthProtocol>,
        /// Name the peer authenticated as / the authenticator's name (CHAP).
        peer_name: Option<String>,
    },
    /// Authentication failed; a `Down` follows.
    AuthFailed {
        /// Human reason (never contains a password).
        message: String,
    },
    /// IPCP opened: addresses and DNS are known, IPv4 flows.
    IpcpUp {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        peer: Ipv4Addr,
        /// DNS servers the peer gave us (client) or we gave (server: empty).
        dns: Vec<Ipv4Addr>,
    },
    /// An IPv4 datagram from the peer.
    Ipv4(Vec<u8>),
    /// The link finished; the driver should hang up.
    Down {
        /// Why.
        reason: DownReason,
    },
}

/// Errors of [`Ppp::send_ipv4`](crate::Ppp::send_ipv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// IPCP is not open, so no datagram may be sent (RFC 1661 §3.5).
    NotOpen,
    /// The transmit queue holds `tx_queue_limit` frames already; drain `poll_transmit` first.
    QueueFull,
    /// The datagram exceeds the peer's MRU.
    TooLarge {
        /// Datagram length.
        len: usize,
        /// Peer's MRU.
        mru: u16,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotOpen => f.write_str("IPCP is not open"),
            SendError::QueueFull => f.write_str("transmit queue full"),
            SendError::TooLarge { len, mru } => {
                write!(f, "datagram of {len} bytes exceeds the peer's MRU {mru}")
            }
        }
    }
}

impl std::error::Error for SendError {}

/// Counters for `cinfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PppStats {
    /// Good frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Line bytes received.
    pub bytes_in: u64,
    /// Line bytes sent.
    pub bytes_out: u64,
    /// Frames dropped for a bad FCS.
    pub fcs_errors: u64,
    /// Frames dropped for exceeding the MRU.
    pub too_long: u64,
    /// Frames aborted or shorter than an FCS.
    pub aborted: u64,
    /// Good frames dropped (bad header, wrong phase, malformed packet, unknown protocol).
    pub discarded: u64,
    /// LCP packets in/out.
    pub lcp_in: u64,
    /// LCP packets sent.
    pub lcp_out: u64,
    /// PAP/CHAP packets received.
    pub auth_in: u64,
    /// PAP/CHAP packets sent.
    pub auth_out: u64,
    /// IPCP packets received.
    pub ipcp_in: u64,
    /// IPCP packets sent.
    pub ipcp_out: u64,
    /// IPv4 datagrams received.
    pub ipv4_in: u64,
    /// IPv4 datagrams sent.
    pub ipv4_out: u64,
    /// IPv4 payload bytes received.
    pub ipv4_bytes_in: u64,
    /// IPv4 payload bytes sent.
    pub ipv4_bytes_out: u64,
    /// Protocol-Rejects we sent for unknown protocols.
    pub protocol_rejects: u64,
    /// Echo-Requests sent.
    pub echo_requests: u64,
    /// Echo-Replies received.
    pub echo_replies: u64,
}

/// Negotiated options for `cinfo` (defaults before LCP/IPCP open).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NegotiatedOptions {
    /// Our MRU as acked by the peer.
    pub local_mru: u16,
    /// The peer's MRU (our send limit).
    pub peer_mru: u16,
    /// ACCM we escape by when sending (the peer's).
    pub tx_accm: u32,
    /// ACCM the peer escapes by towards us (ours).
    pub rx_accm: u32,
    /// Our magic number.
    pub local_magic: u32,
    /// The peer's magic number.
    pub peer_magic: u32,
    /// We send compressed protocol fields.
    pub tx_pfc: bool,
    /// We send without address/control fields.
    pub tx_acfc: bool,
    /// The peer may send compressed protocol fields.
    pub rx_pfc: bool,
    /// The peer may omit address/control fields.
    pub rx_acfc: bool,
    /// We send FCS-32.
    pub tx_fcs32: bool,
    /// The peer sends FCS-32.
    pub rx_fcs32: bool,
    /// Authentication we demanded of the peer.
    pub auth_of_peer: Option<AuthProtocol>,
    /// Authentication the peer demanded of us.
    pub auth_by_peer: Option<AuthProtocol>,
    /// Name the peer authenticated with.
    pub peer_name: Option<String>,
    /// Our IPv4 address (IPCP).
    pub local_ip: Option<Ipv4Addr>,
    /// The peer's IPv4 address (IPCP).
    pub peer_ip: Option<Ipv4Addr>,
    /// DNS servers from IPCP.
    pub dns: Vec<Ipv4Addr>,
    /// LCP options Nak'd or Rejected in the last LCP negotiation, both directions.
    pub lcp_refused: Vec<options::Refusal>,
    /// The peer insisted on PAP after our Nak proposing CHAP-MD5 and PAP was taken
    /// ([`PppConfig::pap_fallback`](crate::PppConfig::pap_fallback)): the password crossed the line in clear.
    pub pap_fallback: bool,
    /// IPCP options Nak'd or Rejected in the last IPCP negotiation, both directions.
    pub ipcp_refused: Vec<options::Refusal>,
}
