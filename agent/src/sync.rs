//! One synchronisation of one watch: HEAD the object; when it changed, GET that exact
//! version, verify it, install it, hand the service over to it and check its health; on
//! failure reinstall the previous good package and mark the version bad.
//!
//! Everything up to the end of the download can be cancelled (shutdown); from the install
//! on, the sequence runs to completion so that no half install is left behind.

use std::path::PathBuf;
use std::sync::Arc;

use hoist_s3::{Head, ObjectInfo, S3, S3Error};
use tokio_util::sync::CancellationToken;

use crate::cache::{self, Dirs};
use crate::config::{SignalConfig, WatchConfig};
use crate::download::{self, DownloadError, Downloaded};
use crate::dpkg::Dpkg;
use crate::service;
use crate::shared_state::SharedState;
use crate::state::{BadRelease, Release, now_rfc3339};
use crate::verify::{self, Refusal};

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
    /// The public key, when signatures are required.
    pub public_key: Option<minisign_verify::PublicKey>,
    /// dpkg runner.
    pub dpkg: Dpkg,
    /// Host architecture (`dpkg --print-architecture`).
    pub host_arch: String,
    /// State directory layout.
    pub dirs: Dirs,
    /// Cached packages kept per watch.
    pub keep_packages: usize,
    /// The shared state file.
    pub state: Arc<SharedState>,
    /// Serialises dpkg runs of all watches.
    pub install_lock: Arc<tokio::sync::Mutex<()>>,
}

/// A downloaded, verified package ready to install.
struct Candidate {
    info: ObjectInfo,
    version: String,
    md5: String,
    sha256: String,
    deb: PathBuf,
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

