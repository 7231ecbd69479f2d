//! The link queue, below both the data plane and the modem driver: IPv4 datagrams as scheduler
//! packets (ECN bits via nat-core's checksum helpers), their classification by LAN host and
//! flow, the session's outbound queue ([`Egress`]: schedule, pace, and fragment to the link MTU
//! per RFC 791) and the download queue ([`Ingress`]). The data plane puts packets in, the modem
//! driver takes them out; neither imports the other.
//!
//! Owns: the glue to `masqdial-sched` and the fragmenting egress. Must not: import the data
//! plane, the modem driver or the link manager.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::Ipv4Addr;

use std::time::Duration;

use crate::clock::Epoch;
use masqdial_sched::{Class, Config, Discipline, Instant, LinePacer, Packet, Scheduler, Stats};
use nat_core::wire::{checksum, ipv4, proto};

/// One IPv4 datagram queued for the link (or, with ingress shaping, for the LAN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPacket(pub Vec<u8>);

/// ECN field values (RFC 3168 §5): the low two bits of the TOS octet.
const ECN_MASK: u8 = 0b11;
const ECN_CE: u8 = 0b11;

impl Packet for IpPacket {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_ect(&self) -> bool {
        // ECT(1) = 01, ECT(0) = 10; Not-ECT = 00 and CE = 11 are not marked again.
        self.0.len() >= ipv4::HEADER_LEN && matches!(self.0[1] & ECN_MASK, 0b01 | 0b10)
    }

    fn mark_ce(&mut self) {
        if self.0.len() < ipv4::HEADER_LEN {
            return;
        }
        // RFC 1624: the header checksum follows the change of the version/IHL/TOS word.
        let old = u16::from_be_bytes([self.0[0], self.0[1]]);
        self.0[1] |= ECN_CE;
        let new = u16::from_be_bytes([self.0[0], self.0[1]]);
        let hc = checksum::update_u16(u16::from_be_bytes([self.0[10], self.0[11]]), old, new);
        self.0[10..12].copy_from_slice(&hc.to_be_bytes());
    }
}

/// Which side of a datagram is the LAN host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanSide {
    /// Outbound: the source, read before masquerading.
    Source,
    /// Inbound: the destination, read after de-masquerading.
    Destination,
}

/// Classifies datagrams: the LAN host, and a keyed hash of the 5-tuple (ports for TCP/UDP, the
/// identifier for ICMP echo) as the flow. The key is random per process, so LAN hosts cannot
/// aim collisions at one another.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    keys: RandomState,
}

impl Classifier {
    /// A classifier with a fresh random key.
    pub fn new() -> Self {
        Self::default()
    }

    /// The class of `pkt` (a datagram without a whole IPv4 header goes in the unspecified
    /// host's flow 0).
    pub fn classify(&self, pkt: &[u8], lan: LanSide) -> Class {
        let Ok(ip) = ipv4::Packet::new_checked(pkt) else {
            return Class {
                host: Ipv4Addr::UNSPECIFIED,
                flow: 0,
            };
        };
        let (src, dst, p) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
        let mut h = self.keys.build_hasher();
        (src, dst, p).hash(&mut h);
        if ip.frag_offset() == 0 {
            let l4 = ip.payload();
            match p {
                proto::TCP | proto::UDP if l4.len() >= 4 => l4[..4].hash(&mut h),
                // Echo request/reply (types 8/0): the identifier tells pings apart.
                proto::ICMP if l4.len() >= 6 && matches!(l4[0], 0 | 8) => l4[4..6].hash(&mut h),
                _ => {}
            }
        }
        Class {
            host: match lan {
                LanSide::Source => src,
                LanSide::Destination => dst,
            },
            flow: h.finish(),
        }
    }
}

/// Where the data plane sends datagrams for the link: a modem session's input, seen only
/// through this trait so the data plane never imports the modem driver.
pub trait LinkSink: Send + Sync + std::fmt::Debug {
    /// Queue one datagram of `class` without waiting; false when it was dropped (queue full
    /// or session gone).
    fn try_send_classified(&self, packet: Vec<u8>, class: Class) -> bool;
    /// Choose the link queue's discipline; takes effect before any packet sent after it.
    fn set_scheduler(&self, kind: SchedulerKind);
}

