//! Installing packages with the real `dpkg`, safely for a host that other package managers
//! also use.
//!
//! [`Dpkg::install`] waits (bounded) for the dpkg lock, repairs an interrupted dpkg with
//! `dpkg --configure -a`, runs `dpkg -i` with an argument vector (never a shell), and then
//! confirms with `dpkg-query` that the expected version is installed — dpkg's exit code
//! alone is not trusted. With `[dpkg] root = ROOT` every call gets `--root=ROOT`.
//! A package whose dependencies are not all installed goes through apt instead, or is
//! refused before anything is unpacked (see [`apt`]).

pub mod apt;
mod deps;
pub mod lock;
pub mod runner;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::config::DpkgSettings;

/// How often the lock is tried again while another package manager holds it.
const LOCK_RETRY: Duration = Duration::from_millis(250);

/// Why a dpkg step failed. Messages name the command and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DpkgError {
    /// A dpkg program could not be started.
    #[error("cannot run `{program}`: {source}; is dpkg installed and on PATH?")]
    Spawn {
        /// The program.
        program: String,
        /// The spawn error.
        source: std::io::Error,
    },
    /// The lock stayed busy for the whole bound.
    #[error(
        "the dpkg lock `{path}` is still held{holder} after {waited}; another package manager (apt, unattended-upgrades) is running: the agent retries on the next change, or raise [dpkg] lock_timeout"
    )]
    LockTimeout {
        /// The busy lock file.
        path: PathBuf,
        /// ` by pid N` when known.
        holder: String,
        /// How long the agent waited.
        waited: String,
    },
    /// The lock file could not be opened or locked.
    #[error(
        "cannot take the dpkg lock in `{admin_dir}`: {source}; the agent must run as root (or own the dpkg root)"
    )]
    Lock {
        /// dpkg's admin directory.
        admin_dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A dpkg command exited with failure.
    #[error("`{command}` failed ({status}): {output}")]
    Failed {
        /// The command line, for the log.
        command: String,
        /// Exit status.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// A dpkg run reached its time limit and was killed with its maintainer scripts.
    #[error(
        "`{command}` did not finish within {limit} ([dpkg] timeout) and was killed with its maintainer scripts; a maintainer script probably hangs"
    )]
    TimedOut {
        /// The command line.
        command: String,
        /// The limit.
        limit: String,
    },
    /// The package depends on packages that are not installed and that apt cannot
    /// install from the host's sources. Found before anything was unpacked: the host
    /// is unchanged.
    #[error(
        "{package} cannot be installed: {}; nothing on the host was changed. Publish the missing packages to an apt source the host has (or install them), or release a package that does not need them",
        apt::describe_unavailable(.missing, .detail)
    )]
    DependenciesUnavailable {
        /// The package.
        package: String,
        /// The unmet dependencies, as apt names them (e.g. `jq (not installable)`).
        missing: Vec<String>,
        /// What apt said, or why its plan was refused.
        detail: String,
    },
    /// dpkg returned but the package is not installed at the expected version.
    #[error(
        "after `dpkg -i`, dpkg-query reports {package} as {found} instead of `{expected} install ok installed`; the package was not installed"
    )]
    NotInstalled {
        /// The package.
        package: String,
        /// The expected version.
        expected: String,
        /// What dpkg-query reported.
        found: String,
    },
}

impl DpkgError {
    /// True when the error was found before anything on the host changed (the
    /// package was refused up front), so there is nothing to roll back.
    pub fn host_unchanged(&self) -> bool {
        matches!(self, DpkgError::DependenciesUnavailable { .. })
    }
}

/// What `dpkg-query` reports for a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageStatus {
    /// `${Version}`.
    pub version: String,
    /// `${Status}`, e.g. `install ok installed`.
    pub status: String,
}

impl PackageStatus {
    /// True when the package is fully installed (`install ok installed`, or `hold ok installed`).
    pub fn is_installed(&self) -> bool {
        self.status.ends_with(" ok installed")
    }
}

