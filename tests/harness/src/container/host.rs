//! A booted container host: a throwaway overlay over the cached root, booted by
//! systemd-nspawn in a private mount namespace, used through `nsenter`, and removed
//! on drop.
//!
//! How it runs (see `shared/design/testing.md`, "Real systemd and cloud-init in a
//! container"):
//!
//! ```text
//! setsid unshare --mount --propagation private -- sh -c 'mount -t overlay … MERGED && exec systemd-nspawn -D MERGED --boot …'
//! ```
//!
//! The overlay is mounted only inside the private mount namespace that nspawn runs
//! in, so it cannot leak: when nspawn exits, the namespace and its mounts go with it,
//! also when the test process is killed. The host's directory (upper and work layers,
//! console logs) lives under `$HOIST_CACHE/hosts/`; hosts whose test process died are
//! killed and removed by the next [`Host`] that boots.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::cgroup::{self, Placement};
use super::command::{self, Output};
use super::error::ContainerError;
use super::layer::{self, LayerFile, NOCLOUD_SEED_DIR};
use super::procfs;
use super::rootfs::{ContainerRoot, Suite};
use crate::sandbox::cache_dir;

/// `PATH` for commands run inside a host.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Default deadline from starting nspawn to `systemctl is-system-running` answering.
const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default deadline of [`Host::exec`].
const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(120);
/// How long nspawn may take to appear with the container's PID 1.
const PID1_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a clean poweroff or reboot may take before the container is killed.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a killed container may take to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the console log quoted in boot errors.
const CONSOLE_TAIL_CHARS: usize = 6000;

/// Distinguishes hosts of the same name within one test process.
static HOST_SEQ: AtomicU32 = AtomicU32::new(0);

/// What to boot: a name, the user-data, and optionally meta-data and files placed on
/// the image before the first boot.
#[derive(Debug, Clone)]
pub struct HostSpec {
    name: String,
    user_data: String,
    meta_data: Option<String>,
    files: Vec<LayerFile>,
    boot_timeout: Duration,
    suite: Suite,
}

impl HostSpec {
    /// A host called `name` (its machine name and hostname) that cloud-init
    /// configures from `user_data` (the NoCloud seed's `user-data`).
    pub fn new(name: &str, user_data: &str) -> HostSpec {
        HostSpec {
            name: name.to_owned(),
            user_data: user_data.to_owned(),
            meta_data: None,
            files: Vec::new(),
            boot_timeout: DEFAULT_BOOT_TIMEOUT,
            suite: Suite::default(),
        }
    }

    /// The Debian release the host runs (default [`Suite::Bookworm`]); each suite
    /// has its own cached root.
    #[must_use]
    pub fn suite(mut self, suite: Suite) -> HostSpec {
        self.suite = suite;
        self
    }

    /// The seed's `meta-data`. Without it the host gets
    /// `instance-id: iid-NAME-RANDOM` and `local-hostname: NAME`, so every boot of a
    /// new host is a first boot for cloud-init.
    #[must_use]
    pub fn meta_data(mut self, meta_data: &str) -> HostSpec {
        self.meta_data = Some(meta_data.to_owned());
        self
    }

    /// Places a file at the absolute `path` inside the host before it first boots
    /// (like baking it into the image), with permission bits `mode`.
    #[must_use]
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> HostSpec {
        self.files.push(LayerFile {
            path: path.to_owned(),
            contents: contents.into(),
            mode,
        });
        self
    }

    /// How long each boot may take until systemd reports it finished (default 120 s).
    #[must_use]
    pub fn boot_timeout(mut self, timeout: Duration) -> HostSpec {
        self.boot_timeout = timeout;
        self
    }

