//! mclient's one command grammar (clap), used for one-shot commands and for every line
//! of the shell, and the one table from errors to exit codes.
//!
//! Pure parsing and mapping: no I/O.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::errors::DialFailed;

/// Exit codes and environment, documented in `mclient --help` (and the README).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  success
   1  local error (file, terminal), or the server failed internally
   2  usage error (bad command line, unknown command, unsafe option combination)
   3  not logged in, token expired or revoked, or wrong password: run `mclient login`
   4  not allowed (your role or connections do not permit it)
   5  no such connection, chain or rule
   6  invalid argument refused by the server
   7  not possible now (e.g. chain in use, link not up)
   8  server unreachable, lost, not answering in time, or not mserver (not gRPC, or no masqdial)
   9  not supported by this server
  10  out of resources (no free modem or port)
  11  cancelled
  12  dial failed (the dial ended with a failure)
`mclient ipchains` exits as ipchains 1.3 did: 2 for a parameter problem, 1 for any other
refusal (3 and 8 keep their meaning above).

Environment (command-line options win, then these, then the config file):
  MASQDIAL_SERVER      server URL (http://host:224, https://host:224; default port 224)
  MASQDIAL_USER        user name
  MASQDIAL_PASSWORD    password for `login` (scripts; the prompt is safer)
  MASQDIAL_TOKEN_FILE  token store (default <config dir>/masqdial/tokens.toml)
  MASQDIAL_CA          PEM CA certificate for https servers
  MASQDIAL_CONFIG      client config file (default <config dir>/masqdial/client.toml)
  MASQDIAL_TIMEOUT     rpc deadline in seconds (default 15)
MCLIENT_PASSWORD and MCLIENT_TOKEN_FILE are deprecated aliases (a warning is printed).
A `login` with --server records that server as the default in the client config file.";

/// Exit code for an error (the one table, see [`crate::errors`]); uses an empty context.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    crate::errors::classify(err, &crate::errors::Context::default()).exit_code()
}

/// `mclient`: talk to an mserver gateway.
#[derive(Debug, Parser)]
#[command(
    name = "mclient",
    version,
    about,
    after_help = EXIT_CODES_HELP,
    arg_required_else_help = false
)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub opts: GlobalOpts,
    /// Command; none prints this help (the shell is `mclient shell`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options valid before (or after) any command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalOpts {
    /// Server URL (http://HOST:PORT or https://HOST:PORT, port 224 by default) (env: MASQDIAL_SERVER).
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// User whose token to use, or to log in as [env: MASQDIAL_USER].
    #[arg(long, short, global = true)]
    pub user: Option<String>,
    /// Machine-readable JSON output (errors too); see client-cli/JSON.md.
    #[arg(long, global = true)]
    pub json: bool,
    /// PEM CA certificate for https servers [env: MASQDIAL_CA].
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Deadline of each request, seconds (default 15) [env: MASQDIAL_TIMEOUT].
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Allow sending a password over plain http:// to a host that is not loopback.
    #[arg(long, global = true)]
    pub insecure: bool,
}

/// `conntrack -L`-style filters on masquerade entries; all given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct MasqFilterArgs {
    /// Only this protocol: tcp, udp or icmp.
    #[arg(short = 'p', long = "proto", value_name = "PROTO")]
    pub proto: Option<String>,
    /// Only entries from this LAN host or network (A.B.C.D or A.B.C.D/BITS).
    #[arg(short = 's', long = "src", value_name = "ADDR")]
    pub src: Option<String>,
    /// Only entries to this remote host or network (A.B.C.D or A.B.C.D/BITS).
    #[arg(short = 'd', long = "dst", value_name = "ADDR")]
    pub dst: Option<String>,
    /// Only entries from this LAN port.
    #[arg(long, value_name = "PORT")]
    pub sport: Option<u16>,
    /// Only entries to this remote port.
    #[arg(long, value_name = "PORT")]
    pub dport: Option<u16>,
    /// Only entries in this state (ESTABLISHED, SYN_SENT, TIME_WAIT, UDP, ICMP, ...).
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
}

impl MasqFilterArgs {
    /// No filter given.
    pub fn is_empty(&self) -> bool {
        *self == MasqFilterArgs::default()
    }
}

