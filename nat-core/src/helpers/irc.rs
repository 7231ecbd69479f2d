//! IRC DCC helper text processing (2.2 `ip_masq_irc`; also what netfilter's `nf_conntrack_irc`
//! and libalias' `alias_irc` do): find the CTCP DCC offers a LAN client sends through its IRC
//! server connection, `\x01DCC <type> <argument> <address> <port>[ <size>…]\x01` with the
//! address as a decimal u32, and print their masqueraded replacement. Owns text only; entry
//! creation and sequence deltas live in [`crate::masq::translate`].
//!
//! Types, as 2.2 knew them: `SEND`, `CHAT`, `MOVE` (AmIRC resumable send), `TSEND` (send
//! without acks), `SCHAT` (encrypted chat). Unlike 2.2 (which took the first offer of a
//! segment only, and matched upper case only):
//! - every offer in the data is found (several CTCPs in one segment);
//! - `DCC` and the type match in any case;
//! - a quoted file name (`"my file.txt"`, as mIRC sends names with spaces) is one argument;
//! - what follows the port (size, a passive-DCC token) is optional, up to the closing `\x01`.
//!
//! The policy of [`rewrite`] follows netfilter rather than 2.2: an offer is rewritten only if
//! it names the client's own inside address (or the masquerade address it may have learnt) and
//! a non-zero port; 2.2 mapped whatever address the text named, which let a LAN client open
//! the gateway to any other inside host ("Forged DCC").

use std::net::Ipv4Addr;
use std::ops::Range;

/// The IRC port 2.2 registered by default (module parameter `ports=`).
pub const DEFAULT_PORT: u16 = 6667;

/// Longest type + argument (file name) before the address, in bytes. An IRC message is at most
/// 512 bytes (RFC 1459 §2.3), so a longer one is not a DCC offer; the bound also keeps the scan
/// linear.
const MAX_HEAD: usize = 512;
/// Longest text after the port (size, token) before the closing `\x01`.
const MAX_TAIL: usize = 64;

/// The DCC offer types 2.2's `ip_masq_irc` rewrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DccKind {
    /// `DCC SEND file addr port [size]`.
    Send,
    /// `DCC CHAT chat addr port`.
    Chat,
    /// `DCC MOVE file addr port [size]` (AmIRC: send with resume).
    Move,
    /// `DCC TSEND file addr port [size]` (send without acknowledgements).
    TSend,
    /// `DCC SCHAT chat addr port` (encrypted chat).
    SChat,
}

impl DccKind {
    /// The type as it appears on the wire (upper case).
    pub fn as_str(self) -> &'static str {
        match self {
            DccKind::Send => "SEND",
            DccKind::Chat => "CHAT",
            DccKind::Move => "MOVE",
            DccKind::TSend => "TSEND",
            DccKind::SChat => "SCHAT",
        }
    }

    /// Every type.
    pub const ALL: [DccKind; 5] = [
        DccKind::Send,
        DccKind::Chat,
        DccKind::Move,
        DccKind::TSend,
        DccKind::SChat,
    ];

    fn parse(word: &[u8]) -> Option<DccKind> {
        DccKind::ALL
            .into_iter()
            .find(|k| word.eq_ignore_ascii_case(k.as_str().as_bytes()))
    }
}

/// One DCC offer found in a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DccOffer {
    /// Its type.
    pub kind: DccKind,
    /// Byte range of the `<address> <port>` text (what a rewrite replaces).
    pub range: Range<usize>,
    /// Address announced (decimal u32 on the wire).
    pub addr: Ipv4Addr,
    /// Port announced (0: a passive, "reverse" DCC request).
    pub port: u16,
    /// Byte range of the whole CTCP, from the opening to the closing `\x01` inclusive.
    pub ctcp: Range<usize>,
}

/// Bytes that never appear inside one IRC message.
fn forbidden(b: u8) -> bool {
    matches!(b, 0 | b'\r' | b'\n' | 0x01)
}

