//! Continuous HTTP load against a server, counting every failed request.
//!
//! Workers run closed-loop (one request at a time each) on a Tokio runtime in a
//! thread of their own, so sync tests can use it:
//!
//! - keep-alive: one connection reused for every request, like `wrk`; a new
//!   connection only after a response with `Connection: close`. A connection
//!   the server closes without saying so makes the next request fail, as it
//!   would for any real client: that is the keep-alive race.
//! - new connection: a fresh TCP connection per request (`Connection: close`);
//!   a refused connection is a failed request.
//! - slow: `/sleep?ms=N` on a fresh connection each time.
//!
//! A request fails on any connect, I/O or protocol error, a status other than
//! 200, or when it takes longer than the request timeout. Stopping lets
//! in-flight requests finish, so none is counted half-done.
//!
//! A worker that dies (panics) loses the requests it recorded; the report keeps
//! it as a [`WorkerFailure`], which counts as a failure, so such a report never
//! reads "0 failed". [`LoadReport::assert_window`] checks a change window: no
//! failure, enough requests of every kind inside it, and none slower than a
//! bound (a stall shorter than the request timeout fails there too).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONNECTION, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What kind of worker sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKind {
    /// Reused keep-alive connection, `GET /`.
    KeepAlive,
    /// New connection per request, `GET /`.
    NewConnection,
    /// New connection per request, `GET /sleep?ms=N`.
    Slow,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [RequestKind; 3] = [
        RequestKind::KeepAlive,
        RequestKind::NewConnection,
        RequestKind::Slow,
    ];
}

/// One finished request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Its worker kind.
    pub kind: RequestKind,
    /// When it started, counted from [`Load::start`].
    pub start: Duration,
    /// How long it took (until the whole body was read, or the failure).
    pub latency: Duration,
    /// Whether it succeeded.
    pub ok: bool,
    /// The response's status code, when a response head arrived.
    pub status: Option<u16>,
    /// The `x-hello-pid` of the response: the process that answered.
    pub served_by: Option<u32>,
}

/// A worker that died instead of stopping: its requests are not in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerFailure {
    /// Its kind, when known.
    pub kind: Option<RequestKind>,
    /// What happened (the panic message).
    pub message: String,
}

/// How much load, of which kinds.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Workers on keep-alive connections.
    pub keep_alive: usize,
    /// Workers opening a connection per request.
    pub new_connection: usize,
    /// Workers sending `/sleep?ms=slow_ms`.
    pub slow: usize,
    /// The delay asked of the slow endpoint.
    pub slow_ms: u64,
    /// Pause between a worker's requests (zero: back to back).
    pub pause: Duration,
    /// A request taking longer than this fails.
    pub request_timeout: Duration,
    /// Runtime worker threads generating the load.
    pub threads: usize,
}

impl Default for LoadConfig {
    /// 4 keep-alive, 4 new-connection and 2 slow (200 ms) workers, 1 ms pause,
    /// 30 s timeout, 1 thread: steady traffic that leaves CPU for the server.
    fn default() -> Self {
        LoadConfig {
            keep_alive: 4,
            new_connection: 4,
            slow: 2,
            slow_ms: 200,
            pause: Duration::from_millis(1),
            request_timeout: Duration::from_secs(30),
            threads: 1,
        }
    }
}

impl LoadConfig {
    /// How many workers send requests of `kind`.
    pub fn workers(&self, kind: RequestKind) -> usize {
        match kind {
            RequestKind::KeepAlive => self.keep_alive,
            RequestKind::NewConnection => self.new_connection,
            RequestKind::Slow => self.slow,
        }
    }
}

/// Running load; [`stop`](Load::stop) it to get the [`LoadReport`].
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    started: Instant,
    config: LoadConfig,
    thread: Option<JoinHandle<Collected>>,
}

/// The samples of the workers that stopped, and the workers that died.
type Collected = (Vec<Sample>, Vec<WorkerFailure>);

#[derive(Debug, Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

/// Failure messages kept for the report (the first ones).
const KEPT_ERRORS: usize = 20;

