//! Host setup commands of `mserver`: `init` (a first configuration with a fresh admin
//! password), `check-config` (validate as the service would, like `sshd -t`) and `gen-cert`
//! (a private CA and a server certificate for the LAN). Owns file creation for these
//! commands only; it never starts the server, opens devices or sockets.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, HASH_PLACEHOLDER};

/// The shipped example configuration: the template `mserver init` fills in.
pub const EXAMPLE_CONFIG: &str = include_str!("../../deploy/mserver.example.toml");
/// The shipped default ruleset, written next to a new configuration.
pub const DEFAULT_RULESET: &str = include_str!("../../deploy/ipmasq.rules");
/// File name of the ruleset the example configuration points at.
const RULESET_NAME: &str = "ipmasq.rules";

/// Errors of the setup commands.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The target exists: these commands never overwrite.
    #[error("{0} already exists; not overwriting it (move it away first)")]
    Exists(PathBuf),
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The ruleset the configuration names does not load.
    #[error("ruleset {path}: {message}")]
    Ruleset {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A TLS file named by the configuration is missing or not PEM of the right kind.
    #[error("{path}: {message}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Hashing, randomness or certificate generation failed.
    #[error("{0}")]
    Crypto(String),
}

impl SetupError {
    /// True when the problem is the configuration (exit status 78, EX_CONFIG).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::Config(_) | Self::Ruleset { .. } | Self::Tls { .. }
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SetupError + '_ {
    move |source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            SetupError::Exists(path.to_path_buf())
        } else {
            SetupError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// Creates `dir` (and missing parents) with exactly `mode`, whatever the umask: a directory
/// that holds secrets must not come out 0777 under `umask 000`. An existing directory keeps
/// its mode (the admin's choice).
fn create_private_dir(dir: &Path, mode: u32) -> Result<(), SetupError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io_err(dir))?;
    // The umask may have taken bits off `mode`; set it exactly.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io_err(dir))
}

/// Create `path` with `mode` (never following a symlink, never overwriting) and write `text`.
fn create_new(path: &Path, mode: u32, text: &[u8]) -> Result<(), SetupError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(text).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Give `path` to group `masqdial` when run as root and the group exists (the service
/// reads the file through its group); otherwise leave it alone. Returns the group set.
fn chgrp_service(path: &Path) -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let group = nix::unistd::Group::from_name("masqdial").ok().flatten()?;
    nix::unistd::chown(path, None, Some(group.gid)).ok()?;
    Some("masqdial")
}

/// A random password of 20 characters from an alphabet without look-alikes (~115 bits).
pub fn random_password() -> Result<String, SetupError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    // Rejection sampling: no modulo bias.
    let limit = 256 - 256 % ALPHABET.len();
    while out.len() < 20 {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| SetupError::Crypto(format!("no randomness: {e}")))?;
        for b in raw {
            if usize::from(b) < limit && out.len() < 20 {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// The example configuration with the admin's placeholder replaced by `admin_hash`.
pub fn init_text(admin_hash: &str) -> String {
    EXAMPLE_CONFIG.replacen(HASH_PLACEHOLDER, admin_hash, 1)
}

/// What `mserver init` made.
#[derive(Debug)]
pub struct InitOutcome {
    /// The new configuration file.
    pub config: PathBuf,
    /// The ruleset written next to it (None: one was there already and was kept).
    pub ruleset: Option<PathBuf>,
    /// The admin's password, to be shown once.
    pub admin_password: String,
    /// Group the files were given (when run as root and the group exists).
    pub group: Option<&'static str>,
}

/// `mserver init`: write a configuration (the example, admin password fresh) to `path`,
/// mode 0640, refusing to overwrite; write the default ruleset next to it if absent.
/// `hash` makes the PHC string (the real cost in production, a cheap one in tests).
pub fn init(
    path: &Path,
    hash: impl FnOnce(&str) -> Result<String, String>,
) -> Result<InitOutcome, SetupError> {
    if path.symlink_metadata().is_ok() {
        return Err(SetupError::Exists(path.to_path_buf()));
    }
    let password = random_password()?;
    let phc = hash(&password).map_err(SetupError::Crypto)?;
    let text = init_text(&phc);
    // Never write a file the server would refuse.
    Config::parse(path, &text)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir, 0o750)?;
    }
    create_new(path, 0o640, text.as_bytes())?;
    let group = chgrp_service(path);
    let rules = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(RULESET_NAME);
    let ruleset = match create_new(&rules, 0o644, DEFAULT_RULESET.as_bytes()) {
        Ok(()) => Some(rules),
        Err(SetupError::Exists(_)) => None,
        Err(e) => return Err(e),
    };
    Ok(InitOutcome {
        config: path.to_path_buf(),
        ruleset,
        admin_password: password,
        group,
    })
}

