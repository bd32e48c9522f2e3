//! The contract between an old process and the successor it starts.
//!
//! The successor is the same program, started with the same arguments and
//! environment plus:
//!
//! - the listening sockets at fds `3, 4, …` and [`ENV_LISTENERS`] naming them
//!   (a JSON array of strings, in fd order);
//! - one end of a Unix stream socket pair at the fd given by [`ENV_READY_FD`],
//!   the *readiness channel*;
//! - [`ENV_PARENT_PID`], the old process's pid. The successor trusts the fds only
//!   when this equals its parent pid, so the variables leaking into an unrelated
//!   grandchild are ignored.
//!
//! Over the readiness channel, one line each:
//!
//! 1. successor → `ready`: it owns the listeners and can serve;
//! 2. old → `commit`: the old process will not kill it any more;
//! 3. successor → `notified` once it wrote the pidfile and sent `MAINPID` +
//!    `READY=1` to `NOTIFY_SOCKET`, or `failed <reason>`.
//!
//! The old process stops accepting only after `notified`, so systemd learns the
//! new main pid before the old one exits, and a successor is never killed after
//! it may have told systemd it is the main process without the old process
//! restoring `MAINPID` to itself.

use std::os::fd::RawFd;

/// JSON array of listener names, one per fd from [`FIRST_FD`].
pub(crate) const ENV_LISTENERS: &str = "HANDOFF_LISTENERS";
/// The fd number of the successor's end of the readiness channel.
pub(crate) const ENV_READY_FD: &str = "HANDOFF_READY_FD";
/// The pid of the process that started the successor.
pub(crate) const ENV_PARENT_PID: &str = "HANDOFF_PARENT_PID";
/// systemd's socket activation variables; removed from the successor's environment.
pub(crate) const SYSTEMD_LISTEN_VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];
/// The first passed fd, as with systemd's `SD_LISTEN_FDS_START`.
pub(crate) const FIRST_FD: RawFd = 3;

/// One line on the readiness channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Ready,
    Commit,
    Notified,
    Failed(String),
}

impl Message {
    /// The line to write, newline included.
    pub(crate) fn encode(&self) -> String {
        match self {
            Message::Ready => "ready\n".to_owned(),
            Message::Commit => "commit\n".to_owned(),
            Message::Notified => "notified\n".to_owned(),
            Message::Failed(reason) => format!("failed {}\n", reason.replace('\n', " ")),
        }
    }

    /// Parses one line (without its newline); `None` for anything unknown.
    pub(crate) fn decode(line: &str) -> Option<Message> {
        match line {
            "ready" => Some(Message::Ready),
            "commit" => Some(Message::Commit),
            "notified" => Some(Message::Notified),
            other => other
                .strip_prefix("failed ")
                .map(|reason| Message::Failed(reason.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_reasons_stay_on_one_line() {
        for message in [
            Message::Ready,
            Message::Commit,
            Message::Notified,
            Message::Failed("pidfile: denied\nsecond line".into()),
        ] {
            let line = message.encode();
            assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            let decoded = Message::decode(line.trim_end_matches('\n')).unwrap();
            match (&message, decoded) {
                (Message::Failed(_), Message::Failed(reason)) => {
                    assert_eq!(reason, "pidfile: denied second line")
                }
                (expected, decoded) => assert_eq!(*expected, decoded),
            }
        }
        assert_eq!(Message::decode("hello"), None);
    }
}
