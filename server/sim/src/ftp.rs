//! A small FTP server and client for the end-to-end tests (RFC 959, EPSV/EPRT of RFC 2428): the pure
//! command/reply parsers and formatters, a server session serving the virtual file `blob.bin` and
//! in-memory uploads, and a client that checks transfers. It owns no listener loop (see `wan`) and never
//! touches the filesystem.
//!
//! The server refuses a `PORT`/`EPRT` whose address is not the control connection's peer (like vsftpd),
//! so an FTP helper on the gateway that forgets to rewrite the LAN address makes active mode fail loudly.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

use crate::blob::Blob;

/// Name of the virtual file the server always offers.
pub const BLOB_FILE: &str = "blob.bin";
/// Longest control line accepted (RFC 959 sets no limit; 512 is far above any real command).
const MAX_LINE: u64 = 512;

/// Errors of parsing FTP commands, arguments and replies (untrusted text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line is empty or has no verb.
    #[error("empty command")]
    Empty,
    /// A required argument is missing.
    #[error("{0} needs an argument")]
    MissingArgument(&'static str),
    /// A `PORT` argument or 227 reply is not six comma-separated numbers 0..=255.
    #[error("bad host-port (want h1,h2,h3,h4,p1,p2)")]
    BadHostPort,
    /// An `EPRT` argument or 229 reply does not follow RFC 2428's delimited format.
    #[error("bad extended address")]
    BadExtended,
    /// A reply line does not start with a three-digit code.
    #[error("bad reply line")]
    BadReply,
}

/// A parsed FTP command (the subset the tests use; others are [`Command::Other`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`.
    User(String),
    /// `PASS secret`.
    Pass(String),
    /// `SYST`.
    Syst,
    /// `FEAT`.
    Feat,
    /// `TYPE A|I` (the first letter of the argument, upper-cased).
    Type(char),
    /// `PWD`.
    Pwd,
    /// `CWD dir`.
    Cwd(String),
    /// `PASV`.
    Pasv,
    /// `EPSV [proto|ALL]`.
    Epsv(Option<String>),
    /// `PORT h1,h2,h3,h4,p1,p2`.
    Port(SocketAddrV4),
    /// `EPRT |af|addr|port|`.
    Eprt(SocketAddr),
    /// `RETR name`.
    Retr(String),
    /// `STOR name`.
    Stor(String),
    /// `SIZE name`.
    Size(String),
    /// `LIST [path]`.
    List(Option<String>),
    /// `NLST [path]`.
    Nlst(Option<String>),
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// Any other verb (upper-cased).
    Other(String),
}

/// Parses one control line (CR/LF optional). Verbs are case-insensitive (RFC 959 §5.3).
pub fn parse_command(line: &str) -> Result<Command, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (verb, arg) = match line.split_once(' ') {
        Some((v, a)) => (v, Some(a.trim())),
        None => (line, None),
    };
    if verb.is_empty() {
        return Err(ParseError::Empty);
    }
    let verb = verb.to_ascii_uppercase();
    let arg = arg.filter(|a| !a.is_empty());
    let need = |name: &'static str| {
        arg.map(str::to_owned)
            .ok_or(ParseError::MissingArgument(name))
    };
    Ok(match verb.as_str() {
        "USER" => Command::User(need("USER")?),
        "PASS" => Command::Pass(arg.unwrap_or("").to_owned()),
        "SYST" => Command::Syst,
        "FEAT" => Command::Feat,
        "TYPE" => Command::Type(
            need("TYPE")?
                .chars()
                .next()
                .map(|c| c.to_ascii_uppercase())
                .ok_or(ParseError::MissingArgument("TYPE"))?,
        ),
        "PWD" | "XPWD" => Command::Pwd,
        "CWD" => Command::Cwd(need("CWD")?),
        "PASV" => Command::Pasv,
        "EPSV" => Command::Epsv(arg.map(str::to_owned)),
        "PORT" => Command::Port(parse_host_port(&need("PORT")?)?),
        "EPRT" => Command::Eprt(parse_eprt(&need("EPRT")?)?),
        "RETR" => Command::Retr(need("RETR")?),
        "STOR" => Command::Stor(need("STOR")?),
        "SIZE" => Command::Size(need("SIZE")?),
        "LIST" => Command::List(arg.map(str::to_owned)),
        "NLST" => Command::Nlst(arg.map(str::to_owned)),
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        _ => Command::Other(verb),
    })
}

