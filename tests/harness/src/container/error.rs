//! Why a container host could not be built, booted, used or cleaned up.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in [`crate::container`]. Each message names the
/// problem and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// A host tool is missing.
    #[error(
        "`{tool}` is not installed: run `make test` (scripts/install-test-deps.sh installs {package})"
    )]
    MissingTool {
        /// The command that was not found.
        tool: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// Containers need root (mounts, namespaces, systemd-nspawn).
    #[error("container hosts need root (overlay mounts and systemd-nspawn): run the tests as root")]
    NotRoot,
    /// A host name that cannot be used as a machine and directory name.
    #[error(
        "invalid host name `{0}`: use 1-40 characters of a-z, 0-9 and `-`, starting with a letter"
    )]
    InvalidName(String),
    /// A file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A command ran but failed.
    #[error("`{command}` failed ({status}): {output}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its stderr (and stdout).
        output: String,
    },
    /// A command did not finish within its deadline and was killed.
    #[error(
        "`{command}` did not finish within {timeout:?} and was killed; output so far: {output}"
    )]
    CommandTimeout {
        /// The command line.
        command: String,
        /// The deadline it missed.
        timeout: Duration,
        /// What it printed before it was killed.
        output: String,
    },
    /// The container did not boot.
    #[error(
        "container `{name}` did not boot: {reason}\n--- end of its console ({console}) ---\n{tail}"
    )]
    Boot {
        /// The host name.
        name: String,
        /// What went wrong.
        reason: String,
        /// The console log file.
        console: PathBuf,
        /// The last lines of the console log.
        tail: String,
    },
    /// The container is not running (it was powered off, or crashed).
    #[error("container `{0}` is not running; boot it again or look at its console log")]
    NotRunning(String),
    /// Stopping the container left something behind.
    #[error("container `{name}` left things behind after shutdown: {leftovers:?}")]
    Leftovers {
        /// The host name.
        name: String,
        /// What is still there (processes, mounts, files).
        leftovers: Vec<String>,
    },
}

impl ContainerError {
    /// An [`ContainerError::Io`] with a description of the operation.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
        let what = what.into();
        move |source| ContainerError::Io { what, source }
    }
}
