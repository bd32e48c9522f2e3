//! `hoist_deb::build` and `hoist_deb::inspect` on real files, checked against
//! dpkg-deb where Debian's tool is the reference.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_deb::{
    BuildOptions, Compression, Copyright, DebError, FileEntry, MaintainerScripts, PackageSpec,
    SystemdUnit, build, inspect,
};
use hoist_testkit::debian_tools;

/// Input files in a temporary directory.
struct Inputs {
    dir: tempfile::TempDir,
}

impl Inputs {
    fn new() -> Inputs {
        let inputs = Inputs {
            dir: tempfile::tempdir().unwrap(),
        };
        inputs.write("hello", b"#!/bin/sh\necho hello\n", 0o755);
        inputs.write("hello.conf", b"GREETING=hi\n", 0o600);
        inputs.write(
            "hello.service",
            b"[Unit]\nDescription=hello\n\n[Service]\nExecStart=/usr/bin/hello\n\n[Install]\nWantedBy=multi-user.target\n",
            0o644,
        );
        inputs.write("kib", &[b'x'; 1024], 0o644);
        inputs.write("empty", b"", 0o644);
        inputs
    }

    fn write(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spec(&self) -> PackageSpec {
        let mut spec = PackageSpec {
            name: "hello".into(),
            version: "1:1.2.3-1".into(),
            architecture: "amd64".into(),
            maintainer: "Ops Team <ops@example.com>".into(),
            description: "says hello\nA test package.\n\nSecond paragraph.".into(),
            section: Some("net".into()),
            priority: Some("optional".into()),
            homepage: Some("https://example.com".into()),
            files: vec![
                FileEntry::new(self.path("hello"), "/usr/bin/hello"),
                FileEntry::new(self.path("hello.conf"), "/etc/hello/hello.conf"),
                FileEntry::new(self.path("kib"), "/usr/share/hello/kib"),
                FileEntry::new(self.path("empty"), "/usr/share/hello/empty").with_mode(0o640),
            ],
            units: vec![SystemdUnit::new(self.path("hello.service"))],
            copyright: Some(Copyright {
                holder: Some("2025 Example".into()),
                license: "MIT".into(),
            }),
            ..PackageSpec::default()
        };
        spec.relations.depends = vec!["libc6 (>= 2.36)".into(), "procps | busybox".into()];
        spec
    }
}

fn options(out: &Path) -> BuildOptions {
    BuildOptions {
        source_date_epoch: Some(1_700_000_000),
        ..BuildOptions::new(out)
    }
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("dpkg-deb is installed (`make test` installs dpkg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn inspect_reads_what_build_wrote() {
    let inputs = Inputs::new();
    let out = tempfile::tempdir().unwrap();
    for compression in Compression::ALL {
        let deb = build(
            &inputs.spec(),
            &BuildOptions {
                compression,
                ..options(out.path())
            },
        )
        .unwrap();
        assert_eq!(deb, out.path().join("hello_1.2.3-1_amd64.deb"));
        let info = inspect(&deb).unwrap();
        assert_eq!(info.package, "hello");
        assert_eq!(info.version, "1:1.2.3-1");
        assert_eq!(info.architecture, "amd64");
        assert_eq!(info.file_name(), "hello_1.2.3-1_amd64.deb");
        assert_eq!(
            info.field("depends"),
            Some("libc6 (>= 2.36), procps | busybox")
        );
        assert_eq!(
            info.field("Description"),
            Some("says hello\n A test package.\n .\n Second paragraph.")
        );
        assert_eq!(info.conffiles, ["/etc/hello/hello.conf"]);
        assert_eq!(info.scripts, ["postinst", "postrm", "preinst", "prerm"]);
        assert_eq!(info.data_compression, compression);

        // dpkg-deb agrees on the fields, both ways: every field hoist reads back is in
        // dpkg-deb's output with the same value, and every field dpkg-deb prints is in
        // hoist's, continuation lines included.
        let theirs = debian_tools::dpkg_deb_fields(&deb);
        let ours: Vec<(String, String)> = info.fields.clone();
        for (name, value) in &ours {
            assert!(
                theirs.iter().any(|(n, v)| n == name && v == value),
                "hoist's {name}: {value:?} is not in dpkg-deb --field: {theirs:?}"
            );
        }
        for (name, value) in &theirs {
            assert_eq!(
                info.field(name),
                Some(value.as_str()),
                "dpkg-deb's {name} differs in hoist's inspect"
            );
        }
        assert_eq!(ours.len(), theirs.len(), "{ours:?}\n{theirs:?}");

        // Installed-Size as dpkg-gencontrol measures the unpacked files.
        assert_eq!(
            info.field("Installed-Size"),
            Some(
                debian_tools::installed_size_by_dpkg_gencontrol(&deb)
                    .to_string()
                    .as_str()
            )
        );
        let listing = dpkg_deb(&["--contents"], &deb);
        assert!(
            listing.contains(
                "-rw-r----- root/root         0 2023-11-14 22:13 ./usr/share/hello/empty"
            ),
            "{listing}"
        );
        // The source's 0600 is normalized to 0644.
        assert!(
            listing
                .contains("-rw-r--r-- root/root        12 2023-11-14 22:13 ./etc/hello/hello.conf"),
            "{listing}"
        );
    }
}

#[test]
fn inspect_reads_packages_built_by_dpkg_deb() {
    let tree = tempfile::tempdir().unwrap();
    fs::create_dir_all(tree.path().join("DEBIAN")).unwrap();
    fs::create_dir_all(tree.path().join("etc/x")).unwrap();
    fs::write(tree.path().join("etc/x/x.conf"), "a=1\n").unwrap();
    fs::write(tree.path().join("DEBIAN/conffiles"), "/etc/x/x.conf\n").unwrap();
    fs::write(
        tree.path().join("DEBIAN/control"),
        "Package: other\nVersion: 2.0\nArchitecture: all\nMaintainer: A B <a@example.com>\nDescription: other\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    for compression in ["gzip", "xz", "zstd"] {
        let deb = out.path().join(format!("other-{compression}.deb"));
        let status = Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Z", compression, "--build"])
            .arg(tree.path())
            .arg(&deb)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let info = inspect(&deb).unwrap();
        assert_eq!(
            (info.package.as_str(), info.version.as_str()),
            ("other", "2.0")
        );
        assert_eq!(info.architecture, "all");
        assert_eq!(info.conffiles, ["/etc/x/x.conf"]);
        assert_eq!(info.data_compression.name(), compression);
    }
}

#[test]
fn inspect_rejects_what_is_not_a_package() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.deb");
    fs::write(&text, "just text").unwrap();
    let err = inspect(&text).unwrap_err();
    assert!(matches!(err, DebError::NotADeb { .. }), "{err}");
    assert!(err.to_string().contains("is not a valid .deb"), "{err}");

    let missing = dir.path().join("missing.deb");
    let err = inspect(&missing).unwrap_err();
    assert!(matches!(err, DebError::ReadPackage { .. }), "{err}");
    assert!(err.to_string().contains("missing.deb"), "{err}");

    // An ar archive with the wrong members.
    let ar_path = dir.path().join("wrong.deb");
    let mut builder = ar::Builder::new(fs::File::create(&ar_path).unwrap());
    builder
        .append(
            &ar::Header::new(b"debian-binary".to_vec(), 4),
            &b"2.0\n"[..],
        )
        .unwrap();
    builder
        .append(&ar::Header::new(b"control.tar.bz2".to_vec(), 1), &b"x"[..])
        .unwrap();
    drop(builder);
    let err = inspect(&ar_path).unwrap_err().to_string();
    assert!(err.contains("control.tar.bz2"), "{err}");
}

#[test]
fn inspect_reports_a_truncated_data_member() {
    let inputs = Inputs::new();
    let out = tempfile::tempdir().unwrap();
    let deb = build(&inputs.spec(), &options(out.path())).unwrap();
    let bytes = fs::read(&deb).unwrap();
    // An interrupted download: the control member is whole, the data member is not.
    fs::write(&deb, &bytes[..bytes.len() - 100]).unwrap();
    let err = inspect(&deb).unwrap_err();
    assert!(matches!(err, DebError::NotADeb { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("truncated"), "{text}");
    assert!(text.contains("data.tar.gz"), "{text}");
    // ar pads a member of odd size with one byte, which is not part of the member.
    let mut archive = ar::Archive::new(&bytes[..]);
    let mut sizes = Vec::new();
    while let Some(entry) = archive.next_entry() {
        sizes.push(entry.unwrap().header().size());
    }
    let short_by = 100 - sizes[2] % 2;
    assert!(
        text.contains(&format!("ends {short_by} bytes short")),
        "{text}"
    );

    // Whole again: inspect reads it.
    fs::write(&deb, &bytes).unwrap();
    assert_eq!(inspect(&deb).unwrap().package, "hello");
}

#[test]
fn same_inputs_same_bytes_whatever_the_thread_count() {
    let inputs = Inputs::new();
    for compression in Compression::ALL {
        let mut outputs = Vec::new();
        for threads in [1, 2, 4] {
            let out = tempfile::tempdir().unwrap();
            let deb = build(
                &inputs.spec(),
                &BuildOptions {
                    compression,
                    threads: NonZeroUsize::new(threads),
                    ..options(out.path())
                },
            )
            .unwrap();
            outputs.push(fs::read(deb).unwrap());
        }
        assert!(outputs.windows(2).all(|w| w[0] == w[1]), "{compression}");
    }
}

#[test]
fn default_epoch_is_the_newest_input_mtime() {
    let inputs = Inputs::new();
    let newest = 1_600_000_000;
    for (i, name) in ["hello", "hello.conf", "hello.service", "kib", "empty"]
        .iter()
        .enumerate()
    {
        let file = fs::File::options()
            .append(true)
            .open(inputs.path(name))
            .unwrap();
        let secs = newest - 1000 * i as u64;
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let deb = build(&inputs.spec(), &BuildOptions::new(out.path())).unwrap();
    let listing = Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -tv --full-time")
        .arg("sh")
        .arg(&deb)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    // 1_600_000_000 = 2020-09-13 12:26:40 UTC: directories and generated files get it,
    // each input keeps its own (older) mtime.
    assert!(
        listing.contains("2020-09-13 12:26:40 ./usr/bin/hello"),
        "{listing}"
    );
    assert!(
        listing.contains("2020-09-13 12:26:40 ./usr/share/doc/hello/copyright"),
        "{listing}"
    );
    assert!(
        listing.contains("2020-09-13 12:10:00 ./etc/hello/hello.conf"),
        "{listing}"
    );
    let again = tempfile::tempdir().unwrap();
    let deb2 = build(&inputs.spec(), &BuildOptions::new(again.path())).unwrap();
    assert_eq!(fs::read(&deb).unwrap(), fs::read(&deb2).unwrap());
}

#[test]
fn long_paths_use_gnu_long_names() {
    let inputs = Inputs::new();
    let long_dest = format!("/usr/share/hello/{}/{}.txt", "d".repeat(90), "f".repeat(60));
    let mut spec = inputs.spec();
    spec.files
        .push(FileEntry::new(inputs.path("kib"), long_dest.clone()));
    let out = tempfile::tempdir().unwrap();
    let deb = build(&spec, &options(out.path())).unwrap();
    let listing = dpkg_deb(&["--contents"], &deb);
    assert!(listing.contains(&format!(".{long_dest}\n")), "{listing}");
}

#[test]
fn failures_leave_nothing_behind() {
    let inputs = Inputs::new();
    let out = tempfile::tempdir().unwrap();
    let cases: Vec<(PackageSpec, &str)> = vec![
        (
            PackageSpec {
                name: "Hello".into(),
                ..inputs.spec()
            },
            "invalid package name `Hello`",
        ),
        (
            PackageSpec {
                version: "1.0-".into(),
                ..inputs.spec()
            },
            "the revision after the last `-` is empty",
        ),
        (
            {
                let mut spec = inputs.spec();
                spec.files
                    .push(FileEntry::new(inputs.path("nope"), "/usr/bin/nope"));
                spec
            },
            "does not exist",
        ),
        (
            {
                let mut spec = inputs.spec();
                spec.files
                    .push(FileEntry::new(inputs.path("kib"), "/usr/bin/hello/sub"));
                spec
            },
            "/usr/bin/hello is installed as a file",
        ),
        (
            {
                let mut spec = inputs.spec();
                spec.files[0].mode = Some(0o100755);
                spec
            },
            "invalid mode",
        ),
        (
            {
                let mut spec = inputs.spec();
                spec.units.push(SystemdUnit::new(inputs.path("kib")));
                spec
            },
            "invalid systemd unit",
        ),
        (
            {
                let mut spec = inputs.spec();
                spec.scripts = MaintainerScripts {
                    postinst: Some(inputs.path("kib")),
                    ..MaintainerScripts::default()
                };
                spec
            },
            "does not start with `#!`",
        ),
        (
            PackageSpec {
                copyright: None,
                ..inputs.spec()
            },
            "Debian policy 12.5",
        ),
    ];
    for (spec, expected) in cases {
        let err = build(&spec, &options(out.path())).unwrap_err().to_string();
        assert!(err.contains(expected), "`{expected}` in: {err}");
        let left: Vec<_> = fs::read_dir(out.path()).unwrap().collect();
        assert!(left.is_empty(), "{expected}: left {left:?}");
    }

    let missing_dir = out.path().join("missing");
    let err = build(&inputs.spec(), &options(&missing_dir))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
    assert!(err.contains("check that the directory exists"), "{err}");
}

#[test]
fn user_scripts_are_merged_and_executable() {
    let inputs = Inputs::new();
    let script = inputs.write(
        "postinst",
        b"#!/bin/sh\nset -e\necho configuring hello\n#HOIST#\necho done\n",
        0o644,
    );
    let mut spec = inputs.spec();
    spec.scripts.postinst = Some(script);
    let out = tempfile::tempdir().unwrap();
    let deb = build(&spec, &options(out.path())).unwrap();
    let postinst = dpkg_deb(&["--info"], &deb);
    assert!(postinst.contains("*  postinst"), "{postinst}");
    let text = Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("postinst")
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    let configuring = text.find("echo configuring hello").unwrap();
    let generated = text.find("systemctl --system enable").unwrap();
    let done = text.find("echo done").unwrap();
    assert!(configuring < generated && generated < done, "{text}");
}

#[test]
fn a_file_that_changes_while_packed_fails_the_build() {
    // /proc files stat as 0 bytes and then read as more: exactly what a file still
    // being written looks like to the build.
    let inputs = Inputs::new();
    let mut spec = inputs.spec();
    spec.files.push(FileEntry::new(
        "/proc/self/status",
        "/usr/share/hello/status",
    ));
    let out = tempfile::tempdir().unwrap();
    let err = build(&spec, &options(out.path())).unwrap_err();
    assert!(matches!(err, DebError::FileChanged { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("/proc/self/status"), "{text}");
    assert!(text.contains("changed while it was being packed"), "{text}");
    assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
}
