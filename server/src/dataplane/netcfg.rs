//! Interface addresses, routes and link state for the TUN device, set over rtnetlink (no
//! `ip` subprocess, no iproute2 at run time); each operation is bounded in time. Owns no
//! packets; called by the link manager when a link goes up or down.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_core::ErrorMessage;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::route::{
    RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, LinkUnspec, RouteMessageBuilder};

/// How long one operation (all its netlink requests) may take.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors configuring the interface.
#[derive(Debug, thiserror::Error)]
pub enum NetCfgError {
    /// A netlink socket could not be opened (no `AF_NETLINK`, or out of descriptors).
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] io::Error),
    /// The named network namespace could not be entered.
    #[error("cannot enter network namespace {ns}: {reason}")]
    Namespace {
        /// The namespace name (under `/run/netns`).
        ns: String,
        /// Why.
        reason: String,
    },
    /// The interface does not exist.
    #[error("interface {dev} does not exist")]
    NoDevice {
        /// Interface name.
        dev: String,
    },
    /// The kernel refused a request (e.g. EPERM without CAP_NET_ADMIN).
    #[error("{op} on {dev}: {source}")]
    Kernel {
        /// What was asked, e.g. `add route 0.0.0.0/0`.
        op: String,
        /// Interface name.
        dev: String,
        /// The kernel's error number.
        source: io::Error,
    },
    /// The kernel's answer was not understood.
    #[error("{op} on {dev}: {message}")]
    Protocol {
        /// What was asked.
        op: String,
        /// Interface name.
        dev: String,
        /// What went wrong.
        message: String,
    },
    /// The operation did not finish in time.
    #[error("{op} on {dev} timed out")]
    Timeout {
        /// What was asked.
        op: String,
        /// Interface name.
        dev: String,
    },
}

impl NetCfgError {
    /// The kernel's errno, when the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A route to install when the link is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSpec {
    /// The default route (0.0.0.0/0).
    Default,
    /// A destination prefix.
    Net(Ipv4Net),
}

impl std::str::FromStr for RouteSpec {
    type Err = ipnet::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "default" || s == "0.0.0.0/0" {
            Ok(Self::Default)
        } else {
            Ok(Self::Net(s.parse()?))
        }
    }
}

impl RouteSpec {
    /// The destination prefix (host bits cleared).
    pub fn net(&self) -> Ipv4Net {
        match self {
            Self::Default => Ipv4Net::default(),
            Self::Net(n) => n.trunc(),
        }
    }
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Net(n) => write!(f, "{n}"),
        }
    }
}

/// The TUN interface's configuration handle: its name and the network namespace it lives
/// in (`None` = the server's own; the demo moves the device into a namespace of its own).
/// Clones share the memory of the administrator's policy rules that hairpinning moved
/// ([`NetCfg::hairpin_on`]), so that [`NetCfg::hairpin_off`] puts them back exactly.
#[derive(Debug, Clone)]
pub struct NetCfg {
    /// Interface name, e.g. `masq0`.
    pub dev: String,
    /// Namespace name (a file under `/run/netns`, as `ip netns` makes), if not the current one.
    pub netns: Option<String>,
    /// The rules [`NetCfg::hairpin_on`] deleted (the `lookup local` at preference 0, as the
    /// kernel dumped it), re-added verbatim by [`NetCfg::hairpin_off`].
    moved_rules: std::sync::Arc<std::sync::Mutex<Vec<RuleMessage>>>,
}

impl PartialEq for NetCfg {
    fn eq(&self, other: &Self) -> bool {
        self.dev == other.dev && self.netns == other.netns
    }
}

impl Eq for NetCfg {}

