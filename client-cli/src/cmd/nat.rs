//! NAT commands: `masq` (paged, with optional reverse DNS, `conntrack`-style filters and
//! `-D`), `watch --masq`, `portfw`, `proc`, `ports` and `timeouts`.
//!
//! Must not touch the session's token store, links or the ipchains rules (see
//! [`super::ipchains`]).

use crate::cli::{MasqFilterArgs, TimeoutsArgs};
use crate::errors::Failure;
use crate::format;
use crate::json as j;
use crate::run::Session;
use masqdial_proto::v1 as pb;
use serde_json::{json, Value};
use std::time::Duration;

/// Page size used to read the whole masquerade table.
const MASQ_PAGE: u32 = 1000;

/// The rpc form of `conntrack`-style filters (protocol names checked here; addresses and
/// states by the server).
pub fn masq_filter(f: &MasqFilterArgs) -> Result<pb::MasqFilter, Failure> {
    let protocol = match f.proto.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => pb::Protocol::Unspecified,
        Some("tcp" | "6") => pb::Protocol::Tcp,
        Some("udp" | "17") => pb::Protocol::Udp,
        Some("icmp" | "1") => pb::Protocol::Icmp,
        Some(other) => {
            return Err(Failure::usage(
                format!("-p {other}: the masquerade table holds only tcp, udp and icmp"),
                "`mclient masq -p tcp` (or udp, icmp)",
            ))
        }
    };
    Ok(pb::MasqFilter {
        protocol: protocol as i32,
        source: f.src.clone().unwrap_or_default(),
        destination: f.dst.clone().unwrap_or_default(),
        state: f.state.clone().unwrap_or_default(),
        source_port: f.sport.map_or(0, u32::from),
        destination_port: f.dport.map_or(0, u32::from),
    })
}

/// One entry on one line, as `watch --masq` prints it: protocol, LAN side, remote side,
/// masquerade port, state, time left.
pub fn masq_line(e: &pb::MasqEntry) -> String {
    let proto = match pb::Protocol::try_from(e.protocol).unwrap_or(pb::Protocol::Unspecified) {
        pb::Protocol::Tcp => "tcp",
        pb::Protocol::Udp => "udp",
        pb::Protocol::Icmp => "icmp",
        pb::Protocol::Unspecified => "?",
    };
    format!(
        "{proto:<4} {}:{} -> {}:{} masq {} {} {}",
        e.lan_address,
        e.lan_port,
        e.remote_address,
        e.remote_port,
        e.masq_port,
        e.state,
        nat_core::views::format_expire(e.expire_centis)
    )
}

/// What `watch --masq` makes of the stream: the entries it knows (to tell NEW from UPDATE
/// and to name what was destroyed) and the lines to print. Pure.
#[derive(Debug, Default)]
pub struct MasqWatch {
    known: std::collections::HashMap<u64, pb::MasqEntry>,
    in_snapshot: bool,
}

/// One `watch --masq` event: `[NEW]`, `[UPDATE]` (the state changed) or `[DESTROY]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MasqChange {
    /// `new`, `update` or `destroy`.
    pub kind: &'static str,
    /// The entry (its last known value for `destroy`).
    pub entry: pb::MasqEntry,
}

impl MasqWatch {
    /// Feed one stream event; answers the changes to print. The snapshot is taken in
    /// silently (a summary line is the caller's), a resync starts a new one.
    pub fn feed(&mut self, ev: pb::MasqEvent) -> (Vec<MasqChange>, Option<u64>) {
        use pb::masq_event::Event as E;
        let mut out = Vec::new();
        match ev.event {
            Some(E::Snapshot(b)) => {
                if !self.in_snapshot {
                    self.known.clear();
                    self.in_snapshot = true;
                }
                for e in b.entries {
                    self.known.insert(e.id, e);
                }
            }
            Some(E::SnapshotDone(d)) => {
                self.in_snapshot = false;
                return (out, Some(d.total.max(self.known.len() as u64)));
            }
            Some(E::Resync(_)) => {
                self.known.clear();
                self.in_snapshot = true;
            }
            Some(E::Delta(d)) => {
                for e in d.upserted {
                    match self.known.insert(e.id, e.clone()) {
                        None => out.push(MasqChange {
                            kind: "new",
                            entry: e,
                        }),
                        Some(old) if old.state != e.state => out.push(MasqChange {
                            kind: "update",
                            entry: e,
                        }),
                        Some(_) => {}
                    }
                }
                for id in d.removed {
                    if let Some(e) = self.known.remove(&id) {
                        out.push(MasqChange {
                            kind: "destroy",
                            entry: e,
                        });
                    }
                }
            }
            None => {}
        }
        (out, None)
    }
}

impl Session {
    pub(crate) async fn masq_entries(&mut self) -> anyhow::Result<Vec<pb::MasqEntry>> {
        self.masq_entries_filtered(None).await
    }