/// Decimal digits at `s[i..]`: (value, end). At most `max_digits` digits, none is refused.
fn digits(s: &[u8], i: usize, max_digits: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut j = i;
    while j < s.len() && s[j].is_ascii_digit() {
        if j - i == max_digits {
            return None;
        }
        v = v * 10 + u64::from(s[j] - b'0');
        j += 1;
    }
    (j > i).then_some((v, j))
}

/// Parse one offer whose opening `\x01` is at `start`.
fn parse_at(data: &[u8], start: usize) -> Option<DccOffer> {
    let mut i = start + 1;
    let dcc = data.get(i..i + 4)?;
    if !dcc.eq_ignore_ascii_case(b"DCC ") {
        return None;
    }
    i += 4;
    let head_end = (i + MAX_HEAD).min(data.len());
    // Type word.
    let t0 = i;
    while i < head_end && data[i] != b' ' && !forbidden(data[i]) {
        i += 1;
    }
    let kind = DccKind::parse(&data[t0..i])?;
    if data.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    // Argument: a quoted name (spaces allowed inside) or one word.
    if data.get(i) == Some(&b'"') {
        i += 1;
        while i < head_end && data[i] != b'"' && !forbidden(data[i]) {
            i += 1;
        }
        if data.get(i) != Some(&b'"') {
            return None;
        }
        i += 1;
    } else {
        let a0 = i;
        while i < head_end && data[i] != b' ' && !forbidden(data[i]) {
            i += 1;
        }
        if i == a0 {
            return None;
        }
    }
    if i >= head_end || data[i] != b' ' {
        return None;
    }
    i += 1;
    // Address (decimal u32) and port.
    let a0 = i;
    let (addr, j) = digits(data, i, 10)?;
    let addr = u32::try_from(addr).ok()?;
    if data.get(j) != Some(&b' ') {
        return None;
    }
    let (port, j) = digits(data, j + 1, 5)?;
    let port = u16::try_from(port).ok()?;
    let range = a0..j;
    // Optional trailing arguments, then the closing \x01.
    let mut k = j;
    if data.get(k) == Some(&b' ') {
        let tail_end = (k + MAX_TAIL).min(data.len());
        while k < tail_end && !forbidden(data[k]) {
            k += 1;
        }
    }
    if data.get(k) != Some(&0x01) {
        return None;
    }
    Some(DccOffer {
        kind,
        range,
        addr: Ipv4Addr::from(addr),
        port,
        ctcp: start..k + 1,
    })
}

/// Every DCC offer in `data`, in order. Offers never overlap: scanning resumes after an
/// offer's closing `\x01`.
pub fn scan(data: &[u8]) -> Vec<DccOffer> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = data[i..].iter().position(|&b| b == 0x01) {
        let start = i + off;
        match parse_at(data, start) {
            Some(o) => {
                i = o.ctcp.end;
                out.push(o);
            }
            None => i = start + 1,
        }
        if i >= data.len() {
            break;
        }
    }
    out
}

/// The replacement `<address> <port>` text: the address as a decimal u32, as DCC wants it.
pub fn format_endpoint(addr: Ipv4Addr, port: u16) -> String {
    format!("{} {port}", u32::from(addr))
}

/// Is this offer one the masquerade may map? A non-zero port, and the address of the client
/// itself (`inside`) or the masquerade address (a client that learnt it, as netfilter allows).
pub fn mappable(o: &DccOffer, inside: Ipv4Addr, maddr: Ipv4Addr) -> bool {
    o.port != 0 && (o.addr == inside || o.addr == maddr)
}

