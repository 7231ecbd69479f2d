//! Fuzz target: every wire view must parse or reject any bytes without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::wire::{icmp, ipv4, tcp, udp};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = (p.options(), p.verify_checksum(), p.frag_offset());
        let pl = p.payload();
        if let Ok(t) = tcp::Packet::new_checked(pl) {
            let _ = (t.payload(), t.verify_checksum(p.src_addr(), p.dst_addr()));
        }
        if let Ok(u) = udp::Packet::new_checked(pl) {
            let _ = (u.payload(), u.verify_checksum(p.src_addr(), p.dst_addr()));
        }
        if let Ok(m) = icmp::Packet::new_checked(pl) {
            let _ = (m.data(), m.verify_checksum());
        }
    }
    let a = Ipv4Addr::LOCALHOST;
    let _ = tcp::Packet::new_checked(data).map(|t| t.verify_checksum(a, a));
    let _ = udp::Packet::new_checked(data).map(|u| u.verify_checksum(a, a));
    let _ = icmp::Packet::new_checked(data).map(|m| m.verify_checksum());
    let _ = nat_core::helpers::ftp::scan_outbound(data);
    let _ = nat_core::helpers::ftp::scan_inbound(data, a);
});
