//! Which program a successor runs: the path this process was started from.
//!
//! Resolved once at start from `argv[0]` (against the working directory, or
//! `PATH` for a bare name) and executed by path at every upgrade, so a binary
//! that a package manager replaced on disk (new file renamed over the old one)
//! is the one that runs. `/proc/self/exe` is never used: after such a
//! replacement it points at the deleted old file.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::error::StartError;

/// The program and arguments a successor is started with.
#[derive(Debug, Clone)]
pub(crate) struct Executable {
    pub(crate) path: PathBuf,
    pub(crate) args: Vec<OsString>,
    /// The working directory at start; successors start there so relative
    /// arguments keep their meaning.
    pub(crate) cwd: PathBuf,
}

impl Executable {
    /// This process's `argv[0]` resolved now, with its remaining arguments.
    pub(crate) fn of_current_process() -> Result<Self, StartError> {
        let mut argv = std::env::args_os();
        let argv0 = argv.next().ok_or(StartError::Executable {
            argv0: OsString::new(),
            problem: "the process has no argv[0]".to_owned(),
        })?;
        let cwd = std::env::current_dir().map_err(|e| StartError::Executable {
            argv0: argv0.clone(),
            problem: format!("cannot read the working directory: {e}"),
        })?;
        let path = resolve(&argv0, &cwd, std::env::var_os("PATH"))?;
        Ok(Executable {
            path,
            args: argv.collect(),
            cwd,
        })
    }

    /// A fixed program path (made absolute against the working directory) with
    /// this process's arguments.
    pub(crate) fn at_path(path: &Path) -> Result<Self, StartError> {
        let mut current = Self::of_current_process()?;
        current.path = current.cwd.join(path);
        Ok(current)
    }
}

/// Resolves `argv0` the way a shell found it: a name containing `/` is a path
/// (relative ones are joined to `cwd`, symlinks are kept so they are followed
/// again at exec time); a bare name is looked up in `path_env`.
pub(crate) fn resolve(
    argv0: &OsStr,
    cwd: &Path,
    path_env: Option<OsString>,
) -> Result<PathBuf, StartError> {
    if argv0.is_empty() {
        return Err(StartError::Executable {
            argv0: argv0.to_owned(),
            problem: "argv[0] is empty".to_owned(),
        });
    }
    let as_path = Path::new(argv0);
    if argv0.as_encoded_bytes().contains(&b'/') {
        // `components` drops `.` segments; `..` stays, as it may cross a symlink.
        return Ok(cwd.join(as_path).components().collect());
    }
    which::which_in(argv0, path_env, cwd).map_err(|e| StartError::Executable {
        argv0: argv0.to_owned(),
        problem: format!("not found in PATH ({e}); start the service by its full path"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn relative_and_absolute_paths_are_joined_to_cwd_and_keep_dot_dot() {
        let cwd = Path::new("/srv/app");
        assert_eq!(
            resolve(OsStr::new("./bin/hello"), cwd, None).unwrap(),
            PathBuf::from("/srv/app/bin/hello")
        );
        assert_eq!(
            resolve(OsStr::new("/usr/bin/hello"), cwd, None).unwrap(),
            PathBuf::from("/usr/bin/hello")
        );
        assert_eq!(
            resolve(OsStr::new("../hello"), cwd, None).unwrap(),
            PathBuf::from("/srv/app/../hello")
        );
    }

    #[test]
    fn bare_names_are_searched_in_path() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("hello-test-prog");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = resolve(
            OsStr::new("hello-test-prog"),
            Path::new("/"),
            Some(dir.path().as_os_str().to_owned()),
        )
        .unwrap();
        assert_eq!(found, program);

        let missing = resolve(
            OsStr::new("no-such-prog"),
            Path::new("/"),
            Some(dir.path().as_os_str().to_owned()),
        )
        .unwrap_err();
        assert!(missing.to_string().contains("full path"), "{missing}");
    }
}
