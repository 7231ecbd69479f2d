//! An in-process fake mserver for mclient's tests: the four masqdial.v1 services answered
//! from canned, fully populated data (so every JSON field is exercised), with the rule
//! rpcs running on nat-core's real `Firewall`. Users: alice (user, may dial isp1) with
//! password `alice-pw`, root (admin) with `root-pw`; tokens are `tok-<user>`.
//! Also the real `mclient` binary as a child process, bounded in time (`client.rs`).

#![allow(dead_code)]

mod client;
pub use client::*;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_server::{Auth, AuthServer};
use masqdial_proto::v1::dialer_server::{Dialer, DialerServer};
use masqdial_proto::v1::modems_server::{Modems, ModemsServer};
use masqdial_proto::v1::nat_server::{Nat, NatServer};
use nat_core::chains::{parse_command, ChainError, Firewall};
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Bound on any one mclient run.
pub const LIMIT: Duration = Duration::from_secs(30);

type Rs<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn dur(seconds: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos: 0 })
}

/// 2026-11-30T08:58:22Z.
pub const T0: i64 = 1_796_029_102;

#[derive(Clone, Debug)]
struct Who {
    user: String,
    admin: bool,
}

fn caller<T>(req: &Request<T>) -> Result<Who, Status> {
    let h = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match h {
        "Bearer tok-alice" => Ok(Who {
            user: "alice".into(),
            admin: false,
        }),
        "Bearer tok-root" => Ok(Who {
            user: "root".into(),
            admin: true,
        }),
        _ => Err(Status::unauthenticated("not authenticated")),
    }
}

fn admin<T>(req: &Request<T>, rpc: &str) -> Result<Who, Status> {
    let w = caller(req)?;
    if w.admin {
        Ok(w)
    } else {
        Err(Status::permission_denied(format!(
            "{rpc} requires the admin role"
        )))
    }
}

/// Shared state of the fake.
#[derive(Clone, Default)]
pub struct Fake {
    fw: Arc<Mutex<Firewall>>,
    /// Rulesets received by ApplyRuleset, in order.
    pub applied: Arc<Mutex<Vec<String>>>,
}

fn link(name: &str, up: bool) -> pb::LinkStatus {
    if !up {
        return pb::LinkStatus {
            connection: name.into(),
            state: pb::LinkState::Failed as i32,
            last_failure: Some(pb::Failure {
                kind: pb::FailureKind::Busy as i32,
                message: "BUSY on 555".into(),
            }),
            ..Default::default()
        };
    }
    pb::LinkStatus {
        connection: name.into(),
        state: pb::LinkState::Up as i32,
        modem: "modem0".into(),
        speed_bps: 33_600,
        local_address: "10.0.0.2".into(),
        peer_address: "10.0.0.1".into(),
        dns: vec!["10.0.0.53".into()],
        connected_since: ts(T0),
        bytes_in: 2_300,
        bytes_out: 1_843_200,
        packets_in: 10,
        packets_out: 20,
        holders: vec![pb::Holder {
            user: "alice".into(),
            host: "127.0.0.1".into(),
            since: ts(T0),
        }],
        last_failure: None,
        idle_seconds: 3,
        queues: Some(pb::LinkQueues {
            scheduler: "fair".into(),
            egress: Some(pb::QueueStats {
                backlog_bytes: 3_000,
                backlog_packets: 2,
                limit_bytes: 65_536,
                sent_packets: 20,
                sent_bytes: 1_843_200,
                sojourn_p50_ms: 90,
                sojourn_p95_ms: 150,
                hosts: vec![pb::HostShare {
                    host: "192.168.1.10".into(),
                    bytes: 1_843_200,
                    share: 1.0,
                }],
                ..Default::default()
            }),
            ingress: None,
            ingress_shaping: 0.0,
        }),
        budget: Some(pb::Budget {
            bytes_quota: 500_000_000,
            bytes_used: 1_845_500,
            bytes_period: "month".into(),
            bytes_counted: "both".into(),
            bytes_resets_at: ts(T0 + 86_400),
            time_budget_s: 0,
            time_used_s: 120,
            time_period: "day".into(),
            time_resets_at: ts(T0 + 3_600),
            windows: vec!["Mo-Fr 18:00-08:00".into()],
            window_open: true,
            window_changes_at: ts(T0 + 1_800),
            refusal: String::new(),
            utc_offset: "+01:00".into(),
        }),
    }
}

