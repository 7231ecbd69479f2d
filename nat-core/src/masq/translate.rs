//! Packet translation for the masquerade table: outbound masquerading, inbound demasquerading,
//! ICMP query ids and ICMP error translation (outer and embedded headers), TCP sequence fixes
//! and application-helper payload rewriting. Owns header rewriting; must not evaluate rules.

use super::{
    pidx, Idx, MasqError, MasqTable, F_LOOSE, F_NO_DADDR, F_NO_DPORT, F_NO_SPORT, F_PASV, NIL,
};
use crate::helpers::{self, ftp, HelperAction};
use crate::time::Instant;
use crate::wire::{self, checksum, icmp, ipv4, proto, tcp, udp, WireError};
use std::net::Ipv4Addr;

/// Why a packet could not be (de)masqueraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// Bad IPv4/transport header.
    #[error("malformed packet: {0}")]
    Wire(#[from] WireError),
    /// TCP/UDP/ICMP checksum invalid (2.2 verifies before rewriting).
    #[error("bad checksum")]
    BadChecksum,
    /// A fragment reached the translator (reassemble first).
    #[error("fragment")]
    Fragment,
    /// Not TCP, UDP or a masqueradable ICMP message.
    #[error("protocol not masqueradable")]
    Unsupported,
    /// No entry could be created.
    #[error(transparent)]
    Masq(#[from] MasqError),
    /// An ICMP error whose embedded packet matches no entry (RFC 5508 REQ-4: drop it).
    #[error("ICMP error without mapping")]
    NoMapping,
}

/// Outcome of [`MasqTable::demasquerade`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demasq {
    /// Rewritten toward the inside host.
    Translated,
    /// Not for a masquerade entry (deliver locally).
    NotOurs,
}

