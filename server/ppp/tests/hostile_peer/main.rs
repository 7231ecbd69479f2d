//! Hostile-peer matrix: our engine, in both roles, against a scripted peer written from the RFCs
//! (1661 LCP, 1332 IPCP, 1877 DNS, 1570 codes 12/13), not from our mock ISP. The peer has its own
//! HDLC framing (RFC 1662: flag, 0x7D escape of every byte < 0x20, bitwise FCS-16), answers with
//! plain rules and per-row hooks, and the clock is simulated: every outcome and every time is
//! exact. The dial → IPCP times of the matrix are printed as a table (`--nocapture`).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use masqdial_ppp::{DownReason, Ppp, PppConfig, PppEvent, SendError, Side};

mod peer;
mod rows;

use peer::*;
use rows::*;

// ---------------------------------------------------------------------------------------------
// Running a row.

struct Outcome {
    /// (simulated time since open, event).
    events: Vec<(Duration, PppEvent)>,
    ppp: Ppp,
    peer: Peer,
}

impl Outcome {
    fn ipcp_up(&self) -> Option<(Duration, Ipv4Addr, Ipv4Addr, Vec<Ipv4Addr>)> {
        self.events.iter().find_map(|(t, e)| match e {
            PppEvent::IpcpUp { local, peer, dns } => Some((*t, *local, *peer, dns.clone())),
            _ => None,
        })
    }

    fn ipcp_ups(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, PppEvent::IpcpUp { .. }))
            .count()
    }

    fn down(&self) -> Option<(Duration, DownReason)> {
        self.events.iter().find_map(|(t, e)| match e {
            PppEvent::Down { reason } => Some((*t, reason.clone())),
            _ => None,
        })
    }

    /// IPCP opened once, the link is still up, and nothing went down.
    fn up_ok(&self) -> Result<(), String> {
        if self.ipcp_up().is_none() {
            return Err(format!("IPCP never came up; down = {:?}", self.down()));
        }
        if let Some(d) = self.down() {
            return Err(format!("went down: {d:?}"));
        }
        if !self.ppp.is_ip_up() {
            return Err("IP not up at the end".into());
        }
        Ok(())
    }

    /// Went down for `want` at exactly `at`, and IPCP never reported up.
    fn down_at(&self, at: Duration, want: DownReason) -> Result<(), String> {
        if let Some(u) = self.ipcp_up() {
            return Err(format!("IPCP reported up: {u:?}"));
        }
        match self.down() {
            Some((t, r)) if t == at && r == want => Ok(()),
            other => Err(format!("want Down({want:?}) at {at:?}, got {other:?}")),
        }
    }
}

fn our_config(side: Side) -> PppConfig {
    let mut c = match side {
        Side::Client => PppConfig::client("", ""),
        Side::AccessServer => {
            PppConfig::access_server(vec![], None, OUR_SERVER, OUR_ASSIGN, vec![DNS1, DNS2])
        }
    };
    c.seed = 7;
    c.refused_networks = vec![LAN];
    c
}

/// The line between the engines: zero-delay (exact event times), or a 115200-baud async line
/// (10 bits a byte) behind modems that add `latency` each way (V.34/V.90 with V.42 buffering:
/// some 50-100 ms).
#[derive(Clone, Copy)]
struct Line {
    baud: u32,
    latency: Duration,
}

const INSTANT: Line = Line {
    baud: 0,
    latency: Duration::ZERO,
};
const MODEM: Line = Line {
    baud: 115_200,
    latency: Duration::from_millis(60),
};

/// Runs `row` against our engine in `side` for `limit` of simulated time.
fn run(row: &Row, side: Side, limit: Duration) -> Outcome {
    run_on(row, side, limit, INSTANT)
}

fn run_on(row: &Row, side: Side, limit: Duration, line: Line) -> Outcome {
    let mut cfg = our_config(side);
    (row.tweak)(&mut cfg);
    let mut ppp = Ppp::new(cfg);
    let mut peer = Peer::new(row.clone(), side);
    let start = Instant::now();
    let mut now = start;
    let mut events = Vec::new();
    if row.early {
        peer.start(now);
        ppp.open(now);
        while let Some(b) = peer.out.pop_front() {
            ppp.handle_input(now, &b);
        }
    } else {
        ppp.open(now);
        peer.start(now);
    }
    let end = start + limit;
    // In flight: (arrival, to_peer, bytes); each direction's line is busy until `free`.
    let mut flight: Vec<(Instant, bool, Vec<u8>)> = Vec::new();
    let mut free = [start; 2];
    let mut put = |now: Instant, to_peer: bool, b: Vec<u8>, flight: &mut Vec<_>| {
        let d = usize::from(to_peer);
        let tx = if line.baud == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(b.len() as u64 * 10 * 1_000_000 / u64::from(line.baud))
        };
        free[d] = free[d].max(now) + tx;
        flight.push((free[d] + line.latency, to_peer, b));
    };
    for _ in 0..200_000 {
        let mut moved = false;
        while let Some(b) = ppp.poll_transmit() {
            moved = true;
            put(now, true, b, &mut flight);
        }
        while let Some(b) = peer.out.pop_front() {
            moved = true;
            put(now, false, b, &mut flight);
        }
        // Deliver everything due, in arrival order.
        flight.sort_by_key(|(t, ..)| *t);
        while flight.first().is_some_and(|(t, ..)| *t <= now) {
            moved = true;
            let (_, to_peer, b) = flight.remove(0);
            if to_peer {
                peer.input(now, &b);
            } else {
                ppp.handle_input(now, &b);
            }
        }
        while let Some(e) = ppp.poll_event() {
            events.push((now - start, e));
        }
        if moved {
            continue;
        }
        let next = [
            ppp.poll_timeout(),
            peer.next_timer(),
            flight.first().map(|(t, ..)| *t),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) if t <= end => {
                now = now.max(t);
                ppp.handle_timeout(now);
                peer.timers(now);
            }
            _ => break,
        }
    }
    Outcome { events, ppp, peer }
}

