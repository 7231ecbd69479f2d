//! Fuzz IPCP option handling in both roles. Properties (RFC 1332/1877 and RFC 1661 §5): never
//! a panic; an access server that assigns addresses Acks only the address it assigns (unless
//! told to accept the peer's) and only its own DNS servers; nothing unknown is ever Acked; a
//! Configure-Reject carries only options the peer sent, verbatim; a Configure-Nak is well
//! formed; a Configure-Ack of ours is taken only if it echoes our request byte for byte.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use masqdial_ppp::fsm::Negotiator;
use masqdial_ppp::ipcp::{Ipcp, IpcpConfig};
use masqdial_ppp::options::{parse, ConfigReply};

const ASSIGN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let server = sel & 1 != 0;
    let accept_remote = sel & 16 != 0;
    let cfg = if server {
        IpcpConfig {
            local: Ipv4Addr::new(10, 0, 0, 1),
            assign: Some(ASSIGN),
            accept_local: sel & 8 != 0,
            accept_remote,
            request_dns: false,
            request_address: sel & 32 == 0,
            dns: vec![DNS],
        }
    } else {
        IpcpConfig {
            local: Ipv4Addr::UNSPECIFIED,
            assign: None,
            accept_local: true,
            accept_remote,
            request_dns: true,
            request_address: sel & 32 == 0,
            dns: vec![],
        }
    };
    let mut i = Ipcp::new(cfg);
    let mut ours = Vec::new();
    i.request(&mut ours);
    assert!(parse(&ours).is_some(), "our Configure-Request does not parse");
    assert_eq!(i.handle_ack(body), body == ours.as_slice());

    let nak_allowed = sel & 2 != 0;
    match i.handle_request(body, nak_allowed) {
        ConfigReply::Ack => {
            let opts = parse(body).expect("an Acked request parses");
            for (ty, d) in opts {
                let a = <[u8; 4]>::try_from(d).map(Ipv4Addr::from);
                match ty {
                    3 => {
                        let a = a.expect("an Acked address has 4 bytes");
                        assert!(!a.is_unspecified(), "Acked 0.0.0.0 as the peer's address");
                        if server && !accept_remote {
                            assert_eq!(a, ASSIGN, "Acked a peer-chosen address");
                        }
                    }
                    129 => {
                        assert!(server, "a client Acked a DNS request (it has none to give)");
                        assert_eq!(a.ok(), Some(DNS), "Acked a DNS server that is not ours");
                    }
                    _ => panic!("Acked IPCP option {ty}"),
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
    let _ = i.handle_nak(body, sel & 4 != 0);
    let mut again = Vec::new();
    i.request(&mut again);
    assert!(parse(&again).is_some(), "our request after a Nak does not parse");
});
