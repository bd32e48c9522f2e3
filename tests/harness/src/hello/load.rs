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

use std::net::SocketAddr;
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

/// Running load; [`stop`](Load::stop) it to get the [`LoadReport`].
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    started: Instant,
    thread: Option<JoinHandle<Vec<Vec<Sample>>>>,
}

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
                let kinds = [
                    (RequestKind::KeepAlive, config.keep_alive),
                    (RequestKind::NewConnection, config.new_connection),
                    (RequestKind::Slow, config.slow),
                ];
                for (kind, count) in kinds {
                    for _ in 0..count {
                        tasks.spawn(worker.clone().run(kind));
                    }
                }
                let mut samples = Vec::new();
                while let Some(result) = tasks.join_next().await {
                    samples.push(result.unwrap_or_default());
                }
                samples
            })
        });
        Load {
            stop,
            counters,
            started,
            thread: Some(thread),
        }
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
        let samples = self
            .thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect();
        let errors = std::mem::take(
            &mut *self
                .counters
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        LoadReport { samples, errors }
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

/// Every request of a load run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// One per finished request.
    pub samples: Vec<Sample>,
    /// The first failures' messages, with their kind and time.
    pub errors: Vec<String>,
}

impl LoadReport {
    /// Succeeded requests of `kind`.
    pub fn ok(&self, kind: RequestKind) -> usize {
        self.samples
            .iter()
            .filter(|s| s.kind == kind && s.ok)
            .count()
    }

    /// Failed requests of `kind`.
    pub fn failed(&self, kind: RequestKind) -> usize {
        self.samples
            .iter()
            .filter(|s| s.kind == kind && !s.ok)
            .count()
    }

    /// Failed requests of every kind.
    pub fn total_failed(&self) -> usize {
        self.samples.iter().filter(|s| !s.ok).count()
    }

    /// One line per kind with its counts, then the kept error messages.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for kind in [
            RequestKind::KeepAlive,
            RequestKind::NewConnection,
            RequestKind::Slow,
        ] {
            text.push_str(&format!(
                "{kind:?}: {} ok, {} failed\n",
                self.ok(kind),
                self.failed(kind)
            ));
        }
        for error in &self.errors {
            text.push_str(&format!("  {error}\n"));
        }
        text
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

impl Worker {
    async fn run(self, kind: RequestKind) -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut kept: Option<Sender> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let start = Instant::now();
            let outcome =
                tokio::time::timeout(self.config.request_timeout, self.request(kind, &mut kept))
                    .await
                    .unwrap_or_else(|_| Err("timed out".to_owned()));
            let sample = Sample {
                kind,
                start: start - self.started,
                latency: start.elapsed(),
                ok: outcome.is_ok(),
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

    /// One request; `kept` is the keep-alive connection, replaced as needed.
    async fn request(&self, kind: RequestKind, kept: &mut Option<Sender>) -> Result<(), String> {
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
