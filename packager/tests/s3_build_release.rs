//! `hoist release` without `--deb`: builds from `hoist.toml` first, takes its S3
//! settings from the manifest's `[s3]` table, and records the git commit of the
//! source tree (with `-dirty` for uncommitted changes).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use std::path::Path;
use std::process::Command;

use hoist_testkit::s3server::S3Server;
use s3_common::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let git =
        which::which("git").expect("`git` is needed for this test; run `make test` to install it");
    let out = Command::new(git)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn builds_then_releases_with_manifest_settings_and_git_commit() {
    let server = S3Server::moto();
    server.create_bucket("from-manifest", true);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("payload.txt"), "payload\n").unwrap();
    std::fs::write(
        dir.path().join("hoist.toml"),
        r#"[package]
name = "hello"
version = "3.0"
architecture = "all"
maintainer = "Test <t@example.com>"
license = "MIT"
description = """
hoist test package
Built by the release test."""

[[files]]
source = "payload.txt"
dest = "/usr/share/hello/payload.txt"
mode = "0644"

[s3]
bucket = "from-manifest"
key = "services/hello/current.deb"
"#,
    )
    .unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "init"]);
    let head = git(dir.path(), &["rev-parse", "HEAD"]);

    let report = json(&ok(run(hoist(&server, dir.path()).args([
        "release",
        "--unsigned",
        "--json",
    ]))));
    assert_eq!(report["bucket"], "from-manifest");
    assert_eq!(report["key"], "services/hello/current.deb");
    assert_eq!(report["package"], "hello");
    assert_eq!(report["version"], "3.0");
    assert_eq!(report["git_commit"], head.as_str());
    let built = dir.path().join("dist/hello_3.0_all.deb");
    assert_eq!(report["sha256"], digests(&built).sha256_hex());

    // A tracked file changed: the commit is marked dirty. The flag overrides [s3].
    std::fs::write(dir.path().join("payload.txt"), "changed\n").unwrap();
    server.create_bucket("from-flag", true);
    let report = json(&ok(run(hoist(&server, dir.path()).args([
        "release",
        "--unsigned",
        "--json",
        "--bucket",
        "from-flag",
        "--version",
        "3.1",
    ]))));
    assert_eq!(report["bucket"], "from-flag");
    assert_eq!(report["version"], "3.1");
    assert_eq!(report["git_commit"], format!("{head}-dirty"));

    let history = json(&ok(run(
        hoist(&server, dir.path()).args(["history", "--json"])
    )));
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "history reads [s3] too: {history}"
    );
    assert_eq!(history[0]["version"], "3.0");
}
