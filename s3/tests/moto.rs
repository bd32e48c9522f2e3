//! hoist_s3 against a real moto server (versioning, conditional writes, copy by VersionId).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{client, options, settings, write_file};
use hoist_s3::{
    Head, PutOptions, ReleaseMetadata, S3, S3Error, Versioning, etag_md5, file_digests,
};
use hoist_testkit::s3server::{S3Server, http_request};
use tokio::io::AsyncReadExt as _;

const KEY: &str = "releases/hello.deb";

async fn meta_for(path: &std::path::Path, version: &str) -> ReleaseMetadata {
    let d = file_digests(path).await.unwrap();
    ReleaseMetadata {
        package: Some("hello".into()),
        version: Some(version.into()),
        arch: Some("amd64".into()),
        sha256: Some(d.sha256_hex()),
        md5: Some(d.md5_hex()),
        git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        releaser: Some("tester@host".into()),
        build_time: Some("2026-01-01T00:00:00Z".into()),
        ..ReleaseMetadata::default()
    }
}

async fn read_all(s3: &S3, version: Option<&str>) -> (hoist_s3::ObjectInfo, Vec<u8>) {
    let (info, mut body) = s3.get(version).await.unwrap();
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes).await.unwrap();
    (info, bytes)
}

#[tokio::test]
async fn put_head_list_get_copy_round_trip() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let s3 = client(&server, "rel", KEY).await;
    assert_eq!(s3.versioning().await.unwrap(), Versioning::Enabled);
    assert!(matches!(
        s3.head(None).await,
        Err(S3Error::NoSuchKey { .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a.deb", 1, 70_000);
    let b = write_file(dir.path(), "b.deb", 2, 50_000);
    let meta_a = meta_for(&a, "1.0").await;
    let meta_b = meta_for(&b, "1.1").await;

    let first = s3
        .put_file(
            &a,
            &meta_a,
            &PutOptions {
                if_none_match_any: true,
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    let v1 = first
        .version_id
        .clone()
        .expect("versioned bucket returns a VersionId");
    assert!(
        first.etag.starts_with('"'),
        "ETag is returned quoted: {}",
        first.etag
    );
    assert_eq!(
        etag_md5(&first.etag).map(hex::encode),
        meta_a.md5.clone(),
        "single-part ETag is the file's MD5"
    );

    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("expected the object")
    };
    assert_eq!(info.version_id.as_deref(), Some(v1.as_str()));
    assert_eq!(info.size, 70_000);
    assert_eq!(info.metadata, meta_a, "metadata round-trips");
    assert_eq!(s3.head(Some(&info.etag)).await.unwrap(), Head::NotModified);

    let second = s3
        .put_file(
            &b,
            &meta_b,
            &PutOptions {
                if_match: Some(first.etag.clone()),
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    let v2 = second.version_id.clone().unwrap();
    assert_ne!(v1, v2);
    assert!(matches!(
        s3.head(Some(&info.etag)).await.unwrap(),
        Head::Found(ref i) if i.version_id.as_deref() == Some(v2.as_str())
    ));

    // A key that shares the prefix must not show up in this key's history.
    let sibling = client(&server, "rel", &format!("{KEY}.minisig")).await;
    sibling
        .put_file(&a, &meta_a, &PutOptions::default())
        .await
        .unwrap();

    let versions = s3.list_versions().await.unwrap();
    let ids: Vec<_> = versions.iter().map(|v| v.version_id.as_str()).collect();
    assert_eq!(ids, [v2.as_str(), v1.as_str()]);
    assert!(versions[0].is_latest && !versions[1].is_latest);
    assert_eq!(versions[1].size, 70_000);
    assert_eq!(versions[1].etag, first.etag);

    let (old, bytes) = read_all(&s3, Some(&v1)).await;
    assert_eq!(old.version_id.as_deref(), Some(v1.as_str()));
    assert_eq!(bytes, std::fs::read(&a).unwrap());
    assert_eq!(s3.head_version(&v2).await.unwrap().metadata, meta_b);

    let rolled = s3.copy_version_to_latest(&v1).await.unwrap();
    let v3 = rolled.version_id.clone().unwrap();
    assert!(v3 != v1 && v3 != v2);
    assert_eq!(rolled.etag, first.etag);
    let Head::Found(now) = s3.head(None).await.unwrap() else {
        panic!("expected the object")
    };
    assert_eq!(now.version_id.as_deref(), Some(v3.as_str()));
    assert_eq!(
        now.metadata, meta_a,
        "CopyObject keeps the old version's metadata"
    );
    let (_, bytes) = read_all(&s3, None).await;
    assert_eq!(bytes, std::fs::read(&a).unwrap());
    let ids: Vec<_> = s3
        .list_versions()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(ids, [v3.clone(), v2.clone(), v1.clone()]);

    // Conditional writes lose against a changed object.
    let stale = s3
        .put_file(
            &b,
            &meta_b,
            &PutOptions {
                if_match: Some(second.etag.clone()),
                ..PutOptions::default()
            },
        )
        .await;
    assert!(
        matches!(stale, Err(S3Error::PreconditionFailed { .. })),
        "{stale:?}"
    );
    let exists = s3
        .put_file(
            &b,
            &meta_b,
            &PutOptions {
                if_none_match_any: true,
                ..PutOptions::default()
            },
        )
        .await;
    assert!(
        matches!(exists, Err(S3Error::PreconditionFailed { .. })),
        "{exists:?}"
    );
    assert_eq!(
        s3.list_versions().await.unwrap().len(),
        3,
        "losers wrote nothing"
    );

    let missing = s3.head_version("no-such-version").await;
    assert!(
        matches!(missing, Err(S3Error::NoSuchVersion { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn delete_markers_are_listed_and_flagged() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let s3 = client(&server, "rel", KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a.deb", 3, 1000);
    let put = s3
        .put_file(&a, &meta_for(&a, "1.0").await, &PutOptions::default())
        .await
        .unwrap();
    // moto accepts unsigned requests: delete the key, leaving a delete marker.
    let (status, body) =
        http_request(server.addr(), "DELETE", &format!("/rel/{KEY}"), b"").unwrap();
    assert_eq!(status, 204, "{body}");

    let versions = s3.list_versions().await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[0].is_delete_marker && versions[0].is_latest);
    assert_eq!(versions[1].version_id, put.version_id.clone().unwrap());
    assert!(!versions[1].is_delete_marker);
    assert!(matches!(
        s3.head(None).await,
        Err(S3Error::NoSuchKey { .. })
    ));
    assert!(
        s3.copy_version_to_latest(&versions[0].version_id)
            .await
            .is_err()
    );

    // The release before the delete can still be brought back.
    s3.copy_version_to_latest(&versions[1].version_id)
        .await
        .unwrap();
    assert!(matches!(s3.head(None).await, Ok(Head::Found(_))));
}

#[tokio::test]
async fn unversioned_bucket_and_missing_bucket() {
    let server = S3Server::moto();
    server.create_bucket("plain", false);
    let s3 = client(&server, "plain", KEY).await;
    assert_eq!(s3.versioning().await.unwrap(), Versioning::Never);
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a.deb", 4, 1000);
    let put = s3
        .put_file(&a, &meta_for(&a, "1.0").await, &PutOptions::default())
        .await
        .unwrap();
    assert!(put.version_id.is_none() || put.version_id.as_deref() == Some("null"));
    let versions = s3.list_versions().await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].version_id, "null");

    let missing = client(&server, "no-such-bucket", KEY).await;
    let err = missing.versioning().await.unwrap_err();
    assert!(matches!(err, S3Error::NoSuchBucket { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-bucket"));
    let err = missing.head(None).await.unwrap_err();
    assert!(matches!(err, S3Error::NoSuchBucket { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn unreachable_endpoint_is_a_transient_error_naming_the_endpoint() {
    let server = S3Server::moto();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = settings(&server, "rel", KEY);
    s.endpoint = Some(format!("http://127.0.0.1:{closed}"));
    let s3 = S3::connect_with(&s, &options("a", "b")).await.unwrap();
    let err = s3.head(None).await.unwrap_err();
    assert!(
        matches!(err, S3Error::EndpointUnreachable { .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{closed}")),
        "{err}"
    );
}

#[tokio::test]
async fn single_put_reports_progress_up_to_the_size() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let s3 = client(&server, "rel", KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "p.deb", 6, 700_000);
    let seen = Arc::new(AtomicU64::new(0));
    let seen_cb = seen.clone();
    let mut meta = meta_for(&file, "1.0").await;
    meta.md5 = None; // computed by put_file
    s3.put_file(
        &file,
        &meta,
        &PutOptions {
            progress: Some(Arc::new(move |sent, _| {
                seen_cb.fetch_max(sent, Ordering::SeqCst);
            })),
            ..PutOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 700_000);
    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("expected the object")
    };
    assert_eq!(
        etag_md5(&info.etag).map(hex::encode),
        Some(file_digests(&file).await.unwrap().md5_hex())
    );
}
