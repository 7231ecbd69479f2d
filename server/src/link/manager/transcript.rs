//! The dial transcript: the lines a connection keeps of its current or last dial, one list in
//! the order things happened: the session's lines (modem I/O, the chat's notes, the hang-up
//! steps) as they arrive, each once, with the manager's own notes (PPP milestones, the data
//! plane, hang-ups) between them. Owns its length bound; must not log secrets (chat masks
//! them) or reach the modem.

use std::time::SystemTime;

use crate::link::events::{DialStep, TranscriptEntry};
use masqdial_at::TranscriptKind;

use super::Actor;

/// Transcript lines kept per connection.
const TRANSCRIPT_MAX: usize = 400;

impl Actor {
    /// A transcript line that also goes to dial watchers as free text.
    pub(super) fn note(&mut self, kind: TranscriptKind, text: String) {
        self.record(kind, text.clone());
        self.emit(DialStep::Info(text));
    }

    /// Free text for dial watchers only (the transcript has the same thing in its own line).
    pub(super) fn tell(&self, text: String) {
        self.emit(DialStep::Info(text));
    }

    /// A transcript line only (a structured event tells watchers the same).
    pub(super) fn record(&mut self, kind: TranscriptKind, text: String) {
        self.record_at(SystemTime::now(), kind, text);
    }

    /// A transcript line written at `at` (a session line, timed where it was written).
    pub(super) fn record_at(&mut self, at: SystemTime, kind: TranscriptKind, text: String) {
        if self.transcript.len() >= TRANSCRIPT_MAX {
            self.transcript.remove(0);
        }
        self.transcript.push(TranscriptEntry { at, kind, text });
        self.transcript_dirty = true;
    }
}
