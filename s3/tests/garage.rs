//! hoist_s3 against a real garage server, which checks signatures and Content-MD5 and
//! rejects aws-sdk's default streaming-checksum uploads.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{client, options, settings, write_file};
use hoist_s3::{
    Head, PutOptions, ReleaseMetadata, S3, S3Error, Versioning, etag_md5, file_digests,
};
use hoist_testkit::s3server::S3Server;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncReadExt as _;

const KEY: &str = "releases/hello.deb";

#[tokio::test]
async fn upload_with_content_md5_and_metadata_works() {
    let server = S3Server::garage();
    server.create_bucket("rel", false);
    let s3 = client(&server, "rel", KEY).await;
    assert_eq!(s3.versioning().await.unwrap(), Versioning::Never);

    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "a.deb", 7, 300_000);
    let d = file_digests(&file).await.unwrap();
    let meta = ReleaseMetadata {
        package: Some("hello".into()),
        version: Some("1.0".into()),
        sha256: Some(d.sha256_hex()),
        md5: Some(d.md5_hex()),
        ..ReleaseMetadata::default()
    };
    let out = s3
        .put_file(
            &file,
            &meta,
            &PutOptions {
                if_none_match_any: true,
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(etag_md5(&out.etag), Some(d.md5), "ETag {}", out.etag);

    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("expected the object")
    };
    assert_eq!(info.metadata, meta);
    assert_eq!(s3.head(Some(&info.etag)).await.unwrap(), Head::NotModified);

    // garage ignores a requested VersionId: the answer says which version it served.
    let (got, mut body) = s3.get(Some("some-old-version")).await.unwrap();
    assert_ne!(got.version_id.as_deref(), Some("some-old-version"));
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes).await.unwrap();
    assert!(bytes == std::fs::read(&file).unwrap());
}

#[tokio::test]
async fn wrong_content_md5_is_refused() {
    let server = S3Server::garage();
    server.create_bucket("rel", false);
    let s3 = client(&server, "rel", KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "a.deb", 8, 10_000);
    // put_file sends the caller's md5 as Content-MD5: give it one of other bytes.
    let meta = ReleaseMetadata {
        md5: Some("0123456789abcdef0123456789abcdef".into()),
        ..ReleaseMetadata::default()
    };
    let err = s3
        .put_file(&file, &meta, &PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, S3Error::BadDigest { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(
        matches!(s3.head(None).await, Err(S3Error::NoSuchKey { .. })),
        "nothing stored"
    );
}

#[tokio::test]
async fn wrong_credentials_are_refused() {
    let server = S3Server::garage();
    server.create_bucket("rel", false);
    let good = server.credentials();
    let wrong_secret = S3::connect_with(
        &settings(&server, "rel", KEY),
        &options(&good.access_key_id, &"0".repeat(64)),
    )
    .await
    .unwrap();
    let err = wrong_secret.head(None).await.unwrap_err();
    assert!(matches!(err, S3Error::AccessDenied { .. }), "{err:?}");

    let unknown_key = S3::connect_with(
        &settings(&server, "rel", KEY),
        &options("GK000000000000000000000000", &good.secret_access_key),
    )
    .await
    .unwrap();
    let err = unknown_key.versioning().await.unwrap_err();
    assert!(matches!(err, S3Error::AccessDenied { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("check that the credentials are right"),
        "{err}"
    );
}

#[tokio::test]
async fn multipart_above_the_threshold_keeps_the_md5_in_metadata() {
    // moto 5.x answers CompleteMultipartUpload with a non-standard XML root that
    // aws-sdk-s3 rejects, so multipart is shown against garage.
    let server = S3Server::garage();
    server.create_bucket("rel", false);
    let s3 = client(&server, "rel", KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let size = 11 * 1024 * 1024 + 17;
    let big = write_file(dir.path(), "big.deb", 5, size);
    let d = file_digests(&big).await.unwrap();
    let meta = ReleaseMetadata {
        sha256: Some(d.sha256_hex()),
        md5: Some(d.md5_hex()),
        ..ReleaseMetadata::default()
    };
    let seen = Arc::new(AtomicU64::new(0));
    let seen_cb = seen.clone();
    let out = s3
        .put_file(
            &big,
            &meta,
            &PutOptions {
                multipart_threshold: 6 * 1024 * 1024,
                part_size: 5 * 1024 * 1024,
                progress: Some(Arc::new(move |sent, total| {
                    assert_eq!(total, size as u64);
                    seen_cb.fetch_max(sent, Ordering::SeqCst);
                })),
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(out.etag.ends_with("-3\""), "three parts: {}", out.etag);
    assert_eq!(etag_md5(&out.etag), None);
    assert_eq!(seen.load(Ordering::SeqCst), size as u64);
    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("expected the object")
    };
    assert_eq!(
        info.metadata.md5, meta.md5,
        "whole-file MD5 kept in metadata"
    );
    assert_eq!(info.size, size as u64);
    let (_, mut body) = s3.get(None).await.unwrap();
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes).await.unwrap();
    assert!(bytes == std::fs::read(&big).unwrap());
}

#[tokio::test]
async fn without_list_object_versions_the_current_object_is_the_history() {
    let server = S3Server::garage();
    server.create_bucket("rel", false);
    let s3 = client(&server, "rel", KEY).await;
    assert_eq!(s3.list_versions().await.unwrap(), vec![]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "a.deb", 9, 1000);
    let put = s3
        .put_file(&file, &ReleaseMetadata::default(), &PutOptions::default())
        .await
        .unwrap();
    let versions = s3.list_versions().await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].version_id, "null");
    assert_eq!(versions[0].etag, put.etag);
    assert_eq!(versions[0].size, 1000);
    assert!(versions[0].is_latest && !versions[0].is_delete_marker);
}
