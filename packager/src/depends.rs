//! `"$auto"` in `depends`: the shared-library dependencies of the packaged ELF files,
//! as `dpkg-shlibdeps` computes them (`libc6 (>= 2.34), libgcc-s1 (>= 4.2)`).
//!
//! With `dpkg-shlibdeps` on the build host (package `dpkg-dev`) and binaries of the
//! host's architecture, its answer is used as is. Otherwise — no dpkg-dev, or a
//! cross-built binary whose libraries the host does not have — hoist reads the
//! binaries itself: every `DT_NEEDED` soname of glibc gives `libc6 (>= 2.N)` with
//! `2.N` the newest `GLIBC_2.N` symbol version the binaries need (which is what
//! glibc's symbols file says for its versioned symbols), `libgcc_s.so.1` gives
//! `libgcc-s1`, and any other library is looked up with `dpkg -S` (unversioned).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::elf::ElfFacts;

/// The placeholder in `depends` replaced by the computed dependencies.
pub const AUTO: &str = "$auto";

/// Sonames shipped by Debian's `libc6` package (every architecture's loader included).
const GLIBC_SONAMES: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "libanl.so.1",
    "libnsl.so.1",
    "libmvec.so.1",
    "libBrokenLocale.so.1",
    "libc_malloc_debug.so.0",
];

/// One packaged ELF file: where it is and what it needs.
#[derive(Debug, Clone)]
pub struct Binary {
    /// The file on the build machine.
    pub path: PathBuf,
    /// Its ELF facts.
    pub facts: ElfFacts,
}

/// The dependencies of `binaries` for a package of `architecture` on a build host of
/// `host_architecture`, in dpkg-shlibdeps' order and format. Empty when none of them
/// is dynamically linked.
///
/// # Errors
/// When `dpkg-shlibdeps` fails, or (without it) a needed library belongs to no
/// installed package; the message says how to list the dependencies by hand instead.
pub fn shlib_depends(
    binaries: &[Binary],
    architecture: &str,
    host_architecture: &str,
) -> anyhow::Result<Vec<String>> {
    let dynamic: Vec<&Binary> = binaries
        .iter()
        .filter(|b| !b.facts.needed.is_empty())
        .collect();
    if dynamic.is_empty() {
        return Ok(Vec::new());
    }
    let by_hand = "or list the dependencies yourself in `depends` without \"$auto\"";
    if architecture == host_architecture {
        match run_dpkg_shlibdeps(&dynamic) {
            Ok(Some(depends)) => return Ok(depends),
            Ok(None) => tracing::info!(
                "dpkg-shlibdeps is not installed (package dpkg-dev): reading the binaries' \
                 library needs directly"
            ),
            Err(e) => return Err(e.context(format!("fix the binary, {by_hand}"))),
        }
    }
    from_elf(&dynamic, architecture)
        .with_context(|| format!("install dpkg-dev (dpkg-shlibdeps) and retry, {by_hand}"))
}

