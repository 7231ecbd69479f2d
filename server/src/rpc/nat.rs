//! The `Nat` service: masquerade table (list, watch, free ports, timeouts), the ipchains
//! rules, checks, rulesets, views and counters. Authorizes by the table in
//! [`super::Rpc`], logs admin changes, calls [`NatControl`] and translates through
//! `rpc::convert`; the rule logic and persistence live in [`crate::nat_control`].

use futures::StreamExt;
use masqdial_proto::v1 as pb;
use masqdial_proto::v1::nat_server;
use nat_core::chains::ListOptions;
use nat_core::views::{MasqFilter, MasqListOptions};
use tonic::{Request, Response, Status};

use super::forward::{forward, Flow};
use super::{begin, begin_stream, convert, stream_of, ApiError, Caller, Rpc, ServerState};
use crate::nat_control::{NatControl, NatError, View};

/// Masquerade entries per snapshot batch.
const BATCH: usize = 1000;

/// A request's masquerade filter (absent: everything), checked.
fn masq_filter(f: Option<&pb::MasqFilter>) -> Result<MasqFilter, ApiError> {
    let Some(f) = f else {
        return Ok(MasqFilter::default());
    };
    let bad = |e: nat_core::views::FilterError| ApiError::InvalidArgument(e.to_string());
    let port = |p: u32, what: &str| -> Result<Option<u16>, ApiError> {
        match p {
            0 => Ok(None),
            p => u16::try_from(p)
                .map(Some)
                .map_err(|_| ApiError::InvalidArgument(format!("{what} {p} is not a port"))),
        }
    };
    let net = |s: &str| -> Result<Option<(std::net::Ipv4Addr, u8)>, ApiError> {
        if s.is_empty() {
            return Ok(None);
        }
        MasqFilter::parse_net(s).map(Some).map_err(bad)
    };
    Ok(MasqFilter {
        proto: convert::protocol_filter(f.protocol),
        src: net(&f.source)?,
        dst: net(&f.destination)?,
        sport: port(f.source_port, "source port")?,
        dport: port(f.destination_port, "destination port")?,
        state: match f.state.as_str() {
            "" => None,
            s => Some(MasqFilter::parse_state(s).map_err(bad)?),
        },
    })
}

/// The masquerade table as WatchMasq sends it: `Snapshot` batches of at most [`BATCH`]
/// entries (of those `filter` selects), each copied only when the stream is polled, then
/// `SnapshotDone`.
fn snapshot(nat: NatControl, filter: MasqFilter) -> impl futures::Stream<Item = pb::MasqEvent> {
    use pb::masq_event::Event as E;
    futures::stream::unfold(Some((nat, Some(0u32), 0u64)), move |st| async move {
        let (nat, mut from, mut total) = st?;
        while let Some(f) = from {
            let (piece, next) = nat.masq_piece(f, BATCH);
            from = next;
            let piece: Vec<_> = piece.into_iter().filter(|x| filter.matches(x)).collect();
            if piece.is_empty() {
                continue;
            }
            total += piece.len() as u64;
            let ev = pb::MasqEvent {
                event: Some(E::Snapshot(pb::MasqBatch {
                    entries: piece.iter().map(convert::masq_entry).collect(),
                })),
            };
            return Some((ev, Some((nat, from, total))));
        }
        let free = nat.free_ports();
        let done = pb::MasqEvent {
            event: Some(E::SnapshotDone(pb::SnapshotDone {
                total,
                free: Some(convert::free_ports(&free)),
            })),
        };
        Some((done, None))
    })
}

/// `Nat` service.
#[derive(Debug, Clone)]
pub struct NatService {
    state: ServerState,
}

impl NatService {
    /// New service over the shared state.
    pub fn new(state: ServerState) -> Self {
        NatService { state }
    }

    fn nat(&self) -> Result<&NatControl, ApiError> {
        Ok(&self.state.control()?.nat)
    }

