//! Firewall commands: `ipchains`, `save`, `restore`, `counters`, and the mapping of failures
//! to ipchains' own exit codes ([`ipchains_exit`]).
//!
//! Must not touch the session's token store, links or modems; rule text is parsed by
//! `crate::ipchains` and the restore plan comes from `crate::restore`.

use crate::errors::{Failure, Kind};
use crate::format;
use crate::ipchains::{self, Op};
use crate::json as j;
use crate::run::Session;
use anyhow::Context as _;
use masqdial_proto::v1 as pb;
use serde_json::{json, Value};
use std::io::Read;

impl Session {
    pub(crate) async fn ipchains(&mut self, args: &[String]) -> anyhow::Result<()> {
        // Names in -s/-d are resolved here, once, off the async threads (DNS may block).
        let owned = args.to_vec();
        let parsed =
            tokio::task::spawn_blocking(move || ipchains::parse(&owned, &ipchains::SystemResolver))
                .await
                .context("the ipchains parser stopped")?
                .map_err(|e| {
                    Failure::usage(
                e.to_string(),
                "Try `mclient ipchains -h' or `mclient ipchains --help' for more information",
            )
                })?;
        let verbose = parsed.verbose;
        // What ipchains printed on stdout, in its order: TOS warnings, then per rule the -v
        // echo (FMT_PRINT_RULE) and, for -C, the verdict.
        let mut out = String::new();
        for w in &parsed.warnings {
            out.push_str(w);
            out.push('\n');
        }
        let echo = |out: &mut String, r: &nat_core::chains::Rule| {
            if verbose {
                out.push_str(&r.verbose_line());
            }
        };
        if let Op::Text(text) = &parsed.op {
            out.push_str(text);
            self.emit(&out, json!({ "text": out }));
            return Ok(());
        }
        let mut c = self.clients().await?;
        let n = &mut c.nat;
        let changed = |r: pb::RuleChangeResponse| -> Value {
            let v: Vec<Value> = r.chains.iter().map(j::chain).collect();
            json!({"chains": v})
        };
        // ipchains went on through every rule of a command and reported the last refusal.
        let mut refused: Option<anyhow::Error> = None;
        let mut last = Value::Null;
        let v = match parsed.op {
            Op::Text(_) => Value::Null,
            Op::Append { chain, rules } => {
                for r in &rules {
                    echo(&mut out, r);
                    let req = pb::AppendRuleRequest {
                        chain: chain.clone(),
                        spec: ipchains::rule_spec(r),
                    };
                    match n.append_rule(req).await {
                        Ok(a) => last = changed(a.into_inner()),
                        Err(e) => refused = Some(e.into()),
                    }
                }
                last
            }
            Op::Insert {
                chain,
                number,
                rules,
            } => {
                for r in &rules {
                    echo(&mut out, r);
                    let req = pb::InsertRuleRequest {
                        chain: chain.clone(),
                        number,
                        spec: ipchains::rule_spec(r),
                    };
                    match n.insert_rule(req).await {
                        Ok(a) => last = changed(a.into_inner()),
                        Err(e) => refused = Some(e.into()),
                    }
                }
                last
            }
            Op::Replace {
                chain,
                number,
                rule,
            } => {
                echo(&mut out, &rule);
                changed(
                    n.replace_rule(pb::ReplaceRuleRequest {
                        chain,
                        number,
                        spec: ipchains::rule_spec(&rule),
                    })
                    .await?
                    .into_inner(),
                )
            }
            Op::DeleteNumber { chain, number } => changed(
                n.delete_rule(pb::DeleteRuleRequest {
                    chain,
                    which: Some(pb::delete_rule_request::Which::Number(number)),
                })
                .await?
                .into_inner(),
            ),
            Op::DeleteSpec { chain, rules } => {
                for r in &rules {
                    echo(&mut out, r);
                    let req = pb::DeleteRuleRequest {
                        chain: chain.clone(),
                        which: Some(pb::delete_rule_request::Which::Spec(ipchains::rule_spec(r))),
                    };
                    match n.delete_rule(req).await {
                        Ok(a) => last = changed(a.into_inner()),
                        Err(e) => refused = Some(e.into()),
                    }
                }
                last
            }
            op @ (Op::Flush { .. } | Op::Zero { .. } | Op::DeleteChain { .. }) => {
                let (verb, chain) = match &op {
                    Op::Flush { chain } => ("Flushing", chain.clone()),
                    Op::Zero { chain } => ("Zeroing", chain.clone()),
                    Op::DeleteChain { chain } => ("Deleting", chain.clone()),
                    _ => ("", String::new()),
                };
                if verbose {
                    // ipchains -v names each chain it works on (every chain, or every user
                    // chain for -X, when none is given).
                    let names: Vec<String> = if chain.is_empty() {
                        let all = n
                            .list_chains(pb::ListChainsRequest {
                                chain: String::new(),
                            })
                            .await?
                            .into_inner()
                            .chains;
                        let skip = if verb == "Deleting" { 3 } else { 0 };
                        all.into_iter().skip(skip).map(|c| c.name).collect()
                    } else {
                        vec![chain.clone()]
                    };
                    for name in names {
                        out.push_str(&format!("{verb} chain `{name}'\n"));
                    }
                }
                let r = match op {
                    Op::Flush { chain } => n.flush_chain(pb::FlushChainRequest { chain }).await,
                    Op::Zero { chain } => n.zero_counters(pb::ZeroCountersRequest { chain }).await,
                    _ => n.delete_chain(pb::DeleteChainRequest { chain }).await,
                };
                match r {
                    Ok(a) => changed(a.into_inner()),
                    Err(e) => {
                        refused = Some(e.into());
                        Value::Null
                    }
                }
            }
            Op::NewChain { chain } => changed(
                n.new_chain(pb::NewChainRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::Policy { chain, target } => changed(
                n.set_policy(pb::SetPolicyRequest { chain, target })
                    .await?
                    .into_inner(),
            ),
            Op::Check { chain, packets } => {
                let mut verdicts = Vec::new();
                for pk in &packets {
                    echo(&mut out, pk);
                    let r = n
                        .check_packet(pb::CheckPacketRequest {
                            chain: chain.clone(),
                            spec: ipchains::check_spec(pk),
                        })
                        .await?
                        .into_inner();
                    out.push_str(&format!("packet {}\n", r.verdict));
                    verdicts.push(r.verdict);
                }
                match &verdicts[..] {
                    [one] => json!({ "verdict": one }),
                    _ => json!({ "verdict": verdicts.first(), "verdicts": verdicts }),
                }
            }
            Op::List {
                chain,
                numeric,
                verbose,
                exact,
                line_numbers,
                zero,
            } => {
                let chains = if self.json {
                    n.list_chains(pb::ListChainsRequest {
                        chain: chain.clone(),
                    })
                    .await?
                    .into_inner()
                    .chains
                } else {
                    let r = n
                        .render_view(pb::RenderViewRequest {
                            view: pb::View::Chains as i32,
                            chain: chain.clone(),
                            numeric,
                            verbose,
                            exact,
                            line_numbers,
                            masq_filter: None,
                        })
                        .await?
                        .into_inner();
                    out.push_str(&r.text);
                    Vec::new()
                };
                if zero {
                    n.zero_counters(pb::ZeroCountersRequest { chain }).await?;
                }
                let v: Vec<Value> = chains.iter().map(j::chain).collect();
                json!({"chains": v})
            }
            Op::MasqList { numeric, verbose } => {
                if self.json {
                    let entries = self.masq_entries().await?;
                    let v: Vec<Value> = entries.iter().map(j::masq_entry).collect();
                    json!({"entries": v})
                } else {
                    let r = n
                        .render_view(pb::RenderViewRequest {
                            view: pb::View::Masq as i32,
                            chain: String::new(),
                            numeric,
                            verbose,
                            exact: false,
                            line_numbers: false,
                            masq_filter: None,
                        })
                        .await?
                        .into_inner();
                    out.push_str(&r.text);
                    Value::Null
                }
            }
            Op::MasqSet { tcp, tcpfin, udp } => {
                let t = n
                    .set_timeouts(pb::Timeouts {
                        tcp,
                        tcpfin,
                        udp,
                        icmp: 0,
                    })
                    .await?
                    .into_inner();
                j::timeouts(&t)
            }
        };
        if let Some(e) = refused {
            // What was printed before the refusal stays printed, as with ipchains.
            if !out.is_empty() && !self.json {
                print!("{}", crate::safe::block(&out));
            }
            return Err(e);
        }
        self.emit(&out, v);
        Ok(())
    }

    pub(crate) async fn save(&mut self, file: Option<&std::path::Path>) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .nat
            .save_ruleset(pb::SaveRulesetRequest {})
            .await?
            .into_inner();
        match file {
            Some(f) => {
                std::fs::write(f, &r.ruleset)
                    .with_context(|| format!("cannot write {}", f.display()))?;
                self.emit(
                    &format!("saved to {}", f.display()),
                    json!({"file": f.display().to_string(), "ruleset": r.ruleset}),
                );
            }
            None => self.emit(&r.ruleset, json!({"file": null, "ruleset": r.ruleset})),
        }
        Ok(())
    }

    pub(crate) async fn restore(
        &mut self,
        file: &str,
        all: bool,
        dry_run: bool,
        force: bool,
    ) -> anyhow::Result<()> {
        let text = if file == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the ruleset from stdin")?;
            s
        } else {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
        };
        let mut c = self.clients().await?;
        let current = c
            .nat
            .save_ruleset(pb::SaveRulesetRequest {})
            .await?
            .into_inner()
            .ruleset;
        let plan = crate::restore::plan(&current, &text, all).map_err(|e| {
            Failure::new(
                Kind::Invalid,
                format!("{file}: {e}"),
                Some("the file must be ipchains-save text (`mclient save` writes it)".into()),
            )
        })?;
        let diff_text: String = plan.diff.iter().map(|l| format!("{l}\n")).collect();
        if dry_run {
            let human = if plan.diff.is_empty() {
                "no change\n".to_string()
            } else {
                diff_text
            };
            let human = if plan.loses_masq {
                format!("{human}warning: forward would lose every MASQ rule\n")
            } else {
                human
            };
            self.emit(
                &human,
                json!({"dry_run": true, "replaced": plan.replaced, "kept": plan.kept,
                       "diff": plan.diff, "loses_masq": plan.loses_masq,
                       "chains": null, "rules": null}),
            );
            return Ok(());
        }
        if plan.loses_masq && !force {
            return Err(Failure::new(
                Kind::NotNow,
                "this restore would leave forward without any MASQ rule, so the LAN would lose masquerading",
                Some("check with `mclient restore --dry-run FILE`, then add --force if that is what you want".into()),
            )
            .into());
        }
        let r = c
            .nat
            .apply_ruleset(pb::ApplyRulesetRequest {
                ruleset: plan.merged.clone(),
            })
            .await?
            .into_inner();
        if plan.loses_masq && !self.json {
            eprintln!("mclient: warning: forward has no MASQ rule any more (--force)");
        }
        let kept = if plan.kept.is_empty() {
            String::new()
        } else {
            format!("; kept {}", plan.kept.join(", "))
        };
        self.emit(
            &format!(
                "restored {} ({} chains, {} rules in the ruleset){kept}",
                plan.replaced.join(", "),
                r.chains,
                r.rules
            ),
            json!({"dry_run": false, "replaced": plan.replaced, "kept": plan.kept,
                   "diff": plan.diff, "loses_masq": plan.loses_masq,
                   "chains": r.chains, "rules": r.rules}),
        );
        Ok(())
    }