    /// Builds the cached root if needed, prepares a fresh overlay with the NoCloud
    /// seed, boots it and waits until systemd has finished booting (state `running`
    /// or `degraded`; see [`Host::system_state`]).
    ///
    /// Errors: bad name, not root, missing tools, root build failure, or a boot that
    /// fails or exceeds the boot timeout ([`ContainerError::Boot`] with the console's
    /// end). Whatever was started is cleaned up before the error returns.
    pub fn boot(self) -> Result<Host, ContainerError> {
        validate_name(&self.name)?;
        let root = ContainerRoot::cached_for(self.suite)?;
        sweep_stale_hosts();
        let hosts = hosts_dir();
        let dir = hosts.join(format!(
            "{}-{}-{}",
            self.name,
            std::process::id(),
            HOST_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        for sub in ["upper", "work", "merged"] {
            fs::create_dir_all(dir.join(sub)).map_err(ContainerError::io(format!(
                "cannot create `{}`",
                dir.display()
            )))?;
        }
        let uuid = random_uuid()?;
        // From here on the Host's Drop removes whatever exists.
        let mut host = Host {
            name: self.name.clone(),
            dir,
            root,
            uuid,
            nspawn: None,
            pid1: None,
            boots: 0,
            boot_started: Instant::now(),
            boot_time: Duration::ZERO,
            system_state: String::new(),
            boot_timeout: self.boot_timeout,
            cgroup: Placement::SystemdScope,
            torn_down: false,
        };
        write_owner(&host.dir.join("owner"), std::process::id())?;
        let id = host
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        host.cgroup = cgroup::place(&id)?;
        if let Placement::Own(dir) = &host.cgroup {
            fs::write(host.dir.join("cgroup"), dir.as_os_str().as_encoded_bytes())
                .map_err(ContainerError::io("cannot record the container's cgroup"))?;
        }
        let meta = self.meta_data.unwrap_or_else(|| {
            format!(
                "instance-id: iid-{}-{}\nlocal-hostname: {}\n",
                self.name,
                &host.uuid[..12],
                self.name
            )
        });
        let seed = [
            LayerFile {
                path: format!("{NOCLOUD_SEED_DIR}/meta-data"),
                contents: meta.into_bytes(),
                mode: 0o644,
            },
            LayerFile {
                path: format!("{NOCLOUD_SEED_DIR}/user-data"),
                contents: self.user_data.into_bytes(),
                mode: 0o600,
            },
        ];
        for file in seed.iter().chain(&self.files) {
            layer::write(host.root.path(), &host.dir.join("upper"), file)?;
        }
        host.start()?;
        Ok(host)
    }
}

/// A running (or powered-off, not yet removed) container host. Dropping it powers it
/// off (killing it after a deadline), waits for nspawn to exit and removes its files;
/// use [`Host::shutdown`] to also get an error when something was left behind.
#[derive(Debug)]
pub struct Host {
    name: String,
    dir: PathBuf,
    root: ContainerRoot,
    uuid: String,
    nspawn: Option<Child>,
    /// Host pid and start time of the container's PID 1 (systemd).
    pid1: Option<(u32, u64)>,
    boots: u32,
    boot_started: Instant,
    boot_time: Duration,
    system_state: String,
    boot_timeout: Duration,
    /// The container's cgroup (see [`cgroup`]).
    cgroup: Placement,
    /// Set once the container is stopped and its files are removed.
    torn_down: bool,
}

/// One systemd job of a unit as recorded in the journal (by PID 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitJob {
    /// `start`, `stop`, `reload`, `restart`, …
    pub job_type: String,
    /// `done`, `failed`, … (empty on the message that announces the job).
    pub result: String,
    /// The journal message, e.g. `Started hello.service - …`.
    pub message: String,
}

impl Host {
    /// Boots a host called `name` from `user_data`, with `meta_data` or a generated
    /// one (fresh instance-id); see [`HostSpec::boot`].
    pub fn boot(
        name: &str,
        user_data: &str,
        meta_data: Option<&str>,
    ) -> Result<Host, ContainerError> {
        let spec = HostSpec::new(name, user_data);
        match meta_data {
            Some(meta) => spec.meta_data(meta).boot(),
            None => spec.boot(),
        }
    }

    /// The host's name (machine name and hostname).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Debian release the host runs.
    pub fn suite(&self) -> Suite {
        self.root.suite()
    }

