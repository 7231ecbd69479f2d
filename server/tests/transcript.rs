//! The dial transcript (`mclient cinfo`, mtui's details) is one list in the order things
//! happened, each event once, every line timed: exactly these lines for a successful dial of
//! the mock ISP and for a BUSY number redialled once, through the link manager on a pty. And
//! the dial's progress says BUSY and counts its attempts on (issue 29).

mod common;

use std::time::{Duration, Instant, SystemTime};

use masqdial_at::TranscriptKind;
use masqdial_ppp::AuthProtocol;
use masqdial_server::link::events::{DialStep, TranscriptEntry};
use masqdial_server::link::manager::{LinkManager, Who};
use masqdial_server::link::{FailureKind, LinkState};
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::{CallResult, MockModemConfig, Outcome};

const LIMIT: Duration = Duration::from_secs(40);

fn who() -> Who {
    Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    }
}

fn kind(k: TranscriptKind) -> &'static str {
    match k {
        TranscriptKind::Send => "send",
        TranscriptKind::Recv => "recv",
        TranscriptKind::Info => "info",
        TranscriptKind::Error => "error",
    }
}

/// `kind text` per line; also checks that every line is timed within the dial and that the
/// times never go back.
fn lines(t: &[TranscriptEntry], from: SystemTime) -> Vec<String> {
    let until = SystemTime::now();
    let mut last = from;
    for l in t {
        assert!(l.at >= last, "time goes back at {:?}: {t:#?}", l.text);
        assert!(l.at <= until, "a line from the future: {t:#?}");
        last = l.at;
    }
    t.iter()
        .map(|l| format!("{} {}", kind(l.kind), l.text))
        .collect()
}

/// Wait (bounded) until `name` is in `state`.
async fn wait_state(links: &LinkManager, name: &str, state: LinkState) {
    let t = Instant::now();
    while links.state(name) != Some(state) {
        assert!(t.elapsed() < LIMIT, "{name} never {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_dial_has_one_ordered_transcript_each_line_once() {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = common::one_modem_config(modem.path(), dir.path());
    let (links, stop) = common::links_without_dataplane(&cfg);
    let t0 = SystemTime::now();
    links.dial("isp1", who()).await.expect("dial");
    wait_state(&links, "isp1", LinkState::Up).await;
    let (t, _) = links.details("isp1").expect("details");
    let up = lines(&t, t0);
    assert_eq!(
        up,
        [
            "send ATZ",
            "recv OK",
            "info dialling 5550100 (number 1 of 1, attempt 1 of 1)",
            "send ATDT5550100",
            "recv CONNECT 115200",
            "info line handed to PPP",
            "info LCP up (peer MRU 1500, auth CHAP-MD5)",
            "info authentication ok (CHAP-MD5)",
            "info IPCP up: local 10.64.0.2, peer 10.64.0.1, dns [10.64.0.53, 10.64.0.54]",
        ],
        "{t:#?}"
    );

    // The hang-up goes on the end of the same list; nothing before it moves or repeats.
    links.hangup("isp1", who(), false).await.expect("hangup");
    wait_state(&links, "isp1", LinkState::Idle).await;
    let (t, _) = links.details("isp1").expect("details");
    let all = lines(&t, t0);
    assert_eq!(all[..up.len()], up[..], "{all:#?}");
    let rest: Vec<&str> = all[up.len()..].iter().map(String::as_str).collect();
    assert_eq!(
        rest.first(),
        Some(&"info PPP down: closed locally: hang-up requested"),
        "{all:#?}"
    );
    assert_eq!(rest.get(1).copied(), Some("info hanging up"), "{all:#?}");
    assert!(
        rest.get(2)
            .is_some_and(|l| l.starts_with("info hang-up: DTR drop")),
        "{all:#?}"
    );
    assert_eq!(rest.len(), 3, "{all:#?}");
    assert!(stop.stop(Duration::from_secs(15)).await, "tasks ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_dial_says_busy_once_per_attempt_and_counts_attempts_on() {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let modem_cfg = MockModemConfig {
        default_outcome: Outcome::now(CallResult::Busy),
        ..MockModemConfig::default()
    };
    let modem = spawn_pty(modem_cfg, isp.factory()).expect("pty modem");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = common::one_modem_config(modem.path(), dir.path());
    cfg.connections[0].numbers = vec!["5550199".into()];
    cfg.connections[0].redial_attempts = 2;
    let (links, stop) = common::links_without_dataplane(&cfg);
    let mut progress = links.progress("isp1").expect("progress");
    let t0 = SystemTime::now();
    links.dial("isp1", who()).await.expect("dial");
    let mut steps = Vec::new();
    tokio::time::timeout(LIMIT, async {
        loop {
            let s = progress.recv().await.expect("progress open").step;
            let last = s.is_final();
            steps.push(s);
            if last {
                return;
            }
        }
    })
    .await
    .expect("the dial ended");
    wait_state(&links, "isp1", LinkState::Failed).await;

    let (t, _) = links.details("isp1").expect("details");
    assert_eq!(
        lines(&t, t0),
        [
            "send ATZ",
            "recv OK",
            "info dialling 5550199 (number 1 of 1, attempt 1 of 2)",
            "send ATDT5550199",
            "recv BUSY",
            "info BUSY from 5550199; dialling 5550199 in 1000 ms",
            "info dialling 5550199 (number 1 of 1, attempt 2 of 2)",
            "send ATDT5550199",
            "recv BUSY",
            "error BUSY from 5550199; all 1 number(s) tried 2 time(s)",
        ],
        "{t:#?}"
    );

    // Progress: each attempt numbered on, the BUSY said before the redial, the failure once.
    let shown: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            DialStep::Dialing {
                attempt, attempts, ..
            } => Some(format!("dialing {attempt}/{attempts}")),
            DialStep::Redial { next_attempt, .. } => Some(format!("redial {next_attempt}")),
            DialStep::Info(t) if !t.starts_with("init") => Some(format!("info {t}")),
            DialStep::Failed(f) => Some(format!("failed {:?}: {}", f.kind, f.message)),
            _ => None,
        })
        .collect();
    assert_eq!(
        shown,
        [
            "dialing 1/2",
            "info BUSY from 5550199",
            "redial 2",
            "dialing 2/2",
            "failed Busy: BUSY from 5550199; all 1 number(s) tried 2 time(s)",
        ],
        "{steps:#?}"
    );
    let f = links
        .status("isp1")
        .ok()
        .and_then(|s| s.last_failure)
        .expect("a last failure");
    assert_eq!(f.kind, FailureKind::Busy);
    assert!(stop.stop(Duration::from_secs(15)).await, "tasks ended");
}
