//! Executing one parsed [`Command`] against the server and printing the answer
//! (human tables, or JSON with `--json`).
//!
//! Owns the session (channel, stored token) and output; it must never print a token or
//! password.

use std::io::{BufRead, IsTerminal, Write};
use std::time::SystemTime;

use anyhow::Context;
use masqdial_proto::v1 as pb;
use serde_json::{json, Value};
use tonic::transport::Channel;

use crate::cli::{parse_timeouts, Command, DialFailed, GlobalOpts, TimeoutsArgs};
use crate::conn::{self, Clients};
use crate::format;
use crate::ipchains::{self, Op};
use crate::store::{server_key, StoredToken, TokenStore};

/// Page size used to read the whole masquerade table.
const MASQ_PAGE: u32 = 1000;

/// A client session: global options, the token store and a lazily opened channel.
#[derive(Debug)]
pub struct Session {
    /// Global options.
    pub opts: GlobalOpts,
    /// Token store.
    pub store: TokenStore,
    channel: Option<Channel>,
}

fn not_logged_in(server: &str, why: &str) -> anyhow::Error {
    anyhow::Error::new(tonic::Status::unauthenticated(format!(
        "{why} for {server}; run `mclient login`"
    )))
}

impl Session {
    /// New session; nothing is connected yet.
    pub fn new(opts: GlobalOpts, store: TokenStore) -> Session {
        Session {
            opts,
            store,
            channel: None,
        }
    }

    async fn channel(&mut self) -> anyhow::Result<Channel> {
        if let Some(c) = &self.channel {
            return Ok(c.clone());
        }
        let c = conn::connect(&self.opts.server, self.opts.ca.as_deref()).await?;
        self.channel = Some(c.clone());
        Ok(c)
    }

    /// The stored, unexpired token for this server.
    pub fn token(&self) -> anyhow::Result<StoredToken> {
        let server = server_key(&self.opts.server);
        match self.store.get(&server)? {
            None => Err(not_logged_in(&server, "not logged in")),
            Some(t) if t.expired(SystemTime::now()) => Err(not_logged_in(&server, "token expired")),
            Some(t) => Ok(t),
        }
    }

    /// Clients carrying the stored token.
    pub async fn clients(&mut self) -> anyhow::Result<Clients> {
        let token = self.token()?;
        let ch = self.channel().await?;
        Clients::new(ch, Some(&token.token))
    }

    /// Connection names for shell completion (best effort, empty on any error).
    pub async fn connection_names(&mut self) -> Vec<String> {
        let Ok(mut c) = self.clients().await else {
            return Vec::new();
        };
        if let Ok(r) = c
            .dialer
            .list_connections(pb::ListConnectionsRequest {})
            .await
        {
            return r
                .into_inner()
                .connections
                .into_iter()
                .map(|c| c.name)
                .collect();
        }
        match c.auth.who_am_i(pb::WhoAmIRequest {}).await {
            Ok(r) => r.into_inner().allowed_connections,
            Err(_) => Vec::new(),
        }
    }

    fn emit(&self, human: String, json: Value) {
        let mut out = std::io::stdout().lock();
        let _ = if self.opts.json {
            writeln!(out, "{json}")
        } else if human.ends_with('\n') || human.is_empty() {
            write!(out, "{human}")
        } else {
            writeln!(out, "{human}")
        };
        let _ = out.flush();
    }

    /// Run one command.
    pub async fn execute(&mut self, cmd: &Command) -> anyhow::Result<()> {
        match cmd {
            Command::Login => self.login().await,
            Command::Logout => self.logout().await,
            Command::Whoami => self.whoami().await,
            Command::List => self.list().await,
            Command::Cinfo { name } => self.cinfo(name).await,
            Command::Dial { name } => self.dial(name).await,
            Command::Hangup { name, force } => self.hangup(name, *force).await,
            Command::Status { name } => self.status(name.as_deref().unwrap_or("")).await,
            Command::Who => self.who().await,
            Command::Watch => self.watch().await,
            Command::Modems => self.modems().await,
            Command::Masq {
                numeric: _,
                verbose,
            } => self.masq(*verbose).await,
            Command::Ports => self.ports().await,
            Command::Timeouts { args } => self.timeouts(parse_timeouts(args)?).await,
            Command::Ipchains { args } => self.ipchains(args).await,
            Command::Save { file } => self.save(file.as_deref()).await,
            Command::Restore { file } => self.restore(file).await,
            Command::Counters => self.counters().await,
            Command::Shell => anyhow::bail!("already in the shell"),
        }
    }

