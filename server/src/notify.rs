//! systemd readiness and status (sd_notify(3) protocol): one datagram per message to the
//! unix socket named by `$NOTIFY_SOCKET`. Owns that socket only; without `NOTIFY_SOCKET`
//! (not started by systemd with Type=notify) every call does nothing.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::sync::Arc;

/// Sends sd_notify messages; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Target>>,
}

#[derive(Debug)]
struct Target {
    sock: UnixDatagram,
    addr: SocketAddr,
}

/// Longest STATUS= text sent (systemd shows one line; keep datagrams small).
const MAX_STATUS: usize = 200;

impl Notifier {
    /// The notifier for `$NOTIFY_SOCKET`, or a no-op one when it is unset or unusable
    /// (a warning is logged for an unusable one).
    pub fn from_env() -> Self {
        match std::env::var_os("NOTIFY_SOCKET") {
            None => Self::default(),
            Some(p) => Self::new(Path::new(&p)).unwrap_or_else(|e| {
                tracing::warn!("NOTIFY_SOCKET {p:?} unusable ({e}); no readiness notification");
                Self::default()
            }),
        }
    }

    /// A notifier sending to the socket at `path` (`@name` = Linux abstract namespace).
    pub fn new(path: &Path) -> io::Result<Self> {
        let addr = match path.to_str().and_then(|s| s.strip_prefix('@')) {
            Some(name) => abstract_addr(name.as_bytes())?,
            None => SocketAddr::from_pathname(path)?,
        };
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        Ok(Self {
            inner: Some(Arc::new(Target { sock, addr })),
        })
    }

    /// Whether messages go anywhere.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Send raw `KEY=VALUE` lines; errors are logged at debug (systemd may be gone).
    pub fn send(&self, msg: &str) {
        if let Some(t) = &self.inner {
            if let Err(e) = t.sock.send_to_addr(msg.as_bytes(), &t.addr) {
                tracing::debug!("sd_notify {msg:?}: {e}");
            }
        }
    }

    /// `READY=1`: startup finished (the API port is bound).
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `STATUS=`: a one-line summary for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// `RELOADING=1`: a configuration reload started (end it with [`Self::reloaded`]).
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    /// `READY=1` after a reload, with the outcome as status.
    pub fn reloaded(&self, status: &str) {
        self.ready(status);
    }

    /// `STOPPING=1`: shutdown started.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: hanging up links");
    }
}

/// `text` on one line, at most [`MAX_STATUS`] bytes (cut at a character boundary).
fn one_line(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > MAX_STATUS {
        let mut cut = MAX_STATUS;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets are Linux-only",
    ))
}

/// CLOCK_MONOTONIC in microseconds (what systemd expects with RELOADING=1).
fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1_000
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(s: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = s.recv(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("{e}"));
        let n = Notifier::new(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(n.enabled());
        n.ready("listening on 127.0.0.1:224; isp1 idle");
        assert_eq!(
            recv(&rx),
            "READY=1\nSTATUS=listening on 127.0.0.1:224; isp1 idle"
        );
        n.status("isp1 up\n10.64.0.2");
        assert_eq!(recv(&rx), "STATUS=isp1 up 10.64.0.2");
        n.reloading();
        let r = recv(&rx);
        assert!(r.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{r}");
        assert!(r["RELOADING=1\nMONOTONIC_USEC=".len()..]
            .parse::<u64>()
            .is_ok());
        n.stopping();
        assert!(recv(&rx).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn abstract_socket_names_work() {
        let name = format!("masqdial-notify-test-{}", std::process::id());
        let Ok(addr) = abstract_addr(name.as_bytes()) else {
            return;
        };
        let rx = UnixDatagram::bind_addr(&addr).unwrap_or_else(|e| panic!("{e}"));
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("{e}"));
        let n = Notifier::new(Path::new(&format!("@{name}"))).unwrap_or_else(|e| panic!("{e}"));
        n.status("x");
        assert_eq!(recv(&rx), "STATUS=x");
    }

    #[test]
    fn without_socket_nothing_happens() {
        let n = Notifier::default();
        assert!(!n.enabled());
        n.ready("ignored");
    }

    #[test]
    fn status_is_one_bounded_line() {
        let long = "é".repeat(300);
        let s = one_line(&long);
        assert!(s.len() <= MAX_STATUS && s.len() >= MAX_STATUS - 1);
        assert_eq!(one_line("a\tb\nc"), "a b c");
    }
}
