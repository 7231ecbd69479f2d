//! The LAN host's traffic generators (run by `lan-client` inside the LAN namespace): UDP and TCP echo,
//! blob fetch and FTP transfers, each checking every byte against the deterministic generator of
//! [`crate::wan`]. Each returns the `OK …` line to print; it must not print, exit or touch namespaces.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::ftp::{DataMode, FtpClient, FtpError};
use crate::wan::{blob_bytes, first_mismatch, sha256_hex, Blob};

/// Errors of a client run; each message says what failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// An operation took longer than its timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The data received differs from what was expected.
    #[error("data mismatch: {0}")]
    Mismatch(String),
    /// The FTP session failed.
    #[error("ftp: {0}")]
    Ftp(#[from] FtpError),
}

async fn io<T>(
    t: Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, ClientError> {
    match timeout(t, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(ClientError::Io { what, source }),
        Err(_) => Err(ClientError::Timeout(what.to_owned())),
    }
}

/// Options of [`udp_echo`].
#[derive(Debug, Clone, Copy)]
pub struct UdpEchoOptions {
    /// Number of datagrams.
    pub count: u32,
    /// Size of each datagram (at least 4: the sequence number).
    pub size: usize,
    /// How long to wait for each echo before resending.
    pub per_try: Duration,
    /// Sends per datagram before giving up.
    pub tries: u32,
    /// Pause between datagrams (keeps a flow alive over time, e.g. across a redial).
    pub interval: Duration,
    /// Local UDP port (0: any), so a scenario can predict the masquerade entry.
    pub local_port: u16,
}

impl Default for UdpEchoOptions {
    fn default() -> Self {
        UdpEchoOptions {
            count: 10,
            size: 64,
            per_try: Duration::from_secs(1),
            tries: 3,
            interval: Duration::ZERO,
            local_port: 0,
        }
    }
}

/// A UDP socket bound to `local_port` (0: any) of the right family for `to`, connected to `to`.
async fn udp_socket(to: SocketAddr, local_port: u16) -> Result<UdpSocket, ClientError> {
    let any: std::net::IpAddr = if to.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = UdpSocket::bind(SocketAddr::new(any, local_port))
        .await
        .map_err(|source| ClientError::Io {
            what: "bind udp",
            source,
        })?;
    sock.connect(to).await.map_err(|source| ClientError::Io {
        what: "connect udp",
        source,
    })?;
    Ok(sock)
}

/// Sends numbered datagrams to a UDP echo server, one at a time, and checks each echo. A datagram
/// unanswered within `per_try` is resent, at most `tries` times in all.
pub async fn udp_echo(addr: SocketAddr, o: UdpEchoOptions) -> Result<String, ClientError> {
    let UdpEchoOptions {
        count,
        size,
        per_try,
        tries,
        interval,
        local_port,
    } = o;
    let sock = udp_socket(addr, local_port).await?;
    let size = size.max(4);
    let mut resent = 0u32;
    let mut buf = vec![0u8; 65536];
    for seq in 0..count {
        if seq > 0 && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        let mut payload = blob_bytes(u64::from(seq), size);
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        let mut answered = false;
        for attempt in 0..tries.max(1) {
            if attempt > 0 {
                resent += 1;
            }
            io(per_try, "send udp", sock.send(&payload)).await?;
            // Drain until our datagram comes back or this try's time is up (late echoes of earlier
            // tries are skipped by sequence number).
            let deadline = tokio::time::Instant::now() + per_try;
            while let Ok(r) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                let n = r.map_err(|source| ClientError::Io {
                    what: "receive udp",
                    source,
                })?;
                if buf[..n] == payload[..] {
                    answered = true;
                    break;
                }
                if n < 4 || buf[..4] != seq.to_be_bytes() {
                    continue;
                }
                return Err(ClientError::Mismatch(format!(
                    "echo of datagram {seq} differs"
                )));
            }
            if answered {
                break;
            }
        }
        if !answered {
            return Err(ClientError::Timeout(format!(
                "no echo for datagram {seq} after {tries} tries of {per_try:?}"
            )));
        }
    }
    let local = sock.local_addr().map_err(|source| ClientError::Io {
        what: "local address",
        source,
    })?;
    Ok(format!(
        "OK udp-echo count={count} size={size} resent={resent} local={local}"
    ))
}

