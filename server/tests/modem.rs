//! Modem driver on a real pseudo-terminal against the mock modem: open, chat, CONNECT, the
//! missing modem-status lines, `+++`/`ATH` hang-up, EIO when the far side closes, probe.

use std::io::Read;
use std::time::{Duration, Instant};

use masqdial_at::{Chat, ChatConfig, ChatEvent};
use masqdial_server::modem::hangup::{direct_reader, hang_up};
use masqdial_server::modem::{
    open, probe, write_all_bounded, Backoff, FlowControl, ModemSettings, ModemStatusError,
    OpenError, ProbeError, SerialError, SerialLine,
};
use masqdial_sim::modem::pty::spawn_pty;
use masqdial_sim::modem::{Answerer, EchoAnswerer, MockModemConfig, Outcome};

fn echo_factory() -> masqdial_sim::modem::AnswererFactory {
    Box::new(|_: &str| Box::new(EchoAnswerer::default()) as Box<dyn Answerer>)
}

fn settings_for(path: &std::path::Path) -> ModemSettings {
    ModemSettings {
        flow: FlowControl::None,
        guard_time: Duration::from_millis(100),
        command_timeout: Duration::from_secs(2),
        ..ModemSettings::new(path)
    }
}

/// Runs the chat over a real line (blocking), bounded by `limit`.
fn chat_over(line: &mut dyn SerialLine, chat: &mut Chat, limit: Duration) -> Vec<ChatEvent> {
    let end = Instant::now() + limit;
    let mut events = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < end && !chat.is_ready() && !chat.is_failed() {
        while let Some(b) = chat.poll_transmit() {
            write_all_bounded(line, &b, Duration::from_secs(1)).expect("pty write");
        }
        while let Some(e) = chat.poll_event() {
            events.push(e);
        }
        line.set_read_timeout(Duration::from_millis(20))
            .expect("set timeout");
        match line.read(&mut buf) {
            Ok(n) => chat.handle_input(Instant::now(), &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
        chat.handle_timeout(Instant::now());
    }
    while let Some(e) = chat.poll_event() {
        events.push(e);
    }
    events
}

#[test]
fn open_chat_connect_and_escape_hangup_on_pty() {
    let cfg = MockModemConfig {
        s12: 3, // 60 ms guard time
        ..MockModemConfig::default()
    };
    let mock = spawn_pty(cfg, echo_factory()).expect("pty");
    let settings = settings_for(mock.path());
    let mut line = open(&settings).expect("open pty slave");

    // A pty has no modem-status lines: both ioctls fail cleanly as Unsupported.
    assert!(matches!(
        line.carrier_detect(),
        Err(ModemStatusError::Unsupported)
    ));
    assert!(matches!(
        line.set_dtr(false),
        Err(ModemStatusError::Unsupported)
    ));

    let mut chat = Chat::new(ChatConfig::dialup(&["5551234"]), Instant::now());
    let events = chat_over(&mut line, &mut chat, Duration::from_secs(5));
    assert!(chat.is_ready(), "{events:?}");
    assert_eq!(chat.connect_info(), Some((Some(115_200), None)));

    // Data flows through the echoing far end.
    write_all_bounded(&mut line, b"ping", Duration::from_secs(1)).expect("write");
    let mut got = chat.take_remaining();
    let mut buf = [0u8; 64];
    let end = Instant::now() + Duration::from_secs(2);
    while got.len() < 4 && Instant::now() < end {
        if let Ok(n) = line.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, b"ping");

    // Hang up: DTR unsupported on a pty, so +++ with guard time, then ATH.
    let mut reader = line.try_clone_line().expect("clone");
    let report = hang_up(
        &mut line,
        &settings,
        false,
        None,
        Instant::now() + masqdial_server::modem::hangup::bound(&settings),
        &mut direct_reader(reader.as_mut()),
    )
    .expect("hang-up");
    assert!(!report.dtr_dropped);
    assert!(report.escape_sent && report.escape_ok, "{report:?}");
    assert!(report.ath_ok && report.atz_ok, "{report:?}");
    assert_eq!(mock.stats().escapes, 1);
    drop(reader);
    drop(line);

    // The port can be opened again (TIOCEXCL was cleared on close) and answers AT.
    let info = probe(&settings, Duration::from_secs(2)).expect("probe after hang-up");
    assert!(!info.has_status_lines);
    mock.stop();
}

#[test]
fn master_close_gives_device_gone() {
    let mock = spawn_pty(MockModemConfig::default(), echo_factory()).expect("pty");
    let settings = settings_for(mock.path());
    let mut line = open(&settings).expect("open");
    mock.stop();
    line.set_read_timeout(Duration::from_millis(500))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let err = line.read(&mut buf).expect_err("read after master close");
    let typed = SerialError::from_io(&err);
    assert!(
        matches!(typed, SerialError::DeviceGone(_)),
        "{typed:?} from {err:?}"
    );
}

#[test]
fn probe_missing_device_and_silent_modem() {
    let missing = settings_for(std::path::Path::new("/dev/masqdial-no-such-tty"));
    assert!(matches!(
        probe(&missing, Duration::from_millis(200)),
        Err(ProbeError::Open(OpenError::NotFound(_)))
    ));
    let cfg = MockModemConfig {
        silent: true,
        ..MockModemConfig::default()
    };
    let mock = spawn_pty(cfg, echo_factory()).expect("pty");
    let r = probe(&settings_for(mock.path()), Duration::from_millis(300));
    assert!(matches!(r, Err(ProbeError::NoAnswer(..))), "{r:?}");
}

#[test]
fn busy_outcome_over_pty() {
    let mut cfg = MockModemConfig::default();
    cfg.outcomes
        .insert("1".into(), "BUSY@50ms".parse::<Outcome>().expect("valid"));
    let mock = spawn_pty(cfg, echo_factory()).expect("pty");
    let mut line = open(&settings_for(mock.path())).expect("open");
    let mut plan = ChatConfig::dialup(&["1", "2"]);
    plan.redial.next_number_delay = Duration::from_millis(10);
    let mut chat = Chat::new(plan, Instant::now());
    let events = chat_over(&mut line, &mut chat, Duration::from_secs(5));
    assert!(chat.is_ready(), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, ChatEvent::Redial { .. })));
}

