//! Fuzz target: every wire view parses or rejects any bytes without panicking, and what parses
//! prints back (through the setters) to the same bytes; a filled checksum verifies; the FTP
//! helper's PORT/EPRT scan -> format -> scan round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::helpers::{ftp, HelperAction};
use nat_core::wire::{icmp, ipv4, tcp, udp};
use std::net::Ipv4Addr;

fn ipv4_round_trip(data: &[u8]) {
    let Ok(p) = ipv4::Packet::new_checked(data) else {
        return;
    };
    let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
    let mut out = vec![0u8; tl];
    let mut q = ipv4::Packet::new_unchecked(&mut out[..]);
    q.set_version_and_header_len(hl);
    q.set_tos(p.tos());
    q.set_total_len(p.total_len());
    q.set_ident(p.ident());
    q.set_flags_and_offset(p.dont_frag(), p.more_frags(), p.frag_offset());
    q.set_ttl(p.ttl());
    q.set_protocol(p.protocol());
    q.set_checksum(p.checksum());
    q.set_src_addr(p.src_addr());
    q.set_dst_addr(p.dst_addr());
    out[ipv4::HEADER_LEN..hl].copy_from_slice(p.options());
    out[hl..tl].copy_from_slice(p.payload());
    let mut expect = data[..tl].to_vec();
    expect[6] &= 0x7F; // reserved flag bit: no accessor
    assert_eq!(out, expect, "ipv4 print differs");
    let mut q = ipv4::Packet::new_checked(&mut out[..]).expect("printed ipv4 parses");
    q.fill_checksum();
    assert!(q.verify_checksum());
}

fn tcp_round_trip(data: &[u8], a: Ipv4Addr, b: Ipv4Addr) {
    let Ok(p) = tcp::Packet::new_checked(data) else {
        return;
    };
    let hl = p.header_len();
    let mut out = vec![0u8; data.len()];
    let mut q = tcp::Packet::new_unchecked(&mut out[..]);
    q.set_src_port(p.src_port());
    q.set_dst_port(p.dst_port());
    q.set_seq_number(p.seq_number());
    q.set_ack_number(p.ack_number());
    q.set_header_len_and_flags(hl, p.flags());
    q.set_window_len(p.window_len());
    q.set_checksum(p.checksum());
    q.set_urgent_at(p.urgent_at());
    q.payload_mut().copy_from_slice(p.payload());
    out[tcp::HEADER_LEN..hl].copy_from_slice(&data[tcp::HEADER_LEN..hl]);
    let mut expect = data.to_vec();
    expect[12] &= 0xF1; // reserved bits: no accessor
    assert_eq!(out, expect, "tcp print differs");
    let mut q = tcp::Packet::new_unchecked(&mut out[..]);
    q.fill_checksum(a, b);
    assert!(q.verify_checksum(a, b));
}

fn udp_round_trip(data: &[u8], a: Ipv4Addr, b: Ipv4Addr) {
    let Ok(p) = udp::Packet::new_checked(data) else {
        return;
    };
    let l = usize::from(p.len());
    let mut out = vec![0u8; l];
    let mut q = udp::Packet::new_unchecked(&mut out[..]);
    q.set_src_port(p.src_port());
    q.set_dst_port(p.dst_port());
    q.set_len(p.len());
    q.set_checksum(p.checksum());
    q.payload_mut().copy_from_slice(p.payload());
    assert_eq!(&out[..], &data[..l], "udp print differs");
    let mut q = udp::Packet::new_unchecked(&mut out[..]);
    q.fill_checksum(a, b);
    assert!(q.checksum() != 0 && q.verify_checksum(a, b));
}

fn icmp_round_trip(data: &[u8]) {
    let Ok(p) = icmp::Packet::new_checked(data) else {
        return;
    };
    let mut out = vec![0u8; data.len()];
    let mut q = icmp::Packet::new_unchecked(&mut out[..]);
    q.set_msg_type(p.msg_type());
    q.set_msg_code(p.msg_code());
    q.set_checksum(p.checksum());
    q.set_rest(p.rest());
    q.data_mut().copy_from_slice(p.data());
    assert_eq!(&out[..], data, "icmp print differs");
    let mut q = icmp::Packet::new_unchecked(&mut out[..]);
    q.fill_checksum();
    assert!(q.verify_checksum());
}

fn ftp_round_trip(data: &[u8]) {
    let _ = ftp::scan_inbound(data, Ipv4Addr::LOCALHOST);
    if let Some(HelperAction::Port {
        range,
        addr,
        port,
        eprt,
    }) = ftp::scan_outbound(data)
    {
        assert!(range.start < range.end && range.end <= data.len());
        let text = ftp::format_port(addr, port, eprt);
        let mut out = data[..range.start].to_vec();
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&data[range.end..]);
        assert_eq!(
            ftp::scan_outbound(&out),
            Some(HelperAction::Port {
                range: range.start..range.start + text.len(),
                addr,
                port,
                eprt
            })
        );
    }
}

fuzz_target!(|data: &[u8]| {
    ipv4_round_trip(data);
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let (s, d, pl) = (p.src_addr(), p.dst_addr(), p.payload());
        tcp_round_trip(pl, s, d);
        udp_round_trip(pl, s, d);
        icmp_round_trip(pl);
    }
    let a = Ipv4Addr::LOCALHOST;
    tcp_round_trip(data, a, a);
    udp_round_trip(data, a, a);
    icmp_round_trip(data);
    ftp_round_trip(data);
});
