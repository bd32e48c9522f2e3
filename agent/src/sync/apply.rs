//! Applying a verified package: install it, hand the service over, check its health —
//! or put the previous good package back and mark the release bad.

use std::path::PathBuf;

use hoist_s3::ObjectInfo;

use super::{Candidate, OWN_PACKAGE, Outcome, SyncError, Syncer};
use crate::cache;
use crate::config::SignalConfig;
use crate::freshness::Trusted;
use crate::selftest::{SELF_TEST_TIMEOUT, SelfTestError};
use crate::service;
use crate::state::{BadRelease, Pending, PendingAction, Release, now_rfc3339};

impl Syncer {
    /// Installs, signals, checks; rolls back on any failure. The step is recorded in the
    /// state before dpkg runs (see [`Pending`]), so a crash at any point is finished by
    /// [`Syncer::reconcile`].
    pub(super) async fn install(&self, candidate: Candidate) -> Result<Outcome, SyncError> {
        let _dpkg_turn = self.install_lock.lock().await;
        let release = candidate.release();
        self.set_pending(Some(Pending {
            action: PendingAction::Install,
            candidate: release.clone(),
            reason: None,
        }))
        .await?;
        if let Err(err) = self
            .dpkg
            .install(&release.deb, &self.watch.package, &release.version)
            .await
        {
            let reason = format!("install failed: {err}");
            if err.host_unchanged() {
                return self.refuse_unchanged(&candidate, reason).await;
            }
            return self.roll_back(release, reason).await;
        }
        tracing::info!(
            watch = %self.name(),
            "installed {} {}",
            self.watch.package,
            release.version
        );
        self.hand_over_and_record(release).await
    }

    /// Hands the service over to the installed `release` and records it as installed;
    /// rolls back when the handoff or the health check fails.
    pub(super) async fn hand_over_and_record(
        &self,
        release: Release,
    ) -> Result<Outcome, SyncError> {
        let reexec = self.watch.package == OWN_PACKAGE;
        if let Err(err) = self.hand_over().await {
            let reason = match err {
                HandOverError::SelfTest(_) | HandOverError::NoSelfTest => {
                    format!("the new agent failed its self-test: {err}")
                }
                HandOverError::Reload(_) => format!("the new version did not take over: {err}"),
            };
            return self.roll_back(release, reason).await;
        }
        let version = release.version.clone();
        let version_id = release.version_id.clone();
        let mut referenced = Vec::new();
        self.state
            .update(self.name(), &self.watch.package, |w| {
                if let Some(old) = w.installed.take() {
                    // Reinstalling the same package keeps the older fallback.
                    if old.sha256 != release.sha256 {
                        w.previous_good = Some(old);
                    }
                }
                w.installed = Some(release);
                w.pending = None;
                referenced = w.referenced_debs().into_iter().map(PathBuf::from).collect();
            })
            .await?;
        self.prune_cache(&referenced);
        if reexec {
            tracing::info!(
                watch = %self.name(),
                object = %self.describe(version_id.as_deref()),
                "{} {version} is installed and passed its self-test",
                self.watch.package,
            );
        } else {
            tracing::info!(
                watch = %self.name(),
                object = %self.describe(version_id.as_deref()),
                "{} {version} is installed and serving",
                self.watch.package,
            );
        }
        Ok(Outcome::Installed { version, reexec })
    }

    /// Makes the service run what dpkg just installed: signal it, wait for the handoff,
    /// check its health (see [`service::reload`]), and log the result. For the agent's own
    /// package: the new binary must pass its self-test (the caller then re-executes the
    /// agent into it).
    async fn hand_over(&self) -> Result<(), HandOverError> {
        if self.watch.package == OWN_PACKAGE {
            let self_test = self.self_test.as_ref().ok_or(HandOverError::NoSelfTest)?;
            self_test.run(SELF_TEST_TIMEOUT).await?;
            return Ok(());
        }
        let target = self.signal_target().await;
        let reloaded = service::reload(
            &self.watch.signal,
            &target,
            &self.watch.health,
            self.watch.handoff_timeout,
        )
        .await?;
        log_reloaded(self.name(), &self.watch.signal, reloaded);
        Ok(())
    }

