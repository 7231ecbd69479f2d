//! Static name tables ipchains took from libc and its own source: ICMP type names (ipchains 1.3.9
//! `icmp_codes`), a small built-in `/etc/services` and `/etc/protocols` (no files, no DNS).
//! Must not do lookups anywhere else.

/// One ICMP name: type and code range; `test_code_min` = use the lowest code when testing (`-C`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct IcmpName {
    pub(crate) name: &'static str,
    pub(crate) ty: u16,
    pub(crate) code_min: u16,
    pub(crate) code_max: u16,
    pub(crate) test_code_min: bool,
}

const fn icmp(
    name: &'static str,
    ty: u16,
    code_min: u16,
    code_max: u16,
    test_code_min: bool,
) -> IcmpName {
    IcmpName {
        name,
        ty,
        code_min,
        code_max,
        test_code_min,
    }
}

/// ipchains 1.3.9's table, in its order (listing picks the first entry that fits).
pub(crate) const ICMP_CODES: &[IcmpName] = &[
    icmp("echo-reply", 0, 0, 0xFFFF, true),
    icmp("pong", 0, 0, 0xFFFF, true),
    icmp("destination-unreachable", 3, 0, 0xFFFF, false),
    icmp("network-unreachable", 3, 0, 0, true),
    icmp("host-unreachable", 3, 1, 1, true),
    icmp("protocol-unreachable", 3, 2, 2, true),
    icmp("port-unreachable", 3, 3, 3, true),
    icmp("fragmentation-needed", 3, 4, 4, true),
    icmp("source-route-failed", 3, 5, 5, true),
    icmp("network-unknown", 3, 6, 6, true),
    icmp("host-unknown", 3, 7, 7, true),
    icmp("network-prohibited", 3, 9, 9, true),
    icmp("host-prohibited", 3, 10, 10, true),
    icmp("TOS-network-unreachable", 3, 11, 11, true),
    icmp("TOS-host-unreachable", 3, 12, 12, true),
    icmp("communication-prohibited", 3, 13, 13, true),
    icmp("host-precedence-violation", 3, 14, 14, true),
    icmp("precedence-cutoff", 3, 15, 15, true),
    icmp("source-quench", 4, 0, 0xFFFF, true),
    icmp("redirect", 5, 0, 0xFFFF, false),
    icmp("network-redirect", 5, 0, 0, true),
    icmp("host-redirect", 5, 1, 1, true),
    icmp("TOS-network-redirect", 5, 2, 2, true),
    icmp("TOS-host-redirect", 5, 3, 3, true),
    icmp("echo-request", 8, 0, 0xFFFF, true),
    icmp("ping", 8, 0, 0xFFFF, true),
    icmp("router-advertisement", 9, 0, 0xFFFF, true),
    icmp("router-solicitation", 10, 0, 0xFFFF, true),
    icmp("time-exceeded", 11, 0, 0xFFFF, false),
    icmp("ttl-exceeded", 11, 0, 0xFFFF, false),
    icmp("ttl-zero-during-transit", 11, 0, 0, true),
    icmp("ttl-zero-during-reassembly", 11, 1, 1, true),
    icmp("parameter-problem", 12, 0, 0xFFFF, false),
    icmp("ip-header-bad", 12, 0, 0, true),
    icmp("required-option-missing", 12, 1, 1, true),
    icmp("timestamp-request", 13, 0, 0xFFFF, true),
    icmp("timestamp-reply", 14, 0, 0xFFFF, true),
    icmp("address-mask-request", 17, 0, 0xFFFF, true),
    icmp("address-mask-reply", 18, 0, 0xFFFF, true),
];

/// Built-in services table: (name, port, tcp, udp). First name per port is the one listed.
const SERVICES: &[(&str, u16, bool, bool)] = &[
    ("echo", 7, true, true),
    ("ftp-data", 20, true, false),
    ("ftp", 21, true, false),
    ("ssh", 22, true, true),
    ("telnet", 23, true, false),
    ("smtp", 25, true, false),
    ("time", 37, true, true),
    ("whois", 43, true, false),
    ("domain", 53, true, true),
    ("bootps", 67, true, true),
    ("bootpc", 68, true, true),
    ("tftp", 69, false, true),
    ("gopher", 70, true, false),
    ("finger", 79, true, false),
    ("www", 80, true, true),
    ("http", 80, true, true),
    ("pop-3", 110, true, true),
    ("pop3", 110, true, true),
    ("sunrpc", 111, true, true),
    ("auth", 113, true, false),
    ("ident", 113, true, false),
    ("nntp", 119, true, false),
    ("ntp", 123, true, true),
    ("netbios-ns", 137, true, true),
    ("netbios-dgm", 138, true, true),
    ("netbios-ssn", 139, true, true),
    ("imap2", 143, true, true),
    ("imap", 143, true, true),
    ("snmp", 161, true, true),
    ("irc", 194, true, true),
    ("masqdialer", 224, true, true),
    ("https", 443, true, true),
    ("exec", 512, true, false),
    ("biff", 512, false, true),
    ("login", 513, true, false),
    ("who", 513, false, true),
    ("shell", 514, true, false),
    ("syslog", 514, false, true),
    ("printer", 515, true, false),
    ("talk", 517, false, true),
    ("ntalk", 518, false, true),
    ("route", 520, false, true),
    ("uucp", 540, true, false),
    ("socks", 1080, true, true),
    ("x11", 6000, true, true),
];

/// `getservbyname(name, proto)`.
pub(crate) fn service_to_port(name: &str, proto: u8) -> Option<u16> {
    SERVICES
        .iter()
        .find(|(n, _, tcp, udp)| *n == name && ((proto == 6 && *tcp) || (proto == 17 && *udp)))
        .map(|s| s.1)
}

/// `getservbyport(port, proto)`: the first name for the port.
pub fn port_to_service(port: u16, proto: u8) -> Option<&'static str> {
    SERVICES
        .iter()
        .find(|(_, p, tcp, udp)| *p == port && ((proto == 6 && *tcp) || (proto == 17 && *udp)))
        .map(|s| s.0)
}

/// Built-in `/etc/protocols` subset: (name, number).
const PROTOCOLS: &[(&str, u8)] = &[
    ("ip", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ospf", 89),
];

/// `getprotobyname` then ipchains' own `chain_protos` (case-insensitive `all`, `tcp`, `udp`, `icmp`).
pub(crate) fn protocol_by_name(s: &str) -> Option<u8> {
    if let Some(p) = PROTOCOLS.iter().find(|(n, _)| *n == s) {
        return Some(p.1);
    }
    match s.to_ascii_lowercase().as_str() {
        "all" => Some(0),
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        _ => None,
    }
}

/// ipchains' `proto_to_name`: `/etc/protocols` for non-zero, then `all` for 0; `None` = print the number.
pub(crate) fn proto_to_name(p: u8) -> Option<&'static str> {
    if p == 0 {
        return Some("all");
    }
    PROTOCOLS.iter().find(|(_, n)| *n == p).map(|x| x.0)
}
