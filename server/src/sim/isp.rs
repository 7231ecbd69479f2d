//! Mock ISP: our PPP in the access-server role plus a small simulated internet.
