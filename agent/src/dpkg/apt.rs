//! Installing a package whose dependencies are not all on the host, through apt.
//!
//! [`Dpkg::install`](super::Dpkg::install) asks [`route`] first, while it holds the
//! dpkg frontend lock:
//!
//! - When every `Depends`/`Pre-Depends` of the package (`dpkg-deb --field`) is
//!   satisfied by an installed package (`dpkg-query`, versions compared with
//!   `dpkg --compare-versions`, `Provides` honoured), the package goes through the
//!   plain `dpkg -i` path exactly as before ([`Route::Dpkg`]), without asking apt (a
//!   simulation costs seconds of CPU with a local `.deb`: apt rebuilds its cache).
//! - Otherwise the host's package lists are refreshed (`apt-get update`, from the
//!   host's configured sources) and the simulation runs again. When apt can resolve
//!   the dependencies without removing anything, [`install`] runs
//!   `apt-get install ./PKG.deb` ([`Route::Apt`]): noninteractive, conffiles kept as
//!   with dpkg (`--force-confdef --force-confold`), no Recommends (dpkg does not
//!   install them either), downgrades allowed (a rollback release), nothing removed,
//!   apt waiting for the dpkg lock as long as the agent would (`DPkg::Lock::Timeout`).
//! - When they cannot be resolved, [`route`] fails with
//!   [`DpkgError::DependenciesUnavailable`] naming what is missing, before anything
//!   is unpacked: nothing on the host has changed.
//!
//! apt is only used on the real system: with `[dpkg] root` set (a tree dpkg installs
//! into with `--root`, as in the agent's own tests) apt is not consulted and the
//! dependencies must already be installed in that root (`dpkg -i` refuses the package
//! otherwise, as before). Nor when dpkg needs a repair first (`dpkg --configure -a`
//! runs as before, apt would refuse to plan on such a database), nor when `apt-get`
//! is not installed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Dpkg, DpkgError};

/// The program.
const APT_GET: &str = "apt-get";

/// What [`route`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Every dependency is installed: plain `dpkg -i`, as without apt.
    Dpkg,
    /// apt installs the package and, first, these packages it needs.
    Apt {
        /// The other packages apt installs or upgrades, as `NAME VERSION`.
        with: Vec<String>,
    },
}

/// What one `apt-get -s install ./PKG.deb` said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Simulation {
    /// apt found a way: the packages it would install (`Inst`) and remove (`Remv`).
    Solved {
        install: Vec<Change>,
        remove: Vec<String>,
    },
    /// apt found none; `unmet` are the dependencies it named (may be empty when apt
    /// failed for another reason), `message` the end of its output.
    Unsolvable { unmet: Vec<String>, message: String },
}

/// One `Inst` line of a simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    package: String,
    version: String,
}

/// Decides how `deb` (package `package`) is installed; see the module documentation.
///
/// Errors: [`DpkgError::DependenciesUnavailable`] when apt cannot resolve what the
/// package depends on (nothing was changed); spawn errors of apt.
pub(super) async fn route(dpkg: &Dpkg, deb: &Path, package: &str) -> Result<Route, DpkgError> {
    if dpkg.root.is_some() || which_apt_get().is_none() {
        return Ok(Route::Dpkg);
    }
    if dpkg.needs_repair().await? {
        // `dpkg --configure -a` first, as before; apt refuses to plan on such a database.
        return Ok(Route::Dpkg);
    }
    let unsatisfied = match super::deps::unsatisfied(dpkg, deb).await {
        Ok(unsatisfied) if unsatisfied.is_empty() => return Ok(Route::Dpkg),
        Ok(unsatisfied) => unsatisfied,
        Err(err) => {
            tracing::warn!(
                "cannot check the dependencies of {package} with dpkg ({err}); asking apt"
            );
            Vec::new()
        }
    };
    let deb = local_path(deb);
    tracing::info!(
        "{package} needs packages that are not installed ({}); refreshing the apt package lists",
        unsatisfied.join(", ")
    );
    refresh_lists(dpkg).await;
    match simulate(dpkg, &deb).await? {
        Simulation::Solved { install, remove } if remove.is_empty() => {
            if let Some(route) = plain(
                &Simulation::Solved {
                    install: install.clone(),
                    remove: Vec::new(),
                },
                package,
            ) {
                return Ok(route);
            }
            let with: Vec<String> = install
                .into_iter()
                .filter(|c| c.package != package)
                .map(|c| format!("{} {}", c.package, c.version))
                .collect();
            Ok(Route::Apt { with })
        }
        Simulation::Solved { remove, .. } => Err(DpkgError::DependenciesUnavailable {
            package: package.to_owned(),
            missing: Vec::new(),
            detail: format!(
                "installing it would remove {}, which the agent never does",
                remove.join(", ")
            ),
        }),
        Simulation::Unsolvable { unmet, message } if !unmet.is_empty() => {
            Err(DpkgError::DependenciesUnavailable {
                package: package.to_owned(),
                missing: unmet,
                detail: message,
            })
        }
        Simulation::Unsolvable { message, .. } if !unsatisfied.is_empty() => {
            Err(DpkgError::DependenciesUnavailable {
                package: package.to_owned(),
                missing: unsatisfied,
                detail: message,
            })
        }
        Simulation::Unsolvable { message, .. } => {
            // apt failed without naming a dependency (a broken apt configuration, …):
            // dpkg -i decides, as it did before apt was consulted.
            tracing::warn!(
                "apt could not plan the installation of {package} ({message}); installing with dpkg"
            );
            Ok(Route::Dpkg)
        }
    }
}

