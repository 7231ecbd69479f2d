//! mclient's one command grammar (clap), used for one-shot commands and for every line
//! of the shell, and the one table from errors to exit codes.
//!
//! Pure parsing and mapping: no I/O.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tonic::Code;

use crate::conn::DEFAULT_SERVER;

/// Exit codes, documented in `mclient --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  success
   1  local error (file, terminal, internal server error)
   2  usage error
   3  not logged in / token expired (UNAUTHENTICATED): run `mclient login`
   4  not allowed (PERMISSION_DENIED)
   5  no such connection, chain or rule (NOT_FOUND)
   6  invalid argument (INVALID_ARGUMENT, OUT_OF_RANGE)
   7  not possible now (FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED)
   8  server unreachable (UNAVAILABLE, DEADLINE_EXCEEDED, connection failure)
   9  not implemented by this server (UNIMPLEMENTED)
  10  out of resources (RESOURCE_EXHAUSTED)
  11  cancelled (CANCELLED)
  12  dial failed (the Dial stream ended with a failure)

Environment: MASQDIAL_SERVER (default server URL), MCLIENT_PASSWORD (login password),
MCLIENT_TOKEN_FILE (token store path instead of <config dir>/masqdial/tokens.toml).";

/// Exit code for an error (the one table).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(s) = cause.downcast_ref::<tonic::Status>() {
            return status_exit_code(s.code());
        }
        if cause.downcast_ref::<DialFailed>().is_some() {
            return 12;
        }
        if cause.downcast_ref::<tonic::transport::Error>().is_some() {
            return 8;
        }
        if cause.downcast_ref::<clap::Error>().is_some() {
            return 2;
        }
    }
    1
}

/// Exit code for a gRPC status code.
pub fn status_exit_code(code: Code) -> u8 {
    match code {
        Code::Ok => 0,
        Code::Unauthenticated => 3,
        Code::PermissionDenied => 4,
        Code::NotFound => 5,
        Code::InvalidArgument | Code::OutOfRange => 6,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => 7,
        Code::Unavailable | Code::DeadlineExceeded => 8,
        Code::Unimplemented => 9,
        Code::ResourceExhausted => 10,
        Code::Cancelled => 11,
        Code::Unknown | Code::Internal | Code::DataLoss => 1,
    }
}

/// A dial that ended with a `failed` event.
#[derive(Debug, thiserror::Error)]
#[error("dial failed: {0}")]
pub struct DialFailed(pub String);

/// `mclient`: talk to an mserver gateway.
#[derive(Debug, Parser)]
#[command(name = "mclient", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub opts: GlobalOpts,
    /// Command; none starts the interactive shell.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options valid before any command.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOpts {
    /// Server URL (http://host:224 or https://host:224).
    #[arg(long, env = "MASQDIAL_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// User name for `login` (default: the login name).
    #[arg(long, short, global = true)]
    pub user: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// PEM CA certificate for https servers.
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
}

/// Every command, in one-shot and shell form alike.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Log in and store the token (password: no-echo prompt, or MCLIENT_PASSWORD, or stdin).
    Login,
    /// Revoke the stored token and forget it.
    Logout,
    /// Show who the stored token belongs to.
    Whoami,
    /// List configured connections (masqdialer LIST).
    List,
    /// Everything about one connection (masqdialer CINFO).
    Cinfo {
        /// Connection name.
        name: String,
    },
    /// Bring a connection up; prints progress until it is up or failed.
    Dial {
        /// Connection name.
        name: String,
    },
    /// Release your hold on a connection (masqdialer KILL).
    #[command(alias = "kill")]
    Hangup {
        /// Connection name.
        name: String,
        /// Drop the link whoever holds it (admin).
        #[arg(long, short)]
        force: bool,
    },
    /// Link state and counters (masqdialer STAT).
    #[command(alias = "stat")]
    Status {
        /// Only this connection.
        name: Option<String>,
    },
    /// Who holds which link.
    Who,
    /// Follow link changes and traffic ("modem lights") until interrupted.
    Watch,
    /// Modems, their state and which connection uses them.
    Modems,
    /// Masquerade table like `ipchains -M -L`.
    Masq {
        /// Numeric output.
        #[arg(short = 'n')]
        numeric: bool,
        /// Verbose: initseq, delta, prevd.
        #[arg(short = 'v')]
        verbose: bool,
    },
    /// Free masquerade ports per protocol.
    Ports,
    /// Show (`timeouts` / `timeouts get`) or set (`timeouts [set] TCP TCPFIN UDP`, seconds,
    /// 0 = unchanged) masquerade timeouts.
    Timeouts {
        /// Nothing, `get`, or `[set] TCP TCPFIN UDP`.
        args: Vec<String>,
    },
    /// ipchains 1.3 syntax: -A -I -R -D -F -Z -N -X -P -L -C, -M -L, -M -S.
    Ipchains {
        /// Arguments exactly as for ipchains.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Print the ruleset as ipchains-save text (to FILE or stdout).
    Save {
        /// Output file.
        file: Option<PathBuf>,
    },
    /// Replace every chain from an ipchains-save FILE, atomically (admin).
    Restore {
        /// Input file.
        file: PathBuf,
    },
    /// Engine counters (drops per reason, per protocol).
    Counters,
    /// Interactive shell (the same commands; `help`, `exit`).
    Shell,
}

