//! Fuzz target: the engine's two packet entry points (translate both ways) never panic. The
//! input is split into packets: first byte selects direction, next two the length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::{Engine, EngineConfig, Instant};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let mut e = Engine::new(EngineConfig {
        local_addrs: vec![Ipv4Addr::new(192, 168, 1, 1)],
        ..EngineConfig::default()
    });
    let _ = e.firewall_mut().set_policy("forward", "MASQ");
    e.set_masq_address(Some(Ipv4Addr::new(203, 0, 113, 5)));
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 3 {
        let dir = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let mut buf = rest[3..3 + len].to_vec();
        rest = &rest[3 + len..];
        now += u64::from(dir >> 2) * 1000;
        let t = Instant::from_millis(now);
        match dir & 3 {
            0 => drop(e.process_from_lan(t, &mut buf)),
            1 => drop(e.process_from_link(t, &mut buf)),
            2 => {
                let _ = e.handle_timeout(t);
            }
            _ => {
                e.set_masq_address(Some(Ipv4Addr::new(203, 0, 113, dir)));
            }
        }
    }
    let _ = e.render_proc_ip_masquerade(Instant::from_millis(now));
});
