//! Unit tests for the chains subsystem: parser and printer on real ipchains command lines, every
//! legality error, golden `-L` / `/proc` output, walk semantics, loops, counters, save/restore.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use super::*;

fn pkt<'a>(
    proto: u8,
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    iface: &'a str,
) -> PacketInfo<'a> {
    PacketInfo {
        proto,
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        sport,
        dport,
        iface,
        iface_aliases: &[],
        fragment: false,
        syn: false,
        tos: 0,
        len: 100,
    }
}

fn rule(spec: &str) -> Rule {
    match parse_rule(spec) {
        Ok(s) => s.rule,
        Err(e) => panic!("`{spec}': {e}"),
    }
}

fn perr(args: &str) -> String {
    let a: Vec<&str> = args.split_whitespace().collect();
    match parse_command(&a) {
        Ok(i) => format!("parsed OK: {i:?}"),
        Err(e) => e.to_string(),
    }
}

fn run(fw: &mut Firewall, line: &str) {
    let a: Vec<&str> = line.split_whitespace().collect();
    let inv = parse_command(&a).unwrap();
    match inv.command {
        Command::Append { chain, spec } => {
            for r in spec.expand() {
                fw.append(&chain, &r).unwrap();
            }
        }
        Command::Insert { chain, num, spec } => {
            for r in spec.expand() {
                fw.insert(&chain, num, &r).unwrap();
            }
        }
        Command::NewChain { chain } => fw.new_chain(&chain).unwrap(),
        Command::SetPolicy { chain, policy } => fw.set_policy(&chain, &policy).unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn parse_basic_masq_rule() {
    let r = rule("-s 192.168.1.0/24 -j MASQ");
    assert_eq!(r.src, Ipv4Addr::new(192, 168, 1, 0));
    assert_eq!(r.src_mask, Ipv4Addr::new(255, 255, 255, 0));
    assert_eq!(r.dst_mask, Ipv4Addr::UNSPECIFIED);
    assert_eq!(r.target, Target::Masq);
    assert_eq!(r.proto, 0);
    assert_eq!(r.to_spec(), "-s 192.168.1.0/24 -j MASQ");
}

#[test]
fn parse_ports_inversions_and_long_options() {
    let r = rule("-p tcp -s 10.0.0.1 1024:65535 -d ! 10.0.0.0/255.0.0.0 ! www -i ppp+ -y -l");
    assert_eq!(r.proto, 6);
    assert_eq!(
        r.src_ports,
        PortRange {
            lo: 1024,
            hi: 65535
        }
    );
    assert_eq!(r.dst_ports, PortRange::single(80));
    assert!(r.inv(model::IP_FW_INV_DSTIP) && r.inv(model::IP_FW_INV_DSTPT));
    assert!(!r.inv(model::IP_FW_INV_SRCIP));
    assert_eq!(r.iface, "ppp");
    assert!(r.iface_wildcard && r.syn && r.log);
    let r2 = rule("--protocol tcp --source 10.0.0.1 --sport 1024: --destination ! 10.0.0.0/8 --dport ! 80 --interface ppp+ --syn --log");
    assert_eq!(r, r2);
    let r3 = rule("-p tcp --sport :1023");
    assert_eq!(r3.src_ports, PortRange { lo: 0, hi: 1023 });
    // 1.3.9: `--sport ! 53' is the same as `! --sport 53'.
    assert_eq!(rule("-p udp --sport ! 53"), rule("-p udp ! --sport 53"));
    assert_eq!(rule("-p udp --dport=53").dst_ports, PortRange::single(53));
    // Unique long-option prefixes are accepted, as getopt_long does.
    assert_eq!(rule("--proto tcp --dp 22").dst_ports, PortRange::single(22));
}

#[test]
fn parse_icmp_names_and_numbers() {
    let r = rule("-p icmp --icmp-type echo-request -j ACCEPT");
    assert_eq!(
        (r.src_ports, r.dst_ports),
        (PortRange::single(8), PortRange::ANY)
    );
    let r = rule("-p icmp -s 0/0 port-unr");
    assert_eq!(
        (r.src_ports, r.dst_ports),
        (PortRange::single(3), PortRange::single(3))
    );
    let r = rule("-p icmp -s 0/0 3 -d 0/0 1");
    assert_eq!(
        (r.src_ports, r.dst_ports),
        (PortRange::single(3), PortRange::single(1))
    );
    assert_eq!(
        parse_rule("-p icmp --icmp-type echo")
            .unwrap_err()
            .to_string(),
        "Ambiguous ICMP `echo' : `echo-reply' or `echo-request'?"
    );
    assert_eq!(
        parse_rule("-p icmp --icmp-type ping -d 0/0 3")
            .unwrap_err()
            .to_string(),
        "Can't use ICMP name and destination port together"
    );
    assert_eq!(
        parse_rule("-p icmp ! --icmp-type ping")
            .unwrap_err()
            .to_string(),
        "Can't invert named ICMP types"
    );
    assert_eq!(
        parse_rule("-p icmp --icmp-type bogus")
            .unwrap_err()
            .to_string(),
        "invalid ICMP type `bogus' specified"
    );
}

#[test]
fn parse_misc_options() {
    let r = rule("-p tcp -m 0x10 -t 0x01 0x10 -o -j REDIRECT 8080");
    assert_eq!((r.mark, r.mark_absolute), (16, true));
    assert_eq!((r.tos_and, r.tos_xor), (0x01, 0x10));
    assert_eq!(r.netlink, Some(65535));
    assert_eq!(
        (r.target.clone(), r.redirect_port),
        (Target::Redirect, 8080)
    );
    let r = rule("-m -5 -o 128");
    assert_eq!((r.mark, r.mark_absolute), (5u32.wrapping_neg(), false));
    assert_eq!(r.netlink, Some(128));
    let r = rule("-f -i eth0 -j mychain");
    assert!(r.fragment && !r.iface_wildcard);
    assert_eq!(r.target, Target::Chain("mychain".into()));
    let r = rule("! -f -p ! tcp");
    assert!(r.inv(model::IP_FW_INV_FRAG) && r.inv(model::IP_FW_INV_PROTO));
    let r = rule("-p tcp -j REDIRECT");
    assert_eq!(r.redirect_port, 0);
    assert_eq!(rule("-p 47").proto, 47);
    assert_eq!(rule("-p gre").proto, 47);
    assert_eq!(rule("-p ALL").proto, 0);
    assert_eq!(rule("-s any/0").src_mask, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn every_parameter_error_has_ipchains_wording() {
    let cases: &[(&str, &str)] = &[
        ("-A input -p tcp -p udp", "multiple -p flags not allowed"),
        ("-A input ! -j ACCEPT", "cannot have ! before -j"),
        ("-A input ! ! -y", "multiple consecutive ! not allowed"),
        (
            "-A input -s 1.2.3.4 ! 80",
            "can only specify ports for icmp, tcp or udp",
        ),
        (
            "-A input -p ! tcp -s 1.2.3.4 80",
            "no ports allowed without specific protocol",
        ),
        ("-A input -p udp -y", "-y only allowed with TCP protocol"),
        ("-A input -p tcp -f --dport 80", "no ports allowed with -f"),
        ("-A input -p tcp -f -y", "-y not allowed with -f"),
        ("-A input -p ! all", "rule would never match protocol"),
        ("-A input -p bogus", "unknown protocol `bogus' specified"),
        (
            "-A input -s host.example",
            "host/network `host.example' not found",
        ),
        ("-A input -s 1.2.3.4/33", "invalid mask `33' specified"),
        (
            "-A input -p tcp --dport nosuch",
            "invalid port/service `nosuch' specified",
        ),
        (
            "-A input -p icmp -j REDIRECT",
            "redirecting only allowed with TCP or UDP",
        ),
        (
            "-A input -j MASQ",
            "masquerading not allowed for input and output chains",
        ),
        (
            "-A output -j MASQ",
            "masquerading not allowed for input and output chains",
        ),
        (
            "-A forward -p tcp -j REDIRECT 80",
            "redirect not allowed for output and forward chains",
        ),
        ("-A input -j", "option requires an argument -- 'j'"),
        ("-A input -j ''", ""),
        (
            "-A input -j LONGTARGET",
            "Invalid target name `LONGTARGET' (8 chars max)",
        ),
        (
            "-A averylongname -j ACCEPT",
            "chain name `averylongname' too long (must be under 8 chars)",
        ),
        ("-A input -n", "Illegal option `-n' with this command"),
        ("-A input -x", "Illegal option `-x' with this command"),
        ("-L -s 1.2.3.4", "Illegal option `-s' with this command"),
        ("-R input -j ACCEPT", "-R requires a rule number"),
        ("-R input 1 -b", "Illegal option `-b' with this command"),
        ("-I input 0", "Invalid rule number `0'"),
        ("-P input", "-P requires a chain and a policy"),
        ("-P input MASQ", "`-P MASQ' only valid for `forward' chain."),
        ("-P mine DENY", "Can only set policy in built-in chains."),
        ("-P input DROP", "Invalid policy `DROP' for -P"),
        ("-A input -L", "Can't use -L with -A"),
        (
            "-L input -Z",
            "-L with -Z does not allow chain to be specified",
        ),
        ("-M", "-M/--masquerading requires -L/--list or -S/--set"),
        ("-S 1 2", "-S requires 3 timeout values"),
        ("-S 1 2 x", "invalid timeout value `x' specified"),
        ("-p tcp", "no command specified"),
        ("-A input !", "nothing appropriate following !"),
        (
            "-A input -t 0x00 0x00",
            "TOS manipulation cannot alter bit 0 (RFC1349)",
        ),
        (
            "-A input -t 0x01 0x06",
            "TOS manipulation cannot set multiple TOS bits (RFC1349)",
        ),
        ("-A input -t 0x01", "-t requires 2 hexbyte arguments"),
        ("-A input -t 0x01 zz", "invalid hexbyte `zz' specified"),
        ("-A input -m abc", "Bad value `abc' for -m."),
        (
            "-A input -o 70000",
            "-o argument must be 0-65535, not `70000'",
        ),
        (
            "-A input -i abcdefghijklmnopq",
            "interface name `abcdefghijklmnopq' must be shorter than IFNAMSIZ (16)",
        ),
        ("-A input --bogus", "unrecognized option '--bogus'"),
        ("-A input --s 1.2.3.4", "option '--s' is ambiguous"),
        ("-A input -q", "invalid option -- 'q'"),
        ("-A input stray", "unknown arguments found on commandline"),
        (
            "-C input -p tcp -s 1.2.3.4 -d 5.6.7.8 80 -i eth0",
            "one port required with source/destination address for -C",
        ),
        (
            "-C input -p tcp -s 1.2.3.4 1 -d 5.6.7.8 80",
            "You need to supply the `-i' option for this command",
        ),
        (
            "-C input -p tcp -s ! 1.2.3.4 1 -d 5.6.7.8 80 -i eth0",
            "! not allowed with -C",
        ),
        (
            "-C input -p icmp -s 1.2.3.4 redirect -d 5.6.7.8 -i eth0",
            "Must specify exact ICMP type for testing",
        ),
        (
            "-A input -s 1.2.3.4 -s 1.2.3.5",
            "multiple -s flags not allowed",
        ),
        (
            "-A input -p tcp --sport 1 -s 1.2.3.4 2",
            "multiple -s flags not allowed",
        ),
    ];
    let mut bad = Vec::new();
    for (cmd, want) in cases {
        if want.is_empty() {
            continue;
        }
        let got = perr(cmd);
        if &got != want {
            bad.push(format!("`{cmd}': got `{got}', want `{want}'"));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(
        parse_command(&["-A", "input", "-j", ""])
            .unwrap_err()
            .to_string(),
        "Invalid target name (too short)"
    );
}

/// Found by the rule_spec fuzz target: an argument vector could put whitespace into an interface
/// or target name, giving a rule whose printed spec (and ipchains-save line) parses differently.
#[test]
fn whitespace_in_interface_or_target_names_is_refused() {
    assert_eq!(
        parse_args(&["-i", " ppp0 -j eque-"])
            .unwrap_err()
            .to_string(),
        "Invalid interface name ` ppp0 -j eque-'"
    );
    assert_eq!(
        parse_args(&["-i", "ppp\u{a0}0"]).unwrap_err().to_string(),
        "Invalid interface name `ppp\u{a0}0'"
    );
    assert_eq!(
        parse_args(&["-j", "a\u{a0}b"]).unwrap_err().to_string(),
        "Invalid target name `a\u{a0}b'"
    );
    // Alias and wildcard names are still fine and round-trip.
    for name in ["eth0:1", "ppp+", "a\u{8}b"] {
        let r = parse_args(&["-i", name]).unwrap().rule;
        assert_eq!(parse_rule(&r.to_spec()).unwrap().rule, r, "{name}");
    }
}

#[test]
fn commands_parse() {
    let p = |s: &str| parse_command(&s.split_whitespace().collect::<Vec<_>>()).unwrap();
    assert_eq!(
        p("-L").command,
        Command::List {
            chain: None,
            zero: false
        }
    );
    assert_eq!(
        p("-L forward -n -v -x --line-numbers").command,
        Command::List {
            chain: Some("forward".into()),
            zero: false
        }
    );
    let i = p("-L -n -v -x --line-numbers");
    assert!(i.numeric && i.verbose && i.exact && i.line_numbers);
    assert_eq!(
        p("-L -Z").command,
        Command::List {
            chain: None,
            zero: true
        }
    );
    assert_eq!(
        p("-nL").command,
        Command::List {
            chain: None,
            zero: false
        }
    );
    assert_eq!(p("-F").command, Command::Flush { chain: None });
    assert_eq!(
        p("-Z input").command,
        Command::Zero {
            chain: Some("input".into())
        }
    );
    assert_eq!(p("-X").command, Command::DeleteChain { chain: None });
    assert_eq!(
        p("-N mine").command,
        Command::NewChain {
            chain: "mine".into()
        }
    );
    assert_eq!(
        p("-D input 3").command,
        Command::DeleteNum {
            chain: "input".into(),
            num: 3
        }
    );
    assert!(matches!(
        p("-D input -s 1.2.3.4").command,
        Command::Delete { .. }
    ));
    assert!(matches!(
        p("-I input -j DENY").command,
        Command::Insert { num: 1, .. }
    ));
    assert!(matches!(
        p("-I input 4 -j DENY").command,
        Command::Insert { num: 4, .. }
    ));
    assert!(matches!(
        p("-R input 2 -j DENY").command,
        Command::Replace { num: 2, .. }
    ));
    assert_eq!(
        p("-P forward MASQ").command,
        Command::SetPolicy {
            chain: "forward".into(),
            policy: "MASQ".into()
        }
    );
    assert_eq!(p("-M -L").command, Command::MasqList);
    assert_eq!(
        p("-M -S 7200 10 160").command,
        Command::MasqSetTimeouts {
            tcp: 7200,
            tcpfin: 10,
            udp: 160
        }
    );
    assert_eq!(
        p("-S 0 0 60").command,
        Command::MasqSetTimeouts {
            tcp: 0,
            tcpfin: 0,
            udp: 60
        }
    );
    assert_eq!(p("-h icmp").command, Command::Help { icmp: true });
    assert_eq!(p("-V").command, Command::Version);
    assert!(
        matches!(p("--append forward --bidirectional -s 1.2.3.4").command, Command::Append { spec, .. } if spec.bidirectional)
    );
    let w = p("-A input -t 0x01 0x10");
    assert!(w.warnings.is_empty());
    let w = p("-A input -t 0xFF 0x02");
    assert_eq!(
        w.warnings,
        vec![
            "Warning: TOS manipulation may set multiple TOS bits for Minimize Throughput TOS (0x08)",
            "Warning: TOS manipulation may set multiple TOS bits for Maximize Reliability TOS (0x04)"
        ]
    );
    assert!(p("-A input -t 0xFF 0x02 --no-warnings").warnings.is_empty());
}

#[test]
fn bidirectional_swaps_addresses_and_ports() {
    let spec = parse_rule("-p tcp -s 10.0.0.1 1024:65535 -d ! 10.0.0.2 80 -b").unwrap();
    let rs = spec.expand();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[1].src, Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(rs[1].dst, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(rs[1].src_ports, PortRange::single(80));
    assert_eq!(
        rs[1].dst_ports,
        PortRange {
            lo: 1024,
            hi: 65535
        }
    );
    assert!(rs[1].inv(model::IP_FW_INV_SRCIP) && !rs[1].inv(model::IP_FW_INV_DSTIP));
    // ICMP keeps type/code in place.
    let rs = parse_rule("-p icmp -s 1.1.1.1 8 -d 2.2.2.2 0 -b")
        .unwrap()
        .expand();
    assert_eq!(rs[1].src_ports, PortRange::single(8));
}

#[test]
fn spec_round_trips() {
    for s in [
        "",
        "-s 192.168.1.0/24 -j MASQ",
        "-p tcp -s 10.0.0.0/8 1024:65535 -d ! 1.2.3.4/32 ! 80 -i ! ppp+ -y -l -j ACCEPT",
        "-p udp -d 0.0.0.0/0 53 -o -m +7 -t 0x01 0x10 -j RETURN",
        "-p icmp -s 0.0.0.0/0 8 -d 0.0.0.0/0 0 -j DENY",
        "-p 47 -s 1.0.3.0/255.0.255.0 ! -f -o 10 -m -3 -j mychain",
        "-p tcp -i eth0 ! -y -j REDIRECT 3128",
        "-i ! + -m 0",
    ] {
        let r = rule(s);
        assert_eq!(r.to_spec(), s, "printing `{s}'");
        assert_eq!(rule(&r.to_spec()), r);
    }
}

fn masq_gateway() -> Firewall {
    let mut fw = Firewall::new();
    for l in [
        "-P forward DENY",
        "-A forward -s 192.168.1.0/24 -j MASQ",
        "-A input -p tcp -d 0.0.0.0/0 www -j ACCEPT",
        "-A input -p tcp -s 10.0.0.0/8 1024:65535 -d ! 192.168.1.1 ssh -i ppp+ -y -l -j DENY",
        "-A input -p icmp --icmp-type echo-request -j REJECT",
        "-A input -p udp -j REDIRECT 53",
        "-N acct",
        "-A acct -i eth0",
        "-A output -j acct",
    ] {
        run(
            &mut fw,
            &format!("{} {}", l.split_whitespace().next().unwrap(), &l[3..]),
        );
    }
    fw
}

#[test]
fn golden_list_plain() {
    let fw = masq_gateway();
    let want = "\
Chain input (policy ACCEPT):
target     prot opt     source                destination           ports
ACCEPT     tcp  ------  anywhere             anywhere              any ->   www
DENY       tcp  -y--l-  10.0.0.0/8           !192.168.1.1           1024:65535 ->   ssh
REJECT     icmp ------  anywhere             anywhere              echo-request
REDIRECT   udp  ------  anywhere             anywhere              any ->   any => domain
Chain forward (policy DENY):
target     prot opt     source                destination           ports
MASQ       all  ------  192.168.1.0/24       anywhere              n/a
Chain output (policy ACCEPT):
target     prot opt     source                destination           ports
acct       all  ------  anywhere             anywhere              n/a
Chain acct (1 references):
target     prot opt     source                destination           ports
-          all  ------  anywhere             anywhere              n/a
";
    assert_eq!(fw.list(None, ListOptions::default()).unwrap(), want);
}

#[test]
fn golden_list_numeric_verbose_exact() {
    let mut fw = masq_gateway();
    let p = pkt(17, [1, 2, 3, 4], 1000, [5, 6, 7, 8], 53, "eth0");
    assert_eq!(
        fw.evaluate(BuiltinChain::Input, &p),
        Verdict::Redirect { port: 53 }
    );
    let want = "\
Chain forward (policy DENY: 0 packets, 0 bytes):
num      pkts      bytes target     prot opt    tosa tosx  ifname     mark       outsize  source                destination           ports
1           0          0 MASQ       all  ------ 0xFF 0x00  *                              192.168.1.0/24       0.0.0.0/0             n/a
";
    let o = ListOptions {
        numeric: true,
        verbose: true,
        exact: true,
        line_numbers: true,
    };
    assert_eq!(fw.list(Some("forward"), o).unwrap(), want);
    let want_in = "\
Chain input (policy ACCEPT: 0 packets, 0 bytes):
 pkts bytes target     prot opt    tosa tosx  ifname     mark       outsize  source                destination           ports
    0     0 ACCEPT     tcp  ------ 0xFF 0x00  *                              0.0.0.0/0            0.0.0.0/0             * ->   80
    0     0 DENY       tcp  -y--l- 0xFF 0x00  ppp+                           10.0.0.0/8           !192.168.1.1           1024:65535 ->   22
    0     0 REJECT     icmp ------ 0xFF 0x00  *                              0.0.0.0/0            0.0.0.0/0             8 ->   *
    1   100 REDIRECT   udp  ------ 0xFF 0x00  *                              0.0.0.0/0            0.0.0.0/0             * ->   * => 53
";
    let o = ListOptions {
        numeric: true,
        verbose: true,
        exact: false,
        line_numbers: false,
    };
    assert_eq!(fw.list(Some("input"), o).unwrap(), want_in);
    assert_eq!(
        fw.list(Some("nosuch"), o).unwrap_err().to_string(),
        "No chain by that name"
    );
}

#[test]
fn counters_abbreviate_kmg() {
    let mut fw = Firewall::new();
    fw.append("input", &rule("-j ACCEPT")).unwrap();
    fw.stats[0].rules[0] = model::Counter {
        packets: 123_456,
        bytes: 98_765_432_109,
    };
    let o = ListOptions {
        numeric: true,
        verbose: true,
        ..Default::default()
    };
    let s = fw.list(Some("input"), o).unwrap();
    let row = s.lines().nth(2).unwrap();
    assert!(row.starts_with(" 123K   99G ACCEPT"), "{row}");
    fw.stats[0].rules[0] = model::Counter {
        packets: 99_999,
        bytes: 12_345_678,
    };
    let s = fw.list(Some("input"), o).unwrap();
    assert!(
        s.lines().nth(2).unwrap().starts_with("99999   12M ACCEPT"),
        "{s}"
    );
}

#[test]
fn golden_proc_files() {
    let mut fw = masq_gateway();
    let p = pkt(6, [192, 168, 1, 5], 1025, [9, 9, 9, 9], 80, "eth0");
    assert_eq!(fw.evaluate(BuiltinChain::Forward, &p), Verdict::Masq);
    assert_eq!(fw.evaluate(BuiltinChain::Output, &p), Verdict::Accept);
    let chains = fw.proc_fwchains();
    let lines: Vec<&str> = chains.lines().collect();
    assert_eq!(
        lines[1],
        "    input 0A000000/FF000000->C0A80101/FFFFFFFF ppp 13 2 6 0         0         0         0         1024-65535 22-22 AFF X00 00000000 0 0      DENY"
    );
    assert_eq!(
        lines[4],
        "  forward C0A80100/FFFFFF00->00000000/00000000 - 10 0 0 0         1         0         100       0-65535 0-65535 AFF X00 00000000 0 0      MASQ"
    );
    assert_eq!(
        lines[3],
        "    input 00000000/00000000->00000000/00000000 - 10 0 17 0         0         0         0         0-65535 0-65535 AFF X00 00000035 0 0  REDIRECT"
    );
    assert_eq!(lines[6].split(' ').filter(|t| !t.is_empty()).count(), 18);
    assert_eq!(
        fw.proc_fwnames(),
        "input ACCEPT 1 0 0 0 0\nforward DENY 1 0 0 0 0\noutput ACCEPT 1 0 1 0 100\nacct - 1 0 0 0 0\n"
    );
}

#[test]
fn verbose_echo_line() {
    let r = rule("-p tcp -s 10.0.0.0/8 -d 0/0 80 -i eth0 -j ACCEPT");
    assert_eq!(
        r.verbose_line(),
        "ACCEPT  tcp opt    ------ tos 0xFF 0x00  via eth0    10.0.0.0/8 -> 0.0.0.0/0    * ->   80\n"
    );
}

#[test]
fn evaluate_semantics() {
    let mut fw = masq_gateway();
    let mut p = pkt(6, [10, 1, 2, 3], 2000, [1, 1, 1, 1], 22, "ppp0");
    // Not SYN: the -y DENY rule does not match; policy ACCEPT.
    assert_eq!(fw.evaluate(BuiltinChain::Input, &p), Verdict::Accept);
    p.syn = true;
    assert_eq!(fw.evaluate(BuiltinChain::Input, &p), Verdict::Deny);
    // Inverted destination: 192.168.1.1 is excluded.
    p.dst = Ipv4Addr::new(192, 168, 1, 1);
    assert_eq!(fw.evaluate(BuiltinChain::Input, &p), Verdict::Accept);
    // Interface wildcard.
    p.dst = Ipv4Addr::new(1, 1, 1, 1);
    p.iface = "eth0";
    assert_eq!(fw.evaluate(BuiltinChain::Input, &p), Verdict::Accept);
    // Fragments never match port tests or -y.
    let mut f = pkt(6, [10, 1, 2, 3], 0, [1, 1, 1, 1], 0, "ppp0");
    f.fragment = true;
    f.syn = true;
    assert_eq!(fw.evaluate(BuiltinChain::Input, &f), Verdict::Accept);
    // ICMP type/code in the port fields.
    let icmp = pkt(1, [8, 8, 8, 8], 8, [1, 1, 1, 1], 0, "ppp0");
    assert_eq!(fw.evaluate(BuiltinChain::Input, &icmp), Verdict::Reject);
    let icmp = pkt(1, [8, 8, 8, 8], 0, [1, 1, 1, 1], 0, "ppp0");
    assert_eq!(fw.evaluate(BuiltinChain::Input, &icmp), Verdict::Accept);
    // Forward policy DENY for outsiders, MASQ for the LAN.
    let out = pkt(17, [192, 168, 2, 1], 1, [2, 2, 2, 2], 2, "eth0");
    assert_eq!(fw.evaluate(BuiltinChain::Forward, &out), Verdict::Deny);
    assert_eq!(
        fw.policy_counters("forward").unwrap(),
        model::Counter {
            packets: 1,
            bytes: 100
        }
    );
    // Counting rule in a user chain, then back to output's policy.
    let o = pkt(6, [1, 1, 1, 1], 1, [2, 2, 2, 2], 2, "eth0");
    assert_eq!(fw.evaluate(BuiltinChain::Output, &o), Verdict::Accept);
    assert_eq!(fw.rule_counters("acct", 1).unwrap().packets, 1);
    assert_eq!(fw.rule_counters("output", 1).unwrap().packets, 1);
    assert_eq!(fw.policy_counters("output").unwrap().packets, 1);
}

#[test]
fn masq_from_input_acts_like_accept_and_return_works() {
    let mut fw = Firewall::new();
    fw.new_chain("sub").unwrap();
    fw.append("sub", &rule("-p tcp -j RETURN")).unwrap();
    fw.append("sub", &rule("-j MASQ")).unwrap();
    fw.append("input", &rule("-j sub")).unwrap();
    fw.append("input", &rule("-j DENY")).unwrap();
    fw.append("forward", &rule("-j sub")).unwrap();
    let u = pkt(17, [1, 1, 1, 1], 1, [2, 2, 2, 2], 2, "eth0");
    let t = pkt(6, [1, 1, 1, 1], 1, [2, 2, 2, 2], 2, "eth0");
    assert_eq!(fw.evaluate(BuiltinChain::Input, &u), Verdict::Accept);
    assert_eq!(fw.evaluate(BuiltinChain::Forward, &u), Verdict::Masq);
    assert_eq!(fw.evaluate(BuiltinChain::Input, &t), Verdict::Deny);
    assert_eq!(fw.evaluate(BuiltinChain::Forward, &t), Verdict::Accept);
    assert_eq!(
        fw.check_packet("sub", &t).unwrap(),
        CheckVerdict::PassedThrough
    );
    assert_eq!(
        fw.check_packet("input", &u).unwrap(),
        CheckVerdict::Masqueraded
    );
}

#[test]
fn runtime_loop_is_caught() {
    let mut fw = Firewall::new();
    fw.new_chain("a").unwrap();
    fw.new_chain("b").unwrap();
    fw.append("a", &rule("-j b")).unwrap();
    fw.append("b", &rule("-p udp -j a")).unwrap();
    fw.append("input", &rule("-j a")).unwrap();
    let u = pkt(17, [1, 1, 1, 1], 1, [2, 2, 2, 2], 2, "eth0");
    let t = pkt(6, [1, 1, 1, 1], 1, [2, 2, 2, 2], 2, "eth0");
    assert_eq!(fw.evaluate(BuiltinChain::Input, &u), Verdict::Deny);
    assert_eq!(fw.loops_detected(), 1);
    // Frames were cleaned up: a non-looping packet walks normally afterwards.
    assert_eq!(fw.evaluate(BuiltinChain::Input, &t), Verdict::Accept);
    assert_eq!(
        fw.check("input", "-p udp -s 1.1.1.1 1 -d 2.2.2.2 2 -i eth0")
            .unwrap(),
        vec![CheckVerdict::Loop]
    );
    assert_eq!(CheckVerdict::Loop.line(), "packet caught in a loop");
    assert_eq!(
        fw.check("a", "-p tcp -s 1.1.1.1 1 -d 2.2.2.2 2 -i eth0")
            .unwrap(),
        vec![CheckVerdict::PassedThrough]
    );
    // A chain jumping to itself.
    fw.append("input", &rule("-j a")).unwrap();
    fw.new_chain("self").unwrap();
    fw.append("self", &rule("-j self")).unwrap();
    assert_eq!(
        fw.check("self", "-p tcp -s 1.1.1.1 1 -d 2.2.2.2 2 -i eth0")
            .unwrap(),
        vec![CheckVerdict::Loop]
    );
}

#[test]
fn check_verdict_texts() {
    let mut fw = masq_gateway();
    let c = |fw: &Firewall, ch: &str, s: &str| fw.check(ch, s).unwrap()[0].as_str();
    assert_eq!(
        c(&fw, "input", "-p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80 -i eth0"),
        "accepted"
    );
    assert_eq!(
        c(
            &fw,
            "input",
            "-p tcp -s 10.0.0.1 1025 -d 5.6.7.8 22 -i ppp0 -y"
        ),
        "denied"
    );
    assert_eq!(
        c(&fw, "input", "-p icmp -s 1.2.3.4 ping -d 5.6.7.8 -i eth0"),
        "rejected"
    );
    assert_eq!(
        c(&fw, "input", "-p udp -s 1.2.3.4 5 -d 5.6.7.8 53 -i eth0"),
        "redirected"
    );
    assert_eq!(
        c(
            &fw,
            "forward",
            "-p tcp -s 192.168.1.2 1025 -d 5.6.7.8 80 -i eth0"
        ),
        "masqueraded"
    );
    assert_eq!(
        c(
            &fw,
            "forward",
            "-p tcp -s 192.168.7.2 1025 -d 5.6.7.8 80 -i eth0"
        ),
        "denied"
    );
    assert_eq!(
        c(&fw, "acct", "-p tcp -s 1.2.3.4 1 -d 5.6.7.8 2 -i eth0"),
        "passed through chain"
    );
    let both = fw
        .check(
            "forward",
            "-p tcp -s 192.168.1.2 1025 -d 5.6.7.8 80 -i eth0 -b",
        )
        .unwrap();
    assert_eq!(both, vec![CheckVerdict::Masqueraded, CheckVerdict::Denied]);
    // -C does not count.
    assert_eq!(fw.policy_counters("forward").unwrap().packets, 0);
    assert!(fw
        .check("nosuch", "-p tcp -s 1.2.3.4 1 -d 5.6.7.8 2 -i eth0")
        .is_err());
    fw.flush(None).unwrap();
    assert_eq!(
        c(&fw, "input", "-p tcp -s 1.2.3.4 1025 -d 5.6.7.8 80 -i eth0"),
        "accepted"
    );
}

#[test]
fn operations_and_kernel_errors() {
    let mut fw = Firewall::new();
    assert_eq!(
        fw.append("nosuch", &rule("-j ACCEPT"))
            .unwrap_err()
            .to_string(),
        "No chain by that name"
    );
    assert_eq!(
        fw.append("input", &rule("-j nosuch"))
            .unwrap_err()
            .to_string(),
        "No target by that name"
    );
    assert_eq!(
        fw.append("input", &rule("-j forward")).unwrap_err(),
        ChainError::NoTarget
    );
    assert_eq!(
        fw.append("output", &rule("-j MASQ")).unwrap_err(),
        ChainError::MasqNotAllowed
    );
    assert_eq!(
        fw.append("forward", &rule("-p tcp -j REDIRECT"))
            .unwrap_err(),
        ChainError::RedirectNotAllowed
    );
    let redir = Rule {
        target: Target::Redirect,
        ..Rule::default()
    };
    assert_eq!(
        fw.append("input", &redir).unwrap_err(),
        ChainError::RedirectProto
    );
    fw.new_chain("user").unwrap();
    assert_eq!(
        fw.new_chain("user").unwrap_err().to_string(),
        "Chain already exists"
    );
    assert_eq!(
        fw.new_chain("ninechars").unwrap_err().to_string(),
        "chain name `ninechars' too long (must be under 8 chars)"
    );
    fw.append("user", &rule("-j MASQ")).unwrap();
    fw.append("user", &rule("-p tcp -j REDIRECT 8080")).unwrap();
    fw.append("input", &rule("-j user")).unwrap();
    fw.append("forward", &rule("-j user")).unwrap();
    assert_eq!(fw.references("user").unwrap(), 2);
    assert_eq!(
        fw.delete_chain(Some("user")).unwrap_err().to_string(),
        "Device or resource busy"
    );
    assert_eq!(
        fw.delete_chain(Some("input")).unwrap_err(),
        ChainError::ChainBusy
    );
    assert_eq!(
        fw.delete_chain(Some("nosuch")).unwrap_err(),
        ChainError::NoChain
    );
    fw.delete_num("forward", 1).unwrap();
    fw.delete_rule("input", &rule("-j user")).unwrap();
    assert_eq!(fw.references("user").unwrap(), 0);
    assert_eq!(
        fw.delete_chain(Some("user")).unwrap_err().to_string(),
        "Chain is not empty"
    );
    assert_eq!(
        fw.delete_rule("input", &rule("-j user"))
            .unwrap_err()
            .to_string(),
        "bad rule (does a matching rule exist in that chain?)"
    );
    fw.flush(Some("user")).unwrap();
    fw.delete_chain(Some("user")).unwrap();
    // insert / replace / delete positions.
    fw.append("input", &rule("-p tcp -j ACCEPT")).unwrap();
    fw.insert("input", 1, &rule("-p udp -j ACCEPT")).unwrap();
    fw.insert("input", 3, &rule("-p icmp -j ACCEPT")).unwrap();
    assert_eq!(
        fw.insert("input", 5, &rule("-j ACCEPT")).unwrap_err(),
        ChainError::BadRule
    );
    assert_eq!(
        fw.insert("input", 0, &rule("-j ACCEPT")).unwrap_err(),
        ChainError::BadRule
    );
    let protos: Vec<u8> = fw.rules("input").unwrap().iter().map(|r| r.proto).collect();
    assert_eq!(protos, vec![17, 6, 1]);
    fw.replace("input", 2, &rule("-p 47 -j DENY")).unwrap();
    assert_eq!(
        fw.replace("input", 4, &rule("-j DENY")).unwrap_err(),
        ChainError::BadRule
    );
    assert_eq!(fw.delete_num("input", 4).unwrap_err(), ChainError::BadRule);
    // Delete by spec ignores mark and TOS, like the kernel.
    fw.append("input", &rule("-p tcp -m 5 -t 0x01 0x10 -j DENY"))
        .unwrap();
    fw.delete_rule("input", &rule("-p tcp -j DENY")).unwrap();
    assert_eq!(fw.rules("input").unwrap().len(), 3);
    // Policies.
    assert_eq!(
        fw.set_policy("input", "MASQ").unwrap_err().to_string(),
        "`-P MASQ' only valid for `forward' chain."
    );
    fw.set_policy("forward", "MASQ").unwrap();
    fw.new_chain("u2").unwrap();
    assert_eq!(
        fw.set_policy("u2", "DENY").unwrap_err().to_string(),
        "Can only set policy in built-in chains."
    );
    assert_eq!(
        fw.set_policy("input", "DROP").unwrap_err().to_string(),
        "Invalid policy `DROP' for -P"
    );
    // Delete all user chains: the unreferenced empty ones go.
    fw.new_chain("u3").unwrap();
    fw.append("u3", &rule("-j u2")).unwrap();
    assert!(fw.delete_chain(None).is_err());
    assert_eq!(
        fw.chain_names(),
        vec!["input", "forward", "output", "u2", "u3"]
    );
    fw.flush(None).unwrap();
    fw.delete_chain(None).unwrap();
    assert_eq!(fw.chain_names(), vec!["input", "forward", "output"]);
}

#[test]
fn jump_indices_survive_chain_deletion() {
    let mut fw = Firewall::new();
    for n in ["a", "b", "c"] {
        fw.new_chain(n).unwrap();
    }
    fw.append("c", &rule("-j DENY")).unwrap();
    fw.append("input", &rule("-j c")).unwrap();
    fw.delete_chain(Some("a")).unwrap();
    let p = pkt(6, [1, 1, 1, 1], 1, [2, 2, 2, 2], 2, "eth0");
    assert_eq!(fw.evaluate(BuiltinChain::Input, &p), Verdict::Deny);
}

#[test]
fn zero_keeps_policy_counters() {
    let mut fw = masq_gateway();
    let p = pkt(6, [1, 1, 1, 1], 1, [2, 2, 2, 2], 80, "eth0");
    fw.evaluate(BuiltinChain::Input, &p);
    fw.evaluate(BuiltinChain::Forward, &p);
    assert_eq!(fw.rule_counters("input", 1).unwrap().packets, 1);
    fw.zero(None).unwrap();
    assert_eq!(fw.rule_counters("input", 1).unwrap().packets, 0);
    assert_eq!(fw.policy_counters("forward").unwrap().packets, 1);
    fw.evaluate(BuiltinChain::Input, &p);
    let listed = fw
        .list_and_zero(ListOptions {
            verbose: true,
            numeric: true,
            ..Default::default()
        })
        .unwrap();
    assert!(listed.contains("\n    1   100 ACCEPT"), "{listed}");
    assert_eq!(fw.rule_counters("input", 1).unwrap().packets, 0);
}

#[test]
fn save_restore_round_trip_and_atomicity() {
    let fw = masq_gateway();
    let text = fw.save();
    assert!(
        text.starts_with(":input ACCEPT\n:forward DENY\n:output ACCEPT\n:acct -\n-A input -p tcp"),
        "{text}"
    );
    let mut other = Firewall::new();
    assert_eq!(other.restore(&text).unwrap(), (4, 7));
    assert_eq!(other.save(), text);
    assert_eq!(
        other.list(None, ListOptions::default()),
        fw.list(None, ListOptions::default())
    );
    // A bad line leaves the old ruleset alone and names the line.
    let bad = format!("{text}-A input -p tcp -j nosuch\n");
    let e = other.restore(&bad).unwrap_err();
    assert_eq!(e.to_string(), "line 12: No target by that name");
    assert_eq!(other.save(), text);
    let e = other
        .restore(":input ACCEPT\n-A input -p udp -y\n")
        .unwrap_err();
    assert_eq!(e.to_string(), "line 2: -y only allowed with TCP protocol");
    let e = other.restore("garbage\n").unwrap_err();
    assert_eq!(e.to_string(), "line 1: unrecognised line `garbage'");
    // Jumps to chains declared later in the file are fine.
    let mut f2 = Firewall::new();
    f2.restore(":input DENY\n:later -\n-A input -j later\n# comment\n\n-A later -j ACCEPT\n")
        .unwrap();
    assert_eq!(f2.references("later").unwrap(), 1);
}

#[test]
fn snapshots_mirror_rules() {
    let mut fw = masq_gateway();
    let p = pkt(6, [10, 1, 1, 1], 1025, [9, 9, 9, 9], 22, "ppp0");
    let mut p2 = p;
    p2.syn = true;
    fw.evaluate(BuiltinChain::Input, &p2);
    let snap = fw.snapshot(Some("input")).unwrap();
    assert_eq!(snap.len(), 1);
    let c = &snap[0];
    assert_eq!(
        (c.name.as_str(), c.policy.as_str(), c.builtin, c.references),
        ("input", "ACCEPT", true, 1)
    );
    let r = &c.rules[1];
    assert_eq!(r.number, 2);
    assert_eq!(r.target, "DENY");
    assert_eq!(r.protocol, "tcp");
    assert_eq!(r.source, "10.0.0.0/8");
    assert_eq!(r.destination, "!192.168.1.1/32");
    assert_eq!(r.source_ports, "1024:65535");
    assert_eq!(r.destination_ports, "22");
    assert_eq!(r.interface, "ppp+");
    assert_eq!(r.options, "-y--l-");
    assert_eq!((r.packets, r.bytes, r.log), (1, 100, true));
    assert_eq!(rule(&r.spec), fw.rules("input").unwrap()[1]);
    let all = fw.snapshot(None).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].policy, "");
    assert_eq!(all[3].rules[0].target, "");
    assert!(fw.snapshot(Some("nosuch")).is_err());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const TOKENS: &[&str] = &[
        "-A",
        "-D",
        "-I",
        "-R",
        "-L",
        "-F",
        "-Z",
        "-N",
        "-X",
        "-P",
        "-C",
        "-M",
        "-S",
        "-h",
        "-V",
        "-p",
        "-s",
        "-d",
        "-i",
        "-j",
        "-f",
        "-y",
        "-b",
        "-l",
        "-o",
        "-m",
        "-t",
        "-n",
        "-v",
        "-x",
        "--sport",
        "--dport",
        "--icmp-type",
        "--line-numbers",
        "--no-warnings",
        "--src=1.2.3.4",
        "--s",
        "!",
        "input",
        "forward",
        "output",
        "mine",
        "tcp",
        "udp",
        "icmp",
        "all",
        "0",
        "1",
        "80",
        "1024:",
        ":1023",
        "1:2",
        "0x01",
        "0x10",
        "+5",
        "-5",
        "1.2.3.4",
        "10.0.0.0/8",
        "0/0",
        "1.2.3.4/255.0.255.0",
        "ppp+",
        "eth0",
        "ACCEPT",
        "DENY",
        "REJECT",
        "MASQ",
        "REDIRECT",
        "RETURN",
        "ping",
        "echo",
        "www",
        "",
        "-",
        "--",
        "-ptcp",
        "-vnL",
        "-Linput",
        "-o99",
    ];

    fn spec_strategy() -> impl Strategy<Value = String> {
        let proto = prop::sample::select(vec![
            "", "-p tcp", "-p udp", "-p icmp", "-p 47", "-p ! tcp", "-p ! udp",
        ]);
        let addr = (
            any::<u32>(),
            0u32..=32,
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            any::<u16>(),
            any::<bool>(),
        );
        let iface =
            prop::sample::select(vec!["", "-i eth0", "-i ppp+", "-i ! lo", "-i ! +", "-i +"]);
        let flags = (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        );
        let extra = (
            prop::option::of(any::<u16>()),
            prop::option::of((any::<u32>(), 0u8..3)),
            prop::sample::select(vec!["", "-t 0x01 0x10", "-t 0xfd 0x00"]),
        );
        let target = prop::sample::select(vec![
            "",
            "-j ACCEPT",
            "-j DENY",
            "-j REJECT",
            "-j MASQ",
            "-j REDIRECT",
            "-j REDIRECT 8080",
            "-j RETURN",
            "-j mine",
        ]);
        (proto, addr.clone(), addr, iface, flags, extra, target).prop_map(
            |(p, s, d, i, f, e, t)| {
                let mut out = vec![p.to_string()];
                for (flag, (a, bits, inv, use_ports, lo, hi, pinv)) in [("-s", s), ("-d", d)] {
                    let mut x = format!(
                        "{flag} {}{}/{bits}",
                        if inv { "! " } else { "" },
                        Ipv4Addr::from(a)
                    );
                    if use_ports {
                        let (lo, hi) = (lo.min(hi), lo.max(hi));
                        x.push_str(&format!(" {}{lo}:{hi}", if pinv { "! " } else { "" }));
                    }
                    out.push(x);
                }
                out.push(i.to_string());
                let (frag, finv, syn, sinv, log) = f;
                if frag {
                    out.push(if finv { "! -f" } else { "-f" }.into());
                }
                if syn {
                    out.push(if sinv { "! -y" } else { "-y" }.into());
                }
                if log {
                    out.push("-l".into());
                }
                let (o, m, tos) = e;
                if let Some(o) = o {
                    out.push(format!("-o {o}"));
                }
                if let Some((v, kind)) = m {
                    out.push(format!("-m {}{v}", ["", "+", "-"][kind as usize]));
                }
                out.push(tos.to_string());
                out.push(t.to_string());
                out.join(" ")
            },
        )
    }

    /// A parsed rule prints (`to_spec`) to a spec that parses back to the same rule.
    fn round_trips(rule: &Rule) -> Result<(), TestCaseError> {
        let printed = rule.to_spec();
        match parse_rule(&printed) {
            Ok(again) => prop_assert_eq!(&again.rule, rule, "printed as `{}'", printed),
            Err(e) => prop_assert!(false, "`{}' does not parse: {}", printed, e),
        }
        Ok(())
    }

    /// Text that restores saves to text that restores to the same save.
    fn save_round_trips(text: &str) -> Result<(), TestCaseError> {
        let mut fw = Firewall::new();
        if fw.restore(text).is_ok() {
            let saved = fw.save();
            let mut other = Firewall::new();
            prop_assert!(other.restore(&saved).is_ok(), "{}", saved);
            prop_assert_eq!(other.save(), saved);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(spec in spec_strategy()) {
            if let Ok(parsed) = parse_rule(&spec) {
                let printed = parsed.rule.to_spec();
                let again = parse_rule(&printed);
                prop_assert!(again.is_ok(), "`{}' printed as `{}' fails: {:?}", spec, printed, again);
                prop_assert_eq!(again.unwrap().rule, parsed.rule.clone());
                // Listing and /proc rendering never panic either.
                let mut fw = Firewall::new();
                fw.new_chain("mine").unwrap();
                if fw.append("mine", &parsed.rule).is_ok() {
                    let _ = fw.list(None, ListOptions { numeric: true, verbose: true, exact: false, line_numbers: true });
                    let _ = fw.list(None, ListOptions::default());
                    let _ = fw.proc_fwchains();
                    let saved = fw.save();
                    let mut other = Firewall::new();
                    prop_assert!(other.restore(&saved).is_ok(), "{}", saved);
                    prop_assert_eq!(other.save(), saved);
                }
            }
        }

        #[test]
        fn any_string_parses_to_what_prints_back(s in "\\PC{0,80}") {
            if let Ok(spec) = parse_rule(&s) {
                round_trips(&spec.rule)?;
            }
            match (parse_check("input", &s), Firewall::new().check("input", &s)) {
                (Ok(req), Ok(verdicts)) => prop_assert_eq!(verdicts.len(), req.packets.len()),
                (Err(a), Err(CheckError::Parse(b))) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "parse_check {:?} but check {:?}", a, b),
            }
            save_round_trips(&s)?;
        }

        #[test]
        fn any_token_vector_parses_to_what_prints_back(toks in prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..12)) {
            if let Ok(inv) = parse_command(&toks) {
                match inv.command {
                    Command::Append { spec, .. }
                    | Command::Delete { spec, .. }
                    | Command::Insert { spec, .. }
                    | Command::Replace { spec, .. }
                    | Command::Check { spec, .. } => {
                        for r in spec.expand() {
                            round_trips(&r)?;
                        }
                    }
                    _ => {}
                }
            }
            if let Ok(spec) = parse_args(&toks) {
                round_trips(&spec.rule)?;
            }
            save_round_trips(&toks.join(" "))?;
        }

        #[test]
        fn evaluate_agrees_with_check(spec in spec_strategy(), src in any::<u32>(), dst in any::<u32>(), sport in any::<u16>(), dport in any::<u16>(), proto in prop::sample::select(vec![1u8, 6, 17, 47])) {
            let mut fw = Firewall::new();
            fw.new_chain("mine").unwrap();
            if let Ok(p) = parse_rule(&spec) {
                let _ = fw.append("forward", &p.rule);
                let _ = fw.append("mine", &p.rule);
            }
            let _ = fw.append("forward", &rule("-j mine"));
            let pk = PacketInfo { proto, src: src.into(), dst: dst.into(), sport, dport, iface: "ppp0", iface_aliases: &[], fragment: false, syn: sport % 2 == 0, tos: 0, len: 60 };
            let chk = fw.check_packet("forward", &pk).unwrap();
            let v = fw.evaluate(BuiltinChain::Forward, &pk);
            let expect = match chk {
                CheckVerdict::Accepted | CheckVerdict::PassedThrough => Verdict::Accept,
                CheckVerdict::Denied | CheckVerdict::Loop => Verdict::Deny,
                CheckVerdict::Rejected => Verdict::Reject,
                CheckVerdict::Masqueraded => Verdict::Masq,
                CheckVerdict::Redirected => match v { Verdict::Redirect { .. } => v, _ => Verdict::Deny },
            };
            prop_assert_eq!(v, expect);
        }
    }
}

#[test]
fn execute_prints_like_ipchains() {
    let mut fw = Firewall::new();
    let ex = |fw: &mut Firewall, s: &str| {
        let a: Vec<&str> = s.split_whitespace().collect();
        fw.execute(&parse_command(&a).unwrap())
    };
    assert_eq!(ex(&mut fw, "-N acct").unwrap(), "");
    assert_eq!(
        ex(&mut fw, "-A forward -v -s 192.168.1.0/24 -j MASQ").unwrap(),
        "MASQ  all opt    ------ tos 0xFF 0x00  via *    192.168.1.0/24 -> 0.0.0.0/0    n/a\n"
    );
    assert_eq!(
        ex(
            &mut fw,
            "-C forward -p tcp -s 192.168.1.9 1025 -d 1.2.3.4 80 -i ppp0"
        )
        .unwrap(),
        "packet masqueraded\n"
    );
    assert_eq!(ex(&mut fw, "-F -v").unwrap(), "Flushing chain `input'\nFlushing chain `forward'\nFlushing chain `output'\nFlushing chain `acct'\n");
    assert_eq!(ex(&mut fw, "-X -v").unwrap(), "Deleting chain `acct'\n");
    assert_eq!(ex(&mut fw, "-V").unwrap(), "ipchains 1.3.9, 17-Mar-1999\n");
    assert_eq!(ex(&mut fw, "-M -L").unwrap_err(), ExecError::Masquerading);
    assert_eq!(
        ex(&mut fw, "-A nosuch -j ACCEPT").unwrap_err().to_string(),
        "No chain by that name"
    );
    let h = ex(&mut fw, "-h icmp").unwrap();
    assert!(h.starts_with("ipchains 1.3.9, 17-Mar-1999\n\nValid ICMP Types:\necho-reply (pong)\ndestination-unreachable\n   network-unreachable\n"), "{h}");
    assert!(
        h.contains("\ntime-exceeded (ttl-exceeded)\n   ttl-zero-during-transit\n"),
        "{h}"
    );
    assert!(ex(&mut fw, "-h")
        .unwrap()
        .contains("Usage: ipchains -[ADC] chain rule-specification [options]\n"));
    let l = ex(&mut fw, "-L forward -n").unwrap();
    assert_eq!(l, "Chain forward (policy ACCEPT):\n");
}

#[test]
fn side_effects_tos_mark_and_log_line() {
    let mut fw = Firewall::new();
    fw.append("input", &rule("-p tcp -m 0x100 -l")).unwrap();
    fw.append("input", &rule("-p tcp -m +1 -t 0x01 0x10"))
        .unwrap();
    fw.append("input", &rule("-p tcp -d 0/0 80 -l -j DENY"))
        .unwrap();
    let mut p = pkt(6, [1, 2, 3, 4], 1025, [5, 6, 7, 8], 80, "eth0");
    p.syn = true;
    p.len = 60;
    let mut logs = Vec::new();
    let hdr = LogHeader {
        ident: 1,
        frag_word: 0x4000,
        ttl: 64,
        options: &[],
    };
    let (v, fx) = fw.evaluate_with(BuiltinChain::Input, &p, 7, &mut |r| {
        logs.push(log_line(r, &p, &hdr))
    });
    assert_eq!(v, Verdict::Deny);
    assert_eq!(
        fx,
        Effects {
            tos: 0x10,
            mark: 0x101
        }
    );
    assert_eq!(
        logs,
        vec![
            "Packet log: input - eth0 PROTO=6 1.2.3.4:1025 5.6.7.8:80 L=60 S=0x00 I=1 F=0x4000 T=64 SYN (#1)",
            "Packet log: input DENY eth0 PROTO=6 1.2.3.4:1025 5.6.7.8:80 L=60 S=0x00 I=1 F=0x4000 T=64 SYN (#3)"
        ]
    );
    assert_eq!(fw.rule_counters("input", 3).unwrap().packets, 1);
}

/// Rows taken verbatim from a real `ipchains -L -n -v` (ipchains 1.3.10) posted to LKML.
#[test]
fn golden_matches_real_ipchains_output() {
    let mut fw = Firewall::new();
    let set = |fw: &mut Firewall, chain: &str, specs: &[(&str, u64, u64)]| {
        let ci = fw.find(chain).unwrap();
        for (spec, p, b) in specs {
            fw.append(chain, &rule(spec)).unwrap();
            let n = fw.stats[ci].rules.len();
            fw.stats[ci].rules[n - 1] = model::Counter {
                packets: *p,
                bytes: *b,
            };
        }
    };
    fw.set_policy("input", "REJECT").unwrap();
    fw.set_policy("forward", "REJECT").unwrap();
    fw.stats[0].policy = model::Counter {
        packets: 6,
        bytes: 420,
    };
    set(
        &mut fw,
        "input",
        &[
            ("-i lo+ -j ACCEPT", 98726, 77_000_000),
            ("-p icmp -j ACCEPT", 562, 36406),
            ("-p udp -s 0/0 67 -d 0/0 68 -i eth+ -l -j ACCEPT", 0, 0),
            ("-p udp -d 0/0 53 -j ACCEPT", 10228, 744_000),
            (
                "-p tcp -s 192.168.0.0/16 -d ! 192.168.0.0/16 25 -j REDIRECT 25",
                438,
                281_000,
            ),
            (
                "-p tcp -s 192.168.0.0/16 -d ! 192.168.0.0/16 80 -j REDIRECT 3128",
                34772,
                5_529_000,
            ),
            ("-p tcp -y -l -j REJECT", 60, 2932),
            ("-p tcp ! -y -j ACCEPT", 136_000, 81_000_000),
        ],
    );
    set(
        &mut fw,
        "forward",
        &[
            ("-s 192.168.0.0/16 -d 192.168.0.0/16 -j ACCEPT", 10, 840),
            ("-s 192.168.0.0/16 -i ppp+ -j MASQ", 34518, 2_097_000),
            ("-s 192.168.0.0/16 -i tap+ -j MASQ", 1267, 82030),
            ("-l -j REJECT", 0, 0),
        ],
    );
    let o = ListOptions {
        numeric: true,
        verbose: true,
        ..Default::default()
    };
    let want = "\
Chain input (policy REJECT: 6 packets, 420 bytes):
 pkts bytes target     prot opt    tosa tosx  ifname     mark       outsize  source                destination           ports
98726   77M ACCEPT     all  ------ 0xFF 0x00  lo+                            0.0.0.0/0            0.0.0.0/0             n/a
  562 36406 ACCEPT     icmp ------ 0xFF 0x00  *                              0.0.0.0/0            0.0.0.0/0             * ->   *
    0     0 ACCEPT     udp  ----l- 0xFF 0x00  eth+                           0.0.0.0/0            0.0.0.0/0             67 ->   68
10228  744K ACCEPT     udp  ------ 0xFF 0x00  *                              0.0.0.0/0            0.0.0.0/0             * ->   53
  438  281K REDIRECT   tcp  ------ 0xFF 0x00  *                              192.168.0.0/16       !192.168.0.0/16        * ->   25 => 25
34772 5529K REDIRECT   tcp  ------ 0xFF 0x00  *                              192.168.0.0/16       !192.168.0.0/16        * ->   80 => 3128
   60  2932 REJECT     tcp  -y--l- 0xFF 0x00  *                              0.0.0.0/0            0.0.0.0/0             * ->   *
 136K   81M ACCEPT     tcp  !y---- 0xFF 0x00  *                              0.0.0.0/0            0.0.0.0/0             * ->   *
Chain forward (policy REJECT: 0 packets, 0 bytes):
 pkts bytes target     prot opt    tosa tosx  ifname     mark       outsize  source                destination           ports
   10   840 ACCEPT     all  ------ 0xFF 0x00  *                              192.168.0.0/16       192.168.0.0/16        n/a
34518 2097K MASQ       all  ------ 0xFF 0x00  ppp+                           192.168.0.0/16       0.0.0.0/0             n/a
 1267 82030 MASQ       all  ------ 0xFF 0x00  tap+                           192.168.0.0/16       0.0.0.0/0             n/a
    0     0 REJECT     all  ----l- 0xFF 0x00  *                              0.0.0.0/0            0.0.0.0/0             n/a
";
    let got = fw.list(Some("input"), o).unwrap() + &fw.list(Some("forward"), o).unwrap();
    assert_eq!(got, want);
}

#[test]
fn policy_only_fast_path_agrees_with_a_full_walk() {
    for pol in ["ACCEPT", "DENY", "REJECT", "MASQ"] {
        for chain in [
            BuiltinChain::Input,
            BuiltinChain::Forward,
            BuiltinChain::Output,
        ] {
            let name = match chain {
                BuiltinChain::Input => "input",
                BuiltinChain::Forward => "forward",
                BuiltinChain::Output => "output",
            };
            let mut a = Firewall::new();
            if a.set_policy(name, pol).is_err() {
                // MASQ is a policy of forward only.
                assert!(pol == "MASQ" && chain != BuiltinChain::Forward);
                continue;
            }
            let mut b = a.clone();
            let p = pkt(6, [10, 0, 0, 1], 1000, [10, 0, 0, 2], 80, "eth0");
            let fast = a.evaluate_policy_only(chain, p.len);
            assert_eq!(fast, Some(b.evaluate(chain, &p)), "{name} {pol}");
            assert_eq!(a.policy_counters(name), b.policy_counters(name));
            assert_eq!(a.policy_counters(name).map(|c| c.packets), Ok(1));
        }
    }
    // A chain with a rule is not taken by the fast path, and nothing is counted.
    let mut fw = Firewall::new();
    run(&mut fw, "-A input -p tcp -j ACCEPT");
    assert_eq!(fw.evaluate_policy_only(BuiltinChain::Input, 40), None);
    assert_eq!(fw.policy_counters("input").map(|c| c.packets), Ok(0));
}
