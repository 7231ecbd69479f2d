//! Every mclient command's `--json` output, checked key for key against the schema written
//! in `client-cli/JSON.md`, with the real binary against an in-process fake server whose
//! answers fill every field (cellular details, refusals, every event kind), so that no
//! optional field goes unchecked. The same check against a real in-process mserver dialling a
//! mock modem is `json_schema_real.rs`. Also: errors are JSON under `--json`.

mod fake;
mod schema;

use std::collections::BTreeMap;

use fake::{ClientEnv, Fake};
use schema::{check, check_output, is_rfc3339, schema};
use serde_json::Value;

#[test]
fn schema_checker_rejects_drift() {
    let s = schema();
    // A renamed key, an empty string, a missing key: each is caught.
    let bad = r#"{"connections": [{"name": "isp1", "description": "", "numbers": [], "modems": [], "allowed": true, "state": "up"}]}"#;
    let errs = check_output("list", bad, &s);
    assert!(
        errs.iter().any(|e| e.contains("missing key connection")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("key name is not in the schema")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("\"\" is not a string")),
        "{errs:?}"
    );
    assert!(is_rfc3339("2026-11-30T08:58:22Z"));
    assert!(!is_rfc3339("1796029102"));
}

#[tokio::test]
async fn every_command_matches_the_written_schema() {
    let s = schema();
    let fake = Fake::default();
    let (server, task) = fake.clone().start().await;
    let env = ClientEnv::new(&server);

    let o = env
        .run(
            &["--json", "-u", "alice", "login"],
            &[("MASQDIAL_PASSWORD", "alice-pw")],
            "",
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mut errs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    errs.insert("login".into(), check_output("login", &o.stdout, &s));
    env.login_both().await;

    // (schema name, args, user)
    let cases: &[(&str, &[&str], &str)] = &[
        ("whoami", &["whoami"], "alice"),
        ("sessions", &["sessions"], "root"),
        ("revoke", &["revoke", "alice"], "root"),
        ("revoke", &["revoke", "00112233aabbccdd"], "root"),
        ("list", &["list"], "alice"),
        ("cinfo", &["cinfo", "isp1"], "alice"),
        ("dial", &["dial", "isp1"], "alice"),
        ("hangup", &["hangup", "isp1"], "alice"),
        ("status", &["status"], "alice"),
        ("who", &["who"], "alice"),
        ("modems", &["modems"], "alice"),
        ("masq", &["masq"], "alice"),
        ("ports", &["ports"], "alice"),
        ("timeouts", &["timeouts"], "alice"),
        ("timeouts", &["timeouts", "set", "900", "0", "300"], "root"),
        ("ipchains -L", &["ipchains", "-L", "-n"], "alice"),
        (
            "ipchains -A",
            &["ipchains", "-A", "input", "-p", "tcp", "-j", "ACCEPT"],
            "root",
        ),
        (
            "ipchains -A",
            &["ipchains", "-D", "input", "-p", "tcp", "-j", "ACCEPT"],
            "root",
        ),
        (
            "ipchains -A",
            &["ipchains", "-P", "output", "ACCEPT"],
            "root",
        ),
        (
            "ipchains -C",
            &[
                "ipchains", "-C", "input", "-p", "tcp", "-s", "1.2.3.4", "1025", "-d", "5.6.7.8",
                "80", "-i", "eth0",
            ],
            "alice",
        ),
        ("ipchains -M -L", &["ipchains", "-M", "-L"], "alice"),
        (
            "ipchains -M -S",
            &["ipchains", "-M", "-S", "7200", "10", "160"],
            "root",
        ),
        ("save", &["save"], "alice"),
        ("counters", &["counters"], "alice"),
    ];
    for (name, args, user) in cases {
        let mut a = vec!["--json", "-u", user];
        a.extend_from_slice(args);
        let o = env.run(&a, &[], "").await;
        assert_eq!(o.code, 0, "{args:?}: {}{}", o.stdout, o.stderr);
        assert!(
            o.stderr.is_empty(),
            "{args:?} wrote to stderr: {}",
            o.stderr
        );
        errs.entry(format!("{name} {args:?}"))
            .or_default()
            .extend(check_output(name, &o.stdout, &s));
    }
    // dial that fails: JSON lines up to `failed`, then exit 12 with a JSON error last.
    let o = env
        .run(&["--json", "-u", "root", "dial", "isp2"], &[], "")
        .await;
    assert_eq!(o.code, 12, "{}", o.stderr);
    let (events, last) = o.stdout.trim_end().rsplit_once('\n').unwrap_or_default();
    errs.insert("dial isp2".into(), check_output("dial", events, &s));
    errs.insert("dial isp2 error".into(), {
        let mut e = Vec::new();
        let v: Value = serde_json::from_str(last).unwrap_or_default();
        check(&v, &s["types"]["error"], &s["types"], "error", &mut e);
        e
    });
    // restore, dry run and real, from stdin.
    for (args, name) in [
        (
            vec!["--json", "-u", "root", "restore", "-", "--dry-run"],
            "restore",
        ),
        (vec!["--json", "-u", "root", "restore", "-"], "restore"),
    ] {
        let o = env
            .run(&args, &[], ":input DENY\n-A input -p tcp -j ACCEPT\n")
            .await;
        assert_eq!(o.code, 0, "{}", o.stderr);
        errs.insert(format!("{args:?}"), check_output(name, &o.stdout, &s));
    }
    // save to a file.
    let f = env.dir.path().join("rules.save");
    let fs = f.display().to_string();
    let o = env.run(&["--json", "save", &fs], &[], "").await;
    errs.insert("save FILE".into(), check_output("save", &o.stdout, &s));
    // watch: read the first lines, then stop it (the fake's stream stays open).
    {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mclient"));
        cmd.args(["--json", "-u", "alice", "watch"])
            .env("MASQDIAL_SERVER", &server)
            .env("XDG_CONFIG_HOME", env.dir.path().join("cfg"))
            .env("XDG_DATA_HOME", env.dir.path().join("data"))
            .env_remove("MASQDIAL_TOKEN_FILE")
            .env_remove("MASQDIAL_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut got = String::new();
        for _ in 0..5 {
            let l = tokio::time::timeout(fake::LIMIT, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("watch printed nothing"))
                .unwrap_or_default()
                .unwrap_or_default();
            got.push_str(&l);
            got.push('\n');
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
        errs.insert("watch".into(), check_output("watch", &got, &s));
    }
    // logout last (it forgets alice's token).
    let o = env.run(&["--json", "-u", "alice", "logout"], &[], "").await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    errs.insert("logout".into(), check_output("logout", &o.stdout, &s));

    // Errors are JSON on stdout, nothing on stderr.
    for (args, code) in [
        (vec!["--json", "-u", "root", "cinfo", "nosuch"], 5),
        (vec!["--json", "-u", "nobody", "list"], 3),
        (vec!["--json", "frobnicate"], 2),
    ] {
        let o = env.run(&args, &[], "").await;
        assert_eq!(o.code, code, "{args:?}: {}{}", o.stdout, o.stderr);
        assert!(o.stderr.is_empty(), "{args:?}: {}", o.stderr);
        let v: Value = serde_json::from_str(o.stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", o.stdout));
        let mut e = Vec::new();
        check(&v, &s["types"]["error"], &s["types"], "error", &mut e);
        assert_eq!(v["error"]["exit_code"], code);
        errs.insert(format!("error {args:?}"), e);
    }
    task.abort();
    let bad: Vec<String> = errs
        .into_iter()
        .flat_map(|(k, v)| v.into_iter().map(move |e| format!("{k}: {e}")))
        .collect();
    assert!(bad.is_empty(), "schema mismatches:\n{}", bad.join("\n"));
}
