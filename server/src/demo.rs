//! `mserver --demo`: a built-in configuration with fresh random passwords.
//!
//! Owns the demo's config, credentials and banner only. The integration work extends
//! [`backend`] (mock modem and ISP behind the real link manager); nothing here is used
//! outside `--demo`.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::TryRngCore;
use tokio::net::TcpListener;

use crate::auth::{self, AuthError};
use crate::config::{Config, ConnectionConfig, ModemConfig, Role, UserConfig};
use crate::rpc::{Backend, UnimplementedBackend};

/// Preferred demo address (loopback only).
pub const DEMO_ADDR: &str = "127.0.0.1:2240";

/// A demo account and its one-time clear password (printed once, never logged).
#[derive(Clone)]
pub struct DemoUser {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The generated password.
    pub password: String,
}

impl std::fmt::Debug for DemoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish()
    }
}

fn random_password() -> Result<String, AuthError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut raw = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut raw)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    // 16 draws from 55 symbols (~92 bits); the modulo bias is irrelevant for a demo.
    Ok(raw
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// The demo configuration: users `demo` (may dial isp1) and `admin`, connections isp1 and
/// isp2, one modem. Passwords are fresh each run.
pub fn config() -> Result<(Config, Vec<DemoUser>), AuthError> {
    let mut config = Config::default();
    config.server.listen = DEMO_ADDR.parse().unwrap_or(config.server.listen);
    config.server.allow = ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    config.server.state_dir = std::env::temp_dir().join("masqdial-demo");
    config.modems.push(ModemConfig {
        name: "modem0".into(),
        device: "/dev/null-demo-modem".into(),
        baud: 115_200,
        data_bits: 8,
        parity: Default::default(),
        stop_bits: 1,
        flow_control: Default::default(),
        init: vec!["ATZ".into(), "AT&F E0 V1 Q0".into()],
    });
    for (name, desc, number) in [
        ("isp1", "Demo ISP one (PAP)", "555-0100"),
        ("isp2", "Demo ISP two (CHAP)", "555-0200"),
    ] {
        config.connections.push(ConnectionConfig {
            name: name.into(),
            description: desc.into(),
            modems: vec!["modem0".into()],
            numbers: vec![number.into()],
            dial_prefix: "ATDT".into(),
            apn: None,
            username: format!("{name}-user"),
            password: format!("{name}-secret"),
            auth: Default::default(),
            redial_attempts: 3,
            redial_delay_s: 2,
            idle_timeout_s: 0,
            max_connect_s: 0,
            redial_on_loss: false,
            routes: vec![],
            replace_default_route: false,
            login_script: vec![],
        });
    }
    let mut users = Vec::new();
    for (name, role, conns) in [
        ("demo", Role::User, vec!["isp1".to_string()]),
        ("admin", Role::Admin, vec![]),
    ] {
        let password = random_password()?;
        config.users.push(UserConfig {
            name: name.into(),
            password_hash: auth::hash_password(&password)?,
            role,
            connections: conns,
        });
        users.push(DemoUser {
            name: name.into(),
            role,
            password,
        });
    }
    Ok((config, users))
}

/// The demo's backend. Today: [`UnimplementedBackend`]; the integration replaces this with
/// the link manager over the mock modem and mock ISP.
pub fn backend(_config: &Config) -> Arc<dyn Backend> {
    Arc::new(UnimplementedBackend)
}

/// Bind [`DEMO_ADDR`], or a free loopback port when it is taken.
pub async fn bind() -> std::io::Result<TcpListener> {
    match TcpListener::bind(DEMO_ADDR).await {
        Ok(l) => Ok(l),
        Err(_) => TcpListener::bind("127.0.0.1:0").await,
    }
}

/// Text printed once on stdout: address, credentials, commands to try.
pub fn banner(addr: SocketAddr, users: &[DemoUser]) -> String {
    let server = format!("http://{addr}");
    let mut s =
        format!("masqdial demo server on {server}\n\nAccounts (passwords are new each run):\n");
    for u in users {
        s.push_str(&format!(
            "  {:<6} {:<5}  password: {}\n",
            u.name,
            u.role.to_string(),
            u.password
        ));
    }
    let demo_pw = users
        .iter()
        .find(|u| u.name == "demo")
        .map_or("", |u| u.password.as_str());
    s.push_str(&format!(
        "\nTry, in another terminal:\n  export MASQDIAL_SERVER={server}\n  MCLIENT_PASSWORD='{demo_pw}' mclient --user demo login\n  mclient whoami\n  mclient list\n  mclient dial isp1\n  mclient shell\n\nStop with Ctrl-C.\n"
    ));
    s
}
