//! Faults around the agent: S3 going away (backoff, one log line per change of
//! condition, the service untouched, recovery), and the agent itself being killed or
//! stopped in the middle of a download (no partial install; a restart finishes).
//!
//! "S3 stopped" is the proxy in front of moto closing its port (connection refused, as
//! for a stopped server; moto keeps its in-memory objects) for 30 s, with
//! `backoff_max = 4s` so that the backoff reaches its cap and stays there.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    World, hello_deb, hello_deb_with_payload, release_and_start_hello, wait_installed, wait_until,
};

const LONG: Duration = Duration::from_secs(120);
const OUTAGE: Duration = Duration::from_secs(30);

/// The delay after "next try in " in a log line.
fn next_try(line: &str) -> Duration {
    let text = line
        .split("next try in ")
        .nth(1)
        .and_then(|rest| rest.split([';', ')']).next())
        .and_then(|rest| rest.split(" watch=").next())
        .unwrap_or_else(|| panic!("no delay in {line}"));
    humantime::parse_duration(text.trim()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn s3_outage_backs_off_leaves_the_service_alone_and_recovers() {
    let mut world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    let v2 = hello_deb(&world, "2.0.0", None);
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent_with(&config, "info,hoist_agent::watcher=debug");
    let (_hello, pid) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);
    let state_before = world.state();
    // Only what the agent logs from the outage on counts (before the first release it
    // also backed off, on "object missing").
    let before_outage = agent.log().len();
    let reachable_before = agent.log_count("S3 reachable again");

    world.proxy.stop();
    let down = Instant::now();
    while down.elapsed() < OUTAGE {
        // The service answers throughout, from the same process.
        assert_eq!(target.serving(), Some(("1.0.0".to_owned(), pid)));
        std::thread::sleep(Duration::from_millis(200));
    }
    let outage_log: Vec<String> = agent.log().split_off(before_outage);
    let warned = outage_log
        .iter()
        .filter(|l| l.contains("will retry with backoff"))
        .count();
    assert_eq!(
        warned,
        1,
        "one warning for the outage, not one per poll:\n{}",
        outage_log.join("\n")
    );
    assert!(
        outage_log
            .iter()
            .any(|l| l.contains("cannot reach the S3 endpoint") && l.contains("WARN")),
        "{outage_log:?}"
    );
    let failures: Vec<String> = outage_log
        .into_iter()
        .filter(|l| l.contains("will retry with backoff") || l.contains("still failing"))
        .collect();
    let delays: Vec<Duration> = failures.iter().map(|l| next_try(l)).collect();
    // Without backoff 30 s at a 300 ms interval would be ~100 polls; with it about
    // 5 growing delays, then one every 4 s ± 25 %.
    assert!(
        failures.len() <= 16,
        "{} failed polls in {OUTAGE:?}: {delays:?}",
        failures.len()
    );
    // Growing (±25 % jitter) until the 4 s cap, then held there: at the cap a delay is
    // 4 s less up to 25 %.
    let near_cap = Duration::from_secs(3);
    let first_at_cap = delays
        .iter()
        .position(|d| *d >= near_cap)
        .unwrap_or_else(|| panic!("the delays never reached the cap: {delays:?}"));
    let (growing, capped) = delays.split_at(first_at_cap);
    assert!(
        growing.windows(2).filter(|w| w[1] < w[0]).count() <= 1,
        "delays grow towards the cap: {delays:?}"
    );
    assert!(
        capped.len() >= 3 && capped.iter().all(|d| *d >= near_cap),
        "delays stay at the cap while S3 is down: {delays:?}"
    );
    assert!(
        delays.iter().all(|d| *d <= Duration::from_secs(4)),
        "capped: {delays:?}"
    );
    assert_eq!(world.state(), state_before, "nothing changed on the host");

    world.proxy.resume();
    let line = agent.wait_for_log(
        "S3 reachable again",
        reachable_before + 1,
        Duration::from_secs(30),
    );
    assert!(line.contains("INFO"), "{line}");
    world.release(&v2, None);
    target.wait_version("2.0.0", LONG);
    wait_installed(&world, "hello", "2.0.0", LONG);
}

/// The partial downloads in the state directory, with their sizes.
fn partials(state_dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    std::fs::read_dir(state_dir.join("partial"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn agent_killed_or_stopped_during_a_download_installs_nothing_half_and_finishes_later() {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    // v2 carries 16 MiB of incompressible data, downloaded at 2 MB/s through the proxy.
    let v2 = hello_deb_with_payload(&world, "2.0.0", 16 << 20);
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);
    let (_hello, pid) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);

    world.proxy.set_rate(Some(2_000_000));
    world.release(&v2, None);
    let state_dir = world.state_dir();
    let grown = |bytes: u64| {
        wait_until("the download to be under way", LONG, || {
            partials(&state_dir)
                .into_iter()
                .find(|(_, size)| *size >= bytes)
        })
    };

    // SIGTERM mid-download: the agent abandons it, removes the partial file, exits 0.
    grown(1 << 20);
    let status = agent.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(
        partials(&state_dir).is_empty(),
        "abandoned download removed: {:?}",
        partials(&state_dir)
    );
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("1.0.0")
    );

    // SIGKILL mid-download: a partial file stays behind, nothing is installed.
    let agent = world.start_agent(&config);
    let (partial, _) = grown(2 << 20);
    agent.kill();
    assert!(partial.exists(), "a killed agent leaves its partial file");
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("1.0.0")
    );
    assert_eq!(
        target.serving(),
        Some(("1.0.0".to_owned(), pid)),
        "service untouched"
    );
    assert_eq!(world.state_installed()["version"], "1.0.0");

    // Restarted, the agent cleans up and finishes the update.
    world.proxy.set_rate(None);
    let agent = world.start_agent(&config);
    agent.wait_for_log("removed partial downloads left by a previous run", 1, LONG);
    target.wait_version("2.0.0", LONG);
    wait_installed(&world, "hello", "2.0.0", LONG);
    agent.wait_for_log("hello 2.0.0 is installed and serving", 1, LONG);
    assert!(!partial.exists());
    assert!(world.sandbox.path("/usr/share/hello/payload.bin").is_file());
    assert_eq!(
        std::fs::read(world.sandbox.path("/usr/share/hello/payload.bin"))
            .unwrap()
            .len(),
        16 << 20
    );
}
