//! `mclient`: thin entry point; grammar, commands and shell live in the library.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use masqdial_cli::cli::{usage_failure, Cli, Command};
use masqdial_cli::config::{Overrides, Settings};
use masqdial_cli::errors::{Failure, Kind};
use masqdial_cli::run::Session;

fn main() -> ExitCode {
    let json_requested = std::env::args().any(|a| a == "--json");
    let report = |f: &Failure, json: bool| {
        if json {
            println!("{}", f.json());
        } else {
            eprint!("{}", masqdial_cli::safe::block(&f.human("mclient")));
        }
    };
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => match usage_failure(&e) {
            None => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            Some(f) => {
                report(&f, json_requested);
                return ExitCode::from(f.exit_code());
            }
        },
    };
    let Some(command) = cli.command else {
        // A bare `mclient` is a usage error: help on stderr, exit 2.
        let help = Cli::command().render_help().to_string();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{help}");
        let _ = writeln!(
            err,
            "mclient: a command is needed (the shell is `mclient shell`)"
        );
        return ExitCode::from(Kind::Usage.exit_code());
    };
    // Output-only commands need no settings.
    match &command {
        Command::Completions { shell } => {
            let _ = std::io::stdout().write_all(&masqdial_cli::cli::completions(*shell));
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            return match masqdial_cli::cli::man_page() {
                Ok(m) => {
                    let _ = std::io::stdout().write_all(&m);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    report(&Failure::new(Kind::Local, e.to_string(), None), false);
                    ExitCode::from(Kind::Local.exit_code())
                }
            };
        }
        _ => {}
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let opts = &cli.opts;
    let settings = match Settings::resolve(&Overrides {
        server: opts.server.clone(),
        user: opts.user.clone(),
        ca: opts.ca.clone(),
        token_file: None,
        timeout_secs: opts.timeout,
    }) {
        Ok(s) => s,
        Err(e) => {
            let f = Failure::usage(
                format!("{e:#}"),
                "check --server, the MASQDIAL_* variables and the client config file",
            );
            report(&f, opts.json);
            return ExitCode::from(f.exit_code());
        }
    };
    for w in &settings.warnings {
        eprintln!("mclient: warning: {w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let f = Failure::new(Kind::Local, format!("cannot start: {e}"), None);
            report(&f, opts.json);
            return ExitCode::from(f.exit_code());
        }
    };
    let mut session = Session::new(settings);
    session.json = opts.json;
    session.insecure = opts.insecure;
    let code = runtime.block_on(async {
        match command {
            Command::Shell => match masqdial_cli::shell::run(&mut session).await {
                Ok(code) => code,
                Err(e) => {
                    let f = Failure::new(Kind::Local, format!("shell: {e:#}"), None);
                    session.report(&f);
                    f.exit_code()
                }
            },
            cmd => match session.run(&cmd).await {
                Ok(()) => 0,
                Err(f) => {
                    session.report(&f);
                    f.exit_code()
                }
            },
        }
    });
    ExitCode::from(code)
}
