//! Observing a host from outside (HTTP on its port) and inside (systemd, dpkg, the
//! agent's state), with bounded waits instead of sleeps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hoist_testkit::container::Host;
use hoist_testkit::hello::{HelloInfo, get};

/// What `GET /` on `addr` answers right now, if it answers 200 with hello's JSON.
pub fn served(addr: SocketAddr) -> Option<HelloInfo> {
    let response = get(addr, "/", Duration::from_secs(2)).ok()?;
    (response.status == 200)
        .then(|| response.hello_info())
        .flatten()
}

/// Polls `addr` every 50 ms until it serves `version`; returns how long that took,
/// counted from `since`.
///
/// # Panics
/// When `timeout` (counted from now) passes first, with what was served last and the
/// host's journal of the agent and the service.
pub fn wait_serving(
    host: &Host,
    addr: SocketAddr,
    version: &str,
    since: Instant,
    timeout: Duration,
) -> Duration {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let now = served(addr);
        if now.as_ref().is_some_and(|info| info.version == version) {
            return since.elapsed();
        }
        last = now.or(last);
        if Instant::now() >= deadline {
            panic!(
                "{} did not serve {version} within {timeout:?} (last answer: {last:?})\n{}",
                host.name(),
                diagnostics(host)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_serving`] on every host at once (host `i` answering on `addrs[i]`); how
/// long each took from `since`, in host order.
///
/// # Panics
/// As [`wait_serving`], for the first host that times out.
pub fn wait_all_serving(
    hosts: &[Host],
    addrs: &[SocketAddr],
    version: &str,
    since: Instant,
    timeout: Duration,
) -> Vec<Duration> {
    std::thread::scope(|scope| {
        let waits: Vec<_> = hosts
            .iter()
            .zip(addrs)
            .map(|(host, addr)| {
                scope.spawn(move || wait_serving(host, *addr, version, since, timeout))
            })
            .collect();
        waits
            .into_iter()
            .map(|wait| match wait.join() {
                Ok(took) => took,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// The agent's and the service's journals and the failed units, for failure messages.
pub fn diagnostics(host: &Host) -> String {
    let journal = |unit: &str| host.journal(unit).unwrap_or_else(|e| e.to_string());
    format!(
        "--- hoist-agent.service ---\n{}\n--- hello.service ---\n{}\n--- cloud-final.service ---\n{}\n--- failed units ---\n{}",
        journal("hoist-agent.service"),
        journal("hello.service"),
        journal("cloud-final.service"),
        host.failed_units().unwrap_or_else(|e| e.to_string())
    )
}

/// A unit's state at one moment, to show that it stayed up across a handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSnapshot {
    /// `ActiveState`.
    pub active: String,
    /// `MainPID` (in the host's pid namespace).
    pub main_pid: Option<u32>,
    /// `ActiveEnterTimestampMonotonic`: changes whenever the unit (re)starts.
    pub active_since: String,
    /// `NRestarts`: automatic restarts by systemd.
    pub restarts: String,
    /// Jobs other than `reload` that systemd ran for the unit (`start`, `stop`,
    /// `restart`, …), counted when finished.
    pub non_reload_jobs: usize,
    /// Finished `reload` jobs.
    pub reload_jobs: usize,
}

impl UnitSnapshot {
    /// Reads the snapshot of `unit` on `host`.
    ///
    /// # Panics
    /// When systemctl or journalctl fail.
    pub fn take(host: &Host, unit: &str) -> UnitSnapshot {
        let property = |name: &str| {
            host.unit_property(unit, name)
                .unwrap_or_else(|e| panic!("systemctl show {unit} {name} on {}: {e}", host.name()))
        };
        let jobs = host
            .unit_jobs(unit)
            .unwrap_or_else(|e| panic!("journal of {unit} on {}: {e}", host.name()));
        let finished = jobs.iter().filter(|j| !j.result.is_empty());
        let (reloads, others): (Vec<_>, Vec<_>) = finished.partition(|j| j.job_type == "reload");
        UnitSnapshot {
            active: property("ActiveState"),
            main_pid: host
                .main_pid(unit)
                .unwrap_or_else(|e| panic!("MainPID of {unit} on {}: {e}", host.name())),
            active_since: property("ActiveEnterTimestampMonotonic"),
            restarts: property("NRestarts"),
            non_reload_jobs: others.len(),
            reload_jobs: reloads.len(),
        }
    }

    /// Asserts that the unit handed over to a new process without ever leaving the
    /// active state between `self` (before) and `after`: it is active, its MainPID
    /// changed, it was not (re)started, stopped or restarted by systemd, and it was
    /// reloaded at least once.
    ///
    /// # Panics
    /// When one of those does not hold, with both snapshots and `context`.
    pub fn assert_handed_over_to(&self, after: &UnitSnapshot, context: &str) {
        if let Some(problem) = self.handover_problem(after) {
            panic!("{problem}\nbefore: {self:?}\nafter: {after:?}\n{context}");
        }
    }

    /// What is wrong with the handoff from `self` (before) to `after`, `None` when the
    /// unit handed over as [`UnitSnapshot::assert_handed_over_to`] requires.
    pub fn handover_problem(&self, after: &UnitSnapshot) -> Option<&'static str> {
        if after.active != "active" {
            Some("the unit is not active")
        } else if after.main_pid.is_none() {
            Some("the unit has no MainPID")
        } else if after.main_pid == self.main_pid {
            Some("MainPID did not change")
        } else if after.active_since != self.active_since {
            Some("the unit left the active state")
        } else if after.restarts != self.restarts {
            Some("systemd restarted the unit")
        } else if after.non_reload_jobs != self.non_reload_jobs {
            Some("systemd ran start/stop/restart jobs for the unit")
        } else if after.reload_jobs <= self.reload_jobs {
            Some("the unit was never reloaded")
        } else {
            None
        }
    }
}

/// `dpkg-query`'s version of `package` on `host`, `None` when not installed.
///
/// # Panics
/// When the command cannot run.
pub fn installed_version(host: &Host, package: &str) -> Option<String> {
    let out = host
        .exec(&["dpkg-query", "-W", "-f", "${Status}|${Version}", package])
        .unwrap_or_else(|e| panic!("dpkg-query on {}: {e}", host.name()));
    let (status, version) = out.stdout.split_once('|')?;
    (out.success() && status == "install ok installed").then(|| version.to_owned())
}

/// `hoist-agent status --json` on `host`, parsed.
///
/// # Panics
/// When the command fails or prints no JSON.
pub fn agent_status(host: &Host) -> serde_json::Value {
    let out = host
        .exec(&["hoist-agent", "status", "--json"])
        .and_then(|o| o.ok())
        .unwrap_or_else(|e| panic!("hoist-agent status on {}: {e}", host.name()));
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hoist-agent status --json printed no JSON ({e}): {}",
            out.stdout
        )
    })
}

/// Lines of `/var/log/dpkg.log` on `host` that record a package being unpacked
/// (`install`/`upgrade` actions): a reinstall adds one.
///
/// # Panics
/// When the log cannot be read.
pub fn dpkg_installs(host: &Host) -> Vec<String> {
    let log = host
        .read_file("/var/log/dpkg.log")
        .unwrap_or_else(|e| panic!("dpkg.log on {}: {e}", host.name()));
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|line| {
            let action = line.split_whitespace().nth(2);
            matches!(action, Some("install" | "upgrade"))
        })
        .map(str::to_owned)
        .collect()
}

/// The processes of `unit` on `host` (its cgroup's `cgroup.procs`, pids in the host's
/// pid namespace, as `MainPID` and hello's `x-hello-pid`); empty when it has none.
///
/// # Panics
/// When systemctl or reading the cgroup fails.
pub fn unit_processes(host: &Host, unit: &str) -> Vec<u32> {
    let cgroup = host
        .unit_property(unit, "ControlGroup")
        .unwrap_or_else(|e| panic!("ControlGroup of {unit} on {}: {e}", host.name()));
    if cgroup.is_empty() {
        return Vec::new();
    }
    let procs = format!("/sys/fs/cgroup{cgroup}/cgroup.procs");
    let out = host
        .exec(&["cat", &procs])
        .and_then(|o| o.ok())
        .unwrap_or_else(|e| panic!("{procs} on {}: {e}", host.name()));
    out.stdout
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// Polls until `unit`'s only process is its `MainPID` and that is not one of
/// `replaced`: every process it handed over from (or rolled back from) has drained
/// and exited. Returns the MainPID.
///
/// # Panics
/// When `timeout` passes first, with the unit's processes and the host's journals.
pub fn wait_handed_over(host: &Host, unit: &str, replaced: &[u32], timeout: Duration) -> u32 {
    let deadline = Instant::now() + timeout;
    loop {
        let main = host
            .main_pid(unit)
            .unwrap_or_else(|e| panic!("MainPID of {unit} on {}: {e}", host.name()));
        let processes = unit_processes(host, unit);
        if let Some(main) = main
            && processes == [main]
            && !replaced.contains(&main)
        {
            return main;
        }
        if Instant::now() >= deadline {
            panic!(
                "{unit} on {} still runs {processes:?} (MainPID {main:?}, replaced {replaced:?}) \
                 after {timeout:?}\n{}",
                host.name(),
                diagnostics(host)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