/// Rewrite the mappable offers of `data` (outbound client data) to `maddr` and the masquerade
/// port `map` gives for each (None: leave that offer as it is, e.g. no port free). Returns the
/// new payload, or None when nothing changed. Offers naming another address are left alone
/// (netfilter's "Forged DCC").
pub fn rewrite(
    data: &[u8],
    inside: Ipv4Addr,
    maddr: Ipv4Addr,
    mut map: impl FnMut(&DccOffer) -> Option<u16>,
) -> Option<Vec<u8>> {
    let offers = scan(data);
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for o in &offers {
        if !mappable(o, inside, maddr) {
            continue;
        }
        let Some(mport) = map(o) else { continue };
        let buf = out.get_or_insert_with(|| Vec::with_capacity(data.len() + 16));
        buf.extend_from_slice(&data[copied..o.range.start]);
        buf.extend_from_slice(format_endpoint(maddr, mport).as_bytes());
        copied = o.range.end;
    }
    let mut buf = out?;
    buf.extend_from_slice(&data[copied..]);
    Some(buf)
}

/// Longest unterminated offer [`Joiner`] holds back: the longest offer [`scan`] accepts.
pub const MAX_PENDING: usize = 1 + 4 + MAX_HEAD + 1 + 10 + 1 + 5 + MAX_TAIL + 1;

/// Where an unterminated DCC offer starts at the end of `data` (the offset of its opening
/// `\x01`): the text from there on is a beginning of `\x01DCC <type> …` that a later segment
/// may complete. None when the end of `data` is not inside such an offer.
pub fn pending_start(data: &[u8]) -> Option<usize> {
    let s = data.iter().rposition(|&b| b == 0x01)?;
    // The closing \x01 of a complete offer is no start.
    if scan(data).last().is_some_and(|o| o.ctcp.end > s) {
        return None;
    }
    let rest = &data[s..];
    if rest.len() > MAX_PENDING || rest[1..].iter().any(|&b| forbidden(b)) {
        return None;
    }
    const OPEN: &[u8] = b"\x01DCC ";
    if rest.len() <= OPEN.len() {
        return rest.eq_ignore_ascii_case(&OPEN[..rest.len()]).then_some(s);
    }
    if !rest[..OPEN.len()].eq_ignore_ascii_case(OPEN) {
        return None;
    }
    let after = &rest[OPEN.len()..];
    let ok = match after.iter().position(|&b| b == b' ') {
        Some(n) => DccKind::parse(&after[..n]).is_some(),
        None => DccKind::ALL.iter().any(|k| {
            let w = k.as_str().as_bytes();
            after.len() <= w.len() && after.eq_ignore_ascii_case(&w[..after.len()])
        }),
    };
    ok.then_some(s)
}

/// Payload a joined segment may always have: TCP's default MSS (RFC 1122 §4.2.2.6, 576-byte
/// datagrams), which every path carries. Larger when the segments joined were larger.
const MIN_ROOM: usize = 536;

/// Bytes held back: an unterminated offer at `seq` (client sequence space).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    seq: u32,
    bytes: Vec<u8>,
    /// Payload size of the segment they came from (the join may use as much).
    room: usize,
}

/// Joins a DCC offer split across TCP segments, so that [`rewrite`] sees it whole (2.2,
/// netfilter and libalias leave such an offer unmasqueraded). Sans-IO, one per IRC connection,
/// fed every outbound segment in the client's sequence space; it returns what to send instead.
///
/// A segment ending inside an offer ([`pending_start`]) is sent without that tail, which is
/// held; the next segment, when it continues exactly there, is sent with the held bytes in
/// front (at the held sequence number). Nothing is ever lost: held bytes not yet sent are not
/// acknowledged, so the client still has them. If the client retransmits the held bytes (its
/// timer ran out: e.g. Nagle waits for the ack of the bytes held) or sends beyond them (a
/// segment went missing), the hold is given up for good at that sequence number and the
/// segment passes as it is; the offer then goes unmasqueraded, as on 2.2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joiner {
    held: Option<Held>,
    /// Sequence number of an offer given up: never held again.
    released: Option<u32>,
}

