//! Shared client code for `mclient` and `mtui`: connection, token store, output formatting,
//! and mclient's command grammar, runner and shell.
//!
//! # Layout
//! - [`store`]: the token store (`tokens.toml`, mode 0600) shared by mclient and mtui.
//! - [`conn`]: channel setup (http/https, CA file), bearer-token interceptor, typed clients.
//! - [`format`](mod@format): rendering helpers (expiry `mm:ss.hh`, byte counts, durations, tables).
//! - [`cli`]: the one clap grammar used by one-shot commands and the shell; exit-code table.
//! - [`ipchains`]: `mclient ipchains ARGS…` parsing onto the Nat rpcs.
//! - [`run`]: executing a parsed command against the server.
//! - [`shell`]: the rustyline shell.
//!
//! Nothing here logs or prints a password or token.

pub mod cli;
pub mod conn;
pub mod format;
pub mod ipchains;
pub mod run;
pub mod shell;
pub mod store;
