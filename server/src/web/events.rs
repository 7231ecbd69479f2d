//! One page's server-sent event stream, fed by the same broadcasts as the gRPC watch
//! streams (link events with dial progress, the masquerade feed, the packet log).
//!
//! Events: `links` (every connection and modem, a full snapshot: sent first, on every link
//! change, and after a lag), `progress` (a dial step as `mclient dial` prints it),
//! `masq-reset` (the whole table and the free ports: first, and after a lag), `masq` (a
//! delta), `log` (admins: link events and packet-log lines) and `bye` (the session ended:
//! logout, revocation, expiry, user removed, peer no longer allowed). A page that lagged
//! behind a feed always gets a fresh snapshot, never a silently incomplete view.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::response::sse::Event;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::views;
use crate::config::UserRole;
use crate::link::events::LinkChange;
use crate::rpc::{Caller, ControlPlane, StreamGuard};

/// Entries copied per engine-lock hold when a page takes the whole table.
const PIECE: usize = 512;

fn event(name: &str, data: &serde_json::Value) -> Result<Event, Infallible> {
    Ok(Event::default().event(name).data(data.to_string()))
}

/// The whole masquerade table and the free ports as one `masq-reset` event.
pub fn masq_reset(ctl: &ControlPlane) -> Result<Event, Infallible> {
    let mut rows = Vec::new();
    let mut from = Some(0u32);
    while let Some(f) = from {
        let (chunk, next) = ctl.nat.masq_piece(f, PIECE);
        rows.extend(chunk.iter().map(views::masq_entry));
        from = next;
    }
    event(
        "masq-reset",
        &json!({ "entries": rows, "free": views::free_ports(&ctl.nat.free_ports()) }),
    )
}

/// Feed `tx` until the client goes, the session ends or the server stops.
pub async fn run(
    ctl: ControlPlane,
    caller: Caller,
    guard: StreamGuard,
    stop: tokio_util::sync::CancellationToken,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let links = ctl.links.clone();
    let mut link_events = links.events();
    let mut masq = ctl.nat.subscribe_masq();
    let admin = caller.role == UserRole::Admin;
    let mut packet_log = ctl.nat.nat().watch_packet_log();
    let ended = guard.ended();
    let left = guard
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .min(Duration::from_secs(10 * 365 * 24 * 3600));
    let expiry = tokio::time::sleep(left);
    tokio::pin!(expiry);
    let send_links = |tx: &mpsc::Sender<_>| {
        let snap = views::snapshot(&links, &caller);
        let tx = tx.clone();
        async move { tx.send(event("links", &snap)).await.is_ok() }
    };
    if !send_links(&tx).await || tx.send(masq_reset(&ctl)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tx.closed() => break,
            () = ended.cancelled() => {
                let _ = tx.send(event("bye", &json!({"reason": "session ended"}))).await;
                break;
            }
            () = &mut expiry => {
                let _ = tx.send(event("bye", &json!({"reason": "session expired"}))).await;
                break;
            }
            ev = link_events.recv() => match ev {
                Ok(ev) => {
                    let ok = match &ev.change {
                        LinkChange::Progress { connection, event: step } => {
                            let line = views::dial_line(connection, &step.step);
                            if admin {
                                let _ = tx.send(event("log", &json!({
                                    "at": views::unix(ev.at), "line": format!("{connection}: {line}")
                                }))).await;
                            }
                            tx.send(event("progress", &json!({
                                "connection": connection,
                                "line": line,
                                "final": step.step.is_final(),
                            }))).await.is_ok() && send_links(&tx).await
                        }
                        LinkChange::State(s) => {
                            if admin {
                                let _ = tx.send(event("log", &json!({
                                    "at": views::unix(ev.at),
                                    "line": format!("{}: {}", s.connection, views::state_name(s.state)),
                                }))).await;
                            }
                            send_links(&tx).await
                        }
                        LinkChange::Sample(_) => send_links(&tx).await,
                        LinkChange::Budget { connection, notice } => {
                            if admin {
                                let _ = tx.send(event("log", &json!({
                                    "at": views::unix(ev.at),
                                    "line": format!("{connection}: budget {notice:?}"),
                                }))).await;
                            }
                            send_links(&tx).await
                        }
                    };
                    if !ok {
                        break;
                    }
                }
                // Missed changes: the page gets every link's state now.
                Err(RecvError::Lagged(_)) => {
                    if !send_links(&tx).await {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            d = masq.recv() => match d {
                Ok(d) => {
                    let data = json!({
                        "up": d.upserted.iter().map(views::masq_entry).collect::<Vec<_>>(),
                        "rm": d.removed,
                        "free": views::free_ports(&d.free),
                    });
                    if tx.send(event("masq", &data)).await.is_err() {
                        break;
                    }
                }
                // Missed deltas: the page gets the whole table again.
                Err(RecvError::Lagged(_)) => {
                    if tx.send(masq_reset(&ctl)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            line = packet_log.recv(), if admin => match line {
                Ok(line) => {
                    let data = json!({"at": views::unix(SystemTime::now()), "line": line});
                    if tx.send(event("log", &data)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let data = json!({"at": views::unix(SystemTime::now()),
                        "line": format!("({missed} packet log lines missed here: this page was too slow; the server log has them)")});
                    if tx.send(event("log", &data)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    drop(guard);
}
