//! Table-driven test: replies captured from real modems (vendor manuals, ModemManager's
//! recorded test cases), each with the values it must parse to. The table is in
//! `vectors/data.rs`; every row names its source.

use masqdial_at::cell::{self, RegKind};
use masqdial_at::ResultCode;

mod data {
    include!("vectors/data.rs");
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// What the parsers make of `line`, in the table's grammar.
fn render(line: &str) -> String {
    let t = line.trim();
    if t.starts_with("+CSQ") {
        return match cell::parse_csq(t) {
            Some(s) => format!("csq:{},{}", s.rssi, s.ber),
            None => "csq:none".into(),
        };
    }
    if t.starts_with("+COPS") {
        return match cell::parse_cops(t) {
            Some(o) => format!("cops:{},{},{}", o.mode, opt(o.name), opt(o.act)),
            None => "cops:none".into(),
        };
    }
    if t.starts_with("+CPIN") {
        return match cell::parse_cpin(t) {
            Some(s) => format!("cpin:{}", s.code()),
            None => "cpin:none".into(),
        };
    }
    if let Some(kind) = RegKind::ALL
        .iter()
        .find(|k| t.get(..k.prefix().len()) == Some(k.prefix()))
    {
        return match cell::parse_registration(kind.prefix(), t) {
            Some(r) => format!(
                "reg:stat={} mode={} area={} cell={} act={} rac={}",
                r.status.code(),
                opt(r.mode),
                opt(r.area),
                opt(r.cell),
                opt(r.act),
                opt(r.rac)
            ),
            None => "reg:none".into(),
        };
    }
    let code = ResultCode::parse(t);
    if code.is_final() {
        format!("final:{code}")
    } else {
        "info".into()
    }
}

#[test]
fn every_vector_parses_to_its_values() {
    let mut wrong = Vec::new();
    for (source, line, want) in data::VECTORS {
        let got = render(line);
        if got != *want {
            wrong.push(format!(
                "{source}\n    line {line:?}\n    want {want}\n    got  {got}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} vectors wrong:\n{}",
        wrong.len(),
        data::VECTORS.len(),
        wrong.join("\n")
    );
    assert!(data::VECTORS.len() >= 80, "{}", data::VECTORS.len());
}

#[test]
fn the_three_issue_23_lines_give_their_values() {
    let r = cell::parse_registration("+CREG", "+CREG: 11,\"33FE\",\"a3fb477\"").expect("parses");
    assert_eq!(r.status, cell::RegStatus::Rlos);
    assert_eq!(
        (r.area.as_deref(), r.cell.as_deref()),
        (Some("33FE"), Some("a3fb477"))
    );
    let r = cell::parse_registration("+CEREG", "+CEREG: 2, 0001, 00000100, 7").expect("parses");
    assert_eq!(r.status, cell::RegStatus::Searching);
    assert_eq!(r.mode, None);
    assert_eq!(
        (r.area.as_deref(), r.cell.as_deref(), r.act),
        (Some("0001"), Some("00000100"), Some(7))
    );
    let r = cell::parse_registration("+CEREG", "+CEREG: 2,1, 1F00, 20 ,79D903 ,7").expect("parses");
    assert_eq!(r.status, cell::RegStatus::Home);
    assert_eq!(
        (
            r.area.as_deref(),
            r.rac.as_deref(),
            r.cell.as_deref(),
            r.act
        ),
        (Some("1F00"), Some("20"), Some("79D903"), Some(7))
    );
}

#[test]
fn error_finals_name_their_cause() {
    let cause = |l: &str| ResultCode::parse(l).cause();
    assert_eq!(cause("+CME ERROR: 10"), "+CME ERROR: 10 (SIM not inserted)");
    assert_eq!(
        cause("+CME ERROR: 16"),
        "+CME ERROR: 16 (incorrect password)"
    );
    assert_eq!(
        cause("+CME ERROR: 30"),
        "+CME ERROR: 30 (no network service)"
    );
    assert_eq!(
        cause("+CME ERROR: 148"),
        "+CME ERROR: 148 (unspecified GPRS error)"
    );
    assert_eq!(
        cause("+CME ERROR: 149"),
        "+CME ERROR: 149 (PDP authentication failure)"
    );
    assert_eq!(
        cause("+CME ERROR: 133"),
        "+CME ERROR: 133 (requested service option not subscribed)"
    );
    assert_eq!(cause("+CME ERROR: 999"), "+CME ERROR: 999");
    assert_eq!(
        cause("+CME ERROR: SIM not inserted"),
        "+CME ERROR: SIM not inserted (10)"
    );
    assert_eq!(cause("+CME ERROR: raspberry"), "+CME ERROR: raspberry");
    assert_eq!(
        cause("+CMS ERROR: 310"),
        "+CMS ERROR: 310 ((U)SIM not inserted)"
    );
    assert_eq!(
        cause("+CMS ERROR: 330"),
        "+CMS ERROR: 330 (SMSC address unknown)"
    );
    assert_eq!(cause("COMMAND NOT SUPPORT"), "COMMAND NOT SUPPORT");
    assert!(ResultCode::parse("MODEM ERROR: 5").is_error());
    assert!(ResultCode::parse("4").is_error());
    assert!(!ResultCode::parse("RING").is_final());
}
