//! The "internet" servers of the end-to-end tests (run by `wan-servers` inside the WAN namespace): TCP and
//! UDP echo, a deterministic TCP "blob" server, and the FTP server of [`crate::ftp`]; plus the seeded byte
//! generator every transfer is checked against. It must not touch namespaces or routes (see `netns`).
//!
//! The blob protocol (port [`BLOB_PORT`]): the client sends one line, then
//! - `GET <n>\n` → the server sends the first `n` bytes of the stream of [`Blob`] and closes;
//! - `WHO\n` → the server sends `<ip>:<port>\n`, the client's address as the server sees it (after NAT).
//!
//! The same port in UDP answers every datagram with `<ip>:<port>\n` of its sender.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::timeout;

pub use crate::blob::{blob_bytes, first_mismatch, Blob};
use crate::ftp::{self, FtpServerConfig};

/// Seed of the deterministic content when none is given ("masqdial" in ASCII).
pub const DEFAULT_SEED: u64 = 0x6d61_7371_6469_616c;
/// TCP and UDP echo port (RFC 862).
pub const ECHO_PORT: u16 = 7;
/// TCP blob server port.
pub const BLOB_PORT: u16 = 8081;
/// FTP control port.
pub const FTP_PORT: u16 = 21;
/// Largest `GET <n>` the blob server honours (256 MiB).
pub const MAX_BLOB: u64 = 256 << 20;
/// Default size of the FTP virtual file `blob.bin` (1 MiB).
pub const DEFAULT_FTP_FILE_SIZE: u64 = 1 << 20;

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A request line of the blob protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRequest {
    /// `GET <n>`: send `n` bytes.
    Get(u64),
    /// `WHO`: report the client's address as seen by the server.
    Who,
}

/// Errors of parsing a blob request line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobRequestError {
    /// Not `GET <n>` or `WHO`.
    #[error("bad request line (want `GET <n>` or `WHO`)")]
    Malformed,
    /// `n` is above [`MAX_BLOB`].
    #[error("request of {0} bytes is above the limit")]
    TooLarge(u64),
}

/// Parses one request line (with or without its trailing CR/LF).
pub fn parse_blob_request(line: &str) -> Result<BlobRequest, BlobRequestError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line == "WHO" {
        return Ok(BlobRequest::Who);
    }
    let n = line
        .strip_prefix("GET ")
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or(BlobRequestError::Malformed)?;
    if n > MAX_BLOB {
        return Err(BlobRequestError::TooLarge(n));
    }
    Ok(BlobRequest::Get(n))
}

/// What `wan-servers` listens on and serves.
#[derive(Debug, Clone)]
pub struct WanConfig {
    /// Address every listener binds (203.0.113.1 in the topology).
    pub bind: IpAddr,
    /// Seed of the blob stream and of `blob.bin`.
    pub seed: u64,
    /// Size of the FTP virtual file `blob.bin`.
    pub ftp_file_size: u64,
    /// TCP and UDP echo port.
    pub echo_port: u16,
    /// Blob server port.
    pub blob_port: u16,
    /// FTP control port.
    pub ftp_port: u16,
    /// Idle timeout of every read and write on a connection.
    pub io_timeout: Duration,
    /// How long to retry binding while the address is not yet assigned (the mock ISP's TUN comes up).
    pub bind_wait: Duration,
}

impl WanConfig {
    /// The defaults for `bind`: standard ports, default seed, 1 MiB `blob.bin`, 30 s idle timeout.
    pub fn new(bind: IpAddr) -> WanConfig {
        WanConfig {
            bind,
            seed: DEFAULT_SEED,
            ftp_file_size: DEFAULT_FTP_FILE_SIZE,
            echo_port: ECHO_PORT,
            blob_port: BLOB_PORT,
            ftp_port: FTP_PORT,
            io_timeout: Duration::from_secs(30),
            bind_wait: Duration::from_secs(0),
        }
    }
}

/// Errors of starting the servers.
#[derive(Debug, thiserror::Error)]
pub enum WanError {
    /// A listener could not be bound.
    #[error("cannot bind {addr} ({proto}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `tcp` or `udp`.
        proto: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The bound listeners, ready to serve.
#[derive(Debug)]
pub struct WanServers {
    config: WanConfig,
    echo_tcp: TcpListener,
    echo_udp: UdpSocket,
    blob: TcpListener,
    who_udp: UdpSocket,
    ftp: TcpListener,
}

async fn bind_retry<T, F, Fut>(
    addr: SocketAddr,
    proto: &'static str,
    wait: Duration,
    f: F,
) -> Result<T, WanError>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match f(addr).await {
            Ok(t) => return Ok(t),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrNotAvailable
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(source) => {
                return Err(WanError::Bind {
                    addr,
                    proto,
                    source,
                })
            }
        }
    }
}

