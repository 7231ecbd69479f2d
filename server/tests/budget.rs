//! Budgets in process (no root): the link manager refuses a dial outside the connection's
//! dialling window, warns the watchers when the byte quota is nearly spent, hangs up when
//! it is spent (mock modem on a pseudo-terminal, mock ISP's UDP echo through the in-memory
//! LAN port), and still refuses after a restart because the usage was saved.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use masqdial_ppp::AuthProtocol;
use masqdial_server::budget::{Count, Limit, Period};
use masqdial_server::config::{BudgetConfig, Config};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::events::{LinkChange, LinkEvent};
use masqdial_server::link::manager::{LinkError, LinkManager, Who};
use masqdial_server::link::{DialOutcome, LinkState};
use masqdial_server::persist::build_engine;
use masqdial_server::rpc::ApiError;
use masqdial_server::shutdown::Shutdown;
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::MockModemConfig;
use tokio::sync::broadcast;

fn config(device: &std::path::Path, state: &std::path::Path, budget: BudgetConfig) -> Config {
    let mut c = common::one_modem_config(device, state);
    c.budgets.push(budget);
    c
}

fn budget() -> BudgetConfig {
    BudgetConfig {
        connection: "isp1".into(),
        bytes: None,
        bytes_period: Period::Month,
        count: Count::Both,
        connect_time_s: None,
        time_period: Period::Day,
        windows: vec![],
        utc_offset: Some("+00:00".into()),
        warn_before_s: 300,
        warn_at: 0.9,
    }
}

fn who() -> Who {
    Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    }
}

fn unix_now() -> i64 {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_secs()).expect("seconds fit")
}

