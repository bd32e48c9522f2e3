//! The "stop taking new work" signal shared by a process's servers and workers.

use tokio_util::sync::CancellationToken;

/// Fires once when the process must stop taking new work: a shutdown signal
/// arrived, [`Handoff::shutdown`](crate::Handoff::shutdown) was called, or an
/// upgrade handed the listeners to a successor.
///
/// Cheap to clone; all clones observe the same state. It never resets.
#[derive(Debug, Clone, Default)]
pub struct Draining {
    token: CancellationToken,
}

impl Draining {
    /// A signal that has not fired. Useful on its own to drive
    /// [`http::HttpServer`](crate::http::HttpServer) without a [`Handoff`](crate::Handoff).
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal (idempotent).
    pub fn start(&self) {
        self.token.cancel();
    }

    /// Whether the signal has fired.
    pub fn is_draining(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once the signal has fired (at once if it already has).
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }
}