impl WanServers {
    /// Binds every listener (retrying for `bind_wait` while the address is not yet assigned).
    pub async fn bind(config: WanConfig) -> Result<WanServers, WanError> {
        let at = |port| SocketAddr::new(config.bind, port);
        let w = config.bind_wait;
        let echo_tcp = bind_retry(at(config.echo_port), "tcp", w, TcpListener::bind).await?;
        let echo_udp = bind_retry(at(config.echo_port), "udp", w, UdpSocket::bind).await?;
        let blob = bind_retry(at(config.blob_port), "tcp", w, TcpListener::bind).await?;
        let blob_port = blob
            .local_addr()
            .map_err(|source| WanError::Bind {
                addr: at(config.blob_port),
                proto: "tcp",
                source,
            })?
            .port();
        let who_udp = bind_retry(at(blob_port), "udp", w, UdpSocket::bind).await?;
        let ftp = bind_retry(at(config.ftp_port), "tcp", w, TcpListener::bind).await?;
        Ok(WanServers {
            config,
            echo_tcp,
            echo_udp,
            blob,
            who_udp,
            ftp,
        })
    }

    /// The FTP listener's address (useful with port 0 in tests).
    pub fn ftp_addr(&self) -> std::io::Result<SocketAddr> {
        self.ftp.local_addr()
    }

    /// The blob listener's address.
    pub fn blob_addr(&self) -> std::io::Result<SocketAddr> {
        self.blob.local_addr()
    }

    /// The TCP echo listener's address.
    pub fn echo_tcp_addr(&self) -> std::io::Result<SocketAddr> {
        self.echo_tcp.local_addr()
    }

    /// The UDP echo socket's address.
    pub fn echo_udp_addr(&self) -> std::io::Result<SocketAddr> {
        self.echo_udp.local_addr()
    }

    /// Serves until the task is dropped or the process is killed.
    pub async fn serve(self) {
        let cfg = self.config;
        let io = cfg.io_timeout;
        let seed = cfg.seed;
        let ftp_cfg = Arc::new(FtpServerConfig {
            seed,
            blob_size: cfg.ftp_file_size,
            io_timeout: io,
            max_upload: 64 << 20,
            uploads: Arc::new(Mutex::new(HashMap::new())),
        });
        tokio::join!(
            accept_loop(self.echo_tcp, move |s, _| tcp_echo(s, io)),
            udp_echo(self.echo_udp),
            udp_who(self.who_udp),
            accept_loop(self.blob, move |s, peer| blob_session(s, peer, seed, io)),
            accept_loop(self.ftp, move |s, peer| ftp::serve_session(
                s,
                peer,
                ftp_cfg.clone()
            )),
        );
    }
}

