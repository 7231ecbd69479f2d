//! Terminal-safe text: the one place where mclient and mtui make remote-controlled text
//! (modem replies, PPP peer messages, dial transcripts, log and packet-log lines, reverse
//! DNS names, server error messages) harmless to print.
//!
//! A hostile peer, modem or name server must not move the cursor, set the window title,
//! clear the screen or forge a table row. So every C0 control (newline and tab included,
//! except where [`block`] keeps the newlines and tabs that lay out our own output), DEL,
//! every C1 control (U+0080..U+009F, which some terminals read as CSI/OSC) and the Unicode
//! bidirectional overrides and line separators are shown as visible escapes (`\x1b`,
//! `\n`, `\u{202e}`). Everything else passes unchanged, so ordinary text costs nothing.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as itself.
fn dangerous(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' // bidi marks
            | '\u{202A}'..='\u{202E}'            // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}'            // bidi isolates
            | '\u{2028}' | '\u{2029}'            // line and paragraph separators
        )
}

/// The escaping itself: `keep_layout` leaves `\n` and `\t` as they are (for whole blocks
/// of output whose lines we built, such as the ipchains help), else they are shown as `\n`
/// and `\t` too.
pub fn escape(s: &str, keep_layout: bool) -> Cow<'_, str> {
    let bad = |c: char| dangerous(c) && !(keep_layout && matches!(c, '\n' | '\t'));
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !bad(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x100 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

/// One field of remote text shown on one line (a table cell, a transcript line, a log
/// line): nothing in it can break the line or reach the terminal as a control.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// A block of output whose line breaks are ours (a rendered listing, a command's whole
/// output): newlines and tabs stay, every other control is escaped.
pub fn block(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_cursor_moves_titles_newlines_and_c1() {
        let hostile = "ok\x1b[2J\x1b]0;pwned\x07\nTCP  forged row\r\u{9b}31m\u{202e}gnp.exe\x7f";
        assert_eq!(
            line(hostile),
            "ok\\x1b[2J\\x1b]0;pwned\\x07\\nTCP  forged row\\r\\x9b31m\\u{202e}gnp.exe\\x7f"
        );
        assert_eq!(block("a\tb\nb\x1bc\n"), "a\tb\nb\\x1bc\n");
        assert!(matches!(line("plain text, ümlaut"), Cow::Borrowed(_)));
        assert_eq!(line("tab\there"), "tab\\there");
    }

    proptest! {
        /// Whatever comes in, what goes out has no control character and no bidi override
        /// (a block keeps only its newlines), and clean text passes unchanged.
        #[test]
        fn output_is_terminal_safe(s in any::<String>()) {
            let l = line(&s);
            prop_assert!(!l.chars().any(dangerous));
            let b = block(&s);
            prop_assert!(!b.chars().any(|c| dangerous(c) && c != '\n' && c != '\t'));
            prop_assert_eq!(b.matches('\n').count(), s.matches('\n').count());
            if !s.chars().any(dangerous) {
                prop_assert_eq!(l.as_ref(), s.as_str());
            }
        }
    }
}

#[cfg(test)]
mod output_tests {
    use masqdial_proto::v1 as pb;

    #[test]
    fn mclient_tables_and_dial_lines_stay_one_line_each() {
        let t = crate::format::table(
            &["USER", "HOST"],
            &[vec!["alice".into(), "pc\n10.0.0.9  forged\x1b[1A".into()]],
        );
        assert_eq!(t.lines().count(), 2, "{t}");
        assert!(!t.contains('\x1b'), "{t}");
        let ev = pb::DialEvent {
            event: Some(pb::dial_event::Event::Failed(pb::Failure {
                message: "+CME ERROR: 13\r\n\x1b]0;title\x07".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let (line, _) = crate::words::dial_event(&ev);
        assert_eq!(line, "failed: +CME ERROR: 13\\r\\n\\x1b]0;title\\x07");
        let ev = pb::DialEvent {
            event: Some(pb::dial_event::Event::Connected(pb::Connected {
                speed_bps: 33600,
                extras: "/V42\nIPCP up: forged".into(),
            })),
            ..Default::default()
        };
        assert_eq!(
            crate::words::dial_event(&ev).0,
            "CONNECT 33600 /V42\\nIPCP up: forged"
        );
    }
}
