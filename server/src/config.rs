//! mserver configuration: TOML file, validated with file/line/key errors.
//!
//! Owns parsing and semantic validation of the configuration only; it must not open
//! devices, sockets or files other than the configuration file itself.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Port IANA assigned to masqdialer (tcp/224); the default listen port.
pub const DEFAULT_PORT: u16 = 224;
/// Default bearer-token lifetime in seconds (12 hours).
pub const DEFAULT_TOKEN_TTL_S: u64 = 12 * 3600;
/// The `password_hash` placeholder of the shipped example configuration. It (like any value
/// starting with `<`) fails validation with a message saying how to make a hash.
pub const HASH_PLACEHOLDER: &str = "<run: mserver hash-password>";
/// The command that prints a hash, named in validation messages.
const HASH_HINT: &str = "mserver hash-password";

/// Longest duration any setting may have (30 days, in seconds): far beyond any sensible
/// value, and far from overflowing an `Instant` or a centisecond counter.
pub const MAX_DURATION_S: u64 = 30 * 24 * 3600;

fn check_duration(
    section: &'static str,
    index: Option<usize>,
    key: &'static str,
    v: u64,
) -> Result<(), Violation> {
    if v > MAX_DURATION_S {
        return Err(Violation::new(
            section,
            index,
            key,
            format!("{v} s is too long (at most {MAX_DURATION_S} s = 30 days)"),
        ));
    }
    Ok(())
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: listener, TLS, allow-list, state directory.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[users]]`: who may log in.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// `[[modems]]`: serial devices.
    #[serde(default)]
    pub modems: Vec<ModemConfig>,
    /// `[[connections]]`: named dial-up profiles.
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
    /// `[nat]`: masquerading engine settings.
    #[serde(default)]
    pub nat: NatConfig,
    /// `[link]`: the queue in front of the active link.
    #[serde(default)]
    pub link: LinkConfig,
    /// `[[lan_hosts]]`: which user a LAN host's packets belong to (dial on demand).
    #[serde(default)]
    pub lan_hosts: Vec<LanHostConfig>,
    /// `[[budgets]]`: byte quota, connect-time budget and dialling windows per connection.
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
}

/// `[[budgets]]` entry: limits of one connection (see [`crate::budget`] for the
/// window syntax and the periods).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// The `[[connections]]` name.
    pub connection: String,
    /// Byte quota per `bytes_period` (none when absent).
    #[serde(default)]
    pub bytes: Option<u64>,
    /// `day` or `month` (default).
    #[serde(default)]
    pub bytes_period: crate::budget::Period,
    /// Which bytes count: `both` (default), `in` or `out`.
    #[serde(default)]
    pub count: crate::budget::Count,
    /// Seconds the link may be up per `time_period` (none when absent).
    #[serde(default)]
    pub connect_time_s: Option<u64>,
    /// `day` or `month` (default).
    #[serde(default)]
    pub time_period: crate::budget::Period,
    /// When the connection may be dialled, local time: `["Mo-Fr 18:00-08:00"]`. Empty:
    /// any time.
    #[serde(default)]
    pub windows: Vec<String>,
    /// Local time as a fixed offset (`"+01:00"`); default: the server's time zone.
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// Warn holders this many seconds before a window or connect-time hang-up (default 300).
    #[serde(default = "default_warn_before")]
    pub warn_before_s: u64,
    /// Warn holders when this fraction of the byte quota is used (default 0.9).
    #[serde(default = "default_warn_at")]
    pub warn_at: f64,
}

impl BudgetConfig {
    /// The budget policy this entry sets; the error says which field is wrong.
    pub fn policy(&self) -> Result<crate::budget::Policy, String> {
        use crate::budget::{parse_offset, Policy, Windows};
        Ok(Policy {
            bytes: self.bytes,
            bytes_period: self.bytes_period,
            count: self.count,
            time_s: self.connect_time_s,
            time_period: self.time_period,
            windows: Windows::parse(&self.windows)?,
            offset: self.utc_offset.as_deref().map(parse_offset).transpose()?,
            warn_before_s: self.warn_before_s,
            warn_at: self.warn_at,
        })
    }
}

fn default_warn_before() -> u64 {
    300
}

fn default_warn_at() -> f64 {
    0.9
}

/// `[link]` section: how traffic waits for the (slow) active link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// `fair` (default): per-host then per-flow fair queuing with CoDel, paced to the serial
    /// line. `fifo`: the old single FIFO, for comparison only.
    #[serde(default)]
    pub scheduler: crate::linkq::SchedulerKind,
    /// Shape the download direction to this fraction of the link rate (e.g. 0.9), so the
    /// queue forms here rather than at the ISP. Off when absent.
    #[serde(default)]
    pub ingress_shaping: Option<f64>,
    /// Networks no PPP peer may hand out (either end of the link), on top of this host's own
    /// interface networks, which are always refused (not the `allow` list: an ISP may give
    /// 10.x). IPv6 entries are ignored.
    #[serde(default)]
    pub refused_networks: Vec<IpNet>,
}

/// `[server]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the gRPC server listens on (default `0.0.0.0:224`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain for TLS; TLS is on when both cert and key are set.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Directory for persistent state (rulesets, dial transcripts).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Client networks allowed to talk to the server at all (CIDR list).
    #[serde(default = "default_allow")]
    pub allow: Vec<IpNet>,
    /// Lifetime of a login token, seconds (default 43200 = 12 h).
    #[serde(default = "default_token_ttl")]
    pub token_ttl_s: u64,
    /// Address of the Prometheus text endpoint (plain HTTP, `allow` applies); unset = none.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            state_dir: default_state_dir(),
            allow: default_allow(),
            token_ttl_s: default_token_ttl(),
            metrics_listen: None,
        }
    }
}

/// Role of a user (what they may do through the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Dials/hangs up the connections listed for them; reads everything.
    User,
    /// Also changes rules and timeouts and forces hang-ups.
    Admin,
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserRole::User => "user",
            UserRole::Admin => "admin",
        })
    }
}