/// One shell line: the same [`Command`] grammar without a binary name.
#[derive(Debug, Parser)]
#[command(
    name = "",
    no_binary_name = true,
    disable_version_flag = true,
    after_help = "Also: exit, quit"
)]
pub struct ShellLine {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `timeouts` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutsArgs {
    /// Show.
    Get,
    /// Set tcp, tcpfin, udp seconds (0 = unchanged).
    Set(u32, u32, u32),
}

/// Parse `timeouts` arguments.
pub fn parse_timeouts(args: &[String]) -> anyhow::Result<TimeoutsArgs> {
    let nums: &[String] = match args {
        [] => return Ok(TimeoutsArgs::Get),
        [g] if g == "get" => return Ok(TimeoutsArgs::Get),
        [s, rest @ ..] if s == "set" => rest,
        all => all,
    };
    match nums {
        [a, b, c] => {
            let p = |s: &String| {
                s.parse::<u32>()
                    .map_err(|_| anyhow::anyhow!("timeout {s:?} is not a number of seconds"))
            };
            Ok(TimeoutsArgs::Set(p(a)?, p(b)?, p(c)?))
        }
        _ => anyhow::bail!("usage: timeouts [get | [set] TCP TCPFIN UDP] (seconds, 0 = unchanged)"),
    }
}

/// Split a shell line into words: whitespace-separated, with '…' and "…" quoting.
pub fn split_words(line: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    anyhow::ensure!(quote.is_none(), "unterminated quote");
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mclient").chain(args.iter().copied()))
    }

    #[test]
    fn grammar_one_shot() {
        let c = parse(&["--server", "http://gw:224", "--json", "dial", "isp1"]);
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.opts.server, "http://gw:224");
        assert!(c.opts.json);
        assert_eq!(
            c.command,
            Some(Command::Dial {
                name: "isp1".into()
            })
        );
        let c = parse(&["kill", "isp1", "--force"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.command,
            Some(Command::Hangup {
                name: "isp1".into(),
                force: true
            })
        );
        let c = parse(&["stat"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.command, Some(Command::Status { name: None }));
        let c = parse(&["masq", "-n", "-v"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.command,
            Some(Command::Masq {
                numeric: true,
                verbose: true
            })
        );
        assert_eq!(parse(&[]).map(|c| c.command).ok(), Some(None));
        assert!(parse(&["dial"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
    }

    #[test]
    fn ipchains_args_pass_through() {
        let c = parse(&[
            "ipchains",
            "-A",
            "forward",
            "-s",
            "192.168.1.0/24",
            "-j",
            "MASQ",
        ]);
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        let want: Vec<String> = ["-A", "forward", "-s", "192.168.1.0/24", "-j", "MASQ"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(c.command, Some(Command::Ipchains { args: want }));
        let c = parse(&["--json", "ipchains", "-L", "-n", "-v"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.opts.json);
        assert!(matches!(c.command, Some(Command::Ipchains { ref args }) if args.len() == 3));
    }

    #[test]
    fn shell_lines_use_the_same_grammar() {
        let words = split_words("hangup 'isp 1' --force").unwrap_or_default();
        let l = ShellLine::try_parse_from(words).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            l.command,
            Command::Hangup {
                name: "isp 1".into(),
                force: true
            }
        );
        let l = ShellLine::try_parse_from(["timeouts", "set", "1", "2", "3"]);
        assert!(l.is_ok());
        assert!(split_words("dial \"isp1").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_shell_line_splits_or_fails_never_panics(line in "(?s).{0,200}") {
            if let Ok(words) = split_words(&line) {
                let _ = ShellLine::try_parse_from(words);
            }
        }
    }

    #[test]
    fn timeouts_args() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_timeouts(&s(&[])).ok(), Some(TimeoutsArgs::Get));
        assert_eq!(parse_timeouts(&s(&["get"])).ok(), Some(TimeoutsArgs::Get));
        assert_eq!(
            parse_timeouts(&s(&["set", "900", "0", "300"])).ok(),
            Some(TimeoutsArgs::Set(900, 0, 300))
        );
        assert_eq!(
            parse_timeouts(&s(&["900", "120", "300"])).ok(),
            Some(TimeoutsArgs::Set(900, 120, 300))
        );
        assert!(parse_timeouts(&s(&["set", "1"])).is_err());
        assert!(parse_timeouts(&s(&["x", "y", "z"])).is_err());
    }

    #[test]
    fn exit_code_table() {
        let st = |c: Code| anyhow::Error::new(tonic::Status::new(c, "x"));
        assert_eq!(exit_code(&st(Code::Unauthenticated)), 3);
        assert_eq!(exit_code(&st(Code::PermissionDenied)), 4);
        assert_eq!(exit_code(&st(Code::NotFound)), 5);
        assert_eq!(exit_code(&st(Code::Unimplemented)), 9);
        assert_eq!(
            exit_code(&st(Code::Unavailable).context("while dialing")),
            8
        );
        assert_eq!(
            exit_code(&anyhow::Error::new(DialFailed("BUSY".into()))),
            12
        );
        assert_eq!(exit_code(&anyhow::anyhow!("local")), 1);
        // Every code maps somewhere documented.
        for c in 0..17 {
            let code = status_exit_code(Code::from_i32(c));
            assert!(
                EXIT_CODES_HELP.contains(&format!("  {code}  ")) || code == 0,
                "{c} -> {code}"
            );
        }
    }
}
