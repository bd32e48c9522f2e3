//! NOTIFY_SOCKET sees READY=1 on start, the successor's MAINPID + READY=1
//! before the old process exits, and STOPPING=1 on shutdown.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use hoist_testkit::hello::HelloCommand;
use nix::sys::signal::Signal;

use crate::support::{EXIT, START, UPGRADE, assert_served_by, hello_binary};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn receive(socket: &UnixDatagram) -> String {
    let mut buffer = [0u8; 4096];
    let length = socket
        .recv(&mut buffer)
        .expect("a notification arrives in time");
    String::from_utf8_lossy(&buffer[..length]).into_owned()
}

#[test]
fn notifications_arrive_in_order_relative_to_the_old_process_exit() {
    let command = HelloCommand::new(hello_binary());
    let socket_path = command.scratch_dir().join("notify.sock");
    let receiver = UnixDatagram::bind(&socket_path).unwrap();
    receiver.set_read_timeout(Some(START)).unwrap();
    let mut hello = command.env("NOTIFY_SOCKET", &socket_path).spawn();

    let on_start = receive(&receiver);
    assert_eq!(
        on_start.lines().collect::<Vec<_>>(),
        ["READY=1"],
        "{on_start:?}"
    );
    let first = hello.wait_serving(START);
    assert_eq!(first.pid, hello.pid());

    hello.signal(first.pid, Signal::SIGUSR2);
    assert_eq!(hello.wait_exit(UPGRADE).code(), Some(0));
    // The old process has exited and been reaped; the successor's announcement
    // must already be queued, since it is sent before the old process drains.
    receiver.set_nonblocking(true).unwrap();
    let announcement = receive(&receiver);
    let successor = hello
        .pidfile_pid()
        .expect("the successor wrote the pidfile");
    assert_ne!(successor, first.pid);
    assert_eq!(
        announcement.lines().collect::<Vec<_>>(),
        [format!("MAINPID={successor}").as_str(), "READY=1"],
        "{announcement:?}"
    );
    let mut rest = [0u8; 64];
    assert!(
        receiver.recv(&mut rest).is_err(),
        "the upgraded process sent nothing else (no STOPPING=1)"
    );
    assert_served_by(&hello, successor, VERSION);

    receiver.set_nonblocking(false).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    hello.signal(successor, Signal::SIGTERM);
    assert_eq!(receive(&receiver).trim_end(), "STOPPING=1");
    hoist_testkit::hello::wait_until("the successor to exit", EXIT, || {
        (!hoist_testkit::hello::pid_alive(successor)).then_some(())
    });
}
