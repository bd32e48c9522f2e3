//! `hoist build` and the ELF files it packages: the architecture is read from each
//! binary (a mismatch is refused), `"$auto"` in `depends` is what dpkg-shlibdeps says,
//! and binaries are stripped with their debug symbols kept in a `-dbgsym` package.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod build_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use build_support::{
    Fixture, build_ok, compile_c, deb_field, dpkg_shlibdeps, elf_fixture, elf_sections,
    hoist_build, listing, path_without, require_tool, run_ok, unpack,
};

/// The fixture with its shell "binary" replaced by `binary`.
fn fixture_with_binary(binary: &Path) -> Fixture {
    let fixture = Fixture::new();
    fs::copy(binary, fixture.path("hello")).unwrap();
    fixture
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_binary_of_another_architecture_is_refused() {
    // aarch64 in an amd64 package.
    let fixture = fixture_with_binary(&elf_fixture("hello-aarch64"));
    let out_dir = fixture.out_dir("out");
    let out = hoist_build(&fixture.manifest(), &out_dir, &["--arch", "amd64"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is an ELF binary for aarch64, which does not run on amd64")
            && err.contains("--arch arm64"),
        "{err}"
    );
    assert!(listing(&out_dir).is_empty(), "nothing is written");

    // x86-64 in an arm64 package (the reverse).
    let fixture = fixture_with_binary(&compile_c(tempfile::tempdir().unwrap().path(), "x"));
    let out = hoist_build(&fixture.manifest(), &out_dir, &["--arch", "arm64"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is an ELF binary for x86_64, which does not run on arm64")
            && err.contains("aarch64-unknown-linux-gnu"),
        "{err}"
    );

    // Any binary in an Architecture: all package.
    let out = hoist_build(&fixture.manifest(), &out_dir, &["--arch", "all"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`Architecture: all`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_aarch64_binary_makes_an_arm64_package() {
    // The dynamically linked one: its libc needs are read from the ELF file (the
    // build host has no arm64 libraries for dpkg-shlibdeps to look at).
    let fixture = fixture_with_binary(&elf_fixture("hello-aarch64-dyn"));
    let out_dir = fixture.out_dir("out");
    let deb = build_ok(&fixture.manifest(), &out_dir, &["--arch", "arm64"]);
    assert_eq!(deb.file_name().unwrap(), "hello_1.0_arm64.deb");
    assert_eq!(deb_field(&deb, "Architecture"), "arm64");
    assert_eq!(deb_field(&deb, "Depends"), "libc6 (>= 2.17)");
    // Stripped with the tools for aarch64; the symbols went to the -dbgsym package.
    let tree = unpack(&deb);
    let sections = elf_sections(&tree.path().join("usr/bin/hello"));
    assert!(!sections.iter().any(|s| s == ".symtab"), "{sections:?}");
    let dbgsym = out_dir.join("hello-dbgsym_1.0_arm64.deb");
    assert_eq!(deb_field(&dbgsym, "Architecture"), "arm64");
}

#[test]
fn auto_depends_is_what_dpkg_shlibdeps_says() {
    let build_dir = tempfile::tempdir().unwrap();
    let binary = compile_c(build_dir.path(), "hello");
    let oracle = dpkg_shlibdeps(&binary);
    assert!(
        oracle.iter().any(|d| d.starts_with("libc6 (>= 2.")),
        "{oracle:?}"
    );

    // No `depends`: it means ["$auto"].
    let fixture = fixture_with_binary(&binary);
    let deb = build_ok(&fixture.manifest(), &fixture.out_dir("auto"), &[]);
    assert_eq!(deb_field(&deb, "Depends"), oracle.join(", "));

    // Without dpkg-shlibdeps (no dpkg-dev) hoist reads the binary itself: the same
    // libc6 version.
    let path = path_without(&["dpkg-shlibdeps"]);
    let out = build_support::hoist()
        .env("PATH", path.path())
        .arg("build")
        .arg("--manifest")
        .arg(fixture.manifest())
        .arg("--out-dir")
        .arg(fixture.out_dir("fallback"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let fallback = fixture.out_dir("fallback").join(deb.file_name().unwrap());
    assert_eq!(deb_field(&fallback, "Depends"), oracle.join(", "));

    // "$auto" among your own: merged, computed ones first; without "$auto" the list
    // is used as is.
    fixture.edit_manifest(
        "homepage = ",
        "depends = [\"$auto\", \"procps\"]\nhomepage = ",
    );
    let deb = build_ok(&fixture.manifest(), &fixture.out_dir("merged"), &[]);
    assert_eq!(
        deb_field(&deb, "Depends"),
        format!("{}, procps", oracle.join(", "))
    );
    fixture.edit_manifest("[\"$auto\", \"procps\"]", "[\"procps\"]");
    let deb = build_ok(&fixture.manifest(), &fixture.out_dir("own"), &[]);
    assert_eq!(deb_field(&deb, "Depends"), "procps");
}

/// The hex build-id of an ELF file (`readelf -n`).
fn build_id(path: &Path) -> String {
    let notes = run_ok(Command::new("readelf").arg("-n").arg(path));
    notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build-id in {notes}"))
        .trim()
        .to_owned()
}

/// The file name `.gnu_debuglink` names (`readelf --string-dump=.gnu_debuglink`).
fn debuglink(path: &Path) -> String {
    let dump = run_ok(
        Command::new("readelf")
            .arg("--string-dump=.gnu_debuglink")
            .arg(path),
    );
    dump.lines()
        .find_map(|l| l.split_once(']').map(|(_, name)| name.trim().to_owned()))
        .unwrap_or_else(|| panic!("no debuglink in {dump}"))
}

fn md5sums(deb: &Path) -> String {
    run_ok(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(deb)
            .arg("md5sums"),
    )
}

#[test]
fn binaries_are_stripped_and_symbols_kept_in_a_dbgsym_package() {
    require_tool("readelf", "binutils");
    let build_dir = tempfile::tempdir().unwrap();
    let binary = compile_c(build_dir.path(), "hello");
    let before = elf_sections(&binary);
    assert!(
        before.iter().any(|s| s == ".symtab") && before.iter().any(|s| s == ".debug_info"),
        "the test binary has symbols and DWARF: {before:?}"
    );
    let id = build_id(&binary);
    let fixture = fixture_with_binary(&binary);
    let out_dir = fixture.out_dir("out");
    let deb = build_ok(&fixture.manifest(), &out_dir, &[]);

    // The packaged binary: no symbols, no DWARF, linked to its debug file; the input
    // is untouched.
    let tree = unpack(&deb);
    let packaged = tree.path().join("usr/bin/hello");
    let sections = elf_sections(&packaged);
    for gone in [".symtab", ".debug_info", ".comment"] {
        assert!(
            !sections.iter().any(|s| s == gone),
            "{gone} in {sections:?}"
        );
    }
    assert_eq!(build_id(&packaged), id, "stripping keeps the build-id");
    let debug_name = format!("{}.debug", &id[2..]);
    assert_eq!(debuglink(&packaged), debug_name);
    assert_eq!(
        fs::read(fixture.path("hello")).unwrap(),
        fs::read(&binary).unwrap()
    );
    assert_eq!(elf_sections(&fixture.path("hello")), before);

    // The -dbgsym package: the debug file by build-id, as debhelper installs it.
    let dbgsym = out_dir.join("hello-dbgsym_1.0_amd64.deb");
    assert_eq!(
        build_support::listing(&out_dir),
        ["hello-dbgsym_1.0_amd64.deb", "hello_1.0_amd64.deb"]
    );
    assert_eq!(deb_field(&dbgsym, "Package"), "hello-dbgsym");
    assert_eq!(deb_field(&dbgsym, "Depends"), "hello (= 1.0)");
    assert_eq!(deb_field(&dbgsym, "Section"), "debug");
    let debug_tree = unpack(&dbgsym);
    let debug_file = debug_tree
        .path()
        .join(format!("usr/lib/debug/.build-id/{}/{debug_name}", &id[..2]));
    let debug_sections = elf_sections(&debug_file);
    assert!(
        debug_sections.iter().any(|s| s == ".debug_info")
            && debug_sections.iter().any(|s| s == ".symtab"),
        "{debug_sections:?}"
    );

    // --no-dbgsym: stripped, symbols dropped. --no-strip and `strip = false`: the
    // binary as built, byte for byte.
    let deb = build_ok(
        &fixture.manifest(),
        &fixture.out_dir("nodbg"),
        &["--no-dbgsym"],
    );
    assert_eq!(listing(&fixture.out_dir("nodbg")), ["hello_1.0_amd64.deb"]);
    let stripped = unpack(&deb);
    let sections = elf_sections(&stripped.path().join("usr/bin/hello"));
    assert!(!sections.iter().any(|s| s == ".symtab"), "{sections:?}");
    assert!(
        !sections.iter().any(|s| s == ".gnu_debuglink"),
        "{sections:?}"
    );
    let source_md5 = run_ok(Command::new("md5sum").arg(&binary));
    let source_md5 = source_md5.split_whitespace().next().unwrap().to_owned();
    for (dir, args) in [("nostrip", &["--no-strip"][..]), ("manifest", &[][..])] {
        if dir == "manifest" {
            fixture.edit_manifest("homepage = ", "strip = false\nhomepage = ");
        }
        let deb = build_ok(&fixture.manifest(), &fixture.out_dir(dir), args);
        assert_eq!(listing(&fixture.out_dir(dir)), ["hello_1.0_amd64.deb"]);
        let sums = md5sums(&deb);
        assert!(
            sums.contains(&format!("{source_md5}  usr/bin/hello")),
            "{dir}: {sums}"
        );
    }
}

#[test]
fn a_failed_build_leaves_no_dbgsym_behind() {
    let build_dir = tempfile::tempdir().unwrap();
    let fixture = fixture_with_binary(&compile_c(build_dir.path(), "hello"));
    let out_dir: PathBuf = fixture.out_dir("out");
    // The main package fails after the debug package was written: a bad unit name.
    fs::copy(
        fixture.path("hello.service"),
        fixture.path("hello.conf.bad"),
    )
    .unwrap();
    fixture.edit_manifest("source = \"hello.service\"", "source = \"hello.conf.bad\"");
    let out = hoist_build(&fixture.manifest(), &out_dir, &[]);
    assert!(!out.status.success());
    assert!(listing(&out_dir).is_empty(), "{:?}", listing(&out_dir));
}
