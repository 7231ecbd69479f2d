//! Carrier loss from the modem's `NO CARRIER` text, in a form that PPP payload cannot fake.
//! Sans-IO: fed the bytes read in PPP state and `now`; answers [`CarrierVerdict`]s. Owns only the
//! recognition of the text; it must not touch the line or PPP (the session driver sends the
//! probe and ends the link).
//!
//! Why payload cannot fake it. With ACCM 0 the ISP sends CR and LF unescaped, so one UDP
//! datagram can carry `\r\nNO CARRIER\r\n` inside a frame. But 0x7E is escaped in every frame
//! whatever the ACCM (RFC 1662 §4.2), so every 0x7E on the line is a real flag, and the first
//! byte after a flag is a frame's Address (0xFF) or, with ACFC, its Protocol field (0x21, 0xC0,
//! 0x80, …) — never CR or LF, which no datagram's content can change. So:
//!
//! 1. **Between frames** — the bytes since the last flag are exactly the modem's line (optional
//!    CR/LF, `NO CARRIER`, CR LF): carrier is lost, at once. This is the common case: modems
//!    report after the last complete frame.
//! 2. **Mid-frame** — the stream ends with the text but frame bytes precede it since the last
//!    flag (carrier dropped while a frame was on the wire, or payload). A payload is followed
//!    within microseconds by the rest of its frame (FCS, flag) in the same burst, and any later
//!    byte clears the suspicion. After [`SILENCE`] of line silence the driver sends one LCP
//!    Echo-Request ([`CarrierVerdict::Probe`]); a live peer answers (any byte clears), a dead
//!    line stays silent for [`PROBE_WINDOW`] and carrier is declared lost. Bound: 0.6 s.
//!
//! DCD (where the device has it) and LCP echo failure remain the other two detectors. Cost:
//! nothing on the line (ACCM stays 0; asking 0x00002400 to escape CR/LF would cost 2/256 of
//! random payload, about 0.8 %, and is not needed).

use std::time::{Duration, Instant};

/// Line silence after a mid-frame `NO CARRIER` before the driver probes.
pub const SILENCE: Duration = Duration::from_millis(200);
/// How long the probe may go unanswered before carrier counts as lost.
pub const PROBE_WINDOW: Duration = Duration::from_millis(400);

const TEXT: &[u8] = b"NO CARRIER";
const LINE: &[u8] = b"\r\nNO CARRIER\r\n";
/// Longest run of bytes after a flag that can still be the modem's line (some slack for CRs).
const SINCE_FLAG_CAP: usize = 32;

/// What the driver should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierVerdict {
    /// The modem reported carrier loss where no frame can be: end the link.
    Lost,
    /// A mid-frame `NO CARRIER` was followed by silence: send one LCP Echo-Request now.
    Probe,
}

/// The recogniser. One per PPP session.
#[derive(Debug, Default)]
pub struct NoCarrierWatch {
    since_flag: Vec<u8>,
    /// More than [`SINCE_FLAG_CAP`] bytes since the last flag.
    long: bool,
    /// Last bytes of the stream (for the mid-frame rule).
    tail: Vec<u8>,
    /// Mid-frame text seen last; silence deadline.
    suspect_until: Option<Instant>,
    /// Probe sent; lost at this time unless a byte arrives.
    probe_until: Option<Instant>,
    /// Mid-frame suspicions cleared by later bytes (payload or a stalled frame).
    pub cleared: u64,
}

impl NoCarrierWatch {
    /// New watcher (state: between frames).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes read from the line while PPP runs.
    #[must_use]
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Option<CarrierVerdict> {
        if bytes.is_empty() {
            return None;
        }
        if self.suspect_until.take().is_some() | self.probe_until.take().is_some() {
            // The line is still talking after the text: it was payload or a delayed frame.
            self.cleared += 1;
        }
        for &b in bytes {
            if b == 0x7E {
                self.since_flag.clear();
                self.long = false;
            } else if self.since_flag.len() < SINCE_FLAG_CAP {
                self.since_flag.push(b);
            } else {
                self.long = true;
            }
        }
        let keep = LINE.len();
        self.tail
            .extend_from_slice(&bytes[bytes.len().saturating_sub(keep)..]);
        let cut = self.tail.len().saturating_sub(keep);
        self.tail.drain(..cut);

        if !self.long && is_modem_line(&self.since_flag) {
            return Some(CarrierVerdict::Lost);
        }
        if self.tail.ends_with(LINE) {
            self.suspect_until = Some(now + SILENCE);
        }
        None
    }

    /// A `NO CARRIER` seen mid-frame is being checked (silence wait or probe pending): the
    /// writer holds data meanwhile, so a modem that dropped carrier hears nothing to echo.
    #[must_use]
    pub fn suspecting(&self) -> bool {
        self.suspect_until.is_some() || self.probe_until.is_some()
    }

    /// When [`NoCarrierWatch::handle_timeout`] must run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.suspect_until.or(self.probe_until)
    }

    /// Silence timers.
    #[must_use]
    pub fn handle_timeout(&mut self, now: Instant) -> Option<CarrierVerdict> {
        if self.suspect_until.is_some_and(|t| now >= t) {
            self.suspect_until = None;
            self.probe_until = Some(now + PROBE_WINDOW);
            return Some(CarrierVerdict::Probe);
        }
        if self.probe_until.is_some_and(|t| now >= t) {
            self.probe_until = None;
            return Some(CarrierVerdict::Lost);
        }
        None
    }
}

