//! Shared client code: connection, token store, output formatting.
