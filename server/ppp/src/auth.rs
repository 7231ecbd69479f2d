//! The Authenticate phase of [`Ppp`]: PAP/CHAP in either role, the PAP refusal, the CHAP
//! challenge. Must not negotiate options (LCP/IPCP) or frame bytes.

use std::time::Instant;

use crate::*;

pub(crate) enum AuthSide {
    None,
    PapClient(pap::PapClient),
    ChapClient(chap::ChapClient),
    Done,
}

pub(crate) enum AuthCheck {
    None,
    PapServer(pap::PapServer),
    ChapServer(chap::ChapServer),
    Done,
}

impl Ppp {
    /// We Nak'd the peer's PAP towards CHAP-MD5 in this negotiation and it has neither
    /// switched to CHAP-MD5 nor been allowed PAP, and IPv4 never came up.
    pub(crate) fn pap_refusal_pending(&self) -> bool {
        let n = &self.lcp.neg;
        n.pap_naks > 0 && !n.pap_fallback_used && n.peer.auth.is_none() && !self.ipcp_up
    }

    pub(crate) fn auth_failed(&mut self, message: String) {
        self.events.push_back(PppEvent::AuthFailed {
            message: message.clone(),
        });
        if !matches!(self.down_reason, Some(DownReason::AuthFailed(_))) {
            self.down_reason = Some(DownReason::AuthFailed(message));
        }
        self.auth_deadline = None;
        self.auth_side = AuthSide::Done;
        self.auth_check = AuthCheck::Done;
    }

    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A CHAP challenge: MD5 of the caller's seed and the next value of the seeded sequence
    /// (unpredictable while the seed is; no random source read here).
    pub(crate) fn challenge(&mut self) -> [u8; 16] {
        let n = self.next_random();
        chap::md5_response(0, &self.seed.to_le_bytes(), &n.to_le_bytes())
    }

    pub(crate) fn start_auth(
        &mut self,
        now: Instant,
        of_peer: Option<AuthProtocol>,
        by_peer: Option<AuthProtocol>,
    ) {
        if of_peer.is_none() && by_peer.is_none() {
            self.events.push_back(PppEvent::AuthOk {
                protocol: None,
                peer_name: None,
            });
            self.start_network(now);
            return;
        }
        self.phase = Phase::Authenticate;
        self.auth_protocol = of_peer.or(by_peer);
        self.side_ok = by_peer.is_none();
        self.check_ok = of_peer.is_none();
        self.auth_deadline = Some(now + self.cfg.auth_timeout);
        let (restart, tries) = (self.cfg.fsm.restart, self.cfg.fsm.max_configure);
        self.auth_side = match by_peer {
            Some(AuthProtocol::Pap) => {
                let mut c = pap::PapClient::new(&self.cfg.user, &self.cfg.password, restart, tries);
                c.start(now);
                AuthSide::PapClient(c)
            }
            Some(AuthProtocol::Chap) => AuthSide::ChapClient(chap::ChapClient::new(
                &self.cfg.user,
                &self.cfg.password,
                restart,
                tries,
            )),
            None => AuthSide::Done,
        };
        self.auth_check = match of_peer {
            Some(AuthProtocol::Pap) => {
                let mut s = pap::PapServer::new(self.cfg.users.clone(), self.cfg.auth_timeout);
                s.start(now);
                AuthCheck::PapServer(s)
            }
            Some(AuthProtocol::Chap) => {
                let mut s = chap::ChapServer::new(
                    &self.cfg.user,
                    self.cfg.users.clone(),
                    restart,
                    tries,
                    self.cfg.chap_rechallenge,
                );
                let c = self.challenge();
                s.start(now, c);
                AuthCheck::ChapServer(s)
            }
            None => AuthCheck::Done,
        };
    }

    /// Collects authentication results; true if anything changed.
    pub(crate) fn poll_auth(&mut self, now: Instant) -> bool {
        let side = match &mut self.auth_side {
            AuthSide::PapClient(c) => c.poll_result(),
            AuthSide::ChapClient(c) => c.poll_result(),
            _ => None,
        };
        let check = match &mut self.auth_check {
            AuthCheck::PapServer(s) => s.poll_result(),
            AuthCheck::ChapServer(s) => s.poll_result(),
            _ => None,
        };
        let mut changed = false;
        for (r, ours) in [(side, false), (check, true)] {
            match r {
                None => {}
                Some(AuthOutcome::Failed(m)) => {
                    self.flush_control(); // the Nak/Failure goes out before the Terminate-Request
                    self.auth_failed(m);
                    self.lcp.close(now);
                    return true;
                }
                Some(AuthOutcome::Ok { peer_name }) => {
                    changed = true;
                    if ours || self.peer_name.is_none() {
                        self.peer_name = peer_name;
                    }
                    // The PAP/CHAP engines stay: they repeat a lost Ack/Success and answer rechallenges.
                    if ours {
                        self.check_ok = true;
                    } else {
                        self.side_ok = true;
                    }
                }
            }
        }
        if self.phase == Phase::Authenticate && self.side_ok && self.check_ok {
            self.auth_deadline = None;
            self.events.push_back(PppEvent::AuthOk {
                protocol: self.auth_protocol,
                peer_name: self.peer_name.clone(),
            });
            self.start_network(now);
            changed = true;
        }
        changed
    }

    pub(crate) fn next_auth_packet(&mut self) -> Option<(u16, Vec<u8>)> {
        let side = match &mut self.auth_side {
            AuthSide::PapClient(c) => c.poll_packet().map(|p| (pap::PROTOCOL, p)),
            AuthSide::ChapClient(c) => c.poll_packet().map(|p| (chap::PROTOCOL, p)),
            _ => None,
        };
        side.or_else(|| match &mut self.auth_check {
            AuthCheck::PapServer(s) => s.poll_packet().map(|p| (pap::PROTOCOL, p)),
            AuthCheck::ChapServer(s) => s.poll_packet().map(|p| (chap::PROTOCOL, p)),
            _ => None,
        })
    }
}
