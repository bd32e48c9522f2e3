//! A TCP proxy between the agent and the S3 server, run on its own thread: it forwards
//! bytes unchanged and, for the tests, counts the HTTP requests by method (parsed from
//! the client's request heads), can throttle the server→client direction, and can be
//! stopped (listening socket closed, open connections cut: the agent sees a server
//! that is down) and started again on the same port. It can also rewrite the heads of
//! the server's responses ([`Proxy::rewrite_responses`]), to stand in for what a server
//! sends that moto does not (e.g. the headers of an SSE-KMS object).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Request counts by HTTP method.
pub type Counts = HashMap<String, u64>;

/// Rewrites one response head (status line and headers, ending in `\r\n\r\n`).
pub type Rewrite = Arc<dyn Fn(&str) -> String + Send + Sync>;

struct Shared {
    counts: Mutex<Counts>,
    /// While `true`, client→server bytes wait (requests are held, not refused).
    hold: watch::Sender<bool>,
    /// Server→client bytes per second; 0 = unlimited.
    rate: AtomicU64,
    /// Server→client bytes forwarded.
    bytes_down: AtomicU64,
    /// Applied to every response head of connections opened while it is set.
    rewrite: Mutex<Option<Rewrite>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            counts: Mutex::default(),
            hold: watch::channel(false).0,
            rate: AtomicU64::default(),
            bytes_down: AtomicU64::default(),
            rewrite: Mutex::default(),
        }
    }
}

/// The running proxy; stopped (thread and connections) on drop.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    /// `true` = serving; `false` = stopped (the accept loop and all connections end).
    running: Option<watch::Sender<bool>>,
}

impl Proxy {
    /// Starts forwarding from a free 127.0.0.1 port to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mut proxy = Proxy {
            addr,
            upstream,
            shared: Arc::new(Shared::default()),
            runtime: Some(runtime),
            running: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let (tx, rx) = watch::channel(true);
        let shared = Arc::clone(&self.shared);
        let upstream = self.upstream;
        self.runtime
            .as_ref()
            .expect("runtime lives until drop")
            .spawn(accept_loop(listener, upstream, shared, rx));
        self.running = Some(tx);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen so far, by method.
    pub fn counts(&self) -> Counts {
        self.shared.counts.lock().expect("counts lock").clone()
    }

    /// Requests of `method` seen so far.
    pub fn count(&self, method: &str) -> u64 {
        self.counts().get(method).copied().unwrap_or(0)
    }

    /// Forgets the counts.
    pub fn reset_counts(&self) {
        self.shared.counts.lock().expect("counts lock").clear();
    }

    /// Limits server→client throughput (`None` = unlimited).
    pub fn set_rate(&self, bytes_per_second: Option<u64>) {
        self.shared
            .rate
            .store(bytes_per_second.unwrap_or(0), Ordering::SeqCst);
    }

    /// Holds every client request (bytes wait in the proxy) until [`Proxy::unhold`]:
    /// the client sees a slow server, not an error.
    pub fn hold(&self) {
        self.shared.hold.send_replace(true);
    }

    /// Lets held requests through.
    pub fn unhold(&self) {
        self.shared.hold.send_replace(false);
    }

    /// Rewrites the head of every response on connections opened from now on (bodies
    /// are framed by Content-Length; HEAD, 1xx, 204 and 304 answers have none). Set it
    /// before the client connects.
    pub fn rewrite_responses(&self, rewrite: impl Fn(&str) -> String + Send + Sync + 'static) {
        *self.shared.rewrite.lock().expect("rewrite lock") = Some(Arc::new(rewrite));
    }

    /// Server→client bytes forwarded so far.
    pub fn bytes_down(&self) -> u64 {
        self.shared.bytes_down.load(Ordering::SeqCst)
    }

