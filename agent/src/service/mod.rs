//! The running service: signal it, confirm the handoff, check its health.

pub mod health;
pub mod procfs;
pub mod signal;
pub mod target;

use std::time::Duration;

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

/// Signals the service, confirms that a new process runs the installed binary, then runs
/// the health check. When no process was running, nothing is signalled or checked.
///
/// `target` says which processes may be signalled (see [`target`]).
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
    signal::signal(signal_config, &before).await?;
    let confirmed =
        signal::confirm_handoff(signal_config, target, &before, handoff_timeout).await?;
    let pid = confirmed.map(|c| c.pid);
    health::check(health_config, pid).await?;
    Ok(match pid {
        Some(pid) => Reloaded::HandedOver { pid },
        None => Reloaded::NotSignalled,
    })
}
