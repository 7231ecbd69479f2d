//! Userspace PPP (sans-IO): HDLC framing, LCP, PAP/CHAP, IPCP, in the client and access-server
//! roles. Owns the protocol state of one link; it must not do I/O, read a clock or log — callers
//! feed line bytes and `now`, and drain `poll_*` in this order: `poll_transmit` until `None`,
//! `poll_event` until `None`, then arm a timer at `poll_timeout`. Everything worth logging is a
//! [`PppEvent`] or a [`DownReason`]; the driver logs those.
//!
//! Depends on std and md-5 (CHAP) only, so it builds and is fuzzed without the server.
//!
//! # Layout
//! - [`hdlc`]: RFC 1662 framing, FCS-16/32, the byte-wise decoder.
//! - [`fsm`]: the RFC 1661 option-negotiation automaton shared by LCP and IPCP.
//! - [`options`]: the option TLV syntax.
//! - [`lcp`], [`ipcp`]: option values of each control protocol.
//! - [`pap`], [`chap`]: authentication in both roles.

pub mod chap;
pub mod fsm;
pub mod hdlc;
pub mod ipcp;
pub mod lcp;
pub mod options;
pub mod pap;

mod auth;
mod config;
mod types;

use auth::{AuthCheck, AuthSide};
pub use config::PppConfig;
pub use types::{
    AuthOutcome, AuthProtocol, DownReason, NegotiatedOptions, PapRefusal, Phase, PppEvent,
    PppStats, SendError, Side,
};

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use fsm::{Fsm, LayerEvent, Packet, State};
use hdlc::{Decoder, Encoder};
/// Slack above the MRU accepted by the decoder: address, control, protocol and FCS-32.
const FRAME_OVERHEAD: usize = 8;

/// One PPP link.
pub struct Ppp {
    cfg: PppConfig,
    phase: Phase,
    decoder: Decoder,
    enc: Encoder,
    enc_lcp: Encoder,
    tx_acfc: bool,
    tx_pfc: bool,
    lcp: Fsm<lcp::Lcp>,
    ipcp: Fsm<ipcp::Ipcp>,
    auth_side: AuthSide,
    auth_check: AuthCheck,
    auth_deadline: Option<Instant>,
    auth_protocol: Option<AuthProtocol>,
    side_ok: bool,
    check_ok: bool,
    peer_name: Option<String>,
    echo_next: Option<Instant>,
    echo_outstanding: u32,
    tx: VecDeque<Vec<u8>>,
    events: VecDeque<PppEvent>,
    stats: PppStats,
    down_reason: Option<DownReason>,
    down_emitted: bool,
    ipcp_up: bool,
    rng: u64,
    /// The caller's seed: the key of the CHAP challenges.
    seed: u64,
    /// The peer Code-Rejected Echo-Request: no keepalive on this link.
    echo_rejected: bool,
}

impl fmt::Debug for Ppp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ppp")
            .field("side", &self.cfg.side)
            .field("phase", &self.phase)
            .field("lcp", &self.lcp.state())
            .field("ipcp", &self.ipcp.state())
            .finish_non_exhaustive()
    }
}

impl Ppp {
    /// A link in the Dead phase; call [`Ppp::open`] when the line is connected.
    #[must_use]
    pub fn new(config: PppConfig) -> Self {
        let seed = config.seed;
        let accept_auth = if config.side == Side::Client && !config.user.is_empty() {
            config.accept_auth.clone()
        } else {
            Vec::new()
        };
        let require_auth = if config.side == Side::AccessServer {
            config.require_auth.clone()
        } else {
            Vec::new()
        };
        let lcp_cfg = lcp::LcpConfig {
            mru: config.mru,
            accm: config.accm,
            pfc: config.pfc,
            acfc: config.acfc,
            fcs32: config.fcs32,
            magic: true,
            require_auth,
            accept_auth,
            pap_fallback: config.pap_fallback,
            insist_auth: config.insist_auth,
        };
        let ipcp_cfg = ipcp::IpcpConfig {
            local: config.local_address,
            assign: config.peer_address,
            accept_local: config.accept_local,
            accept_remote: config.accept_remote,
            request_dns: config.request_dns,
            request_address: config.request_address,
            dns: config.dns.iter().copied().take(2).collect(),
        };
        let max_rx = usize::from(config.mru.max(1500)) + FRAME_OVERHEAD;
        Self {
            phase: Phase::Dead,
            decoder: Decoder::new(max_rx),
            enc: Encoder::default(),
            enc_lcp: Encoder::default(),
            tx_acfc: false,
            tx_pfc: false,
            lcp: Fsm::new(lcp::Lcp::new(lcp_cfg, seed), config.fsm),
            ipcp: Fsm::new(ipcp::Ipcp::new(ipcp_cfg), config.fsm),
            auth_side: AuthSide::None,
            auth_check: AuthCheck::None,
            auth_deadline: None,
            auth_protocol: None,
            side_ok: false,
            check_ok: false,
            peer_name: None,
            echo_next: None,
            echo_outstanding: 0,
            tx: VecDeque::new(),
            events: VecDeque::new(),
            stats: PppStats::default(),
            down_reason: None,
            down_emitted: false,
            ipcp_up: false,
            rng: seed.rotate_left(17) | 1,
            seed,
            echo_rejected: false,
            cfg: config,
        }
    }

