//! The commands of mclient, one module per family (mini-redis's `cmd/` shape): each adds its
//! commands to [`Session`](crate::run::Session) as `impl Session` methods.
//!
//! The runner stays in `crate::run`: the `Session` struct (settings, token store, lazily
//! opened channel), error wording and the dispatch from a parsed command to these methods.
//! A command module must not dispatch, open channels itself (it asks `Session::clients`;
//! only `watch` drops the channel to reconnect) or print other than through `Session::emit`;
//! the one call across modules is `ipchains -M -L` reading the table via `nat`'s
//! `masq_entries`.

pub mod dialer;
pub mod ipchains;
pub mod modems;
pub mod nat;
pub mod session;
