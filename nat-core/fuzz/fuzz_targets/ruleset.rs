//! Fuzz ipchains-save restore, then listing, /proc views, `-C` and evaluation of whatever loaded:
//! never a panic, and save → restore → save is stable.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use nat_core::chains::{BuiltinChain, Firewall, ListOptions, PacketInfo};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut fw = Firewall::new();
    if fw.restore(s).is_err() {
        return;
    }
    let saved = fw.save();
    let mut again = Firewall::new();
    if let Err(e) = again.restore(&saved) {
        panic!("saved ruleset does not restore: {e}\n{saved}");
    }
    assert_eq!(again.save(), saved);
    let _ = fw.list(
        None,
        ListOptions {
            numeric: true,
            verbose: true,
            exact: true,
            line_numbers: true,
        },
    );
    let _ = fw.list(None, ListOptions::default());
    let _ = fw.proc_fwchains();
    let _ = fw.proc_fwnames();
    let _ = fw.snapshot(None);
    for (i, chain) in [
        BuiltinChain::Input,
        BuiltinChain::Forward,
        BuiltinChain::Output,
    ]
    .into_iter()
    .enumerate()
    {
        let b = data.get(i).copied().unwrap_or(0);
        let pkt = PacketInfo {
            proto: [1, 6, 17, 47][usize::from(b & 3)],
            src: Ipv4Addr::new(192, 168, 1, b),
            dst: Ipv4Addr::new(10, b, 0, 1),
            sport: u16::from(b) * 7,
            dport: 80,
            iface: if b & 4 != 0 { "ppp0" } else { "eth0" },
            iface_aliases: &[],
            fragment: b & 8 != 0,
            syn: b & 16 != 0,
            tos: 0,
            len: 60,
        };
        let _ = fw.evaluate(chain, &pkt);
        let _ = fw.check_packet(chain.name(), &pkt);
    }
});
