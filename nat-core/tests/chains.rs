//! Public-API test of the chains subsystem as the server uses it: apply an ipchains-save ruleset,
//! run packets, read the classic views and the structured snapshot, run command lines.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use nat_core::chains::{
    parse_command, BuiltinChain, CheckVerdict, Firewall, ListOptions, PacketInfo, Verdict,
};

const RULESET: &str = "\
:input ACCEPT
:forward DENY
:output ACCEPT
:lan -
-A input -p tcp -s 0.0.0.0/0 -d 0.0.0.0/0 23 -i ppp+ -j REJECT
-A forward -s 192.168.1.0/24 -j lan
-A lan -p tcp -d 0.0.0.0/0 25 -j DENY
-A lan -j MASQ
";

fn packet(proto: u8, src: [u8; 4], dst: [u8; 4], dport: u16, iface: &str) -> PacketInfo<'_> {
    PacketInfo {
        proto,
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        sport: 1025,
        dport,
        iface,
        iface_aliases: &[],
        fragment: false,
        syn: true,
        tos: 0,
        len: 60,
    }
}

#[test]
fn apply_ruleset_then_route_packets() {
    let mut fw = Firewall::new();
    assert_eq!(fw.restore(RULESET).unwrap(), (4, 4));
    let lan_web = packet(6, [192, 168, 1, 7], [93, 184, 216, 34], 80, "ppp0");
    let lan_smtp = packet(6, [192, 168, 1, 7], [93, 184, 216, 34], 25, "ppp0");
    let outsider = packet(17, [10, 9, 9, 9], [93, 184, 216, 34], 53, "ppp0");
    let telnet_in = packet(6, [93, 184, 216, 34], [203, 0, 113, 5], 23, "ppp0");
    assert_eq!(fw.evaluate(BuiltinChain::Forward, &lan_web), Verdict::Masq);
    assert_eq!(fw.evaluate(BuiltinChain::Forward, &lan_smtp), Verdict::Deny);
    assert_eq!(fw.evaluate(BuiltinChain::Forward, &outsider), Verdict::Deny);
    assert_eq!(
        fw.evaluate(BuiltinChain::Input, &telnet_in),
        Verdict::Reject
    );
    assert_eq!(
        fw.check(
            "forward",
            "-p tcp -s 192.168.1.7 1025 -d 1.2.3.4 80 -i ppp0"
        )
        .unwrap(),
        vec![CheckVerdict::Masqueraded]
    );

    let snap = fw.snapshot(None).unwrap();
    assert_eq!(snap[1].name, "forward");
    assert_eq!((snap[1].policy_packets, snap[1].policy_bytes), (1, 60));
    assert_eq!(snap[3].references, 1);
    assert_eq!(snap[3].rules[1].packets, 1);

    let listing = fw.list(Some("lan"), ListOptions::default()).unwrap();
    assert_eq!(
        listing,
        "Chain lan (1 references):\n\
target     prot opt     source                destination           ports\n\
DENY       tcp  ------  anywhere             anywhere              any ->   smtp\n\
MASQ       all  ------  anywhere             anywhere              n/a\n"
    );
    assert!(fw
        .proc_fwnames()
        .starts_with("input ACCEPT 1 0 0 0 0\nforward DENY 1 0 1 0 60\n"));
    assert_eq!(fw.proc_fwchains().lines().count(), 4);

    // A command line from `mclient ipchains ...`.
    let inv = parse_command(&[
        "-I", "lan", "-p", "udp", "-d", "0/0", "53", "-j", "ACCEPT", "-v",
    ])
    .unwrap();
    let out = fw.execute(&inv).unwrap();
    assert_eq!(
        out,
        "ACCEPT  udp opt    ------ tos 0xFF 0x00  via *    0.0.0.0/0 -> 0.0.0.0/0    * ->   53\n"
    );
    assert_eq!(fw.rules("lan").unwrap().len(), 3);

    // Saving and restoring gives the same text; a broken ruleset changes nothing.
    let saved = fw.save();
    assert!(fw.restore("-A nowhere -j ACCEPT\n").is_err());
    assert_eq!(fw.save(), saved);
}
