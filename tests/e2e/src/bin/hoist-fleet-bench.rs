//! The fleet benchmark (`bash bench/fleet.sh`): how long a release takes to reach
//! every host of a small fleet when agents poll at their default pace, and whether
//! any request fails on the way.
//!
//! Boots `--hosts` (default 3) Debian hosts of `--suite` (default trixie, Debian 13;
//! `bookworm` for Debian 12) (systemd-nspawn, systemd + cloud-init)
//! from user-data rendered by `hoist cloud-init`, with agents on their default
//! polling (10 s ± 2 s) and moto on 127.0.0.1 as S3. A client sends requests to every
//! host for the whole run. Then `--releases` (default 10) times: wait a random part
//! of the poll interval (a release lands at a random moment of each agent's cycle,
//! as in production; releasing right after the previous one converged would always
//! catch the agents at the start of their wait), `hoist release` the next `hello`,
//! and time each host from the command returning until it serves the new version.
//!
//! Prints per-host and overall median / max propagation and failed requests against
//! the targets (median ≤ 7 s, max ≤ 13 s, 0 failed), writes them to
//! `target/e2e-report/fleet-bench.txt`, and exits 1 when a request failed or a unit
//! did not hand over cleanly (timing misses are reported, not failures: they depend
//! on the machine). Everything it started is removed at the end, also on Ctrl-C.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hoist_e2e::bootstrap::{HostPlan, Polling, boot_all};
use hoist_e2e::packages::{Deb, agent_deb, hello_deb};
use hoist_e2e::probe::{UnitSnapshot, wait_all_serving, wait_handed_over, wait_serving};
use hoist_e2e::releases::{AGENT_KEY, Bucket, HELLO_KEY};
use hoist_e2e::{artifacts, interrupts};
use hoist_testkit::container::{self, Suite};
use hoist_testkit::hello::{Load, LoadConfig, LoadReport, build_hello};
use hoist_testkit::s3server::S3Server;

/// The agent's default poll interval (`agent/src/config.rs`).
const AGENT_INTERVAL: Duration = Duration::from_secs(10);
/// Targets of issue 6.
const TARGET_MEDIAN: Duration = Duration::from_secs(7);
const TARGET_MAX: Duration = Duration::from_secs(13);
/// Bound for a host to boot and serve the first version.
const BOOT_DEADLINE: Duration = Duration::from_secs(180);
/// Bound for one release to reach a host (far above the target: a miss is measured,
/// not aborted).
const RELEASE_DEADLINE: Duration = Duration::from_secs(90);

const USAGE: &str = "usage: hoist-fleet-bench [--hosts N] [--releases N] [--suite bookworm|trixie]\n       hoist-fleet-bench --sweep   (remove hosts left by a killed run)";

/// Command-line settings.
struct Settings {
    hosts: usize,
    releases: usize,
    suite: Suite,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--sweep") {
        container::sweep_stale_hosts();
        return ExitCode::SUCCESS;
    }
    let settings = match parse_args(&args) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    interrupts::clean_up_on_signal();
    match run(&settings) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("fleet benchmark failed: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut settings = Settings {
        hosts: 3,
        releases: 10,
        suite: Suite::STABLE,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--suite" {
            let value = args
                .next()
                .ok_or_else(|| "--suite needs bookworm or trixie".to_owned())?;
            settings.suite = value.parse()?;
            continue;
        }
        let slot = match flag.as_str() {
            "--hosts" => &mut settings.hosts,
            "--releases" => &mut settings.releases,
            other => return Err(format!("unknown argument `{other}`")),
        };
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a number"))?;
        *slot = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{flag} {value}: expected a positive whole number"))?;
    }
    Ok(settings)
}

/// One host's figures over the whole run.
struct HostFigures {
    name: String,
    propagation: Vec<Duration>,
    /// Releases after which the unit had not handed over cleanly, with why.
    handover_problems: Vec<String>,
    load: LoadReport,
}