/// Parses `h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2 PORT: "the 32-bit internet host address and a 16-bit TCP
/// port address … broken into 8-bit fields and the value of each field is transmitted as a decimal number").
pub fn parse_host_port(s: &str) -> Result<SocketAddrV4, ParseError> {
    let mut n = [0u8; 6];
    let mut fields = s.trim().split(',');
    for slot in &mut n {
        let f = fields.next().ok_or(ParseError::BadHostPort)?.trim();
        if f.is_empty() || f.len() > 3 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadHostPort);
        }
        *slot = f.parse().map_err(|_| ParseError::BadHostPort)?;
    }
    if fields.next().is_some() {
        return Err(ParseError::BadHostPort);
    }
    Ok(SocketAddrV4::new(
        Ipv4Addr::new(n[0], n[1], n[2], n[3]),
        u16::from_be_bytes([n[4], n[5]]),
    ))
}

/// Formats the `h1,h2,h3,h4,p1,p2` argument of PORT and of the 227 reply.
pub fn format_host_port(a: SocketAddrV4) -> String {
    let [h1, h2, h3, h4] = a.ip().octets();
    let [p1, p2] = a.port().to_be_bytes();
    format!("{h1},{h2},{h3},{h4},{p1},{p2}")
}

/// Parses an EPRT argument `<d>af<d>addr<d>port<d>` (RFC 2428 §2: "The EPRT command keyword MUST be
/// followed by a single space … the delimiter character MUST be one of the ASCII characters in range 33-126";
/// af 1 = IPv4, 2 = IPv6).
pub fn parse_eprt(s: &str) -> Result<SocketAddr, ParseError> {
    let s = s.trim();
    let d = s.chars().next().ok_or(ParseError::BadExtended)?;
    if !(33..=126).contains(&(d as u32)) {
        return Err(ParseError::BadExtended);
    }
    let parts: Vec<&str> = s.split(d).collect();
    // "", af, addr, port, "" (the string starts and ends with the delimiter).
    let [first, af, addr, port, last] = parts[..] else {
        return Err(ParseError::BadExtended);
    };
    if !first.is_empty() || !last.is_empty() {
        return Err(ParseError::BadExtended);
    }
    let ip: IpAddr = match af {
        "1" => IpAddr::V4(addr.parse().map_err(|_| ParseError::BadExtended)?),
        "2" => IpAddr::V6(addr.parse().map_err(|_| ParseError::BadExtended)?),
        _ => return Err(ParseError::BadExtended),
    };
    let port: u16 = port.parse().map_err(|_| ParseError::BadExtended)?;
    Ok(SocketAddr::new(ip, port))
}

/// Formats an EPRT argument `|1|addr|port|` (or `|2|…` for IPv6).
pub fn format_eprt(a: SocketAddr) -> String {
    let af = if a.is_ipv4() { 1 } else { 2 };
    format!("|{af}|{}|{}|", a.ip(), a.port())
}

/// Extracts the address from a 227 reply text. RFC 1123 §4.1.2.6: "The User-FTP program must scan the
/// reply for the first digit of the host and port numbers", since servers format the text differently.
pub fn parse_227(text: &str) -> Result<SocketAddrV4, ParseError> {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .ok_or(ParseError::BadHostPort)?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == ' '))
        .unwrap_or(rest.len());
    parse_host_port(rest[..end].trim_end())
}

/// Extracts the port from a 229 reply text `… (<d><d><d>port<d>)` (RFC 2428 §3: "The text returned in
/// response to the EPSV command MUST be: `<text indicating server is entering extended passive mode>
/// (<d><d><d><tcp-port><d>)`").
pub fn parse_229(text: &str) -> Result<u16, ParseError> {
    let open = text.find('(').ok_or(ParseError::BadExtended)?;
    let inner = &text[open + 1..];
    let close = inner.find(')').ok_or(ParseError::BadExtended)?;
    let inner = &inner[..close];
    let d = inner.chars().next().ok_or(ParseError::BadExtended)?;
    let parts: Vec<&str> = inner.split(d).collect();
    let ["", "", "", port, ""] = parts[..] else {
        return Err(ParseError::BadExtended);
    };
    port.parse().map_err(|_| ParseError::BadExtended)
}

