//! IPv4 reassembly (owned by helper nat2; placeholder until filled).
