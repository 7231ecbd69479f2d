//! Hayes result-code line parser (verbose and numeric forms); owns no state and does no I/O.

use std::fmt;

/// One line a modem sent in command state, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultCode {
    /// `OK` / `0`.
    Ok,
    /// `CONNECT [speed][/extras]` / `1`, or a numeric CONNECT variant (`5`, `10`..`19`, …).
    Connect {
        /// DCE speed in bit/s, when the modem reported one.
        speed: Option<u32>,
        /// Text after the speed (e.g. `V42BIS`, `ARQ/LAPM`), without the leading `/` or space.
        extras: Option<String>,
    },
    /// `RING` / `2`: an incoming call (unsolicited; we never answer).
    Ring,
    /// `NO CARRIER` / `3`.
    NoCarrier,
    /// `ERROR` / `4`.
    Error,
    /// `NO DIALTONE` (also `NO DIAL TONE`) / `6`.
    NoDialtone,
    /// `BUSY` / `7`.
    Busy,
    /// `NO ANSWER` / `8`.
    NoAnswer,
    /// `+CME ERROR: <err>`: the mobile equipment refused the command (27.007 9.2); numeric
    /// (`+CMEE=1`) or verbose (`+CMEE=2`). A final result.
    CmeError(ErrorValue),
    /// `+CMS ERROR: <err>`: a message-service error (27.005 3.2.5). A final result.
    CmsError(ErrorValue),
    /// A vendor's final error result (text as sent): `COMMAND NOT SUPPORT` (Huawei, ZTE),
    /// `TOO MANY PARAMETERS` (Huawei), `MODEM ERROR: <n>` (Motorola EZX), `NA` (Samsung),
    /// `ABORTED` (u-blox: command aborted).
    VendorError(String),
    /// Any other line: unsolicited (`+CREG: 1`), information (`ATI` text), a banner.
    Other(String),
}

/// The `<err>` of `+CME ERROR` / `+CMS ERROR`: a number, or the verbose text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorValue {
    /// Numeric form (`+CMEE=1`).
    Code(u16),
    /// Verbose form (`+CMEE=2`), as sent (surrounding quotes removed).
    Text(String),
}

impl ErrorValue {
    fn parse(v: &str) -> ErrorValue {
        let v = v.trim_matches(|c: char| c == '"' || c.is_whitespace());
        if !v.is_empty() && v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = v.parse::<u16>() {
                return ErrorValue::Code(n);
            }
        }
        ErrorValue::Text(v.to_string())
    }
}

impl fmt::Display for ErrorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorValue::Code(n) => write!(f, "{n}"),
            ErrorValue::Text(t) => f.write_str(t),
        }
    }
}

/// Vendor final error results matched as whole lines (upper case).
const VENDOR_ERRORS: &[&str] = &[
    "COMMAND NOT SUPPORT",
    "TOO MANY PARAMETERS",
    "NA",
    "ABORTED",
];

/// Numeric CONNECT codes (Hayes/Rockwell common table; vendor-specific above 19).
const NUMERIC_CONNECT: &[(u8, u32)] = &[
    (5, 1200),
    (10, 2400),
    (11, 4800),
    (12, 9600),
    (13, 7200),
    (14, 12000),
    (15, 14400),
    (16, 19200),
    (17, 38400),
    (18, 57600),
    (19, 115200),
    (20, 230400),
];

/// Numeric code for a CONNECT at `speed`, if the common table has one (else `1`, plain CONNECT).
#[must_use]
pub fn numeric_connect_code(speed: u32) -> u8 {
    NUMERIC_CONNECT
        .iter()
        .find(|(_, s)| *s == speed)
        .map_or(1, |(c, _)| *c)
}

