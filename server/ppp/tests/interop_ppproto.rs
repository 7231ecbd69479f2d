//! Interop with a PPP implementation we did not write: embassy's `ppproto` (a no_std client:
//! ACCM, PAP, IPv4CP with address and two DNS; it rejects MRU, Magic-Number, PFC and ACFC) runs
//! in memory against our access-server role, up to IPCP Opened and one IPv4 datagram each way.
//! Our side runs on a simulated clock; ppproto has no clock of its own.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_ppp::{AuthProtocol, Ppp, PppConfig, PppEvent};
use ppproto::pppos::{PPPoS, PPPoSAction};
use ppproto::{Config, Phase};

const ISP: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);
const ASSIGN: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 2);
const DNS1: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 53);
const DNS2: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 54);

/// Feeds `data` to ppproto and collects what it transmits and the IPv4 packets it receives.
fn feed_ppproto(
    c: &mut PPPoS<'_>,
    data: &[u8],
    rx: &mut [u8],
    tx: &mut [u8],
    out: &mut Vec<Vec<u8>>,
    got: &mut Vec<Vec<u8>>,
) {
    let mut off = 0;
    for _ in 0..10_000 {
        if off < data.len() {
            off += c.consume(&data[off..], rx);
        }
        // Drain: one received frame per poll, plus whatever it wants to send.
        let mut idle = true;
        for _ in 0..64 {
            match c.poll(tx, rx) {
                PPPoSAction::None => break,
                PPPoSAction::Transmit(n) => {
                    idle = false;
                    out.push(tx[..n].to_vec());
                }
                PPPoSAction::Received(r) => {
                    idle = false;
                    got.push(rx[r].to_vec());
                }
            }
        }
        if off >= data.len() && idle {
            return;
        }
    }
    panic!("ppproto did not settle");
}

fn udp_datagram(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
    ];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    // IPv4 header checksum (RFC 791), so a strict receiver would take it.
    let sum = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = !(((sum & 0xFFFF) + (sum >> 16)) as u16);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

fn interop(auth: Option<AuthProtocol>) {
    interop_with(&auth.into_iter().collect::<Vec<_>>(), auth);
}

/// Our access server demands `require` in that order; `auth` is what it must end up using.
fn interop_with(require: &[AuthProtocol], auth: Option<AuthProtocol>) {
    let mut cfg = PppConfig::access_server(
        vec![("alice".into(), "wonderland".into())],
        None,
        ISP,
        ASSIGN,
        vec![DNS1, DNS2],
    );
    cfg.require_auth = require.to_vec();
    cfg.seed = 5;
    let mut ours = Ppp::new(cfg);
    let mut theirs = PPPoS::new(Config {
        username: b"alice",
        password: b"wonderland",
    });
    let (mut rx, mut tx) = (vec![0u8; 2048], vec![0u8; 2048]);
    let start = Instant::now();
    let mut now = start;
    theirs.open().expect("ppproto opens from Dead");
    ours.open(now);
    let mut to_ours: Vec<Vec<u8>> = Vec::new();
    let mut got_theirs: Vec<Vec<u8>> = Vec::new();
    feed_ppproto(
        &mut theirs,
        &[],
        &mut rx,
        &mut tx,
        &mut to_ours,
        &mut got_theirs,
    );
    let mut events = Vec::new();
    let mut up_at = None;
    for _ in 0..1000 {
        let mut moved = false;
        for b in std::mem::take(&mut to_ours) {
            moved = true;
            ours.handle_input(now, &b);
        }
        while let Some(b) = ours.poll_transmit() {
            moved = true;
            feed_ppproto(
                &mut theirs,
                &b,
                &mut rx,
                &mut tx,
                &mut to_ours,
                &mut got_theirs,
            );
        }
        while let Some(e) = ours.poll_event() {
            if matches!(e, PppEvent::IpcpUp { .. }) && up_at.is_none() {
                up_at = Some(now - start);
            }
            events.push(e);
        }
        let theirs_up = theirs.status().phase == Phase::Open;
        if ours.is_ip_up() && theirs_up && !moved {
            break;
        }
        if !moved {
            // Only our restart timers move time; ppproto has none.
            match ours.poll_timeout() {
                Some(t) if t - start < Duration::from_secs(60) => {
                    now = now.max(t);
                    ours.handle_timeout(now);
                }
                _ => break,
            }
        }
    }
    let st = theirs.status();
    assert_eq!(
        st.phase,
        Phase::Open,
        "ppproto phase; our events {events:?}"
    );
    let v4 = st.ipv4.expect("ppproto has IPv4 status");
    assert_eq!(v4.address, Some(ASSIGN));
    assert_eq!(v4.peer_address, Some(ISP));
    assert_eq!(v4.dns_servers, [Some(DNS1), Some(DNS2)]);
    assert!(
        events.contains(&PppEvent::IpcpUp {
            local: ISP,
            peer: ASSIGN,
            dns: vec![]
        }),
        "{events:?}"
    );
    // ppproto rejects Magic-Number, PFC and ACFC: we must have dropped them.
    let o = ours.options();
    assert_eq!((o.local_magic, o.rx_pfc, o.rx_acfc), (0, false, false));
    assert_eq!(o.auth_of_peer, auth);
    if require.first() != auth.as_ref() {
        // It got there by ppproto's Nak of our first choice, suggesting PAP.
        assert!(
            o.lcp_refused
                .iter()
                .any(|r| r.option == 3 && r.by_peer && !r.reject && r.data == [0xC0, 0x23]),
            "{:?}",
            o.lcp_refused
        );
    }
    println!(
        "ppproto vs our access server ({require:?}): {auth:?}, IPCP up at {up_at:?} (simulated)"
    );

    // One datagram each way.
    let up = udp_datagram(ASSIGN, Ipv4Addr::new(192, 0, 2, 9), b"from ppproto");
    let n = theirs
        .send(&up, &mut tx)
        .expect("ppproto frames a datagram");
    ours.handle_input(now, &tx[..n]);
    assert_eq!(ours.poll_event(), Some(PppEvent::Ipv4(up)));
    let down = udp_datagram(Ipv4Addr::new(192, 0, 2, 9), ASSIGN, b"to ppproto");
    ours.send_ipv4(&down).expect("IPCP is open");
    let b = ours.poll_transmit().expect("a frame");
    let mut sent = Vec::new();
    got_theirs.clear();
    feed_ppproto(
        &mut theirs,
        &b,
        &mut rx,
        &mut tx,
        &mut sent,
        &mut got_theirs,
    );
    assert_eq!(got_theirs, vec![down]);
}

#[test]
fn ppproto_client_against_our_access_server_without_auth() {
    interop(None);
}

#[test]
fn ppproto_client_against_our_access_server_with_pap() {
    interop(Some(AuthProtocol::Pap));
}

/// ppproto Configure-Naks any Auth-Protocol but PAP towards PAP (0xC023): an access server
/// asking CHAP-MD5 first, as the mock ISP's caller prefers, must take the suggestion, the
/// mirror of our client's Nak towards CHAP-MD5.
#[test]
fn ppproto_naks_chap_towards_pap_and_our_access_server_switches() {
    interop_with(
        &[AuthProtocol::Chap, AuthProtocol::Pap],
        Some(AuthProtocol::Pap),
    );
}
