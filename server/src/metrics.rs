//! Prometheus text-format metrics (exposition format 0.0.4) on an opt-in plain-HTTP
//! endpoint, `[server] metrics_listen`. Owns the process-wide event counters (dials, auth
//! failures, RPC latencies), the registry of snapshot sources (links, NAT engine) read at
//! scrape time, the text encoder and the tiny HTTP/1.1 responder; it must not touch
//! packets, links or the engine except through a registered source. Names are documented
//! in `deploy/METRICS.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Upper bounds (seconds) of the RPC latency histogram buckets.
pub const RPC_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Longest request head read from a scraper.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a scraper has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once; more wait for a slot.
const MAX_CONCURRENT: usize = 8;

/// One metric family being written: `# HELP`, `# TYPE`, then samples.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    seen: std::collections::BTreeSet<String>,
}

/// Metric types of the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic count.
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Escape a label value: backslash, double quote and newline (exposition format 0.0.4).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A float as the text format writes it (`+Inf`, integers without a fraction).
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    /// Start family `name` (once per scrape; later calls for the same name are ignored).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        if self.seen.insert(name.to_string()) {
            let _ = writeln!(self.text, "# HELP {name} {}", help.replace('\n', " "));
            let _ = writeln!(self.text, "# TYPE {name} {}", kind.name());
        }
    }

    /// One sample line: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    /// The text so far.
    pub fn finish(self) -> String {
        self.text
    }
}