/// One line of a reply: its code, whether it ends the reply, and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    /// The three-digit code.
    pub code: u16,
    /// True for `ddd text` (the last line), false for `ddd-text` (a multi-line reply's first line).
    pub last: bool,
    /// The text after the code and separator.
    pub text: &'a str,
}

/// Parses one reply line. RFC 959 §4.2: a multi-line reply starts with "the reply code followed
/// immediately by a hyphen" and ends with "the same code, followed immediately by Space"; lines in
/// between may be anything, so the caller treats unparseable inner lines as text.
pub fn parse_reply_line(line: &str) -> Result<ReplyLine<'_>, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || !(b'1'..=b'5').contains(&b[0]) {
        return Err(ParseError::BadReply);
    }
    let code = line[..3].parse().map_err(|_| ParseError::BadReply)?;
    let (last, text) = match b.get(3) {
        None => (true, ""),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(ParseError::BadReply),
    };
    Ok(ReplyLine { code, last, text })
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of all lines, joined by `\n`.
    pub text: String,
}

/// Errors of the FTP client and server sessions.
#[derive(Debug, thiserror::Error)]
pub enum FtpError {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// An operation took longer than the timeout.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The peer closed the control connection.
    #[error("control connection closed")]
    Closed,
    /// Bad text from the peer.
    #[error("protocol: {0}")]
    Parse(#[from] ParseError),
    /// A transfer was larger than the caller allowed.
    #[error("transfer larger than {0} bytes")]
    TooLarge(u64),
    /// The server answered with an unexpected code.
    #[error("{cmd}: expected {expected}, got {code} {text}")]
    Unexpected {
        /// The command sent.
        cmd: String,
        /// The codes accepted.
        expected: &'static str,
        /// The code received.
        code: u16,
        /// Its text.
        text: String,
    },
}

/// Runs `fut` with a timeout, mapping both failures into [`FtpError`].
async fn timed<T>(
    t: Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, FtpError> {
    match timeout(t, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(FtpError::Io { what, source }),
        Err(_) => Err(FtpError::Timeout(what)),
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at EOF.
async fn read_line<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    t: Duration,
) -> Result<Option<String>, FtpError> {
    let mut buf = Vec::new();
    let n = timed(
        t,
        "read control line",
        (&mut *r).take(MAX_LINE).read_until(b'\n', &mut buf),
    )
    .await?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
    ))
}

/// Server-side settings shared by all sessions.
#[derive(Debug)]
pub struct FtpServerConfig {
    /// Seed of `blob.bin`'s content.
    pub seed: u64,
    /// Size of `blob.bin`.
    pub blob_size: u64,
    /// Idle timeout of every control and data operation.
    pub io_timeout: Duration,
    /// Largest upload kept (bigger ones get 552).
    pub max_upload: u64,
    /// Uploaded files by name, shared by all sessions (served back by RETR/SIZE/LIST).
    pub uploads: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl FtpServerConfig {
    /// Locks the uploads; a poisoned lock only means a session panicked mid-insert, the map is still usable.
    fn uploads(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The size of `name` if it exists.
    fn size_of(&self, name: &str) -> Option<u64> {
        let name = name.trim_start_matches('/');
        if name == BLOB_FILE {
            return Some(self.blob_size);
        }
        self.uploads().get(name).map(|v| v.len() as u64)
    }
}

/// How the next data connection is made.
enum DataSetup {
    None,
    Passive(TcpListener),
    Active(SocketAddr),
}

/// One server control connection, until QUIT, EOF, or the idle timeout.
pub async fn serve_session(stream: TcpStream, peer: SocketAddr, cfg: Arc<FtpServerConfig>) {
    if let Err(e) = session(stream, peer, &cfg).await {
        tracing::debug!(%peer, "ftp session ended: {e}");
    }
}

async fn send(w: &mut OwnedWriteHalf, t: Duration, line: &str) -> Result<(), FtpError> {
    tracing::trace!("ftp> {line}");
    timed(
        t,
        "write reply",
        w.write_all(format!("{line}\r\n").as_bytes()),
    )
    .await
}

async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    cfg: &FtpServerConfig,
) -> Result<(), FtpError> {
    let t = cfg.io_timeout;
    let local = stream.local_addr().map_err(|source| FtpError::Io {
        what: "local address",
        source,
    })?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    send(&mut w, t, "220 masqdial test FTP server ready").await?;
    let mut user_ok = false;
    let mut logged_in = false;
    let mut data = DataSetup::None;
    loop {
        let Some(line) = read_line(&mut r, t).await? else {
            return Ok(());
        };
        let cmd = match parse_command(&line) {
            Ok(c) => c,
            Err(ParseError::BadHostPort | ParseError::BadExtended) => {
                send(&mut w, t, "501 Syntax error in parameters or arguments.").await?;
                continue;
            }
            Err(e) => {
                send(&mut w, t, &format!("500 {e}")).await?;
                continue;
            }
        };
        // The password is never logged.
        if !matches!(cmd, Command::Pass(_)) {
            tracing::debug!(%peer, "ftp< {line}");
        }
        let allowed_before_login = matches!(
            cmd,
            Command::User(_)
                | Command::Pass(_)
                | Command::Quit
                | Command::Syst
                | Command::Feat
                | Command::Noop
        );
        if !logged_in && !allowed_before_login {
            send(&mut w, t, "530 Please login with USER and PASS.").await?;
            continue;
        }
        match cmd {
            Command::User(_) => {
                user_ok = true;
                send(&mut w, t, "331 Please specify the password.").await?;
            }
            Command::Pass(_) if user_ok => {
                logged_in = true;
                send(&mut w, t, "230 Login successful.").await?;
            }
            Command::Pass(_) => send(&mut w, t, "503 Login with USER first.").await?,
            Command::Syst => send(&mut w, t, "215 UNIX Type: L8").await?,
            Command::Feat => {
                send(&mut w, t, "211-Features:").await?;
                for f in [" EPRT", " EPSV", " PASV", " SIZE"] {
                    send(&mut w, t, f).await?;
                }
                send(&mut w, t, "211 End").await?;
            }
            Command::Type('I') => send(&mut w, t, "200 Switching to Binary mode.").await?,
            Command::Type('A') => send(&mut w, t, "200 Switching to ASCII mode.").await?,
            Command::Type(_) => {
                send(&mut w, t, "504 Command not implemented for that parameter.").await?
            }
            Command::Pwd => send(&mut w, t, "257 \"/\" is the current directory").await?,
            Command::Cwd(d) if matches!(d.as_str(), "/" | "." | "~") => {
                send(&mut w, t, "250 Directory successfully changed.").await?
            }
            Command::Cwd(_) => send(&mut w, t, "550 Failed to change directory.").await?,
            Command::Pasv => match (
                local,
                TcpListener::bind(SocketAddr::new(local.ip(), 0)).await,
            ) {
                (SocketAddr::V4(l4), Ok(l)) => {
                    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                    data = DataSetup::Passive(l);
                    let hp = format_host_port(SocketAddrV4::new(*l4.ip(), port));
                    send(&mut w, t, &format!("227 Entering Passive Mode ({hp}).")).await?;
                }
                _ => send(&mut w, t, "425 Cannot open passive connection.").await?,
            },
            Command::Epsv(Some(a)) if a.eq_ignore_ascii_case("ALL") => {
                send(&mut w, t, "200 EPSV ALL ok.").await?
            }
            Command::Epsv(_) => match TcpListener::bind(SocketAddr::new(local.ip(), 0)).await {
                Ok(l) => {
                    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                    data = DataSetup::Passive(l);
                    send(
                        &mut w,
                        t,
                        &format!("229 Entering Extended Passive Mode (|||{port}|)"),
                    )
                    .await?;
                }
                Err(_) => send(&mut w, t, "425 Cannot open passive connection.").await?,
            },
            Command::Port(a) => {
                let a = SocketAddr::V4(a);
                if a.ip() != peer.ip() || a.port() == 0 {
                    // Like vsftpd: no data connections to a third host (FTP bounce, RFC 2577).
                    send(&mut w, t, "500 Illegal PORT command.").await?;
                } else {
                    data = DataSetup::Active(a);
                    send(
                        &mut w,
                        t,
                        "200 PORT command successful. Consider using PASV.",
                    )
                    .await?;
                }
            }
            Command::Eprt(a) => {
                if a.ip() != peer.ip() || a.port() == 0 {
                    send(&mut w, t, "500 Illegal EPRT command.").await?;
                } else {
                    data = DataSetup::Active(a);
                    send(
                        &mut w,
                        t,
                        "200 EPRT command successful. Consider using EPSV.",
                    )
                    .await?;
                }
            }
            Command::Size(name) => match cfg.size_of(&name) {
                Some(n) => send(&mut w, t, &format!("213 {n}")).await?,
                None => send(&mut w, t, "550 Could not get file size.").await?,
            },
            Command::Retr(name) => {
                let name = name.trim_start_matches('/').to_owned();
                let upload = cfg.uploads().get(&name).cloned();
                let content: Option<Vec<u8>> = if name == BLOB_FILE {
                    None
                } else if upload.is_some() {
                    upload
                } else {
                    send(&mut w, t, "550 Failed to open file.").await?;
                    continue;
                };
                let Some(mut conn) = open_data(&mut data, local, t).await else {
                    send(
                        &mut w,
                        t,
                        "425 Use PORT or PASV first / cannot open data connection.",
                    )
                    .await?;
                    continue;
                };
                let size = content.as_ref().map_or(cfg.blob_size, |c| c.len() as u64);
                send(
                    &mut w,
                    t,
                    &format!("150 Opening BINARY mode data connection for {name} ({size} bytes)."),
                )
                .await?;
                let sent = match content {
                    Some(c) => timed(t, "send file", conn.write_all(&c)).await,
                    None => send_blob(&mut conn, cfg.seed, cfg.blob_size, t).await,
                };
                let sent = match sent {
                    Ok(()) => timed(t, "close data", conn.shutdown()).await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(()) => send(&mut w, t, "226 Transfer complete.").await?,
                    Err(_) => send(&mut w, t, "426 Failure writing network stream.").await?,
                }
            }
            Command::Stor(name) => {
                let name = name.trim_start_matches('/').to_owned();
                if name == BLOB_FILE || name.is_empty() || name.contains('/') {
                    send(&mut w, t, "553 Could not create file.").await?;
                    continue;
                }
                let Some(mut conn) = open_data(&mut data, local, t).await else {
                    send(
                        &mut w,
                        t,
                        "425 Use PORT or PASV first / cannot open data connection.",
                    )
                    .await?;
                    continue;
                };
                send(&mut w, t, "150 Ok to send data.").await?;
                match recv_all(&mut conn, cfg.max_upload, t).await {
                    Ok(Some(v)) => {
                        cfg.uploads().insert(name, v);
                        send(&mut w, t, "226 Transfer complete.").await?;
                    }
                    Ok(None) => send(&mut w, t, "552 Exceeded storage allocation.").await?,
                    Err(_) => send(&mut w, t, "426 Failure reading network stream.").await?,
                }
            }
            Command::List(_) | Command::Nlst(_) => {
                let long = matches!(cmd, Command::List(_));
                let mut files = vec![(BLOB_FILE.to_owned(), cfg.blob_size)];
                files.extend(
                    cfg.uploads()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.len() as u64)),
                );
                files.sort();
                let mut text = String::new();
                for (name, size) in files {
                    if long {
                        text.push_str(&format!(
                            "-rw-r--r--    1 ftp      ftp      {size:>10} Jan 01 00:00 {name}\r\n"
                        ));
                    } else {
                        text.push_str(&format!("{name}\r\n"));
                    }
                }
                let Some(mut conn) = open_data(&mut data, local, t).await else {
                    send(
                        &mut w,
                        t,
                        "425 Use PORT or PASV first / cannot open data connection.",
                    )
                    .await?;
                    continue;
                };
                send(&mut w, t, "150 Here comes the directory listing.").await?;
                let sent = timed(t, "send listing", conn.write_all(text.as_bytes())).await;
                let _ = timed(t, "close data", conn.shutdown()).await;
                match sent {
                    Ok(()) => send(&mut w, t, "226 Directory send OK.").await?,
                    Err(_) => send(&mut w, t, "426 Failure writing network stream.").await?,
                }
            }
            Command::Noop => send(&mut w, t, "200 NOOP ok.").await?,
            Command::Quit => {
                send(&mut w, t, "221 Goodbye.").await?;
                return Ok(());
            }
            Command::Other(_) => send(&mut w, t, "502 Command not implemented.").await?,
        }
    }
}

