//! `make demo`: the whole hoist loop on a real systemd host, on this machine.
//!
//! Builds the packages with `hoist build`, starts moto on 127.0.0.1 as the S3
//! server, releases the agent and `hello` 1.0.0 with `hoist release`, boots a Debian
//! host (`--suite trixie`, the default, for Debian 13; `--suite bookworm` for Debian
//! 12; systemd-nspawn, systemd + cloud-init) from rendered user-data, releases
//! `hello` 2.0.0 while a client sends requests continuously, rolls back with
//! `hoist rollback`, and prints a summary. Everything it started is stopped and
//! removed at the end, on failure and on Ctrl-C. Run by `scripts/demo.sh`, which
//! installs what it needs first.
//!
//! `hoist-demo --sweep` only removes hosts left behind by a demo or test process
//! that was killed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hoist_e2e::bootstrap::HostPlan;
use hoist_e2e::packages::{agent_deb, hello_deb};
use hoist_e2e::probe::{UnitSnapshot, served, wait_handed_over, wait_serving};
use hoist_e2e::releases::{AGENT_KEY, Bucket, HELLO_KEY, Released};
use hoist_e2e::{artifacts, interrupts};
use hoist_testkit::container::{self, Host, Suite};
use hoist_testkit::hello::{Load, LoadConfig, LoadReport, Window, build_hello, wait_until};
use hoist_testkit::s3server::S3Server;

