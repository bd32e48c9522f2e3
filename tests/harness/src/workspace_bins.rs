//! Programs of this workspace that tests (and `make demo`) run as separate processes:
//! the `hoist` CLI, `hoist-agent`, and `hello` variants.
//!
//! All of them are built by `cargo build` into **one** target directory,
//! `$CARGO_TARGET_DIR/workspace-bins` (`<workspace>/target/workspace-bins` without
//! it), so the dependencies are compiled once for every caller. It cannot be the
//! target directory of the `cargo test` running the caller, which holds that
//! directory's lock until the tests end. Builds use the dev profile without debug
//! info and symbols: packages made from these binaries are uploaded, downloaded and
//! unpacked many times, and stay a few MB.
//!
//! Each built program is copied to `workspace-bins/bin/<variant>` (staged and renamed,
//! so a process running an older copy keeps its file) and built once per process.
//! Builds are serialised across threads and processes by a file lock, held until the
//! copies are made: a build of another variant rewrites `target/debug/<bin>`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use nix::fcntl::{Flock, FlockArg};

/// One program to build: `cargo build -p PACKAGE --bin BIN`, copied to `bin/VARIANT`.
#[derive(Debug, Clone, Copy)]
pub struct Program<'a> {
    pub package: &'a str,
    pub bin: &'a str,
    /// Name of the copy; different compile-time settings need different names.
    pub variant: &'a str,
}

/// The workspace root (this crate lives at `<workspace>/tests/harness`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory holding the builds and the copies.
pub fn bins_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("workspace-bins"),
        None => workspace_root().join("target").join("workspace-bins"),
    }
}

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

/// Both tools from one cargo run: one feature resolution for both, so building one
/// never rebuilds the other's dependencies.
fn tools() -> (PathBuf, PathBuf) {
    let built = build(
        &[
            Program {
                package: "hoist-packager",
                bin: "hoist",
                variant: "hoist",
            },
            Program {
                package: "hoist-agent",
                bin: "hoist-agent",
                variant: "hoist-agent",
            },
        ],
        &[],
    );
    (built[0].clone(), built[1].clone())
}

/// Programs built by this process, by variant name.
static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

/// Builds `programs` in one cargo run and returns their copies, in order. `env` sets
/// (`Some`) or removes (`None`) variables for the build: the compile-time settings
/// the variant names stand for.
///
/// # Panics
/// When cargo cannot be run or the build fails (with cargo's output), or a copy
/// cannot be made.
pub fn build(programs: &[Program<'_>], env: &[(&str, Option<&str>)]) -> Vec<PathBuf> {
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let cached: Option<Vec<PathBuf>> = programs
        .iter()
        .map(|program| built.get(program.variant).cloned())
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
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", lock_path.display()));

    let target_dir = dir.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // --locked: the cargo run that started the tests has already resolved Cargo.lock.
    command.args(["build", "--quiet", "--locked"]);
    for program in programs {
        command.args(["-p", program.package, "--bin", program.bin]);
    }
    command
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .env("CARGO_PROFILE_DEV_STRIP", "symbols");
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let what: Vec<&str> = programs.iter().map(|program| program.variant).collect();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {what:?}: {e}; is cargo on PATH?"));
    assert!(
        output.status.success(),
        "building {what:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    programs
        .iter()
        .map(|program| {
            let destination = out_dir.join(program.variant);
            crate::hello::replace_like_dpkg(
                &target_dir.join("debug").join(program.bin),
                &destination,
            );
            built.insert(program.variant.to_owned(), destination.clone());
            destination
        })
        .collect()
}