/// Opens the data connection prepared by PASV/EPSV (accept) or PORT/EPRT (connect, from port 20 when it
/// can be bound — RFC 959 §3.2: the server's default data port is L-1 = 20 — else from an ephemeral port).
/// The setup is used once.
async fn open_data(data: &mut DataSetup, local: SocketAddr, t: Duration) -> Option<TcpStream> {
    match std::mem::replace(data, DataSetup::None) {
        DataSetup::None => None,
        DataSetup::Passive(l) => timed(t, "accept data", l.accept())
            .await
            .ok()
            .map(|(s, _)| s),
        DataSetup::Active(to) => {
            let socket = |port| -> std::io::Result<TcpSocket> {
                let s = if local.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                s.set_reuseaddr(true)?;
                s.bind(SocketAddr::new(local.ip(), port))?;
                Ok(s)
            };
            let s = match socket(20) {
                Ok(s) => s,
                Err(_) => socket(0).ok()?,
            };
            timed(t, "connect data", s.connect(to)).await.ok()
        }
    }
}

/// Sends `size` bytes of the blob stream.
async fn send_blob(
    conn: &mut TcpStream,
    seed: u64,
    size: u64,
    t: Duration,
) -> Result<(), FtpError> {
    let mut gen = Blob::new(seed);
    let mut buf = vec![0u8; 16 * 1024];
    let mut left = size;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        gen.fill(&mut buf[..k]);
        timed(t, "send blob", conn.write_all(&buf[..k])).await?;
        left -= k as u64;
    }
    Ok(())
}

