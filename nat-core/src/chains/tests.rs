//! Unit tests for the chains subsystem: parser and printer on real ipchains command lines, every
//! legality error, golden `-L` / `/proc` output, walk semantics, loops, counters, save/restore.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use super::*;

mod firewall;
mod props;

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
