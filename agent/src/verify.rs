//! Deciding whether a downloaded object may be installed.
//!
//! - [`expected_sha256`]: the release metadata must carry the package's SHA-256.
//! - [`check_transfer`]: size and (for a plain single-part ETag) MD5 must match what S3
//!   holds; a mismatch is a transfer problem and is retried, not marked bad.
//! - [`check_content`]: SHA-256 equals the expected one (the signed statement's, see
//!   `freshness`, or the metadata's on an unsigned watch).
//! - [`check_package`]: the `.deb` is the configured package for this architecture.
//! - [`check_signed_version`]: the `.deb` is the release the statement names.

use std::path::Path;

use crate::download::Downloaded;

/// Why an object is not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The transfer went wrong; download again later.
    #[error("{0}")]
    Retry(String),
    /// The object itself is unacceptable; mark it bad.
    #[error("{0}")]
    Bad(String),
}

/// What the `.deb` says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFacts {
    /// `Package:`.
    pub package: String,
    /// `Version:`.
    pub version: String,
    /// `Architecture:`.
    pub architecture: String,
}

/// The SHA-256 the release metadata promises (lowercase hex).
pub fn expected_sha256(metadata_sha256: Option<&str>) -> Result<String, Refusal> {
    let Some(sha) = metadata_sha256 else {
        return Err(Refusal::Bad(
            "the object has no sha256 metadata, so its integrity cannot be checked; publish it with `hoist release`".into(),
        ));
    };
    let sha = sha.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal::Bad(format!(
            "the object's sha256 metadata `{sha}` is not a SHA-256 hex digest; publish it with `hoist release`"
        )));
    }
    Ok(sha)
}

/// The `.deb`'s own version must be the one the release statement names (its package
/// was checked against the watch before the download).
pub fn check_signed_version(
    signed: &hoist_s3::statement::ReleaseStatement,
    facts: &PackageFacts,
) -> Result<(), Refusal> {
    if signed.version != facts.version || signed.package != facts.package {
        return Err(Refusal::Bad(format!(
            "the release was signed as {} {}, but the package inside is {} {}: a signed statement of another release was attached",
            signed.package, signed.version, facts.package, facts.version
        )));
    }
    Ok(())
}

/// Checks the received bytes against S3's own description: size, and the MD5 when the
/// ETag is a plain MD5 (`etag_md5` is `hoist_s3::etag_md5(etag)`).
pub fn check_transfer(
    expected_size: u64,
    etag: &str,
    etag_md5: Option<[u8; 16]>,
    downloaded: &Downloaded,
) -> Result<(), Refusal> {
    if downloaded.size != expected_size {
        return Err(Refusal::Retry(format!(
            "received {} bytes but the object has {expected_size}",
            downloaded.size
        )));
    }
    if let Some(md5) = etag_md5
        && md5 != downloaded.md5
    {
        return Err(Refusal::Retry(format!(
            "the MD5 of the received bytes ({}) differs from the ETag {etag}",
            hex::encode(downloaded.md5)
        )));
    }
    Ok(())
}

/// SHA-256 (and the MD5, when the metadata has one) against the metadata, then the
/// signature (when one was checked while streaming).
pub fn check_content(
    expected_sha256: &str,
    metadata_md5: Option<&str>,
    downloaded: &Downloaded,
) -> Result<(), Refusal> {
    if downloaded.sha256 != expected_sha256 {
        return Err(Refusal::Bad(format!(
            "SHA-256 of the object ({}) differs from the SHA-256 it was released with ({expected_sha256}): the object is corrupt or was changed after release",
            downloaded.sha256
        )));
    }
    let md5 = hex::encode(downloaded.md5);
    if let Some(expected) = metadata_md5
        && !expected.trim().eq_ignore_ascii_case(&md5)
    {
        return Err(Refusal::Bad(format!(
            "MD5 of the object ({md5}) differs from its md5 metadata ({expected}): the object is corrupt or was changed after release"
        )));
    }
    match &downloaded.signature {
        None | Some(Ok(())) => Ok(()),
        Some(Err(minisign_verify::Error::UnsupportedLegacyMode)) => Err(Refusal::Bad(
            "the signature uses minisign's legacy (non-prehashed) mode; sign with `minisign -S` (prehashed, the default) or `hoist release --sign-key`".into(),
        )),
        Some(Err(minisign_verify::Error::UnexpectedKeyId)) => Err(Refusal::Bad(
            "the package is signed with a different key than the configured public key".into(),
        )),
        Some(Err(err)) => Err(Refusal::Bad(format!(
            "the signature does not verify with the configured public key ({err}): the package was changed or signed by someone else"
        ))),
    }
}

/// Reads the `.deb`'s control data and checks package name and architecture (`all` is
/// accepted on every host).
pub fn check_package(deb: &Path, package: &str, host_arch: &str) -> Result<PackageFacts, Refusal> {
    let info = hoist_deb::inspect(deb).map_err(|err| {
        Refusal::Bad(format!(
            "the object is not a readable Debian package: {err}"
        ))
    })?;
    let facts = PackageFacts {
        package: info.package.to_string(),
        version: info.version.to_string(),
        architecture: info.architecture.to_string(),
    };
    check_facts(&facts, package, host_arch)?;
    Ok(facts)
}

