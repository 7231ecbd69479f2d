//! The `Dialer` service: connections, dial (a progress stream), hang-up, status, who and
//! the link watch stream. Authorizes each call by the table in [`super::Rpc`], then calls
//! the link manager and translates through `rpc::convert`; no decisions of its own.

use std::time::Duration;

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::dialer_server;
use tonic::{Request, Response, Status};

use super::forward::{forward, Flow};
use super::{begin, begin_stream, caller, convert, stream_of, ApiError, Caller, Rpc, ServerState};
use crate::config::UserRole;
use crate::link::manager::{LinkManager, Who};
use crate::link::{DialOutcome, HangupOutcome, LinkState};

/// `Dialer` service.
#[derive(Debug, Clone)]
pub struct DialerService {
    state: ServerState,
}

impl DialerService {
    /// New service over the shared state.
    pub fn new(state: ServerState) -> Self {
        DialerService { state }
    }

    fn links(&self) -> Result<&LinkManager, ApiError> {
        Ok(&self.state.control()?.links)
    }

    fn known(&self, name: &str) -> Result<(), Status> {
        super::bounded_name(name)?;
        if self
            .state
            .config()
            .connections
            .iter()
            .any(|c| c.name == name)
        {
            Ok(())
        } else {
            let names: Vec<String> = self
                .state
                .config()
                .connections
                .iter()
                .map(|c| c.name.clone())
                .collect();
            let shown = super::truncated(name, 64);
            let msg = match masqdial_proto::names::did_you_mean(name, &names) {
                Some(s) => format!("no connection named `{shown}` (did you mean `{s}`?)"),
                None => format!("no connection named `{shown}`"),
            };
            Err(ApiError::NotFound(msg).into())
        }
    }
}

fn who(caller: &Caller) -> Who {
    Who {
        user: caller.user.clone(),
        host: caller.peer.ip().to_string(),
    }
}

fn connection(
    links: &LinkManager,
    caller: &Caller,
    name: &str,
) -> Result<pb::Connection, ApiError> {
    let c = links.connection(name)?;
    let state = match links.state(name).unwrap_or(LinkState::Idle) {
        LinkState::Idle => LinkState::Idle,
        _ => links
            .status(name)
            .map(|s| s.state)
            .unwrap_or(LinkState::Idle),
    };
    Ok(pb::Connection {
        name: c.name.clone(),
        description: c.description.clone(),
        numbers: c.numbers.clone(),
        modems: c.modems.clone(),
        allowed: caller.may_use(name),
        state: convert::link_state(state) as i32,
    })
}