/// Sends `bytes` bytes of the blob stream of `seed` to a TCP echo server while reading the echo back, and
/// checks it.
pub async fn tcp_echo(
    addr: SocketAddr,
    bytes: usize,
    seed: u64,
    t: Duration,
) -> Result<String, ClientError> {
    let s = io(t, "connect", TcpStream::connect(addr)).await?;
    let (mut r, mut w) = s.into_split();
    let data = blob_bytes(seed, bytes);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        for chunk in sent.chunks(16 * 1024) {
            io(t, "send", w.write_all(chunk)).await?;
        }
        io(t, "shutdown", w.shutdown()).await?;
        Ok::<_, ClientError>(())
    });
    let mut got = Vec::with_capacity(bytes);
    let mut buf = vec![0u8; 16 * 1024];
    while got.len() < bytes {
        let n = io(t, "receive echo", r.read(&mut buf)).await?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    writer
        .await
        .map_err(|e| ClientError::Mismatch(format!("writer task: {e}")))??;
    check(&data, &got)?;
    Ok(format!(
        "OK tcp-echo bytes={bytes} sha256={}",
        sha256_hex(&got)
    ))
}

/// Compares `got` against `want`, explaining the first difference.
fn check(want: &[u8], got: &[u8]) -> Result<(), ClientError> {
    if got.len() != want.len() {
        return Err(ClientError::Mismatch(format!(
            "received {} bytes, expected {}",
            got.len(),
            want.len()
        )));
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(i) => Err(ClientError::Mismatch(format!(
            "first differing byte at offset {i}"
        ))),
        None => Ok(()),
    }
}

/// Fetches `bytes` bytes from the blob server (`GET <n>`) and checks them against the generator.
pub async fn tcp_fetch(
    addr: SocketAddr,
    bytes: u64,
    seed: u64,
    t: Duration,
) -> Result<String, ClientError> {
    let mut s = io(t, "connect", TcpStream::connect(addr)).await?;
    io(
        t,
        "send request",
        s.write_all(format!("GET {bytes}\n").as_bytes()),
    )
    .await?;
    let mut got = Vec::new();
    let mut gen = Blob::new(seed);
    let mut buf = vec![0u8; 16 * 1024];
    let mut want = vec![0u8; 16 * 1024];
    loop {
        let n = io(t, "receive", s.read(&mut buf)).await?;
        if n == 0 {
            break;
        }
        if got.len() as u64 + n as u64 > bytes {
            return Err(ClientError::Mismatch(format!(
                "more than {bytes} bytes received"
            )));
        }
        gen.fill(&mut want[..n]);
        if let Some(i) = buf[..n].iter().zip(&want[..n]).position(|(a, b)| a != b) {
            return Err(ClientError::Mismatch(format!(
                "first differing byte at offset {}",
                got.len() + i
            )));
        }
        got.extend_from_slice(&buf[..n]);
    }
    if got.len() as u64 != bytes {
        return Err(ClientError::Mismatch(format!(
            "received {} bytes, expected {bytes}",
            got.len()
        )));
    }
    Ok(format!(
        "OK tcp-fetch bytes={bytes} sha256={}",
        sha256_hex(&got)
    ))
}

/// Asks the blob server `WHO` and returns the client's address as the server saw it (after NAT).
pub async fn tcp_whoami(addr: SocketAddr, t: Duration) -> Result<String, ClientError> {
    let mut s = io(t, "connect", TcpStream::connect(addr)).await?;
    io(t, "send request", s.write_all(b"WHO\n")).await?;
    let mut got = Vec::new();
    io(t, "receive", (&mut s).take(128).read_to_end(&mut got)).await?;
    let seen = String::from_utf8_lossy(&got).trim().to_owned();
    let seen: SocketAddr = seen
        .parse()
        .map_err(|_| ClientError::Mismatch(format!("bad WHO answer {seen:?}")))?;
    let local = s.local_addr().map_err(|source| ClientError::Io {
        what: "local address",
        source,
    })?;
    Ok(format!("OK whoami seen={seen} local={local}"))
}

/// Sends one datagram to the UDP "who" server (the blob port) and returns the address it saw us as,
/// resending up to `tries` times `per_try` apart.
pub async fn udp_whoami(
    addr: SocketAddr,
    local_port: u16,
    per_try: Duration,
    tries: u32,
) -> Result<String, ClientError> {
    let sock = udp_socket(addr, local_port).await?;
    let mut buf = [0u8; 128];
    for _ in 0..tries.max(1) {
        io(per_try, "send udp", sock.send(b"WHO\n")).await?;
        if let Ok(r) = timeout(per_try, sock.recv(&mut buf)).await {
            let n = r.map_err(|source| ClientError::Io {
                what: "receive udp",
                source,
            })?;
            let seen = String::from_utf8_lossy(&buf[..n]).trim().to_owned();
            let seen: SocketAddr = seen
                .parse()
                .map_err(|_| ClientError::Mismatch(format!("bad WHO answer {seen:?}")))?;
            let local = sock.local_addr().map_err(|source| ClientError::Io {
                what: "local address",
                source,
            })?;
            return Ok(format!("OK udp-whoami seen={seen} local={local}"));
        }
    }
    Err(ClientError::Timeout(format!(
        "no UDP WHO answer after {tries} tries of {per_try:?}"
    )))
}

