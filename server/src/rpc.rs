//! gRPC services: authenticate, authorize, translate to and from protobuf.
//!
//! Owns the shared server handle ([`ServerState`]), the single authorization table
//! ([`Rpc::access`]), the single error table ([`ApiError`] → [`tonic::Status`]) and
//! [`serve`]. One tonic service per protobuf service, each rpc body written once:
//! [`auth`] (Auth), [`dialer`] (Dialer), [`modems`] (Modems), [`nat`] (Nat); `convert`
//! is the one pb ⇄ domain translation. No business logic here: answers come from the
//! domain objects in [`ControlPlane`]. Protobuf types appear nowhere else in the server.
//!
//! This file keeps the module list and the re-exports: `access` (callers, the authorization
//! table, the allow-list and token interceptors), `errors` (the `ApiError` → `Status`
//! table), `state` (the shared handle and the open-stream registry), `forward` (the one
//! broadcast → stream forwarder, resyncing lagging watchers) and `serve` (the server).

pub mod auth;
mod convert;
pub mod dialer;
mod forward;
pub mod limit;
pub mod modems;
pub mod nat;

mod access;
mod errors;
mod serve;
mod state;

pub use access::peer_of;
use access::{bearer, caller};
pub use access::{Access, AllowListCheck, Authenticate, Caller, Rpc};
pub use auth::AuthService;
pub use dialer::DialerService;
pub use errors::{bounded_name, truncated, ApiError, MAX_ERROR_LEN, MAX_NAME_LEN};
pub use limit::{ConnStats, Limits};
pub use modems::ModemsService;
pub use nat::NatService;
pub use serve::{serve, ServeError, SHUTDOWN_GRACE};

pub(crate) use state::StreamGuard;
use state::{begin, begin_stream, stream_of};
pub use state::{ControlPlane, DialStream, LinkEventStream, MasqEventStream, ServerState};
