//! The option-negotiation automaton of RFC 1661 §4, shared by LCP and IPCP. Owns the state table,
//! the restart timer and the Max-Configure/Max-Terminate/Max-Failure counters; it must not know any
//! option (that is the [`Negotiator`]'s job) nor touch framing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::options::{self, ConfigReply};

/// Configure-Request.
pub const CONFIGURE_REQUEST: u8 = 1;
/// Configure-Ack.
pub const CONFIGURE_ACK: u8 = 2;
/// Configure-Nak.
pub const CONFIGURE_NAK: u8 = 3;
/// Configure-Reject.
pub const CONFIGURE_REJECT: u8 = 4;
/// Terminate-Request.
pub const TERMINATE_REQUEST: u8 = 5;
/// Terminate-Ack.
pub const TERMINATE_ACK: u8 = 6;
/// Code-Reject.
pub const CODE_REJECT: u8 = 7;

/// RFC 1661 §4.2 automaton states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Lower layer down, no Open.
    Initial,
    /// Open but lower layer down.
    Starting,
    /// Lower layer up, no Open.
    Closed,
    /// Waiting for the peer after a finished negotiation or a Terminate.
    Stopped,
    /// Terminate-Request sent after Close.
    Closing,
    /// Terminate-Request sent, will restart.
    Stopping,
    /// Configure-Request sent.
    ReqSent,
    /// Configure-Ack received.
    AckRcvd,
    /// Configure-Ack sent.
    AckSent,
    /// Negotiation complete.
    Opened,
}

/// Layer actions the owner reacts to (RFC 1661 tlu/tld/tls/tlf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerEvent {
    /// This-Layer-Up.
    Up,
    /// This-Layer-Down.
    Down,
    /// This-Layer-Started.
    Started,
    /// This-Layer-Finished.
    Finished,
}

/// Timer and counter settings (RFC 1661 §4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsmConfig {
    /// Restart timer (default 3 s).
    pub restart: Duration,
    /// Max-Configure (default 10).
    pub max_configure: u32,
    /// Max-Terminate (default 2).
    pub max_terminate: u32,
    /// Max-Failure (default 5).
    pub max_failure: u32,
}

impl Default for FsmConfig {
    fn default() -> Self {
        Self {
            restart: Duration::from_secs(3),
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
        }
    }
}

/// The protocol-specific half of an automaton (LCP, IPCP).
pub trait Negotiator {
    /// Called when a new negotiation starts: forget what the peer agreed to.
    fn reset(&mut self);
    /// Appends our Configure-Request options.
    fn request(&mut self, out: &mut Vec<u8>);
    /// Judges the peer's Configure-Request; `nak_allowed` is false once Max-Failure Naks were sent.
    fn handle_request(&mut self, options: &[u8], nak_allowed: bool) -> ConfigReply;
    /// The peer acked our request (options echo what we sent); false if they do not match.
    fn handle_ack(&mut self, options: &[u8]) -> bool;
    /// The peer Nak'd (`reject` false) or Rejected (`reject` true) some of our options; adapt.
    /// Returns false if negotiation cannot continue.
    fn handle_nak(&mut self, options: &[u8], reject: bool) -> bool;
}

/// A control packet (code, identifier, data) queued for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Code field.
    pub code: u8,
    /// Identifier field.
    pub id: u8,
    /// Data after the 4-byte header.
    pub data: Vec<u8>,
}

impl Packet {
    /// Serialises code, identifier, length and data.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = (self.data.len() + 4).min(usize::from(u16::MAX)) as u16;
        let mut v = Vec::with_capacity(usize::from(len));
        v.push(self.code);
        v.push(self.id);
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&self.data[..usize::from(len) - 4]);
        v
    }

    /// Parses a control packet, trimming padding beyond the Length field (RFC 1661 §5).
    /// `None` if shorter than 4 bytes or than its Length field.
    #[must_use]
    pub fn parse(bytes: &[u8]) -> Option<(u8, u8, &[u8])> {
        if bytes.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if len < 4 || len > bytes.len() {
            return None;
        }
        Some((bytes[0], bytes[1], &bytes[4..len]))
    }
}