/// One rtnetlink connection; its driver task ends with it.
struct Conn {
    handle: Handle,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Open an rtnetlink socket in the current namespace, or in `/run/netns/<ns>`: the socket
/// is created on a fresh thread that joined the namespace (setns affects only that thread;
/// the socket keeps the namespace it was created in).
async fn connect(netns: Option<&str>) -> Result<Conn, NetCfgError> {
    let (conn, handle, _) = match netns {
        None => rtnetlink::new_connection().map_err(NetCfgError::Socket)?,
        Some(ns) => {
            let rt = tokio::runtime::Handle::current();
            let name = ns.to_string();
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("netcfg-setns".into())
                .spawn(move || {
                    let _entered = rt.enter();
                    let res = std::fs::File::open(format!("/run/netns/{name}"))
                        .map_err(|e| e.to_string())
                        .and_then(|f| {
                            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                                .map_err(|e| e.to_string())
                        })
                        .map_err(|reason| NetCfgError::Namespace {
                            ns: name.clone(),
                            reason,
                        })
                        .and_then(|()| rtnetlink::new_connection().map_err(NetCfgError::Socket));
                    let _ = tx.send(res);
                })
                .map_err(NetCfgError::Socket)?;
            rx.await.map_err(|_| NetCfgError::Namespace {
                ns: ns.to_string(),
                reason: "the thread entering it died".into(),
            })??
        }
    };
    let driver = tokio::spawn(conn);
    Ok(Conn { handle, driver })
}

/// The errno of a netlink error answer (the kernel sends it negated).
fn errno_of(e: &ErrorMessage) -> i32 {
    e.raw_code().saturating_neg()
}

impl NetCfg {
    /// Configuration of `dev` in the current namespace.
    pub fn new(dev: &str) -> Self {
        Self {
            dev: dev.to_string(),
            netns: None,
            moved_rules: Default::default(),
        }
    }

    /// Configuration of `dev` in the namespace `/run/netns/<netns>`.
    pub fn in_netns(dev: &str, netns: &str) -> Self {
        Self {
            netns: Some(netns.to_string()),
            ..Self::new(dev)
        }
    }

    /// The memory of moved rules (a poisoned lock is taken over: plain data).
    fn moved(&self) -> std::sync::MutexGuard<'_, Vec<RuleMessage>> {
        self.moved_rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, op: &str, e: rtnetlink::Error) -> NetCfgError {
        match e {
            rtnetlink::Error::NetlinkError(m) => NetCfgError::Kernel {
                op: op.to_string(),
                dev: self.dev.clone(),
                source: io::Error::from_raw_os_error(errno_of(&m)),
            },
            other => NetCfgError::Protocol {
                op: op.to_string(),
                dev: self.dev.clone(),
                message: other.to_string(),
            },
        }
    }

    /// Run `f` with a fresh connection, bounded by [`NETLINK_TIMEOUT`].
    async fn with_conn<T, F, Fut>(&self, op: &str, f: F) -> Result<T, NetCfgError>
    where
        F: FnOnce(Handle) -> Fut,
        Fut: std::future::Future<Output = Result<T, NetCfgError>>,
    {
        let work = async {
            let conn = connect(self.netns.as_deref()).await?;
            let out = f(conn.handle.clone()).await;
            drop(conn);
            out
        };
        tokio::time::timeout(NETLINK_TIMEOUT, work)
            .await
            .map_err(|_| NetCfgError::Timeout {
                op: op.to_string(),
                dev: self.dev.clone(),
            })?
    }

