//! Real Debian 12 and 13 hosts for end-to-end tests: systemd-nspawn boots the real systemd
//! and cloud-init over a throwaway overlay of a cached root filesystem, with a
//! NoCloud seed (user-data, meta-data with a fresh instance-id).
//!
//! ```no_run
//! use hoist_testkit::container::Host;
//! let host = Host::boot("h1", "#cloud-config\nruncmd:\n  - [touch, /run/booted]\n", None)?;
//! assert_eq!(host.system_state(), "running");
//! host.exec(&["test", "-e", "/run/booted"])?.ok()?;
//! host.shutdown()?; // or just drop it
//! # Ok::<(), hoist_testkit::container::ContainerError>(())
//! ```
//!
//! - [`ContainerRoot`]: the root filesystem of a [`Suite`], built once per machine with debootstrap
//!   under `$HOIST_CACHE` by [`crate::sandbox`]'s root builder (atomic rename, a lock
//!   for concurrent tests).
//! - [`HostSpec`] / [`Host`]: boot, run commands inside (`nsenter`), run them as
//!   transient units, read journals and unit state, reboot, power off.
//!
//! Hosts share the machine's network (no `--private-network`): a host reaches servers
//! on the machine's 127.0.0.1 and the test reaches the host's services there, so every
//! host needs its own service ports. Everything a host starts is stopped, its overlay
//! (mounted only in a private mount namespace) disappears and its files are removed
//! when the [`Host`] is dropped, also when the test panics; [`Host::shutdown`] also
//! proves that no process or mount is left.
//!
//! Needs root and the host tools `systemd-nspawn` (systemd-container), `debootstrap`,
//! `nsenter`, `unshare` and `setsid` (util-linux); a missing one is an error that
//! names the install step.

mod cgroup;
mod command;
mod error;
mod host;
mod layer;
mod procfs;
mod rootfs;

pub use command::Output;
pub use error::ContainerError;
pub use host::{Host, HostSpec, UnitJob, kill_hosts_of_this_process, sweep_stale_hosts};
pub use procfs::mounts_mentioning;
pub use rootfs::{BOOKWORM, ContainerRoot, PACKAGES, RECIPE, Suite, TRIXIE};

/// The host tools containers need, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("systemd-nspawn", "systemd-container"),
    ("debootstrap", "debootstrap"),
    ("mount", "mount"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
    ("setsid", "util-linux"),
    ("chroot", "coreutils"),
];

/// Checks that this process is root and every host tool is installed.
///
/// Errors: [`ContainerError::NotRoot`], or [`ContainerError::MissingTool`] naming the
/// package to install.
pub fn require_root_and_tools() -> Result<(), ContainerError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(ContainerError::NotRoot);
    }
    for &(tool, package) in TOOLS {
        if which::which(tool).is_err() {
            return Err(ContainerError::MissingTool { tool, package });
        }
    }
    Ok(())
}
