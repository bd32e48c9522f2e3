//! The programs the end-to-end tests deploy, built from this workspace: `hoist`, the
//! agent and `hello` variants (a version, or a deliberately broken build).
//!
//! They are built with `cargo build` (dev profile without debug info and symbols,
//! so the packages stay a few MB) in a target directory of their own,
//! `$CARGO_TARGET_DIR/e2e-bins` (`<workspace>/target/e2e-bins` without it): the
//! `cargo test` running the tests holds the lock of its own target directory. Each
//! program is copied to `e2e-bins/bin/` under a name per variant, built once per test
//! process; builds are serialised across threads and processes by a file lock.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use nix::fcntl::{Flock, FlockArg};

/// The workspace root (this crate lives at `<workspace>/tests/e2e`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the builds and copies live.
fn bins_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("e2e-bins"),
        None => workspace_root().join("target").join("e2e-bins"),
    }
}

/// An empty directory `NAME` next to the builds (emptied if it exists), for files
/// that must outlive a test but not the next run, such as the packages the tests of
/// one process share.
///
/// # Panics
/// When it cannot be created.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = bins_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Writes `text` to `<target>/e2e-report/NAME` (replacing it) and returns the path:
/// figures a passing test prints are hidden by the test harness, this file keeps them.
///
/// # Panics
/// When the file cannot be written.
pub fn write_report(name: &str, text: &str) -> PathBuf {
    let dir = bins_dir().with_file_name("e2e-report");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Programs built by this process, by variant name.
static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

/// The `hoist` CLI.
///
/// # Panics
/// When the build fails (with cargo's output).
pub fn hoist() -> PathBuf {
    tools().0
}

/// The `hoist-agent` binary.
///
/// # Panics
/// When the build fails (with cargo's output).
pub fn hoist_agent() -> PathBuf {
    tools().1
}

/// Both tools from one cargo run (one feature resolution for both, so building one
/// never invalidates the other).
fn tools() -> (PathBuf, PathBuf) {
    let built = build(
        &[
            ("hoist-packager", "hoist", "hoist"),
            ("hoist-agent", "hoist-agent", "hoist-agent"),
        ],
        &[],
    );
    (built[0].clone(), built[1].clone())
}

/// `hello` reporting `version`; `broken` is a `HELLO_BROKEN` value (`crash`, `hang`,
/// `500`) for a deliberately broken build.
///
/// # Panics
/// When the build fails (with cargo's output).
pub fn hello(version: &str, broken: Option<&str>) -> PathBuf {
    let variant = format!("hello-{version}-{}", broken.unwrap_or("ok"));
    let mut env = vec![("HELLO_VERSION", version)];
    if let Some(broken) = broken {
        env.push(("HELLO_BROKEN", broken));
    }
    build(&[("hello", "hello", &variant)], &env).remove(0)
}

/// Builds each `(package, bin, variant)` in one cargo run with `env` set and copies
/// every `bin` to `bin/<variant>`; returns the copies in order.
fn build(targets: &[(&str, &str, &str)], env: &[(&str, &str)]) -> Vec<PathBuf> {
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let cached: Option<Vec<PathBuf>> = targets
        .iter()
        .map(|(_, _, variant)| built.get(*variant).cloned())
        .collect();
    if let Some(paths) = cached {
        return paths;
    }
    let dir = bins_dir();
    let out_dir = dir.join("bin");
    std::fs::create_dir_all(&out_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
    let lock_path = dir.join("build.lock");
    let lock_file = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    // Held until the copies are done: another variant's build rewrites target/debug/BIN.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", lock_path.display()));

    let target_dir = dir.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // --locked: the cargo run that started the tests has already resolved Cargo.lock.
    command.args(["build", "--quiet", "--locked"]);
    for (package, bin, _) in targets {
        command.args(["-p", package, "--bin", bin]);
    }
    command
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        // Small binaries: packages are uploaded, downloaded and unpacked many times.
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .env("CARGO_PROFILE_DEV_STRIP", "symbols")
        .env_remove("HELLO_VERSION")
        .env_remove("HELLO_BROKEN")
        .envs(env.iter().copied());
    let what: Vec<&str> = targets.iter().map(|(_, _, variant)| *variant).collect();
    let started = std::time::Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {what:?}: {e}; is cargo on PATH?"));
    assert!(
        output.status.success(),
        "building {what:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("e2e: built {what:?} in {:.1?}", started.elapsed());
    targets
        .iter()
        .map(|(_, bin, variant)| {
            let source = target_dir.join("debug").join(bin);
            let destination = out_dir.join(variant);
            let staged = out_dir.join(format!("{variant}.new"));
            std::fs::copy(&source, &staged).unwrap_or_else(|e| {
                panic!(
                    "cannot copy {} to {}: {e}",
                    source.display(),
                    staged.display()
                )
            });
            std::fs::rename(&staged, &destination).unwrap_or_else(|e| {
                panic!(
                    "cannot rename {} to {}: {e}",
                    staged.display(),
                    destination.display()
                )
            });
            built.insert((*variant).to_owned(), destination.clone());
            destination
        })
        .collect()
}