impl Load {
    /// Starts the workers against `addr`.
    ///
    /// # Panics
    /// If `addr` is not a loopback address (test load stays on this machine),
    /// or the runtime cannot be built.
    pub fn start(addr: SocketAddr, config: LoadConfig) -> Load {
        assert!(
            addr.ip().is_loopback(),
            "load goes to loopback addresses only, not {addr}"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let started = Instant::now();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .enable_all()
            .build()
            .expect("build the load generator's runtime");
        let load_config = config.clone();
        let worker = Worker {
            addr,
            config: config.clone(),
            stop: Arc::clone(&stop),
            counters: Arc::clone(&counters),
            started,
        };
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                let mut kinds = HashMap::new();
                for kind in RequestKind::ALL {
                    for _ in 0..config.workers(kind) {
                        let handle = tasks.spawn(worker.clone().run(kind));
                        kinds.insert(handle.id(), kind);
                    }
                }
                collect(tasks, &kinds).await
            })
        });
        Load {
            stop,
            counters,
            started,
            config: load_config,
            thread: Some(thread),
        }
    }

    /// Time since the load started: marks a window in [`Sample::start`]'s clock.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// When the load started; [`Sample::start`] counts from here.
    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// Requests finished so far: (succeeded, failed).
    pub fn progress(&self) -> (u64, u64) {
        (
            self.counters.ok.load(Ordering::SeqCst),
            self.counters.failed.load(Ordering::SeqCst),
        )
    }

    /// Stops the workers after their current request and reports.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let (samples, worker_failures) = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(collected)) => collected,
            Some(Err(panic)) => (
                Vec::new(),
                vec![WorkerFailure {
                    kind: None,
                    message: format!(
                        "the load generator's thread panicked: {}",
                        panic_message(panic.as_ref())
                    ),
                }],
            ),
            None => (Vec::new(), Vec::new()),
        };
        let errors = std::mem::take(
            &mut *self
                .counters
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        LoadReport {
            samples,
            errors,
            worker_failures,
            config: self.config.clone(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits for every worker; a worker that panicked becomes a [`WorkerFailure`].
async fn collect(
    mut tasks: tokio::task::JoinSet<Vec<Sample>>,
    kinds: &HashMap<tokio::task::Id, RequestKind>,
) -> Collected {
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(worker_samples) => samples.extend(worker_samples),
            Err(error) => {
                let kind = kinds.get(&error.id()).copied();
                let message = if error.is_panic() {
                    format!("panicked: {}", panic_message(error.into_panic().as_ref()))
                } else {
                    format!("did not finish: {error}")
                };
                failures.push(WorkerFailure { kind, message });
            }
        }
    }
    (samples, failures)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// A change under load, as offsets from the load's start ([`Load::elapsed`] when
/// the change began and when it was over), and what it must show.
#[derive(Debug, Clone)]
pub struct Window {
    /// From the change (e.g. the release command) until the old process has exited.
    pub span: Range<Duration>,
    /// Requests of each kind the load runs that must be in flight during the span
    /// (started before its end and finished after its start): a slow request that
    /// began just before the change and is drained during it counts.
    pub min_requests: usize,
    /// The longest a request overlapping the span may take beyond the delay it
    /// asked for (`/sleep?ms=N` asks for N ms).
    pub max_latency: Duration,
}

impl Window {
    /// Requests of each kind asked of a window by [`Window::new`]: the default
    /// load sends hundreds a second of the quick kinds and ten of the slow one, and
    /// an agent-driven handoff on an idle machine is over in about 0.6 s (about 8
    /// slow requests in flight), so 10 would fail a fast, clean handoff.
    pub const MIN_REQUESTS: usize = 5;
    /// Latency bound of [`Window::new`]: a handoff takes milliseconds; this
    /// leaves room for a busy test machine and still fails a stall that a
    /// 30 s request timeout would let pass.
    pub const MAX_LATENCY: Duration = Duration::from_secs(2);

    /// A window over `span` with [`MIN_REQUESTS`](Self::MIN_REQUESTS) and
    /// [`MAX_LATENCY`](Self::MAX_LATENCY).
    pub fn new(span: Range<Duration>) -> Window {
        Window {
            span,
            min_requests: Self::MIN_REQUESTS,
            max_latency: Self::MAX_LATENCY,
        }
    }
}

/// Every request of a load run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// One per finished request of the workers that stopped.
    pub samples: Vec<Sample>,
    /// The first failures' messages, with their kind and time.
    pub errors: Vec<String>,
    /// Workers that died: their requests are missing from `samples`.
    pub worker_failures: Vec<WorkerFailure>,
    /// How the load ran.
    pub config: LoadConfig,
}

impl LoadReport {
    /// Succeeded requests of `kind`.
    pub fn ok(&self, kind: RequestKind) -> usize {
        self.samples
            .iter()
            .filter(|s| s.kind == kind && s.ok)
            .count()
    }

    /// Failed requests of `kind`, plus one per dead worker of that kind (its
    /// requests are lost, so the count is at least that).
    pub fn failed(&self, kind: RequestKind) -> usize {
        let dead = self
            .worker_failures
            .iter()
            .filter(|f| f.kind == Some(kind))
            .count();
        self.samples
            .iter()
            .filter(|s| s.kind == kind && !s.ok)
            .count()
            + dead
    }

    /// Failed requests of every kind, plus one per dead worker: never 0 when a
    /// worker died.
    pub fn total_failed(&self) -> usize {
        self.samples.iter().filter(|s| !s.ok).count() + self.worker_failures.len()
    }

    /// Everything wrong with the run for `window`: each dead worker, each failed
    /// request (anywhere in the run) that `tolerated` does not accept, fewer
    /// than `window.min_requests` requests of a kind the load runs in flight
    /// during the span, and each request overlapping the span that took longer
    /// than `window.max_latency` beyond what it asked for. Empty when all is well.
    pub fn window_problems(
        &self,
        window: &Window,
        tolerated: impl Fn(&Sample) -> bool,
    ) -> Vec<String> {
        let mut problems: Vec<String> = self
            .worker_failures
            .iter()
            .map(|f| {
                format!(
                    "a {:?} worker died, its requests are lost: {}",
                    f.kind, f.message
                )
            })
            .collect();
        let failed = self
            .samples
            .iter()
            .filter(|s| !s.ok && !tolerated(s))
            .count();
        if failed > 0 {
            problems.push(format!("{failed} requests failed"));
        }
        for kind in RequestKind::ALL {
            if self.config.workers(kind) == 0 {
                continue;
            }
            let inside = self
                .samples
                .iter()
                .filter(|s| {
                    s.kind == kind
                        && s.start < window.span.end
                        && s.start + s.latency > window.span.start
                })
                .count();
            if inside < window.min_requests {
                problems.push(format!(
                    "only {inside} {kind:?} requests were in flight during the window {:?}, fewer than {}",
                    window.span, window.min_requests
                ));
            }
        }
        let slow: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.start < window.span.end && s.start + s.latency > window.span.start)
            .filter(|s| s.latency.saturating_sub(self.asked_delay(s.kind)) > window.max_latency)
            .collect();
        if let Some(slowest) = slow.iter().max_by_key(|s| s.latency) {
            problems.push(format!(
                "{} requests in the window took longer than {:?} (beyond the delay they asked \
                 for); the slowest: {slowest:?}",
                slow.len(),
                window.max_latency
            ));
        }
        problems
    }

    /// Asserts that [`window_problems`](Self::window_problems) finds nothing
    /// (no failure tolerated).
    ///
    /// # Panics
    /// With the problems, the [`summary`](Self::summary) and `context`.
    pub fn assert_window(&self, window: &Window, context: &str) {
        self.assert_window_tolerating(window, |_| false, context);
    }

    /// [`assert_window`](Self::assert_window), with failed requests that
    /// `tolerated` accepts left out (e.g. the 500 answers of a broken release).
    ///
    /// # Panics
    /// As [`assert_window`](Self::assert_window).
    pub fn assert_window_tolerating(
        &self,
        window: &Window,
        tolerated: impl Fn(&Sample) -> bool,
        context: &str,
    ) {
        let problems = self.window_problems(window, tolerated);
        assert!(
            problems.is_empty(),
            "the load does not show a clean change:\n- {}\n{}{context}",
            problems.join("\n- "),
            self.summary()
        );
    }

    /// Requests of `kind` that started inside `span`.
    pub fn started_within(&self, kind: RequestKind, span: &Range<Duration>) -> usize {
        self.samples
            .iter()
            .filter(|s| s.kind == kind && span.contains(&s.start))
            .count()
    }

    /// The longest request of the run.
    pub fn max_latency(&self) -> Duration {
        self.samples
            .iter()
            .map(|s| s.latency)
            .max()
            .unwrap_or_default()
    }

    /// One line per kind with its counts, the dead workers, then the kept error
    /// messages.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for kind in RequestKind::ALL {
            text.push_str(&format!(
                "{kind:?}: {} ok, {} failed\n",
                self.ok(kind),
                self.failed(kind)
            ));
        }
        for failure in &self.worker_failures {
            text.push_str(&format!(
                "  a {:?} worker died: {}\n",
                failure.kind, failure.message
            ));
        }
        for error in &self.errors {
            text.push_str(&format!("  {error}\n"));
        }
        text
    }

    /// The delay a request of `kind` asks the server for.
    fn asked_delay(&self, kind: RequestKind) -> Duration {
        match kind {
            RequestKind::Slow => Duration::from_millis(self.config.slow_ms),
            RequestKind::KeepAlive | RequestKind::NewConnection => Duration::ZERO,
        }
    }
}