    /// Closes the listening socket and cuts every open connection: clients get
    /// "connection refused" until [`Proxy::resume`].
    pub fn stop(&mut self) {
        if let Some(tx) = self.running.take() {
            let _ = tx.send(false);
        }
        // Wait until the port is really closed.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(self.addr).is_ok() {
            assert!(std::time::Instant::now() < deadline, "proxy did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Listens again on the same port.
    pub fn resume(&mut self) {
        let addr = self.addr;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match self
                .runtime
                .as_ref()
                .expect("runtime lives until drop")
                .block_on(TcpListener::bind(addr))
            {
                Ok(listener) => break listener,
                Err(err) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "cannot listen on {addr} again: {err}"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.running.take() {
            let _ = tx.send(false);
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    running: watch::Receiver<bool>,
) {
    loop {
        let mut stop = running.clone();
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                let mut stop = running.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = forward(client, upstream, shared) => {}
                        _ = stop.wait_for(|r| !*r) => {}
                    }
                });
            }
            _ = stop.wait_for(|r| !*r) => return,
        }
    }
}

async fn forward(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let rewrite = shared.rewrite.lock().expect("rewrite lock").clone();
    // Methods of the requests sent on this connection, for framing their responses.
    let sent: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let up_sent = Arc::clone(&sent);
    let up_shared = Arc::clone(&shared);
    let up = async move {
        let mut hold = up_shared.hold.subscribe();
        let mut parser = RequestCounter::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if hold.wait_for(|held| !*held).await.is_err() {
                break;
            }
            for method in parser.feed(&buf[..n]) {
                up_sent.lock().expect("sent lock").push_back(method.clone());
                *up_shared
                    .counts
                    .lock()
                    .expect("counts lock")
                    .entry(method)
                    .or_insert(0) += 1;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut responses = rewrite.map(|rewrite| ResponseRewriter {
            rewrite,
            sent,
            head: Vec::new(),
            skip_body: 0,
        });
        loop {
            let rate = shared.rate.load(Ordering::SeqCst);
            let chunk = if rate == 0 {
                buf.len()
            } else {
                // ~20 slices per second keep the rate smooth.
                (rate / 20).clamp(1, buf.len() as u64) as usize
            };
            let n = match server_read.read(&mut buf[..chunk]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let written = match responses.as_mut() {
                Some(responses) => {
                    let out = responses.feed(&buf[..n]);
                    client_write.write_all(&out).await
                }
                None => client_write.write_all(&buf[..n]).await,
            };
            if written.is_err() {
                break;
            }
            shared.bytes_down.fetch_add(n as u64, Ordering::SeqCst);
            if rate != 0 {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Finds request heads in a client byte stream (requests without bodies, or with a
/// Content-Length body, which is skipped).
#[derive(Default)]
struct RequestCounter {
    head: Vec<u8>,
    skip_body: usize,
}

impl RequestCounter {
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut methods = Vec::new();
        while !bytes.is_empty() {
            if self.skip_body > 0 {
                let n = self.skip_body.min(bytes.len());
                self.skip_body -= n;
                bytes = &bytes[n..];
                continue;
            }
            self.head.push(bytes[0]);
            bytes = &bytes[1..];
            if self.head.ends_with(b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.head).into_owned();
                if let Some(method) = text.split_whitespace().next() {
                    methods.push(method.to_owned());
                }
                self.skip_body = header(&text, "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                self.head.clear();
            }
        }
        methods
    }
}

/// Finds response heads in a server byte stream and rewrites them; bodies pass as they are.
struct ResponseRewriter {
    rewrite: Rewrite,
    sent: Arc<Mutex<VecDeque<String>>>,
    head: Vec<u8>,
    skip_body: usize,
}

impl ResponseRewriter {
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        while !bytes.is_empty() {
            if self.skip_body > 0 {
                let n = self.skip_body.min(bytes.len());
                out.extend_from_slice(&bytes[..n]);
                self.skip_body -= n;
                bytes = &bytes[n..];
                continue;
            }
            self.head.push(bytes[0]);
            bytes = &bytes[1..];
            if self.head.ends_with(b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.head).into_owned();
                self.head.clear();
                let status: u16 = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let method = if (100..200).contains(&status) {
                    None // an interim answer: the request still waits for its own
                } else {
                    self.sent.lock().expect("sent lock").pop_front()
                };
                let bodiless = method.as_deref() == Some("HEAD")
                    || (100..200).contains(&status)
                    || status == 204
                    || status == 304;
                self.skip_body = if bodiless {
                    0
                } else {
                    header(&text, "content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                out.extend_from_slice((self.rewrite)(&text).as_bytes());
            }
        }
        out
    }
}

/// The value of header `name` (case-insensitive) in a message head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
