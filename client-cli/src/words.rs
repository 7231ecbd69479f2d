//! The client vocabulary: the words mclient and mtui both use for what the server tells
//! them — dial-event sentences, option refusals, link/modem state and failure names,
//! durations and civil dates (from `jiff`). One wording per thing; the web page will use
//! the server-side equivalent. Owns the wording; must not do I/O, lay out screens or tables
//! (`format`, mtui's `ui`) or decide anything from what it names.

use std::time::Duration;

use masqdial_proto::v1 as pb;

/// `1h02m03s`, `4m05s`, `6s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Elapsed time as mtui shows it: `H:MM:SS`, or `Nd HH:MM` past a day.
pub fn human_duration(secs: u64) -> String {
    if secs >= 86_400 {
        format!(
            "{}d {:02}:{:02}",
            secs / 86_400,
            (secs / 3600) % 24,
            (secs / 60) % 60
        )
    } else {
        format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)
    }
}

/// RFC 3339 UTC text of a protobuf timestamp (`2026-11-30T08:58:22Z`, fractional seconds
/// dropped); `None` for an unset (zero) or out-of-range timestamp.
pub fn rfc3339(ts: &prost_types::Timestamp) -> Option<String> {
    if ts.seconds <= 0 {
        return None;
    }
    let t = jiff::Timestamp::from_second(ts.seconds).ok()?;
    Some(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// RFC 3339 UTC text with milliseconds (`2026-11-30T08:58:22.125Z`), for the lines of a dial
/// transcript, which come a few milliseconds apart; `None` as for [`rfc3339`].
pub fn rfc3339_ms(ts: &prost_types::Timestamp) -> Option<String> {
    let secs = rfc3339(ts)?;
    let ms = ts.nanos.clamp(0, 999_999_999) / 1_000_000;
    Some(format!("{}.{ms:03}Z", secs.trim_end_matches('Z')))
}

/// The UTC time of day with milliseconds (`08:58:22.125`), `-` when unset: the `-t` column
/// of a dial transcript.
pub fn clock_ms(ts: Option<&prost_types::Timestamp>) -> String {
    match ts {
        Some(t) if t.seconds > 0 => {
            let s = t.seconds % 86_400;
            let ms = t.nanos.clamp(0, 999_999_999) / 1_000_000;
            format!("{:02}:{:02}:{:02}.{ms:03}", s / 3600, (s / 60) % 60, s % 60)
        }
        _ => "-".to_string(),
    }
}

/// One refused option as a line: `peer Rejected our IPCP Primary-DNS (129): 0.0.0.0`.
pub fn refusal(r: &pb::OptionRefusal) -> String {
    let verdict = if r.reject { "Rejected" } else { "Nak'd" };
    let whose = if r.by_peer {
        format!("peer {verdict} our")
    } else {
        format!("we {verdict} the peer's")
    };
    let name = if r.name.is_empty() {
        format!("option {}", r.option)
    } else {
        format!("{} ({})", r.name, r.option)
    };
    if r.value.is_empty() {
        format!("{whose} {} {name}", r.protocol)
    } else {
        format!(
            "{whose} {} {name}: {}",
            r.protocol,
            crate::safe::line(&r.value)
        )
    }
}

/// An auth protocol name, `none` when empty.
pub fn auth_or_none(a: &str) -> &str {
    if a.is_empty() {
        "none"
    } else {
        a
    }
}

/// Lower-case name of a link state.
pub fn link_state(state: i32) -> &'static str {
    match pb::LinkState::try_from(state) {
        Ok(pb::LinkState::Idle) => "idle",
        Ok(pb::LinkState::Dialing) => "dialing",
        Ok(pb::LinkState::Connected) => "connected",
        Ok(pb::LinkState::Authenticating) => "authenticating",
        Ok(pb::LinkState::Up) => "up",
        Ok(pb::LinkState::HangingUp) => "hanging-up",
        Ok(pb::LinkState::Failed) => "failed",
        _ => "unknown",
    }
}

/// Lower-case name of a modem state.
pub fn modem_state(state: i32) -> &'static str {
    match pb::ModemState::try_from(state) {
        Ok(pb::ModemState::Idle) => "idle",
        Ok(pb::ModemState::Busy) => "busy",
        Ok(pb::ModemState::Absent) => "absent",
        Ok(pb::ModemState::Error) => "error",
        _ => "unknown",
    }
}

