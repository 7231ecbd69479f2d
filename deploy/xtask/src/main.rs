//! `masqdial-xtask`: renders the man pages (clap_mangen, from the binaries' own clap
//! definitions) and shell completions (clap_complete) that the .deb installs. Owns
//! packaging assets only; it never builds or installs anything.
//!
//! ```text
//! cargo run --release -p masqdial-xtask -- assets target/assets
//! ```
//! writes `man/{mserver.8,mclient.1,mtui.1,mserver.toml.5}` and
//! `completions/{mclient,mserver}.{bash,fish}` plus `_mclient`, `_mserver` (zsh).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::CommandFactory;
use clap_complete::Shell;

/// The hand-written mserver.toml(5), shipped as is.
const MSERVER_TOML_5: &str = include_str!("../../man/mserver.toml.5");

/// Extra sections of mserver(8), after the generated ones.
const MSERVER_8_EXTRA: &str = r#".SH SIGNALS
.TP
.B SIGHUP
Re\-read the configuration file and apply
.BR [[users]] ,
.B allow
and
.BR token_ttl_s ;
on error the running configuration stays and the failure is logged at ERROR
.RB ( "systemctl reload"
runs
.B mserver check\-config
first, so it fails too).
.TP
.BR SIGTERM ", " SIGINT
Hang up every link, remove routes and exit.
.SH "EXIT STATUS"
.TP
.B 0
Stopped on a signal, or the subcommand succeeded.
.TP
.B 1
A subcommand failed for another reason (e.g. \fBinit\fR found the file already there).
.TP
.B 2
The server failed at run time (e.g. it cannot bind its port).
.TP
.B 78
EX_CONFIG: the configuration, its ruleset or its TLS files are invalid; the message names
the file, line and key. The unit's
.B RestartPreventExitStatus=78
keeps systemd from restarting on it.
.SH ENVIRONMENT
.TP
.B RUST_LOG
Log filter (default
.BR info ),
e.g.
.BR mserver=debug .
.TP
.B JOURNAL_STREAM
Set by systemd: logs then carry no timestamp of their own (journald adds it); colour is
used only when standard error is a terminal.
.TP
.B NOTIFY_SOCKET
Set by systemd for Type=notify: mserver sends READY=1 once its port is bound and a one\-line
STATUS= link summary whenever a link changes.
.SH FILES
.TP
.I /etc/masqdial/mserver.toml
Configuration, see
.BR mserver.toml (5).
.TP
.I /etc/masqdial/ipmasq.rules
Default ruleset (ipchains\-save format).
.TP
.I /etc/masqdial/tls/
Certificates made by
.BR "mserver gen\-cert" .
.TP
.I /var/lib/masqdial/
Saved rulesets and timeouts.
.SH "HOST REQUIREMENTS"
No host\-wide IPv4 forwarding: while it runs, mserver switches on
.B net.ipv4.conf.\fIIF\fP.forwarding
for the LAN interface
.RB ( "[nat] lan_interface" ,
or the one interface with a private address) and its TUN device
.RB ( masq0 )
only, over netlink, and puts both back as they were when it stops (SIGTERM or a normal
exit). Linux forwards an IPv4 packet by the switch of the interface it came in on, so other
interfaces of a multi\-homed host forward nothing and
.B net.ipv4.ip_forward
stays as the administrator left it (writing it later overwrites every interface's switch,
mserver's included). After a crash (SIGKILL) the two switches stay on until mserver is next
stopped cleanly. The host firewall must allow: in FORWARD, the LAN interface to the TUN
device and back (e.g. nftables
.B iifname \(dqeth0\(dq oifname \(dqmasq0\(dq accept
and
.BR "iifname \(dqmasq0\(dq oifname \(dqeth0\(dq ct state established,related accept" );
in INPUT, from the LAN, TCP port 224 (the API,
.BR "[server] listen" )
and the web and metrics ports when they are set. ModemManager must leave the modem alone (the package's udev rule ignores
.IR /dev/ttyS* ;
add USB modems as its comments say).
.SH "SEE ALSO"
.BR mserver.toml (5),
.BR mclient (1),
.BR mtui (1),
.BR systemctl (1),
.BR journalctl (1)
"#;

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))
}

/// Text escaped for roff: backslashes, hyphens, and a leading dot or quote.
fn roff(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// A COMMANDS section: every (non-hidden) subcommand with its arguments and options, in
/// one page (no page per subcommand).
fn commands_section(cmd: &clap::Command) -> String {
    let subs: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .collect();
    if subs.is_empty() {
        return String::new();
    }
    let mut out = String::from(".SH COMMANDS\n");
    for c in subs {
        let mut usage = format!("\\fB{}\\fR", roff(c.get_name()));
        for a in c.get_positionals() {
            let name = a
                .get_value_names()
                .and_then(|v| v.first())
                .map_or_else(|| a.get_id().to_string(), |v| v.to_string());
            if a.is_required_set() {
                usage.push_str(&format!(" \\fI{}\\fR", roff(&name)));
            } else {
                usage.push_str(&format!(" [\\fI{}\\fR]", roff(&name)));
            }
        }
        out.push_str(&format!(".TP\n{usage}\n"));
        if let Some(about) = c.get_long_about().or(c.get_about()) {
            out.push_str(&format!("{}\n", roff(&about.to_string())));
        }
        for a in c
            .get_arguments()
            .filter(|a| !a.is_positional() && !a.is_hide_set())
        {
            if matches!(a.get_id().as_str(), "help" | "version") || a.is_global_set() {
                continue;
            }
            let mut flag = String::new();
            if let Some(s) = a.get_short() {
                flag.push_str(&format!("\\fB\\-{}\\fR, ", roff(&s.to_string())));
            }
            if let Some(l) = a.get_long() {
                flag.push_str(&format!("\\fB\\-\\-{}\\fR", roff(l)));
            }
            if a.get_action().takes_values() {
                let v = a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map_or_else(|| a.get_id().to_string().to_uppercase(), |v| v.to_string());
                flag.push_str(&format!(" \\fI{}\\fR", roff(&v)));
            }
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            out.push_str(&format!(".RS\n.TP\n{flag}\n{}\n.RE\n", roff(&help)));
        }
    }
    out
}

/// A generated man page: title, name, synopsis, description, options, subcommands, then
/// `extra` roff, then the version.
fn man(cmd: clap::Command, section: &str, extra: &str) -> anyhow::Result<Vec<u8>> {
    let mut cmd_copy = cmd.clone();
    cmd_copy.build();
    let m = clap_mangen::Man::new(cmd)
        .section(section)
        .manual("masqdial")
        .source(format!("masqdial {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    m.render_title(&mut out)?;
    m.render_name_section(&mut out)?;
    m.render_synopsis_section(&mut out)?;
    m.render_description_section(&mut out)?;
    m.render_options_section(&mut out)?;
    out.extend_from_slice(commands_section(&cmd_copy).as_bytes());
    out.extend_from_slice(extra.as_bytes());
    m.render_version_section(&mut out)?;
    Ok(out)
}

/// mclient(1)'s EXIT STATUS and ENVIRONMENT, from the text `mclient --help` prints (one
/// source for both): `  N  meaning` lines after "Exit codes:", `  NAME  meaning` lines
/// after "Environment", other lines as paragraphs.
fn mclient_sections(help: &str) -> String {
    let mut out = String::new();
    let mut para = false;
    for line in help.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let continues = para && !line.starts_with("  ");
        para = !line.starts_with("  ")
            && !t.starts_with("Exit codes")
            && !t.starts_with("Environment");
        if continues {
            out.push_str(&format!("{}\n", roff(t)));
            continue;
        }
        if t.starts_with("Exit codes") {
            out.push_str(".SH \"EXIT STATUS\"\n");
        } else if t.starts_with("Environment") {
            out.push_str(".SH ENVIRONMENT\n");
            out.push_str(&format!("{}\n", roff(t)));
        } else if line.starts_with("  ") {
            let (key, meaning) = t.split_once("  ").unwrap_or((t, ""));
            out.push_str(&format!(
                ".TP\n\\fB{}\\fR\n{}\n",
                roff(key.trim()),
                roff(meaning.trim())
            ));
        } else {
            out.push_str(&format!(".PP\n{}\n", roff(t)));
        }
    }
    out
}

/// mtui(1)'s KEYS section, from the table the help overlay prints.
fn mtui_keys() -> String {
    let mut out = String::from(".SH KEYS\n");
    for (k, v) in masqdial_tui::keys::KEYS
        .iter()
        .chain(masqdial_tui::keys::ADMIN_KEYS)
    {
        if k.is_empty() {
            out.push_str(&format!(".br\n{}\n", roff(v)));
        } else {
            out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(k), roff(v)));
        }
    }
    out
}

fn completions(mut cmd: clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, name, &mut out);
        write(&dir.join(file), &out)?;
    }
    Ok(())
}

