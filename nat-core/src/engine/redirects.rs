//! REDIRECT, port forwarding and hairpinning: packets the engine delivers to the gateway's own
//! stack or turns around to another LAN host. Moved out of `engine.rs` as it was (no change).

use super::{bump, pslot, translate_drop, Action, Dir, DropReason, Engine};
use crate::chains::{BuiltinChain, Verdict};
use crate::masq::translate::Demasq;
use crate::redirect::{Kind, Tuple};
use crate::time::Instant;

impl Engine {
    /// `-j REDIRECT port` on a LAN packet: deliver it to the gateway's own stack on `port`
    /// (0 = its destination port). The connection gets the link's address as destination and
    /// the link peer's address as source, so the local stack's replies come back through the
    /// TUN, where [`Engine::local_out`] gives them the original addresses back. Needs the link
    /// up (no address to deliver to otherwise).
    pub(super) fn redirect_from_lan(&mut self, now: Instant, buf: &mut [u8], port: u16) -> Action {
        bump(&mut self.counters.redirects);
        let Some(t) = Tuple::of(buf) else {
            return self.drop(DropReason::NotMasqueradable);
        };
        if self.redirects.translate_orig(now, buf).is_some() {
            bump(&mut self.counters.local);
            return Action::Local;
        }
        let (Some(maddr), Some(peer)) = (self.masq.masq_addr(), self.peer) else {
            return self.drop(DropReason::NoMasqAddress);
        };
        let dport = if port == 0 { t.dport } else { port };
        let Some(sport) = self.redirects.alloc_port(t.proto, peer, maddr, dport) else {
            return self.drop(DropReason::PortsExhausted);
        };
        let new = Tuple {
            proto: t.proto,
            src: peer,
            sport,
            dst: maddr,
            dport,
        };
        if self
            .redirects
            .insert(now, t, new, Kind::RedirectLan)
            .is_err()
        {
            return self.drop(DropReason::TableFull);
        }
        let _ = self.redirects.translate_orig(now, buf);
        bump(&mut self.counters.local);
        Action::Local
    }

    /// `-j REDIRECT port` on a packet from the link: only the destination changes (to the
    /// link's address and `port`); replies come back through [`Engine::local_out`].
    pub(super) fn redirect_from_link(&mut self, now: Instant, buf: &mut [u8], port: u16) -> Action {
        bump(&mut self.counters.redirects);
        let Some(t) = Tuple::of(buf) else {
            return self.drop(DropReason::NotMasqueradable);
        };
        if self.redirects.translate_orig(now, buf).is_some() {
            bump(&mut self.counters.local);
            return Action::Local;
        }
        let Some(maddr) = self.masq.masq_addr() else {
            return self.drop(DropReason::NoMasqAddress);
        };
        let new = Tuple {
            dst: maddr,
            dport: if port == 0 { t.dport } else { port },
            ..t
        };
        if self
            .redirects
            .insert(now, t, new, Kind::RedirectLink)
            .is_err()
        {
            return self.drop(DropReason::TableFull);
        }
        let _ = self.redirects.translate_orig(now, buf);
        bump(&mut self.counters.local);
        Action::Local
    }

    /// A packet from the link to the link's address that no masquerade entry claimed: an
    /// existing port-forwarded connection, or a new one if a portfw entry matches.
    pub(super) fn portfw_in(&mut self, now: Instant, buf: &mut [u8]) -> Option<Action> {
        let t = Tuple::of(buf)?;
        if self.redirects.lookup_orig(&t).is_none() {
            let i = self.portfw.pick(t.proto, t.dst, t.dport)?;
            let fw = self.portfw.get(i)?;
            let new = Tuple {
                dst: fw.raddr,
                dport: fw.rport,
                ..t
            };
            if self.redirects.insert(now, t, new, Kind::PortFw).is_err() {
                return Some(self.drop(DropReason::TableFull));
            }
            self.portfw_conn.insert(t, i);
        }
        if let Some(&i) = self.portfw_conn.get(&t) {
            self.portfw.account(i, buf.len());
        }
        match self.redirects.translate_orig(now, buf)? {
            Kind::PortFw => {
                bump(&mut self.counters.portfw);
                Some(self.output(buf, Dir::FromLink))
            }
            Kind::RedirectLink | Kind::RedirectLan => {
                bump(&mut self.counters.local);
                Some(Action::Local)
            }
        }
    }

    /// RFC 4787 REQ-9 / RFC 5382 REQ-8: "A NAT MUST support hairpinning": an inside host
    /// sending to the masquerade address reaches the inside host behind that mapping, and sees
    /// the sender's external (mapped) address as source. Forward chain, then masquerade the
    /// source, then demasquerade the destination (filtering applies as for outside traffic).
    pub(super) fn hairpin(&mut self, now: Instant, buf: &mut Vec<u8>, p: u8) -> Action {
        match self.run_chain(BuiltinChain::Forward, buf, false) {
            Verdict::Masq | Verdict::Accept | Verdict::Redirect { .. } => {}
            Verdict::Deny => return self.drop(DropReason::ForwardDeny),
            Verdict::Reject => return self.reject(buf, BuiltinChain::Forward, Dir::FromLan),
        }
        let mut probe = buf.clone();
        if let Err(e) = self.masq.masquerade(now, &mut probe) {
            let r = translate_drop(e);
            return self.drop(r);
        }
        match self.masq.demasquerade(now, &mut probe) {
            Ok(Demasq::Translated) => {
                *buf = probe;
                bump(&mut self.counters.masqueraded[pslot(p)]);
                bump(&mut self.counters.demasqueraded[pslot(p)]);
                self.output(buf, Dir::FromLink)
            }
            Ok(Demasq::NotOurs) => {
                bump(&mut self.counters.local);
                Action::Local
            }
            Err(e) => {
                let r = translate_drop(e);
                self.drop(r)
            }
        }
    }
}
