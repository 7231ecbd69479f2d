//! The runner: the [`Session`] (settings, token store, lazily opened channel), the dispatch
//! of one parsed [`Command`] to its command module in [`crate::cmd`], printing the answer
//! (human tables, or JSON with `--json`, see `client-cli/JSON.md`) and turning any failure
//! into a [`Failure`] (plain sentence, next step, exit code).
//!
//! The commands themselves live in `crate::cmd` (session, dialer, modems, nat, ipchains), each
//! as `impl Session` methods; this module keeps the runner rather than becoming `cmd/mod.rs`,
//! so `crate::run::Session` stays the one path for `main.rs`, the shell and tests. Owns the
//! session and output; it must never print a token or password, and must not hold command
//! logic beyond the dispatch.

use std::io::Write;
use std::time::{Duration, SystemTime};

use masqdial_proto::v1 as pb;
use serde_json::Value;
use tonic::transport::Channel;

use crate::cli::{parse_timeouts, Command};
use crate::config::Settings;
use crate::conn::{self, Clients};
use crate::errors::{self, Failure, Kind};
use crate::store::{StoredToken, TokenStore};

pub use crate::cmd::ipchains::ipchains_exit;
pub use crate::words::dial_event;

/// A client session: settings, the token store and a lazily opened channel.
#[derive(Debug)]
pub struct Session {
    /// Resolved settings (server, user, CA, timeout…).
    pub settings: Settings,
    /// Print JSON instead of tables (errors too).
    pub json: bool,
    /// Allow a password over plain http to a non-loopback host.
    pub insecure: bool,
    /// Token store.
    pub store: TokenStore,
    /// The channel, opened on first use (`watch` drops it to reconnect).
    pub(crate) channel: Option<Channel>,
}

impl Session {
    /// New session; nothing is connected yet.
    pub fn new(settings: Settings) -> Session {
        Session {
            store: settings.store(),
            settings,
            json: false,
            insecure: false,
            channel: None,
        }
    }

    /// The user whose token commands use: the explicit one, else the server's most recent
    /// login (None when there is none).
    pub fn current_user(&self) -> Option<String> {
        if let Some(u) = &self.settings.user {
            return Some(u.clone());
        }
        self.store
            .get(&self.settings.server)
            .ok()
            .flatten()
            .map(|t| t.user)
    }

    /// `user@host:port` for the shell prompt (`?@host:port` when not logged in).
    pub fn prompt_identity(&self) -> String {
        format!(
            "{}@{}",
            self.current_user().unwrap_or_else(|| "?".into()),
            self.settings.server_display()
        )
    }

    /// Error context for `cmd`.
    pub fn context(&self, cmd: &Command) -> errors::Context {
        let user = match cmd {
            Command::Login => self.login_user(),
            _ => self.current_user(),
        };
        errors::Context {
            server: self.settings.server.clone(),
            user,
            command: cmd.label(),
            connection: cmd.connection().map(String::from),
            timeout_secs: self.settings.timeout.as_secs(),
        }
    }

    pub(crate) async fn channel(&mut self) -> anyhow::Result<Channel> {
        if let Some(c) = &self.channel {
            return Ok(c.clone());
        }
        let ep = conn::endpoint(&self.settings.connect_url, self.settings.ca.as_deref())?
            .timeout(self.settings.timeout);
        let c = ep.connect().await?;
        self.channel = Some(c.clone());
        Ok(c)
    }

    /// The stored, unexpired token of the current user for this server.
    pub fn token(&self) -> anyhow::Result<StoredToken> {
        let server = &self.settings.server;
        let user = self.settings.user.as_deref();
        let who = user.map(|u| format!(" as {u}")).unwrap_or_default();
        let login = match user {
            Some(u) => format!("run `mclient -u {u} login`"),
            None => "run `mclient login`".to_string(),
        };
        match self.store.get_user(server, user)? {
            None => Err(Failure::new(
                Kind::NotLoggedIn,
                format!("you are not logged in to {server}{who}"),
                Some(login),
            )
            .into()),
            Some(t) if t.expired(SystemTime::now()) => Err(Failure::new(
                Kind::NotLoggedIn,
                format!("your login to {server} as {} has expired", t.user),
                Some(format!("run `mclient -u {} login`", t.user)),
            )
            .into()),
            Some(t) => Ok(t),
        }
    }

