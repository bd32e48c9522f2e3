//! A release whose dependencies are not installed on the host, on a real Debian 13
//! host (systemd-nspawn, real apt and dpkg), with the host's only apt source a local
//! repository the test serves as `file:` (indexed with `dpkg-scanpackages`):
//!
//! 1. hello 2.0.0 depends on `hoist-e2e-dep`, which no source of the host provides:
//!    the agent finds out before unpacking, nothing on the host changes (hello 1.0.0
//!    installed and serving, never reloaded, the dependency not installed, nothing
//!    unpacked, no `dpkg --configure -a` "repair"), and the release is marked bad
//!    with the missing package named in the log and in `hoist-agent status`;
//! 2. `hoist-e2e-dep` (built with `hoist build`) is published to the repository and
//!    the same package is released again: apt installs the dependency and hello
//!    2.0.0, which takes over under load with 0 failed requests.
//!
//! One host boot for both.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hoist_e2e::artifacts;
use hoist_e2e::bootstrap::HostPlan;
use hoist_e2e::packages::{Deb, agent_deb, data_deb, hello_deb, hello_deb_depending};
use hoist_e2e::probe::{
    UnitSnapshot, agent_status, diagnostics, dpkg_installs, installed_version, served, wait_serving,
};
use hoist_e2e::releases::{AGENT_KEY, Bucket, HELLO_KEY};
use hoist_testkit::container::{Host, Suite};
use hoist_testkit::hello::{Load, LoadConfig, build_hello};
use hoist_testkit::s3server::S3Server;

/// The package hello 2.0.0 depends on.
const DEP: &str = "hoist-e2e-dep";
/// The host's apt repository (a flat one: `deb [trusted=yes] file:REPO ./`).
const REPO: &str = "/srv/hoist-e2e-repo";
/// Bound for the host to boot and serve 1.0.0.
const BOOT_DEADLINE: Duration = Duration::from_secs(90);
/// Bound for a release to be acted on (agents poll every 2 s in the tests).
const DEADLINE: Duration = Duration::from_secs(90);

#[test]
fn missing_dependencies_come_from_apt_and_unresolvable_ones_change_nothing() {
    let dir = artifacts::scratch_dir("e2e-apt-packages");
    let agent = agent_deb(&artifacts::hoist_agent(), "0.1.0", &dir);
    let v1 = hello_deb(&build_hello("1.0.0", None), "1.0.0", &dir);
    let v2 = hello_deb_depending(
        &build_hello("2.0.0", None),
        "2.0.0",
        &[&format!("{DEP} (>= 1.0.0)")],
        &dir,
    );
    let dep = data_deb(DEP, "1.0.0", &dir);

    let server = S3Server::moto();
    let bucket = Bucket::create(&server, "hoist-e2e-apt");
    bucket.release(&agent, AGENT_KEY);
    bucket.release(&v1, HELLO_KEY);

    // The host's only apt source is the test's (empty for now) repository.
    let plan = HostPlan::new("e2e-apt").suite(Suite::Trixie);
    let host = plan
        .spec(&server, &bucket)
        .file(
            "/etc/apt/sources.list",
            "# hoist e2e: the test's repository is the only source\n",
            0o644,
        )
        .file(
            "/etc/apt/sources.list.d/hoist-e2e.list",
            format!("deb [trusted=yes] file:{REPO} ./\n"),
            0o644,
        )
        .file(&format!("{REPO}/Packages"), "", 0o644)
        .boot()
        .unwrap();
    wait_serving(
        &host,
        plan.addr(),
        "1.0.0",
        host.boot_started(),
        BOOT_DEADLINE,
    );

    // --- 1. the dependency is nowhere: refused before anything changes -------------
    let before = UnitSnapshot::take(&host, "hello.service");
    let installs_before = dpkg_installs(&host);
    let refused = bucket.release(&v2, HELLO_KEY);
    let bad = wait_marked_bad(&host, &refused.version_id);
    let reason = bad["reason"].as_str().unwrap_or_default().to_owned();
    println!(
        "{}: hello 2.0.0 without its dependency refused {:.2?} after the release: {reason}",
        host.name(),
        refused.at.elapsed()
    );
    assert!(reason.contains(DEP), "the reason names no package: {bad:#}");
    assert_eq!(installed_version(&host, "hello").as_deref(), Some("1.0.0"));
    assert_eq!(
        installed_version(&host, DEP),
        None,
        "{}",
        diagnostics(&host)
    );
    assert_eq!(
        served(plan.addr()).map(|i| i.version).as_deref(),
        Some("1.0.0")
    );
    assert_eq!(
        dpkg_installs(&host),
        installs_before,
        "something was unpacked:\n{}",
        diagnostics(&host)
    );
    let after = UnitSnapshot::take(&host, "hello.service");
    assert_eq!(
        (after.active.as_str(), after.main_pid, after.reload_jobs),
        ("active", before.main_pid, before.reload_jobs),
        "hello.service was touched:\n{}",
        diagnostics(&host)
    );
    let status = host
        .exec(&["hoist-agent", "status"])
        .and_then(|o| o.ok())
        .unwrap();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.contains("bad:") && l.contains("2.0.0") && l.contains(DEP)),
        "`hoist-agent status` does not name {DEP}:\n{}",
        status.stdout
    );
    let journal = host.journal("hoist-agent.service").unwrap();
    assert!(
        journal
            .lines()
            .any(|l| l.contains("marked bad") && l.contains(DEP)),
        "the agent's log does not name {DEP}:\n{journal}"
    );
    assert!(
        !journal.contains("--configure -a"),
        "the agent ran a dpkg repair:\n{journal}"
    );

    // --- 2. the dependency is published: apt installs it with the release -----------
    publish(&host, &[&dep]);
    let snapshot = UnitSnapshot::take(&host, "hello.service");
    let load = Load::start(plan.addr(), load_config());
    let released = bucket.release(&v2, HELLO_KEY);
    let took = wait_serving(&host, plan.addr(), "2.0.0", released.at, DEADLINE);
    // Keep the load on while the old process drains.
    let drained = Instant::now() + Duration::from_secs(2);
    while Instant::now() < drained {
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = load.stop();
    println!(
        "{}: hello 2.0.0 and {DEP} installed through apt, serving {took:.2?} after the release; {} requests, {} failed",
        host.name(),
        report.samples.len(),
        report.total_failed()
    );
    assert!(
        report.samples.len() > 100,
        "too little load to show anything: {}",
        report.summary()
    );
    assert_eq!(
        report.total_failed(),
        0,
        "requests failed during the handoff:\n{}\n{}",
        report.summary(),
        diagnostics(&host)
    );
    snapshot.assert_handed_over_to(
        &UnitSnapshot::take(&host, "hello.service"),
        &diagnostics(&host),
    );
    assert_eq!(installed_version(&host, "hello").as_deref(), Some("2.0.0"));
    assert_eq!(installed_version(&host, DEP).as_deref(), Some("1.0.0"));
    let status = agent_status(&host);
    assert_eq!(
        status["watches"]["hello"]["installed"]["version_id"],
        released.version_id.as_str(),
        "{status:#}"
    );
    let journal = host.journal("hoist-agent.service").unwrap();
    assert!(
        journal.contains("with apt"),
        "the agent did not install through apt:\n{journal}"
    );
    host.shutdown().unwrap();
}

