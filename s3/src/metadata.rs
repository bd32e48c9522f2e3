//! Release metadata stored as S3 user metadata (`x-amz-meta-hoist-*`) on each version.
//!
//! Metadata belongs to one VersionId and is copied with it by CopyObject, so a rollback
//! brings back the old version's sha256 and signature together with its bytes.

use std::collections::HashMap;

use crate::error::S3Error;

/// Prefix of every metadata key hoist writes (after S3's own `x-amz-meta-`).
pub const META_PREFIX: &str = "hoist-";

/// S3's limit for all user metadata of one object (keys + values, in bytes).
pub const MAX_USER_METADATA_BYTES: usize = 2048;

/// What the packager records about a release. Every field is optional on read, since
/// objects may have been uploaded by other tools or older versions of hoist.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ReleaseMetadata {
    /// Debian package name (`hoist-package`).
    pub package: Option<String>,
    /// Debian package version (`hoist-version`).
    pub version: Option<String>,
    /// Debian architecture (`hoist-arch`).
    pub arch: Option<String>,
    /// SHA-256 of the whole `.deb`, lowercase hex (`hoist-sha256`). The agent's
    /// integrity check; always present on objects hoist uploads.
    pub sha256: Option<String>,
    /// MD5 of the whole `.deb`, lowercase hex (`hoist-md5`); equals the ETag for
    /// single-part uploads, the only MD5 there is for multipart ones.
    pub md5: Option<String>,
    /// `git rev-parse HEAD` of the source tree, `-dirty` appended when it had local
    /// changes (`hoist-git-commit`).
    pub git_commit: Option<String>,
    /// Who released it (`hoist-releaser`).
    pub releaser: Option<String>,
    /// RFC 3339 UTC time the `.deb` was written (`hoist-build-time`).
    pub build_time: Option<String>,
    /// Base64 (standard alphabet, padded) of the whole `.minisig` file
    /// (`hoist-minisig`); see [`crate::signature`].
    pub minisig: Option<String>,
    /// The signed release statement (`hoist-statement`), see [`crate::statement`].
    pub statement: Option<String>,
    /// Its signature in compact form (`hoist-statement-sig`).
    pub statement_sig: Option<String>,
    /// The signed rollback statement written by `hoist rollback` (`hoist-rollback`).
    pub rollback: Option<String>,
    /// Its signature in compact form (`hoist-rollback-sig`).
    pub rollback_sig: Option<String>,
}

/// Metadata key names without the `x-amz-meta-` prefix, paired with field accessors.
const FIELDS: [&str; 13] = [
    "hoist-package",
    "hoist-version",
    "hoist-arch",
    "hoist-sha256",
    "hoist-md5",
    "hoist-git-commit",
    "hoist-releaser",
    "hoist-build-time",
    "hoist-minisig",
    "hoist-statement",
    "hoist-statement-sig",
    "hoist-rollback",
    "hoist-rollback-sig",
];

impl ReleaseMetadata {
    fn fields(&self) -> [&Option<String>; 13] {
        [
            &self.package,
            &self.version,
            &self.arch,
            &self.sha256,
            &self.md5,
            &self.git_commit,
            &self.releaser,
            &self.build_time,
            &self.minisig,
            &self.statement,
            &self.statement_sig,
            &self.rollback,
            &self.rollback_sig,
        ]
    }

    fn fields_mut(&mut self) -> [&mut Option<String>; 13] {
        [
            &mut self.package,
            &mut self.version,
            &mut self.arch,
            &mut self.sha256,
            &mut self.md5,
            &mut self.git_commit,
            &mut self.releaser,
            &mut self.build_time,
            &mut self.minisig,
            &mut self.statement,
            &mut self.statement_sig,
            &mut self.rollback,
            &mut self.rollback_sig,
        ]
    }

    /// Bytes these fields take of S3's user-metadata budget (names + values), to compare
    /// with [`MAX_USER_METADATA_BYTES`].
    pub fn user_metadata_bytes(&self) -> usize {
        FIELDS
            .iter()
            .zip(self.fields())
            .filter_map(|(name, value)| value.as_ref().map(|v| name.len() + v.len()))
            .sum()
    }

