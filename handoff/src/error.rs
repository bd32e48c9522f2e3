//! Errors of each step, each naming the problem and what to do about it.

use std::ffi::OsString;
use std::io;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::events::DrainReason;

/// [`HandoffBuilder::start`](crate::HandoffBuilder::start) failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `start` was called a second time in this process.
    #[error(
        "handoff was already started in this process; call Handoff::start once and clone the handle"
    )]
    AlreadyStarted,
    /// Not called from inside a Tokio runtime.
    #[error("handoff must be started inside a Tokio runtime (e.g. from #[tokio::main])")]
    NoRuntime,
    /// The upgrade signal is one of the shutdown signals.
    #[error(
        "signal {0} cannot trigger upgrades: SIGTERM and SIGINT are the shutdown signals; pick e.g. SIGUSR2 or SIGHUP"
    )]
    SignalConflict(i32),
    /// A signal handler could not be installed.
    #[error("cannot listen for signal {signal}: {source}")]
    Signal {
        /// The signal number.
        signal: i32,
        /// The underlying error.
        source: io::Error,
    },
    /// The program path for upgrades could not be determined.
    #[error(
        "cannot tell which program to run on upgrade from argv[0] {argv0:?}: {problem}; \
         or set it with HandoffBuilder::executable"
    )]
    Executable {
        /// The process's `argv[0]`.
        argv0: OsString,
        /// What went wrong.
        problem: String,
    },
    /// An environment variable of the handoff or socket activation protocol is malformed.
    #[error(
        "environment variable {variable} {problem}; it is set by the previous process or systemd \
         and must not be set by hand"
    )]
    Environment {
        /// The variable.
        variable: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// An fd the environment names is not open.
    #[error(
        "fd {fd} named by {named_by} is not usable: {source}; it must be passed open to this process"
    )]
    InheritedFd {
        /// The fd number.
        fd: RawFd,
        /// The variable naming it.
        named_by: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

/// [`Handoff::listen`](crate::Handoff::listen) failed.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The name is already used by a listener of this process.
    #[error(
        "a listener named `{0}` was already opened by this process; give each listener its own name"
    )]
    DuplicateName(String),
    /// An inherited socket has the name but is of the other kind (TCP vs Unix).
    #[error(
        "the socket named `{name}` inherited from {source_desc} is {inherited}, not {wanted}; \
         make the listen address match the socket unit or the previous version's configuration"
    )]
    KindMismatch {
        /// The listener name.
        name: String,
        /// Where it came from.
        source_desc: &'static str,
        /// What was inherited.
        inherited: Endpoint,
        /// What was asked for.
        wanted: Endpoint,
    },
    /// Binding a fresh socket failed.
    #[error(
        "cannot listen on {endpoint}: {source}{hint}; stop whatever holds the address or choose another one"
    )]
    Bind {
        /// The address.
        endpoint: Endpoint,
        /// The underlying error.
        source: io::Error,
        /// Inherited sockets nobody claimed yet, listed when there are any.
        hint: String,
    },
    /// Registering the socket with the Tokio runtime (or duplicating it) failed.
    #[error(
        "cannot use the socket for {endpoint}: {source}; is this called inside a Tokio runtime?"
    )]
    Register {
        /// The address.
        endpoint: Endpoint,
        /// The underlying error.
        source: io::Error,
    },
}

/// [`Handoff::ready`](crate::Handoff::ready) failed; the process should exit
/// non-zero (the old process, if any, keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// The old process gave up on this upgrade before committing.
    #[error(
        "the previous process (pid {predecessor}) abandoned the upgrade before handing over \
         (it timed out or is shutting down); it keeps serving, this process must exit"
    )]
    Abandoned {
        /// The old process.
        predecessor: u32,
    },
    /// The readiness channel to the old process failed.
    #[error(
        "lost the readiness channel to the previous process (pid {predecessor}): {source}; this process must exit"
    )]
    Channel {
        /// The old process.
        predecessor: u32,
        /// The underlying error.
        source: io::Error,
    },
    /// The pidfile could not be written.
    #[error(
        "cannot write pidfile {path}: {source}; make sure its directory exists and is writable"
    )]
    Pidfile {
        /// The pidfile path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// `NOTIFY_SOCKET` is set but the message could not be sent.
    #[error(
        "cannot notify the service manager via NOTIFY_SOCKET: {0}; check the unit's NotifyAccess= (use `all`)"
    )]
    Notify(#[source] io::Error),
}

/// [`Handoff::upgrade`](crate::Handoff::upgrade) did not hand over. Unless
/// stated otherwise, this process keeps serving and can upgrade again.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Another upgrade is in flight; this request is ignored.
    #[error("an upgrade is already in progress; this request is ignored")]
    InProgress,
    /// The process has not called `ready` yet.
    #[error("the service is not ready yet; upgrades start after Handoff::ready")]
    NotReady,
    /// The process is draining and cannot upgrade any more.
    #[error("the service is draining ({0}); it cannot upgrade any more")]
    Draining(DrainReason),
    /// The listeners could not be prepared for passing.
    #[error("cannot pass the listeners to a new process: {0}")]
    PassFds(#[source] io::Error),
    /// The program could not be started.
    #[error(
        "cannot start {path}: {source}; check that the file exists and is executable \
         (the service runs the path it was started from)"
    )]
    Spawn {
        /// The program path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The new process exited before handing over.
    #[error(
        "the new process (pid {pid}) exited with {status} before it was ready; see its log output"
    )]
    ChildExited {
        /// The new process.
        pid: u32,
        /// How it exited.
        status: ExitStatus,
    },
    /// The new process did not report ready in time and was killed.
    #[error(
        "the new process (pid {pid}) did not report ready within {timeout:?} and was killed; \
         fix its start-up or raise the ready timeout"
    )]
    Timeout {
        /// The new process.
        pid: u32,
        /// The ready timeout.
        timeout: Duration,
    },
    /// The new process reported a failure while taking over and was killed.
    #[error("the new process (pid {pid}) failed to take over: {reason}; it was killed")]
    ChildFailed {
        /// The new process.
        pid: u32,
        /// Its reason.
        reason: String,
    },
    /// The readiness channel broke.
    #[error("the readiness channel to the new process (pid {pid}) failed: {source}; it was killed")]
    Channel {
        /// The new process.
        pid: u32,
        /// The underlying error.
        source: io::Error,
    },
    /// Shutdown was requested while the new process was starting; it was killed
    /// and this process drains.
    #[error("shutdown was requested during the upgrade; the new process (pid {pid}) was killed")]
    Cancelled {
        /// The new process.
        pid: u32,
    },
}
