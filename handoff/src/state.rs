//! The state shared by a [`Handoff`](crate::Handoff) handle, its signal task
//! and upgrades: the phase machine (starting → serving ⇄ upgrading → draining).

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::draining::Draining;
use crate::error::UpgradeError;
use crate::events::{DrainReason, Started, UpgradeRequest};
use crate::executable::Executable;
use crate::inherit::{Inherited, Predecessor};
use crate::registry::Registry;
use crate::{notify, pidfile};

/// Settings fixed at start.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) ready_timeout: Duration,
    pub(crate) pidfile: Option<PathBuf>,
    pub(crate) executable: Executable,
    pub(crate) backlog: i32,
}

/// Where a process is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Before `ready`.
    Starting,
    Serving {
        pending: Option<UpgradeRequest>,
    },
    Upgrading,
    Draining(DrainReason),
}

/// State shared by the handle, the signal task and upgrades.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) phase: Mutex<Phase>,
    /// Wakes `upgrade_requested` waiters on any phase change that matters to them.
    pub(crate) wakeup: Notify,
    pub(crate) draining: Draining,
    /// Fires on shutdown requests; aborts an upgrade that has not committed.
    pub(crate) shutdown: CancellationToken,
    pub(crate) registry: Mutex<Registry>,
    /// The readiness channel, until `ready` takes it.
    pub(crate) predecessor: Mutex<Option<Predecessor>>,
    pub(crate) predecessor_pid: Option<u32>,
    /// Set once `ready` succeeded.
    pub(crate) started: OnceCell<Started>,
}

impl Shared {
    pub(crate) fn new(config: Config, inherited: Inherited) -> Self {
        Shared {
            config,
            phase: Mutex::new(Phase::Starting),
            wakeup: Notify::new(),
            draining: Draining::new(),
            shutdown: CancellationToken::new(),
            registry: Mutex::new(Registry::new(inherited.sockets)),
            predecessor_pid: inherited.predecessor.as_ref().map(|p| p.pid),
            predecessor: Mutex::new(inherited.predecessor),
            started: OnceCell::new(),
        }
    }

    /// An upgrade request from a signal or a call: pending while serving,
    /// merged if one is pending, logged and ignored otherwise.
    pub(crate) fn request_upgrade(&self, request: UpgradeRequest) {
        let pid = std::process::id();
        let mut phase = lock(&self.phase);
        match &mut *phase {
            Phase::Serving { pending: Some(_) } => {
                tracing::info!(
                    pid,
                    "upgrade requested ({request}) while one is pending; merged"
                );
            }
            Phase::Serving { pending } => {
                tracing::info!(pid, "upgrade requested ({request})");
                *pending = Some(request);
                self.wakeup.notify_waiters();
            }
            Phase::Upgrading => tracing::warn!(
                pid,
                "upgrade requested ({request}) while an upgrade is in progress; ignored"
            ),
            Phase::Starting => tracing::warn!(
                pid,
                "upgrade requested ({request}) before the service is ready; ignored"
            ),
            Phase::Draining(reason) => tracing::warn!(
                pid,
                "upgrade requested ({request}) while draining ({reason}); ignored"
            ),
        }
    }

    /// Starts a graceful shutdown (idempotent); sends `STOPPING=1` the first time.
    pub(crate) fn request_shutdown(&self, signal: Option<i32>) {
        self.shutdown.cancel();
        if self.begin_drain(DrainReason::Shutdown { signal })
            && let Err(e) = notify::stopping()
        {
            tracing::warn!("cannot send STOPPING=1 to NOTIFY_SOCKET: {e}");
        }
    }

    /// Serving → upgrading, or why no upgrade can start now.
    pub(crate) fn begin_upgrade(&self) -> Result<(), UpgradeError> {
        let mut phase = lock(&self.phase);
        match &*phase {
            Phase::Serving { .. } => {
                *phase = Phase::Upgrading;
                Ok(())
            }
            Phase::Starting => Err(UpgradeError::NotReady),
            Phase::Upgrading => Err(UpgradeError::InProgress),
            Phase::Draining(reason) => Err(UpgradeError::Draining(reason.clone())),
        }
    }

    /// Upgrading → serving (unless draining began meanwhile).
    pub(crate) fn end_failed_upgrade(&self) {
        let mut phase = lock(&self.phase);
        if matches!(*phase, Phase::Upgrading) {
            *phase = Phase::Serving { pending: None };
        }
    }

    /// Moves to draining (an upgrade's success overrides a shutdown reason, as the
    /// successor owns the pidfile then). Returns whether draining started now.
    pub(crate) fn begin_drain(&self, reason: DrainReason) -> bool {
        let mut phase = lock(&self.phase);
        let started_now = !matches!(*phase, Phase::Draining(_));
        if started_now || matches!(reason, DrainReason::Upgraded { .. }) {
            tracing::info!(pid = std::process::id(), "draining: {reason}");
            *phase = Phase::Draining(reason);
        }
        drop(phase);
        // Nothing more goes to successors; drop this process's extra copies so
        // that on shutdown the sockets close as soon as the servers drop theirs.
        lock(&self.registry).clear();
        self.draining.start();
        self.wakeup.notify_waiters();
        started_now
    }

    /// Copies of the listeners for a successor, in registration order.
    pub(crate) fn successor_fds(&self) -> std::io::Result<Vec<(String, OwnedFd)>> {
        lock(&self.registry).successor_fds()
    }

    /// After a successor failed past the commit point it may have claimed the
    /// main-process role: take it back (pidfile and `MAINPID`).
    pub(crate) fn reclaim_main_process(&self) {
        let pid = std::process::id();
        if let Some(path) = &self.config.pidfile
            && let Err(e) = pidfile::write(path, pid)
        {
            tracing::error!(path = %path.display(), "cannot restore the pidfile: {e}");
        }
        if let Err(e) = notify::main_process_is(pid) {
            tracing::error!("cannot restore MAINPID via NOTIFY_SOCKET: {e}");
        }
    }
}

/// Locks, ignoring poisoning.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // State stays consistent across a panic in another holder: every critical
    // section is a single assignment.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
