//! Masquerading application helpers (2.2 `ip_masq_app`): the registry that binds a helper to new
//! entries by (protocol, port), and the helpers' payload logic ([`ftp`], [`irc`]). Owns helper knowledge
//! only; entry creation and sequence deltas live in [`crate::masq::translate`], the
//! `/proc/net/ip_masq/app` text in [`crate::views`].

pub mod ftp;
pub mod irc;

use crate::wire::proto;
use std::ops::Range;

/// Helper number of the FTP helper.
pub const FTP: u8 = 0;
/// Helper number of the IRC DCC helper.
pub const IRC: u8 = 1;

/// Most ports one helper may be registered on (2.2 `MAX_MASQ_APP_PORTS`).
pub const MAX_PORTS_PER_HELPER: usize = 12;

/// Name of a helper number.
pub fn helper_name(h: u8) -> &'static str {
    match h {
        FTP => "ftp",
        IRC => "irc",
        _ => "?",
    }
}

/// What a helper found in a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperAction {
    /// An active-mode address to rewrite: `range` is the argument's byte range in the payload.
    Port {
        /// Byte range of the argument text.
        range: Range<usize>,
        /// Inside address announced.
        addr: std::net::Ipv4Addr,
        /// Inside port announced.
        port: u16,
        /// `EPRT` (RFC 2428) rather than `PORT`.
        eprt: bool,
    },
    /// A passive-mode request (`PASV`/`EPSV`): watch the reply.
    Pasv,
}

/// Errors changing the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// The (protocol, port) already has a helper.
    #[error("port already has a helper")]
    Busy,
    /// The helper already has the maximum number of ports.
    #[error("too many ports for this helper")]
    TooManyPorts,
    /// Unknown helper name or protocol.
    #[error("no such helper")]
    NoSuchHelper,
}

/// The registry: (protocol, port) → helper.
#[derive(Debug, Clone, Default)]
pub struct HelperRegistry {
    entries: Vec<(u8, u16, u8)>,
}

impl HelperRegistry {
    /// The 2.2 default: `ftp` on TCP 21.
    pub fn with_defaults() -> HelperRegistry {
        HelperRegistry {
            entries: vec![(proto::TCP, 21, FTP)],
        }
    }
    /// An empty registry.
    pub fn empty() -> HelperRegistry {
        HelperRegistry::default()
    }
    /// Register helper `name` on (proto, port).
    pub fn register(&mut self, name: &str, p: u8, port: u16) -> Result<(), HelperError> {
        let h = match name {
            "ftp" if p == proto::TCP => FTP,
            "irc" if p == proto::TCP => IRC,
            _ => return Err(HelperError::NoSuchHelper),
        };
        if self.lookup(p, port).is_some() {
            return Err(HelperError::Busy);
        }
        if self.entries.iter().filter(|e| e.2 == h).count() >= MAX_PORTS_PER_HELPER {
            return Err(HelperError::TooManyPorts);
        }
        // 2.2 lists the most recently registered first.
        self.entries.insert(0, (p, port, h));
        Ok(())
    }
    /// Remove the helper on (proto, port); true if there was one.
    pub fn unregister(&mut self, p: u8, port: u16) -> bool {
        let n = self.entries.len();
        self.entries.retain(|e| !(e.0 == p && e.1 == port));
        n != self.entries.len()
    }
    /// Helper for (proto, port).
    pub fn lookup(&self, p: u8, port: u16) -> Option<u8> {
        self.entries
            .iter()
            .find(|e| e.0 == p && e.1 == port)
            .map(|e| e.2)
    }
    /// Registered (proto, port, helper) triples in listing order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u16, u8)> + '_ {
        self.entries.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rules() {
        let mut reg = HelperRegistry::with_defaults();
        assert_eq!(reg.register("ftp", proto::TCP, 21), Err(HelperError::Busy));
        assert_eq!(
            reg.register("raudio", proto::TCP, 7070),
            Err(HelperError::NoSuchHelper)
        );
        assert_eq!(
            reg.register("irc", proto::UDP, 6667),
            Err(HelperError::NoSuchHelper)
        );
        reg.register("irc", proto::TCP, 6667).expect("irc on 6667");
        assert_eq!(reg.lookup(proto::TCP, 6667), Some(IRC));
        assert_eq!(helper_name(IRC), "irc");
        for p in 0..11 {
            reg.register("ftp", proto::TCP, 2100 + p)
                .expect("room for 12");
        }
        assert_eq!(
            reg.register("ftp", proto::TCP, 3000),
            Err(HelperError::TooManyPorts)
        );
        assert_eq!(reg.lookup(proto::TCP, 2105), Some(FTP));
        assert!(reg.unregister(proto::TCP, 2105));
        assert_eq!(reg.lookup(proto::TCP, 2105), None);
    }
}
