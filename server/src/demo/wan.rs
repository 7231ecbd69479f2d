//! The root demo's internet for TCP (root only): a WAN namespace holding the mock ISP's TUN
//! bridge and real servers on 203.0.113.1 — TCP echo (port 7), the blob server (8081) and
//! an FTP server (21) serving `blob.bin` — so the demo shows TCP states and the FTP helper.
//! Ping and UDP stay answered by the ISP's simulated internet (any address); what it does
//! not answer (TCP) goes out of the TUN into this namespace. Also drives a little TCP and
//! FTP traffic from the demo LAN host. Owns the namespace and its threads; removes the
//! namespace on drop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use masqdial_sim::ftp::{DataMode, FtpClient, BLOB_FILE};
use masqdial_sim::internet::TunInternet;
use masqdial_sim::wan::{WanConfig, WanServers, ECHO_PORT, FTP_PORT};

use super::ns::{run, DemoNsError};

/// The WAN servers' address (TEST-NET-3).
pub const WAN_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// Size of the FTP server's `blob.bin` in the demo: a few seconds at 115200 baud.
const DEMO_FTP_FILE: u64 = 24 * 1024;
/// The ISP's address pool the WAN namespace routes back through the TUN.
const ISP_POOL: &str = "10.64.0.0/24";

/// The demo's WAN namespace and its servers.
#[derive(Debug)]
pub struct DemoWan {
    ns: String,
    net: Arc<TunInternet>,
    stop: Arc<AtomicBool>,
}

/// Run `f` on a fresh thread that joined network namespace `ns` (setns affects only that
/// thread; sockets and TUN devices keep the namespace they were created in). Errors when
/// the namespace cannot be entered; the handle yields `f`'s result.
fn in_netns<T: Send + 'static>(
    ns: &str,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<Option<T>>, DemoNsError> {
    let path = format!("/run/netns/{ns}");
    let err = |detail: String| DemoNsError::Command {
        cmd: format!("setns {path}"),
        detail,
    };
    let file = std::fs::File::open(&path).map_err(|e| err(e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let entered = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| e.to_string());
            let ok = entered.is_ok();
            let _ = tx.send(entered);
            ok.then(f)
        })
        .map_err(|e| err(e.to_string()))?;
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(detail)) => Err(err(detail)),
        Err(_) => Err(err("the thread entering it did not answer".into())),
    }
}

impl DemoWan {
    /// Create `mqdemo-wan-<pid>` with the ISP bridge TUN `mqisp0` (203.0.113.1/24, a route
    /// back to the ISP's pool) and start the servers in it.
    pub fn create() -> Result<Self, DemoNsError> {
        let ns = format!("mqdemo-wan-{}", std::process::id());
        run(&["ip", "netns", "add", &ns])?;
        let me_ns = ns.clone();
        let cleanup = |e: DemoNsError| {
            let _ = run(&["ip", "netns", "del", &me_ns]);
            e
        };
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]).map_err(cleanup)?;
        let tun_err = |detail: String| DemoNsError::Command {
            cmd: "open TUN mqisp0".into(),
            detail,
        };
        let net = in_netns(&ns, "demo-wan-tun", || {
            TunInternet::open("mqisp0", WAN_SERVER, 24).map_err(|e| e.to_string())
        })
        .map_err(cleanup)?
        .join()
        .ok()
        .flatten()
        .ok_or_else(|| cleanup(tun_err("the thread opening it failed".into())))?
        .map_err(|detail| cleanup(tun_err(detail)))?;
        run(&["ip", "-n", &ns, "route", "add", ISP_POOL, "dev", "mqisp0"]).map_err(cleanup)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_servers = Arc::clone(&stop);
        // The servers run for the life of the process (the namespace goes when it exits).
        in_netns(&ns, "demo-wan-servers", move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "demo WAN servers: no runtime");
                    return;
                }
            };
            rt.block_on(async move {
                let mut cfg = WanConfig::new(IpAddr::V4(WAN_SERVER));
                cfg.ftp_file_size = DEMO_FTP_FILE;
                cfg.bind_wait = Duration::from_secs(5);
                match WanServers::bind(cfg).await {
                    Ok(s) => {
                        tokio::select! {
                            () = s.serve() => {}
                            () = wait_flag(&stop_servers) => {}
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "demo WAN servers not started"),
                }
            });
        })
        .map_err(cleanup)?;
        Ok(Self { ns, net, stop })
    }

    /// The TUN bridge the demo's mock ISP forwards TCP through.
    pub fn internet(&self) -> &Arc<TunInternet> {
        &self.net
    }

    /// The namespace's name.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// From inside LAN namespace `lan`, every `period`: a TCP echo exchange on a connection
    /// kept open for a while (an ESTABLISHED entry with its timer) and an FTP download of
    /// `blob.bin`, passive and active in turn (the FTP helper's entries). Stops on drop.
    pub fn start_lan_traffic(&self, lan: &str, period: Duration) -> Result<(), DemoNsError> {
        let stop = Arc::clone(&self.stop);
        in_netns(lan, "demo-lan-tcp", move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(lan_tcp_loop(period, stop));
        })
        .map(drop)
    }
}

async fn wait_flag(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn lan_tcp_loop(period: Duration, stop: Arc<AtomicBool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Duration::from_secs(20);
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let echo = async {
            let mut s =
                tokio::net::TcpStream::connect(SocketAddr::new(WAN_SERVER.into(), ECHO_PORT))
                    .await?;
            for _ in 0..3 {
                s.write_all(b"masqdial demo\n").await?;
                let mut buf = [0u8; 14];
                s.read_exact(&mut buf).await?;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            std::io::Result::Ok(())
        };
        if let Err(e) = tokio::time::timeout(t, echo)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        {
            tracing::debug!(error = %e, "demo TCP echo");
        }
        let mode = if round.is_multiple_of(2) {
            DataMode::Passive
        } else {
            DataMode::Active
        };
        let ftp = async {
            let mut c = FtpClient::connect(SocketAddr::new(WAN_SERVER.into(), FTP_PORT), t).await?;
            c.retr(BLOB_FILE, mode, DEMO_FTP_FILE).await?;
            c.quit().await
        };
        if let Err(e) = ftp.await {
            tracing::debug!(error = %e, "demo FTP");
        }
        round = round.wrapping_add(1);
        let mut waited = Duration::ZERO;
        while waited < period && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            waited += Duration::from_millis(250);
        }
    }
}

impl Drop for DemoWan {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }
}