    /// Lower layer is up (modem said CONNECT): start LCP (RFC 1661 "Up" + "Open" events).
    pub fn open(&mut self, now: Instant) {
        self.down_emitted = false;
        self.down_reason = None;
        self.echo_rejected = false;
        self.phase = Phase::Establish;
        self.decoder.reset();
        self.lcp.open(now);
        self.lcp.up(now);
        self.process(now);
    }

    /// Administrative close: send Terminate-Request, finish with [`PppEvent::Down`].
    pub fn close(&mut self, now: Instant, reason: &str) {
        if self.down_reason.is_none() {
            self.down_reason = Some(DownReason::LocalClose(reason.into()));
        }
        self.lcp.close(now);
        self.process(now);
        if matches!(
            self.lcp.state(),
            State::Initial | State::Closed | State::Stopped
        ) {
            self.finish();
        } else {
            self.phase = Phase::Terminate;
        }
    }

    /// Lower layer gone (carrier lost): immediately Down.
    pub fn lower_down(&mut self, now: Instant) {
        if self.down_reason.is_none() {
            self.down_reason = Some(DownReason::LowerDown);
        }
        self.ipcp.down();
        self.lcp.down();
        self.lcp.close(now);
        self.process(now);
        self.tx.clear();
        self.finish();
    }

    fn finish(&mut self) {
        self.phase = Phase::Dead;
        self.echo_next = None;
        self.auth_deadline = None;
        self.ipcp_up = false;
        if !self.down_emitted {
            self.down_emitted = true;
            let reason = self.down_reason.take().unwrap_or_else(|| {
                DownReason::NegotiationFailed(
                    self.lcp
                        .neg
                        .failure
                        .clone()
                        .unwrap_or_else(|| "LCP: no agreement with the peer".into()),
                )
            });
            self.events.push_back(PppEvent::Down { reason });
        }
    }

    /// Raw bytes from the serial line (HDLC-framed, any chunking).
    pub fn handle_input(&mut self, now: Instant, mut bytes: &[u8]) {
        if self.down_emitted {
            // The session is over (Down was reported); a new one starts with `open`.
            return;
        }
        while !bytes.is_empty() && !self.down_emitted {
            let (n, ready) = self.decoder.decode(bytes);
            bytes = &bytes[n..];
            if ready {
                let frame = self.decoder.take_frame();
                self.handle_frame(now, &frame);
                self.decoder.recycle(frame);
                // Act on each frame before the next one: a phase change (LCP opened →
                // authentication → IPCP) must be in force for the frame that follows in
                // the same read, or that frame is dropped until a retransmission.
                self.process(now);
            }
        }
        let d = self.decoder.stats();
        self.stats.frames_in = d.frames;
        self.stats.bytes_in = d.bytes;
        self.stats.fcs_errors = d.fcs_errors;
        self.stats.too_long = d.too_long;
        self.stats.aborted = d.aborts + d.runts;
        self.process(now);
    }

    fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        // RFC 1662 §3: address 0xFF, control 0x03 — absent when ACFC is in use (accepted always).
        let f = match frame {
            [0xFF, 0x03, rest @ ..] => rest,
            [0xFF, ..] => {
                self.stats.discarded += 1;
                return;
            }
            other => other,
        };
        // RFC 1661 §2: protocol values are odd in the least significant octet; a one-octet
        // (PFC-compressed) field is recognised by its odd first octet.
        let (protocol, info) = match f {
            [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
            [hi, lo, rest @ ..] if lo & 1 == 1 => (u16::from_be_bytes([*hi, *lo]), rest),
            _ => {
                self.stats.discarded += 1;
                return;
            }
        };
        if protocol == lcp::PROTOCOL {
            self.stats.lcp_in += 1;
            self.handle_lcp(now, info);
            return;
        }
        // RFC 1661 §3.4: "Any non-LCP packets received during this phase MUST be silently discarded".
        if self.lcp.state() != State::Opened {
            self.stats.discarded += 1;
            return;
        }
        match protocol {
            pap::PROTOCOL | chap::PROTOCOL => {
                self.stats.auth_in += 1;
                let Some((code, id, data)) = Packet::parse(info) else {
                    self.stats.discarded += 1;
                    return;
                };
                match (&mut self.auth_side, &mut self.auth_check, protocol) {
                    (AuthSide::PapClient(c), _, pap::PROTOCOL) => c.handle_packet(code, id, data),
                    (_, AuthCheck::PapServer(s), pap::PROTOCOL) => s.handle_packet(code, id, data),
                    (AuthSide::ChapClient(c), _, chap::PROTOCOL) => {
                        c.handle_packet(now, code, id, data)
                    }
                    (_, AuthCheck::ChapServer(s), chap::PROTOCOL) => {
                        s.handle_packet(now, code, id, data)
                    }
                    _ => self.stats.discarded += 1,
                }
            }
            ipcp::PROTOCOL => {
                self.stats.ipcp_in += 1;
                // RFC 1661 §3.5: NCP packets before the Network phase are discarded.
                if self.phase != Phase::Network {
                    self.stats.discarded += 1;
                    return;
                }
                let Some((code, id, data)) = Packet::parse(info) else {
                    self.stats.discarded += 1;
                    return;
                };
                if let Err((c, i, d)) = self.ipcp.handle_packet(now, code, id, data) {
                    let max = usize::from(self.lcp.neg.peer.mru);
                    self.ipcp.unknown_code(c, i, d, max);
                }
                if code == fsm::TERMINATE_REQUEST {
                    // IPv4 is our only network protocol, so the link follows the peer's IPCP
                    // at once (pppd waits a restart period in Stopping, then closes LCP with
                    // "No network protocols running"); the Terminate-Ack goes out first.
                    self.ipcp_failed(now, ipcp::IpcpFailure::PeerTerminated(printable(data)));
                } else if let Some(f) = self.ipcp.neg.failure.clone() {
                    // A Reject/Nak we cannot live with (IP-Address refused): no point waiting
                    // for the Terminate exchange and a timeout.
                    self.ipcp_failed(now, f);
                }
            }
            ipcp::IPV4 => {
                if self.ipcp_up {
                    self.stats.ipv4_in += 1;
                    self.stats.ipv4_bytes_in += info.len() as u64;
                    self.events.push_back(PppEvent::Ipv4(info.to_vec()));
                } else {
                    self.stats.discarded += 1;
                }
            }
            _ => {
                // RFC 1661 §5.7: an unknown protocol gets a Protocol-Reject carrying the rejected
                // protocol and as much of the packet as fits the peer's MRU.
                self.stats.protocol_rejects += 1;
                let mut data = protocol.to_be_bytes().to_vec();
                let room = usize::from(self.lcp.neg.peer.mru).saturating_sub(6);
                data.extend_from_slice(&info[..info.len().min(room)]);
                let id = self.lcp.fresh_id();
                self.lcp.send_raw(lcp::PROTOCOL_REJECT, id, data);
            }
        }
    }

