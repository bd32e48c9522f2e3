//! Shared set-up of the hoist_s3 integration tests.

#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use hoist_s3::{ClientOptions, S3, S3Settings, StaticCredentials};
use hoist_testkit::s3server::S3Server;

pub fn settings(server: &S3Server, bucket: &str, key: &str) -> S3Settings {
    S3Settings {
        bucket: bucket.into(),
        key: key.into(),
        region: Some(server.credentials().region.clone()),
        endpoint: Some(server.endpoint().into()),
        path_style: true,
        profile: None,
    }
}

pub fn options(access_key_id: &str, secret: &str) -> ClientOptions {
    ClientOptions {
        static_credentials: Some(StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret.into(),
            session_token: None,
        }),
        ..ClientOptions::default()
    }
}

pub async fn client(server: &S3Server, bucket: &str, key: &str) -> S3 {
    let creds = server.credentials();
    S3::connect_with(
        &settings(server, bucket, key),
        &options(&creds.access_key_id, &creds.secret_access_key),
    )
    .await
    .unwrap()
}

/// Writes `len` bytes of a pattern that depends on `seed`.
pub fn write_file(dir: &Path, name: &str, seed: u8, len: usize) -> PathBuf {
    let path = dir.join(name);
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(&path, data).unwrap();
    path
}
