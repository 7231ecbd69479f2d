//! One modem session: chat, then PPP, then hang-up, on one serial line. Owns the driver threads
//! and the channels to tokio; must not contain chat or PPP logic (it only feeds the sans-IO
//! machines and moves bytes).
//!
//! Design: serial I/O is blocking (`serialport`), so each session runs on two dedicated OS threads:
//! a *reader* that blocks in `read` (100 ms timeout, to notice stop) and forwards bytes, and the
//! *driver* that owns [`Chat`](masqdial_at::Chat) and [`Ppp`](masqdial_ppp::Ppp), writes to the line and sleeps in
//! `recv_timeout` until input, an outbound packet, a hang-up request or the next protocol timer.
//! Both threads end in bounded time; [`SessionHandle::hangup`] waits for them, so no thread or fd
//! outlives the session. Tokio sees only channels: progress events (unbounded: a session emits a
//! few dozen), inbound IPv4 (bounded, drops counted) and outbound IPv4 (bounded `try_send`).

mod driver;

use driver::Driver;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc as tmpsc, oneshot};

use super::carrier::NoCarrierWatch;
use super::hangup;
use super::{open, ModemSettings, OpenError, SerialError, SerialLine};
use masqdial_at::{ChatConfig, ChatEvent, ChatFailure, TranscriptKind, TranscriptLine};
use masqdial_ppp::{DownReason, NegotiatedOptions, PppConfig, PppEvent, PppStats};
use masqdial_sched::Class;

use crate::linkq::{line_rate, Egress, LinkSink, QueueSnapshot, SchedulerKind, SessionLink};

/// Inbound IPv4 packets buffered for the dataplane before drops start.
pub const INBOUND_QUEUE: usize = 256;
/// Input queue of the driver thread (serial chunks + outbound packets + control).
const INPUT_QUEUE: usize = 1024;
/// Longest wait for PPP to finish terminating on hang-up.
pub const PPP_CLOSE_LIMIT: Duration = Duration::from_secs(3);
/// After the hang-up procedure: joining the reader (one 100 ms read timeout) and closing the
/// port.
const END_SLACK: Duration = Duration::from_millis(500);
/// How much longer than a session's own bound its owner waits for the `Ended` report.
pub const REPORT_SLACK: Duration = Duration::from_secs(5);

/// The longest a session takes from a hang-up request to its `Ended` report: PPP close
/// ([`PPP_CLOSE_LIMIT`]), the modem hang-up ([`hangup::bound`]: DTR, drain, escape, `ATH`,
/// `ATZ`) and closing the port. One deadline, set when the hang-up starts, governs all of it.
/// With the default settings (S12 1 s, commands 2 s): 17.6 s.
#[must_use]
pub fn hangup_bound(settings: &ModemSettings) -> Duration {
    PPP_CLOSE_LIMIT + hangup::bound(settings) + END_SLACK
}
/// Longest time a write may stall.
const WRITE_LIMIT: Duration = Duration::from_secs(5);
/// How often DCD is polled (where the device has it).
const DCD_POLL: Duration = Duration::from_secs(1);

/// One line of the session's transcript (modem I/O, the chat's notes, the hang-up steps) with
/// its wall-clock time; each line is sent once, in the order it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLine {
    /// When it was written.
    pub at: SystemTime,
    /// Direction or kind.
    pub kind: TranscriptKind,
    /// The text (secrets already masked by the chat).
    pub text: String,
}

/// Progress of a session, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A transcript line, sent before the chat events of the same step.
    Line(SessionLine),
    /// A chat step (init, dialling, CONNECT, redial, failure).
    Chat(ChatEvent),
    /// A PPP milestone: `LcpUp`, `AuthOk`, `AuthFailed`, `IpcpUp`, `Down` (never `Ipv4`).
    Ppp(PppEvent),
    /// The modem reported NO CARRIER or DCD dropped while PPP ran.
    CarrierLost,
    /// Hanging up (requested, or PPP went down).
    HangingUp,
    /// The session is over; nothing follows.
    Ended(SessionEnd),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The chat gave up (BUSY on every number, NO DIALTONE, timeout, …).
    ChatFailed {
        /// Why.
        kind: ChatFailure,
        /// Explanation.
        message: String,
    },
    /// PPP finished for this reason, then the modem was hung up.
    PppDown(DownReason),
    /// Hung up on request.
    HungUp,
    /// The serial line failed (device gone, EIO, write stalled).
    Serial(SerialError),
}

