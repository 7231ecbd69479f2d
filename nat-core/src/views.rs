//! Text views of the masquerade state, byte for byte as Linux 2.2 / ipchains 1.3.9 print them:
//! `ipchains -M -L [-n] [-v]`, `/proc/net/ip_masquerade` (128-byte records) and
//! `/proc/net/ip_masq/app`. Owns formatting only; must not change any state.

use std::net::Ipv4Addr;

use crate::helpers::{self, HelperRegistry};
use crate::masq::tcp::State;
use crate::masq::{EntrySnapshot, FreePorts};
use crate::wire::proto;

/// Options of `ipchains -M -L`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MasqListOptions {
    /// `-n`: numeric ports (addresses are always numeric: the engine never resolves names).
    pub numeric: bool,
    /// `-v`: show initseq, delta, prevd.
    pub verbose: bool,
}

/// `conntrack -L`-style conditions on masquerade entries; every condition given must hold
/// (the empty filter selects everything).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MasqFilter {
    /// `-p`: the protocol.
    pub proto: Option<u8>,
    /// `-s`: the original source (LAN host) address, and the prefix length to compare.
    pub src: Option<(Ipv4Addr, u8)>,
    /// `-d`: the original destination (remote) address, and the prefix length.
    pub dst: Option<(Ipv4Addr, u8)>,
    /// `--sport`: the LAN host's port.
    pub sport: Option<u16>,
    /// `--dport`: the remote port.
    pub dport: Option<u16>,
    /// `--state`: the entry's state.
    pub state: Option<State>,
}

/// Why a filter did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Not `a.b.c.d` or `a.b.c.d/bits`.
    #[error("`{0}' is not an address (a.b.c.d or a.b.c.d/bits)")]
    Address(String),
    /// Not a state name ip_masq uses.
    #[error("`{0}' is not a masquerade state (NONE, ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, UDP, ICMP)")]
    State(String),
}

impl MasqFilter {
    /// No condition at all.
    pub fn is_empty(&self) -> bool {
        *self == MasqFilter::default()
    }

    /// Whether entry `e` meets every condition.
    pub fn matches(&self, e: &EntrySnapshot) -> bool {
        let within = |a: Ipv4Addr, (net, bits): (Ipv4Addr, u8)| {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(bits.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(net) & mask
        };
        self.proto.is_none_or(|p| e.proto == p)
            && self.src.is_none_or(|n| within(e.lan.0, n))
            && self.dst.is_none_or(|n| within(e.remote.0, n))
            && self.sport.is_none_or(|p| e.lan.1 == p)
            && self.dport.is_none_or(|p| e.remote.1 == p)
            && self.state.is_none_or(|s| e.state == s)
    }

    /// `a.b.c.d` or `a.b.c.d/bits` (bits 0..=32).
    pub fn parse_net(s: &str) -> Result<(Ipv4Addr, u8), FilterError> {
        let bad = || FilterError::Address(s.to_string());
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (
                a,
                b.parse::<u8>().ok().filter(|b| *b <= 32).ok_or_else(bad)?,
            ),
            None => (s, 32),
        };
        Ok((a.parse().map_err(|_| bad())?, bits))
    }

    /// A state by its ip_masq name, any case.
    pub fn parse_state(s: &str) -> Result<State, FilterError> {
        (0..=11u8)
            .map(State::from_u8)
            .find(|st| st.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| FilterError::State(s.to_string()))
    }
}

/// The portfw connections among `conns` as 2.2 listed them with the masquerade entries
/// (`ip_masq_portfw` made an ordinary `ip_masq` for each): the LAN host as source, the remote
/// client as destination, the forwarded local port as the masquerade port; TCP connections
/// ESTABLISHED (CLOSE_WAIT once a FIN or RST went by), UDP ones UDP. Ids have the top bit set
/// so that they never meet a masquerade entry's.
pub fn portfw_entries(conns: &[crate::redirect::Connection]) -> Vec<EntrySnapshot> {
    conns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == crate::redirect::Kind::PortFw)
        .map(|(i, c)| EntrySnapshot {
            id: crate::masq::EntryId((1 << 63) | i as u64),
            proto: c.orig.proto,
            lan: (c.new.dst, c.new.dport),
            masq: (c.orig.dst, c.orig.dport),
            remote: (c.orig.src, c.orig.sport),
            expire_cs: c.left.as_millis() / 10,
            state: match (c.orig.proto, c.closing) {
                (proto::TCP, false) => State::Established,
                (proto::TCP, true) => State::CloseWait,
                _ => State::Udp,
            },
            out_seq: Default::default(),
            helper: None,
            no_remote_port: false,
            no_lan_port: false,
            no_reply: false,
            n_control: 0,
            packets: 0,
            bytes: 0,
            controlled_by: None,
        })
        .collect()
}

/// 2.2 `masq_proto_name`.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        proto::TCP => "TCP",
        proto::UDP => "UDP",
        proto::ICMP => "ICMP",
        _ => "???",
    }
}