/// Short upper-case name of a link state.
pub fn link_state_short(s: i32) -> &'static str {
    match pb::LinkState::try_from(s) {
        Ok(pb::LinkState::Idle) => "IDLE",
        Ok(pb::LinkState::Dialing) => "DIALING",
        Ok(pb::LinkState::Connected) => "CONNECT",
        Ok(pb::LinkState::Authenticating) => "AUTH",
        Ok(pb::LinkState::Up) => "UP",
        Ok(pb::LinkState::HangingUp) => "HANGUP",
        Ok(pb::LinkState::Failed) => "FAILED",
        _ => "?",
    }
}

/// Upper-case name of a failure kind.
pub fn failure_name(k: i32) -> &'static str {
    match pb::FailureKind::try_from(k) {
        Ok(pb::FailureKind::NoModem) => "NO MODEM",
        Ok(pb::FailureKind::ModemError) => "MODEM ERROR",
        Ok(pb::FailureKind::NoDialtone) => "NO DIALTONE",
        Ok(pb::FailureKind::Busy) => "BUSY",
        Ok(pb::FailureKind::NoAnswer) => "NO ANSWER",
        Ok(pb::FailureKind::NoCarrier) => "NO CARRIER",
        Ok(pb::FailureKind::Timeout) => "TIMEOUT",
        Ok(pb::FailureKind::LcpFailed) => "LCP FAILED",
        Ok(pb::FailureKind::AuthFailed) => "AUTH FAILED",
        Ok(pb::FailureKind::IpcpFailed) => "IPCP FAILED",
        Ok(pb::FailureKind::CarrierLost) => "CARRIER LOST",
        Ok(pb::FailureKind::EchoTimeout) => "ECHO TIMEOUT",
        Ok(pb::FailureKind::Cancelled) => "CANCELLED",
        Ok(pb::FailureKind::IdleTimeout) => "IDLE TIMEOUT",
        Ok(pb::FailureKind::MaxConnectTime) => "MAX CONNECT TIME",
        _ => "FAILED",
    }
}

/// One dial event as (human line, outcome: Some(Ok) when up, Some(Err) when failed).
pub fn dial_event(ev: &pb::DialEvent) -> (String, Option<Result<(), String>>) {
    use pb::dial_event::Event;
    match &ev.event {
        Some(Event::ModemInit(m)) => (
            format!("initialising modem {} ({})", m.modem, m.device),
            None,
        ),
        Some(Event::Dialing(d)) => (
            format!(
                "dialing {} (number {} of {}, attempt {}{})",
                crate::safe::line(&d.number),
                d.index,
                d.count,
                d.attempt,
                // Unlimited redials (0), or redials after a loss beyond the plan: no total.
                if d.attempts >= d.attempt {
                    format!(" of {}", d.attempts)
                } else {
                    String::new()
                }
            ),
            None,
        ),
        Some(Event::Connected(c)) => (
            format!("CONNECT {} {}", c.speed_bps, crate::safe::line(&c.extras))
                .trim_end()
                .to_string(),
            None,
        ),
        Some(Event::LcpUp(l)) => {
            let mut t = format!(
                "LCP up (MRU ours {} peer {}, ACCM ours {:#010x} peer {:#010x}, we authenticate with {}, peer with {})",
                l.local_mru,
                l.peer_mru,
                l.local_accm,
                l.peer_accm,
                auth_or_none(&l.auth_protocol),
                auth_or_none(&l.auth_of_peer)
            );
            for r in &l.refused {
                t.push_str(&format!("\n  {}", refusal(r)));
            }
            (t, None)
        }
        Some(Event::AuthOk(a)) => (format!("authenticated ({})", a.protocol), None),
        Some(Event::IpcpUp(i)) => {
            let mut t = format!(
                "IPCP up: local {} peer {} dns {}",
                i.local_address,
                i.peer_address,
                i.dns.join(",")
            );
            for r in &i.refused {
                t.push_str(&format!("\n  {}", refusal(r)));
            }
            (t, None)
        }
        Some(Event::Up(u)) => {
            let l = u.link.clone().unwrap_or_default();
            (
                format!("{} is up ({})", l.connection, l.local_address),
                Some(Ok(())),
            )
        }
        Some(Event::Failed(f)) => (
            format!("failed: {}", crate::safe::line(&f.message)),
            Some(Err(f.message.clone())),
        ),
        Some(Event::Joined(j)) => (
            format!(
                "joined ({}; held by {})",
                link_state(j.state),
                j.holders.join(", ")
            ),
            if j.state == pb::LinkState::Up as i32 {
                Some(Ok(()))
            } else {
                None
            },
        ),
        Some(Event::Info(t)) => (crate::safe::line(t).into_owned(), None),
        Some(Event::Redial(r)) => (
            format!(
                "redialing in {} s (attempt {})",
                r.delay.as_ref().map_or(0, |d| d.seconds),
                r.next_attempt
            ),
            None,
        ),
        None => (String::new(), None),
    }
}
