//! Authenticating a release object from its metadata alone (a HEAD is enough), shared by
//! the agent (before any byte is downloaded) and `hoist cloud-init` (before it pins an
//! agent package in user-data).
//!
//! [`authenticate`]: the metadata must carry a release statement (package, version,
//! sha256, bucket, key, release time; see [`crate::statement`]) signed by the given key,
//! made for the expected bucket, key and package. A rollback statement (written by
//! `hoist rollback`), when present, must be signed by the same key and name the same
//! package, version, bucket, key and sha256. Metadata changed by anyone without the key
//! (a CopyObject with `MetadataDirective: REPLACE`) fails here. The statement's SHA-256
//! then decides which bytes may be installed: the caller compares the bytes' digest.

use std::time::SystemTime;

use crate::ReleaseMetadata;
use crate::statement::{ReleaseStatement, RollbackStatement, minisig_text};

/// What an object's signed statements say, after their signatures verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    /// The release statement.
    pub release: ReleaseStatement,
    /// The rollback statement, when the object is a signed rollback copy.
    pub rollback: Option<RollbackStatement>,
}

impl Trusted {
    /// The time the signer vouched for this object last: the rollback statement's when
    /// it has one (a rollback is always newer than its release), else the release's.
    pub fn time(&self) -> SystemTime {
        match &self.rollback {
            Some(rollback) => rollback.time.max(self.release.time),
            None => self.release.time,
        }
    }

    /// The SHA-256 the downloaded bytes must have.
    pub fn sha256(&self) -> &str {
        &self.release.sha256
    }
}

/// Where the watch expects its releases (what the statements must name).
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The watch's bucket.
    pub bucket: &'a str,
    /// The watch's key.
    pub key: &'a str,
    /// The watch's package.
    pub package: &'a str,
}

/// Verifies one statement's signature (the statement is the signed data).
fn verify(
    key: &minisign_verify::PublicKey,
    what: &str,
    statement: &str,
    compact: &str,
) -> Result<(), String> {
    let signature = minisig_text(statement, compact)
        .and_then(|text| {
            minisign_verify::Signature::decode(&text)
                .map_err(|_| crate::statement::StatementError::BadSignature)
        })
        .map_err(|err| {
            format!("the {what} signature is unreadable ({err}): the metadata was changed")
        })?;
    key.verify(statement.as_bytes(), &signature, false)
        .map_err(|err| match err {
            minisign_verify::Error::UnexpectedKeyId => format!(
                "the {what} statement is signed with a different key than the configured public key"
            ),
            err => format!(
                "the {what} statement's signature does not verify with the configured public key ({err}): the metadata was changed or signed by someone else"
            ),
        })
}

/// Checks the signed statements in `meta` (see the module documentation).
pub fn authenticate(
    key: &minisign_verify::PublicKey,
    meta: &ReleaseMetadata,
    expected: Expected<'_>,
) -> Result<Trusted, String> {
    let (Some(text), Some(sig)) = (&meta.statement, &meta.statement_sig) else {
        return Err(if meta.minisig.is_some() {
            "the object carries a signature of the .deb but no signed release statement (it was published by a hoist older than signed statements, or signed with plain `minisign`): without the signed release time a replay of an old version cannot be told apart; release it again with `hoist release` and the signing key".to_owned()
        } else {
            "the object is not signed (no signed release statement) but this watch requires signatures; release it with `hoist release` and the signing key (or set allow_unsigned = true on the watch)".to_owned()
        });
    };
    verify(key, "release", text, sig)?;
    let release = ReleaseStatement::parse(text).map_err(|err| err.to_string())?;
    if release.bucket != expected.bucket || release.key != expected.key {
        return Err(format!(
            "the release was signed for s3://{}/{}, not for this watch's s3://{}/{}: a signed release of another place was copied here",
            release.bucket, release.key, expected.bucket, expected.key
        ));
    }
    if release.package != expected.package {
        return Err(format!(
            "the release was signed as package `{}` {}, but this watch installs `{}`; fix the watch's package or the release",
            release.package, release.version, expected.package
        ));
    }
    let rollback = match (&meta.rollback, &meta.rollback_sig) {
        (None, None) => None,
        (Some(text), Some(sig)) => {
            verify(key, "rollback", text, sig)?;
            let rollback = RollbackStatement::parse(text).map_err(|err| err.to_string())?;
            if rollback.package != release.package
                || rollback.version != release.version
                || rollback.sha256 != release.sha256
                || rollback.bucket != release.bucket
                || rollback.key != release.key
            {
                return Err(format!(
                    "the rollback statement ({text}) does not name this release ({}): they were put together by someone without the key",
                    release.render()
                ));
            }
            Some(rollback)
        }
        _ => {
            return Err(
                "the object has half of a rollback statement (statement or signature missing): the metadata was changed"
                    .to_owned(),
            );
        }
    };
    Ok(Trusted { release, rollback })
}