/// `mserver check-config`: load and validate `path` as the service would at start, then
/// load the ruleset it names and check the TLS files. Returns the loaded configuration.
pub fn check_config(path: &Path) -> Result<Config, SetupError> {
    let config = Config::load(path)?;
    if let Some(r) = &config.nat.ruleset {
        let text = std::fs::read_to_string(r).map_err(|e| SetupError::Ruleset {
            path: r.clone(),
            message: e.to_string(),
        })?;
        nat_core::chains::Firewall::from_saved(&text).map_err(|e| SetupError::Ruleset {
            path: r.clone(),
            message: e.to_string(),
        })?;
    }
    if let Some((cert, key)) = config.tls() {
        for (p, want) in [(cert, "CERTIFICATE"), (key, "PRIVATE KEY")] {
            let text = std::fs::read_to_string(p).map_err(|e| SetupError::Tls {
                path: p.to_path_buf(),
                message: e.to_string(),
            })?;
            if !pem_has(&text, want) {
                return Err(SetupError::Tls {
                    path: p.to_path_buf(),
                    message: format!("no PEM {want} block in it"),
                });
            }
        }
    }
    Ok(config)
}

/// Whether PEM `text` has a block whose label ends with `label` (`PRIVATE KEY` matches
/// `EC PRIVATE KEY` and `RSA PRIVATE KEY` too).
fn pem_has(text: &str, label: &str) -> bool {
    text.lines().any(|l| {
        l.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|r| r.strip_suffix("-----"))
            .is_some_and(|l| l.ends_with(label))
    })
}

/// What `mserver gen-cert` made.
#[derive(Debug)]
pub struct GenCertOutcome {
    /// The CA certificate to give clients (`MASQDIAL_CA`).
    pub ca_cert: PathBuf,
    /// The CA's private key (kept to issue a new server certificate later).
    pub ca_key: PathBuf,
    /// The server's certificate chain (`tls_cert`).
    pub cert: PathBuf,
    /// The server's private key (`tls_key`).
    pub key: PathBuf,
    /// SHA-256 of the CA certificate (DER), colon-separated hex.
    pub ca_fingerprint: String,
    /// The names and addresses the server certificate is valid for.
    pub names: Vec<String>,
}

/// Today's civil date (UTC) plus `days_from_now`, as (year, month, day).
fn civil_date(days_from_now: i64) -> (i32, u8, u8) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = crate::budget::tz::civil_from_days(
        i64::try_from(now / 86_400).unwrap_or(0) + days_from_now,
    );
    (
        i32::try_from(y).unwrap_or(2000),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

fn crypto(e: impl std::fmt::Display) -> SetupError {
    SetupError::Crypto(e.to_string())
}

/// `mserver gen-cert`: a private CA (ECDSA P-256, 10 years) and a server certificate it
/// signs (ECDSA P-256, `days` days) for `names` (DNS names or IP addresses), written to
/// `dir` as `ca.pem`, `ca-key.pem` (0600), `cert.pem` (server then CA) and `key.pem`
/// (0640). Refuses to overwrite any of them.
pub fn gen_cert(dir: &Path, names: &[String], days: u32) -> Result<GenCertOutcome, SetupError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    if names.is_empty() {
        return Err(SetupError::Crypto(
            "no name or address for the certificate".into(),
        ));
    }
    let ca_cert = dir.join("ca.pem");
    let ca_key = dir.join("ca-key.pem");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    for p in [&ca_cert, &ca_key, &cert, &key] {
        if p.symlink_metadata().is_ok() {
            return Err(SetupError::Exists(p.clone()));
        }
    }
    let ymd = |d: i64| {
        let (y, m, dd) = civil_date(d);
        rcgen::date_time_ymd(y, m, dd)
    };

    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "masqdial private CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "masqdial");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = ymd(-1);
    ca.not_after = ymd(3650);
    let ca_pair = KeyPair::generate().map_err(crypto)?;
    let ca_signed = ca.self_signed(&ca_pair).map_err(crypto)?;
    let ca_der = ca_signed.der().to_vec();
    let ca_pem = ca_signed.pem();
    let ca_key_pem = ca_pair.serialize_pem();
    let issuer = Issuer::new(ca, ca_pair);

    let mut sans = Vec::new();
    for n in names {
        sans.push(match n.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                n.clone()
                    .try_into()
                    .map_err(|e| SetupError::Crypto(format!("name {n:?}: {e}")))?,
            ),
        });
    }
    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names = sans;
    leaf.distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = ymd(-1);
    leaf.not_after = ymd(i64::from(days.max(1)));
    let leaf_pair = KeyPair::generate().map_err(crypto)?;
    let leaf_signed = leaf.signed_by(&leaf_pair, &issuer).map_err(crypto)?;

    create_private_dir(dir, 0o700)?;
    create_new(&ca_cert, 0o644, ca_pem.as_bytes())?;
    create_new(&ca_key, 0o600, ca_key_pem.as_bytes())?;
    create_new(
        &cert,
        0o644,
        format!("{}{}", leaf_signed.pem(), ca_pem).as_bytes(),
    )?;
    create_new(&key, 0o640, leaf_pair.serialize_pem().as_bytes())?;
    chgrp_service(&key);
    Ok(GenCertOutcome {
        ca_cert,
        ca_key,
        cert,
        key,
        ca_fingerprint: fingerprint(&ca_der),
        names: names.to_vec(),
    })
}

