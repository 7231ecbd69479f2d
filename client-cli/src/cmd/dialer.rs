//! Dialer commands: `list`, `cinfo`, `dial`, `hangup`, `status`, `who`, `watch` (with its
//! reconnect), and the dial watch (the wording of a dial event is `words::dial_event`).
//!
//! Must not touch the session's token store (it uses [`Session::clients`]), modems or NAT
//! state.

use crate::errors::{DialFailed, Failure, Kind};
use crate::format;
use crate::json as j;
use crate::run::Session;
use crate::words::dial_event;
use masqdial_proto::v1 as pb;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

impl Session {
    pub(crate) async fn list(&mut self) -> anyhow::Result<()> {
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
        let v: Vec<Value> = r.connections.iter().map(j::connection).collect();
        let names: Vec<String> = r.connections.iter().map(|c| c.name.clone()).collect();
        self.cache_names(&names);
        self.emit(
            &format::table(&["CONNECTION", "STATE", "MAY DIAL", "DESCRIPTION"], &rows),
            json!({"connections": v}),
        );
        Ok(())
    }

    pub(crate) async fn cinfo(&mut self, name: &str, timestamps: bool) -> anyhow::Result<()> {
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
        let mut kv =
            |k: &str, v: String| h.push_str(&format!("{k:<18} {}\n", crate::safe::line(&v)));
        kv("connection", conn.name.clone());
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
        let never = |s: i64| {
            if s == 0 {
                "never".to_string()
            } else {
                format!("{s} s")
            }
        };
        kv("idle timeout", never(secs(&i.idle_timeout)));
        kv("max connect", never(secs(&i.max_connect_time)));
        kv("redial on loss", i.redial_on_loss.to_string());
        kv("state", format::link_state(link.state).into());
        if !link.local_address.is_empty() {
            kv(
                "addresses",
                format!("{} -> {}", link.local_address, link.peer_address),
            );
        }
        if let Some(q) = &link.queues {
            kv("link queue", format::queues_line(q));
        }
        if let Some(b) = &link.budget {
            kv("budget", format::budget_line(b));
        }
        if let Some(p) = &i.ppp {
            for (k, v) in format::ppp_lines(p) {
                kv(&format!("ppp {k}"), v);
            }
        }
        if !i.allowed_users.is_empty() {
            kv("allowed users", i.allowed_users.join(", "));
        }
        for t in &i.transcript {
            let at = if timestamps {
                format!("{} ", crate::words::clock_ms(t.at.as_ref()))
            } else {
                String::new()
            };
            h.push_str(&format!(
                "  {at}[{}] {}\n",
                crate::safe::line(&t.kind),
                crate::safe::line(&t.text)
            ));
        }
        self.emit(&h, j::connection_info(&i));
        Ok(())
    }

