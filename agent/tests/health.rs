//! Releases whose new process does not work: one that answers 500 (handoff succeeds,
//! health check fails) and one that crashes on start (handoff never confirmed). Each is
//! rolled back to the previous package, marked bad and not retried, while the service
//! keeps serving under continuous load: from each release until the previous version
//! serves again and every replaced process has exited, no request is refused, reset,
//! timed out or slower than the window's bound, and the only non-200 answers are the
//! 500s of the broken release's own process. The next good release installs.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    Broken, Load, LoadConfig, World, hello_deb, release_and_start_hello, wait_installed, wait_until,
};
use hoist_testkit::hello::{LoadReport, Window, pid_alive};

const LONG: Duration = Duration::from_secs(120);

fn wait_bad(world: &World, version_id: &str) -> String {
    wait_until(&format!("{version_id} to be marked bad"), LONG, || {
        world
            .state_bad()
            .into_iter()
            .find(|b| b["version_id"] == version_id)
            .map(|b| b["reason"].as_str().unwrap_or_default().to_owned())
    })
}

fn wait_exited(pid: u32) {
    wait_until(&format!("the replaced process {pid} to exit"), LONG, || {
        (!pid_alive(pid)).then_some(())
    });
}

/// The pid in a `pid=N` field of a log line.
fn log_pid(line: &str) -> u32 {
    let digits: String = line
        .split_once("pid=")
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no pid= in {line:?}"))
}

/// The processes that answered requests started inside `window`.
fn served_by(report: &LoadReport, window: &Window) -> BTreeSet<u32> {
    report
        .samples
        .iter()
        .filter(|s| window.span.contains(&s.start))
        .filter_map(|s| s.served_by)
        .collect()
}

#[test]
fn broken_releases_are_rolled_back_marked_bad_and_not_retried() {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    let v2_500 = hello_deb(&world, "2.0.0", Some(Broken::Status500));
    let v3_crash = hello_deb(&world, "3.0.0", Some(Broken::Crash));
    let v4 = hello_deb(&world, "4.0.0", None);
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);

    let (hello, v1_pid) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);

    // Both broken releases land under one continuous load.
    let load = Load::start(target.addr, LoadConfig::default());
    wait_until("load to run", Duration::from_secs(10), || {
        (load.progress().0 >= 100).then_some(())
    });

    // 2.0.0 takes over but answers 500: health check fails, 1.0.0 comes back.
    let change = load.elapsed();
    let v2_id = world.release(&v2_500, None);
    let reason = wait_bad(&world, &v2_id);
    assert!(reason.contains("health check"), "{reason}");
    assert!(reason.contains("500"), "{reason}");
    agent.wait_for_log("rolled back to hello 1.0.0", 1, LONG);
    let back_pid = target.wait_version("1.0.0", LONG);
    assert_ne!(
        back_pid, v1_pid,
        "1.0.0 was reinstalled and handed over to again"
    );
    wait_installed(&world, "hello", "1.0.0", LONG);
    let error = agent.wait_for_log("release failed and is marked bad", 1, LONG);
    assert!(error.contains("ERROR"), "logged at error level: {error}");
    wait_exited(v1_pid);
    // The broken process: the first the service started (its log names it); it must
    // have drained and exited before the window closes.
    let started = hello.wait_for_log("upgrade: started the new process", 1, LONG);
    let broken_pid = log_pid(&started);
    wait_exited(broken_pid);
    let window_500 = Window::new(change..load.elapsed());

    // 3.0.0 crashes on start: the process serving 1.0.0 keeps serving until the
    // rollback (1.0.0 reinstalled) hands over to a new 1.0.0 process.
    let change = load.elapsed();
    let v3_id = world.release(&v3_crash, None);
    let reason = wait_bad(&world, &v3_id);
    assert!(reason.contains("did not take over"), "{reason}");
    agent.wait_for_log("rolled back to hello 1.0.0", 2, LONG);
    let pid_after = wait_until("a new 1.0.0 process after the rollback", LONG, || {
        target
            .serving()
            .filter(|(version, pid)| version == "1.0.0" && *pid != back_pid)
            .map(|(_, pid)| pid)
    });
    wait_exited(back_pid);
    let window_crash = Window::new(change..load.elapsed());
    let report = load.stop();

    // The 500 release was met by the load: its process's 500s are the only answers
    // other than 200, and nothing else failed.
    assert!(
        ![v1_pid, back_pid, pid_after].contains(&broken_pid),
        "a 1.0.0 process ({broken_pid}) was the broken one"
    );
    assert!(
        report.samples.iter().any(|s| s.status == Some(500)),
        "the load never met the 500 release:\n{}",
        report.summary()
    );
    let broken_500 =
        |s: &hoist_testkit::hello::Sample| s.status == Some(500) && s.served_by == Some(broken_pid);
    report.assert_window_tolerating(&window_500, broken_500, "release 2.0.0 (answers 500)");
    assert_eq!(
        served_by(&report, &window_500),
        BTreeSet::from([v1_pid, broken_pid, back_pid]),
        "who answered between the 500 release and 1.0.0 serving again"
    );
    report.assert_window_tolerating(&window_crash, broken_500, "release 3.0.0 (crashes)");
    assert_eq!(
        served_by(&report, &window_crash),
        BTreeSet::from([back_pid, pid_after]),
        "only 1.0.0 processes answered while 3.0.0 crashed and was rolled back"
    );
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("1.0.0")
    );
    assert_eq!(world.state_installed()["version"], "1.0.0");

    // Bad versions are not retried while they stay current.
    world.proxy.reset_counts();
    wait_until("5 polls", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= 5).then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(
        agent.log_count("rolled back to hello 1.0.0"),
        2,
        "no retry loop"
    );

    // The next good release installs.
    world.release(&v4, None);
    target.wait_version("4.0.0", LONG);
    wait_installed(&world, "hello", "4.0.0", LONG);
    agent.wait_for_log("hello 4.0.0 is installed and serving", 1, LONG);
    assert_eq!(
        world.state()["watches"]["hello"]["previous_good"]["version"],
        "1.0.0"
    );
}
