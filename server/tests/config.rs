//! The shipped example configuration loads, and bad files are reported with file and line.

use std::path::Path;

use masqdial_server::config::{Config, UserRole, HASH_PLACEHOLDER};

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mserver.example.toml")
}

#[test]
fn example_config_loads_once_its_placeholder_is_replaced() {
    let text = std::fs::read_to_string(example()).unwrap_or_else(|e| panic!("{e}"));
    let h = masqdial_server::auth::hash_password_with("pw", masqdial_server::auth::fast_params())
        .unwrap_or_else(|e| panic!("{e}"));
    let c = Config::parse(&example(), &text.replacen(HASH_PLACEHOLDER, &h, 1))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.listen.port(), 224);
    assert_eq!(c.users.len(), 1);
    assert_eq!(c.users[0].role, UserRole::Admin);
    assert_eq!(c.connections[0].modems, vec!["modem0".to_string()]);
    assert!(c.tls().is_none());
}

#[test]
fn example_carries_no_working_hash() {
    let text = std::fs::read_to_string(example()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !text.contains("$argon2"),
        "a hash in the example is a published password"
    );
    let e = Config::load(&example())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("users[0].password_hash"), "{e}");
    assert!(e.contains("is a placeholder"), "{e}");
    assert!(e.contains("mserver hash-password"), "{e}");
}

#[test]
fn broken_copy_of_example_names_file_line_and_key() {
    let text = std::fs::read_to_string(example()).unwrap_or_else(|e| panic!("{e}"));
    let bad = text.replace("stop_bits = 1 ", "stop_bitz = 1 ");
    let line = bad
        .lines()
        .position(|l| l.starts_with("stop_bitz"))
        .map_or(0, |p| p + 1);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, bad).unwrap_or_else(|e| panic!("{e}"));
    let e = Config::load(&path)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("bad.toml"), "{e}");
    assert!(e.contains(&format!("line {line}")), "{e}");
    assert!(e.contains("modems[0].stop_bitz"), "{e}");
}
