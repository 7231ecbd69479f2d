//! TLS end to end: mserver with `tls_cert`/`tls_key` (rustls) and the real mclient with
//! `https://` and `--ca`. Certificates come from the `openssl` command; prints SKIPPED when
//! it is not installed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use masqdial_server::auth;
use masqdial_server::config::{Config, UserConfig, UserRole};
use masqdial_server::rpc::ServerState;
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(30);

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A CA and a leaf for localhost/127.0.0.1 signed by it.
fn make_certs(dir: &Path) -> bool {
    let ext = dir.join("ext.cnf");
    if std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .is_err()
    {
        return false;
    }
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca: Vec<&str> = ["req", "-x509"]
        .into_iter()
        .chain(ec)
        .chain([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=masqdial test CA",
        ])
        .collect();
    let req: Vec<&str> = ["req"]
        .into_iter()
        .chain(ec)
        .chain([
            "-keyout",
            "key.pem",
            "-out",
            "req.csr",
            "-subj",
            "/CN=localhost",
        ])
        .collect();
    let sign = [
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ];
    openssl(dir, &ca) && openssl(dir, &req) && openssl(dir, &sign)
}

#[tokio::test]
async fn https_with_ca_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Skipped only when openssl is genuinely absent; an installed openssl that cannot make
    // the certificates fails the test.
    if !masqdial_testkit::tool_available(
        masqdial_testkit::test_name!(),
        "openssl",
        &["version"],
        "apt-get install -y openssl",
    ) {
        return;
    }
    assert!(
        make_certs(dir.path()),
        "openssl is installed but could not make the test certificates"
    );
    let mut c = Config::default();
    c.server.allow = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    c.server.tls_cert = Some(dir.path().join("cert.pem"));
    c.server.tls_key = Some(dir.path().join("key.pem"));
    let h = auth::hash_password_with("pw", auth::fast_params()).unwrap_or_default();
    c.users.push(UserConfig {
        name: "alice".into(),
        password_hash: h,
        role: UserRole::User,
        connections: vec![],
    });
    let state = ServerState::new(c, None).unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(masqdial_server::server::run(
        listener,
        state,
        None,
        async move {
            let _ = rx.await;
        },
    ));

    let server = format!("https://localhost:{port}");
    let tokens = dir.path().join("tokens.toml");
    let config = dir.path().join("client.toml");
    let run = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mclient"));
        cmd.args(args)
            .env("MASQDIAL_TOKEN_FILE", &tokens)
            .env("MASQDIAL_PASSWORD", "pw")
            .env("MASQDIAL_CONFIG", &config)
            .env_remove("MASQDIAL_CA")
            .kill_on_drop(true);
        async move {
            let o = tokio::time::timeout(LIMIT, cmd.output())
                .await
                .unwrap_or_else(|_| panic!("mclient hung"));
            o.unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let ca = dir.path().join("ca.pem").display().to_string();
    let args = |rest: &[&str]| -> Vec<String> {
        ["--server", &server, "--ca", &ca]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };

    let o = run(args(&["--user", "alice", "login"])).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(args(&["whoami"])).await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("alice (user)"));

    // Without the CA the client refuses to guess; with plain http the TLS server does not answer gRPC.
    let o = run(vec!["--server".into(), server.clone(), "whoami".into()]).await;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--ca"));
    let _ = tx.send(());
}
