//! Connection settings: the modem, chat, login, PPP and link policy a connection's config
//! asks for. Owns the translation config → driver settings; must not start tasks, hold state or
//! touch a port.

use std::time::Duration;

use crate::config::{self, ConnectionConfig, ModemConfig, PppAuth};
use crate::link::fsm::LinkPolicy;
use crate::modem::{self, ModemSettings};
use masqdial_at::{CellularDial, ChatConfig, LoginStep, RedialPolicy};
use masqdial_ppp::{AuthProtocol, PppConfig};

/// Modem settings from the config.
pub fn modem_settings(m: &ModemConfig) -> ModemSettings {
    let mut s = ModemSettings::new(m.device.clone());
    s.baud = m.baud;
    s.data_bits = match m.data_bits {
        5 => modem::DataBits::Five,
        6 => modem::DataBits::Six,
        7 => modem::DataBits::Seven,
        _ => modem::DataBits::Eight,
    };
    s.parity = match m.parity {
        config::Parity::None => modem::Parity::None,
        config::Parity::Odd => modem::Parity::Odd,
        config::Parity::Even => modem::Parity::Even,
    };
    s.stop_bits = if m.stop_bits == 2 {
        modem::StopBits::Two
    } else {
        modem::StopBits::One
    };
    s.flow = match m.flow_control {
        config::FlowControl::Hardware => modem::FlowControl::RtsCts,
        // XON/XOFF would need 0x11/0x13 escaped by ACCM; the driver runs without flow
        // control then, which PPP's default ACCM (all control characters escaped) tolerates.
        config::FlowControl::None | config::FlowControl::Software => modem::FlowControl::None,
    };
    s
}

/// The chat plan of a connection on a modem.
pub fn chat_config(m: &ModemConfig, c: &ConnectionConfig) -> ChatConfig {
    let mut plan = ChatConfig {
        init: m.init.clone(),
        apn: c.apn.clone(),
        dial_prefix: c.dial_prefix.clone(),
        numbers: c.numbers.clone(),
        ..ChatConfig::default()
    };
    if c.apn.is_some() || m.cellular.is_some() {
        plan.cellular = Some(CellularDial {
            sim_pin: m.cellular.as_ref().and_then(|x| x.sim_pin.clone()),
            registration_wait: Duration::from_secs(c.registration_wait_s),
            ..CellularDial::default()
        });
    }
    plan.redial = RedialPolicy {
        attempts: c.redial_attempts.max(1),
        next_number_delay: Duration::from_secs(c.redial_delay_s.min(3)),
        round_delay: Duration::from_secs(c.redial_delay_s),
    };
    plan.login = login_steps(c);
    plan
}

/// The login script as chat steps: alternating expect, send (chat(8) style pairs). A send
/// is secret (`********` in every transcript and log) when it starts with `\q` (chat(8)'s
/// "quiet" escape, removed before sending), equals the connection's password, or follows
/// an expect naming a password (`assword`, any case).
fn login_steps(c: &ConnectionConfig) -> Vec<LoginStep> {
    c.login_script
        .chunks(2)
        .map(|pair| {
            let expect = pair.first().cloned().unwrap_or_default();
            let raw = pair.get(1).cloned().unwrap_or_default();
            let (send, quiet) = match raw.strip_prefix("\\q") {
                Some(rest) => (rest.to_string(), true),
                None => (raw, false),
            };
            let secret = quiet
                || (!c.password.is_empty() && send == c.password)
                || expect.to_ascii_lowercase().contains("assword");
            LoginStep {
                expect,
                send,
                secret,
                timeout: Duration::from_secs(30),
            }
        })
        .collect()
}

/// PPP client settings of a connection.
pub fn ppp_config(c: &ConnectionConfig) -> PppConfig {
    let mut p = PppConfig::client(&c.username, &c.password);
    p.accept_auth = match c.auth {
        PppAuth::Pap => vec![AuthProtocol::Pap],
        PppAuth::Chap => vec![AuthProtocol::Chap],
        PppAuth::Any => vec![AuthProtocol::Chap, AuthProtocol::Pap],
    };
    // With `any`, PAP only if the ISP insists after our Nak proposing CHAP-MD5, and only if
    // allowed (pppd `refuse-pap` otherwise).
    p.pap_fallback = c.allow_pap_fallback;
    // IPCP addressing (RFC 1332): see masqdial_ppp::ipcp for the policy.
    if let Some(a) = c.local_address {
        p.local_address = a;
    }
    p.peer_address = c.peer_address;
    p.accept_local = c.accept_local;
    p.accept_remote = c.accept_remote;
    p
}

pub(super) fn policy(c: &ConnectionConfig) -> LinkPolicy {
    let opt = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    LinkPolicy {
        idle_timeout: opt(c.idle_timeout_s),
        max_connect: opt(c.max_connect_s),
        redial_on_loss: c.redial_on_loss,
        redial_delay: Duration::from_secs(c.redial_delay_s.max(1)),
        max_loss_redials: c.redial_attempts.max(1),
    }
}

#[cfg(test)]
mod login_tests {
    use super::*;

    #[test]
    fn login_sends_are_secret_when_marked_equal_to_the_password_or_after_a_password_prompt() {
        let mut c: ConnectionConfig =
            toml::from_str("name = \"isp\"\nnumbers = [\"1\"]\npassword = \"hunter2\"")
                .unwrap_or_else(|e| panic!("{e}"));
        c.login_script = [
            "ogin:",
            "alice", // plain
            "Passcode:",
            "\\q4711", // marked quiet: secret, marker removed
            "PIN?",
            "hunter2", // the connection's password under another prompt
            "PASSWORD:",
            "x", // a password prompt
        ]
        .map(String::from)
        .to_vec();
        let steps = login_steps(&c);
        let got: Vec<(&str, bool)> = steps.iter().map(|s| (s.send.as_str(), s.secret)).collect();
        assert_eq!(
            got,
            vec![
                ("alice", false),
                ("4711", true),
                ("hunter2", true),
                ("x", true)
            ]
        );
    }
}
