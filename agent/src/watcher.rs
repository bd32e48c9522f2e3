//! The poll loop of one watch: wait (first at a random offset, then interval ± jitter, or
//! backoff after errors), sync, log changes of condition, repeat until shutdown.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use crate::backoff::{ConditionLog, Schedule, Transition};
use crate::sync::{Outcome, SyncError, Syncer};
use crate::wiring::Shared;

/// Why a watch task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Shutdown was requested.
    Shutdown,
    /// The agent's own package was installed: the agent must re-execute itself.
    Reexec,
}

/// Runs the poll loop of watch number `index` until `cancel` fires or a self-update
/// requires a re-exec.
pub async fn run(shared: Arc<Shared>, index: usize, cancel: CancellationToken) -> Exit {
    let watch = &shared.config.watches[index];
    let mut rng = SmallRng::from_os_rng();
    let mut schedule = Schedule::new(
        watch.interval(&shared.config),
        watch.jitter(&shared.config),
        shared.config.backoff_max,
    );
    let mut conditions = ConditionLog::default();
    let mut skipped_bad_logged = false;
    let mut syncer: Option<Syncer> = None;
    let mut delay = schedule.first_delay(&mut rng);
    tracing::info!(
        watch = %watch.name,
        object = %format!("s3://{}/{}", watch.s3.bucket, watch.s3.key),
        interval = %humantime::format_duration(watch.interval(&shared.config)),
        first_poll_in = %humantime::format_duration(std::time::Duration::from_millis(delay.as_millis() as u64)),
        "watching"
    );
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Exit::Shutdown,
        }
        if syncer.is_none() {
            match shared.syncer(index).await {
                Ok(connected) => syncer = Some(connected),
                Err(err) => {
                    delay = schedule.after_failure(&mut rng);
                    report_failure(&mut conditions, &watch.name, &err, delay);
                    continue;
                }
            }
        }
        let Some(active) = syncer.as_ref() else {
            continue;
        };
        match active.sync_once(&cancel).await {
            Ok(outcome) => {
                if let Transition::Recovered {
                    condition,
                    occurrences,
                } = conditions.ok()
                {
                    let what = if ["S3 unreachable", "S3 slow", "S3 server error"]
                        .iter()
                        .any(|c| condition.starts_with(c))
                    {
                        "S3 reachable again"
                    } else {
                        "recovered"
                    };
                    tracing::info!(
                        watch = %watch.name,
                        failed_polls = occurrences,
                        "{what} (after: {condition}); polling every {}",
                        humantime::format_duration(watch.interval(&shared.config))
                    );
                }
                match &outcome {
                    Outcome::SkippedBad => {
                        if !skipped_bad_logged {
                            tracing::info!(watch = %watch.name, "the current object is marked bad; waiting for a newer release");
                            skipped_bad_logged = true;
                        }
                    }
                    Outcome::Unchanged => {}
                    _ => skipped_bad_logged = false,
                }
                if let Outcome::Installed { reexec: true, .. } = outcome {
                    return Exit::Reexec;
                }
                delay = schedule.after_success(&mut rng);
            }
            Err(SyncError::Cancelled) => return Exit::Shutdown,
            Err(err) => {
                delay = schedule.after_failure(&mut rng);
                report_failure(&mut conditions, &watch.name, &err, delay);
            }
        }
    }
}

fn report_failure(
    conditions: &mut ConditionLog,
    watch: &str,
    err: &SyncError,
    delay: std::time::Duration,
) {
    let next = humantime::format_duration(std::time::Duration::from_millis(
        (delay.as_millis() / 10 * 10) as u64,
    ));
    match conditions.failing(&err.condition()) {
        Transition::Failing => {
            tracing::warn!(
                watch,
                "{err} (will retry with backoff; next try in {next}; the service is not touched)"
            );
        }
        _ => tracing::debug!(watch, "still failing: {err}; next try in {next}"),
    }
}
