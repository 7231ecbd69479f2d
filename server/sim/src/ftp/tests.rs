//! Unit and property tests of the FTP parsers and formatters.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[test]
fn port_argument_round_trip() {
    let a = parse_host_port("192,168,77,2,237,200").expect("valid");
    assert_eq!(a, "192.168.77.2:60872".parse().expect("literal"));
    assert_eq!(format_host_port(a), "192,168,77,2,237,200");
    assert_eq!(
        parse_host_port(" 10,64,0,5,0,21 "),
        Ok("10.64.0.5:21".parse().expect("literal"))
    );
    for bad in [
        "1,2,3,4,5",
        "1,2,3,4,5,6,7",
        "256,1,1,1,1,1",
        "a,b,c,d,e,f",
        "1,2,3,4,5,",
        "-1,2,3,4,5,6",
        "1,2,3,4,5,+6",
    ] {
        assert_eq!(parse_host_port(bad), Err(ParseError::BadHostPort), "{bad}");
    }
}

#[test]
fn eprt_argument_round_trip() {
    // The examples of RFC 2428 §2.
    assert_eq!(
        parse_eprt("|1|132.235.1.2|6275|"),
        Ok("132.235.1.2:6275".parse().expect("literal"))
    );
    assert_eq!(
        parse_eprt("|2|1080::8:800:200C:417A|5282|"),
        Ok("[1080::8:800:200C:417A]:5282".parse().expect("literal"))
    );
    assert_eq!(
        parse_eprt("!1!10.0.0.1!21!"),
        Ok("10.0.0.1:21".parse().expect("literal"))
    );
    let a: SocketAddr = "192.168.77.2:40000".parse().expect("literal");
    assert_eq!(format_eprt(a), "|1|192.168.77.2|40000|");
    assert_eq!(parse_eprt(&format_eprt(a)), Ok(a));
    for bad in [
        "",
        "|1|1.2.3.4|5",
        "|3|1.2.3.4|5|",
        "|1|::1|5|",
        "|2|1.2.3.4|5|",
        "|1|1.2.3.4|70000|",
        "x|1|1.2.3.4|5|",
    ] {
        assert_eq!(parse_eprt(bad), Err(ParseError::BadExtended), "{bad}");
    }
}

#[test]
fn passive_replies() {
    assert_eq!(
        parse_227("Entering Passive Mode (203,0,113,1,195,80)."),
        Ok("203.0.113.1:50000".parse().expect("literal"))
    );
    // RFC 1123: scan for the first digit; some servers omit the parentheses.
    assert_eq!(
        parse_227("=203,0,113,1,4,1"),
        Ok("203.0.113.1:1025".parse().expect("literal"))
    );
    assert_eq!(
        parse_227("Entering Passive Mode"),
        Err(ParseError::BadHostPort)
    );
    assert_eq!(
        parse_229("Entering Extended Passive Mode (|||6446|)"),
        Ok(6446)
    );
    assert_eq!(parse_229("ok (!!!21!)"), Ok(21));
    for bad in [
        "Entering (|||x|)",
        "(||6446|)",
        "no parens",
        "(|||6446|",
        "()",
    ] {
        assert_eq!(parse_229(bad), Err(ParseError::BadExtended), "{bad}");
    }
}

#[test]
fn reply_lines() {
    assert_eq!(
        parse_reply_line("220 ready\r\n"),
        Ok(ReplyLine {
            code: 220,
            last: true,
            text: "ready"
        })
    );
    assert_eq!(
        parse_reply_line("211-Features:"),
        Ok(ReplyLine {
            code: 211,
            last: false,
            text: "Features:"
        })
    );
    assert_eq!(
        parse_reply_line("200"),
        Ok(ReplyLine {
            code: 200,
            last: true,
            text: ""
        })
    );
    for bad in ["", "22", "abc ok", "220x", "620 no", "099 no"] {
        assert_eq!(parse_reply_line(bad), Err(ParseError::BadReply), "{bad}");
    }
}

#[test]
fn commands() {
    assert_eq!(
        parse_command("user anonymous\r\n"),
        Ok(Command::User("anonymous".into()))
    );
    assert_eq!(parse_command("PASS"), Ok(Command::Pass(String::new())));
    assert_eq!(parse_command("TYPE i"), Ok(Command::Type('I')));
    assert_eq!(
        parse_command("PORT 192,168,77,2,4,1"),
        Ok(Command::Port("192.168.77.2:1025".parse().expect("literal")))
    );
    assert_eq!(parse_command("PORT 1,2"), Err(ParseError::BadHostPort));
    assert_eq!(
        parse_command("EPSV ALL"),
        Ok(Command::Epsv(Some("ALL".into())))
    );
    assert_eq!(
        parse_command("RETR"),
        Err(ParseError::MissingArgument("RETR"))
    );
    assert_eq!(parse_command("LIST"), Ok(Command::List(None)));
    assert_eq!(parse_command("MDTM x"), Ok(Command::Other("MDTM".into())));
    assert_eq!(parse_command(""), Err(ParseError::Empty));
    assert_eq!(parse_command(" RETR x"), Err(ParseError::Empty));
}