    /// The host's directory on the machine (upper layer, console logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// When the current boot started (nspawn was launched).
    pub fn boot_started(&self) -> Instant {
        self.boot_started
    }

    /// How long the current boot took until systemd reported it finished.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// How many times this host has booted.
    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// `systemctl is-system-running` at the end of the current boot: `running`, or
    /// `degraded` when a unit failed (see [`Host::failed_units`]).
    pub fn system_state(&self) -> &str {
        &self.system_state
    }

    /// The machine's pid of the container's PID 1, while it runs.
    pub fn pid1(&self) -> Option<u32> {
        self.pid1.map(|(pid, _)| pid)
    }

    /// Runs `argv` inside the host (all its namespaces, via nsenter) with a 120 s
    /// deadline. The process is not in the host's cgroups; use
    /// [`Host::run_in_unit`] for anything that must be.
    pub fn exec(&self, argv: &[&str]) -> Result<Output, ContainerError> {
        self.exec_with(argv, None, DEFAULT_EXEC_TIMEOUT)
    }

    /// [`Host::exec`] with standard input and a deadline (the command is killed
    /// after it: [`ContainerError::CommandTimeout`]).
    pub fn exec_with(
        &self,
        argv: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, ContainerError> {
        let pid1 = self.running_pid1()?;
        let mut cmd = Command::new("nsenter");
        cmd.env_clear()
            .env("PATH", CONTAINER_PATH)
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0")
            .args(["-t", &pid1.to_string(), "-a", "--"])
            .args(argv);
        command::run(&mut cmd, stdin, timeout)
    }

    /// Runs `argv` as a transient service of the host's systemd
    /// (`systemd-run --wait --pipe --collect`), so it lives in the host's cgroups and
    /// is stopped with the host; output and exit status are passed through.
    pub fn run_in_unit(&self, argv: &[&str]) -> Result<Output, ContainerError> {
        let mut full = vec![
            "systemd-run",
            "--wait",
            "--pipe",
            "--collect",
            "--quiet",
            "--service-type=exec",
            "--",
        ];
        full.extend_from_slice(argv);
        self.exec(&full)
    }

    /// The journal of `unit` over all boots (`journalctl -u UNIT`), with precise
    /// timestamps.
    pub fn journal(&self, unit: &str) -> Result<String, ContainerError> {
        Ok(self
            .exec(&[
                "journalctl",
                "--no-pager",
                "-o",
                "short-precise",
                "-u",
                unit,
            ])?
            .ok()?
            .stdout)
    }

    /// The jobs systemd ran for `unit` over all boots, oldest first, from PID 1's
    /// journal entries (`JOB_TYPE`/`JOB_RESULT`): a unit that was never stopped or
    /// restarted has exactly one `start` job with result `done` per boot.
    pub fn unit_jobs(&self, unit: &str) -> Result<Vec<UnitJob>, ContainerError> {
        let out = self
            .exec(&[
                "journalctl",
                "--no-pager",
                "-o",
                "json",
                "_PID=1",
                &format!("UNIT={unit}"),
            ])?
            .ok()?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|entry| {
                let field =
                    |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                Some(UnitJob {
                    job_type: field("JOB_TYPE")?,
                    result: field("JOB_RESULT").unwrap_or_default(),
                    message: field("MESSAGE").unwrap_or_default(),
                })
            })
            .collect())
    }

    /// One property of `unit` (`systemctl show --property=NAME --value`).
    pub fn unit_property(&self, unit: &str, property: &str) -> Result<String, ContainerError> {
        let out = self
            .exec(&[
                "systemctl",
                "show",
                &format!("--property={property}"),
                "--value",
                unit,
            ])?
            .ok()?;
        Ok(out.stdout.trim().to_owned())
    }

