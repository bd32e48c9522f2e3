//! Building `hello` variants: `cargo build -p hello` with `HELLO_VERSION` and
//! `HELLO_BROKEN` set, in a target directory of its own, copied to a path per
//! variant.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use nix::fcntl::{Flock, FlockArg};

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

/// Variants built by this test process, so each is built once per process.
static BUILT: Mutex<BTreeMap<(String, Option<Broken>), PathBuf>> = Mutex::new(BTreeMap::new());

/// Builds `hello` reporting `version` (and broken as asked) and returns the path
/// of an executable for that variant. Do not modify or move that file; copy it
/// (see [`replace_like_dpkg`]) to run it from a path of your own.
///
/// Builds with `cargo build -p hello` (debug profile) in
/// `$CARGO_TARGET_DIR/hello-variants/target` (or `<workspace>/target/hello-variants`
/// when `CARGO_TARGET_DIR` is unset), so it never waits on the lock of the
/// `cargo test` that runs the caller; the first build there compiles the
/// dependencies once. Builds are serialised across threads and processes with
/// a file lock, since one target directory serves every variant. The
/// executable is copied to `hello-variants/bin/hello-<version>-<variant>`.
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
    let key = (version.to_owned(), broken);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = built.get(&key) {
        return path.clone();
    }

    let variants = variants_dir();
    let bin_dir = variants.join("bin");
    std::fs::create_dir_all(&bin_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", bin_dir.display()));
    let lock_path = variants.join("build.lock");
    let lock_file = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    // Held until the copy is done: another process building another variant in
    // the same target directory would overwrite target/debug/hello.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", lock_path.display()));

    let target_dir = variants.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "-p", "hello", "--bin", "hello"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("HELLO_VERSION", version);
    match broken {
        Some(broken) => command.env("HELLO_BROKEN", broken.as_env()),
        None => command.env_remove("HELLO_BROKEN"),
    };
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build hello: {e}; is cargo on PATH?"));
    assert!(
        output.status.success(),
        "building hello {version} {broken:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let variant = broken.map_or("ok", Broken::as_env);
    let destination = bin_dir.join(format!("hello-{version}-{variant}"));
    replace_like_dpkg(&target_dir.join("debug").join("hello"), &destination);
    built.insert(key, destination.clone());
    destination
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

fn workspace_root() -> PathBuf {
    // This crate lives at <workspace>/tests/harness.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn variants_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("hello-variants"),
        None => workspace_root().join("target").join("hello-variants"),
    }
}
