//! Which processes the agent may signal, checked as systemd checks `PIDFile=`:
//!
//! - a pidfile is opened without following symlinks and must be owned by root or by the
//!   configured service `user` (anyone else could point the agent at any process);
//! - the process it names, or each process found by name, must run one of the service's
//!   executables: `exe` when configured, else the executables the package installs (per
//!   `dpkg-query -L`), else `/usr/bin/PACKAGE`. A process still running a binary that an
//!   upgrade replaced (`/proc/PID/exe` ending in ` (deleted)`) counts by its path.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::procfs;
use crate::config::SignalConfig;
use crate::dpkg::Dpkg;

/// What a signalled process must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Accepted executables (canonical paths, as `/proc/PID/exe` shows them).
    pub exes: Vec<PathBuf>,
    /// Accepted owners of the pidfile: root, and the service user when configured.
    pub owners: Vec<u32>,
}

/// The tree dpkg installs into: the `[dpkg] root`, or `/` (from `ROOT/var/lib/dpkg`).
pub fn install_root(dpkg: &Dpkg) -> PathBuf {
    dpkg.admin_dir()
        .ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

impl Target {
    /// The target for `package` under `signal`, after dpkg installed it: the configured
    /// `exe` (taken inside the dpkg root) or the package's executables.
    pub async fn resolve(signal: &SignalConfig, dpkg: &Dpkg, package: &str) -> Target {
        let root = install_root(dpkg);
        let (exe, user) = match signal {
            SignalConfig::Pidfile { exe, user, .. } => (exe.as_deref(), user.as_deref()),
            SignalConfig::Process { exe, .. } => (exe.as_deref(), None),
            _ => (None, None),
        };
        let listed = match exe {
            Some(exe) => vec![exe.to_owned()],
            None => package_executables(dpkg, package).await,
        };
        let listed = if listed.is_empty() {
            vec![PathBuf::from("/usr/bin").join(package)]
        } else {
            listed
        };
        let exes = listed
            .iter()
            .map(|path| canonical(&under_root(&root, path)))
            .collect();
        let mut owners = vec![0];
        if let Some(user) = user {
            match nix::unistd::User::from_name(user) {
                Ok(Some(found)) => owners.push(found.uid.as_raw()),
                _ => tracing::warn!(
                    user,
                    "the signal's user does not exist; only a root-owned pidfile is trusted"
                ),
            }
        }
        Target { exes, owners }
    }

    /// True when `pid` runs one of the accepted executables (a replaced one counts).
    pub fn runs_service(&self, pid: i32) -> bool {
        procfs::exe_path(pid).is_some_and(|(path, _deleted)| self.exes.contains(&path))
    }

    /// The accepted executables, for messages.
    pub fn describe_exes(&self) -> String {
        self.exes
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads the pid from `path` if the file may be trusted: `Ok(None)` when it does not
    /// exist or holds no pid; `Err` (why) when it is a symlink, not a regular file, or
    /// owned by someone else than root or the service user.
    pub fn read_pidfile(&self, path: &Path) -> Result<Option<i32>, String> {
        let mut file = match File::options()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) if err.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(format!(
                    "the pidfile `{}` is a symlink; refused (a pidfile must be a plain file written by the service)",
                    path.display()
                ));
            }
            Err(err) => {
                return Err(format!(
                    "cannot open the pidfile `{}`: {err}",
                    path.display()
                ));
            }
        };
        let meta = file
            .metadata()
            .map_err(|err| format!("cannot stat the pidfile `{}`: {err}", path.display()))?;
        if !meta.is_file() {
            return Err(format!(
                "the pidfile `{}` is not a regular file; refused",
                path.display()
            ));
        }
        if !self.owners.contains(&meta.uid()) {
            return Err(format!(
                "the pidfile `{}` is owned by uid {}, not by root or the service's user; refused (set `user` in the watch's signal to the user the service runs as)",
                path.display(),
                meta.uid()
            ));
        }
        let mut text = String::new();
        file.by_ref()
            .take(64)
            .read_to_string(&mut text)
            .map_err(|err| format!("cannot read the pidfile `{}`: {err}", path.display()))?;
        Ok(text
            .split_whitespace()
            .next()
            .and_then(|t| t.parse::<i32>().ok())
            .filter(|&pid| pid > 0))
    }
}

/// `path` inside `root` (`/usr/bin/x` under `/srv/root` → `/srv/root/usr/bin/x`).
fn under_root(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The canonical form of `path` (symlinks resolved, as the kernel shows executables);
/// the path as given when it cannot be resolved.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// The regular files with an execute bit that `package` installs (`dpkg-query -L`),
/// as paths inside the dpkg root.
async fn package_executables(dpkg: &Dpkg, package: &str) -> Vec<PathBuf> {
    let root = install_root(dpkg);
    let output = tokio::process::Command::new("dpkg-query")
        .arg(format!("--admindir={}", dpkg.admin_dir().display()))
        .args(["-L", "--"])
        .arg(package)
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            tracing::debug!(
                package,
                "dpkg-query -L failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return Vec::new();
        }
        Err(err) => {
            tracing::debug!(package, "cannot run dpkg-query -L: {err}");
            return Vec::new();
        }
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with('/'))
        .map(PathBuf::from)
        .filter(|path| {
            std::fs::symlink_metadata(under_root(&root, path))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn own_target() -> Target {
        Target {
            exes: vec![canonical(&std::env::current_exe().unwrap())],
            owners: vec![0],
        }
    }

    #[test]
    fn own_process_runs_the_service_and_sleep_does_not() {
        let target = own_target();
        assert!(target.runs_service(std::process::id() as i32));
        let mut sleep = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = sleep.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while procfs::exe_path(pid).is_none_or(|(p, _)| !p.ends_with("sleep")) {
            assert!(std::time::Instant::now() < deadline, "sleep never exec'd");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!target.runs_service(pid));
        sleep.kill().unwrap();
        sleep.wait().unwrap();
    }

    #[test]
    fn pidfile_owner_and_symlinks_are_checked() {
        // The tests run as root (dpkg, mounts); ownership is set with chown.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.pid");
        let target = own_target();
        assert_eq!(target.read_pidfile(&path), Ok(None));
        std::fs::write(&path, "1234\n").unwrap();
        assert_eq!(target.read_pidfile(&path), Ok(Some(1234)));

        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
        std::os::unix::fs::chown(&path, Some(nobody.as_raw()), None).unwrap();
        let err = target.read_pidfile(&path).unwrap_err();
        assert!(
            err.contains("owned by uid") && err.contains("`user`"),
            "{err}"
        );
        let with_user = Target {
            owners: vec![0, nobody.as_raw()],
            ..own_target()
        };
        assert_eq!(with_user.read_pidfile(&path), Ok(Some(1234)));

        let link = dir.path().join("link.pid");
        let real = dir.path().join("real.pid");
        std::fs::write(&real, "99\n").unwrap();
        symlink(&real, &link).unwrap();
        let err = target.read_pidfile(&link).unwrap_err();
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn paths_are_taken_inside_the_root() {
        assert_eq!(
            under_root(Path::new("/srv/root"), Path::new("/usr/bin/x")),
            PathBuf::from("/srv/root/usr/bin/x")
        );
        assert_eq!(
            under_root(Path::new("/"), Path::new("/usr/bin/x")),
            PathBuf::from("/usr/bin/x")
        );
    }
}