fn connection(name: &str, who: &Who) -> pb::Connection {
    pb::Connection {
        name: name.into(),
        description: if name == "isp1" {
            "first ISP".into()
        } else {
            String::new()
        },
        numbers: vec!["555".into()],
        modems: vec!["modem0".into()],
        allowed: who.admin || name == "isp1",
        state: if name == "isp1" {
            pb::LinkState::Up as i32
        } else {
            pb::LinkState::Failed as i32
        },
    }
}

const NAMES: [&str; 2] = ["isp1", "isp2"];

fn chain_err(e: ChainError) -> Status {
    match e {
        ChainError::NoChain | ChainError::NoTarget | ChainError::BadRule => {
            Status::not_found(e.to_string())
        }
        ChainError::ChainExists => Status::already_exists(e.to_string()),
        ChainError::ChainBusy | ChainError::ChainNotEmpty => {
            Status::failed_precondition(e.to_string())
        }
        _ => Status::invalid_argument(e.to_string()),
    }
}

impl Fake {
    fn chains(&self, chain: Option<&str>) -> Result<Vec<pb::Chain>, Status> {
        let fw = self.fw.lock().map_err(|_| Status::internal("lock"))?;
        let snaps = fw.snapshot(chain).map_err(chain_err)?;
        Ok(snaps
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
            .collect())
    }

    /// Run an ipchains command line on the firewall; answer with the affected chain(s).
    fn ipchains(&self, args: Vec<String>, chain: &str) -> Rs<pb::RuleChangeResponse> {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let inv = parse_command(&a).map_err(|e| Status::invalid_argument(e.to_string()))?;
        {
            let mut fw = self.fw.lock().map_err(|_| Status::internal("lock"))?;
            fw.execute(&inv).map_err(|e| match e {
                nat_core::chains::ExecError::Chain(c) => chain_err(c),
                other => Status::invalid_argument(other.to_string()),
            })?;
        }
        let chains = if chain.is_empty() {
            self.chains(None)?
        } else {
            self.chains(Some(chain)).unwrap_or_default()
        };
        Ok(Response::new(pb::RuleChangeResponse { chains }))
    }

    /// Serve on 127.0.0.1:0; returns the URL and the server task (abort it to "crash").
    pub async fn start(self) -> (String, tokio::task::JoinHandle<()>) {
        {
            let mut fw = self.fw.lock().unwrap_or_else(|e| e.into_inner());
            let _ = fw.restore(
                ":input ACCEPT\n:forward DENY\n:output ACCEPT\n\
                 -A input -s 192.168.0.0/16 -i ppp0 -j DENY -l\n\
                 -A forward -s 192.168.1.0/24 -j MASQ\n",
            );
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn({
            let f = self.clone();
            async move {
                let _ = tonic::transport::Server::builder()
                    .add_service(AuthServer::new(f.clone()))
                    .add_service(DialerServer::new(f.clone()))
                    .add_service(ModemsServer::new(f.clone()))
                    .add_service(NatServer::new(f))
                    .serve_with_incoming(incoming)
                    .await;
            }
        });
        (format!("http://{addr}"), task)
    }
}

#[tonic::async_trait]
impl Auth for Fake {
    async fn login(&self, req: Request<pb::LoginRequest>) -> Rs<pb::LoginResponse> {
        let r = req.into_inner();
        let role = match (r.user.as_str(), r.password.as_str()) {
            ("alice", "alice-pw") => pb::Role::User,
            ("root", "root-pw") => pb::Role::Admin,
            _ => return Err(Status::unauthenticated("bad user name or password")),
        };
        Ok(Response::new(pb::LoginResponse {
            token: format!("tok-{}", r.user),
            expires_at: ts(4_102_444_800),
            role: role as i32,
        }))
    }
    async fn logout(&self, req: Request<pb::LogoutRequest>) -> Rs<pb::LogoutResponse> {
        caller(&req)?;
        Ok(Response::new(pb::LogoutResponse {}))
    }
    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Rs<pb::ListSessionsResponse> {
        admin(&req, "ListSessions")?;
        let s = |id: &str, user: &str, role: pb::Role| pb::Session {
            id: id.into(),
            user: user.into(),
            role: role as i32,
            peer: "127.0.0.1:5555".into(),
            issued_at: ts(T0),
            expires_at: ts(4_102_444_800),
        };
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: vec![
                s("00112233aabbccdd", "alice", pb::Role::User),
                s("8899aabbccddeeff", "root", pb::Role::Admin),
            ],
        }))
    }
    async fn revoke_session(
        &self,
        req: Request<pb::RevokeSessionRequest>,
    ) -> Rs<pb::RevokeSessionResponse> {
        admin(&req, "RevokeSession")?;
        let r = req.into_inner();
        match (r.user.as_str(), r.id.as_str()) {
            ("alice", "") | ("", "00112233aabbccdd") => {
                Ok(Response::new(pb::RevokeSessionResponse { revoked: 1 }))
            }
            _ => Err(Status::not_found("no such session")),
        }
    }
    async fn who_am_i(&self, req: Request<pb::WhoAmIRequest>) -> Rs<pb::WhoAmIResponse> {
        let w = caller(&req)?;
        Ok(Response::new(pb::WhoAmIResponse {
            user: w.user.clone(),
            role: if w.admin {
                pb::Role::Admin as i32
            } else {
                pb::Role::User as i32
            },
            allowed_connections: if w.admin {
                NAMES.iter().map(|s| s.to_string()).collect()
            } else {
                vec!["isp1".into()]
            },
            peer: "127.0.0.1:5555".into(),
            expires_at: ts(4_102_444_800),
        }))
    }
}

