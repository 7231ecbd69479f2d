//! Engine tests of the IRC DCC helper (2.2 `ip_masq_irc`) with real packet bytes: DCC SEND
//! and CHAT offers rewritten to the masquerade address and a listening entry, the first remote
//! to connect bound to it, sequence deltas for the length change, several offers per segment,
//! forged and malformed offers left alone, and the helper only on its registered ports.

use super::*;
use tcp::{FLG_ACK, FLG_PSH, FLG_SYN};

const PEER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 50);
const IRC_PORT: u16 = 6667;

fn irc_engine() -> Engine {
    let mut e = engine();
    e.masq_mut()
        .helpers_mut()
        .register("irc", proto::TCP, IRC_PORT)
        .expect("irc on 6667");
    e
}

/// Open LAN:`sport` → REMOTE:6667 (client ISN 100, server ISN 9000); returns the masq port.
fn connect(e: &mut Engine, sport: u16) -> u16 {
    let maddr = e.masq().masq_addr().expect("masquerade address");
    let mut syn = tcp_pkt(LAN, sport, REMOTE, IRC_PORT, 100, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(1), &mut syn), Action::ToLink);
    let cport = check(&syn).sp;
    let mut sa = tcp_pkt(
        REMOTE,
        IRC_PORT,
        maddr,
        cport,
        9000,
        101,
        FLG_SYN | FLG_ACK,
        b"",
    );
    assert_eq!(e.process_from_link(t(1), &mut sa), Action::ToLan);
    cport
}

fn send(e: &mut Engine, sport: u16, seq: u32, data: &[u8]) -> Vec<u8> {
    let mut p = tcp_pkt(
        LAN,
        sport,
        REMOTE,
        IRC_PORT,
        seq,
        9001,
        FLG_ACK | FLG_PSH,
        data,
    );
    assert_eq!(e.process_from_lan(t(2), &mut p), Action::ToLink);
    check(&p);
    p
}

fn payload(p: &[u8]) -> &[u8] {
    &p[40..]
}

fn seq_of(p: &[u8]) -> u32 {
    tcp::Packet::new_unchecked(&p[20..]).seq_number()
}

fn lan_u32() -> u32 {
    u32::from(LAN)
}

#[test]
fn dcc_send_is_masqueraded_and_the_peer_reaches_the_sender() {
    let mut e = irc_engine();
    let cport = connect(&mut e, 40000);
    let line = format!(
        "PRIVMSG bob :\x01DCC SEND report.pdf {} 5000 123456\x01\r\n",
        lan_u32()
    );
    let p = send(&mut e, 40000, 101, line.as_bytes());
    let snap = e.masq_snapshot(t(2));
    let dcc = snap
        .iter()
        .find(|s| s.lan == (LAN, 5000))
        .expect("DCC entry for the sender's port");
    assert_eq!(dcc.state, State::Listen);
    assert!(dcc.no_remote_port);
    let mport = dcc.masq.1;
    let expect = format!(
        "PRIVMSG bob :\x01DCC SEND report.pdf {} {mport} 123456\x01\r\n",
        u32::from(MASQ)
    );
    assert_eq!(String::from_utf8_lossy(payload(&p)), expect);
    // "3232235786 5000" → "3405803781 610xx": one byte longer.
    let diff = expect.len() as i32 - line.len() as i32;
    assert_eq!(diff, 1);
    let ctl = snap
        .iter()
        .find(|s| s.lan == (LAN, 40000))
        .expect("control");
    assert_eq!(ctl.helper, Some("irc"));
    assert_eq!(
        ctl.out_seq,
        nat_core::masq::SeqRecord {
            init_seq: 101,
            delta: diff,
            previous_delta: 0
        }
    );
    assert!(e
        .render_proc_ip_masq_app()
        .contains("TCP  6667    1        irc"));

    // A retransmission of the DCC segment (before anyone connected) gets the same port and
    // no second delta.
    let p = send(&mut e, 40000, 101, line.as_bytes());
    assert_eq!(String::from_utf8_lossy(payload(&p)), expect);
    assert_eq!(seq_of(&p), 101);
    let ctl = e
        .masq_snapshot(t(2))
        .into_iter()
        .find(|s| s.lan == (LAN, 40000))
        .expect("control");
    assert_eq!((ctl.out_seq.init_seq, ctl.out_seq.delta), (101, diff));
    assert_eq!(e.masq().len(), 2, "control and one DCC entry");

    // The peer (another address than the IRC server) connects to the masquerade port.
    let mut syn = tcp_pkt(PEER, 33000, MASQ, mport, 5000, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_link(t(3), &mut syn), Action::ToLan);
    let h = check(&syn);
    assert_eq!((h.src, h.dst, h.dp), (PEER, LAN, 5000));
    let s = e.masq_entry(t(3), dcc.id).expect("DCC entry alive");
    assert_eq!(s.remote, (PEER, 33000), "bound to the first remote");
    assert!(!s.no_remote_port);
    assert_eq!(s.state, State::SynRecv);
    // The sender answers from its port: masqueraded to the same masq port.
    let mut sa = tcp_pkt(LAN, 5000, PEER, 33000, 1, 5001, FLG_SYN | FLG_ACK, b"");
    assert_eq!(e.process_from_lan(t(3), &mut sa), Action::ToLink);
    let h = check(&sa);
    assert_eq!((h.src, h.sp, h.dst, h.dp), (MASQ, mport, PEER, 33000));
    // Once bound, another remote cannot use that port.
    let mut other = tcp_pkt(REMOTE, 33001, MASQ, mport, 7000, 0, FLG_SYN, b"");
    assert_ne!(e.process_from_link(t(3), &mut other), Action::ToLan);

    // Sequence numbers: the next client segment moves by the delta, the server's acks back.
    let next = 101 + line.len() as u32;
    let p = send(&mut e, 40000, next, b"PING :x\r\n");
    assert_eq!(seq_of(&p), next + 1);
    let mut ack = tcp_pkt(
        REMOTE,
        IRC_PORT,
        MASQ,
        cport,
        9001,
        next + 1 + 9,
        FLG_ACK,
        b"",
    );
    assert_eq!(e.process_from_link(t(3), &mut ack), Action::ToLan);
    check(&ack);
    assert_eq!(
        tcp::Packet::new_unchecked(&ack[20..]).ack_number(),
        next + 9
    );
}