/// Steady load during the handoff: keep-alive, new-connection and slow requests.
fn load_config() -> LoadConfig {
    LoadConfig {
        keep_alive: 2,
        new_connection: 2,
        slow: 1,
        slow_ms: 200,
        pause: Duration::from_millis(2),
        request_timeout: Duration::from_secs(30),
        threads: 1,
    }
}

/// Waits until the agent's state lists the object `version_id` as bad; its entry.
fn wait_marked_bad(host: &Host, version_id: &str) -> serde_json::Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = agent_status(host);
        let bad = status["watches"]["hello"]["bad"]
            .as_array()
            .and_then(|bad| bad.iter().find(|b| b["version_id"] == version_id).cloned());
        if let Some(entry) = bad {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "the release was not marked bad:\n{status:#}\n{}",
            diagnostics(host)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Puts `debs` into the host's repository and indexes it with `dpkg-scanpackages`
/// (run on this machine over a copy of the repository).
fn publish(host: &Host, debs: &[&Deb]) {
    let staging = tempfile::tempdir().expect("a temporary directory");
    for deb in debs {
        let name = format!("{}_{}_all.deb", deb.package, deb.version);
        let bytes = std::fs::read(&deb.path).expect("the package just built");
        std::fs::write(staging.path().join(&name), &bytes).expect("a copy of the package");
        host.write_file(&format!("{REPO}/{name}"), &bytes, 0o644)
            .expect("the package in the host's repository");
    }
    let index = scan_packages(staging.path());
    assert!(index.contains(&format!("Package: {DEP}")), "{index}");
    host.write_file(&format!("{REPO}/Packages"), index.as_bytes(), 0o644)
        .expect("the index in the host's repository");
}

/// `dpkg-scanpackages --multiversion .` in `dir`: a flat repository's index.
fn scan_packages(dir: &Path) -> String {
    let out = Command::new("dpkg-scanpackages")
        .args(["--multiversion", "."])
        .current_dir(dir)
        .output()
        .expect(
            "dpkg-scanpackages (package dpkg-dev) is installed by scripts/install-test-deps.sh",
        );
    assert!(
        out.status.success(),
        "dpkg-scanpackages failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