/// True if `b` (everything since the last flag) is only the modem's `NO CARRIER` line:
/// CR/LF, the text, and at least one CR or LF after it.
fn is_modem_line(b: &[u8]) -> bool {
    let start = b.iter().position(|c| !matches!(c, b'\r' | b'\n'));
    let Some(start) = start else {
        return false;
    };
    let rest = &b[start..];
    let Some(after) = rest.strip_prefix(TEXT) else {
        return false;
    };
    !after.is_empty() && after.iter().all(|c| matches!(c, b'\r' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_frames_is_lost_at_once() {
        let t = Instant::now();
        let mut w = NoCarrierWatch::new();
        assert_eq!(
            w.handle_input(
                t,
                b"\x7e\xff\x03\xc0\x21\x09\x01\x00\x08\x12\x34\x56\x78\x7e"
            ),
            None
        );
        assert_eq!(w.handle_input(t, b"\r\nNO CAR"), None);
        assert_eq!(w.handle_input(t, b"RIER\r\n"), Some(CarrierVerdict::Lost));
    }

    #[test]
    fn payload_text_inside_a_frame_is_not_carrier_loss() {
        let t = Instant::now();
        let mut w = NoCarrierWatch::new();
        // ACFC+PFC frame: protocol 0x21, then an IP/UDP datagram whose payload is the text.
        let mut f = vec![0x7e, 0x21, 0x45, 0x00];
        f.extend_from_slice(b"\r\nNO CARRIER\r\n");
        f.extend_from_slice(&[0x12, 0x34, 0x7e]);
        assert_eq!(w.handle_input(t, &f), None);
        assert_eq!(w.poll_timeout(), None);
        // The text right at a read boundary: suspected, then the frame's tail clears it.
        let mut w = NoCarrierWatch::new();
        let mut head = vec![0x7e, 0x21, 0x45, 0x00];
        head.extend_from_slice(b"\r\nNO CARRIER\r\n");
        assert_eq!(w.handle_input(t, &head), None);
        assert_eq!(w.poll_timeout(), Some(t + SILENCE));
        assert_eq!(w.handle_input(t, &[0x12, 0x34, 0x7e]), None);
        assert_eq!(w.poll_timeout(), None);
        assert_eq!(w.cleared, 1);
    }

    #[test]
    fn mid_frame_text_then_silence_probes_then_lost() {
        let t = Instant::now();
        let mut w = NoCarrierWatch::new();
        let mut b = vec![0x7e, 0x21, 0x45, 0x00, 0x01];
        b.extend_from_slice(b"\r\nNO CARRIER\r\n");
        assert_eq!(w.handle_input(t, &b), None);
        assert_eq!(
            w.handle_timeout(t + SILENCE - Duration::from_millis(1)),
            None
        );
        assert_eq!(w.handle_timeout(t + SILENCE), Some(CarrierVerdict::Probe));
        assert_eq!(w.poll_timeout(), Some(t + SILENCE + PROBE_WINDOW));
        assert_eq!(
            w.handle_timeout(t + SILENCE + PROBE_WINDOW),
            Some(CarrierVerdict::Lost)
        );
        // The same, but the peer answers the probe.
        let mut w = NoCarrierWatch::new();
        assert_eq!(w.handle_input(t, &b), None);
        assert_eq!(w.handle_timeout(t + SILENCE), Some(CarrierVerdict::Probe));
        assert_eq!(w.handle_input(t + SILENCE, &[0x7e, 0xff]), None);
        assert_eq!(w.handle_timeout(t + SILENCE + PROBE_WINDOW), None);
    }

    #[test]
    fn modem_line_shapes() {
        assert!(is_modem_line(b"\r\nNO CARRIER\r\n"));
        assert!(is_modem_line(b"NO CARRIER\r"));
        assert!(!is_modem_line(b"NO CARRIER"));
        assert!(!is_modem_line(b"\r\nNO CARRIER\r\nX"));
        assert!(!is_modem_line(b"\x21\r\nNO CARRIER\r\n"));
        assert!(!is_modem_line(b"\r\n"));
    }

    proptest::proptest! {
        /// No frame an ISP's HDLC encoder can produce (ACCM 0, ACFC+PFC, any payload, any read
        /// chunking) makes the watcher report Lost: rule 1 never fires on frame content.
        #[test]
        fn frames_never_read_as_carrier_loss(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            text_at in 0usize..200,
            cuts in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let mut p = payload.clone();
            let at = text_at.min(p.len());
            p.splice(at..at, LINE.iter().copied());
            let enc = masqdial_ppp::hdlc::Encoder::new(0, false);
            let mut line = Vec::new();
            for _ in 0..2 {
                enc.encode(&[0x21], &p, &mut line);
            }
            let t = Instant::now();
            let mut w = NoCarrierWatch::new();
            let mut rest = line.as_slice();
            let mut i = 0;
            while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                proptest::prop_assert_eq!(w.handle_input(t, &rest[..n]), None);
                rest = &rest[n..];
                i += 1;
            }
            // Whole frames end with a flag: nothing is even suspected at the end.
            proptest::prop_assert_eq!(w.poll_timeout(), None);
        }
    }
}
