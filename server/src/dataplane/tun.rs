//! The TUN device the LAN's routed traffic enters and leaves by. Owns the file descriptor
//! only; addresses and routes are [`super::netcfg`]'s.

use std::io;

/// Errors opening or using the TUN device.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    /// No CAP_NET_ADMIN (or /dev/net/tun missing): the dataplane stays off.
    #[error("cannot create TUN device {name}: {source} (needs CAP_NET_ADMIN and /dev/net/tun; the dataplane is off, the control plane keeps running)")]
    Unavailable {
        /// Requested interface name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// Reading or writing a packet failed.
    #[error("TUN {name}: {source}")]
    Io {
        /// Interface name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
}

/// An open TUN device (layer 3, no packet-information header).
pub struct Tun {
    name: String,
    dev: tun_rs::AsyncDevice,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun").field("name", &self.name).finish()
    }
}

impl Tun {
    /// Create (or attach to) TUN device `name` with the given MTU; it stays down and
    /// without an address until the link comes up.
    pub fn open(name: &str, mtu: u16) -> Result<Self, TunError> {
        let dev = tun_rs::DeviceBuilder::new()
            .name(name)
            .mtu(mtu)
            .packet_information(false)
            .build_async()
            .map_err(|source| TunError::Unavailable {
                name: name.to_string(),
                source,
            })?;
        Ok(Self {
            name: name.to_string(),
            dev,
        })
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Receive one IP packet into `buf`; returns its length.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize, TunError> {
        self.dev.recv(buf).await.map_err(|source| TunError::Io {
            name: self.name.clone(),
            source,
        })
    }

    /// Send one IP packet to the kernel.
    pub async fn send(&self, packet: &[u8]) -> Result<(), TunError> {
        self.dev
            .send(packet)
            .await
            .map(|_| ())
            .map_err(|source| TunError::Io {
                name: self.name.clone(),
                source,
            })
    }
}
