//! What was negotiated, both directions, reaches the dial progress and the link's details:
//! the link manager dials the mock ISP on a pty; the LCP-up step carries both MRUs and
//! ACCMs and the auth in each direction, the IPCP-up step the addresses, DNS and the IPCP
//! options that were Nak'd on the way; `details` keeps them after the dial. And a peer that
//! hands out an address inside this host's LAN network, or a configured refused network, fails
//! the dial with the typed IPCP error.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_ppp::ipcp::{AddressProblem, Endpoint, IpcpFailure, Ipv4Network};
use masqdial_ppp::options::Ncp;
use masqdial_ppp::{AuthProtocol, NegotiatedOptions};
use masqdial_server::config::Config;
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::events::DialStep;
use masqdial_server::link::manager::{LinkManager, Who};
use masqdial_server::link::refused::{interface_nets, refused_networks};
use masqdial_server::link::{FailureKind, LinkState};
use masqdial_server::persist::build_engine;
use masqdial_server::shutdown::Shutdown;
use masqdial_sim::isp::IspConfig;
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::MockModemConfig;

fn config(device: &std::path::Path, state: &std::path::Path) -> Config {
    common::one_modem_config(device, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_progress_and_details_show_both_directions_and_refusals() {
    let mut isp = IspConfig::new(
        vec![("demo".into(), "secret".into())],
        Some(AuthProtocol::Pap),
    );
    isp.mru = 576;
    isp.accm = 0x000A_0000;
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(modem.path(), dir.path());
    let (links, _stop) = common::links_without_dataplane(&cfg);
    let mut progress = links.progress("isp1").expect("progress");
    let who = Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    };
    links.dial("isp1", who.clone()).await.expect("dial");

    let mut lcp: Option<NegotiatedOptions> = None;
    let mut ipcp: Option<(Ipv4Addr, Ipv4Addr, Vec<Ipv4Addr>, NegotiatedOptions)> = None;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match progress.recv().await.expect("progress open").step {
                DialStep::LcpUp { options, .. } => lcp = Some(*options),
                DialStep::IpcpUp {
                    local,
                    peer,
                    dns,
                    options,
                } => ipcp = Some((local, peer, dns, *options)),
                DialStep::Up(_) => return,
                DialStep::Failed(f) => panic!("dial failed: {f:?}"),
                _ => {}
            }
        }
    })
    .await
    .expect("up within 20 s");

    // LCP, both directions: the ISP's MRU 576 is what we may send; ours is the default.
    let l = lcp.expect("an LCP-up step");
    assert_eq!((l.local_mru, l.peer_mru), (1500, 576));
    // We send escaping what the ISP asked (0x000a0000) — and what we receive with is ours.
    assert_eq!(l.tx_accm, 0x000A_0000);
    assert_eq!(l.rx_accm, 0);
    // The ISP asked PAP; with the default `auth = "any"` we Nak'd it towards CHAP-MD5 and it
    // switched (CHAP preferred, issue 10).
    assert_eq!(l.auth_by_peer, Some(AuthProtocol::Chap));
    assert_eq!(l.auth_of_peer, None);
    assert!(!l.pap_fallback);
    let refused: Vec<String> = l.lcp_refused.iter().map(|r| r.describe(Ncp::Lcp)).collect();
    assert_eq!(refused, ["we Nak'd the peer's Auth-Protocol (3): CHAP-MD5"]);

    // IPCP: the ISP's Naks that assigned our address and DNS are listed as refusals of ours.
    let (local, peer, dns, o) = ipcp.expect("an IPCP-up step");
    assert_eq!(local, Ipv4Addr::new(10, 64, 0, 2));
    assert_eq!(peer, Ipv4Addr::new(10, 64, 0, 1));
    assert_eq!(
        dns,
        [Ipv4Addr::new(10, 64, 0, 53), Ipv4Addr::new(10, 64, 0, 54)]
    );
    assert_eq!(o.local_ip, Some(local));
    assert_eq!(o.peer_ip, Some(peer));
    let refused: Vec<String> = o
        .ipcp_refused
        .iter()
        .map(|r| r.describe(Ncp::Ipcp))
        .collect();
    assert_eq!(
        refused,
        [
            "peer Nak'd our IP-Address (3): 10.64.0.2",
            "peer Nak'd our Primary-DNS (129): 10.64.0.53",
            "peer Nak'd our Secondary-DNS (131): 10.64.0.54",
        ]
    );

    // The link's details keep the same after the dial.
    let (_, details) = links.details("isp1").expect("details");
    let d = details.expect("PPP details");
    assert_eq!(d.options.local_ip, Some(local));
    assert_eq!(d.options.ipcp_refused, o.ipcp_refused);
    assert_eq!(d.options.peer_mru, 576);

    links.hangup("isp1", who, true).await.expect("hangup");
    let t = Instant::now();
    while links.state("isp1") != Some(LinkState::Idle) {
        assert!(t.elapsed() < Duration::from_secs(15), "never idle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(modem);
}

/// Dials a mock ISP whose pool starts at `first` with `tweak` applied to the config; returns
/// the failure the dial ended with.
async fn dial_refused(
    first: Ipv4Addr,
    tweak: impl FnOnce(&mut Config),
) -> masqdial_server::link::Failure {
    let mut isp = IspConfig::new(vec![("demo".into(), "secret".into())], None);
    isp.pool = masqdial_sim::isp::AddressPool::new(first, first);
    let modem = spawn_pty(MockModemConfig::default(), isp.factory()).expect("pty modem");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(modem.path(), dir.path());
    tweak(&mut cfg);
    let (links, stop) = common::links_without_dataplane(&cfg);
    let mut progress = links.progress("isp1").expect("progress");
    let who = Who {
        user: "demo".into(),
        host: "192.168.77.2".into(),
    };
    links.dial("isp1", who).await.expect("dial");
    let failure = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match progress.recv().await.expect("progress open").step {
                DialStep::Up(s) => panic!("link came up with a refused address: {s:?}"),
                DialStep::IpcpUp { local, .. } => panic!("IPCP reported up with {local}"),
                DialStep::Failed(f) => return f,
                _ => {}
            }
        }
    })
    .await
    .expect("failed within 20 s");
    assert!(stop.stop(Duration::from_secs(12)).await, "tasks ended");
    drop(modem);
    failure
}

