//! Criterion benchmark of `Firewall::evaluate` with a typical 10-rule masquerading ruleset
//! (input filter, a user chain jump, forward MASQ). Reports time per packet.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nat_core::chains::{parse_command, BuiltinChain, Command, Firewall, PacketInfo};

fn ruleset() -> Firewall {
    let mut fw = Firewall::new();
    let lines = [
        "-N lan",
        "-A lan -p tcp -d 0.0.0.0/0 25 -j REJECT",
        "-A lan -p udp -d 0.0.0.0/0 137:139 -j DENY",
        "-A input -i lo -j ACCEPT",
        "-A input -p tcp -s 0.0.0.0/0 -d 0.0.0.0/0 22 -i ppp+ -y -j ACCEPT",
        "-A input -p icmp --icmp-type echo-request -j ACCEPT",
        "-A input -s 10.0.0.0/8 -i ppp+ -j DENY",
        "-A input -p udp -d 0.0.0.0/0 53 -j ACCEPT",
        "-P forward DENY",
        "-A forward -s 192.168.1.0/24 -i ppp+ -j lan",
        "-A forward -s 192.168.1.0/24 -i ppp+ -j MASQ",
        "-A output -p tcp -d 0.0.0.0/0 6000:6063 -j REJECT",
    ];
    for l in lines {
        let args: Vec<&str> = l.split_whitespace().collect();
        let inv = parse_command(&args).expect("benchmark ruleset is valid ipchains syntax");
        match inv.command {
            Command::Append { chain, spec } => {
                fw.append(&chain, &spec.rule).expect("rule accepted")
            }
            Command::NewChain { chain } => fw.new_chain(&chain).expect("chain created"),
            Command::SetPolicy { chain, policy } => {
                fw.set_policy(&chain, &policy).expect("policy set")
            }
            _ => unreachable!("only -A/-N/-P in the benchmark ruleset"),
        }
    }
    assert_eq!(fw.rule_count(), 10);
    fw
}

fn bench(c: &mut Criterion) {
    let mut fw = ruleset();
    let fwd = PacketInfo {
        proto: 17,
        src: Ipv4Addr::new(192, 168, 1, 20),
        dst: Ipv4Addr::new(93, 184, 216, 34),
        sport: 40000,
        dport: 443,
        iface: "ppp0",
        iface_aliases: &[],
        fragment: false,
        syn: false,
        tos: 0,
        len: 64,
    };
    let inp = PacketInfo {
        proto: 6,
        src: Ipv4Addr::new(93, 184, 216, 34),
        dst: Ipv4Addr::new(203, 0, 113, 5),
        sport: 443,
        dport: 61001,
        ..fwd
    };
    let mut g = c.benchmark_group("chains");
    g.throughput(Throughput::Elements(1));
    g.bench_function("evaluate_forward_masq_via_user_chain", |b| {
        b.iter(|| black_box(fw.evaluate(BuiltinChain::Forward, black_box(&fwd))))
    });
    g.bench_function("evaluate_input_falls_to_policy", |b| {
        b.iter(|| black_box(fw.evaluate(BuiltinChain::Input, black_box(&inp))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
