//! The whole path in one process, no root needed: the link manager dials the mock modem on a
//! real pseudo-terminal, our PPP client negotiates with the mock ISP, the link's address
//! becomes the masquerade address, and LAN packets (in-memory LAN port) are masqueraded
//! over the link and answered by the ISP's simulated internet. Then hang-up.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use masqdial_ppp::AuthProtocol;
use masqdial_server::config::Config;
use masqdial_server::link::events::DialStep;
use masqdial_server::link::manager::{LinkError, LinkManager, Who};
use masqdial_server::link::{DialOutcome, FailureKind, HangupOutcome, LinkState};
use masqdial_server::nat_control::{self, MasqDelta, NatControl};
use masqdial_server::persist::build_engine;
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::MockModemConfig;
use nat_core::masq::EntrySnapshot;
use nat_core::wire::{ipv4, udp};
use tokio::sync::broadcast;

/// One UDP datagram with valid checksums (the mock ISP's builder).
fn udp_packet(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    masqdial_sim::isp::udp_datagram(src.0, src.1, dst.0, dst.1, payload)
}

fn config(device: &std::path::Path, state: &std::path::Path) -> Config {
    let mut c = common::one_modem_config(device, state);
    let mut isp2 = c.connections[0].clone();
    isp2.name = "isp2".into();
    isp2.numbers = vec!["5550200".into()];
    c.connections.push(isp2);
    c
}

/// The next delta that upserts an entry.
async fn next_upsert(s: &mut broadcast::Receiver<Arc<MasqDelta>>) -> EntrySnapshot {
    loop {
        let d = tokio::time::timeout(Duration::from_secs(5), s.recv())
            .await
            .expect("masq event within 5 s")
            .expect("feed open");
        if let Some(e) = d.upserted.first() {
            return e.clone();
        }
    }
}