fn assets(out: &Path) -> anyhow::Result<()> {
    let man_dir = out.join("man");
    let comp_dir = out.join("completions");
    fs::create_dir_all(&man_dir)?;
    fs::create_dir_all(&comp_dir)?;

    let mserver = masqdial_server::cli::command();
    let mclient = masqdial_cli::cli::Cli::command();
    write(
        &man_dir.join("mserver.8"),
        &man(mserver.clone(), "8", MSERVER_8_EXTRA)?,
    )?;
    write(
        &man_dir.join("mclient.1"),
        &man(
            mclient.clone(),
            "1",
            &format!(
                "{}.SH \"SEE ALSO\"\n.BR mtui (1),\n.BR mserver (8)\n",
                mclient_sections(masqdial_cli::cli::EXIT_CODES_HELP)
            ),
        )?,
    )?;
    write(
        &man_dir.join("mtui.1"),
        &man(
            masqdial_tui::cli::command(),
            "1",
            &format!(
                "{}.SH FILES\n.I ~/.config/masqdial/client.toml\n(shared with\n.BR mclient (1)).\n.SH \"SEE ALSO\"\n.BR mclient (1),\n.BR mserver (8)\n",
                mtui_keys()
            ),
        )?,
    )?;
    write(&man_dir.join("mserver.toml.5"), MSERVER_TOML_5.as_bytes())?;
    completions(mclient, "mclient", &comp_dir)?;
    completions(mserver, "mserver", &comp_dir)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["assets", dir] => {
            let dir = PathBuf::from(dir);
            assets(&dir)?;
            println!("wrote man pages and completions under {}", dir.display());
            Ok(())
        }
        _ => bail!("usage: masqdial-xtask assets OUT_DIR"),
    }
}
