//! The renderer's tests: fixtures (a realistic dashboard, a test terminal, masq and chain
//! rows, key and mouse events) here, the tests by theme in the submodules.
//!
//! Tests only: must not be used by production code.

use super::*;
use crate::app::DETAILS_REFRESH;
use crate::app::{App, ConnState, Level, Mode, Panel};
use crate::event::{Command, Event, ServerUpdate};
use crate::table::{proto_name, SortKey};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use masqdial_cli::format;
use masqdial_proto::v1::{Chain, FreePortsResponse, LinkState, Rule};
use masqdial_proto::v1::{Holder, LinkStatus, MasqEntry, Protocol, Role, TrafficSample};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod interaction;
mod panels;
mod screens;

pub(crate) fn buffer_text(b: &Buffer) -> Vec<String> {
    let w = usize::from(b.area.width);
    b.content
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect()
}

pub(crate) fn draw(app: &App, w: u16, h: u16) -> (Vec<String>, Buffer) {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend cannot fail");
    term.draw(|f| render(f, app))
        .expect("test backend cannot fail");
    let buf = term.backend().buffer().clone();
    (buffer_text(&buf), buf)
}

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

// A test fixture: one argument per column reads best in the tables below.
#[allow(clippy::too_many_arguments)]
fn masq(
    id: u64,
    proto: Protocol,
    lan: &str,
    lport: u32,
    remote: &str,
    rport: u32,
    state: &str,
    expire: u64,
) -> MasqEntry {
    MasqEntry {
        id,
        protocol: proto as i32,
        lan_address: lan.into(),
        lan_port: lport,
        masq_address: "10.64.3.17".into(),
        masq_port: 61000 + id as u32,
        remote_address: remote.into(),
        remote_port: rport,
        expire_centis: expire,
        state: state.into(),
        bytes_in: 48_213 * id,
        bytes_out: 3_101 * id,
        packets_in: 40 * id,
        packets_out: 31 * id,
        ..Default::default()
    }
}

fn chains() -> Vec<Chain> {
    vec![
        Chain {
            name: "input".into(),
            policy: "ACCEPT".into(),
            builtin: true,
            policy_packets: 18_230,
            policy_bytes: 2_310_442,
            ..Default::default()
        },
        Chain {
            name: "forward".into(),
            policy: "DENY".into(),
            builtin: true,
            policy_packets: 3,
            policy_bytes: 180,
            rules: vec![Rule {
                number: 1,
                target: "MASQ".into(),
                protocol: "all".into(),
                source: "192.168.1.0/24".into(),
                destination: "0.0.0.0/0".into(),
                options: "------".into(),
                packets: 120_455,
                bytes: 88_120_330,
                ..Default::default()
            }],
            ..Default::default()
        },
    ]
}

/// A realistic dashboard: admin, one link up with traffic, one idle, a few sessions.
pub(crate) fn realistic(color: bool) -> App {
    let t0 = Instant::now();
    let mut app = App::new("http://192.168.1.1:224", t0, wall(), color, GEOMETRY);
    app.handle_event(Event::Connected {
        user: "alice".into(),
        role: Role::Admin,
        allowed: vec!["isp1".into(), "cell".into()],
    });
    let mut up = LinkStatus {
        connection: "isp1".into(),
        state: LinkState::Up as i32,
        modem: "modem0".into(),
        speed_bps: 33_600,
        local_address: "10.64.3.17".into(),
        peer_address: "10.64.0.1".into(),
        connected_since: Some(prost_types::Timestamp {
            seconds: 1_700_000_000 - 3_723,
            nanos: 0,
        }),
        bytes_in: 1_843_200,
        bytes_out: 212_992,
        holders: vec![Holder {
            user: "alice".into(),
            host: "192.168.1.10".into(),
            since: None,
        }],
        ..Default::default()
    };
    app.handle_event(Event::Server(ServerUpdate::Link(LinkStatus {
        connection: "cell".into(),
        state: LinkState::Idle as i32,
        ..Default::default()
    })));
    up.state = LinkState::Dialing as i32;
    app.handle_event(Event::Server(ServerUpdate::Link(up.clone())));
    use masqdial_proto::v1::dial_event::Event as D;
    let steps = [
        D::ModemInit(masqdial_proto::v1::ModemInit {
            modem: "modem0".into(),
            device: "/dev/ttyS0".into(),
        }),
        D::Dialing(masqdial_proto::v1::Dialing {
            number: "555-0100".into(),
            index: 1,
            count: 2,
            attempt: 1,
            attempts: 3,
        }),
        D::Connected(masqdial_proto::v1::Connected {
            speed_bps: 33_600,
            extras: "/ARQ/V42BIS".into(),
        }),
        D::LcpUp(masqdial_proto::v1::LcpUp {
            peer_mru: 1500,
            auth_protocol: "CHAP-MD5".into(),
            ..Default::default()
        }),
        D::AuthOk(masqdial_proto::v1::AuthOk {
            protocol: "CHAP-MD5".into(),
        }),
        D::IpcpUp(masqdial_proto::v1::IpcpUp {
            local_address: "10.64.3.17".into(),
            peer_address: "10.64.0.1".into(),
            dns: vec![],
            ..Default::default()
        }),
    ];
    for (i, step) in steps.into_iter().enumerate() {
        app.set_clock(t0, wall() - Duration::from_secs(3_730 - 2 * i as u64));
        app.handle_event(Event::Server(ServerUpdate::Progress {
            connection: "isp1".into(),
            event: masqdial_proto::v1::DialEvent {
                at: None,
                event: Some(step),
            },
        }));
    }
    up.state = LinkState::Up as i32;
    app.handle_event(Event::Server(ServerUpdate::Link(up)));
    app.set_clock(t0, wall());
    for i in 0..60u64 {
        app.handle_event(Event::Server(ServerUpdate::Sample(TrafficSample {
            connection: "isp1".into(),
            bytes_in: (i * 37 % 11) * 300,
            bytes_out: (i * 13 % 7) * 80,
            packets_in: 1,
            packets_out: 1,
            period_ms: 1000,
        })));
    }
    app.handle_event(Event::Server(ServerUpdate::MasqReset));
    app.handle_event(Event::Server(ServerUpdate::MasqBatch {
        entries: vec![
            masq(
                1,
                Protocol::Tcp,
                "192.168.1.10",
                1034,
                "198.51.100.80",
                80,
                "ESTABLISHED",
                89_512,
            ),
            masq(
                2,
                Protocol::Tcp,
                "192.168.1.10",
                1035,
                "198.51.100.80",
                443,
                "ESTABLISHED",
                90_000,
            ),
            masq(
                3,
                Protocol::Udp,
                "192.168.1.23",
                1027,
                "203.0.113.53",
                53,
                "UDP",
                29_871,
            ),
            masq(
                4,
                Protocol::Tcp,
                "192.168.1.23",
                1100,
                "192.0.2.21",
                21,
                "FIN_WAIT",
                11_204,
            ),
            masq(
                5,
                Protocol::Icmp,
                "192.168.1.5",
                512,
                "192.0.2.1",
                2048,
                "ICMP",
                5_911,
            ),
        ],
        at: t0,
    }));
    app.handle_event(Event::Server(ServerUpdate::MasqDone {
        total: 5,
        free: Some(FreePortsResponse {
            tcp: 4093,
            udp: 4095,
            icmp: 4095,
            tcp_total: 4096,
            udp_total: 4096,
            icmp_total: 4096,
            port_low: 61000,
            port_high: 65095,
        }),
    }));
    app.handle_event(Event::Server(ServerUpdate::Chains(chains())));
    app
}

