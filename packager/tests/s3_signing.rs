//! Signed releases: `hoist keygen` and `minisign -G` keys, signatures checked with the
//! real `minisign` tool, the signed statement stored with the version in S3, signing by
//! default (`--sign-key`, `HOIST_SIGN_KEY`, `[sign]` in hoist.toml, or `--unsigned`),
//! and the signed rollback statement of `hoist rollback`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use hoist_s3::Head;
use hoist_s3::signature::decode_minisig;
use hoist_s3::statement::{ReleaseStatement, RollbackStatement, minisig_text};
use hoist_testkit::s3server::S3Server;
use s3_common::*;

const KEY: &str = "releases/hello.deb";

fn minisign() -> Command {
    let path = which::which("minisign")
        .expect("`minisign` is needed to check signatures; run `make test` to install it");
    Command::new(path)
}

/// The statement and its metadata signature, as files, verified by `minisign -V`.
fn assert_statement_verifies(dir: &Path, statement: &str, compact: &str, public_key: &Path) {
    let file = dir.join("statement.txt");
    std::fs::write(&file, statement).unwrap();
    let sig = dir.join("statement.txt.minisig");
    std::fs::write(&sig, minisig_text(statement, compact).unwrap()).unwrap();
    let verified = minisign_verifies(&file, public_key);
    assert!(
        verified.contains(&format!("Trusted comment: {statement}")),
        "{verified}"
    );
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

    // The standard tool verifies it, and the trusted comment is the release statement.
    let sha = digests(&deb).sha256_hex();
    let verified = minisign_verifies(&deb, &public);
    assert!(
        verified.contains(&format!(
            "hoist package=hello version=1.0 sha256={sha} bucket=rel key={KEY} time="
        )),
        "{verified}"
    );

    // The signed statement is stored with the version, comes back on HEAD, names the
    // release, and the standard tool verifies it too.
    let s3 = direct(&server, "rel", KEY).await;
    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("released")
    };
    let statement = info.metadata.statement.clone().expect("hoist-statement");
    let signed = ReleaseStatement::parse(&statement).unwrap();
    assert_eq!(
        (
            signed.sha256.as_str(),
            signed.version.as_str(),
            signed.bucket.as_str(),
            signed.key.as_str()
        ),
        (sha.as_str(), "1.0", "rel", KEY)
    );
    let age = std::time::SystemTime::now()
        .duration_since(signed.time)
        .unwrap();
    assert!(
        age < std::time::Duration::from_secs(60),
        "release time is now: {age:?}"
    );
    assert_statement_verifies(
        dir.path(),
        &statement,
        info.metadata.statement_sig.as_deref().unwrap(),
        &public,
    );
    // The .deb signature is kept in metadata too (for older agents).
    let stored = decode_minisig(info.metadata.minisig.as_deref().expect("hoist-minisig")).unwrap();
    assert_eq!(stored, std::fs::read_to_string(&sig_path).unwrap());

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

/// An unencrypted key pair made by the real `minisign -G -W`: (secret, public) paths.
fn minisign_key(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
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
    (key, public)
}

async fn current_metadata(server: &S3Server) -> hoist_s3::ReleaseMetadata {
    let s3 = direct(server, "rel", KEY).await;
    let Head::Found(info) = s3.head(None).await.unwrap() else {
        panic!("released")
    };
    info.metadata
}