fn refused_message(addr: Ipv4Addr, net: Ipv4Network) -> String {
    masqdial_ppp::DownReason::Ipcp(IpcpFailure::BadAddress {
        endpoint: Endpoint::Local,
        addr,
        problem: AddressProblem::InRefusedNetwork(net),
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_a_configured_refused_network_fails_the_dial_typed() {
    let addr = Ipv4Addr::new(172, 31, 0, 9);
    let f = dial_refused(addr, |c| {
        c.link.refused_networks = vec!["172.31.0.0/16".parse().expect("net")];
    })
    .await;
    assert_eq!(f.kind, FailureKind::IpcpFailed, "{f:?}");
    assert_eq!(
        f.message,
        refused_message(addr, Ipv4Network::new(Ipv4Addr::new(172, 31, 0, 0), 16))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_inside_this_hosts_lan_network_fails_the_dial_typed() {
    // The first LAN-like network of this host (not loopback, not point-to-point).
    let Some(lan) = interface_nets()
        .into_iter()
        .find(|i| !i.addr.is_loopback() && !i.point_to_point && i.netmask.is_some())
    else {
        masqdial_testkit::skip(
            "an_address_inside_this_hosts_lan_network_fails_the_dial_typed",
            "a LAN interface with an IPv4 network (this host has none)",
        );
        return;
    };
    let nets = refused_networks(std::slice::from_ref(&lan), None, "masq0", &[]);
    let net = nets[0];
    // A host of that network other than ours: .addr ^ 1 inside the prefix.
    let addr = Ipv4Addr::from(u32::from(lan.addr) ^ 1);
    assert!(net.contains(addr), "{addr} in {net}");
    let f = dial_refused(addr, |_| {}).await;
    assert_eq!(f.kind, FailureKind::IpcpFailed, "{f:?}");
    assert_eq!(f.message, refused_message(addr, net), "LAN {lan:?}");
}

/// Against each imitation of an independent access server the link comes up, with the peer
/// address and DNS the RFCs give; prints dial -> IPCP time per mode (`--nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_isp_mode_comes_up_with_the_rfc_addresses() {
    use masqdial_sim::isp::IspMode;
    let default_peer = Ipv4Addr::new(10, 64, 64, 64);
    let dns = vec![Ipv4Addr::new(10, 64, 0, 53), Ipv4Addr::new(10, 64, 0, 54)];
    let cases = [
        (IspMode::Standard, Ipv4Addr::new(10, 64, 0, 1), dns.clone()),
        (IspMode::AsksZero, default_peer, dns.clone()),
        (IspMode::NoAddress, default_peer, dns.clone()),
        (IspMode::RejectsDns, Ipv4Addr::new(10, 64, 0, 1), vec![]),
    ];
    for (mode, want_peer, want_dns) in cases {
        let mut isp = IspConfig::new(
            vec![("demo".into(), "secret".into())],
            Some(AuthProtocol::Chap),
        );
        isp.mode = mode;
        // Paced like a 115200 line (10 bits a byte), so the times are a line's.
        let line = MockModemConfig {
            baud: 115_200,
            ..MockModemConfig::default()
        };
        let modem = spawn_pty(line, isp.factory()).expect("pty modem");
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(modem.path(), dir.path());
        let nat = NatHandle::new(build_engine(&cfg).expect("engine"));
        let stop = Shutdown::new();
        let links = LinkManager::start(&cfg, Uplink::new(nat, None, None), &stop);
        let mut progress = links.progress("isp1").expect("progress");
        let who = Who {
            user: "demo".into(),
            host: "192.168.77.2".into(),
        };
        let t0 = Instant::now();
        links.dial("isp1", who.clone()).await.expect("dial");
        let (ipcp_at, local, peer, got_dns) =
            tokio::time::timeout(Duration::from_secs(20), async {
                let mut ipcp = None;
                loop {
                    match progress.recv().await.expect("progress open").step {
                        DialStep::IpcpUp {
                            local, peer, dns, ..
                        } => ipcp = Some((t0.elapsed(), local, peer, dns)),
                        DialStep::Up(_) => return ipcp.expect("IPCP before up"),
                        DialStep::Failed(f) => panic!("{mode:?}: dial failed: {f:?}"),
                        _ => {}
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{mode:?}: up within 20 s"));
        eprintln!("ISP mode {mode:?}: dial -> IPCP up {} ms (local {local}, peer {peer}, dns {got_dns:?})", ipcp_at.as_millis());
        assert_eq!(local, Ipv4Addr::new(10, 64, 0, 2), "{mode:?}");
        assert_eq!(peer, want_peer, "{mode:?}");
        assert_eq!(got_dns, want_dns, "{mode:?}");
        links.hangup("isp1", who, true).await.expect("hangup");
        assert!(stop.stop(Duration::from_secs(12)).await, "tasks ended");
        drop(modem);
    }
}
