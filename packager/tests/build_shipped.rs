//! The packages hoist ships — `hello` (examples/hello/hoist.toml) and `hoist-agent`
//! (agent/hoist.toml), from their own manifests and real binaries — are lintian-clean
//! (no error, no warning) with gzip and xz, and hold the same archives with zstd (which
//! bookworm's lintian cannot read), and `hello`'s `Depends` carries the
//! libc6 version dpkg-shlibdeps computes for its binary.
//!
//! The binaries come from `hoist_testkit::workspace_bins` (built once for every test
//! that runs them): the dev profile, which cargo already strips of symbols at link
//! time, where `make release` uses the release/agent profiles (optimised, symbol tables
//! kept). Building them again with symbols would recompile every dependency (cargo
//! hashes `strip` into them), so the symbol-laden case `make release` hands hoist is
//! covered with the Rust binary this test already has with symbols and DWARF: the
//! `hoist` CLI under test, packaged as `hello`'s binary.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod build_support;

use std::fs;
use std::path::{Path, PathBuf};

use build_support::{
    assert_lintian_clean, assert_same_contents, build_ok, deb_field, dpkg_shlibdeps, elf_sections,
    unpack,
};
use hoist_testkit::workspace_bins;

const COMPRESSIONS: [&str; 3] = ["gzip", "xz", "zstd"];

/// A copy of the workspace's files a manifest refers to, with `binary` at the path the
/// manifest expects (`binary_path`, relative to the workspace root).
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(manifest_dir: &str, binary_path: &str, binary: &Path) -> Tree {
        let root = workspace_bins::workspace_root();
        let dir = tempfile::tempdir().unwrap();
        let copy = |relative: &str| {
            let to = dir.path().join(relative);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(root.join(relative), &to).unwrap();
        };
        let manifest = format!("{manifest_dir}/hoist.toml");
        let text = fs::read_to_string(root.join(&manifest)).unwrap();
        assert!(
            text.contains(binary_path.rsplit_once("target/").unwrap().1),
            "{manifest} packages {binary_path}"
        );
        copy(&manifest);
        copy(&format!("{manifest_dir}/debian/lintian-overrides"));
        for unit in ["systemd/hello.service", "systemd/hoist-agent.service"] {
            copy(unit);
        }
        let to = dir.path().join(binary_path);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(binary, &to).unwrap();
        Tree { dir }
    }

    fn manifest(&self, manifest_dir: &str) -> PathBuf {
        self.dir.path().join(manifest_dir).join("hoist.toml")
    }
}

#[test]
fn shipped_packages_are_lintian_clean_with_every_compression() {
    let hello = hoist_testkit::hello::build_hello("0.1.0", None);
    let agent = workspace_bins::hoist_agent();
    let symbols = PathBuf::from(env!("CARGO_BIN_EXE_hoist"));
    assert!(
        elf_sections(&symbols).iter().any(|s| s == ".symtab"),
        "the hoist binary under test has its symbol table"
    );
    let scratch = tempfile::tempdir().unwrap();
    for (manifest_dir, binary_path, binary, name, compressions) in [
        (
            "examples/hello",
            "target/release/hello",
            &hello,
            "hello",
            &COMPRESSIONS[..],
        ),
        (
            "agent",
            "target/agent/hoist-agent",
            &agent,
            "hoist-agent",
            &COMPRESSIONS[..],
        ),
        (
            "examples/hello",
            "target/release/hello",
            &symbols,
            "hello",
            &["gzip"][..],
        ),
    ] {
        let tree = Tree::new(manifest_dir, binary_path, binary);
        let has_symbols = elf_sections(binary).iter().any(|s| s == ".symtab");
        for &compression in compressions {
            let out_dir = tree.dir.path().join(compression);
            let deb = build_ok(
                &tree.manifest(manifest_dir),
                &out_dir,
                &["--compression", compression],
            );
            let dbgsym = out_dir.join(deb.file_name().unwrap().to_string_lossy().replacen(
                name,
                &format!("{name}-dbgsym"),
                1,
            ));
            assert_eq!(dbgsym.exists(), has_symbols, "{}", dbgsym.display());
            if compression == "zstd" {
                // lintian (and bookworm's dpkg-deb, see assert_same_contents) cannot
                // read these zstd members: the same archives as the gzip package's.
                let gzip = tree.dir.path().join("gzip");
                assert_same_contents(&deb, &gzip.join(deb.file_name().unwrap()));
                if has_symbols {
                    assert_same_contents(&dbgsym, &gzip.join(dbgsym.file_name().unwrap()));
                }
            } else {
                assert_lintian_clean(&deb, scratch.path());
                // Stripped; the symbols there were are in the -dbgsym package.
                let files = unpack(&deb);
                let sections = elf_sections(&files.path().join("usr/bin").join(name));
                assert!(
                    !sections.iter().any(|s| s == ".symtab"),
                    "{name}: {sections:?}"
                );
                if has_symbols {
                    assert_eq!(deb_field(&dbgsym, "Package"), format!("{name}-dbgsym"));
                    assert_lintian_clean(&dbgsym, scratch.path());
                }
            }

            // The libc dependency is dpkg-shlibdeps' (lintian's
            // missing-dependency-on-libc and undeclared-elf-prerequisites would say
            // if it were missing; this says it is the right version).
            let depends = deb_field(&deb, "Depends");
            let oracle = dpkg_shlibdeps(binary);
            let libc = oracle.iter().find(|d| d.starts_with("libc6 ")).unwrap();
            assert!(
                depends.split(", ").any(|d| d == libc),
                "{name}: {libc} in Depends: {depends}"
            );
        }
    }
}
