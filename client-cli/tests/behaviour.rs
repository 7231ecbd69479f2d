//! The real `mclient` against an in-process fake server (tests/fake): plain errors and exit
//! codes, identity per (server, user), restore, the smaller items of issue 16 and the
//! transport rules. Each test names the issue item it covers.

mod fake;

use fake::{run_mclient, ClientEnv, Fake};

/// Nothing from tonic or the rpc layer may reach the user.
fn assert_plain(text: &str) {
    for bad in [
        "status:",
        "Status {",
        "tonic",
        "HangupForce",
        "Dialer.",
        "Nat.",
        "transport error",
        "code:",
    ] {
        assert!(!text.contains(bad), "leaks {bad:?}: {text}");
    }
}

// ---- item 1: errors ----

#[tokio::test]
async fn unreachable_server_is_reported_before_any_token_check() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let o = run_mclient(dir.path(), "http://127.0.0.1:9", &["whoami"], &[], "").await;
    assert_eq!(o.code, 8, "{}", o.stderr);
    assert_eq!(
        o.stderr,
        "mclient: Cannot reach the server at http://127.0.0.1:9 (connection refused).\n\
         hint: check that mserver is running there and that --server (or MASQDIAL_SERVER) names it\n"
    );
}

#[tokio::test]
async fn errors_are_plain_sentences_with_a_next_step() {
    let (server, task) = Fake::default().start().await;
    let env = ClientEnv::new(&server);
    // Not logged in at all.
    let o = env.run(&["list"], &[], "").await;
    assert_eq!(o.code, 3);
    assert_eq!(
        o.stderr,
        format!("mclient: You are not logged in to {server}.\nhint: run `mclient login`\n")
    );
    env.login_both().await;
    // Admin-only, as a user: no rpc name.
    let o = env
        .run(&["-u", "alice", "hangup", "--force", "isp1"], &[], "")
        .await;
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert_plain(&o.stderr);
    assert!(
        o.stderr
            .starts_with("mclient: Only an admin may run `hangup --force`; you are alice.\nhint: "),
        "{}",
        o.stderr
    );
    // Unknown names: NOT_FOUND (5) everywhere, with a suggestion.
    for args in [
        &["-u", "alice", "dial", "isp3"][..],
        &["-u", "alice", "cinfo", "isp3"][..],
        &["-u", "alice", "status", "isp3"][..],
        &["-u", "root", "hangup", "isp3"][..],
    ] {
        let o = env.run(args, &[], "").await;
        assert_eq!(o.code, 5, "{args:?}: {}", o.stderr);
        assert_eq!(
            o.stderr,
            "mclient: There is no connection named `isp3`.\n\
             hint: did you mean `isp1`? (`mclient list` shows them all)\n",
            "{args:?}"
        );
    }
    // A known connection the user may not use stays "not allowed".
    let o = env.run(&["-u", "alice", "dial", "isp2"], &[], "").await;
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(
        o.stderr.contains("may not use connection `isp2`"),
        "{}",
        o.stderr
    );
    // A failed dial: exit 12, one sentence.
    let o = env.run(&["-u", "root", "dial", "isp2"], &[], "").await;
    assert_eq!(o.code, 12, "{}", o.stderr);
    assert!(
        o.stderr
            .starts_with("mclient: Dialling isp2 failed: BUSY on 555.\nhint: `mclient cinfo isp2`"),
        "{}",
        o.stderr
    );
    task.abort();
}

#[tokio::test]
async fn usage_errors_exit_2_and_bare_mclient_prints_help() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = |args: &'static [&'static str]| {
        run_mclient(dir.path(), "http://127.0.0.1:9", args, &[], "")
    };
    let o = run(&[]).await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("Usage: mclient"), "{}", o.stderr);
    assert!(o.stderr.contains("Exit codes:"), "{}", o.stderr);
    assert!(o.stdout.is_empty());
    for args in [
        &["frobnicate"][..],
        &["dial"][..],
        &["timeouts", "x", "y", "z"][..],
        &["timeouts", "1"][..],
        &["ipchains", "-A"][..],
        &["ipchains", "-A", "input", "-p", "tcp", "--frob"][..],
        &["--server", "ftp://x", "list"][..],
        &["restore"][..],
    ] {
        let o = run_mclient(dir.path(), "http://127.0.0.1:9", args, &[], "").await;
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert_plain(&o.stderr);
    }
    let o = run(&["hangpu"]).await;
    assert_eq!(
        o.stderr,
        "mclient: Unknown command `hangpu`.\nhint: did you mean `hangup`? (`help` lists the commands)\n"
    );
    let o = run(&["--help"]).await;
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("  8  server unreachable"), "{}", o.stdout);
    assert!(o.stdout.contains("MASQDIAL_TOKEN_FILE"), "{}", o.stdout);
}

