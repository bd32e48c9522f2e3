//! The agent watching its own package: after dpkg replaced its binary it re-executes
//! itself (same pid, now running the new file, not the deleted one) and carries on with
//! its state instead of reinstalling.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    AgentProcess, DebExtras, SERVICE_PATH, World, agent_bin, hoist_cli, wait_installed, wait_until,
};

const LONG: Duration = Duration::from_secs(120);

/// A world whose sandbox has the real agent installed as `hoist-agent` 0.1.0 from
/// `v1`, and the agent's config (watch `agent` on the agent's key, releases signed with
/// the world's key).
fn agent_world() -> (World, PathBuf, PathBuf) {
    let mut world = World::new();
    world.key = "agent/hoist-agent.deb".into();
    let v1 = world.build_deb(
        "hoist-agent",
        "0.1.0",
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
             [[watch]]\nname = \"agent\"\npackage = \"hoist-agent\"\npublic_key = \"{}\"\n\
             s3 = {{ bucket = \"{}\", key = \"{}\", endpoint = \"{}\", path_style = true, region = \"us-east-1\" }}\n",
            world.state_dir().display(),
            world.sandbox.root().display(),
            world.signing.1,
            world.bucket,
            world.key,
            world.proxy.endpoint()
        ),
    )
    .unwrap();
    (world, config, v1)
}

/// Runs the agent from the package's binary, as systemd would run /usr/bin/hoist-agent,
/// and waits until it runs.
fn start_installed_agent(world: &World, config: &Path) -> AgentProcess {
    let installed_binary = world.sandbox.path("/usr/bin/hoist-agent");
    let mut cmd = Command::new(&installed_binary);
    world.moto.isolate(&mut cmd);
    cmd.env_remove("AWS_ENDPOINT_URL")
        .env("PATH", SERVICE_PATH)
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(config)
        .arg("run");
    let agent = AgentProcess::spawn(cmd);
    agent.wait_for_log(&running(), 1, LONG);
    agent
}

fn running() -> String {
    format!("hoist-agent {} running", env!("CARGO_PKG_VERSION"))
}

#[test]
fn agent_updates_itself_and_reexecutes() {
    let (world, config, _) = agent_world();
    let v2 = world.build_deb(
        "hoist-agent",
        "0.2.0",
        &agent_bin(),
        "hoist-agent",
        &DebExtras::default(),
    );
    let installed_binary = world.sandbox.path("/usr/bin/hoist-agent");
    let agent = start_installed_agent(&world, &config);
    let pid = agent.pid();
    let running = running();

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

#[test]
fn broken_agent_releases_are_rolled_back_and_the_old_agent_keeps_polling() {
    let (world, config, v1) = agent_world();
    // The agent installed 0.1.0 itself earlier: its package is in the cache.
    let cache = world.state_dir().join("cache/agent");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::copy(&v1, cache.join(v1.file_name().unwrap())).unwrap();
    // An agent that exits 1 at start, and one that rejects the agent's command line and
    // config (the `hoist` CLI knows no `self-test`); and a good one.
    let broken = [
        ("0.2.0", PathBuf::from("/bin/false"), "exit status: 1"),
        ("0.3.0", hoist_cli(), "exit status: 2"),
    ]
    .map(|(version, binary, status)| {
        let deb = world.build_deb(
            "hoist-agent",
            version,
            &binary,
            "hoist-agent",
            &DebExtras::default(),
        );
        (version, deb, status)
    });
    let good = world.build_deb(
        "hoist-agent",
        "0.4.0",
        &agent_bin(),
        "hoist-agent",
        &DebExtras::default(),
    );
    let agent = start_installed_agent(&world, &config);
    let pid = agent.pid();
    for (n, (version, deb, status)) in broken.iter().enumerate() {
        world.release(deb, None);
        let line = agent.wait_for_log("release failed and is marked bad", n + 1, LONG);
        assert!(line.contains("failed its self-test"), "{line}");
        assert!(line.contains(status), "{line}");
        wait_until(&format!("{version} marked bad"), LONG, || {
            let state = world.state();
            let bad = state["watches"]["agent"]["bad"].as_array().cloned()?;
            bad.iter().any(|b| b["version"] == *version).then_some(())
        });
        assert_eq!(
            world.sandbox.installed_version("hoist-agent").as_deref(),
            Some("0.1.0"),
            "the previous agent package is back"
        );
        assert_eq!(
            world.state()["watches"]["agent"]["installed"]["version"],
            "0.1.0"
        );
    }
    // The old agent still runs (same process, never re-executed) and keeps polling.
    assert_eq!(agent.log_count("re-executing"), 0);
    assert_eq!(agent.log_count(&running()), 1);
    world.proxy.reset_counts();
    wait_until("3 polls after the failed updates", LONG, || {
        (world.proxy.count("HEAD") >= 3).then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());

    // The next good agent release installs, and the agent re-executes into it.
    world.release(&good, None);
    wait_installed(&world, "hoist-agent", "0.4.0", LONG);
    agent.wait_for_log("re-executing the new hoist-agent", 1, LONG);
    agent.wait_for_log(&running(), 2, LONG);
    let installed_binary = world.sandbox.path("/usr/bin/hoist-agent");
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}/exe")).unwrap().ino(),
        std::fs::metadata(&installed_binary).unwrap().ino()
    );
    assert_eq!(
        world.state()["watches"]["agent"]["installed"]["version"],
        "0.4.0"
    );
}