/// Every command, in one-shot and shell form alike.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Log in and store the token (password: prompt, MASQDIAL_PASSWORD, or a stdin line).
    Login,
    /// Revoke your token and forget it.
    Logout,
    /// Show which user (and server) your commands run as.
    Whoami,
    /// List every user's live sessions (tokens by id, never the token) (admin).
    Sessions,
    /// Revoke every session of a user, or one session by its id (admin).
    Revoke {
        /// A user name, or a 16-hex-digit session id from `mclient sessions`.
        target: String,
    },
    /// List configured connections (masqdialer LIST).
    List,
    /// Everything about one connection (masqdialer CINFO).
    Cinfo {
        /// Connection name.
        name: String,
        /// Show each transcript line's time (UTC, milliseconds).
        #[arg(short = 't', long = "timestamps")]
        timestamps: bool,
    },
    /// Bring a connection up; prints progress until it is up or failed.
    Dial {
        /// Connection name.
        name: String,
    },
    /// Release your hold on a connection (masqdialer KILL).
    #[command(alias = "kill")]
    Hangup {
        /// Connection name (may be left out when you hold exactly one link).
        name: Option<String>,
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
    /// Follow link changes and traffic ("modem lights") until interrupted; with --masq, the
    /// masquerade table's changes instead (`conntrack -E`: NEW, UPDATE on a state change,
    /// DESTROY), optionally filtered as for `masq`.
    Watch {
        /// When the server goes away, try to reconnect for this many seconds (0: exit at once
        /// with code 8).
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        reconnect: u64,
        /// Follow the masquerade table.
        #[arg(long)]
        masq: bool,
        /// Filters (with --masq).
        #[command(flatten)]
        filter: MasqFilterArgs,
    },
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
        /// Host names for the addresses (reverse DNS: /etc/hosts, then the first name
        /// server), all looked up at once; what has not answered within
        /// --resolve-timeout-ms stays numeric.
        #[arg(short = 'r', long)]
        resolve: bool,
        /// The bound on all reverse lookups of one listing, in milliseconds.
        #[arg(long, default_value_t = 1000, requires = "resolve")]
        resolve_timeout_ms: u64,
        /// Only the entries these select (`conntrack -L` filters).
        #[command(flatten)]
        filter: MasqFilterArgs,
        /// Delete the entries the filters select (`conntrack -D`; admin); at least one filter
        /// is needed.
        #[arg(short = 'D', long)]
        delete: bool,
    },
    /// Free masquerade ports per protocol.
    Ports,
    /// Show (`timeouts` / `timeouts get`) or set (`timeouts [set] TCP TCPFIN UDP`, seconds,
    /// 0 = unchanged) masquerade timeouts.
    Timeouts {
        /// Nothing, `get`, or `[set] TCP TCPFIN UDP`.
        args: Vec<String>,
    },
    /// ipchains 1.3 syntax: -A -I -R -D -F -Z -N -X -P -L -C, -M -L, -M -S; -h and -V
    /// print ipchains' own help and version (`mclient help ipchains` prints this one).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Ipchains {
        /// Arguments exactly as for ipchains.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// ipmasqadm portfw: `-a -P tcp|udp -L ADDR PORT -R ADDR PORT [-p PREF]`, `-d -P … -L ADDR
    /// PORT [-R ADDR PORT]`, `-f`, `-l` (the default). Changes are admin only and persisted.
    Portfw {
        /// Arguments exactly as for `ipmasqadm portfw`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Print a 2.2 /proc view: ip_masquerade, ip_masq/tcp, ip_masq/udp, ip_masq/icmp,
    /// ip_masq/app, ip_masq/portfw, ip_fwchains, ip_fwnames.
    Proc {
        /// The file under /proc/net (`net/` prefix allowed).
        name: String,
    },
    /// Print the ruleset as ipchains-save text (to FILE or stdout).
    Save {
        /// Output file.
        file: Option<PathBuf>,
    },
    /// Load ipchains-save text (admin): replaces only the chains the file names, atomically.
    Restore {
        /// Input file, or `-` for stdin.
        file: String,
        /// Replace every chain: chains the file does not name are deleted (built-ins reset).
        #[arg(long)]
        all: bool,
        /// Print what would change (a diff of the ruleset) and change nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Go ahead even when forward would lose every MASQ rule.
        #[arg(long, short)]
        force: bool,
    },
    /// Engine counters (drops per reason, per protocol).
    Counters,
    /// Interactive shell (the same commands; `help`, `exit`).
    Shell,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the mclient(1) manual page (roff), for packaging.
    #[command(hide = true)]
    Man,
    /// Print the connection names, one a line, for shell completion: the server's list, or
    /// (when it cannot be asked within 2 s) the one the last `list` cached. Never fails.
    #[command(name = "__names", hide = true)]
    Names,
}