#[tokio::test]
async fn piped_shell_exits_with_the_last_failure() {
    let (server, task) = Fake::default().start().await;
    let env = ClientEnv::new(&server);
    env.login_both().await;
    let o = env
        .run(
            &["-u", "alice", "shell"],
            &[],
            "whoami\nbogus\ndial isp2\nexit\nwhoami\n",
        )
        .await;
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert_eq!(o.stdout.matches("alice (user)").count(), 1, "{}", o.stdout);
    assert!(o.stderr.contains("Unknown command `bogus`"), "{}", o.stderr);
    assert_plain(&o.stderr);
    // All good: 0. `--json` per line.
    let o = env
        .run(&["-u", "alice", "shell"], &[], "whoami --json\nwhoami\n")
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let first = o.stdout.lines().next().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {}", o.stdout));
    assert_eq!(v["user"], "alice");
    assert!(o.stdout.contains("alice (user) at"), "{}", o.stdout);
    task.abort();
}

#[tokio::test]
async fn watch_reports_a_lost_server_and_exits_8() {
    let (real, server_task) = Fake::default().start().await;
    // Through a relay we can cut, as if the gateway went away.
    let (server, task) = fake::relay(&real).await;
    let env = ClientEnv::new(&server);
    env.login_both().await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mclient"));
    cmd.args(["-u", "alice", "watch", "--reconnect", "2"])
        .env("MASQDIAL_SERVER", &server)
        .env("XDG_CONFIG_HOME", env.dir.path().join("cfg"))
        .env("XDG_DATA_HOME", env.dir.path().join("data"))
        .env_remove("MASQDIAL_TOKEN_FILE")
        .env_remove("MASQDIAL_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(fake::LIMIT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("watch printed nothing"))
        .unwrap_or_default()
        .unwrap_or_default();
    assert_eq!(first, "isp1: up 10.0.0.2");
    // The server goes away.
    task.abort();
    let mut rest = Vec::new();
    while let Ok(Ok(Some(l))) = tokio::time::timeout(fake::LIMIT, lines.next_line()).await {
        rest.push(l);
    }
    let status = tokio::time::timeout(fake::LIMIT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("watch did not exit"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut err).await;
    }
    assert_eq!(status.code(), Some(8), "{rest:?} {err}");
    assert!(
        rest.iter().any(|l| l.starts_with(&format!(
            "mclient: lost the server at {server} (connection lost); reconnecting"
        ))),
        "{rest:?}"
    );
    assert!(
        err.starts_with(&format!(
            "mclient: Lost the server at {server} (connection lost) and could not reconnect within 2 s.\n"
        )),
        "{err}"
    );
    server_task.abort();
}

// ---- item 2: identity ----

#[tokio::test]
async fn tokens_per_user_and_u_everywhere() {
    let (server, task) = Fake::default().start().await;
    let env = ClientEnv::new(&server);
    env.login_both().await;
    let who = |o: &fake::Out| o.stdout.lines().next().unwrap_or_default().to_string();
    // -u picks the token; without it the most recent login (root) is used.
    let o = env.run(&["-u", "alice", "whoami"], &[], "").await;
    assert!(
        who(&o).starts_with(&format!("alice (user) at {server}")),
        "{}",
        o.stdout
    );
    let o = env.run(&["whoami"], &[], "").await;
    assert!(who(&o).starts_with("root (admin)"), "{}", o.stdout);
    let o = env
        .run(&["whoami"], &[("MASQDIAL_USER", "alice")], "")
        .await;
    assert!(who(&o).starts_with("alice (user)"), "{}", o.stdout);
    // `localhost` and a trailing slash name the same server.
    let port = server.rsplit(':').next().unwrap_or_default();
    let o = env
        .run(
            &["-u", "alice", "whoami"],
            &[("MASQDIAL_SERVER", &format!("http://localhost:{port}/"))],
            "",
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(who(&o).starts_with("alice (user)"), "{}", o.stdout);
    // A user with no token: exit 3 naming them.
    let o = env.run(&["-u", "bob", "list"], &[], "").await;
    assert_eq!(o.code, 3);
    assert_eq!(
        o.stderr,
        format!("mclient: You are not logged in to {server} as bob.\nhint: run `mclient -u bob login`\n")
    );
    // logout forgets only that user's token.
    let o = env.run(&["-u", "alice", "logout"], &[], "").await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(env.run(&["-u", "alice", "whoami"], &[], "").await.code, 3);
    assert_eq!(env.run(&["-u", "root", "whoami"], &[], "").await.code, 0);
    task.abort();
}

#[tokio::test]
async fn login_name_env_and_config_file() {
    let (server, task) = Fake::default().start().await;
    let env = ClientEnv::new(&server);
    // No -u: $USER (alice); the deprecated password variable still works, with a warning.
    let o = env
        .run(&["login"], &[("MCLIENT_PASSWORD", "alice-pw")], "")
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("as alice"), "{}", o.stdout);
    assert_eq!(
        o.stderr,
        "mclient: warning: MCLIENT_PASSWORD is deprecated; use MASQDIAL_PASSWORD instead\n"
    );
    // MASQDIAL_USER beats $USER.
    let o = env
        .run(
            &["login"],
            &[("MASQDIAL_USER", "root"), ("MASQDIAL_PASSWORD", "root-pw")],
            "",
        )
        .await;
    assert!(o.stdout.contains("as root"), "{}", o.stdout);
    // A login with --server records it as the default server in client.toml ...
    let o = env
        .run(
            &["--server", &server, "-u", "alice", "login"],
            &[("MASQDIAL_PASSWORD", "alice-pw"), ("MASQDIAL_SERVER", "")],
            "",
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let cfg = std::fs::read_to_string(env.config()).unwrap_or_default();
    assert_eq!(cfg, format!("server = \"{server}\"\n"));
    // ... so a later command without --server or MASQDIAL_SERVER goes there.
    let o = env
        .run(&["-u", "alice", "whoami"], &[("MASQDIAL_SERVER", "")], "")
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    // The config file's user is the default user.
    std::fs::write(
        env.config(),
        format!("server = \"{server}\"\nuser = \"alice\"\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = env.run(&["whoami"], &[("MASQDIAL_SERVER", "")], "").await;
    assert!(o.stdout.starts_with("alice (user)"), "{}", o.stdout);
    // MASQDIAL_TOKEN_FILE moves the store.
    let alt = env.dir.path().join("alt.toml");
    let alt_s = alt.display().to_string();
    let o = env
        .run(
            &["-u", "alice", "login"],
            &[
                ("MASQDIAL_TOKEN_FILE", &alt_s),
                ("MASQDIAL_PASSWORD", "alice-pw"),
            ],
            "",
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(std::fs::read_to_string(&alt)
        .unwrap_or_default()
        .contains("alice"));
    task.abort();
}

// ---- item 4: restore ----

#[tokio::test]
async fn restore_replaces_only_named_chains_with_dry_run_stdin_and_force() {
    let fake = Fake::default();
    let (server, task) = fake.clone().start().await;
    let env = ClientEnv::new(&server);
    env.login_both().await;
    let applied = || fake.applied.lock().map(|a| a.clone()).unwrap_or_default();
    // Dry run from stdin: a diff, nothing applied.
    let o = env
        .run(
            &["restore", "-", "--dry-run"],
            &[],
            ":input DENY\n-A input -p tcp -j ACCEPT\n",
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "-:input ACCEPT\n+:input DENY\n--A input -s 192.168.0.0/16 -i ppp0 -l -j DENY\n+-A input -p tcp -j ACCEPT\n"
    );
    assert!(applied().is_empty());
    // Real run: forward keeps its MASQ rule; one ApplyRuleset.
    let o = env
        .run(
            &["restore", "-"],
            &[],
            ":input DENY\n-A input -p tcp -j ACCEPT\n",
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "restored input (3 chains, 2 rules in the ruleset); kept forward, output\n"
    );
    assert_eq!(applied().len(), 1);
    let saved = env.run(&["save"], &[], "").await.stdout;
    assert!(
        saved.contains("-A forward -s 192.168.1.0/24 -j MASQ"),
        "{saved}"
    );
    // --all with a file lacking MASQ: refused (7) without --force, nothing applied.
    let f = env.dir.path().join("only-input.save");
    std::fs::write(&f, ":input ACCEPT\n").unwrap_or_else(|e| panic!("{e}"));
    let fs = f.display().to_string();
    let o = env.run(&["restore", "--all", &fs], &[], "").await;
    assert_eq!(o.code, 7, "{}", o.stderr);
    assert!(o.stderr.contains("without any MASQ rule"), "{}", o.stderr);
    assert_eq!(applied().len(), 1);
    let o = env
        .run(&["restore", "--all", "--force", &fs], &[], "")
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(applied().len(), 2);
    assert!(!env.run(&["save"], &[], "").await.stdout.contains("MASQ"));
    // A bad file names its line; nothing applied.
    let o = env
        .run(&["restore", "-"], &[], ":input ACCEPT\nbogus\n")
        .await;
    assert_eq!(o.code, 6, "{}", o.stderr);
    assert!(o.stderr.contains("-: line 2: `bogus`"), "{}", o.stderr);
    assert_eq!(applied().len(), 2);
    task.abort();
}

// ---- item 5: smaller ----

#[tokio::test]
async fn hangup_without_a_name_and_verbose_echo_and_ipchains_exit_codes() {
    let (server, task) = Fake::default().start().await;
    let env = ClientEnv::new(&server);
    env.login_both().await;
    // alice holds exactly isp1.
    let o = env.run(&["-u", "alice", "hangup"], &[], "").await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "isp1: hanging up\n");
    // root holds nothing.
    let o = env.run(&["-u", "root", "hangup"], &[], "").await;
    assert_eq!(o.code, 7, "{}", o.stderr);
    assert!(
        o.stderr.starts_with("mclient: Root holds no link"),
        "{}",
        o.stderr
    );
    // -v -A echoes the rule as ipchains 1.3 did (FMT_PRINT_RULE, from nat-core).
    let spec = "-s 192.168.2.0/24 -j MASQ";
    let want: String = nat_core::chains::parse_rule(spec)
        .map(|r| r.expand().iter().map(|r| r.verbose_line()).collect())
        .unwrap_or_default();
    assert!(!want.is_empty());
    let mut args = vec!["-u", "root", "ipchains", "-v", "-A", "forward"];
    args.extend(spec.split(' '));
    let o = env.run(&args, &[], "").await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, want);
    // ipchains' exit codes: 2 for parameter problems, 1 for refusals.
    for (args, code) in [
        (
            &["-u", "root", "ipchains", "-A", "nosuch", "-j", "ACCEPT"][..],
            1,
        ),
        (
            &["-u", "alice", "ipchains", "-A", "input", "-j", "ACCEPT"][..],
            1,
        ),
        (&["-u", "root", "ipchains", "-X", "input"][..], 1),
        (&["-u", "root", "ipchains", "-L", "-j", "DENY"][..], 2),
        (
            &[
                "-u", "root", "ipchains", "-A", "input", "-p", "tcp", "-y", "-f",
            ][..],
            2,
        ),
    ] {
        let o = env.run(args, &[], "").await;
        assert_eq!(o.code, code, "{args:?}: {}", o.stderr);
        assert_plain(&o.stderr);
    }
    // Units match mtui's: 2.3K, 1.8M, H:MM:SS.
    let o = env.run(&["-u", "alice", "status"], &[], "").await;
    let row = o.stdout.lines().nth(1).unwrap_or_default();
    assert!(row.contains("  2.3K  1.8M  "), "{row}");
    task.abort();
}

// ---- item 6: transport ----

#[tokio::test]
async fn no_password_over_plain_http_to_a_remote_host() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let o = run_mclient(
        dir.path(),
        "http://192.0.2.1:224",
        &["-u", "alice", "login"],
        &[("MASQDIAL_PASSWORD", "pw")],
        "",
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(
        o.stderr,
        "mclient: Refusing to send a password over plain http to http://192.0.2.1:224.\n\
         hint: use an https:// server with --ca, or pass --insecure if this network is trusted\n"
    );
}

#[tokio::test]
async fn every_request_has_a_deadline() {
    // A listener that accepts and never answers.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let server = format!(
        "http://{}",
        l.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let env = ClientEnv::new(&server);
    std::fs::create_dir_all(env.tokens().parent().unwrap_or(env.dir.path()))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        env.tokens(),
        format!("[[tokens]]\nserver = \"{server}\"\nuser = \"alice\"\ntoken = \"tok-alice\"\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = env.run(&["--timeout", "1", "whoami"], &[], "").await;
    assert_eq!(o.code, 8, "{}", o.stderr);
    assert!(
        o.stderr.starts_with(&format!(
            "mclient: The server at {server} did not answer within 1 s.\n"
        )) || o
            .stderr
            .starts_with(&format!("mclient: Cannot reach the server at {server}")),
        "{}",
        o.stderr
    );
    hold.abort();
}

// ---- item 7: completions and man ----

#[tokio::test]
async fn completions_and_man_page() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (shell, marker) in [
        ("bash", "complete -F _mclient"),
        ("zsh", "#compdef mclient"),
        ("fish", "complete -c mclient"),
    ] {
        let o = run_mclient(
            dir.path(),
            "http://127.0.0.1:9",
            &["completions", shell],
            &[],
            "",
        )
        .await;
        assert_eq!(o.code, 0, "{}", o.stderr);
        assert!(
            o.stdout.contains(marker),
            "{shell}: {}",
            &o.stdout[..o.stdout.len().min(300)]
        );
    }
    let o = run_mclient(dir.path(), "http://127.0.0.1:9", &["man"], &[], "").await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains(".TH mclient 1"),
        "{}",
        &o.stdout[..o.stdout.len().min(300)]
    );
    // `man` is hidden from the help.
    let o = run_mclient(dir.path(), "http://127.0.0.1:9", &["--help"], &[], "").await;
    assert!(!o.stdout.contains("  man "), "{}", o.stdout);
}
