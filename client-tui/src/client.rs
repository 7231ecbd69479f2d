//! Stand-in for the shared client library (`masqdial_cli::{conn, store}`) until it lands:
//! the same names and signatures, so switching is a one-line `pub use`. Owns no UI state.
//!
//! TEMPORARY: the token store format here is private to mtui; replace with the shared store.

pub mod conn {
    //! Channel, bearer interceptor and typed clients.
    use std::path::Path;
    use std::time::Duration;

    use anyhow::Context;
    use masqdial_proto::v1::{
        auth_client::AuthClient, dialer_client::DialerClient, modems_client::ModemsClient,
        nat_client::NatClient,
    };
    use tonic::metadata::{Ascii, MetadataValue};
    use tonic::service::interceptor::InterceptedService;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

    /// Default server address.
    pub const DEFAULT_SERVER: &str = "http://127.0.0.1:224";

    /// Connect with a bounded timeout (https with an optional CA file).
    pub async fn connect(server: &str, ca: Option<&Path>) -> anyhow::Result<Channel> {
        let mut ep = Endpoint::from_shared(server.to_string())
            .with_context(|| format!("bad server address {server:?}"))?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        if server.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_enabled_roots();
            if let Some(ca) = ca {
                let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            ep = ep.tls_config(tls)?;
        }
        Ok(ep.connect().await?)
    }

    /// Adds `authorization: Bearer <token>`.
    #[derive(Clone)]
    pub struct BearerAuth(Option<MetadataValue<Ascii>>);

    impl std::fmt::Debug for BearerAuth {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("BearerAuth(<redacted>)")
        }
    }

    impl BearerAuth {
        /// Interceptor for `token` (no header when `None`).
        pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
            let v = match token {
                Some(t) => Some(
                    format!("Bearer {t}")
                        .parse()
                        .context("token is not valid header text")?,
                ),
                None => None,
            };
            Ok(BearerAuth(v))
        }
    }

    impl tonic::service::Interceptor for BearerAuth {
        fn call(
            &mut self,
            mut req: tonic::Request<()>,
        ) -> Result<tonic::Request<()>, tonic::Status> {
            if let Some(v) = &self.0 {
                req.metadata_mut().insert("authorization", v.clone());
            }
            Ok(req)
        }
    }

    type Svc = InterceptedService<Channel, BearerAuth>;

    /// Typed clients over one channel.
    #[derive(Debug, Clone)]
    pub struct Clients {
        /// Auth.
        pub auth: AuthClient<Svc>,
        /// Dialer.
        pub dialer: DialerClient<Svc>,
        /// Modems.
        pub modems: ModemsClient<Svc>,
        /// Nat.
        pub nat: NatClient<Svc>,
    }

    impl Clients {
        /// Clients carrying `token`.
        pub fn new(channel: Channel, token: Option<&str>) -> anyhow::Result<Self> {
            let a = BearerAuth::new(token)?;
            Ok(Clients {
                auth: AuthClient::with_interceptor(channel.clone(), a.clone()),
                dialer: DialerClient::with_interceptor(channel.clone(), a.clone()),
                modems: ModemsClient::with_interceptor(channel.clone(), a.clone()),
                nat: NatClient::with_interceptor(channel, a),
            })
        }
    }
}

pub mod store {
    //! Token store (stand-in): one `server\tuser\trole\ttoken` line per server, file mode 0600.
    use std::path::PathBuf;
    use std::time::SystemTime;

    use anyhow::Context;

    /// A saved login.
    #[derive(Clone)]
    pub struct StoredToken {
        /// Server URL it belongs to.
        pub server: String,
        /// User name.
        pub user: String,
        /// Bearer token.
        pub token: String,
        /// Expiry, when known.
        pub expires_at: Option<SystemTime>,
        /// Role (masqdial.v1.Role as i32).
        pub role: i32,
    }

    /// Tokens by server.
    #[derive(Debug, Clone)]
    pub struct TokenStore {
        path: PathBuf,
    }

    impl TokenStore {
        /// `$XDG_CONFIG_HOME/masqdial/tokens` (or `~/.config/...`).
        pub fn open_default() -> anyhow::Result<Self> {
            let base = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                .context("no XDG_CONFIG_HOME or HOME to keep tokens in")?;
            Ok(TokenStore::at(base.join("masqdial").join("tokens")))
        }

        /// A store at an explicit path.
        pub fn at(path: PathBuf) -> Self {
            TokenStore { path }
        }

        fn read(&self) -> anyhow::Result<Vec<StoredToken>> {
            let text = match std::fs::read_to_string(&self.path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => {
                    return Err(e).with_context(|| format!("reading {}", self.path.display()))
                }
            };
            Ok(text
                .lines()
                .filter_map(|l| {
                    let mut f = l.split('\t');
                    Some(StoredToken {
                        server: f.next()?.to_string(),
                        user: f.next()?.to_string(),
                        role: f.next()?.parse().ok()?,
                        token: f.next()?.to_string(),
                        expires_at: None,
                    })
                })
                .collect())
        }

        /// The token saved for `server`.
        pub fn get(&self, server: &str) -> anyhow::Result<Option<StoredToken>> {
            Ok(self.read()?.into_iter().find(|t| t.server == server))
        }

        /// Save (replace) the token of `tok.server`.
        pub fn put(&self, tok: StoredToken) -> anyhow::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut all: Vec<StoredToken> = self
                .read()?
                .into_iter()
                .filter(|t| t.server != tok.server)
                .collect();
            all.push(tok);
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&self.path)
                .with_context(|| format!("writing {}", self.path.display()))?;
            for t in all {
                writeln!(f, "{}\t{}\t{}\t{}", t.server, t.user, t.role, t.token)?;
            }
            Ok(())
        }
    }
}
