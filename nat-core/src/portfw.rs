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
            lport,
            raddr,
            rport,
            pref,
            pref_cnt: pref,
            conns: 0,
            pkts: 0,
            bytes: 0,
        }
    }

    fn same(&self, o: &PortFw) -> bool {
        (self.proto, self.laddr, self.lport, self.raddr, self.rport)
            == (o.proto, o.laddr, o.lport, o.raddr, o.rport)
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
            self.laddr.unwrap_or(Ipv4Addr::UNSPECIFIED),
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
    /// `-a` of an entry that exists.
    #[error("portfw entry already exists")]
    Exists,
    /// `-d` of an entry that does not exist.
    #[error("no such portfw entry")]
    NotFound,
    /// The spec did not parse.
    #[error("{0}")]
    Syntax(String),
}

/// The forwarding list.
#[derive(Debug, Clone, Default)]
pub struct PortFwTable {
    entries: Vec<PortFw>,
}

impl PortFwTable {
    /// The entries in order of addition.
    pub fn entries(&self) -> &[PortFw] {
        &self.entries
    }

    /// `-a`.
    pub fn add(&mut self, e: PortFw) -> Result<(), PortFwError> {
        if self.entries.iter().any(|x| x.same(&e)) {
            return Err(PortFwError::Exists);
        }
        self.entries.push(e);
        Ok(())
    }

    /// `-d` (the LAN side may be left out: every entry for the local address and port goes).
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
                && x.laddr == laddr
                && x.lport == lport
                && remote.is_none_or(|(a, p)| (x.raddr, x.rport) == (a, p)))
        });
        match before - self.entries.len() {
            0 => Err(PortFwError::NotFound),
            n => Ok(n),
        }
    }

    /// `-f`.
    pub fn flush(&mut self) -> usize {
        std::mem::take(&mut self.entries).len()
    }

    /// Pick the entry for a new connection to `dst:dport` (weighted round robin by pref, as
    /// 2.2's `ip_portfw_lookup`); returns its index.
    pub fn pick(&mut self, proto: u8, dst: Ipv4Addr, dport: u16) -> Option<usize> {
        let matches =
            |x: &PortFw| x.proto == proto && x.lport == dport && x.laddr.is_none_or(|a| a == dst);
        if !self.entries.iter().any(matches) {
            return None;
        }
        for round in 0..2 {
            if let Some(i) = self
                .entries
                .iter()
                .position(|x| matches(x) && x.pref_cnt > 0)
            {
                self.entries[i].pref_cnt -= 1;
                self.entries[i].conns += 1;
                return Some(i);
            }
            if round == 0 {
                for x in self.entries.iter_mut().filter(|x| matches(x)) {
                    x.pref_cnt = x.pref;
                }
            }
        }
        None
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

    /// The save text, one `-a …` line per entry.
    pub fn save(&self) -> String {
        self.entries.iter().map(|e| e.to_spec() + "\n").collect()
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
                    let a = addr(it.next(), "-L")?;
                    let p = num(it.next(), "-L")?;
                    local = Some(((!a.is_unspecified()).then_some(a), p));
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
                Ok(PortFwCmd::Add(PortFw::new(p, la, lp, ra, rp, pref)))
            }
            _ => {
                let (Some(p), Some((la, lp))) = (proto, local) else {
                    return Err(err("-d needs -P and -L"));
                };
                Ok(PortFwCmd::Delete {
                    proto: p,
                    laddr: la,
                    lport: lp,
                    remote,
                })
            }
        }
    }

    /// `ipmasqadm portfw -l [-n]` text (with this implementation's counters added).
    pub fn render(&self) -> String {
        let mut s = format!(
            "{:<4} {:<20} {:<20} {:>5} {:>5} {:>5} {:>5} {:>8} {:>10}\n",
            "prot", "localaddr", "rediraddr", "lport", "rport", "pcnt", "pref", "pkts", "bytes"
        );
        for e in &self.entries {
            s.push_str(&format!(
                "{:<4} {:<20} {:<20} {:>5} {:>5} {:>5} {:>5} {:>8} {:>10}\n",
                if e.proto == crate::wire::proto::UDP {
                    "UDP"
                } else {
                    "TCP"
                },
                e.laddr.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                e.raddr.to_string(),
                e.lport,
                e.rport,
                e.pref_cnt,
                e.pref,
                e.pkts,
                e.bytes
            ));
        }
        s
    }

    /// `/proc/net/ip_masq/portfw` text.
    pub fn render_proc(&self) -> String {
        let mut s = String::from("Prot LAddr    LPort > RAddr    RPort PrCnt  Pref\n");
        for e in &self.entries {
            s.push_str(&format!(
                "{} {:08X} {:5} > {:08X} {:5} {:5} {:5}\n",
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
            ));
        }
        s
    }
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

    #[test]
    fn parse_add_list_pick_delete() {
        let mut t = PortFwTable::default();
        let PortFwCmd::Add(e) =
            PortFwTable::parse("-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 2")
                .expect("parses")
        else {
            panic!("not an add")
        };
        assert_eq!(
            e.to_spec(),
            "-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.10 80 -p 2"
        );
        t.add(e.clone()).expect("added");
        assert_eq!(t.add(e), Err(PortFwError::Exists));
        let PortFwCmd::Add(e2) =
            PortFwTable::parse("-a -P tcp -L 0.0.0.0 8080 -R 192.168.1.11 80 -p 1")
                .expect("parses")
        else {
            panic!("not an add")
        };
        t.add(e2).expect("added");
        let any = Ipv4Addr::new(10, 64, 0, 5);
        let picks: Vec<usize> = (0..6).filter_map(|_| t.pick(6, any, 8080)).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 0, 1]);
        assert_eq!(t.pick(17, any, 8080), None);
        assert_eq!(t.pick(6, any, 8081), None);
        assert_eq!(
            PortFwTable::parse("-d -P tcp -L 0.0.0.0 8080"),
            Ok(PortFwCmd::Delete {
                proto: 6,
                laddr: None,
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
}
