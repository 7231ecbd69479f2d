//! A small IRC world for the DCC end-to-end tests (the `irc-fixture` program): an IRC server
//! (an RFC 2812 subset: `NICK`, `USER`, `PING`/`PONG`, `PRIVMSG`/`NOTICE` between nicks, `QUIT`;
//! numerics 001, 401, 433), a peer that takes DCC SEND and DCC CHAT offers as an IRC client
//! does (connects to the offered address, receives the file with DCC's 4-byte acks, or chats),
//! and the offering client. DCC text is parsed here on its own terms, not with nat-core's
//! helper (the code under test).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::wan::{blob_bytes, sha256_hex};

/// The server's name in prefixes.
const SERVER_NAME: &str = "irc.test";
/// Longest line the server or a client accepts (RFC 2812 §2.3 says 512; some slack).
const MAX_LINE: u64 = 4096;

type Clients = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<String>>>>;

/// Read one line (without CR LF); None at end of stream. Lines are bounded by [`MAX_LINE`].
async fn read_line(r: &mut BufReader<OwnedReadHalf>) -> Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *r).take(MAX_LINE).read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        bail!("line over {MAX_LINE} bytes or cut short");
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// A parsed IRC message: optional prefix, command, parameters (the trailing one included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `nick!user@host` or a server name.
    pub prefix: Option<String>,
    /// Command or numeric.
    pub command: String,
    /// Parameters, the `:trailing` one last.
    pub params: Vec<String>,
}

impl Message {
    /// Parse one line (RFC 2812 §2.3.1).
    pub fn parse(line: &str) -> Option<Message> {
        let mut rest = line;
        let prefix = if let Some(r) = rest.strip_prefix(':') {
            let (p, r) = r.split_once(' ')?;
            rest = r;
            Some(p.to_string())
        } else {
            None
        };
        let (head, trailing) = match rest.split_once(" :") {
            Some((h, t)) => (h, Some(t)),
            None => (rest, None),
        };
        let mut words = head.split(' ').filter(|w| !w.is_empty());
        let command = words.next()?.to_ascii_uppercase();
        let mut params: Vec<String> = words.map(str::to_string).collect();
        if let Some(t) = trailing {
            params.push(t.to_string());
        }
        Some(Message {
            prefix,
            command,
            params,
        })
    }

    /// The nick of a `nick!user@host` prefix.
    pub fn nick(&self) -> Option<&str> {
        self.prefix
            .as_deref()
            .map(|p| p.split('!').next().unwrap_or(p))
    }
}

/// Run the IRC server on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> Result<()> {
    let clients: Clients = Arc::default();
    loop {
        let (sock, peer) = listener.accept().await?;
        let clients = clients.clone();
        tokio::spawn(async move {
            if let Err(e) = session(sock, peer, clients).await {
                eprintln!("irc server: {peer}: {e:#}");
            }
        });
    }
}

