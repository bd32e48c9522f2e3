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
    fn quoting_is_idempotent() {
        assert_eq!(quoted_etag("abc"), "\"abc\"");
        assert_eq!(quoted_etag("\"abc\""), "\"abc\"");
        assert_eq!(quoted_etag(" W/\"abc\" "), "W/\"abc\"");
    }
}
