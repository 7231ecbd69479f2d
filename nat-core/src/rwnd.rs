//! Receive-window clamping for downloads over the dial-up link. Owns the per-connection window
//! state (window-scale shifts, recent download activity), the budget split and the in-place
//! rewrite of the window field; must not decide when it is on (the engine's caller does, from
//! the link's rate).
//!
//! The downlink's bottleneck queue sits at the ISP, where we cannot drop. But every LAN flow
//! crosses us, so we see the ACKs that clock each sender: a sender never has more unacknowledged
//! data in flight than the receive window the LAN host advertises. Lowering that window to about
//! the link's bandwidth-delay product plus a few packets bounds what any TCP sender (Reno, CUBIC,
//! BBR alike) can queue at the ISP, from the first round trip on — no drop needed, so no loss
//! and no slow start burst either (the SYN's window is clamped too, which bounds the initial
//! window). The budget is split between active downloads as the fair scheduler splits the line:
//! equally per LAN host, then equally per flow of that host.
//!
//! Rules (RFC 9293 §3.8.6, RFC 7323 §2): the window field of a segment is scaled by the shift
//! its *sender* announced in its SYN, and only when both SYNs carried the option; a SYN's own
//! window is never scaled. A window is only ever lowered, never raised; the TCP checksum is
//! updated incrementally (RFC 1624), so a segment with a bad checksum stays bad. A connection
//! whose SYNs we did not see (it predates the clamp) is left alone: its shift is unknown.
//!
//! Deterministic and sans-IO: fed packets and `now`, no clock reads.

use crate::time::{Duration, Instant};
use crate::wire::{checksum, proto};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// TCP option kinds (RFC 9293 §3.2, RFC 7323 §2.2).
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_WSCALE: u8 = 3;

/// TCP flag bits.
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Largest shift RFC 7323 §2.3 allows (larger ones are taken as 14).
const MAX_SHIFT: u8 = 14;

/// How the window budget is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// The line's data rate, bytes per second.
    pub rate: u64,
    /// Round-trip time beyond the link assumed for the bandwidth-delay product, milliseconds.
    pub rtt_ms: u32,
    /// Packets (of `mss` bytes) added to the bandwidth-delay product.
    pub packets: u16,
    /// Segment size for the packet allowance and the per-flow floor.
    pub mss: u16,
    /// The least window one LAN host's downloads get together, in packets of `mss` (however
    /// many hosts share; a host's flows split it, see [`MIN_FLOW_WINDOW`]).
    pub min_packets: u16,
}

impl WindowConfig {
    /// Defaults for a line of `rate` bytes per second: 100 ms beyond the link, 2 packets of
    /// 1460 bytes, at least 2 packets per flow.
    pub fn for_rate(rate: u64) -> Self {
        Self {
            rate,
            rtt_ms: 100,
            packets: 2,
            mss: 1460,
            min_packets: 2,
        }
    }

    /// The whole budget in bytes: rate × RTT + packets × MSS (at most 1 GiB).
    pub fn budget(&self) -> u32 {
        let bdp = self.rate.saturating_mul(u64::from(self.rtt_ms)) / 1000;
        let extra = u64::from(self.packets) * u64::from(self.mss);
        u32::try_from(bdp.saturating_add(extra).min(1 << 30)).unwrap_or(1 << 30)
    }

    /// The least window of one host's downloads together, in bytes.
    pub fn floor(&self) -> u32 {
        (u32::from(self.min_packets) * u32::from(self.mss)).max(1)
    }
}

/// A connection as seen on the link side: (remote address, remote port, our port on the link
/// side) — the same for both directions (outbound after masquerading, inbound before).
type Key = (u32, u16, u16);

/// Shift value meaning "the LAN host's SYN carried no window-scale option".
const NO_SHIFT: u8 = 0xff;

#[derive(Debug, Clone, Copy)]
struct Flow {
    /// The LAN host (0 until its first outbound segment).
    host: u32,
    /// Shift announced in the LAN host's SYN ([`NO_SHIFT`]: none); valid when `lan_syn`.
    lan_shift: u8,
    /// The LAN host's SYN (or SYN-ACK) was seen.
    lan_syn: bool,
    /// The remote's SYN (or SYN-ACK) carried a window-scale option.
    remote_ws: bool,
    /// Last inbound segment with payload (a download is active while this is recent).
    last_data: Option<Instant>,
    /// Last segment either way (for eviction).
    last_seen: Instant,
}

/// What [`WindowClamp::clamp_outbound`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamped {
    /// The window field before.
    pub old: u16,
    /// The window field after (lower).
    pub new: u16,
}