#[tonic::async_trait]
impl Dialer for Fake {
    type DialStream = BoxStream<pb::DialEvent>;
    type WatchLinksStream = BoxStream<pb::LinkEvent>;

    async fn list_connections(
        &self,
        req: Request<pb::ListConnectionsRequest>,
    ) -> Rs<pb::ListConnectionsResponse> {
        let w = caller(&req)?;
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: NAMES.iter().map(|n| connection(n, &w)).collect(),
        }))
    }
    async fn get_connection(
        &self,
        req: Request<pb::GetConnectionRequest>,
    ) -> Rs<pb::ConnectionInfo> {
        let w = caller(&req)?;
        let name = req.into_inner().name;
        if !NAMES.contains(&name.as_str()) {
            return Err(Status::not_found(format!("no connection named `{name}`")));
        }
        Ok(Response::new(pb::ConnectionInfo {
            connection: Some(connection(&name, &w)),
            link: Some(link(&name, name == "isp1")),
            dial_prefix: "ATDT".into(),
            redial_attempts: 3,
            redial_delay: dur(5),
            idle_timeout: dur(600),
            max_connect_time: dur(0),
            redial_on_loss: true,
            ppp: Some(pb::PppOptions {
                local_mru: 1500,
                peer_mru: 296,
                local_accm: 0,
                peer_accm: 0x000a_0000,
                local_magic: 0x1234_5678,
                peer_magic: 0x5eed_beef,
                pfc: true,
                acfc: true,
                auth_protocol: "CHAP-MD5".into(),
                fcs32: false,
                frames_in: 10,
                frames_out: 11,
                fcs_errors: 1,
                discarded: 2,
                auth_of_peer: String::new(),
                local_address: "10.0.0.2".into(),
                peer_address: "10.64.64.64".into(),
                dns: vec!["10.0.0.53".into()],
                refused: vec![
                    refusal("LCP", 1, "MRU", true, false, "296"),
                    refusal("IPCP", 42, "", false, true, "0102"),
                ],
            }),
            transcript: vec![pb::TranscriptLine {
                at: ts(T0),
                kind: "send".into(),
                text: "ATDT555".into(),
            }],
            allowed_users: vec!["alice".into()],
            auth: "chap".into(),
            apn: String::new(),
            ppp_username: "user1".into(),
            routes: vec!["0.0.0.0/0".into()],
            has_login_script: false,
        }))
    }
    async fn dial(&self, req: Request<pb::DialRequest>) -> Rs<Self::DialStream> {
        let w = caller(&req)?;
        let name = req.into_inner().name;
        if !w.admin && name != "isp1" {
            return Err(Status::permission_denied(format!(
                "user `{}` may not use connection `{name}`",
                w.user
            )));
        }
        if !NAMES.contains(&name.as_str()) {
            return Err(Status::not_found(format!("no connection named `{name}`")));
        }
        use pb::dial_event::Event;
        let ev = |e: Event| {
            Ok(pb::DialEvent {
                at: ts(T0),
                event: Some(e),
            })
        };
        let mut evs = vec![
            ev(Event::ModemInit(pb::ModemInit {
                modem: "modem0".into(),
                device: "/dev/ttyS0".into(),
            })),
            ev(Event::Dialing(pb::Dialing {
                number: "555".into(),
                index: 1,
                count: 1,
                attempt: 1,
                attempts: 3,
            })),
            ev(Event::Info("ATDT555".into())),
        ];
        if name == "isp2" {
            evs.push(ev(Event::Redial(pb::Redial {
                next_attempt: 2,
                delay: dur(5),
            })));
            evs.push(ev(Event::Failed(pb::Failure {
                kind: pb::FailureKind::Busy as i32,
                message: "BUSY on 555".into(),
            })));
        } else {
            evs.extend([
                ev(Event::Connected(pb::Connected {
                    speed_bps: 33_600,
                    extras: String::new(),
                })),
                ev(Event::LcpUp(pb::LcpUp {
                    peer_mru: 1500,
                    auth_protocol: "CHAP-MD5".into(),
                    local_mru: 1500,
                    local_accm: 0,
                    peer_accm: 0x000a_0000,
                    auth_of_peer: String::new(),
                    refused: vec![refusal("LCP", 1, "MRU", false, false, "128")],
                })),
                ev(Event::AuthOk(pb::AuthOk {
                    protocol: "CHAP-MD5".into(),
                })),
                ev(Event::IpcpUp(pb::IpcpUp {
                    local_address: "10.0.0.2".into(),
                    peer_address: "10.0.0.1".into(),
                    dns: vec!["10.0.0.53".into()],
                    refused: vec![
                        refusal("IPCP", 3, "IP-Address", false, false, "10.64.64.64"),
                        refusal("IPCP", 131, "Secondary-DNS", true, true, "0.0.0.0"),
                    ],
                })),
                ev(Event::Joined(pb::Joined {
                    state: pb::LinkState::Authenticating as i32,
                    holders: vec!["alice".into()],
                })),
                ev(Event::Up(pb::LinkUp {
                    link: Some(link(&name, true)),
                })),
            ]);
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(evs))))
    }
    async fn hangup(&self, req: Request<pb::HangupRequest>) -> Rs<pb::HangupResponse> {
        let w = caller(&req)?;
        let r = req.into_inner();
        if r.force && !w.admin {
            return Err(Status::permission_denied(
                "HangupForce requires the admin role",
            ));
        }
        if w.admin && !NAMES.contains(&r.name.as_str()) {
            return Err(Status::not_found(format!(
                "no connection named `{}`",
                r.name
            )));
        }
        if !w.admin && r.name != "isp1" {
            return Err(Status::permission_denied(format!(
                "user `{}` may not use connection `{}`",
                w.user, r.name
            )));
        }
        Ok(Response::new(pb::HangupResponse {
            dropped: true,
            remaining_holders: vec![],
        }))
    }
    async fn status(&self, req: Request<pb::StatusRequest>) -> Rs<pb::StatusResponse> {
        caller(&req)?;
        let name = req.into_inner().name;
        let links: Vec<pb::LinkStatus> = NAMES
            .iter()
            .filter(|n| name.is_empty() || **n == name)
            .map(|n| link(n, *n == "isp1"))
            .collect();
        if links.is_empty() {
            return Err(Status::not_found(format!("no connection named `{name}`")));
        }
        Ok(Response::new(pb::StatusResponse { links }))
    }
    async fn who(&self, req: Request<pb::WhoRequest>) -> Rs<pb::WhoResponse> {
        caller(&req)?;
        Ok(Response::new(pb::WhoResponse {
            entries: vec![pb::WhoEntry {
                connection: "isp1".into(),
                holder: Some(pb::Holder {
                    user: "alice".into(),
                    host: "127.0.0.1".into(),
                    since: ts(T0),
                }),
            }],
        }))
    }
    async fn watch_links(&self, req: Request<pb::WatchLinksRequest>) -> Rs<Self::WatchLinksStream> {
        caller(&req)?;
        use pb::link_event::Event;
        let evs = vec![
            Ok(pb::LinkEvent {
                at: ts(T0),
                event: Some(Event::State(link("isp1", true))),
            }),
            Ok(pb::LinkEvent {
                at: ts(T0),
                event: Some(Event::Sample(pb::TrafficSample {
                    connection: "isp1".into(),
                    bytes_in: 100,
                    bytes_out: 200,
                    packets_in: 1,
                    packets_out: 2,
                    period_ms: 1000,
                })),
            }),
            Ok(pb::LinkEvent {
                at: ts(T0),
                event: Some(Event::Progress(pb::DialProgress {
                    connection: "isp2".into(),
                    event: Some(pb::DialEvent {
                        at: ts(T0),
                        event: Some(pb::dial_event::Event::Info("ATZ".into())),
                    }),
                })),
            }),
            Ok(pb::LinkEvent {
                at: ts(T0),
                event: Some(Event::Budget(pb::BudgetNotice {
                    connection: "isp1".into(),
                    limit: "window".into(),
                    hang_up: false,
                    remaining: 300,
                    message: "isp1 will hang up in 5m00s: its dialling window closes 2026-11-30 08:00 (UTC+01:00)".into(),
                })),
            }),
            Ok(pb::LinkEvent {
                at: ts(T0),
                event: Some(Event::PacketLog(pb::PacketLog {
                    line: "Packet log: input DENY ppp0 PROTO=17 10.1.2.3:53 10.0.0.2:61001 L=61 S=0x00 I=1 F=0x0000 T=64 (#1)".into(),
                })),
            }),
        ];
        use tokio_stream::StreamExt;
        Ok(Response::new(Box::pin(
            tokio_stream::iter(evs).chain(tokio_stream::pending()),
        )))
    }
}