    /// The unit's main pid (in the host's pid namespace), `None` while it has none.
    pub fn main_pid(&self, unit: &str) -> Result<Option<u32>, ContainerError> {
        let value = self.unit_property(unit, "MainPID")?;
        let pid: u32 = value.parse().map_err(|_| ContainerError::CommandFailed {
            command: format!("systemctl show --property=MainPID {unit}"),
            status: "0".into(),
            output: format!("not a pid: {value:?}"),
        })?;
        Ok((pid != 0).then_some(pid))
    }

    /// `systemctl --failed` plus the journal of each failed unit (for messages).
    pub fn failed_units(&self) -> Result<String, ContainerError> {
        let list = self
            .exec(&["systemctl", "--failed", "--no-legend", "--plain"])?
            .stdout;
        let mut report = list.clone();
        for unit in list.lines().filter_map(|l| l.split_whitespace().next()) {
            report.push_str(&format!("--- journal of {unit} ---\n"));
            report.push_str(&self.journal(unit).unwrap_or_else(|e| e.to_string()));
        }
        Ok(report)
    }

    /// The contents of `path` inside the running host (read through
    /// `/proc/PID1/root`; an absolute symlink in the path would resolve on the machine).
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, ContainerError> {
        let full = self.path_inside(path)?;
        fs::read(&full).map_err(ContainerError::io(format!(
            "cannot read `{path}` in host `{}`",
            self.name
        )))
    }

    /// Writes `contents` to `path` inside the running host with mode `mode` (parent
    /// directories must exist).
    pub fn write_file(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), ContainerError> {
        use std::os::unix::fs::PermissionsExt as _;
        let full = self.path_inside(path)?;
        let what = format!("cannot write `{path}` in host `{}`", self.name);
        fs::write(&full, contents).map_err(ContainerError::io(what.clone()))?;
        fs::set_permissions(&full, fs::Permissions::from_mode(mode))
            .map_err(ContainerError::io(what))
    }

