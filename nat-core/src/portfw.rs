//! ipmasqadm `portfw`: forward connections arriving from the link on a local address and port
//! to a LAN host and port. Owns the forwarding list (with ipmasqadm's preference counters, a
//! weighted round robin among entries for the same local port) and its counters; the
//! connections themselves live in [`crate::redirect::Redirects`].

use std::net::Ipv4Addr;

/// One `ipmasqadm portfw -a` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortFw {
    /// `tcp` (6) or `udp` (17).
    pub proto: u8,
    /// Local (link) address; `None` = `0.0.0.0`, whatever the link's address is.
    pub laddr: Option<Ipv4Addr>,
    /// The local address given as a link's name (`ppp0`, or a connection's name): the
    /// entry forwards what reaches that link's address, whatever address it has now, and
    /// only while that link is the one up. `laddr` is `None` then.
    pub link: Option<String>,
    /// Local port.
    pub lport: u16,
    /// LAN host.
    pub raddr: Ipv4Addr,
    /// LAN port.
    pub rport: u16,
    /// Preference (share of new connections among entries for the same local port).
    pub pref: u32,
    /// Connections left in this round (ipmasqadm's `pcnt`).
    pub pref_cnt: u32,
    /// Connections forwarded.
    pub conns: u64,
    /// Packets forwarded toward the LAN host.
    pub pkts: u64,
    /// Bytes forwarded toward the LAN host.
    pub bytes: u64,
    /// Place in 2.2's per-protocol list (smallest first): an added entry goes to the head,
    /// an entry whose round is used up goes to the tail. Set by [`PortFwTable`].
    rank: i64,
}

impl PortFw {
    /// A new entry (pref 0 is taken as ipmasqadm's default 10).
    pub fn new(
        proto: u8,
        laddr: Option<Ipv4Addr>,
        lport: u16,
        raddr: Ipv4Addr,
        rport: u16,
        pref: u32,
    ) -> PortFw {
        let pref = if pref == 0 { 10 } else { pref };
        PortFw {
            proto,
            laddr,
            link: None,
            lport,
            raddr,
            rport,
            pref,
            pref_cnt: pref,
            conns: 0,
            pkts: 0,
            bytes: 0,
            rank: 0,
        }
    }

    /// The same entry on a link given by name (see [`PortFw::link`]).
    pub fn on_link(mut self, name: &str) -> PortFw {
        self.laddr = None;
        self.link = Some(name.to_string());
        self
    }

    fn same(&self, o: &PortFw) -> bool {
        (
            self.proto, self.laddr, &self.link, self.lport, self.raddr, self.rport,
        ) == (o.proto, o.laddr, &o.link, o.lport, o.raddr, o.rport)
    }

    /// The local address as written: the link's name, or the address (`0.0.0.0` for any).
    pub fn local_text(&self) -> String {
        match &self.link {
            Some(n) => n.clone(),
            None => self.laddr.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
        }
    }

    /// The `ipmasqadm portfw` save line (also the persisted form).
    pub fn to_spec(&self) -> String {
        format!(
            "-a -P {} -L {} {} -R {} {} -p {}",
            if self.proto == crate::wire::proto::UDP {
                "udp"
            } else {
                "tcp"
            },
            self.local_text(),
            self.lport,
            self.raddr,
            self.rport,
            self.pref
        )
    }
}

/// Why a portfw command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortFwError {
    /// `-d` of an entry that does not exist.
    #[error("no such portfw entry")]
    NotFound,
    /// The spec did not parse.
    #[error("{0}")]
    Syntax(String),
}

/// The forwarding list, with 2.2's list semantics (`ip_masq_portfw.c`): one list per
/// protocol, UDP listed before TCP; `-a` puts a new entry at the head, or only sets the
/// preference of an identical entry; a new connection goes to the first matching entry in
/// list order, whose count then drops by one and, when it reaches 0, is reset to the
/// preference and the entry moves to the tail (a weighted round robin). Indexes into
/// [`entries`](Self::entries) stay stable until a delete or flush.
#[derive(Debug, Clone, Default)]
pub struct PortFwTable {
    entries: Vec<PortFw>,
    /// The names the link up now answers to (its interface alias, the connection, the TUN):
    /// what an entry given by link name must find here to forward.
    link_names: Vec<String>,
}