impl Joiner {
    /// True while bytes are held.
    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// Feed one outbound segment: sequence number, payload, and whether its end may be held
    /// (no SYN, FIN or RST). Returns the sequence number and payload to send in its place
    /// (the payload may be empty: an ack without data).
    pub fn segment(&mut self, seq: u32, data: &[u8], may_hold: bool) -> (u32, Vec<u8>) {
        let (seq, out, room) = match self.held.take() {
            Some(h) => {
                let end = h.seq.wrapping_add(h.bytes.len() as u32);
                if seq == end && !data.is_empty() {
                    let room = h.room.max(data.len()).max(MIN_ROOM);
                    let mut joined = h.bytes;
                    joined.extend_from_slice(data);
                    if joined.len() <= room {
                        (h.seq, joined, room)
                    } else {
                        // Too big for one segment: up to the end of the first whole offer (and
                        // its CR LF); the client retransmits the rest. Not with a FIN to keep.
                        let cut = scan(&joined).first().map(|o| {
                            let e = o.ctcp.end;
                            if joined[e..].starts_with(b"\r\n") {
                                e + 2
                            } else {
                                e
                            }
                        });
                        match cut {
                            Some(c) if c <= room && may_hold => {
                                joined.truncate(c);
                                (h.seq, joined, room)
                            }
                            _ => {
                                self.released = Some(h.seq);
                                (seq, data.to_vec(), data.len())
                            }
                        }
                    }
                } else if seq == h.seq || seq_after(seq, end) {
                    // Retransmitted (timer) or overtaken (loss): give up this offer.
                    self.released = Some(h.seq);
                    (seq, data.to_vec(), data.len())
                } else {
                    // A pure ack or older data: the hold stays, unless this segment carries
                    // held bytes again (then it may hold them anew below).
                    let data_end = seq.wrapping_add(data.len() as u32);
                    if data.is_empty() || !seq_after(data_end, h.seq) {
                        self.held = Some(h);
                    }
                    (seq, data.to_vec(), data.len())
                }
            }
            None => (seq, data.to_vec(), data.len()),
        };
        let mut out = out;
        if may_hold {
            if let Some(off) = pending_start(&out) {
                let hseq = seq.wrapping_add(off as u32);
                let keep = self.held.as_ref().is_none_or(|h| h.seq == hseq);
                if self.released != Some(hseq) && keep {
                    self.held = Some(Held {
                        seq: hseq,
                        bytes: out.split_off(off),
                        room,
                    });
                }
            }
        }
        (seq, out)
    }
}

