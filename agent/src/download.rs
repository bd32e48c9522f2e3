//! Streaming a package body to a temporary file while computing its digests (MD5,
//! SHA-256) and, when a signature is expected, the minisign pre-hash — in one pass, with a
//! fixed-size buffer, so memory does not grow with the package size. [`rehash`] computes
//! the same for a package already in the cache, so it can be installed without a download.
//!
//! Temporary files live in `STATE_DIR/partial/`; they are deleted when the
//! [`Downloaded`] value (or the future, on cancellation) is dropped — also when writing
//! failed (e.g. the disk is full) — and [`clean_partial_dir`] removes leftovers of a
//! killed agent at start.

use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::fsutil;

const BUFFER_SIZE: usize = 64 * 1024;

/// Where the verified bytes are.
#[derive(Debug)]
enum Backing {
    /// A fresh download in the partial directory (deleted on drop).
    Temp(tempfile::NamedTempFile),
    /// A package already in the cache (never deleted by this value).
    Cached(PathBuf),
}

/// A fully written, fsynced file (a download, or a cached package read again) and what
/// was computed while reading it.
#[derive(Debug)]
pub struct Downloaded {
    file: Backing,
    /// Bytes written.
    pub size: u64,
    /// MD5 of the body.
    pub md5: [u8; 16],
    /// SHA-256 of the body, lowercase hex.
    pub sha256: String,
    /// Outcome of the minisign check; `None` when no key and signature were given.
    pub signature: Option<Result<(), minisign_verify::Error>>,
}

/// Why a download did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Reading the body failed (connection reset, timeout…): transient.
    #[error("reading the object body failed after {received} bytes: {source}")]
    Body {
        /// Bytes received before the failure.
        received: u64,
        /// The read error.
        source: std::io::Error,
    },
    /// The local disk failed (full, read-only…).
    #[error(
        "cannot write the download to `{dir}`: {source}; check free space and permissions of the state directory"
    )]
    Disk {
        /// The partial directory.
        dir: PathBuf,
        /// The write error.
        source: std::io::Error,
    },
}

impl DownloadError {
    /// True when writing failed because the disk (or the quota) is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, DownloadError::Disk { source, .. } if crate::diskspace::is_disk_full(source))
    }
}

impl Downloaded {
    /// Path of the file.
    pub fn path(&self) -> &Path {
        match &self.file {
            Backing::Temp(file) => file.path(),
            Backing::Cached(path) => path,
        }
    }

    /// True when the bytes come from the cache rather than a download.
    pub fn is_cached(&self) -> bool {
        matches!(self.file, Backing::Cached(_))
    }

    /// Moves the file to `dest` (same filesystem: a rename) and fsyncs `dest`'s directory.
    /// A cached package already at `dest` stays; one elsewhere is hard-linked there.
    pub fn persist(self, dest: &Path) -> std::io::Result<()> {
        match self.file {
            Backing::Temp(file) => {
                file.persist(dest).map_err(|err| err.error)?;
            }
            Backing::Cached(path) if path == dest => {}
            Backing::Cached(path) => match std::fs::hard_link(&path, dest) {
                Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => return Err(err),
                _ => {}
            },
        }
        fsutil::sync_dir(fsutil::parent_dir(dest))
    }
}

/// The digests (and signature check) computed over a stream of chunks.
struct Digester<'a> {
    md5: Md5,
    sha256: Sha256,
    // A legacy (non-prehashed) signature cannot be streamed; that is reported as its result.
    verifier: Option<Result<minisign_verify::StreamVerifier<'a>, minisign_verify::Error>>,
    size: u64,
}

