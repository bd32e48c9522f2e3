//! An HTTP/1.1 server for hyper services that drains without failing requests.
//!
//! # The keep-alive race
//!
//! Closing an idle keep-alive connection races with a client that is sending
//! its next request on it at that moment: the client sees a reset and counts a
//! failed request. hyper's `graceful_shutdown` (like Go's `Server.Shutdown`)
//! closes idle HTTP/1 connections at once, so it cannot be the whole answer.
//!
//! [`HttpServer`] drains in three steps once [`Draining`] fires:
//! 1. it stops accepting (the listeners are dropped; a successor holding the
//!    same sockets accepts from then on);
//! 2. every response on an open connection carries `Connection: close` and the
//!    connection closes right after it, so busy clients reconnect (to the
//!    successor) without losing a request;
//! 3. connections still open after the idle grace period are shut down
//!    gracefully (idle ones close, busy ones after their current response), and
//!    whatever is left at the deadline is closed.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::header::{CONNECTION, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::draining::Draining;
use crate::listener::{Listener, Stream};

type BoxError = Box<dyn StdError + Send + Sync>;

/// A hyper service [`HttpServer`] can run: implemented for every
/// `Service<Request<Incoming>>` answering `Response<B>` that is `Clone + Send +
/// Sync + 'static`, with a `Send` future and a `Send` body (e.g. one built with
/// [`hyper::service::service_fn`]).
pub trait HttpService:
    Service<
        Request<Incoming>,
        Response = Response<Self::ResponseBody>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body type.
    type ResponseBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> HttpService for S
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type ResponseBody = B;
}

/// How a drain proceeds; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainPolicy {
    /// How long open connections get to send one more request (answered with
    /// `Connection: close`) before idle ones are closed. Default 1 s.
    pub idle_grace: Duration,
    /// When, counted from the start of the drain, remaining connections are
    /// closed even with requests in flight. Default 30 s.
    pub deadline: Duration,
}

impl Default for DrainPolicy {
    fn default() -> Self {
        DrainPolicy {
            idle_grace: Duration::from_secs(1),
            deadline: Duration::from_secs(30),
        }
    }
}

/// What happened during a drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections open when the drain started.
    pub open_at_start: usize,
    /// Connections closed at the deadline with work unfinished.
    pub forced: usize,
    /// From the drain signal until the last connection closed.
    pub elapsed: Duration,
}

impl std::fmt::Display for DrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} connections open at drain start, {} forced closed at the deadline, drained in {:?}",
            self.open_at_start, self.forced, self.elapsed
        )
    }
}

/// Serves a hyper service over HTTP/1.1 on [`Listener`]s until a [`Draining`]
/// signal, then drains (see the [module docs](self)).
///
/// ```no_run
/// # async fn demo(handoff: handoff::Handoff, listener: handoff::Listener) {
/// use std::convert::Infallible;
/// use hyper::{Request, Response, body::Incoming, service::service_fn};
/// let service = service_fn(|_req: Request<Incoming>| async {
///     Ok::<_, Infallible>(Response::new("hello\n".to_owned()))
/// });
/// let report = handoff::http::HttpServer::new(service)
///     .serve(vec![listener], handoff.draining())
///     .await;
/// println!("{report}");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HttpServer<S> {
    service: S,
    policy: DrainPolicy,
    header_read_timeout: Duration,
}

impl<S: HttpService> HttpServer<S> {
    /// A server for `service` with the default [`DrainPolicy`] and a 30 s
    /// header read timeout.
    pub fn new(service: S) -> Self {
        HttpServer {
            service,
            policy: DrainPolicy::default(),
            header_read_timeout: Duration::from_secs(30),
        }
    }

