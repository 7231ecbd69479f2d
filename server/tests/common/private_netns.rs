//! Run a test scenario in a fresh private network namespace (`#[path =
//! "common/private_netns.rs"] mod private_netns;`): a thread of its own unshares its network
//! namespace, runs the scenario on a current-thread runtime there, and the namespace goes
//! away with the thread. Not root, no namespaces or no TUN: a loud SKIPPED line (testkit).

use std::future::Future;

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
        Ok(Err(e)) if e.starts_with("unshare") || e.contains("cannot create TUN") => {
            skip(&format!("network namespaces and /dev/net/tun [{e}]"))
        }
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("scenario thread panicked"),
    }
}