/// A modem session's link as the data plane takes it over when the link comes up: filled by
/// the link manager from the session (see `SessionHandle::link_port` in the modem driver).
#[derive(Debug)]
pub struct SessionLink {
    /// The peer's MRU and ours, once LCP ran.
    pub mrus: Option<(u16, u16)>,
    /// The line's data rate in bytes per second, once known.
    pub link_rate: Option<u64>,
    /// Outbound datagrams into the session's link queue.
    pub sink: std::sync::Arc<dyn LinkSink>,
    /// Inbound datagrams from the peer (taken from the session).
    pub inbound: tokio::sync::mpsc::Receiver<Vec<u8>>,
}

/// Which discipline the link queue uses (`[link] scheduler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// Per-host, then per-flow fair queuing with CoDel, paced to the serial line.
    #[default]
    Fair,
    /// The old path, for comparison: one 256-packet FIFO, written to the line unpaced.
    Fifo,
}

/// Bytes per second an 8N1 serial line carries at `bps` (10 bits per byte).
pub fn line_rate(bps: u32) -> u64 {
    (u64::from(bps) / 10).max(1)
}

/// Line bytes a PPP frame adds to its datagram in HDLC-like framing without header
/// compression (RFC 1662): opening flag, address, control, 2-byte protocol, 2-byte FCS, closing
/// flag. With PFC/ACFC a frame is 3 bytes shorter, so charging 8 keeps the shaper below the line.
/// Byte stuffing is not included: with an ACCM of 0 it adds 2/256 of random (compressed or
/// encrypted) payload, ~12 bytes per 1500, which only matters for shaping fractions above ~0.98.
pub const HDLC_OVERHEAD: u32 = 8;

/// Allowance of the line pacer: the next packet is handed down this long before the line is
/// estimated to run dry, so the driver's timer lateness never idles the line.
const PACER_ALLOWANCE: Duration = Duration::from_millis(8);

/// The outbound queue of one modem session: the scheduler plus the line pacer, on the
/// session's own clock. Owned by the session's driver thread.
#[derive(Debug)]
pub struct Egress {
    sched: Scheduler<IpPacket>,
    pacer: Option<LinePacer>,
    epoch: Epoch,
    kind: SchedulerKind,
    rate: u64,
    mtu: u16,
    /// The rest of a datagram fragmented for the link, sent before anything else.
    fragments: VecDeque<Vec<u8>>,
}

/// What [`Egress::next_for_link`] hands the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A whole datagram that fits the link MTU.
    Datagram(Vec<u8>),
    /// A fragment of a larger one (RFC 791); `first` on the first fragment of each datagram.
    Fragment {
        /// The fragment's bytes.
        bytes: Vec<u8>,
        /// Whether this is the datagram's first fragment.
        first: bool,
    },
    /// A datagram larger than the link MTU that may not be fragmented (DF set, or malformed):
    /// dropped. The data plane answers DF datagrams with ICMP Frag-Needed; one that still gets
    /// here (e.g. while the link MTU was unknown) is refused and counted.
    Refused,
}

impl Egress {
    /// A queue for a line draining `rate` bytes per second with IP MTU `mtu`.
    pub fn new(kind: SchedulerKind, rate: u64, mtu: u16) -> Self {
        let sched = Scheduler::new(Self::config(kind, rate, mtu)).unwrap_or_else(|_| {
            // Only a zero rate or tiny MTU can be refused; fall back to sane values.
            Scheduler::new(Self::config(kind, 11_520, 1500)).unwrap_or_else(|_| unreachable!())
        });
        Self {
            sched,
            pacer: (kind == SchedulerKind::Fair).then(|| LinePacer::new(rate, PACER_ALLOWANCE)),
            epoch: Epoch::now(),
            kind,
            rate,
            mtu,
            fragments: VecDeque::new(),
        }
    }

    /// Switch discipline; whatever is queued is dropped (done once, before traffic).
    pub fn set_kind(&mut self, kind: SchedulerKind) {
        *self = Self::new(kind, self.rate, self.mtu);
    }

    fn config(kind: SchedulerKind, rate: u64, mtu: u16) -> Config {
        let mut c = Config::for_link_rate(rate);
        c.mtu = u32::from(mtu.max(68));
        c.overhead = HDLC_OVERHEAD;
        if kind == SchedulerKind::Fifo {
            c.discipline = Discipline::Fifo;
            c.limit_bytes = Some(256 * (u64::from(c.mtu) + u64::from(HDLC_OVERHEAD)));
        }
        c
    }

    /// The discipline in use.
    pub fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// Now on the scheduler's clock.
    fn now(&self) -> Instant {
        self.epoch.sched_now()
    }

