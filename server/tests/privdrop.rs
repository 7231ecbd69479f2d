//! Finding N18: the real `mserver` started as root (outside systemd) becomes `[server] user`
//! keeping only CAP_NET_ADMIN and CAP_NET_RAW — on every thread — and still opens its TUN
//! device (with the kept CAP_NET_ADMIN). Run in a private network namespace (`unshare -n`)
//! so that its TUN device and listener touch nothing of the host. Root only: elsewhere it
//! prints SKIPPED.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// CAP_NET_ADMIN (12) and CAP_NET_RAW (13), as `/proc/<pid>/status` prints them.
const TWO_CAPS: &str = "0000000000003000";

/// Kills and reaps the child on drop (also on panic).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_field(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    })
}

#[test]
fn root_drops_to_the_configured_user_with_two_capabilities_on_every_thread() {
    let test = "privdrop";
    if !masqdial_testkit::root_available(test, "starting mserver as root") {
        return;
    }
    if !masqdial_testkit::tool_available(test, "unshare", &["--version"], "util-linux") {
        return;
    }
    if !masqdial_testkit::tool_available(test, "ip", &["-V"], "iproute2") {
        return;
    }
    if !masqdial_testkit::tun_available(test) {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no user `nobody`"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::chown(&state, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw()))
        .unwrap_or_else(|e| panic!("{e}"));
    let hash =
        masqdial_server::auth::hash_password_with("pw", masqdial_server::auth::fast_params())
            .unwrap_or_default();
    let config = dir.path().join("mserver.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nallow = [\"127.0.0.0/8\"]\nlisten = \"127.0.0.1:224\"\nuser = \"nobody\"\nstate_dir = {:?}\n\n\
             [nat]\ntun_name = \"mqpd0\"\n\n\
             [[users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n",
            state.display().to_string()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{e}"));

    // A private network namespace: port 224 and the TUN device are its own.
    let mut child = Child(
        Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_mserver"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let pid = child.0.id();
    let stderr = child.0.stderr.take().unwrap_or_else(|| panic!("stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Until the dataplane is on (the TUN device opened after the drop), bounded.
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !log.iter().any(|l: &String| l.contains("dataplane on")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => log.push(l),
            Err(_) => panic!(
                "mserver did not bring its dataplane up; log:\n{}",
                log.join("\n")
            ),
        }
    }
    assert!(
        log.iter().any(|l| l.contains("dropped root")),
        "{}",
        log.join("\n")
    );
    let status = format!("/proc/{pid}/status");
    let uid = nobody.uid.as_raw();
    let gid = nobody.gid.as_raw();
    assert_eq!(
        status_field(&status, "Uid:").as_deref(),
        Some(format!("{uid} {uid} {uid} {uid}").as_str())
    );
    assert_eq!(
        status_field(&status, "Gid:").as_deref(),
        Some(format!("{gid} {gid} {gid} {gid}").as_str())
    );
    // Every thread (capabilities are per thread): only the two, nothing to regain.
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .collect();
    assert!(tasks.len() > 1, "the runtime's threads");
    for t in tasks {
        let s = t.path().join("status");
        let s = s.to_string_lossy();
        assert_eq!(
            status_field(&s, "CapEff:").as_deref(),
            Some(TWO_CAPS),
            "{s}"
        );
        assert_eq!(
            status_field(&s, "CapPrm:").as_deref(),
            Some(TWO_CAPS),
            "{s}"
        );
        assert_eq!(
            status_field(&s, "CapBnd:").as_deref(),
            Some(TWO_CAPS),
            "{s}"
        );
        assert_eq!(
            status_field(&s, "CapInh:").as_deref(),
            Some("0000000000000000"),
            "{s}"
        );
        assert_eq!(
            status_field(&s, "CapAmb:").as_deref(),
            Some("0000000000000000"),
            "{s}"
        );
    }
    // SIGTERM: a clean stop.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(st) = child.0.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            assert!(st.success(), "{st:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
