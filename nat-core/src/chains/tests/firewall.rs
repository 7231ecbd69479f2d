//! Firewall tests: golden `-L` / `/proc` output, walk semantics, loops, counters, kernel
//! errors, save/restore and snapshots, `execute` output.

use std::net::Ipv4Addr;

use super::*;

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

/// A resolver over fixed tables, standing in for /etc/hosts and /etc/networks.
struct Names;

impl crate::chains::Resolver for Names {
    fn network(&self, name: &str) -> Option<Ipv4Addr> {
        (name == "lan").then_some(Ipv4Addr::new(192, 168, 1, 0))
    }
    fn host(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        match name {
            "localhost" => Some(vec![Ipv4Addr::LOCALHOST]),
            // Two addresses, one repeated: duplicates are dropped (after masking).
            "www" => Some(vec![
                Ipv4Addr::new(198, 51, 100, 7),
                Ipv4Addr::new(198, 51, 100, 8),
                Ipv4Addr::new(198, 51, 100, 7),
            ]),
            _ => None,
        }
    }
}

fn ex_named(fw: &mut Firewall, line: &str) -> Result<String, String> {
    let args: Vec<&str> = line.split_whitespace().collect();
    let inv = crate::chains::parse_command_with(&args, &Names).map_err(|e| e.to_string())?;
    fw.execute(&inv).map_err(|e| e.to_string())
}

/// ipchains resolved `-s`/`-d` names once, at insertion (networks first, then every address of
/// the host), installed one rule per address pair, and listed the addresses.
#[test]
fn names_resolve_once_into_one_rule_per_address() {
    let mut fw = Firewall::new();
    ex_named(&mut fw, "-A input -p tcp -s localhost -d www 80 -j ACCEPT").unwrap();
    ex_named(&mut fw, "-A forward -s lan/24 -j MASQ").unwrap();
    let l = fw
        .list(
            None,
            ListOptions {
                numeric: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        l,
        "Chain input (policy ACCEPT):\n\
target     prot opt     source                destination           ports\n\
ACCEPT     tcp  ------  127.0.0.1            198.51.100.7          * ->   80\n\
ACCEPT     tcp  ------  127.0.0.1            198.51.100.8          * ->   80\n\
Chain forward (policy ACCEPT):\n\
target     prot opt     source                destination           ports\n\
MASQ       all  ------  192.168.1.0/24       0.0.0.0/0             n/a\n\
Chain output (policy ACCEPT):\n"
    );
    // Deleting by the same names removes both rules.
    ex_named(&mut fw, "-D input -p tcp -s localhost -d www 80 -j ACCEPT").unwrap();
    assert_eq!(fw.rule_count(), 1);
    // ipchains' refusals with several addresses, and unknown names.
    for (line, msg) in [
        (
            "-A input -s ! www -j DENY",
            "! not allowed with multiple source or destination IP addresses",
        ),
        (
            "-A input -b -d www -j DENY",
            "-b not allowed with multiple source or destination IP addresses",
        ),
        (
            "-R input 1 -d www -j DENY",
            "Replacement rule does not specify a unique address",
        ),
        (
            "-A input -s nosuch -j DENY",
            "host/network `nosuch' not found",
        ),
    ] {
        assert_eq!(ex_named(&mut fw, line).unwrap_err(), msg, "{line}");
    }
    // `/0` ignores the name, as in "any/0"; the numeric-only parser refuses names.
    assert!(ex_named(&mut fw, "-A input -s nosuch/0 -j DENY").is_ok());
    assert_eq!(
        crate::chains::parse_command(&["-A", "input", "-s", "localhost"])
            .unwrap_err()
            .to_string(),
        "host/network `localhost' not found"
    );
    let spec =
        crate::chains::parse_command_with(&["-A", "input", "-s", "localhost"], &Names).unwrap();
    let Command::Append { spec, .. } = spec.command else {
        panic!("not an append")
    };
    assert!(spec.named);
    assert_eq!(spec.expand().len(), 1);
}
