//! One synchronisation of one watch: HEAD the object; when it changed, GET that exact
//! version, verify it, install it, hand the service over to it and check its health; on
//! failure reinstall the previous good package and mark the version bad.
//!
//! Everything up to the end of the download can be cancelled (shutdown); from the install
//! on, the sequence runs to completion so that no half install is left behind.
//!
//! - this module: the decision (unchanged, bad, same bytes, or new);
//! - [`trust`]: before any GET, authenticate the signed statements from the HEAD and
//!   refuse downgrades and bytes already marked bad;
//! - [`fetch`]: GET by VersionId, stream to disk, verify;
//! - [`apply`]: install, hand over, check health, or roll back;
//! - [`reconcile`]: at start and after an error, finish what a crash interrupted.

mod apply;
mod fetch;
mod limits;
mod reconcile;
mod reuse;
mod trust;

use std::path::PathBuf;
use std::sync::Arc;

use hoist_s3::{Head, ObjectInfo, S3, S3Error};
use tokio_util::sync::CancellationToken;

use crate::cache::Dirs;
use crate::config::WatchConfig;
use crate::download::DownloadError;
use crate::dpkg::Dpkg;
use crate::freshness::Trusted;
use crate::shared_state::SharedState;

/// Name of the agent's own package: installing it means re-executing the agent.
pub const OWN_PACKAGE: &str = env!("CARGO_PKG_NAME");

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The object has not changed since it was installed.
    Unchanged,
    /// The current object is marked bad; nothing was done.
    SkippedBad,
    /// The object changed but holds the installed package: only its identity was recorded.
    Adopted,
    /// A new version is installed and serving.
    Installed {
        /// Its package version.
        version: String,
        /// True for the agent's own package: the caller must re-execute the agent.
        reexec: bool,
    },
    /// Verification refused the object; it is marked bad, nothing was installed.
    Refused {
        /// Why.
        reason: String,
    },
    /// The install, handoff or health check failed; the previous package is back.
    RolledBack {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// True for outcomes that mean a release failed (for `once`'s exit code).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Refused { .. } | Outcome::RolledBack { .. })
    }
}

/// Why a sync could not complete; all of these are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// S3 answered with an error or not at all.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// The body stopped arriving.
    #[error("download of {what} interrupted: {source}")]
    Download {
        /// Bucket/key/version.
        what: String,
        /// The error.
        source: DownloadError,
    },
    /// The bytes received differ from what S3 says it holds (a transfer problem).
    #[error("{0}")]
    Transfer(String),
    /// The disk is full, or has no room for the package: retried with backoff (the
    /// release is not marked bad).
    #[error("{0}")]
    DiskFull(String),
    /// A local problem (disk, dpkg not runnable, state file).
    #[error("{0:#}")]
    Local(#[from] anyhow::Error),
    /// Shutdown was requested during the download.
    #[error("cancelled by shutdown")]
    Cancelled,
}

impl SyncError {
    /// A short, stable description of the condition, for logging transitions only.
    pub fn condition(&self) -> String {
        match self {
            SyncError::S3(err) => format!("S3 {}", crate::s3_condition::describe(err)),
            SyncError::Download { .. } => "download interrupted".to_owned(),
            SyncError::Transfer(_) => "corrupted transfer".to_owned(),
            SyncError::DiskFull(_) => "disk full".to_owned(),
            SyncError::Local(_) => "local error".to_owned(),
            SyncError::Cancelled => "cancelled".to_owned(),
        }
    }
}

/// Everything one watch needs to sync.
#[derive(Debug)]
pub struct Syncer {
    /// The watch's configuration.
    pub watch: WatchConfig,
    /// Connected S3 client for the watch's bucket and key.
    pub s3: S3,
    /// The public key; `None` only for a watch with `allow_unsigned = true`.
    pub public_key: Option<minisign_verify::PublicKey>,
    /// dpkg runner.
    pub dpkg: Dpkg,
    /// Host architecture (`dpkg --print-architecture`).
    pub host_arch: String,
    /// State directory layout.
    pub dirs: Dirs,
    /// Cached packages kept per watch.
    pub keep_packages: usize,
    /// Objects larger than this are refused without a download (bytes).
    pub max_package_size: u64,
    /// The shared state file.
    pub state: Arc<SharedState>,
    /// Serialises dpkg runs of all watches.
    pub install_lock: Arc<tokio::sync::Mutex<()>>,
    /// False until the state was reconciled with dpkg, and again after an error.
    pub reconciled: std::sync::atomic::AtomicBool,
    /// The self-test a new agent must pass (agent watch only).
    pub self_test: Option<crate::selftest::SelfTest>,
}

/// A downloaded, verified package ready to install.
struct Candidate {
    info: ObjectInfo,
    version: String,
    md5: String,
    sha256: String,
    deb: PathBuf,
    /// The authenticated statements it was accepted under (`None`: unsigned watch).
    trusted: Option<Trusted>,
}