#[test]
fn dcc_chat_and_several_offers_in_one_segment_with_a_shrinking_rewrite() {
    let mut e = irc_engine();
    // A masquerade address with a short decimal form: 1.0.0.9 = "16777225".
    e.set_masq_address(Some(Ipv4Addr::new(1, 0, 0, 9)));
    let cport = connect(&mut e, 40002);
    let data = format!(
        "PRIVMSG a :\x01DCC CHAT chat {l} 4000\x01\r\nPRIVMSG b :hi\r\n\
         PRIVMSG c :\x01dcc send \"two words.txt\" {l} 4001 9\x01\r\n",
        l = lan_u32()
    );
    let p = send(&mut e, 40002, 101, data.as_bytes());
    let snap = e.masq_snapshot(t(2));
    let m = |port: u16| {
        snap.iter()
            .find(|s| s.lan == (LAN, port))
            .map(|s| s.masq.1)
            .expect("entry per offer")
    };
    let expect = format!(
        "PRIVMSG a :\x01DCC CHAT chat 16777225 {}\x01\r\nPRIVMSG b :hi\r\n\
         PRIVMSG c :\x01dcc send \"two words.txt\" 16777225 {} 9\x01\r\n",
        m(4000),
        m(4001)
    );
    assert_eq!(String::from_utf8_lossy(payload(&p)), expect);
    let diff = expect.len() as i32 - data.len() as i32;
    assert_eq!(diff, -2, "two offers, each one byte shorter");
    let ctl = snap.iter().find(|s| s.lan == (LAN, 40002)).expect("ctl");
    assert_eq!(ctl.out_seq.delta, diff);
    // The server's ack of the whole segment maps back to the end of what the client sent.
    let sent_end = 101 + data.len() as u32;
    let mut ack = tcp_pkt(
        REMOTE,
        IRC_PORT,
        Ipv4Addr::new(1, 0, 0, 9),
        cport,
        9001,
        sent_end.wrapping_add(diff as u32),
        FLG_ACK,
        b"",
    );
    assert_eq!(e.process_from_link(t(3), &mut ack), Action::ToLan);
    assert_eq!(
        tcp::Packet::new_unchecked(&ack[20..]).ack_number(),
        sent_end
    );
}

#[test]
fn forged_malformed_and_plain_text_pass_byte_identical() {
    let mut e = irc_engine();
    connect(&mut e, 40003);
    let other = u32::from(LAN2);
    let mut seq = 101;
    for data in [
        // Another inside host's address: not mapped (netfilter's "Forged DCC").
        format!("PRIVMSG b :\x01DCC SEND f {other} 5000 1\x01\r\n"),
        // Passive DCC request (port 0).
        format!("PRIVMSG b :\x01DCC SEND f {} 0 100 7\x01\r\n", lan_u32()),
        // Unterminated CTCP, over-long address, plain chat.
        format!("PRIVMSG b :\x01DCC SEND f {} 5000 1\r\n", lan_u32()),
        "PRIVMSG b :\x01DCC SEND f 4294967296 5000 1\x01\r\n".to_string(),
        "PRIVMSG #c :DCC SEND is how you send files\r\n".to_string(),
    ] {
        let p = send(&mut e, 40003, seq, data.as_bytes());
        assert_eq!(payload(&p), data.as_bytes());
        assert_eq!(seq_of(&p), seq);
        seq += data.len() as u32;
    }
    assert_eq!(e.masq().len(), 1, "no DCC entry was made");
}