    async fn masq_entries_filtered(
        &mut self,
        filter: Option<pb::MasqFilter>,
    ) -> anyhow::Result<Vec<pb::MasqEntry>> {
        let mut c = self.clients().await?;
        let mut all = Vec::new();
        let mut page_token = String::new();
        // Bounded: at most 10 000 pages of MASQ_PAGE entries (far beyond any port range).
        for _ in 0..10_000 {
            let r = c
                .nat
                .list_masq(pb::ListMasqRequest {
                    page_size: MASQ_PAGE,
                    page_token: page_token.clone(),
                    protocol: 0,
                    filter: filter.clone(),
                })
                .await?
                .into_inner();
            all.extend(r.entries);
            if r.next_page_token.is_empty() {
                break;
            }
            page_token = r.next_page_token;
        }
        Ok(all)
    }

    pub(crate) async fn masq(
        &mut self,
        numeric: bool,
        verbose: bool,
        resolve: Option<Duration>,
        filter: &MasqFilterArgs,
    ) -> anyhow::Result<()> {
        let filter = (!filter.is_empty())
            .then(|| masq_filter(filter))
            .transpose()?;
        if self.json {
            let entries = self.masq_entries_filtered(filter).await?;
            let v: Vec<Value> = entries.iter().map(j::masq_entry).collect();
            self.emit("", json!({"entries": v}));
            return Ok(());
        }
        // The server renders it (`ipchains -M -L`), with nat-core's one services table for
        // the names; addresses are resolved only with -r, and never past its bound.
        let mut c = self.clients().await?;
        let mut text = c
            .nat
            .render_view(pb::RenderViewRequest {
                view: pb::View::Masq as i32,
                numeric,
                verbose,
                masq_filter: filter,
                ..Default::default()
            })
            .await?
            .into_inner()
            .text;
        if let Some(bound) = resolve {
            let addrs = crate::rdns::listing_addrs(&text);
            let names = tokio::task::spawn_blocking(move || {
                let r = crate::rdns::SystemResolver::new(bound);
                crate::rdns::resolve_all(&addrs, std::sync::Arc::new(r), bound)
            })
            .await
            .unwrap_or_default();
            text = crate::rdns::rename_listing(&text, &names);
        }
        self.emit(&text, Value::Null);
        Ok(())
    }

    /// `masq -D` with filters: delete the entries they select (admin), print each.
    pub(crate) async fn masq_delete(&mut self, filter: &MasqFilterArgs) -> anyhow::Result<()> {
        if filter.is_empty() {
            return Err(Failure::usage(
                "masq -D needs at least one filter (-p, -s, -d, --sport, --dport, --state)",
                "list first with the same filters: `mclient masq -s 192.168.1.10 -p tcp`",
            )
            .into());
        }
        let f = masq_filter(filter)?;
        let mut c = self.clients().await?;
        let deleted = c
            .nat
            .delete_masq(pb::DeleteMasqRequest { filter: Some(f) })
            .await?
            .into_inner()
            .deleted;
        let mut human: String = deleted
            .iter()
            .map(|e| format!("[DESTROY] {}\n", masq_line(e)))
            .collect();
        human.push_str(&format!(
            "mclient: {} masquerade entr{} deleted\n",
            deleted.len(),
            if deleted.len() == 1 { "y" } else { "ies" }
        ));
        let v: Vec<Value> = deleted.iter().map(j::masq_entry).collect();
        self.emit(&human, json!({ "deleted": v }));
        Ok(())
    }

    /// `watch --masq`: the masquerade table's changes until interrupted (`conntrack -E`).
    pub(crate) async fn watch_masq(
        &mut self,
        filter: &MasqFilterArgs,
        reconnect_for: Duration,
    ) -> anyhow::Result<()> {
        let f = (!filter.is_empty())
            .then(|| masq_filter(filter))
            .transpose()?;
        let server = self.settings.server.clone();
        let mut state = MasqWatch::default();
        let deadline_of = |d: Duration| tokio::time::Instant::now() + d;
        let mut retry_until: Option<tokio::time::Instant> = None;
        loop {
            let stream = async {
                let mut c = self.clients().await?;
                anyhow::Ok(
                    c.nat
                        .watch_masq(pb::WatchMasqRequest {
                            period_ms: 1000,
                            filter: f.clone(),
                        })
                        .await?
                        .into_inner(),
                )
            }
            .await;
            let mut s = match stream {
                Ok(s) => s,
                Err(e) => {
                    let until = *retry_until.get_or_insert_with(|| deadline_of(reconnect_for));
                    if reconnect_for.is_zero() || tokio::time::Instant::now() >= until {
                        return Err(e);
                    }
                    self.channel = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    m = s.message() => m,
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                };
                let ev = match next {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(e) => {
                        use tonic::Code as C;
                        if matches!(
                            e.code(),
                            C::Unauthenticated
                                | C::PermissionDenied
                                | C::InvalidArgument
                                | C::Unimplemented
                        ) {
                            return Err(e.into());
                        }
                        break;
                    }
                };
                let (changes, done) = state.feed(ev);
                if let Some(total) = done {
                    self.emit(
                        &format!("mclient: watching the masquerade table at {server}: {total} entries; changes follow"),
                        json!({"event": "snapshot", "entries": total}),
                    );
                }
                for ch in changes {
                    self.emit(
                        &format!("[{}] {}", ch.kind.to_uppercase(), masq_line(&ch.entry)),
                        json!({"event": ch.kind, "entry": j::masq_entry(&ch.entry)}),
                    );
                }
            }
            if reconnect_for.is_zero() {
                return Err(Failure::new(
                    crate::errors::Kind::Unreachable,
                    format!("lost the server at {server}"),
                    Some("run `mclient watch --masq` again once mserver is back".into()),
                )
                .into());
            }
            self.channel = None;
            self.emit(
                &format!("mclient: lost the server at {server}; reconnecting…"),
                json!({"event": "reconnecting", "server": server}),
            );
            retry_until = Some(deadline_of(reconnect_for));
        }
    }

