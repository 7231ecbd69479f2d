//! Static translations that are not masquerading: `-j REDIRECT` (delivery to a local port) and
//! ipmasqadm-style port forwarding (`portfw`). Each connection is one entry that maps the
//! packet's original 5-tuple to a new one; packets of the reply direction are found by the
//! reply of the new tuple and get the original tuple back. Owns the table, its expiry and the
//! rewriting of addresses and ports; must not evaluate rules (the engine decides when an entry
//! is made) and keeps no tie to the masquerade table.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::time::{Duration, Instant};
use crate::wire::{ipv4, proto, tcp, udp};

/// One direction's 5-tuple (protocol, source, destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// TCP or UDP.
    pub proto: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dport: u16,
}

impl Tuple {
    /// The tuple of a packet going the other way.
    pub fn reply(self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }

    /// The TCP/UDP tuple of a whole, unfragmented datagram.
    pub fn of(buf: &[u8]) -> Option<Tuple> {
        let ip = ipv4::Packet::new_checked(buf).ok()?;
        let p = ip.protocol();
        if p != proto::TCP && p != proto::UDP {
            return None;
        }
        let (hl, tl) = (ip.header_len(), usize::from(ip.total_len()));
        let (sport, dport) = crate::wire::ports(p, buf.get(hl..tl)?)?;
        Some(Tuple {
            proto: p,
            src: ip.src_addr(),
            sport,
            dst: ip.dst_addr(),
            dport,
        })
    }
}

/// What made an entry (and so where its packets go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `REDIRECT` of a LAN packet: the original direction is delivered locally, the reply
    /// goes back to the LAN.
    RedirectLan,
    /// `REDIRECT` of a packet from the link: replies go back to the link.
    RedirectLink,
    /// Port forwarding from the link to a LAN host: replies go back to the link.
    PortFw,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    orig: Tuple,
    new: Tuple,
    kind: Kind,
    last: Instant,
    closing: bool,
}

/// A live connection as the listings show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The tuple as it arrived (portfw: remote host → link address and local port).
    pub orig: Tuple,
    /// The tuple it was rewritten to (portfw: remote host → LAN host and port).
    pub new: Tuple,
    /// What made it.
    pub kind: Kind,
    /// A FIN or RST was seen.
    pub closing: bool,
    /// Time left before it expires if idle.
    pub left: Duration,
}

/// How long an idle entry lives.
const TCP_IDLE: Duration = Duration::from_secs(15 * 60);
const TCP_CLOSING: Duration = Duration::from_secs(60);
const UDP_IDLE: Duration = Duration::from_secs(5 * 60);
/// How often the table is swept.
const SWEEP: Duration = Duration::from_secs(5);

/// Why no entry could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// The table holds its maximum number of entries.
    #[error("redirect table full")]
    Full,
    /// No free source port for the new tuple.
    #[error("no free redirect port")]
    NoPort,
}

/// The table of REDIRECT and port-forwarding connections.
#[derive(Debug, Clone)]
pub struct Redirects {
    by_orig: HashMap<Tuple, usize>,
    by_reply: HashMap<Tuple, usize>,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    max: usize,
    next_port: u16,
    next_sweep: Option<Instant>,
}

impl Default for Redirects {
    fn default() -> Self {
        Redirects::new(4096)
    }
}

/// First and last source port used when a redirect needs a source of its own.
const PORT_LO: u16 = 20_000;
const PORT_HI: u16 = 29_999;

impl Redirects {
    /// An empty table of at most `max` connections.
    pub fn new(max: usize) -> Self {
        Redirects {
            by_orig: HashMap::new(),
            by_reply: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            max,
            next_port: PORT_LO,
            next_sweep: None,
        }
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.by_orig.len()
    }

    /// No live connection.
    pub fn is_empty(&self) -> bool {
        self.by_orig.is_empty()
    }

    /// Forget every connection (the masquerade address changed).
    pub fn clear(&mut self) {
        self.by_orig.clear();
        self.by_reply.clear();
        self.slots.clear();
        self.free.clear();
        self.next_sweep = None;
    }

    /// The translated tuple of a packet in the original direction, if its connection exists.
    pub fn lookup_orig(&self, t: &Tuple) -> Option<(Tuple, Kind)> {
        let e = self.slots.get(*self.by_orig.get(t)?)?.as_ref()?;
        Some((e.new, e.kind))
    }

    /// A free source port for a new tuple toward `dst:dport` from `src` (round robin).
    pub fn alloc_port(
        &mut self,
        proto: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        dport: u16,
    ) -> Option<u16> {
        for _ in PORT_LO..=PORT_HI {
            let p = self.next_port;
            self.next_port = if p >= PORT_HI { PORT_LO } else { p + 1 };
            let reply = Tuple {
                proto,
                src: dst,
                sport: dport,
                dst: src,
                dport: p,
            };
            if !self.by_reply.contains_key(&reply) {
                return Some(p);
            }
        }
        None
    }

