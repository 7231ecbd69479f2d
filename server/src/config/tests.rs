//! Tests of configuration parsing and validation.

use super::*;

// A cheap valid argon2id PHC string (m=8 KiB, t=1, p=1) of the password "pw".
fn phc() -> String {
    crate::auth::hash_password_with("pw", crate::auth::fast_params()).unwrap_or_default()
}

fn good() -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:2240"
allow = ["127.0.0.0/8", "192.168.1.0/24"]

[[users]]
name = "alice"
password_hash = "{h}"
role = "user"
connections = ["isp1"]

[[users]]
name = "root"
password_hash = "{h}"
role = "admin"

[[modems]]
name = "modem0"
device = "/dev/ttyS0"

[[connections]]
name = "isp1"
modems = ["modem0"]
numbers = ["555-0100"]

[nat]
port_low = 61000
"#,
        h = phc()
    )
}

fn parse(t: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("test.toml"), t)
}

#[test]
fn good_config_parses_with_defaults() {
    let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.listen.port(), 2240);
    assert_eq!(c.users.len(), 2);
    assert_eq!(c.users[1].role, UserRole::Admin);
    assert_eq!(c.modems[0].baud, 115_200);
    assert_eq!(c.connections[0].dial_prefix, "ATDT");
    assert_eq!(c.nat.port_high, 65095);
    assert_eq!(c.server.token_ttl_s, DEFAULT_TOKEN_TTL_S);
}

#[test]
fn registration_wait_defaults_to_60_s_and_is_bounded() {
    let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.connections[0].registration_wait_s, 60);
    let set = |v: &str| {
        good().replace(
            "numbers = [\"555-0100\"]",
            &format!("numbers = [\"*99#\"]\napn = \"internet\"\nregistration_wait_s = {v}"),
        )
    };
    let c = parse(&set("0")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.connections[0].registration_wait_s, 0);
    let c = parse(&set("600")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.connections[0].registration_wait_s, 600);
    let e = parse(&set("601"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("registration_wait_s") && e.contains("at most 600 s"),
        "{e}"
    );
}

#[test]
fn demand_lan_hosts_and_activity_filters() {
    let demand = good().replace(
        "numbers = [\"555-0100\"]",
        "numbers = [\"555-0100\"]\ndemand = true\nidle_timeout_s = 60\nactivity_filter = [\"-p udp -d 0/0 53 -j DENY\"]",
    );
    let t = demand.replace(
        "[nat]",
        "[[lan_hosts]]\nhost = \"192.168.1.7\"\nuser = \"alice\"\n\n[[lan_hosts]]\nhost = \"192.168.1.16/28\"\nuser = \"root\"\n\n[nat]",
    );
    let c = parse(&t).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.connections[0].demand);
    assert_eq!(c.connections[0].demand_hold_s, 30);
    assert_eq!(c.lan_hosts[0].host.to_string(), "192.168.1.7/32");
    assert_eq!(c.lan_hosts[1].host.to_string(), "192.168.1.16/28");

    let e = parse(&t.replace("user = \"root\"", "user = \"bob\""))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("lan_hosts[1].user") && e.contains("unknown user `bob`"),
        "{e}"
    );
    let e = parse(&t.replace("idle_timeout_s = 60", "idle_timeout_s = 0"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("connections[0].idle_timeout_s"), "{e}");
    let e = parse(&t.replace("-j DENY", "-j MASQ"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("connections[0].activity_filter"), "{e}");
    let e = parse(&t.replace("192.168.1.7", "host-seven"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("lan_hosts[0].host"), "{e}");
    // Finding N12: an optional MAC binding, for a single host only.
    let mac = t.replace(
        "host = \"192.168.1.7\"\nuser = \"alice\"",
        "host = \"192.168.1.7\"\nuser = \"alice\"\nmac = \"02:00:5E:10:00:07\"",
    );
    let c = parse(&mac).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.lan_hosts[0].mac.as_deref(), Some("02:00:5E:10:00:07"));
    assert_eq!(c.lan_hosts[1].mac, None);
    let e = parse(&mac.replace("02:00:5E:10:00:07", "02:00:5E:10:00"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("lan_hosts[0].mac") && e.contains("not a MAC"),
        "{e}"
    );
    let e = parse(&mac.replace("\"192.168.1.7\"", "\"192.168.1.0/24\""))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("lan_hosts[0].mac") && e.contains("single IPv4 host"),
        "{e}"
    );
}

/// Finding N18: `[server] user`, a plain user name and never root.
#[test]
fn server_user_is_a_name_and_not_root() {
    let with = |u: &str| good().replacen("[server]\n", &format!("[server]\nuser = {u:?}\n"), 1);
    let c = parse(&with("masqdial")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.user.as_deref(), Some("masqdial"));
    for bad in ["root", "", "-x", "a b", "x/y"] {
        let e = parse(&with(bad))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("server.user"), "{bad}: {e}");
    }
}