#[derive(Clone)]
struct Worker {
    addr: SocketAddr,
    config: LoadConfig,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    started: Instant,
}

type Sender = SendRequest<Empty<Bytes>>;

/// What a response head said.
#[derive(Debug, Default)]
struct Answer {
    status: Option<u16>,
    served_by: Option<u32>,
}

impl Worker {
    async fn run(self, kind: RequestKind) -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut kept: Option<Sender> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let start = Instant::now();
            let mut answer = Answer::default();
            let outcome = tokio::time::timeout(
                self.config.request_timeout,
                self.request(kind, &mut kept, &mut answer),
            )
            .await
            .unwrap_or_else(|_| Err("timed out".to_owned()));
            let sample = Sample {
                kind,
                start: start - self.started,
                latency: start.elapsed(),
                ok: outcome.is_ok(),
                status: answer.status,
                served_by: answer.served_by,
            };
            if let Err(error) = outcome {
                // `request` dropped the connection it failed on.
                self.record_error(&sample, &error);
            } else {
                self.counters.ok.fetch_add(1, Ordering::SeqCst);
            }
            samples.push(sample);
            if !self.config.pause.is_zero() {
                tokio::time::sleep(self.config.pause).await;
            }
        }
        samples
    }

    /// One request; `kept` is the keep-alive connection, replaced as needed;
    /// `answer` gets what the response head said.
    async fn request(
        &self,
        kind: RequestKind,
        kept: &mut Option<Sender>,
        answer: &mut Answer,
    ) -> Result<(), String> {
        let (path, keep_alive) = match kind {
            RequestKind::KeepAlive => ("/".to_owned(), true),
            RequestKind::NewConnection => ("/".to_owned(), false),
            RequestKind::Slow => (format!("/sleep?ms={}", self.config.slow_ms), false),
        };
        let mut sender = match kept.take() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("connection closed before the request: {e}"))?;
        let mut request = Request::get(path.as_str()).header(HOST, self.addr.to_string());
        if !keep_alive {
            request = request.header(CONNECTION, "close");
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| format!("building the request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("sending {path}: {e}"))?;
        let status = response.status();
        answer.status = Some(status.as_u16());
        answer.served_by = response
            .headers()
            .get("x-hello-pid")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let server_closes = response
            .headers()
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the body of {path}: {e}"))?;
        if status != StatusCode::OK {
            return Err(format!("{path} answered {status}"));
        }
        if keep_alive && !server_closes {
            *kept = Some(sender);
        }
        Ok(())
    }

    async fn connect(&self) -> Result<Sender, String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(connection);
        Ok(sender)
    }

    fn record_error(&self, sample: &Sample, error: &str) {
        self.counters.failed.fetch_add(1, Ordering::SeqCst);
        let mut errors = self
            .counters
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if errors.len() < KEPT_ERRORS {
            errors.push(format!(
                "{:?} request started at {:?}: {error}",
                sample.kind, sample.start
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample(kind: RequestKind, start_ms: u64, latency_ms: u64, ok: bool) -> Sample {
        Sample {
            kind,
            start: Duration::from_millis(start_ms),
            latency: Duration::from_millis(latency_ms),
            ok,
            status: Some(if ok { 200 } else { 500 }),
            served_by: Some(1),
        }
    }

    fn window() -> Window {
        Window {
            span: Duration::from_millis(100)..Duration::from_millis(1000),
            min_requests: 2,
            max_latency: Duration::from_millis(500),
        }
    }

    /// Two requests of each kind inside the window, all quick.
    fn clean() -> LoadReport {
        let mut samples = Vec::new();
        for kind in RequestKind::ALL {
            samples.push(sample(kind, 200, 10, true));
            samples.push(sample(kind, 300, 10, true));
        }
        // The slow kind asks for 200 ms: 600 ms is 400 beyond it.
        samples.push(sample(RequestKind::Slow, 400, 600, true));
        LoadReport {
            samples,
            config: LoadConfig::default(),
            ..LoadReport::default()
        }
    }

    #[test]
    fn a_clean_window_has_no_problems() {
        assert_eq!(
            clean().window_problems(&window(), |_| false),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_empty_report_is_not_a_clean_window() {
        let report = LoadReport {
            config: LoadConfig::default(),
            ..LoadReport::default()
        };
        let problems = report.window_problems(&window(), |_| false);
        assert_eq!(problems.len(), 3, "{problems:?}");
        // A kind the load does not run needs no requests.
        let report = LoadReport {
            config: LoadConfig {
                slow: 0,
                ..LoadConfig::default()
            },
            ..clean()
        };
        let without_slow = LoadReport {
            samples: report
                .samples
                .iter()
                .filter(|s| s.kind != RequestKind::Slow)
                .copied()
                .collect(),
            ..report
        };
        assert!(
            without_slow
                .window_problems(&window(), |_| false)
                .is_empty()
        );
    }

    #[test]
    fn requests_outside_the_window_do_not_count_towards_its_minimum() {
        let mut report = clean();
        report.samples.retain(|s| s.kind != RequestKind::KeepAlive);
        report
            .samples
            .push(sample(RequestKind::KeepAlive, 50, 10, true));
        report
            .samples
            .push(sample(RequestKind::KeepAlive, 1000, 10, true));
        report
            .samples
            .push(sample(RequestKind::KeepAlive, 999, 10, true));
        let problems = report.window_problems(&window(), |_| false);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("only 1 KeepAlive"), "{problems:?}");
    }

    #[test]
    fn a_stall_inside_the_window_is_a_problem_even_without_a_failure() {
        let mut report = clean();
        // Started before the window, still running inside it.
        report
            .samples
            .push(sample(RequestKind::NewConnection, 90, 600, true));
        let problems = report.window_problems(&window(), |_| false);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("longer than 500ms"), "{problems:?}");
        // The same stall after the window is not this window's.
        let mut report = clean();
        report
            .samples
            .push(sample(RequestKind::NewConnection, 1000, 600, true));
        assert!(report.window_problems(&window(), |_| false).is_empty());
    }

    #[test]
    fn failures_count_unless_tolerated() {
        let mut report = clean();
        report
            .samples
            .push(sample(RequestKind::KeepAlive, 2000, 1, false));
        assert_eq!(report.total_failed(), 1);
        assert_eq!(report.window_problems(&window(), |_| false).len(), 1);
        assert!(
            report
                .window_problems(&window(), |s| s.status == Some(500))
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_dead_worker_is_a_failure_and_never_reads_zero_failed() {
        let mut tasks = tokio::task::JoinSet::new();
        let mut kinds = HashMap::new();
        let good = tasks.spawn(async { vec![sample(RequestKind::Slow, 200, 1, true)] });
        kinds.insert(good.id(), RequestKind::Slow);
        let dead = tasks.spawn(async {
            if Instant::now().elapsed() < Duration::from_secs(3600) {
                panic!("worker broke");
            }
            Vec::new()
        });
        kinds.insert(dead.id(), RequestKind::KeepAlive);
        let (samples, worker_failures) = collect(tasks, &kinds).await;
        assert_eq!(samples.len(), 1);
        assert_eq!(
            worker_failures,
            [WorkerFailure {
                kind: Some(RequestKind::KeepAlive),
                message: "panicked: worker broke".to_owned()
            }]
        );
        let report = LoadReport {
            samples,
            worker_failures,
            ..clean()
        };
        assert_eq!(report.total_failed(), 1);
        assert_eq!(report.failed(RequestKind::KeepAlive), 1);
        assert!(
            report.summary().contains("worker died"),
            "{}",
            report.summary()
        );
        let problems = report.window_problems(&window(), |_| true);
        assert!(
            problems.iter().any(|p| p.contains("worker died")),
            "{problems:?}"
        );
    }
}