/// The middle of [`DpkgError::DependenciesUnavailable`]'s message.
pub(super) fn describe_unavailable(missing: &[String], detail: &str) -> String {
    if missing.is_empty() {
        detail.to_owned()
    } else {
        format!(
            "it depends on {}, not installed and not available from the host's apt sources (apt: {detail})",
            missing.join(", ")
        )
    }
}

/// `Route::Dpkg` when `simulation` installs nothing but `package` and removes nothing.
fn plain(simulation: &Simulation, package: &str) -> Option<Route> {
    match simulation {
        Simulation::Solved { install, remove }
            if remove.is_empty() && install.iter().all(|c| c.package == package) =>
        {
            Some(Route::Dpkg)
        }
        _ => None,
    }
}

/// `apt-get install ./PKG.deb` (see the module documentation). The caller must not
/// hold the dpkg frontend lock: apt takes it itself, waiting up to the agent's
/// `lock_timeout`.
pub(super) async fn install(dpkg: &Dpkg, deb: &Path) -> Result<(), DpkgError> {
    let deb = local_path(deb);
    let mut command = apt_command(dpkg);
    command
        .args([
            "-y",
            "--no-remove",
            "--no-install-recommends",
            "--allow-downgrades",
        ])
        .args(["-o", "Dpkg::Options::=--force-confdef"])
        .args(["-o", "Dpkg::Options::=--force-confold"])
        .arg("-o")
        .arg(format!(
            "DPkg::Lock::Timeout={}",
            lock_seconds(dpkg.lock_timeout)
        ))
        .arg("install")
        .arg(&deb);
    let shown = format!("apt-get install {}", deb.display());
    // Like dpkg -i: maintainer scripts run in a transient unit, within `[dpkg] timeout`.
    dpkg.run_changing(command, &shown).await.map(drop)
}

/// `apt-get -s install ./PKG.deb`, parsed.
async fn simulate(dpkg: &Dpkg, deb: &Path) -> Result<Simulation, DpkgError> {
    let mut command = apt_command(dpkg);
    command
        .args([
            "-s",
            "--no-install-recommends",
            "--allow-downgrades",
            "install",
        ])
        .arg(deb);
    let output = command.output().await.map_err(|source| DpkgError::Spawn {
        program: APT_GET.to_owned(),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    tracing::debug!(deb = %deb.display(), status = %output.status, %stdout, %stderr, "apt-get -s install");
    Ok(if output.status.success() {
        parse_solved(&stdout)
    } else {
        Simulation::Unsolvable {
            unmet: parse_unmet(&stdout),
            message: super::tail(&format!("{stdout}{stderr}"), 4),
        }
    })
}

/// `apt-get update`; a failure is logged, not fatal: apt then plans with the lists
/// it has.
async fn refresh_lists(dpkg: &Dpkg) {
    let mut command = apt_command(dpkg);
    command.args(["-q", "update"]);
    if let Err(err) = dpkg.run(command, "apt-get update").await {
        tracing::warn!("refreshing the apt package lists failed: {err}; using the lists there are");
    }
}

/// `apt-get` with a predictable environment (no prompts, C messages to parse).
fn apt_command(dpkg: &Dpkg) -> tokio::process::Command {
    let mut command = dpkg.command(APT_GET);
    command
        .env("LC_ALL", "C")
        .env("APT_LISTCHANGES_FRONTEND", "none");
    command
}

/// apt installs a file only when its argument looks like a path (`./x.deb`).
fn local_path(deb: &Path) -> PathBuf {
    if deb.is_absolute() || deb.starts_with(".") {
        deb.to_owned()
    } else {
        Path::new(".").join(deb)
    }
}

/// The lock wait in whole seconds for apt (at least 1).
fn lock_seconds(timeout: Duration) -> u64 {
    timeout.as_secs_f64().ceil().max(1.0) as u64
}

fn which_apt_get() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(APT_GET))
        .find(|candidate| candidate.is_file())
}

