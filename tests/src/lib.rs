//! Helpers shared by the integration tests.
pub mod ftp;
pub mod lanclient;
pub mod netns;
pub mod wan;
