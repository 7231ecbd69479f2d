//! Reverse DNS for `mclient masq -r` (2.2's `ipchains -M -L` without `-n` printed host
//! names, and "-L freezes" on DNS was its best-known pitfall): only when asked, every
//! address looked up once per run and in parallel, the whole listing bounded by one
//! deadline, numeric addresses for whatever did not answer in time. The system resolver
//! here reads `/etc/hosts`, then asks the first `nameserver` of `/etc/resolv.conf` for the
//! PTR record over UDP (no C library resolver: no unsafe code).
//!
//! The answer is remote-controlled text, so: the query ID is random (getrandom), an answer
//! counts only when it repeats our question exactly, and a name is shown only when it is an
//! RFC 1123 host name that cannot be read as an address ([`acceptable_name`]); anything else
//! leaves the address numeric.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Something that turns an address into a host name.
pub trait Resolver: Send + Sync {
    /// The name of `ip`, if it has one; may block up to its own timeout.
    fn reverse(&self, ip: Ipv4Addr) -> Option<String>;
}

/// `/etc/hosts`, then a PTR query to the first name server of `/etc/resolv.conf`.
#[derive(Debug, Clone)]
pub struct SystemResolver {
    /// The hosts file.
    pub hosts: PathBuf,
    /// The resolver configuration.
    pub resolv_conf: PathBuf,
    /// How long one DNS query may take.
    pub query_timeout: Duration,
}

impl SystemResolver {
    /// The system's files, queries bounded by `query_timeout`.
    pub fn new(query_timeout: Duration) -> Self {
        Self {
            hosts: "/etc/hosts".into(),
            resolv_conf: "/etc/resolv.conf".into(),
            query_timeout,
        }
    }

    fn in_hosts(&self, ip: Ipv4Addr) -> Option<String> {
        let text = std::fs::read_to_string(&self.hosts).ok()?;
        hosts_lookup(&text, ip)
    }

    fn nameserver(&self) -> Option<SocketAddr> {
        let text = std::fs::read_to_string(&self.resolv_conf).ok()?;
        text.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next())
                .flatten()
                .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                .map(|a| SocketAddr::new(a, 53))
        })
    }

    fn by_dns(&self, ip: Ipv4Addr) -> Option<String> {
        let server = self.nameserver()?;
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).ok()?;
        sock.connect(server).ok()?;
        sock.set_read_timeout(Some(self.query_timeout.max(Duration::from_millis(1))))
            .ok()?;
        let mut id = [0u8; 2];
        getrandom::fill(&mut id).ok()?;
        let id = u16::from_be_bytes(id);
        let query = ptr_query(id, ip);
        sock.send(&query).ok()?;
        let mut buf = [0u8; 1500];
        let deadline = Instant::now() + self.query_timeout;
        while Instant::now() < deadline {
            let n = sock.recv(&mut buf).ok()?;
            if let Some(name) = parse_ptr_answer(&buf[..n], &query) {
                return Some(name);
            }
        }
        None
    }
}

impl Resolver for SystemResolver {
    fn reverse(&self, ip: Ipv4Addr) -> Option<String> {
        self.in_hosts(ip).or_else(|| self.by_dns(ip))
    }
}

/// The first name `hosts` (the `/etc/hosts` format) gives `ip`.
pub fn hosts_lookup(hosts: &str, ip: Ipv4Addr) -> Option<String> {
    hosts.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or_default();
        let mut w = l.split_whitespace();
        let a: Ipv4Addr = w.next()?.parse().ok()?;
        (a == ip).then(|| w.next().map(str::to_string)).flatten()
    })
}

/// A DNS query (RFC 1035 4.1) for the PTR record of `ip` (`d.c.b.a.in-addr.arpa`).
pub fn ptr_query(id: u16, ip: Ipv4Addr) -> Vec<u8> {
    let mut q = Vec::with_capacity(48);
    q.extend_from_slice(&id.to_be_bytes());
    // RD set; one question.
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let o = ip.octets();
    for label in [
        o[3].to_string(),
        o[2].to_string(),
        o[1].to_string(),
        o[0].to_string(),
        "in-addr".into(),
        "arpa".into(),
    ] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    // QTYPE PTR (12), QCLASS IN (1).
    q.extend_from_slice(&[0, 12, 0, 1]);
    q
}

