//! Several listeners (TCP and Unix) are all handed to the successor.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use hoist_testkit::hello::{HelloCommand, HelloInfo};

use crate::support::{EXIT, REQUEST, START, UPGRADE, assert_served_by, hello_binary};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET /` over a Unix socket.
fn get_over_unix(path: &Path) -> HelloInfo {
    let mut stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(REQUEST)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: hello\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    HelloInfo::parse(body).unwrap()
}

#[test]
fn tcp_and_unix_listeners_are_both_handed_over() {
    let command = HelloCommand::new(hello_binary());
    let socket = command.scratch_dir().join("hello.sock");
    let mut hello = command
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .spawn();
    let first = hello.wait_serving(START);
    assert_eq!(get_over_unix(&socket).pid, first.pid);

    let successor = hello.upgrade(UPGRADE);
    assert_served_by(&hello, successor, VERSION);
    hello.wait_for_log("socket from the previous process", 2, START);
    assert_eq!(hello.wait_exit(EXIT).code(), Some(0));
    // The old process has exited: only the successor can answer.
    assert_eq!(get_over_unix(&socket).pid, successor);
}
