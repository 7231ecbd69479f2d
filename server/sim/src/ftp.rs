//! A small FTP server and client for the end-to-end tests (RFC 959, EPSV/EPRT of RFC 2428): the pure
//! command/reply parsers and formatters, a server session serving the virtual file `blob.bin` and
//! in-memory uploads, and a client that checks transfers. It owns no listener loop (see `wan`) and never
//! touches the filesystem.
//!
//! The server refuses a `PORT`/`EPRT` whose address is not the control connection's peer (like vsftpd),
//! so an FTP helper on the gateway that forgets to rewrite the LAN address makes active mode fail loudly.

mod client;
mod server;

pub use client::{DataMode, FtpClient};
pub use server::{serve_session, FtpServerConfig};

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

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

#[cfg(test)]
mod tests;