    /// Clients carrying the stored token. The server is reached first, so an unreachable
    /// server is reported as such before any token check.
    pub async fn clients(&mut self) -> anyhow::Result<Clients> {
        let ch = self.channel().await?;
        let token = self.token()?;
        Clients::new(ch, Some(&token.token))
    }

    /// Connection names (best effort, empty on any error).
    pub async fn connection_names(&mut self) -> Vec<String> {
        let Ok(mut c) = self.clients().await else {
            return Vec::new();
        };
        if let Ok(r) = c
            .dialer
            .list_connections(pb::ListConnectionsRequest {})
            .await
        {
            return r
                .into_inner()
                .connections
                .into_iter()
                .map(|c| c.name)
                .collect();
        }
        match c.auth.who_am_i(pb::WhoAmIRequest {}).await {
            Ok(r) => r.into_inner().allowed_connections,
            Err(_) => Vec::new(),
        }
    }

    /// Every configured connection name, or None when the server cannot list them.
    pub(crate) async fn all_connection_names(&mut self) -> Option<Vec<String>> {
        let mut c = self.clients().await.ok()?;
        let r = c
            .dialer
            .list_connections(pb::ListConnectionsRequest {})
            .await
            .ok()?;
        let names: Vec<String> = r
            .into_inner()
            .connections
            .into_iter()
            .map(|c| c.name)
            .collect();
        self.cache_names(&names);
        Some(names)
    }

    /// Where the connection names are cached for completion: beside the token store.
    fn names_cache(&self) -> std::path::PathBuf {
        self.store.path().with_file_name("connections.cache")
    }

    /// Remember the connection names (one a line) for `__names`; best effort.
    pub(crate) fn cache_names(&self, names: &[String]) {
        let text: String = names
            .iter()
            .filter(|n| crate::safe::line(n) == n.as_str())
            .map(|n| format!("{n}\n"))
            .collect();
        let path = self.names_cache();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(path, text);
    }

    /// `mclient __names`: the server's connection names within 2 s, else the cached ones.
    pub(crate) async fn names(&mut self) {
        let asked = tokio::time::timeout(Duration::from_secs(2), self.all_connection_names())
            .await
            .ok()
            .flatten();
        let names = match asked {
            Some(n) => n,
            None => std::fs::read_to_string(self.names_cache())
                .map(|t| t.lines().map(str::to_string).collect())
                .unwrap_or_default(),
        };
        let mut out = std::io::stdout().lock();
        for n in names {
            let _ = writeln!(out, "{}", crate::safe::line(&n));
        }
    }

    pub(crate) fn emit(&self, human: &str, json: Value) {
        let mut out = std::io::stdout().lock();
        // Every human output goes through the escaping: remote text never reaches the
        // terminal as a control sequence (fields were already kept to one line each).
        let human = crate::safe::block(human);
        let _ = if self.json {
            writeln!(out, "{json}")
        } else if human.ends_with('\n') || human.is_empty() {
            write!(out, "{human}")
        } else {
            writeln!(out, "{human}")
        };
        let _ = out.flush();
    }