    async fn render(
        &mut self,
        view: pb::View,
        numeric: bool,
        verbose: bool,
    ) -> anyhow::Result<String> {
        let mut c = self.clients().await?;
        Ok(c.nat
            .render_view(pb::RenderViewRequest {
                view: view as i32,
                chain: String::new(),
                numeric,
                verbose,
                exact: false,
                line_numbers: false,
                masq_filter: None,
            })
            .await?
            .into_inner()
            .text)
    }

    pub(crate) async fn portfw(&mut self, args: &[String]) -> anyhow::Result<()> {
        let list = args.is_empty() || args.iter().any(|a| a == "-l" || a == "--list");
        let verbose = args.iter().any(|a| a == "-v" || a == "--verbose");
        let (text, warnings) = if list {
            (
                self.render(pb::View::Portfw, true, verbose).await?,
                Vec::new(),
            )
        } else {
            let mut c = self.clients().await?;
            let r = c
                .nat
                .port_fw(pb::PortFwRequest {
                    command: args.join(" "),
                })
                .await?
                .into_inner();
            (r.text, r.warnings)
        };
        if !self.json {
            for w in &warnings {
                eprintln!("mclient: warning: {}", crate::safe::line(w));
            }
        }
        self.emit(&text, json!({ "text": text, "warnings": warnings }));
        Ok(())
    }

    pub(crate) async fn proc_view(&mut self, name: &str) -> anyhow::Result<()> {
        let name = name.trim_start_matches("/proc/").trim_start_matches("net/");
        let view = match name {
            "ip_masquerade" => pb::View::ProcMasquerade,
            "ip_masq/tcp" => pb::View::ProcMasqTcp,
            "ip_masq/udp" => pb::View::ProcMasqUdp,
            "ip_masq/icmp" => pb::View::ProcMasqIcmp,
            "ip_masq/app" => pb::View::ProcMasqApp,
            "ip_masq/portfw" => pb::View::ProcMasqPortfw,
            "ip_fwchains" => pb::View::ProcFwchains,
            "ip_fwnames" => pb::View::ProcFwnames,
            other => {
                return Err(crate::errors::Failure::usage(
                    format!("no /proc view `{other}'"),
                    "one of ip_masquerade, ip_masq/tcp, ip_masq/udp, ip_masq/icmp, ip_masq/app, ip_masq/portfw, ip_fwchains, ip_fwnames",
                )
                .into())
            }
        };
        let text = self.render(view, true, false).await?;
        self.emit(&text, json!({ "text": text }));
        Ok(())
    }

    pub(crate) async fn ports(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let f = c
            .nat
            .free_ports(pb::FreePortsRequest {})
            .await?
            .into_inner();
        let rows = vec![
            vec!["tcp".into(), f.tcp.to_string(), f.tcp_total.to_string()],
            vec!["udp".into(), f.udp.to_string(), f.udp_total.to_string()],
            vec!["icmp".into(), f.icmp.to_string(), f.icmp_total.to_string()],
        ];
        let human = format!(
            "ports {}-{}\n{}",
            f.port_low,
            f.port_high,
            format::table(&["PROTO", "FREE", "TOTAL"], &rows)
        );
        self.emit(
            &human,
            json!({"port_low": f.port_low, "port_high": f.port_high, "protocols": [
                {"protocol": "tcp", "free": f.tcp, "total": f.tcp_total},
                {"protocol": "udp", "free": f.udp, "total": f.udp_total},
                {"protocol": "icmp", "free": f.icmp, "total": f.icmp_total}]}),
        );
        Ok(())
    }

    pub(crate) async fn timeouts(&mut self, args: TimeoutsArgs) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let t = match args {
            TimeoutsArgs::Get => c
                .nat
                .get_timeouts(pb::GetTimeoutsRequest {})
                .await?
                .into_inner(),
            TimeoutsArgs::Set(tcp, tcpfin, udp) => c
                .nat
                .set_timeouts(pb::Timeouts {
                    tcp,
                    tcpfin,
                    udp,
                    icmp: 0,
                })
                .await?
                .into_inner(),
        };
        self.emit(
            &format!(
                "tcp {} s, tcpfin {} s, udp {} s, icmp {} s",
                t.tcp, t.tcpfin, t.udp, t.icmp
            ),
            j::timeouts(&t),
        );
        Ok(())
    }
}