#[tonic::async_trait]
impl Modems for Fake {
    async fn list_modems(&self, req: Request<pb::ListModemsRequest>) -> Rs<pb::ListModemsResponse> {
        caller(&req)?;
        Ok(Response::new(pb::ListModemsResponse {
            modems: vec![
                pb::Modem {
                    name: "modem0".into(),
                    device: "/dev/ttyS0".into(),
                    baud: 115_200,
                    state: pb::ModemState::Busy as i32,
                    connection: "isp1".into(),
                    last_error: String::new(),
                    modem_lines: true,
                    init: vec!["ATZ".into()],
                    usable_by: vec!["isp1".into(), "isp2".into()],
                    cellular: Some(pb::CellularStatus {
                        manufacturer: "Quectel".into(),
                        model: "EC25".into(),
                        imei: "867698040000000".into(),
                        ident: vec!["Quectel".into(), "EC25".into()],
                        sim: "ready".into(),
                        has_signal: true,
                        signal_dbm: -71,
                        signal_bars: 4,
                        rssi: 21,
                        registration: "roaming".into(),
                        roaming: true,
                        operator: "Example Mobile".into(),
                        access_technology: "LTE".into(),
                        polled_at: Some(prost_types::Timestamp {
                            seconds: 1_700_000_000,
                            nanos: 0,
                        }),
                        error: "no answer to AT+CEREG?".into(),
                        pin_sent: true,
                        pin_accepted: true,
                    }),
                    next_probe: None,
                    failed_probes: 0,
                },
                pb::Modem {
                    name: "modem1".into(),
                    device: "/dev/ttyS1".into(),
                    baud: 0,
                    state: pb::ModemState::Error as i32,
                    connection: String::new(),
                    last_error: "no answer to ATZ".into(),
                    modem_lines: false,
                    init: vec![],
                    usable_by: vec![],
                    cellular: None,
                    next_probe: None,
                    failed_probes: 0,
                },
                pb::Modem {
                    name: "modem2".into(),
                    device: "/dev/ttyUSB0".into(),
                    baud: 115_200,
                    state: pb::ModemState::Absent as i32,
                    last_error: "serial device /dev/ttyUSB0 not found".into(),
                    usable_by: vec!["isp1".into()],
                    next_probe: Some(prost_types::Timestamp {
                        seconds: 1_700_000_008,
                        nanos: 0,
                    }),
                    failed_probes: 3,
                    ..Default::default()
                },
            ],
        }))
    }
}

