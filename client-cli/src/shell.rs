//! The interactive shell: rustyline over the same clap grammar as one-shot commands, with
//! history in the user's data directory and completion of commands and connection names.
//!
//! Owns line reading and dispatch; commands run through [`crate::run::Session`].

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::cli::{split_words, Command, ShellLine};
use crate::errors::Failure;
use crate::run::Session;

/// What happened on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line (the command succeeded, or there was none).
    Continue,
    /// The command failed with this exit code; read the next line.
    Failed(u8),
    /// Leave the shell.
    Exit,
}

/// Command names offered by completion (from the grammar, plus shell words).
pub fn command_names() -> Vec<String> {
    let mut names: Vec<String> = crate::cli::command_names()
        .into_iter()
        .filter(|n| n != "shell")
        .collect();
    names.extend(["help".to_string(), "exit".to_string(), "quit".to_string()]);
    names.sort();
    names.dedup();
    names
}

/// The shell's `help`: one line per command (its summary), then the shell's own words.
pub fn help_text() -> String {
    let cmd = ShellLine::command();
    let subs: Vec<(String, String)> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "shell")
        .map(|c| {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            let mut name = c.get_name().to_string();
            let aliases: Vec<&str> = c.get_all_aliases().collect();
            if !aliases.is_empty() {
                name = format!("{name} ({})", aliases.join(", "));
            }
            (name, about)
        })
        .collect();
    let width = subs.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::from("Commands:\n");
    for (n, a) in subs {
        out.push_str(&format!("  {n:<width$}  {a}\n"));
    }
    out.push_str(&format!(
        "  {:<width$}  {}\n  {:<width$}  {}\n",
        "help [COMMAND]", "This list, or one command's arguments", "exit, quit", "Leave the shell"
    ));
    out.push_str("Add --json to any command for JSON output.\n");
    out
}

/// Completions for `line` at `pos`: (start of the word, candidates).
pub fn complete(line: &str, pos: usize, connections: &[String]) -> (usize, Vec<String>) {
    let head = line.get(..pos).unwrap_or(line);
    let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &head[start..];
    let before: Vec<&str> = head[..start].split_whitespace().collect();
    let pool: Vec<String> = match before.as_slice() {
        [] => command_names(),
        ["help"] => command_names(),
        [cmd] if ["dial", "cinfo", "hangup", "kill", "status", "stat"].contains(cmd) => {
            connections.to_vec()
        }
        _ => Vec::new(),
    };
    (
        start,
        pool.into_iter().filter(|c| c.starts_with(word)).collect(),
    )
}

struct ShellHelper {
    connections: Vec<String>,
}

impl Completer for ShellHelper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete(line, pos, &self.connections))
    }
}
impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

/// Run one shell line.
pub async fn handle_line(session: &mut Session, line: &str) -> Flow {
    let line = line.trim();
    match line {
        "" => return Flow::Continue,
        "exit" | "quit" => return Flow::Exit,
        "help" | "?" => {
            print!("{}", help_text());
            return Flow::Continue;
        }
        _ => {}
    }
    let mut words = match split_words(line) {
        Ok(w) => w,
        Err(e) => {
            let f = Failure::usage(e.to_string(), "close the quote");
            session.report(&f);
            return Flow::Failed(f.exit_code());
        }
    };
    // `help CMD` = `CMD --help`.
    if words.first().map(String::as_str) == Some("help") {
        words.remove(0);
        words.push("--help".into());
    }
    match ShellLine::try_parse_from(words) {
        Ok(parsed) => {
            if let Command::Shell = parsed.command {
                println!("already in the shell");
                return Flow::Continue;
            }
            let saved = session.json;
            session.json = saved || parsed.json;
            let r = session.run(&parsed.command).await;
            let flow = match r {
                Ok(()) => Flow::Continue,
                Err(f) => {
                    session.report(&f);
                    Flow::Failed(f.exit_code())
                }
            };
            session.json = saved;
            flow
        }
        Err(e) => match crate::cli::usage_failure(&e) {
            // `--help` output for a command.
            None => {
                let _ = e.print();
                Flow::Continue
            }
            Some(f) => {
                session.report(&f);
                Flow::Failed(f.exit_code())
            }
        },
    }
}

