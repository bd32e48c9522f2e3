//! Authenticating an object from its HEAD, before any byte is downloaded, and refusing
//! downgrades.
//!
//! [`authenticate`] (shared with `hoist cloud-init`, in [`hoist_s3::authenticate`]): the
//! object's metadata must carry a release statement (package,
//! version, sha256, bucket, key, release time; see [`hoist_s3::statement`]) signed by
//! the watch's key, made for this watch's bucket, key and package. A rollback statement
//! (written by `hoist rollback`), when present, must be signed by the same key and name
//! the same package, bucket, key and sha256. Metadata changed by anyone without the key
//! (a CopyObject with `MetadataDirective: REPLACE`) fails here.
//!
//! [`check_fresh`]: an object whose signed time is older than the installed release's
//! *effective* time (its release time, or the time of the rollback statement it was
//! installed with) is a replay of an old version and is refused — unless its rollback
//! statement is newer than that effective time.
//!
//! The SHA-256 of the statement then decides which bytes may be installed.

use std::time::SystemTime;

use hoist_s3::statement::format_time;

pub use hoist_s3::authenticate::{Expected, Trusted, authenticate};

/// What is installed, for the downgrade check.
#[derive(Debug, Clone, Copy)]
pub struct Installed<'a> {
    /// Its package version.
    pub version: &'a str,
    /// Its effective signed time (`None`: installed unsigned, or state rebuilt from dpkg).
    pub effective: Option<SystemTime>,
}