impl Command {
    /// Short name for messages (`hangup --force`, `ipchains -A`).
    pub fn label(&self) -> String {
        match self {
            Command::Hangup { force: true, .. } => "hangup --force".into(),
            Command::Masq { delete: true, .. } => "masq -D".into(),
            Command::Watch { masq: true, .. } => "watch --masq".into(),
            Command::Timeouts { args } if !args.is_empty() && args[0] != "get" => {
                "timeouts set".into()
            }
            Command::Ipchains { args } => {
                let cmd = args
                    .iter()
                    .find(|a| a.starts_with('-') && !["-n", "-v", "-x"].contains(&a.as_str()))
                    .cloned()
                    .unwrap_or_default();
                format!("ipchains {cmd}").trim_end().to_string()
            }
            other => {
                let dbg = format!("{other:?}");
                let name = dbg
                    .split([' ', '{', '('])
                    .next()
                    .unwrap_or_default()
                    .to_lowercase();
                name
            }
        }
    }

    /// The connection the command names, if any.
    pub fn connection(&self) -> Option<&str> {
        match self {
            Command::Cinfo { name, .. } | Command::Dial { name } => Some(name),
            Command::Hangup { name, .. } | Command::Status { name } => name.as_deref(),
            _ => None,
        }
    }
}

/// All command names (and aliases) of the grammar.
pub fn command_names() -> Vec<String> {
    use clap::CommandFactory;
    let mut names: Vec<String> = Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .flat_map(|c| {
            std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(String::from))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The mclient(1) manual page as roff.
pub fn man_page() -> anyhow::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| anyhow::anyhow!("cannot render the manual page: {e}"))?;
    Ok(out)
}

/// A completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mclient", &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    completion_glue(shell, script).into_bytes()
}

/// ipchains 1.3.9's options (short and long), offered after `mclient ipchains`.
pub const IPCHAINS_FLAGS: &[&str] = &[
    "-A",
    "-D",
    "-I",
    "-R",
    "-L",
    "-F",
    "-Z",
    "-N",
    "-X",
    "-P",
    "-C",
    "-M",
    "-S",
    "-h",
    "-V",
    "-b",
    "-p",
    "-s",
    "-d",
    "-i",
    "-j",
    "-f",
    "-y",
    "-l",
    "-o",
    "-m",
    "-t",
    "-n",
    "-v",
    "-x",
    "--append",
    "--delete",
    "--insert",
    "--replace",
    "--list",
    "--flush",
    "--zero",
    "--check",
    "--new-chain",
    "--delete-chain",
    "--policy",
    "--masquerading",
    "--set",
    "--bidirectional",
    "--source",
    "--destination",
    "--source-port",
    "--destination-port",
    "--icmp-type",
    "--protocol",
    "--interface",
    "--jump",
    "--fragments",
    "--syn",
    "--log",
    "--output",
    "--mark",
    "--TOS",
    "--numeric",
    "--verbose",
    "--exact",
    "--line-numbers",
    "--no-warnings",
    "--help",
    "--version",
];

/// The subcommands whose positional argument is a connection name.
const NAMED: &str = "dial cinfo hangup kill status stat";

