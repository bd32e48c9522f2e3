//! Telling the service to pick up the new binary, and confirming that it did.
//!
//! [`snapshot`] records which process serves now; [`signal`] asks it to hand over
//! (`systemctl reload UNIT`, or SIGUSR2 to the pidfile's pid / every process named NAME);
//! [`confirm_handoff`] waits until a *different* process runs the binary now on disk, then
//! (bounded) until the old ones have exited, so a later health check reaches the new one.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;

use super::procfs;
use super::target::Target;
use crate::config::SignalConfig;

const POLL: Duration = Duration::from_millis(50);

/// Why signalling or the handoff failed.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// `systemctl` could not be run or failed.
    #[error("`systemctl {args}` failed: {detail}; check that the unit exists and has ExecReload=")]
    Systemctl {
        /// The arguments.
        args: String,
        /// What happened.
        detail: String,
    },
    /// `kill` failed.
    #[error(
        "cannot send SIGUSR2 to pid {pid}: {source}; the agent must run as root or as the service's user"
    )]
    Kill {
        /// The target pid.
        pid: i32,
        /// The errno.
        source: nix::Error,
    },
    /// The pidfile or the process it names is not trusted (see [`super::target`]):
    /// nothing was signalled.
    #[error("not signalled: {0}")]
    Refused(String),
    /// No new process took over in time.
    #[error("handoff not confirmed within {waited}: {detail}")]
    NotConfirmed {
        /// How long the agent waited.
        waited: String,
        /// What it saw last.
        detail: String,
    },
}

/// The serving processes before the signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Their pids (one for systemd and pidfile; all matches for a process name).
    pub pids: BTreeSet<i32>,
}

impl Snapshot {
    /// True when nothing was running (there is nothing to signal or confirm).
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }
}

/// The process that took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    /// Its pid.
    pub pid: i32,
}

/// The processes serving now; empty when the service is not running (or `None` signal).
///
/// A pidfile that is not trusted, or that names a live process not running one of
/// `target`'s executables, is [`SignalError::Refused`]; processes found by name that do
/// not run one of them are left out.
pub async fn snapshot(config: &SignalConfig, target: &Target) -> Result<Snapshot, SignalError> {
    let pids = match config {
        SignalConfig::Systemd { unit } => {
            let pid = main_pid(unit).await?;
            pid.into_iter().collect()
        }
        SignalConfig::Pidfile { path, .. } => {
            match target.read_pidfile(path).map_err(SignalError::Refused)? {
                Some(pid) if procfs::is_alive(pid) => {
                    if !target.runs_service(pid) {
                        return Err(SignalError::Refused(format!(
                            "the pidfile `{}` names pid {pid}, which runs {}, not the service's executable ({}); set `exe` in the watch's signal if the service runs another binary",
                            path.display(),
                            procfs::exe_link(pid)
                                .map_or_else(|| "?".to_owned(), |p| p.display().to_string()),
                            target.describe_exes()
                        )));
                    }
                    BTreeSet::from([pid])
                }
                _ => BTreeSet::new(),
            }
        }
        SignalConfig::Process { name, .. } => {
            service_pids_by_name(name, target).into_iter().collect()
        }
        SignalConfig::None => BTreeSet::new(),
    };
    Ok(Snapshot { pids })
}

/// Live processes named `name` that run one of `target`'s executables; the others are
/// logged (at debug level) and left alone.
fn service_pids_by_name(name: &str, target: &Target) -> Vec<i32> {
    let (service, other): (Vec<i32>, Vec<i32>) = procfs::pids_by_name(name)
        .into_iter()
        .partition(|&pid| target.runs_service(pid));
    if !other.is_empty() {
        tracing::debug!(
            name,
            ?other,
            exes = %target.describe_exes(),
            "processes with the service's name but another executable are not signalled"
        );
    }
    service
}

/// Asks the service to hand over to the binary now installed.
pub async fn signal(config: &SignalConfig, before: &Snapshot) -> Result<(), SignalError> {
    match config {
        SignalConfig::Systemd { unit } => systemctl(&["reload", unit]).await.map(drop),
        SignalConfig::Pidfile { .. } | SignalConfig::Process { .. } => {
            for &pid in &before.pids {
                kill(Pid::from_raw(pid), Signal::SIGUSR2)
                    .map_err(|source| SignalError::Kill { pid, source })?;
            }
            Ok(())
        }
        SignalConfig::None => Ok(()),
    }
}

