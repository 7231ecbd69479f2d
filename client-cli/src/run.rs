//! Executing one parsed [`Command`] against the server and printing the answer
//! (human tables, or JSON with `--json`, see `client-cli/JSON.md`), and turning any failure
//! into a [`Failure`] (plain sentence, next step, exit code).
//!
//! Owns the session (settings, channel, which stored token) and output; it must never print
//! a token or password.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use masqdial_proto::v1 as pb;
use serde_json::{json, Value};
use tonic::transport::Channel;

use crate::cli::{parse_timeouts, Command, TimeoutsArgs};
use crate::config::{self, ClientConfig, ServerUrl, Settings};
use crate::conn::{self, Clients};
use crate::errors::{self, DialFailed, Failure, Kind};
use crate::format;
use crate::ipchains::{self, Op};
use crate::json as j;
use crate::store::{StoredToken, TokenStore};

/// Page size used to read the whole masquerade table.
const MASQ_PAGE: u32 = 1000;

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
    channel: Option<Channel>,
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

    async fn channel(&mut self) -> anyhow::Result<Channel> {
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
    async fn all_connection_names(&mut self) -> Option<Vec<String>> {
        let mut c = self.clients().await.ok()?;
        let r = c
            .dialer
            .list_connections(pb::ListConnectionsRequest {})
            .await
            .ok()?;
        Some(
            r.into_inner()
                .connections
                .into_iter()
                .map(|c| c.name)
                .collect(),
        )
    }

    fn emit(&self, human: &str, json: Value) {
        let mut out = std::io::stdout().lock();
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
            eprint!("{}", f.human("mclient"));
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
            Command::Cinfo { name } => self.cinfo(name).await,
            Command::Dial { name } => self.dial(name).await,
            Command::Hangup { name, force } => self.hangup(name.as_deref(), *force).await,
            Command::Status { name } => self.status(name.as_deref().unwrap_or("")).await,
            Command::Who => self.who().await,
            Command::Watch { reconnect } => self.watch(Duration::from_secs(*reconnect)).await,
            Command::Modems => self.modems().await,
            Command::Masq {
                numeric,
                verbose,
                resolve,
                resolve_timeout_ms,
            } => {
                let resolve = resolve.then(|| Duration::from_millis(*resolve_timeout_ms));
                self.masq(*numeric, *verbose, resolve).await
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
            Command::Shell => Err(Failure::usage(
                "you are already in the shell",
                "type `help` for the commands, `exit` to leave",
            )
            .into()),
        }
    }

    fn login_user(&self) -> Option<String> {
        self.settings
            .user
            .clone()
            .or_else(|| config::login_name(&config::ProcessEnv))
    }

    async fn login(&mut self) -> anyhow::Result<()> {
        let server = self.settings.server.clone();
        let url = ServerUrl::parse(&self.settings.connect_url)?;
        if !url.https && !url.is_loopback() && !self.insecure {
            return Err(Failure::usage(
                format!("refusing to send a password over plain http to {server}"),
                "use an https:// server with --ca, or pass --insecure if this network is trusted",
            )
            .into());
        }
        let Some(user) = self.login_user() else {
            return Err(Failure::usage(
                "no user name to log in with",
                "pass -u USER (or set MASQDIAL_USER)",
            )
            .into());
        };
        // Reach the server before asking for the password.
        let ch = self.channel().await?;
        let password = read_password(&user, &server)?;
        let mut c = Clients::new(ch, None)?;
        let r = c
            .auth
            .login(pb::LoginRequest {
                user: user.clone(),
                password,
            })
            .await?
            .into_inner();
        let expires_at = r.expires_at.as_ref().and_then(format::system_time);
        self.store.put(StoredToken {
            server: server.clone(),
            user: user.clone(),
            token: r.token,
            expires_at,
            role: r.role,
        })?;
        if let Some(path) = &self.settings.config_file {
            if self.settings.server_from_option {
                if let Err(e) = ClientConfig::remember_server(path, &server) {
                    eprintln!("mclient: warning: could not record the default server: {e:#}");
                }
            }
        }
        let left = expires_at
            .and_then(|e| e.duration_since(SystemTime::now()).ok())
            .map(|d| format::human_duration(d.as_secs()))
            .unwrap_or_else(|| "?".into());
        self.emit(
            &format!(
                "logged in to {server} as {user} ({}); token valid for {left}",
                format::role(r.role)
            ),
            json!({"server": server, "user": user, "role": format::role(r.role),
                   "expires_at": j::time(r.expires_at.as_ref())}),
        );
        Ok(())
    }

    async fn logout(&mut self) -> anyhow::Result<()> {
        let server = self.settings.server.clone();
        let tok = self.token()?;
        if let Ok(ch) = self.channel().await {
            if let Ok(mut c) = Clients::new(ch, Some(&tok.token)) {
                // The server may already have forgotten the token; forgetting it here matters.
                let _ = c.auth.logout(pb::LogoutRequest {}).await;
            }
        }
        self.store.remove_user(&server, Some(&tok.user))?;
        self.emit(
            &format!("logged {} out of {server}", tok.user),
            json!({"server": server, "user": tok.user}),
        );
        Ok(())
    }

    async fn whoami(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let w = c.auth.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
        let left = w
            .expires_at
            .as_ref()
            .and_then(format::system_time)
            .and_then(|e| e.duration_since(SystemTime::now()).ok())
            .map(|d| format::human_duration(d.as_secs()))
            .unwrap_or_else(|| "?".into());
        let server = &self.settings.server;
        self.emit(
            &format!(
                "{} ({}) at {server}, seen from {}\nmay dial: {}\ntoken valid for {left}",
                w.user,
                format::role(w.role),
                w.peer,
                if w.allowed_connections.is_empty() {
                    "-".to_string()
                } else {
                    w.allowed_connections.join(", ")
                }
            ),
            json!({"server": server, "user": w.user, "role": format::role(w.role), "peer": w.peer,
                   "allowed_connections": w.allowed_connections,
                   "expires_at": j::time(w.expires_at.as_ref())}),
        );
        Ok(())
    }

    async fn sessions(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .auth
            .list_sessions(pb::ListSessionsRequest {})
            .await?
            .into_inner();
        let now = SystemTime::now();
        let rows: Vec<Vec<String>> = r
            .sessions
            .iter()
            .map(|s| {
                let left = s
                    .expires_at
                    .as_ref()
                    .and_then(format::system_time)
                    .and_then(|e| e.duration_since(now).ok())
                    .map(|d| format::human_duration(d.as_secs()))
                    .unwrap_or_else(|| "?".into());
                vec![
                    s.id.clone(),
                    s.user.clone(),
                    format::role(s.role).into(),
                    if s.peer.is_empty() {
                        "-".into()
                    } else {
                        s.peer.clone()
                    },
                    format::since(s.issued_at.as_ref(), now),
                    left,
                ]
            })
            .collect();
        let v: Vec<Value> = r
            .sessions
            .iter()
            .map(|s| {
                json!({"id": s.id, "user": s.user, "role": format::role(s.role),
                       "peer": if s.peer.is_empty() { Value::Null } else { json!(s.peer) },
                       "issued_at": j::time(s.issued_at.as_ref()),
                       "expires_at": j::time(s.expires_at.as_ref())})
            })
            .collect();
        self.emit(
            &format::table(&["ID", "USER", "ROLE", "FROM", "FOR", "EXPIRES IN"], &rows),
            json!({"sessions": v}),
        );
        Ok(())
    }

    async fn revoke(&mut self, target: &str) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        // A session id is 16 hex digits; user names may not look like one.
        let is_id = target.len() == 16 && target.chars().all(|c| c.is_ascii_hexdigit());
        let req = if is_id {
            pb::RevokeSessionRequest {
                user: String::new(),
                id: target.to_ascii_lowercase(),
            }
        } else {
            pb::RevokeSessionRequest {
                user: target.into(),
                id: String::new(),
            }
        };
        let r = c.auth.revoke_session(req).await?.into_inner();
        let what = if is_id { "session" } else { "user" };
        self.emit(
            &format!(
                "revoked {} session{} of {what} {target}",
                r.revoked,
                if r.revoked == 1 { "" } else { "s" }
            ),
            json!({"target": target, "kind": what, "revoked": r.revoked}),
        );
        Ok(())
    }

    async fn list(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .dialer
            .list_connections(pb::ListConnectionsRequest {})
            .await?
            .into_inner();
        let rows: Vec<Vec<String>> = r
            .connections
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    format::link_state(c.state).into(),
                    if c.allowed { "yes" } else { "no" }.into(),
                    c.description.clone(),
                ]
            })
            .collect();
        let v: Vec<Value> = r.connections.iter().map(j::connection).collect();
        self.emit(
            &format::table(&["CONNECTION", "STATE", "MAY DIAL", "DESCRIPTION"], &rows),
            json!({"connections": v}),
        );
        Ok(())
    }

    async fn cinfo(&mut self, name: &str) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let i = c
            .dialer
            .get_connection(pb::GetConnectionRequest { name: name.into() })
            .await?
            .into_inner();
        let conn = i.connection.clone().unwrap_or_default();
        let link = i.link.clone().unwrap_or_default();
        let secs = |d: &Option<prost_types::Duration>| d.as_ref().map_or(0, |d| d.seconds);
        let mut h = String::new();
        let mut kv = |k: &str, v: String| h.push_str(&format!("{k:<18} {v}\n"));
        kv("connection", conn.name.clone());
        kv("description", conn.description.clone());
        kv("numbers", conn.numbers.join(", "));
        kv("modems", conn.modems.join(", "));
        kv("dial prefix", i.dial_prefix.clone());
        kv("auth", i.auth.clone());
        kv("may dial", if conn.allowed { "yes" } else { "no" }.into());
        kv(
            "redial",
            format!(
                "{} attempts, {} s apart",
                i.redial_attempts,
                secs(&i.redial_delay)
            ),
        );
        let never = |s: i64| {
            if s == 0 {
                "never".to_string()
            } else {
                format!("{s} s")
            }
        };
        kv("idle timeout", never(secs(&i.idle_timeout)));
        kv("max connect", never(secs(&i.max_connect_time)));
        kv("redial on loss", i.redial_on_loss.to_string());
        kv("state", format::link_state(link.state).into());
        if !link.local_address.is_empty() {
            kv(
                "addresses",
                format!("{} -> {}", link.local_address, link.peer_address),
            );
        }
        if let Some(q) = &link.queues {
            kv("link queue", format::queues_line(q));
        }
        if let Some(b) = &link.budget {
            kv("budget", format::budget_line(b));
        }
        if let Some(p) = &i.ppp {
            for (k, v) in format::ppp_lines(p) {
                kv(&format!("ppp {k}"), v);
            }
        }
        if !i.allowed_users.is_empty() {
            kv("allowed users", i.allowed_users.join(", "));
        }
        for t in &i.transcript {
            h.push_str(&format!("  [{}] {}\n", t.kind, t.text));
        }
        self.emit(&h, j::connection_info(&i));
        Ok(())
    }

    async fn dial(&mut self, name: &str) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let mut stream = c
            .dialer
            .dial(pb::DialRequest { name: name.into() })
            .await?
            .into_inner();
        while let Some(ev) = stream.message().await? {
            let (line, outcome) = dial_event(&ev);
            self.emit(&line, j::dial_event(name, &ev));
            match outcome {
                Some(Ok(())) => return Ok(()),
                Some(Err(why)) => return Err(DialFailed(why).into()),
                None => {}
            }
        }
        Err(DialFailed("the server ended the dial without an outcome".into()).into())
    }

    async fn hangup(&mut self, name: Option<&str>, force: bool) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                let me = self.token()?.user;
                let w = c.dialer.who(pb::WhoRequest {}).await?.into_inner();
                let mut mine: Vec<String> = w
                    .entries
                    .iter()
                    .filter(|e| e.holder.as_ref().is_some_and(|h| h.user == me))
                    .map(|e| e.connection.clone())
                    .collect();
                mine.sort();
                mine.dedup();
                match mine.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(Failure::new(
                            Kind::NotNow,
                            format!("{me} holds no link, so there is nothing to hang up"),
                            Some("`mclient who` shows who holds which link".into()),
                        )
                        .into())
                    }
                    many => {
                        return Err(Failure::usage(
                            format!("{me} holds {} links: {}", many.len(), many.join(", ")),
                            "name the one to hang up: `mclient hangup NAME`",
                        )
                        .into())
                    }
                }
            }
        };
        let r = c
            .dialer
            .hangup(pb::HangupRequest {
                name: name.clone(),
                force,
            })
            .await?
            .into_inner();
        let human = if r.dropped {
            format!("{name}: hanging up")
        } else {
            format!(
                "{name}: released; still held by {}",
                r.remaining_holders.join(", ")
            )
        };
        self.emit(
            &human,
            json!({"connection": name, "dropped": r.dropped, "remaining_holders": r.remaining_holders}),
        );
        Ok(())
    }

    async fn status(&mut self, name: &str) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .dialer
            .status(pb::StatusRequest { name: name.into() })
            .await?
            .into_inner();
        let now = SystemTime::now();
        let rows: Vec<Vec<String>> = r
            .links
            .iter()
            .map(|l| {
                vec![
                    l.connection.clone(),
                    format::link_state(l.state).into(),
                    l.modem.clone(),
                    if l.speed_bps > 0 {
                        l.speed_bps.to_string()
                    } else {
                        String::new()
                    },
                    l.local_address.clone(),
                    format::since(l.connected_since.as_ref(), now),
                    format::human_bytes(l.bytes_in),
                    format::human_bytes(l.bytes_out),
                    l.holders
                        .iter()
                        .map(|h| format!("{}@{}", h.user, h.host))
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        let v: Vec<Value> = r.links.iter().map(j::link).collect();
        let mut human = format::table(
            &[
                "CONNECTION",
                "STATE",
                "MODEM",
                "BPS",
                "ADDRESS",
                "UP",
                "IN",
                "OUT",
                "HOLDERS",
            ],
            &rows,
        );
        for l in &r.links {
            if let Some(q) = &l.queues {
                human.push_str(&format!("{}: {}\n", l.connection, format::queues_line(q)));
            }
            if let Some(b) = &l.budget {
                human.push_str(&format!(
                    "{}: budget: {}\n",
                    l.connection,
                    format::budget_line(b)
                ));
            }
        }
        self.emit(&human, json!({"links": v}));
        Ok(())
    }

    async fn who(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c.dialer.who(pb::WhoRequest {}).await?.into_inner();
        let now = SystemTime::now();
        let rows: Vec<Vec<String>> = r
            .entries
            .iter()
            .map(|e| {
                let h = e.holder.clone().unwrap_or_default();
                vec![
                    e.connection.clone(),
                    h.user,
                    h.host,
                    format::since(h.since.as_ref(), now),
                ]
            })
            .collect();
        let v: Vec<Value> = r
            .entries
            .iter()
            .map(|e| {
                let h = e.holder.clone().unwrap_or_default();
                json!({"connection": e.connection, "user": h.user, "host": h.host,
                       "since": j::time(h.since.as_ref())})
            })
            .collect();
        self.emit(
            &format::table(&["CONNECTION", "USER", "HOST", "FOR"], &rows),
            json!({"holders": v}),
        );
        Ok(())
    }

    async fn watch_stream(&mut self) -> anyhow::Result<tonic::Streaming<pb::LinkEvent>> {
        let mut c = self.clients().await?;
        Ok(c.dialer
            .watch_links(pb::WatchLinksRequest { sample_ms: 1000 })
            .await?
            .into_inner())
    }

    async fn watch(&mut self, reconnect_for: Duration) -> anyhow::Result<()> {
        let mut s = self.watch_stream().await?;
        loop {
            let next = tokio::select! {
                m = s.message() => m,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let ev = match next {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    s = self
                        .rewatch(reconnect_for, "the server closed the stream")
                        .await?;
                    continue;
                }
                Err(e) => {
                    // The server's own refusals end the watch; anything else is a lost link.
                    use tonic::Code as C;
                    if matches!(
                        e.code(),
                        C::Unauthenticated
                            | C::PermissionDenied
                            | C::NotFound
                            | C::InvalidArgument
                            | C::Unimplemented
                            | C::FailedPrecondition
                            | C::ResourceExhausted
                    ) {
                        return Err(e.into());
                    }
                    s = self.rewatch(reconnect_for, "connection lost").await?;
                    continue;
                }
            };
            let (h, v) = match ev.event {
                Some(pb::link_event::Event::State(l)) => (
                    format!(
                        "{}: {} {}",
                        l.connection,
                        format::link_state(l.state),
                        l.local_address
                    )
                    .trim_end()
                    .to_string(),
                    {
                        let mut v = j::link(&l);
                        if let Value::Object(m) = &mut v {
                            m.insert("event".into(), json!("link"));
                        }
                        v
                    },
                ),
                Some(pb::link_event::Event::Sample(t)) => (
                    format!(
                        "{}: in {} out {} ({} ms)",
                        t.connection,
                        format::human_bytes(t.bytes_in),
                        format::human_bytes(t.bytes_out),
                        t.period_ms
                    ),
                    json!({"event": "sample", "connection": t.connection, "bytes_in": t.bytes_in,
                           "bytes_out": t.bytes_out, "packets_in": t.packets_in,
                           "packets_out": t.packets_out, "period_ms": t.period_ms}),
                ),
                Some(pb::link_event::Event::Progress(p)) => {
                    let ev = p.event.clone().unwrap_or_default();
                    let (line, _) = dial_event(&ev);
                    (
                        format!("{}: {line}", p.connection),
                        json!({"event": "progress", "connection": p.connection,
                               "progress": j::dial_event(&p.connection, &ev)}),
                    )
                }
                Some(pb::link_event::Event::Budget(b)) => (
                    format!(
                        "{}: budget {}: {}",
                        b.connection,
                        if b.hang_up { "hang-up" } else { "warning" },
                        b.message
                    ),
                    json!({"event": "budget", "connection": b.connection, "limit": b.limit,
                           "hang_up": b.hang_up, "remaining": b.remaining,
                           "message": b.message}),
                ),
                Some(pb::link_event::Event::PacketLog(l)) => (
                    l.line.clone(),
                    json!({"event": "packet_log", "line": l.line}),
                ),
                None => continue,
            };
            self.emit(&h, v);
        }
    }

    /// Reconnect a lost watch: retry every second for `window`, then fail with exit 8.
    async fn rewatch(
        &mut self,
        window: Duration,
        why: &str,
    ) -> anyhow::Result<tonic::Streaming<pb::LinkEvent>> {
        let server = self.settings.server.clone();
        let lost = || {
            Failure::new(
                Kind::Unreachable,
                format!(
                    "lost the server at {server} ({why}) and could not reconnect within {} s",
                    window.as_secs()
                ),
                Some("check that mserver is running, then run `mclient watch` again".into()),
            )
        };
        if window.is_zero() {
            return Err(lost().into());
        }
        self.emit(
            &format!("mclient: lost the server at {server} ({why}); reconnecting…"),
            json!({"event": "reconnecting", "server": server, "reason": why}),
        );
        let deadline = tokio::time::Instant::now() + window;
        loop {
            self.channel = None;
            if let Ok(s) = self.watch_stream().await {
                self.emit(
                    &format!("mclient: reconnected to {server}"),
                    json!({"event": "reconnected", "server": server}),
                );
                return Ok(s);
            }
            if tokio::time::Instant::now() + Duration::from_secs(1) > deadline {
                return Err(lost().into());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tokio::signal::ctrl_c() => return Err(lost().into()),
            }
        }
    }

    async fn modems(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .modems
            .list_modems(pb::ListModemsRequest {})
            .await?
            .into_inner();
        let rows: Vec<Vec<String>> = r
            .modems
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.device.clone(),
                    m.baud.to_string(),
                    format::modem_state_text(m, std::time::SystemTime::now()),
                    m.connection.clone(),
                    m.last_error.clone(),
                ]
            })
            .collect();
        let v: Vec<Value> = r.modems.iter().map(j::modem).collect();
        let mut text = format::table(
            &[
                "MODEM",
                "DEVICE",
                "BPS",
                "STATE",
                "CONNECTION",
                "LAST ERROR",
            ],
            &rows,
        );
        let cells: Vec<Vec<String>> = r
            .modems
            .iter()
            .filter_map(|m| {
                m.cellular
                    .as_ref()
                    .map(|c| format::cellular_row(&m.name, c))
            })
            .collect();
        if !cells.is_empty() {
            text.push('\n');
            text.push_str(&format::table(
                &[
                    "MODEM", "SIGNAL", "REG", "OPERATOR", "TECH", "SIM", "IMEI", "MODEL",
                ],
                &cells,
            ));
        }
        self.emit(&text, json!({"modems": v}));
        Ok(())
    }

    async fn masq_entries(&mut self) -> anyhow::Result<Vec<pb::MasqEntry>> {
        let mut c = self.clients().await?;
        let mut all = Vec::new();
        let mut page_token = String::new();
        // Bounded: at most 10 000 pages of MASQ_PAGE entries (far beyond any port range).
        for _ in 0..10_000 {
            let r = c
                .nat
                .list_masq(pb::ListMasqRequest {
                    page_size: MASQ_PAGE,
                    page_token: page_token.clone(),
                    protocol: 0,
                })
                .await?
                .into_inner();
            all.extend(r.entries);
            if r.next_page_token.is_empty() {
                break;
            }
            page_token = r.next_page_token;
        }
        Ok(all)
    }

    async fn masq(
        &mut self,
        numeric: bool,
        verbose: bool,
        resolve: Option<Duration>,
    ) -> anyhow::Result<()> {
        if self.json {
            let entries = self.masq_entries().await?;
            let v: Vec<Value> = entries.iter().map(j::masq_entry).collect();
            self.emit("", json!({"entries": v}));
            return Ok(());
        }
        // The server renders it (`ipchains -M -L`), with nat-core's one services table for
        // the names; addresses are resolved only with -r, and never past its bound.
        let mut text = self.render(pb::View::Masq, numeric, verbose).await?;
        if let Some(bound) = resolve {
            let addrs = crate::rdns::listing_addrs(&text);
            let names = tokio::task::spawn_blocking(move || {
                let r = crate::rdns::SystemResolver::new(bound);
                crate::rdns::resolve_all(&addrs, std::sync::Arc::new(r), bound)
            })
            .await
            .unwrap_or_default();
            text = crate::rdns::rename_listing(&text, &names);
        }
        self.emit(&text, Value::Null);
        Ok(())
    }

    async fn render(
        &mut self,
        view: pb::View,
        numeric: bool,
        verbose: bool,
    ) -> anyhow::Result<String> {
        let mut c = self.clients().await?;
        Ok(c.nat
            .render_view(pb::RenderViewRequest {
                view: view as i32,
                chain: String::new(),
                numeric,
                verbose,
                exact: false,
                line_numbers: false,
            })
            .await?
            .into_inner()
            .text)
    }

    async fn portfw(&mut self, args: &[String]) -> anyhow::Result<()> {
        let list = args.is_empty() || args.iter().any(|a| a == "-l" || a == "--list");
        let text = if list {
            self.render(pb::View::Portfw, true, false).await?
        } else {
            let mut c = self.clients().await?;
            c.nat
                .port_fw(pb::PortFwRequest {
                    command: args.join(" "),
                })
                .await?
                .into_inner()
                .text
        };
        self.emit(&text, json!({ "text": text }));
        Ok(())
    }

    async fn proc_view(&mut self, name: &str) -> anyhow::Result<()> {
        let name = name.trim_start_matches("/proc/").trim_start_matches("net/");
        let view = match name {
            "ip_masquerade" => pb::View::ProcMasquerade,
            "ip_masq/tcp" => pb::View::ProcMasqTcp,
            "ip_masq/udp" => pb::View::ProcMasqUdp,
            "ip_masq/icmp" => pb::View::ProcMasqIcmp,
            "ip_masq/app" => pb::View::ProcMasqApp,
            "ip_masq/portfw" => pb::View::ProcMasqPortfw,
            "ip_fwchains" => pb::View::ProcFwchains,
            "ip_fwnames" => pb::View::ProcFwnames,
            other => {
                return Err(crate::errors::Failure::usage(
                    format!("no /proc view `{other}'"),
                    "one of ip_masquerade, ip_masq/tcp, ip_masq/udp, ip_masq/icmp, ip_masq/app, ip_masq/portfw, ip_fwchains, ip_fwnames",
                )
                .into())
            }
        };
        let text = self.render(view, true, false).await?;
        self.emit(&text, json!({ "text": text }));
        Ok(())
    }

    async fn ports(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let f = c
            .nat
            .free_ports(pb::FreePortsRequest {})
            .await?
            .into_inner();
        let rows = vec![
            vec!["tcp".into(), f.tcp.to_string(), f.tcp_total.to_string()],
            vec!["udp".into(), f.udp.to_string(), f.udp_total.to_string()],
            vec!["icmp".into(), f.icmp.to_string(), f.icmp_total.to_string()],
        ];
        let human = format!(
            "ports {}-{}\n{}",
            f.port_low,
            f.port_high,
            format::table(&["PROTO", "FREE", "TOTAL"], &rows)
        );
        self.emit(
            &human,
            json!({"port_low": f.port_low, "port_high": f.port_high, "protocols": [
                {"protocol": "tcp", "free": f.tcp, "total": f.tcp_total},
                {"protocol": "udp", "free": f.udp, "total": f.udp_total},
                {"protocol": "icmp", "free": f.icmp, "total": f.icmp_total}]}),
        );
        Ok(())
    }

    async fn timeouts(&mut self, args: TimeoutsArgs) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let t = match args {
            TimeoutsArgs::Get => c
                .nat
                .get_timeouts(pb::GetTimeoutsRequest {})
                .await?
                .into_inner(),
            TimeoutsArgs::Set(tcp, tcpfin, udp) => c
                .nat
                .set_timeouts(pb::Timeouts {
                    tcp,
                    tcpfin,
                    udp,
                    icmp: 0,
                })
                .await?
                .into_inner(),
        };
        self.emit(
            &format!(
                "tcp {} s, tcpfin {} s, udp {} s, icmp {} s",
                t.tcp, t.tcpfin, t.udp, t.icmp
            ),
            j::timeouts(&t),
        );
        Ok(())
    }

    async fn ipchains(&mut self, args: &[String]) -> anyhow::Result<()> {
        let op = ipchains::parse(args).map_err(|e| {
            Failure::usage(
                format!("ipchains: {e}"),
                "Try `mclient ipchains -L` or `mclient help ipchains`",
            )
        })?;
        let verbose = ipchains::verbose(args);
        // The -v echo of ipchains 1.3 (and a local check of the spec, with ipchains' wording).
        let mut echo = String::new();
        if let Op::Append { spec, .. }
        | Op::Insert { spec, .. }
        | Op::Replace { spec, .. }
        | Op::DeleteSpec { spec, .. }
        | Op::Check { spec, .. } = &op
        {
            let rs = nat_core::chains::parse_rule(spec).map_err(|e| {
                Failure::usage(
                    format!("ipchains: {e}"),
                    "Try `mclient ipchains -L` or `mclient help ipchains`",
                )
            })?;
            if verbose {
                for r in rs.expand() {
                    echo.push_str(&r.verbose_line());
                }
            }
        }
        let mut c = self.clients().await?;
        let n = &mut c.nat;
        let changed = |r: pb::RuleChangeResponse| -> (String, Value) {
            let v: Vec<Value> = r.chains.iter().map(j::chain).collect();
            (String::new(), json!({"chains": v}))
        };
        let (human, v) = match op {
            Op::Append { chain, spec } => changed(
                n.append_rule(pb::AppendRuleRequest { chain, spec })
                    .await?
                    .into_inner(),
            ),
            Op::Insert {
                chain,
                number,
                spec,
            } => changed(
                n.insert_rule(pb::InsertRuleRequest {
                    chain,
                    number,
                    spec,
                })
                .await?
                .into_inner(),
            ),
            Op::Replace {
                chain,
                number,
                spec,
            } => changed(
                n.replace_rule(pb::ReplaceRuleRequest {
                    chain,
                    number,
                    spec,
                })
                .await?
                .into_inner(),
            ),
            Op::DeleteNumber { chain, number } => changed(
                n.delete_rule(pb::DeleteRuleRequest {
                    chain,
                    which: Some(pb::delete_rule_request::Which::Number(number)),
                })
                .await?
                .into_inner(),
            ),
            Op::DeleteSpec { chain, spec } => changed(
                n.delete_rule(pb::DeleteRuleRequest {
                    chain,
                    which: Some(pb::delete_rule_request::Which::Spec(spec)),
                })
                .await?
                .into_inner(),
            ),
            Op::Flush { chain } => changed(
                n.flush_chain(pb::FlushChainRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::Zero { chain } => changed(
                n.zero_counters(pb::ZeroCountersRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::NewChain { chain } => changed(
                n.new_chain(pb::NewChainRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::DeleteChain { chain } => changed(
                n.delete_chain(pb::DeleteChainRequest { chain })
                    .await?
                    .into_inner(),
            ),
            Op::Policy { chain, target } => changed(
                n.set_policy(pb::SetPolicyRequest { chain, target })
                    .await?
                    .into_inner(),
            ),
            Op::Check { chain, spec } => {
                let r = n
                    .check_packet(pb::CheckPacketRequest { chain, spec })
                    .await?
                    .into_inner();
                (
                    format!("packet {}", r.verdict),
                    json!({"verdict": r.verdict}),
                )
            }
            Op::List {
                chain,
                numeric,
                verbose,
                exact,
                line_numbers,
                zero,
            } => {
                let (text, chains) = if self.json {
                    let r = n
                        .list_chains(pb::ListChainsRequest {
                            chain: chain.clone(),
                        })
                        .await?
                        .into_inner();
                    (String::new(), r.chains)
                } else {
                    let r = n
                        .render_view(pb::RenderViewRequest {
                            view: pb::View::Chains as i32,
                            chain: chain.clone(),
                            numeric,
                            verbose,
                            exact,
                            line_numbers,
                        })
                        .await?
                        .into_inner();
                    (r.text, Vec::new())
                };
                if zero {
                    n.zero_counters(pb::ZeroCountersRequest { chain }).await?;
                }
                let v: Vec<Value> = chains.iter().map(j::chain).collect();
                (text, json!({"chains": v}))
            }
            Op::MasqList { numeric, verbose } => {
                if self.json {
                    let entries = self.masq_entries().await?;
                    let v: Vec<Value> = entries.iter().map(j::masq_entry).collect();
                    (String::new(), json!({"entries": v}))
                } else {
                    let r = n
                        .render_view(pb::RenderViewRequest {
                            view: pb::View::Masq as i32,
                            chain: String::new(),
                            numeric,
                            verbose,
                            exact: false,
                            line_numbers: false,
                        })
                        .await?
                        .into_inner();
                    (r.text, Value::Null)
                }
            }
            Op::MasqSet { tcp, tcpfin, udp } => {
                let t = n
                    .set_timeouts(pb::Timeouts {
                        tcp,
                        tcpfin,
                        udp,
                        icmp: 0,
                    })
                    .await?
                    .into_inner();
                (String::new(), j::timeouts(&t))
            }
        };
        self.emit(&format!("{echo}{human}"), v);
        Ok(())
    }

    async fn save(&mut self, file: Option<&std::path::Path>) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .nat
            .save_ruleset(pb::SaveRulesetRequest {})
            .await?
            .into_inner();
        match file {
            Some(f) => {
                std::fs::write(f, &r.ruleset)
                    .with_context(|| format!("cannot write {}", f.display()))?;
                self.emit(
                    &format!("saved to {}", f.display()),
                    json!({"file": f.display().to_string(), "ruleset": r.ruleset}),
                );
            }
            None => self.emit(&r.ruleset, json!({"file": null, "ruleset": r.ruleset})),
        }
        Ok(())
    }

    async fn restore(
        &mut self,
        file: &str,
        all: bool,
        dry_run: bool,
        force: bool,
    ) -> anyhow::Result<()> {
        let text = if file == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the ruleset from stdin")?;
            s
        } else {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
        };
        let mut c = self.clients().await?;
        let current = c
            .nat
            .save_ruleset(pb::SaveRulesetRequest {})
            .await?
            .into_inner()
            .ruleset;
        let plan = crate::restore::plan(&current, &text, all).map_err(|e| {
            Failure::new(
                Kind::Invalid,
                format!("{file}: {e}"),
                Some("the file must be ipchains-save text (`mclient save` writes it)".into()),
            )
        })?;
        let diff_text: String = plan.diff.iter().map(|l| format!("{l}\n")).collect();
        if dry_run {
            let human = if plan.diff.is_empty() {
                "no change\n".to_string()
            } else {
                diff_text
            };
            let human = if plan.loses_masq {
                format!("{human}warning: forward would lose every MASQ rule\n")
            } else {
                human
            };
            self.emit(
                &human,
                json!({"dry_run": true, "replaced": plan.replaced, "kept": plan.kept,
                       "diff": plan.diff, "loses_masq": plan.loses_masq,
                       "chains": null, "rules": null}),
            );
            return Ok(());
        }
        if plan.loses_masq && !force {
            return Err(Failure::new(
                Kind::NotNow,
                "this restore would leave forward without any MASQ rule, so the LAN would lose masquerading",
                Some("check with `mclient restore --dry-run FILE`, then add --force if that is what you want".into()),
            )
            .into());
        }
        let r = c
            .nat
            .apply_ruleset(pb::ApplyRulesetRequest {
                ruleset: plan.merged.clone(),
            })
            .await?
            .into_inner();
        if plan.loses_masq && !self.json {
            eprintln!("mclient: warning: forward has no MASQ rule any more (--force)");
        }
        let kept = if plan.kept.is_empty() {
            String::new()
        } else {
            format!("; kept {}", plan.kept.join(", "))
        };
        self.emit(
            &format!(
                "restored {} ({} chains, {} rules in the ruleset){kept}",
                plan.replaced.join(", "),
                r.chains,
                r.rules
            ),
            json!({"dry_run": false, "replaced": plan.replaced, "kept": plan.kept,
                   "diff": plan.diff, "loses_masq": plan.loses_masq,
                   "chains": r.chains, "rules": r.rules}),
        );
        Ok(())
    }

    async fn counters(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .nat
            .get_counters(pb::GetCountersRequest {})
            .await?
            .into_inner();
        let mut kv: Vec<(String, u64)> = r.counters.into_iter().collect();
        kv.sort();
        let rows: Vec<Vec<String>> = kv
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect();
        let m: serde_json::Map<String, Value> =
            kv.into_iter().map(|(k, v)| (k, json!(v))).collect();
        self.emit(
            &format::table(&["COUNTER", "VALUE"], &rows),
            json!({"counters": m}),
        );
        Ok(())
    }
}

/// ipchains' own exit codes for `mclient ipchains`: 2 for a parameter problem, 1 for any
/// other refusal; not logged in (3) and unreachable (8) keep theirs.
pub fn ipchains_exit(f: Failure) -> Failure {
    let kind = match f.kind {
        Kind::Usage | Kind::Invalid => Kind::Usage,
        Kind::NotLoggedIn | Kind::Unreachable => f.kind,
        _ => Kind::Local,
    };
    Failure { kind, ..f }
}

/// Password from `MASQDIAL_PASSWORD` (or the deprecated `MCLIENT_PASSWORD`), a no-echo
/// prompt on a terminal, or one stdin line.
fn read_password(user: &str, server: &str) -> anyhow::Result<String> {
    let mut warn = |w: String| eprintln!("mclient: warning: {w}");
    if let Some(p) = Settings::env_password(&config::ProcessEnv, &mut warn) {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for {user} at {server}: "))
            .context("cannot read the password");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// One dial event as (human line, outcome: Some(Ok) when up, Some(Err) when failed).
pub fn dial_event(ev: &pb::DialEvent) -> (String, Option<Result<(), String>>) {
    use pb::dial_event::Event;
    match &ev.event {
        Some(Event::ModemInit(m)) => (
            format!("initialising modem {} ({})", m.modem, m.device),
            None,
        ),
        Some(Event::Dialing(d)) => (
            format!(
                "dialing {} (number {} of {}, attempt {} of {})",
                d.number, d.index, d.count, d.attempt, d.attempts
            ),
            None,
        ),
        Some(Event::Connected(c)) => (
            format!("CONNECT {} {}", c.speed_bps, c.extras)
                .trim_end()
                .to_string(),
            None,
        ),
        Some(Event::LcpUp(l)) => {
            let mut t = format!(
                "LCP up (MRU ours {} peer {}, ACCM ours {:#010x} peer {:#010x}, we authenticate with {}, peer with {})",
                l.local_mru,
                l.peer_mru,
                l.local_accm,
                l.peer_accm,
                format::auth_or_none(&l.auth_protocol),
                format::auth_or_none(&l.auth_of_peer)
            );
            for r in &l.refused {
                t.push_str(&format!("\n  {}", format::refusal(r)));
            }
            (t, None)
        }
        Some(Event::AuthOk(a)) => (format!("authenticated ({})", a.protocol), None),
        Some(Event::IpcpUp(i)) => {
            let mut t = format!(
                "IPCP up: local {} peer {} dns {}",
                i.local_address,
                i.peer_address,
                i.dns.join(",")
            );
            for r in &i.refused {
                t.push_str(&format!("\n  {}", format::refusal(r)));
            }
            (t, None)
        }
        Some(Event::Up(u)) => {
            let l = u.link.clone().unwrap_or_default();
            (
                format!("{} is up ({})", l.connection, l.local_address),
                Some(Ok(())),
            )
        }
        Some(Event::Failed(f)) => (
            format!("failed: {}", f.message),
            Some(Err(f.message.clone())),
        ),
        Some(Event::Joined(j)) => (
            format!(
                "joined ({}; held by {})",
                format::link_state(j.state),
                j.holders.join(", ")
            ),
            if j.state == pb::LinkState::Up as i32 {
                Some(Ok(()))
            } else {
                None
            },
        ),
        Some(Event::Info(t)) => (t.clone(), None),
        Some(Event::Redial(r)) => (
            format!(
                "redialing in {} s (attempt {})",
                r.delay.as_ref().map_or(0, |d| d.seconds),
                r.next_attempt
            ),
            None,
        ),
        None => (String::new(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipchains_mode_uses_ipchains_exit_codes() {
        let f = |k: Kind| ipchains_exit(Failure::new(k, "x", None)).exit_code();
        assert_eq!(f(Kind::Usage), 2);
        assert_eq!(f(Kind::Invalid), 2);
        assert_eq!(f(Kind::NotFound), 1);
        assert_eq!(f(Kind::NotNow), 1);
        assert_eq!(f(Kind::Denied), 1);
        assert_eq!(f(Kind::NotLoggedIn), 3);
        assert_eq!(f(Kind::Unreachable), 8);
    }
}