    async fn login(&mut self) -> anyhow::Result<()> {
        let user = match &self.opts.user {
            Some(u) => u.clone(),
            None => std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .context("no user name: pass --user NAME")?,
        };
        let password = read_password(&user, &self.opts.server)?;
        let ch = self.channel().await?;
        let mut c = Clients::new(ch, None)?;
        let r = c
            .auth
            .login(pb::LoginRequest {
                user: user.clone(),
                password,
            })
            .await?
            .into_inner();
        let expires_at = r.expires_at.as_ref().and_then(format::system_time);
        self.store.put(StoredToken {
            server: server_key(&self.opts.server),
            user: user.clone(),
            token: r.token,
            expires_at,
            role: r.role,
        })?;
        let left = expires_at
            .and_then(|e| e.duration_since(SystemTime::now()).ok())
            .map(format::duration)
            .unwrap_or_default();
        self.emit(
            format!("logged in to {} as {user} ({}); token valid for {left}", self.opts.server, format::role(r.role)),
            json!({"user": user, "role": format::role(r.role), "expires_at": r.expires_at.map(|t| t.seconds)}),
        );
        Ok(())
    }

    async fn logout(&mut self) -> anyhow::Result<()> {
        let server = server_key(&self.opts.server);
        if let Ok(mut c) = self.clients().await {
            // The server may already have forgotten the token; forgetting it here matters.
            let _ = c.auth.logout(pb::LogoutRequest {}).await;
        }
        self.store.remove(&server)?;
        self.emit(format!("logged out of {server}"), json!({"server": server}));
        Ok(())
    }

    async fn whoami(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let w = c.auth.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
        let left = w
            .expires_at
            .as_ref()
            .and_then(format::system_time)
            .and_then(|e| e.duration_since(SystemTime::now()).ok())
            .map(format::duration)
            .unwrap_or_default();
        self.emit(
            format!(
                "{} ({}) from {}\nmay dial: {}\ntoken valid for {left}",
                w.user,
                format::role(w.role),
                w.peer,
                if w.allowed_connections.is_empty() {
                    "-".to_string()
                } else {
                    w.allowed_connections.join(", ")
                }
            ),
            json!({"user": w.user, "role": format::role(w.role), "peer": w.peer,
                   "allowed_connections": w.allowed_connections,
                   "expires_at": w.expires_at.map(|t| t.seconds)}),
        );
        Ok(())
    }