    /// The device's interface index, `None` when it does not exist.
    async fn index(&self, h: &Handle) -> Result<Option<u32>, NetCfgError> {
        let mut links = h.link().get().match_name(self.dev.clone()).execute();
        match links.try_next().await {
            Ok(Some(l)) => Ok(Some(l.header.index)),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(m)) if errno_of(&m) == libc::ENODEV => Ok(None),
            Err(e) => Err(self.error("get link", e)),
        }
    }

    async fn require_index(&self, h: &Handle) -> Result<u32, NetCfgError> {
        self.index(h).await?.ok_or_else(|| NetCfgError::NoDevice {
            dev: self.dev.clone(),
        })
    }

    /// Delete every address of interface `index` (`ip addr flush dev`).
    async fn flush(&self, h: &Handle, index: u32) -> Result<(), NetCfgError> {
        let addrs: Vec<_> = h
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.error("list addresses", e))?;
        for a in addrs.into_iter().filter(|a| a.header.index == index) {
            match h.address().del(a).execute().await {
                Ok(()) => {}
                // Gone meanwhile (e.g. with its primary): nothing to do.
                Err(rtnetlink::Error::NetlinkError(m))
                    if errno_of(&m) == libc::EADDRNOTAVAIL || errno_of(&m) == libc::ENODEV => {}
                Err(e) => return Err(self.error("delete address", e)),
            }
        }
        Ok(())
    }

    async fn set_up(&self, h: &Handle, index: u32, up: bool) -> Result<(), NetCfgError> {
        let b = LinkUnspec::new_with_index(index);
        let msg = if up { b.up() } else { b.down() }.build();
        h.link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| self.error(if up { "set link up" } else { "set link down" }, e))
    }

    /// True when the namespace has an IPv4 unicast default route in the main table on a
    /// device other than ours.
    pub async fn other_default_route_exists(&self) -> Result<bool, NetCfgError> {
        self.with_conn("list routes", |h| async move {
            let ours = self.index(&h).await?;
            let dump = RouteMessageBuilder::<Ipv4Addr>::new().build();
            let routes: Vec<RouteMessage> = h
                .route()
                .get(dump)
                .execute()
                .try_collect()
                .await
                .map_err(|e| self.error("list routes", e))?;
            Ok(routes.iter().any(|r| is_default(r) && oif(r) != ours))
        })
        .await
    }

    /// Give the device the point-to-point address `local` peer `peer` and bring it up.
    pub async fn link_up(&self, local: Ipv4Addr, peer: Ipv4Addr) -> Result<(), NetCfgError> {
        self.with_conn("link up", |h| async move {
            let index = self.require_index(&h).await?;
            self.flush(&h, index).await?;
            // `ip addr add LOCAL peer PEER/32`: IFA_LOCAL is ours, IFA_ADDRESS the peer's.
            let mut add = h.address().add(index, IpAddr::V4(local), 32);
            add.message_mut().attributes = vec![
                AddressAttribute::Local(IpAddr::V4(local)),
                AddressAttribute::Address(IpAddr::V4(peer)),
            ];
            add.execute()
                .await
                .map_err(|e| self.error(&format!("add address {local} peer {peer}"), e))?;
            self.set_up(&h, index, true).await
        })
        .await
    }

    /// Set the device's MTU (`ip link set DEV mtu MTU`).
    pub async fn set_mtu(&self, mtu: u16) -> Result<(), NetCfgError> {
        let op = format!("set mtu {mtu}");
        let op = op.as_str();
        self.with_conn(op, |h| async move {
            let index = self.require_index(&h).await?;
            let msg = LinkUnspec::new_with_index(index)
                .mtu(u32::from(mtu))
                .build();
            h.link()
                .set(msg)
                .execute()
                .await
                .map_err(|e| self.error(op, e))
        })
        .await
    }

    /// The device's MTU as the kernel reports it.
    pub async fn mtu(&self) -> Result<u32, NetCfgError> {
        self.with_conn("get mtu", |h| async move {
            let mut links = h.link().get().match_name(self.dev.clone()).execute();
            let link = match links.try_next().await {
                Ok(Some(l)) => l,
                Ok(None) => {
                    return Err(NetCfgError::NoDevice {
                        dev: self.dev.clone(),
                    })
                }
                Err(e) => return Err(self.error("get link", e)),
            };
            link.attributes
                .iter()
                .find_map(|a| match a {
                    rtnetlink::packet_route::link::LinkAttribute::Mtu(m) => Some(*m),
                    _ => None,
                })
                .ok_or_else(|| NetCfgError::Protocol {
                    op: "get mtu".into(),
                    dev: self.dev.clone(),
                    message: "no IFLA_MTU in the answer".into(),
                })
        })
        .await
    }

    /// Remove the device's addresses and take it down (its routes go with it).
    pub async fn link_down(&self) -> Result<(), NetCfgError> {
        self.with_conn("link down", |h| async move {
            let index = self.require_index(&h).await?;
            self.flush(&h, index).await?;
            self.set_up(&h, index, false).await
        })
        .await
    }

    /// Install `route` via the device (replacing an identical one), as
    /// `ip route replace DST dev DEV` does: main table, scope link, protocol boot.
    pub async fn add_route(&self, route: RouteSpec) -> Result<(), NetCfgError> {
        let op = format!("add route {route}");
        let op = op.as_str();
        self.with_conn(op, |h| async move {
            let index = self.require_index(&h).await?;
            let net = route.net();
            let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(net.network(), net.prefix_len())
                .output_interface(index)
                .scope(RouteScope::Link)
                .protocol(RouteProtocol::Boot)
                .build();
            h.route()
                .add(msg)
                .replace()
                .execute()
                .await
                .map_err(|e| self.error(op, e))
        })
        .await
    }

    /// Remove `route` via the device; a route (or device) already gone is not an error.
    pub async fn del_route(&self, route: RouteSpec) -> Result<(), NetCfgError> {
        let op = format!("delete route {route}");
        let op = op.as_str();
        self.with_conn(op, |h| async move {
            let Some(index) = self.index(&h).await? else {
                return Ok(());
            };
            let net = route.net();
            let mut msg = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(net.network(), net.prefix_len())
                .output_interface(index)
                .build();
            // As `ip route del`: any protocol, any scope.
            msg.header.protocol = RouteProtocol::Unspec;
            msg.header.scope = RouteScope::NoWhere;
            match h.route().del(msg).execute().await {
                Ok(()) => Ok(()),
                Err(rtnetlink::Error::NetlinkError(m))
                    if errno_of(&m) == libc::ESRCH || errno_of(&m) == libc::ENODEV =>
                {
                    Ok(())
                }
                Err(e) => Err(self.error(op, e)),
            }
        })
        .await
    }
}