fn run(settings: &Settings) -> Result<bool, String> {
    let started = Instant::now();
    println!(
        "hoist fleet benchmark: {} hosts on {}, {} releases, agents polling every {AGENT_INTERVAL:?} ± 2 s (their defaults)",
        settings.hosts,
        settings.suite.describe(),
        settings.releases
    );

    println!(
        "\n==> building hoist-agent and {} hello versions",
        settings.releases + 1
    );
    let dist = tempfile::Builder::new()
        .prefix("hoist-fleet-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    interrupts::remove_on_signal(dist.path().to_owned());
    let agent = agent_deb(&artifacts::hoist_agent(), "0.1.0", dist.path());
    let first = hello_deb(&build_hello("1.0.0", None), "1.0.0", dist.path());
    let releases: Vec<Deb> = (1..=settings.releases)
        .map(|i| {
            let version = format!("2.0.{i}");
            hello_deb(&build_hello(&version, None), &version, dist.path())
        })
        .collect();

    println!("==> S3 (moto on 127.0.0.1), releasing hoist-agent and hello 1.0.0");
    let server = S3Server::moto();
    interrupts::kill_s3_server_on_signal(server.pid());
    let bucket = Bucket::create(&server, "hoist-fleet-bench");
    bucket.release(&agent, AGENT_KEY);
    bucket.release(&first, HELLO_KEY);

    println!(
        "==> booting {} hosts from rendered user-data",
        settings.hosts
    );
    let plans: Vec<HostPlan> = (1..=settings.hosts)
        .map(|n| {
            HostPlan::new(&format!("fleet-bench-{n}"))
                .polling(Polling::AgentDefaults)
                .suite(settings.suite)
        })
        .collect();
    let hosts = boot_all(&plans, &server, &bucket).map_err(|e| e.to_string())?;
    let addrs: Vec<_> = plans.iter().map(HostPlan::addr).collect();
    for (host, plan) in hosts.iter().zip(&plans) {
        let took = wait_serving(
            host,
            plan.addr(),
            "1.0.0",
            host.boot_started(),
            BOOT_DEADLINE,
        );
        println!(
            "  {}: booted in {:.1?}, serving 1.0.0 {took:.1?} after the boot started",
            host.name(),
            host.boot_time()
        );
    }

    let loads: Vec<Load> = plans
        .iter()
        .map(|plan| Load::start(plan.addr(), load_config()))
        .collect();
    let mut per_host: Vec<(Vec<Duration>, Vec<String>)> =
        vec![(Vec::new(), Vec::new()); hosts.len()];
    let mut random = Random::seeded();

    println!(
        "\n==> {} releases under load ({} keep-alive, {} new-connection, {} slow clients per host)",
        settings.releases,
        load_config().keep_alive,
        load_config().new_connection,
        load_config().slow
    );
    for deb in &releases {
        let wait = AGENT_INTERVAL.mul_f64(random.fraction());
        std::thread::sleep(wait);
        let before: Vec<UnitSnapshot> = hosts
            .iter()
            .map(|h| UnitSnapshot::take(h, "hello.service"))
            .collect();
        let released = bucket.release(deb, HELLO_KEY);
        let times = wait_all_serving(&hosts, &addrs, &deb.version, released.at, RELEASE_DEADLINE);
        let mut line = format!(
            "  hello {:<7} (released {:>4.1}s after the previous one converged; the command took {:.1?}):",
            deb.version,
            wait.as_secs_f64(),
            released.took
        );
        for (i, ((host, before), took)) in hosts.iter().zip(&before).zip(&times).enumerate() {
            // The load goes on until the old process has drained and exited.
            let replaced: Vec<u32> = before.main_pid.into_iter().collect();
            wait_handed_over(host, "hello.service", &replaced, RELEASE_DEADLINE);
            let after = UnitSnapshot::take(host, "hello.service");
            per_host[i].0.push(*took);
            line.push_str(&format!(" {}={:.2}s", host.name(), took.as_secs_f64()));
            if let Some(problem) = before.handover_problem(&after) {
                line.push_str(" (!)");
                per_host[i].1.push(format!("{}: {problem}", deb.version));
            }
        }
        println!("{line}");
    }
    let figures: Vec<HostFigures> = hosts
        .iter()
        .zip(loads)
        .zip(per_host)
        .map(
            |((host, load), (propagation, handover_problems))| HostFigures {
                name: host.name().to_owned(),
                propagation,
                handover_problems,
                load: load.stop(),
            },
        )
        .collect();

    let (report, ok) = summary(&figures);
    print!("\n{report}");
    let path = artifacts::write_report("fleet-bench.txt", &report);
    println!("(written to {})", path.display());

    println!("\n==> cleaning up: powering the hosts off, removing their files, stopping moto");
    for host in hosts {
        host.shutdown().map_err(|e| e.to_string())?;
    }
    drop(server);
    println!("done in {:.1?}", started.elapsed());
    Ok(ok)
}

/// Steady load on each host for the whole run: light enough for three hosts and the
/// client on 2 cores, with every kind of request a handoff can break.
fn load_config() -> LoadConfig {
    LoadConfig {
        keep_alive: 2,
        new_connection: 1,
        slow: 1,
        slow_ms: 200,
        pause: Duration::from_millis(10),
        request_timeout: Duration::from_secs(30),
        threads: 1,
    }
}

/// The figures table and whether nothing failed.
fn summary(figures: &[HostFigures]) -> (String, bool) {
    let mut out = String::from(
        "propagation: from `hoist release` returning until the host serves the new version\n",
    );
    out.push_str(&format!(
        "{:<14} {:>9} {:>9} {:>10} {:>8} {:>9} {:>10}\n",
        "host", "median", "max", "requests", "failed", "slowest", "handovers"
    ));
    let mut all = Vec::new();
    let (mut requests, mut failed, mut problems) = (0, 0, 0);
    for host in figures {
        all.extend_from_slice(&host.propagation);
        requests += host.load.samples.len();
        failed += host.load.total_failed();
        problems += host.handover_problems.len();
        out.push_str(&format!(
            "{:<14} {:>8.2}s {:>8.2}s {:>10} {:>8} {:>8.2}s {:>7}/{}\n",
            host.name,
            median(&host.propagation).as_secs_f64(),
            max(&host.propagation).as_secs_f64(),
            host.load.samples.len(),
            host.load.total_failed(),
            host.load.max_latency().as_secs_f64(),
            host.propagation.len() - host.handover_problems.len(),
            host.propagation.len()
        ));
    }
    let (median_all, max_all) = (median(&all), max(&all));
    out.push_str(&format!(
        "{:<14} {:>8.2}s {:>8.2}s {:>10} {:>8}\n",
        "all hosts",
        median_all.as_secs_f64(),
        max_all.as_secs_f64(),
        requests,
        failed
    ));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    out.push_str(&format!(
        "targets: median ≤ {TARGET_MEDIAN:?}: {}; max ≤ {TARGET_MAX:?}: {}; 0 failed requests: {}; clean handovers (MainPID changed, never stopped or restarted): {}\n",
        verdict(median_all <= TARGET_MEDIAN),
        verdict(max_all <= TARGET_MAX),
        verdict(failed == 0),
        verdict(problems == 0),
    ));
    for host in figures {
        for problem in &host.handover_problems {
            out.push_str(&format!("  {}: {problem}\n", host.name));
        }
        if host.load.total_failed() > 0 {
            out.push_str(&format!("  {}:\n{}", host.name, host.load.summary()));
        }
    }
    (out, failed == 0 && problems == 0)
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

fn max(values: &[Duration]) -> Duration {
    values.iter().copied().max().unwrap_or_default()
}

/// A small xorshift generator for the release moments (no need for a crate: the
/// numbers only have to be spread out, not unpredictable).
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64);
        Random(nanos | 1)
    }

    /// A number in [0, 1).
    fn fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Duration::from_secs;
        assert_eq!(median(&[s(9), s(1), s(5)]), s(5));
        assert_eq!(median(&[s(4), s(1), s(2), s(8)]), s(3));
        assert_eq!(median(&[]), Duration::ZERO);
    }

    #[test]
    fn fractions_stay_in_range_and_spread() {
        let mut random = Random(42);
        let values: Vec<f64> = (0..1000).map(|_| random.fraction()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.iter().any(|v| *v < 0.1) && values.iter().any(|v| *v > 0.9));
    }

    #[test]
    fn arguments_are_checked() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let s = parse_args(&args(&["--hosts", "2", "--releases", "4"])).unwrap();
        assert_eq!((s.hosts, s.releases), (2, 4));
        assert!(parse_args(&args(&["--hosts", "0"])).is_err());
        assert!(parse_args(&args(&["--hosts"])).is_err());
        assert!(parse_args(&args(&["--fast"])).is_err());
    }
}
