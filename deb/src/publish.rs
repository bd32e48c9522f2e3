//! Putting a finished package under its final name.

use std::fs;
use std::io;
use std::path::Path;

use tempfile::NamedTempFile;
use tracing::warn;

/// Moves the finished `temp` file to `target` atomically: at every moment `target`
/// names either the previous complete file or the new one, never a partial one.
///
/// When `target` already exists the two files are swapped (`renameat2` with
/// `RENAME_EXCHANGE`) and the previous one, now under the temporary name, is removed.
/// A plain rename over an existing file would make ext4 (its `auto_da_alloc`
/// heuristic) write the new file's data out before the rename returns — about 10 ms
/// for a 14 MB package — a durability a build output does not need: like dpkg-deb,
/// which truncates and rewrites its output without fsync, we leave the writing out to
/// the kernel. Where the swap is not supported, a plain rename does the job.
///
/// # Errors
/// The rename failed; `temp` is then removed and `target` is untouched. A previous
/// file that cannot be removed after the swap is only logged: the new package is in
/// place.
pub(crate) fn publish(temp: NamedTempFile, target: &Path) -> io::Result<()> {
    // Only a regular file is swapped out: anything else in the way (a directory, a
    // symlink) gets rename's own verdict.
    let replaces_file = fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_file());
    if !replaces_file {
        return rename(temp, target);
    }
    match exchange(temp.path(), target) {
        Ok(()) => {
            // `temp`'s path now names the previous package.
            let previous = temp.into_temp_path();
            let shown = previous.to_path_buf();
            if let Err(err) = previous.close() {
                warn!(path = %shown.display(), error = %err, "cannot remove the replaced package");
            }
            Ok(())
        }
        Err(err) if swap_impossible(&err) => rename(temp, target),
        Err(err) => Err(err),
    }
}

fn rename(temp: NamedTempFile, target: &Path) -> io::Result<()> {
    temp.persist(target).map(drop).map_err(|e| e.error)
}

/// The file to swap with is gone (`ENOENT`), or there is no `RENAME_EXCHANGE` on
/// this system or filesystem.
fn swap_impossible(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
    )
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE).map_err(io::Error::from)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write as _;
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    fn temp_with(dir: &Path, bytes: &[u8]) -> NamedTempFile {
        let mut temp = tempfile::Builder::new()
            .prefix(".hoist-")
            .tempfile_in(dir)
            .unwrap();
        temp.write_all(bytes).unwrap();
        temp
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_the_target_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("p.deb");
        publish(temp_with(dir.path(), b"new"), &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["p.deb"]);
    }

    #[test]
    fn replaces_the_target_and_removes_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("p.deb");
        fs::write(&target, b"old").unwrap();
        let old_inode = fs::metadata(&target).unwrap().ino();
        publish(temp_with(dir.path(), b"new"), &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["p.deb"]);
        assert_ne!(fs::metadata(&target).unwrap().ino(), old_inode);
    }

    #[test]
    fn a_failed_rename_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way cannot be replaced by a file.
        let target = dir.path().join("p.deb");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"kept").unwrap();
        let err = publish(temp_with(dir.path(), b"new"), &target).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert_eq!(names(dir.path()), ["p.deb"]);
        assert_eq!(fs::read(target.join("inside")).unwrap(), b"kept");
    }
}