    /// Everything the host's console printed, over all boots.
    pub fn console_log(&self) -> String {
        (1..=self.boots)
            .map(|n| fs::read_to_string(self.console_path(n)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Reboots the host (`systemctl reboot`; systemd-nspawn exits and is started
    /// again on the same overlay, as its service unit would do) and waits until the
    /// new boot finished. Returns the time from the reboot command to booted.
    pub fn reboot(&mut self) -> Result<Duration, ContainerError> {
        let started = Instant::now();
        self.running_pid1()?;
        // systemctl usually loses its connection as PID 1 goes down: not an error.
        let _ = self.exec_with(&["systemctl", "reboot"], None, Duration::from_secs(30));
        if !self.wait_nspawn_exit(POWEROFF_TIMEOUT) {
            return Err(ContainerError::Boot {
                name: self.name.clone(),
                reason: format!(
                    "the container did not go down within {POWEROFF_TIMEOUT:?} after `systemctl reboot`"
                ),
                console: self.console_path(self.boots),
                tail: self.console_tail(),
            });
        }
        self.start()?;
        Ok(started.elapsed())
    }

    /// Powers the host off, removes its files, and checks that nothing is left: no
    /// process or mount (in any mount namespace) that refers to its directory, and no
    /// directory. Dropping a `Host` does the same but can only log a failure.
    pub fn shutdown(mut self) -> Result<(), ContainerError> {
        self.teardown()
    }

    // ----------------------------------------------------------------------------

    fn console_path(&self, boot: u32) -> PathBuf {
        self.dir.join(format!("console-{boot}.log"))
    }

    fn console_tail(&self) -> String {
        command::tail(&self.console_log(), CONSOLE_TAIL_CHARS)
    }

    fn path_inside(&self, path: &str) -> Result<PathBuf, ContainerError> {
        let pid1 = self.running_pid1()?;
        Ok(PathBuf::from(format!("/proc/{pid1}/root")).join(path.trim_start_matches('/')))
    }

    /// The container's PID 1 while the container runs.
    fn running_pid1(&self) -> Result<u32, ContainerError> {
        match self.pid1 {
            Some((pid, start)) if procfs::is_same_process(pid, start) => Ok(pid),
            _ => Err(ContainerError::NotRunning(self.name.clone())),
        }
    }

    fn boot_error(&self, reason: String) -> ContainerError {
        ContainerError::Boot {
            name: self.name.clone(),
            reason,
            console: self.console_path(self.boots),
            tail: self.console_tail(),
        }
    }

    /// Launches nspawn on the overlay and waits until the boot finished.
    fn start(&mut self) -> Result<(), ContainerError> {
        self.boots += 1;
        let console_path = self.console_path(self.boots);
        let console = fs::File::create(&console_path).map_err(ContainerError::io(format!(
            "cannot create `{}`",
            console_path.display()
        )))?;
        let console_err = console.try_clone().map_err(ContainerError::io(
            "cannot duplicate the console log handle",
        ))?;
        let (lower, upper, work, merged) = (
            self.root.path().to_owned(),
            self.dir.join("upper"),
            self.dir.join("work"),
            self.dir.join("merged"),
        );
        // The overlay exists only in the private mount namespace unshare creates; sh
        // moves itself into the container's own cgroup (when it has one) and then
        // becomes systemd-nspawn (exec), so the child's pid is nspawn's.
        let script = r#"mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" || exit 125
if [ -n "$5" ]; then echo $$ > "$5/cgroup.procs" || exit 126; fi
shift 5
exec systemd-nspawn "$@""#;
        let (cgroup_dir, unit_args): (PathBuf, &[&str]) = match &self.cgroup {
            Placement::SystemdScope => (PathBuf::new(), &[]),
            Placement::Own(dir) => (dir.clone(), &["--keep-unit"]),
        };
        let mut cmd = Command::new("setsid");
        cmd.env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .args(["unshare", "--mount", "--propagation", "private", "--"])
            .args(["/bin/sh", "-c", script, "hoist-container"])
            .args([&lower, &upper, &work, &merged, &cgroup_dir])
            .arg("-D")
            .arg(&merged)
            .args([
                "--boot",
                "--register=no",
                "--link-journal=no",
                "--console=read-only",
            ])
            .args(unit_args)
            .arg(format!("--machine={}", self.name))
            .arg(format!("--uuid={}", self.uuid))
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console_err);
        self.boot_started = Instant::now();
        let child = cmd.spawn().map_err(ContainerError::io(
            "cannot start systemd-nspawn (via setsid unshare)",
        ))?;
        let nspawn_pid = child.id();
        self.nspawn = Some(child);
        if let Some(stat) = procfs::stat(nspawn_pid) {
            write_owner_pid(&self.dir.join("nspawn"), nspawn_pid, stat.start_time)?;
        }
        self.pid1 = Some(self.wait_pid1(nspawn_pid)?);
        self.wait_booted()?;
        self.boot_time = self.boot_started.elapsed();
        tracing::info!(host = %self.name, boot = self.boots, elapsed = ?self.boot_time, state = %self.system_state, "container booted");
        Ok(())
    }

    /// Waits for nspawn's child `systemd` (the container's PID 1).
    fn wait_pid1(&mut self, nspawn_pid: u32) -> Result<(u32, u64), ContainerError> {
        let deadline = Instant::now() + PID1_TIMEOUT;
        loop {
            if let Some(pid) = procfs::children_named(nspawn_pid, "systemd").first()
                && let Some(stat) = procfs::stat(*pid)
            {
                return Ok((*pid, stat.start_time));
            }
            if let Some(status) = self.nspawn_exit_status() {
                return Err(self.boot_error(format!(
                    "systemd-nspawn exited ({status}) before the container's systemd started"
                )));
            }
            if Instant::now() >= deadline {
                return Err(self.boot_error(format!("no systemd process under systemd-nspawn (pid {nspawn_pid}) after {PID1_TIMEOUT:?}")));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `systemctl is-system-running --wait` until it reports the end of the
    /// boot, the container dies, or the boot deadline passes.
    fn wait_booted(&mut self) -> Result<(), ContainerError> {
        let deadline = self.boot_started + self.boot_timeout;
        loop {
            if let Some(status) = self.nspawn_exit_status() {
                return Err(
                    self.boot_error(format!("systemd-nspawn exited ({status}) during boot"))
                );
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let failed = self.failed_units().unwrap_or_default();
                return Err(self.boot_error(format!(
                    "systemd did not finish booting within {:?} (last state `{}`); failed units:\n{failed}",
                    self.boot_timeout, self.system_state
                )));
            }
            match self.exec_with(
                &["systemctl", "is-system-running", "--wait"],
                None,
                remaining,
            ) {
                Ok(out) => {
                    let state = out.stdout.trim().to_owned();
                    match state.as_str() {
                        "running" | "degraded" => {
                            self.system_state = state;
                            return Ok(());
                        }
                        "maintenance" | "stopping" => {
                            return Err(
                                self.boot_error(format!("systemd entered `{state}` during boot"))
                            );
                        }
                        // The bus is not up yet ("offline", "unknown", an error): ask again.
                        _ => {
                            self.system_state = state;
                            thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                Err(ContainerError::CommandTimeout { .. }) => continue,
                // nsenter can fail while the container is still setting up its namespaces.
                Err(ContainerError::NotRunning(_)) | Err(ContainerError::Io { .. }) => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// The exit status of nspawn once it has exited (reaping it).
    fn nspawn_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.nspawn
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until nspawn exited; false at the deadline.
    fn wait_nspawn_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match &mut self.nspawn {
                None => return true,
                Some(child) => {
                    if !matches!(child.try_wait(), Ok(None)) {
                        return true;
                    }
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the container: clean poweroff, then SIGKILL to its PID 1 (which ends its
    /// whole pid namespace) and to nspawn if that does not work in time.
    fn stop(&mut self) {
        let Some(child) = &mut self.nspawn else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = self.exec_with(
                &["systemctl", "poweroff", "--no-block"],
                None,
                Duration::from_secs(10),
            );
            if !self.wait_nspawn_exit(POWEROFF_TIMEOUT) {
                tracing::warn!(host = %self.name, "container did not power off in {POWEROFF_TIMEOUT:?}; killing it");
                if let Some((pid, start)) = self.pid1
                    && procfs::is_same_process(pid, start)
                {
                    command::kill_pid(pid);
                }
                if !self.wait_nspawn_exit(KILL_TIMEOUT)
                    && let Some(child) = &mut self.nspawn
                {
                    let _ = child.kill();
                }
            }
        }
        if let Some(mut child) = self.nspawn.take() {
            let _ = child.wait();
        }
        self.pid1 = None;
    }

    /// Stops the container, removes its directory and reports anything left over.
    fn teardown(&mut self) -> Result<(), ContainerError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        self.stop();
        let needle = self.dir.display().to_string();
        let mut leftovers = Vec::new();
        if let Placement::Own(dir) = &self.cgroup
            && let Err(e) = cgroup::remove_tree(dir)
        {
            leftovers.push(e);
        }
        if let Err(err) = fs::remove_dir_all(&self.dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            leftovers.push(format!("cannot remove `{needle}`: {err}"));
        }
        leftovers.extend(
            procfs::processes_mentioning(&needle)
                .into_iter()
                .map(|p| format!("process {p}")),
        );
        leftovers.extend(
            procfs::mounts_mentioning(&needle)
                .into_iter()
                .map(|m| format!("mount {m}")),
        );
        if self.dir.exists() {
            leftovers.push(format!("directory `{needle}`"));
        }
        if leftovers.is_empty() {
            Ok(())
        } else {
            Err(ContainerError::Leftovers {
                name: self.name.clone(),
                leftovers,
            })
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Err(err) = self.teardown() {
            eprintln!("hoist-testkit: {err}");
        }
    }
}

/// The directory of every host's files.
fn hosts_dir() -> PathBuf {
    cache_dir().join("hosts")
}

fn validate_name(name: &str) -> Result<(), ContainerError> {
    let ok = (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ContainerError::InvalidName(name.to_owned()))
    }
}

/// 32 random hex digits (a machine id) from the kernel.
fn random_uuid() -> Result<String, ContainerError> {
    let raw = fs::read_to_string("/proc/sys/kernel/random/uuid").map_err(ContainerError::io(
        "cannot read /proc/sys/kernel/random/uuid",
    ))?;
    Ok(raw.trim().replace('-', ""))
}

/// Records `pid` and its start time in `path` (for the stale-host sweep).
fn write_owner(path: &Path, pid: u32) -> Result<(), ContainerError> {
    let start = procfs::stat(pid).map_or(0, |s| s.start_time);
    write_owner_pid(path, pid, start)
}

fn write_owner_pid(path: &Path, pid: u32, start_time: u64) -> Result<(), ContainerError> {
    fs::write(path, format!("{pid} {start_time}\n")).map_err(ContainerError::io(format!(
        "cannot write `{}`",
        path.display()
    )))
}

fn read_owner(path: &Path) -> Option<(u32, u64)> {
    let text = fs::read_to_string(path).ok()?;
    let mut parts = text.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Kills and removes hosts whose test process is gone (it was killed before its
/// `Drop` could run). Every [`HostSpec::boot`] does this first.
pub fn sweep_stale_hosts() {
    sweep(|owner| {
        !owner.is_some_and(|(pid, start)| match start {
            Some(start) => procfs::is_same_process(pid, start),
            None => procfs::is_alive(pid),
        })
    });
}

/// Kills every host this process booted and removes its files, without going
/// through the [`Host`] values: for a program that must exit at once (on SIGINT)
/// while its hosts are in use elsewhere. The `Host` values must not be used after.
pub fn kill_hosts_of_this_process() {
    let me = std::process::id();
    sweep(|owner| owner.is_some_and(|(pid, _)| pid == me));
}

/// The process that booted the host in `dir`: pid and start time from its `owner`
/// file, else the pid in the directory's name `NAME-PID-SEQ` (a directory is
/// created a moment before its owner file is written).
fn owner_of(dir: &Path) -> Option<(u32, Option<u64>)> {
    if let Some((pid, start)) = read_owner(&dir.join("owner")) {
        return Some((pid, Some(start)));
    }
    let name = dir.file_name()?.to_str()?;
    let mut parts = name.rsplitn(3, '-');
    let _seq = parts.next()?;
    Some((parts.next()?.parse().ok()?, None))
}

/// Kills (SIGKILL to PID 1 and nspawn) and removes every host whose owner (see
/// [`owner_of`]) matches `doomed`.
fn sweep(doomed: impl Fn(Option<(u32, Option<u64>)>) -> bool) {
    let Ok(entries) = fs::read_dir(hosts_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !doomed(owner_of(&dir)) {
            continue;
        }
        if let Some((pid, start)) = read_owner(&dir.join("nspawn"))
            && procfs::is_same_process(pid, start)
        {
            tracing::warn!(dir = %dir.display(), pid, "killing a left-over container");
            for pid1 in procfs::children_named(pid, "systemd") {
                command::kill_pid(pid1);
            }
            command::kill_pid(pid);
            let deadline = Instant::now() + KILL_TIMEOUT;
            while procfs::is_same_process(pid, start) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        if let Ok(cgroup_dir) = fs::read_to_string(dir.join("cgroup")) {
            let _ = cgroup::remove_tree(Path::new(&cgroup_dir));
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_comes_from_the_file_or_the_directory_name() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("e2e-fleet-3-4242-7");
        fs::create_dir(&dir).unwrap();
        assert_eq!(owner_of(&dir), Some((4242, None)));
        write_owner_pid(&dir.join("owner"), 17, 99).unwrap();
        assert_eq!(owner_of(&dir), Some((17, Some(99))));
        assert_eq!(owner_of(&base.path().join("nonsense")), None);
    }

    #[test]
    fn names_are_checked() {
        for good in ["h1", "host-a", "e2e-fleet-3"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1host", "Host", "a_b", "a/b", &"x".repeat(41)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uuids_are_machine_ids() {
        let a = random_uuid().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_uuid().unwrap());
    }
}