/// Counters for status displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Segments whose window was lowered.
    pub clamped: u64,
    /// Connections tracked now.
    pub flows: usize,
}

/// The receive-window clamp: per-connection state and the budget split.
#[derive(Debug, Clone)]
pub struct WindowClamp {
    cfg: WindowConfig,
    flows: HashMap<Key, Flow>,
    /// A flow counts as an active download this long after its last inbound payload.
    active_for: Duration,
    clamped: u64,
}

/// The least window one flow of a host with many downloads gets (bytes): below a few hundred
/// bytes the headers (40 bytes a segment) would eat the line. A sender offered less than its
/// segment size sends smaller segments (Linux bounds its segments to half the largest window
/// it was offered).
pub const MIN_FLOW_WINDOW: u32 = 256;

/// Most connections tracked; beyond, stale ones are evicted and new ones left alone.
const MAX_FLOWS: usize = 4096;
/// A connection unseen this long is forgotten when the table is full.
const STALE: Duration = Duration::from_secs(120);

/// The TCP segment of an IPv4 datagram: (IP header length, TCP range end), if it is a whole
/// first fragment carrying at least a minimal TCP header.
fn tcp_bounds(ip: &[u8]) -> Option<(usize, usize)> {
    let first = *ip.first()?;
    if first >> 4 != 4 || ip.len() < 20 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || ip[9] != proto::TCP {
        return None;
    }
    // Any fragment (offset or more-fragments) is skipped: the header may be cut.
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    let end = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    if end < ihl + 20 {
        return None;
    }
    let data_off = usize::from(ip[ihl + 12] >> 4) * 4;
    if data_off < 20 || ihl + data_off > end {
        return None;
    }
    Some((ihl, end))
}

/// The window-scale shift in a TCP header's options, `None` when absent or malformed.
fn wscale_option(tcp: &[u8]) -> Option<u8> {
    let data_off = usize::from(tcp.get(12)? >> 4) * 4;
    let opts = tcp.get(20..data_off)?;
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            OPT_END => return None,
            OPT_NOP => i += 1,
            kind => {
                let len = usize::from(*opts.get(i + 1)?);
                if len < 2 || i + len > opts.len() {
                    return None;
                }
                if kind == OPT_WSCALE {
                    return (len == 3).then(|| opts[i + 2].min(MAX_SHIFT));
                }
                i += len;
            }
        }
    }
    None
}