#[tokio::test]
async fn release_signs_by_default_and_refuses_unsigned_without_the_flag() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = minisign_key(dir.path(), "m");
    let release = |version: &str| {
        let deb = make_deb(dir.path(), "hello", version, version);
        let mut cmd = hoist(&server, dir.path());
        cmd.args(["release", "--bucket", "rel", "--deb"]).arg(deb);
        cmd
    };

    // No key anywhere: refused, naming the three ways and the flag; nothing uploaded.
    let err = fails(run(&mut release("1.0")));
    for needle in [
        "--sign-key",
        "HOIST_SIGN_KEY",
        "[sign]",
        "hoist.toml",
        "--unsigned",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let history =
        json(&ok(run(hoist(&server, dir.path()).args([
            "history", "--bucket", "rel", "--key", KEY, "--json",
        ]))));
    assert_eq!(history.as_array().unwrap().len(), 0, "nothing released");

    // --unsigned: published, without a statement, and it says so.
    let out = run(release("1.0").arg("--unsigned"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("UNSIGNED"), "{}", stderr(&out));
    let meta = current_metadata(&server).await;
    assert_eq!((meta.statement, meta.minisig), (None, None));

    // HOIST_SIGN_KEY: signed.
    ok(run(release("2.0").env("HOIST_SIGN_KEY", &key)));
    let meta = current_metadata(&server).await;
    let statement = meta.statement.unwrap();
    assert!(statement.contains("version=2.0"), "{statement}");
    assert_statement_verifies(
        dir.path(),
        &statement,
        &meta.statement_sig.unwrap(),
        &public,
    );

    // [sign] key in hoist.toml (relative to it): signed.
    std::fs::write(dir.path().join("hoist.toml"), "[sign]\nkey = \"m.key\"\n").unwrap();
    ok(run(&mut release("3.0")));
    let meta = current_metadata(&server).await;
    let statement = meta.statement.unwrap();
    assert!(statement.contains("version=3.0"), "{statement}");
    assert_statement_verifies(
        dir.path(),
        &statement,
        &meta.statement_sig.unwrap(),
        &public,
    );
    // A key and --unsigned together is a mistake, not a choice.
    let err = fails(run(release("4.0").arg("--unsigned")));
    assert!(err.contains("--unsigned"), "{err}");
}

#[tokio::test]
async fn rollback_needs_the_key_and_signs_a_rollback_statement() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = minisign_key(dir.path(), "m");
    let (other, _) = minisign_key(dir.path(), "other");
    let release = |version: &str, extra: &[&str]| {
        let deb = make_deb(dir.path(), "hello", version, version);
        ok(run(hoist(&server, dir.path())
            .args(["release", "--bucket", "rel", "--deb"])
            .arg(deb)
            .args(extra)))
        .trim()
        .to_owned()
    };
    let key_arg = key.to_str().unwrap();
    let unsigned_id = release("0.9", &["--unsigned"]);
    let v1 = release("1.0", &["--sign-key", key_arg]);
    let v1_meta = current_metadata(&server).await;
    release("2.0", &["--sign-key", key_arg]);
    let rollback = |extra: &[&str]| {
        run(hoist(&server, dir.path())
            .args(["rollback", "--bucket", "rel", "--key", KEY])
            .args(extra))
    };

    let err = fails(rollback(&["--to", &v1]));
    assert!(
        err.contains("--sign-key") && err.contains("--unsigned"),
        "{err}"
    );
    let err = fails(rollback(&[
        "--to",
        &v1,
        "--sign-key",
        other.to_str().unwrap(),
    ]));
    assert!(err.contains("not released with this signing key"), "{err}");
    let err = fails(rollback(&["--to", &unsigned_id, "--sign-key", key_arg]));
    assert!(err.contains("no signed release statement"), "{err}");

    let new_id = ok(rollback(&["--to", &v1, "--sign-key", key_arg]));
    let meta = current_metadata(&server).await;
    let statement = meta.rollback.clone().expect("hoist-rollback");
    let signed = RollbackStatement::parse(&statement).unwrap();
    assert_eq!(signed.source, v1);
    assert_eq!((signed.bucket.as_str(), signed.key.as_str()), ("rel", KEY));
    assert_eq!(Some(&signed.sha256), v1_meta.sha256.as_ref());
    assert_statement_verifies(
        dir.path(),
        &statement,
        meta.rollback_sig.as_deref().unwrap(),
        &public,
    );
    // Everything else is v1's, and it all fits S3's 2 KB.
    let rest = hoist_s3::ReleaseMetadata {
        rollback: None,
        rollback_sig: None,
        ..meta.clone()
    };
    assert_eq!(rest, v1_meta);
    assert!(meta.user_metadata_bytes() <= hoist_s3::MAX_USER_METADATA_BYTES);
    assert_ne!(new_id.trim(), v1);

    // --unsigned: a plain copy (what agents with a key refuse as a downgrade).
    ok(rollback(&["--to", &v1, "--unsigned"]));
    let meta = current_metadata(&server).await;
    assert_eq!(meta, v1_meta);
}
