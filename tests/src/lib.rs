//! Helpers shared by the integration tests.
pub mod hayes;
pub mod irc;
pub mod lanclient;
pub mod linetrace;
pub mod netns;

// The WAN servers and the FTP server/client live in masqdial-sim (the root demo runs them too).
pub use masqdial_sim::{ftp, wan};