/// Human name of a data mode for the `OK` line.
pub fn mode_name(mode: DataMode) -> &'static str {
    match mode {
        DataMode::Passive => "pasv",
        DataMode::ExtendedPassive => "epsv",
        DataMode::Active => "port",
        DataMode::ExtendedActive => "eprt",
    }
}

/// Downloads `file` over FTP in `mode`, checks its size (SIZE and received) and content against the
/// generator of `seed`.
pub async fn ftp_get(
    addr: SocketAddr,
    file: &str,
    bytes: u64,
    mode: DataMode,
    seed: u64,
    t: Duration,
) -> Result<String, ClientError> {
    let mut c = FtpClient::connect(addr, t).await?;
    let size = c.size(file).await?;
    if size != bytes {
        return Err(ClientError::Mismatch(format!(
            "SIZE says {size}, expected {bytes}"
        )));
    }
    let got = c.retr(file, mode, bytes).await?;
    if got.len() as u64 != bytes {
        return Err(ClientError::Mismatch(format!(
            "received {} bytes, expected {bytes}",
            got.len()
        )));
    }
    if let Some(i) = first_mismatch(seed, &got) {
        return Err(ClientError::Mismatch(format!(
            "first differing byte at offset {i}"
        )));
    }
    let local = c.local_addr();
    let data_peer = c
        .last_data_peer()
        .map_or_else(|| "-".to_owned(), |a| a.to_string());
    c.quit().await?;
    Ok(format!(
        "OK ftp-get bytes={bytes} mode={} sha256={} local={local} data_peer={data_peer}",
        mode_name(mode),
        sha256_hex(&got)
    ))
}

