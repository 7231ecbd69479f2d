//! The one translation between the domain (link manager, nat control, auth) and
//! protobuf, both ways. Pure functions; no business logic, no I/O.

use std::time::{Duration, SystemTime};

use masqdial_proto::v1 as pb;
use nat_core::chains::ChainSnapshot;
use nat_core::masq::EntrySnapshot;

use crate::config::UserRole;
use crate::link::events::{
    DialEvent, DialStep, LinkChange, LinkEvent, LinkStatus, ModemState, ModemView, PppDetails,
    TranscriptEntry,
};
use crate::link::{Failure, FailureKind, Holder, LinkState};
use crate::linkq::{LinkQueues, QueueSnapshot, SchedulerKind};
use crate::nat_control::{MasqDelta, PortUsage, Timeouts};
use masqdial_at::TranscriptKind;
use masqdial_ppp::options::{option_name, Ncp, Refusal};
use masqdial_ppp::AuthProtocol;

pub(super) fn ts(t: SystemTime) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp::from(t))
}

fn duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

pub(super) fn role(role: UserRole) -> i32 {
    match role {
        UserRole::User => pb::Role::User as i32,
        UserRole::Admin => pb::Role::Admin as i32,
    }
}

pub(super) fn link_state(s: LinkState) -> pb::LinkState {
    match s {
        LinkState::Idle => pb::LinkState::Idle,
        LinkState::Dialing => pb::LinkState::Dialing,
        LinkState::Connected => pb::LinkState::Connected,
        LinkState::Authenticating => pb::LinkState::Authenticating,
        LinkState::Up => pb::LinkState::Up,
        LinkState::HangingUp => pb::LinkState::HangingUp,
        LinkState::Failed => pb::LinkState::Failed,
    }
}

fn failure_kind(k: FailureKind) -> pb::FailureKind {
    use pb::FailureKind as P;
    match k {
        FailureKind::NoModem => P::NoModem,
        FailureKind::ModemError => P::ModemError,
        FailureKind::NoDialtone => P::NoDialtone,
        FailureKind::Busy => P::Busy,
        FailureKind::NoAnswer => P::NoAnswer,
        FailureKind::NoCarrier => P::NoCarrier,
        FailureKind::Timeout => P::Timeout,
        FailureKind::LcpFailed => P::LcpFailed,
        FailureKind::AuthFailed => P::AuthFailed,
        FailureKind::IpcpFailed => P::IpcpFailed,
        FailureKind::CarrierLost => P::CarrierLost,
        FailureKind::EchoTimeout => P::EchoTimeout,
        FailureKind::Cancelled => P::Cancelled,
        FailureKind::IdleTimeout => P::IdleTimeout,
        FailureKind::MaxConnectTime => P::MaxConnectTime,
    }
}

fn failure(f: &Failure) -> pb::Failure {
    pb::Failure {
        kind: failure_kind(f.kind) as i32,
        message: f.message.clone(),
    }
}

/// The name of an authentication protocol as the API shows it ("" for none).
fn auth_name(a: Option<AuthProtocol>) -> String {
    match a {
        Some(AuthProtocol::Pap) => "PAP".into(),
        Some(AuthProtocol::Chap) => "CHAP-MD5".into(),
        None => String::new(),
    }
}

pub(super) fn holder(h: &Holder) -> pb::Holder {
    pb::Holder {
        user: h.user.clone(),
        host: h.host.clone(),
        since: ts(h.since),
    }
}

pub(super) fn link_status(s: &LinkStatus) -> pb::LinkStatus {
    let addr = |a: Option<std::net::Ipv4Addr>| a.map(|a| a.to_string()).unwrap_or_default();
    pb::LinkStatus {
        connection: s.connection.clone(),
        state: link_state(s.state) as i32,
        modem: s.modem.clone(),
        speed_bps: s.speed_bps,
        local_address: addr(s.local),
        peer_address: addr(s.peer),
        dns: s.dns.iter().map(ToString::to_string).collect(),
        connected_since: s.connected_since.and_then(ts),
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        packets_in: s.packets_in,
        packets_out: s.packets_out,
        holders: s.holders.iter().map(holder).collect(),
        last_failure: s.last_failure.as_ref().map(failure),
        idle_seconds: s.idle_seconds,
        queues: s.queues.as_deref().map(link_queues),
        budget: s.budget.as_deref().map(budget),
    }
}