async fn session(sock: TcpStream, peer: SocketAddr, clients: Clients) -> Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    // Writer: everything for this client goes through its channel.
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if w.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut nick: Option<String> = None;
    let mut user: Option<String> = None;
    let mut registered = false;
    let result = async {
        while let Some(line) = read_line(&mut r).await? {
            let Some(m) = Message::parse(&line) else {
                continue;
            };
            let me = nick.clone().unwrap_or_else(|| "*".into());
            match m.command.as_str() {
                "NICK" => {
                    let Some(n) = m.params.first() else { continue };
                    let mut map = clients.lock().map_err(|_| anyhow!("lock"))?;
                    if map.contains_key(n) {
                        let _ = tx.send(format!(
                            ":{SERVER_NAME} 433 {me} {n} :Nickname is already in use\r\n"
                        ));
                        continue;
                    }
                    if let Some(old) = nick.take() {
                        map.remove(&old);
                    }
                    map.insert(n.clone(), tx.clone());
                    nick = Some(n.clone());
                }
                "USER" => user = m.params.first().cloned(),
                "PING" => {
                    let token = m.params.first().cloned().unwrap_or_default();
                    let _ = tx.send(format!(":{SERVER_NAME} PONG {SERVER_NAME} :{token}\r\n"));
                }
                "PRIVMSG" | "NOTICE" if registered => {
                    let (Some(to), Some(text)) = (m.params.first(), m.params.get(1)) else {
                        continue;
                    };
                    let from = format!("{me}!{}@{}", user.as_deref().unwrap_or("u"), peer.ip());
                    let target = clients
                        .lock()
                        .map_err(|_| anyhow!("lock"))?
                        .get(to)
                        .cloned();
                    match target {
                        Some(t) => {
                            let _ = t.send(format!(":{from} {} {to} :{text}\r\n", m.command));
                        }
                        None => {
                            let _ = tx.send(format!(
                                ":{SERVER_NAME} 401 {me} {to} :No such nick/channel\r\n"
                            ));
                        }
                    }
                }
                "QUIT" => break,
                _ => {}
            }
            if !registered {
                if let (Some(n), Some(u)) = (&nick, &user) {
                    registered = true;
                    let _ = tx.send(format!(
                        ":{SERVER_NAME} 001 {n} :Welcome to the test IRC network {n}!{u}@{}\r\n",
                        peer.ip()
                    ));
                }
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Some(n) = nick {
        if let Ok(mut map) = clients.lock() {
            map.remove(&n);
        }
    }
    drop(tx);
    let _ = writer.await;
    result
}

/// An IRC client connection.
pub struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    /// This end's address of the connection (what a real client puts in its DCC offers).
    pub local: SocketAddr,
}

impl Client {
    /// Connect, register as `nick` and wait for the welcome (001).
    pub async fn connect(server: SocketAddr, nick: &str) -> Result<Client> {
        let sock = TcpStream::connect(server)
            .await
            .with_context(|| format!("connect to IRC server {server}"))?;
        sock.set_nodelay(true)?;
        let local = sock.local_addr()?;
        let (r, w) = sock.into_split();
        let mut c = Client {
            r: BufReader::new(r),
            w,
            local,
        };
        c.send(&format!("NICK {nick}")).await?;
        c.send(&format!("USER {nick} 0 * :{nick} of the DCC test"))
            .await?;
        loop {
            let m = c.next().await?;
            match m.command.as_str() {
                "001" => return Ok(c),
                "433" => bail!("nick {nick} taken"),
                _ => {}
            }
        }
    }

    /// Send one line (CR LF added).
    pub async fn send(&mut self, line: &str) -> Result<()> {
        self.w.write_all(format!("{line}\r\n").as_bytes()).await?;
        Ok(())
    }

    /// Send raw bytes (for segments cut where a test wants them).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.w.write_all(bytes).await?;
        Ok(())
    }

    /// The next message, answering PINGs on the way.
    pub async fn next(&mut self) -> Result<Message> {
        loop {
            let line = read_line(&mut self.r)
                .await?
                .ok_or_else(|| anyhow!("IRC server closed the connection"))?;
            let Some(m) = Message::parse(&line) else {
                continue;
            };
            if m.command == "PING" {
                let token = m.params.first().cloned().unwrap_or_default();
                self.send(&format!("PONG :{token}")).await?;
                continue;
            }
            return Ok(m);
        }
    }

    /// The next PRIVMSG to us: (sender's nick, text).
    pub async fn next_privmsg(&mut self) -> Result<(String, String)> {
        loop {
            let m = self.next().await?;
            if m.command == "401" {
                bail!("server: no such nick: {:?}", m.params);
            }
            if m.command == "PRIVMSG" {
                let from = m.nick().unwrap_or_default().to_string();
                let text = m.params.get(1).cloned().unwrap_or_default();
                return Ok((from, text));
            }
        }
    }
}

/// A DCC offer as the receiving client understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// `DCC SEND <name> <addr> <port> <size>`.
    Send {
        /// File name (quotes removed).
        name: String,
        /// Where to connect.
        addr: SocketAddr,
        /// Bytes to receive.
        size: u64,
    },
    /// `DCC CHAT chat <addr> <port>`.
    Chat {
        /// Where to connect.
        addr: SocketAddr,
    },
}

/// Parse a CTCP DCC offer from a PRIVMSG text. Reads from the right (size, port, address), so a
/// quoted file name with spaces is one name.
pub fn parse_offer(text: &str) -> Option<Offer> {
    let body = text.strip_prefix('\u{1}')?.strip_suffix('\u{1}')?;
    let body = body.strip_prefix("DCC ")?;
    let (kind, rest) = body.split_once(' ')?;
    let endpoint = |a: &str, p: &str| -> Option<SocketAddr> {
        let a: u32 = a.parse().ok()?;
        let p: u16 = p.parse().ok()?;
        Some(SocketAddr::from((Ipv4Addr::from(a), p)))
    };
    match kind {
        "SEND" => {
            let (rest, size) = rest.rsplit_once(' ')?;
            let (rest, port) = rest.rsplit_once(' ')?;
            let (name, addr) = rest.rsplit_once(' ')?;
            Some(Offer::Send {
                name: name.trim_matches('"').to_string(),
                addr: endpoint(addr, port)?,
                size: size.parse().ok()?,
            })
        }
        "CHAT" => {
            let mut w = rest.split(' ');
            let (_chat, a, p) = (w.next()?, w.next()?, w.next()?);
            Some(Offer::Chat {
                addr: endpoint(a, p)?,
            })
        }
        _ => None,
    }
}

