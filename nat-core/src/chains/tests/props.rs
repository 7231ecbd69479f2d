//! Property tests of the chains subsystem: parse/print round trips and the walk against a
//! reference evaluator.

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
    let iface = prop::sample::select(vec!["", "-i eth0", "-i ppp+", "-i ! lo", "-i ! +", "-i +"]);
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
    (proto, addr.clone(), addr, iface, flags, extra, target).prop_map(|(p, s, d, i, f, e, t)| {
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
    })
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
