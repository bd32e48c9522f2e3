//! Turning signals into requests: the upgrade signal asks for an upgrade,
//! SIGTERM/SIGINT ask for a graceful shutdown, and a second SIGTERM/SIGINT
//! exits at once.

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

use crate::error::StartError;
use crate::events::{UpgradeRequest, signal_name};
use crate::state::Shared;

/// Installs the handlers and starts the task that serves them.
pub(crate) fn install(shared: Arc<Shared>, upgrade: SignalKind) -> Result<(), StartError> {
    let listen = |kind: SignalKind| {
        signal(kind).map_err(|source| StartError::Signal {
            signal: kind.as_raw_value(),
            source,
        })
    };
    let mut upgrade_signal = listen(upgrade)?;
    let mut terminate = listen(SignalKind::terminate())?;
    let mut interrupt = listen(SignalKind::interrupt())?;
    let upgrade_raw = upgrade.as_raw_value();

    tokio::spawn(async move {
        let mut stop_signals = 0u32;
        loop {
            let stop = tokio::select! {
                Some(()) = upgrade_signal.recv() => {
                    shared.request_upgrade(UpgradeRequest::Signal(upgrade_raw));
                    continue;
                }
                Some(()) = terminate.recv() => SignalKind::terminate().as_raw_value(),
                Some(()) = interrupt.recv() => SignalKind::interrupt().as_raw_value(),
                else => break,
            };
            stop_signals += 1;
            if stop_signals == 1 {
                shared.request_shutdown(Some(stop));
            } else {
                tracing::warn!(
                    pid = std::process::id(),
                    "second {}: exiting at once without finishing in-flight work",
                    signal_name(stop)
                );
                std::process::exit(128 + stop);
            }
        }
    });
    Ok(())
}
