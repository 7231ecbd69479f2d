//! Process-wide event counters (dials, auth failures, refusals, RPC latencies) and the
//! registry of snapshot sources read at scrape time, with the Prometheus text encoder
//! (`prometheus-client`, OpenMetrics text). A leaf: anything may record into it; it imports nothing of the
//! server. Served over HTTP by [`crate::metrics`]; the sources are built in [`crate::scrape`].
//! Names are documented in `deploy/METRICS.md`.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Content-Type of the exposition text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the RPC latency histogram buckets.
pub const RPC_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The metric families of one scrape, encoded by `prometheus-client` (OpenMetrics text).
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<FamilyData>,
}

/// Metric types of the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic count (its name ends in `_total`).
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

type Labels = Vec<(String, String)>;

/// One histogram: labels, sum, count, per-bucket counts by upper bound.
type HistogramData = (Labels, f64, u64, Vec<(f64, u64)>);

#[derive(Debug)]
struct FamilyData {
    name: String,
    kind: Kind,
    help: String,
    samples: Vec<(Labels, f64)>,
    histograms: Vec<HistogramData>,
}

/// Escape a label value: backslash, double quote and newline (the encoder writes label
/// values as they are).
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

fn labels(l: &[(&str, &str)]) -> Labels {
    l.iter()
        .map(|(k, v)| ((*k).to_string(), escape(v)))
        .collect()
}

/// Whole non-negative values are written as integers (`1`, not `1.0`).
fn whole(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9.0e15).then_some(v as u64)
}

impl Exposition {
    /// Start family `name` (once per scrape; later calls for the same name are ignored).
    /// A counter's name ends in `_total`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        if self.families.iter().any(|f| f.name == name) {
            return;
        }
        self.families.push(FamilyData {
            name: name.to_string(),
            kind,
            help: help.replace('\n', " "),
            samples: Vec::new(),
            histograms: Vec::new(),
        });
    }

    /// One sample of family `name` (declared first with [`Exposition::family`]; a sample of
    /// an undeclared family is dropped).
    pub fn sample(&mut self, name: &str, l: &[(&str, &str)], value: f64) {
        if let Some(f) = self.families.iter_mut().find(|f| f.name == name) {
            f.samples.push((labels(l), value));
        }
    }

    /// One histogram of family `name`: per-bucket (not cumulative) counts by upper bound;
    /// the `+Inf` bucket is added.
    pub fn histogram(
        &mut self,
        name: &str,
        l: &[(&str, &str)],
        sum: f64,
        count: u64,
        buckets: &[(f64, u64)],
    ) {
        if let Some(f) = self.families.iter_mut().find(|f| f.name == name) {
            let mut b = buckets.to_vec();
            let counted: u64 = buckets.iter().map(|(_, n)| n).sum();
            b.push((f64::MAX, count.saturating_sub(counted)));
            f.histograms.push((labels(l), sum, count, b));
        }
    }

    /// The exposition text (OpenMetrics, ending in `# EOF`).
    pub fn finish(self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Collected(self.families)));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            return String::from("# EOF\n");
        }
        out
    }
}

/// The families of one scrape as a `prometheus-client` collector.
#[derive(Debug)]
struct Collected(Vec<FamilyData>);

impl prometheus_client::collector::Collector for Collected {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::NoLabelSet;
        use prometheus_client::metrics::MetricType;
        for f in &self.0 {
            let (name, ty) = match f.kind {
                // The encoder adds `_total` to a counter's samples.
                Kind::Counter => (
                    f.name.strip_suffix("_total").unwrap_or(&f.name),
                    MetricType::Counter,
                ),
                Kind::Gauge => (f.name.as_str(), MetricType::Gauge),
                Kind::Histogram => (f.name.as_str(), MetricType::Histogram),
            };
            let mut m = encoder.encode_descriptor(name, &f.help, None, ty)?;
            for (l, v) in &f.samples {
                let mut s = m.encode_family(l)?;
                match (f.kind, whole(*v)) {
                    (Kind::Counter, Some(n)) => s.encode_counter::<NoLabelSet, _, u64>(&n, None)?,
                    (Kind::Counter, None) => s.encode_counter::<NoLabelSet, _, f64>(v, None)?,
                    (_, Some(n)) => s.encode_gauge(&n)?,
                    (_, None) => s.encode_gauge(v)?,
                }
            }
            for (l, sum, count, buckets) in &f.histograms {
                m.encode_family(l)?
                    .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
            }
        }
        Ok(())
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
            // Per-bucket counts (the histogram keeps cumulative ones).
            let mut prev = 0;
            let buckets: Vec<(f64, u64)> = h
                .buckets
                .iter()
                .zip(RPC_BUCKETS)
                .map(|(n, le)| {
                    let own = n.saturating_sub(prev);
                    prev = *n;
                    (le, own)
                })
                .collect();
            e.histogram(
                "masqdial_rpc_duration_seconds",
                &[("method", m), ("code", code)],
                h.sum,
                h.count,
                &buckets,
            );
        }
        for (_, src) in lock(&self.sources).iter() {
            src(&mut e);
        }
        e.finish()
    }
}
