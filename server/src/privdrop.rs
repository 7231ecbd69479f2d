//! mserver started as root (outside systemd, whose unit already runs it as `masqdial` with
//! just the capabilities it needs) becomes an unprivileged user keeping only
//! `CAP_NET_ADMIN` (TUN device, addresses, routes, policy rules, forwarding switches) and
//! `CAP_NET_RAW`, as chronyd and ntpd do (finding N18).
//!
//! Order: the listeners are bound first, as root (port 224 is below 1024), then
//! [`drop_to`] runs, *before* the async runtime starts any thread (capabilities and the
//! keep-caps flag are per thread in Linux: a drop on one thread of many would leave the
//! others privileged; a thread made after the drop inherits its credentials). The TUN device
//! is then opened with the kept `CAP_NET_ADMIN`, and the serial ports through the user's
//! groups (`dialout`), exactly as under the unit. Steps: keep-caps on; the bounding set cut to
//! the two; the user's groups, gid, uid (real, effective and saved: no way back); permitted
//! and effective set to the two, inheritable and ambient emptied; keep-caps off; and a check
//! that `setuid(0)` now fails.

use std::net::SocketAddr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Uid, User};

/// The user mserver becomes when started as root and the configuration names none.
pub const DEFAULT_USER: &str = "masqdial";

/// The capabilities kept.
pub const KEPT: [Capability; 2] = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW];

/// Why privileges could not be dropped (mserver does not start: it never runs as root by
/// accident of a failed drop).
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    /// The configured user does not exist.
    #[error("[server] user = {0:?}: no such user")]
    NoUser(String),
    /// The user database could not be read.
    #[error("cannot look up user {user:?}: {source}")]
    Lookup {
        /// The user.
        user: String,
        /// Why.
        source: nix::Error,
    },
    /// Threads run already: a drop now would not reach them.
    #[error("cannot drop privileges: {0} threads run already (a bug: the drop must come before the runtime)")]
    Threads(usize),
    /// A step of the drop failed.
    #[error("cannot drop privileges to {user}: {step}: {message}")]
    Step {
        /// The user.
        user: String,
        /// Which step.
        step: &'static str,
        /// What the kernel said.
        message: String,
    },
}

/// The user to become: none when not running as root; the configured `[server] user`
/// (which must exist); else [`DEFAULT_USER`] when it exists (`None` otherwise: the caller
/// warns that it stays root).
pub fn target(configured: Option<&str>) -> Result<Option<User>, PrivError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let lookup = |name: &str| {
        User::from_name(name).map_err(|source| PrivError::Lookup {
            user: name.to_string(),
            source,
        })
    };
    match configured {
        Some(name) => lookup(name)?
            .map(Some)
            .ok_or_else(|| PrivError::NoUser(name.to_string())),
        None => Ok(lookup(DEFAULT_USER).ok().flatten()),
    }
}

/// The number of threads of this process (`/proc/self/status`).
fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Become `user` keeping only [`KEPT`]. Must run while this process has one thread.
pub fn drop_to(user: &User) -> Result<(), PrivError> {
    let n = threads();
    if n != 1 {
        return Err(PrivError::Threads(n));
    }
    let step = |step: &'static str| {
        let name = user.name.clone();
        move |e: &dyn std::fmt::Display| PrivError::Step {
            user: name,
            step,
            message: e.to_string(),
        }
    };
    caps::securebits::set_keepcaps(true).map_err(|e| step("keep capabilities")(&e))?;
    let keep: CapsHashSet = KEPT.into_iter().collect();
    let supported = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    for c in supported.iter().filter(|c| !keep.contains(c)) {
        caps::drop(None, CapSet::Bounding, *c).map_err(|e| step("bounding set")(&e))?;
    }
    let name = std::ffi::CString::new(user.name.as_str()).map_err(|e| step("user name")(&e))?;
    let groups = nix::unistd::getgrouplist(&name, user.gid).map_err(|e| step("groups")(&e))?;
    nix::unistd::setgroups(&groups).map_err(|e| step("setgroups")(&e))?;
    nix::unistd::setgid(user.gid).map_err(|e| step("setgid")(&e))?;
    nix::unistd::setuid(user.uid).map_err(|e| step("setuid")(&e))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(|e| step("permitted set")(&e))?;
    caps::set(None, CapSet::Effective, &keep).map_err(|e| step("effective set")(&e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| step("inheritable set")(&e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| step("ambient set")(&e))?;
    caps::securebits::set_keepcaps(false).map_err(|e| step("keep capabilities off")(&e))?;
    if user.uid.is_root() || nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(step("check")(&"root is still reachable"));
    }
    if nix::unistd::getegid() != user.gid || nix::unistd::getgid() != user.gid {
        return Err(step("check")(&"the group did not change"));
    }
    Ok(())
}

/// Listeners bound before the drop (as root), handed to the runtime afterwards.
#[derive(Debug, Default)]
pub struct Prebound {
    listeners: Vec<(SocketAddr, std::net::TcpListener)>,
}

impl Prebound {
    /// Bind each of `addrs` now (non-blocking, `SO_REUSEADDR` as tokio's own bind).
    pub fn bind(addrs: &[SocketAddr]) -> anyhow::Result<Self> {
        let mut listeners = Vec::new();
        for &addr in addrs {
            let sock = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            sock.set_reuse_address(true)?;
            sock.set_nonblocking(true)?;
            sock.bind(&addr.into())
                .and_then(|()| sock.listen(1024))
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            listeners.push((addr, sock.into()));
        }
        Ok(Self { listeners })
    }

    /// The listener bound for `addr` before the drop, or a fresh one (no drop happened).
    pub async fn take_or_bind(
        &mut self,
        addr: SocketAddr,
    ) -> anyhow::Result<tokio::net::TcpListener> {
        match self.listeners.iter().position(|(a, _)| *a == addr) {
            Some(i) => {
                let (_, l) = self.listeners.swap_remove(i);
                Ok(tokio::net::TcpListener::from_std(l)?)
            }
            None => crate::server::bind(addr).await,
        }
    }
}

/// Before the runtime: when running as root, bind `addrs` and become the configured user
/// (or [`DEFAULT_USER`]); otherwise nothing (the listeners are bound later, as before).
pub fn before_runtime(configured: Option<&str>, addrs: &[SocketAddr]) -> anyhow::Result<Prebound> {
    let Some(user) = target(configured)? else {
        if nix::unistd::geteuid().is_root() {
            tracing::warn!(
                "running as root: no `{DEFAULT_USER}` user to drop to (create it, or set [server] user)"
            );
        }
        return Ok(Prebound::default());
    };
    let pre = Prebound::bind(addrs)?;
    drop_to(&user)?;
    tracing::info!(
        user = %user.name,
        uid = user.uid.as_raw(),
        gid = user.gid.as_raw(),
        "dropped root: running as {} with CAP_NET_ADMIN and CAP_NET_RAW only",
        user.name
    );
    Ok(pre)
}