async fn wait_state(links: &LinkManager, want: LinkState) {
    // Up to 30 s: a dial over the pty can take several seconds on a loaded 2-core CI box.
    for _ in 0..3000 {
        if links.state("isp1") == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("link never reached {want:?}: {:?}", links.status("isp1"));
}

/// The next budget notice on the event stream (within 30 s; ticks are 1 s apart, but a
/// loaded CI box can stall the test's tasks for seconds).
async fn next_notice(
    events: &mut broadcast::Receiver<LinkEvent>,
) -> masqdial_server::budget::Notice {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(LinkEvent {
                    change: LinkChange::Budget { connection, notice },
                    ..
                }) => {
                    assert_eq!(connection, "isp1");
                    return notice;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await
    .expect("a budget notice within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_outside_the_window_is_refused_saying_when_it_opens() {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Pap),
    );
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    // A one-minute window every day, twelve hours from now (UTC): closed now.
    let now = unix_now();
    let open_at = (now + 12 * 3600) / 60 * 60;
    let hm = |t: i64| {
        format!(
            "{:02}:{:02}",
            t.rem_euclid(86_400) / 3600,
            t.rem_euclid(3600) / 60
        )
    };
    let window = format!("* {}-{}", hm(open_at), hm(open_at + 60));
    let mut b = budget();
    b.windows = vec![window.clone()];
    let cfg = config(modem.path(), state.path(), b);
    let (links, stop) = common::links_without_dataplane(&cfg);

    let err = links.dial("isp1", who()).await.expect_err("refused");
    let LinkError::Budget(r) = &err else {
        panic!("not a budget refusal: {err}");
    };
    let r = r.clone();
    assert_eq!(r.limit, Limit::Window);
    assert_eq!(r.reopens, Some(open_at));
    let when = masqdial_server::budget::local_text(open_at, 0);
    assert_eq!(
        r.message,
        format!(
            "Connection isp1 may not be dialled now: outside its dialling windows ({window}); the next \
             window opens {when} (UTC+00:00)"
        )
    );
    // FAILED_PRECONDITION with the same sentence.
    let status = tonic::Status::from(ApiError::from(err));
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(status.message(), r.message);
    assert_eq!(
        links.state("isp1"),
        Some(LinkState::Idle),
        "nothing dialled"
    );
    // Status shows the window and the refusal.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let st = links.status("isp1").expect("status");
    let bv = st.budget.expect("budget in status");
    assert!(!bv.window_open);
    assert_eq!(bv.window_changes_at, Some(open_at));
    assert_eq!(bv.refusal.as_deref(), Some(r.message.as_str()));
    stop.stop(Duration::from_secs(5)).await;
    drop(modem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_quota_warns_hangs_up_and_stays_spent_after_a_restart() {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Pap),
    );
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    let mut b = budget();
    b.bytes = Some(3000);
    b.warn_at = 0.5;
    let cfg = config(modem.path(), state.path(), b);

    let engine = build_engine(&cfg).expect("engine");
    let common::MemoryGateway {
        nat: _,
        stop,
        lan_tx,
        mut lan_out,
        links,
    } = common::memory_gateway(&cfg, engine);
    let mut events = links.events();
    assert_eq!(
        links.dial("isp1", who()).await.expect("dial"),
        DialOutcome::Started
    );
    wait_state(&links, LinkState::Up).await;

    // Each echo moves 428 bytes out and 428 in (20 IP + 8 UDP + 400 payload).
    let host = (Ipv4Addr::new(192, 168, 77, 2), 40_001);
    let server = (Ipv4Addr::new(198, 51, 100, 7), 7);
    let echo = |n: usize| {
        let lan_tx = lan_tx.clone();
        async move {
            for _ in 0..n {
                let pkt = masqdial_sim::isp::udp_datagram(
                    host.0,
                    host.1,
                    server.0,
                    server.1,
                    &[7u8; 400],
                );
                lan_tx.send(pkt).await.expect("lan send");
            }
        }
    };
    echo(2).await; // 1712 bytes: over half of 3000
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(15), lan_out.recv())
            .await
            .expect("echo within 15 s")
            .expect("lan open");
    }
    let warn = next_notice(&mut events).await;
    assert_eq!((warn.limit, warn.hang_up), (Limit::Bytes, false));
    assert_eq!(warn.remaining, 3000 - 1712);
    assert_eq!(
        warn.message,
        "Connection isp1 has used 1712 of its 3000 byte monthly quota; it hangs up when 1288 more bytes have passed"
    );
    assert_eq!(links.state("isp1"), Some(LinkState::Up), "a warning only");

    // Two more echoes spend it (3424 bytes). On a loaded box a datagram may be dropped on
    // the way (CoDel, a full queue): then one more echo every 2 s until the quota is spent.
    echo(2).await;
    let mut cut = None;
    for _ in 0..15 {
        match tokio::time::timeout(Duration::from_secs(2), next_notice(&mut events)).await {
            Ok(n) => {
                cut = Some(n);
                break;
            }
            Err(_) => echo(1).await,
        }
    }
    let cut = cut.expect("the hang-up notice within 30 s of spending the quota");
    assert_eq!((cut.limit, cut.hang_up), (Limit::Bytes, true));
    assert!(
        cut.message
            .starts_with("Hanging up. Connection isp1 has used its monthly byte quota (")
            && cut
                .message
                .contains(" of 3000 bytes this month); it renews "),
        "{}",
        cut.message
    );
    wait_state(&links, LinkState::Idle).await;
    assert!(links.status("isp1").expect("status").holders.is_empty());

    let err = links.dial("isp1", who()).await.expect_err("refused");
    let LinkError::Budget(r) = &err else {
        panic!("not a budget refusal: {err}");
    };
    assert_eq!(r.limit, Limit::Bytes);
    let status = tonic::Status::from(ApiError::from(err));
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);

    // Restart: a new manager over the same state directory still counts the bytes.
    assert!(stop.stop(Duration::from_secs(15)).await, "stopped in time");
    let stop = Shutdown::new();
    let nat = NatHandle::new(build_engine(&cfg).expect("engine"));
    let links = LinkManager::start(&cfg, Uplink::new(nat, None, None), &stop);
    let err = links.dial("isp1", who()).await.expect_err("still refused");
    assert!(
        matches!(&err, LinkError::Budget(r) if r.limit == Limit::Bytes),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let bv = links
        .status("isp1")
        .expect("status")
        .budget
        .expect("budget");
    assert_eq!((bv.bytes_used, bv.bytes_quota), (3424, Some(3000)));
    stop.stop(Duration::from_secs(5)).await;
    drop(modem);
}
