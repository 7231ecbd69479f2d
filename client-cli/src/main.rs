//! `mclient`: thin entry point; grammar, commands and shell live in the library.

use std::process::ExitCode;

use clap::Parser;
use masqdial_cli::cli::{exit_code, Cli, Command};
use masqdial_cli::run::Session;
use masqdial_cli::store::TokenStore;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mclient: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mclient: {e:#}");
            let code = exit_code(&e);
            if code == 3 {
                eprintln!("hint: run `mclient login` (token missing, expired or revoked)");
            }
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let store = match std::env::var_os("MCLIENT_TOKEN_FILE") {
        Some(p) => TokenStore::at(p.into()),
        None => TokenStore::open_default()?,
    };
    let mut session = Session::new(cli.opts, store);
    match cli.command {
        None | Some(Command::Shell) => masqdial_cli::shell::run(&mut session).await,
        Some(cmd) => session.execute(&cmd).await,
    }
}
