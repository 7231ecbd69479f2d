//! The stable metric labels of dial outcomes: the link side names its own failures, and the
//! counters ([`crate::counters`]) only store them.

/// The `kind` label of a dial that ended in `k`; `None` for ends that are not dial failures
/// (carrier lost, echo timeout, idle or connect-time hang-ups of a link that was up).
pub fn dial_failure_kind(k: crate::link::FailureKind) -> Option<&'static str> {
    use crate::link::FailureKind as F;
    Some(match k {
        F::NoModem | F::ModemError => "modem",
        F::NoDialtone => "no_dialtone",
        F::Busy => "busy",
        F::NoAnswer => "no_answer",
        F::NoCarrier => "no_carrier",
        F::Timeout => "timeout",
        F::LcpFailed => "lcp",
        F::AuthFailed => "auth",
        F::IpcpFailed => "ipcp",
        F::Cancelled => "cancelled",
        F::CarrierLost | F::EchoTimeout | F::IdleTimeout | F::MaxConnectTime => return None,
    })
}

/// The `kind` label of a chat attempt that failed and will be redialled.
pub fn chat_failure_kind(k: masqdial_at::ChatFailure) -> &'static str {
    use masqdial_at::ChatFailure as C;
    match k {
        C::NoDialtone => "no_dialtone",
        C::Busy => "busy",
        C::NoAnswer => "no_answer",
        C::NoCarrier => "no_carrier",
        C::Error => "modem",
        C::Timeout => "timeout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_kinds() {
        use crate::link::FailureKind as F;
        assert_eq!(dial_failure_kind(F::Busy), Some("busy"));
        assert_eq!(dial_failure_kind(F::NoModem), Some("modem"));
        assert_eq!(dial_failure_kind(F::CarrierLost), None);
        assert_eq!(dial_failure_kind(F::IdleTimeout), None);
    }
}
