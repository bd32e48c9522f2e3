//! The [`Handoff`] handle: a process's listeners, readiness, upgrades and drain.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::signal::unix::SignalKind;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::draining::Draining;
use crate::endpoint::Endpoint;
use crate::error::{ListenError, ReadyError, StartError, UpgradeError};
use crate::executable::Executable;
use crate::inherit::{self, InheritedSocket, Predecessor};
use crate::listener::{self, Listener};
use crate::{notify, pidfile, readiness, signals, upgrade};

/// Set by the first [`HandoffBuilder::start`]: inherited fds are adopted once.
static STARTED: AtomicBool = AtomicBool::new(false);

/// What asked for an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRequest {
    /// The upgrade signal (SIGUSR2 unless configured otherwise), by number.
    Signal(i32),
    /// [`Handoff::request_upgrade`].
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
    /// A shutdown signal (by number) or [`Handoff::shutdown`] (`None`).
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
            DrainReason::Shutdown { signal: Some(s) } => write!(f, "shutdown on {}", signal_name(*s)),
            DrainReason::Shutdown { signal: None } => f.write_str("shutdown requested"),
            DrainReason::Upgraded { successor } => write!(f, "upgraded to pid {successor}"),
        }
    }
}

/// The process that took over after a successful [`Handoff::upgrade`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Successor {
    /// Its pid; it is the service's main process now.
    pub pid: u32,
}

/// How this process came to serve, as reported by [`Handoff::ready`].
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
        let predecessor_pid = inherited.predecessor.as_ref().map(|p| p.pid);
        tracing::info!(
            pid = std::process::id(),
            program = %executable.path.display(),
            inherited = inherited.sockets.len(),
            predecessor = predecessor_pid,
            "handoff started"
        );
        let shared = Arc::new(Shared {
            config: Config {
                ready_timeout: self.ready_timeout,
                pidfile: self.pidfile,
                executable,
                backlog: self.backlog,
            },
            phase: Mutex::new(Phase::Starting),
            wakeup: Notify::new(),
            draining: Draining::new(),
            shutdown: CancellationToken::new(),
            registry: Mutex::new(Registry {
                unclaimed: inherited.sockets,
                passed: Vec::new(),
            }),
            predecessor: Mutex::new(inherited.predecessor),
            started: Mutex::new(None),
        });
        signals::install(Arc::clone(&shared), self.upgrade_signal)?;
        Ok(Handoff { shared })
    }
}

/// Zero-downtime upgrades and graceful shutdown for one process.
///
/// Life of a process:
/// 1. [`Handoff::start`] (or [`Handoff::builder`]) early in `main`;
/// 2. [`listen`](Handoff::listen) for each endpoint: inherited sockets are
///    taken over, others bound fresh;
/// 3. initialise, then [`ready`](Handoff::ready);
/// 4. serve until [`draining`](Handoff::draining) fires, handling
///    [`upgrade_requested`](Handoff::upgrade_requested) with
///    [`upgrade`](Handoff::upgrade) when convenient (or let
///    [`upgrade_when_requested`](Handoff::upgrade_when_requested) do it);
/// 5. finish in-flight work within a deadline, call
///    [`finish`](Handoff::finish) and exit 0.
///
/// Cheap to clone; clones share the same state.
#[derive(Clone)]
pub struct Handoff {
    shared: Arc<Shared>,
}

impl fmt::Debug for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handoff")
            .field("pid", &std::process::id())
            .field("phase", &*lock(&self.shared.phase))
            .finish_non_exhaustive()
    }
}

impl Handoff {
    /// A builder with the defaults: SIGUSR2, 30 s ready timeout, no pidfile.
    pub fn builder() -> HandoffBuilder {
        HandoffBuilder::default()
    }

    /// [`HandoffBuilder::start`] with the defaults.
    ///
    /// # Errors
    /// See [`StartError`].
    pub fn start() -> Result<Handoff, StartError> {
        Self::builder().start()
    }

    /// [`listen_named`](Handoff::listen_named) with the endpoint's text as name.
    ///
    /// # Errors
    /// See [`ListenError`].
    pub fn listen(&self, endpoint: &Endpoint) -> Result<Listener, ListenError> {
        self.listen_named(&endpoint.to_string(), endpoint)
    }