    /// Runs one sync. Cancellation is honoured until the download is complete.
    pub async fn sync_once(&self, cancel: &CancellationToken) -> Result<Outcome, SyncError> {
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
        if let Some(outcome) = self.adopt_if_same(&info).await? {
            return Ok(outcome);
        }
        tracing::info!(
            watch = %self.name(),
            object = %self.describe(version_id),
            etag = %info.etag,
            version = info.metadata.version.as_deref().unwrap_or("?"),
            "new release found; downloading"
        );
        let candidate = match self.fetch_and_verify(&info, cancel).await? {
            Ok(candidate) => candidate,
            Err(reason) => {
                self.mark_bad(&info, None, &reason).await?;
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

    /// When the object's recorded SHA-256 equals the installed package's (a rollback to the
    /// same bytes, or a rebuilt state), records its identity without downloading.
    async fn adopt_if_same(&self, info: &ObjectInfo) -> Result<Option<Outcome>, SyncError> {
        let current = self.state.watch(self.name(), &self.watch.package).await;
        let Some(installed) = &current.installed else {
            return Ok(None);
        };
        let same = info
            .metadata
            .sha256
            .as_deref()
            .is_some_and(|sha| sha.eq_ignore_ascii_case(&installed.sha256));
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

    /// GETs exactly the version the HEAD saw, streams it to disk and verifies it. The
    /// inner `Err` is a refusal (mark bad); the outer one a transient failure.
    async fn fetch_and_verify(
        &self,
        head: &ObjectInfo,
        cancel: &CancellationToken,
    ) -> Result<Result<Candidate, String>, SyncError> {
        let (info, body) = tokio::select! {
            got = self.s3.get(head.version_id.as_deref()) => got?,
            () = cancel.cancelled() => return Err(SyncError::Cancelled),
        };
        let expected_sha256 = match verify::expected_sha256(info.metadata.sha256.as_deref()) {
            Ok(sha) => sha,
            Err(refusal) => return Ok(Err(refusal.to_string())),
        };
        let signature =
            match verify::signature_for(self.public_key.as_ref(), info.metadata.minisig.as_deref())
            {
                Ok(sig) => sig,
                Err(refusal) => return Ok(Err(refusal.to_string())),
            };
        let pair = match (&self.public_key, &signature) {
            (Some(key), Some(sig)) => Some((key, sig)),
            _ => None,
        };
        let what = self.describe(info.version_id.as_deref());
        let partial_dir = self.dirs.partial();
        let downloaded: Downloaded = tokio::select! {
            done = download::download(body, &partial_dir, pair) => done.map_err(|source| SyncError::Download { what: what.clone(), source })?,
            () = cancel.cancelled() => return Err(SyncError::Cancelled),
        };
        match verify::check_transfer(
            info.size,
            &info.etag,
            hoist_s3::etag_md5(&info.etag),
            &downloaded,
        ) {
            Ok(()) => {}
            Err(Refusal::Retry(why)) => {
                return Err(SyncError::Transfer(format!(
                    "{what}: {why}; will download again"
                )));
            }
            Err(Refusal::Bad(why)) => return Ok(Err(why)),
        }
        if let Err(refusal) =
            verify::check_content(&expected_sha256, info.metadata.md5.as_deref(), &downloaded)
        {
            return Ok(Err(refusal.to_string()));
        }
        let deb_info =
            match verify::check_package(downloaded.path(), &self.watch.package, &self.host_arch) {
                Ok(info) => info,
                Err(refusal) => return Ok(Err(refusal.to_string())),
            };
        if let Some(signature) = &signature
            && let Err(refusal) =
                verify::check_signed_release(signature, &deb_info, &downloaded.sha256)
        {
            return Ok(Err(refusal.to_string()));
        }
        let cache_dir = self.dirs.cache(self.name());
        std::fs::create_dir_all(&cache_dir).map_err(|err| {
            anyhow::anyhow!(
                "cannot create the cache directory `{}`: {err}",
                cache_dir.display()
            )
        })?;
        let deb = cache_dir.join(cache::file_name(
            &deb_info.package,
            &deb_info.version,
            &deb_info.architecture,
            &downloaded.sha256,
        ));
        let md5 = hex::encode(downloaded.md5);
        let sha256 = downloaded.sha256.clone();
        downloaded.persist(&deb).map_err(|err| {
            anyhow::anyhow!("cannot move the download into `{}`: {err}", deb.display())
        })?;
        tracing::info!(
            watch = %self.name(),
            deb = %deb.display(),
            version = %deb_info.version,
            sha256 = %sha256,
            signed = self.public_key.is_some(),
            "downloaded and verified"
        );
        Ok(Ok(Candidate {
            info,
            version: deb_info.version,
            md5,
            sha256,
            deb,
        }))
    }

    /// Installs, signals, checks; rolls back on any failure.
    async fn install(&self, candidate: Candidate) -> Result<Outcome, SyncError> {
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
            return self.roll_back(candidate, previous, reason).await;
        }
        tracing::info!(
            watch = %self.name(),
            "installed {} {}",
            self.watch.package,
            candidate.version
        );
        let reexec = self.watch.package == OWN_PACKAGE;
        if !reexec {
            match service::reload(
                &self.watch.signal,
                &self.watch.health,
                self.watch.handoff_timeout,
            )
            .await
            {
                Ok(reloaded) => log_reloaded(self.name(), &self.watch.signal, reloaded),
                Err(err) => {
                    let reason = format!("the new version did not take over: {err}");
                    return self.roll_back(candidate, previous, reason).await;
                }
            }
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

    /// Reinstalls `previous` (if any), signals again, and marks the candidate bad.
    async fn roll_back(
        &self,
        candidate: Candidate,
        previous: Option<Release>,
        reason: String,
    ) -> Result<Outcome, SyncError> {
        self.mark_bad(&candidate.info, Some(&candidate.version), &reason)
            .await?;
        tracing::error!(
            watch = %self.name(),
            object = %self.describe(candidate.info.version_id.as_deref()),
            version = %candidate.version,
            "release failed and is marked bad (not retried until a newer one appears): {reason}"
        );
        match previous {
            Some(previous) if previous.deb.is_file() => {
                match self
                    .dpkg
                    .install(&previous.deb, &self.watch.package, &previous.version)
                    .await
                {
                    Ok(()) => {
                        let reexec = self.watch.package == OWN_PACKAGE;
                        if !reexec {
                            match service::reload(
                                &self.watch.signal,
                                &self.watch.health,
                                self.watch.handoff_timeout,
                            )
                            .await
                            {
                                Ok(reloaded) => {
                                    log_reloaded(self.name(), &self.watch.signal, reloaded)
                                }
                                Err(err) => tracing::error!(
                                    watch = %self.name(),
                                    "rolled back to {} {} but the service did not take it over: {err}; check the service",
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
        if let Err(err) = std::fs::remove_file(&candidate.deb) {
            tracing::debug!(
                "cannot remove the failed package {}: {err}",
                candidate.deb.display()
            );
        }
        Ok(Outcome::RolledBack { reason })
    }

    async fn mark_bad(
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