/// Runs `dpkg-shlibdeps -O` on the binaries; `None` when it is not installed.
fn run_dpkg_shlibdeps(binaries: &[&Binary]) -> anyhow::Result<Option<Vec<String>>> {
    // dpkg-shlibdeps wants to run in a source tree: an empty debian/control will do.
    let tree = tempfile::tempdir().context("cannot create a directory for dpkg-shlibdeps")?;
    std::fs::create_dir(tree.path().join("debian"))
        .and_then(|()| std::fs::write(tree.path().join("debian/control"), ""))
        .context("cannot prepare a directory for dpkg-shlibdeps")?;
    let mut command = Command::new("dpkg-shlibdeps");
    command.arg("-O").current_dir(tree.path());
    for binary in binaries {
        command.arg(format!("-e{}", absolute(&binary.path)?.display()));
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("cannot run dpkg-shlibdeps"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "dpkg-shlibdeps failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or("");
    Ok(Some(split_relations(value)))
}

/// `a (>= 1), b | c` → `["a (>= 1)", "b | c"]`.
pub fn split_relations(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// The fallback: glibc and libgcc by soname, anything else through `dpkg -S`.
fn from_elf(binaries: &[&Binary], architecture: &str) -> anyhow::Result<Vec<String>> {
    let mut glibc: Option<(u32, u32, u32)> = None;
    let mut needs_glibc = false;
    let mut packages = BTreeSet::new();
    for binary in binaries {
        for (soname, version) in &binary.facts.version_needs {
            if is_glibc(soname)
                && let Some(v) = glibc_version(version)
            {
                glibc = Some(glibc.map_or(v, |g| g.max(v)));
            }
        }
        for soname in &binary.facts.needed {
            if is_glibc(soname) {
                needs_glibc = true;
            } else if soname == "libgcc_s.so.1" {
                packages.insert("libgcc-s1".to_owned());
            } else {
                packages.insert(
                    owning_package(soname, architecture)
                        .with_context(|| format!("{} needs {soname}", binary.path.display()))?,
                );
            }
        }
    }
    let mut depends = Vec::new();
    if needs_glibc {
        depends.push(match glibc {
            Some((a, b, 0)) => format!("libc6 (>= {a}.{b})"),
            Some((a, b, c)) => format!("libc6 (>= {a}.{b}.{c})"),
            None => "libc6".to_owned(),
        });
    }
    depends.extend(packages);
    Ok(depends)
}

fn is_glibc(soname: &str) -> bool {
    GLIBC_SONAMES.contains(&soname) || soname.starts_with("ld-linux") || soname.starts_with("ld64")
}

/// `GLIBC_2.34` → `(2, 34, 0)`; `GLIBC_2.2.5` → `(2, 2, 5)`; others → `None`.
fn glibc_version(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.strip_prefix("GLIBC_")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

/// The GNU triplet of a Debian architecture's multiarch library directory.
fn multiarch(architecture: &str) -> Option<&'static str> {
    Some(match architecture {
        "amd64" => "x86_64-linux-gnu",
        "arm64" => "aarch64-linux-gnu",
        "armhf" => "arm-linux-gnueabihf",
        "armel" => "arm-linux-gnueabi",
        "i386" => "i386-linux-gnu",
        "ppc64el" => "powerpc64le-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "loong64" => "loongarch64-linux-gnu",
        "mips64el" => "mips64el-linux-gnuabi64",
        _ => return None,
    })
}

/// The installed package that ships `soname` for `architecture` (`dpkg -S`).
fn owning_package(soname: &str, architecture: &str) -> anyhow::Result<String> {
    let mut dirs = Vec::new();
    if let Some(triplet) = multiarch(architecture) {
        dirs.push(format!("/lib/{triplet}"));
        dirs.push(format!("/usr/lib/{triplet}"));
    }
    dirs.extend(["/lib".into(), "/usr/lib".into()]);
    for dir in dirs {
        let path = format!("{dir}/{soname}");
        if !Path::new(&path).exists() {
            continue;
        }
        // Debian 12 registers files under /lib, Debian 13 (merged /usr) under /usr/lib.
        let mut candidates = vec![path.clone()];
        if let Some(rest) = path.strip_prefix("/usr") {
            candidates.push(rest.to_owned());
        } else {
            candidates.push(format!("/usr{path}"));
        }
        for candidate in candidates {
            let output = match Command::new("dpkg").args(["-S", &candidate]).output() {
                Ok(output) => output,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    bail!("cannot tell which package ships {soname}: dpkg is not installed")
                }
                Err(e) => return Err(e).context("cannot run dpkg -S"),
            };
            let stdout = String::from_utf8_lossy(&output.stdout);
            let found = stdout
                .lines()
                .filter(|l| !l.starts_with("diversion by"))
                .find_map(|l| l.split_once(": ").map(|(pkgs, _)| pkgs.to_owned()));
            if output.status.success()
                && let Some(pkgs) = found
            {
                // `libfoo1:amd64` (or `a, b` when several ship it: take the first).
                let first = pkgs.split(',').next().unwrap_or("").trim();
                let name = first.split(':').next().unwrap_or(first);
                return Ok(name.to_owned());
            }
        }
    }
    bail!(
        "no installed {architecture} package ships {soname}: install the package that \
         provides it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::Architecture;

    fn binary(needed: &[&str], versions: &[(&str, &str)]) -> Binary {
        Binary {
            path: PathBuf::from("/usr/bin/x"),
            facts: ElfFacts {
                architecture: Architecture::Aarch64,
                little_endian: true,
                needed: needed.iter().map(|s| (*s).to_owned()).collect(),
                version_needs: versions
                    .iter()
                    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                    .collect(),
                build_id: None,
                has_debug: false,
            },
        }
    }

    #[test]
    fn glibc_versions_take_the_newest() {
        let a = binary(
            &["libc.so.6", "libgcc_s.so.1"],
            &[
                ("libc.so.6", "GLIBC_2.17"),
                ("libc.so.6", "GLIBC_2.34"),
                ("libgcc_s.so.1", "GCC_4.2.0"),
            ],
        );
        let b = binary(&["libm.so.6"], &[("libm.so.6", "GLIBC_2.2.5")]);
        assert_eq!(
            from_elf(&[&a, &b], "arm64").unwrap(),
            ["libc6 (>= 2.34)", "libgcc-s1"]
        );
        assert_eq!(from_elf(&[&b], "arm64").unwrap(), ["libc6 (>= 2.2.5)"]);
        assert_eq!(glibc_version("GLIBC_PRIVATE"), None);
    }

    #[test]
    fn static_binaries_need_nothing() {
        assert!(
            shlib_depends(&[binary(&[], &[])], "arm64", "amd64")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unknown_libraries_are_named() {
        let a = binary(&["libdoes-not-exist.so.9"], &[]);
        let err = format!("{:#}", from_elf(&[&a], "arm64").unwrap_err());
        assert!(err.contains("libdoes-not-exist.so.9"), "{err}");
    }

    #[test]
    fn relations_are_split() {
        assert_eq!(
            split_relations("libc6 (>= 2.34), a | b ,"),
            ["libc6 (>= 2.34)", "a | b"]
        );
        assert!(split_relations("").is_empty());
    }
}
