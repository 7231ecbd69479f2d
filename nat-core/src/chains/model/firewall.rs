//! The [`Firewall`]: every chain with its counters and the ipchains operations on it
//! (`-A -I -R -D -F -Z -N -X -P`) with the kernel's reference counts and errors. Must not parse,
//! render or walk (see `syntax`, `render`, `matching`) nor see packet bytes.

use super::*;

/// The whole ipchains state: built-in chains `input`, `forward`, `output` (in that order) then user
/// chains in creation order, with counters.
#[derive(Clone, Debug)]
pub struct Firewall {
    pub(crate) chains: Vec<Chain>,
    pub(crate) stats: Vec<ChainStats>,
    /// Per-chain return frames used by the walk (the kernel's `reent[slot]`), all idle between calls.
    pub(crate) frames: Vec<Frame>,
    /// Packets dropped because the walk detected a loop.
    pub(crate) loops: u64,
}

impl Default for Firewall {
    fn default() -> Self {
        Self::new()
    }
}

impl Firewall {
    /// `input`, `forward`, `output`, each with policy ACCEPT and reference count 1.
    pub fn new() -> Self {
        let mk = |n: &str| Chain {
            name: n.to_string(),
            policy: Some(Policy::Accept),
            entries: Vec::new(),
            refcount: 1,
        };
        Firewall {
            chains: vec![mk("input"), mk("forward"), mk("output")],
            stats: vec![ChainStats::default(); 3],
            frames: vec![Frame::IDLE; 3],
            loops: 0,
        }
    }

    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.chains.iter().position(|c| c.name == name)
    }

    fn find_or_err(&self, name: &str) -> Result<usize, ChainError> {
        self.find(name).ok_or(ChainError::NoChain)
    }

    /// Names of all chains in kernel order.
    pub fn chain_names(&self) -> Vec<String> {
        self.chains.iter().map(|c| c.name.clone()).collect()
    }

    /// Whether a chain exists.
    pub fn has_chain(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The rules of a chain, in order.
    pub fn rules(&self, chain: &str) -> Result<Vec<Rule>, ChainError> {
        let c = self.find_or_err(chain)?;
        Ok(self.chains[c]
            .entries
            .iter()
            .map(|e| (*e.rule).clone())
            .collect())
    }

    /// A chain's policy (`None` for user chains).
    pub fn policy(&self, chain: &str) -> Result<Option<Policy>, ChainError> {
        Ok(self.chains[self.find_or_err(chain)?].policy)
    }

    /// A rule's counters (1-based rule number).
    pub fn rule_counters(&self, chain: &str, num: usize) -> Result<Counter, ChainError> {
        let c = self.find_or_err(chain)?;
        num.checked_sub(1)
            .and_then(|i| self.stats[c].rules.get(i).copied())
            .ok_or(ChainError::BadRule)
    }

    /// A chain's policy counters.
    pub fn policy_counters(&self, chain: &str) -> Result<Counter, ChainError> {
        Ok(self.stats[self.find_or_err(chain)?].policy)
    }

    /// A chain's reference count (built-ins: 1).
    pub fn references(&self, chain: &str) -> Result<u32, ChainError> {
        Ok(self.chains[self.find_or_err(chain)?].refcount)
    }

    /// Packets dropped because a run-time loop was detected ("Loop detected at ...").
    pub fn loops_detected(&self) -> u64 {
        self.loops
    }

    /// Total number of rules in all chains.
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.entries.len()).sum()
    }

    /// ipchains' userspace checks that depend on the chain (done before the kernel call).
    fn check_for_chain(chain: &str, rule: &Rule) -> Result<(), ChainError> {
        if chain.len() > MAX_LABEL_LEN {
            return Err(ChainError::ChainNameTooLong(chain.to_string()));
        }
        if rule.target == Target::Redirect
            && ((rule.proto != PROTO_TCP && rule.proto != PROTO_UDP) || rule.inv(IP_FW_INV_PROTO))
        {
            return Err(ChainError::RedirectProto);
        }
        if rule.target == Target::Masq && (chain == "input" || chain == "output") {
            return Err(ChainError::MasqNotAllowed);
        }
        if rule.target == Target::Redirect && (chain == "output" || chain == "forward") {
            return Err(ChainError::RedirectNotAllowed);
        }
        Ok(())
    }

    /// The kernel's `convert_ipfw` target resolution.
    fn resolve(&self, rule: &Rule) -> Result<Action, ChainError> {
        Ok(match &rule.target {
            Target::None => Action::Skip,
            Target::Accept => Action::Accept,
            Target::Deny => Action::Deny,
            Target::Reject => Action::Reject,
            Target::Masq => Action::Masq,
            Target::Redirect => Action::Redirect(rule.redirect_port),
            Target::Return => Action::Return,
            Target::Chain(name) => {
                let idx = self.find(name).ok_or(ChainError::NoTarget)?;
                if idx < 3 {
                    // "Can't branch to builtin chain" (ENOENT).
                    return Err(ChainError::NoTarget);
                }
                Action::Jump(idx as u32)
            }
        })
    }

    fn normalize(rule: &Rule) -> Rule {
        let mut r = rule.clone();
        // "Handle empty vianame by making it a wildcard".
        if r.iface.is_empty() {
            r.iface_wildcard = true;
        }
        r
    }

    fn inc_ref(&mut self, action: Action) {
        if let Action::Jump(t) = action {
            self.chains[t as usize].refcount += 1;
        }
    }

    fn dec_ref(&mut self, action: Action) {
        if let Action::Jump(t) = action {
            let c = &mut self.chains[t as usize];
            c.refcount = c.refcount.saturating_sub(1);
        }
    }

    fn prepare(&self, chain: &str, rule: &Rule) -> Result<(usize, Entry), ChainError> {
        Self::check_for_chain(chain, rule)?;
        let c = self.find_or_err(chain)?;
        let rule = Self::normalize(rule);
        let action = self.resolve(&rule)?;
        let effects = rule.log
            || rule.tos_and != 0xFF
            || rule.tos_xor != 0
            || rule.mark_absolute
            || rule.mark != 0;
        Ok((
            c,
            Entry {
                matcher: Matcher::new(&rule),
                action,
                effects,
                rule: Box::new(rule),
            },
        ))
    }

    /// `-A chain`: append a rule.
    pub fn append(&mut self, chain: &str, rule: &Rule) -> Result<(), ChainError> {
        let (c, e) = self.prepare(chain, rule)?;
        self.inc_ref(e.action);
        self.chains[c].entries.push(e);
        self.stats[c].rules.push(Counter::default());
        Ok(())
    }

    /// `-I chain [num]`: insert a rule at 1-based position `num` (1..=len+1).
    pub fn insert(&mut self, chain: &str, num: usize, rule: &Rule) -> Result<(), ChainError> {
        let (c, e) = self.prepare(chain, rule)?;
        let len = self.chains[c].entries.len();
        if num == 0 || num > len + 1 {
            return Err(ChainError::BadRule);
        }
        self.inc_ref(e.action);
        self.chains[c].entries.insert(num - 1, e);
        self.stats[c].rules.insert(num - 1, Counter::default());
        Ok(())
    }

    /// `-R chain num`: replace rule `num` (its counters restart at zero, as in the kernel's memcpy).
    pub fn replace(&mut self, chain: &str, num: usize, rule: &Rule) -> Result<(), ChainError> {
        let (c, e) = self.prepare(chain, rule)?;
        if num == 0 || num > self.chains[c].entries.len() {
            return Err(ChainError::BadRule);
        }
        let old = self.chains[c].entries[num - 1].action;
        self.dec_ref(old);
        self.inc_ref(e.action);
        self.chains[c].entries[num - 1] = e;
        self.stats[c].rules[num - 1] = Counter::default();
        Ok(())
    }

    /// `-D chain num`: delete rule `num`.
    pub fn delete_num(&mut self, chain: &str, num: usize) -> Result<(), ChainError> {
        if chain.len() > MAX_LABEL_LEN {
            return Err(ChainError::ChainNameTooLong(chain.to_string()));
        }
        let c = self.find_or_err(chain)?;
        if num == 0 || num > self.chains[c].entries.len() {
            return Err(ChainError::BadRule);
        }
        let e = self.chains[c].entries.remove(num - 1);
        self.stats[c].rules.remove(num - 1);
        self.dec_ref(e.action);
        Ok(())
    }

    /// `-D chain spec`: delete the first rule equal to `rule` (kernel comparison: mark and TOS ignored).
    pub fn delete_rule(&mut self, chain: &str, rule: &Rule) -> Result<(), ChainError> {
        // libipfwc reports ENOENT from a delete as "No chain by that name", whatever was missing.
        let (c, e) = self.prepare(chain, rule).map_err(|e| match e {
            ChainError::NoTarget => ChainError::NoChain,
            other => other,
        })?;
        let pos = self.chains[c]
            .entries
            .iter()
            .position(|x| x.rule.kernel_eq(&e.rule))
            .ok_or(ChainError::BadRule)?;
        self.delete_num(chain, pos + 1)
    }

    /// `-F [chain]`: delete all rules of one chain, or of every chain.
    pub fn flush(&mut self, chain: Option<&str>) -> Result<(), ChainError> {
        let targets: Vec<usize> = match chain {
            Some(n) => vec![self.find_or_err(n)?],
            None => (0..self.chains.len()).collect(),
        };
        for c in targets {
            let entries = std::mem::take(&mut self.chains[c].entries);
            for e in entries {
                self.dec_ref(e.action);
            }
            self.stats[c].rules.clear();
        }
        Ok(())
    }

    /// `-Z [chain]`: zero the rule counters of one chain or all (the kernel leaves policy counters).
    pub fn zero(&mut self, chain: Option<&str>) -> Result<(), ChainError> {
        match chain {
            Some(n) => {
                let c = self.find_or_err(n)?;
                self.stats[c].rules.fill(Counter::default());
            }
            None => {
                for s in &mut self.stats {
                    s.rules.fill(Counter::default());
                }
            }
        }
        Ok(())
    }

    /// `-N chain`: create a user chain.
    pub fn new_chain(&mut self, name: &str) -> Result<(), ChainError> {
        if name.len() > MAX_LABEL_LEN {
            return Err(ChainError::ChainNameTooLong(name.to_string()));
        }
        if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
            return Err(ChainError::InvalidLabel);
        }
        if self.find(name).is_some() {
            return Err(ChainError::ChainExists);
        }
        self.chains.push(Chain {
            name: name.to_string(),
            policy: None,
            entries: Vec::new(),
            refcount: 0,
        });
        self.stats.push(ChainStats::default());
        self.frames.push(Frame::IDLE);
        Ok(())
    }

    fn delete_one_chain(&mut self, name: &str) -> Result<(), ChainError> {
        if name.len() > MAX_LABEL_LEN {
            return Err(ChainError::ChainNameTooLong(name.to_string()));
        }
        let c = self.find_or_err(name)?;
        if c < 3 || self.chains[c].refcount > 0 {
            return Err(ChainError::ChainBusy);
        }
        if !self.chains[c].entries.is_empty() {
            return Err(ChainError::ChainNotEmpty);
        }
        self.chains.remove(c);
        self.stats.remove(c);
        self.frames.remove(c);
        // Re-resolve jump indices above the removed chain.
        let removed = c as u32;
        for ch in &mut self.chains {
            for e in &mut ch.entries {
                if let Action::Jump(t) = &mut e.action {
                    if *t > removed {
                        *t -= 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// `-X [chain]`: delete a user chain (must be empty and unreferenced); with `None`, try every user
    /// chain in order as ipchains does, deleting those that can go and returning the last error.
    pub fn delete_chain(&mut self, name: Option<&str>) -> Result<(), ChainError> {
        match name {
            Some(n) => self.delete_one_chain(n),
            None => {
                let names: Vec<String> = self.chains[3..].iter().map(|c| c.name.clone()).collect();
                let mut result = Ok(());
                for n in names {
                    if let Err(e) = self.delete_one_chain(&n) {
                        result = Err(e);
                    }
                }
                result
            }
        }
    }

    /// `-P chain policy`: set a built-in chain's policy (ipchains `parse_policy` checks, then the kernel's).
    pub fn set_policy(&mut self, chain: &str, policy: &str) -> Result<(), ChainError> {
        if policy == "MASQ" {
            if chain != "forward" {
                return Err(ChainError::MasqPolicy);
            }
        } else {
            if chain != "input" && chain != "output" && chain != "forward" {
                return Err(ChainError::PolicyNotBuiltin);
            }
            if policy != "ACCEPT" && policy != "DENY" && policy != "REJECT" {
                return Err(ChainError::InvalidPolicy(policy.to_string()));
            }
        }
        let p = Policy::from_label(policy)
            .ok_or_else(|| ChainError::InvalidPolicy(policy.to_string()))?;
        let c = self.find_or_err(chain)?;
        self.chains[c].policy = Some(p);
        Ok(())
    }
}
