//! NAT control: the admin's operations on the shared engine — rule edits (each saved to
//! the state directory), masquerade timeouts, listings and views, counters — and the
//! masquerade change feed that watchers subscribe to. It owns when state is persisted and
//! the feed task; it must not touch packets (the dataplane) or links (the link manager),
//! and it speaks nat-core and domain types, never protobuf.

pub mod feed;

use std::net::Ipv4Addr;
use std::sync::Arc;

use nat_core::chains::{self, ChainError, ChainSnapshot, Firewall, ListOptions};
use nat_core::masq::{EntrySnapshot, FreePorts};
use nat_core::views::{MasqFilter, MasqListOptions};
use tokio::sync::broadcast;

use crate::config::Config;
use crate::dataplane::{NatHandle, PumpCounters};
use crate::persist;

pub use feed::MasqDelta;

/// Errors of NAT control operations, mapped to gRPC codes by the rpc layer.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// A chain operation failed (ipchains' errno, in its words).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A rule spec, ruleset, check or argument did not parse or make sense.
    #[error("{0}")]
    Invalid(String),
    /// The change would pass a size cap ([`MAX_RULES`], [`MAX_CHAINS`]); not applied.
    #[error("{0}")]
    TooMany(String),
    /// The change could not be saved to the state directory, so it was not applied.
    #[error("saving {what} to the state directory: {source}")]
    Persist {
        /// What was being saved.
        what: &'static str,
        /// Cause.
        source: std::io::Error,
    },
}

/// Most rules in all chains together. A 2.2 box had no cap but its memory; here every
/// rule is walked per packet and listed in one `ListChains` answer, which must stay far
/// below the clients' 4 MiB message limit (4,096 rules list in well under 1 MiB).
pub const MAX_RULES: usize = 4096;
/// Most chains, the three built-in ones included.
pub const MAX_CHAINS: usize = 256;

/// Refuse a firewall over the caps, naming the cap.
fn within_caps(fw: &Firewall) -> Result<(), NatError> {
    let (rules, chains) = (fw.rule_count(), fw.chain_names().len());
    if rules > MAX_RULES {
        return Err(NatError::TooMany(format!(
            "too many rules: {rules} (at most {MAX_RULES} in all chains); delete or merge some first"
        )));
    }
    if chains > MAX_CHAINS {
        return Err(NatError::TooMany(format!(
            "too many chains: {chains} (at most {MAX_CHAINS}); delete unused ones with -X first"
        )));
    }
    Ok(())
}

/// Masquerade timeouts in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Established TCP.
    pub tcp: u32,
    /// TCP after FIN.
    pub tcpfin: u32,
    /// UDP.
    pub udp: u32,
    /// ICMP.
    pub icmp: u32,
}

/// Free masquerade ports per protocol and the configured range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortUsage {
    /// (free, total) per protocol.
    pub free: FreePorts,
    /// Lowest masquerade port.
    pub port_low: u16,
    /// Highest masquerade port.
    pub port_high: u16,
}

/// One page of the masquerade table, by ascending entry id.
#[derive(Debug, Clone)]
pub struct MasqPage {
    /// Entries of the page.
    pub entries: Vec<EntrySnapshot>,
    /// Cursor (slab slot) to start the next page from, if there is more.
    pub next: Option<u64>,
    /// Entries in the whole table.
    pub total: u64,
}

/// A classic text view.
#[derive(Debug, Clone)]
pub enum View {
    /// `ipchains -L [chain]`.
    Chains {
        /// One chain, or all.
        chain: Option<String>,
        /// `-n -v -x --line-numbers`.
        options: ListOptions,
    },
    /// `ipchains -M -L`, the entries a filter selects (portfw connections listed among
    /// them, as 2.2 did).
    Masq(MasqListOptions, MasqFilter),
    /// `/proc/net/ip_masquerade`.
    ProcMasquerade,
    /// `/proc/net/ip_fwchains`.
    ProcFwchains,
    /// `/proc/net/ip_fwnames`.
    ProcFwnames,
    /// `/proc/net/ip_masq/app`.
    ProcMasqApp,
    /// `/proc/net/ip_masq/{tcp,udp,icmp}` (protocol number).
    ProcMasqProto(u8),
    /// `/proc/net/ip_masq/portfw`.
    ProcPortFw,
    /// `ipmasqadm portfw -l` (`verbose`: with the counters).
    PortFw {
        /// Add connections, packets and bytes.
        verbose: bool,
    },
}