/// History file: `<data dir>/masqdial/mclient_history`.
pub fn history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("masqdial").join("mclient_history"))
}

/// The interactive loop (also reads scripts from a non-terminal stdin). Returns the exit
/// status: 0, or, when reading a script, the code of the last command that failed.
pub async fn run(session: &mut Session) -> anyhow::Result<u8> {
    let interactive = std::io::stdin().is_terminal();
    let connections = session.connection_names().await;
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(ShellHelper { connections }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let mut status = 0u8;
    loop {
        // The identity can change (`login`, `logout`): recompute the prompt every line.
        let prompt = format!("mclient {}> ", session.prompt_identity());
        // rustyline blocks; run it on the blocking pool so signals and timers keep working.
        let (ed, line) = tokio::task::spawn_blocking({
            let mut ed = editor;
            move || {
                let l = ed.readline(&prompt);
                (ed, l)
            }
        })
        .await?;
        editor = ed;
        match line {
            Ok(l) => {
                if !l.trim().is_empty() {
                    let _ = editor.add_history_entry(l.as_str());
                }
                match handle_line(session, &l).await {
                    Flow::Exit => break,
                    Flow::Failed(code) => status = code,
                    Flow::Continue => {}
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(h);
    }
    Ok(if interactive { 0 } else { status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_commands_and_connections() {
        let conns = vec!["isp1".to_string(), "isp2".to_string(), "work".to_string()];
        let (s, c) = complete("di", 2, &conns);
        assert_eq!((s, c), (0, vec!["dial".to_string()]));
        let (s, c) = complete("dial is", 7, &conns);
        assert_eq!((s, c), (5, vec!["isp1".to_string(), "isp2".to_string()]));
        let (_, c) = complete("kill w", 6, &conns);
        assert_eq!(c, vec!["work".to_string()]);
        let (_, c) = complete("whoami x", 8, &conns);
        assert!(c.is_empty());
        assert!(command_names().contains(&"ipchains".to_string()));
        assert!(command_names().contains(&"stat".to_string()));
        assert!(!command_names().contains(&"shell".to_string()));
    }

    #[test]
    fn help_has_no_rustdoc_text() {
        let h = help_text();
        assert!(h.starts_with("Commands:\n"), "{h}");
        assert!(h.contains("  hangup (kill)"), "{h}");
        assert!(!h.contains("[`"), "{h}");
        assert!(!h.contains("grammar"), "{h}");
        assert!(!h.contains("Man"), "{h}");
        assert!(h.contains("exit, quit"));
    }

    #[tokio::test]
    async fn exit_help_and_failures() {
        let dir = tempfile::tempdir().ok();
        let path = dir
            .as_ref()
            .map(|d| d.path().join("t.toml"))
            .unwrap_or_default();
        let settings = crate::config::Settings {
            server: "http://127.0.0.1:9".into(),
            connect_url: "http://127.0.0.1:9".into(),
            user: None,
            ca: None,
            token_file: path,
            config_file: None,
            timeout: std::time::Duration::from_secs(2),
            warnings: Vec::new(),
            server_from_option: false,
        };
        let mut s = Session::new(settings);
        assert_eq!(handle_line(&mut s, "  exit ").await, Flow::Exit);
        assert_eq!(handle_line(&mut s, "quit").await, Flow::Exit);
        assert_eq!(handle_line(&mut s, "help").await, Flow::Continue);
        assert_eq!(handle_line(&mut s, "help dial").await, Flow::Continue);
        assert_eq!(handle_line(&mut s, "").await, Flow::Continue);
        assert_eq!(handle_line(&mut s, "nonsense").await, Flow::Failed(2));
        assert_eq!(handle_line(&mut s, "dial 'x").await, Flow::Failed(2));
        // Nothing listens on port 9: unreachable (8) before any token check.
        assert_eq!(handle_line(&mut s, "whoami --json").await, Flow::Failed(8));
        assert!(!s.json, "--json applies to its line only");
    }
}
