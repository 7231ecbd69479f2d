//! Tests of the namespace harness itself (root only; elsewhere each test prints `SKIPPED: …` and returns):
//! the fixed topology, `wan-servers` and `lan-client` end to end over a plain routed veth (no modem, no
//! NAT), and that nothing is left behind — namespaces or processes — also after a panic.

use std::net::SocketAddr;
use std::process::Output;
use std::time::{Duration, Instant};

use masqdial_tests::netns::{
    self, netns_available, unique_tag, Guarded, Netns, Topology, LAN_GW_ADDR, LAN_HOST_ADDR,
    WAN_SERVER_ADDR,
};

const WAN_SERVERS: &str = env!("CARGO_BIN_EXE_wan-servers");
const LAN_CLIENT: &str = env!("CARGO_BIN_EXE_lan-client");
const RUN: Duration = Duration::from_secs(60);

/// Names currently listed by `ip netns list`.
fn listed_namespaces() -> Vec<String> {
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "list"]);
    let out = netns::exec_command_ok(c, netns::CMD_TIMEOUT).expect("ip netns list runs");
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn topology_names(tag: &str) -> [String; 3] {
    [
        format!("{}-{tag}", netns::LAN_NS_PREFIX),
        format!("{}-{tag}", netns::GW_NS_PREFIX),
        format!("{}-{tag}", netns::WAN_NS_PREFIX),
    ]
}

fn assert_gone(tag: &str) {
    let listed = listed_namespaces();
    for n in topology_names(tag) {
        assert!(
            !listed.contains(&n),
            "namespace {n} left behind: {listed:?}"
        );
    }
}

/// Runs `lan-client ARGS…` in `ns`; returns its output.
fn lan_client(ns: &Netns, args: &[&str]) -> Output {
    let mut c = ns.command(LAN_CLIENT);
    c.args(["--timeout", "30"]).args(args);
    netns::exec_command(c, RUN).expect("lan-client finishes within its own timeout")
}