/// What clap's static scripts cannot do: connection names asked of the server at completion
/// time (`mclient __names`, which falls back to the cached list), and ipchains' own options,
/// chains, targets and protocols after `mclient ipchains`. Bash and fish get a wrapper or extra
/// rules; zsh's `_default` for those arguments is replaced by functions doing the same.
fn completion_glue(shell: clap_complete::Shell, mut script: String) -> String {
    use clap_complete::Shell;
    let flags = IPCHAINS_FLAGS.join(" ");
    let chain_opts = "-A|--append|-D|--delete|-I|--insert|-R|--replace|-L|--list|-F|--flush|-Z|--zero|-N|--new-chain|-X|--delete-chain|-P|--policy|-C|--check";
    match shell {
        Shell::Bash => {
            script.push_str(&format!(
                r#"
# masqdial: connection names (asked of the server, or the list the last `mclient list`
# cached) and ipchains' own options.
_mclient_masqdial() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" sub="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            --server|--user|-u|--ca|--timeout) ((i++)) ;;
            -*) ;;
            *) sub="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    case "$sub" in
        {named_alts})
            if [[ "$cur" != -* ]]; then
                COMPREPLY=( $(compgen -W "$(mclient __names 2>/dev/null)" -- "$cur") )
                return 0
            fi
            ;;
        ipchains)
            case "$prev" in
                {chain_opts})
                    COMPREPLY=( $(compgen -W "input forward output" -- "$cur") ); return 0 ;;
                -j|--jump)
                    COMPREPLY=( $(compgen -W "ACCEPT DENY REJECT MASQ REDIRECT RETURN" -- "$cur") ); return 0 ;;
                -p|--protocol)
                    COMPREPLY=( $(compgen -W "tcp udp icmp all" -- "$cur") ); return 0 ;;
                -h|--help)
                    COMPREPLY=( $(compgen -W "icmp" -- "$cur") ); return 0 ;;
            esac
            COMPREPLY=( $(compgen -W "{flags}" -- "$cur") )
            return 0
            ;;
    esac
    _mclient "$@"
}}
complete -F _mclient_masqdial -o bashdefault -o default mclient
"#,
                named_alts = NAMED.replace(' ', "|"),
            ));
        }
        Shell::Fish => {
            script.push_str(&format!(
                r#"
# masqdial: connection names from the server (or the cached list), ipchains' options.
complete -c mclient -n "__fish_seen_subcommand_from {NAMED}" -f -a "(mclient __names 2>/dev/null)"
complete -c mclient -n "__fish_seen_subcommand_from ipchains" -f -a "{flags} input forward output ACCEPT DENY REJECT MASQ REDIRECT RETURN tcp udp icmp all"
"#
            ));
        }
        Shell::Zsh => {
            let helpers = format!(
                r#"
# masqdial: connection names from the server (or the cached list), ipchains' options.
_mclient_names() {{
    local -a names
    names=(${{(f)"$(mclient __names 2>/dev/null)"}})
    _describe -t connections 'connection' names
}}
_mclient_ipchains() {{
    local -a words
    case "${{words[CURRENT-1]}}" in
        ({chain_opts}) words=(input forward output) ;;
        (-j|--jump) words=(ACCEPT DENY REJECT MASQ REDIRECT RETURN) ;;
        (-p|--protocol) words=(tcp udp icmp all) ;;
        (*) words=({flags}) ;;
    esac
    compadd -a words
}}
"#
            );
            let mut lines: Vec<String> = Vec::new();
            for l in script.lines() {
                let l = if l.contains("Connection name") && l.contains(":_default") {
                    l.replace(":_default", ":_mclient_names")
                } else if l.contains("Arguments exactly as for ipchains") && l.contains(":_default")
                {
                    l.replace(":_default", ":_mclient_ipchains")
                } else {
                    l.to_string()
                };
                lines.push(l);
            }
            script = lines.join("\n");
            script.push('\n');
            // After the `#compdef` line, so that zsh still autoloads the file.
            match script.find('\n') {
                Some(i) => script.insert_str(i + 1, &helpers),
                None => script.push_str(&helpers),
            }
        }
        _ => {}
    }
    script
}