#[test]
fn budgets_parse_and_bad_entries_name_the_key() {
    let t = format!(
        "{}\n[[budgets]]\nconnection = \"isp1\"\nbytes = 500_000_000\nbytes_period = \"day\"\n\
         count = \"in\"\nconnect_time_s = 36_000\nwindows = [\"Mo-Fr 18:00-08:00\", \"Sa-Su 00:00-24:00\"]\n\
         utc_offset = \"+01:00\"\n",
        good()
    );
    let c = parse(&t).unwrap_or_else(|e| panic!("{e}"));
    let b = &c.budgets[0];
    assert_eq!(b.bytes, Some(500_000_000));
    assert_eq!(b.bytes_period, crate::budget::Period::Day);
    assert_eq!(b.count, crate::budget::Count::In);
    assert_eq!(b.time_period, crate::budget::Period::Month);
    assert_eq!((b.warn_before_s, b.warn_at), (300, 0.9));
    let line = t
        .lines()
        .position(|l| l.starts_with("windows"))
        .map_or(0, |p| p + 1);
    for (from, to, key, says) in [
        (
            "18:00-08:00",
            "18:00-8:00",
            "budgets[0].windows",
            "window \"Mo-Fr 18:00-8:00\": times must be HH:MM-HH:MM",
        ),
        (
            "Sa-Su",
            "Sa-Sx",
            "budgets[0].windows",
            "unknown day in \"Sa-Sx\"",
        ),
        (
            "+01:00",
            "CET",
            "budgets[0].utc_offset",
            "\"CET\" is not a UTC offset",
        ),
        (
            "connection = \"isp1\"",
            "connection = \"isp9\"",
            "budgets[0].connection",
            "unknown connection `isp9`",
        ),
        (
            "bytes = 500_000_000",
            "bytes = 0",
            "budgets[0].bytes",
            "must be at least 1",
        ),
        (
            "connect_time_s = 36_000",
            "connect_time_s = 9999999",
            "budgets[0].connect_time_s",
            "too long",
        ),
        (
            "bytes_period = \"day\"",
            "bytes_period = \"week\"",
            "budgets[0].bytes_period",
            "unknown variant",
        ),
    ] {
        let e = parse(&t.replace(from, to))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(key) && e.contains(says), "{from} -> {to}: {e}");
        if key.ends_with("windows") {
            assert!(e.contains(&format!("line {line}")), "{e}");
        }
    }
    let twice = format!("{t}\n[[budgets]]\nconnection = \"isp1\"\n");
    let e = parse(&twice)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("budgets[1].connection") && e.contains("a second [[budgets]] entry for `isp1`"),
        "{e}"
    );
}

#[test]
fn empty_config_uses_port_224() {
    let c = parse("").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.listen.port(), DEFAULT_PORT);
}

