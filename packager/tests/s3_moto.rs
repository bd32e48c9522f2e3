//! `hoist release`, `history` and `rollback` against a real moto server (the S3 server
//! with versioning). Each test starts its own server on a free port.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use hoist_s3::{Head, etag_md5};
use hoist_testkit::s3server::{S3Server, http_request};
use s3_common::*;

const KEY: &str = "releases/hello.deb";

fn release_json(
    server: &S3Server,
    dir: &std::path::Path,
    deb: &std::path::Path,
) -> serde_json::Value {
    json(&ok(run(hoist(server, dir)
        .args([
            "release",
            "--unsigned",
            "--bucket",
            "rel",
            "--json",
            "--deb",
        ])
        .arg(deb))))
}

fn history_json(server: &S3Server, dir: &std::path::Path) -> Vec<serde_json::Value> {
    let v =
        json(&ok(run(hoist(server, dir).args([
            "history", "--bucket", "rel", "--key", KEY, "--json",
        ]))));
    v.as_array().expect("history --json is an array").clone()
}

#[tokio::test]
async fn release_history_rollback_cycle() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();
    let deb1 = make_deb(dir.path(), "hello", "1.0", "one");
    let deb2 = make_deb(dir.path(), "hello", "1.1", "two");
    let (d1, d2) = (digests(&deb1), digests(&deb2));

    // First release: the key is new.
    let r1 = release_json(&server, dir.path(), &deb1);
    assert_eq!(r1["key"], KEY, "default key is releases/PACKAGE.deb");
    assert_eq!(r1["package"], "hello");
    assert_eq!(r1["version"], "1.0");
    assert_eq!(r1["arch"], "all");
    assert_eq!(r1["sha256"], d1.sha256_hex());
    assert_eq!(r1["previous_version_id"], serde_json::Value::Null);
    let v1 = r1["version_id"].as_str().expect("a VersionId").to_string();
    assert_eq!(
        etag_md5(r1["etag"].as_str().unwrap()),
        Some(d1.md5),
        "the ETag is the file's MD5"
    );

    // Second release, plain output: the VersionId alone on stdout.
    let out = ok(run(hoist(&server, dir.path())
        .args(["release", "--unsigned", "--bucket", "rel", "--deb"])
        .arg(&deb2)));
    let v2 = out.trim().to_string();
    assert!(
        !v2.is_empty() && v2 != v1 && !v2.contains(' '),
        "stdout: {out:?}"
    );

    // Metadata round-trips: read the object directly.
    let s3 = direct(&server, "rel", KEY).await;
    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("the release is there")
    };
    assert_eq!(info.version_id.as_deref(), Some(v2.as_str()));
    assert_eq!(etag_md5(&info.etag), Some(d2.md5));
    let m = &info.metadata;
    assert_eq!(m.package.as_deref(), Some("hello"));
    assert_eq!(m.version.as_deref(), Some("1.1"));
    assert_eq!(m.arch.as_deref(), Some("all"));
    assert_eq!(m.sha256, Some(d2.sha256_hex()));
    assert_eq!(m.md5, Some(d2.md5_hex()));
    assert_eq!(m.releaser.as_deref(), Some("tester@ci"));
    let build_time = m.build_time.as_deref().expect("build time");
    assert!(
        time::OffsetDateTime::parse(build_time, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{build_time}"
    );
    assert_eq!(m.minisig, None, "unsigned release");

    let h = history_json(&server, dir.path());
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["version_id"], v2.as_str());
    assert_eq!(h[0]["current"], true);
    assert_eq!(h[0]["version"], "1.1");
    assert_eq!(h[1]["version_id"], v1.as_str());
    assert_eq!(h[1]["current"], false);
    assert_eq!(h[1]["sha256"], d1.sha256_hex());
    assert_eq!(h[1]["size"], d1.size);

    // Roll back one step: a new current version with 1.0's bytes and metadata.
    let out = run(hoist(&server, dir.path()).args([
        "rollback",
        "--unsigned",
        "--bucket",
        "rel",
        "--key",
        KEY,
    ]));
    let err = stderr(&out);
    let v3 = ok(out).trim().to_string();
    assert!(v3 != v1 && v3 != v2, "a new version: {v3}");
    assert!(
        err.contains(&v2) && err.contains(&v1) && err.contains(&v3),
        "old and new ids: {err}"
    );

    let h = history_json(&server, dir.path());
    let ids: Vec<_> = h
        .iter()
        .map(|e| e["version_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [v3.as_str(), v2.as_str(), v1.as_str()]);
    assert_eq!(h[0]["current"], true);
    assert_eq!(
        h[0]["sha256"],
        d1.sha256_hex(),
        "the old sha256 is current again"
    );
    assert_eq!(h[0]["version"], "1.0");
    let (_, mut body) = s3.get(None).await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut body, &mut bytes)
        .await
        .unwrap();
    assert!(
        bytes == std::fs::read(&deb1).unwrap(),
        "the old bytes are current again"
    );

    // The human table marks the current version.
    let table = ok(run(
        hoist(&server, dir.path()).args(["history", "--bucket", "rel", "--key", KEY])
    ));
    let current: Vec<_> = table.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(current.len(), 1, "{table}");
    assert!(
        current[0].contains(&v3) && current[0].contains("hello 1.0"),
        "{table}"
    );
    assert!(current[0].contains(&d1.sha256_hex()[..12]), "{table}");

    // --to an explicit version.
    let json_out = json(&ok(run(hoist(&server, dir.path()).args([
        "rollback",
        "--unsigned",
        "--bucket",
        "rel",
        "--key",
        KEY,
        "--json",
        "--to",
        &v2,
    ]))));
    assert_eq!(json_out["previous_version_id"], v3.as_str());
    assert_eq!(json_out["restored_version_id"], v2.as_str());
    assert_eq!(json_out["sha256"], d2.sha256_hex());
    let h = history_json(&server, dir.path());
    assert_eq!(h.len(), 4);
    assert_eq!(h[0]["version_id"], json_out["new_version_id"]);
    assert_eq!(h[0]["sha256"], d2.sha256_hex());
}