fn contains(lines: &[String], s: &str) -> bool {
    lines.iter().any(|l| l.contains(s))
}

fn key(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn sized(mut app: App, w: u16, h: u16) -> App {
    app.handle_event(Event::Resize {
        width: w,
        height: h,
    });
    app
}

/// The deploy/ipmasq.rules input chain as the server lists it (nat-core's snapshot).
fn ipmasq_chains() -> Vec<Chain> {
    let rule = |n: u32, spec: &str, target: &str, proto: &str, src: &str, dst: &str| Rule {
        number: n,
        spec: spec.into(),
        target: target.into(),
        protocol: proto.into(),
        source: src.into(),
        destination: dst.into(),
        options: "------".into(),
        ..Default::default()
    };
    let mut spoof = rule(
        1,
        "-s 192.168.0.0/16 -i ppp0 -j DENY -l",
        "DENY",
        "all",
        "192.168.0.0/16",
        "0.0.0.0/0",
    );
    spoof.interface = "ppp0".into();
    spoof.options = "----l-".into();
    spoof.log = true;
    let mut syn = rule(
        2,
        "-p tcp -d 0.0.0.0/0 0:60999 -i ppp0 -y -j DENY",
        "DENY",
        "tcp",
        "0.0.0.0/0",
        "0.0.0.0/0",
    );
    syn.interface = "ppp0".into();
    syn.options = "-y----".into();
    syn.destination_ports = "0:60999".into();
    let mut inv = rule(
        3,
        "-p udp -s ! 192.168.77.0/24 -i ! ppp+ -d 0.0.0.0/0 ! 0:1023 -j REJECT",
        "REJECT",
        "udp",
        "!192.168.77.0/24",
        "0.0.0.0/0",
    );
    inv.interface = "!ppp+".into();
    inv.destination_ports = "!0:1023".into();
    vec![
        Chain {
            name: "input".into(),
            policy: "ACCEPT".into(),
            builtin: true,
            rules: vec![spoof, syn, inv],
            ..Default::default()
        },
        Chain {
            name: "forward".into(),
            policy: "DENY".into(),
            builtin: true,
            rules: vec![rule(
                1,
                "-s 192.168.77.0/24 -j MASQ",
                "MASQ",
                "all",
                "192.168.77.0/24",
                "0.0.0.0/0",
            )],
            ..Default::default()
        },
    ]
}

fn line_with<'a>(lines: &'a [String], s: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(s))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no line with {s:?} in\n{}", lines.join("\n")))
}

/// Rows of the masquerade panel that show an entry.
fn masq_rows_shown(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains("192.168.") && l.contains(":61"))
        .cloned()
        .collect()
}

fn many_sessions(app: &mut App, n: u64) {
    let at = app.now;
    let entries = (0..n)
        .map(|i| {
            let mut e = masq(
                100 + i,
                Protocol::Tcp,
                "192.168.1.50",
                2000 + i as u32,
                "198.51.100.9",
                61000 + i as u32,
                "ESTABLISHED",
                100_000 + i * 100,
            );
            e.bytes_in = 0;
            e
        })
        .collect();
    app.handle_event(Event::Server(ServerUpdate::MasqBatch { entries, at }));
}

fn click(x: u16, y: u16) -> Event {
    Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    })
}

fn wheel(down: bool, x: u16, y: u16) -> Event {
    Event::Mouse(MouseEvent {
        kind: if down {
            MouseEventKind::ScrollDown
        } else {
            MouseEventKind::ScrollUp
        },
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    })
}
