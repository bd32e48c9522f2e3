//! Signed releases: `hoist keygen` and `minisign -G` keys, signatures checked with the
//! real `minisign` tool, and the signature stored with the version in S3.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use hoist_s3::Head;
use hoist_s3::signature::{SignedRelease, decode_minisig};
use hoist_testkit::s3server::S3Server;
use s3_common::*;

const KEY: &str = "releases/hello.deb";

fn minisign() -> Command {
    let path = which::which("minisign")
        .expect("`minisign` is needed to check signatures; run `make test` to install it");
    Command::new(path)
}

fn minisign_verifies(deb: &Path, public_key: &Path) -> String {
    let out = minisign()
        .arg("-Vm")
        .arg(deb)
        .arg("-p")
        .arg(public_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "minisign -V failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn keygen_key_signs_releases_that_minisign_verifies() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();

    let public_line = ok(run(hoist(&server, dir.path())
        .args(["keygen"])
        .env("HOIST_SIGN_PASSWORD", "correct horse")));
    let (key, public) = (dir.path().join("hoist.key"), dir.path().join("hoist.pub"));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600,
        "the secret key is private"
    );
    assert_eq!(
        std::fs::read_to_string(&public).unwrap().lines().nth(1),
        Some(public_line.trim())
    );
    // Never overwritten by accident.
    let err = fails(run(hoist(&server, dir.path())
        .args(["keygen"])
        .env("HOIST_SIGN_PASSWORD", "x")));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );

    let deb = make_deb(dir.path(), "hello", "1.0", "one");
    let report = json(&ok(run(hoist(&server, dir.path())
        .args(["release", "--bucket", "rel", "--json", "--sign-key"])
        .arg(&key)
        .arg("--deb")
        .arg(&deb)
        .env("HOIST_SIGN_PASSWORD", "correct horse"))));
    let sig_path = dir.path().join("hello_1.0_all.deb.minisig");
    assert_eq!(report["signature_file"], sig_path.display().to_string());
    assert_eq!(report["public_key"], public_line.trim());

    // The standard tool verifies it, and the trusted comment names the release.
    let sha = digests(&deb).sha256_hex();
    let verified = minisign_verifies(&deb, &public);
    assert!(
        verified.contains(&format!("hoist package=hello version=1.0 sha256={sha}")),
        "{verified}"
    );

    // The same signature is stored with the version, and comes back on HEAD.
    let s3 = direct(&server, "rel", KEY).await;
    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("released")
    };
    let stored = decode_minisig(info.metadata.minisig.as_deref().expect("hoist-minisig")).unwrap();
    assert_eq!(stored, std::fs::read_to_string(&sig_path).unwrap());
    let sig_box = minisign::SignatureBox::from_string(&stored).unwrap();
    let signed = SignedRelease::parse(&sig_box.trusted_comment().unwrap()).unwrap();
    assert_eq!(signed.sha256, sha);
    assert_eq!(signed.version, "1.0");

    let history =
        json(&ok(run(hoist(&server, dir.path()).args([
            "history", "--bucket", "rel", "--key", KEY, "--json",
        ]))));
    assert_eq!(history[0]["signed"], true);

    // A modified package no longer verifies.
    let mut bytes = std::fs::read(&deb).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&deb, bytes).unwrap();
    let out = minisign()
        .arg("-Vm")
        .arg(&deb)
        .arg("-p")
        .arg(&public)
        .output()
        .unwrap();
    assert!(!out.status.success(), "tampered package must not verify");
}

#[test]
fn wrong_or_missing_password_is_a_clear_error() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();
    ok(run(hoist(&server, dir.path())
        .args(["keygen"])
        .env("HOIST_SIGN_PASSWORD", "right")));
    let deb = make_deb(dir.path(), "hello", "1.0", "one");
    let err = fails(run(hoist(&server, dir.path())
        .args([
            "release",
            "--bucket",
            "rel",
            "--sign-key",
            "hoist.key",
            "--deb",
        ])
        .arg(&deb)
        .env("HOIST_SIGN_PASSWORD", "wrong")));
    assert!(err.contains("cannot unlock the signing key"), "{err}");
    let err = fails(run(hoist(&server, dir.path())
        .args([
            "release",
            "--bucket",
            "rel",
            "--sign-key",
            "hoist.key",
            "--deb",
        ])
        .arg(&deb)));
    assert!(err.contains("HOIST_SIGN_PASSWORD"), "{err}");
    let history =
        json(&ok(run(hoist(&server, dir.path()).args([
            "history", "--bucket", "rel", "--key", KEY, "--json",
        ]))));
    assert_eq!(history.as_array().unwrap().len(), 0, "nothing released");
}

#[test]
fn unencrypted_minisign_key_signs_without_a_password() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = (dir.path().join("m.key"), dir.path().join("m.pub"));
    let out = minisign()
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = make_deb(dir.path(), "hello", "2.0", "two");
    ok(run(hoist(&server, dir.path())
        .args(["release", "--bucket", "rel", "--sign-key"])
        .arg(&key)
        .arg("--deb")
        .arg(&deb)));
    let verified = minisign_verifies(&deb, &public);
    assert!(
        verified.contains("hoist package=hello version=2.0"),
        "{verified}"
    );
}