impl PortFwTable {
    /// The entries, in the order they were added (see [`listed`](Self::listed) for 2.2's).
    pub fn entries(&self) -> &[PortFw] {
        &self.entries
    }

    /// The entries in 2.2's listing order: UDP then TCP, each in list order.
    pub fn listed(&self) -> Vec<&PortFw> {
        let mut v: Vec<&PortFw> = self.entries.iter().collect();
        v.sort_by_key(|e| (e.proto != crate::wire::proto::UDP, e.rank));
        v
    }

    fn head(&self) -> i64 {
        self.entries.iter().map(|e| e.rank).min().unwrap_or(0) - 1
    }

    fn tail(&self) -> i64 {
        self.entries.iter().map(|e| e.rank).max().unwrap_or(0) + 1
    }

    /// `-a`: a new entry goes to the head of its list; an identical one (same protocol,
    /// local and remote address and port) only gets the new preference, as in 2.2.
    pub fn add(&mut self, mut e: PortFw) -> Result<(), PortFwError> {
        if let Some(x) = self.entries.iter_mut().find(|x| x.same(&e)) {
            x.pref = e.pref;
            x.pref_cnt = e.pref;
            return Ok(());
        }
        e.rank = self.head();
        self.entries.push(e);
        Ok(())
    }

    /// Put back a saved entry at the tail (a restore keeps the saved order).
    pub fn restore(&mut self, mut e: PortFw) {
        if self.entries.iter().any(|x| x.same(&e)) {
            return;
        }
        e.rank = self.tail();
        self.entries.push(e);
    }

    /// `-d`, 2.2's relaxed match: a local address 0.0.0.0 (`None`) matches any address
    /// (entries given by link name are left to [`delete_on_link`](Self::delete_on_link)), and
    /// the LAN side may be left out; every matching entry goes.
    pub fn delete(
        &mut self,
        proto: u8,
        laddr: Option<Ipv4Addr>,
        lport: u16,
        remote: Option<(Ipv4Addr, u16)>,
    ) -> Result<usize, PortFwError> {
        let before = self.entries.len();
        self.entries.retain(|x| {
            !(x.proto == proto
                && x.link.is_none()
                && laddr.is_none_or(|a| x.laddr == Some(a))
                && x.lport == lport
                && remote.is_none_or(|(a, p)| (x.raddr, x.rport) == (a, p)))
        });
        match before - self.entries.len() {
            0 => Err(PortFwError::NotFound),
            n => Ok(n),
        }
    }

    /// `-d` of entries given by link name (`-L ppp0 8080`): the same relaxed match, on the
    /// name.
    pub fn delete_on_link(
        &mut self,
        proto: u8,
        link: &str,
        lport: u16,
        remote: Option<(Ipv4Addr, u16)>,
    ) -> Result<usize, PortFwError> {
        let before = self.entries.len();
        self.entries.retain(|x| {
            !(x.proto == proto
                && x.link.as_deref() == Some(link)
                && x.lport == lport
                && remote.is_none_or(|(a, p)| (x.raddr, x.rport) == (a, p)))
        });
        match before - self.entries.len() {
            0 => Err(PortFwError::NotFound),
            n => Ok(n),
        }
    }

    /// The names of the link that is up (set when a link comes up).
    pub fn set_link_names(&mut self, names: Vec<String>) {
        self.link_names = names;
    }

    /// `-f`.
    pub fn flush(&mut self) -> usize {
        std::mem::take(&mut self.entries).len()
    }