/// One shell line: the same [`Command`] grammar without a binary name.
#[derive(Debug, Parser)]
#[command(
    name = "mclient",
    no_binary_name = true,
    disable_version_flag = true,
    about = None,
    long_about = None
)]
pub struct ShellLine {
    /// Machine-readable JSON output for this command.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A clap parse error as a [`Failure`](crate::errors::Failure) (usage, exit 2), with our own "did you mean" for an
/// unknown command. `None` for `--help`/`--version` output, which is not a failure.
pub fn usage_failure(e: &clap::Error) -> Option<crate::errors::Failure> {
    use crate::errors::{did_you_mean, Failure};
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => return None,
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return Some(Failure::usage(
                "a command is missing",
                "`mclient --help` lists the commands",
            ))
        }
        ErrorKind::InvalidSubcommand | ErrorKind::UnknownArgument => {
            let ctx = if e.kind() == ErrorKind::InvalidSubcommand {
                ContextKind::InvalidSubcommand
            } else {
                ContextKind::InvalidArg
            };
            if let Some(ContextValue::String(word)) = e.get(ctx) {
                if e.kind() == ErrorKind::InvalidSubcommand {
                    let names = command_names();
                    let hint = match did_you_mean(word, &names) {
                        Some(s) => format!("did you mean `{s}`? (`help` lists the commands)"),
                        None => {
                            "`mclient --help` (or `help` in the shell) lists the commands".into()
                        }
                    };
                    return Some(Failure::usage(format!("unknown command `{word}`"), hint));
                }
                return Some(Failure::usage(
                    format!("unknown option `{word}`"),
                    "add --help after the command to see its options",
                ));
            }
        }
        _ => {}
    }
    // clap's own first line, without its "error: " prefix and usage block.
    let text = e.render().to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("bad command line")
        .trim_start_matches("error: ")
        .replace('\'', "`");
    let usage = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: ").map(str::to_string));
    Some(Failure::usage(
        first,
        match usage {
            Some(u) => format!("usage: {u}"),
            None => "add --help after the command to see its arguments".to_string(),
        },
    ))
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
                s.parse::<u32>().map_err(|_| {
                    anyhow::Error::new(crate::errors::Failure::usage(
                        format!("timeout `{s}` is not a number of seconds"),
                        "for example `mclient timeouts set 7200 10 160` (0 = unchanged)",
                    ))
                })
            };
            Ok(TimeoutsArgs::Set(p(a)?, p(b)?, p(c)?))
        }
        _ => Err(crate::errors::Failure::usage(
            "timeouts takes nothing, `get`, or `[set] TCP TCPFIN UDP`",
            "for example `mclient timeouts set 7200 10 160` (seconds, 0 = unchanged)",
        )
        .into()),
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
        assert_eq!(c.opts.server.as_deref(), Some("http://gw:224"));
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
                name: Some("isp1".into()),
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
                verbose: true,
                resolve: false,
                resolve_timeout_ms: 1000,
                filter: MasqFilterArgs::default(),
                delete: false,
            })
        );
        let c = parse(&[
            "masq",
            "-p",
            "tcp",
            "-s",
            "192.168.1.0/24",
            "--state",
            "established",
            "-D",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            c.command,
            Some(Command::Masq { ref filter, delete: true, .. })
                if filter.proto.as_deref() == Some("tcp")
                    && filter.src.as_deref() == Some("192.168.1.0/24")
                    && filter.state.as_deref() == Some("established")
        ));
        let c = parse(&["watch", "--masq", "-d", "203.0.113.1", "--dport", "80"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            c.command,
            Some(Command::Watch { masq: true, ref filter, .. })
                if filter.dst.as_deref() == Some("203.0.113.1") && filter.dport == Some(80)
        ));
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
        // -h, --help, -V, --version are ipchains' own, not clap's.
        for flag in ["-h", "--help", "-V", "--version"] {
            let c = parse(&["ipchains", flag]).unwrap_or_else(|e| panic!("{flag}: {e}"));
            assert_eq!(
                c.command,
                Some(Command::Ipchains {
                    args: vec![flag.to_string()]
                }),
                "{flag}"
            );
        }
    }

    #[test]
    fn shell_lines_use_the_same_grammar() {
        let words = split_words("hangup 'isp 1' --force").unwrap_or_default();
        let l = ShellLine::try_parse_from(words).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            l.command,
            Command::Hangup {
                name: Some("isp 1".into()),
                force: true
            }
        );
        let l = ShellLine::try_parse_from(["timeouts", "set", "1", "2", "3"]);
        assert!(l.is_ok());
        assert!(split_words("dial \"isp1").is_err());
    }

    proptest::proptest! {
        #[test]
        /// Whatever a line splits into, quoting each word back and splitting again gives the
        /// same words; a line fails only with an unterminated quote.
        fn any_shell_line_splits_into_words_that_quote_back(line in "(?s).{0,200}") {
            match split_words(&line) {
                Ok(words) => {
                    let quoted: Vec<String> = words
                        .iter()
                        .map(|w| if w.contains('"') { format!("'{w}'") } else { format!("\"{w}\"") })
                        .collect();
                    if words.iter().all(|w| !(w.contains('"') && w.contains('\''))) {
                        proptest::prop_assert_eq!(split_words(&quoted.join(" ")).ok(), Some(words.clone()));
                    }
                    let _ = ShellLine::try_parse_from(words);
                }
                Err(_) => {
                    let quotes = line.chars().filter(|&c| c == '"' || c == '\'').count();
                    proptest::prop_assert!(quotes > 0, "failed without a quote: {:?}", line);
                }
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
    fn hangup_name_is_optional_and_labels() {
        let c = parse(&["hangup"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.command,
            Some(Command::Hangup {
                name: None,
                force: false
            })
        );
        let label = |a: &[&str]| parse(a).ok().and_then(|c| c.command).map(|c| c.label());
        assert_eq!(
            label(&["hangup", "-f", "x"]).as_deref(),
            Some("hangup --force")
        );
        assert_eq!(label(&["whoami"]).as_deref(), Some("whoami"));
        assert_eq!(
            label(&["ipchains", "-v", "-A", "input"]).as_deref(),
            Some("ipchains -A")
        );
        assert_eq!(label(&["restore", "-"]).as_deref(), Some("restore"));
    }

    #[test]
    fn restore_options() {
        let c =
            parse(&["restore", "-", "--dry-run", "--all", "-f"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.command,
            Some(Command::Restore {
                file: "-".into(),
                all: true,
                dry_run: true,
                force: true
            })
        );
    }

    #[test]
    fn typos_get_real_suggestions() {
        let f = |a: &[&str]| {
            parse(a)
                .err()
                .and_then(|e| usage_failure(&e))
                .map(|f| (f.message, f.hint.unwrap_or_default(), f.kind))
        };
        let (m, h, k) = f(&["hangpu"]).unwrap_or_default_tuple();
        assert_eq!(m, "Unknown command `hangpu`.");
        assert_eq!(h, "did you mean `hangup`? (`help` lists the commands)");
        assert_eq!(k, crate::errors::Kind::Usage);
        let (_, h, _) = f(&["frobnicate"]).unwrap_or_default_tuple();
        assert!(!h.contains("logout"), "{h}");
        let (m, h, _) = f(&["dial"]).unwrap_or_default_tuple();
        assert!(m.contains("required"), "{m}");
        assert_eq!(h, "usage: mclient dial <NAME>");
        assert!(parse(&["--help"])
            .err()
            .and_then(|e| usage_failure(&e))
            .is_none());
        assert!(matches!(
            parse(&["timeouts", "x", "y", "z"]).map(|c| c.command),
            Ok(Some(Command::Timeouts { .. }))
        ));
    }

    trait Tuple {
        fn unwrap_or_default_tuple(self) -> (String, String, crate::errors::Kind);
    }
    impl Tuple for Option<(String, String, crate::errors::Kind)> {
        fn unwrap_or_default_tuple(self) -> (String, String, crate::errors::Kind) {
            self.unwrap_or_else(|| panic!("expected a usage failure"))
        }
    }

    #[test]
    fn help_table_matches_the_error_kinds() {
        for k in crate::errors::Kind::ALL {
            let line = format!("\n{:>4}  ", k.exit_code());
            assert!(EXIT_CODES_HELP.contains(&line), "{k:?} missing");
        }
    }

    #[test]
    fn man_page_and_completions_render() -> anyhow::Result<()> {
        let man = String::from_utf8(man_page()?)?;
        assert!(
            man.starts_with(".ie") || man.contains(".TH mclient"),
            "{man}"
        );
        assert!(man.contains("Exit codes"));
        let bash = String::from_utf8(completions(clap_complete::Shell::Bash))?;
        assert!(bash.contains("_mclient()"), "{bash}");
        assert!(bash.contains("hangup"));
        let fish = String::from_utf8(completions(clap_complete::Shell::Fish))?;
        assert!(fish.contains("complete -c mclient"));
        let zsh = String::from_utf8(completions(clap_complete::Shell::Zsh))?;
        assert!(zsh.starts_with("#compdef mclient"));
        Ok(())
    }
}
