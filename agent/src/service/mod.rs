//! The running service: signal it, confirm the handoff, check its health.

pub mod health;
pub mod inflight;
pub mod procfs;
pub mod signal;
pub mod target;

use std::time::{Duration, Instant};

use crate::config::{HealthConfig, SignalConfig};

/// Outcome of [`reload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// Nothing was running: not signalled, not checked (it starts with the new version).
    NotRunning,
    /// No signal configured; the health check (if any) passed.
    NotSignalled,
    /// The handoff to `pid` was confirmed and the health check passed.
    HandedOver {
        /// The new process.
        pid: i32,
    },
}

/// Why the service did not take the new version.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Signalling or confirming the handoff failed.
    #[error(transparent)]
    Signal(#[from] signal::SignalError),
    /// The health check failed.
    #[error(transparent)]
    Health(#[from] health::HealthError),
}

/// Longest the agent waits for a successor the service started (past `handoff_timeout`).
pub const HANDOFF_HARD_CAP: Duration = Duration::from_secs(600);

/// Signals the service, confirms that a new process runs the installed binary, then runs
/// the health check. When no process was running, nothing is signalled or checked.
///
/// `target` says which processes may be signalled (see [`target`]).
///
/// The wait lasts `handoff_timeout`, and beyond it (up to [`HANDOFF_HARD_CAP`]) for as
/// long as the serving process has a successor under way, so that the agent never gives
/// up on a handoff the service then completes.
pub async fn reload(
    signal_config: &SignalConfig,
    target: &target::Target,
    health_config: &HealthConfig,
    handoff_timeout: Duration,
) -> Result<Reloaded, ReloadError> {
    if *signal_config == SignalConfig::None {
        health::check(health_config, None).await?;
        return Ok(Reloaded::NotSignalled);
    }
    let before = signal::snapshot(signal_config, target).await?;
    if before.is_empty() {
        return Ok(Reloaded::NotRunning);
    }
    let children = inflight::Children::of(&before.pids);
    signal::signal(signal_config, &before).await?;
    let started = Instant::now();
    let mut window = handoff_timeout;
    let mut told = false;
    let confirmed = loop {
        match signal::confirm_handoff(signal_config, target, &before, window).await {
            Ok(confirmed) => break confirmed,
            Err(err) => {
                let under_way = children.successor_started(&before.pids);
                if !under_way || started.elapsed() >= handoff_timeout + HANDOFF_HARD_CAP {
                    return Err(err.into());
                }
                if !told {
                    tracing::info!(
                        "the service's new process is still starting after handoff_timeout ({}); waiting until the service takes it or gives it up",
                        humantime::format_duration(handoff_timeout)
                    );
                    told = true;
                }
                window = Duration::from_millis(500);
            }
        }
    };
    let pid = confirmed.map(|c| c.pid);
    health::check(health_config, pid).await?;
    Ok(match pid {
        Some(pid) => Reloaded::HandedOver { pid },
        None => Reloaded::NotSignalled,
    })
}

/// After a rollback: when a serving process does not run the binary now on disk (a
/// successor of the failed version took over late, or a signal was ignored), reloads
/// again. `None` when every serving process runs the installed binary (or none runs).
pub async fn ensure_current(
    signal_config: &SignalConfig,
    target: &target::Target,
    health_config: &HealthConfig,
    handoff_timeout: Duration,
) -> Result<Option<Reloaded>, ReloadError> {
    let serving = signal::snapshot(signal_config, target).await?;
    let stale: Vec<String> = serving
        .pids
        .iter()
        .filter(|&&pid| !procfs::runs_current_binary(pid))
        .map(|&pid| {
            let exe =
                procfs::exe_link(pid).map_or_else(|| "?".to_owned(), |p| p.display().to_string());
            format!("pid {pid} runs {exe}")
        })
        .collect();
    if stale.is_empty() {
        return Ok(None);
    }
    tracing::warn!(
        "after the rollback the service does not run the installed binary ({}); signalling it again",
        stale.join(", ")
    );
    reload(signal_config, target, health_config, handoff_timeout)
        .await
        .map(Some)
}