fn masq_entry() -> pb::MasqEntry {
    pb::MasqEntry {
        id: 7,
        protocol: pb::Protocol::Tcp as i32,
        lan_address: "192.168.1.2".into(),
        lan_port: 1025,
        masq_address: "10.0.0.2".into(),
        masq_port: 61_000,
        remote_address: "198.51.100.1".into(),
        remote_port: 21,
        expire_centis: 90_000,
        state: "ESTABLISHED".into(),
        init_seq: 1,
        delta: 2,
        prev_delta: 0,
        helper: "ftp".into(),
        packets: 4,
        bytes: 400,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Nat for Fake {
    type WatchMasqStream = BoxStream<pb::MasqEvent>;

    async fn list_masq(&self, req: Request<pb::ListMasqRequest>) -> Rs<pb::ListMasqResponse> {
        caller(&req)?;
        Ok(Response::new(pb::ListMasqResponse {
            entries: vec![masq_entry()],
            next_page_token: String::new(),
            ..Default::default()
        }))
    }
    async fn watch_masq(&self, _req: Request<pb::WatchMasqRequest>) -> Rs<Self::WatchMasqStream> {
        Err(Status::unimplemented(
            "Nat.WatchMasq is not implemented by this server yet",
        ))
    }
    async fn free_ports(&self, req: Request<pb::FreePortsRequest>) -> Rs<pb::FreePortsResponse> {
        caller(&req)?;
        Ok(Response::new(pb::FreePortsResponse {
            tcp: 4095,
            udp: 4096,
            icmp: 4096,
            tcp_total: 4096,
            udp_total: 4096,
            icmp_total: 4096,
            port_low: 61_000,
            port_high: 65_095,
        }))
    }
    async fn get_timeouts(&self, req: Request<pb::GetTimeoutsRequest>) -> Rs<pb::Timeouts> {
        caller(&req)?;
        Ok(Response::new(pb::Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
            icmp: 10,
        }))
    }
    async fn set_timeouts(&self, req: Request<pb::Timeouts>) -> Rs<pb::Timeouts> {
        admin(&req, "SetTimeouts")?;
        let t = req.into_inner();
        Ok(Response::new(pb::Timeouts { icmp: 10, ..t }))
    }
    async fn list_chains(&self, req: Request<pb::ListChainsRequest>) -> Rs<pb::ListChainsResponse> {
        caller(&req)?;
        let c = req.into_inner().chain;
        let chains = self.chains(if c.is_empty() { None } else { Some(&c) })?;
        Ok(Response::new(pb::ListChainsResponse { chains }))
    }
    async fn append_rule(&self, req: Request<pb::AppendRuleRequest>) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "AppendRule")?;
        let r = req.into_inner();
        let mut a = vec!["-A".to_string(), r.chain.clone()];
        a.extend(r.spec.split_whitespace().map(String::from));
        self.ipchains(a, &r.chain)
    }
    async fn insert_rule(&self, req: Request<pb::InsertRuleRequest>) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "InsertRule")?;
        let r = req.into_inner();
        let mut a = vec![
            "-I".to_string(),
            r.chain.clone(),
            r.number.max(1).to_string(),
        ];
        a.extend(r.spec.split_whitespace().map(String::from));
        self.ipchains(a, &r.chain)
    }
    async fn replace_rule(
        &self,
        req: Request<pb::ReplaceRuleRequest>,
    ) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "ReplaceRule")?;
        let r = req.into_inner();
        let mut a = vec!["-R".to_string(), r.chain.clone(), r.number.to_string()];
        a.extend(r.spec.split_whitespace().map(String::from));
        self.ipchains(a, &r.chain)
    }
    async fn delete_rule(&self, req: Request<pb::DeleteRuleRequest>) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "DeleteRule")?;
        let r = req.into_inner();
        let mut a = vec!["-D".to_string(), r.chain.clone()];
        match r.which {
            Some(pb::delete_rule_request::Which::Number(n)) => a.push(n.to_string()),
            Some(pb::delete_rule_request::Which::Spec(s)) => {
                a.extend(s.split_whitespace().map(String::from))
            }
            None => return Err(Status::invalid_argument("which rule?")),
        }
        self.ipchains(a, &r.chain)
    }
    async fn flush_chain(&self, req: Request<pb::FlushChainRequest>) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "FlushChain")?;
        let c = req.into_inner().chain;
        let mut a = vec!["-F".to_string()];
        if !c.is_empty() {
            a.push(c.clone());
        }
        self.ipchains(a, &c)
    }
    async fn zero_counters(
        &self,
        req: Request<pb::ZeroCountersRequest>,
    ) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "ZeroCounters")?;
        let c = req.into_inner().chain;
        let mut a = vec!["-Z".to_string()];
        if !c.is_empty() {
            a.push(c.clone());
        }
        self.ipchains(a, &c)
    }
    async fn new_chain(&self, req: Request<pb::NewChainRequest>) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "NewChain")?;
        let c = req.into_inner().chain;
        self.ipchains(vec!["-N".into(), c.clone()], &c)
    }
    async fn delete_chain(
        &self,
        req: Request<pb::DeleteChainRequest>,
    ) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "DeleteChain")?;
        let c = req.into_inner().chain;
        let mut a = vec!["-X".to_string()];
        if !c.is_empty() {
            a.push(c.clone());
        }
        self.ipchains(a, "")
    }
    async fn set_policy(&self, req: Request<pb::SetPolicyRequest>) -> Rs<pb::RuleChangeResponse> {
        admin(&req, "SetPolicy")?;
        let r = req.into_inner();
        self.ipchains(vec!["-P".into(), r.chain.clone(), r.target], &r.chain)
    }
    async fn check_packet(
        &self,
        req: Request<pb::CheckPacketRequest>,
    ) -> Rs<pb::CheckPacketResponse> {
        caller(&req)?;
        Ok(Response::new(pb::CheckPacketResponse {
            verdict: "accepted".into(),
        }))
    }
    async fn apply_ruleset(
        &self,
        req: Request<pb::ApplyRulesetRequest>,
    ) -> Rs<pb::ApplyRulesetResponse> {
        admin(&req, "ApplyRuleset")?;
        let text = req.into_inner().ruleset;
        let mut fw = self.fw.lock().map_err(|_| Status::internal("lock"))?;
        let (chains, rules) = fw
            .restore(&text)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if let Ok(mut a) = self.applied.lock() {
            a.push(text);
        }
        Ok(Response::new(pb::ApplyRulesetResponse {
            chains: chains as u32,
            rules: rules as u32,
        }))
    }
    async fn save_ruleset(
        &self,
        req: Request<pb::SaveRulesetRequest>,
    ) -> Rs<pb::SaveRulesetResponse> {
        caller(&req)?;
        let fw = self.fw.lock().map_err(|_| Status::internal("lock"))?;
        Ok(Response::new(pb::SaveRulesetResponse {
            ruleset: fw.save(),
        }))
    }
    async fn render_view(&self, req: Request<pb::RenderViewRequest>) -> Rs<pb::RenderViewResponse> {
        caller(&req)?;
        let r = req.into_inner();
        let fw = self.fw.lock().map_err(|_| Status::internal("lock"))?;
        let text = if r.view == pb::View::Masq as i32 {
            "IP masquerading entries\n".to_string()
        } else {
            fw.list(
                if r.chain.is_empty() {
                    None
                } else {
                    Some(&r.chain)
                },
                nat_core::chains::ListOptions {
                    numeric: r.numeric,
                    verbose: r.verbose,
                    exact: r.exact,
                    line_numbers: r.line_numbers,
                },
            )
            .map_err(chain_err)?
        };
        Ok(Response::new(pb::RenderViewResponse { text }))
    }
    async fn get_counters(
        &self,
        req: Request<pb::GetCountersRequest>,
    ) -> Rs<pb::GetCountersResponse> {
        caller(&req)?;
        Ok(Response::new(pb::GetCountersResponse {
            counters: HashMap::from([
                ("masq.entries.created".to_string(), 52u64),
                ("drop.malformed".to_string(), 0u64),
            ]),
        }))
    }
    async fn port_fw(&self, req: Request<pb::PortFwRequest>) -> Rs<pb::PortFwResponse> {
        caller(&req)?;
        Ok(Response::new(pb::PortFwResponse {
            text: format!("portfw {}\n", req.get_ref().command),
            warnings: Vec::new(),
        }))
    }
    async fn delete_masq(&self, req: Request<pb::DeleteMasqRequest>) -> Rs<pb::DeleteMasqResponse> {
        caller(&req)?;
        Err(Status::unimplemented(
            "Nat.DeleteMasq is not implemented by this server yet",
        ))
    }
}

fn refusal(
    protocol: &str,
    option: u32,
    name: &str,
    by_peer: bool,
    reject: bool,
    value: &str,
) -> pb::OptionRefusal {
    pb::OptionRefusal {
        protocol: protocol.into(),
        option,
        name: name.into(),
        by_peer,
        reject,
        value: value.into(),
    }
}
