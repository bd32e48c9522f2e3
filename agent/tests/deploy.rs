//! The main loop end to end: release → install → handoff under load → rollback, quiet
//! polling (only HEAD requests while nothing changes), and a restart that reinstalls
//! nothing. Real moto, real `dpkg --root`, real `hello` processes, the real `hoist` CLI.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::{Load, LoadConfig, World, hello_deb, wait_installed, wait_until};
use hoist_testkit::hello::{Window, pid_alive};

const LONG: Duration = Duration::from_secs(120);

#[test]
fn release_upgrade_under_load_rollback_and_quiet_polling() {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    let v2 = hello_deb(&world, "2.0.0", None);
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);

    // Release v1: nothing runs yet, so the agent installs it without signalling; the
    // service is then started from the installed binary and serves v1.
    let v1_id = world.release(&v1, None);
    wait_installed(&world, "hello", "1.0.0", LONG);
    agent.wait_for_log("hello 1.0.0 is installed and serving", 1, LONG);
    assert_eq!(world.state_installed()["version_id"], v1_id.as_str());
    let _hello = target.spawn();
    let v1_pid = target.wait_version("1.0.0", Duration::from_secs(10));

    // Release v2 under load (keep-alive, new-connection and slow requests): the agent
    // installs it, signals the service, which hands over with 0 failed requests. The
    // window runs from the release until the old process has drained and exited.
    let load = Load::start(target.addr, LoadConfig::default());
    wait_until("load to run", Duration::from_secs(10), || {
        (load.progress().0 >= 200).then_some(())
    });
    let change = load.elapsed();
    let v2_id = world.release(&v2, None);
    let v2_pid = target.wait_version("2.0.0", LONG);
    agent.wait_for_log("hello 2.0.0 is installed and serving", 1, LONG);
    wait_until(&format!("the old process {v1_pid} to exit"), LONG, || {
        (!pid_alive(v1_pid)).then_some(())
    });
    let window = Window::new(change..load.elapsed());
    let report = load.stop();
    report.assert_window(&window, "during the upgrade to 2.0.0");
    assert_ne!(v2_pid, v1_pid, "a new process serves v2");
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("2.0.0")
    );
    let installed = world.state_installed();
    assert_eq!(installed["version_id"], v2_id.as_str());
    assert_eq!(installed["version"], "2.0.0");
    assert_eq!(
        world.state()["watches"]["hello"]["previous_good"]["version"],
        "1.0.0"
    );

    // Nothing changes: only HEAD requests reach the server.
    world.proxy.reset_counts();
    wait_until("10 polls", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= 10).then_some(())
    });
    let counts = world.proxy.counts();
    assert!(
        counts.keys().all(|method| method == "HEAD"),
        "only HEAD requests while nothing changes, got {counts:?}"
    );

    // `hoist rollback` makes v1's bytes current again: the agent installs v1.
    let rollback_id = world.rollback();
    assert_ne!(rollback_id, v1_id, "a rollback is a new version");
    let back_pid = target.wait_version("1.0.0", LONG);
    assert_ne!(back_pid, v2_pid);
    wait_installed(&world, "hello", "1.0.0", LONG);
    wait_until("state to record the rollback", LONG, || {
        (world.state_installed()["version_id"] == rollback_id.as_str()).then_some(())
    });
    assert_eq!(world.state_installed()["version"], "1.0.0");

    // Restart the agent with nothing changed: no download, no reinstall, no signal.
    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    let binary = world.sandbox.path("/usr/bin/hello");
    let inode = std::fs::metadata(&binary).unwrap().ino();
    let dpkg_status = world.sandbox.path("/var/lib/dpkg/status");
    let status_mtime = std::fs::metadata(&dpkg_status).unwrap().modified().unwrap();
    let state_before = world.state();
    world.proxy.reset_counts();
    let agent = world.start_agent(&config);
    wait_until("5 polls after the restart", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= 5).then_some(())
    });
    assert_eq!(
        world.proxy.count("GET"),
        0,
        "no download after a restart: {:?}",
        world.proxy.counts()
    );
    assert_eq!(
        std::fs::metadata(&binary).unwrap().ino(),
        inode,
        "binary not reinstalled"
    );
    assert_eq!(
        std::fs::metadata(&dpkg_status).unwrap().modified().unwrap(),
        status_mtime,
        "dpkg database untouched"
    );
    assert_eq!(
        target.serving(),
        Some(("1.0.0".to_owned(), back_pid)),
        "service not signalled"
    );
    assert_eq!(
        world.state()["watches"],
        state_before["watches"],
        "state carried over"
    );
    assert_eq!(agent.log_count("new release found"), 0, "{:?}", agent.log());
}
