//! Engine tests of the FTP helper with real packet bytes: PORT rewriting with sequence
//! deltas, PASV pre-created entries, and the control connection kept alive while it controls.

use super::*;

#[test]
fn ftp_port_rewrite_with_seq_deltas() {
    use tcp::{FLG_ACK, FLG_PSH, FLG_SYN};
    let mut e = engine();
    let srv = REMOTE;
    let mut syn = tcp_pkt(LAN, 1030, srv, 21, 100, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(1), &mut syn), Action::ToLink);
    let cport = check(&syn).sp;
    let mut sa = tcp_pkt(srv, 21, MASQ, cport, 9000, 101, FLG_SYN | FLG_ACK, b"");
    assert_eq!(e.process_from_link(t(1), &mut sa), Action::ToLan);
    // "PORT 192,168,1,10,4,10\r\n" (24 bytes) becomes "PORT 203,0,113,5,238,73\r\n" (25).
    let cmd = b"PORT 192,168,1,10,4,10\r\n";
    let mut p = tcp_pkt(LAN, 1030, srv, 21, 101, 9001, FLG_ACK | FLG_PSH, cmd);
    assert_eq!(e.process_from_lan(t(2), &mut p), Action::ToLink);
    check(&p);
    let payload = &p[40..];
    let snap = e.masq_snapshot(t(2));
    let data = snap.iter().find(|s| s.no_remote_port).expect("data entry");
    let expect = format!(
        "PORT 203,0,113,5,{},{}\r\n",
        data.masq.1 >> 8,
        data.masq.1 & 0xFF
    );
    assert_eq!(payload, expect.as_bytes());
    let diff = expect.len() as i32 - cmd.len() as i32;
    assert_eq!(diff, 1);
    let ctl = snap.iter().find(|s| s.lan.1 == 1030).expect("control");
    assert_eq!(ctl.out_seq.init_seq, 101);
    assert_eq!(ctl.out_seq.delta, diff);
    assert_eq!(ctl.out_seq.previous_delta, 0);
    assert_eq!(ctl.helper, Some("ftp"));
    assert_eq!(ctl.n_control, 1);
    assert_eq!(data.lan, (LAN, 1034));
    assert_eq!(data.state, State::Listen);
    // Next client segment: seq shifted by delta.
    let next_seq = 101 + cmd.len() as u32;
    let mut p = tcp_pkt(
        LAN,
        1030,
        srv,
        21,
        next_seq,
        9001,
        FLG_ACK | FLG_PSH,
        b"LIST\r\n",
    );
    assert_eq!(e.process_from_lan(t(3), &mut p), Action::ToLink);
    check(&p);
    assert_eq!(
        tcp::Packet::new_unchecked(&p[20..]).seq_number(),
        next_seq + 1
    );
    // A retransmission of the PORT segment keeps previous_delta (0).
    let mut p = tcp_pkt(LAN, 1030, srv, 21, 101, 9001, FLG_ACK, b"");
    assert_eq!(e.process_from_lan(t(3), &mut p), Action::ToLink);
    assert_eq!(tcp::Packet::new_unchecked(&p[20..]).seq_number(), 101);
    // A second PORT, written with leading zeros, shrinks by 5: delta 1 → -4, prevd 1.
    let seq2 = next_seq + 6;
    let cmd2 = b"PORT 192,168,001,010,004,012\r\n";
    let mut p = tcp_pkt(LAN, 1030, srv, 21, seq2, 9001, FLG_ACK | FLG_PSH, cmd2);
    assert_eq!(e.process_from_lan(t(3), &mut p), Action::ToLink);
    check(&p);
    assert_eq!(tcp::Packet::new_unchecked(&p[20..]).seq_number(), seq2 + 1);
    let new_len = p.len() - 40;
    let diff2 = new_len as i32 - cmd2.len() as i32;
    let ctl = e
        .masq_snapshot(t(3))
        .into_iter()
        .find(|s| s.lan.1 == 1030)
        .expect("control");
    assert_eq!(ctl.out_seq.init_seq, seq2);
    assert_eq!(ctl.out_seq.previous_delta, 1);
    assert_eq!(ctl.out_seq.delta, 1 + diff2);
    assert_eq!(ctl.n_control, 2);
    let seq3 = seq2 + cmd2.len() as u32;
    let mut p = tcp_pkt(LAN, 1030, srv, 21, seq3, 9001, FLG_ACK, b"");
    assert_eq!(e.process_from_lan(t(3), &mut p), Action::ToLink);
    assert_eq!(
        tcp::Packet::new_unchecked(&p[20..]).seq_number(),
        seq3.wrapping_add((1 + diff2) as u32)
    );
    // A retransmission from before the second resize (the LIST segment) is shifted by prevd
    // (1), not by delta (-4): 2.2 masq_fix_seq, seq not after init_seq.
    let mut p = tcp_pkt(
        LAN,
        1030,
        srv,
        21,
        next_seq,
        9001,
        FLG_ACK | FLG_PSH,
        b"LIST\r\n",
    );
    assert_eq!(e.process_from_lan(t(4), &mut p), Action::ToLink);
    check(&p);
    assert_eq!(
        tcp::Packet::new_unchecked(&p[20..]).seq_number(),
        next_seq + 1
    );
    // The server's acks (2.2 masq_fix_ack_seq with out_seq {init seq2, delta -4, prevd 1}):
    // an ack after init_seq + delta loses delta, any other ack loses prevd.
    let delta = 1 + diff2;
    assert_eq!(delta, -4);
    let boundary = seq2.wrapping_add(delta as u32);
    let masq_end_of_port2 = seq2 + 1 + new_len as u32;
    for (ack, inside_ack, branch) in [
        // Acks the first PORT only.
        (next_seq + 1, next_seq, "prevd"),
        // Exactly init_seq + delta is not after it.
        (boundary, boundary - 1, "prevd"),
        (boundary + 1, boundary + 1 + 4, "delta"),
        // Acks the whole second PORT: the inside host sees the end of what it sent.
        (masq_end_of_port2, seq3, "delta"),
    ] {
        let mut a = tcp_pkt(srv, 21, MASQ, cport, 9001, ack, FLG_ACK, b"");
        assert_eq!(e.process_from_link(t(4), &mut a), Action::ToLan);
        check(&a);
        assert_eq!(
            tcp::Packet::new_unchecked(&a[20..]).ack_number(),
            inside_ack,
            "ack {ack} ({branch} branch)"
        );
    }
    // The server opens the data connection from port 20 to the announced masq port.
    let mut d = tcp_pkt(srv, 20, MASQ, data.masq.1, 7000, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_link(t(5), &mut d), Action::ToLan);
    let h = check(&d);
    assert_eq!((h.dst, h.dp), (LAN, 1034));
    let s = e.masq_entry(t(5), data.id).expect("data entry alive");
    assert!(!s.no_remote_port);
    assert_eq!(s.remote.1, 20);
    assert_eq!(s.state, State::SynRecv);
    // Views show the helper binding and the verbose sequence record.
    assert!(e
        .render_proc_ip_masq_app()
        .contains("TCP  21      1        ftp"));
    let v = e.render_masq_list(
        t(5),
        MasqListOptions {
            numeric: true,
            verbose: true,
        },
    );
    let row = format!(
        "{:>10} {:>5} {:>5} 192.168.1.10         198.51.100.7         1030 ({cport}) -> 21\n",
        seq2,
        1 + diff2,
        1
    );
    assert!(v.contains(&row), "{v}");
}

