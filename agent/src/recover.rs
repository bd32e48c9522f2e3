//! Rebuilding a watch's state when the state file is missing or corrupt: what dpkg says is
//! installed, matched with the cached packages. The S3 identity (VersionId, ETag) of that
//! package is not known afterwards; the next poll downloads the current object once and,
//! if its SHA-256 equals the installed package's, records it without reinstalling.

use std::path::Path;

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::cache;
use crate::dpkg::Dpkg;
use crate::state::{Release, WatchState, now_rfc3339};

/// Rebuilds the state of one watch from `dpkg-query` and the `.deb` files in `cache_dir`.
///
/// `installed` is the cached package whose name and version match what dpkg reports as
/// installed; `previous_good` is the newest other cached package of the same name.
/// Bad-version marks cannot be recovered.
pub async fn rebuild_watch(
    dpkg: &Dpkg,
    package: &str,
    cache_dir: &Path,
) -> anyhow::Result<WatchState> {
    let mut state = WatchState::new(package);
    let installed_version = match dpkg.query(package).await? {
        Some(status) if status.is_installed() => status.version,
        _ => return Ok(state),
    };
    for deb in cache::list(cache_dir) {
        let info = match hoist_deb::inspect(&deb) {
            Ok(info) if info.package == package => info,
            Ok(_) => continue,
            Err(err) => {
                tracing::warn!(deb = %deb.display(), "ignoring unreadable cached package: {err}");
                continue;
            }
        };
        let release = || -> anyhow::Result<Release> {
            let (md5, sha256) = digest_file(&deb)?;
            Ok(Release {
                version_id: None,
                etag: None,
                md5,
                sha256,
                version: info.version.clone(),
                deb: deb.clone(),
                installed_at: now_rfc3339(),
                // Rebuilt from the cache: the signed time is unknown, so the next signed
                // release is accepted whatever its time.
                signed_time: None,
                effective_time: None,
            })
        };
        if state.installed.is_none() && info.version == installed_version {
            state.installed = Some(release()?);
        } else if state.previous_good.is_none() && info.version != installed_version {
            state.previous_good = Some(release()?);
        }
        if state.installed.is_some() && state.previous_good.is_some() {
            break;
        }
    }
    if state.installed.is_none() {
        tracing::warn!(
            package,
            version = %installed_version,
            "dpkg reports {package} {installed_version} installed but no cached package matches; it will be replaced by the current release"
        );
        state.previous_good = None;
    }
    Ok(state)
}

/// MD5 and SHA-256 (lowercase hex) of a file, read in chunks.
pub fn digest_file(path: &Path) -> std::io::Result<(String, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut md5 = Md5::new();
    let mut sha = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        md5.update(&buffer[..n]);
        sha.update(&buffer[..n]);
    }
    Ok((hex::encode(md5.finalize()), hex::encode(sha.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_file_matches_known_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world").unwrap();
        let (md5, sha) = digest_file(&path).unwrap();
        assert_eq!(md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(
            sha,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
