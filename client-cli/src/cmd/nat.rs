//! NAT commands: `masq` (paged, with optional reverse DNS), `portfw`, `proc`, `ports` and
//! `timeouts`.
//!
//! Must not touch the session's token store, links or the ipchains rules (see
//! [`super::ipchains`]).

use crate::cli::TimeoutsArgs;
use crate::format;
use crate::json as j;
use crate::run::Session;
use masqdial_proto::v1 as pb;
use serde_json::{json, Value};
use std::time::Duration;

/// Page size used to read the whole masquerade table.
const MASQ_PAGE: u32 = 1000;

impl Session {
    pub(crate) async fn masq_entries(&mut self) -> anyhow::Result<Vec<pb::MasqEntry>> {
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
    ) -> anyhow::Result<()> {
        if self.json {
            let entries = self.masq_entries().await?;
            let v: Vec<Value> = entries.iter().map(j::masq_entry).collect();
            self.emit("", json!({"entries": v}));
            return Ok(());
        }
        // The server renders it (`ipchains -M -L`), with nat-core's one services table for
        // the names; addresses are resolved only with -r, and never past its bound.
        let mut text = self.render(pb::View::Masq, numeric, verbose).await?;
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
            })
            .await?
            .into_inner()
            .text)
    }

    pub(crate) async fn portfw(&mut self, args: &[String]) -> anyhow::Result<()> {
        let list = args.is_empty() || args.iter().any(|a| a == "-l" || a == "--list");
        let text = if list {
            self.render(pb::View::Portfw, true, false).await?
        } else {
            let mut c = self.clients().await?;
            c.nat
                .port_fw(pb::PortFwRequest {
                    command: args.join(" "),
                })
                .await?
                .into_inner()
                .text
        };
        self.emit(&text, json!({ "text": text }));
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
