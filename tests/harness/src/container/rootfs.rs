//! The cached Debian root filesystems container hosts boot from: one per [`Suite`]
//! (Debian 12 "bookworm" and Debian 13 "trixie").
//!
//! Each is one more [`RootRecipe`] of [`crate::sandbox`]'s root builder (built once per
//! machine with debootstrap under `$HOIST_CACHE`, from the mirror of the machine's apt
//! sources, in a temporary directory renamed into place, under an exclusive lock,
//! rebuilt when the recipe changes). What makes it a bootable host rather than a dpkg
//! sandbox: systemd, dbus and cloud-init, and what cloud-init needs in a container (a
//! generated locale, `python3-cffi-backend`, the NoCloud-only datasource list, no
//! network configuration). The root is only ever used as the read-only lower layer of
//! an overlay.
//!
//! What differs between the suites and how it is handled:
//! - the package list: both suites have every package of [`PACKAGES`] under the same
//!   name, and debootstrap resolves the rest (trixie's cloud-init 25.1 pulls in
//!   `dhcpcd-base` where bookworm's 22.4 pulled `isc-dhcp-client`); `/usr/bin/kill`
//!   comes from procps in both;
//! - cloud-init 22.4 (bookworm) and 25.1 (trixie) both read the same
//!   `/etc/cloud/cloud.cfg.d/` drop-in ([`CLOUD_CFG`]) and both accept the user-data
//!   `hoist cloud-init` renders (`cloud-init schema` checks it on each in the
//!   end-to-end test);
//! - systemd 252 and 257 both boot under this machine's nspawn with the unified cgroup
//!   hierarchy (257 no longer supports the legacy one, which the harness never uses).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sandbox::{RootRecipe, cached_root};

use super::error::ContainerError;

/// Packages on top of debootstrap's minbase, the same in both suites: what a Debian
/// cloud image has that the tests rely on (systemd as PID 1, cloud-init, `/bin/kill` from procps for
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

/// A Debian release a container host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Suite {
    /// Debian 12 "bookworm" (systemd 252, cloud-init 22.4, dpkg 1.21): the release of
    /// the machines the tests run on, and the default of [`crate::container::HostSpec`].
    #[default]
    Bookworm,
    /// Debian 13 "trixie" (systemd 257, cloud-init 25.1, dpkg 1.22): the current stable.
    Trixie,
}

impl Suite {
    /// Every suite the harness builds roots for, oldest first.
    pub const ALL: [Suite; 2] = [Suite::Bookworm, Suite::Trixie];

    /// The current stable release (the default of `make demo` and `bench/fleet.sh`).
    pub const STABLE: Suite = Suite::Trixie;

    /// The suite's code name, as debootstrap and apt spell it.
    pub fn codename(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm",
            Suite::Trixie => "trixie",
        }
    }

    /// `Debian 12 (bookworm)`, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Suite::Bookworm => "Debian 12 (bookworm)",
            Suite::Trixie => "Debian 13 (trixie)",
        }
    }

    /// The recipe of this suite's host root.
    pub fn recipe(self) -> &'static RootRecipe {
        match self {
            Suite::Bookworm => &BOOKWORM,
            Suite::Trixie => &TRIXIE,
        }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.codename())
    }
}

impl std::str::FromStr for Suite {
    type Err = String;

    /// `bookworm` or `12`, `trixie` or `13` (case-insensitive, `debian` prefix allowed).
    fn from_str(text: &str) -> Result<Suite, String> {
        let lower = text.trim().to_ascii_lowercase();
        let bare = lower
            .strip_prefix("debian")
            .map_or(lower.as_str(), |rest| rest.trim_start_matches(['-', ' ']));
        match bare {
            "bookworm" | "12" => Ok(Suite::Bookworm),
            "trixie" | "13" => Ok(Suite::Trixie),
            _ => Err(format!(
                "unknown Debian suite `{text}`: use bookworm (Debian 12) or trixie (Debian 13)"
            )),
        }
    }
}

/// The recipe of the Debian 12 host root. Rename it (the `-vN` suffix) when
/// [`customize`] changes, so cached roots are rebuilt.
pub const BOOKWORM: RootRecipe = RootRecipe {
    name: "nspawn-bookworm-v1",
    suite: "bookworm",
    include: PACKAGES,
    customize: Some(customize),
};

/// The recipe of the Debian 13 host root (same packages and customize step).
pub const TRIXIE: RootRecipe = RootRecipe {
    name: "nspawn-trixie-v1",
    suite: "trixie",
    include: PACKAGES,
    customize: Some(customize),
};

/// The recipe of the default (Debian 12) host root.
pub const RECIPE: RootRecipe = BOOKWORM;

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
    suite: Suite,
}

impl ContainerRoot {
    /// The cached Debian 12 root; see [`ContainerRoot::cached_for`].
    pub fn cached() -> Result<ContainerRoot, ContainerError> {
        ContainerRoot::cached_for(Suite::Bookworm)
    }

    /// The cached root of `suite`, built first when this machine has none yet (about
    /// a minute; concurrent callers wait for the same build).
    ///
    /// Errors: not root or a host tool missing. Panics (as every root build of the
    /// harness does) when debootstrap fails, with its log's tail.
    pub fn cached_for(suite: Suite) -> Result<ContainerRoot, ContainerError> {
        super::require_root_and_tools()?;
        Ok(ContainerRoot {
            path: cached_root(suite.recipe()),
            suite,
        })
    }

    /// The Debian release of this root.
    pub fn suite(&self) -> Suite {
        self.suite
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_parse_by_name_and_number() {
        for (text, suite) in [
            ("bookworm", Suite::Bookworm),
            ("12", Suite::Bookworm),
            ("Debian12", Suite::Bookworm),
            ("trixie", Suite::Trixie),
            ("13", Suite::Trixie),
            ("debian-13", Suite::Trixie),
        ] {
            assert_eq!(text.parse::<Suite>(), Ok(suite), "{text}");
            assert_eq!(suite.to_string().parse::<Suite>(), Ok(suite));
        }
        let err = "sid".parse::<Suite>().unwrap_err();
        assert!(err.contains("trixie"), "{err}");
    }

    #[test]
    fn every_suite_has_its_own_cached_root() {
        let names: Vec<&str> = Suite::ALL.iter().map(|s| s.recipe().name).collect();
        assert_eq!(names, ["nspawn-bookworm-v1", "nspawn-trixie-v1"]);
        for suite in Suite::ALL {
            assert_eq!(suite.recipe().suite, suite.codename());
        }
    }
}
