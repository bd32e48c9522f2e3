//! The one error type of this crate.
//!
//! Every message names the problem and what to do about it, so a caller can show it to
//! the user as is.

use std::io;
use std::path::PathBuf;

/// Why a package could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// A control field breaks Debian policy (package name, version, architecture,
    /// maintainer, description, a relation field, section, priority, homepage).
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidField {
        /// The control field, e.g. `Version`.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// An input file (binary, unit, conffile, extra file, maintainer script) does not exist.
    #[error("{role} `{}` does not exist: {hint}", path.display())]
    MissingFile {
        /// What the file was meant to be, e.g. "binary for /usr/bin/hello".
        role: String,
        /// The path that was looked up.
        path: PathBuf,
        /// How to fix it.
        hint: &'static str,
    },

    /// An input file exists but cannot be read (permissions, a directory, ...).
    #[error("{role} `{}` cannot be read ({source}): fix its permissions or point to a readable regular file", path.display())]
    UnreadableFile {
        /// What the file was meant to be.
        role: String,
        /// The path that could not be read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// An input file changed size while it was being packed.
    #[error("{role} `{}` changed while it was being packed (expected {expected} bytes): wait for the build that writes it to finish and run again", path.display())]
    FileChanged {
        /// What the file was meant to be.
        role: String,
        /// The file.
        path: PathBuf,
        /// The size seen before reading.
        expected: u64,
    },

    /// An install destination is not acceptable.
    #[error("invalid destination `{dest}`: {reason}")]
    InvalidDestination {
        /// The rejected destination path.
        dest: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// Two entries install to the same path.
    #[error("two entries install to `{dest}`: keep one of them or change a `dest`")]
    DuplicateDestination {
        /// The path installed twice.
        dest: String,
    },

    /// A file mode outside 0..=0o7777.
    #[error("invalid mode {mode:#o} for `{dest}`: use permission bits only, e.g. 0o644 or 0o755")]
    InvalidMode {
        /// The destination the mode was given for.
        dest: String,
        /// The rejected mode.
        mode: u32,
    },

    /// A systemd unit that cannot be installed.
    #[error("invalid systemd unit `{}`: {reason}", path.display())]
    InvalidUnit {
        /// The unit's source file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A maintainer script supplied by the user that cannot be used.
    #[error("invalid {script} script `{}`: {reason}", path.display())]
    InvalidScript {
        /// Which script (postinst, prerm, ...).
        script: &'static str,
        /// The script's source file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// The package ships no copyright file and none can be generated.
    #[error(
        "package `{package}` has no copyright file: Debian policy 12.5 requires \
         /usr/share/doc/{package}/copyright; give a license (e.g. `license = \"MIT\"`) so one is \
         generated, or install your own file there"
    )]
    MissingCopyright {
        /// The package name.
        package: String,
    },

    /// The output directory is missing or not writable, or writing the package failed.
    #[error("cannot write {what} in `{}` ({source}): check that the directory exists, is writable and has free space", dir.display())]
    Write {
        /// What was being written.
        what: String,
        /// The directory written to.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// A compressor failed (out of memory, a broken library).
    #[error("{compression} compression failed: {reason}")]
    Compression {
        /// The compression in use.
        compression: &'static str,
        /// What went wrong.
        reason: String,
    },

    /// A file given to [`inspect`](crate::inspect) is not a readable Debian package.
    #[error("`{}` is not a valid .deb: {reason}", path.display())]
    NotADeb {
        /// The file inspected.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A file given to [`inspect`](crate::inspect) cannot be opened or read.
    #[error("cannot read `{}` ({source}): check the path and its permissions", path.display())]
    ReadPackage {
        /// The file inspected.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl DebError {
    pub(crate) fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> Self {
        DebError::InvalidField {
            field,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_dest(dest: &str, reason: impl Into<String>) -> Self {
        DebError::InvalidDestination {
            dest: dest.to_owned(),
            reason: reason.into(),
        }
    }
}