    fn handle_lcp(&mut self, now: Instant, info: &[u8]) {
        let Some((code, id, data)) = Packet::parse(info) else {
            self.stats.discarded += 1;
            return;
        };
        let mut close_for_pap = false;
        if code == fsm::TERMINATE_REQUEST
            && self.down_reason.is_none()
            && self.pap_refusal_pending()
        {
            // It asked PAP, we proposed CHAP-MD5, and it hangs up rather than authenticate
            // that way: name the cause, not just "terminated by peer".
            self.down_reason = Some(DownReason::PapRefused {
                naks: self.lcp.neg.pap_naks,
                peer: PapRefusal::Terminated,
            });
            close_for_pap = self.lcp.state() != State::Opened;
        }
        if code == fsm::TERMINATE_REQUEST
            && self.down_reason.is_none()
            && self.lcp.state() == State::Opened
        {
            self.down_reason = Some(DownReason::PeerTerminated(printable(data)));
        }
        let opened = self.lcp.state() == State::Opened;
        if code == fsm::CODE_REJECT && opened && data.first() == Some(&lcp::ECHO_REQUEST) {
            // The peer does not implement Echo (RFC 1661 §5.6: it MUST stop us sending the
            // code). Keepalive stops instead of timing out a working link; DCD and the modem's
            // NO CARRIER still end it.
            self.echo_next = None;
            self.echo_outstanding = 0;
            self.echo_rejected = true;
        }
        match self.lcp.handle_packet(now, code, id, data) {
            Ok(()) => {}
            Err((lcp::PROTOCOL_REJECT, _, d)) if opened => {
                let rejected = options::be16(d.get(..2).unwrap_or(&[]));
                match rejected {
                    Some(ipcp::PROTOCOL) | Some(ipcp::IPV4) => {
                        self.ipcp.rxj(now, false);
                        self.ipcp_failed(now, ipcp::IpcpFailure::ProtocolRejected);
                    }
                    Some(lcp::PROTOCOL) => self.lcp.rxj(now, false),
                    Some(pap::PROTOCOL) | Some(chap::PROTOCOL) => {
                        self.auth_failed("peer rejected the authentication protocol".into());
                        self.lcp.close(now);
                    }
                    _ => self.lcp.rxj(now, true),
                }
            }
            Err((lcp::ECHO_REQUEST, id, d)) if opened => {
                let local = self.lcp.neg.local.magic;
                if local != 0 && options::be32(d.get(..4).unwrap_or(&[])) == Some(local) {
                    // RFC 1661 §6.4: an Echo-Request with our own magic means a looped-back link.
                    self.lcp.neg.loopback_hits += 1;
                }
                let mut reply = local.to_be_bytes().to_vec();
                let room = usize::from(self.lcp.neg.peer.mru).saturating_sub(8);
                let rest = d.get(4..).unwrap_or(&[]);
                reply.extend_from_slice(&rest[..rest.len().min(room)]);
                self.lcp.send_raw(lcp::ECHO_REPLY, id, reply);
            }
            Err((lcp::ECHO_REPLY, _, _)) if opened => {
                self.stats.echo_replies += 1;
                self.echo_outstanding = 0;
            }
            Err((
                lcp::DISCARD_REQUEST
                | lcp::PROTOCOL_REJECT
                | lcp::ECHO_REQUEST
                | lcp::ECHO_REPLY
                | lcp::IDENTIFICATION
                | lcp::TIME_REMAINING,
                _,
                _,
            )) => {
                // Identification (12) and Time-Remaining (13) are informational (RFC 1570
                // §2.1-2.2: no reply is defined); pppd discards them too. Code-Rejecting them
                // would be legal, but some peers log it as an error.
                // RFC 1661 §5.7-5.9: silently discarded outside the Opened state.
                self.stats.discarded += 1;
            }
            Err((c, i, d)) => {
                let max = usize::from(self.lcp.neg.peer.mru);
                self.lcp.unknown_code(c, i, d, max);
            }
        }
        if self.lcp.neg.pap_refused && self.down_reason.is_none() {
            // Max-Failure Naks proposing CHAP-MD5 spent and the peer still asks PAP: our
            // Configure-Reject is queued; end the link rather than wait for the peer.
            self.down_reason = Some(DownReason::PapRefused {
                naks: self.lcp.neg.pap_naks,
                peer: PapRefusal::Insisted,
            });
            close_for_pap = true;
        }
        if close_for_pap {
            self.lcp.close(now);
        }
        if self.lcp.neg.loopback_hits > self.cfg.fsm.max_failure
            && self.down_reason != Some(DownReason::LoopbackDetected)
        {
            self.down_reason = Some(DownReason::LoopbackDetected);
            self.lcp.close(now);
        }
    }

    /// Drives layer events until nothing changes, then frames queued control packets.
    fn process(&mut self, now: Instant) {
        for _ in 0..64 {
            let mut progressed = false;
            while let Some(ev) = self.lcp.poll_event() {
                progressed = true;
                self.lcp_event(now, ev);
            }
            while let Some(ev) = self.ipcp.poll_event() {
                progressed = true;
                self.ipcp_event(now, ev);
            }
            progressed |= self.poll_auth(now);
            if !progressed {
                break;
            }
        }
        self.flush_control();
    }

