//! How hoist stores and labels release signatures (shared by packager and agent).
//!
//! A release may be signed with ed25519 in the minisign format. The signature covers the
//! `.deb` bytes. Its *trusted* comment (covered by the signature too) is
//! `hoist package=NAME version=VERSION sha256=HEX`, built by [`trusted_comment`] and read
//! back by [`SignedRelease::parse`], so a verifier can check that a valid signature was
//! made for this package and version and not replayed from an older release.
//!
//! Storage: the whole `.minisig` file, base64-encoded, in the object's metadata
//! (`hoist-minisig`, see [`crate::ReleaseMetadata::minisig`]). It therefore belongs to
//! the same VersionId as the bytes, arrives with the HEAD/GET of that version, and is
//! carried along by a CopyObject rollback. The packager also writes it next to the `.deb`
//! as `FILE.deb.minisig`, so `minisign -Vm FILE.deb -p KEY.pub` verifies it.

use base64::Engine as _;

/// Suffix of a detached minisign signature file.
pub const MINISIG_SUFFIX: &str = ".minisig";

/// First word of hoist's trusted comments.
const TAG: &str = "hoist";

/// Errors decoding a stored signature or its trusted comment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureFormatError {
    /// `hoist-minisig` is not valid base64 of UTF-8 text.
    #[error(
        "the stored signature (metadata hoist-minisig) is not base64 of a .minisig file: {0}; re-release with --sign-key"
    )]
    NotBase64(String),
    /// The trusted comment is not hoist's `hoist package=… version=… sha256=…`.
    #[error(
        "the signature's trusted comment {0:?} is not hoist's `hoist package=… version=… sha256=…`; sign releases with `hoist release --sign-key`"
    )]
    NotHoistComment(String),
}

/// The release a signature was made for, as stated in its trusted comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRelease {
    /// Debian package name.
    pub package: String,
    /// Debian package version.
    pub version: String,
    /// SHA-256 of the `.deb`, lowercase hex.
    pub sha256: String,
}

/// The trusted comment hoist puts in a release signature. Package names and versions
/// never contain spaces or `=` (Debian policy), so the format is unambiguous.
pub fn trusted_comment(package: &str, version: &str, sha256: &str) -> String {
    format!("{TAG} package={package} version={version} sha256={sha256}")
}

impl SignedRelease {
    /// Parses a trusted comment written by [`trusted_comment`]. Extra `key=value`
    /// words (from newer versions) are ignored; the three known ones are required.
    pub fn parse(comment: &str) -> Result<SignedRelease, SignatureFormatError> {
        let bad = || SignatureFormatError::NotHoistComment(comment.to_string());
        let mut words = comment.split_ascii_whitespace();
        if words.next() != Some(TAG) {
            return Err(bad());
        }
        let (mut package, mut version, mut sha256) = (None, None, None);
        for word in words {
            match word.split_once('=') {
                Some(("package", v)) => package = Some(v.to_string()),
                Some(("version", v)) => version = Some(v.to_string()),
                Some(("sha256", v)) => sha256 = Some(v.to_ascii_lowercase()),
                _ => {}
            }
        }
        match (package, version, sha256) {
            (Some(package), Some(version), Some(sha256))
                if !package.is_empty() && !version.is_empty() && sha256.len() == 64 =>
            {
                Ok(SignedRelease {
                    package,
                    version,
                    sha256,
                })
            }
            _ => Err(bad()),
        }
    }
}

/// Encodes the text of a `.minisig` file for the `hoist-minisig` metadata value.
pub fn encode_minisig(minisig_text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(minisig_text.as_bytes())
}

/// Decodes a `hoist-minisig` metadata value back into the `.minisig` file text, ready
/// for `minisign_verify::Signature::decode` or `minisign::SignatureBox::from_string`.
pub fn decode_minisig(value: &str) -> Result<String, SignatureFormatError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| SignatureFormatError::NotBase64(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| SignatureFormatError::NotBase64(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_comment_round_trips() {
        let sha = "a1".repeat(32);
        let comment = trusted_comment("hello", "1:1.4.0~rc1-2", &sha);
        assert_eq!(
            comment,
            format!("hoist package=hello version=1:1.4.0~rc1-2 sha256={sha}")
        );
        let parsed = SignedRelease::parse(&comment).unwrap();
        assert_eq!(parsed.package, "hello");
        assert_eq!(parsed.version, "1:1.4.0~rc1-2");
        assert_eq!(parsed.sha256, sha);
    }

    #[test]
    fn foreign_comments_are_rejected() {
        assert!(SignedRelease::parse("timestamp:1700000000\tfile:hello.deb").is_err());
        assert!(SignedRelease::parse("hoist package=hello version=1.0").is_err());
        assert!(SignedRelease::parse("hoist package=hello version=1.0 sha256=abc").is_err());
        let extra = format!(
            "hoist package=p version=1 sha256={} future=x",
            "0".repeat(64)
        );
        assert!(SignedRelease::parse(&extra).is_ok());
    }

    #[test]
    fn minisig_base64_round_trips() {
        let text = "untrusted comment: x\nRUQ=\ntrusted comment: hoist\nAAA=\n";
        let encoded = encode_minisig(text);
        assert!(encoded.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(decode_minisig(&encoded).unwrap(), text);
        assert!(matches!(
            decode_minisig("not base64!"),
            Err(SignatureFormatError::NotBase64(_))
        ));
    }
}
