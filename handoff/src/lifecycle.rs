//! The [`Handoff`] handle: a process's listeners, readiness, upgrades and drain.

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::builder::HandoffBuilder;
use crate::draining::Draining;
use crate::endpoint::Endpoint;
use crate::error::{ListenError, ReadyError, StartError, UpgradeError};
use crate::events::{DrainReason, Started, Successor, UpgradeRequest};
use crate::listener::{self, Listener};
use crate::state::{Phase, Shared, lock};
use crate::{pidfile, readiness, upgrade};

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
///
/// Supervisors should send the upgrade signal to the serving process only (the
/// pid in the pidfile, or systemd's `$MAINPID`), not to every process of the
/// program: a successor that has not reached [`Handoff::start`] yet would die
/// of the signal's default action (the upgrade then fails and the old process
/// keeps serving).
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
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Handoff { shared }
    }

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
                let socket =
                    listener::bind(endpoint, self.shared.config.backlog).map_err(|source| {
                        ListenError::Bind {
                            endpoint: endpoint.clone(),
                            source,
                            hint: registry.unclaimed_hint(),
                        }
                    })?;
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
        registry.register(name, for_successors);
        Ok(listener)
    }

    /// Inherited sockets not claimed by [`listen`](Handoff::listen) yet, as
    /// `(name, endpoint)`. [`ready`](Handoff::ready) closes them.
    pub fn unclaimed(&self) -> Vec<(String, Endpoint)> {
        lock(&self.shared.registry).unclaimed()
    }

    /// Declares the service ready: listeners are open and it can serve.
    ///
    /// Closes inherited sockets nobody claimed. On first start, writes the
    /// pidfile and sends `READY=1` to `NOTIFY_SOCKET` (if set). As a successor,
    /// tells the old process it is ready, waits for it to commit, writes the
    /// pidfile, sends `MAINPID=<pid>` and `READY=1`, and confirms, after which
    /// the old process drains. Start accepting connections only after this
    /// returns: until then the old process serves them from the shared queue.
    /// Call [`listen`](Handoff::listen) for every endpoint before this.
    /// Later calls return the first call's result; after an error, later calls
    /// fail too.
    ///
    /// # Errors
    /// See [`ReadyError`]; the process should log it and exit non-zero (an old
    /// process keeps serving).
    pub async fn ready(&self) -> Result<Started, ReadyError> {
        self.shared
            .started
            .get_or_try_init(|| self.become_ready())
            .await
            .copied()
    }

    async fn become_ready(&self) -> Result<Started, ReadyError> {
        lock(&self.shared.registry).close_unclaimed();
        let pidfile = self.shared.config.pidfile.as_deref();
        let started = match self.shared.predecessor_pid {
            Some(predecessor) => {
                // Taken by the first attempt; a failed attempt cannot be retried.
                let link = lock(&self.shared.predecessor)
                    .take()
                    .ok_or(ReadyError::Abandoned { predecessor })?;
                readiness::take_over(link, pidfile).await?;
                tracing::info!(pid = std::process::id(), predecessor, "took over; serving");
                Started::TookOver { predecessor }
            }
            None => {
                readiness::first_start(pidfile)?;
                tracing::info!(pid = std::process::id(), "ready; serving");
                Started::Fresh
            }
        };
        let mut phase = lock(&self.shared.phase);
        if matches!(*phase, Phase::Starting) {
            *phase = Phase::Serving { pending: None };
        }
        Ok(started)
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
            Err(error) if self.shared.draining.is_draining() => {
                tracing::info!(pid = std::process::id(), "upgrade abandoned: {error}");
                self.shared.end_failed_upgrade();
            }
            Err(error) => {
                tracing::error!(
                    pid = std::process::id(),
                    "upgrade failed: {error}; still serving"
                );
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
        if let (Some(path), false) = (&self.shared.config.pidfile, handed_over)
            && let Err(e) = pidfile::remove_if_names(path, std::process::id())
        {
            tracing::warn!(path = %path.display(), "cannot remove pidfile: {e}");
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
