//! Health checks after a handoff: an HTTP URL that must answer 2xx within a deadline, or a
//! systemd unit that must stay active with the new MainPID for a while.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::task::AbortOnDropHandle;

use super::signal;
use crate::config::HealthConfig;

const RETRY: Duration = Duration::from_millis(100);
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);
const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

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
///
/// Each attempt gets a third of `within`, clamped to 250 ms – 2 s, so one connection
/// that is never answered cannot use up the whole window; a failed attempt is logged at
/// debug level with the step that failed (resolve, connect, request, no answer).
pub async fn check_http(url: &str, within: Duration) -> Result<(), HealthError> {
    let failure = |last: String| HealthError::Http {
        url: url.to_owned(),
        within: humantime::format_duration(within).to_string(),
        last,
    };
    let target = HttpTarget::parse(url).map_err(failure)?;
    let per_attempt = (within / 3).clamp(MIN_ATTEMPT_TIMEOUT, MAX_ATTEMPT_TIMEOUT);
    let started = Instant::now();
    let deadline = started + within;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let attempt_deadline = deadline.min(Instant::now() + per_attempt);
        let last = match target.get(attempt_deadline).await {
            Ok(status) if status.is_success() => return Ok(()),
            Ok(status) => format!("status {status}"),
            Err(err) => err,
        };
        tracing::debug!(
            url,
            attempt,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "health check attempt failed: {last}"
        );
        if Instant::now() + RETRY >= deadline {
            return Err(failure(last));
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Where an http:// health URL points, and the request to send there.
#[derive(Debug)]
struct HttpTarget {
    /// Host name or IP address, without the brackets of an IPv6 literal.
    host: String,
    port: u16,
    /// The `Host` header: host and port as written in the URL, without any userinfo.
    host_header: String,
    /// Origin-form request target: path (at least `/`) and query.
    path: String,
}

impl HttpTarget {
    fn parse(url: &str) -> Result<HttpTarget, String> {
        let uri: hyper::Uri = url.parse().map_err(|err| format!("invalid URL: {err}"))?;
        if uri.scheme_str() != Some("http") {
            return Err("not an http:// URL".to_owned());
        }
        let written_host = uri.host().ok_or_else(|| "the URL has no host".to_owned())?;
        let host_header = match uri.port() {
            Some(port) => format!("{written_host}:{port}"),
            None => written_host.to_owned(),
        };
        let path = match (uri.path(), uri.query()) {
            ("", None) => "/".to_owned(),
            ("", Some(query)) => format!("/?{query}"),
            (path, None) => path.to_owned(),
            (path, Some(query)) => format!("{path}?{query}"),
        };
        Ok(HttpTarget {
            host: written_host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port_u16().unwrap_or(80),
            host_header,
            path,
        })
    }

    /// One `GET` on a new connection (`Connection: close`), given up at `deadline`: the
    /// answer's status, or which step failed.
    async fn get(&self, deadline: Instant) -> Result<hyper::StatusCode, String> {
        let request = hyper::Request::get(self.path.as_str())
            .header(hyper::header::HOST, self.host_header.as_str())
            .header(hyper::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|err| format!("cannot build the request: {err}"))?;
        let (stream, addr) = self.connect(deadline).await?;
        let connected = Instant::now();
        let exchange = async {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            // Drives the connection until the answer is read; aborted when we are done
            // or give up.
            let _driver = AbortOnDropHandle::new(tokio::spawn(connection));
            sender.send_request(request).await
        };
        match tokio::time::timeout_at(deadline.into(), exchange).await {
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(err)) => Err(format!(
                "connected to {addr}, but the request failed: {err}"
            )),
            Err(_) => Err(format!(
                "connected to {addr}, but no answer within {}",
                millis(deadline.saturating_duration_since(connected))
            )),
        }
    }

    /// Resolves the host and connects to its addresses in turn, each given an equal share
    /// of the time left (so an address that drops packets cannot keep the next one from
    /// being tried).
    async fn connect(&self, deadline: Instant) -> Result<(TcpStream, SocketAddr), String> {
        let lookup = tokio::net::lookup_host((self.host.as_str(), self.port));
        let addrs: Vec<SocketAddr> = match tokio::time::timeout_at(deadline.into(), lookup).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(err)) => return Err(format!("cannot resolve {}: {err}", self.host)),
            Err(_) => return Err(format!("cannot resolve {} in time", self.host)),
        };
        let mut last = format!("{} resolves to no address", self.host);
        for (tried, addr) in addrs.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            let share = left / u32::try_from(addrs.len() - tried).unwrap_or(u32::MAX);
            last = match tokio::time::timeout(share, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok((stream, *addr)),
                Ok(Err(err)) => format!("cannot connect to {addr}: {err}"),
                Err(_) => format!("cannot connect to {addr} within {}", millis(share)),
            };
        }
        Err(last)
    }
}

/// `d` to the millisecond, for messages.
fn millis(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64))
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
    async fn a_connection_never_answered_does_not_use_up_the_window() {
        // The first connection is accepted and held without an answer; later ones get 200.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://localhost:{}/healthz",
            listener.local_addr().unwrap().port()
        );
        let task = tokio::spawn(async move {
            // Kept open, never answered, for as long as the task runs.
            let (_held, _) = listener.accept().await.unwrap();
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        check_http(&url, Duration::from_secs(3)).await.unwrap();
        task.abort();
    }

    #[tokio::test]
    async fn a_listener_that_never_answers_fails_naming_the_wait() {
        // Listening (the kernel completes connections) but never accepting.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let err = check_http(&url, Duration::from_millis(900))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("but no answer within"), "{err}");
        drop(listener);
    }

    #[test]
    fn the_request_names_host_and_path_as_written_without_userinfo() {
        let cases = [
            (
                "http://127.0.0.1:8080/healthz",
                "127.0.0.1",
                8080,
                "127.0.0.1:8080",
                "/healthz",
            ),
            (
                "http://u:p@example.com/x?y=1",
                "example.com",
                80,
                "example.com",
                "/x?y=1",
            ),
            (
                "http://example.com?ready",
                "example.com",
                80,
                "example.com",
                "/?ready",
            ),
            ("http://[::1]:9000", "::1", 9000, "[::1]:9000", "/"),
        ];
        for (url, host, port, host_header, path) in cases {
            let target = HttpTarget::parse(url).unwrap();
            assert_eq!(
                (
                    target.host.as_str(),
                    target.port,
                    target.host_header.as_str(),
                    target.path.as_str()
                ),
                (host, port, host_header, path),
                "{url}"
            );
        }
        assert!(HttpTarget::parse("https://example.com/").is_err());
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