impl<'a> Digester<'a> {
    fn new(
        signature: Option<(
            &'a minisign_verify::PublicKey,
            &'a minisign_verify::Signature,
        )>,
    ) -> Self {
        Self {
            md5: Md5::new(),
            sha256: Sha256::new(),
            verifier: signature.map(|(key, sig)| key.verify_stream(sig)),
            size: 0,
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        self.md5.update(chunk);
        self.sha256.update(chunk);
        if let Some(Ok(v)) = self.verifier.as_mut() {
            v.update(chunk);
        }
        self.size += chunk.len() as u64;
    }

    fn finish(self, file: Backing) -> Downloaded {
        Downloaded {
            file,
            size: self.size,
            md5: self.md5.finalize().into(),
            sha256: hex::encode(self.sha256.finalize()),
            signature: self.verifier.map(|v| v.and_then(|mut v| v.finalize())),
        }
    }
}

/// Copies `body` into a new temporary file in `partial_dir`, hashing as it goes. When
/// `signature` is given, the minisign stream verifier runs over the same bytes. On any
/// error the temporary file is removed.
pub async fn download<R: AsyncRead + Unpin>(
    mut body: R,
    partial_dir: &Path,
    signature: Option<(&minisign_verify::PublicKey, &minisign_verify::Signature)>,
) -> Result<Downloaded, DownloadError> {
    let disk = |source| DownloadError::Disk {
        dir: partial_dir.to_owned(),
        source,
    };
    let temp = tempfile::Builder::new()
        .prefix("download-")
        .suffix(".partial")
        .tempfile_in(partial_dir)
        .map_err(disk)?;
    let mut out = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(disk)?);

    let mut digester = Digester::new(signature);
    let mut buffer = vec![0u8; BUFFER_SIZE];
    loop {
        let n = body
            .read(&mut buffer)
            .await
            .map_err(|source| DownloadError::Body {
                received: digester.size,
                source,
            })?;
        if n == 0 {
            break;
        }
        let chunk = &buffer[..n];
        digester.update(chunk);
        out.write_all(chunk).await.map_err(disk)?;
    }
    out.flush().await.map_err(disk)?;
    out.sync_all().await.map_err(disk)?;
    drop(out);
    Ok(digester.finish(Backing::Temp(temp)))
}

/// Reads a cached package again and computes what [`download`] computes, so the same
/// checks decide whether it may be installed. The file stays where it is.
pub async fn rehash(
    path: &Path,
    signature: Option<(&minisign_verify::PublicKey, &minisign_verify::Signature)>,
) -> std::io::Result<Downloaded> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut digester = Digester::new(signature);
    let mut buffer = vec![0u8; BUFFER_SIZE];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        digester.update(&buffer[..n]);
    }
    Ok(digester.finish(Backing::Cached(path.to_owned())))
}

/// Creates `partial_dir` and removes anything a previous (killed) agent left in it.
pub fn clean_partial_dir(partial_dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(partial_dir)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(partial_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn digests_match_known_values_and_file_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let body: &[u8] = b"hello world";
        let done = download(body, dir.path(), None).await.unwrap();
        assert_eq!(done.size, 11);
        assert_eq!(hex::encode(done.md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(
            done.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(std::fs::read(done.path()).unwrap(), body);
        assert!(done.signature.is_none());
        let dest = dir.path().join("final.deb");
        done.persist(&dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), body);
    }

    #[tokio::test]
    async fn large_body_streams_through_small_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..(3 * BUFFER_SIZE + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let done = download(body.as_slice(), dir.path(), None).await.unwrap();
        assert_eq!(done.size, body.len() as u64);
        assert_eq!(done.sha256, hex::encode(Sha256::digest(&body)));
    }

    #[tokio::test]
    async fn dropped_download_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let done = download(&b"abc"[..], dir.path(), None).await.unwrap();
        let path = done.path().to_owned();
        assert!(path.exists());
        drop(done);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn rehash_of_a_cached_file_matches_the_download_and_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let done = download(&b"hello world"[..], dir.path(), None)
            .await
            .unwrap();
        let cached = dir.path().join("hello.deb");
        done.persist(&cached).unwrap();
        let again = rehash(&cached, None).await.unwrap();
        assert!(again.is_cached());
        assert_eq!(again.size, 11);
        assert_eq!(
            again.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(hex::encode(again.md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        again.persist(&cached).unwrap();
        assert_eq!(std::fs::read(&cached).unwrap(), b"hello world");
        drop(rehash(&cached, None).await.unwrap());
        assert!(cached.exists(), "dropping a cached copy keeps the file");
    }

    #[test]
    fn clean_partial_dir_removes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("partial");
        assert_eq!(clean_partial_dir(&partial).unwrap(), 0);
        std::fs::write(partial.join("download-x.partial"), b"half").unwrap();
        assert_eq!(clean_partial_dir(&partial).unwrap(), 1);
        assert_eq!(std::fs::read_dir(&partial).unwrap().count(), 0);
    }
}
