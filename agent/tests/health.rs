//! Releases whose new process does not work: one that answers 500 (handoff succeeds,
//! health check fails) and one that crashes on start (handoff never confirmed). Each is
//! rolled back to the previous package, marked bad and not retried, while the service
//! keeps serving; the next good release installs.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{
    Broken, Load, LoadConfig, World, hello_deb, release_and_start_hello, wait_installed, wait_until,
};

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

    let (_hello, v1_pid) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);

    // 2.0.0 takes over but answers 500: health check fails, 1.0.0 comes back.
    let v2_id = world.release(&v2_500, None);
    let reason = wait_bad(&world, &v2_id);
    assert!(reason.contains("health check"), "{reason}");
    assert!(reason.contains("500"), "{reason}");
    let back_pid = target.wait_version("1.0.0", LONG);
    assert_ne!(
        back_pid, v1_pid,
        "1.0.0 was reinstalled and handed over to again"
    );
    wait_installed(&world, "hello", "1.0.0", LONG);
    agent.wait_for_log("rolled back to hello 1.0.0", 1, LONG);
    let error = agent.wait_for_log("release failed and is marked bad", 1, LONG);
    assert!(error.contains("ERROR"), "logged at error level: {error}");

    // 3.0.0 crashes on start: the old process keeps serving, no request fails.
    let load = Load::start(target.addr, LoadConfig::default());
    wait_until("load to run", Duration::from_secs(10), || {
        (load.progress().0 >= 100).then_some(())
    });
    let v3_id = world.release(&v3_crash, None);
    let reason = wait_bad(&world, &v3_id);
    assert!(reason.contains("did not take over"), "{reason}");
    agent.wait_for_log("rolled back to hello 1.0.0", 2, LONG);
    let pid_after = target.wait_version("1.0.0", LONG);
    let report = load.stop();
    assert_eq!(
        report.total_failed(),
        0,
        "the service kept serving: {}",
        report.summary()
    );
    assert_ne!(pid_after, 0);
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