/// One RFC 1661 automaton driving a [`Negotiator`].
#[derive(Debug)]
pub struct Fsm<N> {
    /// The protocol half.
    pub neg: N,
    state: State,
    cfg: FsmConfig,
    restart_count: u32,
    failure_count: u32,
    timer: Option<Instant>,
    next_id: u8,
    req_id: u8,
    /// The reply to our request `req_id` was already consumed (later copies are stale duplicates).
    req_answered: bool,
    last_request: Vec<u8>,
    /// The peer's last request we acked, to recognise duplicates of it while Opened.
    last_acked: Option<(u8, Vec<u8>)>,
    term_id: u8,
    out: VecDeque<Packet>,
    events: VecDeque<LayerEvent>,
    /// Malformed Configure-Requests discarded.
    pub malformed: u64,
    /// Options Nak'd or Rejected in this negotiation, both directions (cleared when a new
    /// negotiation starts).
    pub refusals: Vec<options::Refusal>,
}

impl<N: Negotiator> Fsm<N> {
    /// New automaton in the Initial state.
    pub fn new(neg: N, cfg: FsmConfig) -> Self {
        Self {
            neg,
            state: State::Initial,
            cfg,
            restart_count: 0,
            failure_count: 0,
            timer: None,
            next_id: 1,
            req_id: 0,
            req_answered: false,
            last_request: Vec::new(),
            last_acked: None,
            term_id: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            malformed: 0,
            refusals: Vec::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Next control packet to send.
    pub fn poll_packet(&mut self) -> Option<Packet> {
        self.out.pop_front()
    }

    /// Next layer action.
    pub fn poll_event(&mut self) -> Option<LayerEvent> {
        self.events.pop_front()
    }

    /// When the restart timer fires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// Queues a packet of another code (used by the owner for Echo, Code-Reject, …).
    pub fn send_raw(&mut self, code: u8, id: u8, data: Vec<u8>) {
        self.out.push_back(Packet { code, id, data });
    }

    /// A fresh identifier for an owner-built packet.
    pub fn fresh_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn set_state(&mut self, s: State) {
        self.state = s;
        // The restart timer runs only in Closing, Stopping, Req-Sent, Ack-Rcvd and Ack-Sent.
        if !matches!(
            s,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        ) {
            self.timer = None;
        }
    }

    fn tlu(&mut self) {
        self.events.push_back(LayerEvent::Up);
    }
    fn tld(&mut self) {
        self.events.push_back(LayerEvent::Down);
    }
    fn tls(&mut self) {
        self.events.push_back(LayerEvent::Started);
    }
    fn tlf(&mut self) {
        self.events.push_back(LayerEvent::Finished);
    }

    /// irc for Configure-Request.
    fn irc_conf(&mut self) {
        self.restart_count = self.cfg.max_configure;
        self.failure_count = 0;
        self.neg.reset();
        self.refusals.clear();
    }

    fn irc_term(&mut self) {
        self.restart_count = self.cfg.max_terminate;
    }

    fn scr(&mut self, now: Instant) {
        self.scr_inner(now, false);
    }

    /// Sends a Configure-Request. A retransmission (TO+) of unchanged options keeps its
    /// Identifier (RFC 1661 §5.1: it "MAY remain unchanged"), so a peer that already acked it
    /// recognises the copy instead of restarting negotiation.
    fn scr_inner(&mut self, now: Instant, retransmit: bool) {
        let mut data = Vec::new();
        self.neg.request(&mut data);
        if !(retransmit && data == self.last_request) {
            self.req_id = self.fresh_id();
        }
        self.last_request.clone_from(&data);
        self.req_answered = false;
        self.out.push_back(Packet {
            code: CONFIGURE_REQUEST,
            id: self.req_id,
            data,
        });
        self.restart_count = self.restart_count.saturating_sub(1);
        self.timer = Some(now + self.cfg.restart);
    }

    fn str_(&mut self, now: Instant) {
        self.term_id = self.fresh_id();
        self.out.push_back(Packet {
            code: TERMINATE_REQUEST,
            id: self.term_id,
            data: Vec::new(),
        });
        self.restart_count = self.restart_count.saturating_sub(1);
        self.timer = Some(now + self.cfg.restart);
    }

    fn sta(&mut self, id: u8) {
        self.out.push_back(Packet {
            code: TERMINATE_ACK,
            id,
            data: Vec::new(),
        });
    }

    /// Lower layer is up.
    pub fn up(&mut self, now: Instant) {
        match self.state {
            State::Initial => self.set_state(State::Closed),
            State::Starting => {
                self.irc_conf();
                self.scr(now);
                self.set_state(State::ReqSent);
            }
            _ => {}
        }
    }

    /// Lower layer is down.
    pub fn down(&mut self) {
        match self.state {
            State::Closed | State::Closing => self.set_state(State::Initial),
            State::Stopped => {
                self.tls();
                self.set_state(State::Starting);
            }
            State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.set_state(State::Starting)
            }
            State::Opened => {
                self.tld();
                self.set_state(State::Starting);
            }
            State::Initial | State::Starting => {}
        }
    }

    /// Administrative Open.
    pub fn open(&mut self, now: Instant) {
        match self.state {
            State::Initial => {
                self.tls();
                self.set_state(State::Starting);
            }
            State::Closed => {
                self.irc_conf();
                self.scr(now);
                self.set_state(State::ReqSent);
            }
            State::Closing => self.set_state(State::Stopping),
            _ => {}
        }
    }

    /// Administrative Close.
    pub fn close(&mut self, now: Instant) {
        match self.state {
            State::Starting => {
                self.tlf();
                self.set_state(State::Initial);
            }
            State::Stopped => self.set_state(State::Closed),
            State::Stopping => self.set_state(State::Closing),
            State::ReqSent | State::AckRcvd | State::AckSent => {
                self.irc_term();
                self.str_(now);
                self.set_state(State::Closing);
            }
            State::Opened => {
                self.tld();
                self.irc_term();
                self.str_(now);
                self.set_state(State::Closing);
            }
            State::Initial | State::Closed | State::Closing => {}
        }
    }

    /// Restart timer check; call when `now` reaches [`Fsm::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.timer {
            Some(t) if now >= t => {}
            _ => return,
        }
        self.timer = None;
        let plus = self.restart_count > 0;
        match (self.state, plus) {
            (State::Closing | State::Stopping, true) => self.str_(now),
            (State::Closing, false) => {
                self.tlf();
                self.set_state(State::Closed);
            }
            (State::Stopping, false) => {
                self.tlf();
                self.set_state(State::Stopped);
            }
            (State::ReqSent | State::AckRcvd, true) => {
                self.scr_inner(now, true);
                self.set_state(State::ReqSent);
            }
            (State::AckSent, true) => self.scr_inner(now, true),
            (State::ReqSent | State::AckRcvd | State::AckSent, false) => {
                self.tlf();
                self.set_state(State::Stopped);
            }
            _ => {}
        }
    }

    /// Handles one received control packet of this protocol. Returns the packet back as
    /// `Err((code, id, data))` if its code is not one the automaton knows (the owner decides
    /// between its extra codes and a Code-Reject via [`Fsm::unknown_code`]).
    pub fn handle_packet<'a>(
        &mut self,
        now: Instant,
        code: u8,
        id: u8,
        data: &'a [u8],
    ) -> Result<(), (u8, u8, &'a [u8])> {
        match code {
            CONFIGURE_REQUEST => self.rcr(now, id, data),
            CONFIGURE_ACK => {
                // RFC 1661 §5.2: an Ack whose Identifier does not match the last request is discarded.
                if id == self.req_id
                    && !self.req_answered
                    && options::parse(data).is_some()
                    && self.neg.handle_ack(data)
                {
                    self.req_answered = true;
                    self.rca(now);
                }
            }
            CONFIGURE_NAK | CONFIGURE_REJECT => {
                if id == self.req_id && !self.req_answered && options::parse(data).is_some() {
                    self.req_answered = true;
                    options::note_refusals(
                        &mut self.refusals,
                        data,
                        true,
                        code == CONFIGURE_REJECT,
                    );
                    if self.neg.handle_nak(data, code == CONFIGURE_REJECT) {
                        self.rcn(now);
                    } else {
                        // Negotiation cannot converge: RFC 1661 lets the implementation give up.
                        self.close(now);
                    }
                }
            }
            TERMINATE_REQUEST => self.rtr(now, id),
            TERMINATE_ACK => self.rta(now, id),
            CODE_REJECT => {
                // The rejected code is the first byte of the rejected packet; any of ours being
                // rejected is catastrophic (RXJ-), since we only send codes 1-7 here.
                let rejected = data.first().copied().unwrap_or(0);
                self.rxj(now, !(1..=7).contains(&rejected));
            }
            _ => return Err((code, id, data)),
        }
        Ok(())
    }

    /// RUC: sends a Code-Reject carrying the unknown packet (truncated to `max_len`).
    pub fn unknown_code(&mut self, code: u8, id: u8, data: &[u8], max_len: usize) {
        if matches!(self.state, State::Initial | State::Starting) {
            return;
        }
        let mut rejected = Packet {
            code,
            id,
            data: data.to_vec(),
        }
        .to_bytes();
        rejected.truncate(max_len.saturating_sub(4));
        let cid = self.fresh_id();
        self.send_raw(CODE_REJECT, cid, rejected);
    }

    fn rcr(&mut self, now: Instant, id: u8, data: &[u8]) {
        // A request whose option list is malformed is silently discarded.
        if options::parse(data).is_none() {
            self.malformed += 1;
            return;
        }
        if self.state == State::Opened
            && self
                .last_acked
                .as_ref()
                .is_some_and(|(i, d)| *i == id && d == data)
        {
            // A copy of the request we already acked (our Ack was lost, or the line repeated a
            // frame): not a restart by the peer, whose new requests carry a new Identifier
            // (RFC 1661 §5.1). Repeat the Ack and stay Opened.
            self.out.push_back(Packet {
                code: CONFIGURE_ACK,
                id,
                data: data.to_vec(),
            });
            return;
        }
        match self.state {
            State::Closed => {
                self.sta(id);
                return;
            }
            State::Initial | State::Starting | State::Closing | State::Stopping => return,
            State::Stopped => {
                self.irc_conf();
                self.scr(now);
            }
            State::Opened => {
                self.tld();
                // A new negotiation starts from scratch.
                self.neg.reset();
                self.refusals.clear();
                self.restart_count = self.cfg.max_configure;
                self.scr(now);
            }
            _ => {}
        }
        // RFC 1661 §4.6 Max-Failure: once reached, Naks are converted to Rejects.
        let nak_allowed = self.failure_count < self.cfg.max_failure;
        let good = match self.neg.handle_request(data, nak_allowed) {
            ConfigReply::Ack => {
                self.failure_count = 0;
                self.last_acked = Some((id, data.to_vec()));
                self.out.push_back(Packet {
                    code: CONFIGURE_ACK,
                    id,
                    data: data.to_vec(),
                });
                true
            }
            ConfigReply::Nak(o) => {
                options::note_refusals(&mut self.refusals, &o, false, false);
                self.failure_count += 1;
                self.out.push_back(Packet {
                    code: CONFIGURE_NAK,
                    id,
                    data: o,
                });
                false
            }
            ConfigReply::Reject(o) => {
                options::note_refusals(&mut self.refusals, &o, false, true);
                self.out.push_back(Packet {
                    code: CONFIGURE_REJECT,
                    id,
                    data: o,
                });
                false
            }
        };
        match (self.state, good) {
            (State::Stopped | State::ReqSent | State::AckSent | State::Opened, true) => {
                self.set_state(State::AckSent)
            }
            (State::Stopped | State::ReqSent | State::AckSent | State::Opened, false) => {
                self.set_state(State::ReqSent)
            }
            (State::AckRcvd, true) => {
                self.set_state(State::Opened);
                self.tlu();
            }
            _ => {}
        }
    }

    fn rca(&mut self, now: Instant) {
        match self.state {
            State::Closed | State::Stopped => {
                let id = self.fresh_id();
                self.sta(id);
            }
            State::ReqSent => {
                self.restart_count = self.cfg.max_configure;
                self.set_state(State::AckRcvd);
            }
            State::AckRcvd => {
                // Crossed connection: 'x' — send a new request.
                self.scr(now);
                self.set_state(State::ReqSent);
            }
            State::AckSent => {
                self.restart_count = self.cfg.max_configure;
                self.set_state(State::Opened);
                self.tlu();
            }
            State::Opened => {
                self.tld();
                self.scr(now);
                self.set_state(State::ReqSent);
            }
            _ => {}
        }
    }

    fn rcn(&mut self, now: Instant) {
        match self.state {
            State::Closed | State::Stopped => {
                let id = self.fresh_id();
                self.sta(id);
            }
            State::ReqSent => {
                self.restart_count = self.cfg.max_configure;
                self.scr(now);
            }
            State::AckRcvd => {
                self.scr(now);
                self.set_state(State::ReqSent);
            }
            State::AckSent => {
                self.restart_count = self.cfg.max_configure;
                self.scr(now);
            }
            State::Opened => {
                self.tld();
                self.scr(now);
                self.set_state(State::ReqSent);
            }
            _ => {}
        }
    }

    fn rtr(&mut self, now: Instant, id: u8) {
        match self.state {
            State::Closed | State::Stopped | State::Closing | State::Stopping => self.sta(id),
            State::ReqSent | State::AckRcvd | State::AckSent => {
                self.sta(id);
                self.set_state(State::ReqSent);
            }
            State::Opened => {
                self.tld();
                // zrc: zero the restart count and start the timer, so we wait one period in Stopping.
                self.restart_count = 0;
                self.timer = Some(now + self.cfg.restart);
                self.sta(id);
                self.set_state(State::Stopping);
            }
            State::Initial | State::Starting => {}
        }
    }

    fn rta(&mut self, now: Instant, _id: u8) {
        match self.state {
            State::Closing => {
                self.tlf();
                self.set_state(State::Closed);
            }
            State::Stopping => {
                self.tlf();
                self.set_state(State::Stopped);
            }
            State::AckRcvd => self.set_state(State::ReqSent),
            State::Opened => {
                self.tld();
                self.scr(now);
                self.set_state(State::ReqSent);
            }
            _ => {}
        }
    }

    /// RXJ+ (`permitted`) or RXJ-: a Code-Reject or Protocol-Reject was received.
    pub fn rxj(&mut self, now: Instant, permitted: bool) {
        if permitted {
            if self.state == State::AckRcvd {
                self.set_state(State::ReqSent);
            }
            return;
        }
        match self.state {
            State::Closed | State::Closing => {
                if self.state == State::Closing {
                    self.set_state(State::Closed);
                }
                self.tlf();
            }
            State::Stopped | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.tlf();
                self.set_state(State::Stopped);
            }
            State::Opened => {
                self.tld();
                self.irc_term();
                self.str_(now);
                self.set_state(State::Stopping);
            }
            State::Initial | State::Starting => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Dummy;
    impl Negotiator for Dummy {
        fn reset(&mut self) {}
        fn request(&mut self, _out: &mut Vec<u8>) {}
        fn handle_request(&mut self, options: &[u8], _nak: bool) -> ConfigReply {
            if options.is_empty() {
                ConfigReply::Ack
            } else {
                ConfigReply::Reject(options.to_vec())
            }
        }
        fn handle_ack(&mut self, options: &[u8]) -> bool {
            options.is_empty()
        }
        fn handle_nak(&mut self, _o: &[u8], _r: bool) -> bool {
            true
        }
    }

    fn pump(a: &mut Fsm<Dummy>, b: &mut Fsm<Dummy>, now: Instant) {
        for _ in 0..20 {
            let mut moved = false;
            while let Some(p) = a.poll_packet() {
                moved = true;
                let _ = b.handle_packet(now, p.code, p.id, &p.data);
            }
            while let Some(p) = b.poll_packet() {
                moved = true;
                let _ = a.handle_packet(now, p.code, p.id, &p.data);
            }
            if !moved {
                break;
            }
        }
    }

    #[test]
    fn two_automata_open_and_close() {
        let now = Instant::now();
        let mut a = Fsm::new(Dummy, FsmConfig::default());
        let mut b = Fsm::new(Dummy, FsmConfig::default());
        for f in [&mut a, &mut b] {
            f.open(now);
            f.up(now);
        }
        pump(&mut a, &mut b, now);
        assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
        assert!(a.poll_timeout().is_none());
        a.close(now);
        pump(&mut a, &mut b, now);
        assert_eq!(a.state(), State::Closed);
        assert_eq!(b.state(), State::Stopping);
        b.handle_timeout(now + Duration::from_secs(3));
        assert_eq!(b.state(), State::Stopped);
        let evs: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
        assert_eq!(
            evs,
            vec![
                LayerEvent::Started,
                LayerEvent::Up,
                LayerEvent::Down,
                LayerEvent::Finished
            ]
        );
    }

    #[test]
    fn silent_peer_gives_up_after_max_configure() {
        let mut now = Instant::now();
        let mut a = Fsm::new(Dummy, FsmConfig::default());
        a.open(now);
        a.up(now);
        let mut sent = 0;
        while let Some(t) = a.poll_timeout() {
            while a.poll_packet().is_some() {
                sent += 1;
            }
            now = t;
            a.handle_timeout(now);
        }
        while a.poll_packet().is_some() {
            sent += 1;
        }
        assert_eq!(sent, 10);
        assert_eq!(a.state(), State::Stopped);
        assert!(std::iter::from_fn(|| a.poll_event()).any(|e| e == LayerEvent::Finished));
    }

    #[test]
    fn packet_parse_rejects_bad_lengths() {
        assert_eq!(Packet::parse(&[1, 2, 0, 3]), None);
        assert_eq!(Packet::parse(&[1, 2, 0, 9, 0]), None);
        assert_eq!(Packet::parse(&[1, 2, 0, 5, 7, 8]), Some((1, 2, &[7u8][..])));
    }
}
