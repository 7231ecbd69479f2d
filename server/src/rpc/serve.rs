//! [`serve`]: the tonic server with its layers (metrics, allow-list), services, health and
//! reflection, the accept loop with its limits, and the graceful shutdown. Must not touch
//! what the services answer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::{Identity as TlsIdentity, Server, ServerTlsConfig};

use super::access::{AllowListCheck, Authenticate};
use super::{limit, AuthService, DialerService, ModemsService, NatService, ServerState};

/// How long in-flight calls get to finish after shutdown is signalled (streams end at
/// once). With [`crate::shutdown::STOP_BOUND`] it stays below the unit's TimeoutStopSec.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Error starting or running the gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// TLS certificate or key could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// tonic refused the configuration or the transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(String),
}

/// Serve Auth, Dialer, Modems, Nat, health and reflection on `listener` until `shutdown`
/// completes; then streams are ended (via [`ServerState::shutdown_token`]) and in-flight
/// calls get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    use masqdial_proto::v1::auth_server::AuthServer;
    use masqdial_proto::v1::dialer_server::DialerServer;
    use masqdial_proto::v1::modems_server::ModemsServer;
    use masqdial_proto::v1::nat_server::NatServer;

    let config = state.config();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuthServer<AuthService>>().await;
    health.set_serving::<DialerServer<DialerService>>().await;
    health.set_serving::<ModemsServer<ModemsService>>().await;
    health.set_serving::<NatServer<NatService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(masqdial_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let limits = *state.shared.gate.limits();
    let mut builder = Server::builder()
        .concurrency_limit_per_connection(64)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if let Some((cert, key)) = config.tls() {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|source| ServeError::TlsFile {
                path: p.to_path_buf(),
                source,
            })
        };
        let identity = TlsIdentity::from_pem(read(cert)?, read(key)?);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    let authn = Authenticate(state.clone());
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(masqdial_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let router = builder
        .layer(crate::metrics::RpcMetricsLayer)
        .layer(tonic::service::InterceptorLayer::new(AllowListCheck(
            state.clone(),
        )))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(AuthServer::new(AuthService::new(state.clone())))
        .add_service(DialerServer::with_interceptor(
            DialerService::new(state.clone()),
            authn.clone(),
        ))
        .add_service(ModemsServer::with_interceptor(
            ModemsService::new(state.clone()),
            authn.clone(),
        ))
        .add_service(NatServer::with_interceptor(
            NatService::new(state.clone()),
            authn,
        ));

    let token = state.shutdown_token();
    let stop = token.clone();
    let st = state.clone();
    let incoming = limit::incoming(
        listener,
        state.shared.gate.clone(),
        Arc::new(move |ip| st.auth().peer_allowed(ip)),
    );
    let server =
        router.serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await });
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => return res.map_err(ServeError::from),
        () = shutdown => {}
        () = token.cancelled() => {}
    }
    tracing::info!("shutting down: ending streams, refusing new calls");
    health.set_not_serving::<AuthServer<AuthService>>().await;
    token.cancel();
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(res) => res.map_err(ServeError::from),
        Err(_) => {
            tracing::warn!("in-flight calls did not finish within {SHUTDOWN_GRACE:?}; closing");
            Ok(())
        }
    }
}