    /// Marks the candidate bad when its install was refused before the host changed
    /// (see `DpkgError::host_unchanged`): the installed version keeps running, there is
    /// nothing to roll back.
    async fn refuse_unchanged(
        &self,
        candidate: &Candidate,
        reason: String,
    ) -> Result<Outcome, SyncError> {
        self.mark_bad(
            &candidate.info,
            Some(&candidate.version),
            &reason,
            candidate.trusted.as_ref(),
        )
        .await?;
        self.set_pending(None).await?;
        tracing::error!(
            watch = %self.name(),
            object = %self.describe(candidate.info.version_id.as_deref()),
            version = %candidate.version,
            "release refused, nothing installed, marked bad (not retried until a newer one appears): {reason}"
        );
        discard(&candidate.deb);
        Ok(Outcome::Refused { reason })
    }

    /// Records the intent, reinstalls the installed (previous good) release over the
    /// failed `candidate`, then marks the candidate bad and clears the intent — in that
    /// order, so that a crash or a failed state write in between is finished by
    /// [`Syncer::reconcile`] instead of leaving the host on the bad version.
    pub(super) async fn roll_back(
        &self,
        candidate: Release,
        reason: String,
    ) -> Result<Outcome, SyncError> {
        tracing::error!(
            watch = %self.name(),
            object = %self.describe(candidate.version_id.as_deref()),
            version = %candidate.version,
            "release failed, rolling back: {reason}"
        );
        if let Err(err) = self
            .set_pending(Some(Pending {
                action: PendingAction::Rollback,
                candidate: candidate.clone(),
                reason: Some(reason.clone()),
            }))
            .await
        {
            // Roll back anyway: the host must not stay on the failed version.
            tracing::error!(watch = %self.name(), "cannot record the rollback: {err}");
        }
        self.finish_rollback(candidate, reason).await
    }

    /// The part of a rollback after its intent is recorded: reinstall the installed
    /// release, mark `candidate` bad, clear the intent.
    pub(super) async fn finish_rollback(
        &self,
        candidate: Release,
        reason: String,
    ) -> Result<Outcome, SyncError> {
        let previous = self
            .state
            .watch(self.name(), &self.watch.package)
            .await
            .installed;
        match &previous {
            Some(previous) => {
                self.restore(previous).await;
            }
            None => tracing::error!(
                watch = %self.name(),
                "no previous good package to roll back to (first install failed)"
            ),
        }
        // A signed candidate's mark holds for its bytes up to its signed time (see
        // `WatchState::is_bad_bytes`); `effective_time` is that time, or absent unsigned.
        let bad = BadRelease {
            sha256: candidate
                .effective_time
                .as_ref()
                .map(|_| candidate.sha256.clone()),
            signed_time: candidate.effective_time.clone(),
            version_id: candidate.version_id.clone(),
            etag: candidate.etag.clone().unwrap_or_default(),
            version: Some(candidate.version.clone()),
            reason: reason.clone(),
            at: now_rfc3339(),
        };
        self.state
            .update(self.name(), &self.watch.package, |w| {
                w.mark_bad(bad);
                w.pending = None;
            })
            .await?;
        tracing::error!(
            watch = %self.name(),
            object = %self.describe(candidate.version_id.as_deref()),
            version = %candidate.version,
            "release failed and is marked bad (not retried until a newer one appears): {reason}"
        );
        if previous.as_ref().is_none_or(|p| p.deb != candidate.deb) {
            discard(&candidate.deb);
        }
        Ok(Outcome::RolledBack { reason })
    }

    /// Reinstalls `previous` from the cache and hands the service over to it; logs what
    /// failed. Returns true when dpkg installed it.
    pub(super) async fn restore(&self, previous: &Release) -> bool {
        if !previous.deb.is_file() {
            tracing::error!(
                watch = %self.name(),
                "cannot roll back: the previous package `{}` is missing from the cache",
                previous.deb.display()
            );
            return false;
        }
        if let Err(err) = self
            .dpkg
            .install(&previous.deb, &self.watch.package, &previous.version)
            .await
        {
            tracing::error!(
                watch = %self.name(),
                "rollback to {} {} failed: {err}; repair the host by hand (dpkg -i {})",
                self.watch.package,
                previous.version,
                previous.deb.display()
            );
            return false;
        }
        if let Err(err) = self.hand_over().await {
            tracing::error!(
                watch = %self.name(),
                "rolled back to {} {} but the service did not take it over: {err}",
                self.watch.package,
                previous.version
            );
        }
        if self.watch.package != OWN_PACKAGE {
            let target = self.signal_target().await;
            let confirmed = service::ensure_current(
                &self.watch.signal,
                &target,
                &self.watch.health,
                self.watch.handoff_timeout,
            )
            .await;
            match confirmed {
                Ok(None) => {}
                Ok(Some(reloaded)) => log_reloaded(self.name(), &self.watch.signal, reloaded),
                Err(err) => tracing::error!(
                    watch = %self.name(),
                    "the service still does not run {} {}: {err}; check the service",
                    self.watch.package,
                    previous.version
                ),
            }
        }
        tracing::warn!(
            watch = %self.name(),
            "rolled back to {} {}",
            self.watch.package,
            previous.version
        );
        true
    }