/// The peer: registers as `nick`, prints `READY`, then answers every DCC offer it gets as a
/// client would and reports back to the offerer by PRIVMSG: `RECEIVED <name> bytes=<n>
/// sha256=<hex> via=<addr:port>` or `CHATTED via=<addr:port> line=<text>`. `count` offers,
/// then it quits.
pub async fn peer(
    server: SocketAddr,
    nick: &str,
    count: u32,
    per_step: Duration,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<()> {
    let mut c = Client::connect(server, nick).await?;
    println!("READY peer {nick} local={}", c.local);
    if let Some(r) = ready {
        let _ = r.send(());
    }
    let mut done = 0;
    while done < count {
        let (from, text) = c.next_privmsg().await?;
        let Some(offer) = parse_offer(&text) else {
            eprintln!("peer: not a DCC offer from {from}: {text:?}");
            continue;
        };
        let report = match offer {
            Offer::Send { name, addr, size } => {
                let got = tokio::time::timeout(per_step, receive_file(addr, size))
                    .await
                    .map_err(|_| anyhow!("DCC SEND from {addr}: timed out"))??;
                format!(
                    "RECEIVED {name} bytes={} sha256={} via={addr}",
                    got.len(),
                    sha256_hex(&got)
                )
            }
            Offer::Chat { addr } => {
                let line = tokio::time::timeout(per_step, chat_echo(addr))
                    .await
                    .map_err(|_| anyhow!("DCC CHAT with {addr}: timed out"))??;
                format!("CHATTED via={addr} line={line}")
            }
        };
        println!("peer: {report}");
        c.send(&format!("PRIVMSG {from} :{report}")).await?;
        done += 1;
    }
    c.send("QUIT :done").await?;
    Ok(())
}

/// DCC SEND, receiving side: connect, read `size` bytes, acknowledge each chunk with the total
/// so far as a 32-bit big-endian number.
async fn receive_file(addr: SocketAddr, size: u64) -> Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to the DCC SEND offer {addr}"))?;
    let mut got = Vec::with_capacity(size as usize);
    let mut buf = vec![0u8; 16 * 1024];
    while (got.len() as u64) < size {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("DCC SEND closed after {} of {size} bytes", got.len());
        }
        got.extend_from_slice(&buf[..n]);
        s.write_all(&(got.len() as u32).to_be_bytes()).await?;
    }
    Ok(got)
}

/// DCC CHAT, accepting side: connect, read one line, answer `echo: <line>`.
async fn chat_echo(addr: SocketAddr) -> Result<String> {
    let s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to the DCC CHAT offer {addr}"))?;
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let line = read_line(&mut r)
        .await?
        .ok_or_else(|| anyhow!("DCC CHAT closed before a line"))?;
    w.write_all(format!("echo: {line}\n").as_bytes()).await?;
    Ok(line)
}

/// What [`offer`] found.
#[derive(Debug, Clone)]
pub struct OfferReport {
    /// The address the offers named (the client's own).
    pub offered: Ipv4Addr,
    /// Where the peer says it connected for the SEND.
    pub send_via: String,
    /// Where the transfer came from, as the sender's socket saw it.
    pub send_peer: SocketAddr,
    /// SHA-256 of the file, as the peer reported it (checked equal to ours).
    pub sha256: String,
    /// Where the peer says it connected for the CHAT, if one was made.
    pub chat_via: Option<String>,
}

/// How [`offer`] writes its DCC lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One line per write (a real client).
    Lines,
    /// SEND and CHAT offers together in one write (one segment with two offers).
    Together,
    /// The SEND line in two writes 200 ms apart, cut inside the address digits (two segments:
    /// the offer split across them).
    Split,
}

