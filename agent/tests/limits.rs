//! Bounded downloads: an object larger than `max_package_size` is refused before any
//! byte is fetched; a state filesystem without room for the package (a small tmpfs as
//! the state directory) makes the agent back off without a GET, a disk that fills up
//! during the download removes the partial file and is logged once, and the update
//! goes through once space returns — the service serving the old version throughout.
//!
//! The tmpfs lives in a private mount namespace of the agent (`unshare --mount
//! --propagation private`), so it disappears with the agent; the test reaches it
//! through `/proc/PID/root` and grows it with `nsenter -t PID -m mount -o remount`.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    AgentProcess, World, hello_deb, hello_deb_with_payload, wait_bad, wait_installed, wait_until,
};

const LONG: Duration = Duration::from_secs(120);

#[test]
fn oversized_object_is_refused_before_download_and_marked_bad() {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    let size = std::fs::metadata(&v1).unwrap().len();
    assert!(
        size > 100 << 10,
        "the package ({size} bytes) exceeds the limit"
    );
    let target = world.hello_target();
    let config = world.write_config(&target, "", "max_package_size = \"100KiB\"\n");
    let agent = world.start_agent(&config);

    let version_id = world.release(&v1, None);
    let reason = wait_bad(&world, &version_id, LONG);
    assert!(
        reason.contains(&format!("({size} bytes)"))
            && reason.contains("(102400 bytes)")
            && reason.contains("max_package_size"),
        "{reason}"
    );
    agent.wait_for_log("release refused, nothing installed, marked bad", 1, LONG);
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(world.sandbox.installed_version("hello"), None);
    // Not downloaded on later polls either.
    world.proxy.reset_counts();
    wait_until("3 more polls", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= 3).then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
}

/// `path` (inside the agent's mount namespace) as the test sees it.
fn in_agent(agent: &AgentProcess, path: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root", agent.pid())).join(path.strip_prefix("/").unwrap())
}

/// Partial downloads in the agent's state directory, with their sizes.
fn partials(agent: &AgentProcess, state_dir: &Path) -> Vec<(PathBuf, u64)> {
    std::fs::read_dir(in_agent(agent, &state_dir.join("partial")))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `path` until the filesystem is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 256 << 10];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(n) => written += n as u64,
            Err(err) if err.raw_os_error() == Some(nix::libc::ENOSPC) => return written,
            Err(err) => panic!("filling {}: {err}", path.display()),
        }
    }
}

#[test]
fn full_state_filesystem_backs_off_removes_the_partial_file_and_recovers() {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    // v2 carries 24 MiB of incompressible data.
    let v2 = hello_deb_with_payload(&world, "2.0.0", 24 << 20);
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let state_dir = world.state_dir();
    std::fs::create_dir_all(&state_dir).unwrap();
    // The state directory: a 48 MiB tmpfs in the agent's own mount namespace.
    let mount = format!(
        "mount -t tmpfs -o size=48m hoist-test-state '{}' && exec \"$@\"",
        state_dir.display()
    );
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        mount.as_str(),
        "sh",
    ];
    let mut cmd = world.agent_command_under(&wrapper, &config, &["run"]);
    cmd.env("RUST_LOG", "info,hoist_agent::watcher=debug");
    let agent = AgentProcess::spawn(cmd);

    let (_hello, pid) =
        common::release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);
    assert!(
        !state_dir.join("state.json").exists(),
        "the state is on the agent's tmpfs, not on the host's directory"
    );
    assert!(in_agent(&agent, &state_dir.join("state.json")).is_file());

    // The disk fills up during the download of v2 (throttled so the test can fill it).
    world.proxy.set_rate(Some(4_000_000));
    let warnings_before = agent.log_count("will retry with backoff");
    let v2_id = world.release(&v2, None);
    wait_until("the download to be under way", LONG, || {
        partials(&agent, &state_dir)
            .into_iter()
            .find(|(_, size)| *size >= 1 << 20)
    });
    let filler = in_agent(&agent, &state_dir.join("filler"));
    fill(&filler);
    let line = agent.wait_for_log("disk full while downloading", 1, LONG);
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("partial download was removed"), "{line}");
    wait_until("the partial file to be removed", LONG, || {
        partials(&agent, &state_dir).is_empty().then_some(())
    });

    // While the disk stays full: no GET (the free space is checked first), nothing new
    // logged at warn level, the service untouched, the release not marked bad.
    world.proxy.set_rate(None);
    world.proxy.reset_counts();
    agent.wait_for_log("not enough free space", 1, LONG);
    wait_until("3 more polls", Duration::from_secs(60), || {
        (world.proxy.count("HEAD") >= 3).then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(
        agent.log_count("will retry with backoff"),
        warnings_before + 1,
        "disk full is logged once:\n{}",
        agent.log().join("\n")
    );
    assert_eq!(target.serving(), Some(("1.0.0".to_owned(), pid)));
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("1.0.0")
    );
    assert!(world.state_bad_in(&in_agent(&agent, &state_dir)).is_empty());
    assert!(partials(&agent, &state_dir).is_empty());

    // Space returns (the tmpfs grows): the update goes through.
    let grown = Command::new("nsenter")
        .args([
            "-t",
            &agent.pid().to_string(),
            "-m",
            "mount",
            "-o",
            "remount,size=128m",
        ])
        .arg(&state_dir)
        .status()
        .unwrap();
    assert!(grown.success());
    target.wait_version("2.0.0", LONG);
    wait_installed(&world, "hello", "2.0.0", LONG);
    agent.wait_for_log("recovered (after: disk full)", 1, LONG);
    let installed = world.state_installed_in(&in_agent(&agent, &state_dir));
    assert_eq!(installed["version_id"], v2_id.as_str());
}