/// `IPV4_DEVCONF_FORWARDING` (linux/ip.h): the index of `forwarding` among an interface's
/// IPv4 settings (`IFLA_INET_CONF`).
const IPV4_DEVCONF_FORWARDING: u16 = 1;

/// `IFLA_INET_CONF` inside `IFLA_AF_SPEC`/`AF_INET`.
const IFLA_INET_CONF: u16 = 1;

/// The nested `IFLA_INET_CONF` value that sets one IPv4 setting: one attribute whose type is
/// the setting's index and whose value is a native-endian u32 (the kernel's
/// `inet_set_link_af` reads it this way; its dumps are a flat array instead).
fn inet_conf_one(index: u16, value: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(8);
    v.extend_from_slice(&8u16.to_ne_bytes());
    v.extend_from_slice(&index.to_ne_bytes());
    v.extend_from_slice(&value.to_ne_bytes());
    v
}

impl NetCfg {
    /// The same namespace, another interface (e.g. the LAN side of the TUN's).
    pub fn other(&self, dev: &str) -> Self {
        Self {
            dev: dev.to_string(),
            netns: self.netns.clone(),
            moved_rules: Default::default(),
        }
    }

    /// The interface's IPv4 forwarding switch (`net.ipv4.conf.<dev>.forwarding`), read
    /// over rtnetlink (`IFLA_AF_SPEC`): `/proc/sys` is hidden or read-only under the unit's
    /// `ProcSubset=pid` and `ProtectKernelTunables=yes`, netlink is not.
    pub async fn ipv4_forwarding(&self) -> Result<bool, NetCfgError> {
        use rtnetlink::packet_route::link::{AfSpecInet, AfSpecUnspec, LinkAttribute};
        self.with_conn("get forwarding", |h| async move {
            let mut links = h.link().get().match_name(self.dev.clone()).execute();
            let link = match links.try_next().await {
                Ok(Some(l)) => l,
                Ok(None) => {
                    return Err(NetCfgError::NoDevice {
                        dev: self.dev.clone(),
                    })
                }
                Err(rtnetlink::Error::NetlinkError(m)) if errno_of(&m) == libc::ENODEV => {
                    return Err(NetCfgError::NoDevice {
                        dev: self.dev.clone(),
                    })
                }
                Err(e) => return Err(self.error("get link", e)),
            };
            link.attributes
                .iter()
                .filter_map(|a| match a {
                    LinkAttribute::AfSpecUnspec(v) => Some(v),
                    _ => None,
                })
                .flatten()
                .filter_map(|a| match a {
                    AfSpecUnspec::Inet(v) => Some(v),
                    _ => None,
                })
                .flatten()
                .find_map(|a| match a {
                    AfSpecInet::DevConf(c) => Some(c.forwarding != 0),
                    _ => None,
                })
                .ok_or_else(|| NetCfgError::Protocol {
                    op: "get forwarding".into(),
                    dev: self.dev.clone(),
                    message: "no IPv4 settings (IFLA_INET_CONF) in the answer".into(),
                })
        })
        .await
    }

