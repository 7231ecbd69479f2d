//! The dial transcript: the lines a connection keeps of its current or last dial (chat lines
//! merged in by the actor's view refresh). Owns its length bound; must not log secrets (chat
//! masks them) or reach the modem.

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

    /// A transcript line only (a structured event tells watchers the same).
    pub(super) fn record(&mut self, kind: TranscriptKind, text: String) {
        if self.transcript.len() >= TRANSCRIPT_MAX {
            self.transcript.remove(0);
        }
        self.transcript.push(TranscriptEntry {
            at: SystemTime::now(),
            kind,
            text,
        });
    }
}