#[test]
fn rollback_refuses_foreign_ids_and_delete_markers() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();
    let deb = make_deb(dir.path(), "hello", "1.0", "one");
    let v1 = release_json(&server, dir.path(), &deb)["version_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A version of another key in the same bucket is not a version of this key.
    let other = make_deb(dir.path(), "other", "1.0", "x");
    let foreign = release_json(&server, dir.path(), &other)["version_id"]
        .as_str()
        .unwrap()
        .to_string();
    let err = fails(run(hoist(&server, dir.path()).args([
        "rollback",
        "--unsigned",
        "--bucket",
        "rel",
        "--key",
        KEY,
        "--to",
        &foreign,
    ])));
    assert!(
        err.contains("is not a version of s3://rel/releases/hello.deb"),
        "{err}"
    );
    assert!(err.contains("hoist history"), "{err}");

    // Delete the key (moto takes the unsigned request): a delete marker is current.
    let (status, body) =
        http_request(server.addr(), "DELETE", &format!("/rel/{KEY}"), b"").unwrap();
    assert_eq!(status, 204, "{body}");
    let h = history_json(&server, dir.path());
    assert_eq!(h[0]["delete_marker"], true);
    let marker = h[0]["version_id"].as_str().unwrap().to_string();
    let err = fails(run(hoist(&server, dir.path()).args([
        "rollback",
        "--unsigned",
        "--bucket",
        "rel",
        "--key",
        KEY,
        "--to",
        &marker,
    ])));
    assert!(err.contains("is a delete marker"), "{err}");

    // The release below the marker can be brought back.
    let json_out = json(&ok(run(hoist(&server, dir.path()).args([
        "rollback",
        "--unsigned",
        "--bucket",
        "rel",
        "--key",
        KEY,
        "--json",
    ]))));
    assert_eq!(json_out["restored_version_id"], v1.as_str());
    assert_eq!(json_out["previous_version_id"], marker.as_str());
}