    pub(crate) async fn dial(&mut self, name: &str) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let mut stream = c
            .dialer
            .dial(pb::DialRequest { name: name.into() })
            .await?
            .into_inner();
        while let Some(ev) = stream.message().await? {
            let (line, outcome) = dial_event(&ev);
            // A failure is said once, by the error mclient ends with (JSON keeps the event).
            if self.json || !matches!(outcome, Some(Err(_))) {
                self.emit(&line, j::dial_event(name, &ev));
            }
            match outcome {
                Some(Ok(())) => return Ok(()),
                Some(Err(why)) => return Err(DialFailed(why).into()),
                None => {}
            }
        }
        Err(DialFailed("the server ended the dial without an outcome".into()).into())
    }

    pub(crate) async fn hangup(&mut self, name: Option<&str>, force: bool) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                let me = self.token()?.user;
                let w = c.dialer.who(pb::WhoRequest {}).await?.into_inner();
                let mut mine: Vec<String> = w
                    .entries
                    .iter()
                    .filter(|e| e.holder.as_ref().is_some_and(|h| h.user == me))
                    .map(|e| e.connection.clone())
                    .collect();
                mine.sort();
                mine.dedup();
                match mine.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(Failure::new(
                            Kind::NotNow,
                            format!("{me} holds no link, so there is nothing to hang up"),
                            Some("`mclient who` shows who holds which link".into()),
                        )
                        .into())
                    }
                    many => {
                        return Err(Failure::usage(
                            format!("{me} holds {} links: {}", many.len(), many.join(", ")),
                            "name the one to hang up: `mclient hangup NAME`",
                        )
                        .into())
                    }
                }
            }
        };
        let r = c
            .dialer
            .hangup(pb::HangupRequest {
                name: name.clone(),
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
            &human,
            json!({"connection": name, "dropped": r.dropped, "remaining_holders": r.remaining_holders}),
        );
        Ok(())
    }

    pub(crate) async fn status(&mut self, name: &str) -> anyhow::Result<()> {
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
                    format::human_bytes(l.bytes_in),
                    format::human_bytes(l.bytes_out),
                    l.holders
                        .iter()
                        .map(|h| format!("{}@{}", h.user, h.host))
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        let v: Vec<Value> = r.links.iter().map(j::link).collect();
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
                human.push_str(&format!("{}: {}\n", l.connection, format::queues_line(q)));
            }
            if let Some(b) = &l.budget {
                human.push_str(&format!(
                    "{}: budget: {}\n",
                    l.connection,
                    format::budget_line(b)
                ));
            }
        }
        self.emit(&human, json!({"links": v}));
        Ok(())
    }

    pub(crate) async fn who(&mut self) -> anyhow::Result<()> {
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
        let v: Vec<Value> = r
            .entries
            .iter()
            .map(|e| {
                let h = e.holder.clone().unwrap_or_default();
                json!({"connection": e.connection, "user": h.user, "host": h.host,
                       "since": j::time(h.since.as_ref())})
            })
            .collect();
        self.emit(
            &format::table(&["CONNECTION", "USER", "HOST", "FOR"], &rows),
            json!({"holders": v}),
        );
        Ok(())
    }

    async fn watch_stream(&mut self) -> anyhow::Result<tonic::Streaming<pb::LinkEvent>> {
        let mut c = self.clients().await?;
        Ok(c.dialer
            .watch_links(pb::WatchLinksRequest { sample_ms: 1000 })
            .await?
            .into_inner())
    }

    pub(crate) async fn watch(&mut self, reconnect_for: Duration) -> anyhow::Result<()> {
        let mut s = self.watch_stream().await?;
        // Each link's last state and holders: a change of holders alone (a user joined or
        // released an up link) is told as such, not as the same state again.
        let mut seen: std::collections::HashMap<String, (i32, Vec<String>)> =
            std::collections::HashMap::new();
        loop {
            let next = tokio::select! {
                m = s.message() => m,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let ev = match next {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    s = self
                        .rewatch(reconnect_for, "the server closed the stream")
                        .await?;
                    continue;
                }
                Err(e) => {
                    // The server's own refusals end the watch; anything else is a lost link.
                    use tonic::Code as C;
                    if matches!(
                        e.code(),
                        C::Unauthenticated
                            | C::PermissionDenied
                            | C::NotFound
                            | C::InvalidArgument
                            | C::Unimplemented
                            | C::FailedPrecondition
                            | C::ResourceExhausted
                    ) {
                        return Err(e.into());
                    }
                    s = self.rewatch(reconnect_for, "connection lost").await?;
                    continue;
                }
            };
            let (h, v) = match ev.event {
                Some(pb::link_event::Event::State(l)) => (
                    {
                        let holders: Vec<String> = l
                            .holders
                            .iter()
                            .map(|h| {
                                crate::safe::line(&format!("{}@{}", h.user, h.host)).into_owned()
                            })
                            .collect();
                        let before = seen.insert(l.connection.clone(), (l.state, holders.clone()));
                        match before {
                            Some((state, was)) if state == l.state && was != holders => format!(
                                "{}: held by {}",
                                l.connection,
                                if holders.is_empty() {
                                    "nobody".to_string()
                                } else {
                                    holders.join(", ")
                                }
                            ),
                            _ => format!(
                                "{}: {} {}",
                                l.connection,
                                format::link_state(l.state),
                                l.local_address
                            )
                            .trim_end()
                            .to_string(),
                        }
                    },
                    {
                        let mut v = j::link(&l);
                        if let Value::Object(m) = &mut v {
                            m.insert("event".into(), json!("link"));
                        }
                        v
                    },
                ),
                Some(pb::link_event::Event::Sample(t)) => (
                    format!(
                        "{}: in {} out {} ({} ms)",
                        t.connection,
                        format::human_bytes(t.bytes_in),
                        format::human_bytes(t.bytes_out),
                        t.period_ms
                    ),
                    json!({"event": "sample", "connection": t.connection, "bytes_in": t.bytes_in,
                           "bytes_out": t.bytes_out, "packets_in": t.packets_in,
                           "packets_out": t.packets_out, "period_ms": t.period_ms}),
                ),
                Some(pb::link_event::Event::Progress(p)) => {
                    let ev = p.event.clone().unwrap_or_default();
                    let (line, _) = dial_event(&ev);
                    (
                        format!("{}: {line}", p.connection),
                        json!({"event": "progress", "connection": p.connection,
                               "progress": j::dial_event(&p.connection, &ev)}),
                    )
                }
                Some(pb::link_event::Event::Budget(b)) => (
                    format!(
                        "{}: budget {}: {}",
                        b.connection,
                        if b.hang_up { "hang-up" } else { "warning" },
                        crate::safe::line(&b.message)
                    ),
                    json!({"event": "budget", "connection": b.connection, "limit": b.limit,
                           "hang_up": b.hang_up, "remaining": b.remaining,
                           "message": b.message}),
                ),
                Some(pb::link_event::Event::PacketLog(l)) => (
                    crate::safe::line(&l.line).into_owned(),
                    json!({"event": "packet_log", "line": l.line}),
                ),
                None => continue,
            };
            self.emit(&h, v);
        }
    }

    /// Reconnect a lost watch: retry every second for `window`, then fail with exit 8.
    async fn rewatch(
        &mut self,
        window: Duration,
        why: &str,
    ) -> anyhow::Result<tonic::Streaming<pb::LinkEvent>> {
        let server = self.settings.server.clone();
        let lost = || {
            Failure::new(
                Kind::Unreachable,
                format!(
                    "lost the server at {server} ({why}) and could not reconnect within {} s",
                    window.as_secs()
                ),
                Some("check that mserver is running, then run `mclient watch` again".into()),
            )
        };
        if window.is_zero() {
            return Err(lost().into());
        }
        self.emit(
            &format!("mclient: lost the server at {server} ({why}); reconnecting…"),
            json!({"event": "reconnecting", "server": server, "reason": why}),
        );
        let deadline = tokio::time::Instant::now() + window;
        loop {
            self.channel = None;
            if let Ok(s) = self.watch_stream().await {
                self.emit(
                    &format!("mclient: reconnected to {server}"),
                    json!({"event": "reconnected", "server": server}),
                );
                return Ok(s);
            }
            if tokio::time::Instant::now() + Duration::from_secs(1) > deadline {
                return Err(lost().into());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tokio::signal::ctrl_c() => return Err(lost().into()),
            }
        }
    }
}