/// Reads a data connection to EOF; `None` when it exceeds `max` bytes.
async fn recv_all(
    conn: &mut TcpStream,
    max: u64,
    t: Duration,
) -> Result<Option<Vec<u8>>, FtpError> {
    let mut v = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = timed(t, "receive data", conn.read(&mut buf)).await?;
        if n == 0 {
            return Ok(Some(v));
        }
        if (v.len() + n) as u64 > max {
            return Ok(None);
        }
        v.extend_from_slice(&buf[..n]);
    }
}

/// How the client opens data connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// `PASV` (227 reply).
    Passive,
    /// `EPSV` (229 reply).
    ExtendedPassive,
    /// `PORT` with the client's own address.
    Active,
    /// `EPRT` with the client's own address.
    ExtendedActive,
}

/// The data connection being prepared by the client.
enum ClientData {
    Connected(TcpStream),
    Listening(TcpListener),
}

/// A logged-in FTP client session.
pub struct FtpClient {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    local: SocketAddr,
    peer: SocketAddr,
    t: Duration,
    data_peer: Option<SocketAddr>,
}

impl std::fmt::Debug for FtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FtpClient({} -> {})", self.local, self.peer)
    }
}

impl FtpClient {
    /// Connects to `addr`, reads the 220 greeting and logs in (`anonymous` / `test@`).
    pub async fn connect(addr: SocketAddr, t: Duration) -> Result<FtpClient, FtpError> {
        let s = timed(t, "connect control", TcpStream::connect(addr)).await?;
        let local = s.local_addr().map_err(|source| FtpError::Io {
            what: "local address",
            source,
        })?;
        let (r, w) = s.into_split();
        let mut c = FtpClient {
            r: BufReader::new(r),
            w,
            local,
            peer: addr,
            t,
            data_peer: None,
        };
        c.expect("greeting", "220", |c| c == 220).await?;
        c.command_expect("USER anonymous", "331/230", |c| c == 331 || c == 230)
            .await
            .map(drop)?;
        c.command_expect("PASS test@", "230", |c| c == 230).await?;
        c.command_expect("TYPE I", "200", |c| c == 200).await?;
        Ok(c)
    }