    /// Authorize and log an admin change, then answer the changed chains.
    fn change<T>(
        &self,
        req: Request<T>,
        rpc: Rpc,
        f: impl FnOnce(&NatControl, T) -> Result<Vec<nat_core::chains::ChainSnapshot>, NatError>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        let (c, m) = begin(req, rpc, None)?;
        audit(&c, rpc);
        let chains = f(self.nat()?, m).map_err(ApiError::from)?;
        Ok(Response::new(pb::RuleChangeResponse {
            chains: convert::chains(chains),
        }))
    }
}

/// Log an admin change (who, from where, what) after authorization.
fn audit(c: &Caller, what: Rpc) {
    tracing::info!(user = %c.user, peer = %c.peer, rpc = ?what, "nat change");
}

#[tonic::async_trait]
impl nat_server::Nat for NatService {
    async fn list_masq(
        &self,
        req: Request<pb::ListMasqRequest>,
    ) -> Result<Response<pb::ListMasqResponse>, Status> {
        let (_, m) = begin(req, Rpc::ListMasq, None)?;
        let nat = self.nat()?;
        let mut filter = masq_filter(m.filter.as_ref())?;
        if filter.proto.is_none() {
            filter.proto = convert::protocol_filter(m.protocol);
        }
        let size = match m.page_size {
            0 => 1000,
            n => n.min(10_000),
        } as usize;
        let start: u64 = if m.page_token.is_empty() {
            0
        } else {
            m.page_token
                .parse()
                .map_err(|_| ApiError::InvalidArgument("bad page_token".into()))?
        };
        let page = nat.masq_page_filtered(start, size, &filter);
        Ok(Response::new(pb::ListMasqResponse {
            entries: page.entries.iter().map(convert::masq_entry).collect(),
            next_page_token: page.next.map(|n| n.to_string()).unwrap_or_default(),
            total: page.total,
        }))
    }

    type WatchMasqStream = super::MasqEventStream;