    fn flush_control(&mut self) {
        while let Some(p) = self.lcp.poll_packet() {
            self.stats.lcp_out += 1;
            let bytes = p.to_bytes();
            self.send_frame(lcp::PROTOCOL, &bytes, (1..=7).contains(&p.code));
        }
        while let Some((proto, pkt)) = self.next_auth_packet() {
            self.stats.auth_out += 1;
            self.send_frame(proto, &pkt, false);
        }
        while let Some(p) = self.ipcp.poll_packet() {
            self.stats.ipcp_out += 1;
            let bytes = p.to_bytes();
            self.send_frame(ipcp::PROTOCOL, &bytes, false);
        }
    }

    /// Frames one packet; `lcp_default` forces the default ACCM (LCP codes 1-7, RFC 1662 §7.1).
    fn send_frame(&mut self, protocol: u16, payload: &[u8], lcp_default: bool) {
        let mut header = [0u8; 4];
        let mut h = 0;
        let is_lcp = protocol == lcp::PROTOCOL;
        // RFC 1661 §6.6: "the Address and Control fields MUST NOT be compressed when sending any LCP packet".
        if !self.tx_acfc || is_lcp {
            header[..2].copy_from_slice(&[0xFF, 0x03]);
            h = 2;
        }
        if self.tx_pfc && protocol < 0x100 && !is_lcp {
            header[h] = protocol as u8;
            h += 1;
        } else {
            header[h..h + 2].copy_from_slice(&protocol.to_be_bytes());
            h += 2;
        }
        let mut out = Vec::with_capacity(payload.len() + payload.len() / 32 + 16);
        let enc = if lcp_default {
            &self.enc_lcp
        } else {
            &self.enc
        };
        enc.encode(&header[..h], payload, &mut out);
        self.stats.frames_out += 1;
        self.stats.bytes_out += out.len() as u64;
        self.tx.push_back(out);
    }

    fn lcp_event(&mut self, now: Instant, ev: LayerEvent) {
        match ev {
            LayerEvent::Up => {
                let (local, peer) = (self.lcp.neg.local, self.lcp.neg.peer);
                self.lcp.neg.loopback_hits = 0;
                self.enc = Encoder::new(peer.accm, peer.fcs32);
                self.enc_lcp = Encoder::new(0xFFFF_FFFF, peer.fcs32);
                self.tx_acfc = peer.acfc;
                self.tx_pfc = peer.pfc;
                self.decoder.set_accm(local.accm);
                self.decoder.set_fcs32(local.fcs32);
                let auth = local.auth.or(peer.auth);
                self.events.push_back(PppEvent::LcpUp {
                    peer_mru: peer.mru,
                    auth,
                });
                self.echo_outstanding = 0;
                self.echo_next = if self.echo_rejected {
                    None
                } else {
                    self.cfg.echo_interval.map(|i| now + i)
                };
                self.start_auth(now, local.auth, peer.auth);
            }
            LayerEvent::Down => {
                self.phase = Phase::Terminate;
                self.ipcp.down();
                self.ipcp_up = false;
                self.echo_next = None;
                self.auth_deadline = None;
                self.auth_side = AuthSide::None;
                self.auth_check = AuthCheck::None;
                self.enc = Encoder::default();
                self.enc_lcp = Encoder::default();
                self.tx_acfc = false;
                self.tx_pfc = false;
                self.decoder.set_accm(0xFFFF_FFFF);
                self.decoder.set_fcs32(false);
            }
            LayerEvent::Started => {}
            LayerEvent::Finished => {
                if self.down_reason.is_none() {
                    if let Some(f) = self.lcp.neg.failure.clone() {
                        self.down_reason = Some(DownReason::NegotiationFailed(f));
                    }
                }
                self.finish();
            }
        }
    }

    fn start_network(&mut self, now: Instant) {
        self.phase = Phase::Network;
        self.ipcp.up(now);
        self.ipcp.open(now);
    }

