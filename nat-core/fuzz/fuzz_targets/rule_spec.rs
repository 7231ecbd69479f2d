//! Fuzz the ipchains command-line parser and the spec printer: any input parses or is rejected,
//! and a parsed rule prints to a spec that parses back to the same rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nat_core::chains::{parse_args, parse_command, parse_rule};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<&str> = s.split('\u{0}').collect();
    let _ = parse_command(&args);
    let _ = parse_args(&args);
    if let Ok(spec) = parse_rule(s) {
        let printed = spec.rule.to_spec();
        match parse_rule(&printed) {
            Ok(again) => assert_eq!(again.rule, spec.rule, "round trip of `{printed}'"),
            Err(e) => panic!("printed spec `{printed}' does not parse: {e}"),
        }
        let _ = spec.rule.verbose_line();
    }
});