fn budget(b: &crate::budget::BudgetView) -> pb::Budget {
    let at = |unix: i64| {
        Some(prost_types::Timestamp {
            seconds: unix,
            nanos: 0,
        })
    };
    pb::Budget {
        bytes_quota: b.bytes_quota.unwrap_or(0),
        bytes_used: b.bytes_used,
        bytes_period: b.bytes_period.to_string(),
        bytes_counted: b.count.to_string(),
        bytes_resets_at: at(b.bytes_resets_at),
        time_budget_s: b.time_budget_s.unwrap_or(0),
        time_used_s: b.time_used_s,
        time_period: b.time_period.to_string(),
        time_resets_at: at(b.time_resets_at),
        windows: b.windows.clone(),
        window_open: b.window_open,
        window_changes_at: b.window_changes_at.and_then(at),
        refusal: b.refusal.clone().unwrap_or_default(),
        utc_offset: crate::budget::offset_text(b.offset),
    }
}

fn queue_stats(q: &QueueSnapshot) -> pb::QueueStats {
    let ms = |d: Option<std::time::Duration>| {
        d.map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
    };
    let s = &q.stats;
    pb::QueueStats {
        backlog_bytes: s.backlog_bytes,
        backlog_packets: s.backlog_packets,
        limit_bytes: s.limit_bytes,
        sent_packets: s.sent_packets,
        sent_bytes: s.sent_bytes,
        dropped_overflow: s.dropped_overflow,
        dropped_aqm: s.dropped_codel,
        ecn_marked: s.ecn_marked,
        sojourn_p50_ms: ms(s.sojourn_p50),
        sojourn_p95_ms: ms(s.sojourn_p95),
        in_flight_bytes: q.in_flight_bytes,
        hosts: s
            .hosts
            .iter()
            .map(|h| pb::HostShare {
                host: h.host.to_string(),
                bytes: h.bytes,
                share: h.share,
            })
            .collect(),
    }
}

fn link_queues(q: &LinkQueues) -> pb::LinkQueues {
    pb::LinkQueues {
        scheduler: match q.egress.as_ref().map(|e| e.kind) {
            Some(SchedulerKind::Fifo) => "fifo".into(),
            _ => "fair".into(),
        },
        egress: q.egress.as_ref().map(queue_stats),
        ingress: q.ingress.as_ref().map(queue_stats),
        ingress_shaping: q.ingress_shaping.unwrap_or(0.0),
    }
}