    fn ipcp_event(&mut self, now: Instant, ev: LayerEvent) {
        match ev {
            LayerEvent::Up => {
                if let Err(f) = self.check_addresses() {
                    self.ipcp.neg.failure = Some(f.clone());
                    self.ipcp_failed(now, f);
                    return;
                }
                self.ipcp_up = true;
                let n = &self.ipcp.neg;
                self.events.push_back(PppEvent::IpcpUp {
                    local: n.local,
                    peer: n.peer,
                    dns: n.dns.clone(),
                });
            }
            LayerEvent::Down => self.ipcp_up = false,
            LayerEvent::Started => {}
            LayerEvent::Finished => {
                // No network protocol left: like pppd, close the link.
                let why = self
                    .ipcp
                    .neg
                    .failure
                    .clone()
                    .unwrap_or(ipcp::IpcpFailure::NotConverged);
                self.ipcp_failed(now, why);
            }
        }
    }

    /// IPCP cannot bring IPv4 up: record why (first reason wins), send IPCP's pending packets
    /// (a Terminate-Ack) before LCP's Terminate-Request, and close the link.
    fn ipcp_failed(&mut self, now: Instant, why: ipcp::IpcpFailure) {
        if self.lcp.state() != State::Opened {
            return;
        }
        if self.down_reason.is_none() {
            self.down_reason = Some(DownReason::Ipcp(why));
        }
        while let Some(p) = self.ipcp.poll_packet() {
            self.stats.ipcp_out += 1;
            let bytes = p.to_bytes();
            self.send_frame(ipcp::PROTOCOL, &bytes, false);
        }
        self.lcp.close(now);
    }

    /// The post-negotiation check of both addresses (never announce a route to 127.0.0.1 or a
    /// LAN host's address).
    fn check_addresses(&self) -> Result<(), ipcp::IpcpFailure> {
        let n = &self.ipcp.neg;
        let refused = &self.cfg.refused_networks;
        for (endpoint, addr) in [
            (ipcp::Endpoint::Local, n.local),
            (ipcp::Endpoint::Peer, n.peer),
        ] {
            ipcp::check_address(addr, refused).map_err(|problem| {
                ipcp::IpcpFailure::BadAddress {
                    endpoint,
                    addr,
                    problem,
                }
            })?;
        }
        if n.local == n.peer {
            return Err(ipcp::IpcpFailure::BadAddress {
                endpoint: ipcp::Endpoint::Peer,
                addr: n.peer,
                problem: ipcp::AddressProblem::SameAsOtherEnd,
            });
        }
        Ok(())
    }

    /// Queue one IPv4 datagram for the peer; Err if IPCP is not open or the queue is full.
    pub fn send_ipv4(&mut self, packet: &[u8]) -> Result<(), SendError> {
        if !self.ipcp_up {
            return Err(SendError::NotOpen);
        }
        let mru = self.lcp.neg.peer.mru;
        if packet.len() > usize::from(mru) {
            return Err(SendError::TooLarge {
                len: packet.len(),
                mru,
            });
        }
        if self.tx.len() >= self.cfg.tx_queue_limit {
            return Err(SendError::QueueFull);
        }
        self.stats.ipv4_out += 1;
        self.stats.ipv4_bytes_out += packet.len() as u64;
        self.send_frame(ipcp::IPV4, packet, false);
        Ok(())
    }

    /// Next bytes to write to the serial line (already HDLC-framed and escaped).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    /// Number of frames waiting in [`Ppp::poll_transmit`].
    #[must_use]
    pub fn tx_queue_len(&self) -> usize {
        self.tx.len()
    }

