//! An upgrade runs the binary now at the start path, not /proc/self/exe.

use std::process::Command;

use hoist_testkit::hello::{HelloCommand, build_hello, replace_like_dpkg};

use crate::support::{EXIT, START, UPGRADE, assert_served_by, hello_binary, install};

#[test]
fn upgrade_runs_the_new_file_dpkg_renamed_over_the_old_one() {
    let new_version = "2.0.0";
    let v2 = build_hello(new_version, None);
    let dir = tempfile::tempdir().unwrap();
    let installed = install(&hello_binary(), dir.path());

    // Started by bare name through PATH, as a service manager or shell would.
    let command = HelloCommand::new(&installed);
    let mut by_name = Command::new("hello");
    by_name.env("PATH", dir.path()).args(command.arguments());
    let mut hello = command.spawn_command(by_name);
    let first = hello.wait_serving(START);
    assert_ne!(first.version, new_version);

    replace_like_dpkg(&v2, &installed);
    let old_exe = std::fs::read_link(format!("/proc/{}/exe", first.pid)).unwrap();
    assert!(
        old_exe.to_string_lossy().ends_with("(deleted)"),
        "the running process's /proc/PID/exe should now be the deleted old file: {old_exe:?}"
    );

    let successor = hello.upgrade(UPGRADE);
    assert_served_by(&hello, successor, new_version);
    let successor_exe = std::fs::read_link(format!("/proc/{successor}/exe")).unwrap();
    assert_eq!(successor_exe, installed);
    assert_eq!(hello.wait_exit(EXIT).code(), Some(0));
}
