//! The FTP client the end-to-end tests drive: login, the four data modes, transfers checked
//! against `blob.bin`. Must not serve.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::*;

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
