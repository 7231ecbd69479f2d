//! The `masqdial.v1` protobuf API: generated message types and the gRPC
//! clients/servers for `Auth`, `Dialer`, `Modems` and `Nat`.
//!
//! Generated code, plus [`names`]: the "did you mean" helper shared by server and
//! clients. The `.proto` files under
//! `proto/masqdial/v1/` are the documentation of every rpc and field.

/// Package `masqdial.v1`.
// Generated docs are the .proto comments verbatim (`[users]`, `<speed>`), not rustdoc markup.
#[allow(
    clippy::all,
    missing_docs,
    unreachable_pub,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]
pub mod v1 {
    tonic::include_proto!("masqdial.v1");

    /// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("masqdial_descriptor");
}

pub use v1::*;

pub mod names;
