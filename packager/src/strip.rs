//! Stripping packaged ELF files, as debhelper's `dh_strip` does, and keeping their
//! debug symbols for a `-dbgsym` package.
//!
//! For each ELF file that has a symbol table or DWARF sections:
//! `objcopy --only-keep-debug --compress-debug-sections` writes its debug file,
//! `strip --remove-section=.comment --remove-section=.note --strip-unneeded` the
//! stripped copy that goes into the package, and `objcopy --add-gnu-debuglink` links the
//! two. The debug file is installed (by the `-dbgsym` package) where gdb and
//! debuginfod clients look for it: `/usr/lib/debug/.build-id/xx/yyyy….debug`, or
//! `/usr/lib/debug/<path>.debug` for a file without a build-id. Inputs are never
//! modified: the copies live in a temporary directory for the duration of the build,
//! with the mtime of their source, so the package does not change.
//!
//! The tools are binutils' for the file's architecture (`aarch64-linux-gnu-strip`,
//! package binutils-aarch64-linux-gnu; plain `strip` for the build host's), else
//! LLVM's (`llvm-strip`, `llvm-objcopy`), which handle every architecture.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::elf::ElfFacts;

/// The GNU triplet prefix of binutils for a machine, e.g. `aarch64-linux-gnu`.
fn binutils_prefix(facts: &ElfFacts) -> Option<&'static str> {
    use object::Architecture as A;
    Some(match (facts.architecture, facts.little_endian) {
        (A::X86_64, _) => "x86_64-linux-gnu",
        (A::I386, _) => "i686-linux-gnu",
        (A::Aarch64, true) => "aarch64-linux-gnu",
        (A::Arm, true) => "arm-linux-gnueabihf",
        (A::Riscv64, _) => "riscv64-linux-gnu",
        (A::PowerPc64, true) => "powerpc64le-linux-gnu",
        (A::S390x, _) => "s390x-linux-gnu",
        _ => return None,
    })
}

/// The `strip` and `objcopy` that can process files of `facts`' machine.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tools {
    strip: String,
    objcopy: String,
}

fn tools(facts: &ElfFacts, native: bool) -> anyhow::Result<Tools> {
    let mut candidates = Vec::new();
    if let Some(prefix) = binutils_prefix(facts) {
        candidates.push((format!("{prefix}-strip"), format!("{prefix}-objcopy")));
    }
    if native {
        candidates.push(("strip".into(), "objcopy".into()));
    }
    candidates.push(("llvm-strip".into(), "llvm-objcopy".into()));
    for (strip, objcopy) in &candidates {
        if on_path(strip) && on_path(objcopy) {
            return Ok(Tools {
                strip: strip.clone(),
                objcopy: objcopy.clone(),
            });
        }
    }
    let binutils = binutils_prefix(facts).map_or_else(
        || "binutils".to_owned(),
        |p| format!("binutils-{}", p.replace('_', "-")),
    );
    bail!(
        "cannot strip a {} binary: none of {} is installed; install {binutils} (or llvm), \
         or keep the symbols with `strip = false` in [package] / --no-strip",
        facts.machine_name(),
        candidates
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The debug file of one stripped binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugFile {
    /// The file in the staging directory.
    pub source: PathBuf,
    /// Where the `-dbgsym` package installs it.
    pub dest: String,
    /// The build-id in hex, if any.
    pub build_id: Option<String>,
}

/// What stripping one file produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrippedFile {
    /// The stripped copy, to package instead of the original.
    pub stripped: PathBuf,
    /// Its debug symbols, when kept.
    pub debug: Option<DebugFile>,
}

/// Where `dest`'s debug file is installed.
fn debug_dest(dest: &str, build_id: Option<&[u8]>) -> String {
    match build_id {
        Some(id) if id.len() > 1 => {
            let hex = hex::encode(id);
            format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..])
        }
        _ => format!("/usr/lib/debug{dest}.debug"),
    }
}

/// Strips `source` (installed at `dest`) into `staging`; keeps its debug symbols when
/// `keep_debug`. `index` makes the staging names unique. `native` says whether the
/// file is for the build host's architecture.
///
/// # Errors
/// When no tool can process the file's machine, or a tool fails.
pub fn strip_file(
    source: &Path,
    dest: &str,
    facts: &ElfFacts,
    native: bool,
    keep_debug: bool,
    staging: &Path,
    index: usize,
) -> anyhow::Result<StrippedFile> {
    let tools = tools(facts, native)?;
    let dir = staging.join(index.to_string());
    fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base = Path::new(dest)
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let stripped = dir.join(&base);
    let debug = if keep_debug {
        let dest = debug_dest(dest, facts.build_id.as_deref());
        // The debuglink names the debug file by its base name, as dh_strip does.
        let name = Path::new(&dest)
            .file_name()
            .map_or_else(|| "file.debug".into(), |n| n.to_string_lossy().into_owned());
        let path = dir.join("debug").join(name);
        fs::create_dir(dir.join("debug")).context("cannot create the debug directory")?;
        run(Command::new(&tools.objcopy)
            .args(["--only-keep-debug", "--compress-debug-sections"])
            .arg(source)
            .arg(&path))?;
        Some(DebugFile {
            source: path,
            dest,
            build_id: facts.build_id.as_deref().map(hex::encode),
        })
    } else {
        None
    };
    run(Command::new(&tools.strip)
        .args([
            "--remove-section=.comment",
            "--remove-section=.note",
            "--strip-unneeded",
            "-o",
        ])
        .arg(&stripped)
        .arg(source))?;
    if let Some(debug) = &debug {
        run(Command::new(&tools.objcopy)
            .arg(format!("--add-gnu-debuglink={}", debug.source.display()))
            .arg(&stripped))?;
    }
    // The package takes mtimes and modes from its inputs: the copies keep the source's.
    let meta = fs::metadata(source).with_context(|| format!("cannot stat {}", source.display()))?;
    let copies = [Some(&stripped), debug.as_ref().map(|d| &d.source)];
    for copy in copies.into_iter().flatten() {
        let file = fs::File::options()
            .write(true)
            .open(copy)
            .with_context(|| format!("cannot open {}", copy.display()))?;
        file.set_permissions(meta.permissions())
            .and_then(|()| file.set_modified(meta.modified()?))
            .with_context(|| format!("cannot set the mtime of {}", copy.display()))?;
    }
    Ok(StrippedFile { stripped, debug })
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => anyhow::anyhow!("{command:?}: not installed"),
        _ => anyhow::anyhow!("cannot run {command:?}: {e}"),
    })?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_files_go_by_build_id() {
        assert_eq!(
            debug_dest("/usr/bin/hello", Some(&[0xab, 0xcd, 0xef])),
            "/usr/lib/debug/.build-id/ab/cdef.debug"
        );
        assert_eq!(
            debug_dest("/usr/bin/hello", None),
            "/usr/lib/debug/usr/bin/hello.debug"
        );
    }
}