/// The offering client: registers as `nick`, offers `to` a DCC SEND of `bytes` deterministic
/// bytes (`seed`) named `name`, serves it, and checks the peer's report; then, if `chat`, a DCC
/// CHAT with one line each way. Offers name the client's own address, as clients do.
#[allow(clippy::too_many_arguments)]
pub async fn offer(
    server: SocketAddr,
    nick: &str,
    to: &str,
    name: &str,
    bytes: u64,
    seed: u64,
    chat: bool,
    framing: Framing,
) -> Result<OfferReport> {
    let mut c = Client::connect(server, nick).await?;
    let SocketAddr::V4(local) = c.local else {
        bail!("IPv4 only");
    };
    let me = *local.ip();
    let file = blob_bytes(seed, bytes as usize);
    let send_l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    let chat_l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    let quoted = if name.contains(' ') {
        format!("\"{name}\"")
    } else {
        name.to_string()
    };
    let send_line = format!(
        "PRIVMSG {to} :\u{1}DCC SEND {quoted} {} {} {bytes}\u{1}\r\n",
        u32::from(me),
        send_l.local_addr()?.port()
    );
    let chat_line = format!(
        "PRIVMSG {to} :\u{1}DCC CHAT chat {} {}\u{1}\r\n",
        u32::from(me),
        chat_l.local_addr()?.port()
    );
    match framing {
        Framing::Lines => c.send_raw(send_line.as_bytes()).await?,
        Framing::Together if chat => {
            c.send_raw(format!("{send_line}{chat_line}").as_bytes())
                .await?
        }
        Framing::Together => bail!("--together needs --chat"),
        Framing::Split => {
            let at = send_line
                .find(&u32::from(me).to_string())
                .ok_or_else(|| anyhow!("no address in the line"))?
                + 3;
            c.send_raw(&send_line.as_bytes()[..at]).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.send_raw(&send_line.as_bytes()[at..]).await?;
        }
    }
    // Serve the file, reading the receiver's acks until it has everything.
    let (mut s, send_peer) = send_l.accept().await?;
    let (mut r, mut w) = s.split();
    let serve = async {
        w.write_all(&file).await?;
        Ok::<(), anyhow::Error>(())
    };
    let acks = async {
        let mut ack = [0u8; 4];
        loop {
            r.read_exact(&mut ack).await?;
            if u64::from(u32::from_be_bytes(ack)) == bytes {
                return Ok::<(), anyhow::Error>(());
            }
        }
    };
    tokio::try_join!(serve, acks)?;
    drop(s);
    let mut report = OfferReport {
        offered: me,
        send_via: String::new(),
        send_peer,
        sha256: String::new(),
        chat_via: None,
    };
    let (from, text) = c.next_privmsg().await?;
    let want = format!(
        "RECEIVED {name} bytes={bytes} sha256={} via=",
        sha256_hex(&file)
    );
    let via = text
        .strip_prefix(&want)
        .ok_or_else(|| anyhow!("{from} reported {text:?}, expected {want}…"))?;
    report.send_via = via.to_string();
    report.sha256 = sha256_hex(&file);
    if chat {
        if framing != Framing::Together {
            c.send_raw(chat_line.as_bytes()).await?;
        }
        let (s, _) = chat_l.accept().await?;
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"hello over DCC CHAT\n").await?;
        let echo = read_line(&mut r)
            .await?
            .ok_or_else(|| anyhow!("DCC CHAT closed before the echo"))?;
        if echo != "echo: hello over DCC CHAT" {
            bail!("DCC CHAT echo {echo:?}");
        }
        let (from, text) = c.next_privmsg().await?;
        let via = text
            .strip_prefix("CHATTED via=")
            .and_then(|t| t.strip_suffix(" line=hello over DCC CHAT"))
            .ok_or_else(|| anyhow!("{from} reported {text:?} for the chat"))?;
        report.chat_via = Some(via.to_string());
    }
    c.send("QUIT :bye").await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_offers_parse() {
        let m = Message::parse(":alice!a@10.0.0.1 PRIVMSG bob :hello there").expect("msg");
        assert_eq!(m.nick(), Some("alice"));
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["bob", "hello there"]);
        assert_eq!(
            parse_offer("\u{1}DCC SEND \"a b.txt\" 3232235786 5000 12\u{1}"),
            Some(Offer::Send {
                name: "a b.txt".into(),
                addr: "192.168.1.10:5000".parse().expect("addr"),
                size: 12
            })
        );
        assert_eq!(
            parse_offer("\u{1}DCC CHAT chat 16777217 61000\u{1}"),
            Some(Offer::Chat {
                addr: "1.0.0.1:61000".parse().expect("addr")
            })
        );
        assert_eq!(parse_offer("DCC SEND f 1 2 3"), None);
    }

    /// The whole fixture on loopback, without NAT: the offer names 127.0.0.1 and the peer
    /// connects there.
    #[tokio::test]
    async fn send_and_chat_on_loopback() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = l.local_addr().expect("addr");
        let srv = tokio::spawn(serve(l));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let p = tokio::spawn(peer(server, "bob", 2, Duration::from_secs(20), Some(tx)));
        tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .expect("bob registered in time")
            .expect("bob registered");
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            offer(
                server,
                "alice",
                "bob",
                "two words.bin",
                100_000,
                7,
                true,
                Framing::Lines,
            ),
        )
        .await
        .expect("in time")
        .expect("offer");
        assert_eq!(r.offered, Ipv4Addr::LOCALHOST);
        assert!(r.send_via.starts_with("127.0.0.1:"), "{r:?}");
        assert!(r.chat_via.is_some_and(|v| v.starts_with("127.0.0.1:")));
        p.await.expect("join").expect("peer");
        srv.abort();
    }
}
