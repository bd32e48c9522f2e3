//! The agent watching its own package: after dpkg replaced its binary it re-executes
//! itself (same pid, now running the new file, not the deleted one) and carries on with
//! its state instead of reinstalling.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use common::{AgentProcess, DebExtras, SERVICE_PATH, World, agent_bin, wait_installed, wait_until};

const LONG: Duration = Duration::from_secs(120);

#[test]
fn agent_updates_itself_and_reexecutes() {
    let mut world = World::new();
    world.key = "agent/hoist-agent.deb".into();
    let v1 = world.build_deb(
        "hoist-agent",
        "0.1.0",
        &agent_bin(),
        "hoist-agent",
        &DebExtras::default(),
    );
    let v2 = world.build_deb(
        "hoist-agent",
        "0.2.0",
        &agent_bin(),
        "hoist-agent",
        &DebExtras::default(),
    );
    let installed = world.sandbox.dpkg(["-i".as_ref(), v1.as_os_str()]);
    assert!(installed.success(), "{installed}");
    let config = world.dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\ninterval = \"300ms\"\nbackoff_max = \"2s\"\n[dpkg]\nroot = \"{}\"\n\n\
             [[watch]]\nname = \"agent\"\npackage = \"hoist-agent\"\n\
             s3 = {{ bucket = \"{}\", key = \"{}\", endpoint = \"{}\", path_style = true, region = \"us-east-1\" }}\n",
            world.state_dir().display(),
            world.sandbox.root().display(),
            world.bucket,
            world.key,
            world.proxy.endpoint()
        ),
    )
    .unwrap();

    // Run the agent from the package's binary, as systemd would run /usr/bin/hoist-agent.
    let installed_binary = world.sandbox.path("/usr/bin/hoist-agent");
    let mut cmd = Command::new(&installed_binary);
    world.moto.isolate(&mut cmd);
    cmd.env_remove("AWS_ENDPOINT_URL")
        .env("PATH", SERVICE_PATH)
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(&config)
        .arg("run");
    let agent = AgentProcess::spawn(cmd);
    let pid = agent.pid();
    let running = format!("hoist-agent {} running", env!("CARGO_PKG_VERSION"));
    agent.wait_for_log(&running, 1, LONG);

    let v2_id = world.release(&v2, None);
    wait_installed(&world, "hoist-agent", "0.2.0", LONG);
    agent.wait_for_log("re-executing the new hoist-agent", 1, LONG);
    agent.wait_for_log(&running, 2, LONG);
    // execve keeps the pid; the process now runs the file dpkg installed.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(
        exe, installed_binary,
        "runs the new file, not a deleted one"
    );
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}/exe")).unwrap().ino(),
        std::fs::metadata(&installed_binary).unwrap().ino()
    );
    let state = world.state();
    assert_eq!(state["watches"]["agent"]["installed"]["version"], "0.2.0");
    assert_eq!(
        state["watches"]["agent"]["installed"]["version_id"],
        v2_id.as_str()
    );

    // It carries on: polls, no second download or install.
    world.proxy.reset_counts();
    wait_until("5 polls after the re-exec", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= 5).then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(agent.log_count("re-executing"), 1);
}