    /// Switch the interface's IPv4 forwarding (`net.ipv4.conf.<dev>.forwarding`) over
    /// rtnetlink (`RTM_SETLINK` with `IFLA_AF_SPEC`/`AF_INET`/`IFLA_INET_CONF`), as
    /// `CAP_NET_ADMIN` allows even where `/proc/sys` is read-only. For IPv4 the kernel
    /// decides forwarding by the *input* interface's switch alone (`ip_route_input_slow`:
    /// `IN_DEV_FORWARD(in_dev)`), so this needs neither `net.ipv4.ip_forward` nor
    /// `conf/all/forwarding`. (IPv6 is different: its per-interface `forwarding` only
    /// selects host/router behaviour; masqdial forwards no IPv6.)
    pub async fn set_ipv4_forwarding(&self, on: bool) -> Result<(), NetCfgError> {
        use rtnetlink::packet_core::{DefaultNla, NLA_F_NESTED};
        use rtnetlink::packet_route::link::{AfSpecInet, AfSpecUnspec, LinkAttribute};
        let op = format!("set forwarding {}", u8::from(on));
        let op = op.as_str();
        self.with_conn(op, |h| async move {
            let index = self.require_index(&h).await?;
            let conf = DefaultNla::new(
                IFLA_INET_CONF | NLA_F_NESTED,
                inet_conf_one(IPV4_DEVCONF_FORWARDING, u32::from(on)),
            );
            let msg = LinkUnspec::new_with_index(index)
                .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(
                    vec![AfSpecInet::Other(conf)],
                )]))
                .build();
            h.link()
                .set(msg)
                .execute()
                .await
                .map_err(|e| self.error(op, e))
        })
        .await
    }
}

/// The routing table holding the hairpin route (`default dev <TUN>`): RFC 4787's number.
pub const HAIRPIN_TABLE: u32 = 4787;

/// The protocol mark (`FRA_PROTOCOL`, `ip rule ... proto 77`) of every policy rule masqdial
/// adds, so that they can be told from the administrator's and removed after a crash.
pub const RULE_PROTO: u8 = 77;

/// The kernel's `local` routing table.
const RT_TABLE_LOCAL: u32 = 255;

/// Where the kernel's `lookup local` rule moves while hairpinning is on (from 0).
pub const LOCAL_RULE_MOVED_PREF: u32 = 1;

/// What [`NetCfg::hairpin_rules`] finds among the namespace's IPv4 policy rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HairpinRules {
    /// Our rules (protocol [`RULE_PROTO`]): the hairpin rule and the moved `lookup local`.
    pub ours: usize,
    /// A `lookup local` rule at preference 0 that is not ours (the kernel's own).
    pub kernel_local_at_0: bool,
    /// Any `lookup local` rule (ours or not).
    pub any_local: bool,
}

