//! Fuzz IPCP option handling in both roles — never a panic.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use masqdial_ppp::fsm::Negotiator;
use masqdial_ppp::ipcp::{Ipcp, IpcpConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let cfg = if sel & 1 != 0 {
        IpcpConfig {
            local: Ipv4Addr::new(10, 0, 0, 1),
            assign: Some(Ipv4Addr::new(10, 0, 0, 2)),
            accept_local: sel & 8 != 0,
            accept_remote: sel & 16 != 0,
            request_dns: false,
            request_address: sel & 32 == 0,
            dns: vec![Ipv4Addr::new(10, 0, 0, 53)],
        }
    } else {
        IpcpConfig {
            local: Ipv4Addr::UNSPECIFIED,
            assign: None,
            accept_local: true,
            accept_remote: sel & 16 != 0,
            request_dns: true,
            request_address: sel & 32 == 0,
            dns: vec![],
        }
    };
    let mut i = Ipcp::new(cfg);
    let _ = i.handle_request(body, sel & 2 != 0);
    let _ = i.handle_nak(body, sel & 4 != 0);
    let _ = i.handle_ack(body);
    let mut out = Vec::new();
    i.request(&mut out);
});
