//! Health checks after a handoff: an HTTP URL that must answer 2xx within a deadline, or a
//! systemd unit that must stay active with the new MainPID for a while.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::signal;
use crate::config::HealthConfig;

const RETRY: Duration = Duration::from_millis(100);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the service is considered unhealthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The URL never answered 2xx in time.
    #[error("health check `GET {url}` got no 2xx answer within {within}: last {last}")]
    Http {
        /// The URL.
        url: String,
        /// The deadline.
        within: String,
        /// The last answer or error.
        last: String,
    },
    /// The unit did not stay up with the expected main process.
    #[error("unit {unit} did not stay active with MainPID {expected} for {stable_for}: {seen}")]
    Unit {
        /// The unit.
        unit: String,
        /// The pid the handoff confirmed.
        expected: String,
        /// The required duration.
        stable_for: String,
        /// What was seen instead.
        seen: String,
    },
    /// The check itself could not run (e.g. systemctl missing).
    #[error("health check could not run: {0}")]
    Check(String),
}

/// Runs the configured check. `new_pid` is the process the handoff confirmed (used by the
/// unit check; when `None` the unit check only requires the unit to stay active).
pub async fn check(config: &HealthConfig, new_pid: Option<i32>) -> Result<(), HealthError> {
    match config {
        HealthConfig::Http { url, within } => check_http(url, *within).await,
        HealthConfig::Unit { unit, stable_for } => check_unit(unit, *stable_for, new_pid).await,
        HealthConfig::None => Ok(()),
    }
}

/// `GET url` on a fresh connection each attempt (so a kept-alive connection to the old
/// process cannot answer for the new one) until a 2xx answer or `within` has passed.
pub async fn check_http(url: &str, within: Duration) -> Result<(), HealthError> {
    let uri: hyper::Uri = url.parse().map_err(|err| HealthError::Http {
        url: url.to_owned(),
        within: humantime::format_duration(within).to_string(),
        last: format!("invalid URL: {err}"),
    })?;
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<Empty<Bytes>>();
    let deadline = Instant::now() + within;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let request = hyper::Request::get(uri.clone())
            .header(hyper::header::CONNECTION, "close")
            .body(Empty::new())
            .map_err(|err| HealthError::Check(err.to_string()))?;
        let last =
            match tokio::time::timeout(remaining.min(ATTEMPT_TIMEOUT), client.request(request))
                .await
            {
                Ok(Ok(response)) if response.status().is_success() => return Ok(()),
                Ok(Ok(response)) => format!("status {}", response.status()),
                Ok(Err(err)) => format!("error: {err:?}"),
                Err(_) => "no answer (timed out)".to_owned(),
            };
        if Instant::now() + RETRY >= deadline {
            return Err(HealthError::Http {
                url: url.to_owned(),
                within: humantime::format_duration(within).to_string(),
                last,
            });
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// The unit must be `active` with MainPID `expected` (when given) for `stable_for`.
pub async fn check_unit(
    unit: &str,
    stable_for: Duration,
    expected: Option<i32>,
) -> Result<(), HealthError> {
    let deadline = Instant::now() + stable_for;
    let failure = |seen: String| HealthError::Unit {
        unit: unit.to_owned(),
        expected: expected.map_or_else(|| "any".to_owned(), |p| p.to_string()),
        stable_for: humantime::format_duration(stable_for).to_string(),
        seen,
    };
    loop {
        let state = signal::active_state(unit)
            .await
            .map_err(|err| HealthError::Check(err.to_string()))?;
        if state != "active" {
            return Err(failure(format!("ActiveState={state}")));
        }
        let pid = signal::main_pid(unit)
            .await
            .map_err(|err| HealthError::Check(err.to_string()))?;
        if let Some(expected) = expected
            && pid != Some(expected)
        {
            return Err(failure(format!("MainPID={}", pid.unwrap_or(0))));
        }
        if Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A real listener answering every request with `status` (one response per connection).
    async fn serve(status: &'static str) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        (format!("http://{addr}/healthz"), task)
    }

    #[tokio::test]
    async fn ok_answer_passes() {
        let (url, task) = serve("200 OK").await;
        check_http(&url, Duration::from_secs(2)).await.unwrap();
        task.abort();
    }

    #[tokio::test]
    async fn error_answer_fails_after_deadline_and_says_why() {
        let (url, task) = serve("500 Internal Server Error").await;
        let started = Instant::now();
        let err = check_http(&url, Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(350));
        assert!(err.to_string().contains("500"), "{err}");
        task.abort();
    }

    #[tokio::test]
    async fn refused_connection_fails() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = check_http(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("error"), "{err}");
    }
}