/// Live counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Bytes read from the serial line.
    pub serial_bytes_in: u64,
    /// Bytes written to the serial line.
    pub serial_bytes_out: u64,
    /// IPv4 packets delivered to the dataplane.
    pub packets_in: u64,
    /// IPv4 bytes delivered to the dataplane.
    pub bytes_in: u64,
    /// IPv4 packets accepted for sending.
    pub packets_out: u64,
    /// IPv4 bytes accepted for sending.
    pub bytes_out: u64,
    /// Inbound packets dropped because the dataplane did not keep up.
    pub inbound_dropped: u64,
    /// Outbound packets refused by PPP (not open, queue full, too large).
    pub outbound_refused: u64,
    /// Outbound datagrams larger than the peer's MRU sent as RFC 791 fragments (DF clear).
    pub fragmented: u64,
    /// PPP counters.
    pub ppp: PppStats,
}

/// Error handing a packet to the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendPacketError {
    /// The driver's queue is full; the packet was dropped.
    #[error("modem session queue full")]
    Full,
    /// The session has ended.
    #[error("modem session ended")]
    Closed,
}

enum Input {
    Serial(Vec<u8>),
    SerialFailed(SerialError),
    Packet(Vec<u8>, Class),
    Queue(SchedulerKind),
    Hangup,
}

#[derive(Default)]
struct SharedState {
    counters: SessionCounters,
    options: Option<NegotiatedOptions>,
    transcript: Vec<TranscriptLine>,
    connect: Option<(Option<u32>, Option<String>)>,
    queue: Option<QueueSnapshot>,
}

/// Sends outbound IPv4 packets into a session; cheap to clone.
#[derive(Clone)]
pub struct PacketSender {
    tx: SyncSender<Input>,
}

impl std::fmt::Debug for PacketSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketSender")
    }
}

impl PacketSender {
    /// Queues one IPv4 datagram as unclassified traffic (all such datagrams share one flow);
    /// never blocks.
    pub fn try_send(&self, packet: Vec<u8>) -> Result<(), SendPacketError> {
        self.try_send_classified(
            packet,
            Class {
                host: std::net::Ipv4Addr::UNSPECIFIED,
                flow: 0,
            },
        )
    }

    /// Queues one IPv4 datagram in `class` (its LAN host and flow, see
    /// [`crate::linkq::Classifier`]); never blocks. The session's link scheduler
    /// decides when it goes out.
    pub fn try_send_classified(
        &self,
        packet: Vec<u8>,
        class: Class,
    ) -> Result<(), SendPacketError> {
        self.tx
            .try_send(Input::Packet(packet, class))
            .map_err(|e| match e {
                TrySendError::Full(_) => SendPacketError::Full,
                TrySendError::Disconnected(_) => SendPacketError::Closed,
            })
    }
}

impl LinkSink for PacketSender {
    fn try_send_classified(&self, packet: Vec<u8>, class: Class) -> bool {
        PacketSender::try_send_classified(self, packet, class).is_ok()
    }

    fn set_scheduler(&self, kind: SchedulerKind) {
        let _ = self.tx.try_send(Input::Queue(kind));
    }
}

/// Handle on a running session. Dropping it requests a hang-up (without waiting).
pub struct SessionHandle {
    /// Progress events, ending with [`SessionEvent::Ended`].
    pub events: tmpsc::UnboundedReceiver<SessionEvent>,
    /// IPv4 datagrams from the peer.
    pub inbound: tmpsc::Receiver<Vec<u8>>,
    input: SyncSender<Input>,
    shared: Arc<Mutex<SharedState>>,
    done: Option<oneshot::Receiver<()>>,
    thread: Option<JoinHandle<()>>,
    hangup_bound: Duration,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// A sender for outbound IPv4 datagrams.
    #[must_use]
    pub fn packet_sender(&self) -> PacketSender {
        PacketSender {
            tx: self.input.clone(),
        }
    }

