//! Several HDLC frames in one `handle_input` call (a serial read usually returns many):
//! nothing may be lost between phases. Client and server each get the other side's whole
//! output as one chunk per round; with a simulated clock, bring-up must not need a restart
//! timer (3 s) to recover a dropped frame.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_ppp::{AuthProtocol, Ppp, PppConfig, PppEvent};

fn bring_up(auth: Option<AuthProtocol>) -> Duration {
    let mut s = PppConfig::access_server(
        vec![("alice".into(), "wonderland".into())],
        auth,
        Ipv4Addr::new(10, 64, 0, 1),
        Ipv4Addr::new(10, 64, 0, 2),
        vec![],
    );
    s.seed = 2;
    let mut c = PppConfig::client("alice", "wonderland");
    c.seed = 1;
    if auth == Some(AuthProtocol::Pap) {
        // PAP is taken at once only when it is the one protocol allowed (`auth = "pap"`);
        // otherwise CHAP-MD5 is proposed first.
        c.accept_auth = vec![AuthProtocol::Pap];
    }
    let (mut c, mut s) = (Ppp::new(c), Ppp::new(s));
    let start = Instant::now();
    let mut now = start;
    c.open(now);
    s.open(now);
    for _ in 0..10_000 {
        let mut to_s = Vec::new();
        while let Some(b) = c.poll_transmit() {
            to_s.extend_from_slice(&b);
        }
        let mut to_c = Vec::new();
        while let Some(b) = s.poll_transmit() {
            to_c.extend_from_slice(&b);
        }
        if !to_s.is_empty() {
            s.handle_input(now, &to_s);
        }
        if !to_c.is_empty() {
            c.handle_input(now, &to_c);
        }
        while let Some(e) = c.poll_event() {
            if let PppEvent::IpcpUp { .. } = e {
                return now - start;
            }
        }
        while s.poll_event().is_some() {}
        if to_s.is_empty() && to_c.is_empty() {
            // Quiet: advance the clock to the next timer.
            let t = [c.poll_timeout(), s.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(100));
            now = t.max(now);
            c.handle_timeout(now);
            s.handle_timeout(now);
        }
        assert!(now - start < Duration::from_secs(60), "never came up");
    }
    panic!("never came up");
}

#[test]
fn batched_frames_are_all_processed_pap() {
    let t = bring_up(Some(AuthProtocol::Pap));
    assert!(
        t < Duration::from_secs(1),
        "bring-up needed a retransmission: {t:?}"
    );
}

#[test]
fn batched_frames_are_all_processed_chap() {
    let t = bring_up(Some(AuthProtocol::Chap));
    assert!(
        t < Duration::from_secs(1),
        "bring-up needed a retransmission: {t:?}"
    );
}
