//! Re-executing the agent after it installed a new version of itself.
//!
//! The path is resolved once at start from `argv[0]` (made absolute, or looked up in
//! `PATH`) — not `/proc/self/exe`, which after dpkg replaced the binary points at the
//! deleted old file.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The agent's own start path and arguments.
#[derive(Debug, Clone)]
pub struct StartCommand {
    /// Absolute path of the executable as started.
    pub path: PathBuf,
    /// The full argument vector (argv[0] included).
    pub args: Vec<OsString>,
}

impl StartCommand {
    /// Resolves the start path from the current process's arguments.
    pub fn current() -> std::io::Result<Self> {
        let args: Vec<OsString> = std::env::args_os().collect();
        let argv0 = args
            .first()
            .cloned()
            .ok_or_else(|| std::io::Error::other("argv[0] is missing"))?;
        let path = resolve(Path::new(&argv0), std::env::var_os("PATH").as_deref())?;
        Ok(Self { path, args })
    }

    /// Replaces the process image with a fresh start of the same command. Returns only on
    /// failure.
    pub fn exec(&self) -> anyhow::Error {
        let to_c = |s: &std::ffi::OsStr| CString::new(s.as_bytes());
        let path = match to_c(self.path.as_os_str()) {
            Ok(p) => p,
            Err(err) => return anyhow::anyhow!("start path contains a NUL byte: {err}"),
        };
        let args: Result<Vec<CString>, _> = self.args.iter().map(|a| to_c(a)).collect();
        let args = match args {
            Ok(a) => a,
            Err(err) => return anyhow::anyhow!("an argument contains a NUL byte: {err}"),
        };
        match nix::unistd::execv(&path, &args) {
            Ok(never) => match never {},
            Err(err) => anyhow::anyhow!(
                "cannot re-execute `{}`: {err}; restart the agent (systemctl restart hoist-agent)",
                self.path.display()
            ),
        }
    }
}

/// `argv0` made absolute: relative paths with a `/` against the current directory, bare
/// names looked up in `path_var`.
fn resolve(argv0: &Path, path_var: Option<&std::ffi::OsStr>) -> std::io::Result<PathBuf> {
    if argv0.is_absolute() {
        return Ok(argv0.to_owned());
    }
    if argv0.as_os_str().as_bytes().contains(&b'/') {
        return Ok(std::env::current_dir()?.join(argv0));
    }
    if let Some(path_var) = path_var {
        for dir in std::env::split_paths(path_var) {
            let candidate = dir.join(argv0);
            if is_executable(&candidate) {
                return Ok(if candidate.is_absolute() {
                    candidate
                } else {
                    std::env::current_dir()?.join(candidate)
                });
            }
        }
    }
    Err(std::io::Error::other(format!(
        "cannot find `{}` in PATH to re-execute it after a self-update; start the agent by its full path",
        argv0.display()
    )))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_relative_and_path_lookup() {
        assert_eq!(
            resolve(Path::new("/usr/bin/hoist-agent"), None).unwrap(),
            PathBuf::from("/usr/bin/hoist-agent")
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            resolve(Path::new("./x/agent"), None).unwrap(),
            cwd.join("./x/agent")
        );
        let found = resolve(
            Path::new("sh"),
            Some(std::ffi::OsStr::new("/nonexistent:/bin")),
        )
        .unwrap();
        assert_eq!(found, PathBuf::from("/bin/sh"));
        assert!(
            resolve(
                Path::new("no-such-hoist-binary"),
                Some(std::ffi::OsStr::new("/bin"))
            )
            .is_err()
        );
    }

    #[test]
    fn current_resolves_to_an_existing_file() {
        let cmd = StartCommand::current().unwrap();
        assert!(cmd.path.is_absolute());
        assert!(cmd.path.exists(), "{}", cmd.path.display());
        assert!(!cmd.args.is_empty());
    }
}
