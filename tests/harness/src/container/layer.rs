//! Writes files into a host's overlay upper layer before it boots: the NoCloud seed
//! and any files the test places on the "image" (drop-ins, configs).
//!
//! Directories created in the upper layer take the mode and owner of the same
//! directory in the root (overlayfs shows the upper directory's attributes), so a
//! seeded file never changes who may write `/etc` or `/var/lib`.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path};

use super::error::ContainerError;

/// Where cloud-init's NoCloud datasource looks for its seed inside the root.
pub(crate) const NOCLOUD_SEED_DIR: &str = "/var/lib/cloud/seed/nocloud";

/// A file to place into the host before it boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerFile {
    /// Absolute path inside the host.
    pub path: String,
    /// Contents.
    pub contents: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

/// Writes `file` into `upper` (the overlay upper layer over `lower`).
///
/// Errors: a relative path or one with `..` ([`ContainerError::Io`] naming it), or
/// a file system error.
pub(crate) fn write(lower: &Path, upper: &Path, file: &LayerFile) -> Result<(), ContainerError> {
    let rel = relative(&file.path)?;
    let mut dir_rel = std::path::PathBuf::new();
    if let Some(parent) = rel.parent() {
        for component in parent.components() {
            dir_rel.push(component);
            ensure_dir_like(&lower.join(&dir_rel), &upper.join(&dir_rel))?;
        }
    }
    let dest = upper.join(rel);
    fs::write(&dest, &file.contents).map_err(ContainerError::io(format!(
        "cannot write `{}`",
        dest.display()
    )))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(file.mode)).map_err(ContainerError::io(
        format!("cannot chmod `{}`", dest.display()),
    ))
}

/// `path` without its leading `/`, refusing anything that could leave the root.
fn relative(path: &str) -> Result<&Path, ContainerError> {
    let p = Path::new(path);
    let clean = p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !clean {
        return Err(ContainerError::Io {
            what: format!("cannot place `{path}` into a host"),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path must be absolute, without `.` or `..`",
            ),
        });
    }
    Ok(p.strip_prefix("/").unwrap_or(p))
}

/// Creates `upper_dir` (if missing) with the mode and owner of `lower_dir` when that
/// exists, else 0755 root:root.
fn ensure_dir_like(lower_dir: &Path, upper_dir: &Path) -> Result<(), ContainerError> {
    if upper_dir.is_dir() {
        return Ok(());
    }
    fs::create_dir(upper_dir).map_err(ContainerError::io(format!(
        "cannot create `{}`",
        upper_dir.display()
    )))?;
    let (mode, uid, gid) = match fs::metadata(lower_dir) {
        Ok(meta) if meta.is_dir() => (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        _ => (0o755, 0, 0),
    };
    fs::set_permissions(upper_dir, fs::Permissions::from_mode(mode)).map_err(
        ContainerError::io(format!("cannot chmod `{}`", upper_dir.display())),
    )?;
    std::os::unix::fs::chown(upper_dir, Some(uid), Some(gid)).map_err(ContainerError::io(format!(
        "cannot chown `{}`",
        upper_dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_directory_attributes_from_the_lower_layer() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("var/lib")).unwrap();
        fs::set_permissions(lower.path().join("var"), fs::Permissions::from_mode(0o711)).unwrap();
        let file = LayerFile {
            path: "/var/lib/cloud/seed/nocloud/user-data".into(),
            contents: b"#cloud-config\n".to_vec(),
            mode: 0o600,
        };
        write(lower.path(), upper.path(), &file).unwrap();
        let written = upper.path().join("var/lib/cloud/seed/nocloud/user-data");
        assert_eq!(fs::read(&written).unwrap(), b"#cloud-config\n");
        assert_eq!(fs::metadata(&written).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(
            fs::metadata(upper.path().join("var")).unwrap().mode() & 0o7777,
            0o711
        );
        assert_eq!(
            fs::metadata(upper.path().join("var/lib/cloud"))
                .unwrap()
                .mode()
                & 0o7777,
            0o755
        );
    }

    #[test]
    fn refuses_paths_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["etc/passwd", "/etc/../../x", "/etc/.."] {
            let file = LayerFile {
                path: bad.into(),
                contents: vec![],
                mode: 0o644,
            };
            assert!(write(dir.path(), dir.path(), &file).is_err(), "{bad}");
        }
    }
}
