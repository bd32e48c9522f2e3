//! Reproducibility across build environments, not just on one machine: the same
//! inputs built in another directory, by another user, with another umask, time zone,
//! locale, temporary directory and file system (a tmpfs, files created in the reverse
//! order) give byte-identical packages — the main one and its `-dbgsym`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod build_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use build_support::{Fixture, compile_c, require_tool, run_ok};

const EPOCH: &str = "1700000000";

/// Explains how two packages differ: diffoscope when installed, else `cmp` and the
/// listings and control fields side by side.
fn explain_difference(a: &Path, b: &Path) -> String {
    if which::which("diffoscope").is_ok() {
        let out = Command::new("diffoscope").arg(a).arg(b).output().unwrap();
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
    let mut report = String::new();
    for args in [
        vec!["cmp".to_owned()],
        vec!["dpkg-deb".to_owned(), "--contents".to_owned()],
        vec!["dpkg-deb".to_owned(), "--info".to_owned()],
    ] {
        for deb in [a, b] {
            let out = Command::new(&args[0])
                .args(&args[1..])
                .arg(deb)
                .args((args[0] == "cmp").then_some(b))
                .output()
                .unwrap();
            report.push_str(&format!(
                "$ {} {}\n{}{}\n",
                args.join(" "),
                deb.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
            if args[0] == "cmp" {
                break;
            }
        }
    }
    report
}

#[test]
fn another_user_directory_umask_locale_and_file_system_give_the_same_bytes() {
    require_tool("unshare", "util-linux");
    require_tool("setpriv", "util-linux");
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test builds as `nobody` in a private mount namespace: run it as root (make test does)"
    );
    // An ELF binary with symbols, so stripping and the -dbgsym package are covered.
    let build_dir = tempfile::tempdir().unwrap();
    let binary = compile_c(build_dir.path(), "hello");
    let fixture = Fixture::new();
    fs::copy(&binary, fixture.path("hello")).unwrap();

    // Build one: root, the fixture's directory, umask 022, UTC, C locale.
    let first = fixture.out_dir("first");
    let out = build_support::hoist()
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .args(["build", "--manifest"])
        .arg(fixture.manifest())
        .arg("--out-dir")
        .arg(&first)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Build two, in a private mount namespace (nothing outlives it): the inputs and
    // hoist itself are copied onto a fresh tmpfs in the reverse order, owned by
    // `nobody`, who builds with umask 077, another time zone and locale and a
    // temporary directory on that tmpfs. The packages are copied out as root.
    let second = fixture.out_dir("second");
    fs::create_dir(&second).unwrap();
    let mount_point = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = fs::read_dir(fixture.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| fs::metadata(fixture.path(n)).unwrap().is_file())
        .collect();
    names.sort();
    names.reverse();
    let script = r#"
set -eu
mnt=$1; src=$2; hoist=$3; out=$4; shift 4
mount -t tmpfs -o mode=0755 hoist-repro "$mnt"
mkdir -m 0700 "$mnt/some/" "$mnt/some/other-dir" "$mnt/tmp"
mkdir -m 0755 "$mnt/bin"
# Inputs created under umask 077 (modes 0600/0700), newest first.
(umask 077 && for name in "$@"; do cp "$src/$name" "$mnt/some/other-dir/$name"; done)
cp "$hoist" "$mnt/bin/hoist" && chmod 0755 "$mnt/bin/hoist"
chown -R nobody:nogroup "$mnt/some" "$mnt/tmp"
cd "$mnt/some/other-dir"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- env -i \
    PATH="$PATH" HOME=/nonexistent TMPDIR="$mnt/tmp" TZ=Pacific/Chatham \
    LC_ALL=C.UTF-8 LANG=fr_FR.UTF-8 SOURCE_DATE_EPOCH=1700000000 RUST_LOG=warn \
    sh -c 'umask 077 && "$0" build --manifest hoist.toml --out-dir dist' "$mnt/bin/hoist"
cp "$mnt"/some/other-dir/dist/*.deb "$out/"
"#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(mount_point.path())
        .arg(fixture.dir.path())
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .arg(&second)
        .args(&names)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the second build failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The tmpfs went with the namespace.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("hoist-repro"), "{mounts}");

    let listing = build_support::listing(&first);
    assert_eq!(
        listing,
        ["hello-dbgsym_1.0_amd64.deb", "hello_1.0_amd64.deb"],
        "both packages are built"
    );
    assert_eq!(build_support::listing(&second), listing);
    for name in &listing {
        let (a, b) = (first.join(name), second.join(name));
        assert!(
            fs::read(&a).unwrap() == fs::read(&b).unwrap(),
            "{name} differs between the two environments:\n{}",
            explain_difference(&a, &b)
        );
    }
    // The second build's inputs were private (umask 077): modes are normalised.
    let contents = run_ok(
        Command::new("dpkg-deb")
            .arg("--contents")
            .arg(second.join("hello_1.0_amd64.deb")),
    );
    assert!(contents.contains("-rw-r--r-- root/root"), "{contents}");
}