    /// The session's link for the data plane: its MRUs and rate as known now, a sink into its
    /// link queue, and its inbound datagrams (taken: a second call gets a closed channel).
    pub fn link_port(&mut self) -> SessionLink {
        let (_closed_tx, closed_rx) = tmpsc::channel(1);
        SessionLink {
            mrus: self.options().map(|o| (o.peer_mru, o.local_mru)),
            link_rate: self.queue().map(|q| q.link_rate),
            sink: Arc::new(self.packet_sender()),
            inbound: std::mem::replace(&mut self.inbound, closed_rx),
        }
    }

    /// Queues one outbound IPv4 datagram.
    pub fn send_ipv4(&self, packet: Vec<u8>) -> Result<(), SendPacketError> {
        self.packet_sender().try_send(packet)
    }

    /// Choose the link queue's discipline (the default is [`SchedulerKind::Fair`]). Takes
    /// effect before any packet sent after this call.
    pub fn set_link_queue(&self, kind: SchedulerKind) {
        let _ = self.input.try_send(Input::Queue(kind));
    }

    /// The outbound link queue's state (scheduler counters, bytes below the writer).
    #[must_use]
    pub fn queue(&self) -> Option<QueueSnapshot> {
        self.shared.lock().ok().and_then(|s| s.queue.clone())
    }

    /// Live counters.
    #[must_use]
    pub fn counters(&self) -> SessionCounters {
        self.shared.lock().map(|s| s.counters).unwrap_or_default()
    }

    /// Negotiated PPP options (once LCP ran).
    #[must_use]
    pub fn options(&self) -> Option<NegotiatedOptions> {
        self.shared.lock().ok().and_then(|s| s.options.clone())
    }

    /// CONNECT speed and extras, once connected.
    #[must_use]
    pub fn connect_info(&self) -> Option<(Option<u32>, Option<String>)> {
        self.shared.lock().ok().and_then(|s| s.connect.clone())
    }

    /// The chat transcript (secrets masked), plus hang-up notes.
    #[must_use]
    pub fn transcript(&self) -> Vec<TranscriptLine> {
        self.shared
            .lock()
            .map(|s| s.transcript.clone())
            .unwrap_or_default()
    }

    /// Next progress event (`None` after the session ended and all events were read).
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// The longest this session takes from a hang-up request to its `Ended` report
    /// ([`hangup_bound`] of its settings).
    #[must_use]
    pub fn hangup_bound(&self) -> Duration {
        self.hangup_bound
    }

    /// How long an owner should wait for the `Ended` report after asking for a hang-up: longer
    /// than the session's own bound, so the report is never given up on while it can come.
    #[must_use]
    pub fn report_wait(&self) -> Duration {
        self.hangup_bound + REPORT_SLACK
    }

    /// Hangs up (PPP Terminate, then the modem) and waits until both threads ended. Bounded:
    /// returns after at most `limit` even if the line is stuck (the threads still end on their own
    /// within their own bounds). Returns the remaining events, the last always being `Ended`:
    /// when `limit` passes first (pass at least [`SessionHandle::report_wait`] so that it never
    /// does), an `Ended(Serial)` saying so is made up, so no owner is left waiting.
    pub async fn hangup(mut self, limit: Duration) -> Vec<SessionEvent> {
        let give_up = tokio::time::Instant::now() + limit;
        loop {
            match self.input.try_send(Input::Hangup) {
                Err(TrySendError::Full(_)) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => break,
            }
        }
        if let Some(done) = self.done.take() {
            if tokio::time::timeout_at(give_up, done).await.is_ok() {
                // `done` is the thread's last action: joining now takes microseconds.
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }
        let mut rest = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            rest.push(e);
        }
        if !rest.iter().any(|e| matches!(e, SessionEvent::Ended(_))) {
            tracing::error!(
                ?limit,
                bound = ?self.hangup_bound,
                "modem session did not report its end in time; releasing it anyway"
            );
            rest.push(SessionEvent::Ended(SessionEnd::Serial(SerialError::Io(
                format!("modem session did not end within {limit:?} of the hang-up"),
            ))));
        }
        rest
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        let _ = self.input.try_send(Input::Hangup);
    }
}