impl Syncer {
    fn name(&self) -> &str {
        &self.watch.name
    }

    fn describe(&self, version_id: Option<&str>) -> String {
        format!(
            "s3://{}/{}{}",
            self.watch.s3.bucket,
            self.watch.s3.key,
            version_id.map_or_else(String::new, |v| format!("?versionId={v}"))
        )
    }

    /// Runs one sync. Cancellation is honoured until the download is complete. The first
    /// sync, and the first after an error, reconciles the state with dpkg first.
    pub async fn sync_once(&self, cancel: &CancellationToken) -> Result<Outcome, SyncError> {
        use std::sync::atomic::Ordering;
        let result = async {
            if !self.reconciled.load(Ordering::Relaxed) {
                if let Some(outcome) = self.reconcile().await? {
                    self.reconciled.store(true, Ordering::Relaxed);
                    return Ok(outcome);
                }
                self.reconciled.store(true, Ordering::Relaxed);
            }
            self.poll(cancel).await
        }
        .await;
        if result.is_err() {
            self.reconciled.store(false, Ordering::Relaxed);
        }
        result
    }

    /// One sync without reconciliation.
    async fn poll(&self, cancel: &CancellationToken) -> Result<Outcome, SyncError> {
        let current = self.state.watch(self.name(), &self.watch.package).await;
        let if_none_match = current.installed.as_ref().and_then(|r| r.etag.clone());
        let head = tokio::select! {
            head = self.s3.head(if_none_match.as_deref()) => head?,
            () = cancel.cancelled() => return Err(SyncError::Cancelled),
        };
        let info = match head {
            Head::NotModified => return Ok(Outcome::Unchanged),
            Head::Found(info) => info,
        };
        let version_id = info.version_id.as_deref();
        if current.is_installed(version_id, &info.etag) {
            return Ok(Outcome::Unchanged);
        }
        if current.is_bad(version_id, &info.etag) {
            return Ok(Outcome::SkippedBad);
        }
        let trusted = match self.authenticate_head(&info, &current).await? {
            trust::Gate::Go(trusted) => trusted,
            trust::Gate::Stop(outcome) => return Ok(outcome),
        };
        if let Some(outcome) = self.adopt_if_same(&info, trusted.as_ref()).await? {
            return Ok(outcome);
        }
        if let Some(outcome) = self
            .refuse_if_stale(&info, &current, trusted.as_ref())
            .await?
        {
            return Ok(outcome);
        }
        tracing::info!(
            watch = %self.name(),
            object = %self.describe(version_id),
            etag = %info.etag,
            version = info.metadata.version.as_deref().unwrap_or("?"),
            "new release found; downloading"
        );
        let candidate = match self
            .fetch_and_verify(&info, trusted.as_ref(), cancel)
            .await?
        {
            Ok(candidate) => candidate,
            Err(reason) => {
                self.mark_bad(&info, None, &reason, trusted.as_ref())
                    .await?;
                tracing::error!(
                    watch = %self.name(),
                    object = %self.describe(version_id),
                    "release refused, nothing installed, marked bad: {reason}"
                );
                return Ok(Outcome::Refused { reason });
            }
        };
        // From here on the sequence is not cancelled: it ends installed or rolled back.
        self.install(candidate).await
    }

    /// When the object's SHA-256 (the signed one when the watch has a key) equals the
    /// installed package's (a rollback to the same bytes, or a rebuilt state), records
    /// its identity without downloading.
    async fn adopt_if_same(
        &self,
        info: &ObjectInfo,
        trusted: Option<&Trusted>,
    ) -> Result<Option<Outcome>, SyncError> {
        let current = self.state.watch(self.name(), &self.watch.package).await;
        let Some(installed) = &current.installed else {
            return Ok(None);
        };
        let sha256 = match trusted {
            Some(trusted) => Some(trusted.sha256()),
            None => info.metadata.sha256.as_deref(),
        };
        let same = sha256.is_some_and(|sha| sha.eq_ignore_ascii_case(&installed.sha256));
        if !same {
            return Ok(None);
        }
        let status = self
            .dpkg
            .query(&self.watch.package)
            .await
            .map_err(anyhow::Error::from)?;
        if !status.is_some_and(|s| s.is_installed() && s.version == installed.version) {
            return Ok(None);
        }
        let etag = info.etag.clone();
        let version_id = info.version_id.clone();
        self.state
            .update(self.name(), &self.watch.package, |w| {
                if let Some(installed) = w.installed.as_mut() {
                    installed.etag = Some(etag);
                    installed.version_id = version_id;
                    trust::adopt_times(installed, trusted);
                }
            })
            .await?;
        tracing::info!(
            watch = %self.name(),
            object = %self.describe(info.version_id.as_deref()),
            "object holds the installed package ({} {}); recorded without reinstalling",
            self.watch.package,
            installed.version
        );
        Ok(Some(Outcome::Adopted))
    }
}
