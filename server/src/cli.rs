//! `mserver`'s command line (clap): parsed by the binary, rendered into mserver(8) by the
//! packaging tool. Owns argument definitions only; what each command does is elsewhere.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

/// The masqdial dial-out gateway.
///
/// mserver owns the modems, dials connections on request (gRPC, port 224), runs PPP in
/// userspace and masquerades the LAN over the link with an ipchains-compatible engine.
/// Without a subcommand it serves until SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "mserver", version)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "/etc/masqdial/mserver.toml"
    )]
    pub config: PathBuf,
    /// Listen address, overriding `[server] listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Run the built-in demo on loopback (ignores --config).
    #[arg(long)]
    pub demo: bool,
    /// Move the saved rules and timeouts of `state_dir` aside (kept as `*.rejected-TIME`) and
    /// start from the configured `[nat] ruleset`; needed when a saved file is refused.
    #[arg(long)]
    pub reset_state: bool,
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `mserver` subcommands (none: serve).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a password (no echo on a terminal, else one line of stdin) and print its
    /// argon2id PHC string for `password_hash`.
    HashPassword,
    /// Write a first configuration to --config (the example, with a fresh admin password
    /// printed once) and the default ruleset next to it; never overwrites.
    Init,
    /// Check --config as the service would load it (configuration, ruleset, TLS files) and
    /// exit: 0 when it is good, 78 (EX_CONFIG) with the reason otherwise.
    CheckConfig,
    /// Make a private CA and a server certificate for the LAN in --dir, and print the
    /// CA's fingerprint and the settings for the server and the clients.
    GenCert {
        /// Directory for ca.pem, ca-key.pem, cert.pem and key.pem.
        #[arg(long, default_value = "/etc/masqdial/tls")]
        dir: PathBuf,
        /// Host name or IP address clients use for this server (repeatable); default: the
        /// host name, localhost and the host's addresses.
        #[arg(long = "name", value_name = "NAME|IP")]
        names: Vec<String>,
        /// Validity of the server certificate, days.
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
}

/// The clap command (for man pages and completions).
pub fn command() -> clap::Command {
    Cli::command()
}