    pub(crate) async fn counters(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .nat
            .get_counters(pb::GetCountersRequest {})
            .await?
            .into_inner();
        let mut kv: Vec<(String, u64)> = r.counters.into_iter().collect();
        kv.sort();
        let rows: Vec<Vec<String>> = kv
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect();
        let m: serde_json::Map<String, Value> =
            kv.into_iter().map(|(k, v)| (k, json!(v))).collect();
        self.emit(
            &format::table(&["COUNTER", "VALUE"], &rows),
            json!({"counters": m}),
        );
        Ok(())
    }
}

/// ipchains' own exit codes for `mclient ipchains`: 2 for a parameter problem, 1 for any
/// other refusal; not logged in (3) and unreachable (8) keep theirs.
pub fn ipchains_exit(f: Failure) -> Failure {
    let kind = match f.kind {
        Kind::Usage | Kind::Invalid => Kind::Usage,
        Kind::NotLoggedIn | Kind::Unreachable => f.kind,
        _ => Kind::Local,
    };
    Failure { kind, ..f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipchains_mode_uses_ipchains_exit_codes() {
        let f = |k: Kind| ipchains_exit(Failure::new(k, "x", None)).exit_code();
        assert_eq!(f(Kind::Usage), 2);
        assert_eq!(f(Kind::Invalid), 2);
        assert_eq!(f(Kind::NotFound), 1);
        assert_eq!(f(Kind::NotNow), 1);
        assert_eq!(f(Kind::Denied), 1);
        assert_eq!(f(Kind::NotLoggedIn), 3);
        assert_eq!(f(Kind::Unreachable), 8);
    }
}
