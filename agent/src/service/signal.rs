//! Telling the service to pick up the new binary, and confirming that it did.
//!
//! [`snapshot`] records which process serves now; [`signal`] asks it to hand over
//! (`systemctl reload UNIT`, or SIGUSR2 to the pidfile's pid / every process named NAME);
//! [`confirm_handoff`] waits until a *different* process runs the binary now on disk, then
//! (bounded) until the old ones have exited, so a later health check reaches the new one.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;

use super::procfs;
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
pub async fn snapshot(config: &SignalConfig) -> Result<Snapshot, SignalError> {
    let pids = match config {
        SignalConfig::Systemd { unit } => {
            let pid = main_pid(unit).await?;
            pid.into_iter().collect()
        }
        SignalConfig::Pidfile { path } => read_pidfile(path)
            .filter(|&pid| procfs::is_alive(pid))
            .into_iter()
            .collect(),
        SignalConfig::Process { name } => procfs::pids_by_name(name).into_iter().collect(),
        SignalConfig::None => BTreeSet::new(),
    };
    Ok(Snapshot { pids })
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
    before: &Snapshot,
    timeout: Duration,
) -> Result<Option<Confirmed>, SignalError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let confirmed = loop {
        let candidates: Vec<i32> = match config {
            SignalConfig::None => return Ok(None),
            SignalConfig::Systemd { unit } => main_pid(unit).await?.into_iter().collect(),
            SignalConfig::Pidfile { path } => read_pidfile(path).into_iter().collect(),
            SignalConfig::Process { name } => procfs::pids_by_name(name),
        };
        let new_pid = candidates.iter().copied().find(|pid| {
            !before.pids.contains(pid)
                && procfs::is_alive(*pid)
                && procfs::runs_current_binary(*pid)
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

/// The pid in a pidfile (first token), if the file exists and parses.
pub fn read_pidfile(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|&pid: &i32| pid > 0)
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

    #[test]
    fn pidfile_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        assert_eq!(read_pidfile(&path), None);
        std::fs::write(&path, "1234\n").unwrap();
        assert_eq!(read_pidfile(&path), Some(1234));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(read_pidfile(&path), None);
        std::fs::write(&path, "-5").unwrap();
        assert_eq!(read_pidfile(&path), None);
    }

    #[tokio::test]
    async fn pidfile_of_dead_process_snapshots_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        std::fs::write(&path, pid.to_string()).unwrap();
        let snap = snapshot(&SignalConfig::Pidfile { path }).await.unwrap();
        assert!(snap.is_empty());
    }

    #[tokio::test]
    async fn unchanged_pid_is_not_a_handoff() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let me = std::process::id() as i32;
        std::fs::write(&path, me.to_string()).unwrap();
        let config = SignalConfig::Pidfile { path };
        let before = snapshot(&config).await.unwrap();
        assert_eq!(before.pids, BTreeSet::from([me]));
        let err = confirm_handoff(&config, &before, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&format!("pid {me} (old")), "{err}");
    }
}