/// Runs dpkg, dpkg-query for one root.
#[derive(Debug, Clone)]
pub struct Dpkg {
    root: Option<PathBuf>,
    lock_timeout: Duration,
    timeout: Duration,
    isolation: runner::Isolation,
}

impl Dpkg {
    /// A runner for the `[dpkg]` settings.
    pub fn new(settings: &DpkgSettings) -> Self {
        Self {
            root: settings.root.clone(),
            lock_timeout: settings.lock_timeout,
            timeout: settings.timeout,
            isolation: runner::Isolation::detect(settings.root.as_deref()),
        }
    }

    /// dpkg's admin directory (`ROOT/var/lib/dpkg`).
    pub fn admin_dir(&self) -> PathBuf {
        self.root
            .as_deref()
            .unwrap_or(Path::new("/"))
            .join("var/lib/dpkg")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        if let Some(root) = &self.root {
            command.arg(format!("--root={}", root.display()));
        }
        command
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .kill_on_drop(false);
        command
    }

    /// Runs `command` to completion, returning stdout; a failure carries the end of
    /// stderr/stdout.
    async fn run(&self, mut command: Command, shown: &str) -> Result<String, DpkgError> {
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let output = command
            .output()
            .await
            .map_err(|source| DpkgError::Spawn { program, source })?;
        finish(&output, shown)
    }

    /// Runs a dpkg command that changes the system (maintainer scripts run) with the
    /// `[dpkg] timeout` limit, in a transient unit when systemd runs the host (see
    /// [`runner`]); returns stdout, a failure carries the end of its output.
    async fn run_changing(&self, command: Command, shown: &str) -> Result<String, DpkgError> {
        let output = runner::run_limited(&command, self.isolation, self.timeout)
            .await
            .map_err(|err| match err {
                runner::RunError::Spawn(source) => DpkgError::Spawn {
                    program: runner::shown(&command),
                    source,
                },
                runner::RunError::TimedOut => DpkgError::TimedOut {
                    command: shown.to_owned(),
                    limit: humantime::format_duration(self.timeout).to_string(),
                },
            })?;
        tracing::debug!(command = shown, isolation = ?self.isolation, "dpkg run ended");
        finish(&output, shown)
    }

    /// The host's dpkg architecture (`dpkg --print-architecture`, e.g. `amd64`).
    pub async fn host_architecture(&self) -> Result<String, DpkgError> {
        let mut command = self.command("dpkg");
        command.arg("--print-architecture");
        Ok(self
            .run(command, "dpkg --print-architecture")
            .await?
            .trim()
            .to_owned())
    }

    /// `dpkg-query -W` for `package`: `None` when dpkg does not know it at all.
    pub async fn query(&self, package: &str) -> Result<Option<PackageStatus>, DpkgError> {
        let mut command = self.command("dpkg-query");
        command
            .args(["-W", "-f=${Version}\t${Status}\n", "--"])
            .arg(package);
        let program = "dpkg-query".to_owned();
        let output = command
            .output()
            .await
            .map_err(|source| DpkgError::Spawn { program, source })?;
        if !output.status.success() {
            // Exit 1 with "no packages found matching" when the package is unknown.
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.code() == Some(1) && stderr.contains("no packages found") {
                return Ok(None);
            }
            return Err(DpkgError::Failed {
                command: format!("dpkg-query -W {package}"),
                status: output.status.to_string(),
                output: tail(&stderr, 12),
            });
        }
        Ok(parse_query(&String::from_utf8_lossy(&output.stdout)))
    }