    async fn watch_masq(
        &self,
        req: Request<pb::WatchMasqRequest>,
    ) -> Result<Response<Self::WatchMasqStream>, Status> {
        let (_, m, guard) = begin_stream(&self.state, req, Rpc::WatchMasq, None)?;
        let filter = masq_filter(m.filter.as_ref())?;
        let nat = self.nat()?.clone();
        // Feed first, then the table in pieces of BATCH entries (one piece copied at a time,
        // taken only as the client reads: a slow or idle watcher holds one piece, not a
        // copy of the whole table).
        let feed = nat.subscribe_masq();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::MasqEvent, Status>>(4);
        self.state.spawn(async move {
            use pb::masq_event::Event as E;
            let first = snapshot(nat.clone(), filter);
            futures::pin_mut!(first);
            while let Some(ev) = first.next().await {
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            // A watcher that lagged missed deltas: its table is wrong. It gets a Resync
            // marker (clients clear their table) and a whole new snapshot.
            let resync = |missed: u64| {
                tracing::debug!(missed, "WatchMasq watcher lagged: resyncing");
                let marker = pb::MasqEvent {
                    event: Some(E::Resync(pb::MasqResync { missed })),
                };
                futures::stream::iter([marker]).chain(snapshot(nat.clone(), filter))
            };
            let delta = |d: std::sync::Arc<crate::nat_control::MasqDelta>| {
                let mut delta = convert::masq_delta(&d);
                if !filter.is_empty() {
                    let keep: std::collections::HashSet<u64> = d
                        .upserted
                        .iter()
                        .filter(|x| filter.matches(x))
                        .map(|x| x.id.0)
                        .collect();
                    delta.upserted.retain(|x| keep.contains(&x.id));
                }
                let ev = pb::MasqEvent {
                    event: Some(E::Delta(delta)),
                };
                (ev, Flow::Go)
            };
            forward(feed, &tx, delta, resync).await;
        });
        Ok(Response::new(stream_of(
            rx,
            &self.state.shutdown_token(),
            guard,
        )))
    }

    async fn free_ports(
        &self,
        req: Request<pb::FreePortsRequest>,
    ) -> Result<Response<pb::FreePortsResponse>, Status> {
        begin(req, Rpc::FreePorts, None)?;
        Ok(Response::new(convert::free_ports(
            &self.nat()?.free_ports(),
        )))
    }

    async fn get_timeouts(
        &self,
        req: Request<pb::GetTimeoutsRequest>,
    ) -> Result<Response<pb::Timeouts>, Status> {
        begin(req, Rpc::GetTimeouts, None)?;
        Ok(Response::new(convert::timeouts(self.nat()?.timeouts())))
    }

    async fn set_timeouts(
        &self,
        req: Request<pb::Timeouts>,
    ) -> Result<Response<pb::Timeouts>, Status> {
        let (c, m) = begin(req, Rpc::SetTimeouts, None)?;
        audit(&c, Rpc::SetTimeouts);
        let t = self
            .nat()?
            .set_timeouts(m.tcp, m.tcpfin, m.udp)
            .map_err(ApiError::from)?;
        Ok(Response::new(convert::timeouts(t)))
    }

    async fn list_chains(
        &self,
        req: Request<pb::ListChainsRequest>,
    ) -> Result<Response<pb::ListChainsResponse>, Status> {
        let (_, m) = begin(req, Rpc::ListChains, None)?;
        let chains = self.nat()?.chains(&m.chain).map_err(ApiError::from)?;
        Ok(Response::new(pb::ListChainsResponse {
            chains: convert::chains(chains),
        }))
    }

    async fn append_rule(
        &self,
        req: Request<pb::AppendRuleRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        self.change(req, Rpc::AppendRule, |n, m| n.append(&m.chain, &m.spec))
    }

    async fn insert_rule(
        &self,
        req: Request<pb::InsertRuleRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        self.change(req, Rpc::InsertRule, |n, m| {
            n.insert(&m.chain, m.number, &m.spec)
        })
    }

    async fn replace_rule(
        &self,
        req: Request<pb::ReplaceRuleRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        self.change(req, Rpc::ReplaceRule, |n, m| {
            n.replace(&m.chain, m.number, &m.spec)
        })
    }

    async fn delete_rule(
        &self,
        req: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        use pb::delete_rule_request::Which;
        self.change(req, Rpc::DeleteRule, |n, m| match m.which {
            Some(Which::Number(num)) => n.delete_number(&m.chain, num),
            Some(Which::Spec(spec)) => n.delete_spec(&m.chain, &spec),
            None => Err(NatError::Invalid(
                "-D needs a rule number or a rule spec".into(),
            )),
        })
    }

    async fn flush_chain(
        &self,
        req: Request<pb::FlushChainRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        self.change(req, Rpc::FlushChain, |n, m| n.flush(&m.chain))
    }

    async fn zero_counters(
        &self,
        req: Request<pb::ZeroCountersRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        self.change(req, Rpc::ZeroCounters, |n, m| n.zero(&m.chain))
    }

    async fn new_chain(
        &self,
        req: Request<pb::NewChainRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        self.change(req, Rpc::NewChain, |n, m| n.new_chain(&m.chain))
    }

    async fn delete_chain(
        &self,
        req: Request<pb::DeleteChainRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        self.change(req, Rpc::DeleteChain, |n, m| n.delete_chain(&m.chain))
    }

    async fn set_policy(
        &self,
        req: Request<pb::SetPolicyRequest>,
    ) -> Result<Response<pb::RuleChangeResponse>, Status> {
        self.change(req, Rpc::SetPolicy, |n, m| {
            n.set_policy(&m.chain, &m.target)
        })
    }

    async fn check_packet(
        &self,
        req: Request<pb::CheckPacketRequest>,
    ) -> Result<Response<pb::CheckPacketResponse>, Status> {
        let (_, m) = begin(req, Rpc::CheckPacket, None)?;
        let verdict = self
            .nat()?
            .check(&m.chain, &m.spec)
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::CheckPacketResponse { verdict }))
    }

    async fn apply_ruleset(
        &self,
        req: Request<pb::ApplyRulesetRequest>,
    ) -> Result<Response<pb::ApplyRulesetResponse>, Status> {
        let (c, m) = begin(req, Rpc::ApplyRuleset, None)?;
        audit(&c, Rpc::ApplyRuleset);
        let (chains, rules) = self
            .nat()?
            .apply_ruleset(&m.ruleset)
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ApplyRulesetResponse { chains, rules }))
    }

    async fn save_ruleset(
        &self,
        req: Request<pb::SaveRulesetRequest>,
    ) -> Result<Response<pb::SaveRulesetResponse>, Status> {
        begin(req, Rpc::SaveRuleset, None)?;
        Ok(Response::new(pb::SaveRulesetResponse {
            ruleset: self.nat()?.save_ruleset(),
        }))
    }

    async fn render_view(
        &self,
        req: Request<pb::RenderViewRequest>,
    ) -> Result<Response<pb::RenderViewResponse>, Status> {
        let (_, m) = begin(req, Rpc::RenderView, None)?;
        let nat = self.nat()?;
        let view = match pb::View::try_from(m.view).unwrap_or(pb::View::Unspecified) {
            pb::View::Chains => View::Chains {
                chain: (!m.chain.is_empty()).then(|| m.chain.clone()),
                options: ListOptions {
                    numeric: m.numeric,
                    verbose: m.verbose,
                    exact: m.exact,
                    line_numbers: m.line_numbers,
                },
            },
            pb::View::Masq => View::Masq(
                MasqListOptions {
                    numeric: m.numeric,
                    verbose: m.verbose,
                },
                masq_filter(m.masq_filter.as_ref())?,
            ),
            pb::View::ProcMasquerade => View::ProcMasquerade,
            pb::View::ProcFwchains => View::ProcFwchains,
            pb::View::ProcFwnames => View::ProcFwnames,
            pb::View::ProcMasqApp => View::ProcMasqApp,
            pb::View::ProcMasqTcp => View::ProcMasqProto(nat_core::wire::proto::TCP),
            pb::View::ProcMasqUdp => View::ProcMasqProto(nat_core::wire::proto::UDP),
            pb::View::ProcMasqIcmp => View::ProcMasqProto(nat_core::wire::proto::ICMP),
            pb::View::ProcMasqPortfw => View::ProcPortFw,
            pb::View::Portfw => View::PortFw { verbose: m.verbose },
            pb::View::Unspecified => {
                return Err(ApiError::InvalidArgument("view not given".into()).into())
            }
        };
        let text = nat.render(&view).map_err(ApiError::from)?;
        Ok(Response::new(pb::RenderViewResponse { text }))
    }

    async fn port_fw(
        &self,
        req: Request<pb::PortFwRequest>,
    ) -> Result<Response<pb::PortFwResponse>, Status> {
        let (c, m) = begin(req, Rpc::PortFw, None)?;
        audit(&c, Rpc::PortFw);
        let (text, warnings) = self.nat()?.portfw(&m.command).map_err(ApiError::from)?;
        Ok(Response::new(pb::PortFwResponse { text, warnings }))
    }

    async fn delete_masq(
        &self,
        req: Request<pb::DeleteMasqRequest>,
    ) -> Result<Response<pb::DeleteMasqResponse>, Status> {
        let (c, m) = begin(req, Rpc::DeleteMasq, None)?;
        audit(&c, Rpc::DeleteMasq);
        let filter = masq_filter(m.filter.as_ref())?;
        let deleted = self.nat()?.delete_masq(&filter).map_err(ApiError::from)?;
        tracing::info!(user = %c.user, deleted = deleted.len(), "masquerade entries deleted");
        Ok(Response::new(pb::DeleteMasqResponse {
            deleted: deleted.iter().map(convert::masq_entry).collect(),
        }))
    }

    async fn get_counters(
        &self,
        req: Request<pb::GetCountersRequest>,
    ) -> Result<Response<pb::GetCountersResponse>, Status> {
        begin(req, Rpc::GetCounters, None)?;
        Ok(Response::new(pb::GetCountersResponse {
            counters: self.nat()?.counters().into_iter().collect(),
        }))
    }
}