#[test]
fn unknown_key_names_line_and_key() {
    let t = good().replace(
        "numbers = [\"555-0100\"]",
        "numbers = [\"555-0100\"]\nnumbrs = 1",
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.starts_with("test.toml: line "), "{e}");
    assert!(e.contains("connections[0].numbrs"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
    let line = t
        .lines()
        .position(|l| l.starts_with("numbrs"))
        .map(|p| p + 1);
    assert!(e.contains(&format!("line {}", line.unwrap_or(0))), "{e}");
}

#[test]
fn wrong_type_names_key() {
    let t = good().replace("port_low = 61000", "port_low = \"high\"");
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("nat.port_low"), "{e}");
}

#[test]
fn syntax_error_has_line() {
    let e = parse("[server\nlisten = 1")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn unknown_modem_in_connection() {
    let t = good().replace("modems = [\"modem0\"]", "modems = [\"modem9\"]");
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    let line = t
        .lines()
        .position(|l| l.contains("modem9"))
        .map(|p| p + 1)
        .unwrap_or(0);
    assert!(e.contains("connections[0].modems"), "{e}");
    assert!(e.contains("modem9"), "{e}");
    assert!(e.contains(&format!("line {line}")), "{e}");
}

#[test]
fn pap_fallback_defaults_off_and_contradicts_chap_only() {
    let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.connections[0].auth, PppAuth::Any);
    assert!(!c.connections[0].allow_pap_fallback);
    let with = |auth: &str| {
        good().replace(
            "numbers = [\"555-0100\"]",
            &format!("numbers = [\"555-0100\"]\nauth = \"{auth}\"\nallow_pap_fallback = true"),
        )
    };
    for ok in ["any", "pap"] {
        let c = parse(&with(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert!(c.connections[0].allow_pap_fallback);
    }
    let e = parse(&with("chap"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("connections[0].allow_pap_fallback"), "{e}");
    assert!(e.contains("contradicts auth = \"chap\""), "{e}");
}

#[test]
fn bad_cidr_is_rejected() {
    let t = good().replace("192.168.1.0/24", "192.168.1.0/33");
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("server.allow"), "{e}");
}

#[test]
fn download_window_is_on_by_default_and_can_be_widened_or_turned_off() {
    let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.link.download_window);
    assert_eq!(c.link.download_window_packets, 2);
    assert_eq!(c.link.download_window_rtt_ms, 100);
    let c = parse(&format!(
        "{}\n[link]\ndownload_window = false\ndownload_window_packets = 8\n",
        good()
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.link.download_window);
    assert_eq!(c.link.download_window_packets, 8);
    for (key, bad) in [
        ("download_window_packets", "0"),
        ("download_window_packets", "5000"),
        ("download_window_rtt_ms", "20000"),
    ] {
        let e = parse(&format!("{}\n[link]\n{key} = {bad}\n", good()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(&format!("link.{key}")), "{key} = {bad}: {e}");
    }
}

#[test]
fn link_section_defaults_and_validation() {
    use crate::linkq::SchedulerKind;
    let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.link.scheduler, SchedulerKind::Fair);
    assert_eq!(c.link.ingress_shaping, None);
    let c = parse(&format!(
        "{}\n[link]\nscheduler = \"fifo\"\ningress_shaping = 0.9\n",
        good()
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.link.scheduler, SchedulerKind::Fifo);
    assert_eq!(c.link.ingress_shaping, Some(0.9));
    for bad in ["0", "1.5", "-0.5", "nan"] {
        let e = parse(&format!("{}\n[link]\ningress_shaping = {bad}\n", good()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("link.ingress_shaping"), "{bad}: {e}");
    }
    let e = parse(&format!("{}\n[link]\nscheduler = \"wfq\"\n", good()))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("unknown variant `wfq`"), "{e}");
}

#[test]
fn bad_phc_is_rejected() {
    let g = good();
    let start = g.find("password_hash = \"").unwrap_or(0);
    let end = g[start..].find('\n').map_or(g.len(), |e| start + e);
    let t = format!(
        "{}password_hash = \"$argon2id$garbage\"{}",
        &g[..start],
        &g[end..]
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("users[0].password_hash"), "{e}");
}

#[test]
fn placeholder_hash_is_rejected_with_how_to_make_one() {
    let g = good();
    let start = g.find("password_hash = \"").unwrap_or(0);
    let end = g[start..].find('\n').map_or(g.len(), |e| start + e);
    let t = format!(
        "{}password_hash = \"{HASH_PLACEHOLDER}\"{}",
        &g[..start],
        &g[end..]
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("users[0].password_hash"), "{e}");
    assert!(e.contains("is a placeholder"), "{e}");
    assert!(e.contains("`mserver hash-password`"), "{e}");
}

#[test]
fn duplicate_user_is_rejected() {
    let t = good().replace("name = \"root\"", "name = \"alice\"");
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("users[1].name"), "{e}");
    assert!(e.contains("duplicate"), "{e}");
}

#[test]
fn user_with_unknown_connection() {
    let t = good().replace("connections = [\"isp1\"]", "connections = [\"isp7\"]");
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("users[0].connections"), "{e}");
}

#[test]
fn bad_port_range() {
    let t = good().replace("port_low = 61000", "port_low = 65500");
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("nat.port_low"), "{e}");
    let t = good().replace("port_low = 61000", "port_low = 80000");
    assert!(parse(&t).is_err());
}

#[test]
fn durations_are_bounded() {
    let huge = i64::MAX;
    for (from, to, key) in [
        (
            "allow = [",
            format!("token_ttl_s = {huge}\nallow = ["),
            "server.token_ttl_s",
        ),
        (
            "numbers = [\"555-0100\"]",
            format!("numbers = [\"555-0100\"]\nidle_timeout_s = {huge}"),
            "connections[0].idle_timeout_s",
        ),
        (
            "numbers = [\"555-0100\"]",
            "numbers = [\"555-0100\"]\nmax_connect_s = 2592001".to_string(),
            "connections[0].max_connect_s",
        ),
        (
            "port_low = 61000",
            "port_low = 61000\nudp_timeout = 4294967295".to_string(),
            "nat.udp_timeout",
        ),
    ] {
        let t = good().replace(from, &to);
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(key) && e.contains("too long"), "{key}: {e}");
    }
    let t = good().replace(
        "numbers = [\"555-0100\"]",
        "numbers = [\"555-0100\"]\nmax_connect_s = 2592000",
    );
    assert!(parse(&t).is_ok());
}