/// The `Inst` and `Remv` lines of a successful simulation:
/// `Inst NAME [OLD] (NEW ORIGIN [ARCH])`, `Remv NAME [OLD]`.
fn parse_solved(stdout: &str) -> Simulation {
    let mut install = Vec::new();
    let mut remove = Vec::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Inst") => {
                let Some(name) = words.next() else { continue };
                let version = words
                    .find_map(|w| w.strip_prefix('('))
                    .unwrap_or("?")
                    .to_owned();
                install.push(Change {
                    package: strip_arch(name).to_owned(),
                    version,
                });
            }
            Some("Remv") => {
                if let Some(name) = words.next() {
                    remove.push(strip_arch(name).to_owned());
                }
            }
            _ => {}
        }
    }
    Simulation::Solved { install, remove }
}

/// The dependencies apt names as unmet, e.g. from
/// ` hello : Depends: jq but it is not installable` and the continuation lines
/// `         Depends: libfoo (>= 2) but 1 is to be installed`:
/// `jq (not installable)`, `libfoo (>= 2) (but 1 is to be installed)`.
fn parse_unmet(stdout: &str) -> Vec<String> {
    let mut unmet = Vec::new();
    for line in stdout.lines() {
        let relation = line
            .split_once(" : ")
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        let Some(dep) = ["Depends:", "Pre-Depends:", "PreDepends:"]
            .iter()
            .find_map(|field| relation.strip_prefix(field))
        else {
            continue;
        };
        let dep = dep.trim();
        let named = match dep.split_once(" but ") {
            Some((what, "it is not installable")) => format!("{what} (not installable)"),
            Some((what, why)) => format!("{what} ({why})"),
            None => dep.to_owned(),
        };
        if !unmet.contains(&named) {
            unmet.push(named);
        }
    }
    unmet
}

fn strip_arch(name: &str) -> &str {
    name.split_once(':').map_or(name, |(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// apt 3.0 (Debian 13) with its solver's extra context.
    const UNMET_APT3: &str = "Reading package lists...
Building dependency tree...
Solving dependencies...
Some packages could not be installed. This may mean that you have
requested an impossible situation or if you are using the unstable
distribution that some required packages have not yet been created
or been moved out of Incoming.
The following information may help to resolve the situation:

The following packages have unmet dependencies:
 hellox : Depends: hoist-no-such-dep (>= 1) but it is not installable
          Depends: libfoo (>= 2) but 1.0 is to be installed
E: Unable to correct problems, you have held broken packages.
E: The following information from --solver 3.0 may provide additional context:
   Unable to satisfy dependencies. Reached two conflicting decisions:
   1. hellox:amd64=2.0.0 is selected for install
   2. hellox:amd64 Depends hoist-no-such-dep (>= 1)
      but none of the choices are installable:
      [no choices]
";

    const SOLVED: &str = "Reading package lists...
The following NEW packages will be installed:
  hellox jq libjq1 libonig5
Inst libonig5 (6.9.9-1+b1 Debian:13.8/stable [amd64])
Inst libjq1:amd64 (1.7.1-6+deb13u4 Debian:13.8/stable [amd64])
Inst hellox [1.0.0] (2.0.0 local-deb [amd64])
Remv oldthing [3]
Conf libonig5 (6.9.9-1+b1 Debian:13.8/stable [amd64])
Conf hellox (2.0.0 local-deb [amd64])
";

    #[test]
    fn unmet_dependencies_are_named() {
        assert_eq!(
            parse_unmet(UNMET_APT3),
            [
                "hoist-no-such-dep (>= 1) (not installable)",
                "libfoo (>= 2) (1.0 is to be installed)"
            ]
        );
        assert!(parse_unmet("E: Could not open lock file\n").is_empty());
    }

    #[test]
    fn a_simulation_lists_installs_and_removals() {
        let Simulation::Solved { install, remove } = parse_solved(SOLVED) else {
            panic!("solved");
        };
        let names: Vec<&str> = install.iter().map(|c| c.package.as_str()).collect();
        assert_eq!(names, ["libonig5", "libjq1", "hellox"]);
        assert_eq!(install[2].version, "2.0.0");
        assert_eq!(remove, ["oldthing"]);
    }

    #[test]
    fn only_the_package_itself_means_plain_dpkg() {
        let only = parse_solved("Inst hellox [1] (2 local-deb [amd64])\nConf hellox (2)\n");
        assert_eq!(plain(&only, "hellox"), Some(Route::Dpkg));
        // Reinstalling the installed version: apt has nothing to do.
        assert_eq!(plain(&parse_solved(""), "hellox"), Some(Route::Dpkg));
        assert_eq!(plain(&parse_solved(SOLVED), "hellox"), None);
        let unsolvable = Simulation::Unsolvable {
            unmet: vec![],
            message: String::new(),
        };
        assert_eq!(plain(&unsolvable, "hellox"), None);
    }

    #[test]
    fn debs_are_passed_as_paths() {
        assert_eq!(local_path(Path::new("x.deb")), Path::new("./x.deb"));
        assert_eq!(local_path(Path::new("/c/x.deb")), Path::new("/c/x.deb"));
        assert_eq!(lock_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(lock_seconds(Duration::ZERO), 1);
    }
}
