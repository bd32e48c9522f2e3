//! How dpkg runs that change the system (`dpkg -i`, `dpkg --configure -a`) are started:
//! with a time limit, and — when systemd runs the host and no dpkg root is configured —
//! in a transient systemd unit of their own, so that maintainer scripts run as under
//! `apt`, without the agent unit's sandbox (NoNewPrivileges, PrivateTmp,
//! RestrictNamespaces, …).
//!
//! At the limit the whole run is killed: the process group of a direct run, the transient
//! unit's control group (systemd's `RuntimeMaxSec=`, and `systemctl kill` if that did not
//! end it) otherwise.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::Command;

/// Extra time a transient unit gets past its `RuntimeMaxSec=` to be stopped by systemd
/// (its `TimeoutStopSec=`), before the agent kills it itself.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Where dpkg runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A child of the agent, in its own process group.
    Direct,
    /// A transient unit started with `systemd-run --wait --pipe`.
    TransientUnit,
}

impl Isolation {
    /// A transient unit when systemd is the init system (`/run/systemd/system` exists,
    /// as `sd_booted(3)` checks) and dpkg works on the host's own root; else direct.
    pub fn detect(root: Option<&Path>) -> Self {
        if root.is_none() && Path::new("/run/systemd/system").is_dir() {
            Isolation::TransientUnit
        } else {
            Isolation::Direct
        }
    }
}

/// Why a limited run did not produce an output.
#[derive(Debug)]
pub enum RunError {
    /// The program could not be started.
    Spawn(std::io::Error),
    /// It was killed at the time limit.
    TimedOut,
}

/// Runs `command` (stdin closed, output captured) with `limit`, isolated as `isolation`
/// says. A unit name's prefix is `hoist-dpkg-`.
pub async fn run_limited(
    command: &Command,
    isolation: Isolation,
    limit: Duration,
) -> Result<Output, RunError> {
    match isolation {
        Isolation::Direct => run_direct(command, limit).await,
        Isolation::TransientUnit => run_in_unit(command, limit).await,
    }
}

async fn run_direct(command: &Command, limit: Duration) -> Result<Output, RunError> {
    let std = command.as_std();
    let mut direct = Command::new(std.get_program());
    direct.args(std.get_args());
    for (key, value) in std.get_envs() {
        match value {
            Some(value) => direct.env(key, value),
            None => direct.env_remove(key),
        };
    }
    direct
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = direct.spawn().map_err(RunError::Spawn)?;
    let pgid = child.id().map(|pid| pid as i32);
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(result) => result.map_err(RunError::Spawn),
        Err(_) => {
            if let Some(pgid) = pgid {
                // The child is the group leader: this reaches dpkg and its scripts.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(RunError::TimedOut)
        }
    }
}

async fn run_in_unit(command: &Command, limit: Duration) -> Result<Output, RunError> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let unit = format!(
        "hoist-dpkg-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let std = command.as_std();
    let mut wrapped = Command::new("systemd-run");
    wrapped.args(["--wait", "--pipe", "--collect", "--quiet"]);
    wrapped.arg(format!("--unit={unit}"));
    wrapped.arg("--description=dpkg run by hoist-agent");
    wrapped.arg(format!(
        "--property=RuntimeMaxSec={}ms",
        limit.as_millis().max(1)
    ));
    wrapped.arg(format!(
        "--property=TimeoutStopSec={}ms",
        STOP_GRACE.as_millis()
    ));
    for (key, value) in std.get_envs() {
        if let Some(value) = value {
            let mut setenv = OsString::from("--setenv=");
            setenv.push(key);
            setenv.push("=");
            setenv.push(value);
            wrapped.arg(setenv);
        }
    }
    wrapped
        .arg("--")
        .arg(std.get_program())
        .args(std.get_args());
    wrapped
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = wrapped.spawn().map_err(RunError::Spawn)?;
    match tokio::time::timeout(limit + STOP_GRACE * 2, child.wait_with_output()).await {
        Ok(Ok(output)) if !output.status.success() && started.elapsed() >= limit => {
            tracing::debug!(
                unit,
                stderr = %String::from_utf8_lossy(&output.stderr),
                "transient dpkg unit ended at its time limit"
            );
            Err(RunError::TimedOut)
        }
        Ok(result) => result.map_err(RunError::Spawn),
        Err(_) => {
            for args in [
                &["kill", "--signal=SIGKILL", unit.as_str()][..],
                &["stop", unit.as_str()][..],
            ] {
                let _ = Command::new("systemctl")
                    .args(args)
                    .stdin(Stdio::null())
                    .output()
                    .await;
            }
            Err(RunError::TimedOut)
        }
    }
}

/// The command line of `command`, for messages.
pub fn shown(command: &Command) -> String {
    let std = command.as_std();
    std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn direct_runs_are_killed_with_their_children_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        let mut command = Command::new("sh");
        // The grandchild would create the marker after the limit if it survived.
        command.arg("-c").arg(format!(
            "(sleep 1.5; touch {}) & sleep 30",
            marker.display()
        ));
        let started = Instant::now();
        let result = run_limited(&command, Isolation::Direct, Duration::from_millis(300)).await;
        assert!(matches!(result, Err(RunError::TimedOut)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!marker.exists(), "the whole process group was killed");
    }

    #[tokio::test]
    async fn direct_runs_return_their_output() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .env("X", "1");
        let output = run_limited(&command, Isolation::Direct, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&output.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&output.stderr), "err\n");
        assert_eq!(shown(&command), "sh -c echo out; echo err >&2; exit 3");
    }
}