#[test]
fn unknown_enum_values_name_the_allowed_ones() {
    let t = good().replace(
        "port_low = 61000",
        "port_low = 61000\nrfc_profile = \"bogus\"",
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("nat.rfc_profile"), "{e}");
    assert!(e.contains("`linux22`") && e.contains("`rfc`"), "{e}");
    let t = good().replace(
        "device = \"/dev/ttyS0\"",
        "device = \"/dev/ttyS0\"\nflow_control = \"xonxoff\"",
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("modems[0].flow_control"), "{e}");
    assert!(
        e.contains("`none`") && e.contains("`hardware`") && e.contains("`software`"),
        "{e}"
    );
    let t = good().replace(
        "port_low = 61000",
        "port_low = 61000\nrfc_profile = \"rfc\"",
    );
    let c = parse(&t).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.nat.rfc_profile, RfcProfile::Rfc);
}

#[test]
fn software_flow_control_is_refused_not_ignored() {
    let t = good().replace(
        "device = \"/dev/ttyS0\"",
        "device = \"/dev/ttyS0\"\nflow_control = \"software\"",
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("modems[0].flow_control"), "{e}");
    assert!(e.contains("not supported"), "{e}");
    for ok in ["none", "hardware"] {
        let t = good().replace(
            "device = \"/dev/ttyS0\"",
            &format!("device = \"/dev/ttyS0\"\nflow_control = \"{ok}\""),
        );
        assert!(parse(&t).is_ok(), "{ok}");
    }
}

