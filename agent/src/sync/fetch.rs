//! Fetching a changed object: GET exactly the version the HEAD saw, stream it to disk
//! while hashing, and verify it (transfer, content against the signed statement's
//! SHA-256, package).

use hoist_s3::ObjectInfo;
use tokio_util::sync::CancellationToken;

use super::{Candidate, SyncError, Syncer};
use crate::cache;
use crate::download::{self, Downloaded};
use crate::freshness::Trusted;
use crate::verify::{self, Refusal};

impl Syncer {
    /// GETs exactly the version the HEAD saw, streams it to disk and verifies it. The
    /// inner `Err` is a refusal (mark bad); the outer one a transient failure.
    pub(super) async fn fetch_and_verify(
        &self,
        head: &ObjectInfo,
        trusted: Option<&Trusted>,
        cancel: &CancellationToken,
    ) -> Result<Result<Candidate, String>, SyncError> {
        let (info, body) = tokio::select! {
            got = self.s3.get(head.version_id.as_deref()) => got?,
            () = cancel.cancelled() => return Err(SyncError::Cancelled),
        };
        // Signed: the authenticated statement's SHA-256 decides (it covers the bytes, so
        // no second signature runs over the download).
        let expected_sha256 = match trusted {
            Some(trusted) => trusted.sha256().to_owned(),
            None => match verify::expected_sha256(info.metadata.sha256.as_deref()) {
                Ok(sha) => sha,
                Err(refusal) => return Ok(Err(refusal.to_string())),
            },
        };
        let what = self.describe(info.version_id.as_deref());
        let partial_dir = self.dirs.partial();
        let downloaded: Downloaded = tokio::select! {
            done = download::download(body, &partial_dir, None) => done.map_err(|source| SyncError::Download { what: what.clone(), source })?,
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
        if let Some(trusted) = trusted
            && let Err(refusal) = verify::check_signed_version(&trusted.release, &deb_info)
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
            signed = trusted.is_some(),
            "downloaded and verified"
        );
        Ok(Ok(Candidate {
            info,
            version: deb_info.version,
            md5,
            sha256,
            deb,
            trusted: trusted.cloned(),
        }))
    }
}
