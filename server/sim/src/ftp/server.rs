//! The FTP server session: control commands, passive and active data connections (refusing a
//! `PORT`/`EPRT` that names another host), `blob.bin` and in-memory uploads. Must not own a
//! listener loop (`wan`) or touch the filesystem.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::blob::Blob;

use super::*;

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