/// Refuses a downgrade (see the module documentation). Returns the effective time the
/// object gets once installed.
pub fn check_fresh(
    trusted: &Trusted,
    installed: Option<Installed<'_>>,
) -> Result<SystemTime, String> {
    let Some(Installed {
        version,
        effective: Some(effective),
    }) = installed
    else {
        return Ok(trusted.time());
    };
    if trusted.release.time >= effective {
        return Ok(trusted.time());
    }
    let release = &trusted.release;
    match &trusted.rollback {
        Some(rollback) if rollback.time > effective => Ok(rollback.time),
        rollback => Err(format!(
            "older signed release than installed: the object holds {} {} released {}, but {} {version} is installed (in effect since {}), and it carries {}; someone copied an old version onto the key (a replay). Not downloaded. To go back to {} on purpose, run `hoist rollback` with the signing key",
            release.package,
            release.version,
            format_time(release.time),
            release.package,
            format_time(effective),
            match rollback {
                Some(r) => format!("only an older rollback statement ({})", format_time(r.time)),
                None => "no rollback statement".to_owned(),
            },
            release.version
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_s3::ReleaseMetadata;
    use hoist_s3::statement::minisig_text;
    use std::time::Duration;

    // Made with the real minisign CLI (0.11): `minisign -G -W`, then
    // `minisign -S -m st -t "$(cat st)"` where the file `st` holds the statement.
    const KEY: &str = "RWQkVvJSXlkvAIKRlNBiDvz4DtI/yuMyBfulsKZW5csAzKggEgrY9a9a";
    const RELEASE: &str = "hoist package=hello version=1.0.0 sha256=abababababababababababababababababababababababababababababababab bucket=releases key=hello/hello.deb time=2026-01-01T00:00:00.000Z";
    const RELEASE_SIG: &str = "RUQkVvJSXlkvAKMVGWhyhn1uKfCcc3QnMHN4m0T3A+wLmACakAT7nQoNAQLa6+llzeVn0PQply/CLCzbtKTqZIUmqfJAQEgGgw8=.6wZ0jKFOCGooljNN7xiUbLW2OB3EH3+NPBFqd/YjisZqQylany5vrsQOSVNNhNw/YVFW9Zk/XPfpJ6elDJ6aAA==";
    const ROLLBACK: &str = "hoist-rollback package=hello version=1.0.0 sha256=abababababababababababababababababababababababababababababababab bucket=releases key=hello/hello.deb source=v1 time=2026-03-01T00:00:00.000Z";
    const ROLLBACK_SIG: &str = "RUQkVvJSXlkvAO+4MflFrikQgdujRs0ImUlKxG645a6VggFPt+4VtYpkXHwJ/iF2dJJmbYSvgIG6JdGFggaGpcBmqDofhLP5NAY=.wUXZrCvmDlnWE7hMbt58OyGjUXZqIW9pRVn49i4E++0HtNZUOVRfKSiixXm0ENx/mBXbJbx66mcQwpIbuBFTCQ==";
    /// RELEASE signed by another key.
    const OTHER_SIG: &str = "RUR6fR7XKfb2Gq0SlCYOSoVsOXzkyFPFZsjBiaDsaeTd5M8su9BGdv0jpaUSBskWNyiVMvwtV8iDdKFG/sOqCSQEVqUSnsevwQw=.1O+aWU3d2fogaxgLPqzPcXTHk7DWLZts1QSI8hSiPDC91J8KYcfRGPW6nIyOAUZlagf+17Dg28Jw4FJN+i6vDQ==";

    const EXPECTED: Expected<'static> = Expected {
        bucket: "releases",
        key: "hello/hello.deb",
        package: "hello",
    };

    fn key() -> minisign_verify::PublicKey {
        minisign_verify::PublicKey::from_base64(KEY).unwrap()
    }

    fn meta(rollback: bool) -> ReleaseMetadata {
        ReleaseMetadata {
            statement: Some(RELEASE.into()),
            statement_sig: Some(RELEASE_SIG.into()),
            rollback: rollback.then(|| ROLLBACK.into()),
            rollback_sig: rollback.then(|| ROLLBACK_SIG.into()),
            ..ReleaseMetadata::default()
        }
    }

    fn at(rfc3339: &str) -> SystemTime {
        hoist_s3::statement::parse_time(rfc3339).unwrap()
    }

    #[test]
    fn statements_signed_by_the_minisign_cli_authenticate() {
        let trusted = authenticate(&key(), &meta(false), EXPECTED).unwrap();
        assert_eq!(trusted.release.version, "1.0.0");
        assert_eq!(trusted.time(), at("2026-01-01T00:00:00Z"));
        let trusted = authenticate(&key(), &meta(true), EXPECTED).unwrap();
        assert_eq!(trusted.rollback.as_ref().unwrap().source, "v1");
        assert_eq!(trusted.time(), at("2026-03-01T00:00:00Z"));
    }

    #[test]
    fn changed_missing_or_foreign_statements_are_refused() {
        let err = |m: ReleaseMetadata| authenticate(&key(), &m, EXPECTED).unwrap_err();
        let mut m = meta(false);
        m.statement = Some(RELEASE.replace("2026-01-01", "2027-01-01"));
        assert!(err(m).contains("does not verify"));
        let mut m = meta(false);
        m.statement_sig = Some(OTHER_SIG.into());
        assert!(err(m).contains("different key"));
        let mut m = meta(true);
        m.rollback = Some(ROLLBACK.replace("2026-03-01", "2027-03-01"));
        assert!(err(m).contains("rollback statement's signature does not verify"));
        let mut m = meta(true);
        m.rollback_sig = None;
        assert!(err(m).contains("half of a rollback"));
        let m = ReleaseMetadata {
            minisig: Some("eA==".into()),
            ..ReleaseMetadata::default()
        };
        assert!(err(m).contains("no signed release statement"));
        assert!(err(ReleaseMetadata::default()).contains("not signed"));
        // Another watch's bucket, key or package.
        for expected in [
            Expected {
                bucket: "prod",
                ..EXPECTED
            },
            Expected {
                key: "other.deb",
                ..EXPECTED
            },
        ] {
            let e = authenticate(&key(), &meta(false), expected).unwrap_err();
            assert!(
                e.contains("signed for s3://releases/hello/hello.deb"),
                "{e}"
            );
        }
        let e = authenticate(
            &key(),
            &meta(false),
            Expected {
                package: "web",
                ..EXPECTED
            },
        )
        .unwrap_err();
        assert!(e.contains("package `hello`"), "{e}");
    }

    #[test]
    fn older_releases_need_a_newer_rollback_statement() {
        let plain = authenticate(&key(), &meta(false), EXPECTED).unwrap();
        let rolled = authenticate(&key(), &meta(true), EXPECTED).unwrap();
        let installed = |t: &str| {
            Some(Installed {
                version: "2.0.0",
                effective: Some(at(t)),
            })
        };
        // Nothing installed, or installed without a signed time: anything signed goes.
        assert_eq!(
            check_fresh(&plain, None).unwrap(),
            at("2026-01-01T00:00:00Z")
        );
        let unsigned = Some(Installed {
            version: "2.0.0",
            effective: None,
        });
        assert!(check_fresh(&plain, unsigned).is_ok());
        // Newer (or the same) release time goes.
        assert!(check_fresh(&plain, installed("2025-12-31T00:00:00Z")).is_ok());
        assert!(check_fresh(&plain, installed("2026-01-01T00:00:00Z")).is_ok());
        // Older: refused, and the message says what happened.
        let e = check_fresh(&plain, installed("2026-02-01T00:00:00Z")).unwrap_err();
        assert!(e.starts_with("older signed release than installed"), "{e}");
        assert!(
            e.contains("hello 1.0.0 released 2026-01-01T00:00:00.000Z"),
            "{e}"
        );
        assert!(e.contains("hello 2.0.0 is installed"), "{e}");
        assert!(e.contains("no rollback statement"), "{e}");
        // A newer rollback statement makes it go, and its time becomes the effective one.
        assert_eq!(
            check_fresh(&rolled, installed("2026-02-01T00:00:00Z")).unwrap(),
            at("2026-03-01T00:00:00Z")
        );
        // The same rollback again once a newer release is installed: refused.
        let e = check_fresh(&rolled, installed("2026-04-01T00:00:00Z")).unwrap_err();
        assert!(e.contains("only an older rollback statement"), "{e}");
        let _ = Duration::ZERO;
    }

    /// What signature and freshness checks add to an install, and what hashing a 14 MB
    /// package costs for comparison (the agent hashes every download with SHA-256 for
    /// integrity anyway; before signed statements it also ran minisign's BLAKE2b over it).
    /// `cargo test --release -p hoist-agent --bin hoist-agent freshness::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark; run with --ignored --nocapture"]
    fn bench_checks() {
        use sha2::Digest as _;
        use std::time::Instant;
        let key = key();
        let m = meta(true);
        let installed = Some(Installed {
            version: "2.0.0",
            effective: Some(at("2026-02-01T00:00:00Z")),
        });
        let rounds = 2000u32;
        let start = Instant::now();
        for _ in 0..rounds {
            let trusted = authenticate(&key, std::hint::black_box(&m), EXPECTED).unwrap();
            check_fresh(&trusted, installed).unwrap();
        }
        let per_check = start.elapsed() / rounds;
        let package = vec![0x5au8; 14 * 1024 * 1024];
        let start = Instant::now();
        let digest = sha2::Sha256::digest(&package);
        let sha = start.elapsed();
        std::hint::black_box(digest);
        // What the agent did before: minisign's stream check over the whole download.
        let text = minisig_text(RELEASE, RELEASE_SIG).unwrap();
        let signature = minisign_verify::Signature::decode(&text).unwrap();
        let start = Instant::now();
        let mut stream = key.verify_stream(&signature).unwrap();
        for chunk in package.chunks(64 * 1024) {
            stream.update(chunk);
        }
        let _ = std::hint::black_box(stream.finalize());
        let streamed = start.elapsed();
        println!(
            "signature + freshness checks (release and rollback statement, from the HEAD): {:.3} ms per install\n\
             for scale, over a 14 MB package: SHA-256 (the integrity check, done before this change too) {:.1} ms; \
             the streamed minisign check of the .deb that the statement replaces {:.1} ms",
            per_check.as_secs_f64() * 1e3,
            sha.as_secs_f64() * 1e3,
            streamed.as_secs_f64() * 1e3
        );
        assert!(per_check < Duration::from_millis(5), "{per_check:?}");
    }
}