    async fn list(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .dialer
            .list_connections(pb::ListConnectionsRequest {})
            .await?
            .into_inner();
        let rows: Vec<Vec<String>> = r
            .connections
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    format::link_state(c.state).into(),
                    if c.allowed { "yes" } else { "no" }.into(),
                    c.description.clone(),
                ]
            })
            .collect();
        let j: Vec<Value> = r.connections.iter().map(connection_json).collect();
        self.emit(
            format::table(&["NAME", "STATE", "MAY DIAL", "DESCRIPTION"], &rows),
            json!(j),
        );
        Ok(())
    }

    async fn cinfo(&mut self, name: &str) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let i = c
            .dialer
            .get_connection(pb::GetConnectionRequest { name: name.into() })
            .await?
            .into_inner();
        let conn = i.connection.clone().unwrap_or_default();
        let link = i.link.clone().unwrap_or_default();
        let secs = |d: &Option<prost_types::Duration>| d.as_ref().map_or(0, |d| d.seconds);
        let mut h = String::new();
        let mut kv = |k: &str, v: String| h.push_str(&format!("{k:<18} {v}\n"));
        kv("name", conn.name.clone());
        kv("description", conn.description.clone());
        kv("numbers", conn.numbers.join(", "));
        kv("modems", conn.modems.join(", "));
        kv("dial prefix", i.dial_prefix.clone());
        kv("auth", i.auth.clone());
        kv("may dial", if conn.allowed { "yes" } else { "no" }.into());
        kv(
            "redial",
            format!(
                "{} attempts, {} s apart",
                i.redial_attempts,
                secs(&i.redial_delay)
            ),
        );
        kv("idle timeout", format!("{} s", secs(&i.idle_timeout)));
        kv("max connect", format!("{} s", secs(&i.max_connect_time)));
        kv("redial on loss", i.redial_on_loss.to_string());
        kv("state", format::link_state(link.state).into());
        if !link.local_address.is_empty() {
            kv(
                "addresses",
                format!("{} -> {}", link.local_address, link.peer_address),
            );
        }
        if let Some(q) = &link.queues {
            kv("link queue", queues_line(q));
        }
        if !i.allowed_users.is_empty() {
            kv("allowed users", i.allowed_users.join(", "));
        }
        for t in &i.transcript {
            h.push_str(&format!("  [{}] {}\n", t.kind, t.text));
        }
        let j = json!({
            "connection": connection_json(&conn), "link": link_json(&link),
            "dial_prefix": i.dial_prefix, "auth": i.auth, "redial_attempts": i.redial_attempts,
            "redial_delay_s": secs(&i.redial_delay), "idle_timeout_s": secs(&i.idle_timeout),
            "max_connect_s": secs(&i.max_connect_time), "redial_on_loss": i.redial_on_loss,
            "allowed_users": i.allowed_users,
            "transcript": i.transcript.iter().map(|t| json!({"kind": t.kind, "text": t.text})).collect::<Vec<_>>(),
        });
        self.emit(h, j);
        Ok(())
    }

    async fn dial(&mut self, name: &str) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let mut stream = c
            .dialer
            .dial(pb::DialRequest { name: name.into() })
            .await?
            .into_inner();
        while let Some(ev) = stream.message().await? {
            let (line, j, outcome) = dial_event(&ev);
            self.emit(line, j);
            match outcome {
                Some(Ok(())) => return Ok(()),
                Some(Err(why)) => return Err(DialFailed(why).into()),
                None => {}
            }
        }
        Err(DialFailed("server ended the dial stream without an outcome".into()).into())
    }

    async fn hangup(&mut self, name: &str, force: bool) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .dialer
            .hangup(pb::HangupRequest {
                name: name.into(),
                force,
            })
            .await?
            .into_inner();
        let human = if r.dropped {
            format!("{name}: hanging up")
        } else {
            format!(
                "{name}: released; still held by {}",
                r.remaining_holders.join(", ")
            )
        };
        self.emit(
            human,
            json!({"name": name, "dropped": r.dropped, "remaining_holders": r.remaining_holders}),
        );
        Ok(())
    }

    async fn status(&mut self, name: &str) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .dialer
            .status(pb::StatusRequest { name: name.into() })
            .await?
            .into_inner();
        let now = SystemTime::now();
        let rows: Vec<Vec<String>> = r
            .links
            .iter()
            .map(|l| {
                vec![
                    l.connection.clone(),
                    format::link_state(l.state).into(),
                    l.modem.clone(),
                    if l.speed_bps > 0 {
                        l.speed_bps.to_string()
                    } else {
                        String::new()
                    },
                    l.local_address.clone(),
                    format::since(l.connected_since.as_ref(), now),
                    format::bytes(l.bytes_in),
                    format::bytes(l.bytes_out),
                    l.holders
                        .iter()
                        .map(|h| format!("{}@{}", h.user, h.host))
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        let j: Vec<Value> = r.links.iter().map(link_json).collect();
        let mut human = format::table(
            &[
                "CONNECTION",
                "STATE",
                "MODEM",
                "BPS",
                "ADDRESS",
                "UP",
                "IN",
                "OUT",
                "HOLDERS",
            ],
            &rows,
        );
        for l in &r.links {
            if let Some(q) = &l.queues {
                human.push_str(&format!("{}: {}\n", l.connection, queues_line(q)));
            }
        }
        self.emit(human, json!(j));
        Ok(())
    }

    async fn who(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c.dialer.who(pb::WhoRequest {}).await?.into_inner();
        let now = SystemTime::now();
        let rows: Vec<Vec<String>> = r
            .entries
            .iter()
            .map(|e| {
                let h = e.holder.clone().unwrap_or_default();
                vec![
                    e.connection.clone(),
                    h.user,
                    h.host,
                    format::since(h.since.as_ref(), now),
                ]
            })
            .collect();
        let j: Vec<Value> = r
            .entries
            .iter()
            .map(|e| {
                let h = e.holder.clone().unwrap_or_default();
                json!({"connection": e.connection, "user": h.user, "host": h.host, "since": h.since.map(|t| t.seconds)})
            })
            .collect();
        self.emit(
            format::table(&["CONNECTION", "USER", "HOST", "FOR"], &rows),
            json!(j),
        );
        Ok(())
    }

    async fn watch(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let mut s = c
            .dialer
            .watch_links(pb::WatchLinksRequest { sample_ms: 1000 })
            .await?
            .into_inner();
        loop {
            let next = tokio::select! {
                m = s.message() => m?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let Some(ev) = next else { return Ok(()) };
            let (h, j) = match ev.event {
                Some(pb::link_event::Event::State(l)) => (
                    format!(
                        "{}: {} {}",
                        l.connection,
                        format::link_state(l.state),
                        l.local_address
                    ),
                    json!({"state": link_json(&l)}),
                ),
                Some(pb::link_event::Event::Sample(t)) => (
                    format!(
                        "{}: in {} out {} ({} ms)",
                        t.connection,
                        format::bytes(t.bytes_in),
                        format::bytes(t.bytes_out),
                        t.period_ms
                    ),
                    json!({"sample": {"connection": t.connection, "bytes_in": t.bytes_in, "bytes_out": t.bytes_out,
                                      "packets_in": t.packets_in, "packets_out": t.packets_out, "period_ms": t.period_ms}}),
                ),
                Some(pb::link_event::Event::Progress(p)) => {
                    let (line, j, _) = p.event.as_ref().map(dial_event).unwrap_or_default();
                    (
                        format!("{}: {line}", p.connection),
                        json!({"progress": {"connection": p.connection, "event": j}}),
                    )
                }
                None => continue,
            };
            self.emit(h, j);
        }
    }

    async fn modems(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .modems
            .list_modems(pb::ListModemsRequest {})
            .await?
            .into_inner();
        let rows: Vec<Vec<String>> = r
            .modems
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.device.clone(),
                    m.baud.to_string(),
                    format::modem_state(m.state).into(),
                    m.connection.clone(),
                    m.last_error.clone(),
                ]
            })
            .collect();
        let j: Vec<Value> = r
            .modems
            .iter()
            .map(|m| json!({"name": m.name, "device": m.device, "baud": m.baud, "state": format::modem_state(m.state),
                            "connection": m.connection, "last_error": m.last_error, "modem_lines": m.modem_lines}))
            .collect();
        self.emit(
            format::table(
                &[
                    "NAME",
                    "DEVICE",
                    "BAUD",
                    "STATE",
                    "CONNECTION",
                    "LAST ERROR",
                ],
                &rows,
            ),
            json!(j),
        );
        Ok(())
    }

    async fn masq_entries(&mut self) -> anyhow::Result<Vec<pb::MasqEntry>> {
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

    async fn masq(&mut self, verbose: bool) -> anyhow::Result<()> {
        let entries = self.masq_entries().await?;
        let j: Vec<Value> = entries.iter().map(masq_json).collect();
        self.emit(format::masq_listing(&entries, verbose), json!(j));
        Ok(())
    }

    async fn ports(&mut self) -> anyhow::Result<()> {
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
            human,
            json!({"tcp": f.tcp, "udp": f.udp, "icmp": f.icmp, "tcp_total": f.tcp_total, "udp_total": f.udp_total,
                   "icmp_total": f.icmp_total, "port_low": f.port_low, "port_high": f.port_high}),
        );
        Ok(())
    }

    async fn timeouts(&mut self, args: TimeoutsArgs) -> anyhow::Result<()> {
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
            format!(
                "tcp {} s, tcpfin {} s, udp {} s, icmp {} s",
                t.tcp, t.tcpfin, t.udp, t.icmp
            ),
            json!({"tcp": t.tcp, "tcpfin": t.tcpfin, "udp": t.udp, "icmp": t.icmp}),
        );
        Ok(())
    }

    async fn ipchains(&mut self, args: &[String]) -> anyhow::Result<()> {
        let op = ipchains::parse(args).map_err(|e| {
            anyhow::Error::new(tonic::Status::invalid_argument(format!("ipchains: {e}")))
        })?;
        let mut c = self.clients().await?;
        let n = &mut c.nat;
        let changed = |r: pb::RuleChangeResponse| -> (String, Value) {
            let names: Vec<String> = r.chains.iter().map(|c| c.name.clone()).collect();
            (String::new(), json!({"chains": names}))
        };
        let (human, j) = match op {
            Op::Append { chain, spec } => changed(
                n.append_rule(pb::AppendRuleRequest { chain, spec })
                    .await?
                    .into_inner(),
            ),
            Op::Insert {
                chain,
                number,
                spec,
            } => changed(
                n.insert_rule(pb::InsertRuleRequest {
                    chain,
                    number,
                    spec,
                })
                .await?
                .into_inner(),
            ),
            Op::Replace {
                chain,
                number,
                spec,
            } => changed(
                n.replace_rule(pb::ReplaceRuleRequest {
                    chain,
                    number,
                    spec,
                })
                .await?
                .into_inner(),
            ),
            Op::DeleteNumber { chain, number } => changed(
                n.delete_rule(pb::DeleteRuleRequest {
                    chain,
                    which: Some(pb::delete_rule_request::Which::Number(number)),
                })
                .await?
                .into_inner(),
            ),
            Op::DeleteSpec { chain, spec } => changed(
                n.delete_rule(pb::DeleteRuleRequest {
                    chain,
                    which: Some(pb::delete_rule_request::Which::Spec(spec)),
                })
                .await?
                .into_inner(),
            ),
            Op::Flush { chain } => changed(
                n.flush_chain(pb::FlushChainRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::Zero { chain } => changed(
                n.zero_counters(pb::ZeroCountersRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::NewChain { chain } => changed(
                n.new_chain(pb::NewChainRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::DeleteChain { chain } => changed(
                n.delete_chain(pb::DeleteChainRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::Policy { chain, target } => changed(
                n.set_policy(pb::SetPolicyRequest { chain, target })
                    .await?
                    .into_inner(),
            ),
            Op::Check { chain, spec } => {
                let r = n
                    .check_packet(pb::CheckPacketRequest { chain, spec })
                    .await?
                    .into_inner();
                (
                    format!("packet {}", r.verdict),
                    json!({"verdict": r.verdict}),
                )
            }
            Op::List {
                chain,
                numeric,
                verbose,
                exact,
                line_numbers,
                zero,
            } => {
                let r = n
                    .render_view(pb::RenderViewRequest {
                        view: pb::View::Chains as i32,
                        chain: chain.clone(),
                        numeric,
                        verbose,
                        exact,
                        line_numbers,
                    })
                    .await?
                    .into_inner();
                if zero {
                    n.zero_counters(pb::ZeroCountersRequest { chain }).await?;
                }
                (r.text.clone(), json!({"text": r.text}))
            }
            Op::MasqList { numeric, verbose } => {
                let r = n
                    .render_view(pb::RenderViewRequest {
                        view: pb::View::Masq as i32,
                        chain: String::new(),
                        numeric,
                        verbose,
                        exact: false,
                        line_numbers: false,
                    })
                    .await?
                    .into_inner();
                (r.text.clone(), json!({"text": r.text}))
            }
            Op::MasqSet { tcp, tcpfin, udp } => {
                let t = n
                    .set_timeouts(pb::Timeouts {
                        tcp,
                        tcpfin,
                        udp,
                        icmp: 0,
                    })
                    .await?
                    .into_inner();
                (
                    String::new(),
                    json!({"tcp": t.tcp, "tcpfin": t.tcpfin, "udp": t.udp}),
                )
            }
        };
        self.emit(human, j);
        Ok(())
    }

    async fn save(&mut self, file: Option<&std::path::Path>) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .nat
            .save_ruleset(pb::SaveRulesetRequest {})
            .await?
            .into_inner();
        match file {
            Some(f) => {
                std::fs::write(f, &r.ruleset)
                    .with_context(|| format!("cannot write {}", f.display()))?;
                self.emit(
                    format!("saved to {}", f.display()),
                    json!({"file": f.display().to_string()}),
                );
            }
            None => self.emit(r.ruleset.clone(), json!({"ruleset": r.ruleset})),
        }
        Ok(())
    }

    async fn restore(&mut self, file: &std::path::Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let mut c = self.clients().await?;
        let r = c
            .nat
            .apply_ruleset(pb::ApplyRulesetRequest { ruleset: text })
            .await?
            .into_inner();
        self.emit(
            format!("restored {} chains, {} rules", r.chains, r.rules),
            json!({"chains": r.chains, "rules": r.rules}),
        );
        Ok(())
    }

    async fn counters(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .nat
            .get_counters(pb::GetCountersRequest {})
            .await?
            .into_inner();
        let mut kv: Vec<(String, u64)> = r.counters.into_iter().collect();
        kv.sort();
        let rows: Vec<Vec<String>> = kv
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect();
        let j: serde_json::Map<String, Value> =
            kv.into_iter().map(|(k, v)| (k, json!(v))).collect();
        self.emit(
            format::table(&["COUNTER", "VALUE"], &rows),
            Value::Object(j),
        );
        Ok(())
    }
}

/// Password from `MCLIENT_PASSWORD`, a no-echo prompt on a terminal, or one stdin line.
fn read_password(user: &str, server: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("MCLIENT_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for {user} at {server}: "))
            .context("cannot read the password");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn connection_json(c: &pb::Connection) -> Value {
    json!({"name": c.name, "description": c.description, "numbers": c.numbers, "modems": c.modems,
           "allowed": c.allowed, "state": format::link_state(c.state)})
}

fn link_json(l: &pb::LinkStatus) -> Value {
    json!({"connection": l.connection, "state": format::link_state(l.state), "modem": l.modem,
           "speed_bps": l.speed_bps, "local_address": l.local_address, "peer_address": l.peer_address,
           "dns": l.dns, "connected_since": l.connected_since.map(|t| t.seconds),
           "bytes_in": l.bytes_in, "bytes_out": l.bytes_out, "packets_in": l.packets_in, "packets_out": l.packets_out,
           "holders": l.holders.iter().map(|h| json!({"user": h.user, "host": h.host})).collect::<Vec<_>>(),
           "last_failure": l.last_failure.as_ref().map(|f| f.message.clone()),
           "idle_seconds": l.idle_seconds, "queues": l.queues.as_ref().map(queues_json)})
}

fn queue_stats_json(q: &pb::QueueStats) -> Value {
    json!({"backlog_bytes": q.backlog_bytes, "backlog_packets": q.backlog_packets,
           "limit_bytes": q.limit_bytes, "sent_packets": q.sent_packets, "sent_bytes": q.sent_bytes,
           "dropped_overflow": q.dropped_overflow, "dropped_aqm": q.dropped_aqm, "ecn_marked": q.ecn_marked,
           "sojourn_p50_ms": q.sojourn_p50_ms, "sojourn_p95_ms": q.sojourn_p95_ms,
           "in_flight_bytes": q.in_flight_bytes,
           "hosts": q.hosts.iter().map(|h| json!({"host": h.host, "bytes": h.bytes, "share": h.share})).collect::<Vec<_>>()})
}

fn queues_json(q: &pb::LinkQueues) -> Value {
    json!({"scheduler": q.scheduler, "egress": q.egress.as_ref().map(queue_stats_json),
           "ingress": q.ingress.as_ref().map(queue_stats_json), "ingress_shaping": q.ingress_shaping})
}

/// One queue in a line: backlog, sojourn, drops, marks and host shares.
fn queue_stats_line(q: &pb::QueueStats) -> String {
    let mut s = format!(
        "backlog {} pkts/{}, sojourn p50 {} ms p95 {} ms, drops {} limit/{} aqm, {} marked",
        q.backlog_packets,
        format::bytes(q.backlog_bytes),
        q.sojourn_p50_ms,
        q.sojourn_p95_ms,
        q.dropped_overflow,
        q.dropped_aqm,
        q.ecn_marked
    );
    if !q.hosts.is_empty() {
        let shares: Vec<String> = q
            .hosts
            .iter()
            .map(|h| format!("{} {:.0}%", h.host, h.share * 100.0))
            .collect();
        s.push_str(&format!("; hosts {}", shares.join(", ")));
    }
    s
}

/// The link's queues in one line (`mclient status`, `cinfo`).
fn queues_line(q: &pb::LinkQueues) -> String {
    let mut s = format!("{} up: ", q.scheduler);
    s.push_str(&q.egress.as_ref().map(queue_stats_line).unwrap_or_default());
    if let Some(i) = &q.ingress {
        s.push_str(&format!(
            " | down (shaped to {:.0}%): {}",
            q.ingress_shaping * 100.0,
            queue_stats_line(i)
        ));
    }
    s
}

fn masq_json(e: &pb::MasqEntry) -> Value {
    json!({"id": e.id, "protocol": format::protocol(e.protocol), "lan_address": e.lan_address, "lan_port": e.lan_port,
           "masq_address": e.masq_address, "masq_port": e.masq_port, "remote_address": e.remote_address,
           "remote_port": e.remote_port, "expire_centis": e.expire_centis, "state": e.state,
           "init_seq": e.init_seq, "delta": e.delta, "prev_delta": e.prev_delta, "helper": e.helper})
}

/// One dial event as (human line, JSON, outcome: Some(Ok) when up, Some(Err) when failed).
pub fn dial_event(ev: &pb::DialEvent) -> (String, Value, Option<Result<(), String>>) {
    use pb::dial_event::Event;
    match &ev.event {
        Some(Event::ModemInit(m)) => (
            format!("initialising modem {} ({})", m.modem, m.device),
            json!({"modem_init": {"modem": m.modem, "device": m.device}}),
            None,
        ),
        Some(Event::Dialing(d)) => (
            format!(
                "dialing {} (number {} of {}, attempt {} of {})",
                d.number, d.index, d.count, d.attempt, d.attempts
            ),
            json!({"dialing": {"number": d.number, "index": d.index, "count": d.count, "attempt": d.attempt, "attempts": d.attempts}}),
            None,
        ),
        Some(Event::Connected(c)) => (
            format!("CONNECT {} {}", c.speed_bps, c.extras)
                .trim_end()
                .to_string(),
            json!({"connected": {"speed_bps": c.speed_bps, "extras": c.extras}}),
            None,
        ),
        Some(Event::LcpUp(l)) => (
            format!("LCP up (peer MRU {})", l.peer_mru),
            json!({"lcp_up": {"peer_mru": l.peer_mru, "auth_protocol": l.auth_protocol}}),
            None,
        ),
        Some(Event::AuthOk(a)) => (
            format!("authenticated ({})", a.protocol),
            json!({"auth_ok": {"protocol": a.protocol}}),
            None,
        ),
        Some(Event::IpcpUp(i)) => (
            format!(
                "IPCP up: local {} peer {} dns {}",
                i.local_address,
                i.peer_address,
                i.dns.join(",")
            ),
            json!({"ipcp_up": {"local_address": i.local_address, "peer_address": i.peer_address, "dns": i.dns}}),
            None,
        ),
        Some(Event::Up(u)) => {
            let l = u.link.clone().unwrap_or_default();
            (
                format!("{} is up ({})", l.connection, l.local_address),
                json!({"up": link_json(&l)}),
                Some(Ok(())),
            )
        }
        Some(Event::Failed(f)) => (
            format!("failed: {}", f.message),
            json!({"failed": {"kind": f.kind, "message": f.message}}),
            Some(Err(f.message.clone())),
        ),
        Some(Event::Joined(j)) => (
            format!(
                "joined ({}; held by {})",
                format::link_state(j.state),
                j.holders.join(", ")
            ),
            json!({"joined": {"state": format::link_state(j.state), "holders": j.holders}}),
            if j.state == pb::LinkState::Up as i32 {
                Some(Ok(()))
            } else {
                None
            },
        ),
        Some(Event::Info(t)) => (t.clone(), json!({"info": t}), None),
        Some(Event::Redial(r)) => (
            format!(
                "redialing in {} s (attempt {})",
                r.delay.as_ref().map_or(0, |d| d.seconds),
                r.next_attempt
            ),
            json!({"redial": {"next_attempt": r.next_attempt, "delay_s": r.delay.as_ref().map_or(0, |d| d.seconds)}}),
            None,
        ),
        None => (String::new(), Value::Null, None),
    }
}