pub(super) fn dial_event(ev: &DialEvent) -> pb::DialEvent {
    use pb::dial_event::Event as E;
    let event = match &ev.step {
        DialStep::ModemInit { modem, device } => E::ModemInit(pb::ModemInit {
            modem: modem.clone(),
            device: device.clone(),
        }),
        DialStep::Dialing {
            number,
            index,
            count,
            attempt,
            attempts,
        } => E::Dialing(pb::Dialing {
            number: number.clone(),
            index: u32::try_from(*index).unwrap_or(u32::MAX),
            count: u32::try_from(*count).unwrap_or(u32::MAX),
            attempt: *attempt,
            attempts: *attempts,
        }),
        DialStep::Connected { speed_bps, extras } => E::Connected(pb::Connected {
            speed_bps: *speed_bps,
            extras: extras.clone(),
        }),
        DialStep::LcpUp {
            peer_mru,
            auth,
            options,
        } => E::LcpUp(pb::LcpUp {
            peer_mru: u32::from(*peer_mru),
            auth_protocol: auth_name(*auth),
            local_mru: u32::from(options.local_mru),
            local_accm: options.rx_accm,
            peer_accm: options.tx_accm,
            auth_of_peer: auth_name(options.auth_of_peer),
            refused: refusals(Ncp::Lcp, &options.lcp_refused),
        }),
        DialStep::AuthOk(p) => E::AuthOk(pb::AuthOk {
            protocol: match p {
                None => "none".into(),
                Some(_) => auth_name(*p),
            },
        }),
        DialStep::IpcpUp {
            local,
            peer,
            dns,
            options,
        } => E::IpcpUp(pb::IpcpUp {
            local_address: local.to_string(),
            peer_address: peer.to_string(),
            dns: dns.iter().map(ToString::to_string).collect(),
            refused: refusals(Ncp::Ipcp, &options.ipcp_refused),
        }),
        DialStep::Redial {
            next_attempt,
            delay,
        } => E::Redial(pb::Redial {
            next_attempt: *next_attempt,
            delay: duration(*delay),
        }),
        DialStep::Info(text) => E::Info(text.clone()),
        DialStep::Up(status) => E::Up(pb::LinkUp {
            link: Some(link_status(status)),
        }),
        DialStep::Failed(f) => E::Failed(failure(f)),
    };
    pb::DialEvent {
        at: ts(ev.at),
        event: Some(event),
    }
}

/// The `Joined` event of a dial that joined a link already active.
pub(super) fn joined(state: LinkState, status: Option<&LinkStatus>) -> pb::DialEvent {
    pb::DialEvent {
        at: ts(SystemTime::now()),
        event: Some(pb::dial_event::Event::Joined(pb::Joined {
            state: link_state(state) as i32,
            holders: status
                .map(|s| s.holders.iter().map(|h| h.user.clone()).collect())
                .unwrap_or_default(),
        })),
    }
}

/// The `Up` event for a dial that joined a link already up.
pub(super) fn up_now(status: Option<&LinkStatus>) -> pb::DialEvent {
    pb::DialEvent {
        at: ts(SystemTime::now()),
        event: Some(pb::dial_event::Event::Up(pb::LinkUp {
            link: status.map(link_status),
        })),
    }
}

pub(super) fn link_event(ev: &LinkEvent) -> pb::LinkEvent {
    use pb::link_event::Event as E;
    let event = match &ev.change {
        LinkChange::State(s) => E::State(link_status(s)),
        LinkChange::Sample(s) => E::Sample(pb::TrafficSample {
            connection: s.connection.clone(),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            packets_in: s.packets_in,
            packets_out: s.packets_out,
            period_ms: u32::try_from(s.period.as_millis()).unwrap_or(1000),
        }),
        LinkChange::Progress { connection, event } => E::Progress(pb::DialProgress {
            connection: connection.clone(),
            event: Some(dial_event(event)),
        }),
        LinkChange::Budget { connection, notice } => E::Budget(pb::BudgetNotice {
            connection: connection.clone(),
            limit: notice.limit.name().into(),
            hang_up: notice.hang_up,
            remaining: notice.remaining,
            message: notice.message.clone(),
        }),
    };
    pb::LinkEvent {
        at: ts(ev.at),
        event: Some(event),
    }
}

/// A `-l` line as a `WatchLinks` event.
pub(super) fn packet_log_event(line: String) -> pb::LinkEvent {
    pb::LinkEvent {
        at: ts(SystemTime::now()),
        event: Some(pb::link_event::Event::PacketLog(pb::PacketLog { line })),
    }
}

/// A link's current state as a `WatchLinks` event.
pub(super) fn state_event(s: &LinkStatus) -> pb::LinkEvent {
    pb::LinkEvent {
        at: ts(SystemTime::now()),
        event: Some(pb::link_event::Event::State(link_status(s))),
    }
}

