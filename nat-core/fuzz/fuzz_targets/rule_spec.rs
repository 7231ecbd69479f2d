//! Fuzz the ipchains command-line parser and the spec printer: any input parses or is rejected,
//! and every parsed rule (from a spec string, an argument vector or a whole command line) prints
//! to a spec that parses back to the same rule; a `-C` description gives one or two packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::chains::{parse_args, parse_check, parse_command, parse_rule, Command, Rule};

/// A parsed rule prints to a spec that parses back to the same rule.
fn round_trip(rule: &Rule) {
    let printed = rule.to_spec();
    match parse_rule(&printed) {
        Ok(again) => assert_eq!(&again.rule, rule, "round trip of `{printed}'"),
        Err(e) => panic!("printed spec `{printed}' does not parse: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<&str> = s.split('\u{0}').collect();
    if let Ok(inv) = parse_command(&args) {
        match inv.command {
            Command::Append { spec, .. }
            | Command::Delete { spec, .. }
            | Command::Insert { spec, .. }
            | Command::Replace { spec, .. }
            | Command::Check { spec, .. } => spec.expand().iter().for_each(round_trip),
            _ => {}
        }
    }
    if let Ok(spec) = parse_args(&args) {
        round_trip(&spec.rule);
    }
    if let Ok(req) = parse_check("input", s) {
        assert!(matches!(req.packets.len(), 1 | 2));
    }
    if let Ok(spec) = parse_rule(s) {
        round_trip(&spec.rule);
        let _ = spec.rule.verbose_line();
    }
});
