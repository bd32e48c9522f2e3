//! MD5 and SHA-256 of a file in one streaming pass.

use std::io::Read;
use std::path::Path;

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Digests of a whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigests {
    /// Size in bytes.
    pub size: u64,
    /// MD5 (what a single-part ETag and Content-MD5 carry).
    pub md5: [u8; 16],
    /// SHA-256 (what `hoist-sha256` carries).
    pub sha256: [u8; 32],
}

impl FileDigests {
    /// MD5 as lowercase hex.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }

    /// SHA-256 as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Reads the file once, on a blocking thread, computing size, MD5 and SHA-256.
pub async fn file_digests(path: &Path) -> std::io::Result<FileDigests> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || file_digests_blocking(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// Blocking variant of [`file_digests`].
pub fn file_digests_blocking(path: &Path) -> std::io::Result<FileDigests> {
    let mut file = std::fs::File::open(path)?;
    let mut md5 = Md5::new();
    let mut sha256 = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        md5.update(&buf[..n]);
        sha256.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileDigests {
        size,
        md5: md5.finalize().into(),
        sha256: sha256.finalize().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"The quick brown fox jumps over the lazy dog").unwrap();
        let d = file_digests_blocking(&path).unwrap();
        assert_eq!(d.size, 43);
        assert_eq!(d.md5_hex(), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(
            d.sha256_hex(),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        assert!(file_digests_blocking(Path::new("/nonexistent/hoist-test")).is_err());
    }
}