    /// Earliest time [`Ppp::handle_timeout`] must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let auth = [
            match &self.auth_side {
                AuthSide::PapClient(c) => c.poll_timeout(),
                AuthSide::ChapClient(c) => c.poll_timeout(),
                _ => None,
            },
            match &self.auth_check {
                AuthCheck::PapServer(s) => s.poll_timeout(),
                AuthCheck::ChapServer(s) => s.poll_timeout(),
                _ => None,
            },
        ];
        [
            self.lcp.poll_timeout(),
            self.ipcp.poll_timeout(),
            self.auth_deadline,
            self.echo_next,
        ]
        .into_iter()
        .chain(auth)
        .flatten()
        .min()
    }

    /// Runs every timer due at `now` (restart timers, authentication, echo keepalive).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.lcp.handle_timeout(now);
        self.ipcp.handle_timeout(now);
        match &mut self.auth_side {
            AuthSide::PapClient(c) => c.handle_timeout(now),
            AuthSide::ChapClient(c) => c.handle_timeout(now),
            _ => {}
        }
        if matches!(self.auth_check, AuthCheck::ChapServer(_)) {
            let c = self.challenge();
            if let AuthCheck::ChapServer(s) = &mut self.auth_check {
                s.handle_timeout(now, c);
            }
        }
        if let AuthCheck::PapServer(s) = &mut self.auth_check {
            s.handle_timeout(now);
        }
        if self.auth_deadline.is_some_and(|t| now >= t) {
            self.auth_failed("authentication did not finish in time".into());
            self.lcp.close(now);
        }
        if self.echo_next.is_some_and(|t| now >= t) {
            if self.echo_outstanding >= self.cfg.echo_failures {
                self.echo_next = None;
                if self.down_reason.is_none() {
                    self.down_reason = Some(DownReason::EchoTimeout);
                }
                // The peer is presumed gone: one Terminate-Request as a courtesy, but no
                // Terminate exchange to wait out (Max-Terminate x restart = 6 s more of a dead
                // link). The link is Down at the echo bound.
                self.lcp.close(now);
                self.process(now);
                self.ipcp.down();
                self.lcp.down();
                self.process(now);
                self.finish();
            } else {
                self.echo_outstanding += 1;
                self.stats.echo_requests += 1;
                let id = self.lcp.fresh_id();
                let magic = self.lcp.neg.local.magic;
                self.lcp
                    .send_raw(lcp::ECHO_REQUEST, id, magic.to_be_bytes().to_vec());
                self.echo_next = self.cfg.echo_interval.map(|i| now + i);
            }
        }
        self.process(now);
    }

    /// Sends one LCP Echo-Request now (outside the keepalive schedule), e.g. to check that a
    /// suspicious silence is a dead line; false if LCP is not open. The reply, if any, shows as
    /// received bytes; it does not count toward the keepalive's failures.
    pub fn send_echo_request(&mut self, now: Instant) -> bool {
        if self.lcp.state() != State::Opened || self.echo_rejected {
            return false;
        }
        self.stats.echo_requests += 1;
        let id = self.lcp.fresh_id();
        let magic = self.lcp.neg.local.magic;
        self.lcp
            .send_raw(lcp::ECHO_REQUEST, id, magic.to_be_bytes().to_vec());
        self.process(now);
        true
    }

    /// Next event for the driver.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PppEvent> {
        self.events.pop_front()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> PppStats {
        self.stats
    }

    /// Negotiated options (LCP values are meaningful once LCP opened, IP values once IPCP did).
    #[must_use]
    pub fn options(&self) -> NegotiatedOptions {
        let (l, p) = (self.lcp.neg.local, self.lcp.neg.peer);
        let ip = self.ipcp_up.then_some(&self.ipcp.neg);
        NegotiatedOptions {
            local_mru: l.mru,
            peer_mru: p.mru,
            tx_accm: p.accm,
            rx_accm: l.accm,
            local_magic: l.magic,
            peer_magic: p.magic,
            tx_pfc: p.pfc,
            tx_acfc: p.acfc,
            rx_pfc: l.pfc,
            rx_acfc: l.acfc,
            tx_fcs32: p.fcs32,
            rx_fcs32: l.fcs32,
            auth_of_peer: l.auth,
            auth_by_peer: p.auth,
            peer_name: self.peer_name.clone(),
            local_ip: ip.map(|n| n.local),
            peer_ip: ip.map(|n| n.peer),
            dns: ip.map(|n| n.dns.clone()).unwrap_or_default(),
            lcp_refused: self.lcp.refusals.clone(),
            pap_fallback: self.lcp.neg.pap_fallback_used,
            ipcp_refused: self.ipcp.refusals.clone(),
        }
    }

    /// Current phase.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once IPCP is open and IPv4 may flow.
    #[must_use]
    pub fn is_ip_up(&self) -> bool {
        self.ipcp_up
    }

    /// The configuration this link runs with.
    #[must_use]
    pub fn config(&self) -> &PppConfig {
        &self.cfg
    }

    /// LCP automaton state (diagnostics).
    #[must_use]
    pub fn lcp_state(&self) -> State {
        self.lcp.state()
    }

    /// IPCP automaton state (diagnostics).
    #[must_use]
    pub fn ipcp_state(&self) -> State {
        self.ipcp.state()
    }
}

/// A peer's free text (Terminate-Request data) made safe to log: no control characters, at
/// most 100 characters.
fn printable(data: &[u8]) -> String {
    String::from_utf8_lossy(data)
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}
