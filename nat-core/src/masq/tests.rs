//! Unit tests of the masquerade table (packet-level tests are in engine tests).