/// Uploads `bytes` bytes of the generator of `seed` as `file` in `mode`, then checks SIZE and downloads
/// it back (same mode) to compare.
pub async fn ftp_put(
    addr: SocketAddr,
    file: &str,
    bytes: usize,
    mode: DataMode,
    seed: u64,
    t: Duration,
) -> Result<String, ClientError> {
    let data = blob_bytes(seed, bytes);
    let mut c = FtpClient::connect(addr, t).await?;
    c.stor(file, &data, mode).await?;
    let size = c.size(file).await?;
    if size != bytes as u64 {
        return Err(ClientError::Mismatch(format!(
            "SIZE after upload says {size}, expected {bytes}"
        )));
    }
    let back = c.retr(file, mode, bytes as u64).await?;
    check(&data, &back)?;
    c.quit().await?;
    Ok(format!(
        "OK ftp-put bytes={bytes} mode={} sha256={}",
        mode_name(mode),
        sha256_hex(&data)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wan::{WanConfig, WanServers, DEFAULT_SEED};

    #[tokio::test]
    async fn every_client_against_loopback_servers() {
        let mut cfg = WanConfig::new("127.0.0.1".parse().expect("literal address"));
        cfg.echo_port = 0;
        cfg.blob_port = 0;
        cfg.ftp_port = 0;
        cfg.ftp_file_size = 50_000;
        let s = WanServers::bind(cfg).await.expect("bind loopback");
        let (udp, echo, blob, ftp) = (
            s.echo_udp_addr().expect("bound"),
            s.echo_tcp_addr().expect("bound"),
            s.blob_addr().expect("bound"),
            s.ftp_addr().expect("bound"),
        );
        let task = tokio::spawn(s.serve());
        let t = Duration::from_secs(10);
        let o = UdpEchoOptions {
            count: 5,
            size: 100,
            interval: Duration::from_millis(5),
            ..UdpEchoOptions::default()
        };
        let ok = udp_echo(udp, o).await.expect("udp echo");
        assert!(ok.starts_with("OK udp-echo count=5"), "{ok}");
        let ok = tcp_echo(echo, 300_000, 3, t).await.expect("tcp echo");
        assert!(ok.starts_with("OK tcp-echo bytes=300000"), "{ok}");
        let ok = tcp_fetch(blob, 123_457, DEFAULT_SEED, t)
            .await
            .expect("fetch");
        assert!(
            ok.contains(&sha256_hex(&blob_bytes(DEFAULT_SEED, 123_457))),
            "{ok}"
        );
        // The wrong seed or length is detected.
        assert!(matches!(
            tcp_fetch(blob, 1000, 1, t).await,
            Err(ClientError::Mismatch(_))
        ));
        let ok = udp_whoami(blob, 0, Duration::from_secs(2), 3)
            .await
            .expect("udp whoami");
        assert!(ok.starts_with("OK udp-whoami seen=127.0.0.1:"), "{ok}");
        let ok = tcp_whoami(blob, t).await.expect("whoami");
        assert!(ok.starts_with("OK whoami seen=127.0.0.1:"), "{ok}");
        for mode in [DataMode::Passive, DataMode::ExtendedActive] {
            let ok = ftp_get(ftp, "blob.bin", 50_000, mode, DEFAULT_SEED, t)
                .await
                .expect("get");
            assert!(ok.starts_with("OK ftp-get bytes=50000"), "{ok}");
            let ok = ftp_put(ftp, "up.bin", 20_000, mode, 8, t)
                .await
                .expect("put");
            assert!(ok.starts_with("OK ftp-put bytes=20000"), "{ok}");
        }
        assert!(matches!(
            ftp_get(ftp, "blob.bin", 49_999, DataMode::Passive, DEFAULT_SEED, t).await,
            Err(ClientError::Mismatch(_))
        ));
        task.abort();
    }
}

/// The Internet checksum (RFC 1071) of `data`.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // After folding, `sum` fits in 16 bits.
    !(sum as u16)
}

/// Sends `count` ICMP echo requests to `addr` (one at a time, each waiting up to `per_try` for its
/// reply) from a raw socket, as `ping -c COUNT` does but without iputils-ping; needs CAP_NET_RAW.
/// Returns `OK icmp-echo replies=N/COUNT` when at least one reply came back.
pub fn icmp_echo(
    addr: std::net::Ipv4Addr,
    count: u16,
    per_try: Duration,
) -> Result<String, ClientError> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use std::io::Read;
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).map_err(|source| {
        ClientError::Io {
            what: "raw ICMP socket (needs CAP_NET_RAW)",
            source,
        }
    })?;
    let to = SockAddr::from(SocketAddr::new(addr.into(), 0));
    let id = (std::process::id() & 0xffff) as u16;
    let mut replies = 0u16;
    for seq in 1..=count {
        let mut req = vec![8u8, 0, 0, 0];
        req.extend_from_slice(&id.to_be_bytes());
        req.extend_from_slice(&seq.to_be_bytes());
        req.extend_from_slice(b"masqdial icmp-echo payload 0123456789");
        let c = inet_checksum(&req);
        req[2..4].copy_from_slice(&c.to_be_bytes());
        sock.send_to(&req, &to).map_err(|source| ClientError::Io {
            what: "send ICMP echo",
            source,
        })?;
        let deadline = std::time::Instant::now() + per_try;
        let mut buf = [0u8; 1500];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))
                .map_err(|source| ClientError::Io {
                    what: "socket timeout",
                    source,
                })?;
            let n = match (&sock).read(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(source) => {
                    return Err(ClientError::Io {
                        what: "receive ICMP",
                        source,
                    })
                }
            };
            // A raw IPv4 socket delivers the IP header too.
            let pkt = &buf[..n];
            let Some(ihl) = pkt.first().map(|b| usize::from(b & 0x0f) * 4) else {
                continue;
            };
            let (Some(src), Some(icmp)) = (pkt.get(12..16), pkt.get(ihl..)) else {
                continue;
            };
            let is_reply = icmp.len() >= 8
                && icmp[0] == 0
                && src == addr.octets()
                && icmp[4..6] == id.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes()
                && icmp[8..] == req[8..];
            if is_reply {
                replies += 1;
                break;
            }
        }
    }
    if replies == 0 {
        return Err(ClientError::Timeout(format!(
            "no ICMP echo reply from {addr} to {count} requests"
        )));
    }
    Ok(format!("OK icmp-echo replies={replies}/{count}"))
}

#[cfg(test)]
mod icmp_tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3's example words 0001 f203 f4f5 f6f7 sum to ddf2; checksum ~ = 220d.
        assert_eq!(
            inet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // A message with its checksum in place sums to zero.
        let mut m = vec![8u8, 0, 0, 0, 0x12, 0x34, 0, 1, 0xab];
        let c = inet_checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(inet_checksum(&m), 0);
    }
}
