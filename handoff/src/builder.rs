//! Configuring and starting [`Handoff`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::signal::unix::SignalKind;

use crate::error::StartError;
use crate::executable::Executable;
use crate::lifecycle::Handoff;
use crate::state::{Config, Shared};
use crate::{inherit, signals};

/// Set by the first [`HandoffBuilder::start`]: inherited fds are adopted once.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Configures and starts [`Handoff`]. Obtain it from [`Handoff::builder`].
#[derive(Debug)]
pub struct HandoffBuilder {
    upgrade_signal: SignalKind,
    ready_timeout: Duration,
    pidfile: Option<PathBuf>,
    executable: Option<PathBuf>,
    backlog: i32,
}

impl Default for HandoffBuilder {
    fn default() -> Self {
        HandoffBuilder {
            upgrade_signal: SignalKind::user_defined2(),
            ready_timeout: Duration::from_secs(30),
            pidfile: None,
            executable: None,
            backlog: 1024,
        }
    }
}

impl HandoffBuilder {
    /// The signal that requests an upgrade (default SIGUSR2). SIGTERM and SIGINT
    /// are reserved for shutdown.
    pub fn upgrade_signal(mut self, signal: SignalKind) -> Self {
        self.upgrade_signal = signal;
        self
    }

    /// How long the old process waits for a successor to report ready, and then
    /// again for it to announce itself, before killing it (default 30 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Keep a pidfile at `path` naming the process currently serving.
    pub fn pidfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.pidfile = Some(path.into());
        self
    }

    /// Run this program on upgrade instead of the one resolved from `argv[0]`.
    pub fn executable(mut self, path: impl Into<PathBuf>) -> Self {
        self.executable = Some(path.into());
        self
    }

    /// The `listen(2)` backlog of freshly bound sockets (default 1024). Inherited
    /// sockets keep theirs.
    pub fn listen_backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Starts handoff for this process: resolves the program to run on upgrade,
    /// takes ownership of inherited sockets (from an old process, or systemd
    /// socket activation when `LISTEN_PID` is this process) and installs the
    /// signal handlers (upgrade signal; SIGTERM/SIGINT shut down gracefully, a
    /// second one exits at once with status 128+signal).
    ///
    /// Call it once per process, early, inside a Tokio runtime.
    ///
    /// # Errors
    /// See [`StartError`]; every variant means the process cannot hand over
    /// safely and should exit.
    pub fn start(self) -> Result<Handoff, StartError> {
        tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let raw = self.upgrade_signal.as_raw_value();
        if raw == SignalKind::terminate().as_raw_value()
            || raw == SignalKind::interrupt().as_raw_value()
        {
            return Err(StartError::SignalConflict(raw));
        }
        let executable = match &self.executable {
            Some(path) => Executable::at_path(path)?,
            None => Executable::of_current_process()?,
        };
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(StartError::AlreadyStarted);
        }
        let inherited = inherit::from_environment()?;
        tracing::info!(
            pid = std::process::id(),
            program = %executable.path.display(),
            inherited = inherited.sockets.len(),
            predecessor = inherited.predecessor.as_ref().map(|p| p.pid),
            "handoff started"
        );
        let config = Config {
            ready_timeout: self.ready_timeout,
            pidfile: self.pidfile,
            executable,
            backlog: self.backlog,
        };
        let shared = Arc::new(Shared::new(config, inherited));
        signals::install(Arc::clone(&shared), self.upgrade_signal)?;
        Ok(Handoff::from_shared(shared))
    }
}