#[test]
fn only_registered_ports_are_watched() {
    // Default registry: ftp only. A DCC to 6667 goes through untouched.
    let mut e = engine();
    let cport = connect(&mut e, 40004);
    assert!(cport > 0);
    let line = format!("PRIVMSG b :\x01DCC CHAT chat {} 4000\x01\r\n", lan_u32());
    let p = send(&mut e, 40004, 101, line.as_bytes());
    assert_eq!(payload(&p), line.as_bytes());
    assert!(!e.render_proc_ip_masq_app().contains("irc"));
    // Registered on another port (2.2 `ports=6668`): that one is watched, 6667 is not.
    let mut e = engine();
    e.masq_mut()
        .helpers_mut()
        .register("irc", proto::TCP, 6668)
        .expect("irc on 6668");
    let mut syn = tcp_pkt(LAN, 40005, REMOTE, 6668, 100, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(1), &mut syn), Action::ToLink);
    let mut p = tcp_pkt(
        LAN,
        40005,
        REMOTE,
        6668,
        101,
        9001,
        FLG_ACK | FLG_PSH,
        line.as_bytes(),
    );
    assert_eq!(e.process_from_lan(t(2), &mut p), Action::ToLink);
    check(&p);
    assert!(
        String::from_utf8_lossy(payload(&p)).contains(&u32::from(MASQ).to_string()),
        "rewritten on 6668"
    );
}

#[test]
fn an_offer_split_inside_its_address_is_joined_and_rewritten() {
    let mut e = irc_engine();
    let cport = connect(&mut e, 40006);
    let line = format!(
        "PRIVMSG bob :\x01DCC SEND f.bin {} 5000 77\x01\r\n",
        lan_u32()
    );
    let b = line.as_bytes();
    let cut = line.find("32322").expect("address") + 3;
    // First piece: sent without the unterminated offer (13 bytes of "PRIVMSG bob :").
    let p = send(&mut e, 40006, 101, &b[..cut]);
    assert_eq!(payload(&p), b"PRIVMSG bob :");
    assert_eq!(seq_of(&p), 101);
    assert_eq!(e.masq().len(), 1, "no DCC entry yet");
    // A pure ack from the client meanwhile changes nothing.
    let mut a = tcp_pkt(
        LAN,
        40006,
        REMOTE,
        IRC_PORT,
        101 + cut as u32,
        9001,
        FLG_ACK,
        b"",
    );
    assert_eq!(e.process_from_lan(t(2), &mut a), Action::ToLink);
    check(&a);
    assert_eq!(a.len(), 40);
    // Second piece: sent from where the offer starts, with the held bytes, rewritten.
    let p = send(&mut e, 40006, 101 + cut as u32, &b[cut..]);
    assert_eq!(seq_of(&p), 101 + 13);
    let mport = e
        .masq_snapshot(t(2))
        .into_iter()
        .find(|s| s.lan == (LAN, 5000))
        .map(|s| s.masq.1)
        .expect("DCC entry");
    let want = format!("\x01DCC SEND f.bin {} {mport} 77\x01\r\n", u32::from(MASQ));
    assert_eq!(String::from_utf8_lossy(payload(&p)), want);
    let diff = want.len() as i32 - (line.len() - 13) as i32;
    let ctl = e
        .masq_snapshot(t(2))
        .into_iter()
        .find(|s| s.lan == (LAN, 40006))
        .expect("control");
    assert_eq!((ctl.out_seq.init_seq, ctl.out_seq.delta), (114, diff));
    // The server acks everything: the client sees the end of what it sent.
    let mut ack = tcp_pkt(
        REMOTE,
        IRC_PORT,
        MASQ,
        cport,
        9001,
        114 + want.len() as u32,
        FLG_ACK,
        b"",
    );
    assert_eq!(e.process_from_link(t(3), &mut ack), Action::ToLan);
    assert_eq!(
        tcp::Packet::new_unchecked(&ack[20..]).ack_number(),
        101 + line.len() as u32
    );
}

#[test]
fn a_held_offer_retransmitted_passes_as_it_is() {
    let mut e = irc_engine();
    connect(&mut e, 40007);
    let head = format!("PRIVMSG bob :\x01DCC CHAT chat {} 40", lan_u32());
    let p = send(&mut e, 40007, 101, head.as_bytes());
    assert_eq!(payload(&p), b"PRIVMSG bob :");
    // The client's timer: the held bytes again (Nagle waits for their ack). Given up.
    let p = send(&mut e, 40007, 114, &head.as_bytes()[13..]);
    assert_eq!(payload(&p), &head.as_bytes()[13..]);
    assert_eq!(seq_of(&p), 114);
}