impl ResultCode {
    /// Classifies one line (without its CR/LF). Never panics; unknown text becomes [`ResultCode::Other`].
    #[must_use]
    pub fn parse(line: &str) -> ResultCode {
        let t = line.trim();
        if !t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = t.parse::<u8>() {
                if let Some(code) = Self::from_numeric(n) {
                    return code;
                }
            }
            return ResultCode::Other(t.to_string());
        }
        let upper = t.to_ascii_uppercase();
        match upper.as_str() {
            "OK" => return ResultCode::Ok,
            "RING" => return ResultCode::Ring,
            "NO CARRIER" => return ResultCode::NoCarrier,
            "ERROR" => return ResultCode::Error,
            "NO DIALTONE" | "NO DIAL TONE" => return ResultCode::NoDialtone,
            "BUSY" => return ResultCode::Busy,
            "NO ANSWER" => return ResultCode::NoAnswer,
            _ => {}
        }
        if VENDOR_ERRORS.contains(&upper.as_str()) {
            return ResultCode::VendorError(t.to_string());
        }
        for (prefix, cms) in [("+CME ERROR:", false), ("+CMS ERROR:", true)] {
            if upper.starts_with(prefix) {
                let v = ErrorValue::parse(&t[prefix.len()..]);
                return if cms {
                    ResultCode::CmsError(v)
                } else {
                    ResultCode::CmeError(v)
                };
            }
        }
        if let Some(rest) = upper.strip_prefix("MODEM ERROR:") {
            if !rest.trim().is_empty() && rest.trim().bytes().all(|b| b.is_ascii_digit()) {
                return ResultCode::VendorError(t.to_string());
            }
        }
        if let Some(rest) = upper.strip_prefix("CONNECT") {
            if rest.is_empty() || rest.starts_with([' ', '/']) {
                return Self::parse_connect_rest(&t["CONNECT".len()..]);
            }
        }
        ResultCode::Other(t.to_string())
    }

    fn parse_connect_rest(rest: &str) -> ResultCode {
        let sep = |c: char| c == '/' || c.is_whitespace();
        let rest = rest.trim_start_matches(sep);
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let speed = rest[..digits].parse::<u32>().ok();
        // A digit run too long for a speed stays text.
        let used = if speed.is_some() { digits } else { 0 };
        let extras = rest[used..].trim_start_matches(sep).trim_end();
        ResultCode::Connect {
            speed,
            extras: (!extras.is_empty()).then(|| extras.to_string()),
        }
    }

    /// The result for a numeric code (`ATV0`), if known.
    #[must_use]
    pub fn from_numeric(n: u8) -> Option<ResultCode> {
        Some(match n {
            0 => ResultCode::Ok,
            1 => ResultCode::Connect {
                speed: None,
                extras: None,
            },
            2 => ResultCode::Ring,
            3 => ResultCode::NoCarrier,
            4 => ResultCode::Error,
            6 => ResultCode::NoDialtone,
            7 => ResultCode::Busy,
            8 => ResultCode::NoAnswer,
            _ => {
                let speed = NUMERIC_CONNECT.iter().find(|(c, _)| *c == n)?.1;
                ResultCode::Connect {
                    speed: Some(speed),
                    extras: None,
                }
            }
        })
    }

    /// Numeric form (`ATV0`) of this result, if it has one.
    #[must_use]
    pub fn numeric(&self) -> Option<u8> {
        Some(match self {
            ResultCode::Ok => 0,
            ResultCode::Connect { speed, .. } => speed.map_or(1, numeric_connect_code),
            ResultCode::Ring => 2,
            ResultCode::NoCarrier => 3,
            ResultCode::Error => 4,
            ResultCode::NoDialtone => 6,
            ResultCode::Busy => 7,
            ResultCode::NoAnswer => 8,
            ResultCode::CmeError(_)
            | ResultCode::CmsError(_)
            | ResultCode::VendorError(_)
            | ResultCode::Other(_) => return None,
        })
    }

    /// True for a final result code: the modem is done with the command line (everything but
    /// `RING` and information / unsolicited lines). `CONNECT` ends command state.
    #[must_use]
    pub fn is_final(&self) -> bool {
        !matches!(self, ResultCode::Ring | ResultCode::Other(_))
    }

    /// True for the error finals: `ERROR`, `+CME ERROR`, `+CMS ERROR` and vendor errors.
    #[must_use]
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            ResultCode::Error
                | ResultCode::CmeError(_)
                | ResultCode::CmsError(_)
                | ResultCode::VendorError(_)
        )
    }

    /// The named cause of an error final: `+CME ERROR: 10 (SIM not inserted)`,
    /// `+CME ERROR: SIM not inserted` (verbose text passed through, with its number when the
    /// table knows it), `+CMS ERROR: 310 ((U)SIM not inserted)`, or the line itself.
    #[must_use]
    pub fn cause(&self) -> String {
        match self {
            ResultCode::CmeError(ErrorValue::Code(n)) => match crate::errors::cme_name(*n) {
                Some(name) => format!("+CME ERROR: {n} ({name})"),
                None => format!("+CME ERROR: {n}"),
            },
            ResultCode::CmsError(ErrorValue::Code(n)) => match crate::errors::cms_name(*n) {
                Some(name) => format!("+CMS ERROR: {n} ({name})"),
                None => format!("+CMS ERROR: {n}"),
            },
            ResultCode::CmeError(ErrorValue::Text(t)) => match crate::errors::cme_code(t) {
                Some(n) => format!("+CME ERROR: {t} ({n})"),
                None => format!("+CME ERROR: {t}"),
            },
            ResultCode::CmsError(ErrorValue::Text(t)) => match crate::errors::cms_code(t) {
                Some(n) => format!("+CMS ERROR: {t} ({n})"),
                None => format!("+CMS ERROR: {t}"),
            },
            other => other.to_string(),
        }
    }

    /// The `+CME ERROR` number, numeric or looked up from the verbose text.
    #[must_use]
    pub fn cme_code(&self) -> Option<u16> {
        match self {
            ResultCode::CmeError(ErrorValue::Code(n)) => Some(*n),
            ResultCode::CmeError(ErrorValue::Text(t)) => crate::errors::cme_code(t),
            _ => None,
        }
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultCode::Ok => f.write_str("OK"),
            ResultCode::Connect { speed, extras } => {
                f.write_str("CONNECT")?;
                if let Some(s) = speed {
                    write!(f, " {s}")?;
                }
                if let Some(e) = extras {
                    write!(f, "/{e}")?;
                }
                Ok(())
            }
            ResultCode::Ring => f.write_str("RING"),
            ResultCode::NoCarrier => f.write_str("NO CARRIER"),
            ResultCode::Error => f.write_str("ERROR"),
            ResultCode::NoDialtone => f.write_str("NO DIALTONE"),
            ResultCode::Busy => f.write_str("BUSY"),
            ResultCode::NoAnswer => f.write_str("NO ANSWER"),
            ResultCode::CmeError(v) => write!(f, "+CME ERROR: {v}"),
            ResultCode::CmsError(v) => write!(f, "+CMS ERROR: {v}"),
            ResultCode::VendorError(s) | ResultCode::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_code() -> impl Strategy<Value = ResultCode> {
        let text = "[A-Za-z][A-Za-z ]{0,20}[a-z]".prop_map(ErrorValue::Text);
        let value = prop_oneof![any::<u16>().prop_map(ErrorValue::Code), text];
        prop_oneof![
            Just(ResultCode::Ok),
            Just(ResultCode::Ring),
            Just(ResultCode::NoCarrier),
            Just(ResultCode::Error),
            Just(ResultCode::NoDialtone),
            Just(ResultCode::Busy),
            Just(ResultCode::NoAnswer),
            (
                proptest::option::of(1u32..10_000_000),
                proptest::option::of("[A-Z][A-Z0-9/]{0,8}[A-Z0-9]")
            )
                .prop_map(|(speed, extras)| ResultCode::Connect { speed, extras }),
            value.clone().prop_map(ResultCode::CmeError),
            value.prop_map(ResultCode::CmsError),
            proptest::sample::select(VENDOR_ERRORS)
                .prop_map(|v| ResultCode::VendorError(v.to_string())),
            (0u32..1000).prop_map(|n| ResultCode::VendorError(format!("MODEM ERROR: {n}"))),
            "[a-z][a-z ]{0,10}[a-z]".prop_map(ResultCode::Other),
        ]
    }

    #[test]
    fn error_finals() {
        assert_eq!(
            ResultCode::parse("+CME ERROR: 10"),
            ResultCode::CmeError(ErrorValue::Code(10))
        );
        assert_eq!(
            ResultCode::parse("+cme error: SIM not inserted"),
            ResultCode::CmeError(ErrorValue::Text("SIM not inserted".into()))
        );
        assert_eq!(
            ResultCode::parse("+CMS ERROR: \"500\""),
            ResultCode::CmsError(ErrorValue::Code(500))
        );
        assert_eq!(
            ResultCode::parse("+CME ERROR:"),
            ResultCode::CmeError(ErrorValue::Text(String::new()))
        );
        assert_eq!(
            ResultCode::parse("COMMAND NOT SUPPORT"),
            ResultCode::VendorError("COMMAND NOT SUPPORT".into())
        );
        assert_eq!(
            ResultCode::parse("MODEM ERROR: x"),
            ResultCode::Other("MODEM ERROR: x".into())
        );
        assert_eq!(ResultCode::parse("+CME ERROR: 10").cme_code(), Some(10));
        assert_eq!(
            ResultCode::parse("+CME ERROR: incorrect password").cme_code(),
            Some(16)
        );
        for code in ["OK", "CONNECT 9600", "ERROR", "+CME ERROR: 3", "NA", "BUSY"] {
            assert!(ResultCode::parse(code).is_final(), "{code}");
        }
        for info in ["RING", "+CREG: 1", "Quectel", "+CME ERRORS"] {
            assert!(!ResultCode::parse(info).is_final(), "{info}");
        }
    }

    #[test]
    fn verbose_codes() {
        assert_eq!(ResultCode::parse("OK"), ResultCode::Ok);
        assert_eq!(ResultCode::parse(" ok "), ResultCode::Ok);
        assert_eq!(ResultCode::parse("NO CARRIER"), ResultCode::NoCarrier);
        assert_eq!(ResultCode::parse("NO DIAL TONE"), ResultCode::NoDialtone);
        assert_eq!(ResultCode::parse("NO DIALTONE"), ResultCode::NoDialtone);
        assert_eq!(ResultCode::parse("BUSY"), ResultCode::Busy);
        assert_eq!(ResultCode::parse("NO ANSWER"), ResultCode::NoAnswer);
        assert_eq!(ResultCode::parse("ERROR"), ResultCode::Error);
        assert_eq!(ResultCode::parse("RING"), ResultCode::Ring);
        assert_eq!(
            ResultCode::parse("+CREG: 1"),
            ResultCode::Other("+CREG: 1".into())
        );
        assert_eq!(
            ResultCode::parse("CONNECTED"),
            ResultCode::Other("CONNECTED".into())
        );
    }

    #[test]
    fn connect_forms() {
        assert_eq!(
            ResultCode::parse("CONNECT"),
            ResultCode::Connect {
                speed: None,
                extras: None
            }
        );
        assert_eq!(
            ResultCode::parse("CONNECT 115200"),
            ResultCode::Connect {
                speed: Some(115200),
                extras: None
            }
        );
        assert_eq!(
            ResultCode::parse("CONNECT 28800/ARQ/V34/LAPM/V42BIS"),
            ResultCode::Connect {
                speed: Some(28800),
                extras: Some("ARQ/V34/LAPM/V42BIS".into())
            }
        );
        assert_eq!(
            ResultCode::parse("CONNECT 7200000"),
            ResultCode::Connect {
                speed: Some(7_200_000),
                extras: None
            }
        );
        assert_eq!(
            ResultCode::parse("CONNECT 99999999999999"),
            ResultCode::Connect {
                speed: None,
                extras: Some("99999999999999".into())
            }
        );
    }

    #[test]
    fn numeric_codes() {
        assert_eq!(ResultCode::parse("0"), ResultCode::Ok);
        assert_eq!(ResultCode::parse("7"), ResultCode::Busy);
        assert_eq!(
            ResultCode::parse("19"),
            ResultCode::Connect {
                speed: Some(115200),
                extras: None
            }
        );
        assert_eq!(ResultCode::parse("99"), ResultCode::Other("99".into()));
        assert_eq!(ResultCode::parse("999"), ResultCode::Other("999".into()));
        for code in [0u8, 1, 2, 3, 4, 6, 7, 8, 5, 10, 19] {
            let r = ResultCode::from_numeric(code).map(|r| r.numeric());
            assert_eq!(r, Some(Some(code)));
        }
    }

    proptest! {
        #[test]
        /// Any line, any characters: what it parses to prints to a line that parses back the
        /// same, and a final result is never taken for an unsolicited or intermediate line.
        fn any_line_parses_to_a_code_that_prints_back(s in ".{0,80}") {
            let code = ResultCode::parse(&s);
            prop_assert_eq!(ResultCode::parse(&code.to_string()), code.clone());
            if code.is_error() {
                prop_assert!(code.is_final());
            }
        }

        #[test]
        fn every_result_code_round_trips_through_its_text(code in any_code()) {
            prop_assert_eq!(ResultCode::parse(&code.to_string()), code.clone());
            // Verbose finals are recognised in any case.
            let lower = ResultCode::parse(&code.to_string().to_ascii_lowercase());
            prop_assert_eq!(lower.is_final(), code.is_final());
            prop_assert_eq!(lower.is_error(), code.is_error());
        }

        #[test]
        fn numeric_forms_map_back(code in any_code()) {
            if let (Some(n), false) = (code.numeric(), matches!(code, ResultCode::Connect { .. })) {
                prop_assert_eq!(ResultCode::from_numeric(n), Some(code.clone()));
                prop_assert_eq!(ResultCode::parse(&n.to_string()), code);
            }
        }

        #[test]
        fn parsing_is_idempotent(s in "[ -~]{0,40}") {
            let once = ResultCode::parse(&s);
            prop_assert_eq!(ResultCode::parse(&once.to_string()), once.clone());
            prop_assert!(!once.is_error() || once.is_final());
        }

        #[test]
        fn display_roundtrips(speed in proptest::option::of(1u32..10_000_000), extras in proptest::option::of("[A-Z0-9]{1,8}")) {
            let r = ResultCode::Connect { speed, extras: if speed.is_some() { extras } else { None } };
            prop_assert_eq!(ResultCode::parse(&r.to_string()), r);
        }
    }
}