pub(super) fn transcript_line(l: &TranscriptEntry) -> pb::TranscriptLine {
    pb::TranscriptLine {
        at: ts(l.at),
        kind: match l.kind {
            TranscriptKind::Send => "send",
            TranscriptKind::Recv => "recv",
            TranscriptKind::Info => "info",
            TranscriptKind::Error => "error",
        }
        .into(),
        text: l.text.clone(),
    }
}

pub(super) fn ppp_options(d: &PppDetails) -> pb::PppOptions {
    let o = &d.options;
    pb::PppOptions {
        local_mru: u32::from(o.local_mru),
        peer_mru: u32::from(o.peer_mru),
        local_accm: o.rx_accm,
        peer_accm: o.tx_accm,
        local_magic: o.local_magic,
        peer_magic: o.peer_magic,
        pfc: o.tx_pfc || o.rx_pfc,
        acfc: o.tx_acfc || o.rx_acfc,
        auth_protocol: auth_name(o.auth_by_peer),
        fcs32: o.tx_fcs32 || o.rx_fcs32,
        frames_in: d.stats.frames_in,
        frames_out: d.stats.frames_out,
        fcs_errors: d.stats.fcs_errors,
        discarded: d.stats.discarded,
        auth_of_peer: auth_name(o.auth_of_peer),
        local_address: o.local_ip.map(|a| a.to_string()).unwrap_or_default(),
        peer_address: o.peer_ip.map(|a| a.to_string()).unwrap_or_default(),
        dns: o.dns.iter().map(ToString::to_string).collect(),
        refused: refusals(Ncp::Lcp, &o.lcp_refused)
            .into_iter()
            .chain(refusals(Ncp::Ipcp, &o.ipcp_refused))
            .collect(),
    }
}

/// Refused options of one control protocol.
pub(super) fn refusals(ncp: Ncp, list: &[Refusal]) -> Vec<pb::OptionRefusal> {
    list.iter()
        .map(|r| pb::OptionRefusal {
            protocol: match ncp {
                Ncp::Lcp => "LCP",
                Ncp::Ipcp => "IPCP",
            }
            .into(),
            option: u32::from(r.option),
            name: option_name(ncp, r.option).unwrap_or_default().into(),
            by_peer: r.by_peer,
            reject: r.reject,
            value: r.value(ncp),
        })
        .collect()
}

pub(super) fn modem(m: &ModemView) -> pb::Modem {
    pb::Modem {
        name: m.name.clone(),
        device: m.device.clone(),
        baud: m.baud,
        state: match m.state {
            ModemState::Busy => pb::ModemState::Busy,
            ModemState::Absent => pb::ModemState::Absent,
            ModemState::Error => pb::ModemState::Error,
            ModemState::Idle => pb::ModemState::Idle,
        } as i32,
        connection: m.connection.clone().unwrap_or_default(),
        last_error: m.last_error.clone().unwrap_or_default(),
        modem_lines: m.modem_lines,
        cellular: m.cellular.as_ref().map(cellular),
        next_probe: m.next_probe.map(prost_types::Timestamp::from),
        failed_probes: m.failed_probes,
        ..Default::default()
    }
}

