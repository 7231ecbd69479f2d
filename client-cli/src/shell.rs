//! The interactive shell: rustyline over the same clap grammar as one-shot commands, with
//! history in the user's data directory and completion of commands and connection names.
//!
//! Owns line reading and dispatch; commands run through [`crate::run::Session`].

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::cli::{split_words, ShellLine};
use crate::run::Session;

/// What to do after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// Leave the shell.
    Exit,
}

/// Command names offered by completion (from the grammar, plus shell words).
pub fn command_names() -> Vec<String> {
    let mut names: Vec<String> = ShellLine::command()
        .get_subcommands()
        .flat_map(|c| {
            std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(String::from))
        })
        .filter(|n| n != "shell")
        .collect();
    names.extend(["help".to_string(), "exit".to_string(), "quit".to_string()]);
    names.sort();
    names.dedup();
    names
}

/// Completions for `line` at `pos`: (start of the word, candidates).
pub fn complete(line: &str, pos: usize, connections: &[String]) -> (usize, Vec<String>) {
    let head = line.get(..pos).unwrap_or(line);
    let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &head[start..];
    let before: Vec<&str> = head[..start].split_whitespace().collect();
    let pool: Vec<String> = match before.as_slice() {
        [] => command_names(),
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
            let mut cmd = ShellLine::command();
            println!("{}", cmd.render_help());
            return Flow::Continue;
        }
        _ => {}
    }
    let words = match split_words(line) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return Flow::Continue;
        }
    };
    match ShellLine::try_parse_from(words) {
        Ok(parsed) => {
            if let Err(e) = session.execute(&parsed.command).await {
                eprintln!("error: {e:#}");
                if crate::cli::exit_code(&e) == 3 {
                    eprintln!("hint: run `login` (or `mclient login`) first");
                }
            }
        }
        // Includes `--help` output for a command.
        Err(e) => {
            let _ = e.print();
        }
    }
    Flow::Continue
}

/// History file: `<data dir>/masqdial/mclient_history`.
pub fn history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("masqdial").join("mclient_history"))
}

/// The interactive loop (also reads scripts from a non-terminal stdin).
pub async fn run(session: &mut Session) -> anyhow::Result<()> {
    let connections = session.connection_names().await;
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(ShellHelper { connections }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let prompt = format!(
        "mclient {}> ",
        session
            .opts
            .server
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    );
    loop {
        // rustyline blocks; run it on the blocking pool so signals and timers keep working.
        let (ed, line) = tokio::task::spawn_blocking({
            let prompt = prompt.clone();
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
                if handle_line(session, &l).await == Flow::Exit {
                    break;
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
    Ok(())
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

    #[tokio::test]
    async fn exit_and_help_lines() {
        let dir = tempfile::tempdir().ok();
        let path = dir
            .as_ref()
            .map(|d| d.path().join("t.toml"))
            .unwrap_or_default();
        let opts = crate::cli::GlobalOpts {
            server: "http://127.0.0.1:9".into(),
            user: None,
            json: false,
            ca: None,
        };
        let mut s = Session::new(opts, crate::store::TokenStore::at(path));
        assert_eq!(handle_line(&mut s, "  exit ").await, Flow::Exit);
        assert_eq!(handle_line(&mut s, "quit").await, Flow::Exit);
        assert_eq!(handle_line(&mut s, "help").await, Flow::Continue);
        assert_eq!(handle_line(&mut s, "").await, Flow::Continue);
        assert_eq!(handle_line(&mut s, "nonsense").await, Flow::Continue);
        // Not logged in: an error is printed, the shell continues.
        assert_eq!(handle_line(&mut s, "whoami").await, Flow::Continue);
    }
}
