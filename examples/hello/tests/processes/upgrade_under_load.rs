//! 50 consecutive upgrades under continuous load fail no request.

use std::time::Duration;

use hoist_testkit::hello::{
    HelloCommand, Load, LoadConfig, RequestKind, SlowRequest, Window, pid_alive, wait_until,
};

use crate::support::{EXIT, REQUEST, START, UPGRADE, assert_served_by, hello_binary};

const UPGRADES: usize = 50;
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn fifty_upgrades_under_load_fail_no_request_and_finish_every_slow_one() {
    // Load workers are never idle for long, so the idle grace only matters if
    // the test machine stalls a client for longer than it; be generous.
    let mut hello = HelloCommand::new(hello_binary())
        .idle_grace(Duration::from_secs(5))
        .spawn();
    let first = hello.wait_serving(START);
    let load = Load::start(hello.addr(), LoadConfig::default());
    wait_until("the load to get going", START, || {
        (load.progress().0 >= 100).then_some(())
    });

    let change = load.elapsed();
    let mut serving = vec![first.pid];
    let mut slow_at_the_upgraded_process = 0;
    for round in 1..=UPGRADES {
        let upgraded = *serving.last().expect("at least the first pid");
        // Its response head arrived: the request is in flight in that process.
        let slow = SlowRequest::start(hello.addr(), "/sleep?ms=300", REQUEST)
            .unwrap_or_else(|e| panic!("round {round}: starting a slow request failed: {e}"));
        let in_flight_at = slow.serving_pid().expect("x-hello-pid header");
        if in_flight_at == upgraded {
            slow_at_the_upgraded_process += 1;
        }

        let successor = hello.upgrade(UPGRADE);
        assert!(
            !serving.contains(&successor),
            "round {round}: pid {successor} already served before"
        );
        serving.push(successor);

        let done = slow.finish().unwrap_or_else(|e| {
            panic!("round {round}: the slow request in flight at pid {in_flight_at} failed: {e}")
        });
        assert_eq!(done.status, 200, "round {round}: {done:?}");
        let info = done.hello_info().expect("the slow body names its pid");
        assert_eq!(
            info.pid, in_flight_at,
            "round {round}: finished by the process that had it"
        );
    }
    assert!(
        slow_at_the_upgraded_process >= UPGRADES / 2,
        "only {slow_at_the_upgraded_process} of {UPGRADES} slow requests were in flight at the \
         process being upgraded; the test did not exercise what it claims"
    );

    let last = *serving.last().expect("pids");
    assert_served_by(&hello, last, VERSION);
    // Every replaced process drains and exits, under load until the last has.
    for pid in &serving[..serving.len() - 1] {
        wait_until(&format!("pid {pid} to exit after draining"), EXIT, || {
            (!pid_alive(*pid)).then_some(())
        });
    }
    let window = Window::new(change..load.elapsed());
    let report = load.stop();
    report.assert_window(&window, &format!("{UPGRADES} upgrades"));
    for kind in RequestKind::ALL {
        assert!(
            report.started_within(kind, &window.span) > UPGRADES,
            "too little {kind:?} load:\n{}",
            report.summary()
        );
    }

    // The first process (our child) exited with 0.
    let status = hello.wait_exit(Duration::from_secs(1));
    assert_eq!(status.code(), Some(0));
    assert_eq!(hello.log_count("upgrade complete"), UPGRADES);
    assert_eq!(hello.log_count("upgrade failed"), 0);
}
