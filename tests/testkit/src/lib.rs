//! The one way an environment-dependent test says it did not run.
//!
//! libtest captures `print!`/`eprint!` (and so `println!`/`eprintln!`) of a passing test and
//! throws the text away: a test that "skips" with `println!("SKIPPED")` looks exactly like a
//! pass. [`skip`] writes to the process's stderr handle directly (`std::io::stderr()`, which
//! the capture does not redirect), so the line always reaches the terminal or CI log.
//!
//! Use [`skip`] when the test cannot run here and must return early; [`tool_available`],
//! [`root_available`] and [`tun_available`] check the usual preconditions and print the line
//! themselves. A precondition that is present but *fails* (a certificate that cannot be made
//! with an installed `openssl`, a namespace that cannot be entered as root) is not a skip: the
//! test must fail.

use std::io::Write;
use std::process::{Command, Stdio};

/// Prefix of every skip line, for CI log scrapers.
pub const SKIPPED: &str = "SKIPPED:";

/// Environment variable naming a file every skip is also appended to, one line each
/// (`<test> needs <why>`), so a whole run's skips can be counted: `.ci/run` sets it and prints
/// `N skipped` at the end (each test binary is its own process, so no one process sees them
/// all).
pub const SKIP_LOG_VAR: &str = "MASQDIAL_SKIP_LOG";

thread_local! {
    /// Set by testkit's own self-checks, whose expected skips are not the run's.
    static SELF_CHECK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Prints `SKIPPED: <test> needs <why>` on the real stderr (not captured by libtest), and
/// appends it to the file named by [`SKIP_LOG_VAR`] when that is set.
pub fn skip(test: &str, why: &str) {
    let line = format!("\n*** {SKIPPED} {test} needs {why} ***\n");
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(line.as_bytes());
    let _ = e.flush();
    if let Some(path) = std::env::var_os(SKIP_LOG_VAR).filter(|_| !SELF_CHECK.get()) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{test} needs {why}\n").as_bytes()));
        if let Err(err) = appended {
            let _ = writeln!(e, "*** cannot append to {SKIP_LOG_VAR} {path:?}: {err} ***");
        }
    }
}

/// True when `tool` runs with `args` (e.g. `tmux -V`) and exits 0; otherwise prints a skip
/// line naming the tool (and how to install it) and returns false.
pub fn tool_available(test: &str, tool: &str, args: &[&str], install_hint: &str) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        skip(test, &format!("{tool} ({install_hint})"));
    }
    ok
}

/// True when the effective user is root (read from `/proc/self/status`, no libc needed);
/// otherwise prints a skip line and returns false.
pub fn root_available(test: &str, why: &str) -> bool {
    let root = euid() == Some(0);
    if !root {
        skip(test, &format!("root for {why} [not root]"));
    }
    root
}

/// True when `/dev/net/tun` exists; otherwise prints a skip line and returns false.
pub fn tun_available(test: &str) -> bool {
    let ok = std::path::Path::new("/dev/net/tun").exists();
    if !ok {
        skip(test, "/dev/net/tun");
    }
    ok
}

/// The effective uid, from the second field of `Uid:` in `/proc/self/status`.
pub fn euid() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The name of the enclosing function (the test's name), for the skip line.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn f() {}
        let n = ::std::any::type_name_of_val(&f);
        n.trim_end_matches("::f").rsplit("::").next().unwrap_or(n)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "MASQDIAL_TESTKIT_CHILD";

    /// Run by [`skip_line_escapes_libtest_capture`] in a child process only.
    #[test]
    fn child_skips() {
        if std::env::var_os(CHILD).is_some() {
            skip(test_name!(), "nothing (a check of the helper itself)");
        }
    }

    /// The point of the helper: with libtest's capture on (the default), a passing test's
    /// skip line still shows on stderr, while its `eprintln!` output does not.
    #[test]
    fn skip_line_escapes_libtest_capture() {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        let log = std::env::temp_dir().join(format!("masqdial-testkit-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let out = Command::new(exe)
            .args(["tests::child_skips", "--exact", "--test-threads=1"])
            .env(CHILD, "1")
            .env(SKIP_LOG_VAR, &log)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success());
        // The skip is counted in the run's log too, one line per skip.
        let counted = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        assert_eq!(
            counted,
            "child_skips needs nothing (a check of the helper itself)\n"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(SKIPPED)).collect();
        assert_eq!(
            lines,
            ["*** SKIPPED: child_skips needs nothing (a check of the helper itself) ***"],
            "{err}"
        );
    }

    #[test]
    fn absent_tool_is_a_skip_and_present_one_is_not() {
        SELF_CHECK.set(true);
        assert!(!tool_available(
            "testkit self-check (expected)",
            "/nonexistent/masqdial-no-such-tool",
            &[],
            "-"
        ));
        let t = "testkit self-check (expected)";
        assert!(tool_available(t, "true", &[], "-"));
        assert!(!tool_available(t, "false", &[], "-"));
    }

    #[test]
    fn euid_matches_proc() {
        assert!(euid().is_some());
    }
}
