//! ipchains firewall chains (owned by helper nat2; placeholder until filled).