/// Runs the server on loopback and returns its address and shared uploads.
async fn loopback_server(size: u64) -> (SocketAddr, Arc<Mutex<HashMap<String, Vec<u8>>>>) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("bound");
    let uploads = Arc::new(Mutex::new(HashMap::new()));
    let cfg = Arc::new(FtpServerConfig {
        seed: 5,
        blob_size: size,
        io_timeout: Duration::from_secs(10),
        max_upload: 1 << 20,
        uploads: uploads.clone(),
    });
    tokio::spawn(async move {
        while let Ok((s, peer)) = l.accept().await {
            tokio::spawn(serve_session(s, peer, cfg.clone()));
        }
    });
    (addr, uploads)
}

#[tokio::test]
async fn client_and_server_on_loopback_all_modes() {
    let (addr, uploads) = loopback_server(100_000).await;
    let t = Duration::from_secs(10);
    for mode in [
        DataMode::Passive,
        DataMode::ExtendedPassive,
        DataMode::Active,
        DataMode::ExtendedActive,
    ] {
        let mut c = FtpClient::connect(addr, t).await.expect("login");
        assert_eq!(c.size(BLOB_FILE).await.expect("size"), 100_000);
        let got = c.retr(BLOB_FILE, mode, 1 << 20).await.expect("retr");
        assert_eq!(got, crate::blob::blob_bytes(5, 100_000), "{mode:?}");
        let up = crate::blob::blob_bytes(77, 3000);
        c.stor("up.bin", &up, mode).await.expect("stor");
        assert_eq!(
            c.retr("up.bin", mode, 1 << 20).await.expect("retr upload"),
            up
        );
        let names = c.nlst(mode).await.expect("nlst");
        assert_eq!(names, vec![BLOB_FILE.to_owned(), "up.bin".to_owned()]);
        c.quit().await.expect("quit");
    }
    assert_eq!(uploads.lock().expect("not poisoned").len(), 1);
}

#[tokio::test]
async fn server_refuses_foreign_port_and_unknown_files() {
    let (addr, _) = loopback_server(10).await;
    let mut c = FtpClient::connect(addr, Duration::from_secs(10))
        .await
        .expect("login");
    assert_eq!(
        c.command("PORT 10,1,2,3,4,5").await.expect("reply").code,
        500
    );
    assert_eq!(
        c.command("EPRT |1|10.1.2.3|1029|")
            .await
            .expect("reply")
            .code,
        500
    );
    assert_eq!(c.command("PORT 1,2").await.expect("reply").code, 501);
    assert_eq!(c.command("SIZE nope.bin").await.expect("reply").code, 550);
    assert_eq!(c.command("RETR blob.bin").await.expect("reply").code, 425);
    assert_eq!(
        c.command("FEAT").await.expect("reply").text,
        "Features:\n EPRT\n EPSV\n PASV\n SIZE\nEnd"
    );
    c.quit().await.expect("quit");
}

proptest! {
    #[test]
    /// Whatever a PORT argument parses to prints back to the same address, and a reply
    /// line parses only with a 1xx-5xx code that it starts with.
    fn parsers_take_only_well_formed_text(s in "\\PC{0,80}") {
        let _ = parse_command(&s);
        if let Ok(a) = parse_host_port(&s) {
            prop_assert_eq!(parse_host_port(&format_host_port(a)), Ok(a));
        }
        let _ = parse_eprt(&s);
        let _ = parse_227(&s);
        let _ = parse_229(&s);
        if parse_reply_line(&s).is_ok() {
            let b = s.as_bytes();
            prop_assert!(b.len() >= 3 && (b'1'..=b'5').contains(&b[0]) && b[..3].iter().all(u8::is_ascii_digit));
        }
    }

    #[test]
    fn host_port_round_trips(ip in any::<[u8; 4]>(), port in any::<u16>()) {
        let a = SocketAddrV4::new(Ipv4Addr::from(ip), port);
        prop_assert_eq!(parse_host_port(&format_host_port(a)), Ok(a));
        prop_assert_eq!(parse_227(&format!("Entering Passive Mode ({}).", format_host_port(a))), Ok(a));
        prop_assert_eq!(parse_eprt(&format_eprt(SocketAddr::V4(a))), Ok(SocketAddr::V4(a)));
    }
}
