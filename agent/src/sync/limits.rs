//! Bounds checked before a download: the object's size against `max_package_size`
//! (too large → refused and marked bad, no byte fetched), and the free space of the
//! state and install filesystems (too little → [`SyncError::DiskFull`], retried later).

use hoist_s3::ObjectInfo;

use super::{SyncError, Syncer};
use crate::diskspace;
use crate::download::DownloadError;
use crate::size;

impl Syncer {
    /// The refusal reason when the object (per the HEAD's Content-Length) is larger than
    /// the watch's `max_package_size`.
    pub(super) fn check_size(&self, head: &ObjectInfo) -> Result<(), String> {
        if head.size <= self.max_package_size {
            return Ok(());
        }
        Err(format!(
            "the object is {}, larger than max_package_size = {}: refused without downloading it; if this release is meant to be that large, raise `max_package_size` (of the watch or globally) in the agent config",
            size::describe(head.size),
            size::describe(self.max_package_size)
        ))
    }

    /// [`SyncError::DiskFull`] when the state directory or the tree dpkg installs into
    /// lacks room for the object (see [`diskspace::check_room`]).
    pub(super) fn check_room(&self, head: &ObjectInfo) -> Result<(), SyncError> {
        let install_root = crate::service::target::install_root(&self.dpkg);
        diskspace::check_room(&self.dirs.partial(), &install_root, head.size).map_err(|no_room| {
            SyncError::DiskFull(format!(
                "{}: {no_room}",
                self.describe(head.version_id.as_deref())
            ))
        })
    }

    /// The error for a failed download: [`SyncError::DiskFull`] when the disk filled up
    /// (the partial file is already removed), else [`SyncError::Download`].
    pub(super) fn download_failed(&self, what: &str, source: DownloadError) -> SyncError {
        if source.is_disk_full() {
            SyncError::DiskFull(format!(
                "disk full while downloading {what}: {source}; the partial download was removed; free some space in the state directory (will retry)"
            ))
        } else {
            SyncError::Download {
                what: what.to_owned(),
                source,
            }
        }
    }
}