/// Cheap handle on the NAT control plane.
#[derive(Clone)]
pub struct NatControl {
    cfg: Arc<Config>,
    nat: NatHandle,
    pump: Option<Arc<PumpCounters>>,
    feed: broadcast::Sender<Arc<MasqDelta>>,
    /// Held from a change until its save is done: changes and saves are serialized, and a
    /// failed save is rolled back before the next change starts.
    saving: Arc<std::sync::Mutex<()>>,
}

impl std::fmt::Debug for NatControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatControl").finish_non_exhaustive()
    }
}

fn parse_spec(spec: &str) -> Result<Vec<chains::Rule>, NatError> {
    chains::syntax::parse_rule(spec)
        .map(|r| r.expand())
        .map_err(|e| NatError::Invalid(e.to_string()))
}

/// A spec for a new rule: parsed, and refused when it asks for what has no effect here —
/// `-o` (a copy to a netlink listener: there is none) and `-m` (a firewall mark: nothing
/// routes by it). `-t` TOS mangling and `-l` logging are carried out.
fn parse_new_rule(spec: &str) -> Result<Vec<chains::Rule>, NatError> {
    let rules = parse_spec(spec)?;
    for r in &rules {
        if r.netlink.is_some() {
            return Err(NatError::Invalid(
                "-o (copy packets to netlink) is not supported: masqdial has no netlink listener; use -l to log them".into(),
            ));
        }
        if r.mark != 0 {
            return Err(NatError::Invalid(
                "-m (set a firewall mark) is not supported: nothing in masqdial routes or matches by mark".into(),
            ));
        }
    }
    Ok(rules)
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl NatControl {
    /// Control over `nat`, persisting under `cfg`'s state directory; `pump` adds the
    /// dataplane's counters to [`NatControl::counters`]. The masquerade feed is not running
    /// until [`feed::run`] is given this handle.
    pub fn new(cfg: Arc<Config>, nat: NatHandle, pump: Option<Arc<PumpCounters>>) -> Self {
        let (feed, _) = broadcast::channel(256);
        Self {
            cfg,
            nat,
            pump,
            feed,
            saving: Arc::new(std::sync::Mutex::new(())),
        }
    }

    /// The shared engine.
    pub fn nat(&self) -> &NatHandle {
        &self.nat
    }

    fn serial(&self) -> std::sync::MutexGuard<'_, ()> {
        self.saving.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Save `text`; on failure put `before` back, so an error means "not applied".
    fn persist_or_roll_back(&self, text: &str, before: Firewall) -> Result<(), NatError> {
        persist::save_rules(&self.cfg, text).map_err(|source| {
            self.nat.lock().set_firewall(before);
            NatError::Persist {
                what: "rules",
                source,
            }
        })
    }

    /// Apply a rule change under the engine lock, then persist; answers the changed chain
    /// (all chains when `chain` is empty or no longer exists).
    fn change(
        &self,
        chain: &str,
        f: impl FnOnce(&mut Firewall) -> Result<(), ChainError>,
    ) -> Result<Vec<ChainSnapshot>, NatError> {
        let _serial = self.serial();
        let (chains, text, before) = {
            let mut engine = self.nat.lock();
            let before = engine.firewall().clone();
            if let Err(e) = f(engine.firewall_mut()) {
                engine.set_firewall(before);
                return Err(e.into());
            }
            if let Err(e) = within_caps(engine.firewall()) {
                engine.set_firewall(before);
                return Err(e);
            }
            let shown = non_empty(chain).filter(|c| engine.firewall().has_chain(c));
            let chains = match engine.firewall().snapshot(shown) {
                Ok(c) => c,
                Err(e) => {
                    engine.set_firewall(before);
                    return Err(e.into());
                }
            };
            (chains, engine.firewall().save(), before)
        };
        self.persist_or_roll_back(&text, before)?;
        Ok(chains)
    }

    /// `-A chain spec` (a spec with `-b` adds both directions).
    pub fn append(&self, chain: &str, spec: &str) -> Result<Vec<ChainSnapshot>, NatError> {
        let rules = parse_new_rule(spec)?;
        self.change(chain, |fw| {
            for r in &rules {
                fw.append(chain, r)?;
            }
            Ok(())
        })
    }

    /// `-I chain number spec` (number 0 counts as 1).
    pub fn insert(
        &self,
        chain: &str,
        number: u32,
        spec: &str,
    ) -> Result<Vec<ChainSnapshot>, NatError> {
        let rules = parse_new_rule(spec)?;
        let num = number.max(1) as usize;
        self.change(chain, |fw| {
            for (i, r) in rules.iter().enumerate() {
                fw.insert(chain, num + i, r)?;
            }
            Ok(())
        })
    }

    /// `-R chain number spec` (a single rule).
    pub fn replace(
        &self,
        chain: &str,
        number: u32,
        spec: &str,
    ) -> Result<Vec<ChainSnapshot>, NatError> {
        let rules = parse_new_rule(spec)?;
        let [rule] = &rules[..] else {
            return Err(NatError::Invalid("-R takes a single rule (no -b)".into()));
        };
        self.change(chain, |fw| fw.replace(chain, number as usize, rule))
    }

    /// `-D chain number`.
    pub fn delete_number(&self, chain: &str, number: u32) -> Result<Vec<ChainSnapshot>, NatError> {
        self.change(chain, |fw| fw.delete_num(chain, number as usize))
    }

    /// `-D chain spec`.
    pub fn delete_spec(&self, chain: &str, spec: &str) -> Result<Vec<ChainSnapshot>, NatError> {
        let rules = parse_spec(spec)?;
        self.change(chain, |fw| {
            for r in &rules {
                fw.delete_rule(chain, r)?;
            }
            Ok(())
        })
    }

    /// `-F [chain]`.
    pub fn flush(&self, chain: &str) -> Result<Vec<ChainSnapshot>, NatError> {
        self.change(chain, |fw| fw.flush(non_empty(chain)))
    }

    /// `-Z [chain]`.
    pub fn zero(&self, chain: &str) -> Result<Vec<ChainSnapshot>, NatError> {
        self.change(chain, |fw| fw.zero(non_empty(chain)))
    }

    /// `-N chain`.
    pub fn new_chain(&self, chain: &str) -> Result<Vec<ChainSnapshot>, NatError> {
        self.change(chain, |fw| fw.new_chain(chain))
    }

    /// `-X [chain]`; answers every chain. Without a name every user chain that can go goes,
    /// as ipchains 1.3.9 deleted them one by one: those deleted stay deleted (and are saved)
    /// even when another one is refused, and the refusal is the answer.
    pub fn delete_chain(&self, chain: &str) -> Result<Vec<ChainSnapshot>, NatError> {
        if !chain.is_empty() {
            return self.change("", |fw| fw.delete_chain(Some(chain)));
        }
        let names: Vec<String> = {
            let engine = self.nat.lock();
            engine
                .firewall()
                .chain_names()
                .into_iter()
                .skip(3)
                .collect()
        };
        let mut refused = None;
        let mut last = None;
        for n in names {
            match self.change("", |fw| fw.delete_chain(Some(&n))) {
                Ok(c) => last = Some(c),
                Err(e) => refused = Some(e),
            }
        }
        match (refused, last) {
            (Some(e), _) => Err(e),
            (None, Some(c)) => Ok(c),
            (None, None) => self.chains(""),
        }
    }

    /// `-P chain target`.
    pub fn set_policy(&self, chain: &str, target: &str) -> Result<Vec<ChainSnapshot>, NatError> {
        self.change(chain, |fw| fw.set_policy(chain, target))
    }

    /// `-L [chain]` as data.
    pub fn chains(&self, chain: &str) -> Result<Vec<ChainSnapshot>, NatError> {
        Ok(self.nat.lock().firewall().snapshot(non_empty(chain))?)
    }

    /// `-C chain spec`: the verdicts, one per line.
    pub fn check(&self, chain: &str, spec: &str) -> Result<String, NatError> {
        let verdicts = self
            .nat
            .lock()
            .firewall()
            .check(chain, spec)
            .map_err(|e| NatError::Invalid(e.to_string()))?;
        Ok(verdicts
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Replace the whole ruleset (`ipchains-restore`); answers (chains, rules).
    pub fn apply_ruleset(&self, text: &str) -> Result<(u32, u32), NatError> {
        let fw = Firewall::from_saved(text).map_err(|e| NatError::Invalid(e.to_string()))?;
        within_caps(&fw)?;
        let chains = fw.chain_names().len() as u32;
        let rules = fw.rule_count() as u32;
        let _serial = self.serial();
        let text = fw.save();
        let before = {
            let mut engine = self.nat.lock();
            let before = engine.firewall().clone();
            engine.set_firewall(fw);
            before
        };
        self.persist_or_roll_back(&text, before)?;
        Ok((chains, rules))
    }

    /// The ruleset as `ipchains-save` text.
    pub fn save_ruleset(&self) -> String {
        self.nat.lock().firewall().save()
    }

    /// The masquerade timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        let t = self.nat.lock().timeouts();
        let secs = |d: nat_core::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        Timeouts {
            tcp: secs(t.tcp[nat_core::masq::tcp::State::Established as usize]),
            tcpfin: secs(t.tcp[nat_core::masq::tcp::State::FinWait as usize]),
            udp: secs(t.udp),
            icmp: secs(t.icmp),
        }
    }

    /// `-M -S tcp tcpfin udp` (0 leaves a value unchanged); saved, then answered.
    pub fn set_timeouts(&self, tcp: u32, tcpfin: u32, udp: u32) -> Result<Timeouts, NatError> {
        let max = crate::config::MAX_DURATION_S;
        if let Some(v) = [tcp, tcpfin, udp].into_iter().find(|v| u64::from(*v) > max) {
            return Err(NatError::Invalid(format!(
                "timeout {v} s is too long (at most {max} s = 30 days)"
            )));
        }
        let _serial = self.serial();
        let old = self.timeouts();
        self.nat.lock().set_timeouts(tcp, tcpfin, udp);
        let t = self.timeouts();
        persist::save_timeouts(&self.cfg, t.tcp, t.tcpfin, t.udp).map_err(|source| {
            self.nat.lock().set_timeouts(old.tcp, old.tcpfin, old.udp);
            NatError::Persist {
                what: "timeouts",
                source,
            }
        })?;
        Ok(t)
    }

    /// Free masquerade ports.
    pub fn free_ports(&self) -> PortUsage {
        port_usage(&self.nat.lock())
    }

    /// Up to `size` entries of protocol `protocol` (all when `None`) from slab slot `start`
    /// on, in slab order (stable for the life of each entry), with the slot the next page
    /// starts at. O(page): only the slots of this page are read (plus, with a protocol filter,
    /// the other protocols' entries skipped among them), under one short hold of the engine
    /// lock; nothing is copied or sorted table-wide. The cursor is what ListMasq's opaque
    /// `page_token` carries; an entry made during a walk may land before the cursor (a reused
    /// slot) and is then not listed, as with any live paging.
    pub fn masq_page(&self, start: u64, size: usize, protocol: Option<u8>) -> MasqPage {
        let filter = MasqFilter {
            proto: protocol,
            ..MasqFilter::default()
        };
        self.masq_page_filtered(start, size, &filter)
    }

    /// [`NatControl::masq_page`] of the entries `filter` selects.
    pub fn masq_page_filtered(&self, start: u64, size: usize, filter: &MasqFilter) -> MasqPage {
        // A page of at least one entry, so that a cursor always moves on.
        let size = size.max(1);
        let now = self.nat.now();
        let e = self.nat.lock();
        let total = e.masq().len() as u64;
        let mut entries: Vec<EntrySnapshot> =
            Vec::with_capacity(size.saturating_add(1).min(10_001));
        // A cursor past the slab (or past u32) is the end.
        let mut from = u32::try_from(start).ok();
        while let Some(slot) = from {
            let want = size + 1 - entries.len();
            let (chunk, cont) = e.masq_snapshot_from(now, slot, want);
            entries.extend(chunk.into_iter().filter(|x| filter.matches(x)));
            from = if entries.len() > size { None } else { cont };
        }
        drop(e);
        // One entry beyond the page says where the next one starts (its slot: the low half
        // of its id).
        let next = if entries.len() > size {
            entries.pop().map(|x| x.id.0 & u64::from(u32::MAX))
        } else {
            None
        };
        MasqPage {
            entries,
            next,
            total,
        }
    }

    /// A classic text view.
    pub fn render(&self, view: &View) -> Result<String, NatError> {
        let now = self.nat.now();
        let e = self.nat.lock();
        Ok(match view {
            View::Chains { chain, options } => e.firewall().list(chain.as_deref(), *options)?,
            View::Masq(o, f) => {
                let all = with_portfw(e.masq_snapshot(now), &e, now);
                let listed: Vec<EntrySnapshot> = all.into_iter().filter(|x| f.matches(x)).collect();
                nat_core::views::render_masq_list(&listed, *o)
            }
            View::ProcMasquerade => nat_core::views::render_proc_ip_masquerade(
                &with_portfw(e.masq_snapshot(now), &e, now),
                e.free_ports(),
            ),
            View::ProcFwchains => e.firewall().proc_fwchains(),
            View::ProcFwnames => e.firewall().proc_fwnames(),
            View::ProcMasqApp => e.render_proc_ip_masq_app(),
            View::ProcMasqProto(p) => e.render_proc_ip_masq_proto(now, *p),
            View::ProcPortFw => e.render_proc_ip_masq_portfw(),
            View::PortFw { verbose } => e.portfw().render_with(*verbose),
        })
    }

    /// `ipmasqadm portfw` command line (`-a`, `-d`, `-f`; `-l` only lists), saved to the
    /// state directory before it answers (a failed save is rolled back). Answers the list,
    /// and warnings: for `-a`, when the input chain would drop what the entry forwards
    /// (naming the rule to add). A local address given by name must be the link's interface
    /// name (`ppp0`) or a configured connection.
    pub fn portfw(&self, command: &str) -> Result<(String, Vec<String>), NatError> {
        use nat_core::portfw::{PortFwCmd, PortFwTable};
        let cmd = PortFwTable::parse(command).map_err(|e| NatError::Invalid(e.to_string()))?;
        let link_name = |n: &str| -> Result<(), NatError> {
            let iface = self.nat.lock().config().link_iface.clone();
            if n == iface || self.cfg.connections.iter().any(|c| c.name == n) {
                return Ok(());
            }
            Err(NatError::Invalid(format!(
                "portfw: -L {n}: no link or connection of that name (the link is `{iface}`; connections: {})",
                self.cfg
                    .connections
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        };
        match &cmd {
            PortFwCmd::Add(f) => {
                if let Some(n) = &f.link {
                    link_name(n)?;
                }
            }
            PortFwCmd::Delete { link: Some(n), .. } => link_name(n)?,
            _ => {}
        }
        let _serial = self.serial();
        let mut warnings = Vec::new();
        let (before, text) = {
            let mut e = self.nat.lock();
            let before = e.portfw().clone();
            let r = match cmd {
                PortFwCmd::List => return Ok((e.portfw().render(), warnings)),
                PortFwCmd::Add(f) => {
                    let cfg = e.config();
                    warnings.extend(nat_core::portfw::input_warning(
                        e.firewall(),
                        &f,
                        &cfg.link_iface,
                        &cfg.link_aliases,
                        e.masq_address(),
                    ));
                    e.portfw_add(f).map(|()| 1)
                }
                PortFwCmd::Delete {
                    proto,
                    link: Some(n),
                    lport,
                    remote,
                    ..
                } => {
                    let mut t = e.portfw().clone();
                    let r = t.delete_on_link(proto, &n, lport, remote);
                    e.set_portfw(t);
                    r
                }
                PortFwCmd::Delete {
                    proto,
                    laddr,
                    lport,
                    remote,
                    link: None,
                } => e.portfw_delete(proto, laddr, lport, remote),
                PortFwCmd::Flush => Ok(e.portfw_flush()),
            };
            if let Err(x) = r {
                e.set_portfw(before);
                return Err(NatError::Invalid(x.to_string()));
            }
            (before, e.portfw().save())
        };
        for w in &warnings {
            tracing::warn!("portfw {command}: {w}");
        }
        if let Err(source) = persist::save_portfw(&self.cfg, &text) {
            self.nat.lock().set_portfw(before);
            return Err(NatError::Persist {
                what: "portfw",
                source,
            });
        }
        Ok((self.nat.lock().portfw().render(), warnings))
    }

    /// Delete the masquerade entries `filter` selects, at once (`conntrack -D`); refuses an
    /// empty filter. Answers the entries deleted, as they were. Watchers see them removed.
    pub fn delete_masq(&self, filter: &MasqFilter) -> Result<Vec<EntrySnapshot>, NatError> {
        if filter.is_empty() {
            return Err(NatError::Invalid(
                "say which entries to delete: at least one of -p, -s, -d, --sport, --dport, --state".into(),
            ));
        }
        let now = self.nat.now();
        let mut e = self.nat.lock();
        let chosen: Vec<EntrySnapshot> = e
            .masq_snapshot(now)
            .into_iter()
            .filter(|x| filter.matches(x))
            .collect();
        let mut deleted = Vec::with_capacity(chosen.len());
        for x in chosen {
            if e.masq_mut().kill(x.id) {
                deleted.push(x);
            }
        }
        Ok(deleted)
    }

    /// nat-core's counters, then the dataplane's (if on).
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut c = self.nat.lock().counters();
        if let Some(p) = &self.pump {
            c.extend(p.snapshot().into_iter().map(|(k, v)| (k.to_string(), v)));
        }
        c
    }

    /// Subscribe to the masquerade feed first, then copy the table in pieces with
    /// [`NatControl::masq_piece`]: an entry that changes while the pieces are taken also
    /// comes as a delta after them, so the watcher ends up with the live table without the
    /// server ever holding a whole copy per stream.
    pub fn subscribe_masq(&self) -> broadcast::Receiver<Arc<MasqDelta>> {
        self.feed.subscribe()
    }

    /// Up to `max` entries from slab slot `from` on, and the slot to continue from
    /// (`None` at the end), taken under the engine lock for this piece only.
    pub fn masq_piece(&self, from: u32, max: usize) -> (Vec<EntrySnapshot>, Option<u32>) {
        let now = self.nat.now();
        self.nat.lock().masq_snapshot_from(now, from, max)
    }

    /// The masquerade address nat-core uses now.
    pub fn masq_address(&self) -> Option<Ipv4Addr> {
        self.nat.lock().masq_address()
    }
}

/// The masquerade entries and, after them, the portfw connections as 2.2 listed them.
fn with_portfw(
    mut entries: Vec<EntrySnapshot>,
    e: &nat_core::Engine,
    now: nat_core::Instant,
) -> Vec<EntrySnapshot> {
    entries.extend(nat_core::views::portfw_entries(
        &e.redirects().connections(now),
    ));
    entries
}

fn port_usage(engine: &nat_core::Engine) -> PortUsage {
    let (port_low, port_high) = engine
        .config()
        .masq
        .ports
        .first()
        .map(|r| (r.lo, r.hi))
        .unwrap_or((0, 0));
    PortUsage {
        free: engine.free_ports(),
        port_low,
        port_high,
    }
}
