//! An in-process gRPC server on 127.0.0.1:0 over the real domain objects, shared by the rpc
//! and connection-hardening tests (`#[path = "common/inproc.rs"] mod inproc;`).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_client::AuthClient;
use masqdial_server::auth::{self, Auth, ThrottlePolicy};
use masqdial_server::config::{Config, ConnectionConfig, UserConfig, UserRole};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::manager::LinkManager;
use masqdial_server::nat_control::NatControl;
use masqdial_server::rpc::{ControlPlane, Limits, ServerState};
use masqdial_server::server;
use masqdial_server::shutdown::Shutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Request;

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Users `alice` (user, may use isp1; password `alice-pw`) and `root` (admin, `root-pw`),
/// connections `isp1` and `isp2` without modems, the given allow-list.
pub fn config(allow: &[&str]) -> Config {
    let mut c = Config::default();
    c.server.allow = allow.iter().filter_map(|a| a.parse().ok()).collect();
    let h = |pw: &str| auth::hash_password_with(pw, auth::fast_params()).unwrap_or_default();
    c.users.push(UserConfig {
        name: "alice".into(),
        password_hash: h("alice-pw"),
        role: UserRole::User,
        connections: vec!["isp1".into()],
    });
    c.users.push(UserConfig {
        name: "root".into(),
        password_hash: h("root-pw"),
        role: UserRole::Admin,
        connections: vec![],
    });
    for n in ["isp1", "isp2"] {
        let cc: ConnectionConfig = toml::from_str(&format!("name = \"{n}\"\nnumbers = [\"555\"]"))
            .unwrap_or_else(|e| panic!("{e}"));
        c.connections.push(cc);
    }
    c
}

/// The real domain objects over `config` (its connections have no modems, so nothing
/// dials; no dataplane).
pub fn control_plane(config: &Config, shutdown: &Shutdown) -> ControlPlane {
    let engine = masqdial_server::persist::build_engine(config).unwrap_or_else(|e| panic!("{e}"));
    let nat = NatHandle::new(engine);
    ControlPlane {
        links: LinkManager::start(config, Uplink::new(nat.clone(), None, None), shutdown),
        nat: NatControl::new(Arc::new(config.clone()), nat, None),
    }
}

/// A throttle loose enough that tests logging in many times are not refused.
pub fn loose_policy() -> ThrottlePolicy {
    ThrottlePolicy {
        per_user: 50,
        per_pair: 50,
        per_addr: 1000,
        ..ThrottlePolicy::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: ServerState,
    pub shutdown: Shutdown,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// A server without a control plane: only Auth answers.
    pub async fn start(config: Config) -> TestServer {
        Self::start_with(config, false).await
    }

    /// With `control`, Dialer/Modems/Nat answer from the real domain objects.
    pub async fn start_with(config: Config, control: bool) -> TestServer {
        Self::start_full(config, control, loose_policy(), Limits::default()).await
    }

    /// With a control plane and explicit connection and stream limits.
    pub async fn start_with_limits(config: Config, limits: Limits) -> TestServer {
        Self::start_full(config, true, loose_policy(), limits).await
    }

    pub async fn start_with_policy(
        config: Config,
        control: bool,
        policy: ThrottlePolicy,
    ) -> TestServer {
        Self::start_full(config, control, policy, Limits::default()).await
    }

    pub async fn start_full(
        config: Config,
        control: bool,
        policy: ThrottlePolicy,
        limits: Limits,
    ) -> TestServer {
        let shutdown = Shutdown::new();
        let control = control.then(|| control_plane(&config, &shutdown));
        let auth = Auth::with_policy(&config, policy).unwrap_or_else(|e| panic!("{e}"));
        let state = ServerState::with_limits(config, auth, control, shutdown.clone(), limits);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            let _ = server::run(listener, st, None, async move {
                let _ = rx.await;
            })
            .await;
        });
        TestServer {
            addr,
            state,
            shutdown,
            stop: Some(tx),
            task,
        }
    }

    /// A new connection, or why not (5 s to connect, 5 s per call).
    pub async fn try_channel(&self) -> Result<Channel, tonic::transport::Error> {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap_or_else(|e| panic!("{e}"))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
    }

    /// A new connection (panics if there is none within [`TIMEOUT`]).
    pub async fn channel(&self) -> Channel {
        tokio::time::timeout(
            TIMEOUT,
            Channel::from_shared(format!("http://{}", self.addr))
                .unwrap_or_else(|e| panic!("{e}"))
                .timeout(TIMEOUT)
                .connect(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn login(&self, user: &str, pw: &str) -> Result<pb::LoginResponse, tonic::Status> {
        let mut c = AuthClient::new(self.channel().await);
        c.login(pb::LoginRequest {
            user: user.into(),
            password: pw.into(),
        })
        .await
        .map(|r| r.into_inner())
    }

    pub async fn token(&self, user: &str, pw: &str) -> String {
        self.login(user, pw)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .token
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(TIMEOUT, &mut self.task).await;
        assert!(
            self.shutdown.stop(TIMEOUT).await,
            "every task joined after shutdown"
        );
    }
}

/// `msg` with `authorization: Bearer <token>`.
pub fn with_token<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    let v: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .unwrap_or_else(|e| panic!("{e:?}"));
    r.metadata_mut().insert("authorization", v);
    r
}