    /// Waits until the dpkg locks are free (at most `lock_timeout`), then holds the
    /// frontend lock. Logs once when it has to wait.
    pub async fn wait_for_lock(&self) -> Result<lock::FrontendLock, DpkgError> {
        let admin_dir = self.admin_dir();
        let started = Instant::now();
        let mut logged = false;
        loop {
            let attempt = lock::try_acquire(&admin_dir).map_err(|source| DpkgError::Lock {
                admin_dir: admin_dir.clone(),
                source,
            })?;
            match attempt {
                lock::Attempt::Acquired(held) => {
                    if logged {
                        tracing::info!(
                            waited = %humantime::format_duration(round_ms(started.elapsed())),
                            "dpkg lock is free again"
                        );
                    }
                    return Ok(held);
                }
                lock::Attempt::Busy { path, holder } => {
                    let holder = match holder {
                        Some(h) if h.pid > 0 => format!(" by pid {}", h.pid),
                        _ => String::new(),
                    };
                    if started.elapsed() >= self.lock_timeout {
                        return Err(DpkgError::LockTimeout {
                            path,
                            holder,
                            waited: humantime::format_duration(round_ms(started.elapsed()))
                                .to_string(),
                        });
                    }
                    if !logged {
                        tracing::warn!(
                            lock = %path.display(),
                            "dpkg lock is held{holder}; waiting up to {}",
                            humantime::format_duration(self.lock_timeout)
                        );
                        logged = true;
                    }
                    tokio::time::sleep(LOCK_RETRY).await;
                }
            }
        }
    }

    /// True when dpkg was interrupted or left packages unconfigured: pending journal
    /// entries in `ADMIN/updates/`, or anything reported by `dpkg --audit`.
    pub async fn needs_repair(&self) -> Result<bool, DpkgError> {
        if has_pending_updates(&self.admin_dir().join("updates")) {
            return Ok(true);
        }
        let mut command = self.command("dpkg");
        command.arg("--audit");
        let program = "dpkg".to_owned();
        let output = command
            .output()
            .await
            .map_err(|source| DpkgError::Spawn { program, source })?;
        Ok(!String::from_utf8_lossy(&output.stdout).trim().is_empty())
    }

    /// Finishes what an interrupted dpkg left (`dpkg --configure -a`) when
    /// [`needs_repair`](Self::needs_repair) says so; takes the lock (bounded) first.
    /// Packages left half-installed need a reinstall, which this does not do.
    pub async fn repair(&self) -> Result<(), DpkgError> {
        let _lock = self.wait_for_lock().await?;
        self.repair_locked().await
    }

    /// [`repair_locked`](Self::repair_locked), skipped when `package` is the only package
    /// left unconfigured: `dpkg -i` replaces it anyway, and configuring it first would
    /// run the maintainer script that just failed (or hung) once more.
    async fn repair_unless_only(&self, package: &str) -> Result<(), DpkgError> {
        let broken = self.unfinished_packages().await?;
        if !broken.is_empty() && broken.iter().all(|p| p == package) {
            tracing::info!(
                package,
                "{package} was left unconfigured; reinstalling it without configuring it first"
            );
            return Ok(());
        }
        self.repair_locked().await
    }

    /// Packages dpkg left in a state other than installed, not installed or
    /// config-files (unpacked, half-configured, half-installed, triggers pending).
    async fn unfinished_packages(&self) -> Result<Vec<String>, DpkgError> {
        let mut command = self.command("dpkg-query");
        command.args(["-W", "-f=${db:Status-Status}\t${Package}\n"]);
        let listed = self.run(command, "dpkg-query -W").await?;
        Ok(listed
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter(|(status, _)| {
                !matches!(*status, "installed" | "not-installed" | "config-files")
            })
            .map(|(_, package)| package.to_owned())
            .collect())
    }

    async fn repair_locked(&self) -> Result<(), DpkgError> {
        if !self.needs_repair().await? {
            return Ok(());
        }
        tracing::warn!(
            "dpkg was interrupted or left packages unconfigured; running dpkg --configure -a"
        );
        let mut command = self.command("dpkg");
        command.env("DPKG_FRONTEND_LOCKED", "1").args([
            "--force-confdef",
            "--force-confold",
            "--configure",
            "-a",
        ]);
        self.run_changing(command, "dpkg --configure -a").await?;
        tracing::info!("dpkg --configure -a repaired the package database");
        Ok(())
    }

