//! `HttpServer`'s drain on real sockets: keep-alive connections get
//! `Connection: close` instead of a reset, idle ones close after the grace
//! period, the deadline bounds everything, and accepting stops at once.

// Test helpers unwrap like the tests themselves (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use handoff::http::{DrainPolicy, DrainReport, HttpServer};
use handoff::{Draining, Listener};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};

/// `/` answers at once, `/slow` after 60 s.
async fn respond(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"hi"))))
}

struct Server {
    addr: SocketAddr,
    draining: Draining,
    done: tokio::task::JoinHandle<DrainReport>,
}

async fn start(policy: DrainPolicy) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let draining = Draining::new();
    let done = tokio::spawn(
        HttpServer::new(service_fn(respond))
            .drain_policy(policy)
            .serve(vec![Listener::Tcp(listener)], draining.clone()),
    );
    Server {
        addr,
        draining,
        done,
    }
}

/// Sends `GET path` on `stream` (keep-alive) and returns the response head in
/// lower case; reads the 2-byte body of `/`.
fn exchange(stream: &mut TcpStream, path: &str) -> String {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "connection closed mid-head"
        );
        received.push(byte[0]);
    }
    let mut body = [0u8; 2];
    stream.read_exact(&mut body).unwrap();
    assert_eq!(&body, b"hi");
    String::from_utf8(received).unwrap().to_ascii_lowercase()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Blocks until the server closes `stream` (EOF or reset).
fn wait_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected the connection to close, got {n} more bytes"),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::ConnectionReset),
            "expected close, got {e}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_request_on_a_keep_alive_connection_is_answered_with_connection_close() {
    let server = start(DrainPolicy {
        idle_grace: Duration::from_secs(30),
        deadline: Duration::from_secs(60),
    })
    .await;
    let addr = server.addr;
    let draining = server.draining.clone();
    let report = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        let before = exchange(&mut stream, "/");
        assert!(!before.contains("connection: close"), "{before}");

        draining.start();
        // The connection is idle now; a plain graceful shutdown would close it
        // and this request would meet a reset. Within the grace period it is
        // answered, and the answer says the connection ends.
        let after = exchange(&mut stream, "/");
        assert!(after.starts_with("http/1.1 200"), "{after}");
        assert!(after.contains("connection: close"), "{after}");
        wait_closed(&mut stream);
    });
    report.await.unwrap();
    let report = server.done.await.unwrap();
    assert_eq!(report.forced, 0);
    assert_eq!(report.open_at_start, 1);
    assert!(
        report.elapsed < Duration::from_secs(30),
        "the drain ended when the last connection closed, not at the grace period: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_only_after_the_grace_period() {
    let grace = Duration::from_millis(300);
    let server = start(DrainPolicy {
        idle_grace: grace,
        deadline: Duration::from_secs(60),
    })
    .await;
    let addr = server.addr;
    let draining = server.draining.clone();
    tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        exchange(&mut stream, "/");
        let drain_started = Instant::now();
        draining.start();
        wait_closed(&mut stream);
        let idle_for = drain_started.elapsed();
        assert!(
            idle_for >= grace,
            "an idle connection was closed after {idle_for:?}, before the {grace:?} grace period"
        );
    })
    .await
    .unwrap();
    let report = server.done.await.unwrap();
    assert_eq!(report.forced, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_closes_connections_with_unfinished_work() {
    let deadline = Duration::from_millis(500);
    let server = start(DrainPolicy {
        idle_grace: Duration::from_millis(100),
        deadline,
    })
    .await;
    let addr = server.addr;
    let mut stream = connect(addr);
    write!(stream, "GET /slow HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    // Make sure the first connection was accepted before draining: connections
    // are accepted in order, so once a later one is served, it was.
    let mut probe = connect(addr);
    exchange(&mut probe, "/");
    drop(probe);

    server.draining.start();
    let report = tokio::time::timeout(Duration::from_secs(20), server.done)
        .await
        .expect("serve returns shortly after the deadline")
        .unwrap();
    assert_eq!(report.forced, 1, "{report}");
    assert!(report.elapsed >= deadline, "{report}");
    tokio::task::spawn_blocking(move || wait_closed(&mut stream))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_stops_when_the_drain_starts() {
    // A request in flight keeps `serve` draining (until the deadline), so a refused
    // connection shows that the listener closed when the drain started, not that
    // `serve` returned.
    let deadline = Duration::from_secs(3);
    let server = start(DrainPolicy {
        idle_grace: Duration::from_millis(100),
        deadline,
    })
    .await;
    let addr = server.addr;
    let mut in_flight = connect(addr);
    write!(in_flight, "GET /slow HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut probe = connect(addr);
    exchange(&mut probe, "/");
    drop(probe);

    let drain_started = Instant::now();
    server.draining.start();
    let refused_after = tokio::task::spawn_blocking(move || {
        loop {
            match TcpStream::connect(addr) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return drain_started.elapsed();
                }
                Err(e) => panic!("connecting while draining: {e}"),
                Ok(_) => {
                    assert!(
                        drain_started.elapsed() < Duration::from_secs(1),
                        "still accepting connections 1 s into the drain"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    })
    .await
    .unwrap();
    assert!(
        !server.done.is_finished(),
        "serve had returned already ({refused_after:?} into the drain): the test shows nothing"
    );
    assert!(refused_after < deadline, "{refused_after:?}");
    let report = tokio::time::timeout(Duration::from_secs(20), server.done)
        .await
        .expect("serve returns shortly after the deadline")
        .unwrap();
    assert_eq!(report.forced, 1, "the request in flight: {report}");
    tokio::task::spawn_blocking(move || wait_closed(&mut in_flight))
        .await
        .unwrap();
}
