//! Issue 10 item 4: saved state is written safely and a change is applied only if its save
//! succeeds.

use std::sync::Arc;

use masqdial_server::config::Config;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::nat_control::{NatControl, NatError};
use masqdial_server::persist::{build_engine, DEFAULT_RULESET};

fn control(cfg: &Config) -> NatControl {
    let engine = build_engine(cfg).unwrap_or_else(|e| panic!("{e}"));
    NatControl::new(Arc::new(cfg.clone()), NatHandle::new(engine), None)
}

/// Before: one fixed temporary name and saves outside the engine lock made concurrent
/// admin changes fail with INTERNAL (rename of a file another save had already moved)
/// although they had been applied.
#[test]
fn concurrent_admin_changes_all_succeed_and_the_saved_file_has_them_all() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = Config::default();
    cfg.server.state_dir = dir.path().to_path_buf();
    let rules = dir.path().join("start.rules");
    std::fs::write(&rules, DEFAULT_RULESET).unwrap_or_else(|e| panic!("{e}"));
    cfg.nat.ruleset = Some(rules);
    let nat = control(&cfg);
    let before = nat.nat().lock().firewall().rule_count();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let nat = nat.clone();
            std::thread::spawn(move || {
                (0..25)
                    .filter(|i| {
                        let spec = format!("-s 10.{t}.{i}.0/24 -j DENY");
                        nat.append("input", &spec).is_err()
                    })
                    .count()
            })
        })
        .collect();
    let failed: usize = threads.into_iter().map(|t| t.join().unwrap_or(999)).sum();
    assert_eq!(failed, 0);
    let live = nat.nat().lock().firewall().save();
    assert_eq!(nat.nat().lock().firewall().rule_count(), before + 200);
    // What a restart would load is exactly what is live.
    let restarted = build_engine(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(restarted.firewall().save(), live);
}

/// Before: the rule stayed in force although the answer was an error.
#[test]
fn a_change_whose_save_fails_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = Config::default();
    cfg.server.state_dir = dir.path().to_path_buf();
    let nat = control(&cfg);
    // The state directory becomes a regular file: every save fails.
    let blocker = dir.path().join("state");
    std::fs::write(&blocker, "x").unwrap_or_else(|e| panic!("{e}"));
    let mut cfg2 = cfg.clone();
    cfg2.server.state_dir = blocker;
    let engine = build_engine(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let nat2 = NatControl::new(Arc::new(cfg2), NatHandle::new(engine), None);
    let saved_before = nat2.save_ruleset();
    let r = nat2.append("input", "-s 10.9.9.0/24 -j DENY");
    assert!(matches!(r, Err(NatError::Persist { .. })), "{r:?}");
    assert_eq!(nat2.save_ruleset(), saved_before);
    let t_before = nat2.timeouts();
    assert!(nat2.set_timeouts(1, 2, 3).is_err());
    assert_eq!(nat2.timeouts(), t_before);
    drop(nat);
}

/// Before: no cap; after 100k rules `ListChains` passed every client's 4 MiB limit.
#[test]
fn rules_and_chains_are_capped_and_a_refused_change_is_not_applied() {
    use masqdial_server::nat_control::{MAX_CHAINS, MAX_RULES};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = Config::default();
    cfg.server.state_dir = dir.path().to_path_buf();
    let nat = control(&cfg);
    // Fill up to the cap through a restore (one rule per line), then one more is refused.
    let start = nat.nat().lock().firewall().rule_count();
    let mut text = String::from(":input ACCEPT\n:forward ACCEPT\n:output ACCEPT\n");
    for i in 0..MAX_RULES {
        text.push_str(&format!(
            "-A input -s 10.{}.{}.0/24 -j DENY\n",
            i / 256,
            i % 256
        ));
    }
    assert_eq!(start, 0, "the default config has no rules");
    let (_, rules) = nat.apply_ruleset(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules as usize, MAX_RULES);
    match nat.append("forward", "-j MASQ") {
        Err(NatError::TooMany(m)) => assert_eq!(
            m,
            format!("too many rules: {} (at most {MAX_RULES} in all chains); delete or merge some first", MAX_RULES + 1)
        ),
        other => panic!("want TooMany, got {other:?}"),
    }
    assert_eq!(nat.nat().lock().firewall().rule_count(), MAX_RULES);
    // `-b` adds two rules: refused whole even with room for one.
    nat.delete_number("input", 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        nat.append("forward", "-b -s 1.2.3.4 -d 5.6.7.8 -j DENY"),
        Err(NatError::TooMany(_))
    ));
    assert_eq!(nat.nat().lock().firewall().rule_count(), MAX_RULES - 1);
    // What was saved is what is live (the refused change never reached the disk).
    let restarted = build_engine(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(restarted.firewall().rule_count(), MAX_RULES - 1);
    // A restore over the cap is refused before anything changes.
    text.push_str("-A output -j ACCEPT\n-A output -j ACCEPT\n");
    assert!(matches!(
        nat.apply_ruleset(&text),
        Err(NatError::TooMany(_))
    ));
    assert_eq!(nat.nat().lock().firewall().rule_count(), MAX_RULES - 1);

    // Chains: the three built-in ones count.
    nat.apply_ruleset(":input ACCEPT\n:forward ACCEPT\n:output ACCEPT\n")
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..MAX_CHAINS - 3 {
        nat.new_chain(&format!("c{i}"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    match nat.new_chain("onemore") {
        Err(NatError::TooMany(m)) => assert_eq!(
            m,
            format!(
                "too many chains: {} (at most {MAX_CHAINS}); delete unused ones with -X first",
                MAX_CHAINS + 1
            )
        ),
        other => panic!("want TooMany, got {other:?}"),
    }
    assert!(!nat.nat().lock().firewall().has_chain("onemore"));
}

/// Issue 12: `-m` and `-o` are parsed and listed (2.2 syntax) but would have no effect here,
/// so a new rule carrying them is refused with the reason, and nothing is applied or saved;
/// `-t` (TOS) is carried out, so it is accepted.
#[test]
fn rules_with_mark_or_netlink_copy_are_refused_and_not_applied() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = Config::default();
    cfg.server.state_dir = dir.path().to_path_buf();
    let nat = control(&cfg);
    let saved = nat.save_ruleset();
    let count = nat.nat().lock().firewall().rule_count();
    for (spec, why) in [
        (
            "-s 10.1.0.0/16 -j ACCEPT -m 5",
            "-m (set a firewall mark) is not supported: nothing in masqdial routes or matches by mark",
        ),
        (
            "-s 10.1.0.0/16 -j ACCEPT -o",
            "-o (copy packets to netlink) is not supported: masqdial has no netlink listener; use -l to log them",
        ),
    ] {
        for r in [
            nat.append("input", spec),
            nat.insert("input", 1, spec),
            nat.replace("input", 1, spec),
        ] {
            match r {
                Err(NatError::Invalid(m)) => assert_eq!(m, why, "{spec}"),
                other => panic!("{spec}: {other:?}"),
            }
        }
    }
    assert_eq!(nat.nat().lock().firewall().rule_count(), count);
    assert_eq!(nat.save_ruleset(), saved);
    nat.append("input", "-s 10.1.0.0/16 -j ACCEPT -t 0x01 0x10")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(nat.nat().lock().firewall().rule_count(), count + 1);
}
