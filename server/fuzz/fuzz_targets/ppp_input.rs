//! Fuzz a whole PPP link: an access server opened, then arbitrary line bytes and timer ticks.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use masqdial_server::ppp::{AuthProtocol, Ppp, PppConfig};

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
    cfg.seed = Some(u64::from(sel));
    let mut p = Ppp::new(cfg);
    let mut now = Instant::now();
    p.open(now);
    // Chunks separated by 0xAA advance the clock by one second.
    for chunk in rest.split(|&b| b == 0xAA) {
        p.handle_input(now, chunk);
        while p.poll_transmit().is_some() {}
        while p.poll_event().is_some() {}
        let _ = p.send_ipv4(chunk);
        now += Duration::from_secs(1);
        p.handle_timeout(now);
    }
    let _ = p.stats();
    let _ = p.options();
});