    /// Print a failure: a sentence and a hint on stderr, or `{"error": …}` on stdout with
    /// `--json`.
    pub fn report(&self, f: &Failure) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", f.json());
            let _ = out.flush();
        } else {
            eprint!("{}", crate::safe::block(&f.human("mclient")));
        }
    }

    /// Run one command; any failure comes back worded for the user.
    pub async fn run(&mut self, cmd: &Command) -> Result<(), Failure> {
        let result = self.execute(cmd).await;
        let Err(err) = result else {
            return Ok(());
        };
        let ctx = self.context(cmd);
        let mut f = errors::classify(&err, &ctx);
        // "Not logged in", "not supported" or a broken exchange may mean that something
        // other than mserver answers on that port: ask it, and say what answered.
        if matches!(
            f.kind,
            Kind::NotLoggedIn | Kind::Unsupported | Kind::Unreachable | Kind::Local
        ) && !f.message.contains("did not answer")
        {
            // A command that checked its token before connecting connects now to ask.
            let ch = match self.channel.clone() {
                Some(c) => Some(c),
                None if f.kind == Kind::NotLoggedIn => self.channel().await.ok(),
                None => None,
            };
            if let Some(c) = ch {
                let probe = crate::conn::identify(c).await;
                tracing::debug!(?probe, "what answers on the server's port");
                let mut answered = errors::what_answered(&probe);
                // The exchange broke before it told anything, or told only "not gRPC" (how an
                // HTTP/1 answer breaks HTTP/2 depends on timing): look at what the port says.
                if matches!(
                    answered,
                    errors::Answered::Unknown | errors::Answered::NotGrpc { http_status: None }
                ) {
                    if let Some(b) = crate::conn::sniff(&self.settings.connect_url).await {
                        let seen = errors::sniffed(&b);
                        if seen != errors::Answered::Unknown {
                            answered = seen;
                        }
                    }
                }
                if let Some(n) = errors::not_mserver(&answered, &ctx.server) {
                    f = n;
                }
            }
        }
        if let Command::Ipchains { .. } = cmd {
            f = ipchains_exit(f);
        }
        // An unknown connection name: NOT_FOUND with a suggestion, whatever the server said.
        if let (Some(name), Kind::NotFound | Kind::Denied) = (cmd.connection(), f.kind) {
            if let Some(names) = self.all_connection_names().await {
                if !names.iter().any(|n| n == name) {
                    let hint = match errors::did_you_mean(name, &names) {
                        Some(s) => format!("did you mean `{s}`? (`mclient list` shows them all)"),
                        None => "`mclient list` shows the connection names".into(),
                    };
                    f = Failure::new(
                        Kind::NotFound,
                        format!("there is no connection named `{name}`"),
                        Some(hint),
                    );
                }
            }
        }
        Err(f)
    }

    /// Run one command (errors unworded; see [`Session::run`]).
    pub async fn execute(&mut self, cmd: &Command) -> anyhow::Result<()> {
        match cmd {
            Command::Login => self.login().await,
            Command::Logout => self.logout().await,
            Command::Whoami => self.whoami().await,
            Command::Sessions => self.sessions().await,
            Command::Revoke { target } => self.revoke(target).await,
            Command::List => self.list().await,
            Command::Cinfo { name, timestamps } => self.cinfo(name, *timestamps).await,
            Command::Dial { name } => self.dial(name).await,
            Command::Hangup { name, force } => self.hangup(name.as_deref(), *force).await,
            Command::Status { name } => self.status(name.as_deref().unwrap_or("")).await,
            Command::Who => self.who().await,
            Command::Watch {
                reconnect,
                masq: true,
                filter,
            } => {
                self.watch_masq(filter, Duration::from_secs(*reconnect))
                    .await
            }
            Command::Watch {
                reconnect, filter, ..
            } => {
                if !filter.is_empty() {
                    return Err(Failure::usage(
                        "the filters -p -s -d --sport --dport --state go with `watch --masq`",
                        "add --masq to follow the masquerade table",
                    )
                    .into());
                }
                self.watch(Duration::from_secs(*reconnect)).await
            }
            Command::Modems => self.modems().await,
            Command::Masq {
                numeric,
                verbose,
                resolve,
                resolve_timeout_ms,
                filter,
                delete,
            } => {
                if *delete {
                    return self.masq_delete(filter).await;
                }
                let resolve = resolve.then(|| Duration::from_millis(*resolve_timeout_ms));
                self.masq(*numeric, *verbose, resolve, filter).await
            }
            Command::Portfw { args } => self.portfw(args).await,
            Command::Proc { name } => self.proc_view(name).await,
            Command::Ports => self.ports().await,
            Command::Timeouts { args } => self.timeouts(parse_timeouts(args)?).await,
            Command::Ipchains { args } => self.ipchains(args).await,
            Command::Save { file } => self.save(file.as_deref()).await,
            Command::Restore {
                file,
                all,
                dry_run,
                force,
            } => self.restore(file, *all, *dry_run, *force).await,
            Command::Counters => self.counters().await,
            Command::Completions { shell } => {
                let mut out = std::io::stdout().lock();
                out.write_all(&crate::cli::completions(*shell))?;
                Ok(())
            }
            Command::Man => {
                let mut out = std::io::stdout().lock();
                out.write_all(&crate::cli::man_page()?)?;
                Ok(())
            }
            Command::Names => {
                self.names().await;
                Ok(())
            }
            Command::Shell => Err(Failure::usage(
                "you are already in the shell",
                "type `help` for the commands, `exit` to leave",
            )
            .into()),
        }
    }
}
