//! The ELF files of a package, before it is written: their architecture is checked
//! against the package's, their library dependencies fill `"$auto"` in `Depends`, and
//! they are stripped, their debug symbols going into a `NAME-dbgsym` package.

use std::path::Path;

use anyhow::{Context, bail};
use hoist_deb::{FileEntry, PackageSpec, Relations};

use crate::depends::{self, Binary};
use crate::elf;
use crate::strip::{self, DebugFile};

/// What to do with the ELF files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Replace `"$auto"` with the library dependencies.
    pub auto_depends: bool,
    /// Strip them.
    pub strip: bool,
    /// Keep the stripped debug symbols in a `-dbgsym` package.
    pub dbgsym: bool,
}

/// A package spec made ready for writing, and what it needs kept alive until then.
#[derive(Debug)]
pub struct Prepared {
    /// The `-dbgsym` package, when any debug symbols were kept.
    pub dbgsym: Option<PackageSpec>,
    /// The stripped copies and debug files the specs point to.
    _staging: Option<tempfile::TempDir>,
}

/// Reads, checks and strips the ELF files of `spec` in place (its entries then point
/// at stripped copies), and adds the library dependencies to its `Depends`.
/// `host_architecture` is asked for only when dependencies must be computed.
///
/// Sources that do not exist are left alone: the package build reports them.
///
/// # Errors
/// An ELF file built for another architecture than the package's (or any ELF file in
/// an `Architecture: all` package), an unreadable ELF file, a failing dependency
/// computation or strip tool.
pub fn prepare(
    spec: &mut PackageSpec,
    settings: Settings,
    host_architecture: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<Prepared> {
    let mut binaries = Vec::new();
    for (index, entry) in spec.files.iter().enumerate() {
        if !elf::is_elf(&entry.source) {
            continue;
        }
        let facts = elf::read(&entry.source)?;
        check_architecture(&entry.source, &facts, &spec.architecture)?;
        binaries.push((
            index,
            Binary {
                path: entry.source.clone(),
                facts,
            },
        ));
    }

    if binaries.is_empty() {
        return Ok(Prepared {
            dbgsym: None,
            _staging: None,
        });
    }
    let host = host_architecture()?;
    if settings.auto_depends {
        let list: Vec<Binary> = binaries.iter().map(|(_, b)| b.clone()).collect();
        let auto = depends::shlib_depends(&list, &spec.architecture, &host)
            .context("cannot compute the library dependencies (\"$auto\" in `depends`)")?;
        tracing::info!(depends = %auto.join(", "), "library dependencies of the binaries");
        let own = std::mem::take(&mut spec.relations.depends);
        let mut merged = auto;
        for relation in own {
            if !merged.contains(&relation) {
                merged.push(relation);
            }
        }
        spec.relations.depends = merged;
    }

    let to_strip: Vec<&(usize, Binary)> = binaries
        .iter()
        .filter(|(index, b)| {
            settings.strip
                && b.facts.has_debug
                && !spec.files[*index].dest.starts_with("/usr/lib/debug/")
        })
        .collect();
    if to_strip.is_empty() {
        return Ok(Prepared {
            dbgsym: None,
            _staging: None,
        });
    }
    let staging = tempfile::Builder::new()
        .prefix("hoist-strip-")
        .tempdir()
        .context("cannot create a directory for the stripped binaries")?;
    let native = host == spec.architecture;
    let mut debug_files = Vec::new();
    for (index, binary) in to_strip {
        let entry = &mut spec.files[*index];
        let stripped = strip::strip_file(
            &entry.source,
            &entry.dest,
            &binary.facts,
            native,
            settings.dbgsym,
            staging.path(),
            *index,
        )
        .with_context(|| format!("cannot strip {}", entry.source.display()))?;
        entry.source = stripped.stripped;
        debug_files.extend(stripped.debug);
    }
    let dbgsym = (!debug_files.is_empty()).then(|| dbgsym_spec(spec, &debug_files));
    Ok(Prepared {
        dbgsym,
        _staging: Some(staging),
    })
}

/// Refuses an ELF file that cannot run on the package's architecture.
fn check_architecture(
    source: &Path,
    facts: &elf::ElfFacts,
    architecture: &str,
) -> anyhow::Result<()> {
    let fits = facts.debian_architectures();
    if architecture == "all" {
        bail!(
            "{} is an ELF binary for {}, but the package is `Architecture: all` (for files that \
             run everywhere): set the architecture to {}",
            source.display(),
            facts.machine_name(),
            fits.first().copied().unwrap_or("the binary's")
        );
    }
    if fits.is_empty() {
        tracing::warn!(
            path = %source.display(),
            machine = %facts.machine_name(),
            "cannot tell which Debian architecture this ELF machine is: not checked"
        );
        return Ok(());
    }
    if !fits.contains(&architecture) {
        bail!(
            "{} is an ELF binary for {}, which does not run on {architecture}: build it for \
             {architecture} (e.g. `cargo build --target {}`), or package it for {} with \
             `--arch {}`",
            source.display(),
            facts.machine_name(),
            rust_target(architecture).unwrap_or("<target>"),
            fits.join("/"),
            fits[0]
        );
    }
    Ok(())
}

fn rust_target(architecture: &str) -> Option<&'static str> {
    Some(match architecture {
        "amd64" => "x86_64-unknown-linux-gnu",
        "arm64" => "aarch64-unknown-linux-gnu",
        "armhf" => "armv7-unknown-linux-gnueabihf",
        "i386" => "i686-unknown-linux-gnu",
        "riscv64" => "riscv64gc-unknown-linux-gnu",
        "ppc64el" => "powerpc64le-unknown-linux-gnu",
        "s390x" => "s390x-unknown-linux-gnu",
        _ => return None,
    })
}

/// `NAME-dbgsym`: the debug files, as debhelper's automatic debug packages hold them.
fn dbgsym_spec(spec: &PackageSpec, debug_files: &[DebugFile]) -> PackageSpec {
    PackageSpec {
        name: format!("{}-dbgsym", spec.name),
        version: spec.version.clone(),
        architecture: spec.architecture.clone(),
        maintainer: spec.maintainer.clone(),
        description: format!("debug symbols for {}", spec.name),
        section: Some("debug".into()),
        priority: Some("optional".into()),
        homepage: spec.homepage.clone(),
        relations: Relations {
            depends: vec![format!("{} (= {})", spec.name, spec.version)],
            ..Relations::default()
        },
        files: debug_files
            .iter()
            .map(|d| FileEntry::new(&d.source, &d.dest).with_mode(0o644))
            .collect(),
        copyright: spec.copyright.clone(),
        ..PackageSpec::default()
    }
}