#[test]
fn backoff_doubles_and_caps() {
    let b: Vec<u64> = Backoff::new(Duration::from_secs(1), Duration::from_secs(10))
        .take(6)
        .map(|d| d.as_secs())
        .collect();
    assert_eq!(b, vec![1, 2, 4, 8, 10, 10]);
}

#[test]
fn second_open_is_busy_and_typed() {
    let mock = spawn_pty(MockModemConfig::default(), echo_factory()).expect("pty");
    // No lock file here: this checks the kernel's exclusive open on its own.
    let settings = ModemSettings {
        lock_dir: None,
        ..settings_for(mock.path())
    };
    let first = open(&settings).expect("first open");
    let second = open(&settings);
    assert!(matches!(second, Err(OpenError::Busy(_))), "{second:?}");
    drop(first);
    assert!(open(&settings).is_ok(), "reopen after close");
}

#[test]
fn uucp_lock_refuses_a_second_opener_and_names_the_holder() {
    use masqdial_server::modem::lock::{lock_name, LockError};
    let mock = spawn_pty(MockModemConfig::default(), echo_factory()).expect("pty");
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = ModemSettings {
        lock_dir: Some(dir.path().to_path_buf()),
        ..settings_for(mock.path())
    };
    let lock_file = dir.path().join(lock_name(mock.path()));
    let line = open(&settings).expect("first open");
    assert_eq!(
        std::fs::read_to_string(&lock_file).expect("lock file"),
        format!("{:>10}\n", std::process::id())
    );
    match open(&settings) {
        Err(OpenError::Locked(LockError::Held { pid, program, .. })) => {
            assert_eq!(pid, std::process::id() as i32);
            assert!(program.is_some());
        }
        other => panic!("{other:?}"),
    }
    drop(line);
    assert!(!lock_file.exists(), "lock file removed with the line");
    // A live foreign holder that has the device open is named ...
    let mut holder = std::process::Command::new("sleep")
        .arg("30")
        .stdin(std::fs::File::open(mock.path()).expect("open the pty"))
        .spawn()
        .expect("spawn sleep");
    let holder_pid = holder.id() as i32;
    std::fs::write(&lock_file, format!("{holder_pid:>10}\n")).expect("write");
    let named = open(&settings);
    let _ = holder.kill();
    let _ = holder.wait();
    match named {
        Err(OpenError::Locked(LockError::Held { pid, .. })) => assert_eq!(pid, holder_pid),
        other => panic!("{other:?}"),
    }
    // ... a live one that does not (pid 1: a planted lock, finding N16) is ignored ...
    std::fs::write(&lock_file, format!("{:>10}\n", 1)).expect("write");
    let line = open(&settings).expect("a planted lock is ignored");
    drop(line);
    // ... and a dead one is taken over.
    std::fs::write(&lock_file, format!("{:>10}\n", 9_999_999)).expect("write");
    let line = open(&settings).expect("stale lock taken over");
    drop(line);
    mock.stop();
}
