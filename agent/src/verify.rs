//! Deciding whether a downloaded object may be installed.
//!
//! - [`expected_sha256`]: the release metadata must carry the package's SHA-256.
//! - [`signature_for`]: with a public key configured, a minisign signature must be present.
//! - [`check_transfer`]: size and (for a plain single-part ETag) MD5 must match what S3
//!   holds; a mismatch is a transfer problem and is retried, not marked bad.
//! - [`check_content`]: SHA-256 equals the metadata and the signature verifies.
//! - [`check_package`]: the `.deb` is the configured package for this architecture.

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

/// The signature to check, when a key is configured. `minisig_b64` is the metadata value:
/// base64 of the whole `.minisig` file.
pub fn signature_for(
    key: Option<&minisign_verify::PublicKey>,
    minisig_b64: Option<&str>,
) -> Result<Option<minisign_verify::Signature>, Refusal> {
    if key.is_none() {
        return Ok(None);
    }
    let Some(encoded) = minisig_b64 else {
        return Err(Refusal::Bad(
            "the object is not signed but a public key is configured; release it with `hoist release --sign-key`".into(),
        ));
    };
    let text = hoist_s3::signature::decode_minisig(encoded)
        .map_err(|err| Refusal::Bad(err.to_string()))?;
    minisign_verify::Signature::decode(&text).map(Some).map_err(|err| {
        Refusal::Bad(format!(
            "the signature metadata is not a minisign signature ({err}); release again with `hoist release --sign-key`"
        ))
    })
}

/// After the signature verified: when its trusted comment is hoist's
/// (`hoist package=… version=… sha256=…`), it must name this package, version and
/// digest, so a valid signature of another package or release cannot be replayed. A
/// signature made with plain `minisign -S` (another comment) is accepted as is.
pub fn check_signed_release(
    signature: &minisign_verify::Signature,
    facts: &PackageFacts,
    sha256: &str,
) -> Result<(), Refusal> {
    let comment = signature.trusted_comment();
    let Ok(signed) = hoist_s3::signature::SignedRelease::parse(comment) else {
        tracing::debug!(
            comment,
            "signature has a non-hoist trusted comment; accepted"
        );
        return Ok(());
    };
    if signed.package != facts.package || signed.version != facts.version || signed.sha256 != sha256
    {
        return Err(Refusal::Bad(format!(
            "the signature was made for {} {} (sha256 {}), not for this package {} {} (sha256 {sha256}): a signature of another release was attached",
            signed.package, signed.version, signed.sha256, facts.package, facts.version
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
            "SHA-256 of the object ({}) differs from its sha256 metadata ({expected_sha256}): the object is corrupt or was changed after release",
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

    fn b64(text: &str) -> String {
        hoist_s3::signature::encode_minisig(text)
    }

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

    #[test]
    fn unsigned_is_refused_only_with_a_key() {
        let key = minisign_verify::PublicKey::from_base64(KEY).unwrap();
        assert_eq!(signature_for(None, None).unwrap().map(|_| ()), None);
        assert!(
            matches!(signature_for(Some(&key), None), Err(Refusal::Bad(m)) if m.contains("not signed"))
        );
        assert!(
            matches!(signature_for(Some(&key), Some("%%%")), Err(Refusal::Bad(m)) if m.contains("base64"))
        );
        assert!(
            matches!(signature_for(Some(&key), Some(&b64("a\nb\nc\nd"))), Err(Refusal::Bad(m)) if m.contains("minisign"))
        );
        assert!(matches!(
            signature_for(Some(&key), Some(&b64("nope"))),
            Err(Refusal::Bad(_))
        ));
        assert!(
            signature_for(Some(&key), Some(&b64(SIG)))
                .unwrap()
                .is_some()
        );
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
    fn foreign_trusted_comment_is_accepted_and_hoist_comment_must_match() {
        let facts = PackageFacts {
            package: "hello".into(),
            version: "1.0".into(),
            architecture: "amd64".into(),
        };
        let plain = minisign_verify::Signature::decode(SIG).unwrap();
        check_signed_release(&plain, &facts, &"ab".repeat(32)).unwrap();
        let sha = "ab".repeat(32);
        let hoist_sig = SIG.replace(
            "timestamp:0\tfile:test",
            &hoist_s3::signature::trusted_comment("hello", "0.9", &sha),
        );
        let sig = minisign_verify::Signature::decode(&hoist_sig).unwrap();
        let err = check_signed_release(&sig, &facts, &sha).unwrap_err();
        assert!(err.to_string().contains("hello 0.9"), "{err}");
        let matching = PackageFacts {
            version: "0.9".into(),
            ..facts
        };
        check_signed_release(&sig, &matching, &sha).unwrap();
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
