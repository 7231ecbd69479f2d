//! Fuzz LCP option handling: a peer's Configure-Request/Ack/Nak/Reject bodies — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masqdial_ppp::fsm::Negotiator;
use masqdial_ppp::lcp::{Lcp, LcpConfig};
use masqdial_ppp::AuthProtocol;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let mut l = Lcp::new(
        LcpConfig {
            mru: 1500,
            accm: 0,
            pfc: true,
            acfc: true,
            fcs32: sel & 1 != 0,
            magic: true,
            require_auth: if sel & 2 != 0 {
                vec![AuthProtocol::Chap, AuthProtocol::Pap]
            } else {
                vec![]
            },
            accept_auth: if sel & 16 != 0 {
                vec![AuthProtocol::Chap, AuthProtocol::Pap]
            } else {
                vec![AuthProtocol::Pap]
            },
            pap_fallback: sel & 32 != 0,
            insist_auth: sel & 64 != 0,
        },
        u64::from(sel),
    );
    let _ = l.handle_request(body, sel & 4 != 0);
    let _ = l.handle_nak(body, sel & 8 != 0);
    let _ = l.handle_ack(body);
    let mut out = Vec::new();
    l.request(&mut out);
});
