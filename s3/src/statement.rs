//! Signed statements: what a release signature says, and where it travels.
//!
//! A signature over the `.deb` bytes cannot be checked before the bytes are downloaded,
//! and says nothing about *when* or *where* a release was published, so a copy of an old
//! signed version onto the key (`CopyObject ?versionId=`) would look valid. hoist
//! therefore signs a small one-line *statement* instead, and carries it and its signature
//! in the object's metadata, where the agent reads them from the HEAD:
//!
//! - release ([`ReleaseStatement`], metadata `hoist-statement`), written by `hoist release`:
//!   `hoist package=P version=V sha256=H bucket=B key=K time=T`
//! - rollback ([`RollbackStatement`], metadata `hoist-rollback`), written by `hoist rollback`
//!   onto its copy of an older version:
//!   `hoist-rollback package=P version=V sha256=H bucket=B key=K source=VERSIONID time=T`
//!
//! `T` is RFC 3339 UTC with milliseconds (`2026-12-02T12:14:04.123Z`), the time the
//! command ran. `bucket`, `key` and `source` are percent-encoded (everything but
//! `A-Za-z0-9-._~/`), so every statement is one line of printable ASCII without spaces
//! inside values. Parsing is strict: the fields must come in this order and the text
//! must be exactly what [`ReleaseStatement::render`] writes, so one statement has one text.
//!
//! The signature is minisign's (ed25519, prehashed) with the statement as the signed data
//! *and* as the trusted comment, so `minisign -V` prints it. In metadata it is stored
//! compactly ([`compact_signature`]): the signature line and the global signature line,
//! joined by `.` (`hoist-statement-sig`, `hoist-rollback-sig`); [`minisig_text`] rebuilds
//! the `.minisig` text from the statement and that value. Both statements with their
//! signatures take about 800 bytes of S3's 2 KB user-metadata budget.
//!
//! The SHA-256 in the statement decides what bytes may be installed: the agent compares
//! the download's digest with it.

use std::time::SystemTime;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// First word of a release statement (the same word older hoist versions used, so their
/// agents still read package, version and sha256 from a `.deb` signature's comment).
pub const RELEASE_TAG: &str = "hoist";
/// First word of a rollback statement.
pub const ROLLBACK_TAG: &str = "hoist-rollback";

/// Characters left as they are in percent-encoded fields (RFC 3986 unreserved, and `/`).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Errors reading a statement or its stored signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The text is not a statement in hoist's canonical form.
    #[error("{text:?} is not a hoist {kind} statement ({problem})")]
    Malformed {
        /// `release` or `rollback`.
        kind: &'static str,
        /// The text read.
        text: String,
        /// What is wrong.
        problem: String,
    },
    /// The stored signature is not `SIGNATURE.GLOBAL_SIGNATURE` (two base64 lines).
    #[error("the stored statement signature is not two base64 minisign lines joined by `.`")]
    BadSignature,
    /// A value cannot go into a statement.
    #[error("{field} {value:?} cannot be signed: {problem}")]
    Unsignable {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why.
        problem: &'static str,
    },
}

/// What `hoist release` signs: this package, version and content, published at this
/// bucket and key, at this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatement {
    /// Debian package name.
    pub package: String,
    /// Debian package version.
    pub version: String,
    /// SHA-256 of the `.deb`, lowercase hex.
    pub sha256: String,
    /// The bucket it was released to.
    pub bucket: String,
    /// The key it was released to.
    pub key: String,
    /// When `hoist release` ran (millisecond precision).
    pub time: SystemTime,
}

/// What `hoist rollback` signs: make the release with this content, copied from version
/// `source` of bucket/key, current again at this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackStatement {
    /// Debian package name.
    pub package: String,
    /// Debian package version.
    pub version: String,
    /// SHA-256 of the `.deb`, lowercase hex.
    pub sha256: String,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The VersionId whose bytes and release statement were copied.
    pub source: String,
    /// When `hoist rollback` ran (millisecond precision).
    pub time: SystemTime,
}

/// Formats a statement time: RFC 3339 UTC with milliseconds.
pub fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// Reads a time written by [`format_time`] (any RFC 3339 UTC time is accepted).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(text).ok()
}

/// `time` cut to whole milliseconds, as statements carry it.
pub fn truncate_to_millis(time: SystemTime) -> SystemTime {
    parse_time(&format_time(time)).unwrap_or(time)
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, ENCODE).to_string()
}

fn check_word(field: &'static str, value: &str) -> Result<(), StatementError> {
    if value.is_empty() || value.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(StatementError::Unsignable {
            field,
            value: value.to_string(),
            problem: "it must be non-empty printable ASCII without spaces",
        });
    }
    Ok(())
}

fn check_sha(sha256: &str) -> Result<(), StatementError> {
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(StatementError::Unsignable {
            field: "sha256",
            value: sha256.to_string(),
            problem: "it must be 64 lowercase hex digits",
        });
    }
    Ok(())
}

