//! The cached Debian 12 root filesystem every container host boots from.
//!
//! It is one more [`RootRecipe`] of [`crate::sandbox`]'s root builder (built once per
//! machine with debootstrap under `$HOIST_CACHE`, in a temporary directory renamed
//! into place, under an exclusive lock, rebuilt when the recipe changes). What makes
//! it a bootable host rather than a dpkg sandbox: systemd, dbus and cloud-init, and
//! what cloud-init needs in a container (a generated locale, `python3-cffi-backend`,
//! the NoCloud-only datasource list, no network configuration). The root is only
//! ever used as the read-only lower layer of an overlay.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sandbox::{RootRecipe, cached_root};

use super::error::ContainerError;

/// Packages on top of debootstrap's minbase: what a Debian 12 cloud image has that
/// the tests rely on (systemd as PID 1, cloud-init, `/bin/kill` from procps for
/// `ExecReload`, curl for the bootstrap download).
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "procps",
    "locales",
    "cloud-init",
    "python3-cffi-backend",
    "curl",
    "ca-certificates",
];

/// The recipe of the host root. Rename it (the `-vN` suffix) when [`customize`]
/// changes, so cached roots are rebuilt.
pub const RECIPE: RootRecipe = RootRecipe {
    name: "nspawn-bookworm-v1",
    suite: "bookworm",
    include: PACKAGES,
    customize: Some(customize),
};

/// cloud-init settings for a container: only the NoCloud seed (no probing of cloud
/// metadata services), and no network configuration (the container shares the
/// machine's network).
const CLOUD_CFG: &str = "# Written by hoist's test harness.\n\
network: {config: disabled}\n\
datasource_list: [ NoCloud, None ]\n";

/// The locale cloud-init's locale module needs to exist.
const LOCALE: &str = "en_US.UTF-8";

/// A complete, cached root filesystem (read-only by convention).
#[derive(Debug, Clone)]
pub struct ContainerRoot {
    path: PathBuf,
}

impl ContainerRoot {
    /// The cached root, built first when this machine has none yet (about a minute;
    /// concurrent callers wait for the same build).
    ///
    /// Errors: not root or a host tool missing. Panics (as every root build of the
    /// harness does) when debootstrap fails, with its log's tail.
    pub fn cached() -> Result<ContainerRoot, ContainerError> {
        super::require_root_and_tools()?;
        Ok(ContainerRoot {
            path: cached_root(&RECIPE),
        })
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The steps after debootstrap that make cloud-init and systemd boot cleanly in a
/// container and give every host its own identity.
fn customize(root: &Path) -> Result<(), String> {
    let write = |rel: &str, contents: &str| -> Result<(), String> {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("etc/locale.gen", &format!("{LOCALE} UTF-8\n"))?;
    write("etc/default/locale", &format!("LANG={LOCALE}\n"))?;
    let out = Command::new("chroot")
        .arg(root)
        .arg("locale-gen")
        .output()
        .map_err(|e| format!("cannot run chroot locale-gen: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "locale-gen failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    write("etc/cloud/cloud.cfg.d/99-hoist-test.cfg", CLOUD_CFG)?;
    // Every host gets its own machine id (nspawn --uuid) and hostname (its machine
    // name), like an image prepared for cloning.
    write("etc/machine-id", "")?;
    match fs::remove_file(root.join("etc/hostname")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot remove etc/hostname: {e}"));
        }
        _ => {}
    }
    // debootstrap keeps the packages it downloaded; the root does not need them.
    if let Ok(entries) = fs::read_dir(root.join("var/cache/apt/archives")) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "deb") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}