/// The name/architecture rule of [`check_package`], on already-read facts.
pub fn check_facts(facts: &PackageFacts, package: &str, host_arch: &str) -> Result<(), Refusal> {
    if facts.package != package {
        return Err(Refusal::Bad(format!(
            "the object holds package `{}` {}, but this watch installs `{package}`; fix the watch's package or the release",
            facts.package, facts.version
        )));
    }
    if facts.architecture != host_arch && facts.architecture != "all" {
        return Err(Refusal::Bad(format!(
            "the package is built for `{}` but this host is `{host_arch}`; release a {host_arch} build",
            facts.architecture
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download;

    // Made with `minisign -G -W` and `minisign -S -m test -t "timestamp:0\tfile:test"`
    // (prehashed, the default), where the file `test` holds the 4 bytes `test`.
    const KEY: &str = "RWS2zmanV/0SCyW5IC1/6SWxzYRs7CruAoIwES4V9rcLFBztPhixJPKi";
    const SIG: &str = "untrusted comment: signature from minisign secret key
RUS2zmanV/0SCy1AK5kGWsUMeQFQLfQJHtBATXsM7j+qN9vC27ZA+egFP57TyTWM8p4bUfDrNpzcA3JIHDkKk+wrUgtsMuY7oQU=
trusted comment: timestamp:0\tfile:test
3ik68B2hOiVtC2SZlPAeLa8mFt6tiI/hKMrgoDNtTpzttxAusASwwScW0NuyEaBNFIE53QylHAkUtM9qkdtaCg==";

    async fn fetch(
        body: &[u8],
        sig: Option<&minisign_verify::Signature>,
    ) -> (tempfile::TempDir, Downloaded) {
        let dir = tempfile::tempdir().unwrap();
        let key = minisign_verify::PublicKey::from_base64(KEY).unwrap();
        let done = download::download(body, dir.path(), sig.map(|s| (&key, s)))
            .await
            .unwrap();
        (dir, done)
    }

    #[test]
    fn sha256_metadata_is_required_and_normalised() {
        assert!(matches!(expected_sha256(None), Err(Refusal::Bad(m)) if m.contains("no sha256")));
        assert!(matches!(expected_sha256(Some("abc")), Err(Refusal::Bad(_))));
        let upper = "AB".repeat(32);
        assert_eq!(expected_sha256(Some(&upper)).unwrap(), "ab".repeat(32));
    }

    #[tokio::test]
    async fn good_signature_passes_and_changed_bytes_fail() {
        let sig = minisign_verify::Signature::decode(SIG).unwrap();
        let (_d, done) = fetch(b"test", Some(&sig)).await;
        let sha = done.sha256.clone();
        check_content(&sha, None, &done).unwrap();
        let (_d, tampered) = fetch(b"tesT", Some(&sig)).await;
        let err = check_content(&tampered.sha256.clone(), None, &tampered).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
    }

    #[tokio::test]
    async fn sha_mismatch_is_bad_and_md5_mismatch_is_retried() {
        let (_d, done) = fetch(b"hello world", None).await;
        let err = check_content(&"00".repeat(32), None, &done).unwrap_err();
        assert!(
            matches!(&err, Refusal::Bad(m) if m.contains("corrupt")),
            "{err}"
        );
        let sha = done.sha256.clone();
        check_content(&sha, Some("5EB63BBBE01EEED093CB22BB8F5ACDC3"), &done).unwrap();
        let err = check_content(&sha, Some(&"0".repeat(32)), &done).unwrap_err();
        assert!(err.to_string().contains("md5 metadata"), "{err}");
        let md5 = done.md5;
        check_transfer(11, "\"x\"", Some(md5), &done).unwrap();
        check_transfer(11, "\"x-2\"", None, &done).unwrap();
        assert!(matches!(
            check_transfer(11, "\"x\"", Some([0; 16]), &done),
            Err(Refusal::Retry(_))
        ));
        assert!(matches!(
            check_transfer(12, "\"x\"", Some(md5), &done),
            Err(Refusal::Retry(_))
        ));
    }

    #[test]
    fn the_package_inside_must_be_the_signed_release() {
        let facts = PackageFacts {
            package: "hello".into(),
            version: "1.0".into(),
            architecture: "amd64".into(),
        };
        let mut signed = hoist_s3::statement::ReleaseStatement {
            package: "hello".into(),
            version: "1.0".into(),
            sha256: "ab".repeat(32),
            bucket: "b".into(),
            key: "k".into(),
            time: std::time::SystemTime::UNIX_EPOCH,
        };
        check_signed_version(&signed, &facts).unwrap();
        signed.version = "0.9".into();
        let err = check_signed_version(&signed, &facts).unwrap_err();
        assert!(err.to_string().contains("signed as hello 0.9"), "{err}");
    }

    #[test]
    fn package_name_and_architecture_are_checked() {
        let facts = PackageFacts {
            package: "hello".into(),
            version: "1.0".into(),
            architecture: "amd64".into(),
        };
        check_facts(&facts, "hello", "amd64").unwrap();
        let err = check_facts(&facts, "other", "amd64").unwrap_err();
        assert!(err.to_string().contains("`hello`"), "{err}");
        let err = check_facts(&facts, "hello", "arm64").unwrap_err();
        assert!(err.to_string().contains("arm64"), "{err}");
        let all = PackageFacts {
            architecture: "all".into(),
            ..facts
        };
        check_facts(&all, "hello", "arm64").unwrap();
    }

    #[test]
    fn non_deb_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.deb");
        std::fs::write(&path, b"not an ar archive").unwrap();
        assert!(matches!(
            check_package(&path, "hello", "amd64"),
            Err(Refusal::Bad(_))
        ));
    }
}