    /// Which processes may be signalled for this watch (see [`service::target`]).
    async fn signal_target(&self) -> service::target::Target {
        service::target::Target::resolve(&self.watch.signal, &self.dpkg, &self.watch.package).await
    }

    async fn set_pending(&self, pending: Option<Pending>) -> Result<(), SyncError> {
        self.state
            .update(self.name(), &self.watch.package, |w| w.pending = pending)
            .await?;
        Ok(())
    }

    pub(super) async fn mark_bad(
        &self,
        info: &ObjectInfo,
        version: Option<&str>,
        reason: &str,
        trusted: Option<&Trusted>,
    ) -> Result<(), SyncError> {
        let (sha256, signed_time) = super::trust::bad_bytes(trusted);
        let bad = BadRelease {
            sha256,
            signed_time,
            version_id: info.version_id.clone(),
            etag: info.etag.clone(),
            version: version
                .map(str::to_owned)
                .or_else(|| info.metadata.version.clone()),
            reason: reason.to_owned(),
            at: now_rfc3339(),
        };
        self.state
            .update(self.name(), &self.watch.package, |w| w.mark_bad(bad))
            .await?;
        Ok(())
    }

    fn prune_cache(&self, referenced: &[PathBuf]) {
        let refs: Vec<&std::path::Path> = referenced.iter().map(PathBuf::as_path).collect();
        match cache::prune(&self.dirs.cache(self.name()), self.keep_packages, &refs) {
            Ok(deleted) => {
                for path in deleted {
                    tracing::debug!(deb = %path.display(), "removed old cached package");
                }
            }
            Err(err) => tracing::warn!("cannot prune the package cache: {err}"),
        }
    }
}

/// Why the installed version did not take over.
#[derive(Debug, thiserror::Error)]
enum HandOverError {
    /// The service did not hand over, or failed its health check.
    #[error(transparent)]
    Reload(#[from] service::ReloadError),
    /// The new agent binary failed its self-test.
    #[error(transparent)]
    SelfTest(#[from] SelfTestError),
    /// The agent does not know its own path, so it cannot test the new binary.
    #[error("the agent's own path is unknown, so the new binary cannot be tested")]
    NoSelfTest,
}

/// Removes a package that was not installed from the cache.
fn discard(deb: &std::path::Path) {
    if let Err(err) = std::fs::remove_file(deb) {
        tracing::debug!("cannot remove the failed package {}: {err}", deb.display());
    }
}

fn log_reloaded(watch: &str, signal: &SignalConfig, reloaded: service::Reloaded) {
    match reloaded {
        service::Reloaded::HandedOver { pid } => {
            tracing::info!(
                watch,
                pid,
                "service handed over to the new version; health check passed"
            );
        }
        service::Reloaded::NotRunning => tracing::warn!(
            watch,
            ?signal,
            "service is not running: nothing signalled; it will run the new version when started"
        ),
        service::Reloaded::NotSignalled => {
            tracing::info!(watch, "no signal configured; health check passed");
        }
    }
}

impl Candidate {
    /// The release record of this candidate (what the state stores once it serves).
    fn release(&self) -> Release {
        let (signed_time, effective_time) = super::trust::installed_times(self.trusted.as_ref());
        Release {
            signed_time,
            effective_time,
            version_id: self.info.version_id.clone(),
            etag: Some(self.info.etag.clone()),
            md5: self.md5.clone(),
            sha256: self.sha256.clone(),
            version: self.version.clone(),
            deb: self.deb.clone(),
            installed_at: now_rfc3339(),
        }
    }
}
