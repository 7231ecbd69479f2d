//! The journal as pppd and chat leave it (issue 29): every dial's outcome with its cause at
//! info (success, BUSY, authentication refused), every session's summary at its end (connect
//! time, bytes and packets each way, why it ended) at info, and a `chat -v` style line per
//! send and per line received at debug — with the SIM PIN and the PPP secret never in it.
//! The link manager dials mock modems on ptys; the tracing output is captured.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use masqdial_ppp::AuthProtocol;
use masqdial_server::config::CellularConfig;
use masqdial_server::link::events::DialStep;
use masqdial_server::link::manager::{LinkManager, Who};
use masqdial_server::link::LinkState;
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::{CallResult, MockModemConfig, Outcome};

const LIMIT: Duration = Duration::from_secs(40);
const PIN: &str = "2468";
const SECRET: &str = "Pw-0f-the-ISP";

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<u8>>>);

impl Write for Journal {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Journal {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

fn who() -> Who {
    Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    }
}

/// Dial `name` and wait (bounded) for its final step; true when it came up.
async fn dial(links: &LinkManager, name: &str) -> bool {
    let mut progress = links.progress(name).expect("progress");
    links.dial(name, who()).await.expect("dial");
    tokio::time::timeout(LIMIT, async {
        loop {
            match progress.recv().await.expect("progress open").step {
                DialStep::Up(_) => return true,
                DialStep::Failed(_) => return false,
                _ => {}
            }
        }
    })
    .await
    .expect("the dial ended")
}

/// The lines of `journal` at `level` that contain `needle`.
fn lines<'a>(journal: &'a str, level: &str, needle: &str) -> Vec<&'a str> {
    journal
        .lines()
        .filter(|l| l.contains(level) && l.contains(needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_outcomes_session_summaries_and_chat_lines_reach_the_journal_without_secrets() {
    let journal = Journal::default();
    let sink = journal.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    // modem0: a cellular modem whose SIM wants a PIN, then the ISP; modem1: every number BUSY.
    let isp = IspConfig::new(
        vec![("demo".into(), SECRET.into())],
        Some(AuthProtocol::Chap),
    );
    let cell = spawn_pty(
        MockModemConfig {
            sim_pin: Some(PIN.into()),
            ..MockModemConfig::default()
        },
        isp.factory(),
    )
    .expect("pty modem");
    let busy = spawn_pty(
        MockModemConfig {
            default_outcome: Outcome::now(CallResult::Busy),
            ..MockModemConfig::default()
        },
        IspConfig::new(
            vec![("demo".into(), SECRET.into())],
            Some(AuthProtocol::Chap),
        )
        .factory(),
    )
    .expect("pty modem");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = common::one_modem_config(cell.path(), dir.path());
    cfg.modems[0].cellular = Some(CellularConfig {
        poll_s: 3600,
        sim_pin: Some(PIN.into()),
        status_port: None,
    });
    let mut m1 = cfg.modems[0].clone();
    m1.name = "modem1".into();
    m1.device = busy.path().to_path_buf();
    m1.cellular = None;
    cfg.modems.push(m1);
    {
        let c = &mut cfg.connections[0];
        c.numbers = vec!["*99#".into()];
        c.dial_prefix = "ATD".into();
        c.apn = Some("internet".into());
        c.password = SECRET.into();
    }
    let mut busy_c = cfg.connections[0].clone();
    busy_c.name = "isp2".into();
    busy_c.numbers = vec!["5550199".into()];
    busy_c.dial_prefix = "ATDT".into();
    busy_c.apn = None;
    busy_c.modems = vec!["modem1".into()];
    let mut refused = cfg.connections[0].clone();
    refused.name = "isp3".into();
    refused.password = "not-the-password".into();
    cfg.connections.push(busy_c);
    cfg.connections.push(refused);
    let (links, stop) = common::links_without_dataplane(&cfg);

    // Up, a second of it, then hung up.
    assert!(dial(&links, "isp1").await, "isp1 came up");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    links.hangup("isp1", who(), false).await.expect("hangup");
    let t = Instant::now();
    while links.state("isp1") != Some(LinkState::Idle) {
        assert!(t.elapsed() < LIMIT, "never idle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!dial(&links, "isp2").await, "isp2 is busy");
    assert!(!dial(&links, "isp3").await, "isp3's password is wrong");
    assert!(stop.stop(Duration::from_secs(15)).await, "tasks ended");
    let j = journal.text();

    // Outcomes, at info, with their cause.
    let ok = lines(
        &j,
        " INFO ",
        "dial succeeded: CONNECT 115200, local 10.64.0.2, peer 10.64.0.1",
    );
    assert_eq!(ok.len(), 1, "{j}");
    assert!(ok[0].contains("connection=isp1"), "{}", ok[0]);
    let busy_l = lines(
        &j,
        " INFO ",
        "dial failed: BUSY: BUSY from 5550199; all 1 number(s) tried 1 time(s)",
    );
    assert_eq!(busy_l.len(), 1, "{j}");
    assert!(
        busy_l[0].contains("connection=isp2") && busy_l[0].contains("cause=\"BUSY\""),
        "{}",
        busy_l[0]
    );
    let auth = lines(&j, " INFO ", "dial failed: AUTH REFUSED: ");
    assert_eq!(auth.len(), 1, "{j}");
    assert!(auth[0].contains("connection=isp3"), "{}", auth[0]);

    // The session's summary at its end: connect time, both directions, why.
    let summary = lines(&j, " INFO ", "session ended: connect time 0:00:0");
    assert_eq!(summary.len(), 1, "{j}");
    let s = summary[0];
    assert!(s.contains("connection=isp1"), "{s}");
    assert!(s.contains("packets; hung up on request "), "{s}");
    for f in [
        "connect_time_s=",
        "bytes_out=",
        "packets_out=",
        "bytes_in=",
        "packets_in=",
    ] {
        assert!(s.contains(f), "{f} missing: {s}");
    }
    assert!(
        !s.contains("connect_time_s=0 "),
        "a second was spent up: {s}"
    );

    // chat -v: each send and each line received, at debug.
    for l in [
        "send (ATZ)",
        "got (OK)",
        "send (AT+CPIN=********)",
        "send (ATD*99#)",
        "got (CONNECT 115200)",
        "send (ATDT5550199)",
        "got (BUSY)",
    ] {
        assert!(
            !lines(&j, "DEBUG", l).is_empty(),
            "no debug line {l:?} in\n{j}"
        );
    }

    // Never a secret, at any level.
    assert!(!j.contains(PIN), "the SIM PIN reached the journal:\n{j}");
    assert!(
        !j.contains(SECRET),
        "the PPP secret reached the journal:\n{j}"
    );
    assert!(
        !j.contains("not-the-password"),
        "a PPP secret reached the journal:\n{j}"
    );
}
