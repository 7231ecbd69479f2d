//! TLS negative cases (security review, round 3): the real mclient against a TLS mserver
//! with a certificate from another CA, a certificate for another name, an expired
//! certificate, and plain http to the TLS port. Each ends in a plain error (one sentence, no
//! transport debug text), and the password never reaches the server: no login attempt is
//! counted and no session exists. Certificates come from rcgen (no system tool needed).

use std::path::Path;
use std::time::Duration;

use masqdial_server::auth;
use masqdial_server::config::{Config, UserConfig, UserRole};
use masqdial_server::rpc::ServerState;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(30);

/// A CA, and a leaf for `names` valid from `from` to `to` (days from today) signed by it:
/// (CA PEM, leaf chain PEM, leaf key PEM).
fn chain(names: &[&str], from: i64, to: i64) -> (String, String, String) {
    let day = |d: i64| {
        let t = std::time::SystemTime::now() + Duration::from_secs(0);
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            + d * 86_400;
        let days = secs.div_euclid(86_400);
        let (y, m, dd) = civil(days);
        rcgen::date_time_ymd(y, m, dd)
    };
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = day(-30);
    ca.not_after = day(30);
    let ca_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let ca_cert = ca.self_signed(&ca_key).unwrap_or_else(|e| panic!("{e}"));
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names = names
        .iter()
        .map(|n| match n.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*n).try_into().unwrap_or_else(|e| panic!("{e}"))),
        })
        .collect();
    leaf.distinguished_name.push(DnType::CommonName, names[0]);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = day(from);
    leaf.not_after = day(to);
    let leaf_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .unwrap_or_else(|e| panic!("{e}"));
    (
        ca_pem.clone(),
        format!("{}{}", leaf_cert.pem(), ca_pem),
        leaf_key.serialize_pem(),
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m as u8, d as u8)
}

struct Tls {
    port: u16,
    state: ServerState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Tls {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn server(dir: &Path, cert: &str, key: &str) -> Tls {
    std::fs::write(dir.join("cert.pem"), cert).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("key.pem"), key).unwrap_or_else(|e| panic!("{e}"));
    let mut c = Config::default();
    c.server.allow = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    c.server.tls_cert = Some(dir.join("cert.pem"));
    c.server.tls_key = Some(dir.join("key.pem"));
    c.users.push(UserConfig {
        name: "alice".into(),
        password_hash: auth::hash_password_with("pw", auth::fast_params()).unwrap_or_default(),
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
        state.clone(),
        None,
        async move {
            let _ = rx.await;
        },
    ));
    Tls {
        port,
        state,
        stop: Some(tx),
    }
}

/// `mclient --server URL [--ca CA] --user alice login`: (success, stderr).
async fn login(dir: &Path, url: &str, ca: Option<&Path>) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mclient"));
    cmd.arg("--server").arg(url);
    if let Some(ca) = ca {
        cmd.arg("--ca").arg(ca);
    }
    cmd.args(["--user", "alice", "login"])
        .env("MASQDIAL_TOKEN_FILE", dir.join("tokens.toml"))
        .env("MASQDIAL_PASSWORD", "pw")
        .env("MASQDIAL_CONFIG", dir.join("client.toml"))
        .env_remove("MASQDIAL_CA")
        .kill_on_drop(true);
    let o = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("mclient hung"))
        .unwrap_or_else(|e| panic!("{e}"));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A plain error: a sentence or two, no Rust debug text, and nothing reached the server.
fn plain_refusal(case: &str, (ok, err): (bool, String), s: &Tls) {
    println!("{case}: {err}");
    assert!(!ok, "{case}: mclient logged in");
    assert!(!err.trim().is_empty(), "{case}: no message");
    for debug in [
        "Error(", "Custom {", "kind:", "source:", "hyper::", "tonic::", "rustls",
    ] {
        assert!(
            !err.contains(debug),
            "{case}: debug text {debug:?} in {err}"
        );
    }
    assert!(err.lines().count() <= 4, "{case}: {err}");
    assert_eq!(
        s.state.auth().attempts_of_user("alice"),
        0,
        "{case}: a login attempt reached the server"
    );
    assert_eq!(
        s.state.auth().session_count(),
        0,
        "{case}: a session exists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_other_name_expired_and_plaintext_are_plain_errors_and_send_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let good_names = ["localhost", "127.0.0.1"];
    let other_ca = d.join("other-ca.pem");
    std::fs::write(&other_ca, chain(&good_names, -1, 10).0).unwrap_or_else(|e| panic!("{e}"));

    // A good certificate; the client trusts another CA.
    {
        let (ca, cert, key) = chain(&good_names, -1, 10);
        std::fs::write(d.join("ca.pem"), ca).unwrap_or_else(|e| panic!("{e}"));
        let s = server(d, &cert, &key).await;
        let url = format!("https://localhost:{}", s.port);
        let r = login(d, &url, Some(&other_ca)).await;
        assert!(r.1.contains("check --ca"), "{}", r.1);
        plain_refusal("wrong CA", r, &s);
        // Plain http to the TLS port (loopback, so mclient allows a password over it).
        let url = format!("http://127.0.0.1:{}", s.port);
        plain_refusal("plaintext to TLS", login(d, &url, None).await, &s);
        // The control: the right CA logs in.
        let url = format!("https://localhost:{}", s.port);
        let (ok, err) = login(d, &url, Some(&d.join("ca.pem"))).await;
        assert!(ok, "the right CA was refused: {err}");
    }
    // A certificate for another name.
    {
        let (ca, cert, key) = chain(&["gw.example"], -1, 10);
        std::fs::write(d.join("ca2.pem"), ca).unwrap_or_else(|e| panic!("{e}"));
        let s = server(d, &cert, &key).await;
        let url = format!("https://localhost:{}", s.port);
        plain_refusal(
            "hostname mismatch",
            login(d, &url, Some(&d.join("ca2.pem"))).await,
            &s,
        );
    }
    // An expired certificate (valid until yesterday).
    {
        let (ca, cert, key) = chain(&good_names, -10, -1);
        std::fs::write(d.join("ca3.pem"), ca).unwrap_or_else(|e| panic!("{e}"));
        let s = server(d, &cert, &key).await;
        let url = format!("https://localhost:{}", s.port);
        plain_refusal(
            "expired certificate",
            login(d, &url, Some(&d.join("ca3.pem"))).await,
            &s,
        );
    }
}
