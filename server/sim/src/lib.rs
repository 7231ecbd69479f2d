//! Simulation for tests and `mserver --demo`: a Hayes modem on a pseudo-terminal and an ISP.

pub mod internet;
pub mod isp;
pub mod modem;