/// Splits `text` into the values of `names` (in this order) after `tag`.
fn fields(
    kind: &'static str,
    text: &str,
    tag: &str,
    names: &[&str],
) -> Result<Vec<String>, StatementError> {
    let malformed = |problem: String| StatementError::Malformed {
        kind,
        text: text.to_string(),
        problem,
    };
    let mut words = text.split(' ');
    if words.next() != Some(tag) {
        return Err(malformed(format!("it does not start with `{tag} `")));
    }
    let mut values = Vec::with_capacity(names.len());
    for name in names {
        let word = words
            .next()
            .ok_or_else(|| malformed(format!("`{name}=` is missing")))?;
        let value = word
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .ok_or_else(|| malformed(format!("expected `{name}=…`, found `{word}`")))?;
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| malformed(format!("`{name}` is not percent-encoded UTF-8")))?;
        values.push(value.into_owned());
    }
    if let Some(extra) = words.next() {
        return Err(malformed(format!("unexpected `{extra}` at the end")));
    }
    Ok(values)
}

fn time_field(kind: &'static str, text: &str, value: &str) -> Result<SystemTime, StatementError> {
    parse_time(value).ok_or_else(|| StatementError::Malformed {
        kind,
        text: text.to_string(),
        problem: format!("`time={value}` is not an RFC 3339 UTC time"),
    })
}

/// Checks that `text` is exactly the canonical rendering.
fn canonical(kind: &'static str, text: &str, rendered: &str) -> Result<(), StatementError> {
    if rendered != text {
        return Err(StatementError::Malformed {
            kind,
            text: text.to_string(),
            problem: format!("not in canonical form (expected {rendered:?})"),
        });
    }
    Ok(())
}

impl ReleaseStatement {
    /// Checks that every field can be signed (package and version without spaces,
    /// sha256 lowercase hex, bucket and key non-empty).
    pub fn validate(&self) -> Result<(), StatementError> {
        check_word("package", &self.package)?;
        check_word("version", &self.version)?;
        check_sha(&self.sha256)?;
        check_word("bucket", &encode(&self.bucket))?;
        check_word("key", &encode(&self.key))
    }

    /// The canonical one-line text (see the module documentation).
    pub fn render(&self) -> String {
        format!(
            "{RELEASE_TAG} package={} version={} sha256={} bucket={} key={} time={}",
            self.package,
            self.version,
            self.sha256,
            encode(&self.bucket),
            encode(&self.key),
            format_time(self.time)
        )
    }

    /// Parses a canonical release statement.
    pub fn parse(text: &str) -> Result<ReleaseStatement, StatementError> {
        let kind = "release";
        let v = fields(
            kind,
            text,
            RELEASE_TAG,
            &["package", "version", "sha256", "bucket", "key", "time"],
        )?;
        let statement = ReleaseStatement {
            package: v[0].clone(),
            version: v[1].clone(),
            sha256: v[2].clone(),
            bucket: v[3].clone(),
            key: v[4].clone(),
            time: time_field(kind, text, &v[5])?,
        };
        statement
            .validate()
            .map_err(|e| StatementError::Malformed {
                kind,
                text: text.to_string(),
                problem: e.to_string(),
            })?;
        canonical(kind, text, &statement.render())?;
        Ok(statement)
    }
}

impl RollbackStatement {
    /// Checks that every field can be signed.
    pub fn validate(&self) -> Result<(), StatementError> {
        check_word("package", &self.package)?;
        check_word("version", &self.version)?;
        check_sha(&self.sha256)?;
        check_word("bucket", &encode(&self.bucket))?;
        check_word("key", &encode(&self.key))?;
        check_word("source", &encode(&self.source))
    }

    /// The canonical one-line text (see the module documentation).
    pub fn render(&self) -> String {
        format!(
            "{ROLLBACK_TAG} package={} version={} sha256={} bucket={} key={} source={} time={}",
            self.package,
            self.version,
            self.sha256,
            encode(&self.bucket),
            encode(&self.key),
            encode(&self.source),
            format_time(self.time)
        )
    }

    /// Parses a canonical rollback statement.
    pub fn parse(text: &str) -> Result<RollbackStatement, StatementError> {
        let kind = "rollback";
        let v = fields(
            kind,
            text,
            ROLLBACK_TAG,
            &[
                "package", "version", "sha256", "bucket", "key", "source", "time",
            ],
        )?;
        let statement = RollbackStatement {
            package: v[0].clone(),
            version: v[1].clone(),
            sha256: v[2].clone(),
            bucket: v[3].clone(),
            key: v[4].clone(),
            source: v[5].clone(),
            time: time_field(kind, text, &v[6])?,
        };
        statement
            .validate()
            .map_err(|e| StatementError::Malformed {
                kind,
                text: text.to_string(),
                problem: e.to_string(),
            })?;
        canonical(kind, text, &statement.render())?;
        Ok(statement)
    }
}

