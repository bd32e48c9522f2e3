//! dpkg as under apt, on a real systemd host (one boot, both cases): the agent runs
//! `dpkg -i` in a transient unit, so that maintainer scripts do not inherit the agent
//! unit's sandbox, and stops a dpkg run at `[dpkg] timeout`.
//!
//! - hello 1.0.0's postinst writes into the host's /tmp (the agent has PrivateTmp=) and
//!   creates a mount namespace (the agent has RestrictNamespaces=): it installs and
//!   serves, the file is in the host's /tmp;
//! - hello 2.0.0's postinst hangs: the run is stopped at the limit (10 s), the host
//!   keeps 1.0.0, 2.0.0 is marked bad and nothing of the hung script is left.

use std::time::{Duration, Instant};

use hoist_e2e::artifacts;
use hoist_e2e::bootstrap::HostPlan;
use hoist_e2e::packages::{agent_deb, hello_deb_with_postinst};
use hoist_e2e::probe::{agent_status, diagnostics, installed_version, wait_serving};
use hoist_e2e::releases::{AGENT_KEY, Bucket, HELLO_KEY};
use hoist_testkit::hello::{build_hello, wait_until};
use hoist_testkit::s3server::S3Server;

const DPKG_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn maintainer_scripts_run_without_the_agent_sandbox_and_a_hung_one_is_stopped() {
    let dir = artifacts::scratch_dir("e2e-dpkg-isolation");
    let server = S3Server::moto();
    let bucket = Bucket::create(&server, "hoist-e2e-dpkg");
    bucket.release(
        &agent_deb(&artifacts::hoist_agent(), "0.1.0", &dir),
        AGENT_KEY,
    );
    let v1 = hello_deb_with_postinst(
        &build_hello("1.0.0", None),
        "1.0.0",
        &dir,
        "if [ \"$1\" = configure ]; then\n\
         echo \"$DPKG_MAINTSCRIPT_PACKAGE\" > /tmp/hoist-e2e-postinst\n\
         unshare --mount true\n\
         echo unshared >> /tmp/hoist-e2e-postinst\nfi",
    );
    let v2 = hello_deb_with_postinst(
        &build_hello("2.0.0", None),
        "2.0.0",
        &dir,
        "exec sleep 3600",
    );
    bucket.release(&v1, HELLO_KEY);
    let plan = HostPlan::new("e2e-dpkg");
    let config = format!(
        "{}\n[dpkg]\ntimeout = \"{}s\"\n",
        plan.agent_config(&bucket),
        DPKG_TIMEOUT.as_secs()
    );
    let (user_data, _) = bucket.cloud_init(&config);
    let host = plan
        .spec_with_user_data(&server, &user_data)
        .boot()
        .unwrap();

    // 1. The postinst wrote into the host's /tmp and made a namespace.
    wait_serving(
        &host,
        plan.addr(),
        "1.0.0",
        host.boot_started(),
        Duration::from_secs(120),
    );
    // (exec runs in the host's own mount namespace, not the agent's private /tmp.)
    let written = host.exec(&["cat", "/tmp/hoist-e2e-postinst"]).unwrap();
    assert_eq!(
        written.stdout,
        "hello\nunshared\n",
        "{}",
        diagnostics(&host)
    );

    // 2. The hung postinst is stopped at the limit; the host keeps 1.0.0.
    let released = Instant::now();
    bucket.release(&v2, HELLO_KEY);
    wait_until("2.0.0 marked bad", Duration::from_secs(120), || {
        let status = agent_status(&host);
        let bad = status["watches"]["hello"]["bad"].as_array()?.clone();
        bad.iter()
            .find(|b| b["version"] == "2.0.0")
            .map(|b| b["reason"].as_str().unwrap_or_default().to_owned())
    });
    let took = released.elapsed();
    let journal = host
        .exec(&["journalctl", "-u", "hoist-agent", "--no-pager", "-o", "cat"])
        .unwrap()
        .stdout;
    assert!(journal.contains("did not finish within 10s"), "{journal}");
    assert!(
        took < DPKG_TIMEOUT * 6,
        "stopped at the limit, not later: {took:?}"
    );
    assert_eq!(installed_version(&host, "hello").as_deref(), Some("1.0.0"));
    wait_serving(
        &host,
        plan.addr(),
        "1.0.0",
        released,
        Duration::from_secs(30),
    );
    let left = host.exec(&["pgrep", "-f", "sleep 3600"]).unwrap();
    assert!(!left.success(), "the hung script is left: {}", left.stdout);
    let units = host
        .exec(&[
            "systemctl",
            "list-units",
            "--all",
            "--no-legend",
            "hoist-dpkg-*",
        ])
        .unwrap();
    assert_eq!(units.stdout.trim(), "", "transient dpkg units are gone");
    let audit = host.exec(&["dpkg", "--audit"]).unwrap();
    assert_eq!(audit.stdout.trim(), "", "dpkg --audit is clean");
    host.shutdown().unwrap();
}