/// A (possibly compressed) domain name at `at`: (the name, the offset after it in place).
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    // Bounded: a message of 1500 bytes cannot hold more pointers than this.
    for _ in 0..128 {
        let len = *msg.get(at)?;
        match len {
            0 => {
                let name = labels.join(".");
                return Some((name, end.unwrap_or(at + 1)));
            }
            l if l & 0xC0 == 0xC0 => {
                let ptr = usize::from(u16::from_be_bytes([l & 0x3F, *msg.get(at + 1)?]));
                end.get_or_insert(at + 2);
                at = ptr;
            }
            l if l & 0xC0 == 0 => {
                let s = msg.get(at + 1..at + 1 + usize::from(l))?;
                labels.push(String::from_utf8_lossy(s).into_owned());
                at += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
    None
}

/// The PTR name in a DNS answer to `query` (as built by [`ptr_query`]): `None` for another
/// ID, an error, an answer whose question is not exactly ours (one question, same name,
/// PTR, IN), or no PTR record.
pub fn parse_ptr_answer(msg: &[u8], query: &[u8]) -> Option<String> {
    if msg.len() < 12 || query.len() < 12 || msg[..2] != query[..2] {
        return None;
    }
    let (flags, rcode) = (msg[2], msg[3] & 0x0F);
    if flags & 0x80 == 0 || rcode != 0 {
        return None;
    }
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    if qd != 1 {
        return None;
    }
    // The question: the same name (case-insensitively, RFC 4343), type and class.
    let (asked, _) = read_name(query, 12)?;
    let (qname, next) = read_name(msg, 12)?;
    let tail = |m: &[u8], at: usize| m.get(at..at + 4).map(<[u8]>::to_vec);
    let (_, qnext) = read_name(query, 12)?;
    if !qname.eq_ignore_ascii_case(&asked) || tail(msg, next)? != tail(query, qnext)? {
        return None;
    }
    let mut at = next + 4;
    for _ in 0..an {
        let (_, next) = read_name(msg, at)?;
        let rr = msg.get(next..next + 10)?;
        let ty = u16::from_be_bytes([rr[0], rr[1]]);
        let rdlen = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
        let rdata = next + 10;
        if ty == 12 {
            let (name, _) = read_name(msg, rdata)?;
            if !name.is_empty() {
                return Some(name);
            }
        }
        at = rdata + rdlen;
    }
    None
}

/// Whether `name` may be shown in place of an address: RFC 1123 host-name syntax (labels of
/// 1-63 letters, digits and inner hyphens, 253 characters at most, one trailing dot
/// allowed), and not readable as an address: a name that parses as an IP address, or whose
/// last label is all digits (`192.168.77.050`), is refused.
pub fn acceptable_name(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() || n.len() > 253 || n.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    n.split('.').all(label_ok)
        && !n
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

/// Look up every address of `addrs` once, in parallel, within `bound` overall: the names
/// that came back in time (the rest stay numeric; lookups still running are abandoned).
pub fn resolve_all(
    addrs: &[Ipv4Addr],
    resolver: Arc<dyn Resolver>,
    bound: Duration,
) -> HashMap<Ipv4Addr, String> {
    let mut unique: Vec<Ipv4Addr> = addrs.to_vec();
    unique.sort();
    unique.dedup();
    let (tx, rx) = mpsc::channel();
    // At most this many lookups at once; the rest wait for a free worker.
    const WORKERS: usize = 16;
    let queue = Arc::new(std::sync::Mutex::new(unique));
    for _ in 0..WORKERS {
        let (tx, queue, r) = (tx.clone(), Arc::clone(&queue), Arc::clone(&resolver));
        let spawned = std::thread::Builder::new()
            .name("rdns".into())
            .spawn(move || loop {
                let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some(ip) = next else {
                    return;
                };
                if tx.send((ip, r.reverse(ip))).is_err() {
                    return;
                }
            });
        if spawned.is_err() {
            break;
        }
    }
    drop(tx);
    let deadline = Instant::now() + bound;
    let mut names = HashMap::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((ip, Some(name))) if acceptable_name(&name) => {
                names.insert(ip, name);
            }
            Ok((_, Some(_))) => {}
            Ok((_, None)) => {}
            Err(_) => break,
        }
    }
    names
}

/// The source and destination columns of an `ipchains -M -L` listing (`None`: no entries).
fn columns(text: &str) -> Option<(usize, usize)> {
    let header = text.lines().nth(1)?;
    Some((header.find("source")?, header.find("destination")?))
}

/// The addresses of an `ipchains -M -L` listing's source and destination columns.
pub fn listing_addrs(text: &str) -> Vec<Ipv4Addr> {
    let Some((s, d)) = columns(text) else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .flat_map(|l| [field(l, s), field(l, d)])
        .flatten()
        .collect()
}

fn field(line: &str, at: usize) -> Option<Ipv4Addr> {
    line.get(at..at + 20)?.trim().parse().ok()
}

/// The listing with the names of `names` in its source and destination columns (`%-20s`,
/// longer names widen the row as 2.2's printf did); a name that is not
/// [`acceptable_name`] leaves its address.
pub fn rename_listing(text: &str, names: &HashMap<Ipv4Addr, String>) -> String {
    let Some((s, d)) = columns(text) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    for (i, l) in text.lines().enumerate() {
        let (Some(a), Some(b)) = (field(l, s), field(l, d)) else {
            out.push_str(l);
            out.push('\n');
            continue;
        };
        if i < 2 || d != s + 21 {
            out.push_str(l);
            out.push('\n');
            continue;
        }
        let name = |ip: Ipv4Addr| {
            names
                .get(&ip)
                .filter(|n| acceptable_name(n))
                .cloned()
                .unwrap_or_else(|| ip.to_string())
        };
        out.push_str(l.get(..s).unwrap_or_default());
        out.push_str(&format!("{:<20} {:<20} ", name(a), name(b)));
        out.push_str(l.get(d + 21..).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        names: HashMap<Ipv4Addr, &'static str>,
        slow: Ipv4Addr,
        calls: std::sync::Mutex<Vec<Ipv4Addr>>,
    }

    impl Resolver for Fake {
        fn reverse(&self, ip: Ipv4Addr) -> Option<String> {
            if let Ok(mut c) = self.calls.lock() {
                c.push(ip);
            }
            if ip == self.slow {
                std::thread::sleep(Duration::from_secs(3));
            }
            self.names.get(&ip).map(|s| s.to_string())
        }
    }

    const LISTING: &str = "IP masquerading entries\n\
prot expire   source               destination          ports\n\
TCP  14:59.99 192.168.1.10         192.0.2.1            1025 (61000) -> www\n\
UDP  04:59.00 192.168.1.11         192.0.2.1            1030 (61001) -> domain\n\
TCP  01:00.00 192.168.1.10         198.51.100.7         1026 (61002) -> ftp\n";

    #[test]
    fn names_replace_addresses_once_each_within_the_bound_and_slow_ones_stay_numeric() {
        let fake = Arc::new(Fake {
            names: [
                (Ipv4Addr::new(192, 168, 1, 10), "pc10.lan"),
                (
                    Ipv4Addr::new(192, 0, 2, 1),
                    "a-rather-long-name.example.org",
                ),
                (Ipv4Addr::new(198, 51, 100, 7), "never-in-time.example"),
            ]
            .into_iter()
            .collect(),
            slow: Ipv4Addr::new(198, 51, 100, 7),
            calls: Default::default(),
        });
        let addrs = listing_addrs(LISTING);
        assert_eq!(addrs.len(), 6);
        let t0 = Instant::now();
        let names = resolve_all(&addrs, fake.clone(), Duration::from_millis(300));
        // The slow lookup (3 s) is abandoned at the bound.
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        let mut calls = fake.calls.lock().map(|c| c.clone()).unwrap_or_default();
        calls.sort();
        assert_eq!(
            calls,
            [
                Ipv4Addr::new(192, 0, 2, 1),
                Ipv4Addr::new(192, 168, 1, 10),
                Ipv4Addr::new(192, 168, 1, 11),
                Ipv4Addr::new(198, 51, 100, 7),
            ],
            "each address looked up once"
        );
        assert_eq!(
            rename_listing(LISTING, &names),
            "IP masquerading entries\n\
prot expire   source               destination          ports\n\
TCP  14:59.99 pc10.lan             a-rather-long-name.example.org 1025 (61000) -> www\n\
UDP  04:59.00 192.168.1.11         a-rather-long-name.example.org 1030 (61001) -> domain\n\
TCP  01:00.00 pc10.lan             198.51.100.7         1026 (61002) -> ftp\n"
        );
        // No entries: nothing to look up, the text unchanged.
        let empty = "IP masquerading entries\n";
        assert!(listing_addrs(empty).is_empty());
        assert_eq!(rename_listing(empty, &names), empty);
    }

    #[test]
    fn verbose_listing_columns_are_found_from_the_header() {
        let v = "IP masquerading entries\n\
prot expire      initseq delta prevd source               destination          ports\n\
TCP  14:59.99          0     0     0 192.168.1.10         192.0.2.1            1025 (61000) -> www\n";
        let names = [(Ipv4Addr::new(192, 0, 2, 1), "far.example".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            rename_listing(v, &names).lines().nth(2),
            Some("TCP  14:59.99          0     0     0 192.168.1.10         far.example          1025 (61000) -> www")
        );
    }

    #[test]
    fn hosts_file_and_dns_answers_parse() {
        let hosts = "# comment\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n10.0.0.5 nas.lan nas # the NAS\n";
        assert_eq!(
            hosts_lookup(hosts, Ipv4Addr::LOCALHOST).as_deref(),
            Some("localhost")
        );
        assert_eq!(
            hosts_lookup(hosts, Ipv4Addr::new(10, 0, 0, 5)).as_deref(),
            Some("nas.lan")
        );
        assert_eq!(hosts_lookup(hosts, Ipv4Addr::new(10, 0, 0, 6)), None);
        // An answer built from the query: QR set, one PTR answer whose owner name is a
        // compression pointer to the question (offset 12).
        let q = ptr_query(0x4242, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            &q[12..],
            b"\x011\x012\x010\x03192\x07in-addr\x04arpa\x00\x00\x0c\x00\x01"
        );
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 1;
        a.extend_from_slice(&[0xC0, 12, 0, 12, 0, 1, 0, 0, 0x0e, 0x10, 0, 13]);
        a.extend_from_slice(b"\x03far\x07example\x00");
        assert_eq!(parse_ptr_answer(&a, &q).as_deref(), Some("far.example"));
        // Another id, an error code, a truncated message: nothing.
        assert_eq!(
            parse_ptr_answer(&a, &ptr_query(0x4243, Ipv4Addr::new(192, 0, 2, 1))),
            None
        );
        let mut nx = a.clone();
        nx[3] = 0x83;
        assert_eq!(parse_ptr_answer(&nx, &q), None);
        assert_eq!(parse_ptr_answer(&a[..a.len() - 5], &q), None);
        // A pointer loop ends.
        let mut l = a.clone();
        let n = l.len();
        l.truncate(n - 13);
        l.extend_from_slice(&[0xC0, (n - 13) as u8]);
        assert_eq!(parse_ptr_answer(&l, &q), None);
    }

    #[test]
    fn an_answer_to_another_question_is_refused() {
        // Same ID, but the question is for another address (a spoofed or stale answer).
        let q = ptr_query(0x1111, Ipv4Addr::new(192, 0, 2, 1));
        let other = ptr_query(0x1111, Ipv4Addr::new(192, 0, 2, 9));
        let answer = |question: &[u8]| {
            let mut a = question.to_vec();
            a[2] = 0x81;
            a[3] = 0x80;
            a[7] = 1;
            a.extend_from_slice(&[0xC0, 12, 0, 12, 0, 1, 0, 0, 0x0e, 0x10, 0, 13]);
            a.extend_from_slice(b"\x03far\x07example\x00");
            a
        };
        assert_eq!(parse_ptr_answer(&answer(&other), &q), None);
        // Upper case in the echoed question is the same question (RFC 4343).
        let mut upper = answer(&q);
        upper[23..30].copy_from_slice(b"IN-ADDR");
        assert_eq!(parse_ptr_answer(&upper, &q).as_deref(), Some("far.example"));
        // Another type (A instead of PTR), or two questions: refused.
        let mut ty = answer(&q);
        ty[36] = 1;
        assert_eq!(parse_ptr_answer(&ty, &q), None);
        let mut two = answer(&q);
        two[5] = 2;
        assert_eq!(parse_ptr_answer(&two, &q), None);
        // Query IDs are random, not derived from the address and the pid.
        let ids: std::collections::HashSet<u16> = (0..8)
            .map(|_| {
                let mut b = [0u8; 2];
                getrandom::fill(&mut b)
                    .map(|_| u16::from_be_bytes(b))
                    .unwrap_or(0)
            })
            .collect();
        assert!(ids.len() > 1, "{ids:?}");
    }

    #[test]
    fn hostile_names_never_reach_the_listing() {
        for bad in [
            "192.168.77.50",
            "192.168.77.050",
            "::1",
            "x\x1b[2J.example",
            "evil\nTCP  01:00.00 forged",
            "-lead.example",
            "trail-.example",
            "a..b",
            "",
            "under_score.example",
            &"a".repeat(64),
        ] {
            assert!(!acceptable_name(bad), "{bad:?}");
        }
        for good in [
            "pc10.lan",
            "far.example.",
            "a-b.c0",
            "localhost",
            "1host.example",
        ] {
            assert!(acceptable_name(good), "{good:?}");
        }
        let fake = Arc::new(Fake {
            names: [
                (Ipv4Addr::new(192, 168, 1, 10), "192.168.77.50"),
                (Ipv4Addr::new(192, 168, 1, 11), "ok.lan"),
                (Ipv4Addr::new(192, 0, 2, 1), "x\x1b]0;title\x07\nfake row"),
            ]
            .into_iter()
            .collect(),
            slow: Ipv4Addr::UNSPECIFIED,
            calls: Default::default(),
        });
        let names = resolve_all(&listing_addrs(LISTING), fake, Duration::from_secs(5));
        let out = rename_listing(LISTING, &names);
        assert_eq!(out.lines().count(), LISTING.lines().count());
        assert!(
            !out.contains('\x1b') && !out.contains("192.168.77.50"),
            "{out}"
        );
        assert!(
            out.contains("192.168.1.10") && out.contains("ok.lan"),
            "{out}"
        );
        // Even a map built elsewhere cannot smuggle a hostile name in.
        let forged = [(Ipv4Addr::new(192, 0, 2, 1), "a\nb".to_string())]
            .into_iter()
            .collect();
        assert_eq!(rename_listing(LISTING, &forged), LISTING);
    }

    #[test]
    fn the_system_resolver_names_localhost_from_etc_hosts() {
        let r = SystemResolver::new(Duration::from_millis(200));
        let text = std::fs::read_to_string(&r.hosts).unwrap_or_default();
        if hosts_lookup(&text, Ipv4Addr::LOCALHOST).is_none() {
            masqdial_testkit::skip(
                "the_system_resolver_names_localhost_from_etc_hosts",
                "an /etc/hosts entry for 127.0.0.1 [none]",
            );
            return;
        }
        let names = resolve_all(&[Ipv4Addr::LOCALHOST], Arc::new(r), Duration::from_secs(1));
        assert_eq!(
            names.get(&Ipv4Addr::LOCALHOST).map(String::as_str),
            hosts_lookup(&text, Ipv4Addr::LOCALHOST).as_deref()
        );
    }
}
