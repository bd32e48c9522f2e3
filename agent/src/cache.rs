//! The package cache: `STATE_DIR/cache/WATCH/PACKAGE_VERSION_ARCH.SHA12.deb`, holding the
//! installed package and the previous good one (what a rollback reinstalls), plus a few
//! older ones. [`prune`] keeps the referenced files and the newest others up to a limit.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Directory layout under the state directory.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// The state directory itself.
    pub state_dir: PathBuf,
}

impl Dirs {
    /// Layout for `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            state_dir: state_dir.to_owned(),
        }
    }

    /// Where partial downloads go (emptied at start).
    pub fn partial(&self) -> PathBuf {
        self.state_dir.join("partial")
    }

    /// Cached packages of one watch.
    pub fn cache(&self, watch: &str) -> PathBuf {
        self.state_dir.join("cache").join(watch)
    }
}

/// File name of a cached package. Version and architecture are sanitised (a Debian
/// version may contain `:`, which dpkg file names replace; `/` never appears).
pub fn file_name(package: &str, version: &str, arch: &str, sha256: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+-.~_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let short: String = sha256.chars().take(12).collect();
    format!(
        "{}_{}_{}.{}.deb",
        clean(package),
        clean(version),
        clean(arch),
        clean(&short)
    )
}

/// Deletes cached `.deb` files in `dir` beyond `keep`, oldest (by mtime) first, never
/// deleting a path in `referenced`. Returns the deleted paths.
pub fn prune(dir: &Path, keep: usize, referenced: &[&Path]) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "deb") && entry.file_type()?.is_file() {
            let mtime = entry.metadata()?.modified()?;
            files.push((mtime, path));
        }
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0)); // newest first
    let mut kept = files
        .iter()
        .filter(|(_, p)| referenced.contains(&p.as_path()))
        .count();
    let mut deleted = Vec::new();
    for (_, path) in files {
        if referenced.contains(&path.as_path()) {
            continue;
        }
        if kept < keep {
            kept += 1;
            continue;
        }
        std::fs::remove_file(&path)?;
        deleted.push(path);
    }
    Ok(deleted)
}

/// Cached `.deb` files in `dir` whose name carries the first 12 digits of `sha256` (see
/// [`file_name`]): candidates only, the caller re-hashes them before any use.
pub fn find_by_sha256(dir: &Path, sha256: &str) -> Vec<PathBuf> {
    let short: String = sha256.to_ascii_lowercase().chars().take(12).collect();
    if short.len() < 12 {
        return Vec::new();
    }
    let suffix = format!(".{short}.deb");
    list(dir)
        .into_iter()
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&suffix))
        })
        .filter(|path| path.is_file())
        .collect()
}

/// Cached `.deb` files of one watch, newest first.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "deb"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            file_name("hello", "1:1.2.3-1", "amd64", "abcdef0123456789"),
            "hello_1_1.2.3-1_amd64.abcdef012345.deb"
        );
        assert_eq!(file_name("x", "../..", "a/b", "zz"), "x_.._.._a_b.zz.deb");
    }

    #[test]
    fn cached_packages_are_found_by_their_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "abcdef0123456789".repeat(4);
        let name = file_name("hello", "1.0", "amd64", &sha);
        std::fs::write(dir.path().join(&name), b"x").unwrap();
        std::fs::write(
            dir.path()
                .join(file_name("hello", "2.0", "amd64", &"1".repeat(64))),
            b"y",
        )
        .unwrap();
        assert_eq!(
            find_by_sha256(dir.path(), &sha),
            vec![dir.path().join(name)]
        );
        assert!(find_by_sha256(dir.path(), &"2".repeat(64)).is_empty());
        assert!(find_by_sha256(dir.path(), "").is_empty());
    }

    #[test]
    fn prune_keeps_referenced_and_newest() {
        let dir = tempfile::tempdir().unwrap();
        let base = SystemTime::now() - Duration::from_secs(1000);
        let mut paths = Vec::new();
        for i in 0..5u64 {
            let path = dir.path().join(format!("p{i}.deb"));
            let file = std::fs::File::create(&path).unwrap();
            file.set_modified(base + Duration::from_secs(i * 10))
                .unwrap();
            paths.push(path);
        }
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        // p0 (oldest) is referenced, so it stays; keep 3 → p0 + the two newest others.
        let deleted = prune(dir.path(), 3, &[paths[0].as_path()]).unwrap();
        assert_eq!(deleted, vec![paths[2].clone(), paths[1].clone()]);
        assert_eq!(
            list(dir.path()),
            vec![paths[4].clone(), paths[3].clone(), paths[0].clone()]
        );
        assert!(dir.path().join("notes.txt").exists());
    }
}