/// Accepts forever, one task per connection.
async fn accept_loop<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((s, peer)) => {
                tracing::debug!(%peer, "accepted");
                tokio::spawn(handler(s, peer));
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// TCP echo (RFC 862): sends back what it receives until EOF or `io` of silence.
async fn tcp_echo(mut s: TcpStream, io: Duration) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match timeout(io, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        match timeout(io, s.write_all(&buf[..n])).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
    let _ = timeout(io, s.shutdown()).await;
}

/// UDP echo (RFC 862): each datagram back to its sender.
async fn udp_echo(sock: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                let _ = sock.send_to(&buf[..n], peer).await;
            }
            Err(e) => {
                tracing::debug!("udp echo recv: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// UDP "who": answers each datagram with its sender's address as this server sees it.
async fn udp_who(sock: UdpSocket) {
    let mut buf = vec![0u8; 2048];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((_, peer)) => {
                let _ = sock.send_to(format!("{peer}\n").as_bytes(), peer).await;
            }
            Err(e) => {
                tracing::debug!("udp who recv: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One blob-protocol connection: one request line, one answer, close.
async fn blob_session(s: TcpStream, peer: SocketAddr, seed: u64, io: Duration) {
    let mut r = BufReader::new(s);
    let mut line = Vec::new();
    let read = timeout(io, (&mut r).take(128).read_until(b'\n', &mut line)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        return;
    }
    let mut s = r.into_inner();
    let req = parse_blob_request(&String::from_utf8_lossy(&line));
    match req {
        Ok(BlobRequest::Who) => {
            let _ = timeout(io, s.write_all(format!("{peer}\n").as_bytes())).await;
        }
        Ok(BlobRequest::Get(n)) => {
            let mut gen = Blob::new(seed);
            let mut buf = vec![0u8; 16 * 1024];
            let mut left = n;
            while left > 0 {
                let k = left.min(buf.len() as u64) as usize;
                gen.fill(&mut buf[..k]);
                match timeout(io, s.write_all(&buf[..k])).await {
                    Ok(Ok(())) => left -= k as u64,
                    _ => return,
                }
            }
        }
        Err(e) => {
            let _ = timeout(io, s.write_all(format!("ERR {e}\n").as_bytes())).await;
        }
    }
    let _ = timeout(io, s.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splitmix64_reference_vector() {
        // SplitMix64 seeded with 0: first outputs of the reference implementation (Vigna).
        let b = blob_bytes(0, 16);
        assert_eq!(b[..8], 0xE220_A839_7B1D_CDAFu64.to_le_bytes());
        assert_eq!(b[8..], 0x6E78_9E6A_A1B9_65F4u64.to_le_bytes());
    }

    #[test]
    fn blob_is_deterministic_and_seeded() {
        assert_eq!(
            blob_bytes(DEFAULT_SEED, 1000),
            blob_bytes(DEFAULT_SEED, 1000)
        );
        assert_ne!(blob_bytes(1, 64), blob_bytes(2, 64));
        // A prefix of a longer stream is the shorter stream.
        assert_eq!(blob_bytes(7, 100)[..], blob_bytes(7, 1000)[..100]);
    }

    #[test]
    fn mismatch_is_located() {
        let mut v = blob_bytes(9, 10_000);
        assert_eq!(first_mismatch(9, &v), None);
        v[5000] ^= 1;
        assert_eq!(first_mismatch(9, &v), Some(5000));
        assert_eq!(first_mismatch(10, &v[..8]), Some(0));
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn blob_requests() {
        assert_eq!(parse_blob_request("GET 100\n"), Ok(BlobRequest::Get(100)));
        assert_eq!(parse_blob_request("GET 0\r\n"), Ok(BlobRequest::Get(0)));
        assert_eq!(parse_blob_request("WHO\n"), Ok(BlobRequest::Who));
        assert_eq!(
            parse_blob_request("GET\n"),
            Err(BlobRequestError::Malformed)
        );
        assert_eq!(
            parse_blob_request("GET -1\n"),
            Err(BlobRequestError::Malformed)
        );
        assert_eq!(
            parse_blob_request("GET 999999999999\n"),
            Err(BlobRequestError::TooLarge(999_999_999_999))
        );
    }

    #[tokio::test]
    async fn servers_on_loopback() {
        let mut cfg = WanConfig::new("127.0.0.1".parse().expect("literal address"));
        cfg.echo_port = 0;
        cfg.blob_port = 0;
        cfg.ftp_port = 0;
        let servers = WanServers::bind(cfg).await.expect("bind loopback");
        let blob = servers.blob_addr().expect("bound");
        let task = tokio::spawn(servers.serve());
        let mut s = TcpStream::connect(blob).await.expect("connect");
        s.write_all(b"GET 70000\n").await.expect("write");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, blob_bytes(DEFAULT_SEED, 70000));
        let mut s = TcpStream::connect(blob).await.expect("connect");
        s.write_all(b"WHO\n").await.expect("write");
        let mut who = String::new();
        s.read_to_string(&mut who).await.expect("read");
        let local = s.local_addr().expect("bound");
        assert_eq!(who.trim(), local.to_string());
        task.abort();
    }

    proptest! {
        #[test]
        fn fill_at_any_split_matches(seed in any::<u64>(), cut in 0usize..200, len in 0usize..200) {
            let whole = blob_bytes(seed, cut + len);
            let mut g = Blob::at(seed, cut as u64);
            let mut part = vec![0; len];
            g.fill(&mut part);
            prop_assert_eq!(&whole[cut..], &part[..]);
            prop_assert_eq!(g.position(), (cut + len) as u64);
        }

        #[test]
        /// A request parses only as `WHO` or `GET n` with n within the limit, and what it
        /// parses to reads back from its canonical form.
        fn blob_requests_parse_only_as_who_or_a_bounded_get(s in prop_oneof!["\\PC{0,40}", "GET [0-9]{0,12}", Just("WHO".to_string())]) {
            let line = s.trim_end_matches(['\r', '\n']);
            match parse_blob_request(&s) {
                Ok(BlobRequest::Who) => prop_assert_eq!(line, "WHO"),
                Ok(BlobRequest::Get(n)) => {
                    prop_assert!(n <= MAX_BLOB && line.starts_with("GET "));
                    prop_assert_eq!(parse_blob_request(&format!("GET {n}")), Ok(BlobRequest::Get(n)));
                }
                Err(BlobRequestError::TooLarge(n)) => prop_assert!(n > MAX_BLOB),
                Err(_) => prop_assert!(line != "WHO"),
            }
        }
    }
}
