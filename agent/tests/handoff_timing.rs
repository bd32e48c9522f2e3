//! A release whose service becomes ready only after the agent's `handoff_timeout`: the
//! agent and the service must not decide differently. Either the service takes the new
//! version (it serves, and dpkg and the state say so), or it gives it up and the previous
//! version serves (and dpkg and the state say so) — with no failed request either way.
//!
//! `hello` 2.0.0 is a wrapper that sleeps `start_delay` before it starts the real binary;
//! `hello`'s ready timeout (the handoff library's wait) and the agent's handoff_timeout
//! are set per case.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{
    DebExtras, Load, LoadConfig, WatchTarget, World, build_hello, hello_deb,
    release_and_start_hello, wait_installed, wait_until,
};

const LONG: Duration = Duration::from_secs(120);

struct Case {
    agent_wait: Duration,
    library_wait: Duration,
    start_delay: Duration,
    /// The version that must serve in the end.
    expected: &'static str,
}

fn run_case(case: &Case) {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    let real = world.dir.path().join("hello-2.0.0");
    std::fs::copy(build_hello("2.0.0", None), &real).unwrap();
    let wrapper = world.dir.path().join("hello-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nsleep {}\nexec {} \"$@\"\n",
            case.start_delay.as_secs_f64(),
            world.sandbox.path("/usr/lib/hello/hello-2.0.0").display()
        ),
    )
    .unwrap();
    let v2 = world.build_deb(
        "hello",
        "2.0.0",
        &wrapper,
        "hello",
        &DebExtras {
            executables: vec![(real, "/usr/lib/hello/hello-2.0.0".into())],
            ..DebExtras::default()
        },
    );
    let target = WatchTarget::hello_with_ready_timeout(
        &world.sandbox.path("/usr/bin/hello"),
        case.library_wait,
    );
    let config = world.write_config(&target, "", "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "handoff_timeout = \"8s\"",
        &format!("handoff_timeout = \"{}ms\"", case.agent_wait.as_millis()),
    );
    std::fs::write(&config, text).unwrap();
    let agent = world.start_agent(&config);
    let (_hello, _) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);

    let load = Load::start(target.addr, LoadConfig::default());
    world.release(&v2, None);
    let outcome = wait_until("the agent to decide", LONG, || {
        if agent.log_count("hello 2.0.0 is installed and serving") > 0 {
            Some("2.0.0")
        } else if world.state_bad().iter().any(|b| b["version"] == "2.0.0") {
            Some("1.0.0")
        } else {
            None
        }
    });
    target.wait_version(outcome, LONG);
    wait_installed(&world, "hello", outcome, LONG);
    // Give a late successor the time it would need to take over anyway.
    std::thread::sleep(case.start_delay + case.library_wait);
    let report = load.stop();
    assert!(
        !report.samples.is_empty(),
        "the load ran:\n{}",
        report.summary()
    );
    assert_eq!(report.total_failed(), 0, "{}", report.summary());
    let serving = target.serving().map(|(v, _)| v);
    assert_eq!(serving.as_deref(), Some(outcome), "serving");
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some(outcome),
        "dpkg"
    );
    assert_eq!(world.state_installed()["version"], outcome, "state");
    assert_eq!(
        outcome, case.expected,
        "agent wait {:?}, library wait {:?}, start delay {:?}",
        case.agent_wait, case.library_wait, case.start_delay
    );
}

#[test]
fn late_successor_taken_by_the_service_is_taken_by_the_agent() {
    // The service waits longer than the agent, and its successor is ready in between.
    run_case(&Case {
        agent_wait: Duration::from_millis(1000),
        library_wait: Duration::from_secs(8),
        start_delay: Duration::from_secs(3),
        expected: "2.0.0",
    });
}

#[test]
fn successor_given_up_by_the_service_is_rolled_back_whichever_wait_is_longer() {
    // The service gives up first (agent 1 s < library 2 s < ready at 4 s), and the agent
    // gives up first (library 2 s < agent 3 s < ready at 4 s).
    for agent_wait in [Duration::from_millis(1000), Duration::from_secs(3)] {
        run_case(&Case {
            agent_wait,
            library_wait: Duration::from_secs(2),
            start_delay: Duration::from_secs(4),
            expected: "1.0.0",
        });
    }
}