/// The service name of a port (`getservbyport`), from the one built-in services table that
/// rule parsing uses too (first name per port, e.g. `www` for 80 as 1999's netbase).
pub fn service_name(port: u16, p: u8) -> Option<&'static str> {
    crate::chains::port_to_service(port, p)
}

/// `mm:ss.hh` from hundredths (ipchains `print_masq`, HZ = 100).
pub fn format_expire(cs: u64) -> String {
    format!("{:02}:{:02}.{:02}", cs / 6000, (cs / 100) % 60, cs % 100)
}

/// Render `ipchains -M -L [-n] [-v]` from entry snapshots (ipchains 1.3.9 `list_masq` +
/// `print_masq`): the title line, then a header and one line per entry only if entries exist.
pub fn render_masq_list(entries: &[EntrySnapshot], opts: MasqListOptions) -> String {
    let mut out = String::from("IP masquerading entries\n");
    for (k, e) in entries.iter().enumerate() {
        if k == 0 {
            out.push_str("prot ");
            out.push_str(&format!("{:<8} ", "expire"));
            if opts.verbose {
                out.push_str(&format!("{:>10} delta prevd ", "initseq"));
            }
            out.push_str(&format!("{:<20} ", "source"));
            out.push_str(&format!("{:<20} ", "destination"));
            out.push_str("ports\n");
        }
        out.push_str(&format!("{:<5}", proto_name(e.proto)));
        out.push_str(&format_expire(e.expire_cs));
        out.push(' ');
        if opts.verbose {
            out.push_str(&format!(
                "{:>10} {:>5} {:>5} ",
                e.out_seq.init_seq, e.out_seq.delta as i16, e.out_seq.previous_delta as i16
            ));
        }
        out.push_str(&format!("{:<20} ", e.lan.0.to_string()));
        out.push_str(&format!("{:<20} ", e.remote.0.to_string()));
        let named = !opts.numeric && (e.proto == proto::TCP || e.proto == proto::UDP);
        let port = |p: u16| -> String {
            match service_name(p, e.proto) {
                Some(s) if named => s.to_string(),
                _ => p.to_string(),
            }
        };
        out.push_str(&format!(
            "{} ({}) -> {}\n",
            port(e.lan.1),
            e.masq.1,
            port(e.remote.1)
        ));
    }
    out
}

fn pad127(s: &str, out: &mut String) {
    out.push_str(&format!("{s:<127}\n"));
}

/// Render `/proc/net/ip_masquerade` (2.2 `ip_msqhst_procinfo`): 128-byte records, header with
/// `(free=U,T,I)`, then `%s %08X:%04X %08X:%04X %04X %08X %6d %6d %7lu` per entry (expiry in
/// jiffies, HZ = 100).
pub fn render_proc_ip_masquerade(entries: &[EntrySnapshot], free: FreePorts) -> String {
    let mut out = String::with_capacity(128 * (entries.len() + 1));
    pad127(
        &format!(
            "Prc FromIP   FPrt ToIP     TPrt Masq Init-seq  Delta PDelta Expires (free={},{},{})",
            free.udp.0, free.tcp.0, free.icmp.0
        ),
        &mut out,
    );
    for e in entries {
        pad127(
            &format!(
                "{} {:08X}:{:04X} {:08X}:{:04X} {:04X} {:08X} {:6} {:6} {:7}",
                proto_name(e.proto),
                u32::from(e.lan.0),
                e.lan.1,
                u32::from(e.remote.0),
                e.remote.1,
                e.masq.1,
                e.out_seq.init_seq,
                e.out_seq.delta,
                e.out_seq.previous_delta,
                e.expire_cs
            ),
            &mut out,
        );
    }
    out
}

/// Render `/proc/net/ip_masq/app`: header `prot port    n_attach name`, then one 40-byte line
/// per registration (`%-3s  %-7u %-7d  %-17s` padded to 39 + newline). `attached(h)` gives the
/// number of entries bound to helper `h` (2.2 counts per registration; we count per helper).
pub fn render_proc_ip_masq_app(reg: &HelperRegistry, attached: impl Fn(u8) -> u32) -> String {
    let mut out = format!("{:<39}\n", "prot port    n_attach name");
    for (p, port, h) in reg.iter() {
        let pn = match p {
            proto::TCP => "TCP",
            proto::UDP => "UDP",
            _ => "ICMP",
        };
        let line = format!(
            "{:<3}  {:<7} {:<7}  {:<17}",
            pn,
            port,
            attached(h),
            helpers::helper_name(h)
        );
        out.push_str(&format!("{line:<39}\n"));
    }
    out
}

/// 2.2's `ip_masq_hash_key`: `(proto ^ addr ^ port) & (IP_MASQ_TAB_SIZE - 1)`, host order.
fn hash_key(p: u8, addr: u32, port: u16) -> u32 {
    (u32::from(p) ^ addr ^ u32::from(port)) & 0xff
}

