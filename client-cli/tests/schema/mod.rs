//! The `--json` schema written in `client-cli/JSON.md`, and a checker that compares a
//! command's output with it key for key (shared by the schema tests).

#![allow(dead_code)]

use serde_json::Value;

/// The schema block of JSON.md.
pub fn schema() -> Value {
    let md = include_str!("../../JSON.md");
    let after = md
        .split("<!-- schema -->")
        .nth(1)
        .unwrap_or_else(|| panic!("JSON.md has no schema marker"));
    let body = after
        .split("```json")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("JSON.md has no schema block"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON.md schema: {e}"))
}

pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && s.chars().enumerate().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            19 => c == 'Z',
            _ => c.is_ascii_digit(),
        })
}

/// `2026-11-30T08:58:22.125Z`: RFC 3339 UTC with milliseconds.
pub fn is_rfc3339_ms(s: &str) -> bool {
    s.len() == 24
        && s.get(19..20) == Some(".")
        && s.get(20..23)
            .is_some_and(|d| d.bytes().all(|c| c.is_ascii_digit()))
        && s.get(..19)
            .is_some_and(|head| is_rfc3339(&format!("{head}Z")))
        && s.ends_with('Z')
}

/// Check `v` against `shape`; errors name the path.
pub fn check(v: &Value, shape: &Value, types: &Value, path: &str, errs: &mut Vec<String>) {
    match shape {
        Value::String(t) => {
            if let Some(name) = t.strip_prefix('$') {
                let (name, nullable) = match name.strip_suffix('?') {
                    Some(n) => (n, true),
                    None => (name, false),
                };
                if nullable && v.is_null() {
                    return;
                }
                match types.get(name) {
                    Some(s) => check(v, s, types, path, errs),
                    None => errs.push(format!("{path}: unknown type ${name}")),
                }
                return;
            }
            let (t, nullable) = match t.strip_suffix('?') {
                Some(t) => (t, true),
                None => (t.as_str(), false),
            };
            if v.is_null() {
                if !nullable {
                    errs.push(format!("{path}: null where {t} is required"));
                }
                return;
            }
            let ok = match t {
                "string" => v.as_str().is_some_and(|s| !s.is_empty()),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                "rfc3339" => v.as_str().is_some_and(is_rfc3339),
                "rfc3339ms" => v.as_str().is_some_and(is_rfc3339_ms),
                "any" => true,
                "map<integer>" => v
                    .as_object()
                    .is_some_and(|m| m.values().all(|x| x.is_u64() || x.is_i64())),
                other => {
                    errs.push(format!("{path}: unknown schema type {other}"));
                    true
                }
            };
            if !ok {
                errs.push(format!("{path}: {v} is not a {t}"));
            }
        }
        Value::Array(inner) => {
            let Some(items) = v.as_array() else {
                errs.push(format!("{path}: {v} is not a list"));
                return;
            };
            if let Some(s) = inner.first() {
                for (i, x) in items.iter().enumerate() {
                    check(x, s, types, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(keys) => {
            let Some(obj) = v.as_object() else {
                errs.push(format!("{path}: {v} is not an object"));
                return;
            };
            let open = keys.contains_key("*");
            for (k, s) in keys.iter().filter(|(k, _)| *k != "*") {
                match obj.get(k) {
                    Some(x) => check(x, s, types, &format!("{path}.{k}"), errs),
                    None => errs.push(format!("{path}: missing key {k}")),
                }
            }
            if !open {
                for k in obj.keys().filter(|k| !keys.contains_key(*k)) {
                    errs.push(format!("{path}: key {k} is not in the schema"));
                }
            }
        }
        other => errs.push(format!("{path}: bad schema {other}")),
    }
}

/// Check a command's stdout (one document, or JSON lines) against `commands[name]`.
pub fn check_output(name: &str, stdout: &str, schema: &Value) -> Vec<String> {
    let types = &schema["types"];
    let shape = &schema["commands"][name];
    assert!(!shape.is_null(), "JSON.md has no schema for `{name}`");
    let mut errs = Vec::new();
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    match shape.get("lines") {
        Some(events) => {
            assert!(!lines.is_empty(), "{name}: no output");
            for (i, l) in lines.iter().enumerate() {
                let v: Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("{name} line {i}: {e}: {l}"));
                let ev = v["event"].as_str().unwrap_or("");
                match events.get(ev) {
                    Some(s) => check(&v, s, types, &format!("{name}:{ev}"), &mut errs),
                    None => errs.push(format!("{name}: event {ev:?} is not in the schema")),
                }
            }
        }
        None => {
            assert_eq!(
                lines.len(),
                1,
                "{name}: one JSON document expected: {stdout}"
            );
            let v: Value =
                serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{name}: {e}: {stdout}"));
            check(&v, shape, types, name, &mut errs);
        }
    }
    errs
}