    /// Record a connection `orig` → `new`.
    pub fn insert(
        &mut self,
        now: Instant,
        orig: Tuple,
        new: Tuple,
        kind: Kind,
    ) -> Result<(), RedirectError> {
        if self.by_orig.len() >= self.max {
            return Err(RedirectError::Full);
        }
        if self.by_reply.contains_key(&new.reply()) {
            return Err(RedirectError::NoPort);
        }
        let e = Entry {
            orig,
            new,
            kind,
            last: now,
            closing: false,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(e);
                i
            }
            None => {
                self.slots.push(Some(e));
                self.slots.len() - 1
            }
        };
        self.by_orig.insert(orig, i);
        self.by_reply.insert(new.reply(), i);
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + SWEEP);
        }
        Ok(())
    }

    /// Translate a packet of the original direction in place (its connection must exist);
    /// returns the connection's kind.
    pub fn translate_orig(&mut self, now: Instant, buf: &mut [u8]) -> Option<Kind> {
        let t = Tuple::of(buf)?;
        let i = *self.by_orig.get(&t)?;
        let e = self.slots.get_mut(i)?.as_mut()?;
        e.last = now;
        e.closing |= tcp_closing(buf);
        let (new, kind) = (e.new, e.kind);
        rewrite(buf, &t, &new);
        Some(kind)
    }

    /// Translate a packet of the reply direction in place; returns the connection's kind, or
    /// `None` when it belongs to no connection.
    pub fn translate_reply(&mut self, now: Instant, buf: &mut [u8]) -> Option<Kind> {
        let t = Tuple::of(buf)?;
        let i = *self.by_reply.get(&t)?;
        let e = self.slots.get_mut(i)?.as_mut()?;
        e.last = now;
        e.closing |= tcp_closing(buf);
        let (to, kind) = (e.orig.reply(), e.kind);
        rewrite(buf, &t, &to);
        Some(kind)
    }

    /// Every live connection with its time left before it expires idle, in slot order (for
    /// the listings: 2.2 listed portfw connections among the masquerade entries).
    pub fn connections(&self, now: Instant) -> Vec<Connection> {
        self.slots
            .iter()
            .flatten()
            .map(|e| {
                let idle = match (e.orig.proto, e.closing) {
                    (proto::TCP, false) => TCP_IDLE,
                    (proto::TCP, true) => TCP_CLOSING,
                    _ => UDP_IDLE,
                };
                Connection {
                    orig: e.orig,
                    new: e.new,
                    kind: e.kind,
                    closing: e.closing,
                    left: Duration::from_millis(
                        idle.as_millis()
                            .saturating_sub(now.saturating_duration_since(e.last).as_millis()),
                    ),
                }
            })
            .collect()
    }

    /// When [`Redirects::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Drop idle connections; returns how many.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        if self.next_sweep.is_none_or(|t| t > now) {
            return 0;
        }
        let mut gone = 0;
        for i in 0..self.slots.len() {
            let Some(e) = self.slots[i] else { continue };
            let idle = match (e.orig.proto, e.closing) {
                (proto::TCP, false) => TCP_IDLE,
                (proto::TCP, true) => TCP_CLOSING,
                _ => UDP_IDLE,
            };
            if now.saturating_duration_since(e.last) >= idle {
                self.by_orig.remove(&e.orig);
                self.by_reply.remove(&e.new.reply());
                self.slots[i] = None;
                self.free.push(i);
                gone += 1;
            }
        }
        self.next_sweep = (!self.by_orig.is_empty()).then_some(now + SWEEP);
        gone
    }
}

fn tcp_closing(buf: &[u8]) -> bool {
    let ip = ipv4::Packet::new_unchecked(buf);
    if ip.protocol() != proto::TCP {
        return false;
    }
    let hl = ip.header_len();
    buf.len() >= hl + tcp::FLAGS_END
        && tcp::Packet::new_unchecked(&buf[hl..]).flags() & (tcp::FLG_FIN | tcp::FLG_RST) != 0
}

/// Rewrite a packet whose tuple is `from` to carry `to` (addresses, ports, checksums).
pub fn rewrite(buf: &mut [u8], from: &Tuple, to: &Tuple) {
    let (hl, tl) = {
        let ip = ipv4::Packet::new_unchecked(&buf[..]);
        (ip.header_len(), usize::from(ip.total_len()).min(buf.len()))
    };
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut buf[..]);
        if from.src != to.src {
            ip.rewrite_src_addr(to.src);
        }
        if from.dst != to.dst {
            ip.rewrite_dst_addr(to.dst);
        }
    }
    let t = &mut buf[hl..tl];
    if from.proto == proto::TCP {
        let mut p = tcp::Packet::new_unchecked(t);
        p.update_for_addr(from.src, to.src);
        p.update_for_addr(from.dst, to.dst);
        p.rewrite_src_port(to.sport);
        p.rewrite_dst_port(to.dport);
    } else {
        let mut p = udp::Packet::new_unchecked(t);
        p.update_for_addr(from.src, to.src);
        p.update_for_addr(from.dst, to.dst);
        p.rewrite_src_port(to.sport);
        p.rewrite_dst_port(to.dport);
    }
}
