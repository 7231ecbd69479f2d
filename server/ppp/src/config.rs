//! The link configuration ([`PppConfig`]) with its client and access-server presets. Owns
//! the defaults; must not hold link state.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::fsm::FsmConfig;
use crate::ipcp;

use crate::{AuthProtocol, Side};

/// Link configuration. Build with [`PppConfig::client`](crate::PppConfig::client) or [`PppConfig::access_server`](crate::PppConfig::access_server) and
/// adjust fields.
#[derive(Clone, PartialEq, Eq)]
pub struct PppConfig {
    /// Which end we are.
    pub side: Side,
    /// Our name (client: PAP peer-id / CHAP name; server: CHAP authenticator name).
    pub user: String,
    /// Our password / CHAP secret (client).
    pub password: String,
    /// Authenticatee protocols we accept, in preference order (client). With both CHAP-MD5
    /// and PAP, a peer asking PAP gets a Configure-Nak proposing CHAP-MD5 first.
    pub accept_auth: Vec<AuthProtocol>,
    /// Client with both CHAP-MD5 and PAP in `accept_auth`: take PAP if the peer asks it again
    /// after our Nak. Off (the default): keep proposing CHAP-MD5 until Max-Failure, then end
    /// the link with [`DownReason::PapRefused`](crate::DownReason::PapRefused) without ever sending the password.
    pub pap_fallback: bool,
    /// Access server: ask the same Auth-Protocol again after the peer Naks it (an imitation
    /// of access servers that insist on PAP, for tests); off takes the peer's suggestion when
    /// it is in `require_auth`.
    pub insist_auth: bool,
    /// Authentication we demand, in preference order (access server; empty = none).
    pub require_auth: Vec<AuthProtocol>,
    /// (name, secret) pairs we accept (access server).
    pub users: Vec<(String, String)>,
    /// Our IPv4 address; 0.0.0.0 asks the peer for one.
    pub local_address: Ipv4Addr,
    /// The peer's address: the one we assign (access server) or insist on (client); `None`
    /// takes the peer's, or gives [`ipcp::DEFAULT_PEER_ADDRESS`] to a peer that asks 0.0.0.0
    /// or names none.
    pub peer_address: Option<Ipv4Addr>,
    /// Take the address the peer Naks for us even when `local_address` is set.
    pub accept_local: bool,
    /// Let the peer keep the address it asks even when `peer_address` is set.
    pub accept_remote: bool,
    /// Networks no negotiated address may fall in (the server's LANs and allow-list networks);
    /// loopback, multicast, broadcast, reserved and 0.0.0.0 are always refused.
    pub refused_networks: Vec<ipcp::Ipv4Network>,
    /// DNS servers handed out (access server, up to two).
    pub dns: Vec<Ipv4Addr>,
    /// Ask the peer for DNS servers (client, RFC 1877).
    pub request_dns: bool,
    /// Send our IP-Address option (RFC 1332 §3.3). Off only to imitate an access server that
    /// never names its own address (the peer then picks one for it locally).
    pub request_address: bool,
    /// Our MRU.
    pub mru: u16,
    /// Our receive ACCM (0 = no control characters escaped towards us).
    pub accm: u32,
    /// Negotiate Protocol-Field-Compression.
    pub pfc: bool,
    /// Negotiate Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// Negotiate FCS-32 (RFC 1570).
    pub fcs32: bool,
    /// Restart timer and counters for LCP and IPCP.
    pub fsm: FsmConfig,
    /// LCP Echo-Request interval; `None` disables keepalive.
    pub echo_interval: Option<Duration>,
    /// Unanswered Echo-Requests that declare the link dead.
    pub echo_failures: u32,
    /// Longest the Authenticate phase may take.
    pub auth_timeout: Duration,
    /// CHAP rechallenge interval (access server).
    pub chap_rechallenge: Option<Duration>,
    /// Maximum frames waiting in the transmit queue for `send_ipv4`.
    pub tx_queue_limit: usize,
    /// Seed of the magic numbers and the CHAP challenges. This crate reads no random source:
    /// the caller draws the seed (mserver's modem driver and the simulator from the OS random
    /// source) and tests pass fixed ones. Challenges are MD5 of the seed and a counter, so
    /// they are unpredictable while the seed is.
    pub seed: u64,
}

impl fmt::Debug for PppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Passwords are never printed.
        f.debug_struct("PppConfig")
            .field("side", &self.side)
            .field("user", &self.user)
            .field("accept_auth", &self.accept_auth)
            .field("pap_fallback", &self.pap_fallback)
            .field("insist_auth", &self.insist_auth)
            .field("require_auth", &self.require_auth)
            .field(
                "users",
                &self.users.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .field("local_address", &self.local_address)
            .field("peer_address", &self.peer_address)
            .field("accept_local", &self.accept_local)
            .field("accept_remote", &self.accept_remote)
            .field("refused_networks", &self.refused_networks)
            .field("dns", &self.dns)
            .field("mru", &self.mru)
            .field("accm", &format_args!("{:#010x}", self.accm))
            .field("pfc", &self.pfc)
            .field("acfc", &self.acfc)
            .field("fcs32", &self.fcs32)
            .field("fsm", &self.fsm)
            .field("echo_interval", &self.echo_interval)
            .field("echo_failures", &self.echo_failures)
            .finish_non_exhaustive()
    }
}

impl PppConfig {
    /// Gateway side: authenticate as `user`/`password` (PAP or CHAP-MD5), ask for an address
    /// and DNS, ACCM 0, PFC+ACFC, echo every 30 s with 4 failures (pppd's usual settings).
    #[must_use]
    pub fn client(user: &str, password: &str) -> Self {
        Self {
            side: Side::Client,
            user: user.into(),
            password: password.into(),
            accept_auth: vec![AuthProtocol::Chap, AuthProtocol::Pap],
            pap_fallback: false,
            insist_auth: false,
            require_auth: Vec::new(),
            users: Vec::new(),
            local_address: Ipv4Addr::UNSPECIFIED,
            peer_address: None,
            accept_local: false,
            accept_remote: false,
            refused_networks: Vec::new(),
            dns: Vec::new(),
            request_dns: true,
            request_address: true,
            mru: 1500,
            accm: 0,
            pfc: true,
            acfc: true,
            fcs32: false,
            fsm: FsmConfig::default(),
            echo_interval: Some(Duration::from_secs(30)),
            echo_failures: 4,
            auth_timeout: Duration::from_secs(30),
            chap_rechallenge: None,
            tx_queue_limit: 64,
            seed: 0,
        }
    }

    /// Access-server side: demand `auth` of the peer against `users` (name, secret), use `local`
    /// ourselves, assign `peer` and hand out `dns`.
    #[must_use]
    pub fn access_server(
        users: Vec<(String, String)>,
        auth: Option<AuthProtocol>,
        local: Ipv4Addr,
        peer: Ipv4Addr,
        dns: Vec<Ipv4Addr>,
    ) -> Self {
        Self {
            side: Side::AccessServer,
            user: "masqdial-isp".into(),
            password: String::new(),
            accept_auth: Vec::new(),
            require_auth: auth.into_iter().collect(),
            users,
            local_address: local,
            peer_address: Some(peer),
            dns,
            request_dns: false,
            request_address: true,
            ..Self::client("", "")
        }
    }
}