/// Waits (up to `timeout`) until a process that was not in `before` serves and runs the
/// binary now on disk; then waits for the old processes to exit (within what is left of
/// `timeout`; if they linger it only logs). For [`SignalConfig::None`] it returns at once.
pub async fn confirm_handoff(
    config: &SignalConfig,
    target: &Target,
    before: &Snapshot,
    timeout: Duration,
) -> Result<Option<Confirmed>, SignalError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let confirmed = loop {
        let candidates: Vec<i32> = match config {
            SignalConfig::None => return Ok(None),
            SignalConfig::Systemd { unit } => main_pid(unit).await?.into_iter().collect(),
            // An untrusted pidfile names no candidate; the wait ends as not confirmed.
            SignalConfig::Pidfile { path, .. } => target
                .read_pidfile(path)
                .ok()
                .flatten()
                .into_iter()
                .collect(),
            SignalConfig::Process { name, .. } => procfs::pids_by_name(name),
        };
        let checks_exe = !matches!(config, SignalConfig::Systemd { .. });
        let new_pid = candidates.iter().copied().find(|pid| {
            !before.pids.contains(pid)
                && procfs::is_alive(*pid)
                && procfs::runs_current_binary(*pid)
                && (!checks_exe || target.runs_service(*pid))
        });
        if let Some(pid) = new_pid {
            break Confirmed { pid };
        }
        if Instant::now() >= deadline {
            return Err(SignalError::NotConfirmed {
                waited: humantime::format_duration(timeout).to_string(),
                detail: describe(&candidates, before),
            });
        }
        tokio::time::sleep(POLL).await;
    };
    tracing::debug!(pid = confirmed.pid, "new process runs the new binary");
    // Let the old processes drain and exit, so health checks reach the new one.
    while before.pids.iter().any(|&pid| procfs::is_alive(pid)) {
        if Instant::now() >= deadline {
            tracing::warn!(
                old = ?before.pids,
                "old process still running after the handoff (draining); continuing"
            );
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(Some(confirmed))
}

fn describe(candidates: &[i32], before: &Snapshot) -> String {
    if candidates.is_empty() {
        return "no process found".to_owned();
    }
    candidates
        .iter()
        .map(|&pid| {
            let exe =
                procfs::exe_link(pid).map_or_else(|| "?".to_owned(), |p| p.display().to_string());
            let age = if before.pids.contains(&pid) {
                "old"
            } else {
                "new"
            };
            format!("pid {pid} ({age}, exe {exe})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `systemctl show -p MainPID --value UNIT`; `None` when the unit has no main process.
pub async fn main_pid(unit: &str) -> Result<Option<i32>, SignalError> {
    let out = systemctl(&["show", "-p", "MainPID", "--value", unit]).await?;
    Ok(out.trim().parse::<i32>().ok().filter(|&pid| pid > 0))
}

/// `systemctl show -p ActiveState --value UNIT`.
pub async fn active_state(unit: &str) -> Result<String, SignalError> {
    Ok(systemctl(&["show", "-p", "ActiveState", "--value", unit])
        .await?
        .trim()
        .to_owned())
}

async fn systemctl(args: &[&str]) -> Result<String, SignalError> {
    let shown = args.join(" ");
    let output = Command::new("systemctl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|err| SignalError::Systemctl {
            args: shown.clone(),
            detail: err.to_string(),
        })?;
    if !output.status.success() {
        return Err(SignalError::Systemctl {
            args: shown,
            detail: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary as the service (the tests run as root, so files are root's).
    fn own_target() -> Target {
        Target {
            exes: vec![std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap()],
            owners: vec![0],
        }
    }

    #[tokio::test]
    async fn pidfile_naming_another_program_is_refused_and_nothing_is_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let mut sleep = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = sleep.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while procfs::exe_path(pid).is_none_or(|(p, _)| !p.ends_with("sleep")) {
            assert!(Instant::now() < deadline, "sleep never exec'd");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::write(&path, pid.to_string()).unwrap();
        let config = SignalConfig::Pidfile {
            path,
            user: None,
            exe: None,
        };
        let err = snapshot(&config, &own_target()).await.unwrap_err();
        assert!(matches!(err, SignalError::Refused(_)), "{err}");
        assert!(err.to_string().contains("sleep"), "{err}");
        assert!(procfs::is_alive(pid), "sleep was not signalled");
        sleep.kill().unwrap();
        sleep.wait().unwrap();
    }

    #[test]
    fn pidfile_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let target = own_target();
        assert_eq!(target.read_pidfile(&path), Ok(None));
        std::fs::write(&path, "1234\n").unwrap();
        assert_eq!(target.read_pidfile(&path), Ok(Some(1234)));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(target.read_pidfile(&path), Ok(None));
        std::fs::write(&path, "-5").unwrap();
        assert_eq!(target.read_pidfile(&path), Ok(None));
    }

    #[tokio::test]
    async fn pidfile_of_dead_process_snapshots_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        std::fs::write(&path, pid.to_string()).unwrap();
        let config = SignalConfig::Pidfile {
            path,
            user: None,
            exe: None,
        };
        let snap = snapshot(&config, &own_target()).await.unwrap();
        assert!(snap.is_empty());
    }

    #[tokio::test]
    async fn unchanged_pid_is_not_a_handoff() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let me = std::process::id() as i32;
        std::fs::write(&path, me.to_string()).unwrap();
        let config = SignalConfig::Pidfile {
            path,
            user: None,
            exe: None,
        };
        let target = own_target();
        let before = snapshot(&config, &target).await.unwrap();
        assert_eq!(before.pids, BTreeSet::from([me]));
        let err = confirm_handoff(&config, &target, &before, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&format!("pid {me} (old")), "{err}");
    }
}