/// `[[users]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// argon2 PHC string (`mserver hash-password` prints one).
    pub password_hash: String,
    /// `admin` or `user`.
    pub role: UserRole,
    /// Connections this user may dial and hang up (admins may dial all).
    #[serde(default)]
    pub connections: Vec<String>,
}

/// `[[lan_hosts]]` entry: a LAN host (or prefix) and the user its traffic is credited to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanHostConfig {
    /// Address or prefix, e.g. `192.168.77.2` or `192.168.77.16/28`.
    #[serde(deserialize_with = "host_or_net")]
    pub host: IpNet,
    /// A `[[users]]` name.
    pub user: String,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    /// None.
    None,
    /// RTS/CTS.
    #[default]
    Hardware,
    /// XON/XOFF.
    Software,
}

/// `[[modems]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModemConfig {
    /// Name used by connections, e.g. `modem0`.
    pub name: String,
    /// Device path, e.g. `/dev/ttyS0`.
    pub device: PathBuf,
    /// Line speed, bits per second (default 115200).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Data bits, 5..=8 (default 8).
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// Parity (default none).
    #[serde(default)]
    pub parity: Parity,
    /// Stop bits, 1 or 2 (default 1).
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// Flow control (default hardware).
    #[serde(default)]
    pub flow_control: FlowControl,
    /// AT init strings sent in order before dialling, each expecting `OK`.
    #[serde(default = "default_init")]
    pub init: Vec<String>,
    /// `[modems.cellular]`: poll the modem's cellular status (signal, registration,
    /// operator, SIM) over AT while it is idle, or over `status_port`.
    #[serde(default)]
    pub cellular: Option<CellularConfig>,
}

/// `[modems.cellular]`: status polling of a cellular modem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellularConfig {
    /// Seconds between polls (default 60).
    #[serde(default = "default_cell_poll")]
    pub poll_s: u64,
    /// SIM PIN, entered when the SIM asks for one (a secret: never logged or shown).
    #[serde(default)]
    pub sim_pin: Option<String>,
    /// A second AT port of the modem (e.g. `/dev/ttyUSB2`): polled even while the data
    /// port carries PPP. Without it, polls run only while the modem is idle.
    #[serde(default)]
    pub status_port: Option<PathBuf>,
}

/// PPP authentication the connection accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PppAuth {
    /// PAP only (the password crosses the line in clear).
    Pap,
    /// CHAP-MD5 only.
    Chap,
    /// CHAP-MD5 preferred: an ISP asking PAP is Nak'd towards CHAP-MD5 (pppd `refuse-pap`);
    /// PAP only if the ISP insists and `allow_pap_fallback` is set.
    #[default]
    Any,
}

/// `[[connections]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Profile name, e.g. `isp1`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Modems this connection may use, tried in order (empty = any).
    #[serde(default)]
    pub modems: Vec<String>,
    /// Numbers tried in order (`*99#` for cellular).
    pub numbers: Vec<String>,
    /// Dial command prefix (default `ATDT`).
    #[serde(default = "default_dial_prefix")]
    pub dial_prefix: String,
    /// Cellular APN, sent as `AT+CGDCONT=1,"IP","<apn>"` when set.
    #[serde(default)]
    pub apn: Option<String>,
    /// Cellular (an `apn`, or a modem with `[modems.cellular]`): longest wait, in seconds, for
    /// the modem to register (home or roaming) before dialling, polling `+CREG?`/`+CGREG?`/
    /// `+CEREG?`, `+CSQ` and `+COPS?` (default 60; 0 = dial without waiting; at most 600).
    #[serde(default = "default_registration_wait")]
    pub registration_wait_s: u64,
    /// PPP user name at the ISP.
    #[serde(default)]
    pub username: String,
    /// PPP secret at the ISP (clear text: CHAP needs it).
    #[serde(default)]
    pub password: String,
    /// PPP authentication protocol accepted (default any).
    #[serde(default)]
    pub auth: PppAuth,
    /// With `auth = "any"`: if the ISP still asks PAP after we proposed CHAP-MD5, use PAP
    /// (which sends the password in clear). Default false: the dial fails with a message
    /// naming this option. An error with `auth = "chap"`; no effect with `auth = "pap"`.
    #[serde(default)]
    pub allow_pap_fallback: bool,
    /// Dial attempts per request (default 3).
    #[serde(default = "default_redial_attempts")]
    pub redial_attempts: u32,
    /// Seconds between attempts (default 5).
    #[serde(default = "default_redial_delay")]
    pub redial_delay_s: u64,
    /// Hang up after this many seconds without traffic (0 = never).
    #[serde(default)]
    pub idle_timeout_s: u64,
    /// Hang up after this many seconds connected (0 = never).
    #[serde(default)]
    pub max_connect_s: u64,
    /// Redial when an up link is lost unexpectedly.
    #[serde(default)]
    pub redial_on_loss: bool,
    /// Destinations routed over this link (default everything).
    #[serde(default = "default_routes")]
    pub routes: Vec<IpNet>,
    /// Install `0.0.0.0/0` from `routes` even when the gateway already has a default route
    /// (default false: an existing default route is never replaced unless asked).
    #[serde(default)]
    pub replace_default_route: bool,
    /// Optional text login after CONNECT: alternating expect / send strings.
    #[serde(default)]
    pub login_script: Vec<String>,
    /// Our IPCP address (default: none, the ISP assigns one).
    #[serde(default)]
    pub local_address: Option<std::net::Ipv4Addr>,
    /// The ISP end's address if it asks to be told one or names none (default: whatever it
    /// names, else 10.64.64.64 like pppd).
    #[serde(default)]
    pub peer_address: Option<std::net::Ipv4Addr>,
    /// Take the address the ISP assigns even though `local_address` is set (pppd
    /// `ipcp-accept-local`).
    #[serde(default)]
    pub accept_local: bool,
    /// Let the ISP keep the address it names even though `peer_address` is set (pppd
    /// `ipcp-accept-remote`).
    #[serde(default)]
    pub accept_remote: bool,
    /// Dial on demand: a LAN packet routed to this connection while it is down dials it,
    /// if its source host maps to a user allowed this connection (needs `idle_timeout_s`).
    #[serde(default)]
    pub demand: bool,
    /// Activity filter, ipchains rule syntax (`-p udp -d 0/0 123 -j DENY`), first match
    /// wins: `DENY`/`REJECT` = the packet neither dials nor resets the idle timer, `ACCEPT`
    /// = it does; packets no rule matches count as activity. Written from the LAN host's
    /// side: replies from the link are matched with source and destination swapped.
    #[serde(default)]
    pub activity_filter: Vec<String>,
    /// Longest time a packet is held while a demand dial runs (seconds).
    #[serde(default = "default_demand_hold")]
    pub demand_hold_s: u64,
    /// Most bytes held while a demand dial runs (later packets are dropped).
    #[serde(default = "default_demand_hold_bytes")]
    pub demand_hold_bytes: usize,
}

