//! Real modems, real lines (issue 23): the serial-line and hang-up parts, against the mock Hayes
//! modem on a pseudo-terminal set up to behave like hardware we did not build — extra result
//! codes after `ATH`/`ATZ`, the escape guard timed on the line, S12, echo and numeric results,
//! a modem that goes silent mid-call, and one left online by a previous run.
//!
//! Wall-clock bounds here are hang guards only (a loaded 2-core box); the measured figures are
//! printed (`figure:` lines).

mod common;

use std::time::{Duration, Instant};

use masqdial_at::ChatConfig;
use masqdial_ppp::{AuthProtocol, PppConfig};
use masqdial_server::config::Config;
use masqdial_server::link::manager::{LinkManager, Who};
use masqdial_server::link::{DialOutcome, LinkState};
use masqdial_server::modem::session::{spawn_session_on, SessionEnd, SessionEvent, SessionHandle};
use masqdial_server::modem::{open, FlowControl, ModemSettings};
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::{spawn_pty, PtyModem};
use masqdial_sim::modem::{ExtraCodes, MockModemConfig};

use common::events::{is_ipcp_up, wait_for};

fn isp() -> IspConfig {
    IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    )
}

fn who() -> Who {
    Who {
        user: "alice".into(),
        host: "192.168.77.2".into(),
    }
}

fn config(mock: &PtyModem, state: &std::path::Path, baud: u32) -> Config {
    let mut cfg = common::one_modem_config(mock.path(), state);
    cfg.modems[0].baud = baud;
    cfg
}

