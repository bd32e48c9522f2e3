//! Signalling by process name (the seed's `killall -USR2 NAME`, for hosts without
//! systemd or pidfiles): every process whose executable is NAME gets SIGUSR2, and the
//! handoff is confirmed by a new process running the newly installed file.
//!
//! The binary is installed under a name unique to this test, so no other `hello` on the
//! machine is ever signalled.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{DebExtras, WatchTarget, World, build_hello, release_and_start_hello};
use hoist_testkit::hello::pid_alive;

const LONG: Duration = Duration::from_secs(120);

#[test]
fn process_name_signalling_hands_over_to_the_new_binary() {
    let world = World::new();
    let name = format!("hh-{}", std::process::id());
    let deb = |version: &str| {
        world.build_deb(
            "hello",
            version,
            &build_hello(version, None),
            &name,
            &DebExtras::default(),
        )
    };
    let (v1, v2) = (deb("1.0.0"), deb("2.0.0"));
    let mut target = WatchTarget::hello(&world.sandbox.path(&format!("/usr/bin/{name}")));
    target.signal = Some(format!("{{ kind = \"process\", name = \"{name}\" }}"));
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);

    let (_hello, v1_pid) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);

    world.release(&v2, None);
    let v2_pid = target.wait_version("2.0.0", LONG);
    assert_ne!(v2_pid, v1_pid);
    let line = agent.wait_for_log("service handed over to the new version", 1, LONG);
    assert!(line.contains(&format!("pid={v2_pid}")), "{line}");
    // The agent confirmed the handoff only once the old process had exited.
    assert!(!pid_alive(v1_pid), "the old process is gone");
}
