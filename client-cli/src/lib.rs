//! Shared client code for `mclient` and `mtui`: settings, connection, token store, output
//! formatting, errors, and mclient's command grammar, runner and shell.
//!
//! # Layout
//! - [`config`]: settings from options, `MASQDIAL_*` environment and `client.toml`.
//! - [`url`]: server URL parsing and the normalised token-store key (a leaf).
//! - [`store`]: the token store (`tokens.toml`, mode 0600), one token per (server, user),
//!   shared by mclient and mtui.
//! - [`conn`]: channel setup (http/https, CA file), bearer-token interceptor, typed clients.
//! - [`errors`]: any failure → one plain sentence, a next step and an exit code.
//! - [`format`](mod@format): rendering helpers shared with mtui (`2.3K`, `0:00:19`, expiry
//!   `mm:ss.hh`, RFC 3339, tables).
//! - [`json`]: the `--json` shapes (documented in `client-cli/JSON.md`).
//! - [`cli`]: the one clap grammar used by one-shot commands and the shell; exit-code table.
//! - [`ipchains`]: `mclient ipchains ARGS…` parsing onto the Nat rpcs.
//! - [`restore`]: merging an ipchains-save file into the current ruleset (`restore`).
//! - [`run`]: the runner: the session, the dispatch of a parsed command, error wording.
//! - [`cmd`]: the commands, one module per family (session, dialer, modems, nat, ipchains).
//! - [`shell`]: the rustyline shell.
//! - [`safe`]: terminal-safe escaping of remote-controlled text (used by mclient and mtui).
//!
//! Nothing here logs or prints a password or token.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod errors;
pub mod format;
pub mod ipchains;
pub mod json;
pub mod rdns;
pub mod restore;
pub mod run;
pub mod safe;
pub mod shell;
pub mod store;
pub mod url;
pub mod words;
