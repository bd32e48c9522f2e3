//! `hoist build` produces packages that Debian's own tools read and accept:
//! dpkg-deb (--info, --contents, --field), lintian, for every compression; and the
//! same inputs give the same bytes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod build_support;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use build_support::{Fixture, build_ok, hoist_build, require_tool, run_ok};
use md5::{Digest, Md5};

const COMPRESSIONS: [(&str, &str); 3] = [("gzip", "gz"), ("xz", "xz"), ("zstd", "zst")];

fn dpkg_deb(args: &[&str], deb: &std::path::Path) -> String {
    require_tool("dpkg-deb", "dpkg");
    run_ok(Command::new("dpkg-deb").args(args).arg(deb))
}

/// `dpkg-deb --contents` as path → (mode string, owner).
fn contents(deb: &std::path::Path) -> BTreeMap<String, (String, String)> {
    dpkg_deb(&["--contents"], deb)
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols[5].to_owned(), (cols[0].to_owned(), cols[1].to_owned()))
        })
        .collect()
}

#[test]
fn dpkg_deb_reads_every_compression() {
    let fixture = Fixture::new();
    for (compression, ext) in COMPRESSIONS {
        let out_dir = fixture.out_dir(compression);
        let deb = build_ok(
            &fixture.manifest(),
            &out_dir,
            &["--compression", compression, "--arch", "amd64"],
        );
        assert_eq!(deb.file_name().unwrap(), "hello_1.0_amd64.deb");

        // Member order and names (deb(5)).
        require_tool("ar", "binutils");
        let members = run_ok(Command::new("ar").arg("t").arg(&deb));
        assert_eq!(
            members.lines().collect::<Vec<_>>(),
            [
                "debian-binary",
                &format!("control.tar.{ext}"),
                &format!("data.tar.{ext}")
            ]
        );

        // --field: the control fields.
        let fields = dpkg_deb(&["--field"], &deb);
        for expected in [
            "Package: hello",
            "Version: 1.0",
            "Architecture: amd64",
            "Maintainer: Hoist Tests <tests@example.com>",
            "Section: net",
            "Priority: optional",
            "Homepage: https://example.com/hoist",
            "Description: example service for hoist's package tests",
        ] {
            assert!(
                fields.lines().any(|l| l == expected),
                "{expected} in:\n{fields}"
            );
        }
        let version = run_ok(
            Command::new("dpkg-deb")
                .arg("--field")
                .arg(&deb)
                .arg("Version"),
        );
        assert_eq!(version.trim(), "1.0");

        // --info: the control members, with executable maintainer scripts.
        let info = dpkg_deb(&["--info"], &deb);
        let members: Vec<(bool, &str)> = info
            .lines()
            .filter(|l| l.contains(" bytes,") && l.contains(" lines"))
            .map(|l| {
                let after = l.split(" lines").nth(1).unwrap_or("").trim_start();
                match after.strip_prefix('*') {
                    Some(rest) => (true, rest.split_whitespace().next().unwrap_or("")),
                    None => (false, after.split_whitespace().next().unwrap_or("")),
                }
            })
            .collect();
        assert_eq!(
            members,
            [
                (false, "conffiles"),
                (false, "control"),
                (false, "md5sums"),
                (true, "postinst"),
                (true, "postrm"),
                (true, "preinst"),
                (true, "prerm"),
            ],
            "{info}"
        );
        let conffiles = run_ok(
            Command::new("dpkg-deb")
                .arg("--info")
                .arg(&deb)
                .arg("conffiles"),
        );
        assert_eq!(conffiles, "/etc/hello/hello.conf\n");

        // --contents: parents included, root:root, normalized modes.
        let listing = contents(&deb);
        for (path, mode) in [
            ("./", "drwxr-xr-x"),
            ("./etc/", "drwxr-xr-x"),
            ("./etc/hello/", "drwxr-xr-x"),
            ("./etc/hello/hello.conf", "-rw-r--r--"),
            ("./usr/lib/systemd/system/hello.service", "-rw-r--r--"),
            ("./usr/bin/hello", "-rwxr-xr-x"),
            ("./usr/share/doc/hello/README", "-rw-r--r--"),
            ("./usr/share/doc/hello/changelog.gz", "-rw-r--r--"),
            ("./usr/share/doc/hello/copyright", "-rw-r--r--"),
            ("./usr/share/lintian/overrides/hello", "-rw-r--r--"),
        ] {
            let entry = listing
                .get(path)
                .unwrap_or_else(|| panic!("{path} in {listing:?}"));
            assert_eq!(entry.0, mode, "{path}");
        }
        assert!(
            listing.values().all(|(_, owner)| owner == "root/root"),
            "{listing:?}"
        );
        let paths: Vec<&String> = listing.keys().collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }
}