/// Flag bits of 2.2's `struct ip_masq` (`include/net/ip_masq.h`, the version that has
/// `/proc/net/ip_masq/{tcp,udp,icmp}`).
mod flag {
    pub const NO_DADDR: u32 = 0x0001;
    pub const NO_DPORT: u32 = 0x0002;
    pub const NO_SPORT: u32 = 0x0008;
    pub const DLOOSE: u32 = 0x0010;
    pub const NO_REPLY: u32 = 0x0080;
    pub const HASHED: u32 = 0x0100;
    pub const OUT_SEQ: u32 = 0x0200;
}

/// Render `/proc/net/ip_masq/{tcp,udp,icmp}` as 2.2's `ip_masq_user_info` does: 128-byte
/// records (`%-127s\n`), the header `Prot SrcIP    SPrt DstIP    DPrt MAddr    MPrt State
/// Flgs Ref Ctl Expires HRow HCol (free=U,T,I)`, then for each entry of protocol `p`
/// `%-4s %08lX:%04X %08lX:%04X %08lX:%04X %-12s %3X %4d %3d %7lu %4d %4d`: source,
/// destination and masquerade side, state, flags (hex), reference count (an idle hashed
/// entry holds one per table: 3), controls (n_control, −1 when controlled), seconds left, and
/// the entry's row in 2.2's masquerade hash table and its place in that row.
///
/// Entries are listed row by row as 2.2 walks its table. The row is 2.2's own hash (by
/// masquerade and remote side, or by masquerade side alone for loose entries); the place in
/// a row counts every protocol, in this engine's table order (2.2 put the newest first).
/// `udp_loose`: UDP entries are destination-loose (the linux22 profile, 2.2's
/// `CONFIG_IP_MASQ_LOOSE_DEFAULT`).
pub fn render_proc_ip_masq_proto(
    entries: &[EntrySnapshot],
    free: FreePorts,
    maddr: Option<std::net::Ipv4Addr>,
    p: u8,
    udp_loose: bool,
) -> String {
    let mut out = String::with_capacity(128 * (entries.len() + 1));
    pad127(
        &format!(
            "Prot SrcIP    SPrt DstIP    DPrt MAddr    MPrt State        Flgs Ref Ctl Expires HRow HCol (free={},{},{})",
            free.udp.0, free.tcp.0, free.icmp.0
        ),
        &mut out,
    );
    let now_addr = u32::from(maddr.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED));
    // (row, entry) for every entry: the place in a row counts all protocols, as 2.2's did.
    let mut rows: Vec<(u32, u32, &EntrySnapshot)> = entries
        .iter()
        .map(|e| {
            let mut f = flag::HASHED;
            if e.no_remote_port {
                f |= flag::NO_DPORT;
            }
            if e.no_lan_port {
                f |= flag::NO_SPORT;
            }
            if e.proto == proto::UDP && udp_loose {
                f |= flag::DLOOSE;
            }
            if e.no_reply {
                f |= flag::NO_REPLY;
            }
            if e.out_seq.delta != 0 || e.out_seq.previous_delta != 0 {
                f |= flag::OUT_SEQ;
            }
            let m = match u32::from(e.masq.0) {
                0 => now_addr,
                a => a,
            };
            let loose = f & (flag::NO_DADDR | flag::NO_DPORT | flag::DLOOSE) != 0;
            let row = if loose {
                hash_key(e.proto, m, e.masq.1)
            } else {
                hash_key(e.proto, m ^ u32::from(e.remote.0), e.masq.1 ^ e.remote.1)
            };
            (row, f, e)
        })
        .collect();
    rows.sort_by_key(|(row, _, _)| *row);
    let mut col = 0;
    let mut last_row = None;
    for (row, f, e) in rows {
        col = if last_row == Some(row) { col + 1 } else { 1 };
        last_row = Some(row);
        if e.proto != p {
            continue;
        }
        let ctl = if e.n_control == 0 && e.controlled_by.is_some() {
            -1
        } else {
            i32::from(e.n_control)
        };
        let m = match u32::from(e.masq.0) {
            0 => now_addr,
            a => a,
        };
        pad127(
            &format!(
                "{:<4} {:08X}:{:04X} {:08X}:{:04X} {:08X}:{:04X} {:<12} {:3X} {:4} {:3} {:7} {:4} {:4}",
                proto_name(e.proto),
                u32::from(e.lan.0),
                e.lan.1,
                u32::from(e.remote.0),
                e.remote.1,
                m,
                e.masq.1,
                e.state.name(),
                f,
                3,
                ctl,
                e.expire_cs / 100,
                row,
                col
            ),
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_view_byte_exact() {
        let reg = HelperRegistry::with_defaults();
        let s = render_proc_ip_masq_app(&reg, |_| 0);
        let expect =
            "prot port    n_attach name             \nTCP  21      0        ftp              \n";
        assert_eq!(s, expect);
        assert!(s.lines().all(|l| l.len() == 39));
    }
}
