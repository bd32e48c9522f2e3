//! Fetching a changed object: refuse it unread when it is larger than the watch allows;
//! take a verified copy from the cache when one holds its SHA-256; otherwise check the
//! free space, GET exactly the version the HEAD saw, and stream it to disk while hashing.
//! Then verify it (transfer, content against the signed statement's SHA-256, package).

use hoist_s3::{ObjectBody, ObjectInfo};
use tokio_util::sync::CancellationToken;

use super::{Candidate, SyncError, Syncer};
use crate::cache;
use crate::download::{self, Downloaded};
use crate::freshness::Trusted;
use crate::verify::{self, Refusal};

/// Where the package's bytes come from.
enum Source {
    /// A verified copy already in the cache (see `reuse`).
    Cache(Downloaded),
    /// The GET's body.
    S3(ObjectBody),
}

impl Syncer {
    /// GETs exactly the version the HEAD saw, streams it to disk and verifies it. The
    /// inner `Err` is a refusal (mark bad); the outer one a transient failure.
    pub(super) async fn fetch_and_verify(
        &self,
        head: &ObjectInfo,
        trusted: Option<&Trusted>,
        cancel: &CancellationToken,
    ) -> Result<Result<Candidate, String>, SyncError> {
        if let Err(reason) = self.check_size(head) {
            return Ok(Err(reason));
        }
        // Signed: the authenticated statement's SHA-256 decides (it covers the bytes, so
        // no second signature runs over the download).
        let expected_sha256 = match trusted {
            Some(trusted) => trusted.sha256().to_owned(),
            None => match verify::expected_sha256(head.metadata.sha256.as_deref()) {
                Ok(sha) => sha,
                Err(refusal) => return Ok(Err(refusal.to_string())),
            },
        };
        let cached = self.verified_cache_copy(head, &expected_sha256).await;
        if cached.is_none() {
            self.check_room(head)?;
        }
        let (info, body) = match cached {
            Some(copy) => (head.clone(), Source::Cache(copy)),
            None => tokio::select! {
                got = self.s3.get(head.version_id.as_deref()) => {
                    let (info, body) = got?;
                    (info, Source::S3(body))
                }
                () = cancel.cancelled() => return Err(SyncError::Cancelled),
            },
        };
        let what = self.describe(info.version_id.as_deref());
        let partial_dir = self.dirs.partial();
        let downloaded: Downloaded = match body {
            Source::Cache(copy) => copy,
            Source::S3(body) => tokio::select! {
                done = download::download(body, &partial_dir, None) => done.map_err(|source| self.download_failed(&what, source))?,
                () = cancel.cancelled() => return Err(SyncError::Cancelled),
            },
        };
        match verify::check_transfer(info.size, &info.etag, info.etag_md5(), &downloaded) {
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
        let from_cache = downloaded.is_cached();
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
            from_cache = from_cache,
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