    /// The control connection's local address (the LAN host's address, before NAT).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Reads one complete (possibly multi-line) reply.
    pub async fn read_reply(&mut self) -> Result<Reply, FtpError> {
        let first = read_line(&mut self.r, self.t)
            .await?
            .ok_or(FtpError::Closed)?;
        let l = parse_reply_line(&first)?;
        let code = l.code;
        let mut text = l.text.to_owned();
        if !l.last {
            // Bounded: every line needs a read, and each read has the idle timeout; cap the count too.
            for _ in 0..1000 {
                let line = read_line(&mut self.r, self.t)
                    .await?
                    .ok_or(FtpError::Closed)?;
                text.push('\n');
                match parse_reply_line(&line) {
                    Ok(l) if l.code == code && l.last => {
                        text.push_str(l.text);
                        return Ok(Reply { code, text });
                    }
                    _ => text.push_str(&line),
                }
            }
            return Err(FtpError::Parse(ParseError::BadReply));
        }
        Ok(Reply { code, text })
    }

    async fn expect(
        &mut self,
        cmd: &str,
        expected: &'static str,
        ok: impl Fn(u16) -> bool,
    ) -> Result<Reply, FtpError> {
        let reply = self.read_reply().await?;
        if ok(reply.code) {
            Ok(reply)
        } else {
            Err(FtpError::Unexpected {
                cmd: cmd.to_owned(),
                expected,
                code: reply.code,
                text: reply.text,
            })
        }
    }

