//! Reusing what was verified: the agent killed (SIGKILL, with the dpkg run it started,
//! as in a crash) after the download completed, while the package's preinst runs. After
//! a restart the cached package — re-hashed, its SHA-256 matching the object's — is
//! installed without a second GET, and one consistent version serves.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    DebExtras, World, build_hello, hello_deb, release_and_start_hello, wait_installed, wait_until,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LONG: Duration = Duration::from_secs(120);

/// Processes working in the sandbox at `root`: the dpkg run (`--root=ROOT`) and the
/// maintainer scripts it chrooted into it. Not the service, which only runs a binary
/// from there.
fn sandbox_processes(root: &Path) -> Vec<i32> {
    let root = std::fs::canonicalize(root).unwrap();
    let root_text = root.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let chrooted = std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == root);
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let dpkg = args.first().is_some_and(|a| a.ends_with("dpkg"))
                && args.iter().any(|a| a.contains(&root_text));
            chrooted || dpkg
        })
        .collect()
}

#[test]
fn agent_killed_while_installing_reuses_the_verified_cached_package() {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    // v2's preinst says it started, then waits until the test lets it go on.
    let v2 = world.build_deb(
        "hello",
        "2.0.0",
        &build_hello("2.0.0", None),
        "hello",
        &DebExtras {
            preinst: Some(
                "touch /hoist-test-preinst-started\nwhile [ ! -e /hoist-test-go ]; do sleep 0.1; done"
                    .into(),
            ),
            ..DebExtras::default()
        },
    );
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);
    let (_hello, v1_pid) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);

    world.proxy.reset_counts();
    world.release(&v2, None);
    let started = world.sandbox.path("/hoist-test-preinst-started");
    wait_until("v2's preinst to run", LONG, || {
        started.exists().then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 1, "{:?}", world.proxy.counts());

    // The crash: the agent and the dpkg run it started die at once.
    let agent_pid = agent.pid();
    let in_sandbox = sandbox_processes(world.sandbox.root());
    assert!(!in_sandbox.is_empty(), "dpkg and the preinst run");
    kill(Pid::from_raw(agent_pid as i32), Signal::SIGKILL).unwrap();
    for pid in &in_sandbox {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    agent.kill();
    wait_until("the dpkg run to end", Duration::from_secs(10), || {
        sandbox_processes(world.sandbox.root())
            .is_empty()
            .then_some(())
    });
    assert_eq!(target.serving(), Some(("1.0.0".to_owned(), v1_pid)));

    // Restarted: installed from the cache, without a second GET.
    std::fs::write(world.sandbox.path("/hoist-test-go"), b"").unwrap();
    world.proxy.reset_counts();
    let agent = world.start_agent(&config);
    agent.wait_for_log("using it instead of downloading it again", 1, LONG);
    target.wait_version("2.0.0", LONG);
    wait_installed(&world, "hello", "2.0.0", LONG);
    agent.wait_for_log("hello 2.0.0 is installed and serving", 1, LONG);
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(world.state_installed()["version"], "2.0.0");
    let (version, _) = target.serving().unwrap();
    assert_eq!(version, "2.0.0");
}