    /// Pick the entry for a new connection to `dst:dport` (a packet from the link to its
    /// address): the first matching entry in list order (an entry for 0.0.0.0 matches
    /// whatever the link's address is; one given by link name, while that link is up);
    /// returns its index.
    pub fn pick(&mut self, proto: u8, dst: Ipv4Addr, dport: u16) -> Option<usize> {
        let names = &self.link_names;
        let i = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, x)| {
                x.proto == proto
                    && x.lport == dport
                    && match &x.link {
                        Some(n) => names.contains(n),
                        None => x.laddr.is_none_or(|a| a == dst),
                    }
            })
            .min_by_key(|(_, x)| x.rank)
            .map(|(i, _)| i)?;
        let tail = self.tail();
        let e = &mut self.entries[i];
        e.conns += 1;
        e.pref_cnt = e.pref_cnt.saturating_sub(1);
        if e.pref_cnt == 0 {
            e.pref_cnt = e.pref;
            e.rank = tail;
        }
        Some(i)
    }

    /// Count a packet forwarded through entry `i`.
    pub fn account(&mut self, i: usize, len: usize) {
        if let Some(e) = self.entries.get_mut(i) {
            e.pkts += 1;
            e.bytes += len as u64;
        }
    }

    /// The entry at `i`.
    pub fn get(&self, i: usize) -> Option<&PortFw> {
        self.entries.get(i)
    }

    /// The save text, one `-a …` line per entry in list order (read back with
    /// [`restore`](Self::restore)).
    pub fn save(&self) -> String {
        self.listed()
            .into_iter()
            .map(|e| e.to_spec() + "\n")
            .collect()
    }

    /// Parse one `-a`/`-d`/`-f`/`-l` command line (ipmasqadm portfw syntax).
    pub fn parse(line: &str) -> Result<PortFwCmd, PortFwError> {
        let err = |m: &str| PortFwError::Syntax(format!("portfw: {m}"));
        let mut cmd = None;
        let mut proto = None;
        let mut local = None;
        let mut remote = None;
        let mut pref = 0u32;
        let mut it = line.split_whitespace();
        let num = |s: Option<&str>, what: &str| -> Result<u16, PortFwError> {
            s.and_then(|s| s.parse().ok())
                .ok_or_else(|| err(&format!("{what} needs a port number")))
        };
        let addr = |s: Option<&str>, what: &str| -> Result<Ipv4Addr, PortFwError> {
            s.and_then(|s| s.parse().ok())
                .ok_or_else(|| err(&format!("{what} needs a dotted-quad address")))
        };
        while let Some(w) = it.next() {
            match w {
                "-a" | "--add" => cmd = Some('a'),
                "-d" | "--delete" => cmd = Some('d'),
                "-f" | "--flush" => cmd = Some('f'),
                "-l" | "--list" => cmd = Some('l'),
                "-n" => {}
                "-P" | "--protocol" => {
                    proto = Some(match it.next() {
                        Some("tcp") => crate::wire::proto::TCP,
                        Some("udp") => crate::wire::proto::UDP,
                        _ => return Err(err("-P takes tcp or udp")),
                    })
                }
                "-L" | "--local" => {
                    let w = it.next();
                    let p = num(it.next(), "-L")?;
                    local = Some(match w.map(|w| (w, w.parse::<Ipv4Addr>())) {
                        Some((_, Ok(a))) => (Local::Addr((!a.is_unspecified()).then_some(a)), p),
                        Some((name, Err(_))) if is_link_name(name) => {
                            (Local::Link(name.to_string()), p)
                        }
                        _ => return Err(err(
                            "-L needs a dotted-quad address or a link's name (ppp0, a connection)",
                        )),
                    });
                }
                "-R" | "--remote" => {
                    let a = addr(it.next(), "-R")?;
                    let p = num(it.next(), "-R")?;
                    remote = Some((a, p));
                }
                "-p" | "--pref" => {
                    pref = it
                        .next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| err("-p needs a number"))?
                }
                other => return Err(err(&format!("unknown option `{other}'"))),
            }
        }
        match cmd {
            Some('f') => Ok(PortFwCmd::Flush),
            Some('l') | None => Ok(PortFwCmd::List),
            Some('a') => {
                let (Some(p), Some((la, lp)), Some((ra, rp))) = (proto, local, remote) else {
                    return Err(err("-a needs -P, -L and -R"));
                };
                Ok(PortFwCmd::Add(match la {
                    Local::Addr(a) => PortFw::new(p, a, lp, ra, rp, pref),
                    Local::Link(n) => PortFw::new(p, None, lp, ra, rp, pref).on_link(&n),
                }))
            }
            _ => {
                let (Some(p), Some((la, lp))) = (proto, local) else {
                    return Err(err("-d needs -P and -L"));
                };
                let (laddr, link) = match la {
                    Local::Addr(a) => (a, None),
                    Local::Link(n) => (None, Some(n)),
                };
                Ok(PortFwCmd::Delete {
                    proto: p,
                    laddr,
                    link,
                    lport: lp,
                    remote,
                })
            }
        }
    }

    /// `ipmasqadm portfw -l -n` text, in ipmasqadm's layout and column names
    /// (`%-4s %-20s %-20s %8s %8s %5s %5s`: prot, localaddr, rediraddr, lport, rport, pcnt,
    /// pref); an entry given by link name shows the name as its localaddr.
    pub fn render(&self) -> String {
        self.render_with(false)
    }

    /// [`render`](Self::render), with `verbose` adding this implementation's counters
    /// (connections, packets and bytes forwarded) after ipmasqadm's columns.
    pub fn render_with(&self, verbose: bool) -> String {
        let mut s = format!(
            "{:<4} {:<20} {:<20} {:>8} {:>8} {:>5} {:>5}",
            "prot", "localaddr", "rediraddr", "lport", "rport", "pcnt", "pref"
        );
        if verbose {
            s.push_str(&format!(" {:>8} {:>8} {:>10}", "conns", "pkts", "bytes"));
        }
        s.push('\n');
        for e in self.listed() {
            s.push_str(&format!(
                "{:<4} {:<20} {:<20} {:>8} {:>8} {:>5} {:>5}",
                if e.proto == crate::wire::proto::UDP {
                    "UDP"
                } else {
                    "TCP"
                },
                e.local_text(),
                e.raddr.to_string(),
                e.lport,
                e.rport,
                e.pref_cnt,
                e.pref,
            ));
            if verbose {
                s.push_str(&format!(" {:>8} {:>8} {:>10}", e.conns, e.pkts, e.bytes));
            }
            s.push('\n');
        }
        s
    }

    /// `/proc/net/ip_masq/portfw` text, as 2.2's `portfw_procinfo` prints it: 64-byte
    /// records (`%-63s\n`), the header `Prot LAddr    LPort > RAddr    RPort PrCnt  Pref`, then
    /// per entry `%s  %08lX %5u > %08lX %5u %5d %5d` (UDP list first, then TCP).
    pub fn render_proc(&self) -> String {
        let mut s = format!(
            "{:<63}\n",
            "Prot LAddr    LPort > RAddr    RPort PrCnt  Pref"
        );
        for e in self.listed() {
            let line = format!(
                "{}  {:08X} {:5} > {:08X} {:5} {:5} {:5}",
                if e.proto == crate::wire::proto::UDP {
                    "UDP"
                } else {
                    "TCP"
                },
                u32::from(e.laddr.unwrap_or(Ipv4Addr::UNSPECIFIED)),
                e.lport,
                u32::from(e.raddr),
                e.rport,
                e.pref_cnt,
                e.pref
            );
            s.push_str(&format!("{line:<63}\n"));
        }
        s
    }
}

