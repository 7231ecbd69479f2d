//! The mock ISP's way to the real (namespaced) internet: packets the ISP's simulated
//! internet does not answer go out of a TUN device, and packets the kernel routes into that
//! TUN (replies from real servers) are injected towards the caller. Owns the TUN device and
//! its reader thread; the PPP access server stays [`MockIsp`]'s.

use std::net::Ipv4Addr;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::isp::{IspConfig, MockIsp};
use crate::modem::{Answerer, AnswererFactory};

/// How often the bridge looks for packets from the TUN device while a call is up.
const POLL: Duration = Duration::from_millis(2);

/// Errors creating the bridge.
#[derive(Debug, thiserror::Error)]
pub enum InternetError {
    /// The TUN device could not be created (needs CAP_NET_ADMIN).
    #[error("cannot create TUN device {name}: {source}")]
    Tun {
        /// Interface name.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// A TUN device shared by every call's [`ForwardingIsp`].
pub struct TunInternet {
    dev: Arc<tun_rs::SyncDevice>,
    rx: Mutex<Receiver<Vec<u8>>>,
}

impl std::fmt::Debug for TunInternet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunInternet").finish_non_exhaustive()
    }
}

impl TunInternet {
    /// Create TUN `name` with address `addr/prefix`, up; a reader thread feeds packets the
    /// kernel routes into it. Routes to the ISP's address pool are the caller's to add.
    pub fn open(name: &str, addr: Ipv4Addr, prefix: u8) -> Result<Arc<Self>, InternetError> {
        let dev = tun_rs::DeviceBuilder::new()
            .name(name)
            .mtu(1500)
            .ipv4(addr, prefix, None)
            .packet_information(false)
            .enable(true)
            .build_sync()
            .map_err(|source| InternetError::Tun {
                name: name.into(),
                source,
            })?;
        let dev = Arc::new(dev);
        let (tx, rx) = mpsc::sync_channel(1024);
        let reader = Arc::clone(&dev);
        std::thread::Builder::new()
            .name("isp-tun-reader".into())
            .spawn(move || {
                let mut buf = vec![0u8; 65_535];
                loop {
                    match reader.recv(&mut buf) {
                        Ok(n) => {
                            if tx.send(buf[..n].to_vec()).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "ISP TUN read failed; bridge stops");
                            return;
                        }
                    }
                }
            })
            .map_err(|source| InternetError::Tun {
                name: name.into(),
                source,
            })?;
        Ok(Arc::new(Self {
            dev,
            rx: Mutex::new(rx),
        }))
    }

    /// A modem factory: each call gets a [`MockIsp`] (simulated internet off, forwarding on)
    /// bridged to this device.
    pub fn factory(self: &Arc<Self>, isp: IspConfig) -> AnswererFactory {
        let net = Arc::clone(self);
        Box::new(move |_number: &str| {
            let cfg = IspConfig {
                forward_unhandled: true,
                simulate_internet: false,
                ..isp.clone()
            };
            Box::new(ForwardingIsp {
                isp: MockIsp::new(cfg),
                net: Arc::clone(&net),
                next_poll: Instant::now(),
            }) as Box<dyn Answerer>
        })
    }
}

/// A [`MockIsp`] whose internet is a TUN device.
#[derive(Debug)]
pub struct ForwardingIsp {
    isp: MockIsp,
    net: Arc<TunInternet>,
    /// When to look at the TUN queue next (relative to the `now` we were last given).
    next_poll: Instant,
}

impl ForwardingIsp {
    /// A [`MockIsp`] with `isp`'s settings, forwarding what it does not answer to `net`.
    /// Unlike [`TunInternet::factory`], `simulate_internet` is kept: with it on, ping and
    /// UDP stay answered by the simulation and only the rest (TCP) crosses the TUN.
    pub fn new(isp: IspConfig, net: &Arc<TunInternet>) -> Self {
        let cfg = IspConfig {
            forward_unhandled: true,
            ..isp
        };
        ForwardingIsp {
            isp: MockIsp::new(cfg),
            net: Arc::clone(net),
            next_poll: Instant::now(),
        }
    }

    fn pump(&mut self) {
        while let Some(p) = self.isp.poll_ip_out() {
            if let Err(e) = self.net.dev.send(&p) {
                tracing::debug!(error = %e, "ISP TUN write failed");
            }
        }
        if !self.isp.is_ip_up() {
            return;
        }
        let rx = self.net.rx.lock().unwrap_or_else(|e| e.into_inner());
        while let Ok(p) = rx.try_recv() {
            let _ = self.isp.inject_ipv4(&p);
        }
    }
}

impl Answerer for ForwardingIsp {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        Answerer::handle_input(&mut self.isp, now, bytes);
        self.pump();
        self.next_poll = now + POLL;
    }

    fn poll_output(&mut self) -> Option<Vec<u8>> {
        Answerer::poll_output(&mut self.isp)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        // It must look at the TUN queue regularly, not only when the line is busy.
        Some(match Answerer::poll_timeout(&self.isp) {
            Some(t) => t.min(self.next_poll),
            None => self.next_poll,
        })
    }

    fn handle_timeout(&mut self, now: Instant) {
        if Answerer::poll_timeout(&self.isp).is_some_and(|t| t <= now) {
            Answerer::handle_timeout(&mut self.isp, now);
        }
        self.pump();
        self.next_poll = now + POLL;
    }

    fn is_closed(&self) -> bool {
        Answerer::is_closed(&self.isp)
    }
}