    /// Sets how draining proceeds.
    pub fn drain_policy(mut self, policy: DrainPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how long a client may take to send a request head.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Accepts on every listener until `draining` fires, then drains and
    /// returns once every connection is closed (at the latest shortly after the
    /// deadline). Accept errors are logged and retried after a short pause.
    pub async fn serve(self, listeners: Vec<Listener>, draining: Draining) -> DrainReport {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let connections = Connections {
            builder: Arc::new(builder),
            draining: draining.clone(),
            force_close: CancellationToken::new(),
            policy: self.policy,
            tracker: TaskTracker::new(),
            open: Arc::new(AtomicUsize::new(0)),
            forced: Arc::new(AtomicUsize::new(0)),
        };

        let mut accept_loops = JoinSet::new();
        for listener in listeners {
            accept_loops.spawn(accept_loop(
                listener,
                self.service.clone(),
                connections.clone(),
            ));
        }
        draining.wait().await;
        let started = Instant::now();
        // Every loop sees the drain signal and returns, dropping its listener.
        while accept_loops.join_next().await.is_some() {}
        let open_at_start = connections.open.load(Ordering::SeqCst);

        connections.tracker.close();
        let deadline = started + self.policy.deadline;
        if tokio::time::timeout_at(deadline, connections.tracker.wait())
            .await
            .is_err()
        {
            connections.force_close.cancel();
            connections.tracker.wait().await;
        }
        let report = DrainReport {
            open_at_start,
            forced: connections.forced.load(Ordering::SeqCst),
            elapsed: started.elapsed(),
        };
        if report.forced > 0 {
            tracing::warn!("drain deadline reached: {report}");
        } else {
            tracing::info!("drained: {report}");
        }
        report
    }
}

/// What every connection task shares.
#[derive(Clone)]
struct Connections {
    builder: Arc<http1::Builder>,
    draining: Draining,
    force_close: CancellationToken,
    policy: DrainPolicy,
    tracker: TaskTracker,
    open: Arc<AtomicUsize>,
    forced: Arc<AtomicUsize>,
}

async fn accept_loop<S: HttpService>(listener: Listener, service: S, connections: Connections) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = connections.draining.wait() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(stream) => {
                let service = CloseWhenDraining {
                    inner: service.clone(),
                    draining: connections.draining.clone(),
                };
                connections
                    .tracker
                    .spawn(serve_connection(stream, service, connections.clone()));
            }
            Err(e) => {
                // EMFILE and friends: pause instead of spinning; the connection
                // waits in the queue.
                tracing::warn!("accept failed: {e}; retrying shortly");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection<S: HttpService>(
    stream: Stream,
    service: CloseWhenDraining<S>,
    connections: Connections,
) {
    connections.open.fetch_add(1, Ordering::SeqCst);
    let _open = DecrementOnDrop(Arc::clone(&connections.open));
    let connection = connections
        .builder
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);

    // Serving: until the drain starts.
    tokio::select! {
        biased;
        result = connection.as_mut() => return log_end(result),
        () = connections.draining.wait() => {}
    }
    // Grace: responses now carry `Connection: close`, so an active client
    // finishes here after its next response.
    tokio::select! {
        result = connection.as_mut() => return log_end(result),
        () = tokio::time::sleep(connections.policy.idle_grace) => {}
        () = connections.force_close.cancelled() => {
            connections.forced.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    // Idle for the whole grace period (or a long request): close idle ones now,
    // busy ones after their response.
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        result = connection.as_mut() => log_end(result),
        () = connections.force_close.cancelled() => {
            connections.forced.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn log_end(result: hyper::Result<()>) {
    if let Err(e) = result {
        tracing::debug!("connection ended with an error: {e}");
    }
}

struct DecrementOnDrop(Arc<AtomicUsize>);

impl Drop for DecrementOnDrop {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Adds `Connection: close` to responses completed while draining, which makes
/// hyper close the connection after writing them.
#[derive(Clone)]
struct CloseWhenDraining<S> {
    inner: S,
    draining: Draining,
}

type ResponseFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

impl<S, B> Service<Request<Incoming>> for CloseWhenDraining<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = ResponseFuture<B, S::Error>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let response = self.inner.call(request);
        let draining = self.draining.clone();
        Box::pin(async move {
            let mut response = response.await?;
            if draining.is_draining() {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}