/// Runs `lan-client` and asserts success; returns its `OK` line.
fn lan_ok(ns: &Netns, args: &[&str]) -> String {
    let out = lan_client(ns, args);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && stdout.starts_with("OK "),
        "lan-client {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn topology_is_built_and_removed() {
    if !netns_available("topology_is_built_and_removed") {
        return;
    }
    let tag = unique_tag();
    {
        let topo = Topology::new(&tag).expect("topology builds");
        let listed = listed_namespaces();
        for n in topology_names(&tag) {
            assert!(listed.contains(&n), "{n} missing from {listed:?}");
        }
        assert!(topo.lan.has_addr(LAN_HOST_ADDR));
        assert!(topo.gw.has_addr(LAN_GW_ADDR));
        let routes = topo.lan.routes().expect("routes");
        assert!(
            routes.contains(&format!("default via {LAN_GW_ADDR} dev lan0")),
            "{routes}"
        );
        let fwd = topo
            .gw
            .exec_ok(&["sysctl", "-n", "net.ipv4.ip_forward"])
            .expect("sysctl");
        assert_eq!(fwd.trim(), "1");
        // The WAN namespace is empty: the mock ISP will create wan0 there.
        assert!(!topo.wan.has_link(netns::WAN_TUN_IF));
        let ping = topo
            .lan
            .exec(
                &["ping", "-c", "1", "-W", "2", &LAN_GW_ADDR.to_string()],
                RUN,
            )
            .expect("ping runs");
        assert!(
            ping.status.success(),
            "LAN host cannot ping the gateway: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
        // Without a WAN link the internet is unreachable (the test can fail).
        let ping = topo
            .lan
            .exec(
                &["ping", "-c", "1", "-W", "1", &WAN_SERVER_ADDR.to_string()],
                RUN,
            )
            .expect("ping runs");
        assert!(!ping.status.success());
    }
    assert_gone(&tag);
}

#[test]
fn wan_servers_and_lan_client_over_routed_gateway() {
    if !netns_available("wan_servers_and_lan_client_over_routed_gateway") {
        return;
    }
    let started = Instant::now();
    let tag = unique_tag();
    {
        let topo = Topology::new(&tag).expect("topology builds");
        topo.add_direct_wan_link().expect("direct WAN link");
        let mut servers = topo
            .start_wan_servers(WAN_SERVERS, &["--ftp-file-size", "300000"])
            .expect("wan-servers READY");
        let ready = servers.stdout();
        assert!(ready.contains("ftp=203.0.113.1:21"), "{ready}");
        netns::wait_for_tcp(
            &topo.lan,
            SocketAddr::new(WAN_SERVER_ADDR.into(), 8081),
            Duration::from_secs(10),
        )
        .expect("blob port reachable from the LAN");

        assert!(
            topo.lan.ping(WAN_SERVER_ADDR, 2).expect("ping runs"),
            "LAN cannot ping WAN through the gateway"
        );
        netns::wait_for_route(&topo.gw, "default via 203.0.113.1", Duration::from_secs(5))
            .expect("gateway default route");
        let ok = topo
            .lan
            .run(LAN_CLIENT, &["tcp-whoami", "203.0.113.1:8081"], RUN)
            .expect("Netns::run");
        assert!(ok.starts_with("OK whoami"), "{ok}");

        let ok = lan_ok(&topo.lan, &["udp-echo", "203.0.113.1:7", "--count", "20"]);
        assert!(ok.starts_with("OK udp-echo count=20"), "{ok}");
        lan_ok(
            &topo.lan,
            &["tcp-echo", "203.0.113.1:7", "--bytes", "150000"],
        );
        let ok = lan_ok(
            &topo.lan,
            &["tcp-fetch", "203.0.113.1:8081", "--bytes", "204800"],
        );
        let want = masqdial_tests::wan::sha256_hex(&masqdial_tests::wan::blob_bytes(
            masqdial_tests::wan::DEFAULT_SEED,
            204_800,
        ));
        assert!(ok.contains(&want), "{ok}");
        lan_ok(
            &topo.lan,
            &[
                "udp-echo",
                "203.0.113.1:7",
                "--count",
                "3",
                "--interval-ms",
                "50",
                "--local-port",
                "40007",
            ],
        );
        let ok = lan_ok(
            &topo.lan,
            &["udp-whoami", "203.0.113.1:8081", "--local-port", "40008"],
        );
        assert_eq!(
            ok,
            "OK udp-whoami seen=192.168.77.2:40008 local=192.168.77.2:40008"
        );
        // No NAT on this path: the server sees the LAN host itself.
        let ok = lan_ok(&topo.lan, &["tcp-whoami", "203.0.113.1:8081"]);
        assert!(ok.starts_with("OK whoami seen=192.168.77.2:"), "{ok}");

        for mode in [
            &["--passive"][..],
            &["--passive", "--epsv"],
            &["--active"],
            &["--active", "--eprt"],
        ] {
            let mut args = vec![
                "ftp-get",
                "203.0.113.1",
                "--file",
                "blob.bin",
                "--bytes",
                "300000",
            ];
            args.extend_from_slice(mode);
            let ok = lan_ok(&topo.lan, &args);
            assert!(ok.starts_with("OK ftp-get bytes=300000"), "{ok}");
            if mode[0] == "--active" {
                // As root the server connects back from its data port 20 (RFC 959 §3.2).
                assert!(ok.ends_with("data_peer=203.0.113.1:20"), "{ok}");
            }
            let mut args = vec![
                "ftp-put",
                "203.0.113.1",
                "--file",
                "up.bin",
                "--bytes",
                "70000",
            ];
            args.extend_from_slice(mode);
            lan_ok(&topo.lan, &args);
        }

        // Failures are reported, not passed: wrong size, wrong seed, nobody listening.
        let out = lan_client(
            &topo.lan,
            &["ftp-get", "203.0.113.1", "--bytes", "1", "--passive"],
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("FAIL ftp-get: data mismatch"));
        let out = lan_client(
            &topo.lan,
            &[
                "--seed",
                "1",
                "tcp-fetch",
                "203.0.113.1:8081",
                "--bytes",
                "1000",
            ],
        );
        assert!(!out.status.success());
        let out = lan_client(&topo.lan, &["tcp-fetch", "203.0.113.1:9", "--bytes", "1"]);
        assert!(!out.status.success());

        assert!(
            servers.try_status().is_none(),
            "wan-servers died: {}",
            servers.stderr()
        );
    }
    assert_gone(&tag);
    eprintln!(
        "wan_servers_and_lan_client_over_routed_gateway took {:?}",
        started.elapsed()
    );
}

#[test]
fn children_and_leftover_processes_are_killed() {
    if !netns_available("children_and_leftover_processes_are_killed") {
        return;
    }
    let name = format!("mqh-{}", unique_tag());
    let (guarded_pid, orphan_pids) = {
        let ns = Netns::create(&name).expect("namespace");
        let mut g: Guarded = ns.spawn(&["sleep", "600"]).expect("sleep starts");
        let pid = g.pid();
        assert!(g.try_status().is_none());
        // A process the harness did not spawn itself (double fork): only the namespace knows it.
        let out = ns
            .exec(&["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"], RUN)
            .expect("sh runs");
        assert!(out.status.success());
        let orphan: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("sh prints a pid");
        let pids = ns.pids();
        assert!(pids.contains(&orphan), "{pids:?} lacks {orphan}");
        (pid, vec![orphan])
        // `g` then `ns` drop here.
    };
    assert!(
        !std::path::Path::new(&format!("/proc/{guarded_pid}")).exists(),
        "guarded child {guarded_pid} still exists"
    );
    for pid in orphan_pids {
        // The orphan was reparented to init, which reaps it; wait (bounded) for that.
        netns::wait_until(
            "orphan reaped",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        )
        .expect("orphan killed");
    }
    assert!(!listed_namespaces().contains(&name));
}

#[test]
fn namespaces_are_removed_after_a_panic() {
    if !netns_available("namespaces_are_removed_after_a_panic") {
        return;
    }
    let tag = unique_tag();
    let t = tag.clone();
    let result = std::panic::catch_unwind(move || {
        let _topo = Topology::new(&t).expect("topology builds");
        panic!("deliberate panic inside a test");
    });
    assert!(result.is_err());
    assert_gone(&tag);
}

#[test]
fn wan_servers_wait_for_their_address() {
    if !netns_available("wan_servers_wait_for_their_address") {
        return;
    }
    let tag = unique_tag();
    {
        let topo = Topology::new(&tag).expect("topology builds");
        // Started before 203.0.113.1 exists, as when the mock ISP's TUN is not up yet.
        let mut c = topo.wan.command(WAN_SERVERS);
        c.args(["--bind", "203.0.113.1", "--bind-wait-secs", "20"]);
        let servers = Guarded::spawn(c).expect("wan-servers starts");
        std::thread::sleep(Duration::from_millis(300));
        assert!(!servers.stdout().contains("READY"));
        topo.add_direct_wan_link().expect("direct WAN link");
        servers
            .wait_for_line("READY", Duration::from_secs(20))
            .expect("READY once the address exists");
        let ok = lan_ok(&topo.lan, &["udp-echo", "203.0.113.1:7", "--count", "3"]);
        assert!(ok.starts_with("OK udp-echo count=3"), "{ok}");
        // Without the wait option a missing address is a clear error, not a hang.
        let out = topo
            .gw
            .exec(&[WAN_SERVERS, "--bind", "198.51.100.9"], RUN)
            .expect("wan-servers exits");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot bind"));
    }
    assert_gone(&tag);
}