    /// A listener for `endpoint`, named `name` across upgrades.
    ///
    /// Takes the inherited socket called `name` if there is one (a successor
    /// gets the names its predecessor used; systemd uses `FileDescriptorName=`),
    /// else an inherited socket bound to exactly `endpoint`, else binds a fresh
    /// socket. The socket is passed to successors under `name`. Must be called
    /// inside a Tokio runtime.
    ///
    /// # Errors
    /// [`ListenError::DuplicateName`] if `name` is taken in this process,
    /// [`ListenError::KindMismatch`] if the inherited socket `name` is TCP and
    /// `endpoint` Unix or vice versa, [`ListenError::Bind`] if binding fails.
    pub fn listen_named(&self, name: &str, endpoint: &Endpoint) -> Result<Listener, ListenError> {
        let mut registry = lock(&self.shared.registry);
        let (socket, endpoint, origin) = match registry.claim(name, endpoint)? {
            Some(inherited) => (
                inherited.socket,
                inherited.endpoint,
                inherited.source.describe(),
            ),
            None => {
                let socket = listener::bind(endpoint, self.shared.config.backlog).map_err(
                    |source| ListenError::Bind {
                        endpoint: endpoint.clone(),
                        source,
                        hint: registry.unclaimed_hint(),
                    },
                )?;
                (socket, endpoint.clone(), "a fresh bind")
            }
        };
        let register = |source| ListenError::Register {
            endpoint: endpoint.clone(),
            source,
        };
        let for_successors = OwnedFd::from(socket.try_clone().map_err(register)?);
        let listener = Listener::from_socket(socket, &endpoint).map_err(register)?;
        let bound = listener.local_endpoint().unwrap_or(endpoint);
        tracing::info!(endpoint = %bound, name, "listening (socket from {origin})");
        registry.passed.push((name.to_owned(), for_successors));
        Ok(listener)
    }

    /// Inherited sockets not claimed by [`listen`](Handoff::listen) yet, as
    /// `(name, endpoint)`. [`ready`](Handoff::ready) closes them.
    pub fn unclaimed(&self) -> Vec<(String, Endpoint)> {
        lock(&self.shared.registry)
            .unclaimed
            .iter()
            .map(|s| (s.name.clone(), s.endpoint.clone()))
            .collect()
    }

    /// Declares the service ready: listeners are open and it can serve.
    ///
    /// Closes inherited sockets nobody claimed. On first start, writes the
    /// pidfile and sends `READY=1` to `NOTIFY_SOCKET` (if set). As a successor,
    /// tells the old process it is ready, waits for it to commit, writes the
    /// pidfile, sends `MAINPID=<pid>` and `READY=1`, and confirms, after which
    /// the old process drains. Start accepting connections only after this
    /// returns: until then the old process serves them from the shared queue.
    /// Calling it again does nothing.
    ///
    /// # Errors
    /// See [`ReadyError`]; the process should log it and exit non-zero (an old
    /// process keeps serving).
    pub async fn ready(&self) -> Result<Started, ReadyError> {
        if !matches!(*lock(&self.shared.phase), Phase::Starting) {
            return Ok(self.started());
        }
        lock(&self.shared.registry).close_unclaimed();
        let predecessor = lock(&self.shared.predecessor).take();
        let pidfile = self.shared.config.pidfile.as_deref();
        let started = match predecessor {
            Some(predecessor) => {
                let pid = predecessor.pid;
                readiness::take_over(predecessor, pidfile).await?;
                tracing::info!(pid = std::process::id(), predecessor = pid, "took over; serving");
                Started::TookOver { predecessor: pid }
            }
            None => {
                readiness::first_start(pidfile)?;
                tracing::info!(pid = std::process::id(), "ready; serving");
                Started::Fresh
            }
        };
        *lock(&self.shared.started) = Some(started);
        let mut phase = lock(&self.shared.phase);
        if matches!(*phase, Phase::Starting) {
            *phase = Phase::Serving { pending: None };
        }
        Ok(started)
    }

    fn started(&self) -> Started {
        lock(&self.shared.started).unwrap_or(Started::Fresh)
    }

    /// Waits for the next upgrade request (the upgrade signal or
    /// [`request_upgrade`](Handoff::request_upgrade)); `None` once the process
    /// drains, as no upgrade can follow.
    ///
    /// Requests arriving while one is pending are merged into it; requests during
    /// an upgrade, before [`ready`](Handoff::ready) or while draining are logged
    /// and ignored. The service decides when to act on a request by calling
    /// [`upgrade`](Handoff::upgrade).
    pub async fn upgrade_requested(&self) -> Option<UpgradeRequest> {
        loop {
            let notified = self.shared.wakeup.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            match &mut *lock(&self.shared.phase) {
                Phase::Serving { pending } => {
                    if let Some(request) = pending.take() {
                        return Some(request);
                    }
                }
                Phase::Draining(_) => return None,
                Phase::Starting | Phase::Upgrading => {}
            }
            notified.await;
        }
    }

