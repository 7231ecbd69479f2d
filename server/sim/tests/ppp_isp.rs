//! Our PPP client against the mock ISP (access server + simulated internet), in memory.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_ppp::{AuthProtocol, DownReason, Ppp, PppConfig, PppEvent};
use masqdial_sim::isp::{icmp_echo_request, udp_datagram, AddressPool, IspConfig, MockIsp};
use masqdial_sim::modem::Answerer;

struct Link {
    c: Ppp,
    isp: MockIsp,
    now: Instant,
    ce: Vec<PppEvent>,
    /// Line bytes each way (client→ISP, ISP→client).
    line: (u64, u64),
}

fn isp_cfg() -> IspConfig {
    let mut c = IspConfig::new(
        vec![("alice".into(), "wonderland".into())],
        Some(AuthProtocol::Chap),
    );
    c.seed = Some(9);
    c
}

impl Link {
    fn new(isp: MockIsp) -> Self {
        let mut cfg = PppConfig::client("alice", "wonderland");
        cfg.seed = 3;
        let now = Instant::now();
        let mut c = Ppp::new(cfg);
        c.open(now);
        Self {
            c,
            isp,
            now,
            ce: vec![],
            line: (0, 0),
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..1_000_000 {
            let mut moved = false;
            while let Some(b) = self.c.poll_transmit() {
                moved = true;
                self.line.0 += b.len() as u64;
                self.isp.handle_input(self.now, &b);
            }
            while let Some(b) = self.isp.poll_output() {
                moved = true;
                self.line.1 += b.len() as u64;
                self.c.handle_input(self.now, &b);
            }
            while let Some(e) = self.c.poll_event() {
                self.ce.push(e);
            }
            if moved {
                continue;
            }
            match [self.c.poll_timeout(), self.isp.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
            {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.c.handle_timeout(self.now);
                    self.isp.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("link did not settle");
    }

    fn local(&self) -> Option<Ipv4Addr> {
        self.ce.iter().find_map(|e| match e {
            PppEvent::IpcpUp { local, .. } => Some(*local),
            _ => None,
        })
    }

    fn take_ipv4(&mut self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        self.ce.retain(|e| match e {
            PppEvent::Ipv4(p) => {
                v.push(p.clone());
                false
            }
            _ => true,
        });
        v
    }
}

fn up(cfg: IspConfig) -> Link {
    let mut l = Link::new(MockIsp::new(cfg));
    l.run_for(Duration::from_secs(1));
    l
}

#[test]
fn dial_in_gets_address_and_dns() {
    let l = up(isp_cfg());
    assert_eq!(l.local(), Some(Ipv4Addr::new(10, 64, 0, 2)), "{:?}", l.ce);
    assert!(l.ce.contains(&PppEvent::IpcpUp {
        local: Ipv4Addr::new(10, 64, 0, 2),
        peer: Ipv4Addr::new(10, 64, 0, 1),
        dns: vec![Ipv4Addr::new(10, 64, 0, 53), Ipv4Addr::new(10, 64, 0, 54)],
    }));
    assert!(l.isp.is_ip_up());
    assert!(!l.isp.is_closed());
    assert!(l
        .isp
        .events()
        .iter()
        .any(|e| matches!(e, PppEvent::AuthOk { peer_name: Some(n), .. } if n == "alice")));
}

#[test]
fn ping_any_destination_and_udp_echo() {
    let mut l = up(isp_cfg());
    let me = l.local().unwrap_or(Ipv4Addr::UNSPECIFIED);
    let far = Ipv4Addr::new(198, 51, 100, 9);
    l.c.send_ipv4(&icmp_echo_request(me, far, 77, 1, &[0xA5; 56]))
        .unwrap_or_else(|e| panic!("{e}"));
    l.c.send_ipv4(&udp_datagram(me, 40000, far, 53, b"query"))
        .unwrap_or_else(|e| panic!("{e}"));
    l.run_for(Duration::from_millis(1));
    let got = l.take_ipv4();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0][9], 1);
    assert_eq!(&got[0][12..16], &far.octets());
    assert_eq!(&got[0][16..20], &me.octets());
    assert_eq!(got[0][20], 0, "echo reply");
    assert_eq!(&got[1][20..24], &[0, 53, 0x9C, 0x40]);
    assert_eq!(&got[1][28..], b"query");
    assert_eq!(
        (l.isp.stats().icmp_echo_replies, l.isp.stats().udp_echoes),
        (1, 1)
    );
}

#[test]
fn configured_echo_port_forward_and_inject() {
    let mut cfg = isp_cfg();
    cfg.udp_echo_port = Some(7);
    cfg.forward_unhandled = true;
    let mut l = up(cfg);
    let me = l.local().unwrap_or(Ipv4Addr::UNSPECIFIED);
    let far = Ipv4Addr::new(203, 0, 113, 5);
    l.c.send_ipv4(&udp_datagram(me, 1000, far, 7, b"echo"))
        .unwrap_or_else(|e| panic!("{e}"));
    let other = udp_datagram(me, 1000, far, 9999, b"out");
    l.c.send_ipv4(&other).unwrap_or_else(|e| panic!("{e}"));
    // Spoofed source: dropped.
    l.c.send_ipv4(&udp_datagram(
        Ipv4Addr::new(192, 168, 1, 5),
        1,
        far,
        7,
        b"x",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    l.run_for(Duration::from_millis(1));
    assert_eq!(l.take_ipv4().len(), 1);
    assert_eq!(l.isp.poll_ip_out(), Some(other));
    assert_eq!(l.isp.poll_ip_out(), None);
    assert_eq!(l.isp.stats().dropped_spoofed, 1);
    let inbound = udp_datagram(far, 9999, me, 1000, b"reply from tun");
    l.isp
        .inject_ipv4(&inbound)
        .unwrap_or_else(|e| panic!("{e}"));
    l.run_for(Duration::from_millis(1));
    assert_eq!(l.take_ipv4(), vec![inbound]);
}

#[test]
fn redial_gets_a_different_address_and_next_address_control() {
    let pool = AddressPool::new(Ipv4Addr::new(10, 64, 0, 2), Ipv4Addr::new(10, 64, 0, 9));
    let cfg = IspConfig {
        pool: pool.clone(),
        ..isp_cfg()
    };
    let first = up(cfg.clone());
    let a1 = first.local();
    drop(first);
    let second = up(cfg.clone());
    assert_ne!(second.local(), a1, "a redial gets a different address");
    drop(second);
    pool.set_next(Ipv4Addr::new(10, 64, 0, 7));
    assert_eq!(up(cfg).local(), Some(Ipv4Addr::new(10, 64, 0, 7)));
    assert!(pool.in_use().is_empty(), "sessions return their address");
}

#[test]
fn factory_makes_fresh_sessions() {
    let mut f = isp_cfg().factory();
    let mut a = f("555-0100");
    let b = f("555-0100");
    assert!(!a.is_closed() && !b.is_closed());
    a.handle_input(Instant::now(), b"\x7e\xff\x7d\x23\xc0\x21garbage\x7e");
    assert!(!a.is_closed());
}

#[test]
fn bad_password_makes_isp_hang_up() {
    let isp = MockIsp::new(isp_cfg());
    let mut cfg = PppConfig::client("alice", "queen-of-hearts");
    cfg.seed = 3;
    let mut l = Link::new(isp);
    l.c = Ppp::new(cfg);
    let now = l.now;
    l.c.open(now);
    l.run_for(Duration::from_secs(30));
    assert!(
        l.ce.iter().any(|e| matches!(
            e,
            PppEvent::Down {
                reason: DownReason::AuthFailed(_)
            }
        )),
        "{:?}",
        l.ce
    );
    assert!(l.isp.is_closed());
}

/// Measured, not asserted: CPU time from open to IPCP up against the mock ISP, and the line
/// efficiency of 1500-byte pings with ACCM 0 (what bounds goodput on a 115200 baud line).
#[test]
fn report_bring_up_time_and_line_efficiency() {
    let n = 200u32;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let l = up(isp_cfg());
        assert!(l.local().is_some());
    }
    let per = t.elapsed() / n;
    println!(
        "bring-up client vs MockIsp (LCP+CHAP+IPCP, zero-delay wire): {:.3} ms",
        per.as_secs_f64() * 1e3
    );

    let mut l = up(isp_cfg());
    let me = l.local().unwrap_or(Ipv4Addr::UNSPECIFIED);
    let far = Ipv4Addr::new(198, 51, 100, 1);
    let (b0, b1) = l.line;
    let pings = 100u16;
    let payload: Vec<u8> = (0..1472u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for seq in 0..pings {
        l.c.send_ipv4(&icmp_echo_request(me, far, 1, seq, &payload[8..]))
            .unwrap_or_else(|e| panic!("{e}"));
        l.run_for(Duration::from_millis(1));
    }
    let replies = l.take_ipv4().len();
    assert_eq!(replies, usize::from(pings));
    let up_bytes = l.line.0 - b0;
    let icmp_payload = u64::from(pings) * 1472;
    println!(
        "1500-byte ICMP, random payload, ACCM 0: {} line bytes up for {} ICMP payload bytes = {:.2}% efficiency \
         (goodput at 115200 8N1 = 11520 B/s x efficiency = {:.0} B/s); down {} bytes",
        up_bytes,
        icmp_payload,
        100.0 * icmp_payload as f64 / up_bytes as f64,
        11520.0 * icmp_payload as f64 / up_bytes as f64,
        l.line.1 - b1
    );
}

/// The mock ISP asked for PAP takes CHAP-MD5 when our client Naks PAP towards it (as most
/// access servers do); with `insist_on_auth` it asks PAP again, and the client refuses it.
#[test]
fn pap_isp_switches_to_chap_unless_it_insists() {
    let mut cfg = isp_cfg();
    cfg.auth = Some(AuthProtocol::Pap);
    let mut l = Link::new(MockIsp::new(cfg.clone()));
    l.run_for(Duration::from_secs(5));
    assert!(
        l.ce.contains(&PppEvent::LcpUp {
            peer_mru: 1500,
            auth: Some(AuthProtocol::Chap)
        }),
        "{:?}",
        l.ce
    );
    assert!(l.c.is_ip_up());

    cfg.insist_on_auth = true;
    let mut l = Link::new(MockIsp::new(cfg));
    l.run_for(Duration::from_secs(30));
    assert!(!l.c.is_ip_up());
    assert!(
        l.ce.iter().any(|e| matches!(
            e,
            PppEvent::Down {
                reason: DownReason::PapRefused { naks: 5, .. }
            }
        )),
        "{:?}",
        l.ce
    );
}
