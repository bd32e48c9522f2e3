//! SIGTERM: finish in-flight work, refuse new connections, exit 0 within the
//! deadline; a second SIGTERM exits at once.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hoist_testkit::hello::{HelloCommand, SlowRequest, wait_until};
use nix::sys::signal::Signal;

use crate::support::{EXIT, REQUEST, START, hello_binary};

#[test]
fn sigterm_finishes_the_request_in_flight_and_refuses_new_connections() {
    let mut hello = HelloCommand::new(hello_binary())
        .drain_deadline(Duration::from_secs(20))
        .spawn();
    let first = hello.wait_serving(START);
    let sent = Instant::now();
    let slow = SlowRequest::start(hello.addr(), "/sleep?ms=8000", REQUEST).unwrap();
    assert_eq!(slow.serving_pid(), Some(first.pid));

    hello.signal(first.pid, Signal::SIGTERM);
    // The listener closes while the request is still in flight (its body
    // cannot arrive before 8 s after it was sent).
    wait_until(
        "new connections to be refused",
        Duration::from_secs(6),
        || match TcpStream::connect_timeout(&hello.addr(), Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Some(()),
            _ => None,
        },
    );

    assert!(sent.elapsed() < Duration::from_secs(8));

    let done = slow.finish().expect("the request in flight completes");
    assert_eq!(done.status, 200);
    let body: serde_json::Value = serde_json::from_str(&done.body).unwrap();
    assert_eq!(body["slept_ms"], 8000);
    assert_eq!(hello.wait_exit(EXIT).code(), Some(0));
    assert!(
        !hello.pidfile().exists(),
        "the pidfile is removed on shutdown"
    );
}

#[test]
fn the_drain_deadline_bounds_shutdown() {
    let mut hello = HelloCommand::new(hello_binary())
        .drain_deadline(Duration::from_millis(500))
        .spawn();
    hello.wait_serving(START);
    let slow = SlowRequest::start(hello.addr(), "/sleep?ms=600000", REQUEST).unwrap();

    hello.signal(hello.pid(), Signal::SIGTERM);
    assert_eq!(hello.wait_exit(EXIT).code(), Some(0));
    hello.wait_for_log("forced closed at the deadline", 1, START);
    assert!(slow.finish().is_err(), "the unfinished request was cut off");
}

#[test]
fn a_second_sigterm_exits_at_once() {
    let mut hello = HelloCommand::new(hello_binary())
        .drain_deadline(Duration::from_secs(600))
        .spawn();
    hello.wait_serving(START);
    let slow = SlowRequest::start(hello.addr(), "/sleep?ms=600000", REQUEST).unwrap();

    hello.signal(hello.pid(), Signal::SIGTERM);
    hello.wait_for_log("draining: shutdown on SIGTERM", 1, START);
    hello.signal(hello.pid(), Signal::SIGTERM);
    let status = hello.wait_exit(EXIT);
    assert_eq!(status.code(), Some(128 + 15));
    assert!(slow.finish().is_err());
}