/// A latency histogram with [`RPC_BUCKETS`].
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; RPC_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (b, le) in self.buckets.iter_mut().zip(RPC_BUCKETS) {
            if secs <= le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// A snapshot source read at scrape time (e.g. the link table, the NAT engine).
pub type Source = Box<dyn Fn(&mut Exposition) + Send + Sync>;

/// Process-wide counters and the registered sources.
#[derive(Default)]
pub struct Metrics {
    dial_attempts: Mutex<BTreeMap<String, u64>>,
    dial_failures: Mutex<BTreeMap<(String, String), u64>>,
    auth_failures: Mutex<BTreeMap<String, u64>>,
    refused: Mutex<BTreeMap<String, u64>>,
    rpc: Mutex<BTreeMap<(String, String), Histogram>>,
    sources: Mutex<Vec<(String, Source)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static GLOBAL: OnceLock<Metrics> = OnceLock::new();
    GLOBAL.get_or_init(Metrics::default)
}

impl Metrics {
    /// A dial attempt (one number tried) on `connection` started.
    pub fn dial_attempt(&self, connection: &str) {
        *lock(&self.dial_attempts)
            .entry(connection.to_string())
            .or_default() += 1;
    }

    /// A dial attempt on `connection` failed; `kind` is a short stable word
    /// (`busy`, `no_carrier`, `no_dialtone`, `no_answer`, `modem`, `auth`, `lcp`, `ipcp`,
    /// `timeout`, `cancelled`, ...).
    pub fn dial_failure(&self, connection: &str, kind: &str) {
        *lock(&self.dial_failures)
            .entry((connection.to_string(), kind.to_string()))
            .or_default() += 1;
    }

    /// A login failed; `reason` e.g. `bad_password`, `unknown_user`, `throttled`.
    pub fn auth_failure(&self, reason: &str) {
        *lock(&self.auth_failures)
            .entry(reason.to_string())
            .or_default() += 1;
    }

    /// A request or connection was refused before any work; `reason` e.g. `allow_list`.
    pub fn refused(&self, reason: &str) {
        *lock(&self.refused).entry(reason.to_string()).or_default() += 1;
    }

    /// An RPC `method` (e.g. `Links/Dial`) finished with gRPC status `code` after `took`.
    pub fn rpc(&self, method: &str, code: &str, took: Duration) {
        lock(&self.rpc)
            .entry((method.to_string(), code.to_string()))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Register (or replace) the snapshot source `name`.
    pub fn register(&self, name: &str, source: Source) {
        let mut s = lock(&self.sources);
        s.retain(|(n, _)| n != name);
        s.push((name.to_string(), source));
    }

    /// Remove the snapshot source `name`.
    pub fn unregister(&self, name: &str) {
        lock(&self.sources).retain(|(n, _)| n != name);
    }

    /// The whole exposition text.
    pub fn render(&self) -> String {
        let mut e = Exposition::default();
        e.family(
            "masqdial_build_info",
            Kind::Gauge,
            "mserver version (always 1).",
        );
        e.sample(
            "masqdial_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        e.family(
            "masqdial_dial_attempts_total",
            Kind::Counter,
            "Dial attempts (numbers tried) per connection.",
        );
        for (c, n) in lock(&self.dial_attempts).iter() {
            e.sample(
                "masqdial_dial_attempts_total",
                &[("connection", c)],
                *n as f64,
            );
        }
        e.family(
            "masqdial_dial_failures_total",
            Kind::Counter,
            "Failed dial attempts per connection and kind of failure.",
        );
        for ((c, k), n) in lock(&self.dial_failures).iter() {
            e.sample(
                "masqdial_dial_failures_total",
                &[("connection", c), ("kind", k)],
                *n as f64,
            );
        }
        e.family(
            "masqdial_auth_failures_total",
            Kind::Counter,
            "Failed logins and token checks per reason.",
        );
        for (r, n) in lock(&self.auth_failures).iter() {
            e.sample("masqdial_auth_failures_total", &[("reason", r)], *n as f64);
        }
        e.family(
            "masqdial_refused_total",
            Kind::Counter,
            "Requests and connections refused before any work, per reason.",
        );
        for (r, n) in lock(&self.refused).iter() {
            e.sample("masqdial_refused_total", &[("reason", r)], *n as f64);
        }
        e.family(
            "masqdial_rpc_duration_seconds",
            Kind::Histogram,
            "gRPC call latency per method and status code (streams: until the first answer).",
        );
        for ((m, code), h) in lock(&self.rpc).iter() {
            for (b, le) in h.buckets.iter().zip(RPC_BUCKETS) {
                let le = number(le);
                e.sample(
                    "masqdial_rpc_duration_seconds_bucket",
                    &[("method", m), ("code", code), ("le", &le)],
                    *b as f64,
                );
            }
            e.sample(
                "masqdial_rpc_duration_seconds_bucket",
                &[("method", m), ("code", code), ("le", "+Inf")],
                h.count as f64,
            );
            e.sample(
                "masqdial_rpc_duration_seconds_sum",
                &[("method", m), ("code", code)],
                h.sum,
            );
            e.sample(
                "masqdial_rpc_duration_seconds_count",
                &[("method", m), ("code", code)],
                h.count as f64,
            );
        }
        for (_, src) in lock(&self.sources).iter() {
            src(&mut e);
        }
        e.finish()
    }
}

/// Source for the NAT engine: masquerade entries and free ports per protocol, drops per
/// reason, chain rule and policy counters.
pub fn nat_source(nat: crate::dataplane::NatHandle) -> Source {
    Box::new(move |e| {
        let now = nat.now();
        let engine = nat.lock();
        let fp = engine.free_ports();
        let mut entries = [0u64; 3];
        for s in engine.masq_snapshot(now) {
            match s.proto {
                6 => entries[0] += 1,
                17 => entries[1] += 1,
                1 => entries[2] += 1,
                _ => {}
            }
        }
        let protos = [("tcp", fp.tcp), ("udp", fp.udp), ("icmp", fp.icmp)];
        e.family(
            "masqdial_masq_entries",
            Kind::Gauge,
            "Live masquerade entries per protocol.",
        );
        for ((p, _), n) in protos.iter().zip(entries) {
            e.sample("masqdial_masq_entries", &[("protocol", p)], n as f64);
        }
        e.family(
            "masqdial_masq_free_ports",
            Kind::Gauge,
            "Free masquerade ports per protocol.",
        );
        for (p, (free, _)) in &protos {
            e.sample(
                "masqdial_masq_free_ports",
                &[("protocol", p)],
                f64::from(*free),
            );
        }
        e.family(
            "masqdial_masq_ports",
            Kind::Gauge,
            "Masquerade ports in the pool per protocol.",
        );
        for (p, (_, total)) in &protos {
            e.sample("masqdial_masq_ports", &[("protocol", p)], f64::from(*total));
        }
        e.family(
            "masqdial_drops_total",
            Kind::Counter,
            "Packets dropped by the NAT engine per reason.",
        );
        for r in nat_core::engine::DropReason::ALL {
            e.sample(
                "masqdial_drops_total",
                &[("reason", r.name())],
                engine.drops(r) as f64,
            );
        }
        e.family(
            "masqdial_chain_packets_total",
            Kind::Counter,
            "Packets matched per chain and rule (rule=policy: the chain's policy).",
        );
        e.family(
            "masqdial_chain_bytes_total",
            Kind::Counter,
            "Bytes matched per chain and rule (rule=policy: the chain's policy).",
        );
        let fw = engine.firewall();
        for chain in fw.chain_names() {
            let n = fw.rules(&chain).map(|r| r.len()).unwrap_or(0);
            let mut rows: Vec<(String, nat_core::chains::Counter)> = (1..=n)
                .filter_map(|i| fw.rule_counters(&chain, i).ok().map(|c| (i.to_string(), c)))
                .collect();
            if let Ok(c) = fw.policy_counters(&chain) {
                if fw.policy(&chain).ok().flatten().is_some() {
                    rows.push(("policy".into(), c));
                }
            }
            for (rule, c) in rows {
                let labels = [("chain", chain.as_str()), ("rule", rule.as_str())];
                e.sample("masqdial_chain_packets_total", &labels, c.packets as f64);
                e.sample("masqdial_chain_bytes_total", &labels, c.bytes as f64);
            }
        }
    })
}

/// Lower-case name of a link state, as in metrics labels and the systemd status line.
pub fn state_name(s: crate::link::LinkState) -> &'static str {
    use crate::link::LinkState as S;
    match s {
        S::Idle => "idle",
        S::Dialing => "dialing",
        S::Connected => "connected",
        S::Authenticating => "authenticating",
        S::Up => "up",
        S::HangingUp => "hanging_up",
        S::Failed => "failed",
    }
}

/// Source for the links: state, up flag, bytes and packets per connection.
pub fn link_source(links: crate::link::manager::LinkManager) -> Source {
    Box::new(move |e| {
        e.family(
            "masqdial_link_up",
            Kind::Gauge,
            "1 while the connection's link is up (IPCP open).",
        );
        e.family(
            "masqdial_link_state",
            Kind::Gauge,
            "1 for the connection's current link state.",
        );
        for name in links.names() {
            let state = links.state(name).map_or("idle", state_name);
            let up = if state == "up" { 1.0 } else { 0.0 };
            e.sample("masqdial_link_up", &[("connection", name)], up);
            e.sample(
                "masqdial_link_state",
                &[("connection", name), ("state", state)],
                1.0,
            );
        }
        e.family(
            "masqdial_link_bytes_total",
            Kind::Counter,
            "IP bytes over the link since it came up, per direction.",
        );
        e.family(
            "masqdial_link_packets_total",
            Kind::Counter,
            "IP packets over the link since it came up, per direction.",
        );
        for s in links.statuses() {
            let c = s.connection.as_str();
            for (dir, bytes, packets) in [
                ("rx", s.bytes_in, s.packets_in),
                ("tx", s.bytes_out, s.packets_out),
            ] {
                let labels = [("connection", c), ("direction", dir)];
                e.sample("masqdial_link_bytes_total", &labels, bytes as f64);
                e.sample("masqdial_link_packets_total", &labels, packets as f64);
            }
        }
    })
}

/// One line for `systemctl status`: every connection's state (and address when up).
pub fn link_summary(links: &crate::link::manager::LinkManager) -> String {
    let parts: Vec<String> = links
        .statuses()
        .iter()
        .map(|s| {
            let state = state_name(s.state);
            match s.local {
                Some(a) => format!("{} {state} {a}", s.connection),
                None => format!("{} {state}", s.connection),
            }
        })
        .collect();
    if parts.is_empty() {
        "no connections configured".into()
    } else {
        parts.join(", ")
    }
}

/// Why a scrape request got no metrics.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics,
    NotFound,
    BadMethod,
    Bad,
}