#[tonic::async_trait]
impl dialer_server::Dialer for DialerService {
    async fn list_connections(
        &self,
        req: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let (c, _) = begin(req, Rpc::ListConnections, None)?;
        let links = self.links()?;
        let connections = links
            .names()
            .iter()
            .map(|n| connection(links, &c, n))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListConnectionsResponse { connections }))
    }

    async fn get_connection(
        &self,
        req: Request<pb::GetConnectionRequest>,
    ) -> Result<Response<pb::ConnectionInfo>, Status> {
        let (caller, m) = begin(req, Rpc::GetConnection, None)?;
        self.known(&m.name)?;
        let links = self.links()?;
        let c = links.connection(&m.name).map_err(ApiError::from)?.clone();
        let (transcript, ppp) = links.details(&m.name).map_err(ApiError::from)?;
        let admin = caller.role == UserRole::Admin;
        let secs = |s: u64| prost_types::Duration::try_from(Duration::from_secs(s)).ok();
        Ok(Response::new(pb::ConnectionInfo {
            connection: Some(connection(links, &caller, &m.name)?),
            link: links.status(&m.name).ok().map(|s| convert::link_status(&s)),
            dial_prefix: c.dial_prefix.clone(),
            redial_attempts: c.redial_attempts,
            redial_delay: secs(c.redial_delay_s),
            idle_timeout: secs(c.idle_timeout_s),
            max_connect_time: secs(c.max_connect_s),
            redial_on_loss: c.redial_on_loss,
            ppp: ppp.as_ref().map(convert::ppp_options),
            transcript: transcript.iter().map(convert::transcript_line).collect(),
            allowed_users: if admin {
                self.state
                    .config()
                    .users
                    .iter()
                    .filter(|u| u.role == UserRole::Admin || u.connections.contains(&c.name))
                    .map(|u| u.name.clone())
                    .collect()
            } else {
                Vec::new()
            },
            auth: format!("{:?}", c.auth).to_ascii_lowercase(),
            apn: c.apn.clone().unwrap_or_default(),
            ppp_username: c.username.clone(),
            routes: c.routes.iter().map(ToString::to_string).collect(),
            has_login_script: !c.login_script.is_empty(),
        }))
    }

    type DialStream = super::DialStream;

    async fn dial(
        &self,
        req: Request<pb::DialRequest>,
    ) -> Result<Response<Self::DialStream>, Status> {
        let name = req.get_ref().name.clone();
        // An unknown name is NOT_FOUND for everyone (as for cinfo), before "may not use".
        caller(&req)?;
        self.known(&name)?;
        let (c, _, guard) = begin_stream(&self.state, req, Rpc::Dial, Some(&name))?;
        tracing::info!(user = %c.user, peer = %c.peer, connection = %name, "dial");
        let links = self.links()?;
        let progress = links.progress(&name).map_err(ApiError::from)?;
        let outcome = links.dial(&name, who(&c)).await.map_err(ApiError::from)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::DialEvent, Status>>(64);
        let token = self.state.shutdown_token();
        match outcome {
            DialOutcome::Started => {}
            DialOutcome::Joined(state) | DialOutcome::AlreadyHolding(state) => {
                let status = links.status(&name).ok();
                let _ = tx.send(Ok(convert::joined(state, status.as_ref()))).await;
                if state == LinkState::Up {
                    let _ = tx.send(Ok(convert::up_now(status.as_ref()))).await;
                    return Ok(Response::new(stream_of(rx, &token, guard)));
                }
            }
            DialOutcome::Busy => {
                return Err(ApiError::Unavailable(format!("{name} is hanging up")).into())
            }
        }
        self.state.spawn(async move {
            // Steps are progress, not state: a watcher that lagged missed only history (the
            // final step is the newest, never the one dropped), so nothing is resent.
            let step = |ev: crate::link::events::DialEvent| {
                let flow = if ev.step.is_final() {
                    Flow::Stop
                } else {
                    Flow::Go
                };
                (convert::dial_event(&ev), flow)
            };
            forward(progress, &tx, step, |_| futures::stream::empty()).await;
        });
        Ok(Response::new(stream_of(rx, &token, guard)))
    }

    async fn hangup(
        &self,
        req: Request<pb::HangupRequest>,
    ) -> Result<Response<pb::HangupResponse>, Status> {
        let name = req.get_ref().name.clone();
        let force = req.get_ref().force;
        let caller = caller(&req)?;
        self.known(&name)?;
        Rpc::Hangup.authorize(&caller, Some(&name))?;
        if force {
            Rpc::HangupForce.authorize(&caller, Some(&name))?;
        }
        tracing::info!(user = %caller.user, peer = %caller.peer, connection = %name, force, "hangup");
        let out = self
            .links()?
            .hangup(&name, who(&caller), force)
            .await
            .map_err(ApiError::from)?;
        match out {
            HangupOutcome::Dropping => Ok(Response::new(pb::HangupResponse {
                dropped: true,
                remaining_holders: Vec::new(),
            })),
            HangupOutcome::Released { remaining } => Ok(Response::new(pb::HangupResponse {
                dropped: false,
                remaining_holders: remaining,
            })),
            HangupOutcome::NotHolder | HangupOutcome::NotActive => {
                Err(ApiError::FailedPrecondition(format!("{name} is not held by you")).into())
            }
        }
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let (_, m) = begin(req, Rpc::Status, None)?;
        if !m.name.is_empty() {
            self.known(&m.name)?;
        }
        let links = self.links()?;
        let statuses = if m.name.is_empty() {
            links.statuses()
        } else {
            vec![links.status(&m.name).map_err(ApiError::from)?]
        };
        Ok(Response::new(pb::StatusResponse {
            links: statuses.iter().map(convert::link_status).collect(),
        }))
    }

    async fn who(&self, req: Request<pb::WhoRequest>) -> Result<Response<pb::WhoResponse>, Status> {
        begin(req, Rpc::Who, None)?;
        let entries = self
            .links()?
            .statuses()
            .iter()
            .flat_map(|s| {
                s.holders.iter().map(|h| pb::WhoEntry {
                    connection: s.connection.clone(),
                    holder: Some(convert::holder(h)),
                })
            })
            .collect();
        Ok(Response::new(pb::WhoResponse { entries }))
    }

    type WatchLinksStream = super::LinkEventStream;

    async fn watch_links(
        &self,
        req: Request<pb::WatchLinksRequest>,
    ) -> Result<Response<Self::WatchLinksStream>, Status> {
        let (_, _, guard) = begin_stream(&self.state, req, Rpc::WatchLinks, None)?;
        let links = self.links()?;
        let events = links.events();
        // `-l` lines join the stream (mtui's event log shows them).
        let packet_log = self.state.control()?.nat.nat().watch_packet_log();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::LinkEvent, Status>>(256);
        let initial = links.statuses();
        let links = links.clone();
        self.state.spawn(async move {
            for s in &initial {
                if tx.send(Ok(convert::state_event(s))).await.is_err() {
                    return;
                }
            }
            // A watcher that lagged missed state changes: it gets every link's state now.
            let resync = |missed: u64| {
                tracing::debug!(missed, "WatchLinks watcher lagged: resending link states");
                let now: Vec<_> = links.statuses().iter().map(convert::state_event).collect();
                futures::stream::iter(now)
            };
            let link_events = forward(
                events,
                &tx,
                |ev| (convert::link_event(&ev), Flow::Go),
                resync,
            );
            // A watcher too slow for the packet log misses lines (the server log has them
            // all); it is told how many.
            let log_lines = forward(
                packet_log,
                &tx,
                |line| (convert::packet_log_event(line), Flow::Go),
                |missed| {
                    futures::stream::iter([convert::packet_log_event(format!(
                        "({missed} packet log lines missed here: this watcher was too slow; \
                         the server log has them)"
                    ))])
                },
            );
            futures::pin_mut!(link_events, log_lines);
            tokio::select! {
                _ = &mut link_events => {}
                // The engine is gone with the server: link events end too (or the client
                // went away, which ends them at once).
                _ = &mut log_lines => {
                    link_events.await;
                }
            }
        });
        Ok(Response::new(stream_of(
            rx,
            &self.state.shutdown_token(),
            guard,
        )))
    }
}