fn addr(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl WindowClamp {
    /// A clamp sized by `cfg`.
    pub fn new(cfg: WindowConfig) -> Self {
        Self {
            cfg,
            flows: HashMap::new(),
            active_for: Duration::from_millis(1000),
            clamped: 0,
        }
    }

    /// The sizing in use.
    pub fn config(&self) -> &WindowConfig {
        &self.cfg
    }

    /// Resize (the line rate changed); connections are kept.
    pub fn set_config(&mut self, cfg: WindowConfig) {
        self.cfg = cfg;
    }

    /// Counters.
    pub fn stats(&self) -> WindowStats {
        WindowStats {
            clamped: self.clamped,
            flows: self.flows.len(),
        }
    }

    fn slot(&mut self, now: Instant, key: Key) -> Option<&mut Flow> {
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= MAX_FLOWS {
                self.flows
                    .retain(|_, f| now.saturating_duration_since(f.last_seen) < STALE);
                if self.flows.len() >= MAX_FLOWS {
                    return None;
                }
            }
            self.flows.insert(
                key,
                Flow {
                    host: 0,
                    lan_shift: NO_SHIFT,
                    lan_syn: false,
                    remote_ws: false,
                    last_data: None,
                    last_seen: now,
                },
            );
        }
        let f = self.flows.get_mut(&key)?;
        f.last_seen = now;
        Some(f)
    }

    /// A datagram from the link, before demasquerading: note the remote's window-scale option
    /// (SYN, SYN-ACK) and download activity (payload). Never changes the datagram.
    pub fn observe_inbound(&mut self, now: Instant, ip: &[u8]) {
        let Some((ihl, end)) = tcp_bounds(ip) else {
            return;
        };
        let tcp = &ip[ihl..end];
        let key = (
            addr(&ip[12..16]),
            u16::from_be_bytes([tcp[0], tcp[1]]),
            u16::from_be_bytes([tcp[2], tcp[3]]),
        );
        let flags = tcp[13];
        let payload = end - ihl - usize::from(tcp[12] >> 4) * 4;
        if flags & SYN != 0 {
            let ws = wscale_option(tcp).is_some();
            if let Some(f) = self.slot(now, key) {
                f.remote_ws = ws;
                if flags & ACK == 0 {
                    // A new connection from outside (port forwarding): the LAN host's SYN-ACK
                    // is yet to come.
                    f.lan_syn = false;
                    f.lan_shift = NO_SHIFT;
                }
            }
        } else if payload > 0 {
            if let Some(f) = self.slot(now, key) {
                f.last_data = Some(now);
            }
        } else if let Some(f) = self.flows.get_mut(&key) {
            f.last_seen = now;
        }
    }

    /// The window budget of flow `key` of LAN host `host` now, in bytes: the budget split
    /// equally between the hosts with an active download (this one counted), at least the
    /// floor per host, then equally between that host's active downloads (this one counted),
    /// at least [`MIN_FLOW_WINDOW`] per flow.
    ///
    /// The floor is per host, not per flow: the ISP's queue is first in, first out, so each
    /// host's share of the downlink is its share of the bytes in flight. A floor per flow let
    /// a host with eight downloads keep eight floors in flight against one for a host with
    /// one download (link-bench `dshares`: 11 / 89 %), and queued 23 KB (two seconds of line)
    /// at the ISP.
    fn share(&self, now: Instant, key: Key, host: u32) -> u32 {
        let mut hosts: Vec<u32> = vec![host];
        let mut mine = 1u32;
        for (k, f) in &self.flows {
            let active = f
                .last_data
                .is_some_and(|t| now.saturating_duration_since(t) < self.active_for);
            if !active || *k == key {
                continue;
            }
            if f.host == host {
                mine += 1;
            }
            if !hosts.contains(&f.host) {
                hosts.push(f.host);
            }
        }
        let n_hosts = u32::try_from(hosts.len()).unwrap_or(u32::MAX);
        let per_host = (self.cfg.budget() / n_hosts).max(self.cfg.floor());
        (per_host / mine).max(MIN_FLOW_WINDOW.min(self.cfg.floor()))
    }

    /// A datagram for the link, after masquerading, from LAN host `host`: note the LAN
    /// host's window-scale option (SYN, SYN-ACK) and lower the advertised window to this
    /// flow's share of the budget, with the TCP checksum updated incrementally. Anything but
    /// a whole TCP segment, RSTs, and connections whose SYNs were not seen are left alone.
    pub fn clamp_outbound(
        &mut self,
        now: Instant,
        host: Ipv4Addr,
        ip: &mut [u8],
    ) -> Option<Clamped> {
        let (ihl, end) = tcp_bounds(ip)?;
        let key = {
            let tcp = &ip[ihl..end];
            (
                addr(&ip[16..20]),
                u16::from_be_bytes([tcp[2], tcp[3]]),
                u16::from_be_bytes([tcp[0], tcp[1]]),
            )
        };
        let host = u32::from(host);
        let flags = ip[ihl + 13];
        if flags & RST != 0 {
            return None;
        }
        let syn = flags & SYN != 0;
        let shift = {
            let ws = if syn {
                wscale_option(&ip[ihl..end])
            } else {
                None
            };
            let f = self.slot(now, key)?;
            f.host = host;
            if syn {
                f.lan_syn = true;
                f.lan_shift = ws.unwrap_or(NO_SHIFT);
                if flags & ACK == 0 {
                    // A new connection from the LAN: the remote's SYN-ACK is yet to come.
                    f.remote_ws = false;
                }
            }
            if syn {
                // A SYN's window is never scaled (RFC 7323 §2.2).
                0
            } else if flags & ACK == 0 || !f.lan_syn {
                return None;
            } else if f.lan_shift != NO_SHIFT && f.remote_ws {
                f.lan_shift
            } else {
                0
            }
        };
        let share = self.share(now, key, host);
        let unit = 1u32 << shift;
        let limit = u16::try_from(share.div_ceil(unit).max(1)).unwrap_or(u16::MAX);
        let tcp = &mut ip[ihl..end];
        let old = u16::from_be_bytes([tcp[14], tcp[15]]);
        if old <= limit {
            return None;
        }
        tcp[14..16].copy_from_slice(&limit.to_be_bytes());
        let hc = checksum::update_u16(u16::from_be_bytes([tcp[16], tcp[17]]), old, limit);
        tcp[16..18].copy_from_slice(&hc.to_be_bytes());
        self.clamped = self.clamped.wrapping_add(1);
        Some(Clamped { old, new: limit })
    }

    /// Active downloads now (flows with payload from the link within the last second).
    pub fn active_downloads(&self, now: Instant) -> usize {
        self.flows
            .values()
            .filter(|f| {
                f.last_data
                    .is_some_and(|t| now.saturating_duration_since(t) < self.active_for)
            })
            .count()
    }
}

#[cfg(test)]
mod tests;