/// Bound for each wait of the demo.
const DEADLINE: Duration = Duration::from_secs(90);

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--sweep") {
        container::sweep_stale_hosts();
        return ExitCode::SUCCESS;
    }
    let suite = match parse_suite(std::env::args().skip(1)) {
        Ok(suite) => suite,
        Err(err) => {
            eprintln!(
                "error: {err}\nusage: hoist-demo [--suite bookworm|trixie]\n       hoist-demo --sweep"
            );
            return ExitCode::from(2);
        }
    };
    interrupts::clean_up_on_signal();
    match run(suite) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "demo: requests failed or stalled, or the service was restarted during an upgrade (see above)"
            );
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("demo failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--suite NAME` (default: the current stable release).
fn parse_suite(mut args: impl Iterator<Item = String>) -> Result<Suite, String> {
    let mut suite = Suite::STABLE;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--suite" => {
                suite = args
                    .next()
                    .ok_or_else(|| "--suite needs bookworm or trixie".to_owned())?
                    .parse()?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(suite)
}

fn step(n: u32, text: &str) {
    println!("\n[{n}/6] {text}");
}

fn shown(command: &str) {
    println!("  $ {command}");
}

/// One upgrade under load, for the summary.
struct Rollout {
    label: &'static str,
    propagation: Duration,
    report: LoadReport,
    /// From the command until the old process exited: no failure, enough requests,
    /// none slower than the bound (see [`Window`]).
    clean: bool,
    pids: (Option<u32>, Option<u32>),
    /// The unit stayed active throughout (reloaded, never stopped or restarted).
    stayed_up: bool,
}

fn run(suite: Suite) -> Result<bool, String> {
    let started = Instant::now();
    println!(
        "hoist demo: the whole loop on a real systemd host ({}, systemd + cloud-init in systemd-nspawn)",
        suite.describe()
    );

    step(
        1,
        "build hoist, hoist-agent and hello 1.0.0 / 2.0.0, and package them with `hoist build`",
    );
    let t = Instant::now();
    let dist = tempfile::Builder::new()
        .prefix("hoist-demo-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    interrupts::remove_on_signal(dist.path().to_owned());
    let agent = agent_deb(&artifacts::hoist_agent(), "0.1.0", dist.path());
    let v1 = hello_deb(&build_hello("1.0.0", None), "1.0.0", dist.path());
    let v2 = hello_deb(&build_hello("2.0.0", None), "2.0.0", dist.path());
    for deb in [&agent, &v1, &v2] {
        shown(&deb.command);
        println!("    → {}", deb.path.display());
    }
    let build_time = t.elapsed();

    step(
        2,
        "start S3 (moto on 127.0.0.1) and release the agent and hello 1.0.0 with `hoist release`",
    );
    let server = S3Server::moto();
    interrupts::kill_s3_server_on_signal(server.pid());
    let bucket = Bucket::create(&server, "hoist-demo");
    println!(
        "  S3 endpoint {}, bucket `{}` with versioning; releases signed with a key made by \
         `hoist keygen` for this run (public key {}, in the host's agent.toml)",
        server.endpoint(),
        bucket.name(),
        bucket.public_key()
    );
    for (deb, key) in [(&agent, AGENT_KEY), (&v1, HELLO_KEY)] {
        let r = bucket.release(deb, key);
        shown(&r.command);
        println!("    → VersionId {}", r.version_id);
    }

    step(
        3,
        "boot a new host from user-data rendered from cloud-init/user-data.yaml",
    );
    let plan = HostPlan::new("demo-host").suite(suite);
    let (user_data, command) = bucket.cloud_init(&plan.agent_config(&bucket));
    shown(&command);
    println!(
        "    → {} lines of #cloud-config: writes /etc/hoist/agent.toml, downloads hoist-agent (presigned URL), checks its SHA-256, installs it, runs `hoist-agent once`, enables the agent",
        user_data.lines().count()
    );
    let spec = plan.spec_with_user_data(&server, &user_data);
    println!(
        "  (the first run builds the host's root file system with debootstrap: about a minute, then cached)"
    );
    let host = spec.boot().map_err(|e| e.to_string())?;
    let to_v1 = wait_serving(&host, plan.addr(), "1.0.0", host.boot_started(), DEADLINE);
    println!(
        "  booted (systemd + cloud-init bootstrap) in {:.1?}; serving 1.0.0 {:.1?} after the boot started",
        host.boot_time(),
        to_v1
    );
    show_answer(plan.addr());

    step(
        4,
        "release hello 2.0.0 while a client sends requests continuously",
    );
    let upgrade = rollout(&host, &plan, "2.0.0", "release 2.0.0", || {
        bucket.release(&v2, HELLO_KEY)
    })?;

    step(
        5,
        "`hoist rollback`: the previous version becomes current again; the host follows",
    );
    let rollback = rollout(&host, &plan, "1.0.0", "rollback to 1.0.0", || {
        bucket.rollback(HELLO_KEY)
    })?;

    step(6, "summary");
    println!(
        "  packages built in {build_time:.1?}; host booted in {:.1?}, serving 1.0.0 {to_v1:.1?} after boot",
        host.boot_time()
    );
    println!(
        "  {:<20} {:>12} {:>10} {:>8}  MainPID",
        "change", "propagation", "requests", "failed"
    );
    let mut ok = true;
    for r in [&upgrade, &rollback] {
        println!(
            "  {:<20} {:>11.1?} {:>10} {:>8}  {} → {}",
            r.label,
            r.propagation,
            r.report.samples.len(),
            r.report.total_failed(),
            r.pids.0.map_or("-".into(), |p| p.to_string()),
            r.pids.1.map_or("-".into(), |p| p.to_string()),
        );
        ok &= r.clean && r.stayed_up;
    }
    println!(
        "  (propagation: from the hoist command returning to the host serving the new version; the agent polls every 2 s here, 10 s by default)"
    );

    println!("\ncleaning up: powering the host off, removing its files, stopping moto");
    host.shutdown().map_err(|e| e.to_string())?;
    drop(server);
    println!("done in {:.1?}", started.elapsed());
    Ok(ok)
}

/// Runs `change` under load and waits until the host serves `expect`.
fn rollout(
    host: &Host,
    plan: &HostPlan,
    expect: &str,
    label: &'static str,
    change: impl FnOnce() -> Released,
) -> Result<Rollout, String> {
    let before = UnitSnapshot::take(host, "hello.service");
    let load = Load::start(plan.addr(), LoadConfig::default());
    wait_until("the load to get going", DEADLINE, || {
        (load.progress().0 >= 100).then_some(())
    });
    let from = load.elapsed();
    let released = change();
    shown(&released.command);
    println!("    → VersionId {}", released.version_id);
    let propagation = wait_serving(host, plan.addr(), expect, released.at, DEADLINE);
    // The load goes on until the old process has drained and exited.
    let replaced: Vec<u32> = before.main_pid.into_iter().collect();
    wait_handed_over(host, "hello.service", &replaced, DEADLINE);
    let window = Window::new(from..load.elapsed());
    let report = load.stop();
    let problems = report.window_problems(&window, |_| false);
    let after = UnitSnapshot::take(host, "hello.service");
    let stayed_up = after.active == "active"
        && after.active_since == before.active_since
        && after.non_reload_jobs == before.non_reload_jobs;
    println!(
        "  serving {expect} {propagation:.1?} after the command returned; {} requests, {} failed, \
         slowest {:.0?} (bound {:?})",
        report.samples.len(),
        report.total_failed(),
        report.max_latency(),
        window.max_latency
    );
    println!(
        "  hello.service: MainPID {} → {}, {}",
        before.main_pid.map_or("-".into(), |p| p.to_string()),
        after.main_pid.map_or("-".into(), |p| p.to_string()),
        if stayed_up {
            "reloaded, never stopped or restarted"
        } else {
            "WAS STOPPED OR RESTARTED"
        }
    );
    if !problems.is_empty() {
        println!("  PROBLEMS:\n  - {}", problems.join("\n  - "));
        print!("{}", report.summary());
    }
    show_answer(plan.addr());
    Ok(Rollout {
        label,
        propagation,
        report,
        clean: problems.is_empty(),
        pids: (before.main_pid, after.main_pid),
        stayed_up,
    })
}

fn show_answer(addr: SocketAddr) {
    match served(addr) {
        Some(info) => println!(
            "  $ curl http://{addr}/  → version {} (pid {})",
            info.version, info.pid
        ),
        None => println!("  $ curl http://{addr}/  → no answer"),
    }
}