/// What the input chain makes of the connections `e` is to forward: 2.2 ran the input chain
/// before portfw saw a packet, so a denying input chain silently starves the entry. Runs a
/// new connection from a remote host (192.0.2.1:1024, TEST-NET-1) to the entry's local
/// address (`link_addr` for an entry on 0.0.0.0 or on a link name; 0.0.0.0 while no link is
/// up) and port through `input`, as arriving on the link (`iface`, also known as `aliases`).
/// `None` when it is let in; otherwise a warning that names the rule to add.
pub fn input_warning(
    fw: &crate::chains::Firewall,
    e: &PortFw,
    iface: &str,
    aliases: &[String],
    link_addr: Option<Ipv4Addr>,
) -> Option<String> {
    use crate::chains::{CheckVerdict, PacketInfo};
    let proto_name = if e.proto == crate::wire::proto::UDP {
        "udp"
    } else {
        "tcp"
    };
    let dst = e.laddr.or(link_addr).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let pkt = PacketInfo {
        proto: e.proto,
        src: Ipv4Addr::new(192, 0, 2, 1),
        dst,
        sport: 1024,
        dport: e.lport,
        iface,
        iface_aliases: aliases,
        fragment: false,
        syn: e.proto == crate::wire::proto::TCP,
        tos: 0,
        len: 40,
    };
    let verdict = fw.check_packet("input", &pkt).ok()?;
    let what = match verdict {
        CheckVerdict::Accepted | CheckVerdict::Redirected | CheckVerdict::Masqueraded => {
            return None
        }
        CheckVerdict::Denied => "deny",
        CheckVerdict::Rejected => "reject",
        CheckVerdict::Loop => "drop (a loop)",
        CheckVerdict::PassedThrough => "drop",
    };
    let d = match e.laddr {
        Some(a) => a.to_string(),
        None => "0.0.0.0/0".to_string(),
    };
    Some(format!(
        "the input chain would {what} {proto_name} from the link to {}:{}, so this forward would get nothing (2.2 ran input before portfw); let it in with: ipchains -I input -p {proto_name} -d {d} {} -i {iface} -j ACCEPT",
        e.local_text(),
        e.lport,
        e.lport
    ))
}

