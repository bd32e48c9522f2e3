//! ETags: change detection, and an MD5 only for plain single-part uploads.

/// The MD5 an ETag stands for, when it stands for one.
///
/// `Some` only for a plain single-part ETag: 32 hex digits, quoted as S3 returns it
/// (`"9e107d9d372bb6826bd81d3542a419d6"`) or bare. `None` for multipart ETags
/// (`"<hex>-N"`), weak ETags (`W/"…"`) and anything that is not 32 hex digits — e.g.
/// SSE-KMS/SSE-C objects, whose ETag is not an MD5 of the body.
pub fn etag_md5(etag: &str) -> Option<[u8; 16]> {
    let bare = etag.trim();
    let bare = bare
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(bare);
    if bare.len() != 32 {
        return None;
    }
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(bare, &mut md5).ok()?;
    Some(md5)
}

/// [`etag_md5`] for an object stored with the given server-side encryption: `None` for
/// SSE-KMS (`aws:kms`, `aws:kms:dsse`) and SSE-C objects (`customer_key`), whose ETag is
/// not the MD5 of the body even when it is 32 hex digits. SSE-S3 (`AES256`) and
/// unencrypted objects keep the plain rule.
pub fn etag_md5_given_encryption(
    etag: &str,
    encryption: Option<&str>,
    customer_key: bool,
) -> Option<[u8; 16]> {
    let kms = encryption.is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("aws:kms"));
    if kms || customer_key {
        return None;
    }
    etag_md5(etag)
}

/// The ETag quoted the way S3 returns it and `If-None-Match`/`If-Match` expect it
/// (some servers, moto among them, only match the quoted form). Already quoted input
/// is returned unchanged.
pub fn quoted_etag(etag: &str) -> String {
    let etag = etag.trim();
    if etag.starts_with('"') || etag.starts_with("W/\"") {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_part_etag_is_an_md5() {
        let md5 = etag_md5("\"9e107d9d372bb6826bd81d3542a419d6\"").unwrap();
        assert_eq!(hex::encode(md5), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(etag_md5("9E107D9D372BB6826BD81D3542A419D6"), Some(md5));
    }

    #[test]
    fn multipart_weak_and_malformed_etags_are_not() {
        assert_eq!(etag_md5("\"9e107d9d372bb6826bd81d3542a419d6-2\""), None);
        assert_eq!(etag_md5("W/\"9e107d9d372bb6826bd81d3542a419d6\""), None);
        assert_eq!(etag_md5("\"9e107d9d372bb6826bd81d3542a419dz\""), None);
        assert_eq!(etag_md5("\"abc\""), None);
        assert_eq!(etag_md5(""), None);
        assert_eq!(etag_md5("\""), None);
    }

    #[test]
    fn kms_and_customer_key_etags_are_not_md5s() {
        let etag = "\"9e107d9d372bb6826bd81d3542a419d6\"";
        let md5 = etag_md5(etag);
        assert!(md5.is_some());
        assert_eq!(etag_md5_given_encryption(etag, None, false), md5);
        assert_eq!(etag_md5_given_encryption(etag, Some("AES256"), false), md5);
        assert_eq!(
            etag_md5_given_encryption(etag, Some("aws:kms"), false),
            None
        );
        assert_eq!(
            etag_md5_given_encryption(etag, Some("aws:kms:dsse"), false),
            None
        );
        assert_eq!(etag_md5_given_encryption(etag, Some("AES256"), true), None);
        assert_eq!(etag_md5_given_encryption(etag, None, true), None);
        assert_eq!(
            etag_md5_given_encryption("\"9e107d9d372bb6826bd81d3542a419d6-3\"", None, false),
            None
        );
    }

    #[test]
    fn quoting_is_idempotent() {
        assert_eq!(quoted_etag("abc"), "\"abc\"");
        assert_eq!(quoted_etag("\"abc\""), "\"abc\"");
        assert_eq!(quoted_etag(" W/\"abc\" "), "W/\"abc\"");
    }
}
