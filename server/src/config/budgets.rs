//! `[[budgets]]`: byte quota, connect-time budget and dialling windows per connection.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{check_duration, Violation};

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

/// Semantic checks of `[[budgets]]` against the connection names.
pub(super) fn validate(list: &[BudgetConfig], conns: &HashSet<&str>) -> Result<(), Violation> {
    let mut budgets = HashSet::new();
    for (i, b) in list.iter().enumerate() {
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
    Ok(())
}
