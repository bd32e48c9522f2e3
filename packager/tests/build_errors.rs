//! Bad input to `hoist build` gives a clear error and a non-zero exit, never a panic,
//! and leaves nothing behind.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod build_support;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use build_support::{Fixture, hoist, hoist_build, listing};

/// The 1-based line of the manifest holding `needle`.
fn line_of(manifest: &Path, needle: &str) -> usize {
    let text = fs::read_to_string(manifest).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in {}", manifest.display()))
        + 1
}

/// Asserts a failed run: exit status 1 (hoist's error exit, not a panic's 101), no
/// panic message, no output directory, no stray file; returns stderr.
fn assert_failed(fixture: &Fixture, out: &Output, out_dir: &Path) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
    assert!(!out_dir.exists(), "{} was left behind", out_dir.display());
    let stray: Vec<String> = listing(fixture.dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".deb") || n.starts_with(".hoist-"))
        .collect();
    assert!(stray.is_empty(), "left behind: {stray:?}");
    stderr
}

fn build_fails(fixture: &Fixture, extra: &[&str]) -> String {
    let out_dir = fixture.out_dir("out");
    let out = hoist_build(&fixture.manifest(), &out_dir, extra);
    assert_failed(fixture, &out, &out_dir)
}

#[test]
fn missing_binary_names_the_manifest_line_and_the_fix() {
    let fixture = Fixture::new();
    fs::remove_file(fixture.path("hello")).unwrap();
    let line = line_of(&fixture.manifest(), "[[binaries]]");
    let err = build_fails(&fixture, &[]);
    assert!(err.contains(&format!("hoist.toml line {line}")), "{err}");
    assert!(
        err.contains("binaries source `hello` does not exist"),
        "{err}"
    );
    assert!(err.contains("cargo build --release"), "{err}");
}

#[test]
fn missing_extra_file_and_unit_are_named() {
    let fixture = Fixture::new();
    fs::remove_file(fixture.path("hello.service")).unwrap();
    let err = build_fails(&fixture, &[]);
    assert!(
        err.contains("units source `hello.service` does not exist"),
        "{err}"
    );

    let fixture = Fixture::new();
    fs::remove_file(fixture.path("hello.conf")).unwrap();
    let err = build_fails(&fixture, &[]);
    assert!(
        err.contains("conffiles source `hello.conf` does not exist"),
        "{err}"
    );
}

#[test]
fn invalid_package_name_is_rejected_with_policy_reason() {
    let fixture = Fixture::new();
    fixture.edit_manifest("name = \"hello\"", "name = \"Hello_World\"");
    let line = line_of(&fixture.manifest(), "Hello_World");
    let err = build_fails(&fixture, &[]);
    assert!(err.contains(&format!("hoist.toml line {line}")), "{err}");
    assert!(err.contains("invalid package name `Hello_World`"), "{err}");
    assert!(err.contains("policy 5.6.1"), "{err}");
}

#[test]
fn invalid_version_is_rejected_from_manifest_and_flag() {
    let fixture = Fixture::new();
    fixture.edit_manifest("version = \"1.0\"", "version = \"v1.0\"");
    let line = line_of(&fixture.manifest(), "v1.0");
    let err = build_fails(&fixture, &[]);
    assert!(err.contains(&format!("hoist.toml line {line}")), "{err}");
    assert!(err.contains("invalid version `v1.0`"), "{err}");
    assert!(err.contains("must start with a digit"), "{err}");

    let fixture = Fixture::new();
    let err = build_fails(&fixture, &["--version", "1.0_beta"]);
    assert!(err.contains("--version"), "{err}");
    assert!(err.contains("invalid version `1.0_beta`"), "{err}");
    assert!(err.contains("`_` is not allowed"), "{err}");

    let err = build_fails(&fixture, &["--arch", "x86_64"]);
    assert!(err.contains("invalid architecture `x86_64`"), "{err}");
    assert!(err.contains("dpkg --print-architecture"), "{err}");
}