#[test]
fn ftp_pasv_precreates_controlled_entry() {
    use tcp::{FLG_ACK, FLG_PSH, FLG_SYN};
    let mut e = engine();
    let srv = REMOTE;
    let mut syn = tcp_pkt(LAN, 1040, srv, 21, 100, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(1), &mut syn), Action::ToLink);
    let cport = check(&syn).sp;
    let mut p = tcp_pkt(
        LAN,
        1040,
        srv,
        21,
        101,
        9001,
        FLG_ACK | FLG_PSH,
        b"PASV\r\n",
    );
    assert_eq!(e.process_from_lan(t(2), &mut p), Action::ToLink);
    let reply = b"227 Entering Passive Mode (198,51,100,7,195,80)\r\n";
    let mut r = tcp_pkt(srv, 21, MASQ, cport, 9001, 107, FLG_ACK | FLG_PSH, reply);
    assert_eq!(e.process_from_link(t(3), &mut r), Action::ToLan);
    check(&r);
    assert_eq!(&r[40..], &reply[..], "inbound 227 payload unchanged");
    let snap = e.masq_snapshot(t(3));
    let pre = snap.iter().find(|s| s.no_lan_port).expect("NO_SPORT entry");
    assert_eq!(pre.remote, (srv, 50000));
    assert!(pre.controlled_by.is_some());
    // The client's data connection picks it up and fills in its port.
    let mut d = tcp_pkt(LAN, 1041, srv, 50000, 1, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(4), &mut d), Action::ToLink);
    assert_eq!(check(&d).sp, pre.masq.1);
    let s = e.masq_entry(t(4), pre.id).expect("alive");
    assert_eq!(s.lan, (LAN, 1041));
}

#[test]
fn controller_kept_alive_while_controlling() {
    use tcp::{FLG_ACK, FLG_PSH, FLG_SYN};
    let mut e = engine();
    let mut syn = tcp_pkt(LAN, 1030, REMOTE, 21, 100, 0, FLG_SYN, b"");
    assert_eq!(e.process_from_lan(t(0), &mut syn), Action::ToLink);
    let mut p = tcp_pkt(
        LAN,
        1030,
        REMOTE,
        21,
        101,
        0,
        FLG_ACK | FLG_PSH,
        b"PORT 192,168,1,10,4,10\r\n",
    );
    assert_eq!(e.process_from_lan(t(0), &mut p), Action::ToLink);
    // Keep the data entry alive with traffic; the control entry (SYN_SENT, 2 min) expires but
    // is re-armed because it controls the data entry.
    e.set_timeouts(0, 0, 0);
    let mut now = 0u64;
    let data_id = e
        .masq_snapshot(t(0))
        .iter()
        .find(|s| s.no_remote_port)
        .map(|s| s.id)
        .expect("data");
    let mut d = tcp_pkt(
        REMOTE,
        20,
        MASQ,
        e.masq_entry(t(0), data_id).expect("d").masq.1,
        1,
        0,
        FLG_SYN,
        b"",
    );
    assert_eq!(e.process_from_link(t(0), &mut d), Action::ToLan);
    while now < 200_000 {
        now += 100;
        let _ = e.handle_timeout(Instant::from_millis(now));
        if now.is_multiple_of(30_000) {
            let mut k = tcp_pkt(LAN, 1034, REMOTE, 20, 2, 0, FLG_ACK, b"");
            assert_eq!(
                e.process_from_lan(Instant::from_millis(now), &mut k),
                Action::ToLink
            );
        }
    }
    assert_eq!(
        e.masq().len(),
        2,
        "control entry survives while it controls the data entry"
    );
}