/// Behaviour profile of the NAT engine (`[nat] rfc_profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RfcProfile {
    /// Linux 2.2 ip_masq behaviour (ipchains MASQ).
    #[default]
    Linux22,
    /// RFC 4787/5382-style behaviour (nat-core's `MasqConfig::rfc`). It hairpins, so while
    /// a link is up the server routes LAN packets for the link's address into the TUN with
    /// a policy rule (see `dataplane::netcfg::NetCfg::hairpin_on`).
    Rfc,
}

/// `[nat]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    /// First masquerade port (default 61000).
    #[serde(default = "default_port_low")]
    pub port_low: u16,
    /// Last masquerade port, inclusive (default 65095).
    #[serde(default = "default_port_high")]
    pub port_high: u16,
    /// TCP (established) timeout, seconds (default 900).
    #[serde(default = "default_tcp_timeout")]
    pub tcp_timeout: u32,
    /// TCP after FIN timeout, seconds (default 120).
    #[serde(default = "default_tcpfin_timeout")]
    pub tcpfin_timeout: u32,
    /// UDP timeout, seconds (default 300).
    #[serde(default = "default_udp_timeout")]
    pub udp_timeout: u32,
    /// LAN interface whose hosts are masqueraded (informational for rules).
    #[serde(default)]
    pub lan_interface: Option<String>,
    /// TUN device name the dataplane creates (default `masq0`).
    #[serde(default = "default_tun_name")]
    pub tun_name: String,
    /// Behaviour profile of the engine (default `linux22`).
    #[serde(default)]
    pub rfc_profile: RfcProfile,
    /// ipchains-save file loaded at start (optional).
    #[serde(default)]
    pub ruleset: Option<PathBuf>,
    /// Linux 2.2's `ip_dynaddr`: 0 = masquerade entries die when the link's address changes
    /// (2.2's default), 1 = entries that never saw a reply move to the new address (for
    /// dial-on-demand), 2 = as 1 and log each move. Default 1.
    #[serde(default = "default_dynaddr")]
    pub ip_dynaddr: u8,
    /// Most masquerade entries one LAN host may hold at once (0 = no quota, as in 2.2).
    /// Default 4096: one host cannot take every port of the pool from the others. Over it,
    /// new flows of that host are dropped (counter `drop.host_quota`).
    #[serde(default = "default_max_entries_per_host")]
    pub max_entries_per_host: u32,
    /// Clamp the MSS of TCP SYNs crossing the link to what its MTU carries (FreeBSD ppp
    /// `mssfixup`; default true). Off, LAN hosts rely on path MTU discovery (RFC 1191).
    #[serde(default = "default_true")]
    pub mss_clamp: bool,
    /// Set the TUN device's MTU to the peer's negotiated MRU on every link-up (default
    /// true), so the kernel itself fragments or answers Frag-Needed for what it routes into
    /// the TUN. Off, the TUN stays at 1500 and mserver does both (nat-core `mtu`).
    #[serde(default = "default_true")]
    pub tun_mtu_follows_mru: bool,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            port_low: default_port_low(),
            port_high: default_port_high(),
            tcp_timeout: default_tcp_timeout(),
            tcpfin_timeout: default_tcpfin_timeout(),
            udp_timeout: default_udp_timeout(),
            lan_interface: None,
            tun_name: default_tun_name(),
            rfc_profile: RfcProfile::default(),
            ruleset: None,
            ip_dynaddr: default_dynaddr(),
            max_entries_per_host: default_max_entries_per_host(),
            mss_clamp: true,
            tun_mtu_follows_mru: true,
        }
    }
}

fn default_max_entries_per_host() -> u32 {
    4096
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/masqdial")
}
fn default_allow() -> Vec<IpNet> {
    // Loopback and the RFC 1918 private networks: a LAN gateway's natural clients.
    [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}
fn default_token_ttl() -> u64 {
    DEFAULT_TOKEN_TTL_S
}
fn default_baud() -> u32 {
    115_200
}
fn default_data_bits() -> u8 {
    8
}
fn default_stop_bits() -> u8 {
    1
}
fn default_init() -> Vec<String> {
    vec!["ATZ".into()]
}
fn default_dial_prefix() -> String {
    "ATDT".into()
}
fn default_redial_attempts() -> u32 {
    3
}
fn default_redial_delay() -> u64 {
    5
}
fn default_registration_wait() -> u64 {
    60
}
/// Longest registration wait a connection may configure.
pub const MAX_REGISTRATION_WAIT_S: u64 = 600;
fn default_routes() -> Vec<IpNet> {
    default_route_all()
}
fn default_route_all() -> Vec<IpNet> {
    "0.0.0.0/0".parse().map(|n| vec![n]).unwrap_or_default()
}
/// An address (a host route, `/32`) or a prefix.
fn host_or_net<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an address or prefix")))
}

fn default_cell_poll() -> u64 {
    60
}

