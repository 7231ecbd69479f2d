//! `mserver --demo`: a built-in configuration with fresh random passwords and its
//! simulated world ([`world`]: the mock modem on a pseudo-terminal answered by the mock ISP,
//! and as root a private LAN in network namespaces). Owns the demo's config, credentials,
//! banner and simulation only; nothing here is used outside `--demo`. Compiled only with the
//! cargo feature `demo` (default on), which brings in `masqdial-sim`.
//!
//! - [`ns`]: the demo's private LAN in network namespaces (root only).
//! - [`wan`]: the demo's WAN namespace with TCP echo and FTP servers behind the mock ISP
//!   (root only), and the LAN host's TCP/FTP traffic to them.

pub mod ns;
pub mod wan;

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::auth::{self, AuthError};
use crate::config::{Config, ConnectionConfig, ModemConfig, UserConfig, UserRole as Role};
use crate::daemon::LanSide;
use crate::dataplane::tun::Tun;
use masqdial_ppp::AuthProtocol;
use masqdial_sim::internet::ForwardingIsp;
use masqdial_sim::isp::{IspConfig, MockIsp};
use masqdial_sim::modem::pty::{spawn_pty, PtyModem};
use masqdial_sim::modem::{Answerer, AnswererFactory, MockModemConfig};
use ns::DemoLan;
use wan::DemoWan;

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
    getrandom::fill(&mut raw).map_err(|e| AuthError::Hash(e.to_string()))?;
    // 16 draws from 55 symbols (~92 bits); the modulo bias is irrelevant for a demo.
    Ok(raw
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// The demo's state directory: new and private (0700, random name, created with
/// `mkdir`, which never follows a planted symlink) on every run, and removed at exit, so
/// rules, timeouts and tokens never leak from one demo run into the next.
#[derive(Debug)]
pub struct DemoState {
    dir: std::path::PathBuf,
}

impl DemoState {
    /// Create a fresh `masqdial-demo-XXXXXXXX` under `parent` (the system temp directory
    /// in `mserver --demo`).
    pub fn create_in(parent: &std::path::Path) -> std::io::Result<DemoState> {
        let names = std::iter::repeat_with(|| {
            let mut raw = [0u8; 4];
            getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
            Ok(format!("masqdial-demo-{:08x}", u32::from_le_bytes(raw)))
        })
        .take(8);
        Self::create_named(parent, names)
    }

    /// Create the first of `names` that does not exist yet (anything there, a planted
    /// symlink included, is skipped, never followed).
    fn create_named(
        parent: &std::path::Path,
        names: impl IntoIterator<Item = std::io::Result<String>>,
    ) -> std::io::Result<DemoState> {
        use std::os::unix::fs::DirBuilderExt;
        let mut last = None;
        for name in names {
            let dir = parent.join(name?);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(DemoState { dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free demo directory name")))
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for DemoState {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "demo state not removed");
        }
    }
}

/// The demo configuration: users `demo` (may dial isp1) and `admin`, connections isp1 and
/// isp2, one modem. Passwords and state are fresh each run: `state` is the run's private
/// state directory.
pub fn config(state: &DemoState) -> Result<(Config, Vec<DemoUser>), AuthError> {
    let mut config = Config::default();
    config.server.listen = DEMO_ADDR.parse().unwrap_or(config.server.listen);
    config.server.allow = ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    config.server.state_dir = state.path().to_path_buf();
    config.modems.push(ModemConfig {
        name: "modem0".into(),
        device: "/dev/null-demo-modem".into(),
        baud: 115_200,
        data_bits: 8,
        parity: Default::default(),
        stop_bits: 1,
        flow_control: Default::default(),
        init: vec!["ATZ".into(), "AT&F E0 V1 Q0".into()],
        cellular: None,
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
            registration_wait_s: 60,
            username: format!("{name}-user"),
            password: format!("{name}-secret"),
            // isp1 shows PAP: chosen explicitly, since by default CHAP-MD5 is proposed to
            // an ISP asking PAP (and the mock ISP takes it).
            auth: if name == "isp1" {
                crate::config::PppAuth::Pap
            } else {
                Default::default()
            },
            allow_pap_fallback: false,
            redial_attempts: 3,
            redial_delay_s: 2,
            idle_timeout_s: 0,
            max_connect_s: 0,
            redial_on_loss: false,
            // The demo LAN's gateway namespace has no default route of its own.
            routes: vec![ipnet::IpNet::V4(ipnet::Ipv4Net::default())],
            replace_default_route: false,
            login_script: vec![],
            local_address: None,
            peer_address: None,
            accept_local: false,
            accept_remote: false,
            demand: false,
            activity_filter: vec![],
            demand_hold_s: 30,
            demand_hold_bytes: 64 * 1024,
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

/// The demo's simulated world: the mock modem on a pseudo-terminal answered by the mock
/// ISP (isp1's number demands PAP, isp2's CHAP, with the demo connections' credentials),
/// and, when running as root, a private LAN namespace with traffic.
pub struct DemoWorld {
    /// The modem (dropping it hangs up and closes the pty).
    pub modem: PtyModem,
    /// The LAN namespaces (root only).
    pub lan: Option<DemoLan>,
    /// The WAN namespace with the TCP and FTP servers (root only).
    pub wan: Option<DemoWan>,
}

impl std::fmt::Debug for DemoWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoWorld")
            .field("modem", &self.modem.path())
            .field("lan", &self.lan)
            .field("wan", &self.wan)
            .finish()
    }
}

/// Start the mock modem + ISP and point the demo config's modem at its pty; as root, also
/// create the demo LAN (TUN moved into a gateway namespace) and return the LAN side.
pub fn world(config: &mut Config) -> anyhow::Result<(DemoWorld, LanSide)> {
    let users: Vec<(String, String)> = config
        .connections
        .iter()
        .map(|c| (c.username.clone(), c.password.clone()))
        .collect();
    let pap = IspConfig::new(users.clone(), Some(AuthProtocol::Pap));
    let chap = IspConfig::new(users, Some(AuthProtocol::Chap));
    // Both share one address pool so a redial gets the next address.
    let chap = IspConfig {
        pool: pap.pool.clone(),
        ..chap
    };
    let root = nix::unistd::Uid::effective().is_root();
    if root {
        ns::remove_stale();
    }
    // As root, TCP goes on to real servers in a WAN namespace (ping and UDP stay simulated).
    let wan = if root {
        DemoWan::create()
            .map_err(|e| tracing::warn!("demo WAN (TCP and FTP servers) not created: {e}"))
            .ok()
    } else {
        None
    };
    let net = wan.as_ref().map(|w| std::sync::Arc::clone(w.internet()));
    let factory: AnswererFactory = Box::new(move |number: &str| {
        let cfg = if number.contains("0200") {
            chap.clone()
        } else {
            pap.clone()
        };
        match &net {
            Some(net) => Box::new(ForwardingIsp::new(cfg, net)) as Box<dyn Answerer>,
            None => Box::new(MockIsp::new(cfg)) as Box<dyn Answerer>,
        }
    });
    let modem = spawn_pty(MockModemConfig::default(), factory)?;
    crate::persist::seed_rules(config, crate::persist::DEFAULT_RULESET)?;
    for m in &mut config.modems {
        m.device = modem.path().to_path_buf();
    }
    if !root {
        let world = DemoWorld {
            modem,
            lan: None,
            wan,
        };
        return Ok((world, LanSide::Tun));
    }
    // A TUN name of this run's own (it moves into this run's namespace): two demos started
    // at once (tests do) never race for one name.
    config.nat.tun_name = format!("mqd{}", std::process::id());
    let tun_name = config.nat.tun_name.clone();
    let tun = match Tun::open(&tun_name, 1500) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("{e}");
            let world = DemoWorld {
                modem,
                lan: None,
                wan,
            };
            return Ok((world, LanSide::Off));
        }
    };
    match DemoLan::create(&tun_name) {
        Ok(lan) => {
            lan.start_traffic(std::time::Duration::from_secs(3));
            if let Some(w) = &wan {
                if let Err(e) =
                    w.start_lan_traffic(lan.lan_ns(), std::time::Duration::from_secs(20))
                {
                    tracing::warn!("demo LAN TCP traffic not started: {e}");
                }
            }
            let nc = lan.netcfg();
            Ok((
                DemoWorld {
                    modem,
                    lan: Some(lan),
                    wan,
                },
                LanSide::Prepared(tun, nc),
            ))
        }
        Err(e) => {
            tracing::warn!("demo LAN not created: {e}");
            let world = DemoWorld {
                modem,
                lan: None,
                wan,
            };
            Ok((world, LanSide::Off))
        }
    }
}

/// Bind [`DEMO_ADDR`], or a free loopback port when it is taken.
pub async fn bind() -> std::io::Result<TcpListener> {
    match TcpListener::bind(DEMO_ADDR).await {
        Ok(l) => Ok(l),
        Err(_) => TcpListener::bind("127.0.0.1:0").await,
    }
}

/// The demo's web page port when free.
pub const DEMO_WEB_ADDR: &str = "127.0.0.1:2280";

/// Bind the demo's web page: [`DEMO_WEB_ADDR`], or any free loopback port when it is taken
/// (then the second value is true, and the banner says so).
pub async fn bind_web() -> std::io::Result<(TcpListener, bool)> {
    match TcpListener::bind(DEMO_WEB_ADDR).await {
        Ok(l) => Ok((l, false)),
        Err(_) => Ok((TcpListener::bind("127.0.0.1:0").await?, true)),
    }
}

/// The banner's web page line.
pub fn web_banner(addr: SocketAddr, fallback: bool) -> String {
    let mut s = format!("Web page: http://{addr}/");
    if fallback {
        s.push_str(&format!(
            "  ({DEMO_WEB_ADDR} was taken; another free port was chosen)"
        ));
    }
    s.push_str("\n  (log in with an account above: dial, watch and hang up from any browser)\n");
    s
}

/// Text printed once on stdout: address, credentials, state, commands to try.
pub fn banner(addr: SocketAddr, users: &[DemoUser], state: &DemoState) -> String {
    let server = format!("http://{addr}");
    let mut s = format!(
        "masqdial demo server on {server}\nState: fresh in {} (rules, timeouts and sessions start from the defaults; removed at exit)\n\nAccounts (passwords are new each run):\n",
        state.path().display()
    );
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
    // The clients are built next to mserver by `cargo build --release --bins`: name that
    // directory so the commands below run as shown, installed or not.
    let path = match clients_dir() {
        Some(dir) => format!("  export PATH=\"{}:$PATH\"\n", dir.display()),
        None => "  # mclient is not next to mserver: `cargo build --release --bins` first, or\n  \
                 # `cargo install --locked --path client-cli` (and client-tui for mtui)\n"
            .to_string(),
    };
    s.push_str(&format!(
        "\nTry, in another terminal:\n{path}  export MASQDIAL_SERVER={server}\n  MASQDIAL_PASSWORD='{demo_pw}' mclient --user demo login\n  mclient whoami\n  mclient list\n  mclient dial isp1\n  mclient shell\n  mtui --user admin\n\nStop with Ctrl-C.\n"
    ));
    s
}

/// The directory of this executable when `mclient` was built beside it.
fn clients_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    dir.join("mclient").is_file().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn each_run_gets_a_fresh_private_state_dir_removed_at_exit() {
        let parent = tempfile::tempdir().expect("tempdir");
        let a = DemoState::create_in(parent.path()).expect("create");
        let b = DemoState::create_in(parent.path()).expect("create");
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // State written by a run (rules saved by `-F forward`) goes with it.
        std::fs::write(a.path().join("rules.saved"), b"x").expect("write");
        let gone = a.path().to_path_buf();
        drop(a);
        assert!(!gone.exists());
        let (cfg, users) = config(&b).expect("config");
        assert_eq!(cfg.server.state_dir, b.path());
        assert_eq!(users.len(), 2);
        let banner = banner("127.0.0.1:2240".parse().expect("addr"), &users, &b);
        let line = banner.lines().nth(1).unwrap_or_default();
        assert_eq!(
            line,
            format!(
                "State: fresh in {} (rules, timeouts and sessions start from the defaults; removed at exit)",
                b.path().display()
            )
        );
    }

    #[test]
    fn a_planted_symlink_is_never_followed() {
        let parent = tempfile::tempdir().expect("tempdir");
        let target = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(target.path(), parent.path().join("planted")).expect("link");
        let names = ["planted", "fresh"].map(|n| Ok(n.to_string()));
        let s = DemoState::create_named(parent.path(), names).expect("create");
        assert_eq!(s.path(), parent.path().join("fresh"));
        drop(s);
        // The link and what it points at are untouched.
        assert!(std::fs::symlink_metadata(parent.path().join("planted"))
            .expect("meta")
            .file_type()
            .is_symlink());
        assert!(target.path().exists());
        // Only taken names: a clear error.
        let names = ["planted"].map(|n| Ok(n.to_string()));
        let e = DemoState::create_named(parent.path(), names).expect_err("taken");
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    }
}