    /// Requests an upgrade as the upgrade signal would.
    pub fn request_upgrade(&self) {
        self.shared.request_upgrade(UpgradeRequest::Call);
    }

    /// Hands the listeners to a new process running the program this one was
    /// started from (same path, arguments, working directory and environment).
    ///
    /// Waits up to the ready timeout for it to report ready, commits, and waits
    /// for it to announce itself (pidfile, `MAINPID`); then this process starts
    /// draining and the successor serves. If the new process exits, fails or
    /// times out it is killed and reaped, the failure is logged, and this
    /// process keeps serving and can try again later.
    ///
    /// # Errors
    /// [`UpgradeError::InProgress`], [`UpgradeError::NotReady`] and
    /// [`UpgradeError::Draining`] when no upgrade could start; the others when
    /// the new process did not take over.
    pub async fn upgrade(&self) -> Result<Successor, UpgradeError> {
        self.shared.begin_upgrade()?;
        let mut in_flight = UpgradeInFlight {
            shared: &self.shared,
            done: false,
        };
        let result = upgrade::run(&self.shared).await;
        in_flight.done = true;
        match &result {
            Ok(successor) => {
                tracing::info!(
                    pid = std::process::id(),
                    successor = successor.pid,
                    "upgrade complete: pid {} serves now; draining",
                    successor.pid
                );
                self.shared.begin_drain(DrainReason::Upgraded {
                    successor: successor.pid,
                });
            }
            Err(error) => {
                tracing::error!(pid = std::process::id(), "upgrade failed: {error}; still serving");
                self.shared.end_failed_upgrade();
            }
        }
        result
    }

    /// Serves upgrade requests at once, as a web server wants: waits for a
    /// request, upgrades, and on failure waits for the next one. Returns the
    /// successor after the first successful upgrade, or `None` when the
    /// process starts draining for another reason.
    pub async fn upgrade_when_requested(&self) -> Option<Successor> {
        while self.upgrade_requested().await.is_some() {
            match self.upgrade().await {
                Ok(successor) => return Some(successor),
                // Already logged by `upgrade`; a later request may succeed.
                Err(_) => continue,
            }
        }
        None
    }

    /// Starts a graceful shutdown as SIGTERM would.
    pub fn shutdown(&self) {
        self.shared.request_shutdown(None);
    }

    /// The drain signal: fires on shutdown or after a successful upgrade. Stop
    /// accepting and taking new work when it fires.
    pub fn draining(&self) -> Draining {
        self.shared.draining.clone()
    }

    /// Why the process drains, once it does.
    pub fn drain_reason(&self) -> Option<DrainReason> {
        match &*lock(&self.shared.phase) {
            Phase::Draining(reason) => Some(reason.clone()),
            _ => None,
        }
    }

    /// Call when in-flight work is done, right before exiting. Removes the
    /// pidfile if it still names this process, unless a successor took over;
    /// returns why the process drained (`None` if it never did).
    pub fn finish(&self) -> Option<DrainReason> {
        let reason = self.drain_reason();
        let handed_over = matches!(reason, Some(DrainReason::Upgraded { .. }));
        if let (Some(path), false) = (&self.shared.config.pidfile, handed_over) {
            if let Err(e) = pidfile::remove_if_names(path, std::process::id()) {
                tracing::warn!(path = %path.display(), "cannot remove pidfile: {e}");
            }
        }
        tracing::info!(
            pid = std::process::id(),
            reason = reason.as_ref().map(ToString::to_string),
            "finished draining; exiting"
        );
        reason
    }
}

/// Puts the phase back to serving if an upgrade future is dropped half-way.
struct UpgradeInFlight<'a> {
    shared: &'a Shared,
    done: bool,
}

impl Drop for UpgradeInFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            tracing::warn!("upgrade abandoned by the caller; the new process was killed");
            self.shared.end_failed_upgrade();
        }
    }
}

/// Settings fixed at start.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) ready_timeout: Duration,
    pub(crate) pidfile: Option<PathBuf>,
    pub(crate) executable: Executable,
    pub(crate) backlog: i32,
}

#[derive(Debug)]
enum Phase {
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
    phase: Mutex<Phase>,
    /// Wakes `upgrade_requested` waiters on any phase change that matters to them.
    wakeup: Notify,
    draining: Draining,
    /// Fires on shutdown requests; aborts an upgrade that has not committed.
    pub(crate) shutdown: CancellationToken,
    registry: Mutex<Registry>,
    predecessor: Mutex<Option<Predecessor>>,
    started: Mutex<Option<Started>>,
}