const BOTH: [Side; 2] = [Side::Client, Side::AccessServer];
const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn hostile_peer_matrix_both_roles() {
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for row in rows() {
        for side in BOTH {
            let o = run(&row, side, S(300));
            if let Err(e) = (row.expect)(side, &o) {
                failures.push(format!("{:?} / {}: {e}", side, row.name));
            }
            let t = o
                .ipcp_up()
                .map(|(t, ..)| format!("{} ms", t.as_millis()))
                .unwrap_or_else(|| {
                    o.down()
                        .map(|(t, r)| format!("down at {} ms: {r}", t.as_millis()))
                        .unwrap_or_else(|| "neither".into())
                });
            // The same peer behind real modems: same outcome, and the time a user waits.
            let m = run_on(&row, side, S(300), MODEM);
            let same = match (o.ipcp_up(), m.ipcp_up(), o.down(), m.down()) {
                (Some(_), Some(_), None, None) => true,
                (None, None, Some((_, a)), Some((_, b))) => a == b,
                (Some(_), Some(_), Some((_, a)), Some((_, b))) => a == b,
                _ => false,
            };
            if !same {
                failures.push(format!(
                    "{:?} / {}: outcome differs on a 115200 line: {:?} / {:?}",
                    side,
                    row.name,
                    m.ipcp_up(),
                    m.down()
                ));
            }
            let tm = m
                .ipcp_up()
                .map(|(t, ..)| format!("{} ms", t.as_millis()))
                .unwrap_or_else(|| {
                    m.down()
                        .map(|(t, _)| format!("down at {} ms", t.as_millis()))
                        .unwrap_or_else(|| "neither".into())
                });
            table.push(format!("| {:?} | {} | {} | {} |", side, row.name, t, tm));
        }
    }
    println!(
        "| our role | peer | dial -> IPCP, zero-delay line | 115200 baud + 60 ms modem latency each way |\n|---|---|---|---|"
    );
    for l in &table {
        println!("{l}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn short_mru_limits_what_we_send() {
    let row = Row {
        lcp_opts: opts(&[opt(1, &296u16.to_be_bytes()), opt(5, &[1, 2, 3, 4])]),
        ..Row::default()
    };
    let mut o = run(&row, Side::Client, S(1));
    o.up_ok().expect("link up");
    let mut big = vec![0x45u8; 297];
    big[0] = 0x45;
    assert_eq!(
        o.ppp.send_ipv4(&big),
        Err(SendError::TooLarge { len: 297, mru: 296 })
    );
    assert_eq!(o.ppp.send_ipv4(&big[..296]), Ok(()));
}

#[test]
fn ip_flows_both_ways_with_scripted_peer() {
    let mut o = run(&Row::default(), Side::Client, S(1));
    o.up_ok().expect("link up");
    let dgram = [
        0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 2, 15, 8, 8, 8, 8,
    ];
    o.ppp.send_ipv4(&dgram).expect("IPCP open");
    let b = o.ppp.poll_transmit().expect("a frame");
    let got = o.peer.deframer.feed(&b);
    assert_eq!(got, vec![(IPV4, dgram.to_vec())]);
    let now = Instant::now();
    o.ppp.handle_input(now, &frame(IPV4, &dgram));
    assert_eq!(o.ppp.poll_event(), Some(PppEvent::Ipv4(dgram.to_vec())));
}

/// What was Nak'd and Rejected, both directions, is kept in the negotiated options (for
/// `cinfo` and dial progress), named and valued in each option's notation.
#[test]
fn refused_options_are_recorded_both_directions() {
    use masqdial_ppp::options::Ncp;
    let row = Row {
        // LCP: MRU 64 (we Nak to 128). IPCP: VJ (we Reject), 0.0.0.0 (we Nak with the
        // default), and the peer Rejects both DNS options of ours.
        lcp_opts: opts(&[opt(1, &64u16.to_be_bytes()), opt(5, &[1, 2, 3, 4])]),
        ipcp_opts: Some(opts(&[opt(2, &[0x00, 0x2D, 0x0F, 0x01]), opt(3, &[0; 4])])),
        ipcp_answer: Some(|req| reject_types(req, &[129, 131])),
        ..Row::default()
    };
    let o = run(&row, Side::Client, S(1));
    o.up_ok().expect("link up");
    let opts = o.ppp.options();
    let lcp: Vec<String> = opts
        .lcp_refused
        .iter()
        .map(|r| r.describe(Ncp::Lcp))
        .collect();
    assert_eq!(lcp, ["we Nak'd the peer's MRU (1): 128"]);
    let ipcp: Vec<String> = opts
        .ipcp_refused
        .iter()
        .map(|r| r.describe(Ncp::Ipcp))
        .collect();
    assert_eq!(
        ipcp,
        [
            "we Rejected the peer's IP-Compression-Protocol (2): 002d0f01",
            "peer Rejected our Primary-DNS (129): 0.0.0.0",
            "peer Rejected our Secondary-DNS (131): 0.0.0.0",
            "we Nak'd the peer's IP-Address (3): 10.64.64.64",
            // The ISP's Nak is how our address is assigned (RFC 1332 §3.3).
            "peer Nak'd our IP-Address (3): 10.0.2.15",
        ],
        "{:?}",
        opts.ipcp_refused
    );
    assert_eq!(opts.peer_ip, Some(Ipv4Addr::new(10, 64, 64, 64)));
    assert!(opts.dns.is_empty());
}
