//! A cgroup of its own for every container.
//!
//! The container's systemd manages the cgroup subtree it starts in. On a machine
//! whose init is systemd, systemd-nspawn asks it for a transient scope unit per
//! container (no `--keep-unit`), which is such a subtree. On a machine without
//! systemd (a CI sandbox) nspawn must be told `--keep-unit` and stays in the cgroup
//! it was started in: two containers started by one test process would then share
//! one subtree and break each other's units (`status=219/CGROUP`). So there each
//! container gets a child cgroup of the caller's in the unified (v2) hierarchy, and
//! nspawn is moved into it before it starts.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::error::ContainerError;

/// How long the removal of a cgroup tree retries while its last processes exit.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a container's cgroup comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// systemd runs on the machine: nspawn allocates a transient scope unit.
    SystemdScope,
    /// No systemd: this directory in the unified hierarchy (created here).
    Own(PathBuf),
}

/// Decides the placement of the container `id` (unique on the machine, e.g. its
/// host directory's name) and creates its cgroup when it needs one.
///
/// Errors: no unified (cgroup2) hierarchy is mounted, or the cgroup cannot be created.
pub(crate) fn place(id: &str) -> Result<Placement, ContainerError> {
    if Path::new("/run/systemd/system").is_dir() {
        return Ok(Placement::SystemdScope);
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(ContainerError::io("cannot read /proc/self/mountinfo"))?;
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(ContainerError::io("cannot read /proc/self/cgroup"))?;
    let (Some(mount), Some(current)) = (unified_mount(&mountinfo), unified_path(&own)) else {
        return Err(ContainerError::Io {
            what: "cannot give the container a cgroup of its own".into(),
            source: std::io::Error::other(
                "no cgroup2 (unified) hierarchy is mounted: boot the machine with the unified or hybrid cgroup layout",
            ),
        });
    };
    let dir = mount
        .join(current.trim_start_matches('/'))
        .join(format!("hoist-{id}"));
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(ContainerError::Io {
                what: format!("cannot create the cgroup `{}`", dir.display()),
                source,
            });
        }
    }
    Ok(Placement::Own(dir))
}

/// The mount point of the cgroup2 hierarchy in a mountinfo text.
fn unified_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (fields, fs) = line.split_once(" - ")?;
        if fs.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        fields.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// This process's path in the unified hierarchy (the `0::PATH` line of
/// /proc/self/cgroup).
fn unified_path(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Removes the cgroup `dir` and every cgroup below it (deepest first), retrying
/// while processes in it are still exiting. A missing `dir` is fine.
///
/// Errors: the tree could not be removed within a few seconds (processes remain).
pub(crate) fn remove_tree(dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    loop {
        match remove_once(dir) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("cannot remove the cgroup `{}`: {e}", dir.display()));
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn remove_once(dir: &Path) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        // Only the child cgroups are directories; the control files are not.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_once(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unified_hierarchy() {
        let hybrid = "30 22 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            unified_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1_only = "30 22 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(unified_mount(v1_only), None);
        assert_eq!(
            unified_path("1:cpu:/\n0::/user.slice/session-1.scope\n").as_deref(),
            Some("/user.slice/session-1.scope")
        );
    }

    #[test]
    fn removing_a_missing_tree_is_fine() {
        assert_eq!(remove_tree(Path::new("/nonexistent/hoist-cgroup")), Ok(()));
    }
}