    /// The link's rate or MTU changed (CONNECT speed, LCP negotiation).
    pub fn set_link(&mut self, rate: u64, mtu: u16) {
        self.rate = rate;
        self.mtu = mtu;
        let _ = self.sched.reconfigure(Self::config(self.kind, rate, mtu));
        if let Some(p) = self.pacer.as_mut() {
            p.set_rate(rate);
        }
    }

    /// Queue a datagram for the link.
    pub fn enqueue(&mut self, packet: Vec<u8>, class: Class) {
        let now = self.now();
        let _ = self.sched.enqueue(now, IpPacket(packet), class);
    }

    /// The next datagram if the line can take it now. `outq`: bytes the serial driver still
    /// holds (`TIOCOUTQ`), when the line can tell.
    pub fn next_packet(&mut self, outq: Option<u64>) -> Option<Vec<u8>> {
        let now = self.now();
        if let Some(p) = self.pacer.as_mut() {
            if let Some(q) = outq {
                // The kernel's figure can only add to the estimate (a pseudo-terminal says 0).
                if q > p.in_flight(now) {
                    p.observe_queue(now, q);
                }
            }
            if !p.ready(now) {
                return None;
            }
        }
        self.sched.dequeue(now).map(|p| p.0)
    }

    /// The next thing for the line, cut to `mtu`: the rest of a fragmented datagram first
    /// (fragments of one datagram leave together), else [`Egress::next_packet`], fragmented
    /// when it is larger than `mtu`.
    pub fn next_for_link(&mut self, outq: Option<u64>, mtu: u16) -> Option<Outgoing> {
        if let Some(bytes) = self.fragments.pop_front() {
            return Some(Outgoing::Fragment {
                bytes,
                first: false,
            });
        }
        let p = self.next_packet(outq)?;
        if p.len() <= usize::from(mtu) {
            return Some(Outgoing::Datagram(p));
        }
        match nat_core::mtu::fragment(&p, mtu) {
            Ok(pieces) => {
                self.fragments.extend(pieces);
                Some(match self.fragments.pop_front() {
                    Some(bytes) => Outgoing::Fragment { bytes, first: true },
                    None => Outgoing::Refused,
                })
            }
            Err(_) => Some(Outgoing::Refused),
        }
    }

    /// Whether fragments of a datagram are still waiting to leave.
    pub fn mid_datagram(&self) -> bool {
        !self.fragments.is_empty()
    }

    /// `bytes` were written to the line (data or control frames).
    pub fn on_write(&mut self, bytes: usize) {
        let now = self.now();
        if let Some(p) = self.pacer.as_mut() {
            p.on_write(now, bytes);
        }
    }

    /// When to try [`Egress::next_packet`] again, if packets wait for the line.
    pub fn wake_at(&self) -> Option<std::time::Instant> {
        if self.sched.is_empty() {
            return None;
        }
        let p = self.pacer.as_ref()?;
        Some(self.epoch.from_sched(p.ready_at()))
    }

    /// Drop everything queued (the link went down).
    pub fn clear(&mut self) {
        self.sched.clear();
        self.fragments.clear();
    }

    /// Counters and state for status displays.
    pub fn snapshot(&self) -> QueueSnapshot {
        let now = self.now();
        QueueSnapshot {
            stats: self.sched.stats(),
            in_flight_bytes: self.pacer.as_ref().map_or(0, |p| p.in_flight(now)),
            kind: self.kind,
            link_rate: self.rate,
        }
    }
}

/// The download-direction queue (CAKE's ingress mode): datagrams from the link wait here and
/// leave for the LAN at a fraction of the link rate, so the standing queue forms here, where
/// CoDel and fair queuing manage it, rather than in the ISP's buffer. Owned by the pump.
#[derive(Debug)]
pub struct Ingress {
    sched: Scheduler<IpPacket>,
    epoch: Epoch,
    rate: u64,
}

impl Ingress {
    /// Shape to `fraction` of `rate` bytes per second (the fraction is checked by the config).
    pub fn new(rate: u64, fraction: f64, mtu: u16) -> Result<Self, masqdial_sched::ConfigError> {
        let mut c = Config::for_link_rate(rate.max(1));
        c.mtu = u32::from(mtu.max(68));
        c.overhead = HDLC_OVERHEAD;
        c.shaping = Some(fraction);
        // Not CAKE's drop charging (`Config::ingress`): measured with link-bench it cost a
        // BBR download 30 points of goodput (52.6 % of the line instead of 82.3 % at 0.9) for
        // a worse p95, because a sender that keeps four packets in flight whatever the loss
        // holds the queue above target, so CoDel keeps dropping and every drop also costs
        // shaper time.
        c.ingress = false;
        Ok(Self {
            sched: Scheduler::new(c)?,
            epoch: Epoch::now(),
            rate,
        })
    }