fn default_demand_hold() -> u64 {
    30
}
fn default_demand_hold_bytes() -> usize {
    64 * 1024
}
fn default_port_low() -> u16 {
    61000
}
fn default_port_high() -> u16 {
    65095
}
fn default_tcp_timeout() -> u32 {
    15 * 60
}
fn default_tcpfin_timeout() -> u32 {
    2 * 60
}
fn default_udp_timeout() -> u32 {
    5 * 60
}
fn default_tun_name() -> String {
    "masq0".into()
}
fn default_dynaddr() -> u8 {
    1
}
fn default_true() -> bool {
    true
}

/// Where in the file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted key path, e.g. `connections[1].modems` (empty when unknown).
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}")?,
            (Some(l), None) => write!(f, "line {l}")?,
            _ => f.write_str("(line unknown)")?,
        }
        if !self.key.is_empty() {
            write!(f, ", key `{}`", self.key)?;
        }
        Ok(())
    }
}

/// Error loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or wrong type.
    #[error("{path}: {at}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where.
        at: Location,
        /// What toml/serde said.
        message: String,
    },
    /// The file parsed but a value is wrong (unknown modem, duplicate name, bad hash...).
    #[error("{path}: {at}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The location of the problem, if it is a parse or validation error.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Parse { at, .. } | ConfigError::Invalid { at, .. } => Some(at),
        }
    }
}

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(path, &text)?;
        // A relative `[nat] ruleset` is relative to the config file's directory.
        if let (Some(r), Some(dir)) = (config.nat.ruleset.as_mut(), path.parent()) {
            if r.is_relative() {
                *r = dir.join(&*r);
            }
        }
        Ok(config)
    }

    /// Parse and validate configuration text; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column, key) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c), key_at_line(text, l))
                }
                None => (None, None, String::new()),
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                at: Location { line, column, key },
                message: e.message().trim().to_string(),
            }
        })?;
        config.validate().map_err(|v| {
            let line = locate(text, v.section, v.index, v.key);
            let key = match v.index {
                Some(i) if v.key.is_empty() => format!("{}[{i}]", v.section),
                Some(i) => format!("{}[{i}].{}", v.section, v.key),
                None if v.key.is_empty() => v.section.to_string(),
                None => format!("{}.{}", v.section, v.key),
            };
            ConfigError::Invalid {
                path: path.to_path_buf(),
                at: Location {
                    line,
                    column: None,
                    key,
                },
                message: v.message,
            }
        })?;
        Ok(config)
    }

    /// Semantic checks; returns the first problem found.
    fn validate(&self) -> Result<(), Violation> {
        let s = &self.server;
        if s.tls_cert.is_some() != s.tls_key.is_some() {
            let key = if s.tls_cert.is_some() {
                "tls_cert"
            } else {
                "tls_key"
            };
            return Err(Violation::new(
                "server",
                None,
                key,
                "tls_cert and tls_key must be set together",
            ));
        }
        if s.allow.is_empty() {
            return Err(Violation::new(
                "server",
                None,
                "allow",
                "allow is empty: no client could connect",
            ));
        }
        if s.metrics_listen.is_some_and(|m| m == s.listen) {
            return Err(Violation::new(
                "server",
                None,
                "metrics_listen",
                "must differ from listen (the metrics endpoint is plain HTTP)",
            ));
        }
        if s.token_ttl_s == 0 {
            return Err(Violation::new(
                "server",
                None,
                "token_ttl_s",
                "must be at least 1 second",
            ));
        }
        check_duration("server", None, "token_ttl_s", s.token_ttl_s)?;

        let mut modems = HashSet::new();
        for (i, m) in self.modems.iter().enumerate() {
            check_name("modems", i, &m.name)?;
            if !modems.insert(m.name.as_str()) {
                return Err(Violation::new(
                    "modems",
                    Some(i),
                    "name",
                    format!("duplicate modem name `{}`", m.name),
                ));
            }
            if m.baud == 0 {
                return Err(Violation::new(
                    "modems",
                    Some(i),
                    "baud",
                    "must be positive",
                ));
            }
            if !(5..=8).contains(&m.data_bits) {
                return Err(Violation::new(
                    "modems",
                    Some(i),
                    "data_bits",
                    "must be 5, 6, 7 or 8",
                ));
            }
            if let Some(c) = &m.cellular {
                if c.poll_s == 0 {
                    return Err(Violation::new(
                        "modems",
                        Some(i),
                        "cellular",
                        "poll_s must be at least 1 second",
                    ));
                }
                if c.sim_pin.as_ref().is_some_and(|p| {
                    !(4..=8).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit())
                }) {
                    return Err(Violation::new(
                        "modems",
                        Some(i),
                        "cellular",
                        "sim_pin must be 4 to 8 digits",
                    ));
                }
            }
            if m.flow_control == FlowControl::Software {
                // Refused rather than silently ignored: over XON/XOFF the tty eats 0x11/0x13
                // and the modem obeys them inside PPP frames, so both directions would have
                // to escape them (LCP ACCM 0x000a0000, RFC 1662 section 7.1), which the
                // link stack does not negotiate.
                return Err(Violation::new(
                    "modems",
                    Some(i),
                    "flow_control",
                    "\"software\" (XON/XOFF) is not supported: PPP would have to escape XON \
                     and XOFF in both directions; use \"hardware\" (RTS/CTS) or \"none\"",
                ));
            }
            if !(1..=2).contains(&m.stop_bits) {
                return Err(Violation::new(
                    "modems",
                    Some(i),
                    "stop_bits",
                    "must be 1 or 2",
                ));
            }
        }

        let mut conns = HashSet::new();
        for (i, c) in self.connections.iter().enumerate() {
            check_name("connections", i, &c.name)?;
            if !conns.insert(c.name.as_str()) {
                return Err(Violation::new(
                    "connections",
                    Some(i),
                    "name",
                    format!("duplicate connection name `{}`", c.name),
                ));
            }
            if let Some(m) = c.modems.iter().find(|m| !modems.contains(m.as_str())) {
                return Err(Violation::new(
                    "connections",
                    Some(i),
                    "modems",
                    format!("unknown modem `{m}` (not in [[modems]])"),
                ));
            }
            if c.numbers.is_empty() || c.numbers.iter().any(|n| n.trim().is_empty()) {
                return Err(Violation::new(
                    "connections",
                    Some(i),
                    "numbers",
                    "needs at least one non-empty number",
                ));
            }
            if c.allow_pap_fallback && c.auth == PppAuth::Chap {
                return Err(Violation::new(
                    "connections",
                    Some(i),
                    "allow_pap_fallback",
                    "contradicts auth = \"chap\" (CHAP-MD5 only); use auth = \"any\" to allow \
                     PAP when the ISP insists",
                ));
            }
            check_duration("connections", Some(i), "redial_delay_s", c.redial_delay_s)?;
            if c.registration_wait_s > MAX_REGISTRATION_WAIT_S {
                return Err(Violation::new(
                    "connections",
                    Some(i),
                    "registration_wait_s",
                    format!(
                        "{} s is too long (at most {MAX_REGISTRATION_WAIT_S} s; 0 = do not wait)",
                        c.registration_wait_s
                    ),
                ));
            }
            check_duration("connections", Some(i), "idle_timeout_s", c.idle_timeout_s)?;
            check_duration("connections", Some(i), "max_connect_s", c.max_connect_s)?;
            if c.login_script.len() % 2 != 0 {
                return Err(Violation::new(
                    "connections",
                    Some(i),
                    "login_script",
                    "must alternate expect and send strings (even length)",
                ));
            }
            if c.demand && c.idle_timeout_s == 0 {
                return Err(Violation::new(
                    "connections",
                    Some(i),
                    "idle_timeout_s",
                    "demand = true needs an idle timeout (the link would never hang up)",
                ));
            }
            if c.demand && c.demand_hold_s == 0 {
                return Err(Violation::new(
                    "connections",
                    Some(i),
                    "demand_hold_s",
                    "must be at least 1 second",
                ));
            }
            if let Err(e) = crate::activity::ActivityFilter::parse(&c.activity_filter) {
                return Err(Violation::new("connections", Some(i), "activity_filter", e));
            }
        }

        let mut users = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            check_name("users", i, &u.name)?;
            if !users.insert(u.name.as_str()) {
                return Err(Violation::new(
                    "users",
                    Some(i),
                    "name",
                    format!("duplicate user name `{}`", u.name),
                ));
            }
            let h = u.password_hash.trim();
            if h.is_empty() || h.starts_with('<') {
                return Err(Violation::new(
                    "users",
                    Some(i),
                    "password_hash",
                    format!(
                        "{:?} is a placeholder, not a hash: put the output of `{HASH_HINT}` here \
                         (or write a fresh configuration with `mserver init`)",
                        u.password_hash
                    ),
                ));
            }
            if let Err(e) = crate::phc::check_phc(&u.password_hash) {
                return Err(Violation::new(
                    "users",
                    Some(i),
                    "password_hash",
                    format!("{e} (make one with `{HASH_HINT}`)"),
                ));
            }
            if let Some(c) = u.connections.iter().find(|c| !conns.contains(c.as_str())) {
                return Err(Violation::new(
                    "users",
                    Some(i),
                    "connections",
                    format!("unknown connection `{c}` (not in [[connections]])"),
                ));
            }
        }

        for (i, h) in self.lan_hosts.iter().enumerate() {
            if !users.contains(h.user.as_str()) {
                return Err(Violation::new(
                    "lan_hosts",
                    Some(i),
                    "user",
                    format!("unknown user `{}` (not in [[users]])", h.user),
                ));
            }
        }

        let mut budgets = HashSet::new();
        for (i, b) in self.budgets.iter().enumerate() {
            let v = |key: &'static str, m: String| Violation::new("budgets", Some(i), key, m);
            if !conns.contains(b.connection.as_str()) {
                return Err(v(
                    "connection",
                    format!(
                        "unknown connection `{}` (not in [[connections]])",
                        b.connection
                    ),
                ));
            }
            if !budgets.insert(b.connection.as_str()) {
                return Err(v(
                    "connection",
                    format!("a second [[budgets]] entry for `{}`", b.connection),
                ));
            }
            if b.bytes == Some(0) {
                return Err(v(
                    "bytes",
                    "must be at least 1 (leave it out for no quota)".into(),
                ));
            }
            if b.connect_time_s == Some(0) {
                return Err(v(
                    "connect_time_s",
                    "must be at least 1 second (leave it out for no budget)".into(),
                ));
            }
            if let Some(t) = b.connect_time_s {
                check_duration("budgets", Some(i), "connect_time_s", t)?;
            }
            check_duration("budgets", Some(i), "warn_before_s", b.warn_before_s)?;
            if !(b.warn_at.is_finite() && b.warn_at > 0.0 && b.warn_at <= 1.0) {
                return Err(v(
                    "warn_at",
                    format!(
                        "{} must be above 0 and at most 1 (a fraction of the quota)",
                        b.warn_at
                    ),
                ));
            }
            if let Err(e) = crate::budget::Windows::parse(&b.windows) {
                return Err(v("windows", e));
            }
            if let Some(o) = &b.utc_offset {
                if let Err(e) = crate::budget::parse_offset(o) {
                    return Err(v("utc_offset", e));
                }
            }
        }

        let n = &self.nat;
        check_duration("nat", None, "tcp_timeout", n.tcp_timeout.into())?;
        check_duration("nat", None, "tcpfin_timeout", n.tcpfin_timeout.into())?;
        check_duration("nat", None, "udp_timeout", n.udp_timeout.into())?;
        if n.port_low < 1024 || n.port_low > n.port_high {
            return Err(Violation::new(
                "nat",
                None,
                "port_low",
                format!(
                    "port range {}..={} must satisfy 1024 <= port_low <= port_high",
                    n.port_low, n.port_high
                ),
            ));
        }
        for (key, v) in [
            ("tcp_timeout", n.tcp_timeout),
            ("tcpfin_timeout", n.tcpfin_timeout),
            ("udp_timeout", n.udp_timeout),
        ] {
            if v == 0 {
                return Err(Violation::new(
                    "nat",
                    None,
                    key,
                    "must be at least 1 second",
                ));
            }
        }
        if n.tun_name.is_empty() || n.tun_name.len() > 15 {
            return Err(Violation::new(
                "nat",
                None,
                "tun_name",
                "must be 1 to 15 characters (IFNAMSIZ)",
            ));
        }
        if let Some(f) = self.link.ingress_shaping {
            if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                return Err(Violation::new(
                    "link",
                    None,
                    "ingress_shaping",
                    format!("{f} must be above 0 and at most 1 (a fraction of the link rate)"),
                ));
            }
        }
        Ok(())
    }

    /// Names of every configured connection, in file order.
    pub fn connection_names(&self) -> Vec<String> {
        self.connections.iter().map(|c| c.name.clone()).collect()
    }

    /// Whether TLS is configured.
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => None,
        }
    }
}