/// Opens `settings.device` and starts a session on it.
pub fn spawn_session(
    settings: ModemSettings,
    plan: ChatConfig,
    ppp: PppConfig,
) -> Result<SessionHandle, OpenError> {
    let line = open(&settings)?;
    let path = settings.device.clone();
    spawn_session_on(Box::new(line), settings, plan, ppp).map_err(|e| OpenError::Other {
        path,
        message: e.to_string(),
    })
}

/// Starts a session on an already-open line (a tty, a pty, a test double).
pub fn spawn_session_on(
    line: Box<dyn SerialLine>,
    settings: ModemSettings,
    plan: ChatConfig,
    ppp: PppConfig,
) -> std::io::Result<SessionHandle> {
    // The sans-IO PPP engine reads no random source: its seed is drawn here (a test's fixed
    // seed is kept).
    let mut ppp = ppp;
    if ppp.seed == 0 {
        ppp.seed = random_seed();
    }
    let mut reader_line = line.try_clone_line()?;
    let (input_tx, input_rx) = mpsc::sync_channel(INPUT_QUEUE);
    let (ev_tx, ev_rx) = tmpsc::unbounded_channel();
    let (in_tx, in_rx) = tmpsc::channel(INBOUND_QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    let shared = Arc::new(Mutex::new(SharedState::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let reader_tx = input_tx.clone();
    let reader_stop = Arc::clone(&stop);
    let reader = std::thread::Builder::new()
        .name("modem-reader".into())
        .spawn(move || {
            let _ = reader_line.set_read_timeout(Duration::from_millis(100));
            let mut buf = vec![0u8; 4096];
            while !reader_stop.load(Ordering::Relaxed) {
                match reader_line.read(&mut buf) {
                    Ok(0) => {}
                    Ok(n) => {
                        if reader_tx.send(Input::Serial(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = reader_tx.send(Input::SerialFailed(SerialError::from_io(&e)));
                        return;
                    }
                }
            }
        })?;

    let (wall0, inst0) = (SystemTime::now(), std::time::Instant::now());
    let driver_shared = Arc::clone(&shared);
    let baud = settings.baud;
    let bound = hangup_bound(&settings);
    let thread = std::thread::Builder::new()
        .name("modem-session".into())
        .spawn(move || {
            let mut d = Driver {
                line,
                settings,
                input: input_rx,
                events: ev_tx,
                inbound: in_tx,
                shared: driver_shared,
                counters: SessionCounters::default(),
                dcd_supported: true,
                dcd_seen_high: false,
                carrier_lost: false,
                watch: NoCarrierWatch::new(),
                egress: Egress::new(SchedulerKind::Fair, line_rate(baud), 1500),
                line_free_at: None,
                deferred: VecDeque::new(),
                hangup_deadline: None,
                earlier_transcript: Vec::new(),
                chat_tx: VecDeque::new(),
                wall0,
                inst0,
                chat_start: inst0,
                lines_sent: 0,
            };
            let end = d.run(plan, ppp);
            d.publish(None, None);
            let Driver {
                line,
                input,
                events,
                ..
            } = d;
            stop.store(true, Ordering::Relaxed);
            // Dropping the receiver unblocks a reader stuck on a full queue.
            drop(input);
            let _ = reader.join();
            // Close the port before announcing the end, so a redial can reopen it at once.
            drop(line);
            let _ = events.send(SessionEvent::Ended(end));
            let _ = done_tx.send(());
        })?;

    Ok(SessionHandle {
        events: ev_rx,
        inbound: in_rx,
        input: input_tx,
        shared,
        done: Some(done_rx),
        thread: Some(thread),
        hangup_bound: bound,
    })
}

/// 64 unpredictable bits for a PPP engine's seed (magic numbers, CHAP challenges) from the OS
/// random source; if that fails (no getrandom in a sandbox), a fresh `RandomState`'s SipHash,
/// whose key std also draws from the OS.
#[must_use]
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_ok() {
        return u64::from_le_bytes(b);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6d61_7371_6469_616c);
    h.finish()
}