/// Polls until `pred` holds for the link's state, at most `limit` (a hang guard).
async fn wait_until(
    links: &LinkManager,
    what: &str,
    limit: Duration,
    pred: impl Fn(Option<LinkState>) -> bool,
) -> Duration {
    let t = Instant::now();
    while t.elapsed() < limit {
        if pred(links.state("isp1")) {
            return t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (transcript, _) = links.details("isp1").unwrap_or_default();
    let lines: Vec<String> = transcript.iter().map(|l| l.text.clone()).collect();
    panic!(
        "{what}: still {:?} after {limit:?}; transcript {lines:#?}",
        links.state("isp1")
    );
}

async fn wait_up(links: &LinkManager, limit: Duration) -> Duration {
    wait_until(links, "link up", limit, |s| s == Some(LinkState::Up)).await
}

fn transcript(links: &LinkManager) -> Vec<String> {
    links
        .details("isp1")
        .map(|(t, _)| t.iter().map(|l| l.text.clone()).collect())
        .unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Done-when of issue 23: dial, hang-up and redial, 20 cycles, against a modem that answers
/// `ATH` with `NO CARRIER` then `OK` and times its escape guard on the line (S12 = 50, 19200
/// baud). Every cycle must come up and hang up; the hang-up time is measured from the hang-up
/// request to the link leaving `hanging-up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redial_loop_20_cycles_with_extra_codes_and_guard_on_the_line() {
    let mock = spawn_pty(
        MockModemConfig {
            baud: 19_200,
            guard_on_line: true,
            extra_codes: ExtraCodes::NoCarrierThenOk,
            ..MockModemConfig::default()
        },
        isp().factory(),
    )
    .expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = config(&mock, state.path(), 19_200);
    let (links, stop) = common::links_without_dataplane(&cfg);
    let mut ok = 0u32;
    let mut hangups = Vec::new();
    let mut failures = Vec::new();
    for cycle in 0..20 {
        match links.dial("isp1", who()).await {
            Ok(DialOutcome::Started) => {}
            other => {
                failures.push(format!("cycle {cycle}: dial {other:?}"));
                continue;
            }
        }
        let up = wait_until(&links, "up or failed", Duration::from_secs(30), |s| {
            matches!(s, Some(LinkState::Up | LinkState::Failed))
        })
        .await;
        if links.state("isp1") != Some(LinkState::Up) {
            failures.push(format!(
                "cycle {cycle}: failed after {up:?}: {:?}",
                transcript(&links).iter().rev().take(8).collect::<Vec<_>>()
            ));
            continue;
        }
        let before = mock.stats();
        let t = Instant::now();
        let out = links.hangup("isp1", who(), false).await;
        assert!(out.is_ok(), "cycle {cycle}: {out:?}");
        wait_until(&links, "hang-up", Duration::from_secs(30), |s| {
            s != Some(LinkState::HangingUp) && s != Some(LinkState::Up)
        })
        .await;
        let took = t.elapsed();
        hangups.push(took);
        let after = mock.stats();
        let state = links.state("isp1");
        if state != Some(LinkState::Idle)
            || after.escapes != before.escapes + 1
            || after.ath_commands != before.ath_commands + 1
        {
            failures.push(format!(
                "cycle {cycle}: hang-up ended {state:?}; modem before {before:?} after {after:?}"
            ));
            continue;
        }
        ok += 1;
    }
    let stats = mock.stats();
    hangups.sort_unstable();
    let (p50, max) = if hangups.is_empty() {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (percentile(&hangups, 0.5), hangups[hangups.len() - 1])
    };
    eprintln!(
        "figure: redial success {ok}/20; hang-up p50 {p50:?} max {max:?} (S12=50, guard on the \
         line at 19200 baud, NO CARRIER+OK after ATH); escapes {} missed {} extra codes {}",
        stats.escapes, stats.escapes_missed, stats.extra_codes
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(ok, 20);
    assert_eq!(stats.escapes, 20, "{stats:?}");
    assert_eq!(stats.escapes_missed, 0, "{stats:?}");
    // Hang guard only: the measured figure is printed above (the goal is 3.5 s).
    assert!(max <= Duration::from_secs(6), "hang-up max {max:?}");
    assert!(stop.stop(Duration::from_secs(30)).await);
}

fn session_settings(mock: &PtyModem, baud: u32, guard: Duration) -> ModemSettings {
    ModemSettings {
        flow: FlowControl::None,
        baud,
        guard_time: guard,
        command_timeout: Duration::from_secs(1),
        lock_dir: None,
        ..ModemSettings::new(mock.path())
    }
}

fn session(settings: ModemSettings, plan: ChatConfig) -> SessionHandle {
    let line = open(&settings).expect("open pty");
    let mut ppp = PppConfig::client("demo", "secret");
    ppp.seed = 9;
    spawn_session_on(Box::new(line), settings, plan, ppp).expect("spawn")
}

fn plan() -> ChatConfig {
    let mut p = ChatConfig::dialup(&["5550100"]);
    // ATZ only: the modem's stored profile (echo, verbose or numeric) stays in force.
    p.init = vec!["ATZ".into()];
    p.command_timeout = Duration::from_secs(2);
    p
}

/// Output still queued towards the modem makes the silence before `+++` shorter than the guard
/// on a modem that times it on the line. 2400 bytes written at 9600 baud cross the line for
/// 2.5 s after the `write` returns (a pty, like a USB adapter, shows no queue); the escape that
/// waits out their line time is recognised, one timed from the `write` (guard + margin, 0.7 s)
/// is data to the modem.
#[test]
fn escape_waits_out_the_line_time_of_queued_output() {
    use masqdial_server::modem::hangup::{bound, direct_reader, hang_up};
    use masqdial_server::modem::{write_all_bounded, SerialLine};
    for wait_line in [false, true] {
        let mock = spawn_pty(
            MockModemConfig {
                baud: 9600,
                guard_on_line: true,
                s12: 25, // 0.5 s
                ..MockModemConfig::default()
            },
            Box::new(|_: &str| {
                Box::new(masqdial_sim::modem::NullAnswerer)
                    as Box<dyn masqdial_sim::modem::Answerer>
            }),
        )
        .expect("pty modem");
        let settings = session_settings(&mock, 9600, Duration::from_millis(500));
        let mut line = open(&settings).expect("open");
        write_all_bounded(&mut line, b"ATE0D1\r", Duration::from_secs(1)).expect("dial");
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        let end = Instant::now() + Duration::from_secs(5);
        while !String::from_utf8_lossy(&got).contains("CONNECT") && Instant::now() < end {
            let _ = line.set_read_timeout(Duration::from_millis(50));
            if let Ok(n) = std::io::Read::read(&mut line, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert!(String::from_utf8_lossy(&got).contains("CONNECT"), "{got:?}");
        let t = Instant::now();
        write_all_bounded(&mut line, &[0x55; 2400], Duration::from_secs(1)).expect("data");
        let free = t + settings.line_time(2400);
        let mut reader = line.try_clone_line().expect("clone");
        let report = hang_up(
            &mut line,
            &settings,
            false,
            wait_line.then_some(free),
            Instant::now() + bound(&settings),
            &mut direct_reader(reader.as_mut()),
        )
        .expect("hang-up");
        let stats = mock.stats();
        eprintln!(
            "figure: escape after 2400 B at 9600 baud, line time waited {wait_line}: {report:?}, \
             escapes {}",
            stats.escapes
        );
        if wait_line {
            assert_eq!(stats.escapes, 1, "{report:?}");
            assert!(
                report.escape_ok && report.ath_ok && report.atz_ok,
                "{report:?}"
            );
        } else {
            assert_eq!(stats.escapes, 0, "the modem never saw the guard silence");
        }
    }
}

/// A modem that stops answering mid-call (nothing in, nothing out): the hang-up still ends
/// within the session's stated bound, the connection leaves `hanging-up`, and the next dial is
/// not refused as busy. The modem then answers again, still online (nothing reached it): the
/// next dial's `ATZ` gets no answer, the recovery escapes and hangs up, and the retried init
/// dials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_modem_releases_its_connection_within_the_bound() {
    let mock = spawn_pty(MockModemConfig::default(), isp().factory()).expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = config(&mock, state.path(), 115_200);
    let (links, stop) = common::links_without_dataplane(&cfg);
    let bound = links.hangup_wait("isp1");
    assert_eq!(
        links.dial("isp1", who()).await.ok(),
        Some(DialOutcome::Started)
    );
    wait_up(&links, Duration::from_secs(30)).await;
    mock.set_silent(true);
    let t = Instant::now();
    links
        .hangup("isp1", who(), false)
        .await
        .expect("hang-up accepted");
    let took = wait_until(&links, "release", bound + Duration::from_secs(10), |s| {
        !matches!(s, Some(LinkState::HangingUp | LinkState::Up))
    })
    .await;
    eprintln!(
        "figure: silent modem: connection released {took:?} after the hang-up (stated bound \
         {bound:?}); state {:?}",
        links.state("isp1")
    );
    assert!(t.elapsed() <= bound, "{:?} > {bound:?}", t.elapsed());
    assert!(
        links
            .modems()
            .iter()
            .all(|m| m.state != masqdial_server::link::events::ModemState::Busy),
        "{:?}",
        links.modems()
    );
    mock.set_silent(false);
    let out = links.dial("isp1", who()).await;
    assert!(
        matches!(out, Ok(DialOutcome::Started)),
        "the next dial is not refused: {out:?}"
    );
    wait_up(&links, Duration::from_secs(40)).await;
    // Whether the first ATZ is answered depends on whether the far end has given up on the
    // call by then (its own LCP echo timeout); either way the dial comes up.
    let lines = transcript(&links);
    eprintln!(
        "transcript after the stall: {lines:#?}; modem {:?}",
        mock.stats()
    );
    assert!(stop.stop(Duration::from_secs(30)).await);
}

/// A chat that fails after CONNECT (the login script never sees its prompt) leaves the call up
/// on a modem without DTR; the recovery (escape, ATH, ATZ) puts it back in command state and
/// the next dial works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_chat_after_connect_leaves_the_modem_in_command_state() {
    let mock = spawn_pty(
        MockModemConfig {
            s12: 10,
            extra_codes: ExtraCodes::DoubleOk,
            ..MockModemConfig::default()
        },
        isp().factory(),
    )
    .expect("pty modem");
    let settings = session_settings(&mock, 115_200, Duration::from_millis(200));
    let mut p = plan();
    p.login = vec![masqdial_at::LoginStep {
        expect: "ogin:".into(),
        send: "demo".into(),
        secret: false,
        timeout: Duration::from_millis(500),
    }];
    let mut s = session(settings.clone(), p);
    let seen = wait_for(&mut s, "end", Duration::from_secs(30), |e| {
        matches!(e, SessionEvent::Ended(_))
    })
    .await;
    assert!(
        matches!(
            seen.last(),
            Some(SessionEvent::Ended(SessionEnd::ChatFailed { .. }))
        ),
        "{seen:?}"
    );
    let t = s.transcript();
    assert!(t.iter().any(|l| l.text.contains("after CONNECT")), "{t:?}");
    assert_eq!(mock.stats().escapes, 1, "{:?}", mock.stats());
    drop(s);
    let mut s = session(settings, plan());
    wait_for(&mut s, "IPCP up", Duration::from_secs(30), is_ipcp_up).await;
    let limit = s.report_wait();
    let rest = s.hangup(limit).await;
    assert!(
        matches!(rest.last(), Some(SessionEvent::Ended(SessionEnd::HungUp))),
        "{rest:?}"
    );
}

/// mserver starts with the modem still online from a previous run (a crash): the first dial's
/// `ATZ` goes out as data and is not answered; the recovery escapes, hangs up and resets, the
/// init is retried and the dial comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_a_modem_left_online_recovers() {
    let mock = spawn_pty(
        MockModemConfig {
            online_at_start: true,
            ..MockModemConfig::default()
        },
        isp().factory(),
    )
    .expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = config(&mock, state.path(), 115_200);
    let (links, stop) = common::links_without_dataplane(&cfg);
    let t = Instant::now();
    assert_eq!(
        links.dial("isp1", who()).await.ok(),
        Some(DialOutcome::Started)
    );
    wait_up(&links, Duration::from_secs(40)).await;
    eprintln!(
        "figure: modem left online: up {:?} after the dial (includes the unanswered ATZ)",
        t.elapsed()
    );
    let lines = transcript(&links);
    assert!(
        lines.iter().any(|l| l.contains("modem state unknown")),
        "{lines:#?}"
    );
    assert_eq!(mock.stats().escapes, 1);
    // SIGTERM: the shutdown hangs the modem up (escape, ATH, ATZ) before the process exits.
    assert!(stop.stop(Duration::from_secs(30)).await);
    assert_eq!(mock.stats().escapes, 2, "{:?}", mock.stats());
}

/// `mclient dial` while the same connection hangs up: waits for the hang-up, then dials (it
/// used to be refused with "modem modem0 is in use by connection isp1").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_during_hang_up_waits_then_dials() {
    let mock = spawn_pty(MockModemConfig::default(), isp().factory()).expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = config(&mock, state.path(), 115_200);
    let (links, stop) = common::links_without_dataplane(&cfg);
    assert_eq!(
        links.dial("isp1", who()).await.ok(),
        Some(DialOutcome::Started)
    );
    wait_up(&links, Duration::from_secs(30)).await;
    links
        .hangup("isp1", who(), false)
        .await
        .expect("hang-up accepted");
    wait_until(&links, "hanging up", Duration::from_secs(5), |s| {
        s == Some(LinkState::HangingUp)
    })
    .await;
    let t = Instant::now();
    let out = links.dial("isp1", who()).await;
    let waited = t.elapsed();
    eprintln!("figure: dial during hang-up waited {waited:?} then {out:?}");
    assert!(matches!(out, Ok(DialOutcome::Started)), "{out:?}");
    wait_up(&links, Duration::from_secs(30)).await;
    assert!(stop.stop(Duration::from_secs(30)).await);
}

/// The Hayes behaviour matrix: echo on/off × verbose/numeric results × extra result codes after
/// `ATH`/`ATZ` (none, NO CARRIER+OK, OK OK, a late second OK). Each modem dials, hangs up,
/// dials again and hangs up. (`&D` settings have no effect through a pty, which has no DTR:
/// they are covered by the mock's unit tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_matrix_each_dials_and_hangs_up() {
    let extras = [
        ExtraCodes::None,
        ExtraCodes::NoCarrierThenOk,
        ExtraCodes::DoubleOk,
        ExtraCodes::LateOk(Duration::from_millis(150)),
    ];
    let mut failures = Vec::new();
    let mut runs = 0;
    for echo in [true, false] {
        for verbose in [true, false] {
            for extra in extras {
                let mock = spawn_pty(
                    MockModemConfig {
                        echo,
                        verbose,
                        extra_codes: extra,
                        s12: 5,
                        guard_on_line: true,
                        baud: 115_200,
                        ..MockModemConfig::default()
                    },
                    isp().factory(),
                )
                .expect("pty modem");
                let settings = session_settings(&mock, 115_200, Duration::from_millis(100));
                for round in 0..2 {
                    runs += 1;
                    let name = format!(
                        "E{} V{} {extra:?} round {round}",
                        u8::from(echo),
                        u8::from(verbose)
                    );
                    let mut s = session(settings.clone(), plan());
                    let mut seen = Vec::new();
                    let up = tokio::time::timeout(Duration::from_secs(20), async {
                        while let Some(e) = s.next_event().await {
                            let hit = is_ipcp_up(&e);
                            let end = matches!(e, SessionEvent::Ended(_));
                            seen.push(e);
                            if hit || end {
                                return hit;
                            }
                        }
                        false
                    })
                    .await;
                    if up != Ok(true) {
                        failures.push(format!("{name}: no IPCP: {seen:?} {:?}", s.transcript()));
                        continue;
                    }
                    let limit = s.report_wait();
                    let rest = s.hangup(limit).await;
                    if !matches!(rest.last(), Some(SessionEvent::Ended(SessionEnd::HungUp))) {
                        failures.push(format!("{name}: hang-up {rest:?}"));
                    }
                }
                let st = mock.stats();
                if st.escapes != 2 || st.escapes_missed != 0 {
                    failures.push(format!("E{echo} V{verbose} {extra:?}: {st:?}"));
                }
                mock.stop();
            }
        }
    }
    eprintln!(
        "figure: behaviour matrix: {} of {runs} dial+hang-up runs passed",
        runs - failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Result codes the modem printed while nobody read the port (a late extra `OK` of the last
/// hang-up) sit in the tty's input queue; the next dial flushes them at open and before its
/// first command instead of taking them for `ATZ`'s answer (which shifted every later answer
/// by one: "modem answered OK to dialling").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_result_codes_before_open_are_flushed() {
    let mock = spawn_pty(
        MockModemConfig {
            extra_codes: ExtraCodes::DoubleOk,
            ..MockModemConfig::default()
        },
        isp().factory(),
    )
    .expect("pty modem");
    let settings = session_settings(&mock, 115_200, Duration::from_millis(100));
    {
        let mut raw = open(&settings).expect("open");
        masqdial_server::modem::write_all_bounded(
            &mut raw,
            b"ATH\rATZ\rAT\r",
            Duration::from_secs(1),
        )
        .expect("write");
        // Let the modem answer (six result lines) into the tty's input queue; nobody reads.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut s = session(settings, plan());
    wait_for(&mut s, "IPCP up", Duration::from_secs(20), is_ipcp_up).await;
    let limit = s.report_wait();
    let rest = s.hangup(limit).await;
    assert!(
        matches!(rest.last(), Some(SessionEvent::Ended(SessionEnd::HungUp))),
        "{rest:?}"
    );
}
