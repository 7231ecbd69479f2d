//! mserver configuration: TOML file, validated with file/line/key errors.
