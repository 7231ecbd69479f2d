//! Waiting on a modem session's progress events (bounded), shared by the session tests.

use std::time::Duration;

use masqdial_ppp::PppEvent;
use masqdial_server::modem::session::{SessionEvent, SessionHandle};

/// Collects `s`'s events until one satisfies `pred`; fails the test (naming `what` and what
/// was seen) if none does within `limit`.
pub async fn wait_for(
    s: &mut SessionHandle,
    what: &str,
    limit: Duration,
    mut pred: impl FnMut(&SessionEvent) -> bool,
) -> Vec<SessionEvent> {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(limit, async {
        while let Some(e) = s.next_event().await {
            let hit = pred(&e);
            seen.push(e);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(r, Ok(true), "waiting for {what}; saw {seen:?}");
    seen
}

/// IPCP came up: the link carries IP.
pub fn is_ipcp_up(e: &SessionEvent) -> bool {
    matches!(e, SessionEvent::Ppp(PppEvent::IpcpUp { .. }))
}
