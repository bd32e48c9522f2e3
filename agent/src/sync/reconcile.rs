//! Reconciling a watch's state with dpkg, at start and after any error: finish what a
//! crash interrupted.
//!
//! - dpkg interrupted (journal entries, `dpkg --audit` not empty): `dpkg --configure -a`;
//! - a rollback half done ([`PendingAction::Rollback`]): reinstall the installed (previous
//!   good) release, then mark the candidate bad;
//! - an install half done ([`PendingAction::Install`]): when dpkg finished it, hand the
//!   service over and check its health as the install would have (adopt, or roll back);
//!   when dpkg did not, put the installed release back (the candidate is tried again:
//!   the host failed, not the release);
//! - no step pending but dpkg disagrees with the state (another version, or not fully
//!   installed): reinstall the release the state names, which the agent last saw serve.

use super::{Outcome, SyncError, Syncer};
use crate::state::{Pending, PendingAction};

impl Syncer {
    /// Reconciles this watch's state with dpkg (see the module docs). Returns the outcome
    /// of a step it finished, if any.
    pub(super) async fn reconcile(&self) -> Result<Option<Outcome>, SyncError> {
        let _dpkg_turn = self.install_lock.lock().await;
        if let Err(err) = self.dpkg.repair().await {
            tracing::error!(watch = %self.name(), "cannot repair dpkg: {err}");
        }
        let state = self.state.watch(self.name(), &self.watch.package).await;
        let status = self
            .dpkg
            .query(&self.watch.package)
            .await
            .map_err(anyhow::Error::from)?;
        let dpkg_has = |version: &str| {
            status
                .as_ref()
                .is_some_and(|s| s.is_installed() && s.version == version)
        };
        let outcome = match state.pending {
            Some(Pending {
                action: PendingAction::Rollback,
                candidate,
                reason,
            }) => {
                tracing::warn!(
                    watch = %self.name(),
                    version = %candidate.version,
                    "finishing a rollback that was interrupted"
                );
                let reason = reason.unwrap_or_else(|| "rollback interrupted".to_owned());
                Some(self.finish_rollback(candidate, reason).await?)
            }
            Some(Pending {
                action: PendingAction::Install,
                candidate,
                ..
            }) if dpkg_has(&candidate.version) => {
                tracing::warn!(
                    watch = %self.name(),
                    version = %candidate.version,
                    "an install was interrupted after dpkg finished it; handing over and checking health"
                );
                Some(self.hand_over_and_record(candidate).await?)
            }
            Some(Pending {
                action: PendingAction::Install,
                candidate,
                ..
            }) => {
                tracing::warn!(
                    watch = %self.name(),
                    version = %candidate.version,
                    "an install was interrupted before dpkg finished it; restoring the installed release"
                );
                if let Some(installed) = &state.installed
                    && !dpkg_has(&installed.version)
                {
                    self.restore(installed).await;
                }
                self.state
                    .update(self.name(), &self.watch.package, |w| w.pending = None)
                    .await?;
                None
            }
            None => {
                if let Some(installed) = state.installed.as_ref().filter(|i| !dpkg_has(&i.version))
                {
                    tracing::warn!(
                        watch = %self.name(),
                        dpkg = %status.as_ref().map_or_else(|| "not installed".to_owned(), |s| format!("{} {}", s.version, s.status)),
                        "dpkg disagrees with the state ({} {}); reinstalling it",
                        self.watch.package,
                        installed.version
                    );
                    self.restore(installed).await;
                }
                None
            }
        };
        match self.dpkg.needs_repair().await {
            Ok(true) => tracing::error!(
                watch = %self.name(),
                "dpkg --audit still reports problems after reconciling; check the host (dpkg --audit)"
            ),
            Ok(false) => {}
            Err(err) => tracing::warn!(watch = %self.name(), "cannot run dpkg --audit: {err}"),
        }
        Ok(outcome)
    }
}
