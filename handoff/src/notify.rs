//! Messages to the service manager over `NOTIFY_SOCKET` (sd_notify(3)).
//!
//! Every function is a no-op returning `Ok` when `NOTIFY_SOCKET` is unset.

use std::io;

use sd_notify::NotifyState;

/// First start: the service listens and serves.
pub(crate) fn ready() -> io::Result<()> {
    sd_notify::notify(&[NotifyState::Ready])
}

/// This process is now the service's main process (after a handoff, or when an
/// aborted handoff gives the role back to the old process).
pub(crate) fn main_process_is(pid: u32) -> io::Result<()> {
    sd_notify::notify(&[NotifyState::MainPid(pid), NotifyState::Ready])
}

/// The service is shutting down.
pub(crate) fn stopping() -> io::Result<()> {
    sd_notify::notify(&[NotifyState::Stopping])
}
