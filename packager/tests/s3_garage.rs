//! `hoist release` against a real garage server, which checks signatures and
//! Content-MD5 and rejects aws-sdk's default streaming-checksum uploads; garage has no
//! versioning, so releases there need --allow-unversioned. (A wrong Content-MD5 is
//! shown refused in hoist-s3's own garage tests: the CLI always sends the right one.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use hoist_s3::{Head, etag_md5};
use hoist_testkit::s3server::S3Server;
use s3_common::*;

const KEY: &str = "releases/hello.deb";

#[tokio::test]
async fn release_with_allow_unversioned_works() {
    let server = S3Server::garage();
    server.create_bucket("rel", false);
    let dir = tempfile::tempdir().unwrap();
    let deb = make_deb(dir.path(), "hello", "1.0", "one");
    let d = digests(&deb);

    // Without the flag: refused, because garage has no versioning.
    let err = fails(run(hoist(&server, dir.path())
        .args(["release", "--unsigned", "--bucket", "rel", "--deb"])
        .arg(&deb)));
    assert!(err.contains("versioning is not enabled"), "{err}");

    let out = run(hoist(&server, dir.path())
        .args([
            "release",
            "--unsigned",
            "--bucket",
            "rel",
            "--allow-unversioned",
            "--json",
            "--deb",
        ])
        .arg(&deb));
    let warning = stderr(&out);
    let report = json(&ok(out));
    assert!(warning.contains("versioning is not enabled"), "{warning}");
    assert_eq!(etag_md5(report["etag"].as_str().unwrap()), Some(d.md5));

    let s3 = direct(&server, "rel", KEY).await;
    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("released")
    };
    assert_eq!(etag_md5(&info.etag), Some(d.md5), "ETag is the file's MD5");
    assert_eq!(info.size, d.size);
    assert_eq!(info.metadata.sha256, Some(d.sha256_hex()));
    assert_eq!(info.metadata.version.as_deref(), Some("1.0"));
    assert_eq!(info.metadata.releaser.as_deref(), Some("tester@ci"));

    // A second release replaces it (If-Match on the ETag seen at the start).
    let deb2 = make_deb(dir.path(), "hello", "1.1", "two");
    ok(run(hoist(&server, dir.path())
        .args([
            "release",
            "--unsigned",
            "--bucket",
            "rel",
            "--allow-unversioned",
            "--deb",
        ])
        .arg(&deb2)));
    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("released")
    };
    assert_eq!(info.metadata.sha256, Some(digests(&deb2).sha256_hex()));

    // No ListObjectVersions on garage: the history is the current object.
    let history =
        json(&ok(run(hoist(&server, dir.path()).args([
            "history", "--bucket", "rel", "--key", KEY, "--json",
        ]))));
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["current"], true);
    assert_eq!(history[0]["version"], "1.1");
    let err = fails(run(hoist(&server, dir.path()).args([
        "rollback",
        "--unsigned",
        "--bucket",
        "rel",
        "--key",
        KEY,
    ])));
    assert!(err.contains("has no versioning"), "{err}");
}

#[test]
fn wrong_credentials_are_refused() {
    let server = S3Server::garage();
    server.create_bucket("rel", false);
    let dir = tempfile::tempdir().unwrap();
    let deb = make_deb(dir.path(), "hello", "1.0", "one");
    let err = fails(run(hoist(&server, dir.path())
        .args([
            "release",
            "--unsigned",
            "--bucket",
            "rel",
            "--allow-unversioned",
            "--deb",
        ])
        .arg(&deb)
        .env("AWS_SECRET_ACCESS_KEY", "0".repeat(64))));
    assert!(
        err.contains("access denied to s3://rel/releases/hello.deb"),
        "{err}"
    );
    assert!(
        err.contains("check that the credentials are right"),
        "{err}"
    );

    let err = fails(run(hoist(&server, dir.path())
        .args(["history", "--bucket", "rel", "--key", KEY])
        .env("AWS_ACCESS_KEY_ID", "GK000000000000000000000000")));
    assert!(err.contains("access denied"), "{err}");
}

#[test]
fn missing_credentials_are_a_clear_error() {
    let server = S3Server::garage();
    let dir = tempfile::tempdir().unwrap();
    let err = fails(run(hoist(&server, dir.path())
        .args(["history", "--bucket", "rel", "--key", KEY])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")));
    assert!(
        err.contains("no AWS credentials for s3://rel/releases/hello.deb"),
        "{err}"
    );
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}