    /// Installs `deb` and confirms that `package` is then installed at `version`.
    ///
    /// Holds the frontend lock for the whole sequence; repairs an interrupted dpkg first.
    pub async fn install(&self, deb: &Path, package: &str, version: &str) -> Result<(), DpkgError> {
        let lock = self.wait_for_lock().await?;
        tracing::debug!(lock = %lock.path().display(), "holding the dpkg frontend lock");
        if let apt::Route::Apt { with } = apt::route(self, deb, package).await? {
            tracing::info!(
                "installing {package} {version} with apt, which also installs: {}",
                with.join(", ")
            );
            drop(lock);
            apt::install(self, deb).await?;
            return self.confirm_installed(package, version).await;
        }
        if let Err(err) = self.repair_unless_only(package).await {
            // dpkg -i below may still succeed (it configures what it needs); report it.
            tracing::error!("repairing dpkg failed: {err}");
        }
        let mut command = self.command("dpkg");
        command
            .env("DPKG_FRONTEND_LOCKED", "1")
            .args(["--force-confdef", "--force-confold", "-i", "--"])
            .arg(deb);
        let shown = format!("dpkg -i {}", deb.display());
        self.run_changing(command, &shown).await?;
        self.confirm_installed(package, version).await
    }

    /// Checks with dpkg-query that `package` is installed at `version`.
    async fn confirm_installed(&self, package: &str, version: &str) -> Result<(), DpkgError> {
        match self.query(package).await? {
            Some(status) if status.version == version && status.is_installed() => Ok(()),
            found => Err(DpkgError::NotInstalled {
                package: package.to_owned(),
                expected: version.to_owned(),
                found: found.map_or_else(
                    || "unknown".to_owned(),
                    |s| format!("`{} {}`", s.version, s.status),
                ),
            }),
        }
    }
}

/// stdout of a finished dpkg command, or [`DpkgError::Failed`] with the end of its output.
fn finish(output: &std::process::Output, shown: &str) -> Result<String, DpkgError> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    tracing::debug!(command = shown, status = %output.status, %stdout, %stderr, "dpkg command finished");
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(DpkgError::Failed {
            command: shown.to_owned(),
            status: output.status.to_string(),
            output: tail(&format!("{stderr}{stdout}"), 12),
        })
    }
}

/// Parses `${Version}\t${Status}` (first line).
fn parse_query(stdout: &str) -> Option<PackageStatus> {
    let line = stdout.lines().next()?;
    let (version, status) = line.split_once('\t')?;
    Some(PackageStatus {
        version: version.trim().to_owned(),
        status: status.trim().to_owned(),
    })
}

/// dpkg's journal: files named by digits in `ADMIN/updates/` mean an interrupted run.
fn has_pending_updates(updates_dir: &Path) -> bool {
    std::fs::read_dir(updates_dir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// The last `lines` non-empty lines of `text`, joined with ` | `.
fn tail(text: &str, lines: usize) -> String {
    let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = kept.len().saturating_sub(lines);
    let joined = kept[start..].join(" | ");
    if joined.is_empty() {
        "no output".to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_output_is_parsed() {
        let status = parse_query("1.2.3-1\tinstall ok installed\n").unwrap();
        assert_eq!(status.version, "1.2.3-1");
        assert!(status.is_installed());
        let status = parse_query("1.0\tinstall ok unpacked\n").unwrap();
        assert!(!status.is_installed());
        assert!(parse_query("").is_none());
    }

    #[test]
    fn journal_files_mean_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_pending_updates(&dir.path().join("missing")));
        std::fs::write(dir.path().join("tmp.i"), b"").unwrap();
        assert!(!has_pending_updates(dir.path()));
        std::fs::write(dir.path().join("0003"), b"").unwrap();
        assert!(has_pending_updates(dir.path()));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(tail("", 2), "no output");
    }

    #[tokio::test]
    async fn host_architecture_is_reported() {
        let dpkg = Dpkg::new(&DpkgSettings::default());
        let arch = dpkg.host_architecture().await.unwrap();
        assert!(
            !arch.is_empty() && arch.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{arch}"
        );
    }

    #[tokio::test]
    async fn unknown_package_queries_as_none() {
        let dpkg = Dpkg::new(&DpkgSettings::default());
        assert_eq!(dpkg.query("hoist-no-such-package-x").await.unwrap(), None);
        let dpkg_itself = dpkg.query("dpkg").await.unwrap().unwrap();
        assert!(dpkg_itself.is_installed());
    }
}
