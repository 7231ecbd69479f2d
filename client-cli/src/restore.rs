//! `mclient restore`: merging an ipchains-save file into the current ruleset, the dry-run
//! diff and the "forward would lose every MASQ rule" check.
//!
//! Pure: the caller fetches the current ruleset (SaveRuleset) and sends the merged text in
//! one ApplyRuleset, so the change stays atomic on the server. Both texts are parsed and
//! printed by nat-core (the server's own engine), so the diff compares canonical forms.

use nat_core::chains::Firewall;

/// One chain of ipchains-save text: its declaration and its `-A` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    name: String,
    /// The `:name policy` line, if the text has one.
    decl: Option<String>,
    rules: Vec<String>,
}

/// Chains in order of first mention.
fn chains(text: &str) -> Result<Vec<Chain>, String> {
    let mut out: Vec<Chain> = Vec::new();
    let at = |name: &str, out: &mut Vec<Chain>| -> usize {
        match out.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                out.push(Chain {
                    name: name.to_string(),
                    decl: None,
                    rules: Vec::new(),
                });
                out.len() - 1
            }
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(decl) = l.strip_prefix(':') {
            let name = decl.split_whitespace().next().unwrap_or("");
            if name.is_empty() {
                return Err(format!("line {}: a `:` line without a chain name", i + 1));
            }
            let k = at(name, &mut out);
            out[k].decl = Some(l.to_string());
        } else {
            let mut w = l.split_whitespace();
            match (w.next(), w.next()) {
                (Some("-A" | "--append"), Some(name)) => {
                    let k = at(name, &mut out);
                    out[k].rules.push(l.to_string());
                }
                _ => {
                    return Err(format!(
                        "line {}: `{l}` is neither `:chain POLICY` nor `-A chain …`",
                        i + 1
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// The result of planning a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The ruleset to send (canonical ipchains-save text).
    pub merged: String,
    /// Chains the file replaces.
    pub replaced: Vec<String>,
    /// Chains kept as they are.
    pub kept: Vec<String>,
    /// `-`/`+` lines from the current to the new ruleset (empty: no change).
    pub diff: Vec<String>,
    /// Whether forward has MASQ rules now and would have none afterwards.
    pub loses_masq: bool,
}

/// Parse and print through nat-core, so both sides of the diff use one canonical form.
fn canonical(text: &str) -> Result<String, String> {
    Firewall::from_saved(text)
        .map(|fw| fw.save())
        .map_err(|e| e.to_string())
}

/// Whether forward masquerades anything (a MASQ rule or a MASQ policy).
fn forward_masq(canonical_text: &str) -> bool {
    canonical_text.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            [":forward", "MASQ", ..] => true,
            ["-A", "forward", rest @ ..] => rest.windows(2).any(|p| p == ["-j", "MASQ"]),
            _ => false,
        }
    })
}

/// Plan restoring `file` over `current` (both ipchains-save text). Without `all`, chains the
/// file does not name keep their current declaration and rules.
pub fn plan(current: &str, file: &str, all: bool) -> Result<Plan, String> {
    let cur = chains(current)?;
    let new = chains(file)?;
    // Validate the file on its own first, so errors name the file's line numbers.
    canonical(file)?;
    let mut text = String::new();
    let mut replaced = Vec::new();
    let mut kept = Vec::new();
    let mut decls = Vec::new();
    let mut rules = Vec::new();
    if all {
        replaced = new.iter().map(|c| c.name.clone()).collect();
        for c in &new {
            decls.extend(c.decl.clone());
            rules.extend(c.rules.iter().cloned());
        }
    } else {
        for c in &cur {
            match new.iter().find(|n| n.name == c.name) {
                Some(n) => {
                    replaced.push(n.name.clone());
                    decls.extend(n.decl.clone().or_else(|| c.decl.clone()));
                    rules.extend(n.rules.iter().cloned());
                }
                None => {
                    kept.push(c.name.clone());
                    decls.extend(c.decl.clone());
                    rules.extend(c.rules.iter().cloned());
                }
            }
        }
        for n in new.iter().filter(|n| !cur.iter().any(|c| c.name == n.name)) {
            replaced.push(n.name.clone());
            decls.extend(n.decl.clone());
            rules.extend(n.rules.iter().cloned());
        }
    }
    for l in decls.iter().chain(rules.iter()) {
        text.push_str(l);
        text.push('\n');
    }
    let before = canonical(current)?;
    let merged = canonical(&text)?;
    Ok(Plan {
        diff: diff(&before, &merged),
        loses_masq: forward_masq(&before) && !forward_masq(&merged),
        merged,
        replaced,
        kept,
    })
}

/// Line diff (longest common subsequence): `-old` and `+new` lines, in order.
pub fn diff(a: &str, b: &str) -> Vec<String> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("-{}", a[i]));
            i += 1;
        } else {
            out.push(format!("+{}", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = ":input ACCEPT\n:forward DENY\n:output ACCEPT\n\
        -A input -s 192.168.0.0/16 -i ppp0 -j DENY\n\
        -A forward -s 192.168.1.0/24 -j MASQ\n";

    #[test]
    fn replaces_only_named_chains() {
        let p = plan(CURRENT, ":input DENY\n-A input -p tcp -j ACCEPT\n", false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.replaced, vec!["input".to_string()]);
        assert_eq!(p.kept, vec!["forward".to_string(), "output".to_string()]);
        assert!(!p.loses_masq);
        assert!(
            p.merged.contains("-A forward -s 192.168.1.0/24 -j MASQ"),
            "{}",
            p.merged
        );
        assert!(p.merged.contains(":input DENY"));
        assert!(!p.merged.contains("-i ppp0"));
        assert_eq!(
            p.diff,
            vec![
                "-:input ACCEPT".to_string(),
                "+:input DENY".to_string(),
                "--A input -s 192.168.0.0/16 -i ppp0 -j DENY".to_string(),
                "+-A input -p tcp -j ACCEPT".to_string(),
            ]
        );
    }

    #[test]
    fn all_replaces_everything_and_detects_lost_masq() {
        let p = plan(CURRENT, ":input ACCEPT\n", true).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.loses_masq);
        assert!(!p.merged.contains("MASQ"));
        // A file naming forward without MASQ loses it too, even without --all.
        let p = plan(CURRENT, ":forward ACCEPT\n", false).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.loses_masq);
        // Rules without a `:` line keep the current policy.
        let p = plan(CURRENT, "-A forward -s 10.0.0.0/8 -j MASQ\n", false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.loses_masq);
        assert!(p.merged.contains(":forward DENY"));
        assert!(!p.merged.contains("192.168.1.0/24 -j MASQ"));
    }

    #[test]
    fn identical_restore_has_empty_diff_and_new_chains_append() {
        let p = plan(CURRENT, CURRENT, false).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.diff.is_empty());
        let p =
            plan(CURRENT, ":mine -\n-A mine -j ACCEPT\n", false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.replaced, vec!["mine".to_string()]);
        assert_eq!(
            p.diff,
            vec!["+:mine -".to_string(), "+-A mine -j ACCEPT".to_string()]
        );
    }

    #[test]
    fn bad_lines_name_their_number() {
        let e = plan(CURRENT, ":input ACCEPT\nbogus\n", false).err();
        assert_eq!(
            e.as_deref(),
            Some("line 2: `bogus` is neither `:chain POLICY` nor `-A chain …`")
        );
        let e = plan(CURRENT, "-A input -p tcp --frob\n", false).err();
        assert!(e.is_some_and(|e| e.starts_with("line 1: ")));
    }

    #[test]
    fn diff_is_minimal() {
        assert_eq!(diff("a\nb\nc\n", "a\nc\nd\n"), vec!["-b", "+d"]);
        assert!(diff("", "").is_empty());
    }
}