/// A semantic problem, located by section / array index / key.
struct Violation {
    section: &'static str,
    index: Option<usize>,
    key: &'static str,
    message: String,
}

impl Violation {
    fn new(
        section: &'static str,
        index: Option<usize>,
        key: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Violation {
            section,
            index,
            key,
            message: message.into(),
        }
    }
}

fn check_name(section: &'static str, i: usize, name: &str) -> Result<(), Violation> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Violation::new(
            section,
            Some(i),
            "name",
            format!("invalid name {name:?}: use 1-64 of A-Z a-z 0-9 - _ . @"),
        ))
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Header name of a line: `[server]` → `server`, `[[users]]` → `users`.
fn header(line: &str) -> Option<&str> {
    let l = line.trim();
    let l = l.split('#').next().unwrap_or("").trim();
    l.strip_prefix("[[")
        .and_then(|r| r.strip_suffix("]]"))
        .or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')))
        .map(str::trim)
}

/// Best-effort dotted key for a 1-based line: the enclosing table plus the key on that line.
fn key_at_line(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(this) = lines.get(line.saturating_sub(1)) else {
        return String::new();
    };
    let key = this
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut table = String::new();
    for l in lines.iter().take(line) {
        if let Some(h) = header(l) {
            if l.trim_start().starts_with("[[") {
                let n = counts.entry(h).or_insert(0);
                table = format!("{h}[{n}]");
                *n += 1;
            } else {
                table = h.to_string();
            }
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// Find the 1-based line of `key` inside `[section]` or the `index`-th `[[section]]`.
/// Falls back to the table header line, then `None`.
fn locate(text: &str, section: &str, index: Option<usize>, key: &str) -> Option<usize> {
    let mut seen = 0usize;
    let mut inside = false;
    let mut header_line = None;
    for (n, l) in text.lines().enumerate() {
        if let Some(h) = header(l) {
            if inside {
                break;
            }
            if h == section {
                match index {
                    Some(i) => {
                        if seen == i {
                            inside = true;
                            header_line = Some(n + 1);
                        }
                        seen += 1;
                    }
                    None => {
                        inside = true;
                        header_line = Some(n + 1);
                    }
                }
            }
            continue;
        }
        if inside && !key.is_empty() {
            if let Some((k, _)) = l.split_once('=') {
                if k.trim().trim_matches('"') == key && !l.trim_start().starts_with('#') {
                    return Some(n + 1);
                }
            }
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    // A cheap valid argon2id PHC string (m=8 KiB, t=1, p=1) of the password "pw".
    fn phc() -> String {
        crate::auth::hash_password_with("pw", crate::auth::fast_params()).unwrap_or_default()
    }

    fn good() -> String {
        format!(
            r#"
[server]
listen = "127.0.0.1:2240"
allow = ["127.0.0.0/8", "192.168.1.0/24"]

[[users]]
name = "alice"
password_hash = "{h}"
role = "user"
connections = ["isp1"]

[[users]]
name = "root"
password_hash = "{h}"
role = "admin"

[[modems]]
name = "modem0"
device = "/dev/ttyS0"

[[connections]]
name = "isp1"
modems = ["modem0"]
numbers = ["555-0100"]

[nat]
port_low = 61000
"#,
            h = phc()
        )
    }

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.toml"), t)
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server.listen.port(), 2240);
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.users[1].role, UserRole::Admin);
        assert_eq!(c.modems[0].baud, 115_200);
        assert_eq!(c.connections[0].dial_prefix, "ATDT");
        assert_eq!(c.nat.port_high, 65095);
        assert_eq!(c.server.token_ttl_s, DEFAULT_TOKEN_TTL_S);
    }

    #[test]
    fn registration_wait_defaults_to_60_s_and_is_bounded() {
        let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.connections[0].registration_wait_s, 60);
        let set = |v: &str| {
            good().replace(
                "numbers = [\"555-0100\"]",
                &format!("numbers = [\"*99#\"]\napn = \"internet\"\nregistration_wait_s = {v}"),
            )
        };
        let c = parse(&set("0")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.connections[0].registration_wait_s, 0);
        let c = parse(&set("600")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.connections[0].registration_wait_s, 600);
        let e = parse(&set("601"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("registration_wait_s") && e.contains("at most 600 s"),
            "{e}"
        );
    }

    #[test]
    fn demand_lan_hosts_and_activity_filters() {
        let demand = good().replace(
            "numbers = [\"555-0100\"]",
            "numbers = [\"555-0100\"]\ndemand = true\nidle_timeout_s = 60\nactivity_filter = [\"-p udp -d 0/0 53 -j DENY\"]",
        );
        let t = demand.replace(
            "[nat]",
            "[[lan_hosts]]\nhost = \"192.168.1.7\"\nuser = \"alice\"\n\n[[lan_hosts]]\nhost = \"192.168.1.16/28\"\nuser = \"root\"\n\n[nat]",
        );
        let c = parse(&t).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.connections[0].demand);
        assert_eq!(c.connections[0].demand_hold_s, 30);
        assert_eq!(c.lan_hosts[0].host.to_string(), "192.168.1.7/32");
        assert_eq!(c.lan_hosts[1].host.to_string(), "192.168.1.16/28");

        let e = parse(&t.replace("user = \"root\"", "user = \"bob\""))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("lan_hosts[1].user") && e.contains("unknown user `bob`"),
            "{e}"
        );
        let e = parse(&t.replace("idle_timeout_s = 60", "idle_timeout_s = 0"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("connections[0].idle_timeout_s"), "{e}");
        let e = parse(&t.replace("-j DENY", "-j MASQ"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("connections[0].activity_filter"), "{e}");
        let e = parse(&t.replace("192.168.1.7", "host-seven"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("lan_hosts[0].host"), "{e}");
    }

    #[test]
    fn budgets_parse_and_bad_entries_name_the_key() {
        let t = format!(
            "{}\n[[budgets]]\nconnection = \"isp1\"\nbytes = 500_000_000\nbytes_period = \"day\"\n\
             count = \"in\"\nconnect_time_s = 36_000\nwindows = [\"Mo-Fr 18:00-08:00\", \"Sa-Su 00:00-24:00\"]\n\
             utc_offset = \"+01:00\"\n",
            good()
        );
        let c = parse(&t).unwrap_or_else(|e| panic!("{e}"));
        let b = &c.budgets[0];
        assert_eq!(b.bytes, Some(500_000_000));
        assert_eq!(b.bytes_period, crate::budget::Period::Day);
        assert_eq!(b.count, crate::budget::Count::In);
        assert_eq!(b.time_period, crate::budget::Period::Month);
        assert_eq!((b.warn_before_s, b.warn_at), (300, 0.9));
        let line = t
            .lines()
            .position(|l| l.starts_with("windows"))
            .map_or(0, |p| p + 1);
        for (from, to, key, says) in [
            (
                "18:00-08:00",
                "18:00-8:00",
                "budgets[0].windows",
                "window \"Mo-Fr 18:00-8:00\": times must be HH:MM-HH:MM",
            ),
            (
                "Sa-Su",
                "Sa-Sx",
                "budgets[0].windows",
                "unknown day in \"Sa-Sx\"",
            ),
            (
                "+01:00",
                "CET",
                "budgets[0].utc_offset",
                "\"CET\" is not a UTC offset",
            ),
            (
                "connection = \"isp1\"",
                "connection = \"isp9\"",
                "budgets[0].connection",
                "unknown connection `isp9`",
            ),
            (
                "bytes = 500_000_000",
                "bytes = 0",
                "budgets[0].bytes",
                "must be at least 1",
            ),
            (
                "connect_time_s = 36_000",
                "connect_time_s = 9999999",
                "budgets[0].connect_time_s",
                "too long",
            ),
            (
                "bytes_period = \"day\"",
                "bytes_period = \"week\"",
                "budgets[0].bytes_period",
                "unknown variant",
            ),
        ] {
            let e = parse(&t.replace(from, to))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(key) && e.contains(says), "{from} -> {to}: {e}");
            if key.ends_with("windows") {
                assert!(e.contains(&format!("line {line}")), "{e}");
            }
        }
        let twice = format!("{t}\n[[budgets]]\nconnection = \"isp1\"\n");
        let e = parse(&twice)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("budgets[1].connection")
                && e.contains("a second [[budgets]] entry for `isp1`"),
            "{e}"
        );
    }

    #[test]
    fn empty_config_uses_port_224() {
        let c = parse("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server.listen.port(), DEFAULT_PORT);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let t = good().replace(
            "numbers = [\"555-0100\"]",
            "numbers = [\"555-0100\"]\nnumbrs = 1",
        );
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("test.toml: line "), "{e}");
        assert!(e.contains("connections[0].numbrs"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
        let line = t
            .lines()
            .position(|l| l.starts_with("numbrs"))
            .map(|p| p + 1);
        assert!(e.contains(&format!("line {}", line.unwrap_or(0))), "{e}");
    }

    #[test]
    fn wrong_type_names_key() {
        let t = good().replace("port_low = 61000", "port_low = \"high\"");
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("nat.port_low"), "{e}");
    }

    #[test]
    fn syntax_error_has_line() {
        let e = parse("[server\nlisten = 1")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn unknown_modem_in_connection() {
        let t = good().replace("modems = [\"modem0\"]", "modems = [\"modem9\"]");
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        let line = t
            .lines()
            .position(|l| l.contains("modem9"))
            .map(|p| p + 1)
            .unwrap_or(0);
        assert!(e.contains("connections[0].modems"), "{e}");
        assert!(e.contains("modem9"), "{e}");
        assert!(e.contains(&format!("line {line}")), "{e}");
    }

    #[test]
    fn pap_fallback_defaults_off_and_contradicts_chap_only() {
        let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.connections[0].auth, PppAuth::Any);
        assert!(!c.connections[0].allow_pap_fallback);
        let with = |auth: &str| {
            good().replace(
                "numbers = [\"555-0100\"]",
                &format!("numbers = [\"555-0100\"]\nauth = \"{auth}\"\nallow_pap_fallback = true"),
            )
        };
        for ok in ["any", "pap"] {
            let c = parse(&with(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(c.connections[0].allow_pap_fallback);
        }
        let e = parse(&with("chap"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("connections[0].allow_pap_fallback"), "{e}");
        assert!(e.contains("contradicts auth = \"chap\""), "{e}");
    }

    #[test]
    fn bad_cidr_is_rejected() {
        let t = good().replace("192.168.1.0/24", "192.168.1.0/33");
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("server.allow"), "{e}");
    }

    #[test]
    fn link_section_defaults_and_validation() {
        use crate::linkq::SchedulerKind;
        let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.link.scheduler, SchedulerKind::Fair);
        assert_eq!(c.link.ingress_shaping, None);
        let c = parse(&format!(
            "{}\n[link]\nscheduler = \"fifo\"\ningress_shaping = 0.9\n",
            good()
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.link.scheduler, SchedulerKind::Fifo);
        assert_eq!(c.link.ingress_shaping, Some(0.9));
        for bad in ["0", "1.5", "-0.5", "nan"] {
            let e = parse(&format!("{}\n[link]\ningress_shaping = {bad}\n", good()))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("link.ingress_shaping"), "{bad}: {e}");
        }
        let e = parse(&format!("{}\n[link]\nscheduler = \"wfq\"\n", good()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("unknown variant `wfq`"), "{e}");
    }

    #[test]
    fn bad_phc_is_rejected() {
        let g = good();
        let start = g.find("password_hash = \"").unwrap_or(0);
        let end = g[start..].find('\n').map_or(g.len(), |e| start + e);
        let t = format!(
            "{}password_hash = \"$argon2id$garbage\"{}",
            &g[..start],
            &g[end..]
        );
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("users[0].password_hash"), "{e}");
    }

    #[test]
    fn placeholder_hash_is_rejected_with_how_to_make_one() {
        let g = good();
        let start = g.find("password_hash = \"").unwrap_or(0);
        let end = g[start..].find('\n').map_or(g.len(), |e| start + e);
        let t = format!(
            "{}password_hash = \"{HASH_PLACEHOLDER}\"{}",
            &g[..start],
            &g[end..]
        );
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("users[0].password_hash"), "{e}");
        assert!(e.contains("is a placeholder"), "{e}");
        assert!(e.contains("`mserver hash-password`"), "{e}");
    }

    #[test]
    fn duplicate_user_is_rejected() {
        let t = good().replace("name = \"root\"", "name = \"alice\"");
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("users[1].name"), "{e}");
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn user_with_unknown_connection() {
        let t = good().replace("connections = [\"isp1\"]", "connections = [\"isp7\"]");
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("users[0].connections"), "{e}");
    }

    #[test]
    fn bad_port_range() {
        let t = good().replace("port_low = 61000", "port_low = 65500");
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("nat.port_low"), "{e}");
        let t = good().replace("port_low = 61000", "port_low = 80000");
        assert!(parse(&t).is_err());
    }

    #[test]
    fn durations_are_bounded() {
        let huge = i64::MAX;
        for (from, to, key) in [
            (
                "allow = [",
                format!("token_ttl_s = {huge}\nallow = ["),
                "server.token_ttl_s",
            ),
            (
                "numbers = [\"555-0100\"]",
                format!("numbers = [\"555-0100\"]\nidle_timeout_s = {huge}"),
                "connections[0].idle_timeout_s",
            ),
            (
                "numbers = [\"555-0100\"]",
                "numbers = [\"555-0100\"]\nmax_connect_s = 2592001".to_string(),
                "connections[0].max_connect_s",
            ),
            (
                "port_low = 61000",
                "port_low = 61000\nudp_timeout = 4294967295".to_string(),
                "nat.udp_timeout",
            ),
        ] {
            let t = good().replace(from, &to);
            let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(key) && e.contains("too long"), "{key}: {e}");
        }
        let t = good().replace(
            "numbers = [\"555-0100\"]",
            "numbers = [\"555-0100\"]\nmax_connect_s = 2592000",
        );
        assert!(parse(&t).is_ok());
    }

    #[test]
    fn unknown_enum_values_name_the_allowed_ones() {
        let t = good().replace(
            "port_low = 61000",
            "port_low = 61000\nrfc_profile = \"bogus\"",
        );
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("nat.rfc_profile"), "{e}");
        assert!(e.contains("`linux22`") && e.contains("`rfc`"), "{e}");
        let t = good().replace(
            "device = \"/dev/ttyS0\"",
            "device = \"/dev/ttyS0\"\nflow_control = \"xonxoff\"",
        );
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("modems[0].flow_control"), "{e}");
        assert!(
            e.contains("`none`") && e.contains("`hardware`") && e.contains("`software`"),
            "{e}"
        );
        let t = good().replace(
            "port_low = 61000",
            "port_low = 61000\nrfc_profile = \"rfc\"",
        );
        let c = parse(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.nat.rfc_profile, RfcProfile::Rfc);
    }

    #[test]
    fn software_flow_control_is_refused_not_ignored() {
        let t = good().replace(
            "device = \"/dev/ttyS0\"",
            "device = \"/dev/ttyS0\"\nflow_control = \"software\"",
        );
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("modems[0].flow_control"), "{e}");
        assert!(e.contains("not supported"), "{e}");
        for ok in ["none", "hardware"] {
            let t = good().replace(
                "device = \"/dev/ttyS0\"",
                &format!("device = \"/dev/ttyS0\"\nflow_control = \"{ok}\""),
            );
            assert!(parse(&t).is_ok(), "{ok}");
        }
    }

    #[test]
    fn metrics_listen_is_optional_and_not_the_api_port() {
        let c = parse(&good()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server.metrics_listen, None);
        let t = good().replace(
            "listen = \"127.0.0.1:2240\"",
            "listen = \"127.0.0.1:2240\"\nmetrics_listen = \"127.0.0.1:9224\"",
        );
        let c = parse(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server.metrics_listen.map(|a| a.port()), Some(9224));
        let t = good().replace(
            "listen = \"127.0.0.1:2240\"",
            "listen = \"127.0.0.1:2240\"\nmetrics_listen = \"127.0.0.1:2240\"",
        );
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("server.metrics_listen"), "{e}");
    }

    #[test]
    fn tls_needs_both() {
        let t = good().replace("[server]", "[server]\ntls_cert = \"/c.pem\"");
        let e = parse(&t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("server.tls_cert"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_parsed_or_rejected_never_panics(t in "(?s).{0,400}") {
            let _ = parse(&t);
        }

        #[test]
        fn toml_like_text_never_panics(
            section in "(server|nat|\\[users\\]|\\[modems\\]|\\[connections\\]|x)",
            key in "[a-z_]{1,14}",
            value in "(\"[^\"\\n]{0,20}\"|[0-9]{1,6}|\\[\"[0-9./:]{0,20}\"\\]|true)",
        ) {
            let _ = parse(&format!("[{section}]\n{key} = {value}\n"));
        }
    }

    #[test]
    fn missing_file_names_it() {
        let e = Config::load(Path::new("/nonexistent/x.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("/nonexistent/x.toml"), "{e}");
    }
}