#[test]
fn other_policy_violations_are_named() {
    for (from, to, expected) in [
        (
            "maintainer = \"Hoist Tests <tests@example.com>\"",
            "maintainer = \"tests@example.com\"",
            "invalid maintainer `tests@example.com`",
        ),
        (
            "priority = \"optional\"",
            "priority = \"high\"",
            "invalid priority `high`",
        ),
        (
            "homepage = \"https://example.com/hoist\"",
            "homepage = \"https://example.com/hoist\"\ndepends = [\"libc6 (>= )\"]",
            "invalid Depends `libc6 (>= )`",
        ),
        (
            "dest = \"/etc/hello/hello.conf\"",
            "dest = \"/opt/hello/hello.conf\"",
            "conffile dest `/opt/hello/hello.conf` is not under /etc/",
        ),
        (
            "dest = \"/usr/share/doc/hello/README\"",
            "dest = \"usr/share/doc/hello/README\"",
            "it must be an absolute path",
        ),
        (
            "dest = \"/usr/share/doc/hello/README\"",
            "dest = \"/usr/bin/hello\"",
            "two entries install to `/usr/bin/hello`",
        ),
        (
            "license = \"MIT\"",
            "# no license",
            "Debian policy 12.5 requires",
        ),
    ] {
        let fixture = Fixture::new();
        fixture.edit_manifest(from, to);
        let err = build_fails(&fixture, &[]);
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
}

#[test]
fn malformed_manifest_names_line_and_key() {
    for (from, to, needle, expected) in [
        // A typo in a key.
        (
            "version = \"1.0\"",
            "versoin = \"1.0\"",
            "versoin",
            "unknown field `versoin`",
        ),
        // A value of the wrong type.
        (
            "version = \"1.0\"",
            "version = 1.0",
            "version = 1.0",
            "invalid type",
        ),
        // Broken TOML syntax.
        (
            "section = \"net\"",
            "section = \"net",
            "section = \"net",
            "invalid basic string, expected `\"`",
        ),
        // A mode given in decimal.
        (
            "dest = \"/usr/share/doc/hello/README\"",
            "dest = \"/usr/share/doc/hello/README\"\nmode = 644",
            "mode = 644",
            "write 0o644",
        ),
        // An unknown key in a [[units]] table.
        (
            "source = \"hello.service\"",
            "source = \"hello.service\"\nstrat = false",
            "strat",
            "unknown field `strat`",
        ),
    ] {
        let fixture = Fixture::new();
        fixture.edit_manifest(from, to);
        let line = line_of(&fixture.manifest(), needle);
        let err = build_fails(&fixture, &[]);
        assert!(
            err.contains(&format!("hoist.toml line {line} (")),
            "line {line} in:\n{err}"
        );
        assert!(
            err.contains(needle),
            "the offending text `{needle}` in:\n{err}"
        );
        assert!(err.contains(expected), "`{expected}` in:\n{err}");
    }

    // A missing required field names it.
    let fixture = Fixture::new();
    fixture.edit_manifest("maintainer = \"Hoist Tests <tests@example.com>\"", "");
    let err = build_fails(&fixture, &[]);
    assert!(err.contains("missing field `maintainer`"), "{err}");

    // A missing manifest says how to point at one.
    let fixture = Fixture::new();
    fs::remove_file(fixture.manifest()).unwrap();
    let err = build_fails(&fixture, &[]);
    assert!(err.contains("--manifest"), "{err}");
}

#[test]
fn unknown_compression_is_a_usage_error() {
    let fixture = Fixture::new();
    let out_dir = fixture.out_dir("out");
    let out = hoist_build(&fixture.manifest(), &out_dir, &["--compression", "bzip2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown compression `bzip2`: use gzip, xz or zstd"),
        "{stderr}"
    );
    assert!(!out_dir.exists());
}

#[test]
fn unreadable_inputs_are_named() {
    // A directory where a file is expected.
    let fixture = Fixture::new();
    fs::remove_file(fixture.path("README")).unwrap();
    fs::create_dir(fixture.path("README")).unwrap();
    let err = build_fails(&fixture, &[]);
    assert!(err.contains("README"), "{err}");
    assert!(err.contains("cannot be read (it is a directory)"), "{err}");

    // A file without read permission, built by an unprivileged user (root reads
    // everything).
    let fixture = Fixture::new();
    fs::set_permissions(fixture.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    for name in build_support::listing(fixture.dir.path()) {
        fs::set_permissions(fixture.path(&name), fs::Permissions::from_mode(0o644)).unwrap();
    }
    fs::set_permissions(fixture.path("hello"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(fixture.path("README"), fs::Permissions::from_mode(0o000)).unwrap();
    let out_dir = fixture.out_dir("out");
    let hoist_bin = env!("CARGO_BIN_EXE_hoist");
    build_support::require_tool("setpriv", "util-linux");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(hoist_bin)
        .arg("build")
        .arg("--manifest")
        .arg(fixture.manifest())
        .arg("--out-dir")
        .arg(&out_dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let err = assert_failed(&fixture, &out, &out_dir);
    assert!(err.contains("README"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("fix its permissions"), "{err}");

    // The same user can build once the file is readable: the failure was the file.
    fs::set_permissions(fixture.path("README"), fs::Permissions::from_mode(0o644)).unwrap();
    let ok = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(hoist_bin)
        .arg("build")
        .arg("--manifest")
        .arg(fixture.manifest())
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn help_lists_the_build_flags() {
    let out = hoist().args(["build", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--manifest",
        "--version",
        "--arch",
        "--out-dir",
        "--compression",
        "--source-date-epoch",
    ] {
        assert!(help.contains(flag), "{flag} in:\n{help}");
    }
}
