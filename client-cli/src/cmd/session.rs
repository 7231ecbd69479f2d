//! Session commands: `login`, `logout`, `whoami`, `sessions`, `revoke`, and the password
//! prompt.
//!
//! Owns how a password is read (environment, no-echo prompt or one stdin line) and how a
//! token is stored or dropped. Must never print or log a password or token; must not
//! touch links, modems or NAT state.

use crate::config::{self, ClientConfig, ServerUrl, Settings};
use crate::conn::Clients;
use crate::errors::Failure;
use crate::format;
use crate::json as j;
use crate::run::Session;
use crate::store::StoredToken;
use anyhow::Context as _;
use masqdial_proto::v1 as pb;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal};
use std::time::SystemTime;

impl Session {
    pub(crate) fn login_user(&self) -> Option<String> {
        self.settings
            .user
            .clone()
            .or_else(|| config::login_name(&config::ProcessEnv))
    }

    pub(crate) async fn login(&mut self) -> anyhow::Result<()> {
        let server = self.settings.server.clone();
        let url = ServerUrl::parse(&self.settings.connect_url)?;
        if let Some((why, hint)) = url.password_refused(self.insecure) {
            return Err(Failure::usage(why, hint).into());
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

    pub(crate) async fn logout(&mut self) -> anyhow::Result<()> {
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

    pub(crate) async fn whoami(&mut self) -> anyhow::Result<()> {
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

    pub(crate) async fn sessions(&mut self) -> anyhow::Result<()> {
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

    pub(crate) async fn revoke(&mut self, target: &str) -> anyhow::Result<()> {
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
