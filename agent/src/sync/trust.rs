//! The trust gate between the HEAD and the GET: with a public key configured, nothing is
//! downloaded unless the object's signed statements verify, name this watch, do not
//! hold bytes already marked bad under a statement as new, and are not older than what
//! is installed (see [`crate::freshness`]). A refusal here is logged once at error
//! level and marked bad by VersionId (and by SHA-256), so later polls skip it after one
//! HEAD, without a GET.

use hoist_s3::ObjectInfo;
use hoist_s3::statement::format_time;

use super::{Outcome, SyncError, Syncer};
use crate::freshness::{self, Expected, Installed, Trusted};
use crate::state::{Release, WatchState};

/// What the gate decided.
// Returned once per changed object and matched at once; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Gate {
    /// Go on (with the authenticated statements; `None` for an unsigned watch).
    Go(Option<Trusted>),
    /// Stop here with this outcome.
    Stop(Outcome),
}

impl Syncer {
    /// Authenticates the HEAD's statements; skips bytes marked bad under a statement at
    /// least as new.
    pub(super) async fn authenticate_head(
        &self,
        info: &ObjectInfo,
        current: &WatchState,
    ) -> Result<Gate, SyncError> {
        let Some(key) = &self.public_key else {
            return Ok(Gate::Go(None));
        };
        let expected = Expected {
            bucket: &self.watch.s3.bucket,
            key: &self.watch.s3.key,
            package: &self.watch.package,
        };
        let trusted = match freshness::authenticate(key, &info.metadata, expected) {
            Ok(trusted) => trusted,
            Err(reason) => {
                return self
                    .refuse_before_download(info, None, reason)
                    .await
                    .map(Gate::Stop);
            }
        };
        if current.is_bad_bytes(trusted.sha256(), trusted.time()) {
            return Ok(Gate::Stop(Outcome::SkippedBad));
        }
        Ok(Gate::Go(Some(trusted)))
    }

    /// Refuses an object older than the installed release (a replay), unless a newer
    /// rollback statement asks for it.
    pub(super) async fn refuse_if_stale(
        &self,
        info: &ObjectInfo,
        current: &WatchState,
        trusted: Option<&Trusted>,
    ) -> Result<Option<Outcome>, SyncError> {
        let Some(trusted) = trusted else {
            return Ok(None);
        };
        let installed = current.installed.as_ref().map(|release| Installed {
            version: &release.version,
            effective: current.installed_effective_time(),
        });
        match freshness::check_fresh(trusted, installed) {
            Ok(_) => Ok(None),
            Err(reason) => self
                .refuse_before_download(info, Some(trusted), reason)
                .await
                .map(Some),
        }
    }

    async fn refuse_before_download(
        &self,
        info: &ObjectInfo,
        trusted: Option<&Trusted>,
        reason: String,
    ) -> Result<Outcome, SyncError> {
        let version = trusted.map(|t| t.release.version.as_str());
        self.mark_bad(info, version, &reason, trusted).await?;
        tracing::error!(
            watch = %self.name(),
            object = %self.describe(info.version_id.as_deref()),
            "release refused, nothing installed, marked bad: {reason}"
        );
        Ok(Outcome::Refused { reason })
    }
}

/// The signed times recorded with a release installed under `trusted`:
/// (release time, effective time).
pub(super) fn installed_times(trusted: Option<&Trusted>) -> (Option<String>, Option<String>) {
    match trusted {
        Some(t) => (
            Some(format_time(t.release.time)),
            Some(format_time(t.time())),
        ),
        None => (None, None),
    }
}

/// What a bad mark records about the bytes: (sha256, signed time).
pub(super) fn bad_bytes(trusted: Option<&Trusted>) -> (Option<String>, Option<String>) {
    match trusted {
        Some(t) => (Some(t.sha256().to_owned()), Some(format_time(t.time()))),
        None => (None, None),
    }
}

/// Adopting an object that holds the installed bytes: a newer signed statement moves
/// the effective time forward (never back).
pub(super) fn adopt_times(installed: &mut Release, trusted: Option<&Trusted>) {
    let Some(trusted) = trusted else {
        return;
    };
    let current = installed
        .effective_time
        .as_deref()
        .and_then(hoist_s3::statement::parse_time);
    if current.is_none_or(|t| t < trusted.time()) {
        installed.effective_time = Some(format_time(trusted.time()));
    }
    if installed.signed_time.is_none() {
        installed.signed_time = Some(format_time(trusted.release.time));
    }
}
