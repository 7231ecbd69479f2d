//! Fuzz LCP option handling: a peer's Configure-Request/Ack/Nak/Reject bodies. Properties
//! (RFC 1661 §5): never a panic; an Ack is given only to a well-formed request of options we
//! know, with values we accept; a Configure-Reject carries only options the peer sent, verbatim
//! (or the whole body if it does not parse); a Configure-Nak is well formed and never empty; a
//! Configure-Ack of ours is accepted only if it echoes our request byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masqdial_ppp::fsm::Negotiator;
use masqdial_ppp::lcp::{Lcp, LcpConfig};
use masqdial_ppp::options::{parse, ConfigReply};
use masqdial_ppp::AuthProtocol;

/// LCP options this implementation negotiates (RFC 1661 §6, RFC 1570 FCS-Alternatives).
const KNOWN: [u8; 7] = [1, 2, 3, 5, 7, 8, 9];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let accept_auth = if sel & 16 != 0 {
        vec![AuthProtocol::Chap, AuthProtocol::Pap]
    } else {
        vec![AuthProtocol::Pap]
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
            accept_auth: accept_auth.clone(),
            pap_fallback: sel & 32 != 0,
            insist_auth: sel & 64 != 0,
        },
        u64::from(sel),
    );
    let mut ours = Vec::new();
    l.request(&mut ours);
    // Our own request is well formed.
    assert!(parse(&ours).is_some(), "our Configure-Request does not parse");
    // A Configure-Ack is ours only if it echoes the request exactly.
    assert_eq!(l.handle_ack(body), body == ours.as_slice());

    let nak_allowed = sel & 4 != 0;
    match l.handle_request(body, nak_allowed) {
        ConfigReply::Ack => {
            let opts = parse(body).expect("an Acked request parses");
            for (ty, d) in opts {
                assert!(KNOWN.contains(&ty), "Acked unknown option {ty}");
                match ty {
                    1 => assert!(d.len() == 2 && u16::from_be_bytes([d[0], d[1]]) >= 128),
                    2 => assert_eq!(d.len(), 4),
                    5 => assert!(d.len() == 4 && d != [0, 0, 0, 0], "Acked magic {d:02x?}"),
                    7 | 8 => assert!(d.is_empty()),
                    3 => {
                        let p = match d {
                            [0xC0, 0x23, ..] => AuthProtocol::Pap,
                            [0xC2, 0x23, 5] => AuthProtocol::Chap,
                            _ => panic!("Acked an unknown auth protocol {d:02x?}"),
                        };
                        assert!(accept_auth.contains(&p), "Acked an auth protocol we refuse");
                    }
                    _ => {}
                }
            }
        }
        ConfigReply::Reject(r) => match parse(body) {
            None => assert_eq!(r, body, "an unparsable request is rejected whole"),
            Some(sent) => {
                let rejected = parse(&r).expect("a Reject parses");
                assert!(!rejected.is_empty(), "empty Configure-Reject");
                for o in rejected {
                    assert!(sent.contains(&o), "rejected an option the peer did not send");
                }
            }
        },
        ConfigReply::Nak(n) => {
            assert!(nak_allowed, "Nak'd after Max-Failure");
            let naked = parse(&n).expect("a Nak parses");
            assert!(!naked.is_empty(), "empty Configure-Nak");
        }
    }
    let _ = l.handle_nak(body, sel & 8 != 0);
    let mut again = Vec::new();
    l.request(&mut again);
    assert!(parse(&again).is_some(), "our request after a Nak does not parse");
});
