//! Room on disk for a download, checked before the GET (`statvfs`), and recognising a
//! full disk while writing.
//!
//! A package of `size` bytes needs, before any byte is fetched:
//! - on the state directory's filesystem: `size` (the download, later renamed into the
//!   cache) plus [`RESERVE`];
//! - on the filesystem dpkg installs into (the `[dpkg] root`, else `/`):
//!   [`UNPACK_FACTOR`] × `size` plus [`RESERVE`], because dpkg writes every new file
//!   beside the old one before renaming it over, and a `.deb` is compressed (its unpacked
//!   size is typically 2–3 times the package);
//! - both, added up, when the two are one filesystem.
//!
//! Space that is missing is a condition of the host, not of the release: the agent
//! backs off and tries again later; it does not mark the release bad.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Kept free on each filesystem besides the package itself (state file writes, logs).
pub const RESERVE: u64 = 16 << 20;
/// Room dpkg needs on the installed filesystem, as a multiple of the package size.
pub const UNPACK_FACTOR: u64 = 2;

/// Not enough free space for a download.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not enough free space in `{dir}` for a package of {package}: {available} available, {needed} needed (the package and a margin for dpkg unpacking); free some space or move state_dir; will retry"
)]
pub struct NoRoom {
    /// The directory whose filesystem is short.
    pub dir: PathBuf,
    /// The package size, for messages.
    pub package: String,
    /// Free bytes there, for messages.
    pub available: String,
    /// Bytes needed there, for messages.
    pub needed: String,
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path`
/// (`f_bavail × f_frsize`).
pub fn available(path: &Path) -> std::io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    // fsblkcnt_t and c_ulong are u64 here, narrower on some platforms.
    #[allow(clippy::useless_conversion)]
    let (blocks, fragment) = (
        u64::from(stat.blocks_available()),
        u64::from(stat.fragment_size()),
    );
    Ok(blocks.saturating_mul(fragment))
}

/// True for "no space left on device" and "disk quota exceeded".
pub fn is_disk_full(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == nix::libc::ENOSPC || code == nix::libc::EDQUOT
    )
}

/// Checks that a package of `size` bytes fits (see the module documentation):
/// `state_dir` holds the download, `install_root` is the tree dpkg unpacks into.
/// A filesystem whose free space cannot be read is not held against the download.
pub fn check_room(state_dir: &Path, install_root: &Path, size: u64) -> Result<(), NoRoom> {
    let device = |path: &Path| std::fs::metadata(path).map(|m| m.dev()).ok();
    let for_download = size.saturating_add(RESERVE);
    let for_unpack = size.saturating_mul(UNPACK_FACTOR).saturating_add(RESERVE);
    let same = device(state_dir).is_some() && device(state_dir) == device(install_root);
    let mut needs = vec![(
        state_dir,
        if same {
            for_download.saturating_add(for_unpack)
        } else {
            for_download
        },
    )];
    if !same {
        needs.push((install_root, for_unpack));
    }
    for (dir, needed) in needs {
        let Ok(free) = available(dir) else {
            tracing::debug!(dir = %dir.display(), "cannot read the free space; not checked");
            continue;
        };
        if free < needed {
            return Err(NoRoom {
                dir: dir.to_owned(),
                package: crate::size::describe(size),
                available: crate::size::describe(free),
                needed: crate::size::describe(needed),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_larger_than_the_disk_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let free = available(dir.path()).unwrap();
        assert!(free > 0);
        check_room(dir.path(), dir.path(), 1024).unwrap();
        let err = check_room(dir.path(), Path::new("/"), free).unwrap_err();
        assert_eq!(err.dir, dir.path());
        assert!(err.to_string().contains("not enough free space"), "{err}");
        // One filesystem: download and unpacking add up.
        let third = free / 3;
        let err = check_room(dir.path(), dir.path(), third).unwrap_err();
        assert_eq!(err.dir, dir.path());
    }

    #[test]
    fn enospc_and_edquot_are_disk_full() {
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(
            nix::libc::ENOSPC
        )));
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(
            nix::libc::EDQUOT
        )));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(
            nix::libc::EIO
        )));
    }
}
