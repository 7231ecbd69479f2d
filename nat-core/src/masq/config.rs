//! The masquerade table's configuration: mapping and filtering behaviour, port ranges,
//! per-state timeouts, the table's settings and its errors. Moved out of `masq/mod.rs` as it
//! was (no change).

use super::tcp::{self, State};
use crate::time::Duration;

/// Which mapping behaviour new entries get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Linux 2.2: TCP per destination with port reuse, UDP destination-loose (one mapping per
    /// inside endpoint, replies from anywhere).
    Linux22,
    /// RFC 4787 REQ-1 / RFC 5382 REQ-1: endpoint-independent mapping for TCP and UDP.
    EndpointIndependent,
    /// Address-and-port-dependent mapping for everything (one entry per 5-tuple).
    AddressPortDependent,
}

/// Inbound filtering for endpoint-independent mappings (RFC 4787 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtering {
    /// Any remote may send to the mapping.
    EndpointIndependent,
    /// Only remote addresses the inside endpoint has sent to.
    AddressDependent,
    /// Only remote address:port pairs the inside endpoint has sent to.
    AddressPortDependent,
}

/// An inclusive port range for one protocol's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port (inclusive).
    pub hi: u16,
}

impl PortRange {
    /// The 2.2 default 61000..=65095.
    pub const LINUX22: PortRange = PortRange {
        lo: 61000,
        hi: 65095,
    };
    /// Number of ports.
    pub fn len(&self) -> u32 {
        u32::from(self.hi.saturating_sub(self.lo)) + 1
    }
    /// Never empty (hi < lo is treated as the single port lo).
    pub fn is_empty(&self) -> bool {
        false
    }
    /// True if `p` lies in the range.
    pub fn contains(&self, p: u16) -> bool {
        p >= self.lo && p <= self.hi
    }
}

/// Per-state timeouts in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP states indexed by [`State`] (NONE … LISTEN).
    pub tcp: [Duration; tcp::TCP_STATES],
    /// UDP.
    pub udp: Duration,
    /// ICMP.
    pub icmp: Duration,
}

impl Timeouts {
    /// The Linux 2.2 state table (3.5 of the reference).
    pub const fn linux22() -> Timeouts {
        const fn s(x: u64) -> Duration {
            Duration::from_secs(x)
        }
        Timeouts {
            tcp: [
                s(30 * 60),
                s(15 * 60),
                s(2 * 60),
                s(60),
                s(2 * 60),
                s(2 * 60),
                s(10),
                s(60),
                s(30),
                s(2 * 60),
            ],
            udp: s(5 * 60),
            icmp: s(60),
        }
    }
    /// RFC profile: established ≥ 2 h 4 min (RFC 5382 REQ-5), transitory 4 min, UDP 5 min
    /// (RFC 4787 REQ-5 "default >= 5 min RECOMMENDED"), ICMP 60 s (RFC 5508 REQ-2).
    pub const fn rfc() -> Timeouts {
        let mut t = Timeouts::linux22();
        let mut i = 0;
        while i < tcp::TCP_STATES {
            t.tcp[i] = Duration::from_secs(240);
            i += 1;
        }
        t.tcp[State::Established as usize] = Duration::from_secs(7440);
        t
    }
    /// Timeout for a state.
    pub fn for_state(&self, s: State) -> Duration {
        match s {
            State::Udp => self.udp,
            State::Icmp => self.icmp,
            s => self.tcp[s as usize],
        }
    }
}

/// Masquerading configuration.
#[derive(Debug, Clone)]
pub struct MasqConfig {
    /// Port pools for TCP, UDP and ICMP ids.
    pub ports: [PortRange; 3],
    /// How many entries may share each port (2.2: ×10, `free=` counters start at 40960).
    pub port_reuse: u32,
    /// Mapping behaviour.
    pub mapping: Mapping,
    /// Filtering for endpoint-independent mappings.
    pub filtering: Filtering,
    /// RFC 4787 REQ-9 hairpinning (engine-level).
    pub hairpin: bool,
    /// Per-state timeouts.
    pub timeouts: Timeouts,
    /// Upper bound on live entries.
    pub max_entries: u32,
    /// Capacity of the change log before it collapses into a resync marker (0 disables).
    pub change_log_capacity: usize,
    /// RFC 5508 REQ-8: answer a packet that cannot get a mapping (ports exhausted) with ICMP
    /// destination unreachable, code 13 (communication administratively prohibited).
    pub icmp_on_exhaustion: bool,
    /// Secret mixed into every index hash (HashDoS): the server sets a random one per engine;
    /// the profiles' 0 keeps tests and benchmarks reproducible.
    pub hash_seed: u64,
    /// Most live entries one LAN source address may hold (0 = no quota, as in 2.2), so one
    /// host cannot take every masquerade port from the others.
    pub max_per_host: u32,
}

impl Default for MasqConfig {
    fn default() -> Self {
        MasqConfig::linux22()
    }
}

impl MasqConfig {
    /// Linux 2.2 behaviour.
    pub fn linux22() -> MasqConfig {
        MasqConfig {
            ports: [PortRange::LINUX22; 3],
            port_reuse: 10,
            mapping: Mapping::Linux22,
            filtering: Filtering::EndpointIndependent,
            hairpin: false,
            timeouts: Timeouts::linux22(),
            max_entries: 1 << 22,
            change_log_capacity: 65536,
            icmp_on_exhaustion: false,
            hash_seed: 0,
            max_per_host: 0,
        }
    }
    /// Opt-in RFC 4787/5382/5508 profile: endpoint-independent mapping, address-dependent
    /// filtering (RFC 4787 REQ-8 fallback), hairpinning, RFC timeouts, port range 1024..65535
    /// without port overloading (REQ-3).
    pub fn rfc() -> MasqConfig {
        MasqConfig {
            ports: [PortRange {
                lo: 1024,
                hi: 65535,
            }; 3],
            port_reuse: 1,
            mapping: Mapping::EndpointIndependent,
            filtering: Filtering::AddressDependent,
            hairpin: true,
            timeouts: Timeouts::rfc(),
            max_entries: 1 << 22,
            change_log_capacity: 65536,
            icmp_on_exhaustion: true,
            hash_seed: 0,
            max_per_host: 0,
        }
    }
}

/// Errors creating a masquerade entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MasqError {
    /// No masquerade address is set (link down).
    #[error("no masquerade address")]
    NoAddress,
    /// The protocol's port pool has no usable port for this destination ("no free ports").
    #[error("no free ports")]
    PortsExhausted,
    /// The table is at `max_entries` ("could not get free masq entry").
    #[error("could not get free masq entry")]
    TableFull,
    /// A fixed masquerade port was requested but is taken ("Already used connection").
    #[error("Already used connection")]
    AlreadyUsed,
    /// The LAN host already holds [`MasqConfig::max_per_host`] entries.
    #[error("host over its masquerade entry quota")]
    HostQuota,
}
