//! What happens to a process, as reported to the service and in logs.

use std::fmt;

/// What asked for an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRequest {
    /// The upgrade signal (SIGUSR2 unless configured otherwise), by number.
    Signal(i32),
    /// [`Handoff::request_upgrade`](crate::Handoff::request_upgrade).
    Call,
}

impl fmt::Display for UpgradeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeRequest::Signal(signal) => write!(f, "{}", signal_name(*signal)),
            UpgradeRequest::Call => f.write_str("request_upgrade call"),
        }
    }
}

/// Why a process is draining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainReason {
    /// A shutdown signal (by number) or [`Handoff::shutdown`](crate::Handoff::shutdown) (`None`).
    Shutdown {
        /// The signal, if one caused it.
        signal: Option<i32>,
    },
    /// A successor took over the listeners.
    Upgraded {
        /// The successor's pid.
        successor: u32,
    },
}

impl fmt::Display for DrainReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrainReason::Shutdown { signal: Some(s) } => {
                write!(f, "shutdown on {}", signal_name(*s))
            }
            DrainReason::Shutdown { signal: None } => f.write_str("shutdown requested"),
            DrainReason::Upgraded { successor } => write!(f, "upgraded to pid {successor}"),
        }
    }
}

/// The process that took over after a successful [`Handoff::upgrade`](crate::Handoff::upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Successor {
    /// Its pid; it is the service's main process now.
    pub pid: u32,
}

/// How this process came to serve, as reported by [`Handoff::ready`](crate::Handoff::ready).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Not started by an upgrade (first start, possibly socket-activated).
    Fresh,
    /// Took over from an old process, which now drains and exits.
    TookOver {
        /// The old process's pid.
        predecessor: u32,
    },
}

/// "SIGUSR2" for 12, or "signal N" for numbers nix does not know.
pub(crate) fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}