/// `-L`'s first word.
enum Local {
    Addr(Option<Ipv4Addr>),
    Link(String),
}

/// A link or connection name as `-L` takes it: letters, digits and `_ - . +`, up to 32,
/// starting with a letter (so never an address).
fn is_link_name(s: &str) -> bool {
    s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c))
}

/// A parsed portfw command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortFwCmd {
    /// `-a`.
    Add(PortFw),
    /// `-d`.
    Delete {
        /// Protocol.
        proto: u8,
        /// Local address (`None` = 0.0.0.0).
        laddr: Option<Ipv4Addr>,
        /// The local address given as a link's name instead.
        link: Option<String>,
        /// Local port.
        lport: u16,
        /// LAN side, if given.
        remote: Option<(Ipv4Addr, u16)>,
    },
    /// `-f`.
    Flush,
    /// `-l`.
    List,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(t: &mut PortFwTable, line: &str) {
        let PortFwCmd::Add(e) = PortFwTable::parse(line).expect("parses") else {
            panic!("not an add: {line}")
        };
        t.add(e).expect("added");
    }

    #[test]
    fn parse_add_list_pick_delete() {
        let mut t = PortFwTable::default();
        add(&mut t, "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 2");
        assert_eq!(
            t.entries()[0].to_spec(),
            "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 2"
        );
        // 2.2's ip_portfw_add: the same entry again only sets its preference.
        add(&mut t, "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 3");
        assert_eq!(t.entries().len(), 1);
        assert_eq!((t.entries()[0].pref, t.entries()[0].pref_cnt), (3, 3));
        add(&mut t, "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 2");
        add(&mut t, "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.11 80 -p 1");
        // List [.11 (newest, at the head), .10]: .11 takes one (count 1 -> 0: reset, to
        // the tail), then .10 two, and so on.
        let any = Ipv4Addr::new(10, 64, 0, 5);
        let picks: Vec<usize> = (0..6).filter_map(|_| t.pick(6, any, 8080)).collect();
        assert_eq!(picks, vec![1, 0, 0, 1, 0, 0]);
        assert_eq!(t.pick(17, any, 8080), None);
        assert_eq!(t.pick(6, any, 8081), None);
        assert_eq!(
            PortFwTable::parse("-d -P tcp -L 0.0.0.0 8080"),
            Ok(PortFwCmd::Delete {
                proto: 6,
                laddr: None,
                link: None,
                lport: 8080,
                remote: None
            })
        );
        assert_eq!(
            t.delete(6, None, 8080, Some((Ipv4Addr::new(192, 168, 1, 11), 80))),
            Ok(1)
        );
        assert_eq!(
            t.save(),
            "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 2\n"
        );
        assert!(PortFwTable::parse("-a -P icmp -L 0.0.0.0 1 -R 1.2.3.4 1").is_err());
        assert_eq!(t.flush(), 1);
    }

    /// ipmasqadm's `-l` layout (`%-4s %-20s %-20s %8s %8s %5s %5s`), a link name as the
    /// local address, and the input-chain warning.
    #[test]
    fn ipmasqadm_layout_link_names_and_the_input_warning() {
        let mut t = PortFwTable::default();
        add(&mut t, "-a -P tcp -L ppp0 8080 -R 192.168.2.2 6699 -p 10");
        add(&mut t, "-a -P udp -L 10.64.0.5 53 -R 192.168.2.3 53 -p 2");
        assert_eq!(
            t.render(),
            "prot localaddr            rediraddr               lport    rport  pcnt  pref\n\
             UDP  10.64.0.5            192.168.2.3                53       53     2     2\n\
             TCP  ppp0                 192.168.2.2              8080     6699    10    10\n"
        );
        assert!(t.render_with(true).starts_with(
            "prot localaddr            rediraddr               lport    rport  pcnt  pref    conns     pkts      bytes\n"
        ));
        assert_eq!(
            t.save(),
            "-a -P udp -L 10.64.0.5 53 -R 192.168.2.3 53 -p 2\n-a -P tcp -L ppp0 8080 -R 192.168.2.2 6699 -p 10\n"
        );
        // The link-named entry forwards only while that link is up, whatever its address.
        let a = Ipv4Addr::new(10, 64, 0, 9);
        assert_eq!(t.pick(6, a, 8080), None);
        t.set_link_names(vec!["ppp0".into(), "isp1".into()]);
        assert_eq!(t.pick(6, a, 8080), Some(0));
        assert_eq!(t.pick(6, Ipv4Addr::new(10, 64, 0, 10), 8080), Some(0));
        t.set_link_names(vec!["isp2".into()]);
        assert_eq!(t.pick(6, a, 8080), None);
        // A delete by name takes only the named entry.
        assert_eq!(t.delete(6, None, 8080, None), Err(PortFwError::NotFound));
        assert_eq!(t.delete_on_link(6, "ppp0", 8080, None), Ok(1));
        assert!(PortFwTable::parse("-a -P tcp -L 9bad 1 -R 1.2.3.4 1").is_err());

        // The input chain: ACCEPT says nothing; a DENY policy names the rule to add.
        let e = PortFw::new(6, None, 8080, Ipv4Addr::new(192, 168, 2, 2), 80, 0).on_link("isp1");
        let mut fw = crate::chains::Firewall::new();
        assert_eq!(input_warning(&fw, &e, "ppp0", &[], Some(a)), None);
        fw.set_policy("input", "DENY").expect("policy");
        assert_eq!(
            input_warning(&fw, &e, "ppp0", &["isp1".into()], Some(a)).as_deref(),
            Some("the input chain would deny tcp from the link to isp1:8080, so this forward would get nothing (2.2 ran input before portfw); let it in with: ipchains -I input -p tcp -d 0.0.0.0/0 8080 -i ppp0 -j ACCEPT")
        );
        // The rule it names does let it in.
        let rule = crate::chains::parse_rule("-p tcp -d 0.0.0.0/0 8080 -i ppp0 -j ACCEPT")
            .expect("the advice parses");
        fw.insert("input", 1, &rule.rule).expect("insert");
        assert_eq!(input_warning(&fw, &e, "ppp0", &[], Some(a)), None);
    }

    /// 2.2's delete is relaxed: `-L 0.0.0.0` matches every local address.
    #[test]
    fn delete_with_any_local_address_removes_every_local_address() {
        let mut t = PortFwTable::default();
        add(&mut t, "-a -P tcp -L 10.64.0.5 80 -R 192.168.1.10 80");
        add(&mut t, "-a -P tcp -L 10.64.0.6 80 -R 192.168.1.10 80");
        add(&mut t, "-a -P udp -L 10.64.0.6 80 -R 192.168.1.10 80");
        assert_eq!(
            t.delete(6, Some(Ipv4Addr::new(10, 64, 0, 9)), 80, None),
            Err(PortFwError::NotFound)
        );
        assert_eq!(t.delete(6, None, 80, None), Ok(2));
        assert_eq!(t.entries().len(), 1);
    }

    /// Byte for byte what 2.2's `portfw_procinfo` prints: its format strings are
    /// `"%-63s\n"` around `"Prot LAddr    LPort > RAddr    RPort PrCnt  Pref"` and
    /// `"%s  %08lX %5u > %08lX %5u %5d %5d"`; the UDP list comes first; a new entry goes to
    /// the head of its list; a used-up entry to the tail with its count reset.
    #[test]
    fn proc_view_is_2_2_portfw_procinfo() {
        let mut t = PortFwTable::default();
        add(
            &mut t,
            "-a -P tcp -L 10.64.0.5 8080 -R 192.168.1.10 80 -p 2",
        );
        add(
            &mut t,
            "-a -P tcp -L 10.64.0.5 8080 -R 192.168.1.11 80 -p 1",
        );
        add(&mut t, "-a -P udp -L 0.0.0.0 53 -R 192.168.1.2 53");
        let head = "Prot LAddr    LPort > RAddr    RPort PrCnt  Pref               \n";
        let expect = |tcp: [&str; 2]| {
            format!(
                "{head}UDP  00000000    53 > C0A80102    53    10    10               \n{}{}",
                tcp[0], tcp[1]
            )
        };
        let e10 = |cnt: u32| {
            format!("TCP  0A400005  8080 > C0A8010A    80 {cnt:5}     2               \n")
        };
        let e11 = "TCP  0A400005  8080 > C0A8010B    80     1     1               \n";
        assert_eq!(t.render_proc(), expect([e11, &e10(2)]));
        assert!(t.render_proc().lines().all(|l| l.len() == 63));
        // .11 takes the first connection and moves to the tail; .10 then counts down.
        assert_eq!(t.pick(6, Ipv4Addr::new(10, 64, 0, 5), 8080), Some(1));
        assert_eq!(t.render_proc(), expect([&e10(2), e11]));
        assert_eq!(t.pick(6, Ipv4Addr::new(10, 64, 0, 5), 8080), Some(0));
        assert_eq!(t.render_proc(), expect([&e10(1), e11]));
        // Save and restore keep the list order.
        let mut r = PortFwTable::default();
        for line in t.save().lines() {
            let Ok(PortFwCmd::Add(e)) = PortFwTable::parse(line) else {
                panic!("{line}")
            };
            r.restore(e);
        }
        assert_eq!(r.save(), t.save());
        assert_eq!(
            t.save(),
            "-a -P udp -L 0.0.0.0 53 -R 192.168.1.2 53 -p 10\n\
             -a -P tcp -L 10.64.0.5 8080 -R 192.168.1.10 80 -p 2\n\
             -a -P tcp -L 10.64.0.5 8080 -R 192.168.1.11 80 -p 1\n"
        );
    }
}
