//! Shared helpers of the `hoist` S3 integration tests: small real `.deb` files, the
//! `hoist` binary run against a test server, and direct reads through hoist_s3.

#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

pub mod bootstrap;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hoist_s3::{ClientOptions, FileDigests, S3, S3Settings, StaticCredentials};
use hoist_testkit::s3server::S3Server;

/// Builds `NAME_VERSION_all.deb` in `dir` with the real `dpkg-deb`; `seed` varies the
/// payload so different versions have different bytes.
pub fn make_deb(dir: &Path, name: &str, version: &str, seed: &str) -> PathBuf {
    let root = dir.join(format!("{name}-{version}-root"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{name}"))).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <t@example.com>\n\
             Description: hoist test package\n test payload {seed}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        root.join(format!("usr/share/{name}/payload")),
        format!("{seed}\n").repeat(2000),
    )
    .unwrap();
    let deb = dir.join(format!("{name}_{version}_all.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb is needed to make test packages; run `make test` to install it");
    assert!(
        out.status.success(),
        "dpkg-deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    deb
}

/// `hoist` with only this server's credentials in its environment, run in `cwd`.
pub fn hoist(server: &S3Server, cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    server.isolate(&mut cmd);
    cmd.current_dir(cwd)
        .env("HOIST_RELEASER", "tester@ci")
        .env_remove("RUST_LOG")
        .env_remove("HOIST_SIGN_KEY")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`, returning its output; stdout and stderr are echoed on failure
/// assertions by the callers.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run the hoist binary")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "hoist failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts a clean failure (non-zero exit, no panic) and returns stderr.
pub fn fails(out: Output) -> String {
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "hoist should have failed:\nstdout: {}\nstderr: {err}",
        stdout(&out)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code 1, not a crash: {err}"
    );
    assert!(!err.contains("panicked"), "no panic: {err}");
    assert!(err.starts_with("error: "), "one clear error line: {err}");
    err
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub fn digests(path: &Path) -> FileDigests {
    hoist_s3::file_digests_blocking(path).unwrap()
}

/// A hoist_s3 client for reading what `hoist` wrote (credentials passed directly,
/// the test's own environment untouched).
pub async fn direct(server: &S3Server, bucket: &str, key: &str) -> S3 {
    let creds = server.credentials();
    S3::connect_with(
        &S3Settings {
            bucket: bucket.into(),
            key: key.into(),
            region: Some(creds.region.clone()),
            endpoint: Some(server.endpoint().into()),
            path_style: true,
            profile: None,
        },
        &ClientOptions {
            static_credentials: Some(StaticCredentials {
                access_key_id: creds.access_key_id.clone(),
                secret_access_key: creds.secret_access_key.clone(),
                session_token: None,
            }),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap()
}

/// A port on which nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
