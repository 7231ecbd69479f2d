//! The one way a server stream follows a broadcast feed.
//!
//! Owns the loop that copies a `tokio::sync::broadcast` receiver into a stream's channel:
//! it ends when the client goes away (not at the next event), when the feed closes, or
//! after an item the caller marks final; and when the receiver lagged (the watcher was too
//! slow and the feed dropped its oldest items) it sends what the caller's `on_lag` makes,
//! a fresh snapshot, so the watcher is resynced instead of silently wrong (finding N17).
//! Must not touch the domain (links, NAT): what an item becomes and what a resync holds
//! are the caller's `map` and `on_lag`.

use futures::{Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tonic::Status;

/// Whether the stream goes on after an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep forwarding.
    Go,
    /// That item was the last one (e.g. a dial's final step).
    Stop,
}

/// Why [`forward`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The client went away (the channel closed).
    Client,
    /// The feed closed (its sender is gone).
    Feed,
    /// `map` marked an item [`Flow::Stop`].
    Done,
}

/// Forward `rx` to `tx` through `map` until the client goes, the feed closes or `map`
/// says [`Flow::Stop`]. When `rx` lagged, everything `on_lag(missed)` yields is sent
/// first (the items after the gap follow).
pub(crate) async fn forward<T, U, M, L, S>(
    mut rx: broadcast::Receiver<T>,
    tx: &mpsc::Sender<Result<U, Status>>,
    mut map: M,
    mut on_lag: L,
) -> Ended
where
    T: Clone,
    M: FnMut(T) -> (U, Flow),
    L: FnMut(u64) -> S,
    S: Stream<Item = U>,
{
    loop {
        let next = tokio::select! {
            _ = tx.closed() => return Ended::Client,
            r = rx.recv() => r,
        };
        match next {
            Ok(item) => {
                let (out, flow) = map(item);
                if tx.send(Ok(out)).await.is_err() {
                    return Ended::Client;
                }
                if flow == Flow::Stop {
                    return Ended::Done;
                }
            }
            Err(RecvError::Lagged(missed)) => {
                let resync = on_lag(missed);
                futures::pin_mut!(resync);
                while let Some(out) = resync.next().await {
                    if tx.send(Ok(out)).await.is_err() {
                        return Ended::Client;
                    }
                }
            }
            Err(RecvError::Closed) => return Ended::Feed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn drain(mut rx: mpsc::Receiver<Result<String, Status>>) -> Vec<String> {
        let mut got = Vec::new();
        while let Some(Ok(s)) = rx.recv().await {
            got.push(s);
        }
        got
    }

    #[tokio::test]
    async fn a_lagging_watcher_gets_the_resync_before_what_follows_the_gap() {
        // Capacity 2, five items before the watcher reads: it lags by 3.
        let (feed, rx) = broadcast::channel::<u32>(2);
        for i in 0..5 {
            let _ = feed.send(i);
        }
        drop(feed);
        let (tx, out) = mpsc::channel(16);
        let ended = forward(
            rx,
            &tx,
            |i| (format!("item {i}"), Flow::Go),
            |missed| futures::stream::iter([format!("resync after {missed} missed")]),
        )
        .await;
        drop(tx);
        assert_eq!(ended, Ended::Feed);
        assert_eq!(
            drain(out).await,
            ["resync after 3 missed", "item 3", "item 4"]
        );
    }

    #[tokio::test]
    async fn no_lag_no_resync_and_stop_ends_the_stream() {
        let (feed, rx) = broadcast::channel::<u32>(8);
        for i in 0..4 {
            let _ = feed.send(i);
        }
        let (tx, out) = mpsc::channel(16);
        let ended = forward(
            rx,
            &tx,
            |i| {
                (
                    format!("item {i}"),
                    if i == 2 { Flow::Stop } else { Flow::Go },
                )
            },
            |_| futures::stream::iter([String::from("resync")]),
        )
        .await;
        drop(tx);
        assert_eq!(ended, Ended::Done);
        assert_eq!(drain(out).await, ["item 0", "item 1", "item 2"]);
    }

    #[tokio::test]
    async fn a_gone_client_ends_it_without_waiting_for_the_feed() {
        let (_feed, rx) = broadcast::channel::<u32>(2);
        let (tx, out) = mpsc::channel::<Result<String, Status>>(1);
        drop(out);
        let ended = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            forward(
                rx,
                &tx,
                |i| (i.to_string(), Flow::Go),
                |_| futures::stream::empty(),
            ),
        )
        .await;
        assert_eq!(ended.ok(), Some(Ended::Client));
    }
}