#[test]
fn metrics_listen_is_optional_and_not_the_api_port() {
    let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.metrics_listen, None);
    let t = good().replace(
        "listen = \"127.0.0.1:2240\"",
        "listen = \"127.0.0.1:2240\"\nmetrics_listen = \"127.0.0.1:9224\"",
    );
    let c = parse(&t).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.metrics_listen.map(|a| a.port()), Some(9224));
    let t = good().replace(
        "listen = \"127.0.0.1:2240\"",
        "listen = \"127.0.0.1:2240\"\nmetrics_listen = \"127.0.0.1:2240\"",
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("server.metrics_listen"), "{e}");
}

#[test]
fn tls_needs_both() {
    let t = good().replace("[server]", "[server]\ntls_cert = \"/c.pem\"");
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("server.tls_cert"), "{e}");
}

proptest::proptest! {
    #[test]
    /// Any text is parsed or rejected with an error that names the file and a place.
    fn any_text_is_parsed_or_rejected_naming_the_file(t in "(?s).{0,400}") {
        if let Err(e) = parse(&t) {
            proptest::prop_assert!(e.to_string().starts_with("test.toml: "), "{}", e);
        }
    }

    #[test]
    fn toml_like_text_is_refused_at_a_line_or_key(
        section in "(server|nat|\\[users\\]|\\[modems\\]|\\[connections\\]|x)",
        key in "[a-z_]{1,14}",
        value in "(\"[^\"\\n]{0,20}\"|[0-9]{1,6}|\\[\"[0-9./:]{0,20}\"\\]|true)",
    ) {
        // A TOML-level refusal (syntax, unknown key, wrong type) points at a line or a key.
        match parse(&format!("[{section}]\n{key} = {value}\n")) {
            Err(ConfigError::Parse { at, .. }) => {
                proptest::prop_assert!(at.line.is_some() || !at.key.is_empty(), "no place: {:?}", at);
            }
            Err(e) => proptest::prop_assert!(e.to_string().starts_with("test.toml: "), "{}", e),
            Ok(_) => {}
        }
    }
}

#[test]
fn missing_file_names_it() {
    let e = Config::load(Path::new("/nonexistent/x.toml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("/nonexistent/x.toml"), "{e}");
}

/// Security finding N12: every duration has the same bound, the demand hold and the
/// cellular poll interval included (a huge value would overflow a timer).
#[test]
fn demand_hold_and_cellular_poll_have_the_duration_bound() {
    let t = good().replace(
        "numbers = [\"555-0100\"]",
        "numbers = [\"555-0100\"]\ndemand = true\nidle_timeout_s = 60\ndemand_hold_s = 99999999999",
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("demand_hold_s") && e.contains("too long"), "{e}");
    let t = good().replace(
        "device = \"/dev/ttyS0\"",
        "device = \"/dev/ttyS0\"\n\n[modems.cellular]\npoll_s = 99999999999",
    );
    let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("poll_s") && e.contains("too long"), "{e}");
    // Within the bound both are taken.
    let t = good().replace(
        "device = \"/dev/ttyS0\"",
        "device = \"/dev/ttyS0\"\n\n[modems.cellular]\npoll_s = 3600",
    );
    assert!(parse(&t).is_ok(), "{:?}", parse(&t).err());
}

#[test]
fn irc_ports_default_to_6667_and_are_checked() {
    let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.nat.irc_ports, [6667]);
    let set = |v: &str| {
        good().replace(
            "port_low = 61000",
            &format!("port_low = 61000\nirc_ports = {v}"),
        )
    };
    let c = parse(&set("[6667, 6697]")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.nat.irc_ports, [6667, 6697]);
    assert!(parse(&set("[]")).is_ok_and(|c| c.nat.irc_ports.is_empty()));
    for (bad, why) in [
        ("[0]", "port 0"),
        ("[21]", "FTP"),
        ("[6667, 6667]", "twice"),
        ("[1,2,3,4,5,6,7,8,9,10,11,12,13]", "at most 12"),
        ("[70000]", "nat.irc_ports"),
    ] {
        let e = parse(&set(bad))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("nat.irc_ports") && e.contains(why), "{bad}: {e}");
    }
}