/// A cellular modem's polled status.
pub(super) fn cellular(c: &crate::link::events::CellView) -> pb::CellularStatus {
    use masqdial_at::cell::{act_name, SimState};
    let s = &c.status;
    let reg = s.registration();
    let act = s
        .operator
        .as_ref()
        .and_then(|o| o.act)
        .or_else(|| reg.and_then(|r| r.act));
    pb::CellularStatus {
        manufacturer: s.manufacturer.clone().unwrap_or_default(),
        model: s.model.clone().unwrap_or_default(),
        imei: s.imei.clone().unwrap_or_default(),
        ident: s.ident.clone(),
        sim: match &s.sim {
            Some(SimState::Ready) => "ready".into(),
            Some(SimState::PinRequired) => "pin-required".into(),
            Some(SimState::PukRequired) => "puk-required".into(),
            Some(SimState::Other(t)) => t.clone(),
            None => String::new(),
        },
        has_signal: s.signal.and_then(|q| q.dbm()).is_some(),
        signal_dbm: s.signal.and_then(|q| q.dbm()).unwrap_or(0),
        signal_bars: s.signal.map_or(0, |q| u32::from(q.bars())),
        rssi: s.signal.map_or(99, |q| u32::from(q.rssi)),
        registration: reg.map(|r| r.status.name().to_string()).unwrap_or_default(),
        roaming: reg.is_some_and(|r| r.status.roaming()),
        operator: s
            .operator
            .as_ref()
            .and_then(|o| o.name.clone())
            .unwrap_or_default(),
        access_technology: act.map(|a| act_name(a).to_string()).unwrap_or_default(),
        polled_at: c.at.and_then(ts),
        error: c.error.clone().unwrap_or_default(),
        pin_sent: s.pin.is_some(),
        pin_accepted: s.pin == Some(true),
    }
}

/// nat-core's protocol number as the API's enum.
pub(super) fn protocol(p: u8) -> pb::Protocol {
    match p {
        6 => pb::Protocol::Tcp,
        17 => pb::Protocol::Udp,
        1 => pb::Protocol::Icmp,
        _ => pb::Protocol::Unspecified,
    }
}

/// The API's protocol filter as a protocol number (`None`: all).
pub(super) fn protocol_filter(p: i32) -> Option<u8> {
    match pb::Protocol::try_from(p).unwrap_or(pb::Protocol::Unspecified) {
        pb::Protocol::Tcp => Some(6),
        pb::Protocol::Udp => Some(17),
        pb::Protocol::Icmp => Some(1),
        pb::Protocol::Unspecified => None,
    }
}

pub(super) fn masq_entry(e: &EntrySnapshot) -> pb::MasqEntry {
    pb::MasqEntry {
        id: e.id.0,
        protocol: protocol(e.proto) as i32,
        lan_address: e.lan.0.to_string(),
        lan_port: u32::from(e.lan.1),
        masq_address: e.masq.0.to_string(),
        masq_port: u32::from(e.masq.1),
        remote_address: e.remote.0.to_string(),
        remote_port: u32::from(e.remote.1),
        expire_centis: e.expire_cs,
        state: e.state.name().to_string(),
        init_seq: e.out_seq.init_seq,
        delta: e.out_seq.delta,
        prev_delta: e.out_seq.previous_delta,
        helper: e.helper.unwrap_or_default().to_string(),
        no_remote_port: e.no_remote_port,
        controls: u32::from(e.n_control),
        packets: e.packets,
        bytes: e.bytes,
        ..Default::default()
    }
}

pub(super) fn free_ports(p: &PortUsage) -> pb::FreePortsResponse {
    let f = &p.free;
    pb::FreePortsResponse {
        tcp: f.tcp.0,
        udp: f.udp.0,
        icmp: f.icmp.0,
        tcp_total: f.tcp.1,
        udp_total: f.udp.1,
        icmp_total: f.icmp.1,
        port_low: u32::from(p.port_low),
        port_high: u32::from(p.port_high),
    }
}

pub(super) fn masq_delta(d: &MasqDelta) -> pb::MasqDelta {
    pb::MasqDelta {
        upserted: d.upserted.iter().map(masq_entry).collect(),
        removed: d.removed.clone(),
        free: Some(free_ports(&d.free)),
    }
}

pub(super) fn timeouts(t: Timeouts) -> pb::Timeouts {
    pb::Timeouts {
        tcp: t.tcp,
        tcpfin: t.tcpfin,
        udp: t.udp,
        icmp: t.icmp,
    }
}

