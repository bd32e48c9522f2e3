//! Reusing a verified package: after a crash or a restart, a cached package with the
//! object's SHA-256 (the signed statement's, when signed) is read again (every byte
//! hashed) and, when it still matches, goes through the same checks as a
//! download — without a GET.

use hoist_s3::ObjectInfo;

use super::Syncer;
use crate::cache;
use crate::download::{self, Downloaded};

impl Syncer {
    /// The cached copy of the object's package, re-hashed, when one whose SHA-256 and
    /// size match the object's metadata is in the cache; `None` otherwise (download it).
    pub(super) async fn verified_cache_copy(
        &self,
        head: &ObjectInfo,
        expected: &str,
    ) -> Option<Downloaded> {
        for path in cache::find_by_sha256(&self.dirs.cache(self.name()), expected) {
            match download::rehash(&path, None).await {
                Ok(copy) if copy.sha256 == expected && copy.size == head.size => {
                    tracing::info!(
                        watch = %self.name(),
                        deb = %path.display(),
                        sha256 = %expected,
                        "the package is already in the cache and its SHA-256 matches; using it instead of downloading it again"
                    );
                    return Some(copy);
                }
                Ok(copy) => tracing::warn!(
                    watch = %self.name(),
                    deb = %path.display(),
                    "the cached package does not match the object (SHA-256 {}, {} bytes; expected {expected}, {} bytes); downloading it again",
                    copy.sha256,
                    copy.size,
                    head.size
                ),
                Err(err) => tracing::warn!(
                    watch = %self.name(),
                    deb = %path.display(),
                    "cannot read the cached package ({err}); downloading it again"
                ),
            }
        }
        None
    }
}
