//! Successors that crash or never get ready are killed and reaped; the old
//! process keeps serving without a failed request and upgrades later.

use std::time::Duration;

use hoist_testkit::hello::{
    Broken, HelloCommand, Load, LoadConfig, Window, build_hello, get, pid_alive, replace_like_dpkg,
    wait_until,
};
use nix::sys::signal::Signal;

use crate::support::{
    EXIT, REQUEST, START, UPGRADE, assert_served_by, hello_binary, install, is_zombie_child_of,
    log_field,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Long enough for a good successor on a busy machine, short for the hung one.
const READY_TIMEOUT: Duration = Duration::from_secs(4);

#[test]
fn crashing_and_hanging_successors_leave_the_old_process_serving() {
    let crash = build_hello("2.0.0", Some(Broken::Crash));
    let hang = build_hello("2.0.0", Some(Broken::Hang));
    let good = build_hello("2.0.0", None);
    let dir = tempfile::tempdir().unwrap();
    let installed = install(&hello_binary(), dir.path());
    let mut hello = HelloCommand::new(&installed)
        .ready_timeout(READY_TIMEOUT)
        .spawn();
    let first = hello.wait_serving(START);
    let load = Load::start(hello.addr(), LoadConfig::default());
    wait_until("the load to get going", START, || {
        (load.progress().0 >= 50).then_some(())
    });

    // 1. A successor that exits before it is ready.
    let change = load.elapsed();
    replace_like_dpkg(&crash, &installed);
    hello.signal(first.pid, Signal::SIGUSR2);
    let failure = hello.wait_for_log("upgrade failed", 1, UPGRADE);
    assert!(failure.contains("exited with"), "{failure}");
    let crashed = started_child(&hello, 1);
    assert!(
        !is_zombie_child_of(crashed, first.pid),
        "pid {crashed} was not reaped"
    );
    assert_served_by(&hello, first.pid, VERSION);

    // 2. A successor that never reports ready; a second request meanwhile is ignored.
    replace_like_dpkg(&hang, &installed);
    hello.signal(first.pid, Signal::SIGUSR2);
    let hung = started_child(&hello, 2);
    hello.signal(first.pid, Signal::SIGUSR2);
    hello.wait_for_log("while an upgrade is in progress; ignored", 1, UPGRADE);
    let failure = hello.wait_for_log("upgrade failed", 2, UPGRADE + READY_TIMEOUT);
    assert!(failure.contains("did not report ready within"), "{failure}");
    assert!(!pid_alive(hung), "the hung successor {hung} was not killed");
    assert!(
        !is_zombie_child_of(hung, first.pid),
        "pid {hung} was not reaped"
    );
    assert_eq!(
        hello.log_count("upgrade: started the new process"),
        2,
        "the ignored request must not start another process"
    );
    assert_served_by(&hello, first.pid, VERSION);

    // 3. A good binary afterwards takes over; the window closes when the first
    //    process has drained and exited.
    replace_like_dpkg(&good, &installed);
    let successor = hello.upgrade(UPGRADE);
    assert_served_by(&hello, successor, "2.0.0");
    hello.wait_exit(EXIT);
    let window = Window::new(change..load.elapsed());

    let report = load.stop();
    report.assert_window(
        &window,
        "while successors crashed and hung, and a good one took over",
    );
}

#[test]
fn a_status_500_build_takes_over_and_answers_500() {
    let broken = build_hello("2.0.0", Some(Broken::Status500));
    let dir = tempfile::tempdir().unwrap();
    let installed = install(&hello_binary(), dir.path());
    let hello = HelloCommand::new(&installed).spawn();
    hello.wait_serving(START);

    replace_like_dpkg(&broken, &installed);
    let successor = hello.upgrade(UPGRADE);
    for path in ["/", "/healthz"] {
        let response = get(hello.addr(), path, REQUEST).unwrap();
        assert_eq!(response.status, 500, "{path}: {response:?}");
        assert_eq!(
            response.header("x-hello-pid"),
            Some(successor.to_string().as_str())
        );
        assert_eq!(response.header("x-hello-version"), Some("2.0.0"));
    }

    // Rolling back is one more upgrade.
    replace_like_dpkg(&hello_binary(), &installed);
    let rolled_back = hello.upgrade(UPGRADE);
    assert_served_by(&hello, rolled_back, VERSION);
    let health = get(hello.addr(), "/healthz", REQUEST).unwrap();
    assert_eq!(health.status, 200);
}

/// The pid of the `nth` successor the old process started (from its log).
fn started_child(hello: &hoist_testkit::hello::HelloProcess, nth: usize) -> u32 {
    let line = hello.wait_for_log("upgrade: started the new process", nth, UPGRADE);
    log_field(&line, "pid").unwrap_or_else(|| panic!("no pid in {line:?}"))
}
