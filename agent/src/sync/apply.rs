//! Applying a verified package: install it, hand the service over, check its health —
//! or put the previous good package back and mark the release bad.

use std::path::PathBuf;

use hoist_s3::ObjectInfo;

use super::{Candidate, OWN_PACKAGE, Outcome, SyncError, Syncer};
use crate::cache;
use crate::config::SignalConfig;
use crate::service;
use crate::state::{BadRelease, Release, now_rfc3339};

impl Syncer {
    /// Installs, signals, checks; rolls back on any failure.
    pub(super) async fn install(&self, candidate: Candidate) -> Result<Outcome, SyncError> {
        let _dpkg_turn = self.install_lock.lock().await;
        let previous = self
            .state
            .watch(self.name(), &self.watch.package)
            .await
            .installed;
        if let Err(err) = self
            .dpkg
            .install(&candidate.deb, &self.watch.package, &candidate.version)
            .await
        {
            let reason = format!("install failed: {err}");
            if err.host_unchanged() {
                return self.refuse_unchanged(candidate, reason).await;
            }
            return self.roll_back(candidate, previous, reason).await;
        }
        tracing::info!(
            watch = %self.name(),
            "installed {} {}",
            self.watch.package,
            candidate.version
        );
        let reexec = self.watch.package == OWN_PACKAGE;
        if let Err(err) = self.hand_over().await {
            let reason = format!("the new version did not take over: {err}");
            return self.roll_back(candidate, previous, reason).await;
        }
        let release = Release {
            version_id: candidate.info.version_id.clone(),
            etag: Some(candidate.info.etag.clone()),
            md5: candidate.md5.clone(),
            sha256: candidate.sha256.clone(),
            version: candidate.version.clone(),
            deb: candidate.deb.clone(),
            installed_at: now_rfc3339(),
        };
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
                referenced = w.referenced_debs().into_iter().map(PathBuf::from).collect();
            })
            .await?;
        self.prune_cache(&referenced);
        tracing::info!(
            watch = %self.name(),
            object = %self.describe(candidate.info.version_id.as_deref()),
            "{} {} is installed and serving",
            self.watch.package,
            candidate.version
        );
        Ok(Outcome::Installed {
            version: candidate.version,
            reexec,
        })
    }

    /// Makes the service run what dpkg just installed: signal it, wait for the handoff,
    /// check its health (see [`service::reload`]), and log the result. Nothing to do for
    /// the agent's own package: the caller re-executes the agent instead.
    async fn hand_over(&self) -> Result<(), service::ReloadError> {
        if self.watch.package == OWN_PACKAGE {
            return Ok(());
        }
        let reloaded = service::reload(
            &self.watch.signal,
            &self.watch.health,
            self.watch.handoff_timeout,
        )
        .await?;
        log_reloaded(self.name(), &self.watch.signal, reloaded);
        Ok(())
    }

    /// Marks the candidate bad when its install was refused before the host changed:
    /// the installed version keeps running, there is nothing to roll back.
    async fn refuse_unchanged(
        &self,
        candidate: Candidate,
        reason: String,
    ) -> Result<Outcome, SyncError> {
        self.record_failure(
            &candidate,
            &reason,
            "release refused, nothing installed, marked bad (not retried until a newer one appears)",
        )
        .await?;
        discard(&candidate.deb);
        Ok(Outcome::Refused { reason })
    }

    /// Marks the candidate bad and logs why (`what` first).
    async fn record_failure(
        &self,
        candidate: &Candidate,
        reason: &str,
        what: &str,
    ) -> Result<(), SyncError> {
        self.mark_bad(&candidate.info, Some(&candidate.version), reason)
            .await?;
        tracing::error!(
            watch = %self.name(),
            object = %self.describe(candidate.info.version_id.as_deref()),
            version = %candidate.version,
            "{what}: {reason}"
        );
        Ok(())
    }

    /// Reinstalls `previous` (if any), signals again, and marks the candidate bad.
    async fn roll_back(
        &self,
        candidate: Candidate,
        previous: Option<Release>,
        reason: String,
    ) -> Result<Outcome, SyncError> {
        self.record_failure(
            &candidate,
            &reason,
            "release failed and is marked bad (not retried until a newer one appears)",
        )
        .await?;
        match previous {
            Some(previous) if previous.deb.is_file() => {
                match self
                    .dpkg
                    .install(&previous.deb, &self.watch.package, &previous.version)
                    .await
                {
                    Ok(()) => {
                        if let Err(err) = self.hand_over().await {
                            tracing::error!(
                                watch = %self.name(),
                                "rolled back to {} {} but the service did not take it over: {err}; check the service",
                                self.watch.package,
                                previous.version
                            );
                        }
                        tracing::warn!(
                            watch = %self.name(),
                            "rolled back to {} {}",
                            self.watch.package,
                            previous.version
                        );
                    }
                    Err(err) => tracing::error!(
                        watch = %self.name(),
                        "rollback to {} {} failed: {err}; repair the host by hand (dpkg -i {})",
                        self.watch.package,
                        previous.version,
                        previous.deb.display()
                    ),
                }
            }
            Some(previous) => tracing::error!(
                watch = %self.name(),
                "cannot roll back: the previous package `{}` is missing from the cache",
                previous.deb.display()
            ),
            None => tracing::error!(
                watch = %self.name(),
                "no previous good package to roll back to (first install failed)"
            ),
        }
        discard(&candidate.deb);
        Ok(Outcome::RolledBack { reason })
    }

    pub(super) async fn mark_bad(
        &self,
        info: &ObjectInfo,
        version: Option<&str>,
        reason: &str,
    ) -> Result<(), SyncError> {
        let bad = BadRelease {
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