impl MasqTable {
    /// Masquerade an outbound (inside → outside) datagram in place: source address and port
    /// (ICMP: id) rewritten, checksums updated, helpers run. `buf` holds one whole IPv4
    /// datagram whose header checksum was verified.
    pub fn masquerade(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<Idx, TranslateError> {
        let maddr = self.addr.ok_or(MasqError::NoAddress)?;
        let ip = ipv4::Packet::new_checked(&buf[..])?;
        if ip.is_fragment() {
            return Err(TranslateError::Fragment);
        }
        let (hl, tl) = (ip.header_len(), usize::from(ip.total_len()));
        let (src, dst, p) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
        match p {
            proto::UDP => {
                let (sp, dp) = {
                    let u = udp::Packet::new_checked(&buf[hl..tl])?;
                    if !u.verify_checksum(src, dst) {
                        return Err(TranslateError::BadChecksum);
                    }
                    (u.src_port(), u.dst_port())
                };
                let i = match self.lookup_out(now, p, src, sp, dst, dp) {
                    Some(i) => i,
                    None => self.create_out(now, p, src, sp, dst, dp)?,
                };
                self.touch(now, i);
                self.account(i, tl);
                self.permit(i, dst, dp);
                let mport = self.entries[i as usize].mport;
                let mut ipm = ipv4::Packet::new_unchecked(&mut buf[..]);
                ipm.rewrite_src_addr(maddr);
                let mut u = udp::Packet::new_unchecked(&mut buf[hl..tl]);
                u.update_for_addr(src, maddr);
                u.rewrite_src_port(mport);
                Ok(i)
            }
            proto::TCP => {
                let (sp, dp, flags) = {
                    let t = tcp::Packet::new_checked(&buf[hl..tl])?;
                    if !t.verify_checksum(src, dst) {
                        return Err(TranslateError::BadChecksum);
                    }
                    (t.src_port(), t.dst_port(), t.flags())
                };
                let i = match self.lookup_out(now, p, src, sp, dst, dp) {
                    Some(i) => i,
                    None => self.create_out(now, p, src, sp, dst, dp)?,
                };
                self.tcp_update(now, i, true, flags);
                self.account(i, tl);
                self.permit(i, dst, dp);
                if self.entries[i as usize].ext != NIL {
                    return self.masquerade_tcp_slow(now, buf, i, maddr);
                }
                let mport = self.entries[i as usize].mport;
                let mut ipm = ipv4::Packet::new_unchecked(&mut buf[..]);
                ipm.rewrite_src_addr(maddr);
                let mut t = tcp::Packet::new_unchecked(&mut buf[hl..tl]);
                t.update_for_addr(src, maddr);
                t.rewrite_src_port(mport);
                Ok(i)
            }
            proto::ICMP => {
                let (ty, code, id) = {
                    let m = icmp::Packet::new_checked(&buf[hl..tl])?;
                    if !m.verify_checksum() {
                        return Err(TranslateError::BadChecksum);
                    }
                    (m.msg_type(), m.msg_code(), m.echo_ident())
                };
                if icmp::is_error(ty) {
                    return self.masquerade_icmp_error(buf, hl, tl, maddr);
                }
                if !icmp::is_query_request(ty) {
                    return Err(TranslateError::Unsupported);
                }
                let key = (u16::from(ty) << 8) | u16::from(code);
                let i = match self.lookup_out(now, p, src, id, dst, key) {
                    Some(i) => i,
                    None => self.create(now, p, src, id, dst, key, 0, None)?,
                };
                self.touch(now, i);
                self.account(i, tl);
                let mport = self.entries[i as usize].mport;
                let mut ipm = ipv4::Packet::new_unchecked(&mut buf[..]);
                ipm.rewrite_src_addr(maddr);
                icmp::Packet::new_unchecked(&mut buf[hl..tl]).rewrite_echo_ident(mport);
                Ok(i)
            }
            _ => Err(TranslateError::Unsupported),
        }
    }

    fn create_out(
        &mut self,
        now: Instant,
        p: u8,
        src: Ipv4Addr,
        sp: u16,
        dst: Ipv4Addr,
        dp: u16,
    ) -> Result<Idx, TranslateError> {
        let i = self.create(now, p, src, sp, dst, dp, 0, None)?;
        // 2.2: the helper registered for (proto, dport) is bound on entry creation.
        if let Some(h) = self.helpers.lookup(p, dp) {
            self.bind_helper(i, h);
        }
        Ok(i)
    }

    /// TCP with sequence adjustment and/or a helper: fix seq/ack, run the helper, splice the
    /// payload, recompute checksums.
    fn masquerade_tcp_slow(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        i: Idx,
        maddr: Ipv4Addr,
    ) -> Result<Idx, TranslateError> {
        let ip = ipv4::Packet::new_unchecked(&buf[..]);
        let (hl, tl) = (ip.header_len(), usize::from(ip.total_len()));
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let t = tcp::Packet::new_unchecked(&buf[hl..tl]);
        let thl = t.header_len();
        let mut orig_seq = t.seq_number();
        let ack = t.ack_number();
        let ack_flag = t.ack();
        let may_hold = t.flags() & (tcp::FLG_SYN | tcp::FLG_FIN | tcp::FLG_RST) == 0;
        let mport = self.entries[i as usize].mport;
        let x = self.ext(i).cloned().unwrap_or_default();
        let mut tl = tl;
        let mut diff = 0i32;
        if x.helper == Some(helpers::IRC) && (tl > hl + thl || x.irc.is_some()) {
            // Join a DCC offer split across segments, then rewrite (may move seq and length).
            (tl, orig_seq, diff) =
                self.irc_out(now, buf, i, (hl + thl, tl), orig_seq, may_hold, maddr);
        }
        // 2.2 masq_fix_seq: seq += delta if after init_seq, else previous_delta.
        let new_seq = if x.out_seq_on {
            let d = if seq_after(orig_seq, x.out_seq.init_seq) {
                x.out_seq.delta
            } else {
                x.out_seq.previous_delta
            };
            orig_seq.wrapping_add(d as u32)
        } else {
            orig_seq
        };
        let new_ack = if x.in_seq_on && ack_flag {
            fix_ack(ack, &x.in_seq)
        } else {
            ack
        };
        // Helper.
        if x.helper == Some(helpers::FTP) && tl > hl + thl {
            let payload = &buf[hl + thl..tl];
            match ftp::scan_outbound(payload) {
                Some(HelperAction::Port {
                    range,
                    addr,
                    port,
                    eprt,
                }) => {
                    let e = self.entries[i as usize];
                    let server = Ipv4Addr::from(e.daddr);
                    let data = match self.lookup_out(now, proto::TCP, addr, port, server, 0) {
                        Some(d) => Some(d),
                        None => self
                            .create(now, proto::TCP, addr, port, server, 0, F_NO_DPORT, None)
                            .ok(),
                    };
                    if let Some(d) = data {
                        self.set_control(d, i);
                        let dport = self.entries[d as usize].mport;
                        let text = ftp::format_port(maddr, dport, eprt);
                        let start = hl + thl + range.start;
                        let end = hl + thl + range.end;
                        let old_len = end - start;
                        if tl - old_len + text.len() <= 65535 {
                            buf.splice(start..end, text.bytes());
                            diff = text.len() as i32 - old_len as i32;
                        }
                    }
                }
                Some(HelperAction::Pasv) => self.set_flag(i, F_PASV, true),
                _ => {}
            }
        }
        let tl = (tl as i32 + diff) as usize;
        buf.truncate(tl.max(hl));
        {
            let mut ipm = ipv4::Packet::new_unchecked(&mut buf[..]);
            ipm.set_total_len(tl as u16);
            ipm.set_src_addr(maddr);
            ipm.fill_checksum();
            let mut t = tcp::Packet::new_unchecked(&mut buf[hl..tl]);
            t.set_src_port(mport);
            t.set_seq_number(new_seq);
            t.set_ack_number(new_ack);
            t.fill_checksum(maddr, dst);
        }
        let _ = src;
        if diff != 0 {
            // 2.2 masq_seq_update: first time, or seq after init_seq.
            let xm = self.ext_mut(i);
            if !xm.out_seq_on || seq_after(orig_seq, xm.out_seq.init_seq) {
                xm.out_seq.previous_delta = xm.out_seq.delta;
                xm.out_seq.delta = xm.out_seq.delta.wrapping_add(diff);
                xm.out_seq.init_seq = orig_seq;
                xm.out_seq_on = true;
            }
            self.note_updated(i);
        }
        Ok(i)
    }

    /// 2.2 `masq_irc_out`, for the TCP payload `buf[start..end]` at client sequence `seq`: an
    /// offer split across segments is joined first ([`helpers::irc::Joiner`]); then every DCC
    /// offer that names the client gets a listening entry (`NO_DADDR|NO_DPORT`: the first
    /// remote to connect to its masquerade port reaches the client's port) and is rewritten to
    /// the masquerade address and port. The payload in `buf` is replaced; returns the total
    /// length before the rewrite, the sequence number the payload now starts at, and the
    /// rewrite's length change.
    #[allow(clippy::too_many_arguments)]
    fn irc_out(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        i: Idx,
        (start, end): (usize, usize),
        seq: u32,
        may_hold: bool,
        maddr: Ipv4Addr,
    ) -> (usize, u32, i32) {
        let mut joiner = self.ext_mut(i).irc.take().unwrap_or_default();
        let (seq, data) = joiner.segment(seq, &buf[start..end], may_hold);
        if *joiner != helpers::irc::Joiner::default() {
            self.ext_mut(i).irc = Some(joiner);
        }
        let inside = Ipv4Addr::from(self.entries[i as usize].saddr);
        let any = Ipv4Addr::UNSPECIFIED;
        let new = helpers::irc::rewrite(&data, inside, maddr, |o| {
            let d = match self.lookup_out(now, proto::TCP, inside, o.port, any, 0) {
                Some(d) => d,
                None => {
                    let f = F_LOOSE | F_NO_DADDR | F_NO_DPORT;
                    // No entry (table full, no port): the offer stays as it is.
                    self.create(now, proto::TCP, inside, o.port, any, 0, f, None)
                        .ok()?
                }
            };
            Some(self.entries[d as usize].mport)
        });
        let before = start + data.len();
        buf.truncate(start);
        match new {
            Some(new) if start + new.len() <= 65535 => {
                let diff = new.len() as i32 - data.len() as i32;
                buf.extend_from_slice(&new);
                (before, seq, diff)
            }
            _ => {
                buf.extend_from_slice(&data);
                (before, seq, 0)
            }
        }
    }

    /// An inside host reports an error about a packet we demasqueraded to it: rewrite the
    /// embedded (inbound) header and the outer source symmetrically (2.2 bypasses forward).
    fn masquerade_icmp_error(
        &mut self,
        buf: &mut [u8],
        hl: usize,
        tl: usize,
        maddr: Ipv4Addr,
    ) -> Result<Idx, TranslateError> {
        let inner = hl + icmp::HEADER_LEN;
        let (ip_, ihl, s, d, sp, dp) = parse_embedded(&buf[inner..tl])?;
        // Embedded is remote → inside: inside = d:dp, remote = s:sp.
        let i = self
            .find_out(ip_, u32::from(d), dp, u32::from(s), sp)
            .or_else(|| self.find_out(ip_, u32::from(d), dp, 0, 0))
            .ok_or(TranslateError::NoMapping)?;
        let mport = self.entries[i as usize].mport;
        {
            let e = &mut buf[inner..tl];
            let mut iph = ipv4::Packet::new_unchecked(&mut *e);
            iph.rewrite_dst_addr(maddr);
            set_port(&mut e[ihl..], ip_, false, mport, d, maddr);
        }
        let mut ipm = ipv4::Packet::new_unchecked(&mut buf[..]);
        ipm.rewrite_src_addr(maddr);
        icmp::Packet::new_unchecked(&mut buf[hl..tl]).fill_checksum();
        Ok(i)
    }

    /// Demasquerade an inbound datagram addressed to the masquerade address, in place.
    pub fn demasquerade(&mut self, now: Instant, buf: &mut [u8]) -> Result<Demasq, TranslateError> {
        let ip = ipv4::Packet::new_checked(&buf[..])?;
        if ip.is_fragment() {
            return Err(TranslateError::Fragment);
        }
        let (hl, tl) = (ip.header_len(), usize::from(ip.total_len()));
        let (src, dst, p) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
        if Some(dst) != self.addr {
            return Ok(Demasq::NotOurs);
        }
        match p {
            proto::UDP | proto::TCP => {
                let (sp, dp, flags) = if p == proto::UDP {
                    let u = udp::Packet::new_checked(&buf[hl..tl])?;
                    (u.src_port(), u.dst_port(), 0)
                } else {
                    let t = tcp::Packet::new_checked(&buf[hl..tl])?;
                    (t.src_port(), t.dst_port(), t.flags())
                };
                // 2.2: only ports of the masquerade range are looked at.
                if !self.pools[pidx(p)].range.contains(dp) {
                    return Ok(Demasq::NotOurs);
                }
                let Some(i) = self.lookup_in(now, p, dp, src, sp) else {
                    return Ok(Demasq::NotOurs);
                };
                let ok = if p == proto::UDP {
                    udp::Packet::new_unchecked(&buf[hl..tl]).verify_checksum(src, dst)
                } else {
                    tcp::Packet::new_unchecked(&buf[hl..tl]).verify_checksum(src, dst)
                };
                if !ok {
                    return Err(TranslateError::BadChecksum);
                }
                self.saw_reply(i);
                let e = self.entries[i as usize];
                let inside = Ipv4Addr::from(e.saddr);
                if p == proto::TCP {
                    self.tcp_update(now, i, false, flags);
                    self.account(i, tl);
                    if e.ext != NIL {
                        self.demasq_tcp_slow(now, buf, i, inside)?;
                        return Ok(Demasq::Translated);
                    }
                } else {
                    self.touch(now, i);
                    self.account(i, tl);
                }
                let mut ipm = ipv4::Packet::new_unchecked(&mut buf[..]);
                ipm.rewrite_dst_addr(inside);
                if p == proto::UDP {
                    let mut u = udp::Packet::new_unchecked(&mut buf[hl..tl]);
                    u.update_for_addr(dst, inside);
                    u.rewrite_dst_port(e.sport);
                } else {
                    let mut t = tcp::Packet::new_unchecked(&mut buf[hl..tl]);
                    t.update_for_addr(dst, inside);
                    t.rewrite_dst_port(e.sport);
                }
                Ok(Demasq::Translated)
            }
            proto::ICMP => {
                let (ty, code, id, ok) = {
                    let m = icmp::Packet::new_checked(&buf[hl..tl])?;
                    (
                        m.msg_type(),
                        m.msg_code(),
                        m.echo_ident(),
                        m.verify_checksum(),
                    )
                };
                if icmp::is_error(ty) {
                    // RFC 5508 REQ-3: check the ICMP checksum before translating an error.
                    if !ok {
                        return Err(TranslateError::BadChecksum);
                    }
                    return self.demasq_icmp_error(buf, hl, tl);
                }
                let Some(req) = icmp::reply_to_request(ty) else {
                    return Ok(Demasq::NotOurs);
                };
                if !ok {
                    return Err(TranslateError::BadChecksum);
                }
                let key = (u16::from(req) << 8) | u16::from(code);
                let Some(i) = self.lookup_in(now, p, id, src, key) else {
                    return Ok(Demasq::NotOurs);
                };
                self.saw_reply(i);
                self.touch(now, i);
                self.account(i, tl);
                let e = self.entries[i as usize];
                let inside = Ipv4Addr::from(e.saddr);
                ipv4::Packet::new_unchecked(&mut buf[..]).rewrite_dst_addr(inside);
                icmp::Packet::new_unchecked(&mut buf[hl..tl]).rewrite_echo_ident(e.sport);
                Ok(Demasq::Translated)
            }
            _ => Ok(Demasq::NotOurs),
        }
    }

    fn demasq_tcp_slow(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        i: Idx,
        inside: Ipv4Addr,
    ) -> Result<(), TranslateError> {
        let ip = ipv4::Packet::new_unchecked(&buf[..]);
        let (hl, tl) = (ip.header_len(), usize::from(ip.total_len()));
        let src = ip.src_addr();
        let t = tcp::Packet::new_unchecked(&buf[hl..tl]);
        let thl = t.header_len();
        let (seq, ack, ack_flag) = (t.seq_number(), t.ack_number(), t.ack());
        let e = self.entries[i as usize];
        let x = self.ext(i).cloned().unwrap_or_default();
        let new_ack = if x.out_seq_on && ack_flag {
            fix_ack(ack, &x.out_seq)
        } else {
            ack
        };
        let new_seq = if x.in_seq_on {
            let d = if seq_after(seq, x.in_seq.init_seq) {
                x.in_seq.delta
            } else {
                x.in_seq.previous_delta
            };
            seq.wrapping_add(d as u32)
        } else {
            seq
        };
        if x.helper == Some(helpers::FTP) && e.flags & F_PASV != 0 && tl > hl + thl {
            if let Some((addr, port)) = ftp::scan_inbound(&buf[hl + thl..tl], src) {
                // 2.2: pre-create inside-host:0 → server:port with NO_SPORT, controlled.
                self.set_flag(i, F_PASV, false);
                if let Ok(d) = self.create(now, proto::TCP, inside, 0, addr, port, F_NO_SPORT, None)
                {
                    self.set_control(d, i);
                }
            }
        }
        let mut ipm = ipv4::Packet::new_unchecked(&mut buf[..]);
        ipm.set_dst_addr(inside);
        ipm.fill_checksum();
        let mut t = tcp::Packet::new_unchecked(&mut buf[hl..tl]);
        t.set_dst_port(e.sport);
        t.set_seq_number(new_seq);
        t.set_ack_number(new_ack);
        t.fill_checksum(src, inside);
        Ok(())
    }

    /// Inbound ICMP error about one of our masqueraded packets: rewrite outer destination,
    /// embedded source address and port (or id) back to the inside host. The entry is not
    /// refreshed (RFC 5508 REQ-6 / RFC 4787 REQ-12: ICMP never keeps a mapping alive).
    fn demasq_icmp_error(
        &mut self,
        buf: &mut [u8],
        hl: usize,
        tl: usize,
    ) -> Result<Demasq, TranslateError> {
        let inner = hl + icmp::HEADER_LEN;
        let (ip_, ihl, s, d, sp, dp) = parse_embedded(&buf[inner..tl])?;
        if Some(s) != self.addr {
            return Ok(Demasq::NotOurs);
        }
        // Embedded: maddr:mport → remote d:dp (ICMP: id = mport, key = type<<8|code).
        let i = self
            .find_in(ip_, sp, u32::from(d), dp)
            .or_else(|| self.find_in(ip_, sp, 0, 0))
            .ok_or(TranslateError::NoMapping)?;
        let e = self.entries[i as usize];
        let inside = Ipv4Addr::from(e.saddr);
        {
            let emb = &mut buf[inner..tl];
            ipv4::Packet::new_unchecked(&mut *emb).rewrite_src_addr(inside);
            set_port(&mut emb[ihl..], ip_, true, e.sport, s, inside);
        }
        ipv4::Packet::new_unchecked(&mut buf[..]).rewrite_dst_addr(inside);
        icmp::Packet::new_unchecked(&mut buf[hl..tl]).fill_checksum();
        Ok(Demasq::Translated)
    }
}

/// Parse the IP header + first 8 bytes embedded in an ICMP error. Returns (proto, ihl, src,
/// dst, sport-or-id, dport-or-type<<8|code).
fn parse_embedded(b: &[u8]) -> Result<(u8, usize, Ipv4Addr, Ipv4Addr, u16, u16), TranslateError> {
    if b.len() < ipv4::HEADER_LEN {
        return Err(WireError::Truncated.into());
    }
    let ip = ipv4::Packet::new_unchecked(b);
    let ihl = ip.header_len();
    if ip.version() != 4 || ihl < ipv4::HEADER_LEN {
        return Err(WireError::Malformed.into());
    }
    if b.len() < ihl + 8 {
        return Err(WireError::Truncated.into());
    }
    let t = &b[ihl..];
    let (sp, dp) = match ip.protocol() {
        proto::TCP | proto::UDP => wire::ports(ip.protocol(), t).ok_or(WireError::Truncated)?,
        proto::ICMP => {
            let m = icmp::Packet::new_unchecked(t);
            if !icmp::is_query_request(m.msg_type()) {
                return Err(TranslateError::Unsupported);
            }
            (
                m.echo_ident(),
                (u16::from(m.msg_type()) << 8) | u16::from(m.msg_code()),
            )
        }
        _ => return Err(TranslateError::Unsupported),
    };
    Ok((ip.protocol(), ihl, ip.src_addr(), ip.dst_addr(), sp, dp))
}

/// Rewrite the embedded transport port (source if `src`, else destination) or ICMP id, keeping
/// the embedded UDP/ICMP checksum consistent when present (the TCP checksum lies beyond the
/// 8 bytes an ICMP error must carry and is left alone, as 2.2 does).
fn set_port(t: &mut [u8], p: u8, src: bool, v: u16, old_addr: Ipv4Addr, new_addr: Ipv4Addr) {
    match p {
        proto::UDP => {
            let mut u = udp::Packet::new_unchecked(t);
            let old = if src { u.src_port() } else { u.dst_port() };
            if src {
                u.set_src_port(v);
            } else {
                u.set_dst_port(v);
            }
            let c = u.checksum();
            if c != 0 {
                let c = checksum::update_u16(c, old, v);
                let c = checksum::update_addr(c, old_addr, new_addr);
                u.set_checksum(if c == 0 { 0xFFFF } else { c });
            }
        }
        proto::TCP => {
            // The quote may stop before the checksum (bytes 16..18): only 8 bytes are required.
            let whole = t.len() >= tcp::CHECKSUM_END;
            let mut h = tcp::Packet::new_unchecked(t);
            let old = if src { h.src_port() } else { h.dst_port() };
            if src {
                h.set_src_port(v);
            } else {
                h.set_dst_port(v);
            }
            if whole {
                let c = checksum::update_u16(h.checksum(), old, v);
                h.set_checksum(checksum::update_addr(c, old_addr, new_addr));
            }
        }
        _ => icmp::Packet::new_unchecked(t).rewrite_echo_ident(v),
    }
}

/// `after(a, b)` of the kernel: a is later than b in sequence space.
#[inline]
fn seq_after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

/// 2.2 `masq_fix_ack_seq`: subtract delta if ack is after init_seq + delta, else previous.
#[inline]
fn fix_ack(ack: u32, r: &super::SeqRecord) -> u32 {
    if seq_after(ack, r.init_seq.wrapping_add(r.delta as u32)) {
        ack.wrapping_sub(r.delta as u32)
    } else {
        ack.wrapping_sub(r.previous_delta as u32)
    }
}