pub(super) fn chains(snaps: Vec<ChainSnapshot>) -> Vec<pb::Chain> {
    snaps
        .into_iter()
        .map(|c| pb::Chain {
            name: c.name,
            policy: c.policy,
            builtin: c.builtin,
            references: c.references,
            policy_packets: c.policy_packets,
            policy_bytes: c.policy_bytes,
            rules: c
                .rules
                .into_iter()
                .map(|r| pb::Rule {
                    number: r.number,
                    spec: r.spec,
                    target: r.target,
                    protocol: r.protocol,
                    source: r.source,
                    destination: r.destination,
                    source_ports: r.source_ports,
                    destination_ports: r.destination_ports,
                    interface: r.interface,
                    options: r.options,
                    redirect_port: r.redirect_port,
                    packets: r.packets,
                    bytes: r.bytes,
                    log: r.log,
                    tos_and: r.tos_and,
                    tos_xor: r.tos_xor,
                    mark: r.mark,
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use masqdial_ppp::{NegotiatedOptions, PppStats};

    #[test]
    fn ppp_options_carry_both_directions_and_refusals() {
        let options = NegotiatedOptions {
            local_mru: 1500,
            peer_mru: 296,
            rx_accm: 0,
            tx_accm: 0x000A_0000,
            auth_by_peer: Some(AuthProtocol::Chap),
            auth_of_peer: None,
            local_ip: Some("10.0.2.15".parse().expect("addr")),
            peer_ip: Some("10.64.64.64".parse().expect("addr")),
            dns: vec![],
            lcp_refused: vec![Refusal {
                option: 1,
                by_peer: true,
                reject: false,
                data: vec![0x01, 0x28],
            }],
            ipcp_refused: vec![Refusal {
                option: 129,
                by_peer: true,
                reject: true,
                data: vec![0; 4],
            }],
            ..NegotiatedOptions::default()
        };
        let p = ppp_options(&PppDetails {
            options: options.clone(),
            stats: PppStats::default(),
        });
        assert_eq!((p.local_mru, p.peer_mru), (1500, 296));
        assert_eq!((p.local_accm, p.peer_accm), (0, 0x000A_0000));
        assert_eq!(p.auth_protocol, "CHAP-MD5");
        assert_eq!(p.auth_of_peer, "");
        assert_eq!(p.local_address, "10.0.2.15");
        assert_eq!(p.peer_address, "10.64.64.64");
        assert!(p.dns.is_empty());
        assert_eq!(
            p.refused,
            [
                pb::OptionRefusal {
                    protocol: "LCP".into(),
                    option: 1,
                    name: "MRU".into(),
                    by_peer: true,
                    reject: false,
                    value: "296".into(),
                },
                pb::OptionRefusal {
                    protocol: "IPCP".into(),
                    option: 129,
                    name: "Primary-DNS".into(),
                    by_peer: true,
                    reject: true,
                    value: "0.0.0.0".into(),
                },
            ]
        );
        // The dial steps carry their layer's refusals.
        let ev = dial_event(&DialEvent {
            at: SystemTime::UNIX_EPOCH,
            step: DialStep::LcpUp {
                peer_mru: 296,
                auth: Some(AuthProtocol::Chap),
                options: Box::new(options.clone()),
            },
        });
        let Some(pb::dial_event::Event::LcpUp(l)) = ev.event else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (l.local_mru, l.peer_mru, l.peer_accm),
            (1500, 296, 0x000A_0000)
        );
        assert_eq!(l.refused.len(), 1);
        assert_eq!(l.refused[0].name, "MRU");
        let ev = dial_event(&DialEvent {
            at: SystemTime::UNIX_EPOCH,
            step: DialStep::IpcpUp {
                local: "10.0.2.15".parse().expect("addr"),
                peer: "10.64.64.64".parse().expect("addr"),
                dns: vec![],
                options: Box::new(options),
            },
        });
        let Some(pb::dial_event::Event::IpcpUp(i)) = ev.event else {
            panic!("{ev:?}")
        };
        assert_eq!(i.refused.len(), 1);
        assert_eq!(i.refused[0].value, "0.0.0.0");
    }
}
