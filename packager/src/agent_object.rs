//! Is the released `hoist-agent` object what the release key signed? `hoist cloud-init`
//! asks this before it pins anything in user-data.
//!
//! [`verify_agent_object`] is the one place that decides (the seam where the signed
//! statement format is read): today a minisign signature (prehashed, legacy refused)
//! over the `.deb` bytes, carried base64-encoded in the object's `hoist-minisig`
//! metadata, whose trusted comment (when it is hoist's) must name this package,
//! version and SHA-256. The SHA-256 pinned in user-data is computed from the bytes,
//! never taken from metadata.

use std::io::Read as _;
use std::path::Path;

use hoist_s3::ReleaseMetadata;
use hoist_s3::signature::{SignedRelease, decode_minisig};
use sha2::Digest as _;

/// What was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAgent {
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// `Package:` of the `.deb`.
    pub package: String,
    /// `Version:` of the `.deb`.
    pub version: String,
    /// `Architecture:` of the `.deb`.
    pub architecture: String,
    /// The signature's trusted comment.
    pub trusted_comment: String,
}

/// Why an agent object is refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No `hoist-minisig` metadata.
    #[error(
        "it is not signed (no hoist-minisig metadata): release it with `hoist release --sign-key KEY`"
    )]
    Unsigned,
    /// The metadata is not a minisign signature.
    #[error(
        "its signature metadata is unreadable ({0}): release it again with `hoist release --sign-key KEY`"
    )]
    Malformed(String),
    /// Signed with another key.
    #[error(
        "it is signed with a different key than the public key given: pass the release key's public key (--public-key/--public-key-file, or public_key in the agent watch)"
    )]
    WrongKey,
    /// A legacy (non-prehashed) signature.
    #[error(
        "its signature uses minisign's legacy (non-prehashed) mode, which hosts refuse; sign with `hoist release --sign-key`"
    )]
    Legacy,
    /// The signature does not match the bytes.
    #[error(
        "its signature does not verify with the public key: the package bytes or the signature were changed after release (do not bootstrap hosts from it; release the agent again)"
    )]
    BadSignature,
    /// The signed statement names another release.
    #[error("{0}")]
    OtherRelease(String),
    /// The metadata's SHA-256 disagrees with the bytes.
    #[error(
        "its hoist-sha256 metadata ({metadata}) is not the SHA-256 of its bytes ({actual}): the object was changed after release"
    )]
    MetadataSha256 {
        /// From the metadata.
        metadata: String,
        /// Of the bytes.
        actual: String,
    },
    /// Not a `.deb`, or not the agent's package.
    #[error("{0}")]
    NotTheAgent(String),
    /// Reading the downloaded file failed.
    #[error("cannot read the downloaded package: {0}")]
    Io(#[from] std::io::Error),
}

/// Verifies the downloaded object at `deb` (with its `metadata`) against `key`: a
/// valid minisign signature by that key over exactly these bytes, a signed statement
/// (when hoist's) naming this package, version and SHA-256, metadata SHA-256 (when
/// present) equal to the bytes', and a `.deb` of `package`.
///
/// Errors: [`VerifyError`], each saying what is wrong and what to do.
pub fn verify_agent_object(
    key: &minisign_verify::PublicKey,
    metadata: &ReleaseMetadata,
    deb: &Path,
    package: &str,
) -> Result<VerifiedAgent, VerifyError> {
    let Some(encoded) = metadata.minisig.as_deref() else {
        return Err(VerifyError::Unsigned);
    };
    let text = decode_minisig(encoded).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let signature = minisign_verify::Signature::decode(&text)
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let mut verifier = key.verify_stream(&signature).map_err(|e| match e {
        minisign_verify::Error::UnexpectedKeyId => VerifyError::WrongKey,
        minisign_verify::Error::UnsupportedLegacyMode => VerifyError::Legacy,
        other => VerifyError::Malformed(other.to_string()),
    })?;
    let mut sha = sha2::Sha256::new();
    let mut file = std::fs::File::open(deb)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        verifier.update(&buf[..n]);
        sha.update(&buf[..n]);
    }
    verifier.finalize().map_err(|_| VerifyError::BadSignature)?;
    let sha256 = hex::encode(sha.finalize());
    if let Some(meta) = &metadata.sha256
        && !meta.trim().eq_ignore_ascii_case(&sha256)
    {
        return Err(VerifyError::MetadataSha256 {
            metadata: meta.clone(),
            actual: sha256,
        });
    }
    let info = hoist_deb::inspect(deb).map_err(|e| {
        VerifyError::NotTheAgent(format!("it is not a readable Debian package: {e}"))
    })?;
    let (name, version) = (info.package.to_string(), info.version.to_string());
    if name != package {
        return Err(VerifyError::NotTheAgent(format!(
            "it holds package `{name}` {version}, not `{package}`: pass the agent's key with --key"
        )));
    }
    let comment = signature.trusted_comment().to_string();
    if let Ok(signed) = SignedRelease::parse(&comment)
        && (signed.package != name || signed.version != version || signed.sha256 != sha256)
    {
        return Err(VerifyError::OtherRelease(format!(
            "its signature was made for {} {} (sha256 {}), not for this {name} {version} (sha256 {sha256}): a signature of another release was attached",
            signed.package, signed.version, signed.sha256
        )));
    }
    Ok(VerifiedAgent {
        sha256,
        package: name,
        version,
        architecture: info.architecture.to_string(),
        trusted_comment: comment,
    })
}

/// Parses a minisign public key: the bare base64 line, or the text of a `.pub` file.
pub fn parse_public_key(text: &str) -> Result<minisign_verify::PublicKey, String> {
    let trimmed = text.trim();
    let parsed = if trimmed.lines().count() > 1 {
        minisign_verify::PublicKey::decode(trimmed)
    } else {
        minisign_verify::PublicKey::from_base64(trimmed)
    };
    parsed.map_err(|e| {
        format!(
            "not a minisign public key ({e}): use the `RW…` line of the .pub file written by `hoist keygen` or `minisign -G`"
        )
    })
}