#[test]
fn unversioned_bucket_is_refused_unless_allowed() {
    let server = S3Server::moto();
    server.create_bucket("rel", false);
    let dir = tempfile::tempdir().unwrap();
    let deb = make_deb(dir.path(), "hello", "1.0", "one");
    let err = fails(run(hoist(&server, dir.path())
        .args(["release", "--unsigned", "--bucket", "rel", "--deb"])
        .arg(&deb)));
    assert!(
        err.contains("versioning is not enabled on bucket `rel`"),
        "{err}"
    );
    assert!(err.contains("--allow-unversioned"), "{err}");
    assert!(err.contains(server.endpoint()), "{err}");
    let h = history_json(&server, dir.path());
    assert!(h.is_empty(), "nothing was uploaded: {h:?}");

    let out = run(hoist(&server, dir.path())
        .args([
            "release",
            "--unsigned",
            "--bucket",
            "rel",
            "--allow-unversioned",
            "--deb",
        ])
        .arg(&deb));
    let warning = stderr(&out);
    ok(out);
    assert!(warning.contains("rollback"), "warns: {warning}");
    let h = history_json(&server, dir.path());
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["sha256"], digests(&deb).sha256_hex());

    let err = fails(run(hoist(&server, dir.path()).args([
        "rollback",
        "--unsigned",
        "--bucket",
        "rel",
        "--key",
        KEY,
    ])));
    assert!(err.contains("no versioning"), "{err}");
}

#[test]
fn missing_bucket_and_wrong_endpoint_are_clear_errors() {
    let server = S3Server::moto();
    let dir = tempfile::tempdir().unwrap();
    let deb = make_deb(dir.path(), "hello", "1.0", "one");

    let err = fails(run(hoist(&server, dir.path())
        .args([
            "release",
            "--unsigned",
            "--bucket",
            "no-such-bucket",
            "--deb",
        ])
        .arg(&deb)));
    assert!(
        err.contains(&format!(
            "bucket `no-such-bucket` does not exist at {}",
            server.endpoint()
        )),
        "{err}"
    );
    assert!(err.contains("create it"), "{err}");

    let err = fails(run(hoist(&server, dir.path()).args([
        "history",
        "--bucket",
        "no-such-bucket",
        "--key",
        KEY,
    ])));
    assert!(
        err.contains("bucket `no-such-bucket` does not exist"),
        "{err}"
    );

    let wrong = format!("http://127.0.0.1:{}", closed_port());
    let err = fails(run(hoist(&server, dir.path())
        .args([
            "release",
            "--unsigned",
            "--bucket",
            "rel",
            "--endpoint",
            &wrong,
            "--deb",
        ])
        .arg(&deb)));
    assert!(err.contains("cannot reach the S3 endpoint"), "{err}");
    assert!(
        err.contains(&wrong) && err.contains("s3://rel/releases/hello.deb"),
        "{err}"
    );

    let err = fails(run(
        hoist(&server, dir.path()).args(["history", "--key", KEY])
    ));
    assert!(
        err.contains("no bucket given") && err.contains("--bucket"),
        "{err}"
    );
}

#[test]
fn bad_package_and_key_files_are_clear_errors() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();
    let not_deb = dir.path().join("x.deb");
    std::fs::write(&not_deb, b"not a package").unwrap();
    let err = fails(run(hoist(&server, dir.path())
        .args(["release", "--unsigned", "--bucket", "rel", "--deb"])
        .arg(&not_deb)));
    assert!(err.contains("x.deb"), "{err}");

    let deb = make_deb(dir.path(), "hello", "1.0", "one");
    let err = fails(run(hoist(&server, dir.path())
        .args([
            "release",
            "--bucket",
            "rel",
            "--sign-key",
            "/nonexistent/k.key",
            "--deb",
        ])
        .arg(&deb)));
    assert!(
        err.contains("/nonexistent/k.key") && err.contains("hoist keygen"),
        "{err}"
    );
    assert!(
        history_json(&server, dir.path()).is_empty(),
        "nothing uploaded"
    );
}
