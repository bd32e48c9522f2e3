//! A crash in the middle of a rollback: the agent is killed (SIGKILL, and its dpkg with
//! it, as systemd kills a unit's control group) while `dpkg -i` reinstalls the previous
//! package over a release that failed its health check. After a restart the agent
//! reconciles its state with dpkg: it finishes dpkg's work, reinstalls the previous good
//! version, hands the service over to it and marks the failed release bad.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{
    Broken, DebExtras, World, build_hello, hello_deb, release_and_start_hello, wait_installed,
    wait_until,
};

const LONG: Duration = Duration::from_secs(120);

/// Every process below `pid` (children, grandchildren…), from `/proc/*/stat`.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((child, ppid))
        })
        .collect();
    let mut found = vec![pid];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        index += 1;
    }
    found.remove(0);
    found
}

#[test]
fn agent_killed_during_the_rollback_finishes_it_after_a_restart() {
    let world = World::new();
    // 1.0.0's postinst blocks only when it is configured over 2.0.0 (the rollback), until
    // the test creates the `go` file (paths inside the dpkg root, where scripts run).
    let blocked = world.sandbox.path("/tmp/rollback-blocked");
    let go = world.sandbox.path("/tmp/rollback-go");
    let v1 = world.build_deb(
        "hello",
        "1.0.0",
        &build_hello("1.0.0", None),
        "hello",
        &DebExtras {
            postinst: Some(
                "if [ \"$1\" = configure ] && [ \"$2\" = 2.0.0 ]; then\n\
                 touch /tmp/rollback-blocked\n\
                 while [ ! -e /tmp/rollback-go ]; do sleep 0.1; done\nfi"
                    .into(),
            ),
            ..DebExtras::default()
        },
    );
    let v2 = hello_deb(&world, "2.0.0", Some(Broken::Status500));
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);
    let (_hello, _) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);

    world.release(&v2, None);
    wait_until("the rollback's postinst to block", LONG, || {
        blocked.exists().then_some(())
    });
    // SIGKILL the agent and everything it started (dpkg, the postinst), as systemd does.
    // Stopped first, so that it cannot react to its dpkg dying.
    let pid = nix::unistd::Pid::from_raw(agent.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let below = descendants(agent.pid());
    assert!(!below.is_empty(), "dpkg runs below the agent");
    for child in below {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    agent.kill();
    assert_ne!(
        world.sandbox.package_status("hello"),
        "installed",
        "dpkg was interrupted half way"
    );
    let state = world.state();
    assert_eq!(state["watches"]["hello"]["pending"]["action"], "rollback");
    assert_eq!(world.state_installed()["version"], "1.0.0");

    std::fs::write(&go, b"").unwrap();
    let agent = world.start_agent(&config);
    agent.wait_for_log("finishing a rollback that was interrupted", 1, LONG);
    target.wait_version("1.0.0", LONG);
    wait_installed(&world, "hello", "1.0.0", LONG);
    wait_until("2.0.0 marked bad", LONG, || {
        world
            .state_bad()
            .iter()
            .any(|bad| bad["version"] == "2.0.0")
            .then_some(())
    });
    let state = world.state();
    assert!(
        state["watches"]["hello"].get("pending").is_none(),
        "{state}"
    );
    assert_eq!(world.state_installed()["version"], "1.0.0");
    let audit = world.sandbox.dpkg(["--audit"]);
    assert!(audit.success(), "{audit}");
    assert_eq!(audit.stdout.trim(), "", "dpkg --audit is clean");
    // It stays there: the bad release is not tried again.
    world.proxy.reset_counts();
    wait_until("3 more polls", LONG, || {
        (world.proxy.count("HEAD") >= 3).then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 0);
    assert_eq!(target.serving().map(|(v, _)| v).as_deref(), Some("1.0.0"));
}