/// `after(a, b)` of the kernel: a is later than b in sequence space.
fn seq_after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    const LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const MASQ: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

    fn lan_u32() -> u32 {
        u32::from(LAN)
    }

    #[test]
    fn send_and_chat_are_found_with_their_ranges() {
        let line = format!(
            "PRIVMSG bob :\x01DCC SEND notes.txt {} 5000 12345\x01\r\n",
            lan_u32()
        );
        let o = scan(line.as_bytes());
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].kind, DccKind::Send);
        assert_eq!(o[0].addr, LAN);
        assert_eq!(o[0].port, 5000);
        assert_eq!(&line.as_bytes()[o[0].range.clone()], b"3232235786 5000");
        assert_eq!(line.as_bytes()[o[0].ctcp.start], 0x01);
        assert_eq!(line.as_bytes()[o[0].ctcp.end - 1], 0x01);
        let chat = b"PRIVMSG bob :\x01DCC CHAT chat 3232235786 4000\x01\r\n";
        let o = scan(chat);
        assert_eq!((o.len(), o[0].kind, o[0].port), (1, DccKind::Chat, 4000));
    }

    #[test]
    fn all_2_2_types_any_case_quoted_names_and_tokens() {
        for (text, kind) in [
            ("\x01DCC MOVE f 1 2 3\x01", DccKind::Move),
            ("\x01DCC TSEND f 1 2 3\x01", DccKind::TSend),
            ("\x01DCC SCHAT chat 1 2\x01", DccKind::SChat),
            ("\x01dcc send f 1 2 3\x01", DccKind::Send),
            ("\x01Dcc Chat chat 1 2\x01", DccKind::Chat),
            ("\x01DCC SEND \"my file.txt\" 1 2 3\x01", DccKind::Send),
            // Passive (reverse) DCC answer: size and token after the port.
            ("\x01DCC SEND f 1 2 3 77\x01", DccKind::Send),
            // No size (old clients).
            ("\x01DCC SEND f 1 2\x01", DccKind::Send),
        ] {
            let o = scan(text.as_bytes());
            assert_eq!(o.len(), 1, "{text:?}");
            assert_eq!(
                (o[0].kind, o[0].addr, o[0].port),
                (kind, Ipv4Addr::from(1), 2)
            );
        }
    }

    #[test]
    fn several_offers_in_one_segment() {
        let data = format!(
            "PRIVMSG a :\x01DCC SEND x {l} 5000 10\x01\r\nPRIVMSG b :hello\r\n\
             PRIVMSG c :\x01DCC CHAT chat {l} 5001\x01\r\nNOTICE d :\x01DCC SEND y {l} 5002 1\x01\r\n",
            l = lan_u32()
        );
        let o = scan(data.as_bytes());
        let ports: Vec<u16> = o.iter().map(|o| o.port).collect();
        assert_eq!(ports, [5000, 5001, 5002]);
        let mut next = 61000;
        let out = rewrite(data.as_bytes(), LAN, MASQ, |_| {
            next += 1;
            Some(next - 1)
        })
        .expect("rewritten");
        let expect = format!(
            "PRIVMSG a :\x01DCC SEND x {m} 61000 10\x01\r\nPRIVMSG b :hello\r\n\
             PRIVMSG c :\x01DCC CHAT chat {m} 61001\x01\r\nNOTICE d :\x01DCC SEND y {m} 61002 1\x01\r\n",
            m = u32::from(MASQ)
        );
        assert_eq!(String::from_utf8_lossy(&out), expect);
    }

    #[test]
    fn malformed_offers_are_left_untouched() {
        for bad in [
            // No closing \x01 (a line split across segments, or garbage).
            &b"PRIVMSG b :\x01DCC SEND f 3232235786 5000 10"[..],
            b"PRIVMSG b :\x01DCC SEND f 3232235786 5000 10\r\n",
            // Unknown type, missing argument, missing port, letters in numbers.
            b"\x01DCC FOO f 3232235786 5000\x01",
            b"\x01DCC SEND 3232235786 5000\x01",
            b"\x01DCC SEND f 3232235786\x01",
            b"\x01DCC SEND f 32322x5786 5000\x01",
            b"\x01DCC SEND f 3232235786 50a0\x01",
            // No CTCP start; DCC without its \x01.
            b"PRIVMSG b :DCC SEND f 3232235786 5000 1\x01",
            // Unterminated quote; CR inside.
            b"\x01DCC SEND \"f 3232235786 5000 1\x01",
            b"\x01DCC SEND f\r 3232235786 5000 1\x01",
            // Huge numbers: address over u32, port over u16, too many digits.
            b"\x01DCC SEND f 4294967296 5000 1\x01",
            b"\x01DCC SEND f 99999999999999999999 5000 1\x01",
            b"\x01DCC SEND f 3232235786 65536 1\x01",
            b"\x01DCC SEND f 3232235786 000000005000 1\x01",
        ] {
            assert_eq!(scan(bad), vec![], "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(rewrite(bad, LAN, MASQ, |_| Some(61000)), None);
        }
        // Largest legal numbers still parse; a huge size after the port is just text.
        let o = scan(b"\x01DCC SEND f 4294967295 65535 999999999999999999999999\x01");
        assert_eq!(
            (o[0].addr, o[0].port),
            (Ipv4Addr::new(255, 255, 255, 255), 65535)
        );
    }

    #[test]
    fn only_the_senders_own_address_and_a_real_port_are_mapped() {
        let other = u32::from(Ipv4Addr::new(192, 168, 1, 99));
        let forged = format!("\x01DCC SEND f {other} 5000 1\x01");
        assert_eq!(scan(forged.as_bytes()).len(), 1);
        assert_eq!(rewrite(forged.as_bytes(), LAN, MASQ, |_| Some(61000)), None);
        // Port 0: a passive request, nothing to map.
        let passive = format!("\x01DCC SEND f {} 0 100 7\x01", lan_u32());
        assert_eq!(
            rewrite(passive.as_bytes(), LAN, MASQ, |_| Some(61000)),
            None
        );
        // Already the masquerade address (client learnt it): mapped all the same.
        let learnt = format!("\x01DCC CHAT chat {} 5000\x01", u32::from(MASQ));
        let out = rewrite(learnt.as_bytes(), LAN, MASQ, |_| Some(61005)).expect("mapped");
        assert_eq!(
            out,
            format!("\x01DCC CHAT chat {} 61005\x01", u32::from(MASQ)).as_bytes()
        );
        // map() refusing (no port free) leaves the text.
        let ok = format!("\x01DCC CHAT chat {} 5000\x01", lan_u32());
        assert_eq!(rewrite(ok.as_bytes(), LAN, MASQ, |_| None), None);
    }

    #[test]
    fn length_changes_both_ways() {
        // "1.0.0.1" (16777217) on port 1 grows; a 10-digit address with port 65535 may shrink.
        let short = format!("\x01DCC SEND f {} 1 1\x01", lan_u32());
        let out = rewrite(short.as_bytes(), LAN, Ipv4Addr::new(1, 0, 0, 1), |_| {
            Some(61000)
        })
        .expect("rewritten");
        assert_eq!(out, b"\x01DCC SEND f 16777217 61000 1\x01");
        assert_eq!(format_endpoint(Ipv4Addr::new(0, 0, 0, 1), 1), "1 1");
        assert_eq!(
            format_endpoint(Ipv4Addr::new(255, 255, 255, 255), 65535),
            "4294967295 65535"
        );
    }

    #[test]
    fn pending_start_finds_unterminated_offers_only() {
        let l = lan_u32();
        for (data, want) in [
            (format!("PRIVMSG b :\x01DCC SEND f {l} 50"), Some(11)),
            ("PRIVMSG b :\x01".to_string(), Some(11)),
            ("PRIVMSG b :\x01dc".to_string(), Some(11)),
            ("PRIVMSG b :\x01DCC".to_string(), Some(11)),
            ("PRIVMSG b :\x01DCC SCH".to_string(), Some(11)),
            (
                "x\x01DCC CHAT chat 1 2\x01\r\nPRIVMSG b :\x01DCC S".to_string(),
                Some(33),
            ),
            // Not DCC, a complete offer, a finished line, an unknown type.
            ("PRIVMSG b :\x01ACTION waves".to_string(), None),
            (format!("PRIVMSG b :\x01DCC SEND f {l} 5000 1\x01"), None),
            (format!("PRIVMSG b :\x01DCC SEND f {l} 5000 1\r\n"), None),
            ("PRIVMSG b :\x01DCC FOO f".to_string(), None),
            ("no ctcp at all".to_string(), None),
        ] {
            assert_eq!(pending_start(data.as_bytes()), want, "{data:?}");
        }
        let long = format!("\x01DCC SEND {} 1 2", "n".repeat(MAX_PENDING));
        assert_eq!(
            pending_start(long.as_bytes()),
            None,
            "longer than any offer"
        );
    }

    #[test]
    fn an_offer_split_across_segments_is_joined() {
        let line = format!(
            "PRIVMSG bob :hi\r\nPRIVMSG bob :\x01DCC SEND f {} 5000 12\x01\r\n",
            lan_u32()
        );
        let b = line.as_bytes();
        for cut in 1..b.len() {
            let mut j = Joiner::default();
            let (s1, o1) = j.segment(1000, &b[..cut], true);
            let (s2, o2) = j.segment(1000 + cut as u32, &b[cut..], true);
            assert!(!j.holding());
            // Contiguous, nothing lost, and the offer whole in one of them.
            assert_eq!(s1, 1000);
            assert_eq!(s2, 1000 + o1.len() as u32, "cut {cut}");
            assert_eq!([o1.clone(), o2.clone()].concat(), b, "cut {cut}");
            assert!(
                scan(&o1).len() + scan(&o2).len() == 1,
                "cut {cut}: {:?} | {:?}",
                String::from_utf8_lossy(&o1),
                String::from_utf8_lossy(&o2)
            );
        }
    }

    #[test]
    fn a_hold_is_given_up_on_retransmission_loss_or_no_room() {
        let head = b"PRIVMSG bob :\x01DCC CHAT chat 3232235786 50";
        let rest = b"00\x01\r\n";
        // Retransmission of the held bytes (the client's timer): sent as they are, for good.
        let mut j = Joiner::default();
        let (_, o) = j.segment(1, head, true);
        assert_eq!(o, b"PRIVMSG bob :");
        assert!(j.holding());
        let (s, o) = j.segment(14, &head[13..], true);
        assert_eq!((s, &o[..]), (14, &head[13..]));
        assert!(!j.holding());
        let (_, o) = j.segment(14, &head[13..], true);
        assert_eq!(o, &head[13..], "not held again");
        // A segment beyond the held bytes (one was lost): the hold is given up.
        let mut j = Joiner::default();
        j.segment(1, head, true);
        let beyond = 1 + head.len() as u32 + 10;
        let (s, o) = j.segment(beyond, b"PING x\r\n", true);
        assert_eq!((s, &o[..]), (beyond, &b"PING x\r\n"[..]));
        assert!(!j.holding());
        // A pure ack or an older retransmission keeps the hold; a FIN segment is not held.
        let mut j = Joiner::default();
        j.segment(1, head, true);
        assert_eq!(j.segment(1 + head.len() as u32, b"", true).1, b"");
        assert_eq!(j.segment(1, b"PRIVMSG bob :", true).1, b"PRIVMSG bob :");
        assert!(j.holding());
        let (s, o) = j.segment(1 + head.len() as u32, rest, false);
        assert_eq!((s, o), (14, [&head[13..], &rest[..]].concat()));
        let mut j = Joiner::default();
        assert_eq!(j.segment(1, head, false).1, head);
        // The continuation carries more than fits: cut after the offer, the client resends
        // the rest.
        let mut j = Joiner::default();
        j.segment(1, head, true);
        let big = [&rest[..], &[b'x'; 600][..]].concat();
        let (s, o) = j.segment(1 + head.len() as u32, &big, true);
        assert_eq!((s, o), (14, [&head[13..], &rest[..]].concat()));
    }

    /// Random text mixed with well-formed and damaged offers.
    fn payload() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..24),
            (
                0usize..5,
                any::<bool>(),
                prop_oneof![Just(LAN), any::<u32>().prop_map(Ipv4Addr::from)],
                any::<u16>(),
                proptest::option::of(any::<u64>()),
                any::<bool>(),
            )
                .prop_map(|(k, lower, addr, port, size, close)| {
                    let kind = ["SEND", "CHAT", "MOVE", "TSEND", "SCHAT"][k];
                    let mut s = format!(
                        "PRIVMSG x :\x01DCC {kind} \"a b\" {} {port}",
                        u32::from(addr)
                    );
                    if lower {
                        s = s.to_ascii_lowercase();
                    }
                    if let Some(n) = size {
                        s.push_str(&format!(" {n}"));
                    }
                    if close {
                        s.push('\x01');
                    }
                    s.push_str("\r\n");
                    s.into_bytes()
                }),
        ];
        proptest::collection::vec(piece, 0..6).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        /// Rewriting then scanning gives back every offer, the mapped ones with the masquerade
        /// address and their new port, the others unchanged; every byte outside the rewritten
        /// ranges is kept; without a mappable offer the payload is byte-identical.
        #[test]
        fn rewrite_then_scan_gives_the_masqueraded_endpoints(
            data in payload(),
            maddr in proptest::prelude::any::<u32>().prop_map(Ipv4Addr::from),
            base in 1u16..60000,
        ) {
            let before = scan(&data);
            let mut given = Vec::new();
            let out = rewrite(&data, LAN, maddr, |o| {
                let p = base + given.len() as u16;
                given.push((o.range.clone(), p));
                Some(p)
            });
            let Some(out) = out else {
                proptest::prop_assert!(given.is_empty());
                proptest::prop_assert!(before.iter().all(|o| !mappable(o, LAN, maddr)));
                return Ok(());
            };
            let after = scan(&out);
            proptest::prop_assert_eq!(after.len(), before.len());
            let mut g = given.iter();
            let mut shift: isize = 0;
            let mut last = 0usize;
            for (b, a) in before.iter().zip(&after) {
                proptest::prop_assert_eq!(a.kind, b.kind);
                // Bytes between rewritten ranges are the same, shifted.
                let (bs, as_) = (b.range.start, a.range.start);
                proptest::prop_assert_eq!(as_ as isize, bs as isize + shift);
                proptest::prop_assert_eq!(&out[(last as isize + shift) as usize..as_], &data[last..bs]);
                if mappable(b, LAN, maddr) {
                    let (r, p) = g.next().cloned().expect("mapped in order");
                    proptest::prop_assert_eq!(r, b.range.clone());
                    proptest::prop_assert_eq!((a.addr, a.port), (maddr, p));
                } else {
                    proptest::prop_assert_eq!((a.addr, a.port), (b.addr, b.port));
                }
                shift += a.range.len() as isize - b.range.len() as isize;
                last = b.range.end;
            }
            proptest::prop_assert_eq!(&out[(last as isize + shift) as usize..], &data[last..]);
        }

        /// A client stream cut into segments at random, sent in order, with the sender
        /// retransmitting from its first unacknowledged byte when it has nothing new: every
        /// byte the joiner sends is the stream's byte at that sequence number, the receiver
        /// gets the whole stream, and with segments at least twice an offer's length every
        /// offer of the stream crosses whole in one segment.
        #[test]
        fn joiner_loses_nothing_and_joins_split_offers(
            data in payload(),
            sizes in proptest::collection::vec(1usize..200, 1..40),
            big in proptest::prelude::any::<bool>(),
        ) {
            let isn: u32 = 4_000_000_000;
            let mut j = Joiner::default();
            let (mut una, mut nxt) = (0usize, 0usize);
            let mut got = vec![None::<u8>; data.len()];
            let mut seen = Vec::new();
            for k in 0..(4 * data.len() + 64) {
                if una >= data.len() {
                    break;
                }
                let size = if big { sizes[k % sizes.len()] + 400 } else { sizes[k % sizes.len()] };
                let from = if nxt < data.len() { nxt } else { una };
                let to = (from + size).min(data.len());
                let (s, out) = j.segment(isn.wrapping_add(from as u32), &data[from..to], true);
                nxt = nxt.max(to);
                let at = s.wrapping_sub(isn) as usize;
                proptest::prop_assert!(at + out.len() <= data.len());
                proptest::prop_assert_eq!(&out[..], &data[at..at + out.len()]);
                for (n, &b) in out.iter().enumerate() {
                    got[at + n] = Some(b);
                }
                while una < data.len() && got[una].is_some() {
                    una += 1;
                }
                for o in scan(&out) {
                    seen.push((o.range.start + at, o.port));
                }
            }
            proptest::prop_assert_eq!(una, data.len(), "stream delivered");
            if big {
                for o in scan(&data) {
                    proptest::prop_assert!(
                        seen.contains(&(o.range.start, o.port)),
                        "offer at {} never crossed whole", o.range.start
                    );
                }
            }
        }

        /// Payload without a CTCP start byte is never changed.
        #[test]
        fn text_without_ctcp_is_never_touched(data in proptest::collection::vec(2u8.., 0..300)) {
            proptest::prop_assert!(scan(&data).is_empty());
            proptest::prop_assert_eq!(rewrite(&data, LAN, MASQ, |_| Some(61000)), None);
        }
    }
}
