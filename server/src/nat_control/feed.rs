//! The masquerade change feed: one task drains nat-core's change feed and broadcasts
//! deltas to every watcher. It owns the ids (and deadlines) last announced; it must not
//! change the engine beyond draining its feed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nat_core::masq::{ChangeFeed, EntrySnapshot, MasqChange};
use tokio_util::sync::CancellationToken;

use super::{port_usage, NatControl, PortUsage};

/// Largest table whose re-armed timers are re-sent to watchers each second.
const REFRESH_MAX: usize = 50_000;
/// How often the masquerade change feed is drained.
const MASQ_PERIOD: Duration = Duration::from_millis(250);

/// Entries added or changed, entries gone, and the free ports after the change.
#[derive(Debug, Clone)]
pub struct MasqDelta {
    /// New or changed entries (full snapshots).
    pub upserted: Vec<EntrySnapshot>,
    /// Ids of removed entries.
    pub removed: Vec<u64>,
    /// Free ports now.
    pub free: PortUsage,
}

/// Drain nat-core's change feed and broadcast deltas until `stop` fires; a resync diffs
/// against the ids last announced so watchers never keep stale entries. nat-core does not
/// report a timer re-armed by traffic as a change (clients count down themselves), so once
/// a second the deadlines are compared and entries whose timer moved are re-sent — for
/// tables up to `REFRESH_MAX` entries (above that, only real changes are streamed).
pub async fn run(ctl: NatControl, stop: CancellationToken) {
    // id -> deadline (nat-core ms) last announced.
    let mut known: HashMap<u64, u64> = HashMap::new();
    let mut tick = tokio::time::interval(MASQ_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        ticks += 1;
        let refresh = ticks.is_multiple_of(4);
        let delta = {
            let nat = &ctl.nat;
            let now = nat.now();
            let now_ms = now.as_millis();
            let deadline = |e: &EntrySnapshot| now_ms + e.expire_cs * 10;
            let mut engine = nat.lock();
            let mut upserted: Vec<EntrySnapshot> = Vec::new();
            let mut removed = Vec::new();
            match engine.drain_changes() {
                ChangeFeed::Changes(ch) => {
                    for c in ch {
                        match c {
                            MasqChange::Added(id) | MasqChange::Updated(id) => {
                                if let Some(e) = engine.masq_entry(now, id) {
                                    known.insert(id.0, deadline(&e));
                                    upserted.push(e);
                                }
                            }
                            MasqChange::Removed(id) => {
                                if known.remove(&id.0).is_some() {
                                    removed.push(id.0);
                                }
                            }
                        }
                    }
                }
                ChangeFeed::Resync => {
                    let snap = engine.masq_snapshot(now);
                    let live: HashMap<u64, u64> =
                        snap.iter().map(|e| (e.id.0, deadline(e))).collect();
                    removed = known
                        .keys()
                        .filter(|k| !live.contains_key(k))
                        .copied()
                        .collect();
                    upserted = snap;
                    known = live;
                }
            }
            // Upserts of entries removed later in the same batch are dropped.
            upserted.retain(|e| known.contains_key(&e.id.0));
            if refresh && engine.masq().len() <= REFRESH_MAX {
                for e in engine.masq_snapshot(now) {
                    let d = deadline(&e);
                    if let Some(old) = known.get_mut(&e.id.0) {
                        if old.abs_diff(d) > 1000 && !upserted.iter().any(|u| u.id == e.id) {
                            *old = d;
                            upserted.push(e);
                        }
                    }
                }
            }
            if upserted.is_empty() && removed.is_empty() {
                continue;
            }
            MasqDelta {
                upserted,
                removed,
                free: port_usage(&engine),
            }
        };
        let _ = ctl.feed.send(Arc::new(delta));
    }
}
