//! The Linux 2.2 ip_masq TCP state machine (states, the 8×10 transition table, names). Owns
//! transitions only; timeouts live in [`super::Timeouts`].

/// Masquerade entry states (TCP states, then the UDP and ICMP pseudo-states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum State {
    /// No packet seen that sets a state.
    None = 0,
    /// Established.
    Established = 1,
    /// SYN sent by the inside host.
    SynSent = 2,
    /// SYN received from outside.
    SynRecv = 3,
    /// FIN sent by the inside host.
    FinWait = 4,
    /// Both sides closing.
    TimeWait = 5,
    /// Closed (RST seen).
    Close = 6,
    /// FIN received from outside.
    CloseWait = 7,
    /// Last ACK awaited.
    LastAck = 8,
    /// Expected connection (helper-created data entry).
    Listen = 9,
    /// UDP entry.
    Udp = 10,
    /// ICMP entry.
    Icmp = 11,
}

/// Number of TCP states.
pub const TCP_STATES: usize = 10;

impl State {
    /// The 2.2 name (`ESTABLISHED`, `SYN_SENT`, …, `UDP`, `ICMP`).
    pub fn name(self) -> &'static str {
        match self {
            State::None => "NONE",
            State::Established => "ESTABLISHED",
            State::SynSent => "SYN_SENT",
            State::SynRecv => "SYN_RECV",
            State::FinWait => "FIN_WAIT",
            State::TimeWait => "TIME_WAIT",
            State::Close => "CLOSE",
            State::CloseWait => "CLOSE_WAIT",
            State::LastAck => "LAST_ACK",
            State::Listen => "LISTEN",
            State::Udp => "UDP",
            State::Icmp => "ICMP",
        }
    }
    /// From the stored byte.
    pub fn from_u8(v: u8) -> State {
        const ALL: [State; 12] = [
            State::None,
            State::Established,
            State::SynSent,
            State::SynRecv,
            State::FinWait,
            State::TimeWait,
            State::Close,
            State::CloseWait,
            State::LastAck,
            State::Listen,
            State::Udp,
            State::Icmp,
        ];
        ALL.get(usize::from(v)).copied().unwrap_or(State::None)
    }
}

use State::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `masq_tcp_states[]` of Linux 2.2 ip_masq.c: `[dir][flag][state]`, dir 0 = input (outside →
/// inside), 1 = output; flag index syn, fin, ack, rst.
const TABLE: [[[State; TCP_STATES]; 4]; 2] = [
    [
        //  sNO sES sSS sSR sFW sTW sCL sCW sLA sLI
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR], // syn
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI], // fin
        [CL, ES, SS, SR, FW, TW, CL, CW, CL, LI], // ack
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI], // rst
    ],
    [
        [SS, ES, SS, ES, SS, SS, SS, SS, SS, LI], // syn
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI], // fin
        [ES, ES, SS, SR, FW, TW, CL, CW, LA, ES], // ack
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL], // rst
    ],
];

/// Next state for a segment with `flags` (TCP flag bits) in direction `outbound`.
/// Priority RST > SYN > FIN > ACK as `masq_tcp_state_idx`; a segment with none of the four
/// (state index -1) goes to CLOSE, as 2.2's `masq_tcp_state` does (`new_state` starts as
/// `IP_MASQ_S_CLOSE`). UDP and ICMP pseudo-states are left alone.
pub fn next(state: State, outbound: bool, flags: u16) -> State {
    use crate::wire::tcp::{FLG_ACK, FLG_FIN, FLG_RST, FLG_SYN};
    let s = state as usize;
    if s >= TCP_STATES {
        return state;
    }
    let idx = if flags & FLG_RST != 0 {
        3
    } else if flags & FLG_SYN != 0 {
        0
    } else if flags & FLG_FIN != 0 {
        1
    } else if flags & FLG_ACK != 0 {
        2
    } else {
        return State::Close;
    };
    TABLE[usize::from(outbound)][idx][s]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::{FLG_ACK, FLG_FIN, FLG_RST, FLG_SYN};

    #[test]
    fn handshake_and_close() {
        let s = next(State::None, true, FLG_SYN);
        assert_eq!(s, State::SynSent);
        let s = next(s, false, FLG_SYN | FLG_ACK);
        assert_eq!(s, State::Established);
        let s = next(s, true, FLG_ACK);
        assert_eq!(s, State::Established);
        let s = next(s, true, FLG_FIN | FLG_ACK);
        assert_eq!(s, State::FinWait);
        let s = next(s, false, FLG_FIN | FLG_ACK);
        assert_eq!(s, State::TimeWait);
        assert_eq!(next(State::Established, false, FLG_FIN), State::CloseWait);
        assert_eq!(
            next(State::Established, true, FLG_RST | FLG_ACK),
            State::Close
        );
        // No SYN/FIN/ACK/RST: CLOSE (2.2 masq_tcp_state with state index -1).
        assert_eq!(next(State::Established, true, 0), State::Close);
        assert_eq!(next(State::Udp, true, 0), State::Udp);
        assert_eq!(next(State::Listen, false, FLG_SYN), State::SynRecv);
    }
}