    /// Sends one command line and reads its reply, whatever the code.
    pub async fn command(&mut self, line: &str) -> Result<Reply, FtpError> {
        timed(
            self.t,
            "write command",
            self.w.write_all(format!("{line}\r\n").as_bytes()),
        )
        .await?;
        self.read_reply().await
    }

    async fn command_expect(
        &mut self,
        line: &str,
        expected: &'static str,
        ok: impl Fn(u16) -> bool,
    ) -> Result<Reply, FtpError> {
        timed(
            self.t,
            "write command",
            self.w.write_all(format!("{line}\r\n").as_bytes()),
        )
        .await?;
        let shown = if line.starts_with("PASS ") {
            "PASS ****"
        } else {
            line
        };
        self.expect(shown, expected, ok).await
    }

    /// `SIZE name`.
    pub async fn size(&mut self, name: &str) -> Result<u64, FtpError> {
        let r = self
            .command_expect(&format!("SIZE {name}"), "213", |c| c == 213)
            .await?;
        r.text.trim().parse().map_err(|_| FtpError::Unexpected {
            cmd: format!("SIZE {name}"),
            expected: "213 <size>",
            code: r.code,
            text: r.text.clone(),
        })
    }

    /// Prepares a data connection in `mode` (PASV/EPSV connect now; PORT/EPRT listen on our own address).
    async fn prepare(&mut self, mode: DataMode) -> Result<ClientData, FtpError> {
        let t = self.t;
        match mode {
            DataMode::Passive => {
                let r = self.command_expect("PASV", "227", |c| c == 227).await?;
                let to = SocketAddr::V4(parse_227(&r.text)?);
                Ok(ClientData::Connected(
                    timed(t, "connect data (PASV)", TcpStream::connect(to)).await?,
                ))
            }
            DataMode::ExtendedPassive => {
                let r = self.command_expect("EPSV", "229", |c| c == 229).await?;
                let to = SocketAddr::new(self.peer.ip(), parse_229(&r.text)?);
                Ok(ClientData::Connected(
                    timed(t, "connect data (EPSV)", TcpStream::connect(to)).await?,
                ))
            }
            DataMode::Active | DataMode::ExtendedActive => {
                let l = TcpListener::bind(SocketAddr::new(self.local.ip(), 0))
                    .await
                    .map_err(|source| FtpError::Io {
                        what: "listen for data",
                        source,
                    })?;
                let at = l.local_addr().map_err(|source| FtpError::Io {
                    what: "listen address",
                    source,
                })?;
                let line = match (mode, at) {
                    (DataMode::Active, SocketAddr::V4(a4)) => {
                        format!("PORT {}", format_host_port(a4))
                    }
                    _ => format!("EPRT {}", format_eprt(at)),
                };
                self.command_expect(&line, "200", |c| c == 200).await?;
                Ok(ClientData::Listening(l))
            }
        }
    }

