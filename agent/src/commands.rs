//! The `run` (service) and `once` (single sync) commands.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::selftest::SelfTest;
use crate::statelock;
use crate::sync::Outcome;
use crate::watcher::{self, Exit};
use crate::wiring::Shared;

/// How `run` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// SIGTERM/SIGINT: every task finished or abandoned its work safely.
    Stopped,
    /// The agent's own package was installed: re-execute.
    Reexec,
}

/// Cancels `cancel` on SIGTERM or SIGINT.
fn cancel_on_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing the current step, then stopping"),
            _ = int.recv() => tracing::info!("SIGINT: finishing the current step, then stopping"),
        }
        cancel.cancel();
    });
    Ok(())
}

/// `hoist-agent run`: one poll task per watch until SIGTERM (or a self-update, after the
/// new agent passed `self_test`).
pub async fn run(config: AgentConfig, self_test: SelfTest) -> anyhow::Result<RunEnd> {
    let _lock = statelock::acquire(&config.state_dir)?;
    let shared = Arc::new(Shared::prepare(config, Some(self_test)).await?);
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone())?;
    let mut tasks = JoinSet::new();
    for index in shared.runnable() {
        tasks.spawn(watcher::run(Arc::clone(&shared), index, cancel.clone()));
    }
    if tasks.is_empty() {
        anyhow::bail!(
            "no watch can start: each lacks a public key (see the errors above); set public_key, or allow_unsigned = true"
        );
    }
    tracing::info!(
        watches = tasks.len(),
        state = %shared.state.path().display(),
        arch = %shared.host_arch,
        "hoist-agent {} running",
        env!("CARGO_PKG_VERSION")
    );
    let mut end = RunEnd::Stopped;
    let mut panicked = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Exit::Shutdown) => {}
            Ok(Exit::Reexec) => {
                tracing::info!(
                    "installed a new hoist-agent; stopping the other watches to re-execute"
                );
                end = RunEnd::Reexec;
                cancel.cancel();
            }
            Err(err) => {
                tracing::error!("a watch task failed: {err}; stopping");
                panicked = Some(err);
                cancel.cancel();
            }
        }
    }
    if let Some(err) = panicked {
        anyhow::bail!(
            "a watch task failed ({err}); the agent stopped so that its supervisor restarts it"
        );
    }
    Ok(end)
}

/// `hoist-agent once`: one sync of every watch, concurrently. Returns true when every
/// watch ended up current (unchanged, adopted or installed).
pub async fn once(config: AgentConfig, self_test: Option<SelfTest>) -> anyhow::Result<bool> {
    let _lock = statelock::acquire(&config.state_dir)?;
    let shared = Arc::new(Shared::prepare(config, self_test).await?);
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone())?;
    let mut tasks = JoinSet::new();
    for index in 0..shared.config.watches.len() {
        let shared = Arc::clone(&shared);
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let name = shared.config.watches[index].name.clone();
            let result = match shared.syncer(index).await {
                Ok(syncer) => syncer.sync_once(&cancel).await,
                Err(refused_or_unreachable) => Err(refused_or_unreachable),
            };
            (name, result)
        });
    }
    let mut all_ok = true;
    while let Some(joined) = tasks.join_next().await {
        let (watch, result) = joined.map_err(|err| anyhow::anyhow!("a sync task failed: {err}"))?;
        match result {
            Ok(outcome) => {
                if outcome.is_failure() {
                    all_ok = false;
                }
                report(&watch, &outcome);
            }
            Err(err) => {
                all_ok = false;
                tracing::error!(watch = %watch, "sync failed: {err}");
            }
        }
    }
    Ok(all_ok)
}

fn report(watch: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Unchanged => tracing::info!(watch, "up to date"),
        Outcome::SkippedBad => {
            tracing::warn!(
                watch,
                "the current object is marked bad; kept the installed version"
            )
        }
        Outcome::Adopted => tracing::info!(watch, "up to date (recorded the object's identity)"),
        Outcome::Installed { version, .. } => tracing::info!(watch, %version, "installed"),
        Outcome::Refused { reason } => tracing::error!(watch, "refused: {reason}"),
        Outcome::RolledBack { reason } => tracing::error!(watch, "rolled back: {reason}"),
    }
}
