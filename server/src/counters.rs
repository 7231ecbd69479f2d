//! Process-wide event counters (dials, auth failures, refusals, RPC latencies) and the
//! registry of snapshot sources read at scrape time, with the Prometheus text encoder
//! (exposition format 0.0.4). A leaf: anything may record into it; it imports nothing of the
//! server. Served over HTTP by [`crate::metrics`]; the sources are built in [`crate::scrape`].
//! Names are documented in `deploy/METRICS.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Content-Type of the exposition text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the RPC latency histogram buckets.
pub const RPC_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

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
        // A copy: every request records into this map, so it is never held while encoding.
        let rpc = lock(&self.rpc).clone();
        for ((m, code), h) in rpc.iter() {
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