/// The metadata form of a minisign signature of `statement`: its signature line and
/// global signature line joined by `.`. Errors when `minisig` (the text of a `.minisig`
/// file) does not have four lines or its trusted comment is not `statement`.
pub fn compact_signature(minisig: &str, statement: &str) -> Result<String, StatementError> {
    let lines: Vec<&str> = minisig.lines().collect();
    let [_, signature, trusted, global] = lines.as_slice() else {
        return Err(StatementError::BadSignature);
    };
    if trusted.strip_prefix("trusted comment: ") != Some(statement) {
        return Err(StatementError::BadSignature);
    }
    let value = format!("{}.{}", signature.trim(), global.trim());
    split_signature(&value)?;
    Ok(value)
}

fn split_signature(value: &str) -> Result<(&str, &str), StatementError> {
    let is_b64 = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    };
    match value.trim().split_once('.') {
        Some((sig, global)) if is_b64(sig) && is_b64(global) => Ok((sig, global)),
        _ => Err(StatementError::BadSignature),
    }
}

/// Rebuilds the `.minisig` text of a statement from the metadata value written by
/// [`compact_signature`]; `minisign -Vm FILE -p KEY.pub` (FILE holding the statement)
/// and `minisign_verify::Signature::decode` read it.
pub fn minisig_text(statement: &str, compact: &str) -> Result<String, StatementError> {
    let (signature, global) = split_signature(compact)?;
    Ok(format!(
        "untrusted comment: hoist signed statement\n{signature}\ntrusted comment: {statement}\n{global}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn release() -> ReleaseStatement {
        ReleaseStatement {
            package: "hello".into(),
            version: "1:1.4.0~rc1-2".into(),
            sha256: "ab".repeat(32),
            bucket: "releases".into(),
            key: "svc/hello world.deb".into(),
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_676_444_123),
        }
    }

    #[test]
    fn release_statement_round_trips_in_canonical_form() {
        let s = release();
        let text = s.render();
        assert_eq!(
            text,
            format!(
                "hoist package=hello version=1:1.4.0~rc1-2 sha256={} bucket=releases key=svc/hello%20world.deb time=2025-12-02T11:54:04.123Z",
                "ab".repeat(32)
            )
        );
        assert_eq!(ReleaseStatement::parse(&text).unwrap(), s);
        // Any other spelling of the same facts is refused.
        for other in [
            text.replace(
                "time=2025-12-02T11:54:04.123Z",
                "time=2025-12-02T11:54:04.1230Z",
            ),
            text.replace(" bucket", "  bucket"),
            format!("{text} extra=1"),
            text.replace("sha256=ab", "sha256=AB"),
            text.replace("package=hello version", "version"),
        ] {
            assert!(ReleaseStatement::parse(&other).is_err(), "{other}");
        }
        // The statement of an older hoist (no bucket, key, time) is not a statement.
        let old = format!("hoist package=hello version=1.0 sha256={}", "ab".repeat(32));
        assert!(ReleaseStatement::parse(&old).is_err());
    }

    #[test]
    fn rollback_statement_round_trips() {
        let r = RollbackStatement {
            package: "hello".into(),
            version: "1.0".into(),
            sha256: "01".repeat(32),
            bucket: "b".into(),
            key: "k.deb".into(),
            source: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".into(),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        };
        let text = r.render();
        assert!(text.starts_with("hoist-rollback package=hello"), "{text}");
        assert!(
            text.contains("source=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY"),
            "{text}"
        );
        assert_eq!(RollbackStatement::parse(&text).unwrap(), r);
        assert!(ReleaseStatement::parse(&text).is_err());
        assert!(RollbackStatement::parse(&release().render()).is_err());
    }

    #[test]
    fn unsignable_values_are_refused() {
        let mut s = release();
        s.version = "1 0".into();
        assert!(s.validate().is_err());
        let mut s = release();
        s.sha256 = "xyz".into();
        assert!(s.validate().is_err());
    }

    #[test]
    fn compact_signature_round_trips() {
        let statement = release().render();
        let minisig =
            format!("untrusted comment: x\nRUQsig+/=\ntrusted comment: {statement}\nZ2xvYmFs\n");
        let compact = compact_signature(&minisig, &statement).unwrap();
        assert_eq!(compact, "RUQsig+/=.Z2xvYmFs");
        let rebuilt = minisig_text(&statement, &compact).unwrap();
        assert_eq!(rebuilt.lines().nth(1), Some("RUQsig+/="));
        assert_eq!(
            rebuilt.lines().nth(2),
            Some(format!("trusted comment: {statement}").as_str())
        );
        assert!(compact_signature(&minisig, "other").is_err());
        assert!(minisig_text(&statement, "no-dot").is_err());
        assert!(minisig_text(&statement, "a b.c").is_err());
    }

    #[test]
    fn times_have_millisecond_precision() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let cut = truncate_to_millis(t);
        assert_eq!(format_time(cut), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_time(&format_time(cut)), Some(cut));
    }
}
