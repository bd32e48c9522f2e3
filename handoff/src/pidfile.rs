//! The pidfile: the pid of the process currently serving, for supervisors
//! without systemd (signal it, confirm an upgrade changed it).
//!
//! Written atomically (temporary file in the same directory, then rename), so a
//! reader sees the old pid or the new one, never a partial file. The successor
//! rewrites it when it takes over; a process that shuts down (not one that
//! handed over) removes it if it still names that process.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Reading a pidfile failed.
#[derive(Debug, thiserror::Error)]
pub enum PidfileError {
    /// The file could not be read.
    #[error("cannot read pidfile {path}: {source}; is the service running with --pidfile {path}?")]
    Read {
        /// The pidfile path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file does not hold a pid.
    #[error(
        "pidfile {path} does not hold a pid (content: {content:?}); remove it and restart the service"
    )]
    Malformed {
        /// The pidfile path.
        path: PathBuf,
        /// What the file holds (truncated).
        content: String,
    },
}

/// Reads the pid from a pidfile written by a handoff service.
///
/// # Errors
/// [`PidfileError::Read`] when the file is missing or unreadable,
/// [`PidfileError::Malformed`] when it holds anything but a decimal pid.
pub fn read_pidfile(path: &Path) -> Result<u32, PidfileError> {
    let content = std::fs::read_to_string(path).map_err(|source| PidfileError::Read {
        path: path.to_owned(),
        source,
    })?;
    content.trim().parse().map_err(|_| PidfileError::Malformed {
        path: path.to_owned(),
        content: content.chars().take(64).collect(),
    })
}

/// Atomically replaces the pidfile's content with `pid`, following no symlink: the
/// temporary file is created exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`, so a symlink
/// planted at its name is not followed; a stale one is removed and the create retried
/// once) in the pidfile's directory, then renamed over the pidfile (a rename replaces a
/// symlink at the path itself, never its target).
pub(crate) fn write(path: &Path, pid: u32) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the pidfile path has no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{pid}.tmp"));
    let temp = path.with_file_name(temp_name);
    let result = (|| {
        let mut file = match create_new_nofollow(&temp) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&temp)?;
                create_new_nofollow(&temp)?
            }
            other => other?,
        };
        writeln!(file, "{pid}")?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// A new file at `path`, mode 0644; fails if anything (a symlink included) is there.
fn create_new_nofollow(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// Removes the pidfile if it names `pid`; returns whether it did.
pub(crate) fn remove_if_names(path: &Path, pid: u32) -> io::Result<bool> {
    match read_pidfile(path) {
        Ok(current) if current == pid => std::fs::remove_file(path).map(|()| true),
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_atomically_and_remove_only_touches_own_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.pid");
        write(&path, 41).unwrap();
        assert_eq!(read_pidfile(&path).unwrap(), 41);
        write(&path, 42).unwrap();
        assert_eq!(read_pidfile(&path).unwrap(), 42);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left behind"
        );

        assert!(!remove_if_names(&path, 41).unwrap());
        assert!(path.exists());
        assert!(remove_if_names(&path, 42).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn symlinks_at_the_pidfile_or_its_temporary_name_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join("svc.pid");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        // A symlink planted at the temporary name too.
        let temp = dir.path().join(".svc.pid.43.tmp");
        std::os::unix::fs::symlink(&victim, &temp).unwrap();

        write(&path, 43).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(
            meta.file_type().is_file(),
            "the symlink was replaced by a file"
        );
        assert_eq!(read_pidfile(&path).unwrap(), 43);
        assert!(!temp.exists() && std::fs::symlink_metadata(&temp).is_err());
    }

    #[test]
    fn malformed_and_missing_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.pid");
        let missing = read_pidfile(&path).unwrap_err();
        assert!(matches!(missing, PidfileError::Read { .. }));
        std::fs::write(&path, "not a pid").unwrap();
        let malformed = read_pidfile(&path).unwrap_err();
        assert!(malformed.to_string().contains("bad.pid"), "{malformed}");
    }

    #[test]
    fn write_into_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("no/such/dir.pid"), 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
