//! Run a test scenario in a fresh private network namespace (`#[path =
//! "common/private_netns.rs"] mod private_netns;`): a thread of its own unshares its network
//! namespace, runs the scenario on a current-thread runtime there, and the namespace goes
//! away with the thread. Not root, no namespaces or no TUN: a loud SKIPPED line (testkit).

use std::future::Future;

/// Whether a set-up error means "this box cannot" (no permission, no namespaces or TUN
/// support, no device) rather than a fault.
fn cannot_here(e: &str) -> bool {
    let setup = e.starts_with("unshare") || e.contains("cannot create TUN");
    let missing = [
        "EPERM",
        "EACCES",
        "ENOENT",
        "ENODEV",
        "ENOSYS",
        "Operation not permitted",
        "Permission denied",
        "No such file or directory",
        "No such device",
        "not supported",
    ];
    setup
        && (!std::path::Path::new("/dev/net/tun").exists() || missing.iter().any(|m| e.contains(m)))
}

/// Run `scenario` in a private network namespace; `test` names the SKIPPED line. A scenario
/// error fails the test, except the set-up errors that mean "this box cannot" (unshare, TUN).
pub fn run<F, Fut>(test: &str, scenario: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>>,
{
    let skip = |why: &str| masqdial_testkit::skip(test, why);
    if !nix::unistd::geteuid().is_root() {
        return skip("root (CAP_NET_ADMIN and a private network namespace) [not root]");
    }
    let t = std::thread::spawn(move || -> Result<(), String> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(scenario())
    });
    match t.join() {
        Ok(Ok(())) => {}
        // Only a missing capability or device may skip; as root any other failure to
        // unshare or to create the TUN device is a failure of the test.
        Ok(Err(e)) if cannot_here(&e) => {
            skip(&format!("network namespaces and /dev/net/tun [{e}]"))
        }
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("scenario thread panicked"),
    }
}
