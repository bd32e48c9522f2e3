//! Against garage, which checks request signatures and has no versioning: wrong
//! credentials (403) make the agent back off with one warning and touch nothing; with the
//! right ones it installs and upgrades from an unversioned bucket, where the ETag alone
//! identifies a release, and only sends HEAD requests while nothing changes.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{AgentProcess, World, hello_deb, wait_installed, wait_until};

const LONG: Duration = Duration::from_secs(120);

#[test]
fn denied_credentials_back_off_and_unversioned_bucket_works() {
    let world = World::garage();
    let v1 = hello_deb(&world, "1.0.0", None);
    let v2 = hello_deb(&world, "2.0.0", None);
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    world.release(&v1, None);

    // A wrong secret key: garage answers 403; one warning, backoff, nothing installed.
    let mut cmd = world.agent_command(&config, &["run"]);
    cmd.env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .env("RUST_LOG", "info,hoist_agent::watcher=debug");
    let agent = AgentProcess::spawn(cmd);
    let warning = agent.wait_for_log("will retry with backoff", 1, LONG);
    assert!(
        warning.contains("access denied") && warning.contains("WARN"),
        "{warning}"
    );
    agent.wait_for_log("still failing", 3, LONG);
    assert_eq!(
        agent.log_count("will retry with backoff"),
        1,
        "{:?}",
        agent.log()
    );
    assert_eq!(world.sandbox.installed_version("hello"), None);
    assert_eq!(world.proxy.count("GET"), 0);
    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status}");

    // The right credentials: installs, the release is identified by its ETag alone.
    let agent = world.start_agent(&config);
    wait_installed(&world, "hello", "1.0.0", LONG);
    agent.wait_for_log("hello 1.0.0 is installed and serving", 1, LONG);
    let installed = world.state_installed();
    assert!(
        installed["version_id"].is_null(),
        "no versioning: {installed}"
    );
    assert!(
        installed["etag"].as_str().is_some_and(|e| e.len() > 2),
        "{installed}"
    );
    let _hello = target.spawn();
    let v1_pid = target.wait_version("1.0.0", Duration::from_secs(10));

    world.release(&v2, None);
    let v2_pid = target.wait_version("2.0.0", LONG);
    assert_ne!(v2_pid, v1_pid);
    wait_installed(&world, "hello", "2.0.0", LONG);

    world.proxy.reset_counts();
    wait_until("5 polls", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= 5).then_some(())
    });
    let counts = world.proxy.counts();
    assert!(counts.keys().all(|m| m == "HEAD"), "{counts:?}");
}