/// SHA-256 of DER bytes as colon-separated upper-case hex (as `openssl x509 -fingerprint`).
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Default certificate names: the host name, `localhost`, and every up, non-link-local
/// address of the host (loopback included).
pub fn default_cert_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(h) = nix::unistd::gethostname() {
        if let Some(h) = h.to_str().filter(|h| !h.is_empty()) {
            names.push(h.to_string());
        }
    }
    names.push("localhost".into());
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let ip = a.address.as_ref().and_then(|s| {
                s.as_sockaddr_in()
                    .map(|v4| IpAddr::V4(v4.ip()))
                    .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
            });
            let Some(ip) = ip else { continue };
            let link_local = match ip {
                IpAddr::V4(v4) => v4.is_link_local(),
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
            };
            if !link_local && !names.contains(&ip.to_string()) {
                names.push(ip.to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap_hash(pw: &str) -> Result<String, String> {
        crate::auth::hash_password_with(pw, crate::auth::fast_params()).map_err(|e| e.to_string())
    }

    /// Security N13: the directories `init` and `gen-cert` create get their mode exactly,
    /// not what the umask leaves (the test asks for group-write, which the usual umask 022
    /// would take away).
    #[test]
    fn created_directories_get_their_mode_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        let d = tmp.path().join("a/b");
        create_private_dir(&d, 0o770).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&d), 0o770);
        let certs = tmp.path().join("certs");
        create_private_dir(&certs, 0o700).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&certs), 0o700);
        // An existing directory keeps the admin's mode.
        std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        create_private_dir(&certs, 0o700).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&certs), 0o755);
    }

    #[test]
    fn example_config_is_refused_for_its_placeholder() {
        let e = Config::parse(Path::new("ex.toml"), EXAMPLE_CONFIG)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("users[0].password_hash"), "{e}");
        assert!(e.contains("mserver hash-password"), "{e}");
    }

    #[test]
    fn init_writes_a_valid_config_once_with_a_working_password() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("etc/mserver.toml");
        let out = init(&path, cheap_hash).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.admin_password.len(), 20);
        let c = check_config(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].name, "admin");
        assert!(crate::auth::verify_password(
            &c.users[0].password_hash,
            &out.admin_password
        ));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o640);
        assert_eq!(out.ruleset, Some(dir.path().join("etc/ipmasq.rules")));
        // A second run refuses, and leaves the file as it was.
        let before = std::fs::read(&path).unwrap_or_default();
        match init(&path, cheap_hash) {
            Err(SetupError::Exists(p)) => assert_eq!(p, path),
            other => panic!("second init: {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap_or_default(), before);
    }

    #[test]
    fn check_config_names_a_broken_ruleset() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("mserver.toml");
        init(&path, cheap_hash).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("ipmasq.rules"), "-A forward -j NOPE\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let e = check_config(&path).err();
        assert!(matches!(e, Some(SetupError::Ruleset { .. })), "{e:?}");
        assert!(e.is_some_and(|e| e.is_config()));
    }

    #[test]
    fn random_passwords_differ_and_use_the_alphabet() {
        let a = random_password().unwrap_or_default();
        let b = random_password().unwrap_or_default();
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !"01lIoOB".contains(c)));
    }
}
