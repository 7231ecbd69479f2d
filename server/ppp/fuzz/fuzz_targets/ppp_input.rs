//! Fuzz a whole PPP link: an opened client or access server fed raw line bytes and correctly
//! framed packets of every protocol (so the parsers behind the FCS are reached), plus timer ticks.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use masqdial_ppp::hdlc::Encoder;
use masqdial_ppp::{AuthProtocol, Ppp, PppConfig};

const PROTOCOLS: [u16; 8] = [
    0xC021, 0xC023, 0xC223, 0x8021, 0x0021, 0x8057, 0x80FD, 0x0003,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut cfg = if sel & 1 != 0 {
        PppConfig::access_server(
            vec![("u".into(), "p".into())],
            Some(if sel & 2 != 0 {
                AuthProtocol::Chap
            } else {
                AuthProtocol::Pap
            }),
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            vec![Ipv4Addr::new(10, 0, 0, 53)],
        )
    } else {
        PppConfig::client("u", "p")
    };
    cfg.seed = u64::from(sel);
    let mut p = Ppp::new(cfg);
    let enc = Encoder::new(0xFFFF_FFFF, sel & 4 != 0);
    let mut now = Instant::now();
    p.open(now);
    // Records separated by 0xAA: the first byte picks raw bytes or a framed protocol.
    for rec in rest.split(|&b| b == 0xAA) {
        let Some((&kind, body)) = rec.split_first() else {
            continue;
        };
        if kind & 0x80 != 0 {
            p.handle_input(now, body);
        } else {
            let proto = PROTOCOLS[usize::from(kind & 7)];
            let mut line = Vec::new();
            enc.encode(
                &[0xFF, 0x03, (proto >> 8) as u8, proto as u8],
                body,
                &mut line,
            );
            p.handle_input(now, &line);
        }
        while p.poll_transmit().is_some() {}
        while p.poll_event().is_some() {}
        let _ = p.send_ipv4(body);
        if kind & 0x40 != 0 {
            now += Duration::from_secs(1);
            p.handle_timeout(now);
        }
    }
    let _ = p.stats();
    let _ = p.options();
});