    fn now(&self) -> Instant {
        self.epoch.sched_now()
    }

    /// Queue a datagram for the LAN.
    pub fn enqueue(&mut self, packet: Vec<u8>, class: Class) {
        let now = self.now();
        let _ = self.sched.enqueue(now, IpPacket(packet), class);
    }

    /// The next datagram the shaper lets through now.
    pub fn dequeue(&mut self) -> Option<Vec<u8>> {
        let now = self.now();
        self.sched.dequeue(now).map(|p| p.0)
    }

    /// When the shaper lets the next datagram through, if any waits.
    pub fn wake_at(&self) -> Option<std::time::Instant> {
        let t = self.sched.poll_timeout()?;
        Some(self.epoch.from_sched(t))
    }

    /// Counters and state for status displays.
    pub fn snapshot(&self) -> QueueSnapshot {
        QueueSnapshot {
            stats: self.sched.stats(),
            in_flight_bytes: 0,
            kind: SchedulerKind::Fair,
            link_rate: self.rate,
        }
    }
}

/// A link queue's state as shown by `mclient status`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueSnapshot {
    /// The scheduler's counters.
    pub stats: Stats,
    /// Bytes estimated to sit below the writer (tty buffer, modem).
    pub in_flight_bytes: u64,
    /// Discipline.
    pub kind: SchedulerKind,
    /// Link rate the queue is sized for, bytes per second.
    pub link_rate: u64,
}

/// Both queues of the active link, for status displays.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkQueues {
    /// Outbound (upload) queue of the modem session.
    pub egress: Option<QueueSnapshot>,
    /// Download shaper queue, when shaping.
    pub ingress: Option<QueueSnapshot>,
    /// The configured shaping fraction.
    pub ingress_shaping: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, tos: u8) -> Vec<u8> {
        let mut b = vec![0u8; 28];
        ipv4::Repr {
            src_addr: src.into(),
            dst_addr: dst.into(),
            protocol: proto::UDP,
            payload_len: 8,
            ttl: 64,
        }
        .emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
        let mut ip = ipv4::Packet::new_unchecked(&mut b[..]);
        ip.set_tos(tos);
        ip.fill_checksum();
        b[20..22].copy_from_slice(&sp.to_be_bytes());
        b[22..24].copy_from_slice(&dp.to_be_bytes());
        b
    }

    #[test]
    fn mark_ce_updates_the_header_checksum() {
        for tos in [0x01u8, 0x02, 0xb9, 0xba] {
            let mut p = IpPacket(udp([192, 168, 1, 2], 5000, [198, 51, 100, 1], 53, tos));
            assert!(p.is_ect());
            p.mark_ce();
            assert_eq!(p.0[1], tos | 3);
            assert!(!p.is_ect());
            let ip = ipv4::Packet::new_checked(&p.0[..]).expect("ipv4");
            assert!(ip.verify_checksum(), "tos {tos:#x}");
        }
        let p = IpPacket(udp([192, 168, 1, 2], 5000, [198, 51, 100, 1], 53, 0));
        assert!(!p.is_ect());
        let p = IpPacket(udp([192, 168, 1, 2], 5000, [198, 51, 100, 1], 53, 3));
        assert!(!p.is_ect());
        let mut short = IpPacket(vec![0x45, 0x02]);
        assert!(!short.is_ect());
        short.mark_ce();
        assert_eq!(short.0, vec![0x45, 0x02]);
    }

    #[test]
    fn classifies_by_lan_host_and_five_tuple() {
        let c = Classifier::new();
        let a = udp([192, 168, 1, 2], 5000, [198, 51, 100, 1], 53, 0);
        let b = udp([192, 168, 1, 2], 5001, [198, 51, 100, 1], 53, 0);
        let ca = c.classify(&a, LanSide::Source);
        assert_eq!(ca.host, Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(ca, c.classify(&a, LanSide::Source));
        assert_ne!(ca.flow, c.classify(&b, LanSide::Source).flow);
        let back = udp([198, 51, 100, 1], 53, [192, 168, 1, 2], 5000, 0);
        assert_eq!(
            c.classify(&back, LanSide::Destination).host,
            Ipv4Addr::new(192, 168, 1, 2)
        );
        assert_eq!(
            c.classify(&[1, 2, 3], LanSide::Source),
            Class {
                host: Ipv4Addr::UNSPECIFIED,
                flow: 0
            }
        );
    }
}