fn rule_table(r: &RuleMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RuleAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

fn rule_pref(r: &RuleMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RuleAttribute::Priority(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(0)
}

fn rule_is_ours(r: &RuleMessage) -> bool {
    r.attributes
        .contains(&RuleAttribute::Protocol(RouteProtocol::Other(RULE_PROTO)))
}

fn is_local_lookup(r: &RuleMessage) -> bool {
    r.header.action == RuleAction::ToTable && rule_table(r) == RT_TABLE_LOCAL
}

impl NetCfg {
    async fn rules(&self, h: &Handle) -> Result<Vec<RuleMessage>, NetCfgError> {
        h.rule()
            .get(IpVersion::V4)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.error("list rules", e))
    }

    /// Add `lookup local` at `pref`, marked `proto` (an identical one present is fine).
    async fn add_local_rule(
        &self,
        h: &Handle,
        pref: u32,
        proto: RouteProtocol,
    ) -> Result<(), NetCfgError> {
        let mut req = h
            .rule()
            .add()
            .v4()
            .table_id(RT_TABLE_LOCAL)
            .action(RuleAction::ToTable)
            .priority(pref);
        req.message_mut()
            .attributes
            .push(RuleAttribute::Protocol(proto));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m)) if errno_of(&m) == libc::EEXIST => Ok(()),
            Err(e) => Err(self.error(&format!("add rule {pref}: lookup local"), e)),
        }
    }

    /// Add a rule exactly as it was dumped (as `ip rule restore` does); one already there is
    /// fine.
    async fn readd_rule(&self, h: &Handle, r: RuleMessage) -> Result<(), NetCfgError> {
        let op = format!("restore rule {}", rule_pref(&r));
        let mut req = h.rule().add();
        *req.message_mut() = r;
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m)) if errno_of(&m) == libc::EEXIST => Ok(()),
            Err(e) => Err(self.error(&op, e)),
        }
    }

    async fn del_rule(&self, h: &Handle, r: RuleMessage) -> Result<(), NetCfgError> {
        let op = format!("delete rule {}", rule_pref(&r));
        match h.rule().del(r).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m))
                if errno_of(&m) == libc::ENOENT || errno_of(&m) == libc::ESRCH =>
            {
                Ok(())
            }
            Err(e) => Err(self.error(&op, e)),
        }
    }

    /// What the namespace's policy rules say about hairpinning (for checks and tests).
    pub async fn hairpin_rules(&self) -> Result<HairpinRules, NetCfgError> {
        self.with_conn("list rules", |h| async move {
            let rules = self.rules(&h).await?;
            Ok(HairpinRules {
                ours: rules.iter().filter(|r| rule_is_ours(r)).count(),
                kernel_local_at_0: rules
                    .iter()
                    .any(|r| is_local_lookup(r) && rule_pref(r) == 0 && !rule_is_ours(r)),
                any_local: rules.iter().any(is_local_lookup),
            })
        })
        .await
    }

    /// RFC 4787 REQ-9 / RFC 5382 REQ-8 hairpinning needs LAN packets addressed to the link's
    /// address (`link_addr`, the device's own address, so the kernel would deliver them
    /// locally) to reach the data plane instead: route them from `lan` into the device.
    /// `ip route replace default dev DEV table 4787`, the kernel's `lookup local` rule moved
    /// from preference 0 to [`LOCAL_RULE_MOVED_PREF`] (added before the old one is deleted,
    /// so local delivery never lapses), and `ip rule add pref 0 iif LAN to LINK/32 lookup
    /// 4787`; our rules are marked [`RULE_PROTO`]. Undone by [`NetCfg::hairpin_off`].
    /// The gateway's own traffic (input interface `lo`) and packets from the device are
    /// untouched.
    pub async fn hairpin_on(&self, lan: &str, link_addr: Ipv4Addr) -> Result<(), NetCfgError> {
        self.with_conn("hairpin on", |h| async move {
            let index = self.require_index(&h).await?;
            let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                .output_interface(index)
                .table_id(HAIRPIN_TABLE)
                .scope(RouteScope::Link)
                .protocol(RouteProtocol::Boot)
                .build();
            h.route()
                .add(msg)
                .replace()
                .execute()
                .await
                .map_err(|e| self.error("add route default table 4787", e))?;
            let rules = self.rules(&h).await?;
            // A hairpin rule of an earlier link (another address) goes first.
            for r in rules
                .iter()
                .filter(|r| rule_is_ours(r) && rule_table(r) == HAIRPIN_TABLE)
            {
                self.del_rule(&h, r.clone()).await?;
            }
            // A `lookup local` at preference 0 (the kernel's, or the administrator's) would
            // come before our rule there: it moves to LOCAL_RULE_MOVED_PREF, remembered as
            // dumped so that it comes back exactly. A `lookup local` the administrator
            // placed elsewhere is not touched (our rule at 0 comes first anyway).
            let at0: Vec<RuleMessage> = rules
                .iter()
                .filter(|r| is_local_lookup(r) && rule_pref(r) == 0 && !rule_is_ours(r))
                .cloned()
                .collect();
            if !at0.is_empty() {
                self.add_local_rule(&h, LOCAL_RULE_MOVED_PREF, RouteProtocol::Other(RULE_PROTO))
                    .await?;
                for r in at0 {
                    self.del_rule(&h, r.clone()).await?;
                    self.moved().push(r);
                }
            }
            let mut req = h
                .rule()
                .add()
                .v4()
                .input_interface(lan)
                .destination_prefix(link_addr, 32)
                .table_id(HAIRPIN_TABLE)
                .action(RuleAction::ToTable)
                .priority(0);
            req.message_mut()
                .attributes
                .push(RuleAttribute::Protocol(RouteProtocol::Other(RULE_PROTO)));
            req.execute().await.map_err(|e| {
                self.error(
                    &format!("add rule 0: iif {lan} to {link_addr} lookup {HAIRPIN_TABLE}"),
                    e,
                )
            })
        })
        .await
    }

    /// Undo [`NetCfg::hairpin_on`] (also after a crash: every rule marked [`RULE_PROTO`]
    /// goes): the rules it moved back first, exactly as they were (remembered by this
    /// handle and its clones), then our rules, then the hairpin route. After a crash there
    /// is no memory: our moved `lookup local` (preference [`LOCAL_RULE_MOVED_PREF`]) says a
    /// `lookup local` was at 0, and the kernel's default one is put there (an
    /// administrator's own attributes on it, e.g. `proto static`, come back as `proto
    /// kernel`); a `lookup local` the administrator placed elsewhere was never moved.
    /// Answers whether anything was ours.
    pub async fn hairpin_off(&self) -> Result<bool, NetCfgError> {
        self.with_conn("hairpin off", |h| async move {
            let rules = self.rules(&h).await?;
            let ours: Vec<RuleMessage> =
                rules.iter().filter(|r| rule_is_ours(r)).cloned().collect();
            let moved = std::mem::take(&mut *self.moved());
            if ours.is_empty() && moved.is_empty() {
                return Ok(false);
            }
            if !moved.is_empty() {
                for r in &moved {
                    if let Err(e) = self.readd_rule(&h, r.clone()).await {
                        // Keep the memory for another try.
                        self.moved().extend(moved.iter().cloned());
                        return Err(e);
                    }
                }
            } else if ours.iter().any(is_local_lookup)
                && !rules
                    .iter()
                    .any(|r| is_local_lookup(r) && rule_pref(r) == 0 && !rule_is_ours(r))
            {
                self.add_local_rule(&h, 0, RouteProtocol::Kernel).await?;
            }
            for r in ours {
                self.del_rule(&h, r).await?;
            }
            let mut msg = RouteMessageBuilder::<Ipv4Addr>::new()
                .table_id(HAIRPIN_TABLE)
                .build();
            msg.header.protocol = RouteProtocol::Unspec;
            msg.header.scope = RouteScope::NoWhere;
            match h.route().del(msg).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(m))
                    if errno_of(&m) == libc::ESRCH || errno_of(&m) == libc::ENODEV => {}
                Err(e) => return Err(self.error("delete route default table 4787", e)),
            }
            Ok(true)
        })
        .await
    }
}

/// A unicast 0.0.0.0/0 route of the main table.
fn is_default(r: &RouteMessage) -> bool {
    let table = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table));
    r.header.destination_prefix_length == 0
        && r.header.kind == RouteType::Unicast
        && table == u32::from(RouteHeader::RT_TABLE_MAIN)
}

/// The route's output interface (none for a multipath route).
fn oif(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_spec_parses() {
        assert_eq!(
            "default".parse::<RouteSpec>().ok(),
            Some(RouteSpec::Default)
        );
        assert_eq!(
            "0.0.0.0/0".parse::<RouteSpec>().ok(),
            Some(RouteSpec::Default)
        );
        let r: RouteSpec = "203.0.113.0/24".parse().expect("valid prefix");
        assert_eq!(r.to_string(), "203.0.113.0/24");
        assert!("203.0.113.0/33".parse::<RouteSpec>().is_err());
        assert!("nonsense".parse::<RouteSpec>().is_err());
    }
}