/// Parse the request head's first line.
fn parse_request(head: &[u8]) -> Request {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Bad;
    }
    if method != "GET" && method != "HEAD" {
        return Request::BadMethod;
    }
    let path = target.split('?').next().unwrap_or_default();
    if path == "/metrics" || path == "/" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

async fn respond(mut s: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > MAX_REQUEST {
                break;
            }
        }
        std::io::Result::Ok(())
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let head_only = head.starts_with(b"HEAD ");
    let (status, ctype, body) = match parse_request(&head) {
        Request::Metrics => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        Request::NotFound => ("404 Not Found", "text/plain", "only /metrics here\n".into()),
        Request::BadMethod => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
        Request::Bad => ("400 Bad Request", "text/plain", "bad request\n".into()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    tokio::time::timeout(REQUEST_TIMEOUT, s.write_all(&out))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let _ = s.shutdown().await;
    Ok(())
}

/// Serve `GET /metrics` on `listener` until `stop`: one request per connection, peers for
/// which `allowed` is false closed at once (and counted as refused `metrics_allow_list`).
pub async fn serve(
    listener: TcpListener,
    allowed: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    stop: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (sock, peer): (TcpStream, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("metrics accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = match peer.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if !allowed(ip) {
            global().refused("metrics_allow_list");
            drop(sock);
            continue;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        tokio::spawn(async move {
            if let Err(e) = respond(sock, global()).await {
                tracing::debug!(%peer, "metrics scrape: {e}");
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_escapes_and_declares_each_family_once() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "Things.");
        e.sample("x_total", &[("name", "a\"b\\c\nd")], 3.0);
        e.family("x_total", Kind::Counter, "Things.");
        e.sample("x_total", &[], 0.5);
        assert_eq!(
            e.finish(),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{name=\"a\\\"b\\\\c\\nd\"} 3\nx_total 0.5\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.rpc("Auth/Login", "OK", Duration::from_millis(3));
        m.rpc("Auth/Login", "OK", Duration::from_millis(300));
        m.rpc("Auth/Login", "OK", Duration::from_secs(9));
        let t = m.render();
        let line = |le: &str| {
            format!("masqdial_rpc_duration_seconds_bucket{{method=\"Auth/Login\",code=\"OK\",le=\"{le}\"}}")
        };
        assert!(t.contains(&format!("{} 0\n", line("0.001"))), "{t}");
        assert!(t.contains(&format!("{} 1\n", line("0.005"))), "{t}");
        assert!(t.contains(&format!("{} 1\n", line("0.25"))), "{t}");
        assert!(t.contains(&format!("{} 2\n", line("0.5"))), "{t}");
        assert!(t.contains(&format!("{} 2\n", line("5"))), "{t}");
        assert!(t.contains(&format!("{} 3\n", line("+Inf"))), "{t}");
        assert!(t.contains(
            "masqdial_rpc_duration_seconds_count{method=\"Auth/Login\",code=\"OK\"} 3\n"
        ));
    }

    #[test]
    fn requests_are_parsed_strictly() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(
            parse_request(b"GET /other HTTP/1.1\r\n\r\n"),
            Request::NotFound
        );
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Request::BadMethod
        );
        assert_eq!(parse_request(b"GET /metrics\r\n\r\n"), Request::Bad);
        assert_eq!(parse_request(b"\xff\xfe"), Request::Bad);
    }

    #[tokio::test]
    async fn endpoint_serves_allowed_peers_and_closes_on_others() {
        global().dial_attempt("endpoint-test");
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        let allow_all: Arc<dyn Fn(IpAddr) -> bool + Send + Sync> = Arc::new(|_| true);
        let task = tokio::spawn(serve(l, allow_all, stop.clone()));
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut got = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut got))
            .await
            .unwrap_or_else(|_| panic!("timeout"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(got.contains("masqdial_dial_attempts_total{connection=\"endpoint-test\"} 1\n"));
        stop.cancel();
        let _ = task.await;

        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        let deny_all: Arc<dyn Fn(IpAddr) -> bool + Send + Sync> = Arc::new(|_| false);
        let task = tokio::spawn(serve(l, deny_all, stop.clone()));
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        stop.cancel();
        let _ = task.await;
    }
}

/// The `kind` label of a dial that ended in `k`; `None` for ends that are not dial failures
/// (carrier lost, echo timeout, idle or connect-time hang-ups of a link that was up).
pub fn dial_failure_kind(k: crate::link::FailureKind) -> Option<&'static str> {
    use crate::link::FailureKind as F;
    Some(match k {
        F::NoModem | F::ModemError => "modem",
        F::NoDialtone => "no_dialtone",
        F::Busy => "busy",
        F::NoAnswer => "no_answer",
        F::NoCarrier => "no_carrier",
        F::Timeout => "timeout",
        F::LcpFailed => "lcp",
        F::AuthFailed => "auth",
        F::IpcpFailed => "ipcp",
        F::Cancelled => "cancelled",
        F::CarrierLost | F::EchoTimeout | F::IdleTimeout | F::MaxConnectTime => return None,
    })
}

/// The `kind` label of a chat attempt that failed and will be redialled.
pub fn chat_failure_kind(k: masqdial_at::ChatFailure) -> &'static str {
    use masqdial_at::ChatFailure as C;
    match k {
        C::NoDialtone => "no_dialtone",
        C::Busy => "busy",
        C::NoAnswer => "no_answer",
        C::NoCarrier => "no_carrier",
        C::Error => "modem",
        C::Timeout => "timeout",
    }
}

/// The `method` label of a gRPC path: `/masqdial.v1.Auth/Login` → `Auth/Login`. Paths the
/// server does not serve (status UNIMPLEMENTED) are all `unknown`, so a client cannot grow
/// the label set.
pub fn rpc_method_label(path: &str, code: tonic::Code) -> String {
    if code == tonic::Code::Unimplemented {
        return "unknown".into();
    }
    let p = path.trim_start_matches('/');
    let short = match p.split_once('/') {
        Some((svc, m)) => format!("{}/{m}", svc.rsplit('.').next().unwrap_or(svc)),
        None => p.to_string(),
    };
    short.chars().take(64).collect()
}

/// The `reason` of `masqdial_auth_failures_total` for a finished call, if it is one:
/// `bad_credentials` (Login refused: unknown user or wrong password, told apart nowhere),
/// `throttled` (Login refused by the throttle or the password-check bound) and `bad_token`
/// (any other call with a missing, unknown or expired token).
pub fn auth_failure_reason(method: &str, code: tonic::Code) -> Option<&'static str> {
    let login = method == "Auth/Login";
    match code {
        tonic::Code::Unauthenticated if login => Some("bad_credentials"),
        tonic::Code::ResourceExhausted if login => Some("throttled"),
        tonic::Code::Unauthenticated => Some("bad_token"),
        _ => None,
    }
}

/// Tower layer timing every gRPC call (to its response headers: the whole call for unary
/// rpcs, the start for streams) into `masqdial_rpc_duration_seconds`, and counting
/// authentication failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

/// The service made by [`RpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let start = std::time::Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            if let Ok(resp) = &r {
                // A failed call is "trailers-only": its status is in the headers. A call
                // whose status only comes in the trailers succeeded (or failed mid-stream).
                let code = resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from_i32);
                let method = rpc_method_label(&path, code);
                let m = global();
                m.rpc(&method, &format!("{code:?}"), start.elapsed());
                if let Some(reason) = auth_failure_reason(&method, code) {
                    m.auth_failure(reason);
                }
            }
            r
        })
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn method_labels_are_short_and_bounded() {
        assert_eq!(
            rpc_method_label("/masqdial.v1.Auth/Login", tonic::Code::Ok),
            "Auth/Login"
        );
        assert_eq!(
            rpc_method_label("/grpc.health.v1.Health/Check", tonic::Code::Ok),
            "Health/Check"
        );
        assert_eq!(
            rpc_method_label("/masqdial.v1.Auth/random123", tonic::Code::Unimplemented),
            "unknown"
        );
        let long = format!("/a.B/{}", "x".repeat(500));
        assert_eq!(rpc_method_label(&long, tonic::Code::Ok).chars().count(), 64);
    }

    #[test]
    fn auth_failure_reasons() {
        use tonic::Code;
        assert_eq!(
            auth_failure_reason("Auth/Login", Code::Unauthenticated),
            Some("bad_credentials")
        );
        assert_eq!(
            auth_failure_reason("Auth/Login", Code::ResourceExhausted),
            Some("throttled")
        );
        assert_eq!(
            auth_failure_reason("Dialer/Dial", Code::Unauthenticated),
            Some("bad_token")
        );
        assert_eq!(auth_failure_reason("Auth/Login", Code::Ok), None);
        assert_eq!(
            auth_failure_reason("Dialer/Dial", Code::PermissionDenied),
            None
        );
    }

    #[test]
    fn dial_kinds() {
        use crate::link::FailureKind as F;
        assert_eq!(dial_failure_kind(F::Busy), Some("busy"));
        assert_eq!(dial_failure_kind(F::NoModem), Some("modem"));
        assert_eq!(dial_failure_kind(F::CarrierLost), None);
        assert_eq!(dial_failure_kind(F::IdleTimeout), None);
    }
}
