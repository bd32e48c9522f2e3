//! Is the released `hoist-agent` object what the release key signed? `hoist cloud-init`
//! asks this before it pins anything in user-data, with the same rule the agent applies
//! on hosts.
//!
//! - [`verify_agent_object`]: an object in S3. Its signed release statement (metadata,
//!   see [`hoist_s3::authenticate`]) must verify with the key and name this bucket, key
//!   and package; the downloaded bytes must have the statement's SHA-256, and the `.deb`
//!   inside must be the package and version it names.
//! - [`verify_agent_file`]: a local `.deb` with the `FILE.deb.minisig` that `hoist
//!   release` writes beside it: a minisign signature (prehashed; legacy refused) over
//!   the bytes, whose trusted comment is the release statement.
//!
//! The SHA-256 pinned in user-data is computed from the bytes, never taken from metadata.

use std::io::Read as _;
use std::path::Path;

use hoist_s3::ReleaseMetadata;
use hoist_s3::authenticate::{Expected, authenticate};
use hoist_s3::statement::ReleaseStatement;
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
    /// The signed release statement.
    pub statement: String,
}

/// Why an agent object is refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The object's signed statements are missing, changed, signed by another key or
    /// made for another place (the text says which).
    #[error("{0}")]
    Statement(String),
    /// The `.minisig` beside a local package is not a minisign signature.
    #[error(
        "its signature is unreadable ({0}): release it again with `hoist release --sign-key KEY`"
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
    /// The bytes are not what the signed statement names.
    #[error(
        "its bytes (sha256 {actual}) are not the release the signed statement names (sha256 {signed}): the object was changed after release (do not bootstrap hosts from it; release the agent again)"
    )]
    OtherBytes {
        /// From the signed statement.
        signed: String,
        /// Of the bytes.
        actual: String,
    },
    /// The `.deb` is not the package or version the statement names.
    #[error("{0}")]
    OtherRelease(String),
    /// Not a `.deb`, or not the agent's package.
    #[error("{0}")]
    NotTheAgent(String),
    /// Reading the downloaded file failed.
    #[error("cannot read the downloaded package: {0}")]
    Io(#[from] std::io::Error),
}

/// Verifies the object downloaded to `deb` from `expected` (bucket, key, package) with
/// its `metadata`: the signed release statement verifies with `key` and names that
/// place, the bytes have its SHA-256, and the `.deb` is the package and version it names.
///
/// Errors: [`VerifyError`], each saying what is wrong and what to do.
pub fn verify_agent_object(
    key: &minisign_verify::PublicKey,
    metadata: &ReleaseMetadata,
    expected: Expected<'_>,
    deb: &Path,
) -> Result<VerifiedAgent, VerifyError> {
    let trusted = authenticate(key, metadata, expected).map_err(VerifyError::Statement)?;
    let sha256 = hash_file(deb, None)?;
    if sha256 != trusted.sha256() {
        return Err(VerifyError::OtherBytes {
            signed: trusted.sha256().to_owned(),
            actual: sha256,
        });
    }
    check_deb(deb, expected.package, &trusted.release, sha256)
}

/// Verifies the local package `deb` against `minisig` (the text of the `FILE.deb.minisig`
/// that `hoist release` writes): a valid signature by `key` over exactly these bytes,
/// whose trusted comment is a release statement naming this package, version and SHA-256.
///
/// Errors: [`VerifyError`], each saying what is wrong and what to do.
pub fn verify_agent_file(
    key: &minisign_verify::PublicKey,
    minisig: &str,
    deb: &Path,
    package: &str,
) -> Result<VerifiedAgent, VerifyError> {
    let signature = minisign_verify::Signature::decode(minisig)
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let sha256 = hash_file(deb, Some((key, &signature)))?;
    let comment = signature.trusted_comment();
    let statement = ReleaseStatement::parse(comment).map_err(|e| {
        VerifyError::OtherRelease(format!(
            "its signature's trusted comment is not a hoist release statement ({e}): release it with `hoist release --sign-key KEY`"
        ))
    })?;
    if statement.sha256 != sha256 {
        return Err(VerifyError::OtherBytes {
            signed: statement.sha256,
            actual: sha256,
        });
    }
    check_deb(deb, package, &statement, sha256)
}

/// SHA-256 of the file (lowercase hex); with a signature, the minisign stream check runs
/// over the same bytes.
fn hash_file(
    deb: &Path,
    signature: Option<(&minisign_verify::PublicKey, &minisign_verify::Signature)>,
) -> Result<String, VerifyError> {
    let mut verifier = match signature {
        Some((key, signature)) => Some(key.verify_stream(signature).map_err(|e| match e {
            minisign_verify::Error::UnexpectedKeyId => VerifyError::WrongKey,
            minisign_verify::Error::UnsupportedLegacyMode => VerifyError::Legacy,
            other => VerifyError::Malformed(other.to_string()),
        })?),
        None => None,
    };
    let mut sha = sha2::Sha256::new();
    let mut file = std::fs::File::open(deb)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(verifier) = verifier.as_mut() {
            verifier.update(&buf[..n]);
        }
        sha.update(&buf[..n]);
    }
    if let Some(mut verifier) = verifier {
        verifier.finalize().map_err(|_| VerifyError::BadSignature)?;
    }
    Ok(hex::encode(sha.finalize()))
}

/// The `.deb` must be `package`, and the package and version `statement` names.
fn check_deb(
    deb: &Path,
    package: &str,
    statement: &ReleaseStatement,
    sha256: String,
) -> Result<VerifiedAgent, VerifyError> {
    let info = hoist_deb::inspect(deb).map_err(|e| {
        VerifyError::NotTheAgent(format!("it is not a readable Debian package: {e}"))
    })?;
    let (name, version) = (info.package.to_string(), info.version.to_string());
    if name != package {
        return Err(VerifyError::NotTheAgent(format!(
            "it holds package `{name}` {version}, not `{package}`: pass the agent's key with --key"
        )));
    }
    if statement.package != name || statement.version != version {
        return Err(VerifyError::OtherRelease(format!(
            "its signed statement names {} {}, not this {name} {version}: a statement of another release was attached",
            statement.package, statement.version
        )));
    }
    Ok(VerifiedAgent {
        sha256,
        package: name,
        version,
        architecture: info.architecture.to_string(),
        statement: statement.render(),
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