    /// The S3 user-metadata map for this release (keys without `x-amz-meta-`).
    ///
    /// Errors with [`S3Error::InvalidMetadata`] when a value is not printable ASCII
    /// (HTTP headers cannot carry it faithfully), has surrounding spaces (servers trim
    /// them), or when everything together exceeds [`MAX_USER_METADATA_BYTES`].
    pub fn to_user_metadata(&self) -> Result<HashMap<String, String>, S3Error> {
        let mut map = HashMap::new();
        let mut total = 0;
        for (name, value) in FIELDS.iter().zip(self.fields()) {
            let Some(value) = value else { continue };
            if let Some(bad) = value.chars().find(|c| !(' '..='~').contains(c)) {
                return Err(S3Error::InvalidMetadata {
                    field: (*name).to_string(),
                    reason: format!(
                        "{value:?} contains {bad:?}; only printable ASCII can be stored, change the value"
                    ),
                });
            }
            if value.trim() != value {
                return Err(S3Error::InvalidMetadata {
                    field: (*name).to_string(),
                    reason: format!("{value:?} has leading or trailing spaces; remove them"),
                });
            }
            total += name.len() + value.len();
            map.insert((*name).to_string(), value.clone());
        }
        if total > MAX_USER_METADATA_BYTES {
            return Err(S3Error::InvalidMetadata {
                field: "(all)".into(),
                reason: format!(
                    "{total} bytes exceed S3's {MAX_USER_METADATA_BYTES}-byte limit for user metadata; shorten the releaser or version"
                ),
            });
        }
        Ok(map)
    }

    /// Reads the hoist fields from an S3 user-metadata map. Key case is ignored (some
    /// servers lower-case keys); unknown keys are ignored; empty values count as absent.
    pub fn from_user_metadata(map: &HashMap<String, String>) -> ReleaseMetadata {
        let mut meta = ReleaseMetadata::default();
        for (key, value) in map {
            let key = key.to_ascii_lowercase();
            let key = key.strip_prefix("x-amz-meta-").unwrap_or(&key);
            if let Some(i) = FIELDS.iter().position(|f| *f == key) {
                let value = value.trim();
                if !value.is_empty() {
                    *meta.fields_mut()[i] = Some(value.to_string());
                }
            }
        }
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReleaseMetadata {
        ReleaseMetadata {
            package: Some("hello".into()),
            version: Some("1.4.0-1".into()),
            arch: Some("amd64".into()),
            sha256: Some("ab".repeat(32)),
            md5: Some("cd".repeat(16)),
            git_commit: Some(format!("{}-dirty", "e".repeat(40))),
            releaser: Some("ci@build-7".into()),
            build_time: Some("2026-01-02T03:04:05Z".into()),
            minisig: Some("dW50cnVzdGVk".into()),
            statement: Some(format!("hoist package=hello sha256={}", "ab".repeat(32))),
            statement_sig: Some("UlVR.Z2xv".into()),
            rollback: None,
            rollback_sig: None,
        }
    }

    #[test]
    fn round_trips_through_the_user_metadata_map() {
        let meta = sample();
        let map = meta.to_user_metadata().unwrap();
        assert_eq!(map.len(), 11);
        assert_eq!(map["hoist-sha256"], "ab".repeat(32));
        assert_eq!(map["hoist-git-commit"], meta.git_commit.clone().unwrap());
        assert_eq!(ReleaseMetadata::from_user_metadata(&map), meta);
    }

    #[test]
    fn absent_fields_are_not_written_and_unknown_keys_ignored() {
        let meta = ReleaseMetadata {
            sha256: Some("00".repeat(32)),
            ..Default::default()
        };
        let mut map = meta.to_user_metadata().unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), vec!["hoist-sha256"]);
        map.insert("other-tool".into(), "x".into());
        map.insert("hoist-version".into(), "".into());
        assert_eq!(ReleaseMetadata::from_user_metadata(&map), meta);
    }

    #[test]
    fn reading_ignores_key_case_and_the_amz_prefix() {
        let map = HashMap::from([
            ("Hoist-Package".to_string(), "hello".to_string()),
            ("x-amz-meta-hoist-version".to_string(), "2.0".to_string()),
        ]);
        let meta = ReleaseMetadata::from_user_metadata(&map);
        assert_eq!(meta.package.as_deref(), Some("hello"));
        assert_eq!(meta.version.as_deref(), Some("2.0"));
    }

    #[test]
    fn rejects_values_s3_cannot_store() {
        let non_ascii = ReleaseMetadata {
            releaser: Some("jürgen@host".into()),
            ..Default::default()
        };
        let err = non_ascii.to_user_metadata().unwrap_err().to_string();
        assert!(
            err.contains("hoist-releaser") && err.contains("ASCII"),
            "{err}"
        );

        let newline = ReleaseMetadata {
            version: Some("1.0\n".into()),
            ..Default::default()
        };
        assert!(newline.to_user_metadata().is_err());

        let too_big = ReleaseMetadata {
            releaser: Some("x".repeat(MAX_USER_METADATA_BYTES)),
            ..Default::default()
        };
        let err = too_big.to_user_metadata().unwrap_err().to_string();
        assert!(err.contains("2048"), "{err}");
    }
}
