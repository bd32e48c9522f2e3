//! Building `hello` variants: `cargo build -p hello` with `HELLO_VERSION` and
//! `HELLO_BROKEN` set at compile time, one copy of the executable per variant.

use std::path::{Path, PathBuf};

use crate::workspace_bins::{self, Program};

/// A deliberately broken build of `hello` (`HELLO_BROKEN` at compile time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Broken {
    /// Exits non-zero during start-up, before reporting ready.
    Crash,
    /// Opens its listeners but never reports ready and never serves.
    Hang,
    /// Starts and takes over normally, but `/` and `/healthz` answer 500.
    Status500,
}

impl Broken {
    /// The `HELLO_BROKEN` value.
    pub fn as_env(self) -> &'static str {
        match self {
            Broken::Crash => "crash",
            Broken::Hang => "hang",
            Broken::Status500 => "500",
        }
    }
}

/// Builds `hello` reporting `version` (and broken as asked) and returns the path
/// of an executable for that variant, built once per process (see
/// [`crate::workspace_bins`], which also builds the `hoist` tools). Do not modify or
/// move that file; copy it (see [`replace_like_dpkg`]) to run it from a path of your
/// own.
///
/// # Panics
/// If `version` holds characters other than `[A-Za-z0-9.+~_-]`, or the build
/// fails (with cargo's output).
pub fn build_hello(version: &str, broken: Option<Broken>) -> PathBuf {
    assert!(
        !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~_-".contains(c)),
        "hello version {version:?} must be a non-empty [A-Za-z0-9.+~_-] string"
    );
    let variant = format!("hello-{version}-{}", broken.map_or("ok", Broken::as_env));
    let program = Program {
        package: "hello",
        bin: "hello",
        variant: &variant,
    };
    let env = [
        ("HELLO_VERSION", Some(version)),
        ("HELLO_BROKEN", broken.map(Broken::as_env)),
    ];
    workspace_bins::build(&[program], &env).remove(0)
}

/// Installs `source` at `destination` the way dpkg replaces a file: writes
/// `<destination>.dpkg-new` (mode 0755) and renames it over `destination`. A
/// process running the old file keeps it open; `/proc/<pid>/exe` of that
/// process then points at a deleted file.
///
/// # Panics
/// If copying or renaming fails.
pub fn replace_like_dpkg(source: &Path, destination: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut staged = destination.as_os_str().to_owned();
    staged.push(".dpkg-new");
    let staged = PathBuf::from(staged);
    std::fs::copy(source, &staged).unwrap_or_else(|e| {
        panic!(
            "cannot copy {} to {}: {e}",
            source.display(),
            staged.display()
        )
    });
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", staged.display()));
    std::fs::rename(&staged, destination).unwrap_or_else(|e| {
        panic!(
            "cannot rename {} over {}: {e}",
            staged.display(),
            destination.display()
        )
    });
}