impl Shared {
    pub(crate) fn request_upgrade(&self, request: UpgradeRequest) {
        let pid = std::process::id();
        let mut phase = lock(&self.phase);
        match &mut *phase {
            Phase::Serving { pending: Some(_) } => {
                tracing::info!(pid, "upgrade requested ({request}) while one is pending; merged");
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

    pub(crate) fn request_shutdown(&self, signal: Option<i32>) {
        self.shutdown.cancel();
        if self.begin_drain(DrainReason::Shutdown { signal }) {
            if let Err(e) = notify::stopping() {
                tracing::warn!("cannot send STOPPING=1 to NOTIFY_SOCKET: {e}");
            }
        }
    }

    fn begin_upgrade(&self) -> Result<(), UpgradeError> {
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

    fn end_failed_upgrade(&self) {
        let mut phase = lock(&self.phase);
        if matches!(*phase, Phase::Upgrading) {
            *phase = Phase::Serving { pending: None };
        }
    }

    /// Moves to draining (an upgrade's success overrides a shutdown reason, as the
    /// successor owns the pidfile then). Returns whether draining started now.
    fn begin_drain(&self, reason: DrainReason) -> bool {
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
        lock(&self.registry)
            .passed
            .iter()
            .map(|(name, fd)| Ok((name.clone(), fd.try_clone()?)))
            .collect()
    }

    /// After a successor failed past the commit point it may have claimed the
    /// main-process role: take it back (pidfile and `MAINPID`).
    pub(crate) fn reclaim_main_process(&self) {
        let pid = std::process::id();
        if let Some(path) = &self.config.pidfile {
            if let Err(e) = pidfile::write(path, pid) {
                tracing::error!(path = %path.display(), "cannot restore the pidfile: {e}");
            }
        }
        if let Err(e) = notify::main_process_is(pid) {
            tracing::error!("cannot restore MAINPID via NOTIFY_SOCKET: {e}");
        }
    }
}

/// Sockets this process holds for passing on.
#[derive(Debug)]
struct Registry {
    /// Inherited and not claimed by `listen` yet.
    unclaimed: Vec<InheritedSocket>,
    /// Claimed or bound, by name; copies kept to give to a successor.
    passed: Vec<(String, OwnedFd)>,
}

impl Registry {
    fn claim(
        &mut self,
        name: &str,
        endpoint: &Endpoint,
    ) -> Result<Option<InheritedSocket>, ListenError> {
        if self.passed.iter().any(|(n, _)| n == name) {
            return Err(ListenError::DuplicateName(name.to_owned()));
        }
        if let Some(index) = self.unclaimed.iter().position(|s| s.name == name) {
            let same_kind = matches!(
                (&self.unclaimed[index].endpoint, endpoint),
                (Endpoint::Tcp(_), Endpoint::Tcp(_)) | (Endpoint::Unix(_), Endpoint::Unix(_))
            );
            if !same_kind {
                let socket = &self.unclaimed[index];
                return Err(ListenError::KindMismatch {
                    name: name.to_owned(),
                    source_desc: socket.source.describe(),
                    inherited: socket.endpoint.clone(),
                    wanted: endpoint.clone(),
                });
            }
            return Ok(Some(self.unclaimed.remove(index)));
        }
        let exact = |s: &InheritedSocket| match (&s.endpoint, endpoint) {
            (Endpoint::Tcp(have), Endpoint::Tcp(want)) => want.port() != 0 && have == want,
            (Endpoint::Unix(have), Endpoint::Unix(want)) => have == want,
            _ => false,
        };
        Ok(self
            .unclaimed
            .iter()
            .position(exact)
            .map(|index| self.unclaimed.remove(index)))
    }

    fn unclaimed_hint(&self) -> String {
        if self.unclaimed.is_empty() {
            return String::new();
        }
        let list: Vec<String> = self
            .unclaimed
            .iter()
            .map(|s| format!("{} (named `{}`, from {})", s.endpoint, s.name, s.source.describe()))
            .collect();
        format!(" (inherited but not claimed: {})", list.join(", "))
    }

    fn close_unclaimed(&mut self) {
        for socket in self.unclaimed.drain(..) {
            tracing::warn!(
                endpoint = %socket.endpoint,
                name = socket.name,
                "closing a socket inherited from {}: the service did not listen on it",
                socket.source.describe()
            );
        }
    }

    fn clear(&mut self) {
        self.unclaimed.clear();
        self.passed.clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // State stays consistent across a panic in another holder: every critical
    // section is a single assignment.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// "SIGUSR2" for 12, or "signal N" for numbers nix does not know.
pub(crate) fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}
