//! systemd socket activation: LISTEN_FDS/LISTEN_PID (fds passed by the test).

use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use hoist_testkit::hello::HelloCommand;
use nix::libc;

use crate::support::{EXIT, START, UPGRADE, assert_served_by, hello_binary};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `sh` exports LISTEN_PID=$$ (its own pid, which exec keeps) and execs hello
/// with `listener` at fd 3, as systemd does.
fn activated(command: &HelloCommand, listener: &TcpListener, listen_pid: &str) -> Command {
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(format!(
            "LISTEN_PID={listen_pid}; LISTEN_FDS=1; LISTEN_FDNAMES=web; \
             export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; exec \"$0\" \"$@\""
        ))
        .arg(hello_binary())
        .args(command.arguments());
    let fd: RawFd = listener.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl).
    unsafe {
        shell.pre_exec(move || {
            let result = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if result == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    shell
}

#[test]
fn listen_fds_for_this_pid_are_used_and_handed_on() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let command = HelloCommand::new(hello_binary()).addr(listener.local_addr().unwrap());
    let shell = activated(&command, &listener, "$$");
    let mut hello = command.spawn_command(shell);
    // From now on only hello holds the socket.
    drop(listener);

    let first = hello.wait_serving(START);
    assert_eq!(first.pid, hello.pid(), "sh exec'd hello in place");
    hello.wait_for_log("socket from systemd (LISTEN_FDS)", 1, START);

    let successor = hello.upgrade(UPGRADE);
    assert_served_by(&hello, successor, VERSION);
    assert_eq!(hello.wait_exit(EXIT).code(), Some(0));
}

#[test]
fn listen_fds_for_another_pid_are_ignored() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let command = HelloCommand::new(hello_binary()).addr(listener.local_addr().unwrap());
    let shell = activated(&command, &listener, "1");
    let mut hello = command.spawn_command(shell);

    // Not its fds: it binds the address itself, which the test's socket holds.
    let status = hello.wait_exit(START);
    assert_ne!(status.code(), Some(0));
    hello.wait_for_log("cannot listen on", 1, START);
    assert_eq!(hello.log_count("socket from systemd"), 0);
    drop(listener);
}
