//! Channel setup (http/https, optional CA file), the bearer-token interceptor and typed
//! clients over one channel.
//!
//! Owns transport setup only; it knows nothing about commands or output.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use masqdial_proto::v1::auth_client::AuthClient;
use masqdial_proto::v1::dialer_client::DialerClient;
use masqdial_proto::v1::modems_client::ModemsClient;
use masqdial_proto::v1::nat_client::NatClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Default server URL (port 224, IANA masqdialer); see [`crate::config`] for what overrides it.
pub const DEFAULT_SERVER: &str = crate::config::DEFAULT_SERVER;
/// Bound on establishing the TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connect to `server` (`http://` or `https://`; https needs `ca`, the PEM of the CA that
/// signed the server certificate). Connection setup is bounded by [`CONNECT_TIMEOUT`].
pub async fn connect(server: &str, ca: Option<&Path>) -> anyhow::Result<Channel> {
    let endpoint = endpoint(server, ca)?;
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {server}"))
}

/// The endpoint for `server` without connecting (tests, lazy channels).
pub fn endpoint(server: &str, ca: Option<&Path>) -> anyhow::Result<Endpoint> {
    let mut endpoint = Endpoint::from_shared(server.to_string())
        .with_context(|| format!("bad server URL {server:?}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_keepalive(Some(Duration::from_secs(30)));
    if server.starts_with("https://") {
        let ca = ca.context("https:// needs --ca FILE (the PEM CA certificate of the server)")?;
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        endpoint = endpoint.tls_config(tls).context("bad TLS configuration")?;
    } else if !server.starts_with("http://") {
        anyhow::bail!("server URL must start with http:// or https:// (got {server:?})");
    }
    Ok(endpoint)
}

/// How long [`identify`] waits for the answer to its one question.
pub const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Ask whatever answers on `channel` who it is: one `Auth.WhoAmI` without a token, which
/// mserver always answers (with "unauthenticated"). What came back is judged by
/// [`crate::errors::what_answered`].
pub async fn identify(channel: Channel) -> Result<(), tonic::Status> {
    let mut auth = AuthClient::new(channel);
    let mut req = tonic::Request::new(masqdial_proto::v1::WhoAmIRequest {});
    req.set_timeout(IDENTIFY_TIMEOUT);
    match tokio::time::timeout(IDENTIFY_TIMEOUT, auth.who_am_i(req)).await {
        Ok(r) => r.map(|_| ()),
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer in time")),
    }
}

/// The first bytes a plain-`http://` server sends after the HTTP/2 preface and an empty
/// SETTINGS frame (what [`crate::errors::sniffed`] judges); `None` when nothing could be read
/// (refused, closed at once, silent, or an `https://` URL).
pub async fn sniff(server: &str) -> Option<Vec<u8>> {
    let rest = server.strip_prefix("http://")?;
    let hostport = rest.split('/').next()?;
    let io = async {
        let mut s = tokio::net::TcpStream::connect(hostport).await.ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .ok()?;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        buf.truncate(n);
        (n > 0).then_some(buf)
    };
    tokio::time::timeout(IDENTIFY_TIMEOUT, io)
        .await
        .ok()
        .flatten()
}

/// Interceptor adding `authorization: Bearer <token>` (nothing when there is no token).
#[derive(Clone)]
pub struct BearerAuth {
    header: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("token", &self.header.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl BearerAuth {
    /// With a token.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        let v = format!("Bearer {token}")
            .parse()
            .context("token is not valid header text")?;
        Ok(BearerAuth { header: Some(v) })
    }

    /// Without a token (Login, health).
    pub fn none() -> Self {
        BearerAuth { header: None }
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// A channel with the bearer interceptor.
pub type Authed = InterceptedService<Channel, BearerAuth>;

/// Typed clients over one channel, all carrying the token.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Auth service.
    pub auth: AuthClient<Authed>,
    /// Dialer service.
    pub dialer: DialerClient<Authed>,
    /// Modems service.
    pub modems: ModemsClient<Authed>,
    /// Nat service.
    pub nat: NatClient<Authed>,
}

impl Clients {
    /// Build the four clients; `token` None sends no authorization header.
    pub fn new(channel: Channel, token: Option<&str>) -> anyhow::Result<Self> {
        let auth = match token {
            Some(t) => BearerAuth::new(t)?,
            None => BearerAuth::none(),
        };
        Ok(Clients {
            auth: AuthClient::with_interceptor(channel.clone(), auth.clone()),
            dialer: DialerClient::with_interceptor(channel.clone(), auth.clone()),
            modems: ModemsClient::with_interceptor(channel.clone(), auth.clone()),
            nat: NatClient::with_interceptor(channel, auth),
        })
    }
}