    /// Sends `cmd` (RETR/STOR/LIST…) after `prepare`, expects 150/125, returns the data connection.
    async fn open(&mut self, data: ClientData, cmd: &str) -> Result<TcpStream, FtpError> {
        self.command_expect(cmd, "150/125", |c| c == 150 || c == 125)
            .await?;
        let s = match data {
            ClientData::Connected(s) => s,
            ClientData::Listening(l) => timed(self.t, "accept data (active)", l.accept()).await?.0,
        };
        self.data_peer = s.peer_addr().ok();
        Ok(s)
    }

    /// The server-side address of the last data connection (in active mode, where the server connected
    /// from: port 20 when it could bind it).
    pub fn last_data_peer(&self) -> Option<SocketAddr> {
        self.data_peer
    }

    /// Downloads `name` in `mode`; checks the 226 that ends the transfer.
    pub async fn retr(
        &mut self,
        name: &str,
        mode: DataMode,
        max: u64,
    ) -> Result<Vec<u8>, FtpError> {
        let data = self.prepare(mode).await?;
        let mut conn = self.open(data, &format!("RETR {name}")).await?;
        let v = recv_all(&mut conn, max, self.t).await?;
        drop(conn);
        self.expect("RETR (completion)", "226/250", |c| c == 226 || c == 250)
            .await?;
        v.ok_or(FtpError::TooLarge(max))
    }

    /// Uploads `content` as `name` in `mode`; checks the 226 that ends the transfer.
    pub async fn stor(
        &mut self,
        name: &str,
        content: &[u8],
        mode: DataMode,
    ) -> Result<(), FtpError> {
        let data = self.prepare(mode).await?;
        let mut conn = self.open(data, &format!("STOR {name}")).await?;
        timed(self.t, "send upload", conn.write_all(content)).await?;
        timed(self.t, "close upload", conn.shutdown()).await?;
        drop(conn);
        self.expect("STOR (completion)", "226/250", |c| c == 226 || c == 250)
            .await?;
        Ok(())
    }

    /// `NLST` in `mode`: the file names.
    pub async fn nlst(&mut self, mode: DataMode) -> Result<Vec<String>, FtpError> {
        let data = self.prepare(mode).await?;
        let mut conn = self.open(data, "NLST").await?;
        let v = recv_all(&mut conn, 1 << 20, self.t)
            .await?
            .unwrap_or_default();
        drop(conn);
        self.expect("NLST (completion)", "226/250", |c| c == 226 || c == 250)
            .await?;
        Ok(String::from_utf8_lossy(&v)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// `QUIT` (expects 221).
    pub async fn quit(mut self) -> Result<(), FtpError> {
        self.command_expect("QUIT", "221", |c| c == 221)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        fn parsers_never_panic(s in "\\PC{0,80}") {
            let _ = parse_command(&s);
            let _ = parse_host_port(&s);
            let _ = parse_eprt(&s);
            let _ = parse_227(&s);
            let _ = parse_229(&s);
            let _ = parse_reply_line(&s);
        }

        #[test]
        fn host_port_round_trips(ip in any::<[u8; 4]>(), port in any::<u16>()) {
            let a = SocketAddrV4::new(Ipv4Addr::from(ip), port);
            prop_assert_eq!(parse_host_port(&format_host_port(a)), Ok(a));
            prop_assert_eq!(parse_227(&format!("Entering Passive Mode ({}).", format_host_port(a))), Ok(a));
            prop_assert_eq!(parse_eprt(&format_eprt(SocketAddr::V4(a))), Ok(SocketAddr::V4(a)));
        }
    }
}