#[test]
fn control_fields_are_computed() {
    let fixture = Fixture::new();
    let deb = build_ok(&fixture.manifest(), &fixture.out_dir("out"), &[]);

    // Installed-Size: what dpkg-gencontrol measures on the unpacked files.
    let size: u64 = dpkg_deb(&["--field"], &deb)
        .lines()
        .find_map(|l| l.strip_prefix("Installed-Size: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        size,
        hoist_testkit::debian_tools::installed_size_by_dpkg_gencontrol(&deb)
    );

    // The default architecture is the build host's.
    let host = run_ok(Command::new("dpkg").arg("--print-architecture"));
    assert!(
        deb.to_string_lossy()
            .ends_with(&format!("_{}.deb", host.trim()))
    );

    // md5sums: every regular file but the conffile, with the right digest.
    let md5sums = run_ok(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(&deb)
            .arg("md5sums"),
    );
    let binary = fs::read(fixture.path("hello")).unwrap();
    let line = format!("{}  usr/bin/hello", hex::encode(Md5::digest(&binary)));
    assert!(md5sums.lines().any(|l| l == line), "{line} in:\n{md5sums}");
    assert!(!md5sums.contains("etc/hello/hello.conf"), "{md5sums}");
    assert_eq!(md5sums.lines().count(), 6, "{md5sums}");

    // --version and --arch override the manifest; the epoch stays out of the file name.
    let deb = build_ok(
        &fixture.manifest(),
        &fixture.out_dir("out"),
        &["--version", "2:1.1-3", "--arch", "arm64"],
    );
    assert_eq!(deb.file_name().unwrap(), "hello_1.1-3_arm64.deb");
    let fields = dpkg_deb(&["--field"], &deb);
    assert!(fields.contains("Version: 2:1.1-3\n"), "{fields}");
    assert!(fields.contains("Architecture: arm64\n"), "{fields}");
    // A Debian revision makes the changelog non-native.
    assert!(contents(&deb).contains_key("./usr/share/doc/hello/changelog.Debian.gz"));
}

#[test]
fn lintian_reports_no_errors_or_warnings() {
    require_tool("lintian", "lintian");
    let fixture = Fixture::new();
    // lintian leaves MLDBM scratch files in $TMPDIR behind; keep them in the fixture,
    // which is removed with it.
    let lintian_tmp = fixture.path("lintian-tmp");
    fs::create_dir(&lintian_tmp).unwrap();
    let gzip = build_ok(
        &fixture.manifest(),
        &fixture.out_dir("gzip"),
        &["--compression", "gzip"],
    );
    for (compression, _) in COMPRESSIONS {
        let deb = build_ok(
            &fixture.manifest(),
            &fixture.out_dir(compression),
            &["--compression", compression],
        );
        if compression == "zstd" {
            // lintian cannot read zstd members: the same archives as the gzip package.
            build_support::assert_same_contents(&deb, &gzip);
            continue;
        }
        build_support::assert_lintian_clean(&deb, &lintian_tmp);
        // The overrides that keep it clean are shipped, with their reasons.
        let overrides = run_ok(
            Command::new("sh")
                .arg("-c")
                .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -xO ./usr/share/lintian/overrides/hello")
                .arg("sh")
                .arg(&deb),
        );
        assert!(
            overrides.contains("hello: maintainer-script-calls-systemctl"),
            "{overrides}"
        );
        assert!(overrides.contains("hello: no-manual-page"), "{overrides}");
        assert!(
            overrides.lines().filter(|l| l.starts_with('#')).count() >= 4,
            "each override has a comment:\n{overrides}"
        );
    }
}

#[test]
fn rebuilding_gives_identical_bytes() {
    let fixture = Fixture::new();
    for (compression, _) in COMPRESSIONS {
        let args = ["--compression", compression];
        let a = build_ok(&fixture.manifest(), &fixture.out_dir("a"), &args);
        let b = build_ok(&fixture.manifest(), &fixture.out_dir("b"), &args);
        let one_thread = build_ok(
            &fixture.manifest(),
            &fixture.out_dir("c"),
            &["--compression", compression, "--compress-threads", "1"],
        );
        let bytes = fs::read(&a).unwrap();
        assert_eq!(
            bytes,
            fs::read(&b).unwrap(),
            "{compression}: two builds differ"
        );
        assert_eq!(
            bytes,
            fs::read(&one_thread).unwrap(),
            "{compression}: thread count changed the output"
        );
    }
}

#[test]
fn source_date_epoch_clamps_every_mtime() {
    require_tool("tar", "tar");
    let fixture = Fixture::new();
    let epoch = "1700000000"; // 2023-11-14 22:13:20 UTC, older than the fixture copy
    let first = build_ok(
        &fixture.manifest(),
        &fixture.out_dir("a"),
        &["--source-date-epoch", epoch],
    );
    let listing = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -tv --full-time")
            .arg("sh")
            .arg(&first)
            .env("TZ", "UTC"),
    );
    assert!(listing.lines().count() > 10, "{listing}");
    for line in listing.lines() {
        assert!(
            line.contains("2023-11-14 22:13:20"),
            "mtime not clamped: {line}"
        );
    }

    // Touching the inputs changes nothing once mtimes are clamped; the environment
    // variable works like the flag.
    for name in ["hello", "hello.conf", "hello.service", "README"] {
        let file = fs::File::options()
            .append(true)
            .open(fixture.path(name))
            .unwrap();
        file.set_modified(std::time::SystemTime::now()).unwrap();
    }
    let out = build_support::hoist()
        .env("SOURCE_DATE_EPOCH", epoch)
        .arg("build")
        .arg("--manifest")
        .arg(fixture.manifest())
        .arg("--out-dir")
        .arg(fixture.out_dir("b"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = fixture.out_dir("b").join(first.file_name().unwrap());
    assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());

    // Without an epoch the newest input mtime bounds everything: a changed file changes
    // the package.
    let plain = build_ok(&fixture.manifest(), &fixture.out_dir("c"), &[]);
    assert_ne!(fs::read(&first).unwrap(), fs::read(&plain).unwrap());
}

#[test]
fn failed_build_keeps_an_existing_package() {
    let fixture = Fixture::new();
    let out_dir = fixture.out_dir("out");
    let deb = build_ok(&fixture.manifest(), &out_dir, &[]);
    let before = fs::read(&deb).unwrap();
    fs::remove_file(fixture.path("README")).unwrap();
    let out = hoist_build(&fixture.manifest(), &out_dir, &[]);
    assert!(!out.status.success());
    assert_eq!(
        fs::read(&deb).unwrap(),
        before,
        "the old package is untouched"
    );
    assert_eq!(
        build_support::listing(&out_dir),
        [deb.file_name().unwrap().to_string_lossy()]
    );
}
