//! `[[modems]]`: serial devices and their optional cellular status polling.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check_duration, check_name, Violation};

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

/// Semantic checks of `[[modems]]`; returns the modem names.
pub(super) fn validate(list: &[ModemConfig]) -> Result<HashSet<&str>, Violation> {
    let mut modems = HashSet::new();
    for (i, m) in list.iter().enumerate() {
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
            check_duration("modems", Some(i), "cellular.poll_s", c.poll_s)?;
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
    Ok(modems)
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

fn default_cell_poll() -> u64 {
    60
}