async fn wait_state(links: &LinkManager, want: LinkState) {
    for _ in 0..1000 {
        if links.state("isp1") == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "link never reached {want:?}: {:?}",
        links.status("isp1").map(|s| s.last_failure)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_masquerade_and_hang_up_over_a_pty() {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = config(modem.path(), state.path());

    let engine = build_engine(&cfg).expect("engine");
    // The NAT's clock moves only when the test says so: expiry is checked exactly.
    let (
        common::MemoryGateway {
            nat,
            stop,
            lan_tx,
            mut lan_out,
            links,
        },
        clock,
    ) = common::memory_gateway_with_manual_clock(&cfg, engine);
    let natctl = NatControl::new(Arc::new(cfg), nat.clone(), None);
    stop.spawn(nat_control::feed::run(natctl.clone(), stop.token()));

    let mut progress = links.progress("isp1").expect("progress");
    let who = Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    };
    assert_eq!(
        links.dial("isp1", who.clone()).await.expect("dial"),
        DialOutcome::Started
    );
    wait_state(&links, LinkState::Up).await;
    let status = links.status("isp1").expect("status");
    let local: Ipv4Addr = status.local.expect("local address");
    assert_eq!(status.peer, Some(Ipv4Addr::new(10, 64, 0, 1)));
    assert_eq!(status.speed_bps, 115_200);
    assert_eq!(natctl.masq_address(), Some(local));
    // The progress stream told the story in order.
    let mut kinds = Vec::new();
    while let Ok(ev) = progress.try_recv() {
        let k = format!("{:?}", ev.step);
        kinds.push(k.split(['(', ' ']).next().unwrap_or_default().to_string());
    }
    for want in [
        "ModemInit",
        "Dialing",
        "Connected",
        "LcpUp",
        "AuthOk",
        "IpcpUp",
        "Up",
    ] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }

    // A masquerade watcher: feed first, then the table in pieces (empty), then deltas.
    let mut watch_masq = natctl.subscribe_masq();
    assert_eq!(natctl.masq_piece(0, 1000), (vec![], None));

    // LAN traffic goes out masqueraded and the ISP's UDP echo comes back to the LAN host.
    let host = (Ipv4Addr::new(192, 168, 77, 2), 40_001);
    let server = (Ipv4Addr::new(198, 51, 100, 7), 7);
    lan_tx
        .send(udp_packet(host, server, b"ping through masq"))
        .await
        .expect("send");
    let back = tokio::time::timeout(Duration::from_secs(5), lan_out.recv())
        .await
        .expect("echo within 5 s")
        .expect("open");
    let ip = ipv4::Packet::new_checked(&back[..]).expect("ip");
    assert_eq!(ip.dst_addr(), host.0);
    assert_eq!(ip.src_addr(), server.0);
    let u = udp::Packet::new_checked(ip.payload()).expect("udp");
    assert_eq!(u.dst_port(), host.1);
    assert_eq!(u.payload(), b"ping through masq");
    let snap = nat.lock().masq_snapshot(nat.now());
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].masq.0, local);

    // The watcher got the snapshot, then the new entry as a delta; a later packet re-arms the
    // timer and the entry is re-sent with the fresh expiry.
    let first = next_upsert(&mut watch_masq).await;
    assert_eq!(first.lan.0, host.0);
    assert_eq!(first.masq.0, local);
    // UDP timeout 300 s: a fresh entry shows 30000 cs on the standing NAT clock.
    assert_eq!(first.expire_cs, 30_000);
    clock.advance(Duration::from_millis(2500));
    // Drop whatever is queued (the reply's state update), then re-arm with a new packet.
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), watch_masq.recv()).await
    {
    }
    lan_tx
        .send(udp_packet(host, server, b"again"))
        .await
        .expect("send");
    let _ = tokio::time::timeout(Duration::from_secs(5), lan_out.recv()).await;
    let again = next_upsert(&mut watch_masq).await;
    assert_eq!(again.id, first.id);
    // 2.5 s later on the NAT clock: 29750 cs without a re-arm, 30000 with it.
    assert_eq!(
        again.expire_cs, 30_000,
        "timer re-armed and re-sent: {} then {}",
        first.expire_cs, again.expire_cs
    );

    // Counters in Status are refreshed with each 1 s traffic sample.
    let mut counted = false;
    for _ in 0..30 {
        let s = links.status("isp1").expect("status");
        if s.packets_out >= 1 && s.packets_in >= 1 {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted, "link counters never showed the datagram");

    // A second user joins; the first hangs up and the link stays; the last drops it.
    let other = Who {
        user: "alice".into(),
        host: "192.168.77.3".into(),
    };
    assert_eq!(
        links.dial("isp1", other.clone()).await.expect("join"),
        DialOutcome::Joined(LinkState::Up)
    );
    assert!(matches!(
        links.hangup("isp1", who, false).await.expect("release"),
        HangupOutcome::Released { .. }
    ));
    assert_eq!(links.state("isp1"), Some(LinkState::Up));
    assert_eq!(
        links.hangup("isp1", other, false).await.expect("drop"),
        HangupOutcome::Dropping
    );
    wait_state(&links, LinkState::Idle).await;
    assert_eq!(links.modems()[0].connection, None);
    drop(modem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_modem_is_refused_cleanly_and_idle_timeout_hangs_up() {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(modem.path(), state.path());
    cfg.connections[0].idle_timeout_s = 2;
    let (links, _stop) = common::links_without_dataplane(&cfg);
    let who = Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    };
    links.dial("isp1", who.clone()).await.expect("dial");
    wait_state(&links, LinkState::Up).await;

    // The only modem is busy with isp1: the dial of isp2 is refused up front, naming the
    // modem, the connection using it and its holder; isp2 is not marked failed.
    let err = links
        .dial("isp2", who.clone())
        .await
        .expect_err("refused while the only modem is busy");
    match &err {
        LinkError::NoModem { connection, detail } => {
            assert_eq!(connection, "isp2");
            assert_eq!(
                detail,
                "modem modem0 is in use by connection isp1 (held by demo@192.168.77.2)"
            );
        }
        other => panic!("want NoModem, got {other:?}"),
    }
    assert_eq!(links.state("isp2"), Some(LinkState::Idle));
    let st2 = links.status("isp2").expect("status isp2");
    assert!(st2.last_failure.is_none(), "{st2:?}");
    assert!(st2.holders.is_empty());
    assert_eq!(links.state("isp1"), Some(LinkState::Up), "isp1 untouched");

    // No traffic on isp1: the idle timer (2 s) hangs it up and says why.
    for _ in 0..100 {
        if links.state("isp1") == Some(LinkState::Failed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let st = links.status("isp1").expect("status");
    assert_eq!(st.state, LinkState::Failed);
    assert_eq!(
        st.last_failure.map(|f| f.kind),
        Some(FailureKind::IdleTimeout)
    );
    drop(modem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_hang_up_tells_the_holders_who_did_it() {
    let isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Chap),
    );
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = config(modem.path(), state.path());
    let (links, _stop) = common::links_without_dataplane(&cfg);
    let who = |u: &str, h: &str| Who {
        user: u.into(),
        host: h.into(),
    };
    links
        .dial("isp1", who("demo", "192.168.77.2"))
        .await
        .expect("dial");
    wait_state(&links, LinkState::Up).await;
    links
        .dial("isp1", who("bob", "192.168.77.3"))
        .await
        .expect("join");
    let mut progress = links.progress("isp1").expect("progress");
    assert_eq!(
        links
            .hangup("isp1", who("root", "127.0.0.1"), true)
            .await
            .expect("forced"),
        HangupOutcome::Dropping
    );
    let want = "hung up by root@127.0.0.1 (forced); released demo@192.168.77.2, bob@192.168.77.3";
    let told = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match progress.recv().await {
                Ok(ev) => {
                    if let DialStep::Info(text) = ev.step {
                        return text;
                    }
                }
                Err(e) => panic!("progress stream ended: {e}"),
            }
        }
    })
    .await
    .expect("info event");
    assert_eq!(told, want);
    wait_state(&links, LinkState::Idle).await;
    let (transcript, _) = links.details("isp1").expect("details");
    assert_eq!(
        transcript.iter().filter(|l| l.text == want).count(),
        1,
        "once in the transcript"
    );
    // A holder hanging up their own link is not "forced" news.
    links
        .dial("isp1", who("demo", "192.168.77.2"))
        .await
        .expect("dial again");
    wait_state(&links, LinkState::Up).await;
    links
        .hangup("isp1", who("demo", "192.168.77.2"), true)
        .await
        .expect("own hang-up");
    wait_state(&links, LinkState::Idle).await;
    let (transcript, _) = links.details("isp1").expect("details");
    assert!(transcript.iter().all(|l| !l.text.starts_with("hung up by")));
    drop(modem);
}
