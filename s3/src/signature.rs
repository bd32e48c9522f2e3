//! The `.deb` signature for people: `FILE.deb.minisig`.
//!
//! Besides the signed statement the agent checks (see [`crate::statement`]), `hoist
//! release` signs the `.deb` bytes themselves with the same key and writes the signature
//! next to the package as `FILE.deb.minisig`, its trusted comment being the release
//! statement, so `minisign -Vm FILE.deb -p KEY.pub` verifies the file and shows which
//! package, version, bucket, key, sha256 and release time were signed.
//!
//! The same signature is also stored base64-encoded in the object's metadata
//! (`hoist-minisig`, [`crate::ReleaseMetadata::minisig`]) while it fits S3's 2 KB budget,
//! for agents older than signed statements (they read `package=`, `version=` and
//! `sha256=` from its trusted comment). Current agents do not need it: the statement
//! binds the SHA-256, and the downloaded bytes must match it.

use base64::Engine as _;

/// Suffix of a detached minisign signature file.
pub const MINISIG_SUFFIX: &str = ".minisig";

/// Errors decoding a stored signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureFormatError {
    /// `hoist-minisig` is not valid base64 of UTF-8 text.
    #[error(
        "the stored signature (metadata hoist-minisig) is not base64 of a .minisig file: {0}; re-release with --sign-key"
    )]
    NotBase64(String),
}

/// Encodes the text of a `.minisig` file for the `hoist-minisig` metadata value.
pub fn encode_minisig(minisig_text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(minisig_text.as_bytes())
}

/// Decodes a `hoist-minisig` metadata value back into the `.minisig` file text.
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
