//! `mtui`'s command line (clap): parsed by the binary, rendered into mtui(1) by the packaging
//! tool. Owns argument definitions only.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

/// Live dashboard of masqdial links and masqueraded sessions.
///
/// The server, user, CA and token file come from the options, else the environment
/// (`MASQDIAL_SERVER`, `MASQDIAL_USER`, `MASQDIAL_CA`, `MASQDIAL_TOKEN_FILE`), else the client
/// configuration file shared with mclient (`~/.config/masqdial/client.toml`, or
/// `MASQDIAL_CONFIG`; `mclient login --server URL` records the default server there), else
/// `http://127.0.0.1:224`. A login saved by mclient for the same server and user is reused;
/// `MASQDIAL_PASSWORD` is tried once when none works.
#[derive(Parser, Debug)]
#[command(name = "mtui", version)]
pub struct Args {
    /// Server URL (default: see above).
    #[arg(long)]
    pub server: Option<String>,
    /// User to log in as (a stored token of another user is not used).
    #[arg(long, short)]
    pub user: Option<String>,
    /// Draw without colours (also when NO_COLOR is set).
    #[arg(long)]
    pub no_color: bool,
    /// Redraw period for countdowns and lights, milliseconds (50..=5000).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(50..=5000))]
    pub tick_ms: u64,
    /// Token store file instead of the default one.
    #[arg(long)]
    pub token_store: Option<PathBuf>,
    /// CA certificate (PEM) for an https server.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Ask for the password (in the dashboard) even if a token is stored.
    #[arg(long)]
    pub login: bool,
    /// Allow sending a password over plain http:// to a host that is not loopback (the
    /// same rule as mclient's --insecure).
    #[arg(long)]
    pub insecure: bool,
}

/// The clap command (for the man page).
pub fn command() -> clap::Command {
    Args::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn server_is_optional_so_the_config_file_can_supply_it() {
        let a = Args::try_parse_from(["mtui"]).map_err(|e| e.to_string());
        assert!(matches!(a, Ok(Args { server: None, .. })), "{a:?}");
        let a = Args::try_parse_from(["mtui", "--server", "http://gw:224", "-u", "bob"])
            .map_err(|e| e.to_string());
        match a {
            Ok(a) => {
                assert_eq!(a.server.as_deref(), Some("http://gw:224"));
                assert_eq!(a.user.as_deref(), Some("bob"));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
